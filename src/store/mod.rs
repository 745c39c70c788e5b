//! The store: the event log, its channel views and the text archive's checkpoint in one sled
//! database, written by one thread; plus the commands on a stopped store (export, import, check).
//!
//! Nothing outside this module touches sled. The rest of the relay sees [`Store`]: append a
//! message (durable when it returns), read a channel since an id or its tail, list channels,
//! the last visible id, and a subscription to appends.
//!
//! Commit protocol (one writer thread, group commit):
//! 1. take every append waiting in the queue (at most [`MAX_BATCH`]) and give them ids;
//! 2. if those ids pass the reservation, reserve more and flush (so ids are never reused, even
//!    after a crash that loses the events written next);
//! 3. write the events to the log as one sled batch and flush the database: one fsync for the
//!    whole group;
//! 4. apply the events to the channel views (flushed by the next commit or sled's own timer; on
//!    open the views catch up from their checkpoint, so losing this step to a crash loses nothing);
//! 5. publish: readers see the new messages only now, so nothing can be read that a crash could
//!    still take away; the archive thread is told the new last id; then every poster in the
//!    group gets its answer.

mod archive;
mod blocks;
mod disk_sync;
#[cfg(feature = "faults")]
mod faults;
mod log;
mod offline;
mod views;
mod writer;

use crate::message::{Message, NewMessage, StoredMessage};
use archive::Archive;
pub use archive::ArchiveConfig;
use disk_sync::DiskSync;
#[cfg(feature = "faults")]
pub use faults::{FaultOp, FaultPlan};
use log::EventLog;
pub use offline::{
    check, export, import, import_with, replay_print, CheckReport, ExportFilter, ImportError, ImportReport,
};
use slog::{error, info, warn, Logger};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};
use views::{Channels, Views};
use writer::{Request, Writer};

/// Most appends committed in one group: bounds the memory and the latency of one commit.
pub const MAX_BATCH: usize = 1024;

/// Ids reserved per durable reservation: one extra flush per this many posts, and at most this
/// many ids skipped after a crash.
const ID_RESERVE_STEP: u64 = 1000;

/// Events replayed into the views per batch when catching up or rebuilding.
const REPLAY_CHUNK: usize = 16384;

/// Events replayed on open past which the database is opened again before serving, to shed
/// what the replay left in sled's memory (lower in tests, so they cover it).
const REOPEN_AFTER_REPLAY: u64 = if cfg!(test) { 500 } else { 100_000 };

/// Test-only switch: acknowledge each group before writing it, as a write-behind relay would.
/// It exists so the crash test can show that it detects lost acknowledged posts; never set it
/// for real use. (Skipping only the flush would not do: sled hands writes to the OS at once,
/// and a killed process does not lose the OS's cache.)
const UNSAFE_ACK_ENV: &str = "CLAUDE_CODEX_UNSAFE_ACK_BEFORE_FLUSH";
/// How long the unsafe mode holds a group between acknowledging and writing it.
const UNSAFE_WRITE_DELAY: Duration = Duration::from_millis(20);

/// How long to wait for sled's file lock once the relay's own lock is held (see `open_sled`).
const SLED_LOCK_WAIT: Duration = Duration::from_secs(5);

/// sled's page cache unless configured (`cache_mb`). sled counts the bytes pages take on disk,
/// compressed, so pages read in can take several times this much memory: with 128 MiB, one
/// scan of a 1M-message log (an export) left the relay at 1.3 GB. What sled serves now (the log's
/// newest pages, the views' index) fits in far less, and 16 MiB measured the same throughput
/// (docs/benchmarks.md, target 7).
pub const DEFAULT_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// zstd level for new databases: messages are text and compress well at the fast levels.
const COMPRESSION_LEVEL: i32 = 1;

const LOCK_FILE: &str = "relay.lock";
const DB_DIR: &str = "db";

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use data directory {dir}: {reason}")]
    Dir { dir: String, reason: String },
    #[error("data directory {dir} is locked by another relay (pid {pid}); stop it or pass --data-dir")]
    Locked { dir: String, pid: String },
    #[error("storage error: {0}")]
    Io(String),
    #[error("the data is damaged: {0}")]
    Corrupt(String),
    #[error("the relay is shutting down; retry when it is back")]
    Closed,
    #[error("the store stopped accepting writes after an earlier failure ({0}); restart the relay")]
    Failed(String),
}

impl StoreError {
    fn disk_full() -> StoreError {
        StoreError::Io(
            "the disk is full (no space left on device); free space, then restart the relay".into(),
        )
    }
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Corruption { at, .. } => {
                StoreError::Corrupt(format!("sled reports corruption at {at:?}"))
            }
            sled::Error::Io(e) if e.kind() == std::io::ErrorKind::StorageFull => StoreError::disk_full(),
            sled::Error::Io(e) => StoreError::Io(e.to_string()),
            other => StoreError::Io(other.to_string()),
        }
    }
}

impl From<crate::event::DecodeError> for StoreError {
    fn from(e: crate::event::DecodeError) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

/// One channel as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChannelStats {
    pub name: String,
    pub count: u64,
    pub last_id: u64,
}

/// A handle on the open store; clones share it. The writer stops, after a final flush, when
/// [`Store::close`] is called or the last handle is dropped.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    queue: Mutex<Option<mpsc::Sender<Request>>>,
    writer: Mutex<Option<thread::JoinHandle<Result<(), StoreError>>>>,
    archiver: Mutex<Option<thread::JoinHandle<()>>>,
}

/// What the writer thread and the readers both use.
struct Shared {
    db: sled::Db,
    log: EventLog,
    views: Views,
    /// Channel records as of the last published commit: what readers may see.
    published: RwLock<Channels>,
    /// The last published id; subscribers are told of each commit.
    visible: watch::Sender<u64>,
    logger: Logger,
    /// Power-loss safety beyond sled's flush; used by the writer only.
    disk_sync: Mutex<DiskSync>,
    /// The seam I/O fault tests fail the writer's disk operations through (the `faults`
    /// feature; not in a release build).
    #[cfg(feature = "faults")]
    faults: faults::Faults,
    _lock: File,
}

impl Shared {
    /// sled's flush, then (when on) what it leaves out for a power cut: see [`DiskSync`].
    fn flush(&self) -> Result<(), StoreError> {
        let mut sync = self.disk_sync.lock().unwrap_or_else(|p| p.into_inner());
        if sync.enabled() {
            // Blocks first: sled's flush may make durable the views that name them.
            self.views.sync_blocks()?;
        }
        self.db.flush()?;
        sync.sync().map_err(|e| StoreError::Io(format!("syncing the database to disk failed: {e}")))?;
        #[cfg(feature = "faults")]
        self.faults.check(FaultOp::Flush)?;
        Ok(())
    }

    /// With the `faults` feature, whether an armed fault fails the writer's next write.
    fn injected_write_fault(&self) -> Result<(), StoreError> {
        #[cfg(feature = "faults")]
        self.faults.check(FaultOp::Write)?;
        Ok(())
    }
}

/// Names the data directory in a damage report, and what to do: the store is left as it is.
fn in_dir(dir: &Path) -> impl Fn(StoreError) -> StoreError + '_ {
    move |e| match e {
        StoreError::Corrupt(m) => StoreError::Corrupt(format!(
            "{m} (in {}; nothing was changed: run `claude-codex-relay check --data-dir {}` to list \
             every damaged record, then restore a backup or import an export)",
            dir.join(DB_DIR).display(),
            dir.display()
        )),
        other => other,
    }
}

fn dir_error(dir: &Path, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Dir { dir: dir.display().to_string(), reason: reason.to_string() }
}

/// Takes the data directory's lock file, so two relays never share one store.
fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| dir_error(dir, e))?;
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| dir_error(dir, e))?;
    match file.try_lock() {
        Ok(()) => {
            let pid = std::process::id().to_string();
            file.set_len(0).and_then(|()| file.write_all(pid.as_bytes())).map_err(|e| dir_error(dir, e))?;
            Ok(file)
        }
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = if pid.trim().is_empty() { "unknown".to_owned() } else { pid.trim().to_owned() };
            Err(StoreError::Locked { dir: dir.display().to_string(), pid })
        }
        Err(TryLockError::Error(e)) => Err(dir_error(dir, e)),
    }
}

/// How to open the store's database.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// sled's page cache, in bytes (a target sled may exceed).
    pub cache_bytes: u64,
    /// Whether a database created now compresses its pages (zstd). sled cannot switch an
    /// existing database, which keeps what it was made with.
    pub compress: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { cache_bytes: DEFAULT_CACHE_BYTES, compress: true }
    }
}

/// Whether the sled database in `db_dir` compresses its pages (`new`: what a database that does
/// not exist yet will do).
fn compressed(db_dir: &Path, new: bool) -> bool {
    match std::fs::read(db_dir.join("conf")) {
        Ok(conf) => {
            let on: &[u8] = b"use_compression: true";
            conf.windows(on.len()).any(|w| w == on)
        }
        Err(_) => new,
    }
}

/// Opens sled, retrying while its file lock is still held by an instance this process is
/// closing: sled releases it from a background thread shortly after the last handle is dropped.
/// Holding the relay's lock file proves that no other process owns the directory.
fn open_sled(dir: &Path, options: Options) -> Result<sled::Db, StoreError> {
    let deadline = Instant::now() + SLED_LOCK_WAIT;
    let compress = compressed(&dir.join(DB_DIR), options.compress);
    loop {
        let config = sled::Config::new()
            .path(dir.join(DB_DIR))
            .cache_capacity(options.cache_bytes)
            .use_compression(compress)
            .compression_factor(COMPRESSION_LEVEL);
        match config.open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock") && Instant::now() < deadline =>
            {
                thread::sleep(Duration::from_millis(10));
            }
            Err(sled::Error::Io(e)) => return Err(dir_error(dir, e)),
            Err(other) => return Err(other.into()),
        }
    }
}

/// Opens the store in `dir` (taking the lock) without starting a writer, for a command on a
/// stopped store: a directory without one is an error, not a new empty store.
fn open_parts(dir: &Path) -> Result<(File, sled::Db, EventLog, Views), StoreError> {
    if !dir.join(DB_DIR).is_dir() {
        return Err(dir_error(
            dir,
            format!("it holds no relay data (no {DB_DIR}/ inside); pass the --data-dir the relay uses"),
        ));
    }
    open_parts_with(dir, Options::default())
}

fn open_parts_with(dir: &Path, options: Options) -> Result<(File, sled::Db, EventLog, Views), StoreError> {
    let lock = lock_dir(dir)?;
    let (db, log, views) = open_db(dir, options)?;
    Ok((lock, db, log, views))
}

/// What hands memory the process freed back to the operating system, when the binary knows
/// how (glibc's `malloc_trim`, set by `main.rs`; this crate has no unsafe code).
static RELEASE_FREED_MEMORY: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Sets what [`Store::open`] calls after closing a database a long replay filled: glibc's
/// malloc keeps freed memory otherwise (after a replay of 1M events and a reopen, the relay
/// stayed at 1.2 GB; with `malloc_trim`, about 200 MB; docs/benchmarks.md, target 7).
pub fn set_release_freed_memory(release: fn()) {
    let _ = RELEASE_FREED_MEMORY.set(release);
}

/// Opens the database of `dir`, whose lock the caller holds.
fn open_db(dir: &Path, options: Options) -> Result<(sled::Db, EventLog, Views), StoreError> {
    let db = open_sled(dir, options).map_err(in_dir(dir))?;
    let log = EventLog::open(&db).map_err(in_dir(dir))?;
    let views = Views::open(&db, dir).map_err(in_dir(dir))?;
    Ok((db, log, views))
}

/// Reports how far a replay got: the id reached, and the log's last id.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// Applies every event after the views' checkpoint. Views that must be rebuilt from the whole
/// log are cleared first, and `rebuilding` is told why. Returns the channel records and how many
/// events were replayed.
fn catch_up(
    log: &EventLog,
    views: &Views,
    progress: Progress,
    rebuilding: &mut dyn FnMut(&str),
) -> Result<(Channels, u64), StoreError> {
    let last_id = log.last_id()?;
    if !views.is_current()? {
        // Laid out by an older version: a projection, so rebuilt from the log.
        views.clear()?;
        rebuilding("they are laid out by an older version");
    }
    let (mut checkpoint, mut channels) = views.load(log)?;
    // Views ahead of the log cannot come from this relay's commit order, and views naming
    // blocks the file lost come from a power cut: the log is the truth, rebuild from it.
    let problem = if checkpoint > last_id {
        Some(format!("their checkpoint {checkpoint} is past the log's last event {last_id}"))
    } else {
        views.blocks_problem()?
    };
    if let Some(problem) = problem {
        views.clear()?;
        (checkpoint, channels) = (0, Channels::new());
        rebuilding(&problem);
    }
    views.cut_blocks()?;
    let mut replayed = 0;
    loop {
        let events = log.read_from(checkpoint + 1, REPLAY_CHUNK)?;
        let Some(last) = events.last() else { break };
        checkpoint = last.id();
        views.apply(&events, &mut channels)?;
        replayed += events.len() as u64;
        progress(checkpoint, last_id);
    }
    Ok((channels, replayed))
}

/// Drops every projection (the channel views, and the text archive when given) and rebuilds it
/// from the log. Returns the number of events replayed. Needs the data directory to itself (the
/// relay must not be running on it).
pub fn rebuild(dir: &Path, archive: Option<&ArchiveConfig>, progress: Progress) -> Result<u64, StoreError> {
    let (_lock, db, log, views) = open_parts(dir)?;
    let replayed = offline::rebuild_projections(&log, &views, archive, progress)?;
    views.sync_blocks()?;
    db.flush()?;
    Ok(replayed)
}

/// Opens the archive; returns it with the id it is written up to.
fn open_archive(log: &EventLog, config: &ArchiveConfig) -> Result<(Archive, u64), StoreError> {
    let (archive, last_in_file) = Archive::open(config)
        .map_err(|e| StoreError::Io(format!("cannot open the archive {}: {e}", config.path.display())))?;
    Ok((archive, log.archive_checkpoint()?.max(last_in_file.unwrap_or(0))))
}

/// Starts the thread that writes the text archive: it catches up with the log, then follows
/// each commit it is told of.
fn start_archiver(
    shared: Arc<Shared>,
    config: &ArchiveConfig,
    commits: mpsc::Receiver<u64>,
) -> Result<thread::JoinHandle<()>, StoreError> {
    let (mut archive, mut done) = open_archive(&shared.log, config)?;
    let mut upto = shared.log.last_id()?;
    let config = config.clone();
    thread::Builder::new()
        .name("relay-archive".into())
        .spawn(move || loop {
            // A panic in the rotating writer must not end the archive for the rest of the run.
            let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                archive.follow(&shared.log, done, upto)
            }));
            let error = match step {
                Ok(Ok(at)) => {
                    done = at;
                    None
                }
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some("the rotating writer panicked".to_owned()),
            };
            if let Some(error) = error {
                // Posts go on. The file may be gone (its directory deleted): start a new one
                // and catch up from the checkpoint, now or after the next commit.
                error!(shared.logger, "archive behind the log"; "error" => error, "at" => done);
                match open_archive(&shared.log, &config) {
                    Ok(reopened) => (archive, done) = reopened,
                    Err(e) => error!(shared.logger, "cannot reopen the archive"; "error" => %e),
                }
            }
            let Ok(next) = commits.recv() else { return };
            upto = commits.try_iter().last().unwrap_or(next);
        })
        .map_err(|e| StoreError::Io(format!("cannot start the archive thread: {e}")))
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, catches the views up with the log and
    /// starts the writer, and the archive's writer when `archive` is given.
    pub fn open(dir: &Path, archive: Option<&ArchiveConfig>, logger: Logger) -> Result<Store, StoreError> {
        Store::open_with(dir, archive, Options::default(), logger)
    }

    /// [`Store::open`] with other [`Options`].
    pub fn open_with(
        dir: &Path,
        archive: Option<&ArchiveConfig>,
        options: Options,
        logger: Logger,
    ) -> Result<Store, StoreError> {
        let ack_early = std::env::var_os(UNSAFE_ACK_ENV).is_some_and(|v| v == "1");
        let (lock, mut db, mut log, mut views) = open_parts_with(dir, options)?;
        // On the console too: a long log takes a while (1M events: about 10 s).
        let events = log.last_id().map_err(in_dir(dir))?;
        let mut rebuilding = |why: &str| warn!(logger, "rebuilding the channel views from the log"; "why" => why, "events" => events);
        let (mut channels, replayed) =
            catch_up(&log, &views, &mut |_, _| {}, &mut rebuilding).map_err(in_dir(dir))?;
        if replayed > REOPEN_AFTER_REPLAY {
            // sled keeps the pages a long replay read, far past its cache size (it counts their
            // compressed bytes): closing and opening the database again lets them go.
            views.sync_blocks()?;
            db.flush()?;
            drop((views, log, db));
            if let Some(release) = RELEASE_FREED_MEMORY.get() {
                release();
            }
            (db, log, views) = open_db(dir, options)?;
            (channels, _) = catch_up(&log, &views, &mut |_, _| {}, &mut rebuilding).map_err(in_dir(dir))?;
        }
        let last_id = log.last_id().map_err(in_dir(dir))?;
        let reserved = log.reserved().map_err(in_dir(dir))?.max(last_id);
        if replayed > 0 {
            info!(logger, "caught up channel views"; "events" => replayed);
        }
        if ack_early {
            warn!(logger, "UNSAFE: posts are acknowledged before they are written"; "env" => UNSAFE_ACK_ENV);
        }
        let disk_sync = DiskSync::open(dir, &dir.join(DB_DIR)).map_err(|e| dir_error(dir, e))?;
        let shared = Arc::new(Shared {
            db,
            log,
            views,
            published: RwLock::new(channels.clone()),
            visible: watch::Sender::new(last_id),
            logger,
            disk_sync: Mutex::new(disk_sync),
            #[cfg(feature = "faults")]
            faults: faults::Faults::default(),
            _lock: lock,
        });
        let (archive_tx, archiver) = match archive {
            Some(config) => {
                let (tx, rx) = mpsc::channel();
                (Some(tx), Some(start_archiver(shared.clone(), config, rx)?))
            }
            None => (None, None),
        };
        let writer = Writer::new(shared.clone(), channels, reserved, ack_early, archive_tx);
        let (tx, rx) = mpsc::channel();
        let handle = thread::Builder::new()
            .name("relay-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Io(format!("cannot start the writer thread: {e}")))?;
        Ok(Store {
            inner: Arc::new(Inner {
                shared,
                queue: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(handle)),
                archiver: Mutex::new(archiver),
            }),
        })
    }

    /// Appends a message; returns it with its id once it is durable.
    pub async fn append(&self, message: NewMessage) -> Result<Message, StoreError> {
        let (reply, answer) = oneshot::channel();
        {
            let queue = self.inner.queue.lock().unwrap_or_else(|p| p.into_inner());
            let tx = queue.as_ref().ok_or(StoreError::Closed)?;
            tx.send(Request { message, reply }).map_err(|_| StoreError::Closed)?;
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }

    fn channel(&self, name: &str) -> Option<views::ChannelRecord> {
        self.inner.shared.published.read().unwrap_or_else(|p| p.into_inner()).get(name).copied()
    }

    /// The id of the last message of `channel` readers can see (0 when it has none).
    pub fn channel_last_id(&self, channel: &str) -> u64 {
        self.channel(channel).map_or(0, |c| c.last_id)
    }

    /// Up to `limit` messages of `channel` with id > `after`, oldest first.
    pub fn since(&self, channel: &str, after: u64, limit: usize) -> Result<Vec<StoredMessage>, StoreError> {
        match self.channel(channel) {
            Some(c) => self.inner.shared.views.since(c.no, after, c.last_id, limit),
            None => Ok(Vec::new()),
        }
    }

    /// The last `limit` messages of `channel`, oldest first.
    pub fn tail(&self, channel: &str, limit: usize) -> Result<Vec<StoredMessage>, StoreError> {
        match self.channel(channel) {
            Some(c) => self.inner.shared.views.tail(c.no, c.last_id, limit),
            None => Ok(Vec::new()),
        }
    }

    /// The last `limit` messages of `channel` with id < `before`, oldest first.
    pub fn before(&self, channel: &str, before: u64, limit: usize) -> Result<Vec<StoredMessage>, StoreError> {
        match self.channel(channel) {
            Some(c) if before > 0 => self.inner.shared.views.tail(c.no, c.last_id.min(before - 1), limit),
            _ => Ok(Vec::new()),
        }
    }

    /// Every channel that holds a message, sorted by name.
    pub fn channels(&self) -> Vec<ChannelStats> {
        let published = self.inner.shared.published.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = published
            .iter()
            .map(|(name, c)| ChannelStats { name: name.clone(), count: c.count, last_id: c.last_id })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Messages stored, over all channels.
    pub fn message_count(&self) -> u64 {
        self.inner.shared.published.read().unwrap_or_else(|p| p.into_inner()).values().map(|c| c.count).sum()
    }

    /// The id of the last message readers can see.
    pub fn last_id(&self) -> u64 {
        *self.inner.shared.visible.borrow()
    }

    /// One chunk of an export (see [`ExportFilter`]): up to `upto`, which the caller fixes at the
    /// start so the export is a snapshot.
    pub fn export_chunk(
        &self,
        filter: &ExportFilter,
        after: u64,
        upto: u64,
    ) -> Result<(Vec<u8>, Option<u64>), StoreError> {
        offline::export_chunk(&self.inner.shared.log, filter, after, upto)
    }

    /// Whether each commit is also made durable against a power cut (on by default); off
    /// keeps sled's own guarantee, survival of a process crash (see `store/disk_sync.rs`).
    pub fn set_power_safe(&self, on: bool) {
        self.inner.shared.disk_sync.lock().unwrap_or_else(|p| p.into_inner()).set_enabled(on);
    }

    /// For I/O fault tests (the `faults` feature): from now on, fail the writer's disk
    /// operations as `plan` says (`None` clears it). See `store/faults.rs`.
    #[cfg(feature = "faults")]
    pub fn inject_faults(&self, plan: Option<FaultPlan>) {
        self.inner.shared.faults.arm(plan);
    }

    /// Watches the last visible id: woken after each commit.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.shared.visible.subscribe()
    }

    /// Stops taking appends, lets the writer finish what is queued, and flushes. Blocks: call it
    /// from a blocking context. Appends after this get [`StoreError::Closed`].
    pub fn close(&self) -> Result<(), StoreError> {
        self.inner.close()
    }
}

impl Inner {
    fn close(&self) -> Result<(), StoreError> {
        drop(self.queue.lock().unwrap_or_else(|p| p.into_inner()).take());
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        let result = match handle.map(thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(StoreError::Io("the writer thread panicked".into())),
            None => Ok(()),
        };
        // The writer is gone, so the archiver's queue is closed: it finishes and stops.
        if let Some(archiver) = self.archiver.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = archiver.join();
        }
        result
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            error!(self.shared.logger, "closing the store failed"; "error" => %e);
        }
    }
}

#[cfg(test)]
mod tests;
