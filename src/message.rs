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
/// `source`, and `reply_to` on a reply). Reading one refuses unknown fields: an import must not
/// drop data silently.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
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
    /// serve deserializing and the schema; serializing is written out below.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<u64>,
}

/// JSON leaves `reply_to` out when the message answers nothing (the Python relay's shape); the
/// log's binary records always hold it, since bincode reads fields by position.
impl Serialize for Message {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let reply_to = self.reply_to.is_some() || !serializer.is_human_readable();
        let mut out = serializer.serialize_struct("Message", 6 + usize::from(reply_to))?;
        out.serialize_field("id", &self.id)?;
        out.serialize_field("ts", &self.ts)?;
        out.serialize_field("target", &self.target)?;
        out.serialize_field("sender", &self.sender)?;
        out.serialize_field("text", &self.text)?;
        out.serialize_field("source", &self.source)?;
        if reply_to {
            out.serialize_field("reply_to", &self.reply_to)?;
        }
        out.end()
    }
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
    fn message_json_has_the_python_fields() {
        let m = Message {
            id: 7,
            ts: 1.5,
            target: "t".into(),
            sender: "s".into(),
            text: "x".into(),
            source: Source::Rest,
            reply_to: None,
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"id": 7, "ts": 1.5, "target": "t", "sender": "s", "text": "x", "source": "rest"})
        );
    }
}
