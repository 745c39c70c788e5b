//! Events, the records of the log, and their encoding on disk.
//!
//! A record is one format-version byte followed by the event encoded with bincode 2 (serde,
//! standard config). New kinds of event are added at the end of [`Event`], so old records keep
//! decoding; a new incompatible layout gets a new version byte.

use crate::identity::Role;
use crate::message::{Message, NewMessage};
use crate::values::Name;
use serde::{Deserialize, Serialize};

/// The record layout written today: 2 added `reply_to` to messages. Layout 1 is still read.
pub const FORMAT_VERSION: u8 = 2;

/// Layout 1 of the records, read only: messages without `reply_to`.
mod v1 {
    use crate::message::Source;
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub(super) enum Event {
        MessagePosted(Message),
        CursorMoved(super::CursorMoved),
    }

    #[derive(Deserialize)]
    pub(super) struct Message {
        id: u64,
        ts: f64,
        target: String,
        sender: String,
        text: String,
        source: Source,
    }

    impl From<Event> for super::Event {
        fn from(event: Event) -> super::Event {
            match event {
                Event::MessagePosted(Message { id, ts, target, sender, text, source }) => {
                    let m = crate::message::Message {
                        id,
                        ts,
                        target,
                        sender,
                        text,
                        source,
                        reply_to: None,
                        redacted: None,
                    };
                    super::Event::MessagePosted(m)
                }
                Event::CursorMoved(c) => super::Event::CursorMoved(c),
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    MessagePosted(Message),
    CursorMoved(CursorMoved),
    PrincipalChanged(PrincipalChanged),
    ReaderWoken(ReaderWoken),
    MessageRedacted(MessageRedacted),
    MessagesExpired(MessagesExpired),
}

/// A reader acknowledged a channel's messages up to `to`: its cursor there moves on (never back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CursorMoved {
    pub id: u64,
    /// Seconds since the Unix epoch, with fractions.
    pub ts: f64,
    pub reader: String,
    pub target: String,
    pub to: u64,
}

/// A principal was added or changed (see [`crate::identity`]): who may speak, as whom, where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalChanged {
    pub id: u64,
    /// Seconds since the Unix epoch, with fractions.
    pub ts: f64,
    pub name: String,
    pub change: Change,
}

/// Messages one wake may name.
pub const MAX_WAKE_IDS: usize = 1000;
/// Characters of a wake's `via`.
pub const MAX_VIA_CHARS: usize = 200;

/// Characters of a redaction's reason.
pub const MAX_REASON_CHARS: usize = 500;

/// What is wrong with `via` as a wake's description, if anything: it must be at most
/// [`MAX_VIA_CHARS`] characters, on one line.
pub fn via_problem(via: &str) -> Option<String> {
    line_problem(via, MAX_VIA_CHARS)
}

/// What is wrong with `reason` as a redaction's reason, if anything: it must be at most
/// [`MAX_REASON_CHARS`] characters, on one line.
pub fn reason_problem(reason: &str) -> Option<String> {
    line_problem(reason, MAX_REASON_CHARS)
}

fn line_problem(text: &str, max: usize) -> Option<String> {
    let fits = text.chars().count() <= max && !text.chars().any(char::is_control);
    (!fits).then(|| format!("must be at most {max} characters, on one line"))
}

/// A bridge or watcher put a wake about messages `ids` of channel `target` into `reader`'s
/// session, and the session accepted it (a Codex turn started or steered, for example).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReaderWoken {
    pub id: u64,
    /// Seconds since the Unix epoch, with fractions.
    pub ts: f64,
    pub reader: String,
    pub target: String,
    /// The messages the wake named, ascending.
    pub ids: Vec<u64>,
    /// How the session was woken, for people: "codex app-server turn/start", for example.
    pub via: String,
}

/// `by` took message `message` of channel `target` back: from this event on every projection
/// shows it as a tombstone (its id, channel, sender, time and reply link, without its text), and
/// the text is erased from the files that held it (docs/reliability.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageRedacted {
    pub id: u64,
    /// Seconds since the Unix epoch, with fractions.
    pub ts: f64,
    pub target: String,
    /// The message taken back.
    pub message: u64,
    /// What its tombstone keeps of it, so the tombstone can be made from this event alone (a
    /// log that erased the message's own record).
    pub post: Post,
    /// Who asked.
    pub by: String,
    /// Why, as they said it (may be empty).
    pub reason: String,
}

/// The messages of channel `target` with ids up to `upto` passed the relay's retention
/// (`retention_messages`, `retention_days`): from this event on they leave the channel views,
/// search and, in sled mode, the log itself. Ids are not reused, and a read from before `upto`
/// says that older messages expired (`expired_before`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagesExpired {
    pub id: u64,
    /// Seconds since the Unix epoch, with fractions.
    pub ts: f64,
    pub target: String,
    pub upto: u64,
}

/// What a redacted message's tombstone keeps besides its id and channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Post {
    pub sender: String,
    /// When it was posted (the message's `ts`).
    pub ts: f64,
    pub source: crate::message::Source,
    pub reply_to: Option<u64>,
}

impl From<&Message> for Post {
    fn from(m: &Message) -> Post {
        Post { sender: m.sender.clone(), ts: m.ts, source: m.source, reply_to: m.reply_to }
    }
}

impl MessageRedacted {
    /// The redaction as the message is served with it.
    pub fn redacted(&self) -> crate::message::Redacted {
        crate::message::Redacted { by: self.by.clone(), ts: self.ts, reason: self.reason.clone() }
    }

    /// What the message's text reads as from now on: "redacted by NAME: REASON".
    pub fn tombstone_text(&self) -> String {
        self.redacted().text()
    }

    /// The message's record as a log that rewrites it keeps it: its text the tombstone's.
    pub fn tombstone(&self) -> Message {
        Message {
            id: self.message,
            ts: self.post.ts,
            target: self.target.clone(),
            sender: self.post.sender.clone(),
            text: self.tombstone_text(),
            source: self.post.source,
            reply_to: self.post.reply_to,
            redacted: None,
        }
    }
}

/// What happened to a principal. Applying these is deterministic (the first `Added` of a name
/// wins; a change to a principal or key that does not exist does nothing), so every instance
/// that reads the same log knows the same principals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Added {
        role: Role,
        read: Vec<String>,
        write: Vec<String>,
    },
    /// `hash`: the SHA-256 of the credential, in hex; the credential itself is never stored.
    CredentialIssued {
        key_id: String,
        hash: String,
    },
    CredentialRevoked {
        key_id: String,
    },
    GrantsChanged {
        read: Vec<String>,
        write: Vec<String>,
    },
}

impl Change {
    /// One line for people (`replay --print`, the usage log): never a secret, nor its hash.
    pub fn describe(&self) -> String {
        let grants =
            |read: &[String], write: &[String]| format!("read {}; write {}", read.join(","), write.join(","));
        match self {
            Change::Added { role, read, write } => {
                format!("added as {}, {}", role.as_str(), grants(read, write))
            }
            Change::CredentialIssued { key_id, .. } => format!("credential {key_id} issued"),
            Change::CredentialRevoked { key_id } => format!("credential {key_id} revoked"),
            Change::GrantsChanged { read, write } => format!("grants now {}", grants(read, write)),
        }
    }
}

impl Event {
    pub fn id(&self) -> u64 {
        match self {
            Event::MessagePosted(m) => m.id,
            Event::CursorMoved(c) => c.id,
            Event::PrincipalChanged(p) => p.id,
            Event::ReaderWoken(w) => w.id,
            Event::MessageRedacted(r) => r.id,
            Event::MessagesExpired(x) => x.id,
        }
    }

    /// The channel the event is about; `None` for a principal's change.
    pub fn target(&self) -> Option<&str> {
        match self {
            Event::MessagePosted(m) => Some(&m.target),
            Event::CursorMoved(c) => Some(&c.target),
            Event::PrincipalChanged(_) => None,
            Event::ReaderWoken(w) => Some(&w.target),
            Event::MessageRedacted(r) => Some(&r.target),
            Event::MessagesExpired(x) => Some(&x.target),
        }
    }

    /// The same event under another id (a NATS stream numbers events by their sequence).
    pub fn with_id(mut self, id: u64) -> Event {
        match &mut self {
            Event::MessagePosted(m) => m.id = id,
            Event::CursorMoved(c) => c.id = id,
            Event::PrincipalChanged(p) => p.id = id,
            Event::ReaderWoken(w) => w.id = id,
            Event::MessageRedacted(r) => r.id = id,
            Event::MessagesExpired(x) => x.id = id,
        }
        self
    }
}

/// What a log is asked to append, validated; the log gives it its id and time.
#[derive(Debug, Clone)]
pub enum NewEvent {
    Message(NewMessage),
    Cursor { reader: Name, target: Name, to: u64 },
    Principal { name: Name, change: Change },
    Woken { reader: Name, target: Name, ids: Vec<u64>, via: String },
    Redaction { target: Name, message: u64, post: Post, by: Name, reason: String },
    Expiry { target: Name, upto: u64 },
}

impl NewEvent {
    pub fn stamp(self, id: u64, ts: f64) -> Event {
        match self {
            NewEvent::Message(m) => Event::MessagePosted(Message {
                id,
                ts,
                target: m.target.as_str().to_owned(),
                sender: m.sender.as_str().to_owned(),
                text: m.text.into_string(),
                source: m.source,
                reply_to: m.reply_to,
                redacted: None,
            }),
            NewEvent::Cursor { reader, target, to } => Event::CursorMoved(CursorMoved {
                id,
                ts,
                reader: reader.as_str().to_owned(),
                target: target.as_str().to_owned(),
                to,
            }),
            NewEvent::Principal { name, change } => {
                Event::PrincipalChanged(PrincipalChanged { id, ts, name: name.as_str().to_owned(), change })
            }
            NewEvent::Woken { reader, target, ids, via } => Event::ReaderWoken(ReaderWoken {
                id,
                ts,
                reader: reader.as_str().to_owned(),
                target: target.as_str().to_owned(),
                ids,
                via,
            }),
            NewEvent::Redaction { target, message, post, by, reason } => {
                Event::MessageRedacted(MessageRedacted {
                    id,
                    ts,
                    target: target.as_str().to_owned(),
                    message,
                    post,
                    by: by.as_str().to_owned(),
                    reason,
                })
            }
            NewEvent::Expiry { target, upto } => {
                Event::MessagesExpired(MessagesExpired { id, ts, target: target.as_str().to_owned(), upto })
            }
        }
    }

    /// The channel the event is about; `None` for a principal's change.
    pub fn target(&self) -> Option<&str> {
        match self {
            NewEvent::Message(m) => Some(m.target.as_str()),
            NewEvent::Cursor { target, .. }
            | NewEvent::Woken { target, .. }
            | NewEvent::Redaction { target, .. }
            | NewEvent::Expiry { target, .. } => Some(target.as_str()),
            NewEvent::Principal { .. } => None,
        }
    }
}

/// An event as one line of JSON (export and import): the message's fields plus `"type"`.
/// A separate shape from the record on disk, so the disk format can change without changing
/// exported files, and the reverse.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum JsonEvent {
    MessagePosted(Message),
    CursorMoved(CursorMoved),
    PrincipalChanged(PrincipalChanged),
    ReaderWoken(ReaderWoken),
    MessageRedacted(MessageRedacted),
    MessagesExpired(MessagesExpired),
}

impl Event {
    pub fn to_json_line(&self) -> String {
        let json = match self.clone() {
            Event::MessagePosted(m) => serde_json::to_string(&JsonEvent::MessagePosted(m)),
            Event::CursorMoved(c) => serde_json::to_string(&JsonEvent::CursorMoved(c)),
            Event::PrincipalChanged(p) => serde_json::to_string(&JsonEvent::PrincipalChanged(p)),
            Event::ReaderWoken(w) => serde_json::to_string(&JsonEvent::ReaderWoken(w)),
            Event::MessageRedacted(r) => serde_json::to_string(&JsonEvent::MessageRedacted(r)),
            Event::MessagesExpired(x) => serde_json::to_string(&JsonEvent::MessagesExpired(x)),
        };
        json.expect("events encode as JSON") + "\n"
    }

    pub fn from_json_line(line: &str) -> Result<Event, String> {
        match serde_json::from_str::<JsonEvent>(line) {
            Ok(JsonEvent::MessagePosted(m)) => Ok(Event::MessagePosted(m)),
            Ok(JsonEvent::CursorMoved(c)) => Ok(Event::CursorMoved(c)),
            Ok(JsonEvent::PrincipalChanged(p)) => Ok(Event::PrincipalChanged(p)),
            Ok(JsonEvent::ReaderWoken(w)) => Ok(Event::ReaderWoken(w)),
            Ok(JsonEvent::MessageRedacted(r)) => Ok(Event::MessageRedacted(r)),
            Ok(JsonEvent::MessagesExpired(x)) => Ok(Event::MessagesExpired(x)),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("event {id}: empty record")]
    Empty { id: u64 },
    #[error("event {id}: unknown format version {version} (this relay reads versions 1 to {FORMAT_VERSION}); is the data dir from a newer relay?")]
    Version { id: u64, version: u8 },
    #[error("event {id}: cannot decode record: {reason}")]
    Body { id: u64, reason: String },
    #[error("event {id}: record holds the id {found} instead")]
    IdMismatch { id: u64, found: u64 },
}

/// The most a record may claim to hold. A damaged length prefix could otherwise claim
/// petabytes, and decoding would try to allocate them; above the largest possible message
/// (`MAX_TEXT_BYTES_LIMIT`, 64 MiB, plus names) it is refused as damage instead.
const MAX_RECORD_BYTES: usize = 128 << 20;

fn config() -> bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_RECORD_BYTES>,
> {
    bincode::config::standard().with_limit::<MAX_RECORD_BYTES>()
}

pub fn encode(event: &Event) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    // Encoding into a Vec cannot fail for these plain data types.
    bincode::serde::encode_into_std_write(event, &mut out, config()).expect("encoding an event into memory");
    out
}

/// Decodes the record stored under `id`, checking that it is whole and holds that id.
pub fn decode(id: u64, bytes: &[u8]) -> Result<Event, DecodeError> {
    let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty { id })?;
    let event = match version {
        FORMAT_VERSION => decode_body::<Event>(id, body)?,
        1 => decode_body::<v1::Event>(id, body)?.into(),
        _ => return Err(DecodeError::Version { id, version }),
    };
    if event.id() != id {
        return Err(DecodeError::IdMismatch { id, found: event.id() });
    }
    Ok(event)
}

/// The whole of `body` as one `T`.
fn decode_body<T: serde::de::DeserializeOwned>(id: u64, body: &[u8]) -> Result<T, DecodeError> {
    let (value, used): (T, usize) = bincode::serde::decode_from_slice(body, config())
        .map_err(|e| DecodeError::Body { id, reason: e.to_string() })?;
    if used != body.len() {
        return Err(DecodeError::Body { id, reason: format!("{} trailing bytes", body.len() - used) });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Source;

    fn sample(id: u64) -> Event {
        Event::MessagePosted(Message {
            id,
            ts: 1_700_000_000.25,
            target: "proj-x".into(),
            sender: "claude".into(),
            text: "```diff\n+x\n```".into(),
            source: Source::Mcp,
            reply_to: None,
            redacted: None,
        })
    }

    #[test]
    fn records_of_layout_1_still_decode_and_replies_round_trip() {
        #[derive(Serialize)]
        enum OldEvent {
            MessagePosted { id: u64, ts: f64, target: String, sender: String, text: String, source: Source },
        }
        let old = OldEvent::MessagePosted {
            id: 7,
            ts: 1_700_000_000.25,
            target: "proj-x".into(),
            sender: "claude".into(),
            text: "```diff\n+x\n```".into(),
            source: Source::Mcp,
        };
        let mut record = vec![1];
        bincode::serde::encode_into_std_write(&old, &mut record, config()).unwrap();
        assert_eq!(decode(7, &record).unwrap(), sample(7));
        let Event::MessagePosted(mut reply) = sample(9) else { unreachable!() };
        reply.reply_to = Some(7);
        let reply = Event::MessagePosted(reply);
        assert_eq!(encode(&reply)[0], 2);
        assert_eq!(decode(9, &encode(&reply)).unwrap(), reply);
        assert!(reply.to_json_line().contains(r#""reply_to":7"#));
        assert!(!sample(7).to_json_line().contains("reply_to"), "no field when it answers nothing");
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 3000, failure_persistence: None, ..Default::default() })]
        /// A damaged record is an error naming its id, never a panic: random bytes, and a real
        /// record with one byte changed or cut short.
        #[test]
        fn damaged_records_are_errors_not_panics(
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
            at in 0usize..200,
            byte in proptest::prelude::any::<u8>(),
            cut in 0usize..200,
        ) {
            let _ = decode(7, &noise);
            let whole = encode(&sample(7));
            let mut record = whole.clone();
            let i = at % record.len();
            record[i] = byte;
            if let Err(e) = decode(7, &record) {
                proptest::prop_assert!(e.to_string().contains('7'), "{}", e);
            }
            // A changed record cut short may still be whole in another layout (its version byte
            // made 1, its last field gone): only the cut itself must not panic.
            record.truncate(cut % record.len());
            let _ = decode(7, &record);
            proptest::prop_assert!(decode(7, &whole[..cut % whole.len()]).is_err());
            let _ = Event::from_json_line(&String::from_utf8_lossy(&noise));
        }
    }

    #[test]
    fn a_length_prefix_claiming_petabytes_is_damage() {
        // Version, variant 0, id 7, ts, then a target "of" u64::MAX bytes.
        let mut record = vec![FORMAT_VERSION, 0, 7];
        record.extend_from_slice(&1.5f64.to_le_bytes());
        record.push(0xFD);
        record.extend_from_slice(&u64::MAX.to_le_bytes());
        let e = decode(7, &record).unwrap_err().to_string();
        assert!(e.contains('7'), "{e}");
    }

    #[test]
    fn round_trip() {
        assert_eq!(decode(3, &encode(&sample(3))).unwrap(), sample(3));
        let cursor = Event::CursorMoved(CursorMoved {
            id: 4,
            ts: 1.5,
            reader: "codex".into(),
            target: "proj-x".into(),
            to: 3,
        });
        assert_eq!(decode(4, &encode(&cursor)).unwrap(), cursor);
        let line = cursor.to_json_line();
        assert_eq!(
            line,
            "{\"type\":\"cursor_moved\",\"id\":4,\"ts\":1.5,\"reader\":\"codex\",\"target\":\"proj-x\",\"to\":3}\n"
        );
        assert_eq!(Event::from_json_line(&line).unwrap(), cursor);
        // A record written before cursors existed still decodes as it did.
        assert_eq!(encode(&sample(3))[1], 0, "MessagePosted stays variant 0");
    }

    #[test]
    fn an_expiry_round_trips_and_keeps_its_variant() {
        let expired =
            Event::MessagesExpired(MessagesExpired { id: 9, ts: 3.5, target: "ci".into(), upto: 7 });
        let record = encode(&expired);
        assert_eq!(record[1], 5, "MessagesExpired is variant 5");
        assert_eq!(decode(9, &record).unwrap(), expired);
        let line = expired.to_json_line();
        assert_eq!(
            line,
            "{\"type\":\"messages_expired\",\"id\":9,\"ts\":3.5,\"target\":\"ci\",\"upto\":7}\n"
        );
        assert_eq!(Event::from_json_line(&line).unwrap(), expired);
    }

    #[test]
    fn principal_changes_round_trip_on_disk_and_as_json() {
        let added = Event::PrincipalChanged(PrincipalChanged {
            id: 5,
            ts: 2.5,
            name: "codex".into(),
            change: Change::Added { role: Role::Agent, read: vec!["proj-*".into()], write: vec![] },
        });
        assert_eq!(decode(5, &encode(&added)).unwrap(), added);
        let line = added.to_json_line();
        assert_eq!(
            line,
            "{\"type\":\"principal_changed\",\"id\":5,\"ts\":2.5,\"name\":\"codex\",\
             \"change\":{\"added\":{\"role\":\"agent\",\"read\":[\"proj-*\"],\"write\":[]}}}\n"
        );
        assert_eq!(Event::from_json_line(&line).unwrap(), added);
        assert_eq!(added.target(), None);
        assert_eq!(encode(&sample(3))[1], 0, "older kinds keep their variant numbers");
    }

    #[test]
    fn wakes_round_trip_on_disk_and_as_json() {
        let woken = Event::ReaderWoken(ReaderWoken {
            id: 9,
            ts: 3.5,
            reader: "codex".into(),
            target: "rv".into(),
            ids: vec![7, 8],
            via: "codex app-server turn/start".into(),
        });
        assert_eq!(decode(9, &encode(&woken)).unwrap(), woken);
        assert_eq!(encode(&woken)[1], 3, "a new kind of event comes after the older ones");
        let line = woken.to_json_line();
        assert_eq!(
            line,
            "{\"type\":\"reader_woken\",\"id\":9,\"ts\":3.5,\"reader\":\"codex\",\"target\":\"rv\",\
             \"ids\":[7,8],\"via\":\"codex app-server turn/start\"}\n"
        );
        assert_eq!(Event::from_json_line(&line).unwrap(), woken);
        assert_eq!(woken.target(), Some("rv"));
    }

    #[test]
    fn record_starts_with_the_version_byte() {
        assert_eq!(encode(&sample(1))[0], FORMAT_VERSION);
    }

    #[test]
    fn unknown_version_names_the_id() {
        let mut bytes = encode(&sample(9));
        bytes[0] = 42;
        let err = decode(9, &bytes).unwrap_err().to_string();
        assert!(err.starts_with("event 9: unknown format version 42"), "{err}");
    }

    #[test]
    fn truncated_record_is_an_error_not_a_panic() {
        let bytes = encode(&sample(5));
        for cut in 0..bytes.len() {
            assert!(decode(5, &bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn unknown_event_kind_is_an_error() {
        let mut bytes = encode(&sample(5));
        bytes[1] = 200; // the variant index
        assert!(matches!(decode(5, &bytes), Err(DecodeError::Body { id: 5, .. })));
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut bytes = encode(&sample(5));
        bytes.push(0);
        assert!(decode(5, &bytes).is_err());
    }

    #[test]
    fn json_line_round_trip() {
        let line = sample(3).to_json_line();
        assert!(line.starts_with(r#"{"type":"message_posted","id":3,"#), "{line}");
        assert_eq!(Event::from_json_line(line.trim_end()).unwrap(), sample(3));
    }

    #[test]
    fn json_line_with_unknown_type_or_field_is_refused() {
        assert!(Event::from_json_line(r#"{"type":"channel_renamed","id":1}"#).is_err());
        let extra = sample(3).to_json_line().replacen("\"id\"", "\"extra\":1,\"id\"", 1);
        assert!(Event::from_json_line(&extra).is_err());
        assert!(Event::from_json_line("{").is_err());
    }

    #[test]
    fn record_under_the_wrong_key_is_an_error() {
        assert!(matches!(decode(6, &encode(&sample(5))), Err(DecodeError::IdMismatch { .. })));
    }
}
