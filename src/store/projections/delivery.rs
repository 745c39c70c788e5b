//! Where each message stands for each named reader, as the log says: when a bridge or watcher
//! woke the reader about it (`ReaderWoken`) and when the reader's cursor passed it
//! (`CursorMoved`). Kept with the channel views, written in their batches:
//! - `[8] channel 0 reader 0 id(8 BE)` → when the reader was first woken about message `id`;
//! - `[9] channel 0 reader 0 to(8 BE)` → when the reader's cursor moved forward to `to`: the
//!   first such key at or past a message's id says when the message was acknowledged;
//! - `[10] channel 0 reader` → the latest of both ([`Latest`]); in memory as well, for the
//!   channel list.
//!
//! Times are seconds since the epoch (f64, big-endian bits), the time the log gave the event.

use crate::event::{CursorMoved, ReaderWoken};
use crate::store::projections::cursors;
use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::sync::RwLock;

pub(crate) const WOKEN: u8 = 8;
pub(crate) const ACKNOWLEDGED: u8 = 9;
pub(crate) const LATEST: u8 = 10;

/// A message id and when it reached a state.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    pub id: u64,
    pub ts: f64,
}

/// How far a reader got on a channel: the newest message it was woken about, and its cursor
/// with the time it last moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latest {
    pub woken: Option<Mark>,
    pub acknowledged: Option<Mark>,
}

/// A reader's latest states on a channel, as the channel list shows them: the newest message
/// it was woken about, read (live state, kept by the relay) and acknowledged, each with when.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ReaderStates {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub woken: Option<Mark>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read: Option<Mark>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<Mark>,
}

/// A message's states for one reader, each a time or `None` (it did not happen). The store
/// knows woken and acknowledged; read is the relay's live state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct States {
    pub woken: Option<f64>,
    pub read: Option<f64>,
    pub acknowledged: Option<f64>,
}

type Pair = (String, String);

/// The latest states the readers see: those of the batches applied, by channel then reader.
#[derive(Default)]
pub(crate) struct Delivery {
    applied: RwLock<BTreeMap<Pair, Latest>>,
}

/// What a batch being applied changes, published once the batch is written.
#[derive(Default)]
pub(crate) struct Changes {
    latest: BTreeMap<Pair, Latest>,
    /// The woken keys the batch writes, so a message is woken once.
    woken: HashSet<Vec<u8>>,
}

fn pair_key(kind: u8, channel: &str, reader: &str) -> Vec<u8> {
    [&[kind], channel.as_bytes(), &[0], reader.as_bytes()].concat()
}

pub(crate) fn mark_key(kind: u8, channel: &str, reader: &str, id: u64) -> Vec<u8> {
    [pair_key(kind, channel, reader), vec![0], id.to_be_bytes().to_vec()].concat()
}

pub(crate) fn ts_value(ts: f64) -> [u8; 8] {
    ts.to_bits().to_be_bytes()
}

fn corrupt(what: &str) -> StoreError {
    StoreError::corrupt(format!("channel views: {what}"))
}

fn ts_of(value: &[u8]) -> Result<f64, StoreError> {
    let bits = value.try_into().map(u64::from_be_bytes).map_err(|_| corrupt("bad delivery time"))?;
    Ok(f64::from_bits(bits))
}

impl Delivery {
    fn latest(&self, pair: &Pair, changes: &Changes) -> Latest {
        let applied = || self.applied.read().unwrap_or_else(|p| p.into_inner()).get(pair).copied();
        changes.latest.get(pair).copied().or_else(applied).unwrap_or_default()
    }

    /// Adds a wake to the batch: each of its messages not woken before is woken now.
    pub(crate) fn woken(
        &self,
        tree: &sled::Tree,
        wake: &ReaderWoken,
        changes: &mut Changes,
        batch: &mut sled::Batch,
    ) -> Result<(), StoreError> {
        let pair = (wake.target.clone(), wake.reader.clone());
        let mut latest = self.latest(&pair, changes);
        for &id in &wake.ids {
            let key = mark_key(WOKEN, &wake.target, &wake.reader, id);
            if changes.woken.contains(&key) || tree.contains_key(&key)? {
                continue;
            }
            batch.insert(key.as_slice(), &ts_value(wake.ts));
            changes.woken.insert(key);
            if latest.woken.is_none_or(|w| id > w.id) {
                latest.woken = Some(Mark { id, ts: wake.ts });
            }
        }
        changes.latest.insert(pair, latest);
        Ok(())
    }

    /// Adds a cursor's move forward to the batch.
    pub(crate) fn acknowledged(&self, moved: &CursorMoved, changes: &mut Changes, batch: &mut sled::Batch) {
        let pair = (moved.target.clone(), moved.reader.clone());
        batch.insert(mark_key(ACKNOWLEDGED, &moved.target, &moved.reader, moved.to), &ts_value(moved.ts));
        let mut latest = self.latest(&pair, changes);
        latest.acknowledged = Some(Mark { id: moved.to, ts: moved.ts });
        changes.latest.insert(pair, latest);
    }

    /// Writes the latest states the batch changed.
    pub(crate) fn write(changes: &Changes, batch: &mut sled::Batch) -> Result<(), StoreError> {
        for ((channel, reader), latest) in &changes.latest {
            let bytes = bincode::serde::encode_to_vec(latest, bincode::config::standard())
                .map_err(|e| corrupt(&e.to_string()))?;
            batch.insert(pair_key(LATEST, channel, reader), bytes);
        }
        Ok(())
    }

    /// Makes a written batch's changes visible to readers.
    pub(crate) fn publish(&self, changes: Changes) {
        self.applied.write().unwrap_or_else(|p| p.into_inner()).extend(changes.latest);
    }

    /// Reads the latest states from the views' `tree`.
    pub(crate) fn load(&self, tree: &sled::Tree) -> Result<(), StoreError> {
        let mut loaded = BTreeMap::new();
        for item in tree.scan_prefix([LATEST]) {
            let (key, value) = item?;
            let key = std::str::from_utf8(&key[1..]).map_err(|_| corrupt("bad delivery key"))?;
            let (channel, reader) = key.split_once('\0').ok_or_else(|| corrupt("bad delivery key"))?;
            let (latest, _): (Latest, usize) =
                bincode::serde::decode_from_slice(&value, bincode::config::standard())
                    .map_err(|_| corrupt("bad delivery record"))?;
            loaded.insert((channel.to_owned(), reader.to_owned()), latest);
        }
        *self.applied.write().unwrap_or_else(|p| p.into_inner()) = loaded;
        Ok(())
    }

    /// Every reader of `channel` woken there or with a cursor there, with its latest states.
    pub(crate) fn of_channel(&self, channel: &str) -> Vec<(String, Latest)> {
        cursors::of_channel(&self.applied.read().unwrap_or_else(|p| p.into_inner()), channel)
    }

    /// Those of `ids` that `reader` was not woken about on `channel` yet.
    pub(crate) fn unwoken(
        &self,
        tree: &sled::Tree,
        channel: &str,
        reader: &str,
        ids: &[u64],
    ) -> Result<Vec<u64>, StoreError> {
        let mut out = Vec::new();
        for &id in ids {
            if !tree.contains_key(mark_key(WOKEN, channel, reader, id))? {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Every message's wakes and every cursor move's time the views hold, by key (for `check`).
    pub(crate) fn marks(tree: &sled::Tree) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, StoreError> {
        let mut out = BTreeMap::new();
        for kind in [WOKEN, ACKNOWLEDGED] {
            for item in tree.scan_prefix([kind]) {
                let (key, value) = item?;
                out.insert(key.to_vec(), value.to_vec());
            }
        }
        Ok(out)
    }

    /// Every reader's latest states, by channel then reader (for `check`).
    pub(crate) fn all(&self) -> BTreeMap<Pair, Latest> {
        self.applied.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Message `id` of `channel` for each reader there.
    pub(crate) fn of_message(
        &self,
        tree: &sled::Tree,
        channel: &str,
        id: u64,
    ) -> Result<Vec<(String, States)>, StoreError> {
        let mut out = Vec::new();
        for (reader, latest) in self.of_channel(channel) {
            let woken = match latest.woken {
                Some(w) if w.id >= id => tree.get(mark_key(WOKEN, channel, &reader, id))?,
                _ => None,
            };
            let acknowledged = match latest.acknowledged {
                Some(a) if a.id >= id => {
                    let range = mark_key(ACKNOWLEDGED, channel, &reader, id)
                        ..=mark_key(ACKNOWLEDGED, channel, &reader, u64::MAX);
                    tree.range(range).next().transpose()?.map(|(_, v)| v)
                }
                _ => None,
            };
            let states = States {
                woken: woken.as_deref().map(ts_of).transpose()?,
                read: None,
                acknowledged: acknowledged.as_deref().map(ts_of).transpose()?,
            };
            out.push((reader, states));
        }
        Ok(out)
    }
}
