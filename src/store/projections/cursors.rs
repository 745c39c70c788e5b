//! Readers' cursors, kept with the channel views: for each channel and reader, the highest id the
//! reader acknowledged there (`CursorMoved` events; a cursor never moves back). In the views'
//! tree as `[6] channel 0 reader` → the id (8 BE), written in the same batch as the views'
//! checkpoint; in memory as well, all of them (one entry per reader and channel).

use crate::event::CursorMoved;
use crate::store::StoreError;
use std::collections::BTreeMap;
use std::sync::RwLock;

/// The key prefix of cursors in the views' tree.
pub(crate) const CURSOR: u8 = 6;

/// Cursors by channel, then reader.
pub(crate) type ByReader = BTreeMap<(String, String), u64>;

/// The cursors readers see: those of the batches applied.
#[derive(Default)]
pub(crate) struct Cursors {
    applied: RwLock<ByReader>,
}

/// The cursors a batch being applied moves, published once the batch is written.
#[derive(Default)]
pub(crate) struct Moves(ByReader);

fn key(channel: &str, reader: &str) -> Vec<u8> {
    [&[CURSOR], channel.as_bytes(), &[0], reader.as_bytes()].concat()
}

/// The entries of `channel` in a map keyed by channel then reader: each reader with its value.
pub(crate) fn of_channel<V: Copy>(
    map: &std::collections::BTreeMap<(String, String), V>,
    channel: &str,
) -> Vec<(String, V)> {
    let from = (channel.to_owned(), String::new());
    map.range(from..).take_while(|((c, _), _)| c == channel).map(|((_, r), v)| (r.clone(), *v)).collect()
}

fn corrupt(what: &str) -> StoreError {
    StoreError::corrupt(format!("channel views: {what}"))
}

impl Cursors {
    /// The id up to which `reader` acknowledged `channel` (`None` when it never did).
    pub(crate) fn get(&self, channel: &str, reader: &str) -> Option<u64> {
        let applied = self.applied.read().unwrap_or_else(|p| p.into_inner());
        applied.get(&(channel.to_owned(), reader.to_owned())).copied()
    }

    /// Every cursor, by channel then reader.
    pub(crate) fn all(&self) -> ByReader {
        self.applied.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every reader of `channel` with its cursor, by name.
    pub(crate) fn of_channel(&self, channel: &str) -> Vec<(String, u64)> {
        of_channel(&self.applied.read().unwrap_or_else(|p| p.into_inner()), channel)
    }

    /// Reads every cursor from the views' `tree`.
    pub(crate) fn load(&self, tree: &sled::Tree) -> Result<(), StoreError> {
        let mut loaded = ByReader::new();
        for item in tree.scan_prefix([CURSOR]) {
            let (key, value) = item?;
            let key = String::from_utf8(key[1..].to_vec()).map_err(|_| corrupt("bad cursor key"))?;
            let (channel, reader) = key.split_once('\0').ok_or_else(|| corrupt("bad cursor key"))?;
            let to = value.as_ref().try_into().map(u64::from_be_bytes).map_err(|_| corrupt("bad cursor"))?;
            loaded.insert((channel.to_owned(), reader.to_owned()), to);
        }
        *self.applied.write().unwrap_or_else(|p| p.into_inner()) = loaded;
        Ok(())
    }

    /// Adds `moved` to the batch when it moves its cursor forward, from where the batch so far
    /// (`moves`) or the applied cursors left it; says whether it did.
    pub(crate) fn apply(&self, moved: &CursorMoved, moves: &mut Moves, batch: &mut sled::Batch) -> bool {
        let at = (moved.target.clone(), moved.reader.clone());
        let now = moves.0.get(&at).copied().or_else(|| self.get(&at.0, &at.1));
        let forward = now.is_none_or(|now| moved.to > now);
        if forward {
            batch.insert(key(&moved.target, &moved.reader), &moved.to.to_be_bytes());
            moves.0.insert(at, moved.to);
        }
        forward
    }

    /// Makes a written batch's moves visible to readers.
    pub(crate) fn publish(&self, moves: Moves) {
        self.applied.write().unwrap_or_else(|p| p.into_inner()).extend(moves.0);
    }
}
