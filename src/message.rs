//! Messages and the validated pieces they are made of: names (target, sender) and text.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Longest channel or sender name, in characters. Long enough for any sensible channel slug or
/// agent name, short enough to show in one line of the UI and to keep index keys small.
pub const MAX_NAME_CHARS: usize = 128;

/// Default cap on a message's text, in bytes of UTF-8: a review packet with a large diff fits,
/// a runaway paste of a build log does not. `max_text_bytes` in the config overrides it.
pub const DEFAULT_MAX_TEXT_BYTES: usize = 1024 * 1024;

/// Why a piece of input was refused. `field` is the name the client used (`target`, `sender`,
/// `text`, `limit`, ...), so the error tells them what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    pub field: &'static str,
    pub reason: String,
}

impl Invalid {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Invalid { field, reason: reason.into() }
    }
}

/// A channel or sender name: trimmed, 1..=128 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(String);

impl Name {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, Invalid> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(Invalid::new(field, "must not be empty"));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(Invalid::new(field, format!("must be at most {MAX_NAME_CHARS} characters")));
        }
        if name.chars().any(char::is_control) {
            return Err(Invalid::new(field, "must not contain control characters"));
        }
        Ok(Name(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A message's text: not blank once trimmed, at most `max_bytes` of UTF-8. Kept exactly as
/// written (leading spaces and trailing newlines matter in a diff).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(String);

impl Text {
    pub fn parse(raw: String, max_bytes: usize) -> Result<Self, Invalid> {
        if raw.trim().is_empty() {
            return Err(Invalid::new("text", "must not be empty"));
        }
        if raw.len() > max_bytes {
            return Err(Invalid::new(
                "text",
                format!("is {} bytes, over the limit of {max_bytes} bytes", raw.len()),
            ));
        }
        Ok(Text(raw))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Which front door a message came in through; recorded with every message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// A stored message, in the shape every front door returns (the Python relay's fields plus
/// `source`). Reading one refuses unknown fields: an import must not drop data silently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub id: u64,
    /// Seconds since the Unix epoch, with fractions.
    pub ts: f64,
    pub target: String,
    pub sender: String,
    pub text: String,
    pub source: Source,
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

impl PartialEq for StoredMessage {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.json == other.json
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_is_trimmed() {
        assert_eq!(Name::parse("target", "  proj-x \n").unwrap().as_str(), "proj-x");
    }

    #[test]
    fn blank_name_names_the_field() {
        let err = Name::parse("sender", " \t ").unwrap_err();
        assert_eq!(err.to_string(), "sender: must not be empty");
    }

    #[test]
    fn name_of_128_chars_is_accepted_129_is_not() {
        assert!(Name::parse("target", &"é".repeat(128)).is_ok());
        assert_eq!(Name::parse("target", &"é".repeat(129)).unwrap_err().field, "target");
    }

    #[test]
    fn name_with_control_character_is_refused() {
        assert!(Name::parse("target", "a\u{7}b").is_err());
        assert!(Name::parse("target", "a\nb").is_err());
    }

    #[test]
    fn text_keeps_its_whitespace() {
        let text = Text::parse("  +added\n".into(), 100).unwrap();
        assert_eq!(text.into_string(), "  +added\n");
    }

    #[test]
    fn blank_text_is_refused() {
        assert_eq!(Text::parse(" \n ".into(), 100).unwrap_err().field, "text");
    }

    #[test]
    fn text_limit_is_in_bytes() {
        assert!(Text::parse("ab".into(), 2).is_ok());
        assert!(Text::parse("é".repeat(2), 3).is_err());
    }

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
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"id": 7, "ts": 1.5, "target": "t", "sender": "s", "text": "x", "source": "rest"})
        );
    }
}
