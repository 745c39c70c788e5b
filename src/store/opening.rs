//! Opening the store and closing it: the log where the backend says, the views caught up with
//! it, the shared state, the projections' threads; on close, the log's last answers, the
//! projections flushed, the threads joined.

use super::database::{self, Options};
use super::event_log::backend::Backend;
use super::event_log::nats::{NatsLog, TextLimit};
use super::event_log::sled::WriterSetup;
use super::event_log::EventLog;
use super::projections;
use super::projections::archive::ArchiveConfig;
use super::projections::projector::Projector;
use super::recovery;
use super::shared::Shared;
use super::StoreError;
use slog::{error, warn, Logger};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::thread;
use tokio::sync::watch;

pub(super) struct Inner {
    pub(super) shared: Arc<Shared>,
    /// The log as what it is, for the tests that look inside it.
    #[cfg(test)]
    pub(super) sled_log: Arc<super::event_log::sled::SledLog>,
    /// The archive's and the search index's threads, joined on close.
    projection_threads: Mutex<Vec<thread::JoinHandle<()>>>,
    pub(super) search: Option<Arc<projections::search::SearchIndex>>,
    pub(super) has_archive: bool,
    /// The `faults` feature's `CLAUDE_CODEX_UNSAFE_ACK_BEFORE_FLUSH`: answer posters without
    /// waiting.
    pub(super) ack_early: bool,
}

impl Inner {
    /// Opens the log where `backend` says, catches the views up with it (or, in nats mode
    /// without the stream yet, serves them as they are and catches up once it is reached), and
    /// starts the projections' threads.
    pub(super) fn open(
        dir: &Path,
        archive: Option<&ArchiveConfig>,
        options: Options,
        backend: &Backend,
        logger: Logger,
    ) -> Result<Inner, StoreError> {
        #[cfg(feature = "faults")]
        let ack_early = super::event_log::faults::ack_early_asked();
        #[cfg(not(feature = "faults"))]
        let ack_early = false;
        let nats = match backend.stream() {
            None => None,
            Some(settings) => {
                // Left at its default, the limit gives way to the servers' max_payload.
                let explicit = options.max_text_bytes != crate::values::DEFAULT_MAX_TEXT_BYTES;
                let limit = TextLimit { bytes: options.max_text_bytes, explicit };
                Some(Arc::new(NatsLog::serve(settings, limit, logger.clone())?))
            }
        };
        // A stream not reached yet: the views serve as they are, and catch up once it is.
        let unreached = nats.clone().filter(|log| !log.linked());
        let (database, last_id, channels) = match (&nats, &unreached) {
            (_, Some(_)) => recovery::local(dir, options, &logger)?,
            (Some(log), None) => {
                let (database, channels) = recovery::recover(dir, options, Some(&**log), &logger)?;
                (database, log.last_id()?, channels)
            }
            (None, None) => {
                let (database, channels) = recovery::recover(dir, options, None, &logger)?;
                let last_id = database.log.last_id().map_err(|e| e.found_in(&database::db_dir(dir)))?;
                (database, last_id, channels)
            }
        };
        if ack_early {
            warn!(logger, "UNSAFE: posts are acknowledged before they are written (a test switch)");
        }
        let database::Database { db, log: sled_log, channel_views, lock } = database;
        let channel_views = Arc::new(channel_views);
        #[cfg(feature = "faults")]
        let faults = Arc::new(super::event_log::faults::Faults::default());
        let views = channel_views.clone();
        let sled_log = Arc::new(sled_log);
        let log: Arc<dyn EventLog> = match nats {
            Some(nats) => nats,
            None => {
                sled_log.start(WriterSetup {
                    db: db.clone(),
                    power_safe: options.power_safe,
                    // The views' blocks before sled's flush, which may make the views naming them durable.
                    before_flush: Box::new(move |durable| views.sync_blocks(durable)),
                    ack_early,
                    logger: logger.clone(),
                    #[cfg(feature = "faults")]
                    faults: faults.clone(),
                })?;
                sled_log.clone()
            }
        };
        #[cfg(feature = "faults")]
        let log: Arc<dyn EventLog> =
            Arc::new(super::event_log::faults::FaultyLog { inner: log, faults: faults.clone() });
        let shared = Arc::new(Shared {
            log: log.clone(),
            db,
            channel_views,
            published: RwLock::new(channels.clone()),
            commits: watch::Sender::new(last_id),
            logger,
            failed: Mutex::new(None),
            archived: AtomicU64::new(0),
            following: AtomicBool::new(unreached.is_none()),
            group_observer: OnceLock::new(),
            #[cfg(feature = "faults")]
            faults,
            _lock: lock,
        });
        let mut followers = Vec::new();
        let mut threads = Vec::new();
        if let Some(config) = archive {
            let (tx, rx) = projections::projector::groups();
            followers.push(tx);
            threads.push(projections::archive::spawn(shared.clone(), config, rx)?);
        }
        let search_index = match options.search {
            true => {
                let index = Arc::new(projections::search::SearchIndex::open(dir)?);
                let (tx, rx) = projections::projector::groups();
                followers.push(tx);
                threads.push(projections::search::spawn(shared.clone(), index.clone(), rx)?);
                Some(index)
            }
            false => None,
        };
        // The views follow the log (the follower holds the shared state; `close` drops it).
        match unreached {
            Some(nats) => threads.push(recovery::attach(nats, shared.clone(), last_id, channels, followers)?),
            None => {
                log.follow(last_id, Projector::new(shared.clone(), channels, followers).into_follower())?;
                shared.erase_redacted()?;
                shared.forget_expired()?;
            }
        }
        Ok(Inner {
            shared,
            #[cfg(test)]
            sled_log,
            has_archive: archive.is_some(),
            search: search_index,
            projection_threads: Mutex::new(threads),
            ack_early,
        })
    }

    pub(super) fn close(&self) -> Result<(), StoreError> {
        // Answers what is queued, and drops the log's followers: the projector, and with it the
        // archive thread's feed.
        let mut result = self.shared.log.close();
        if result.is_ok() && self.shared.failure().is_none() {
            // What the projector applied after the log's last flush: so the next open need not
            // replay it.
            result = self.shared.flush_projections();
        }
        for thread in std::mem::take(&mut *self.projection_threads.lock().unwrap_or_else(|p| p.into_inner()))
        {
            let _ = thread.join();
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
