//! Redactions: which messages were taken back, by whom, when and why, as the log's
//! `MessageRedacted` events say. Kept in the channel views' tree, written in their batches
//! (`[11] id` → the [`Redacted`], bincode), and in memory, where every page the store serves
//! passes through [`Redactions::shown`]: a redacted message goes out as its tombstone (id,
//! channel, sender, time, source and reply link kept; the text replaced by "redacted by NAME:
//! REASON", and `redacted` added), whatever its view still holds.
//!
//! A message is redacted once: the first event naming it wins, later ones change nothing.
//!
//! The views also erase the text they hold (`channel_views/apply.rs`): overwritten with spaces
//! in the message's open copy in memory, or in place in its sealed block, so no byte of it stays
//! in the blocks file.

use crate::event::{Event, MessageRedacted};
use crate::message::{overwrite_text, Redacted, StoredMessage};
use crate::store::event_log::EventLog;
use crate::store::StoreError;
use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use tokio::sync::watch;

const REDACTION: u8 = 11;

fn key(id: u64) -> [u8; 9] {
    let mut k = [REDACTION; 9];
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::corrupt(format!("redactions: {what}"))
}

/// Message ids and their redactions.
pub(crate) type ById = HashMap<u64, Redacted>;

/// Events read from the log at a time by [`in_log`].
const READ_CHUNK: usize = 1024;

/// Every redaction in the log up to id `upto`, by message id: what an export must not write
/// (read first, since a redaction follows the message it names). The first of a message's
/// redactions wins.
pub(crate) fn in_log(log: &dyn EventLog, upto: u64) -> Result<ById, StoreError> {
    let (mut found, mut after) = (ById::new(), 0);
    while after < upto {
        let events = log.read_from(after + 1, READ_CHUNK)?;
        let Some(last) = events.last().map(Event::id) else { break };
        for event in events.into_iter().filter(|e| e.id() <= upto) {
            if let Event::MessageRedacted(r) = event {
                found.entry(r.message).or_insert_with(|| r.redacted());
            }
        }
        after = last;
    }
    Ok(found)
}

/// The redactions a batch adds: message id, its channel, the redaction.
pub(crate) type Added = Vec<(u64, String, Redacted)>;

pub(crate) struct Redactions {
    by_id: RwLock<HashMap<u64, Redacted>>,
    /// Those applied since the store opened, in order (message id, channel), and how many: what
    /// live pages follow to turn a message into its tombstone where it is shown.
    applied: Mutex<Vec<(u64, String)>>,
    count: watch::Sender<usize>,
}

impl Default for Redactions {
    fn default() -> Self {
        Redactions { by_id: RwLock::default(), applied: Mutex::default(), count: watch::channel(0).0 }
    }
}

impl Redactions {
    /// Reads every redaction from the views' tree, replacing those in memory.
    pub(crate) fn load(&self, tree: &sled::Tree) -> Result<(), StoreError> {
        let mut loaded = HashMap::new();
        for item in tree.scan_prefix([REDACTION]) {
            let (k, v) = item?;
            let id = k.get(1..9).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
            let id = id.ok_or_else(|| corrupt("bad key"))?;
            let (redacted, _): (Redacted, usize) =
                bincode::serde::decode_from_slice(&v, bincode::config::standard())
                    .map_err(|e| corrupt(format!("message {id}: {e}")))?;
            loaded.insert(id, redacted);
        }
        *self.by_id.write().unwrap_or_else(|p| p.into_inner()) = loaded;
        Ok(())
    }

    /// Adds the redaction to `batch` and `added`, unless its message was redacted already;
    /// returns whether it did.
    pub(crate) fn apply(
        &self,
        r: &MessageRedacted,
        added: &mut Added,
        batch: &mut sled::Batch,
    ) -> Result<bool, StoreError> {
        if self.get(r.message).is_some() || added.iter().any(|(id, _, _)| *id == r.message) {
            return Ok(false);
        }
        let redacted = r.redacted();
        let value = bincode::serde::encode_to_vec(&redacted, bincode::config::standard()).map_err(corrupt)?;
        batch.insert(&key(r.message), value);
        added.push((r.message, r.target.clone(), redacted));
        Ok(true)
    }

    /// Makes a written batch's redactions seen.
    pub(crate) fn publish(&self, added: Added) {
        if added.is_empty() {
            return;
        }
        let mut by_id = self.by_id.write().unwrap_or_else(|p| p.into_inner());
        let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        for (id, target, redacted) in added {
            by_id.insert(id, redacted);
            applied.push((id, target));
        }
        self.count.send_replace(applied.len());
    }

    /// How many redactions were applied since the store opened, as it changes.
    pub(crate) fn watch(&self) -> watch::Receiver<usize> {
        self.count.subscribe()
    }

    /// The messages of `target` redacted after the first `seen` applied since the store opened,
    /// and how many are applied now.
    pub(crate) fn applied_after(&self, seen: usize, target: &str) -> (Vec<u64>, usize) {
        let applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        let ids =
            applied.get(seen..).unwrap_or_default().iter().filter(|(_, t)| t == target).map(|(id, _)| *id);
        (ids.collect(), applied.len())
    }

    /// Message `id`'s redaction, if it has one.
    pub(crate) fn get(&self, id: u64) -> Option<Redacted> {
        self.by_id.read().unwrap_or_else(|p| p.into_inner()).get(&id).cloned()
    }

    /// Every redaction, by message id.
    pub(crate) fn all(&self) -> HashMap<u64, Redacted> {
        self.by_id.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// `messages` as they are served: each redacted one as its tombstone.
    pub(crate) fn shown(&self, mut messages: Vec<StoredMessage>) -> Result<Vec<StoredMessage>, StoreError> {
        let by_id = self.by_id.read().unwrap_or_else(|p| p.into_inner());
        if by_id.is_empty() {
            return Ok(messages);
        }
        for m in &mut messages {
            if let Some(redacted) = by_id.get(&m.id) {
                *m = tombstone(m, redacted)?;
            }
        }
        Ok(messages)
    }
}

/// `m` with its text overwritten by spaces (what the views keep of a redacted message).
pub(crate) fn erased(m: &StoredMessage) -> StoredMessage {
    let mut json = m.json().to_vec();
    overwrite_text(&mut json, "");
    StoredMessage::new(m.id, json.into())
}

/// A redacted message as it is served: its own fields but the text, and the redaction.
fn tombstone(m: &StoredMessage, redacted: &Redacted) -> Result<StoredMessage, StoreError> {
    let mut message = m.decode().map_err(|e| corrupt(format!("message {}: {e}", m.id)))?;
    message.text = redacted.text();
    message.redacted = Some(redacted.clone());
    Ok(StoredMessage::new(m.id, serde_json::to_vec(&message).map_err(corrupt)?.into()))
}
