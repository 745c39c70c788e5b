//! The store's one error type. It says what happened; what to do about it is the front door's
//! to say (the CLI, the start-up path, the HTTP mapping), since only it knows who is reading.
//!
//! An operating-system or sled error is kept as it came (in an `Arc`, so one failed commit can
//! be handed to every poster of its group) and written into the message, so every front door
//! shows it. It is not also chained as `source()`, which would print it twice through anyhow.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The data directory cannot hold a store (not a directory, no permission, no store in it).
    #[error("cannot use data directory {}: {reason}", dir.display())]
    Dir { dir: PathBuf, reason: String },
    /// A command on a stopped store was pointed at a directory that holds none.
    #[error("cannot use data directory {}: it holds no relay data (no db/ inside)", dir.display())]
    NoStore { dir: PathBuf },
    #[error("data directory {} is locked by another relay (pid {pid})", dir.display())]
    Locked { dir: PathBuf, pid: String },
    /// An operating-system error: what the store was doing, and the error.
    #[error("{doing}: {cause}")]
    Io { doing: String, cause: Arc<io::Error> },
    #[error("the disk is full (no space left on device)")]
    DiskFull(Arc<io::Error>),
    /// The database failed in a way that is neither an I/O error nor damage (sled's own error,
    /// kept without its type: no sled type leaves the store).
    #[error("the database failed: {0}")]
    Database(Arc<dyn std::error::Error + Send + Sync>),
    /// Something on disk is not what the store wrote; `place` is the file or directory, when
    /// known. Nothing was changed.
    #[error("the data is damaged: {what}{}", place.as_ref().map(|p| format!(" (in {})", p.display())).unwrap_or_default())]
    Corrupt { what: String, place: Option<PathBuf> },
    /// A thread of the store's ended unexpectedly (a panic).
    #[error("{0}")]
    Crashed(String),
    #[error("the relay is shutting down")]
    Closed,
    /// The NATS JetStream log (nats mode): unreachable, misconfigured, or without a quorum.
    #[error("NATS JetStream: {0}")]
    Nats(String),
    /// The log takes no writes now and nothing was sent (nats mode: the stream not reached yet,
    /// or the views still catching up with it).
    #[error("{0}")]
    Unavailable(String),
    /// A post sent to the log whose acknowledgement never came (in nats mode, from the
    /// replicated stream): it may be stored, or be stored once the log's servers recover.
    #[error("{0}")]
    Unacknowledged(String),
    /// An earlier write failed in a way that leaves the store unsure of its state: it takes no
    /// more writes until it is opened again.
    #[error("the store stopped accepting writes after an earlier failure ({0})")]
    Failed(String),
}

impl StoreError {
    /// An I/O error met while `doing` something; a full disk is told apart.
    pub(crate) fn io(doing: impl Into<String>, cause: io::Error) -> StoreError {
        if cause.kind() == io::ErrorKind::StorageFull {
            StoreError::DiskFull(Arc::new(cause))
        } else {
            StoreError::Io { doing: doing.into(), cause: Arc::new(cause) }
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>) -> StoreError {
        StoreError::Corrupt { what: what.into(), place: None }
    }

    pub(crate) fn dir(dir: &std::path::Path, reason: impl std::fmt::Display) -> StoreError {
        StoreError::Dir { dir: dir.to_owned(), reason: reason.to_string() }
    }

    /// Damage found in `place` (when the error does not name a place yet).
    pub(crate) fn found_in(self, place: &std::path::Path) -> StoreError {
        match self {
            StoreError::Corrupt { what, place: None } => {
                StoreError::Corrupt { what, place: Some(place.to_owned()) }
            }
            other => other,
        }
    }
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Corruption { at, .. } => {
                StoreError::corrupt(format!("sled reports corruption at {at:?}"))
            }
            sled::Error::Io(e) => StoreError::io("the database's disk operation failed", e),
            other => StoreError::Database(Arc::new(other)),
        }
    }
}

impl From<crate::event::DecodeError> for StoreError {
    fn from(e: crate::event::DecodeError) -> Self {
        StoreError::corrupt(e.to_string())
    }
}
