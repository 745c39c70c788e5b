//! Where each message stands for each named reader: stored (it has an id), woken (a bridge or
//! watcher put a wake about it into the reader's session, and the session accepted it), read
//! (the reader fetched it) and acknowledged (the reader's cursor passed it). Woken and
//! acknowledged are events in the log (`store/projections/delivery.rs`); read is this
//! instance's live state, kept with the presence (`presence.rs`) and lost on restart.

use super::caller::Caller;
use super::read::Page;
use super::service::{blocking, Relay, RelayError};
use crate::store::ReaderStates;
use crate::values::{Invalid, Name};
use serde::Serialize;
use slog::info;
use std::collections::BTreeMap;

/// Messages one wake may name.
pub const MAX_WAKE_IDS: usize = 1000;
/// Characters of a wake's `via`.
pub const MAX_VIA_CHARS: usize = 200;

/// `GET /api/messages/{id}/delivery`: when the message was stored, and its states for each
/// named reader on its channel,
/// each a time or `null` (it did not happen, or, for `read`, not on this instance since it
/// started).
#[derive(Debug, Serialize)]
pub struct Delivery {
    pub id: u64,
    pub target: String,
    /// When the post was stored (its `ts`).
    pub stored: f64,
    pub readers: BTreeMap<String, States>,
}

#[derive(Debug, Default, Serialize)]
pub struct States {
    pub woken: Option<f64>,
    pub read: Option<f64>,
    pub acknowledged: Option<f64>,
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

impl Relay {
    /// Notes that the reader a read named (the caller itself, for a principal) read `page`.
    pub fn note_read(&self, reader: Option<&str>, page: &Page, caller: &Caller) {
        let Ok(Some(reader)) = caller.reader(reader) else { return };
        let reader = reader.trim();
        if page.messages.is_empty() || reader.is_empty() {
            return;
        }
        self.inner.presence.read(&page.target, reader, page.messages.iter().map(|m| m.id), now());
    }

    /// Records that `reader`'s session accepted a wake about messages `ids` of `target` (how:
    /// `via`). Each id must be a message of that channel; the reader is the caller itself, for
    /// a principal.
    pub async fn note_wake(
        &self,
        target: &str,
        reader: &str,
        mut ids: Vec<u64>,
        via: &str,
        caller: &Caller,
    ) -> Result<(), RelayError> {
        let reader = self.allowed(caller, caller.reader(Some(reader)))?.unwrap_or(reader);
        let (reader, target) = (Name::parse("reader", reader)?, self.readable(target, caller)?);
        let via = via.trim();
        if via.chars().count() > MAX_VIA_CHARS || via.chars().any(char::is_control) {
            return Err(Invalid::new(
                "via",
                format!("must be at most {MAX_VIA_CHARS} characters, on one line"),
            )
            .into());
        }
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() || ids.len() > MAX_WAKE_IDS {
            return Err(Invalid::new("ids", format!("must name 1 to {MAX_WAKE_IDS} messages")).into());
        }
        for &id in &ids {
            self.message_of(&target, id, "ids").await?;
        }
        let count = ids.len();
        let store = &self.inner.store;
        store.note_wake(&reader, &target, ids, via.to_owned()).await?;
        info!(self.inner.usage_log, "reader_woken";
            "target" => target.as_str(), "reader" => reader.as_str(), "messages" => count, "via" => via,
            "source" => caller.source.as_str());
        Ok(())
    }

    /// Message `id` as each named reader on its channel got it.
    pub async fn delivery(&self, id: u64, caller: &Caller) -> Result<Delivery, RelayError> {
        let store = self.inner.store.clone();
        let target = blocking(move || store.target_of(id)).await?;
        let (target, stored) =
            target.ok_or_else(|| RelayError::Missing(format!("no message has the id {id}")))?;
        self.readable(&target, caller)?;
        let (store, channel) = (self.inner.store.clone(), target.clone());
        let logged = blocking(move || store.delivery_of(&channel, id)).await?;
        let mut readers: BTreeMap<String, States> = logged
            .into_iter()
            .map(|(reader, l)| (reader, States { woken: l.woken, read: None, acknowledged: l.acknowledged }))
            .collect();
        for (reader, _) in self.inner.presence.reads.latest(&target) {
            if let Some(read) = self.inner.presence.reads.of_message(&target, &reader, id) {
                readers.entry(reader).or_default().read = Some(read);
            }
        }
        Ok(Delivery { id, target, stored, readers })
    }

    /// Each named reader's latest states on `channel`: the log's, with this instance's reads.
    pub(super) fn reader_states(&self, channel: &str) -> BTreeMap<String, ReaderStates> {
        let mut states: BTreeMap<String, ReaderStates> =
            self.inner.store.delivery(channel).into_iter().collect();
        for (reader, read) in self.inner.presence.reads.latest(channel) {
            states.entry(reader).or_default().read = Some(read);
        }
        states
    }
}
