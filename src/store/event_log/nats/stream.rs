//! The stream itself: the settings to reach it, the configuration the relay needs of it
//! (created when missing, refused, never changed, when it differs), the server's checks on
//! connecting, subjects, and records numbered by their sequence.

use crate::event::{self, Event};
use crate::store::StoreError;
use async_nats::jetstream::{self, stream};
use std::path::PathBuf;
use std::time::Duration;

/// How long a post keeps retrying (with the same Msg-Id) before it is answered "not
/// acknowledged".
pub const PUBLISH_BOUND: Duration = Duration::from_secs(10);

/// The stream's duplicate window: longer than every retry of one post.
pub(super) const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// The oldest server that can sync every write and has what this backend asks of a stream.
pub(super) const MIN_SERVER: (u64, u64) = (2, 10);

/// How to reach the stream: the settings `nats_url`, `nats_stream`, `nats_replicas`,
/// `nats_token`, `nats_creds_file` and `nats_tls_ca`.
#[derive(Debug, Clone, PartialEq)]
pub struct NatsSettings {
    /// Servers, for example `nats://10.0.0.1:4222`.
    pub urls: Vec<String>,
    pub stream: String,
    pub replicas: usize,
    pub token: Option<String>,
    pub creds_file: Option<PathBuf>,
    pub tls_ca: Option<PathBuf>,
}

impl Default for NatsSettings {
    fn default() -> Self {
        NatsSettings {
            urls: Vec::new(),
            stream: "RELAY".into(),
            replicas: 3,
            token: None,
            creds_file: None,
            tls_ca: None,
        }
    }
}

pub(super) fn nats_error(doing: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Nats(format!("{doing}: {e}"))
}

/// A channel name as one subject token. NATS forbids `.`, `*`, `>` and whitespace in a token;
/// every byte outside `A-Z a-z 0-9 - _` is written `%XX`, so the mapping is reversible.
pub fn subject_token(channel: &str) -> String {
    let mut out = String::with_capacity(channel.len());
    for b in channel.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The token of the subject an event is published to: its channel's, or for an event about no
/// channel (a principal's change) `%00principals`, which no channel name encodes to (names hold
/// no control characters).
pub fn event_token(target: Option<&str>) -> String {
    subject_token(target.unwrap_or("\0principals"))
}

/// The subject a message of `channel` is published to.
pub fn subject(stream: &str, channel: &str) -> String {
    format!("relay.{stream}.{}", subject_token(channel))
}

/// The subject an event is published to, after `prefix` (`relay.<stream>.`): its channel's
/// token, with `.r` added for a redaction, so a reader can find the redactions alone
/// ([`redactions_filter`]).
pub(super) fn event_subject(prefix: &str, target: Option<&str>, redaction: bool) -> String {
    let suffix = if redaction { ".r" } else { "" };
    format!("{prefix}{}{suffix}", event_token(target))
}

/// The subjects of every redaction in the stream `stream`.
pub(super) fn redactions_filter(stream: &str) -> String {
    format!("relay.{stream}.*.r")
}

/// The stream the relay needs.
pub(super) fn wanted(config: &NatsSettings) -> stream::Config {
    stream::Config {
        name: config.stream.clone(),
        subjects: vec![format!("relay.{}.>", config.stream)],
        storage: stream::StorageType::File,
        num_replicas: config.replicas,
        retention: stream::RetentionPolicy::Limits,
        max_messages: -1,
        max_bytes: -1,
        max_age: Duration::ZERO,
        // Redaction and retention erase records (`erase.rs`).
        deny_delete: false,
        deny_purge: false,
        duplicate_window: DUPLICATE_WINDOW,
        allow_direct: true,
        ..Default::default()
    }
}

/// What differs between an existing stream and what the relay needs, naming each field.
pub(super) fn differences(found: &stream::Config, wanted: &stream::Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |same: bool, field: &str, found: String, needed: &str| {
        if !same {
            out.push(format!("{field} is {found}, the relay needs {needed}"));
        }
    };
    check(
        found.subjects == wanted.subjects,
        "subjects",
        format!("{:?}", found.subjects),
        &format!("{:?}", wanted.subjects),
    );
    check(found.storage == wanted.storage, "storage", format!("{:?}", found.storage), "file");
    check(
        found.num_replicas == wanted.num_replicas,
        "num_replicas",
        found.num_replicas.to_string(),
        &wanted.num_replicas.to_string(),
    );
    check(found.retention == wanted.retention, "retention", format!("{:?}", found.retention), "limits");
    check(found.max_messages == -1, "max_msgs", found.max_messages.to_string(), "-1 (no limit)");
    check(
        found.max_messages_per_subject <= 0,
        "max_msgs_per_subject",
        found.max_messages_per_subject.to_string(),
        "-1 (no limit)",
    );
    check(found.max_bytes == -1, "max_bytes", found.max_bytes.to_string(), "-1 (no limit)");
    check(found.max_age.is_zero(), "max_age", format!("{}s", found.max_age.as_secs()), "0 (no limit)");
    check(
        found.duplicate_window >= wanted.duplicate_window,
        "duplicate_window",
        format!("{}s", found.duplicate_window.as_secs()),
        &format!("at least {}s (longer than a post's retries)", wanted.duplicate_window.as_secs()),
    );
    out
}

/// `2.15.1` as (2, 15); `None` when it is not a version.
pub(super) fn major_minor(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.trim_start_matches('v').split(['.', '-']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// A stored event, numbered by its stream sequence.
pub(super) fn numbered(sequence: u64, payload: &[u8]) -> Result<Event, StoreError> {
    let event = event::decode(0, payload)
        .map_err(|e| StoreError::corrupt(format!("stream message {sequence}: {e}")))?;
    Ok(event.with_id(sequence))
}

/// The stream, with its state now (`cached_info`: one info request fetches both).
pub(super) async fn stream_info(js: &jetstream::Context, name: &str) -> Result<stream::Stream, StoreError> {
    js.get_stream(name).await.map_err(|e| nats_error(&format!("cannot reach the stream {name}"), e))
}

/// Why the stream is not open (yet).
pub(super) enum Unopened {
    /// No server answers, or the cluster has no leader yet: worth trying again.
    Waiting(String),
    /// The servers answer and refuse what the relay needs (a stream with another configuration,
    /// a server too old, bad credentials): trying again would not help.
    Refused(StoreError),
}

/// Connects to the servers and checks them. Unreachable servers, or a name that does not
/// resolve yet (a container not started), are [`Unopened::Waiting`]; the rest is refused.
pub(super) async fn connect(config: &NatsSettings) -> Result<async_nats::Client, Unopened> {
    let mut options = async_nats::ConnectOptions::new()
        .name("claude-codex-relay")
        .connection_timeout(Duration::from_secs(5));
    if let Some(token) = &config.token {
        options = options.token(token.clone());
    }
    if let Some(path) = &config.creds_file {
        options = options
            .credentials_file(path)
            .await
            .map_err(|e| Unopened::Refused(nats_error(&format!("nats_creds_file {}", path.display()), e)))?;
    }
    if let Some(path) = &config.tls_ca {
        options = options.add_root_certificates(path.clone()).require_tls(true);
    }
    let urls = config.urls.join(",");
    let client = options.connect(config.urls.as_slice()).await.map_err(|e| {
        use async_nats::ConnectErrorKind::{Dns, Io, MaxReconnects, TimedOut};
        let why = format!("cannot connect to nats_url {urls}: {e}");
        match e.kind() {
            Io | TimedOut | Dns | MaxReconnects => Unopened::Waiting(why),
            _ => Unopened::Refused(StoreError::Nats(why)),
        }
    })?;
    let version = client.server_info().version;
    match major_minor(&version) {
        Some(v) if v >= MIN_SERVER => Ok(client),
        _ => Err(Unopened::Refused(StoreError::Nats(format!(
            "the NATS server at {urls} is version {version:?}; the relay needs {}.{} or newer (older servers cannot sync every write)",
            MIN_SERVER.0, MIN_SERVER.1
        )))),
    }
}

/// What the servers' `max_payload` leaves for a post's text, when it is less than `wanted`.
pub(super) fn text_cap(client: &async_nats::Client, overhead: usize, wanted: usize) -> Option<usize> {
    let room = client.server_info().max_payload.saturating_sub(overhead);
    (room < wanted).then_some(room)
}

/// The stream as it was found (or made).
pub(super) struct Found {
    /// When it was created.
    pub(super) created: String,
    pub(super) last_sequence: u64,
    /// Whether its records can be erased: a stream made by an earlier relay denies deletes, and
    /// JetStream does not let that be changed on an existing stream.
    pub(super) erasable: bool,
}

/// The stream the relay needs, created when there is none. A stream with another
/// configuration is refused (but for one that denies deletes: an older relay made it so, and
/// it works, without erasure); a request that fails otherwise (no leader yet, a stream being
/// deleted, a timeout) is [`Unopened::Waiting`].
pub(super) async fn ensure_stream(js: &jetstream::Context, config: &NatsSettings) -> Result<Found, Unopened> {
    use jetstream::ErrorCode;
    let (name, wanted) = (&config.stream, wanted(config));
    match js.get_stream(name).await {
        Ok(existing) => {
            let found = existing.cached_info();
            let differs = differences(&found.config, &wanted);
            if !differs.is_empty() {
                return Err(Unopened::Refused(StoreError::Nats(format!(
                    "the stream {name} exists with another configuration, which the relay does not change: {}",
                    differs.join("; ")
                ))));
            }
            Ok(Found {
                created: found.created.to_string(),
                last_sequence: found.state.last_sequence,
                erasable: !found.config.deny_delete,
            })
        }
        Err(e)
            if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(ref j)
                if j.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
        {
            match js.create_stream(wanted).await {
                Ok(created) => Ok(Found {
                    created: created.cached_info().created.to_string(),
                    last_sequence: 0,
                    erasable: true,
                }),
                Err(e) => {
                    let code = match e.kind() {
                        jetstream::context::CreateStreamErrorKind::JetStream(j) => Some(j.error_code()),
                        _ => None,
                    };
                    let why = format!("cannot create the stream {name}: {e}");
                    // What no retry changes: another stream holds the subjects or the name, or
                    // the servers cannot keep that many replicas at all.
                    match code {
                        Some(
                            ErrorCode::STREAM_SUBJECT_OVERLAP
                            | ErrorCode::STREAM_NAME_EXIST
                            | ErrorCode::STREAM_REPLICAS_NOT_SUPPORTED,
                        ) => Err(Unopened::Refused(StoreError::Nats(why))),
                        Some(code) if without_jetstream(code) => {
                            Err(Unopened::Refused(StoreError::Nats(why)))
                        }
                        _ => Err(Unopened::Waiting(why)),
                    }
                }
            }
        }
        Err(e) => {
            let why = format!("cannot reach the stream {name}: {e}");
            match e.kind() {
                jetstream::context::GetStreamErrorKind::JetStream(j) if without_jetstream(j.error_code()) => {
                    Err(Unopened::Refused(StoreError::Nats(why)))
                }
                _ => Err(Unopened::Waiting(why)),
            }
        }
    }
}

/// Whether `code` says the servers (or the account) have no JetStream: a configuration error.
fn without_jetstream(code: jetstream::ErrorCode) -> bool {
    code == jetstream::ErrorCode::JETSTREAM_NOT_ENABLED
        || code == jetstream::ErrorCode::JETSTREAM_NOT_ENABLED_FOR_ACCOUNT
}
