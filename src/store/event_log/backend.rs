//! The choice of event log: sled in the data directory, or a NATS JetStream stream. Each
//! backend's own types stay inside the store; this is what the config and the commands hold.

use crate::store::event_log::nats::NatsSettings;

/// Where the event log lives (`log_backend`), with the settings of the stream for nats mode:
/// the one choice of log that the store, the config and the commands share.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Backend {
    pub kind: BackendKind,
    /// How to reach the stream; used when `kind` is [`BackendKind::Nats`].
    pub nats: NatsSettings,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BackendKind {
    /// In the data directory's sled database (the default).
    #[default]
    Sled,
    /// In a NATS JetStream stream, shared by every relay instance in front of it.
    Nats,
}

impl Backend {
    /// The log in the data directory.
    pub fn sled() -> Backend {
        Backend::default()
    }

    /// The log in the stream `settings` name.
    pub fn nats(settings: NatsSettings) -> Backend {
        Backend { kind: BackendKind::Nats, nats: settings }
    }

    /// The stream's settings in nats mode.
    pub(crate) fn stream(&self) -> Option<&NatsSettings> {
        (self.kind == BackendKind::Nats).then_some(&self.nats)
    }
}
