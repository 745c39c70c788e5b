//! Rebuilding the projections from the log (`rebuild`, `replay`, and after an `import`): drop
//! them and replay the whole log; and the log a command reads, where the backend says.

use crate::store::database::Database;
use crate::store::event_log::backend::Backend;
use crate::store::event_log::nats::NatsLog;
use crate::store::event_log::EventLog;
use crate::store::projections::archive::{Archive, ArchiveConfig, Checkpoint};
use crate::store::recovery::{catch_up, Progress};
use crate::store::StoreError;
use std::path::Path;

/// Events a command reads from the log at once: export, check and replay use constant memory.
pub(crate) const CHUNK: usize = 1024;

/// Drops every projection (the channel views, and the text archive when given) and rebuilds it
/// from the log. Returns the number of events replayed. Needs the data directory to itself (the
/// relay must not be running on it).
/// In nats mode the log is the stream; the data directory holds only the projections.
pub fn rebuild(
    dir: &Path,
    archive: Option<&ArchiveConfig>,
    backend: &Backend,
    progress: Progress,
) -> Result<u64, StoreError> {
    let database = Database::open_existing(dir)?;
    let stream = stream_of(backend)?;
    let log = log_of(&database, &stream);
    let replayed = rebuild_projections(&database, log, archive, progress)?;
    database.flush()?;
    crate::store::projections::search::rebuild(dir, log)?;
    Ok(replayed)
}

/// The stream a command reads in nats mode, connected; `None` in sled mode.
pub(crate) fn stream_of(backend: &Backend) -> Result<Option<NatsLog>, StoreError> {
    backend.stream().map(|settings| NatsLog::connect(settings, 0, crate::usage_log::discard())).transpose()
}

/// The log a command reads: the stream when there is one, else the data directory's own.
pub(crate) fn log_of<'a>(database: &'a Database, stream: &'a Option<NatsLog>) -> &'a dyn EventLog {
    match stream {
        Some(stream) => stream,
        None => &database.log,
    }
}

/// Drops the views (and the archive) of `database` and replays the whole of `log` into them;
/// the archive on a thread of its own, since the two only share the log they read.
pub(crate) fn rebuild_projections(
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
    let written = archive.follow(log, &mut Default::default(), checkpoint, 0, log.last_id()?)?;
    // Lines of messages the log still holds though they expired (records a crash left).
    archive.sweep_when_due(written).map_err(archive_error)
}
