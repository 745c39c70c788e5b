//! Bringing the channel views up to date with the log on open: catch up from the checkpoint,
//! or rebuild views that an older version laid out or a power cut damaged; in nats mode with the
//! stream not reachable yet, serve the views as they are and catch up once it is (`local`,
//! `attach`). (`rebuild`, which
//! drops every projection and replays the whole log, is `commands/rebuild.rs`.)

use crate::store::database::{db_dir, Database, Options};
use crate::store::event_log::nats::NatsLog;
use crate::store::event_log::EventLog;
use crate::store::projections::channel_views::{ChannelViews, Channels};
use crate::store::projections::projector::{redacted, GroupSender, Projector};
use crate::store::shared::Shared;
use crate::store::StoreError;
use slog::{error, info, warn, Logger};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

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
pub(crate) fn recover(
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
pub(crate) fn catch_up(
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
    let (mut checkpoint, mut channels) = views.load(Some(log))?;
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
        // The log forgets what expired again: a crash may have kept those records.
        views.forget_in(log, views.apply(&events, &mut channels)?)?;
        log.erase(&redacted(&events))?;
        replayed += events.len() as u64;
        progress(checkpoint, last_id);
    }
    Ok((channels, replayed))
}

/// Opens the database of `dir` with the channel views as they are, for an instance that cannot
/// reach its log yet (nats mode): they serve their sealed blocks until [`attach`] reads the rest
/// back. Views that cannot be used without the log (an older layout, blocks a power cut lost)
/// are cleared, and rebuilt once it is reached. Returns the views' checkpoint and channels.
pub(crate) fn local(
    dir: &Path,
    options: Options,
    logger: &Logger,
) -> Result<(Database, u64, Channels), StoreError> {
    let database = Database::open(dir, options)?;
    let views = &database.channel_views;
    let found_in = |e: StoreError| e.found_in(&db_dir(dir));
    let mut loaded = match views.is_current().map_err(found_in)? {
        true => Some(views.load(None).map_err(found_in)?),
        false => None,
    };
    let problem = match loaded {
        None => Some("they are laid out by an older version".to_owned()),
        Some(_) => views.blocks_problem().map_err(found_in)?,
    };
    if let Some(why) = problem {
        views.clear()?;
        loaded = Some((0, Channels::new()));
        warn!(logger, "the channel views are rebuilt from the log once it is reached"; "why" => why);
    }
    views.cut_blocks()?;
    let (checkpoint, channels) = loaded.unwrap_or_default();
    Ok((database, checkpoint, channels))
}

/// For a store opened by [`local`]: waits on its own thread until `log` is reached, checks that
/// the views were built from it and are not ahead of it, reads their open messages back, then
/// has the projector follow the log from the checkpoint (which catches the views up) and marks
/// the store as following. A read that fails (a cluster just back can time out for a while) is
/// tried again; a check that fails stops the store taking writes, saying why: restarting the
/// relay rebuilds the views.
pub(crate) fn attach(
    log: Arc<NatsLog>,
    shared: Arc<Shared>,
    checkpoint: u64,
    channels: Channels,
    followers: Vec<GroupSender>,
) -> Result<thread::JoinHandle<()>, StoreError> {
    let attaching = move || {
        if !log.wait_linked() {
            return;
        }
        let mut pause = Duration::from_millis(250);
        let channels = loop {
            let mut read_back = channels.clone();
            match reattach(&*log, &shared.channel_views, checkpoint, &mut read_back) {
                Ok(()) => break read_back,
                Err(Reattach::Retry(e)) if !log.is_closed() => {
                    warn!(shared.logger, "reading the channel views' newest messages back failed; trying again"; "error" => %e);
                    thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(Reattach::Retry(_)) => return,
                Err(Reattach::Refuse(why)) => {
                    error!(shared.logger, "the channel views cannot follow the log"; "error" => &why);
                    shared.fail(why);
                    return;
                }
            }
        };
        let projector = Projector::new(shared.clone(), channels, followers);
        // Fails only once the log is closed.
        if log.follow(checkpoint, projector.into_follower()).is_ok() {
            shared.following.store(true, Ordering::Release);
            info!(shared.logger, "the channel views follow the stream"; "from" => checkpoint);
            let _ = shared.erase_redacted().and_then(|()| shared.forget_expired());
        }
    };
    thread::Builder::new()
        .name("relay-attach".into())
        .spawn(attaching)
        .map_err(|e| StoreError::io("cannot start the thread that waits for the log", e))
}

/// Why [`reattach`] failed: worth trying again, or not.
enum Reattach {
    Retry(StoreError),
    Refuse(String),
}

/// The checks and the read-back of [`attach`].
fn reattach(
    log: &dyn EventLog,
    views: &ChannelViews,
    checkpoint: u64,
    channels: &mut Channels,
) -> Result<(), Reattach> {
    let failed = |e: StoreError| match e {
        StoreError::Nats(_) => Reattach::Retry(e),
        e => Reattach::Refuse(e.to_string()),
    };
    let origin = log.origin().unwrap_or_default();
    if let Some(seen) = views.origin().map_err(failed)?.filter(|seen| *seen != origin) {
        return Err(Reattach::Refuse(format!(
            "the channel views were built from {seen}, and the log is now {origin}: restart the relay to rebuild them"
        )));
    }
    let last = log.last_id().map_err(failed)?;
    if checkpoint > last {
        return Err(Reattach::Refuse(format!(
            "the channel views' checkpoint {checkpoint} is past the log's last event {last}: restart the relay to rebuild them"
        )));
    }
    views.set_origin(&origin).map_err(failed)?;
    views.read_back(log, checkpoint, channels).map_err(failed)
}
