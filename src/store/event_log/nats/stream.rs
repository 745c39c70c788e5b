//! The stream itself: the settings to reach it, the configuration the relay needs of it
//! (created when missing, refused, never changed, when it differs), the server's checks on
//! connecting, subjects, and records numbered by their sequence.

use crate::event::{self, Event};
use crate::store::StoreError;
use async_nats::jetstream::{self, stream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

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
        deny_delete: true,
        deny_purge: true,
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
    check(found.deny_delete, "deny_delete", found.deny_delete.to_string(), "true");
    check(found.deny_purge, "deny_purge", found.deny_purge.to_string(), "true");
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

/// Connects and checks the server and the stream, creating the stream when there is none.
/// Returns the stream's name and when it was created.
pub(super) async fn open(
    config: NatsSettings,
    max_record_bytes: usize,
) -> Result<(jetstream::Context, String, String), StoreError> {
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
            .map_err(|e| nats_error(&format!("nats_creds_file {}", path.display()), e))?;
    }
    if let Some(path) = &config.tls_ca {
        options = options.add_root_certificates(path.clone()).require_tls(true);
    }
    let urls = config.urls.join(",");
    let client = options
        .connect(config.urls.as_slice())
        .await
        .map_err(|e| nats_error(&format!("cannot connect to nats_url {urls}"), e))?;
    let info = client.server_info();
    match major_minor(&info.version) {
        Some(v) if v >= MIN_SERVER => {}
        _ => {
            return Err(StoreError::Nats(format!(
                "the NATS server at {urls} is version {:?}; the relay needs {}.{} or newer (older servers cannot sync every write)",
                info.version, MIN_SERVER.0, MIN_SERVER.1
            )))
        }
    }
    if info.max_payload < max_record_bytes {
        return Err(StoreError::Nats(format!(
            "the NATS servers' max_payload is {} bytes, below the largest post ({} bytes with max_text_bytes); \
             raise max_payload in the servers' configuration or lower max_text_bytes",
            info.max_payload, max_record_bytes
        )));
    }
    let js = jetstream::new(client);
    let created = ensure_stream(&js, &config).await?;
    Ok((js, config.stream, created))
}

/// How long opening keeps asking for the stream (or to create it) while the servers answer
/// with a failure or not at all. A cluster that just elected its meta leader, or that is busy
/// deleting a stream of the same name, can time out creation requests for longer than a post's
/// bound (seen in CI: "jetstream request timed out" twice within 10 s, on a loaded machine).
const STREAM_READY_BOUND: Duration = Duration::from_secs(30);

/// The stream the relay needs, created when there is none; returns when it was created. A
/// request that fails is tried again for up to [`STREAM_READY_BOUND`] (a stream just deleted,
/// an election under way); a stream with another configuration is refused at once.
pub(super) async fn ensure_stream(
    js: &jetstream::Context,
    config: &NatsSettings,
) -> Result<String, StoreError> {
    let (name, wanted) = (&config.stream, wanted(config));
    let deadline = Instant::now() + STREAM_READY_BOUND;
    loop {
        let failed = match js.get_stream(name).await {
            Ok(existing) => {
                let found = existing.cached_info();
                let differs = differences(&found.config, &wanted);
                if !differs.is_empty() {
                    return Err(StoreError::Nats(format!(
                        "the stream {name} exists with another configuration, which the relay does not change: {}",
                        differs.join("; ")
                    )));
                }
                return Ok(found.created.to_string());
            }
            Err(e)
                if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(ref j)
                    if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
            {
                match js.create_stream(wanted.clone()).await {
                    Ok(created) => return Ok(created.cached_info().created.to_string()),
                    Err(e) => nats_error(&format!("cannot create the stream {name}"), e),
                }
            }
            Err(e) => nats_error(&format!("cannot reach the stream {name}"), e),
        };
        if Instant::now() >= deadline {
            return Err(failed);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
