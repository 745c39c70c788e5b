//! Where each message stands for each named reader: stored (it has an id), woken (a bridge or
//! watcher put a wake about it into the reader's session, and the session accepted it), read
//! (the reader fetched it) and acknowledged (the reader's cursor passed it). Woken and
//! acknowledged are events in the log (`store/projections/delivery.rs`); read is this
//! instance's live state, kept with the presence (`presence.rs`) and lost on restart.

use super::caller::Caller;
use super::read::Page;
use super::service::{blocking, Relay, RelayError};
use crate::event::{via_problem, MAX_WAKE_IDS};
use crate::store::{ReaderStates, States, StoreError};
use crate::values::{Invalid, Name};
use serde::Serialize;
use slog::info;
use std::collections::BTreeMap;

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

impl Relay {
    /// Notes that the reader a read named (the caller itself, for a principal) read `page`.
    pub fn note_read(&self, reader: Option<&str>, page: &Page, caller: &Caller) {
        let Ok(Some(reader)) = caller.reader(reader) else { return };
        let reader = reader.trim();
        if page.messages.is_empty() || reader.is_empty() {
            return;
        }
        self.inner.presence.read(
            &page.target,
            reader,
            page.messages.iter().map(|m| m.id),
            crate::values::unix_now(),
        );
    }

    /// Records that `reader`'s session accepted a wake about messages `ids` of `target` (how:
    /// `via`). Each id must be a message of that channel; the reader is the caller itself, for
    /// a principal. Returns the ids recorded now: those the reader was not woken about before.
    pub async fn note_wake(
        &self,
        target: &str,
        reader: &str,
        mut ids: Vec<u64>,
        via: &str,
        caller: &Caller,
    ) -> Result<Vec<u64>, RelayError> {
        let reader = self.allowed(caller, caller.reader(Some(reader)))?.unwrap_or(reader);
        let (reader, target) = (Name::parse("reader", reader)?, self.readable(target, caller)?);
        let via = via.trim();
        if let Some(problem) = via_problem(via) {
            return Err(Invalid::new("via", problem).into());
        }
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() || ids.len() > MAX_WAKE_IDS {
            return Err(Invalid::new("ids", format!("must name 1 to {MAX_WAKE_IDS} messages")).into());
        }
        for &id in &ids {
            self.message_of(&target, id, "ids").await?;
        }
        let recorded = self.inner.store.note_wake(&reader, &target, ids, via.to_owned()).await?;
        info!(self.inner.usage_log, "reader_woken";
            "target" => target.as_str(), "reader" => reader.as_str(), "messages" => recorded.len(), "via" => via,
            "source" => caller.source.as_str());
        Ok(recorded)
    }

    /// Message `id` as each named reader on its channel got it. `target`, when given, is where
    /// it is (else the log says). A message the caller may not read is answered as one that does
    /// not exist, so its channel is not given away.
    pub async fn delivery(
        &self,
        id: u64,
        target: Option<&str>,
        caller: &Caller,
    ) -> Result<Delivery, RelayError> {
        let missing = || RelayError::Missing(format!("no message has the id {id}"));
        let found = match target {
            Some(target) => {
                let target = self.readable(target, caller)?;
                let (store, name) = (self.inner.store.clone(), target.as_str().to_owned());
                let message = blocking(move || store.message(&name, id)).await?;
                let decoded = message
                    .map(|m| m.decode().map_err(|e| StoreError::corrupt(format!("message {id}: {e}"))));
                decoded.transpose()?.map(|m| (m.target, m.ts))
            }
            None => {
                let store = self.inner.store.clone();
                blocking(move || store.target_of(id)).await?
            }
        };
        let (target, stored) = found.ok_or_else(missing)?;
        if self.readable(&target, caller).is_err() {
            return Err(missing());
        }
        let (store, channel) = (self.inner.store.clone(), target.clone());
        let mut readers: BTreeMap<String, States> =
            blocking(move || store.delivery_of(&channel, id)).await?.into_iter().collect();
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
