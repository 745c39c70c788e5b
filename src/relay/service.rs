//! The service's handle: [`Relay`], its settings and its errors, and what belongs to no one
//! concern: readiness, metrics, export, stop and close. Each concern adds its own `impl Relay`
//! in a module beside this one.

use super::limits::MAX_WAITERS;
use super::presence::Presence;
use crate::metrics::{Metrics, Snapshot};
use crate::store::{ExportFilter, Store, StoreError};
use crate::values::{Invalid, Name};
use slog::Logger;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Refused: nothing was stored.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The store could not do it: nothing was acknowledged.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Too many calls of one kind at once; retry later.
    #[error("{0}")]
    Busy(String),
    /// What was asked about does not exist (an unknown message id).
    #[error("{0}")]
    Missing(String),
    /// It cannot be done to what it names as that stands now (a message redacted already).
    #[error("{0}")]
    Conflict(String),
    /// A feature this relay's settings turned off: asking again will not help.
    #[error("{0}")]
    Off(String),
    /// Refused for who asked: nothing was stored.
    #[error("{}", .0.message)]
    Denied(super::caller::Denied),
}

/// What the service takes from the settings.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Channels listed even before they hold a message.
    pub channels: Vec<Name>,
    /// The largest text a post may carry.
    pub max_text_bytes: usize,
    /// What `/metrics` reports the disk use of, by label (see [`Metrics::new`]).
    pub disk: Vec<(&'static str, std::path::PathBuf)>,
    /// What history the channels keep.
    pub retention: super::limits::Retention,
}

#[derive(Clone)]
pub struct Relay {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) store: Store,
    pub(super) channels: Vec<Name>,
    pub(super) max_text_bytes: usize,
    pub(super) usage_log: Logger,
    pub(super) waiters: Arc<Semaphore>,
    pub(super) metrics: Arc<Metrics>,
    /// Cancelled when the relay stops, so open waits answer at once instead of holding the stop.
    pub(super) stopping: CancellationToken,
    pub(super) presence: Arc<Presence>,
    /// Held from a redaction's check to its append, so one message is never redacted twice
    /// (the log's record is rewritten by the first only).
    pub(super) redacting: tokio::sync::Mutex<()>,
    pub(super) retention: super::limits::Retention,
}

impl Relay {
    pub fn new(store: Store, settings: Settings, usage_log: Logger) -> Relay {
        let metrics = Arc::new(Metrics::new(settings.disk));
        let observer = metrics.clone();
        store.observe_groups(move |size| observer.group_committed(size));
        Relay {
            inner: Arc::new(Inner {
                store,
                channels: settings.channels,
                max_text_bytes: settings.max_text_bytes,
                usage_log,
                waiters: Arc::new(Semaphore::new(MAX_WAITERS)),
                metrics,
                stopping: CancellationToken::new(),
                presence: Presence::new(),
                redacting: tokio::sync::Mutex::new(()),
                retention: settings.retention,
            }),
        }
    }

    /// A relay on a store in `dir`, with default settings, for the unit tests.
    #[cfg(test)]
    pub(crate) fn for_tests(dir: &std::path::Path) -> Relay {
        let logger = crate::usage_log::discard();
        let settings = Settings { max_text_bytes: 1000, ..Default::default() };
        let store = crate::store::Store::open(dir, None, Default::default(), logger.clone()).unwrap();
        Relay::new(store, settings, logger)
    }

    /// The id of the last message readers can see.
    pub fn last_id(&self) -> u64 {
        self.inner.store.last_id()
    }

    /// Messages stored, over all channels.
    pub fn message_count(&self) -> u64 {
        self.inner.store.message_count()
    }

    /// Whether the relay takes posts now; if not, what is missing. Reads are served either way.
    pub fn ready(&self) -> Result<(), String> {
        self.inner.store.ready()
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The metrics as a scrape gets them.
    pub async fn metrics_text(&self) -> Result<String, RelayError> {
        let (store, metrics, last_id) =
            (self.inner.store.clone(), self.inner.metrics.clone(), self.last_id());
        // The lags ask the log (over the network in nats mode) and the disk figures read the
        // file system: off the async workers.
        Ok(blocking(move || {
            let lags = store.lags()?;
            Ok(metrics.render(Snapshot { last_id, views_lag: lags.views, archive_lag: lags.archive }))
        })
        .await?)
    }

    /// The tool-usage logger, for front doors that log calls the relay never saw.
    pub fn usage_log(&self) -> &Logger {
        &self.inner.usage_log
    }

    pub fn max_text_bytes(&self) -> usize {
        self.inner.max_text_bytes
    }

    /// Ends every open wait: each answers at once with what it has (usually nothing).
    pub fn stop(&self) {
        self.inner.stopping.cancel();
    }

    /// One chunk of an export of the running store: JSON lines of the events after `after` up to
    /// `upto`, and the last id read (`None` once there is nothing left).
    pub async fn export_chunk(
        &self,
        filter: ExportFilter,
        after: u64,
        upto: u64,
    ) -> Result<(Vec<u8>, Option<u64>), RelayError> {
        let store = self.inner.store.clone();
        Ok(blocking(move || store.export_chunk(&filter, after, upto)).await?)
    }

    /// Whether an export may start now (see [`Store::exportable`]).
    pub fn exportable(&self) -> Result<(), RelayError> {
        Ok(self.inner.store.exportable()?)
    }

    /// Stops taking posts, commits what is queued and closes the store.
    pub async fn close(&self) -> Result<(), StoreError> {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || store.close())
            .await
            .map_err(|e| StoreError::Crashed(format!("closing the store failed: {e}")))?
    }
}

/// Runs a store read off the async workers: a sled read can wait on the disk.
pub(super) async fn blocking<T: Send + 'static>(
    read: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(read)
        .await
        .unwrap_or_else(|e| Err(StoreError::Crashed(format!("read task failed: {e}"))))
}
