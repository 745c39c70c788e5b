//! Opening a data directory's sled database: its options (cache, compression), with the
//! directory's lock held, as the parts the store is made of (the event log, the channel views).

use crate::lock::{acquire, NotLocked};
use crate::store::event_log::sled::{Events, SledLog};
use crate::store::projections::channel_views::ChannelViews;
use crate::store::StoreError;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

/// sled's page cache unless configured (`cache_mb`). sled counts the bytes pages take on disk,
/// compressed, so the pages a scan reads in can take several times this much memory. What the
/// relay reads from sled (the log's newest pages, the views' index) fits in far less
/// (docs/benchmarks.md, target 7).
pub const DEFAULT_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// zstd level for new databases: messages are text and compress well at the fast levels.
const COMPRESSION_LEVEL: i32 = 1;

/// How long to wait for sled's file lock once the relay's own lock is held (see `open_sled`).
const SLED_LOCK_WAIT: Duration = Duration::from_secs(5);

const DB_DIR: &str = "db";
/// Where `compact` writes the new database, and where the old one waits to be removed.
const COMPACTING_DIR: &str = "db.compacting";
const OLD_DIR: &str = "db.old";
/// Records copied per batch while compacting.
const COMPACT_BATCH: usize = 4096;

/// How to open the store's database.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// sled's page cache, in bytes (a target sled may exceed).
    pub cache_bytes: u64,
    /// Whether a database created now compresses its pages (zstd). sled cannot switch an
    /// existing database, which keeps what it was made with.
    pub compress: bool,
    /// Whether each commit is also made durable against a power cut (`fsync`); off keeps
    /// sled's own guarantee, survival of a process crash (see `store/sled_log/disk_sync.rs`).
    pub power_safe: bool,
    /// Whether the store keeps the full-text search index (`search/`), a projection of the log.
    pub search: bool,
    /// The largest text a post may carry (`max_text_bytes`): in nats mode, the servers must take
    /// a record that size.
    pub max_text_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cache_bytes: DEFAULT_CACHE_BYTES,
            compress: true,
            power_safe: true,
            search: true,
            max_text_bytes: crate::values::DEFAULT_MAX_TEXT_BYTES,
        }
    }
}

/// The sled database of `dir`.
pub(super) fn db_dir(dir: &Path) -> PathBuf {
    dir.join(DB_DIR)
}

/// Whether the sled database in `db_dir` compresses its pages (`new`: what a database that does
/// not exist yet will do).
pub(super) fn compressed(db_dir: &Path, new: bool) -> bool {
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
    let compress = compressed(&db_dir(dir), options.compress);
    loop {
        let config = sled::Config::new()
            .path(db_dir(dir))
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
            Err(sled::Error::Io(e)) => return Err(StoreError::dir(dir, e)),
            Err(other) => return Err(other.into()),
        }
    }
}

/// A data directory's database, opened with the directory's lock held.
pub(super) struct Database {
    pub(super) db: sled::Db,
    pub(super) log: SledLog,
    pub(super) channel_views: ChannelViews,
    pub(super) lock: File,
}

/// The data directory's lock file.
const LOCK_FILE: &str = "relay.lock";

/// Takes the lock of `dir` (creating the directory), waiting while a dying relay holds it; held
/// until the file is dropped.
fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| StoreError::dir(dir, e))?;
    acquire(&dir.join(LOCK_FILE), dir).map_err(|e| match e {
        NotLocked::Held(pid) => StoreError::Locked { dir: dir.to_owned(), pid },
        NotLocked::Io(e) => StoreError::dir(dir, e),
    })
}

impl Database {
    /// Opens the database of `dir`, creating it (and the directory) when there is none.
    pub(super) fn open(dir: &Path, options: Options) -> Result<Database, StoreError> {
        let lock = lock_dir(dir)?;
        Database::open_locked(dir, options, lock)
    }

    /// Opens the store of `dir` for a command on a stopped relay: a directory without one is
    /// an error, not a new empty store.
    pub(super) fn open_existing(dir: &Path) -> Result<Database, StoreError> {
        if dir.join(COMPACTING_DIR).is_dir() {
            // A compaction cut short between its renames: finished (under the lock) first.
            lock_dir(dir).and_then(|_lock| recover_compaction(dir))?;
        }
        if !db_dir(dir).is_dir() {
            return Err(StoreError::NoStore { dir: dir.to_owned() });
        }
        Database::open(dir, Options::default())
    }

    fn open_locked(dir: &Path, options: Options, lock: File) -> Result<Database, StoreError> {
        recover_compaction(dir)?;
        let found_in = |e: StoreError| e.found_in(&db_dir(dir));
        let db = open_sled(dir, options).map_err(found_in)?;
        let log = SledLog::open(&db, dir, &db_dir(dir)).map_err(found_in)?;
        let channel_views = ChannelViews::open(&db, dir).map_err(found_in)?;
        Ok(Database { db, log, channel_views, lock })
    }

    /// Makes everything written so far durable: the blocks, then the database that names them.
    pub(super) fn flush(&self) -> Result<(), StoreError> {
        self.channel_views.flush(&self.db)
    }

    /// Flushes, closes the database and opens it again, keeping the lock: sled keeps what a
    /// long replay read far past its cache size, and only closing lets it go.
    pub(super) fn reopen(
        self,
        dir: &Path,
        options: Options,
        after_close: impl FnOnce(),
    ) -> Result<Database, StoreError> {
        self.flush()?;
        let Database { db, log, channel_views, lock } = self;
        drop((channel_views, log, db));
        after_close();
        Database::open_locked(dir, options, lock)
    }
}

fn dir_error(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::dir(path, e)
}

/// Makes a data directory's renames durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(dir_error(dir))
}

/// Syncs every file under `path`, and the folders holding them.
fn sync_tree(path: &Path) -> Result<(), StoreError> {
    for entry in std::fs::read_dir(path).map_err(dir_error(path))?.flatten() {
        let file = entry.path();
        if file.is_dir() {
            sync_tree(&file)?;
        } else {
            File::open(&file).and_then(|f| f.sync_all()).map_err(dir_error(&file))?;
        }
    }
    sync_dir(path)
}

/// Finishes a `compact` that a crash cut short, or undoes it: a new database not yet in place
/// is dropped (it was still being written), one in place lets the old one go, and one complete
/// but not yet moved in (the old one already moved out) is moved in.
fn recover_compaction(dir: &Path) -> Result<(), StoreError> {
    let (db, new, old) = (db_dir(dir), dir.join(COMPACTING_DIR), dir.join(OLD_DIR));
    if !db.exists() && new.exists() && old.exists() {
        std::fs::rename(&new, &db).map_err(dir_error(dir))?;
        sync_dir(dir)?;
    }
    for leftover in [new, old] {
        if leftover.exists() && db.exists() {
            std::fs::remove_dir_all(&leftover).map_err(dir_error(&leftover))?;
        }
    }
    Ok(())
}

/// Rewrites the sled database of `dir` (the relay stopped) into a new one that holds only
/// what is live, and puts it in the old one's place. sled
/// keeps the old versions of a record it rewrote (a redacted message's, for one) in its files
/// until it reuses their space; the new files hold none of them.
pub(super) fn compact(dir: &Path) -> Result<Compacted, StoreError> {
    let _lock = lock_dir(dir)?;
    recover_compaction(dir)?;
    if !db_dir(dir).is_dir() {
        return Err(StoreError::NoStore { dir: dir.to_owned() });
    }
    let (db, new) = (db_dir(dir), dir.join(COMPACTING_DIR));
    let before = crate::metrics::dir_bytes(&db);
    let mut sealed = 0;
    {
        let old = open_sled(dir, Options::default())?;
        let copy = sled::Config::new()
            .path(&new)
            .use_compression(compressed(&db, true))
            .compression_factor(COMPRESSION_LEVEL)
            .open()?;
        // With the keys, to seal the messages' records an older relay wrote as they are copied.
        let events = Events::open(&copy, dir)?;
        for name in old.tree_names() {
            let (from, to) = (old.open_tree(&name)?, copy.open_tree(&name)?);
            let sealing = (&*name == b"events").then_some(&events);
            let (mut chunk, mut copied) = (Vec::with_capacity(COMPACT_BATCH), 0);
            for item in from.iter() {
                let (key, value) = item?;
                chunk.push((key, value.to_vec()));
                copied += 1;
                if chunk.len() == COMPACT_BATCH {
                    sealed += copy_chunk(&to, sealing, &mut chunk)?;
                }
            }
            sealed += copy_chunk(&to, sealing, &mut chunk)?;
            // The copy is read back whole before it replaces anything.
            if to.iter().filter(Result::is_ok).count() != copied {
                drop((events, old, copy));
                let _ = std::fs::remove_dir_all(&new);
                let tree = String::from_utf8_lossy(&name).into_owned();
                return Err(StoreError::corrupt(format!(
                    "compact: the copy of the tree {tree} does not hold its {copied} records; nothing was changed"
                )));
            }
        }
        copy.flush()?;
    }
    // sled lets go of its files from a thread of its own once the last handle is gone.
    thread::sleep(Duration::from_millis(100));
    // Every file of the new database on disk before it takes the old one's place.
    sync_tree(&new)?;
    sync_dir(dir)?;
    std::fs::rename(&db, dir.join(OLD_DIR)).map_err(dir_error(dir))?;
    std::fs::rename(&new, &db).map_err(dir_error(dir))?;
    sync_dir(dir)?;
    recover_compaction(dir)?;
    sync_dir(dir)?;
    Ok(Compacted { before, after: crate::metrics::dir_bytes(&db), sealed })
}

/// Writes `chunk` (key, value) to `to` in one batch and empties it, first sealing, with
/// `sealing`, the records of messages an older relay wrote unsealed; returns how many it sealed.
fn copy_chunk(
    to: &sled::Tree,
    sealing: Option<&Events>,
    chunk: &mut Vec<(sled::IVec, Vec<u8>)>,
) -> Result<u64, StoreError> {
    let sealed = match sealing {
        Some(events) => events.seal_plain(chunk)?,
        None => 0,
    };
    let mut batch = sled::Batch::default();
    for (key, value) in chunk.drain(..) {
        batch.insert(key, value);
    }
    to.apply_batch(batch)?;
    Ok(sealed)
}

/// What [`compact`] did: the database's bytes before and after, and the messages' records it
/// sealed (written by a relay before records were sealed).
pub(super) struct Compacted {
    pub(super) before: u64,
    pub(super) after: u64,
    pub(super) sealed: u64,
}
