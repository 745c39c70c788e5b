//! Reaching the stream: a task tries until the stream is reached and checked, or the servers
//! refuse what the relay needs; the log watches where that stands ([`Linking`]) and keeps what
//! it reached ([`Link`]).

use super::health::{watch_health, Health};
use super::stream::{self, ensure_stream, text_cap, NatsSettings, Unopened};
use crate::store::StoreError;
use async_nats::jetstream;
use slog::{error, info, warn, Logger};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::watch;

/// What a record holds beside its text (the names, the numbers, the encoding), at most.
const RECORD_OVERHEAD: usize = 4096;

/// How long one try waits for the stream to answer: a request to a cluster electing its leaders
/// can hang for the client's whole timeout (5 s) where the next request would be answered.
const STREAM_BOUND: Duration = Duration::from_secs(2);
/// The longest pause between two tries to reach the stream: short, so an instance is ready soon
/// after its servers are (each try is one log line).
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// The largest text a post may carry, and whether the user chose it (another value than the
/// default): a `max_payload` below its record is then refused, where the default is lowered to
/// what the servers take.
#[derive(Debug, Clone, Copy)]
pub struct TextLimit {
    pub bytes: usize,
    pub explicit: bool,
}

/// Where reaching the stream stands.
#[derive(Debug, Clone)]
pub(super) enum Linking {
    /// Not reached yet: why.
    Waiting(String),
    Linked,
    /// The servers refuse what the relay needs.
    Refused(StoreError),
    Closed,
}

/// The stream, once reached and checked.
pub(super) struct Link {
    pub(super) js: jetstream::Context,
    /// The stream and when it was created ([`EventLog::origin`]).
    pub(super) origin: String,
    /// The stream's last sequence when it was reached: views below it are behind.
    pub(super) last_then: u64,
    /// What the servers' `max_payload` leaves for a post's text, when that is below the
    /// configured `max_text_bytes` (left at its default).
    pub(super) text_cap: Option<usize>,
    /// Whether the stream lets records be erased (one made by an earlier relay does not).
    pub(super) erasable: bool,
}

/// Tries to reach the stream until it is reached or refused, pausing longer each time (up to
/// [`MAX_PAUSE`]) and logging each failed try with why; then checks its health for as long as
/// the log runs.
pub(super) async fn reach(
    config: NatsSettings,
    limit: TextLimit,
    cell: Arc<OnceLock<Link>>,
    linking: Arc<watch::Sender<Linking>>,
    health: Arc<Health>,
    logger: Logger,
) {
    let mut client = None;
    let mut pause = Duration::from_millis(250);
    for attempt in 1u64.. {
        match reach_once(&config, limit, &mut client).await {
            Ok(link) => {
                if attempt > 1 {
                    info!(logger, "reached the NATS stream"; "stream" => &config.stream, "tries" => attempt);
                }
                if !link.erasable {
                    let stream = &config.stream;
                    warn!(logger, "the NATS stream was made by an earlier relay, with deletes denied: redactions and \
                        retention hide messages but cannot erase their records from it. To move to a stream that can, \
                        with every relay stopped: `claude-codex-relay export > {stream}.jsonl`, then \
                        `CLAUDE_CODEX_NATS_STREAM={stream}2 claude-codex-relay import {stream}.jsonl`, then start the relays \
                        with nats_stream {stream}2 (docs/scale-out.md, \"Erasure\")";
                        "stream" => stream);
                }
                if let Some(cap) = link.text_cap {
                    warn!(logger, "the NATS servers' max_payload is below the default max_text_bytes: posts are capped";
                        "max_text_bytes" => cap);
                }
                health.known_last.fetch_max(link.last_then, Ordering::Relaxed);
                let js = link.js.clone();
                let _ = cell.set(link);
                settle(&linking, Linking::Linked);
                return watch_health(js, config.stream, health, logger).await;
            }
            Err(Unopened::Refused(e)) => {
                error!(logger, "the NATS servers refuse what the relay needs"; "error" => %e);
                settle(&linking, Linking::Refused(e));
                return;
            }
            Err(Unopened::Waiting(why)) => {
                warn!(logger, "the NATS stream is not reachable; trying again";
                    "try" => attempt, "in_ms" => pause.as_millis() as u64, "why" => &why);
                settle(&linking, Linking::Waiting(why));
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// Moves `linking` on from waiting (a closed log stays closed).
pub(super) fn settle(linking: &watch::Sender<Linking>, to: Linking) {
    linking.send_if_modified(|state| match state {
        Linking::Waiting(_) => {
            *state = to;
            true
        }
        _ => false,
    });
}

/// One try to reach and check the stream; the client, once connected, is kept for the next
/// (it reconnects by itself).
async fn reach_once(
    config: &NatsSettings,
    limit: TextLimit,
    client: &mut Option<async_nats::Client>,
) -> Result<Link, Unopened> {
    let connected = match client {
        Some(connected) => connected.clone(),
        None => client.insert(stream::connect(config).await?).clone(),
    };
    let text_cap = text_cap(&connected, RECORD_OVERHEAD, limit.bytes);
    if let Some(cap) = text_cap.filter(|_| limit.explicit) {
        return Err(Unopened::Refused(StoreError::Nats(format!(
            "the NATS servers' max_payload is {} bytes, below the largest post ({} bytes with max_text_bytes); \
             raise max_payload in the servers' configuration or lower max_text_bytes",
            cap + RECORD_OVERHEAD,
            limit.bytes + RECORD_OVERHEAD
        ))));
    }
    let js = jetstream::new(connected);
    let answered = tokio::time::timeout(STREAM_BOUND, ensure_stream(&js, config)).await;
    let found = answered.unwrap_or_else(|_| {
        Err(Unopened::Waiting(format!("the stream {} did not answer within {STREAM_BOUND:?}", config.stream)))
    })?;
    Ok(Link {
        js,
        origin: format!("the NATS stream {} created {}", config.stream, found.created),
        last_then: found.last_sequence,
        text_cap,
        erasable: found.erasable,
    })
}
