//! What the store's threads (the projector, the archive thread) and its readers share: the log,
//! the database holding the projections, the channel records readers may see, and the commit
//! watch.

#[cfg(feature = "faults")]
use crate::store::event_log::faults::{FaultOp, Faults};
use crate::store::event_log::EventLog;
use crate::store::projections::channel_views::{ChannelViews, Channels};
use crate::store::StoreError;
use slog::Logger;
use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use tokio::sync::watch;

pub(super) struct Shared {
    pub(super) log: Arc<dyn EventLog>,
    /// The database the projections live in (in sled mode, the log's too).
    pub(super) db: sled::Db,
    pub(super) channel_views: Arc<ChannelViews>,
    /// Channel records as of the last published group: what readers may see.
    pub(super) published: RwLock<Channels>,
    /// The commit watch: the last published id, sent after each group.
    pub(super) commits: watch::Sender<u64>,
    pub(super) logger: Logger,
    /// Why the store takes no more writes, once the views could not take a durable group.
    pub(super) failed: Mutex<Option<String>>,
    /// The id the archive is written up to (0 without an archive).
    pub(super) archived: AtomicU64,
    /// Whether the views follow the log: from the start, except in nats mode with the stream
    /// not reached at open, where `recovery::attach` sets it once they do.
    pub(super) following: AtomicBool,
    /// Told the size of each group the views apply (for metrics), once set.
    pub(super) group_observer: OnceLock<Box<dyn Fn(usize) + Send + Sync>>,
    /// The seam I/O fault tests fail disk operations through (the `faults` feature; not in a
    /// release build): the log's writer and the projector share it.
    #[cfg(feature = "faults")]
    pub(super) faults: Arc<Faults>,
    pub(super) _lock: File,
}

impl Shared {
    /// Stops the store taking writes, and wakes whoever waits on the commit watch (a poster
    /// waiting for its message to be applied, which will not happen now).
    pub(super) fn fail(&self, reason: String) {
        self.failed.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(reason);
        self.commits.send_modify(|_| {});
    }

    /// Why the store takes no more writes, if it does not.
    pub(super) fn failure(&self) -> Option<String> {
        self.failed.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Makes what the projections wrote durable: the blocks, then the database that names them.
    pub(crate) fn flush_projections(&self) -> Result<(), StoreError> {
        self.channel_views.flush(&self.db)
    }

    /// Erases again the records of every message the views know redacted (a log that
    /// erases after its views applied a redaction may have been stopped in between).
    pub(super) fn erase_redacted(&self) -> Result<(), StoreError> {
        let ids: Vec<u64> = self.channel_views.redactions.all().into_keys().collect();
        self.log.erase(&ids)
    }

    /// Asks the log again to delete the records of the expired messages the views know it may
    /// still hold (it was stopped before it deleted them: a crash, a stream out of reach).
    pub(super) fn forget_expired(&self) -> Result<(), StoreError> {
        self.channel_views.forget_in(&*self.log, self.channel_views.forgetting()?)
    }

    /// With the `faults` feature, whether an armed fault fails the projector's next write.
    pub(super) fn injected_write_fault(&self) -> Result<(), StoreError> {
        #[cfg(feature = "faults")]
        self.faults.check(FaultOp::Write)?;
        Ok(())
    }
}
