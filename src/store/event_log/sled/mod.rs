//! The event log in sled, the embedded default: the trees of `events.rs` in the data
//! directory's database, written by one thread (`writer.rs`) in group commits, as
//! ARCHITECTURE.md ("The commit protocol") describes. The id reservation, the undo of a failed
//! group and the syncs a power cut needs (`disk_sync.rs`) are its own; nothing outside this
//! module touches its trees, except the commands on a stopped store (`offline.rs`), which use
//! [`SledLog::events`].

mod disk_sync;
mod events;
mod keys;
mod writer;

use crate::event::Event;
use crate::event::NewEvent;
use crate::store::event_log::{Appending, EventLog, Follower, Forgotten};
use crate::store::StoreError;
use disk_sync::DiskSync;
#[cfg(test)]
pub(crate) use events::key;
pub(crate) use events::Events;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use tokio::sync::oneshot;
pub(crate) use writer::WriterSetup;
use writer::{Followers, Request, Writer};

/// The forgetting thread: where to send it ids, and its handle.
type Forgetter = (mpsc::Sender<(Vec<u64>, Forgotten)>, thread::JoinHandle<()>);

pub(crate) struct SledLog {
    events: Arc<Events>,
    followers: Followers,
    /// The last durable id: what readers of the log may see (events written but not flushed
    /// yet may still be taken out).
    durable: Arc<AtomicU64>,
    queue: Mutex<Option<mpsc::Sender<Request>>>,
    writer: Mutex<Option<thread::JoinHandle<Result<(), StoreError>>>>,
    /// The thread that deletes expired messages' records, off the writer's path (started by
    /// the first expiry), and what stopped it.
    forgetter: Mutex<Option<Forgetter>>,
    forget_failed: Arc<Mutex<Option<String>>>,
    /// The syncs for a power cut: the writer's, and the forgetting thread's before it erases
    /// keys.
    disk_sync: Arc<Mutex<DiskSync>>,
}

impl SledLog {
    /// The log in `db` (sled's directory `db_dir`, with the message keys of the data directory
    /// `dir`), readable at once; it takes appends once [`SledLog::start`] is called.
    pub(crate) fn open(db: &sled::Db, dir: &Path, db_dir: &Path) -> Result<SledLog, StoreError> {
        let events = Events::open(db, dir)?;
        // What a database holds when it is opened is durable: synced first, since a crash may
        // have left some of it in the page cache only, and keys are erased by what it holds.
        let mut disk_sync = DiskSync::open(dir, db_dir).map_err(|e| StoreError::dir(dir, e))?;
        disk_sync.sync()?;
        let durable = Arc::new(AtomicU64::new(events.last_id()?));
        Ok(SledLog {
            events: Arc::new(events),
            followers: Arc::default(),
            durable,
            queue: Mutex::new(None),
            writer: Mutex::new(None),
            forgetter: Mutex::new(None),
            forget_failed: Arc::default(),
            disk_sync: Arc::new(Mutex::new(disk_sync)),
        })
    }

    /// The trees themselves, for the commands on a stopped store (import, check).
    pub(crate) fn events(&self) -> &Events {
        &self.events
    }

    /// How many of sled's blob files the writer has synced.
    #[cfg(test)]
    pub(crate) fn synced_blobs(&self) -> usize {
        self.disk_sync.lock().unwrap().synced_blobs()
    }

    /// For a command on a stopped store that wrote the trees and flushed the database itself:
    /// everything in them is durable now.
    pub(crate) fn flushed(&self) -> Result<(), StoreError> {
        self.durable.store(self.events.last_id()?, Ordering::SeqCst);
        Ok(())
    }

    /// Starts the writer thread.
    pub(crate) fn start(&self, setup: WriterSetup) -> Result<(), StoreError> {
        self.events.set_power_safe(setup.power_safe);
        let last_id = self.events.last_id()?;
        let reserved = self.events.reserved()?.max(last_id);
        self.disk_sync.lock().unwrap_or_else(|p| p.into_inner()).set_enabled(setup.power_safe);
        let writer = Writer::new(
            self.disk_sync.clone(),
            self.events.clone(),
            self.followers.clone(),
            self.durable.clone(),
            reserved,
            setup,
        );
        let (tx, rx) = mpsc::channel();
        let handle = thread::Builder::new()
            .name("relay-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::io("cannot start the writer thread", e))?;
        *self.queue.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        *self.writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        Ok(())
    }
}

impl EventLog for SledLog {
    fn append(&self, event: NewEvent) -> Result<Appending, StoreError> {
        let (reply, answer) = oneshot::channel();
        let queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let tx = queue.as_ref().ok_or(StoreError::Closed)?;
        tx.send(Request { event, reply }).map_err(|_| StoreError::Closed)?;
        Ok(answer)
    }

    fn read_from(&self, from: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let durable = self.durable.load(Ordering::SeqCst);
        let mut events = self.events.read_from(from, limit)?;
        events.retain(|e| e.id() <= durable);
        Ok(events)
    }

    fn last_id(&self) -> Result<u64, StoreError> {
        Ok(self.durable.load(Ordering::SeqCst))
    }

    /// Hands the ids to the forgetting thread: deleting records costs sled about what
    /// writing them did, and the writer need not wait for it. Deleted after the views' batch
    /// that dropped them, so a crash never keeps that batch without them gone (sled recovers
    /// a prefix of its writes); a crash before leaves them in the log (`check` accepts them).
    fn forget(&self, ids: &[u64], done: Forgotten) -> Result<(), StoreError> {
        if let Some(e) = self.forget_failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(StoreError::Crashed(format!("deleting expired messages' records failed: {e}")));
        }
        if ids.is_empty() {
            done();
            return Ok(());
        }
        let mut forgetter = self.forgetter.lock().unwrap_or_else(|p| p.into_inner());
        if forgetter.is_none() {
            let (tx, rx) = mpsc::channel::<(Vec<u64>, Forgotten)>();
            let (events, failed) = (self.events.clone(), self.forget_failed.clone());
            let disk_sync = self.disk_sync.clone();
            let handle = thread::Builder::new()
                .name("relay-forget".into())
                .spawn(move || {
                    for (ids, done) in rx {
                        if let Err(e) = forget_and_erase(&events, &disk_sync, &ids) {
                            *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                            return;
                        }
                        done();
                    }
                })
                .map_err(|e| StoreError::io("cannot start the thread that deletes expired records", e))?;
            *forgetter = Some((tx, handle));
        }
        if let Some((tx, _)) = forgetter.as_ref() {
            // A thread that stopped said why; the next call reports it.
            let _ = tx.send((ids.to_vec(), done));
        }
        Ok(())
    }

    fn erase(&self, ids: &[u64]) -> Result<(), StoreError> {
        self.events.erase(ids)
    }

    fn follow(&self, after: u64, mut follower: Follower) -> Result<(), StoreError> {
        // Under the lock, so no group becomes durable between the backlog and the first call.
        let mut followers = self.followers.lock().unwrap_or_else(|p| p.into_inner());
        let mut from = after + 1;
        loop {
            let events = self.read_from(from, writer::MAX_BATCH)?;
            let Some(last) = events.last().map(Event::id) else { break };
            from = last + 1;
            follower(events);
        }
        followers.push(follower);
        Ok(())
    }

    fn close(&self) -> Result<(), StoreError> {
        drop(self.queue.lock().unwrap_or_else(|p| p.into_inner()).take());
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        let result = match handle.map(thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(StoreError::Crashed("the writer thread panicked".into())),
            None => Ok(()),
        };
        // Nothing more will be durable: the followers' feeds end.
        self.followers.lock().unwrap_or_else(|p| p.into_inner()).clear();
        // What the writer handed over last is deleted before the caller's final flush.
        if let Some((tx, handle)) = self.forgetter.lock().unwrap_or_else(|p| p.into_inner()).take() {
            drop(tx);
            let _ = handle.join();
        }
        result
    }
}

/// Deletes the records of expired messages, makes that durable (sled's flush, and with power
/// safety the writer's syncs), then erases their keys.
fn forget_and_erase(events: &Events, disk_sync: &Mutex<DiskSync>, ids: &[u64]) -> Result<(), StoreError> {
    events.forget(ids)?;
    events.flush()?;
    let mut disk_sync = disk_sync.lock().unwrap_or_else(|p| p.into_inner());
    disk_sync.sync()?;
    drop(disk_sync);
    events.erase(ids)
}
