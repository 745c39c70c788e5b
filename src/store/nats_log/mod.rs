//! The event log in a NATS JetStream stream: the backend for several relay instances in front
//! of one replicated log (see docs/scale-out.md). JetStream stores and replicates the log; this
//! only maps the `EventLog` interface onto it:
//! - one stream (default `RELAY`), file storage, no limits, `deny_delete` and `deny_purge`;
//!   an existing stream whose configuration differs is refused, never changed;
//! - a message of channel C goes to the subject `relay.<stream>.<C encoded>` (see [`subject`]);
//! - the stream sequence is the message id, shared by every instance; the payload is the sled
//!   log's versioned record with id 0, numbered by its sequence when read;
//! - acknowledged means JetStream's PubAck: a post is answered only with it. Each post carries
//!   a `Nats-Msg-Id`, reused by every retry, so a retry after a lost acknowledgement is stored
//!   once (the stream's duplicate window is longer than the retries).
//!
//! The NATS client is async; the interface is called from plain threads too (recovery, the
//! archive, export), so the backend runs its own small runtime and waits on it through a
//! channel, which works from any thread.

#[cfg(test)]
pub(crate) mod tests;

use super::event_log::{Appending, EventLog, Follower};
use super::StoreError;
use crate::event::{self, Event, NewEvent};

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use slog::{error, warn, Logger};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

/// How long a post keeps retrying (with the same Msg-Id) before it is answered "not
/// acknowledged".
pub const PUBLISH_BOUND: Duration = Duration::from_secs(10);
/// How long one attempt waits for its acknowledgement.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// The stream's duplicate window: longer than every retry of one post.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// The oldest server that can sync every write and has what this backend asks of a stream.
const MIN_SERVER: (u64, u64) = (2, 10);
/// Events handed to a follower at once, at most.
const FOLLOW_BATCH: usize = 1024;
/// How long a follower's consumer may deliver nothing while the stream is known to hold more
/// before it is made again (a consumer on a server that stopped answering stalls until its
/// heartbeats are missed, which takes far longer).
const STALL_AFTER: Duration = Duration::from_secs(1);
/// The most messages one pull request of a read asks for.
const READ_BATCH: usize = 4096;
/// How often the stream's health is checked, and how long one check may take.
const HEALTH_EVERY: Duration = Duration::from_secs(1);
/// How long the stream must have been unreachable (and a post unacknowledged) before posts are
/// refused at once instead of retried: longer than a leader election after the loss of one
/// server. Also how recently a follower must have been heard from to count toward a quorum.
const FAIL_FAST_AFTER: Duration = Duration::from_secs(5);

/// How to reach the stream.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// Servers, for example `nats://10.0.0.1:4222`.
    pub urls: Vec<String>,
    pub stream: String,
    pub replicas: usize,
    pub token: Option<String>,
    pub creds_file: Option<PathBuf>,
    pub tls_ca: Option<PathBuf>,
    /// The largest record a post may make; the servers' `max_payload` must allow it.
    pub max_record_bytes: usize,
}

pub(crate) struct NatsLog {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    js: jetstream::Context,
    stream: String,
    prefix: String,
    /// The stream and when it was created ([`EventLog::origin`]).
    origin: String,
    /// Makes this instance's Msg-Ids unique: its start time and pid.
    instance: String,
    posts: AtomicU64,
    closed: AtomicBool,
    publishing: TaskTracker,
    /// The tasks feeding the followers (and the health check).
    followers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    follower_threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    health: Arc<Health>,
    logger: Logger,
}

fn nats_error(doing: &str, e: impl std::fmt::Display) -> StoreError {
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

/// The subject a message of `channel` is published to.
pub fn subject(stream: &str, channel: &str) -> String {
    format!("relay.{stream}.{}", subject_token(channel))
}

/// The stream the relay needs.
fn wanted(config: &NatsConfig) -> stream::Config {
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
fn differences(found: &stream::Config, wanted: &stream::Config) -> Vec<String> {
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
fn major_minor(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.trim_start_matches('v').split(['.', '-']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// A stored event, numbered by its stream sequence.
fn numbered(sequence: u64, payload: &[u8]) -> Result<Event, StoreError> {
    let event = event::decode(0, payload)
        .map_err(|e| StoreError::corrupt(format!("stream message {sequence}: {e}")))?;
    Ok(event.with_id(sequence))
}

impl NatsLog {
    /// Connects, checks the server and the stream (creating the stream when there is none).
    pub(crate) fn connect(config: &NatsConfig, logger: Logger) -> Result<NatsLog, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("relay-nats")
            .enable_all()
            .build()
            .map_err(|e| StoreError::io("cannot start the NATS client's threads", e))?;
        let handle = runtime.handle().clone();
        let (js, stream, created) = run(&handle, open(config.clone()))?;
        let instance = format!("{:x}-{}", (now_secs() * 1e6) as u64, std::process::id());
        let health = Arc::new(Health {
            down: Mutex::new(None),
            publish_failed: AtomicBool::new(false),
            known_last: AtomicU64::new(0),
            stopped: Mutex::new(None),
        });
        let monitor = handle.spawn(watch_health(js.clone(), stream.clone(), health.clone(), logger.clone()));
        Ok(NatsLog {
            runtime: Some(runtime),
            handle,
            js,
            prefix: format!("relay.{stream}."),
            origin: format!("the NATS stream {stream} created {created}"),
            stream,
            instance,
            posts: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            publishing: TaskTracker::new(),
            followers: Mutex::new(vec![monitor]),
            follower_threads: Mutex::new(Vec::new()),
            health,
            logger,
        })
    }

    fn run<T: Send + 'static>(&self, work: impl Future<Output = T> + Send + 'static) -> T {
        run(&self.handle, work)
    }

    /// Stores an exported event under its own id, which must be the stream's next sequence:
    /// published on condition that the stream's last sequence is the id before it (so a
    /// concurrent post cannot shift it), with a Msg-Id naming the id (so a retry is stored once).
    pub(crate) fn import(&self, event: Event) -> Result<(), StoreError> {
        let id = event.id();
        let subject = format!("{}{}", self.prefix, subject_token(event.target()));
        let payload = bytes::Bytes::from(event::encode(&event.with_id(0)));
        let js = self.js.clone();
        let stored = self.run(async move {
            let message = jetstream::message::PublishMessage::build()
                .payload(payload)
                .message_id(format!("import-{id}"))
                .expected_last_sequence(id - 1);
            let ack = js.send_publish(subject, message).await.map_err(|e| nats_error("importing", e))?;
            ack.await.map_err(|e| nats_error(&format!("importing id {id}"), e))
        })?;
        if stored.sequence != id {
            return Err(StoreError::Nats(format!(
                "id {id} was stored as {}; the stream was not empty",
                stored.sequence
            )));
        }
        Ok(())
    }

    fn stopped(&self) -> Option<String> {
        self.health.stopped.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Why the stream does not answer as posts need, if it does not.
    fn down(&self) -> Option<String> {
        self.health.down.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|o| o.why.clone())
    }

    /// Why a post is refused at once without being sent, if it is: the health check has seen
    /// the stream down for [`FAIL_FAST_AFTER`] and the last post sent was not acknowledged
    /// either. The health check alone is not enough: after an election a server can report no
    /// leader, or not answer info requests, for seconds while posts go through.
    fn refusing(&self) -> Option<String> {
        let down = self.health.down.lock().unwrap_or_else(|p| p.into_inner());
        down.as_ref()
            .filter(|o| o.since.elapsed() >= FAIL_FAST_AFTER)
            .filter(|_| self.health.publish_failed.load(Ordering::Relaxed))
            .map(|o| o.why.clone())
    }
}

/// The stream, with its state now (`cached_info`: one info request fetches both).
async fn stream_info(js: &jetstream::Context, name: &str) -> Result<stream::Stream, StoreError> {
    js.get_stream(name).await.map_err(|e| nats_error(&format!("cannot reach the stream {name}"), e))
}

/// Runs `work` on the backend's runtime and waits for it, from any thread.
fn run<T: Send + 'static>(
    handle: &tokio::runtime::Handle,
    work: impl Future<Output = T> + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = tx.send(work.await);
    });
    rx.recv().expect("the NATS runtime runs until the log is dropped")
}

/// Connects and checks the server and the stream, creating the stream when there is none.
/// Returns the stream's name and when it was created.
async fn open(config: NatsConfig) -> Result<(jetstream::Context, String, String), StoreError> {
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
    if info.max_payload < config.max_record_bytes {
        return Err(StoreError::Nats(format!(
            "the NATS servers' max_payload is {} bytes, below the largest post ({} bytes with max_text_bytes); \
             raise max_payload in the servers' configuration or lower max_text_bytes",
            info.max_payload, config.max_record_bytes
        )));
    }
    let js = jetstream::new(client);
    let created = ensure_stream(&js, &config).await?;
    Ok((js, config.stream, created))
}

/// The stream the relay needs, created when there is none; returns when it was created. A
/// request that fails is tried again for up to [`PUBLISH_BOUND`] (a stream just deleted, an
/// election under way); a stream with another configuration is refused at once.
async fn ensure_stream(js: &jetstream::Context, config: &NatsConfig) -> Result<String, StoreError> {
    let (name, wanted) = (&config.stream, wanted(config));
    let deadline = Instant::now() + PUBLISH_BOUND;
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

/// Why a post to the stream would not be acknowledged now, as its leader sees its replicas: a
/// leader that lost its followers answers for a while before it steps down, so its answering
/// alone does not show a quorum.
fn quorum_problem(name: &str, info: &stream::Info) -> Option<String> {
    let cluster = info.cluster.as_ref()?;
    if cluster.leader.is_none() {
        return Some(format!("the stream {name} has no leader: no quorum of its servers"));
    }
    let replicas = cluster.replicas.len() + 1;
    let needed = replicas / 2 + 1;
    // A follower counts when it is caught up, or was heard from lately (one that lags behind
    // under load). Neither alone will do: after a leader change the new leader can report a
    // caught-up follower as not heard from for a long while (seen with a SIGSTOPped leader).
    let seen = |p: &&stream::PeerInfo| !p.offline && (p.current || p.active < FAIL_FAST_AFTER);
    let up = 1 + cluster.replicas.iter().filter(seen).count();
    (up < needed).then(|| {
        format!("only {up} of the {replicas} servers of the stream {name} answer; a post needs a quorum of {needed}")
    })
}

/// A time the stream has not answered as posts need.
struct Outage {
    since: Instant,
    why: String,
}

/// What the health check keeps up to date for the log.
struct Health {
    /// Since when, and why, the stream has not answered (`None` while it does).
    down: Mutex<Option<Outage>>,
    /// Whether the last post sent went unacknowledged.
    publish_failed: AtomicBool,
    /// The highest sequence known to be in the stream: from the stream's state and this
    /// instance's acknowledgements.
    known_last: AtomicU64,
    /// Why following the stream stopped for good (a damaged record), if it did: the local
    /// views would never show another post, so the instance takes none and is not ready.
    stopped: Mutex<Option<String>>,
}

/// Asks the stream for its state every [`HEALTH_EVERY`]: it answers only while a quorum of its
/// replicas has a leader. Records since when it has not, and why, and its last sequence.
async fn watch_health(js: jetstream::Context, name: String, health: Arc<Health>, logger: Logger) {
    loop {
        let asked = tokio::time::timeout(HEALTH_EVERY, stream_info(&js, &name)).await;
        let problem = match asked {
            Ok(Ok(stream)) => {
                let info = stream.cached_info();
                health.known_last.fetch_max(info.state.last_sequence, Ordering::Relaxed);
                quorum_problem(&name, info)
            }
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!(
                "the stream {name} did not answer within {HEALTH_EVERY:?}: no quorum of its servers, or none reachable"
            )),
        };
        {
            let mut down = health.down.lock().unwrap_or_else(|p| p.into_inner());
            match (problem, down.is_some()) {
                (None, true) => {
                    warn!(logger, "the NATS stream takes posts again"; "stream" => &name);
                    *down = None;
                }
                (Some(why), false) => {
                    warn!(logger, "the NATS stream cannot take posts"; "stream" => &name, "why" => &why);
                    *down = Some(Outage { since: Instant::now(), why });
                }
                _ => {}
            }
        }
        tokio::time::sleep(HEALTH_EVERY).await;
    }
}

/// Publishes one record, retrying with the same Msg-Id until it is acknowledged or
/// [`PUBLISH_BOUND`] passes. Returns its sequence.
async fn publish(
    js: jetstream::Context,
    subject: String,
    payload: bytes::Bytes,
    id: String,
) -> Result<u64, StoreError> {
    let deadline = Instant::now() + PUBLISH_BOUND;
    let mut last_error = String::new();
    while Instant::now() < deadline {
        let message = jetstream::message::PublishMessage::build().payload(payload.clone()).message_id(&id);
        let attempt = async {
            let ack = js.send_publish(subject.clone(), message).await.map_err(|e| e.to_string())?;
            ack.await.map_err(|e| e.to_string())
        };
        match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt).await {
            Ok(Ok(ack)) => return Ok(ack.sequence),
            Ok(Err(e)) => last_error = e,
            Err(_) => last_error = format!("no acknowledgement within {ATTEMPT_TIMEOUT:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(StoreError::Unacknowledged(format!(
        "NATS JetStream: no acknowledgement of the post within {PUBLISH_BOUND:?} (is a quorum of the stream's servers up?): {last_error}"
    )))
}

impl EventLog for NatsLog {
    fn append(&self, event: NewEvent) -> Result<Appending, StoreError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(StoreError::Closed);
        }
        if let Some(why) = self.stopped() {
            return Err(StoreError::Failed(why));
        }
        if let Some(why) = self.refusing() {
            return Err(StoreError::Nats(why));
        }
        let subject = format!("{}{}", self.prefix, subject_token(event.target()));
        let stored = event.stamp(0, now_secs());
        let payload = bytes::Bytes::from(event::encode(&stored));
        let id = format!("{}-{}", self.instance, self.posts.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        let (js, health) = (self.js.clone(), self.health.clone());
        self.handle.spawn(self.publishing.track_future(async move {
            let answer = publish(js, subject, payload, id).await.map(|sequence| {
                health.known_last.fetch_max(sequence, Ordering::Relaxed);
                // An acknowledgement shows the stream takes posts, whatever the health check
                // last saw (its info requests can fail for a while after an election).
                *health.down.lock().unwrap_or_else(|p| p.into_inner()) = None;
                stored.with_id(sequence)
            });
            health.publish_failed.store(answer.is_err(), Ordering::Relaxed);
            let _ = tx.send(answer);
        }));
        Ok(rx)
    }

    fn read_from(&self, from: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let (js, name) = (self.js.clone(), self.stream.clone());
        self.run(async move { retrying(|| read(&js, &name, from, limit)).await })
    }

    fn last_id(&self) -> Result<u64, StoreError> {
        let (js, name) = (self.js.clone(), self.stream.clone());
        self.run(async move {
            retrying(|| async { Ok(stream_info(&js, &name).await?.cached_info().state.last_sequence) }).await
        })
    }

    fn follow(&self, after: u64, mut follower: Follower) -> Result<(), StoreError> {
        // The follower writes to disk: it runs on a thread of its own, fed in batches.
        let (tx, rx) = mpsc::channel::<Event>();
        let thread = std::thread::Builder::new()
            .name("relay-nats-follower".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter().take(FOLLOW_BATCH - 1));
                    follower(batch);
                }
            })
            .map_err(|e| StoreError::io("cannot start the NATS follower thread", e))?;
        let (js, name, logger) = (self.js.clone(), self.stream.clone(), self.logger.clone());
        let health = self.health.clone();
        let task = self.handle.spawn(async move {
            let mut next = after + 1;
            loop {
                let consumed = async {
                    let stream = stream_info(&js, &name).await?;
                    let mut messages = ordered(&stream, next).await?;
                    loop {
                        let Ok(message) = tokio::time::timeout(STALL_AFTER, messages.next()).await else {
                            if health.known_last.load(Ordering::Relaxed) >= next {
                                return Err(StoreError::Nats(format!(
                                    "the stream's consumer delivered nothing for {STALL_AFTER:?} while the stream holds {next}"
                                )));
                            }
                            continue;
                        };
                        let Some(message) = message else { break };
                        let message = message.map_err(|e| nats_error("following the stream", e))?;
                        let sequence =
                            message.info().map_err(|e| nats_error("reading a stream message", e))?.stream_sequence;
                        if sequence < next {
                            continue;
                        }
                        let event = numbered(sequence, &message.payload)?;
                        next = sequence + 1;
                        if tx.send(event).is_err() {
                            return Ok(true);
                        }
                    }
                    Ok::<_, StoreError>(false)
                };
                match consumed.await {
                    // The follower is gone (the store closed).
                    Ok(true) => return,
                    Ok(false) => warn!(logger, "the stream's consumer ended; following again"; "from" => next),
                    Err(e @ StoreError::Corrupt { .. }) => {
                        error!(logger, "following the stream stopped"; "error" => %e);
                        *health.stopped.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some(format!("following the stream stopped at {next}: {e}"));
                        return;
                    }
                    Err(e) => warn!(logger, "following the stream failed; trying again"; "error" => %e, "from" => next),
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        self.followers.lock().unwrap_or_else(|p| p.into_inner()).push(task);
        self.follower_threads.lock().unwrap_or_else(|p| p.into_inner()).push(thread);
        Ok(())
    }

    fn origin(&self) -> Option<String> {
        Some(self.origin.clone())
    }

    fn ready(&self) -> Result<(), String> {
        match self.stopped().or_else(|| self.down()) {
            Some(why) => Err(format!("NATS JetStream: {why}")),
            None => Ok(()),
        }
    }

    fn close(&self) -> Result<(), StoreError> {
        self.closed.store(true, Ordering::SeqCst);
        let publishing = self.publishing.clone();
        publishing.close();
        self.run(async move { publishing.wait().await });
        for task in self.followers.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            task.abort();
        }
        // Without its feed, each follower thread finishes its batch and ends, dropping the
        // follower, as the sled log's close does.
        for thread in self.follower_threads.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            let _ = thread.join();
        }
        Ok(())
    }
}

impl Drop for NatsLog {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Allowed anywhere, an async context included.
            runtime.shutdown_background();
        }
    }
}

/// Runs `attempt` until it succeeds, fails for good (damage), or [`PUBLISH_BOUND`] passes: a
/// read during a leader election fails for a few seconds, then works.
async fn retrying<T, F: Future<Output = Result<T, StoreError>>>(
    attempt: impl Fn() -> F,
) -> Result<T, StoreError> {
    let deadline = Instant::now() + PUBLISH_BOUND;
    loop {
        match attempt().await {
            Err(StoreError::Nats(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            done => return done,
        }
    }
}

/// Up to `limit` events from `from`, as far as the stream's last one now. Each read has a
/// consumer of its own, deleted when the read ends (the server's inactivity threshold removes
/// one a failed read leaves behind), so frequent reads do not pile consumers up on the stream.
async fn read(
    js: &jetstream::Context,
    name: &str,
    from: u64,
    limit: usize,
) -> Result<Vec<Event>, StoreError> {
    let stream = stream_info(js, name).await?;
    let last = stream.cached_info().state.last_sequence;
    let from = from.max(1);
    if from > last || limit == 0 {
        return Ok(Vec::new());
    }
    let upto = last.min(from.saturating_add(limit as u64 - 1));
    let config = consumer::pull::Config {
        deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: from },
        ack_policy: consumer::AckPolicy::None,
        inactive_threshold: Duration::from_secs(30),
        memory_storage: true,
        num_replicas: 1,
        ..Default::default()
    };
    let consumer = stream
        .create_consumer(config)
        .await
        .map_err(|e| nats_error("cannot create a consumer of the stream", e))?;
    let events = read_upto(&consumer, name, from, upto).await;
    // A consumer that cannot be deleted now goes when its inactivity threshold passes.
    let _ = stream.delete_consumer(&consumer.cached_info().name).await;
    events
}

/// The events `consumer` delivers, from the one numbered `from` up to the one numbered `upto`.
async fn read_upto(
    consumer: &consumer::PullConsumer,
    name: &str,
    from: u64,
    upto: u64,
) -> Result<Vec<Event>, StoreError> {
    let mut events: Vec<Event> = Vec::new();
    let mut next = from;
    while next <= upto {
        let wanted = usize::try_from(upto - next + 1).unwrap_or(usize::MAX).min(READ_BATCH);
        let mut batch = consumer
            .batch()
            .max_messages(wanted)
            .expires(Duration::from_secs(10))
            .messages()
            .await
            .map_err(|e| nats_error(&format!("reading the stream {name}"), e))?;
        let before = events.len();
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| nats_error(&format!("reading the stream {name}"), e))?;
            let sequence =
                message.info().map_err(|e| nats_error("reading a stream message", e))?.stream_sequence;
            if (next..=upto).contains(&sequence) {
                events.push(numbered(sequence, &message.payload)?);
                next = sequence + 1;
            }
        }
        if events.len() == before {
            return Err(StoreError::Nats(format!("reading the stream {name}: no message within 10 s")));
        }
    }
    Ok(events)
}

/// An ordered consumer of the whole stream from `from`.
async fn ordered(stream: &stream::Stream, from: u64) -> Result<consumer::pull::Ordered, StoreError> {
    let config = consumer::pull::OrderedConfig {
        deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: from },
        ..Default::default()
    };
    let consumer = stream
        .create_consumer(config)
        .await
        .map_err(|e| nats_error("cannot create a consumer of the stream", e))?;
    consumer.messages().await.map_err(|e| nats_error("cannot read the stream", e))
}
