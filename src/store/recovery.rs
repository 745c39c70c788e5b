//! Bringing the projections up to date with the log: on open (catch up from the checkpoint,
//! or rebuild views that an older version laid out or a power cut damaged), and on `rebuild`
//! and `import` (drop them and replay the whole log).

use super::archive::{Archive, ArchiveConfig, Checkpoint};
use super::channel_views::{ChannelViews, Channels};
use super::database::{db_dir, Database, Options};
use super::event_log::EventLog;
use super::nats_log::{NatsConfig, NatsLog};
use super::StoreError;
use slog::{info, warn, Logger};
use std::path::Path;

/// Events replayed into the views per batch when catching up or rebuilding.
const REPLAY_CHUNK: usize = 16384;

/// Events replayed on open past which the database is opened again before serving, to shed
/// what the replay left in sled's memory (lower in tests, so they cover it).
const REOPEN_AFTER_REPLAY: u64 = if cfg!(test) { 500 } else { 100_000 };

/// Reports how far a replay got: the id reached, and the log's last id.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// What hands memory the process freed back to the operating system, when the binary knows
/// how (glibc's `malloc_trim`, set by `main.rs`; this crate has no unsafe code).
static RELEASE_FREED_MEMORY: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Sets what opening a store calls after closing a database that a long replay filled: glibc's
/// malloc keeps freed memory otherwise (docs/benchmarks.md, target 7).
pub fn set_release_freed_memory(release: fn()) {
    let _ = RELEASE_FREED_MEMORY.set(release);
}

/// Opens the database of `dir` and catches the channel views up with the log: `external` when
/// given (a NATS stream), else the database's own. Returns it with the channel records. A
/// rebuild is announced on `logger` first, with why: it takes a while.
pub(super) fn recover(
    dir: &Path,
    options: Options,
    external: Option<&dyn EventLog>,
    logger: &Logger,
) -> Result<(Database, Channels), StoreError> {
    let found_in = |e: StoreError| e.found_in(&db_dir(dir));
    let mut database = Database::open(dir, options)?;
    let events = external.unwrap_or(&database.log).last_id().map_err(found_in)?;
    let mut rebuilding = |why: &str| warn!(logger, "rebuilding the channel views from the log"; "why" => why, "events" => events);
    let (mut channels, replayed) =
        catch_up(external.unwrap_or(&database.log), &database.channel_views, &mut |_, _| {}, &mut rebuilding)
            .map_err(found_in)?;
    if replayed > REOPEN_AFTER_REPLAY {
        let release = || {
            if let Some(release) = RELEASE_FREED_MEMORY.get() {
                release();
            }
        };
        database = database.reopen(dir, options, release)?;
        let log = external.unwrap_or(&database.log);
        (channels, _) =
            catch_up(log, &database.channel_views, &mut |_, _| {}, &mut rebuilding).map_err(found_in)?;
    }
    if replayed > 0 {
        info!(logger, "caught up channel views"; "events" => replayed);
    }
    Ok((database, channels))
}

/// Applies every event after the views' checkpoint. Views that must be rebuilt from the whole
/// log are cleared first, and `rebuilding` is told why. Returns the channel records and how many
/// events were replayed.
pub(super) fn catch_up(
    log: &dyn EventLog,
    views: &ChannelViews,
    progress: Progress,
    rebuilding: &mut dyn FnMut(&str),
) -> Result<(Channels, u64), StoreError> {
    let last_id = log.last_id()?;
    if !views.is_current()? {
        // Laid out by an older version: a projection, so rebuilt from the log.
        views.clear()?;
        rebuilding("they are laid out by an older version");
    }
    if let Some(origin) = log.origin() {
        if let Some(seen) = views.origin()?.filter(|seen| *seen != origin) {
            // The same ids would name other messages: nothing in the views can be kept.
            views.clear()?;
            rebuilding(&format!("they were built from {seen}, and the log is now {origin}"));
        }
        views.set_origin(&origin)?;
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
    rebuild_on(dir, archive, None, progress)
}

/// [`rebuild`] from `stream` when given (nats mode), else from the data directory's own log.
pub fn rebuild_on(
    dir: &Path,
    archive: Option<&ArchiveConfig>,
    stream: Option<&NatsConfig>,
    progress: Progress,
) -> Result<u64, StoreError> {
    let database = Database::open_existing(dir)?;
    let stream = stream_of(stream)?;
    let log = log_of(&database, &stream);
    let replayed = rebuild_projections(&database, log, archive, progress)?;
    database.flush()?;
    super::search::rebuild(dir, log)?;
    Ok(replayed)
}

/// The stream a command reads in nats mode, connected; `None` in sled mode.
pub(super) fn stream_of(config: Option<&NatsConfig>) -> Result<Option<NatsLog>, StoreError> {
    config.map(|config| NatsLog::connect(config, crate::usage_log::discard())).transpose()
}

/// The log a command reads: the stream when there is one, else the data directory's own.
pub(super) fn log_of<'a>(database: &'a Database, stream: &'a Option<NatsLog>) -> &'a dyn EventLog {
    match stream {
        Some(stream) => stream,
        None => &database.log,
    }
}

/// Drops the views (and the archive) of `database` and replays the whole of `log` into them;
/// the archive on a thread of its own, since the two only share the log they read.
pub(super) fn rebuild_projections(
    database: &Database,
    log: &dyn EventLog,
    archive: Option<&ArchiveConfig>,
    progress: Progress,
) -> Result<u64, StoreError> {
    let views = &database.channel_views;
    let checkpoint = Checkpoint::open(&database.db)?;
    std::thread::scope(|scope| {
        let archived = archive.map(|config| scope.spawn(|| rebuild_archive(log, &checkpoint, config)));
        views.clear()?;
        let (_, replayed) = catch_up(log, views, progress, &mut |_| {})?;
        if let Some(archived) = archived {
            archived.join().map_err(|_| StoreError::Crashed("rebuilding the archive panicked".into()))??;
        }
        Ok(replayed)
    })
}

fn rebuild_archive(
    log: &dyn EventLog,
    checkpoint: &Checkpoint,
    config: &ArchiveConfig,
) -> Result<(), StoreError> {
    let archive_error = |e| StoreError::io(format!("archive {}", config.path.display()), e);
    Archive::remove_files(config).map_err(archive_error)?;
    checkpoint.set(0)?;
    let (mut archive, _) = Archive::open(config).map_err(archive_error)?;
    archive.follow(log, checkpoint, 0, log.last_id()?)?;
    Ok(())
}
