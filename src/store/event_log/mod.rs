//! The event log, as the rest of the store sees it: the one interface behind which a backend
//! keeps the log durably. sled (`sled_log`) is the embedded default; a backend in front of a
//! replicated log (NATS JetStream) goes beside it. The channel views and the archive only read
//! and follow the log through this, so they work the same on either.
//!
//! The backends: `sled` (the embedded default) and `nats` (a JetStream stream several
//! instances share); `backend` the choice between them; `faults` a wrapper that fails either
//! on purpose (tests only).

pub(crate) mod backend;
#[cfg(feature = "faults")]
pub(crate) mod faults;
pub(crate) mod nats;
pub(crate) mod sled;

use crate::event::{Event, NewEvent};
use crate::store::StoreError;
use tokio::sync::oneshot;

/// An answer to come: the event with its id and time once it is durable, or why not.
pub(crate) type Appending = oneshot::Receiver<Result<Event, StoreError>>;

/// Called once the log has deleted every record it was asked to forget (never, when it could
/// not: the ids are asked for again at the next start).
pub(crate) type Forgotten = Box<dyn FnOnce() + Send>;

/// What follows the log: called with each durable group of events, in order.
pub(crate) type Follower = Box<dyn FnMut(Vec<Event>) + Send>;

pub(crate) trait EventLog: Send + Sync {
    /// Takes `event` to append; the answer comes once it is durable (acknowledged by the
    /// backend), with the id the log gave it.
    fn append(&self, event: NewEvent) -> Result<Appending, StoreError>;

    /// Events with id >= `from`, in id order, at most `limit` of them (durable ones only).
    fn read_from(&self, from: u64, limit: usize) -> Result<Vec<Event>, StoreError>;

    /// The id of the last durable event, 0 when the log is empty.
    fn last_id(&self) -> Result<u64, StoreError>;

    /// Calls `follower` with every durable group of events after `after`, in order, each
    /// once: what is durable already, now, then each group as it becomes durable, before its
    /// posters are answered. It runs on the backend's own thread, so it must not wait on the
    /// log. It is dropped when the log closes.
    fn follow(&self, after: u64, follower: Follower) -> Result<(), StoreError>;

    /// Which log this is, when it lives outside the data directory and so could be swapped
    /// under its projections (a NATS stream deleted and created again, or another cluster's):
    /// the views remember it and are rebuilt when it changes. `None` for a log kept beside them.
    fn origin(&self) -> Option<String> {
        None
    }

    /// Whether the log takes appends now, and if not, what is missing (for `/readyz`).
    fn ready(&self) -> Result<(), String> {
        Ok(())
    }

    /// Whether views that applied the log up to `applied` hold what it held when it was reached
    /// (in nats mode, the stream, possibly after the store opened).
    fn caught_up(&self, _applied: u64) -> bool {
        true
    }

    /// Whether views that applied the log up to `applied` may be behind it: the log is not
    /// followed now (not reached yet, or unreachable), or was ahead of them when it was reached.
    fn behind(&self, _applied: u64) -> bool {
        false
    }

    /// Deletes the records of messages that expired (`MessagesExpired`), once the views
    /// dropped them, in the background; calls `done` once they are all gone.
    fn forget(&self, _ids: &[u64], done: Forgotten) -> Result<(), StoreError> {
        done();
        Ok(())
    }

    /// Erases what the log still keeps of messages the views applied redactions of: a NATS
    /// stream deletes their records (its reads give their tombstones back), the sled log, which
    /// rewrote them with the redaction, erases the keys their old versions were sealed with.
    /// Called again for every redaction replayed and, at each start, every one the views know.
    fn erase(&self, _ids: &[u64]) -> Result<(), StoreError> {
        Ok(())
    }

    /// The largest text a post may carry, when the log takes less than `max_text_bytes`.
    fn text_cap(&self) -> Option<usize> {
        None
    }

    /// Stops taking appends, answers what is queued and makes it durable.
    fn close(&self) -> Result<(), StoreError>;
}
