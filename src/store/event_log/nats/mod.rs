//! The event log in a NATS JetStream stream: the backend for several relay instances in front
//! of one replicated log (see docs/scale-out.md). JetStream stores and replicates the log; this
//! only maps the `EventLog` interface onto it:
//! - one stream (default `RELAY`), file storage, no limits; an existing stream whose
//!   configuration differs is refused, never changed (but for one an earlier relay made with
//!   deletes denied: it is used, without erasure);
//! - a message of channel C goes to the subject `relay.<stream>.<C encoded>` (see [`subject`]),
//!   a redaction in it to that subject with `.r` added;
//! - records of redacted and expired messages are erased (`erase`), and reads put the
//!   tombstones of redacted ones back in their gaps;
//! - the stream sequence is the message id, shared by every instance; the payload is the sled
//!   log's versioned record with id 0, numbered by its sequence when read;
//! - acknowledged means JetStream's PubAck: a post is answered only with it. Each post carries
//!   a `Nats-Msg-Id`, reused by every retry, so a retry after a lost acknowledgement is stored
//!   once (the stream's duplicate window is longer than the retries).
//!
//! The NATS client is async; the interface is called from plain threads too (recovery, the
//! archive, export), so the backend runs its own small runtime and waits on it through a
//! channel, which works from any thread.
//!
//! The files: `stream` (the settings, the stream's configuration, connecting and checking),
//! `link` (reaching the stream, patiently), `health` (the health check that makes posts fail
//! fast without a quorum), `read` (reads and the followers' consumers), `erase` (erasing
//! records, and the tombstones in their gaps); this one is the log itself: posts, follows,
//! close.

mod erase;
mod health;
mod link;
mod read;
mod stream;
#[cfg(test)]
pub(crate) mod tests;

pub use link::TextLimit;
pub use stream::{subject, NatsSettings};

use crate::event::{self, Event, NewEvent};
use crate::store::event_log::{Appending, EventLog, Follower, Forgotten};
use crate::store::StoreError;
use async_nats::jetstream;
use erase::Tombstones;
use futures_util::{FutureExt, StreamExt};
use health::{Health, FAIL_FAST_AFTER};
use link::{reach, settle, Link, Linking};
use read::{bounded, ordered, read, retrying, set_up_bound, Read};
use slog::{error, warn, Logger};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use stream::{event_subject, nats_error, numbered, stream_info, PUBLISH_BOUND};
use tokio::sync::{oneshot, watch};
use tokio_util::task::TaskTracker;

/// How long one attempt waits for its acknowledgement.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Events handed to a follower at once, at most.
const FOLLOW_BATCH: usize = 1024;
/// How long a follower's consumer may deliver nothing while the stream is known to hold more
/// before it is made again (a consumer on a server that stopped answering stalls until its
/// heartbeats are missed, which takes far longer).
const STALL_AFTER: Duration = Duration::from_secs(1);

/// How long a stalled follower waits to learn whether the stream holds more ([`holds`]).
const HOLDS_BOUND: Duration = Duration::from_millis(250);

/// How long a close waits for erasures under way (those of redactions are done again at the
/// next start; those of expired messages are not).
const ERASE_AT_CLOSE: Duration = Duration::from_secs(5);

/// How long a server waits for the stream before it serves from its local views while it goes on
/// trying ([`NatsLog::serve`]), and how long a command waits before it gives up
/// ([`NatsLog::connect`]).
const SERVE_PATIENCE: Duration = Duration::from_secs(2);
/// A cluster just started (or busy deleting a stream of the same name) can time out stream
/// requests for over 10 s (seen in CI on a loaded machine).
const COMMAND_PATIENCE: Duration = Duration::from_secs(30);

pub(crate) struct NatsLog {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    link: Arc<OnceLock<Link>>,
    linking: Arc<watch::Sender<Linking>>,
    stream: String,
    prefix: String,
    /// Makes this instance's Msg-Ids unique: its start time and pid.
    instance: String,
    posts: AtomicU64,
    closed: AtomicBool,
    publishing: TaskTracker,
    /// Erasures under way: a close gives them [`ERASE_AT_CLOSE`] to finish.
    erasing: TaskTracker,
    /// The tasks feeding the followers (and the one that reaches the stream, then checks its
    /// health).
    followers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    follower_threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    health: Arc<Health>,
    /// The redactions read to fill gaps with tombstones.
    tombstones: Arc<Tombstones>,
    /// Whether the log said it cannot erase (a stream that denies deletes), once.
    said_unerasable: AtomicBool,
    logger: Logger,
}

impl NatsLog {
    /// Connects for a command, and checks the server and the stream (creating the stream when
    /// there is none). Servers that cannot be reached within [`COMMAND_PATIENCE`] are an error.
    /// `max_text_bytes`: the largest text a post may carry; the servers' `max_payload` must take
    /// its record (0 for a command that only reads).
    pub(crate) fn connect(
        config: &NatsSettings,
        max_text_bytes: usize,
        logger: Logger,
    ) -> Result<NatsLog, StoreError> {
        let limit = TextLimit { bytes: max_text_bytes, explicit: true };
        NatsLog::open(config, limit, COMMAND_PATIENCE, false, logger)
    }

    /// Connects for a server: as [`NatsLog::connect`], except that servers not reachable yet, or
    /// a cluster without a leader yet, are not an error. After [`SERVE_PATIENCE`] the log is
    /// returned unlinked ([`NatsLog::linked`]) and goes on trying, with backoff, as long as it
    /// runs; meanwhile it refuses appends at once and is not ready.
    pub(crate) fn serve(
        config: &NatsSettings,
        limit: TextLimit,
        logger: Logger,
    ) -> Result<NatsLog, StoreError> {
        NatsLog::open(config, limit, SERVE_PATIENCE, true, logger)
    }

    fn open(
        config: &NatsSettings,
        limit: TextLimit,
        patience: Duration,
        keep_trying: bool,
        logger: Logger,
    ) -> Result<NatsLog, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("relay-nats")
            .enable_all()
            .build()
            .map_err(|e| StoreError::io("cannot start the NATS client's threads", e))?;
        let handle = runtime.handle().clone();
        let health = Arc::new(Health {
            down: Mutex::new(None),
            publish_failed: AtomicBool::new(false),
            known_last: AtomicU64::new(0),
            stopped: Mutex::new(None),
        });
        let log = NatsLog {
            runtime: Some(runtime),
            handle: handle.clone(),
            link: Arc::default(),
            linking: Arc::new(watch::Sender::new(Linking::Waiting("connecting".into()))),
            prefix: format!("relay.{}.", config.stream),
            stream: config.stream.clone(),
            instance: format!("{:x}-{}", (crate::values::unix_now() * 1e6) as u64, std::process::id()),
            posts: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            publishing: TaskTracker::new(),
            erasing: TaskTracker::new(),
            followers: Mutex::new(Vec::new()),
            follower_threads: Mutex::new(Vec::new()),
            health: health.clone(),
            tombstones: Arc::default(),
            said_unerasable: AtomicBool::new(false),
            logger: logger.clone(),
        };
        let reaching = handle.spawn(reach(
            config.clone(),
            limit,
            log.link.clone(),
            log.linking.clone(),
            health,
            logger.clone(),
        ));
        let mut linking = log.linking.subscribe();
        let settled = run(&handle, async move {
            let _ =
                tokio::time::timeout(patience, linking.wait_for(|s| !matches!(s, Linking::Waiting(_)))).await;
            let now = linking.borrow().clone();
            now
        });
        match settled {
            Linking::Linked => {}
            Linking::Refused(e) => return Err(e),
            Linking::Waiting(why) if keep_trying => {
                warn!(logger, "the NATS stream is not reachable yet: serving the local views and trying on";
                    "why" => &why);
            }
            Linking::Waiting(why) => {
                reaching.abort();
                return Err(StoreError::Nats(why));
            }
            Linking::Closed => return Err(StoreError::Closed),
        }
        log.followers.lock().unwrap_or_else(|p| p.into_inner()).push(reaching);
        Ok(log)
    }

    /// Whether the stream has been reached (and checked).
    pub(crate) fn linked(&self) -> bool {
        self.link.get().is_some()
    }

    /// Waits until the stream is reached: true then, false when the servers refused what the
    /// relay needs or the log closed first.
    pub(crate) fn wait_linked(&self) -> bool {
        let mut linking = self.linking.subscribe();
        self.run(async move {
            match linking.wait_for(|s| !matches!(s, Linking::Waiting(_))).await {
                Ok(state) => matches!(*state, Linking::Linked),
                Err(_) => false,
            }
        })
    }

    /// Whether the log was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// The stream, or why it has not been reached.
    fn reached(&self) -> Result<&Link, StoreError> {
        self.link.get().ok_or_else(|| match &*self.linking.borrow() {
            Linking::Refused(e) => e.clone(),
            Linking::Waiting(why) => StoreError::Nats(format!("the log is not reachable: {why}")),
            Linking::Linked | Linking::Closed => StoreError::Closed,
        })
    }

    fn run<T: Send + 'static>(&self, work: impl Future<Output = T> + Send + 'static) -> T {
        run(&self.handle, work)
    }

    /// What an import stores under `event`'s id: the event, published on its channel's subject
    /// with a Msg-Id naming the id (so a retry is stored once).
    pub(crate) fn import_record(&self, event: Event) -> ImportRecord {
        let redaction = matches!(event, Event::MessageRedacted(_));
        let id = event.id();
        let subject = event_subject(&self.prefix, event.target(), redaction);
        ImportRecord::new(id, subject, event::encode(&event.with_id(0)), format!("import-{id}"), false)
    }

    /// What an import stores under `id`, an id of a gap in the file: an expiry of nothing on a
    /// subject no channel has, taken out once its chunk is stored, so the id stays without a
    /// record.
    pub(crate) fn gap_record(&self, id: u64) -> ImportRecord {
        let nothing =
            Event::MessagesExpired(event::MessagesExpired { id: 0, ts: 0.0, target: String::new(), upto: 0 });
        ImportRecord::new(id, self.gap_subject(), event::encode(&nothing), format!("import-gap-{id}"), true)
    }

    /// The subject of the records that stand in for the ids of gaps, which no channel has.
    fn gap_subject(&self) -> String {
        event_subject(&self.prefix, Some("\0gap"), false)
    }

    /// Whether the stream lets records be erased (one an earlier relay made does not).
    pub(crate) fn erasable(&self) -> bool {
        self.link.get().is_some_and(|link| link.erasable)
    }

    /// Stores `records` (in id order, the first one's id the stream's next sequence) each under
    /// its own id, then takes out those of gaps (a purge of their subject, or a delete each
    /// where the stream denies purges). Each is published on condition that the stream's
    /// last sequence is the id before it, so a concurrent post cannot shift them. All are sent
    /// before the first acknowledgement is awaited: a chunk costs about one round trip, not one
    /// a record. A chunk that fails goes on one record at a time from its first record not
    /// acknowledged as sent: read back when the stream holds it, else sent again, each tried
    /// for up to [`PUBLISH_BOUND`] (a stream just created can answer "no stream found" until
    /// its leader is known, seen in CI); a wrong last sequence is final.
    pub(crate) fn import_chunk(&self, records: Vec<ImportRecord>) -> Result<(), StoreError> {
        let link = self.reached()?;
        let gaps: Vec<u64> = records.iter().filter(|r| r.gap).map(|r| r.id).collect();
        if !gaps.is_empty() && !link.erasable {
            return Err(StoreError::Nats(format!(
                "the stream {} denies deletes (an earlier relay made it), so an import into it cannot leave gaps in the ids",
                self.stream
            )));
        }
        let js = link.js.clone();
        let sent = records.clone();
        let first_failed = self.run(async move {
            let mut acks = Vec::with_capacity(sent.len());
            for r in &sent {
                acks.push(js.send_publish(r.subject.clone(), r.message()).await);
            }
            // Awaited together: each waits for its acknowledgement up to the client's timeout,
            // so a stream that cannot answer costs one timeout, not one a record.
            let acks = futures_util::future::join_all(acks.into_iter().map(|sending| async move {
                match sending {
                    Ok(ack) => ack.await.ok().map(|ack| ack.sequence),
                    Err(_) => None,
                }
            }))
            .await;
            sent.iter().zip(acks).position(|(r, stored)| stored != Some(r.id))
        });
        // From the first record not stored as sent, one at a time: those the stream holds
        // already (their acknowledgement lost) are read back and must be the import's (the
        // server checks the last sequence before the Msg-Id, so sending them again fails).
        if let Some(first) = first_failed {
            let last = self.last_id()?;
            for record in records.into_iter().skip(first) {
                match record.id <= last {
                    true => self.stored_already(&record)?,
                    false => self.publish_as(record)?,
                }
            }
        }
        if !gaps.is_empty() {
            // One purge of the gaps' subject takes them all (a delete each is a round trip).
            let (js, name, subject) = (link.js.clone(), self.stream.clone(), self.gap_subject());
            let purged = self.run(async move {
                let purge = stream_info(&js, &name).await?.purge().filter(subject).await;
                purge.map_err(|e| nats_error("purging the records standing in for gaps", e))
            });
            let (js, name, logger) = (link.js.clone(), self.stream.clone(), self.logger.clone());
            let (first, count) = (gaps[0], gaps.len());
            if purged.is_err() && !self.run(erase::erase(js, name, gaps, false, logger)) {
                return Err(StoreError::Nats(format!(
                    "the records standing in for {count} ids of gaps from id {first} on could not be erased"
                )));
            }
        }
        Ok(())
    }

    /// Whether the stream's record under `record.id` is `record`: anything else there was
    /// written by someone else during the import.
    fn stored_already(&self, record: &ImportRecord) -> Result<(), StoreError> {
        let (js, name, id) = (self.reached()?.js.clone(), self.stream.clone(), record.id);
        let found = self.run(async move {
            retrying(|_| async {
                let found = stream_info(&js, &name).await?.get_raw_message(id).await;
                found.map_err(|e| nats_error(&format!("reading id {id} back"), e))
            })
            .await
        })?;
        if found.subject.as_str() != record.subject || found.payload != record.payload {
            return Err(StoreError::Nats(format!(
                "id {id} holds a record the import did not send: something else wrote to the stream meanwhile"
            )));
        }
        Ok(())
    }

    /// Publishes `record` as the stream's sequence `record.id`, tried again for up to
    /// [`PUBLISH_BOUND`] (see [`NatsLog::import_chunk`]).
    fn publish_as(&self, record: ImportRecord) -> Result<(), StoreError> {
        let js = self.reached()?.js.clone();
        let id = record.id;
        let stored = self.run(async move {
            let deadline = Instant::now() + PUBLISH_BOUND;
            loop {
                let attempt = async {
                    let ack = js.send_publish(record.subject.clone(), record.message()).await;
                    ack.map_err(|e| e.to_string())?.await.map_err(|e| e.to_string())
                };
                match attempt.await {
                    Ok(ack) => return Ok(ack),
                    Err(e) if e.contains("wrong last sequence") || Instant::now() >= deadline => {
                        return Err(StoreError::Nats(format!("importing id {id}: {e}")))
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
                }
            }
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

/// One record of an import: what [`NatsLog::import_chunk`] publishes under `id`.
#[derive(Clone)]
pub(crate) struct ImportRecord {
    id: u64,
    subject: String,
    payload: bytes::Bytes,
    msg_id: String,
    /// Stands in for an id of a gap: taken out once its chunk is stored.
    gap: bool,
}

impl ImportRecord {
    fn new(id: u64, subject: String, payload: Vec<u8>, msg_id: String, gap: bool) -> ImportRecord {
        ImportRecord { id, subject, payload: payload.into(), msg_id, gap }
    }

    /// The bytes it takes in flight.
    pub(crate) fn size(&self) -> usize {
        self.payload.len()
    }

    fn message(&self) -> jetstream::message::PublishMessage {
        jetstream::message::PublishMessage::build()
            .payload(self.payload.clone())
            .message_id(&self.msg_id)
            .expected_last_sequence(self.id - 1)
    }
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

/// Whether the stream holds a record numbered `from` or later, as its leader knows (an error,
/// or no answer within [`HOLDS_BOUND`], counts as yes: a leader stopped mid-request must not
/// hold up the follower's recovery).
async fn holds(stream: &jetstream::stream::Stream, name: &str, from: u64) -> bool {
    let subject = format!("relay.{name}.>");
    let asking = read::leaders_first(stream, &subject, from);
    !matches!(tokio::time::timeout(HOLDS_BOUND, asking).await, Ok(Ok(None)))
}

impl NatsLog {
    /// Erases the records `ids` from the stream, in the background (see [`erase::erase`] for
    /// `ask_first`), then calls `done` (at once when there is nothing the stream lets it do).
    fn delete_records(&self, ids: &[u64], ask_first: bool, done: Forgotten) {
        if ids.is_empty() {
            return done();
        }
        // Not reached yet: asked for again at the next start.
        let Some(link) = self.link.get() else { return };
        if !link.erasable {
            if !self.said_unerasable.swap(true, Ordering::Relaxed) {
                warn!(self.logger, "records of redacted or expired messages stay in the NATS stream: it denies deletes (made by an earlier relay)";
                    "stream" => &self.stream);
            }
            return done();
        }
        let erasing =
            erase::erase(link.js.clone(), self.stream.clone(), ids.to_vec(), ask_first, self.logger.clone());
        self.handle.spawn(self.erasing.track_future(async move {
            if erasing.await {
                done();
            }
        }));
    }
}

impl EventLog for NatsLog {
    fn append(&self, event: NewEvent) -> Result<Appending, StoreError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(StoreError::Closed);
        }
        if let Some(why) = self.stopped() {
            return Err(StoreError::Failed(why));
        }
        let link = self.reached()?;
        if let Some(why) = self.refusing() {
            return Err(StoreError::Nats(why));
        }
        let redaction = matches!(event, NewEvent::Redaction { .. });
        let subject = event_subject(&self.prefix, event.target(), redaction);
        let stored = event.stamp(0, crate::values::unix_now());
        let payload = bytes::Bytes::from(event::encode(&stored));
        let id = format!("{}-{}", self.instance, self.posts.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        let (js, health) = (link.js.clone(), self.health.clone());
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
        let (js, name, tombstones) =
            (self.reached()?.js.clone(), self.stream.clone(), self.tombstones.clone());
        self.run(async move {
            let (js, name, tombstones) = (&js, &name, &tombstones);
            retrying(|tries| async move {
                let found = read(js, name, None, from, limit, set_up_bound(tries)).await?;
                let mut events = tombstones.fill(js, name, found, from.max(1)).await?;
                events.truncate(limit);
                Ok(events)
            })
            .await
        })
    }

    fn last_id(&self) -> Result<u64, StoreError> {
        let (js, name) = (self.reached()?.js.clone(), self.stream.clone());
        self.run(async move {
            let (js, name) = (&js, &name);
            retrying(|tries| async move {
                let stream =
                    bounded(set_up_bound(tries), "reading the stream's state", stream_info(js, name));
                Ok(stream.await?.cached_info().state.last_sequence)
            })
            .await
        })
    }

    fn follow(&self, after: u64, mut follower: Follower) -> Result<(), StoreError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(StoreError::Closed);
        }
        let js = self.reached()?.js.clone();
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
        let (name, logger) = (self.stream.clone(), self.logger.clone());
        let (health, tombstones) = (self.health.clone(), self.tombstones.clone());
        let task = self.handle.spawn(async move {
            let (mut next, mut failures) = (after + 1, 0);
            loop {
                let consumed = async {
                    let bound = set_up_bound(failures);
                    let stream = bounded(bound, "reading the stream's state", stream_info(&js, &name)).await?;
                    let mut messages = bounded(bound, "creating the follower's consumer", ordered(&stream, next)).await?;
                    failures = 0;
                    loop {
                        let Ok(message) = tokio::time::timeout(STALL_AFTER, messages.next()).await else {
                            // Records erased at the stream's end leave it "holding" ids that
                            // are not there.
                            if health.known_last.load(Ordering::Relaxed) >= next && holds(&stream, &name, next).await {
                                return Err(StoreError::Nats(format!(
                                    "the stream's consumer delivered nothing for {STALL_AFTER:?} while the stream holds {next}"
                                )));
                            }
                            continue;
                        };
                        let Some(first) = message else { break };
                        // With what has come already, so the gaps among them (erased records)
                        // need at most one look at the redactions.
                        let mut batch = vec![first];
                        while batch.len() < FOLLOW_BATCH {
                            match messages.next().now_or_never() {
                                Some(Some(message)) => batch.push(message),
                                _ => break,
                            }
                        }
                        let (mut events, mut at, mut failed) = (Vec::with_capacity(batch.len()), next, None);
                        for message in batch {
                            let event = message.map_err(|e| nats_error("following the stream", e)).and_then(|m| {
                                let info = m.info().map_err(|e| nats_error("reading a stream message", e))?;
                                let sequence = info.stream_sequence;
                                (sequence >= at).then(|| numbered(sequence, &m.payload)).transpose()
                            });
                            match event {
                                Ok(Some(event)) => {
                                    at = event.id() + 1;
                                    events.push(event);
                                }
                                Ok(None) => {}
                                Err(e) => {
                                    failed = Some(e);
                                    break;
                                }
                            }
                        }
                        if at > next {
                            let read = Read { events, end: at - 1 };
                            for event in tombstones.fill(&js, &name, read, next).await? {
                                if tx.send(event).is_err() {
                                    return Ok(true);
                                }
                            }
                            next = at;
                        }
                        if let Some(e) = failed {
                            return Err(e);
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
                    Err(e) => {
                        warn!(logger, "following the stream failed; trying again"; "error" => %e, "from" => next);
                        failures += 1;
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        // Checked again under the lock `close` drains under: a close that came in meanwhile
        // must not miss this follower (it holds the projector, which the store's close waits on).
        let mut followers = self.followers.lock().unwrap_or_else(|p| p.into_inner());
        if self.closed.load(Ordering::SeqCst) {
            task.abort();
            return Err(StoreError::Closed);
        }
        followers.push(task);
        self.follower_threads.lock().unwrap_or_else(|p| p.into_inner()).push(thread);
        Ok(())
    }

    fn origin(&self) -> Option<String> {
        self.link.get().map(|link| link.origin.clone())
    }

    fn ready(&self) -> Result<(), String> {
        if let Err(e) = self.reached() {
            return Err(e.to_string());
        }
        match self.stopped().or_else(|| self.down()) {
            Some(why) => Err(format!("NATS JetStream: {why}")),
            None => Ok(()),
        }
    }

    fn caught_up(&self, applied: u64) -> bool {
        self.link.get().is_some_and(|link| applied >= link.last_then)
    }

    fn behind(&self, applied: u64) -> bool {
        !self.caught_up(applied) || self.down().is_some() || self.stopped().is_some()
    }

    fn text_cap(&self) -> Option<usize> {
        self.link.get().and_then(|link| link.text_cap)
    }

    fn forget(&self, ids: &[u64], done: Forgotten) -> Result<(), StoreError> {
        self.delete_records(ids, false, done);
        Ok(())
    }

    /// Redactions are few, and each start erases every one again: asked about first.
    fn erase(&self, ids: &[u64]) -> Result<(), StoreError> {
        self.delete_records(ids, true, Box::new(|| {}));
        Ok(())
    }

    fn close(&self) -> Result<(), StoreError> {
        self.closed.store(true, Ordering::SeqCst);
        settle(&self.linking, Linking::Closed);
        let publishing = self.publishing.clone();
        publishing.close();
        self.run(async move { publishing.wait().await });
        let erasing = self.erasing.clone();
        erasing.close();
        self.run(async move { tokio::time::timeout(ERASE_AT_CLOSE, erasing.wait()).await.is_ok() });
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
