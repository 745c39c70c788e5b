//! Messages: a new one as the front doors hand it in, a stored one as every front door returns it.

use crate::values::{Name, Text};
use bytes::Bytes;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Which front door a message came in through; recorded with every message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Rest,
    Mcp,
    Ui,
    Cli,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Rest => "rest",
            Source::Mcp => "mcp",
            Source::Ui => "ui",
            Source::Cli => "cli",
        }
    }
}

/// A validated message that has not been given an id yet.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub target: Name,
    pub sender: Name,
    pub text: Text,
    pub source: Source,
    pub reply_to: Option<u64>,
}

/// A stored message, in the shape every front door returns (the Python relay's fields plus
/// `source`, `reply_to` on a reply, and `redacted` on one taken back). Reading one refuses
/// unknown fields: an import must not drop data silently.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub id: u64,
    /// Seconds since the Unix epoch, with fractions.
    pub ts: f64,
    pub target: String,
    pub sender: String,
    pub text: String,
    pub source: Source,
    /// The id of the message of the same channel this one answers (threads). (The attributes
    /// serve the schema; serializing and deserializing are written out below.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<u64>,
    // Who took the message back, when and why: its `text` is then only "redacted by NAME:
    // REASON". Never in the log's records (a redaction is an event of its own); the store adds
    // it to the message it serves. Not a doc comment, and a plain object in the schema: the MCP
    // schema agents pay for on every turn stays short.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "plain_object")]
    pub redacted: Option<Redacted>,
}

/// `{"type": "object"}`, and no more (for a field whose schema agents need not pay for).
pub(crate) fn plain_object(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({"type": "object"})
}

/// An optional integer as the schema shows it: plainly (see [`plain_object`]).
pub(crate) fn plain_integer(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({"type": "integer"})
}

/// A message's redaction, as it is served with the message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redacted {
    pub by: String,
    /// When, in seconds since the Unix epoch.
    pub ts: f64,
    pub reason: String,
}

impl Redacted {
    /// The text a redacted message reads as.
    pub fn text(&self) -> String {
        match self.reason.trim() {
            "" => format!("redacted by {}", self.by),
            reason => format!("redacted by {}: {reason}", self.by),
        }
    }
}

/// JSON leaves `reply_to` out when the message answers nothing (the Python relay's shape), and
/// `redacted` when it was not; the log's binary records always hold `reply_to` (bincode reads
/// fields by position) and never `redacted`.
impl Serialize for Message {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let binary = !serializer.is_human_readable();
        let reply_to = self.reply_to.is_some() || binary;
        let redacted = self.redacted.is_some() && !binary;
        let mut out =
            serializer.serialize_struct("Message", 6 + usize::from(reply_to) + usize::from(redacted))?;
        out.serialize_field("id", &self.id)?;
        out.serialize_field("ts", &self.ts)?;
        out.serialize_field("target", &self.target)?;
        out.serialize_field("sender", &self.sender)?;
        out.serialize_field("text", &self.text)?;
        out.serialize_field("source", &self.source)?;
        if reply_to {
            out.serialize_field("reply_to", &self.reply_to)?;
        }
        if redacted {
            out.serialize_field("redacted", &self.redacted)?;
        }
        out.end()
    }
}

/// A log record's message: the fields in order, without `redacted`.
#[derive(Deserialize)]
struct Record {
    id: u64,
    ts: f64,
    target: String,
    sender: String,
    text: String,
    source: Source,
    reply_to: Option<u64>,
}

/// A message as JSON: every field by name, unknown ones refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Json {
    id: u64,
    ts: f64,
    target: String,
    sender: String,
    text: String,
    source: Source,
    #[serde(default)]
    reply_to: Option<u64>,
    #[serde(default)]
    redacted: Option<Redacted>,
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let Json { id, ts, target, sender, text, source, reply_to, redacted } =
                Json::deserialize(deserializer)?;
            Ok(Message { id, ts, target, sender, text, source, reply_to, redacted })
        } else {
            let Record { id, ts, target, sender, text, source, reply_to } =
                Record::deserialize(deserializer)?;
            Ok(Message { id, ts, target, sender, text, source, reply_to, redacted: None })
        }
    }
}

/// Overwrites, in place, the text of the message `json` holds (a message as JSON, as the store
/// writes it): with `with`, JSON-escaped and padded with spaces to the text's length, or with
/// spaces only when it does not fit. The bytes around the text stay where they were and the
/// JSON stays valid. Returns `false`, changing nothing, when `json` holds no message text.
pub fn overwrite_text(json: &mut [u8], with: &str) -> bool {
    #[derive(Deserialize)]
    struct TextOf<'a> {
        #[serde(borrow)]
        text: &'a serde_json::value::RawValue,
    }
    let Ok(TextOf { text }) = serde_json::from_slice::<TextOf>(json) else { return false };
    if !text.get().starts_with('"') {
        return false; // not a string (or not an object: serde reads a struct from an array too)
    }
    // The string's bytes between its quotes.
    let start = text.get().as_ptr() as usize - json.as_ptr() as usize + 1;
    let end = start + text.get().len() - 2;
    let escaped = serde_json::to_string(with).unwrap_or_default();
    let escaped = escaped.as_bytes().get(1..escaped.len().saturating_sub(1)).unwrap_or_default();
    let fill = if escaped.len() <= end - start { escaped } else { &[][..] };
    json[start..start + fill.len()].copy_from_slice(fill);
    json[start + fill.len()..end].fill(b' ');
    true
}

/// A message in one line, as `watch` and `replay --print` show it:
/// `#id [sender -> target] first line of text`.
pub fn summary_line(id: u64, sender: &str, target: &str, text: &str) -> String {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    format!("#{id} [{sender} -> {target}] {first}")
}

/// A stored message as a channel view holds it: its id and its JSON, ready to send. A page of
/// these is written out as the bytes it was stored as, without decoding and re-encoding each
/// message.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub id: u64,
    json: Bytes,
}

impl StoredMessage {
    /// `json` must be a message as the store wrote it (`Message` as JSON); it is not parsed.
    pub fn new(id: u64, json: Bytes) -> Self {
        StoredMessage { id, json }
    }

    /// The message as JSON, as stored.
    pub fn json(&self) -> &[u8] {
        &self.json
    }

    /// The message this one answers, read without decoding the rest.
    pub fn reply_to(&self) -> Result<Option<u64>, serde_json::Error> {
        #[derive(Deserialize)]
        struct ReplyTo {
            #[serde(default)]
            reply_to: Option<u64>,
        }
        Ok(serde_json::from_slice::<ReplyTo>(&self.json)?.reply_to)
    }

    /// The sender, read without decoding the rest.
    pub fn sender(&self) -> Result<String, serde_json::Error> {
        #[derive(Deserialize)]
        struct Sender<'a> {
            #[serde(borrow)]
            sender: std::borrow::Cow<'a, str>,
        }
        let parsed: Sender = serde_json::from_slice(&self.json)?;
        Ok(parsed.sender.into_owned())
    }

    /// When it was posted, read without decoding the rest.
    pub fn ts(&self) -> Result<f64, serde_json::Error> {
        #[derive(Deserialize)]
        struct Ts {
            ts: f64,
        }
        Ok(serde_json::from_slice::<Ts>(&self.json)?.ts)
    }

    pub fn decode(&self) -> Result<Message, serde_json::Error> {
        serde_json::from_slice(&self.json)
    }
}

/// Writes the stored JSON as it is (checked on the way, since serde needs it as a `RawValue`;
/// REST's page writer skips even that).
impl Serialize for StoredMessage {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw: &serde_json::value::RawValue =
            serde_json::from_slice(&self.json).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

/// Sent as the [`Message`] it holds, so it is described as one.
impl JsonSchema for StoredMessage {
    fn schema_name() -> Cow<'static, str> {
        Message::schema_name()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        Message::json_schema(generator)
    }
}

impl PartialEq for StoredMessage {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.json == other.json
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_message_is_written_as_stored() {
        let json = r#"{"id":3,"ts":1.5,"target":"t","sender":"s\"x","text":"y","source":"mcp"}"#;
        let stored = StoredMessage::new(3, Bytes::from_static(json.as_bytes()));
        assert_eq!(serde_json::to_string(&vec![stored.clone()]).unwrap(), format!("[{json}]"));
        assert_eq!(stored.sender().unwrap(), "s\"x");
        assert_eq!(stored.decode().unwrap().text, "y");
    }

    #[test]
    fn a_text_is_overwritten_in_place_and_the_json_stays_valid() {
        let m = Message {
            id: 9,
            ts: 1.5,
            target: "t".into(),
            sender: "s".into(),
            text: "token \"sk-123\" é\n".into(),
            source: Source::Rest,
            reply_to: Some(2),
            redacted: None,
        };
        let original = serde_json::to_vec(&m).unwrap();
        let mut json = original.clone();
        assert!(overwrite_text(&mut json, "gone"));
        assert_eq!(json.len(), original.len());
        let after: Message = serde_json::from_slice(&json).unwrap();
        assert!(after.text.starts_with("gone") && after.text[4..].bytes().all(|b| b == b' '), "{after:?}");
        assert_eq!((after.id, after.reply_to, after.sender), (9, Some(2), "s".to_owned()));
        assert!(!String::from_utf8_lossy(&json).contains("sk-123"));
        // Too long to fit: spaces only.
        let mut json = original.clone();
        assert!(overwrite_text(&mut json, &"x".repeat(100)));
        assert!(serde_json::from_slice::<Message>(&json).unwrap().text.trim().is_empty());
        assert!(!overwrite_text(&mut b"[1]".to_vec(), "x"), "not a message");
    }

    #[test]
    fn message_json_has_the_python_fields() {
        let m = Message {
            id: 7,
            ts: 1.5,
            target: "t".into(),
            sender: "s".into(),
            text: "x".into(),
            source: Source::Rest,
            reply_to: None,
            redacted: None,
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"id": 7, "ts": 1.5, "target": "t", "sender": "s", "text": "x", "source": "rest"})
        );
    }
}
