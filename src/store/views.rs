//! Channel views: a projection of the log that answers "messages of channel C after id N" and
//! "the last L messages of C" in O(log n + L), whatever the other channels or older history hold.
//!
//! Everything lives in the sled tree `views`, so one batch updates it atomically:
//! - `[0]` → checkpoint: the id of the last event applied (8 bytes BE);
//! - `[1] name` → the channel's record (number, message count, last id);
//! - `[2] number(4 BE) id(8 BE)` → the message as JSON, ready to send.

use super::StoreError;
use crate::event::Event;
use crate::message::{Message, StoredMessage};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

const CHECKPOINT: u8 = 0;
const CHANNEL: u8 = 1;
const MESSAGE: u8 = 2;

/// What the views know of one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChannelRecord {
    /// Short number that prefixes the channel's message keys.
    pub no: u32,
    pub count: u64,
    pub last_id: u64,
}

pub(crate) type Channels = HashMap<String, ChannelRecord>;

pub(crate) struct Views {
    tree: sled::Tree,
}

fn channel_key(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + name.len());
    k.push(CHANNEL);
    k.extend_from_slice(name.as_bytes());
    k
}

fn message_key(no: u32, id: u64) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[0] = MESSAGE;
    k[1..5].copy_from_slice(&no.to_be_bytes());
    k[5..].copy_from_slice(&id.to_be_bytes());
    k
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("channel views: {what}; run `claude-codex-relay rebuild`"))
}

fn decode_message(bytes: &[u8]) -> Result<Message, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(format!("bad message record: {e}")))
}

/// A view entry as it is stored: the id from its key, the JSON checked but not decoded.
fn stored(key: &[u8], value: &[u8]) -> Result<StoredMessage, StoreError> {
    let id = key
        .get(5..13)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| corrupt("bad message key"))?;
    let json = serde_json::from_slice(value).map_err(|e| corrupt(format!("message {id}: {e}")))?;
    Ok(StoredMessage::new(id, json))
}

impl Views {
    pub(crate) fn open(db: &sled::Db) -> Result<Self, StoreError> {
        Ok(Views { tree: db.open_tree("views")? })
    }

    /// The checkpoint and every channel record.
    pub(crate) fn load(&self) -> Result<(u64, Channels), StoreError> {
        let checkpoint = match self.tree.get([CHECKPOINT])? {
            Some(v) => u64::from_be_bytes(v.as_ref().try_into().map_err(|_| corrupt("bad checkpoint"))?),
            None => 0,
        };
        let mut channels = Channels::new();
        for item in self.tree.scan_prefix([CHANNEL]) {
            let (k, v) = item?;
            let name = std::str::from_utf8(&k[1..]).map_err(|_| corrupt("channel name is not UTF-8"))?;
            let (record, _): (ChannelRecord, usize) =
                bincode::serde::decode_from_slice(&v, bincode::config::standard())
                    .map_err(|e| corrupt(format!("channel {name}: {e}")))?;
            channels.insert(name.to_owned(), record);
        }
        Ok((checkpoint, channels))
    }

    /// Applies events in one atomic batch, updating `channels` (the caller's copy) to match.
    pub(crate) fn apply(&self, events: &[Event], channels: &mut Channels) -> Result<(), StoreError> {
        let Some(last) = events.last() else { return Ok(()) };
        let mut batch = sled::Batch::default();
        let mut touched = Vec::new();
        for event in events {
            let Event::MessagePosted(m) = event;
            let next_no = channels.len() as u32;
            let record = channels.entry(m.target.clone()).or_insert(ChannelRecord {
                no: next_no,
                count: 0,
                last_id: 0,
            });
            record.count += 1;
            record.last_id = m.id;
            let json = serde_json::to_vec(m).map_err(corrupt)?;
            batch.insert(&message_key(record.no, m.id), json);
            touched.push(m.target.as_str());
        }
        touched.sort_unstable();
        touched.dedup();
        for name in touched {
            let bytes = bincode::serde::encode_to_vec(channels[name], bincode::config::standard())
                .map_err(corrupt)?;
            batch.insert(channel_key(name), bytes);
        }
        batch.insert(&[CHECKPOINT], &last.id().to_be_bytes());
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// Up to `limit` messages of channel `no` with `after < id <= upto`, oldest first.
    pub(crate) fn since(
        &self,
        no: u32,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        if after >= upto {
            return Ok(Vec::new());
        }
        self.tree
            .range(message_key(no, after + 1)..=message_key(no, upto))
            .take(limit)
            .map(|item| item.map_err(StoreError::from).and_then(|(k, v)| stored(&k, &v)))
            .collect()
    }

    /// The last `limit` messages of channel `no` with `id <= upto`, oldest first.
    pub(crate) fn tail(&self, no: u32, upto: u64, limit: usize) -> Result<Vec<StoredMessage>, StoreError> {
        let mut out = self
            .tree
            .range(message_key(no, 0)..=message_key(no, upto))
            .rev()
            .take(limit)
            .map(|item| item.map_err(StoreError::from).and_then(|(k, v)| stored(&k, &v)))
            .collect::<Result<Vec<_>, _>>()?;
        out.reverse();
        Ok(out)
    }

    /// The message `id` as channel `no`'s view holds it.
    pub(crate) fn get(&self, no: u32, id: u64) -> Result<Option<Message>, StoreError> {
        self.tree.get(message_key(no, id))?.map(|v| decode_message(&v)).transpose()
    }

    /// How many messages the views hold, over all channels.
    pub(crate) fn message_count(&self) -> Result<u64, StoreError> {
        let mut n = 0;
        for item in self.tree.scan_prefix([MESSAGE]) {
            item?;
            n += 1;
        }
        Ok(n)
    }

    pub(crate) fn clear(&self) -> Result<(), StoreError> {
        self.tree.clear()?;
        Ok(())
    }

    /// Every key and value, for comparing a rebuilt projection with an incremental one.
    #[cfg(test)]
    pub(crate) fn dump(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.tree.iter().map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap()).collect()
    }
}
