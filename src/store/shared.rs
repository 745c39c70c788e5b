//! What the writer thread, the archive thread and the readers share: the database and its
//! parts, the channel records readers may see, and the commit watch.

use super::channel_views::{ChannelViews, Channels};
use super::disk_sync::DiskSync;
use super::event_log::EventLog;
#[cfg(feature = "faults")]
use super::faults::{FaultOp, Faults};
use super::StoreError;
use slog::Logger;
use std::fs::File;
use std::sync::{Mutex, RwLock};
use tokio::sync::watch;

/// What the writer thread and the readers both use.
pub(super) struct Shared {
    pub(super) db: sled::Db,
    pub(super) event_log: EventLog,
    pub(super) channel_views: ChannelViews,
    /// Channel records as of the last published commit: what readers may see.
    pub(super) published: RwLock<Channels>,
    /// The commit watch: the last published id, sent after each commit.
    pub(super) commits: watch::Sender<u64>,
    pub(super) logger: Logger,
    /// Power-loss safety beyond sled's flush; used by the writer only.
    pub(super) disk_sync: Mutex<DiskSync>,
    /// The seam I/O fault tests fail the writer's disk operations through (the `faults`
    /// feature; not in a release build).
    #[cfg(feature = "faults")]
    pub(super) faults: Faults,
    /// Why the store takes no more writes, once something left it unsure of its state.
    pub(super) failed: Mutex<Option<String>>,
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

    /// sled's flush, then (when on) what it leaves out for a power cut: see [`DiskSync`].
    pub(super) fn flush(&self) -> Result<(), StoreError> {
        let mut sync = self.disk_sync.lock().unwrap_or_else(|p| p.into_inner());
        if sync.enabled() {
            // Blocks first: sled's flush may make durable the views that name them.
            self.channel_views.sync_blocks()?;
        }
        self.db.flush()?;
        sync.sync().map_err(|e| StoreError::io("syncing the database to disk failed", e))?;
        #[cfg(feature = "faults")]
        self.faults.check(FaultOp::Flush)?;
        Ok(())
    }

    /// With the `faults` feature, whether an armed fault fails the writer's next write.
    pub(super) fn injected_write_fault(&self) -> Result<(), StoreError> {
        #[cfg(feature = "faults")]
        self.faults.check(FaultOp::Write)?;
        Ok(())
    }
}
