//! The writer thread: the one place the log is written, one group commit at a time, following
//! the commit protocol described in ARCHITECTURE.md ("The commit protocol"). It makes each group
//! durable, answers its posters and hands it to the log's followers.

use super::disk_sync::DiskSync;
use super::events::Events;
use crate::event::{Event, NewEvent};
use crate::store::event_log::Follower;
use crate::store::StoreError;
use slog::{error, Logger};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;
use tokio::sync::oneshot;

/// Most appends committed in one group: bounds the memory and the latency of one commit.
pub const MAX_BATCH: usize = 1024;

/// Ids reserved per durable reservation: one extra flush per this many posts, and at most this
/// many ids skipped after a crash.
const ID_RESERVE_STEP: u64 = 1000;

/// How long the unsafe mode (`CLAUDE_CODEX_UNSAFE_ACK_BEFORE_FLUSH`, tests only) holds a group
/// between acknowledging and writing it: long beside a write, so a kill just after an
/// acknowledgement nearly always lands before the write.
const UNSAFE_WRITE_DELAY: Duration = Duration::from_millis(250);

/// Who follows the log: called with each durable group.
pub(super) type Followers = Arc<Mutex<Vec<Follower>>>;

/// What the writer needs beyond the trees.
pub(crate) struct WriterSetup {
    pub(crate) db: sled::Db,
    /// Whether each commit is also made durable against a power cut (see `disk_sync.rs`).
    pub(crate) power_safe: bool,
    /// Run before each flush, told whether power safety is on: what must be on disk before
    /// sled's flush makes durable what names it (the channel views' blocks, in the same
    /// database).
    pub(crate) before_flush: Box<dyn Fn(bool) -> Result<(), StoreError> + Send>,
    /// Acknowledge each group before writing it (`CLAUDE_CODEX_UNSAFE_ACK_BEFORE_FLUSH`, tests
    /// only).
    pub(crate) ack_early: bool,
    pub(crate) logger: Logger,
    #[cfg(feature = "faults")]
    pub(crate) faults: Arc<crate::store::event_log::faults::Faults>,
}

pub(super) struct Request {
    pub(super) event: NewEvent,
    pub(super) reply: oneshot::Sender<Result<Event, StoreError>>,
}

/// The writer thread's own state.
pub(super) struct Writer {
    events: Arc<Events>,
    followers: Followers,
    /// The last durable id, moved on under the followers' lock (see `SledLog::follow`).
    durable: Arc<AtomicU64>,
    db: sled::Db,
    disk_sync: Arc<Mutex<DiskSync>>,
    before_flush: Box<dyn Fn(bool) -> Result<(), StoreError> + Send>,
    next_id: u64,
    reserved: u64,
    /// Why the log takes no more writes, once a failed group could not be taken out again.
    failed: Option<String>,
    ack_early: bool,
    logger: Logger,
    #[cfg(feature = "faults")]
    faults: Arc<crate::store::event_log::faults::Faults>,
}

impl Writer {
    /// A writer going on from `reserved`, the highest id already reserved (or used).
    pub(super) fn new(
        disk_sync: Arc<Mutex<DiskSync>>,
        events: Arc<Events>,
        followers: Followers,
        durable: Arc<AtomicU64>,
        reserved: u64,
        setup: WriterSetup,
    ) -> Writer {
        Writer {
            events,
            followers,
            durable,
            db: setup.db,
            disk_sync,
            before_flush: setup.before_flush,
            next_id: reserved + 1,
            reserved,
            failed: None,
            ack_early: setup.ack_early,
            logger: setup.logger,
            #[cfg(feature = "faults")]
            faults: setup.faults,
        }
    }

    pub(super) fn run(mut self, rx: mpsc::Receiver<Request>) -> Result<(), StoreError> {
        while let Ok(first) = rx.recv() {
            let mut group = vec![first];
            while group.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(r) => group.push(r),
                    Err(_) => break,
                }
            }
            self.commit_group(group);
        }
        // Every sender is gone: give back the unused reservation so a clean restart goes on
        // without a gap, and make everything durable.
        if self.failed.is_none() {
            self.injected_write_fault()?;
            self.events.set_reserved(self.next_id - 1)?;
        }
        self.flush()
    }

    /// sled's flush, then (when on) what it leaves out for a power cut: see [`DiskSync`].
    fn flush(&mut self) -> Result<(), StoreError> {
        let mut disk_sync = self.disk_sync.lock().unwrap_or_else(|p| p.into_inner());
        // What names into other files first: sled's flush makes it durable.
        (self.before_flush)(disk_sync.enabled())?;
        self.db.flush()?;
        disk_sync.sync()?;
        #[cfg(feature = "faults")]
        self.faults.check(crate::store::event_log::faults::FaultOp::Flush)?;
        Ok(())
    }

    /// With the `faults` feature, whether an armed fault fails the next write.
    fn injected_write_fault(&self) -> Result<(), StoreError> {
        #[cfg(feature = "faults")]
        self.faults.check(crate::store::event_log::faults::FaultOp::Write)?;
        Ok(())
    }

    fn commit_group(&mut self, group: Vec<Request>) {
        if let Some(reason) = &self.failed {
            for r in group {
                let _ = r.reply.send(Err(StoreError::Failed(reason.clone())));
            }
            return;
        }
        let (new, mut replies): (Vec<_>, Vec<_>) = group.into_iter().map(|r| (r.event, r.reply)).unzip();
        let events = self.assign_ids(new);
        if self.ack_early {
            answer(events.clone(), std::mem::take(&mut replies));
            thread::sleep(UNSAFE_WRITE_DELAY);
        }
        if let Err(e) = self.write_durably(&events) {
            error!(self.logger, "commit failed"; "error" => %e);
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
            return;
        }
        // The events are durable from here on: the followers get them (the channel views, which
        // publish them to readers), then every poster gets "posted", even if the views could
        // not take them (they catch up from the log on the next start).
        let answers = events.clone();
        self.hand_on(events);
        answer(answers, replies);
    }

    /// Gives each event the next id. Ids are spent even if the commit fails, so an
    /// id is never handed out twice.
    fn assign_ids(&mut self, events: Vec<NewEvent>) -> Vec<Event> {
        let ts = crate::values::unix_now();
        let first = self.next_id;
        self.next_id += events.len() as u64;
        events.into_iter().zip(first..).map(|(e, id)| e.stamp(id, ts)).collect()
    }

    /// The protocol's *reserve* and *write*. On failure the events are taken out again (best effort)
    /// so a later flush does not store posts whose posters were told they failed.
    fn write_durably(&mut self, events: &[Event]) -> Result<(), StoreError> {
        let (Some(first), Some(last)) = (events.first(), events.last()) else { return Ok(()) };
        let (first, last) = (first.id(), last.id());
        if last > self.reserved {
            let reserved = last + ID_RESERVE_STEP;
            self.injected_write_fault()?;
            self.events.set_reserved(reserved)?;
            self.flush()?;
            self.reserved = reserved;
        }
        let mut replaced = Vec::new();
        let result =
            self.injected_write_fault().and_then(|()| self.events.append(events)).and_then(|records| {
                replaced = records;
                self.flush()
            });
        match &result {
            Ok(()) => {
                // The redactions' tombstones are durable: the keys of the records they replaced
                // go before anyone is answered. Should that fail, the views' erase (each start
                // too) does it again.
                let ids: Vec<u64> = replaced.iter().map(|(id, _)| *id).collect();
                if let Err(e) = self.events.erase(&ids) {
                    error!(self.logger, "erasing a redacted message's key failed"; "error" => %e);
                }
            }
            Err(e) => {
                let undo = self.injected_write_fault().and_then(|()| self.events.undo(first, last, replaced));
                if let Err(undo) = undo {
                    self.failed = Some(format!("{e}; then taking the failed posts out failed too: {undo}"));
                }
            }
        }
        result
    }

    /// The group is durable: the log's followers get it. Under their lock, so `follow` sees
    /// each group either in its backlog or given, never both.
    fn hand_on(&self, events: Vec<Event>) {
        let Some(last) = events.last().map(Event::id) else { return };
        let mut followers = self.followers.lock().unwrap_or_else(|p| p.into_inner());
        self.durable.store(last, Ordering::SeqCst);
        // A copy for each follower but the last, which gets the group itself.
        let mut events = Some(events);
        let count = followers.len();
        for (at, follower) in followers.iter_mut().enumerate() {
            let group = if at + 1 == count { events.take() } else { events.clone() };
            if let Some(group) = group {
                follower(group);
            }
        }
    }
}

/// Tells each poster its event (in the order of the replies).
fn answer(events: Vec<Event>, replies: Vec<oneshot::Sender<Result<Event, StoreError>>>) {
    for (e, reply) in events.into_iter().zip(replies) {
        let _ = reply.send(Ok(e));
    }
}
