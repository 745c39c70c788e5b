//! Channel views: a projection of the log that answers "messages of channel C after id N" and
//! "the last L messages of C" in O(log n + L), whatever the other channels or older history hold.
//!
//! The sled tree `views` holds the index, so one batch updates it atomically:
//! - `[0]` → checkpoint: the id of the last event applied, then the blocks file's length (8 BE
//!   each);
//! - `[1] name` → the channel's record (number, message count, last id, first open id, the id
//!   its messages expired up to);
//! - `[3] number(4 BE) first id(8 BE)` → where a block lies in the blocks file ([`BlockRef`]); a
//!   block is consecutive messages of the channel, each as `id(8 BE) length(4 BE) JSON`;
//! - `[4]` → the layout's version ([`FORMAT`]); views of another version are rebuilt;
//! - `[6] channel 0 reader` → a reader's cursor on the channel (`store/cursors.rs`);
//! - `[7]` → the principals, as JSON (`projections/principals.rs`);
//! - `[8]`, `[9]`, `[10]` → when readers were woken about messages and acknowledged them
//!   (`projections/delivery.rs`);
//! - `[11] id` → a message's redaction (`projections/redactions.rs`). The views' blocks and
//!   open messages keep the message with its text erased (spaces); the store serves it
//!   through the redactions, as its tombstone.
//!
//! Messages that passed the retention (`MessagesExpired`) leave: the blocks that hold only
//! such messages are dropped from the index (their bytes in the blocks file are dead), the open
//! ones are dropped, and reads skip any left in a block that holds newer ones too.
//!
//! A channel's newest messages, not sealed yet ("open"), are held in memory only, as JSON ready
//! to send: the log has them, and on open they are read back from it. Once a channel has
//! `BLOCK_MESSAGES` open, or `BLOCK_BYTES`, they are sealed into one block, appended to the
//! blocks file (`store/blocks.rs`) before the batch that names it. So a commit writes one entry
//! per channel to the views, not one per message, and a page of 200 is a handful of block
//! reads, each one buffer the page's messages point into (docs/benchmarks.md). Open messages
//! never start more than `OPEN_SPAN` ids back, nor hold more than `OPEN_BYTES` over all
//! channels: at every id that is a multiple of `SWEEP_EVERY`, channels past either bound are
//! sealed early into a shorter block, which bounds the read-back on open. Sealing depends only
//! on the sequence of messages, so a rebuild gives the same blocks (but for a redacted
//! message's erased text: the log's record holds the tombstone's text by then).
//!
//! Reads see either the state before a seal or after it, never half of each: a seal moves
//! messages from memory to a block, so a read that overlaps one starts again ([`ChannelViews::read`]).
//!
//! Applying events (and sealing) is `apply.rs`; the cursors kept beside the views are
//! `store/cursors.rs`.
//!
//! Reads hand out the stored JSON without parsing it: the views are written by this module
//! only; sled checks its files' checksums on load, and each block read checks the block's.
//! `check` parses every message.

pub(crate) mod apply;

use crate::event::Event;
use crate::message::{Message, StoredMessage};
use crate::store::event_log::{EventLog, Forgotten};
use crate::store::projections::blocks::{BlockFile, BlockRef, RECENT_BYTES};
use crate::store::projections::cursors::Cursors;
use crate::store::projections::delivery::{Delivery, States};
use crate::store::projections::principals::Principals;
use crate::store::projections::redactions::Redactions;
use crate::store::StoreError;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

const CHECKPOINT: u8 = 0;
const CHANNEL: u8 = 1;
const BLOCK: u8 = 3;
const FORMAT_KEY: u8 = 4;
const ORIGIN_KEY: u8 = 5;
/// `[12] first id` → the ids of messages an expiry dropped (up to [`FORGET_CHUNK`] of them)
/// whose records the log may still hold: written with the expiry, removed once the log deleted
/// them.
const FORGETTING: u8 = 12;
/// The most ids under one [`FORGETTING`] key, and so in one request to the log to forget.
pub(crate) const FORGET_CHUNK: usize = 4096;

/// The layout version, raised whenever the layout changes: views of another version are
/// rebuilt from the log on open.
const FORMAT: u8 = 7;
/// Bytes before each message in a block: id and length.
const ENTRY_HEADER: usize = 12;
/// Events read back from the log at a time on open.
const READ_BACK_CHUNK: usize = 4096;

/// What the views know of one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChannelRecord {
    /// Short number that prefixes the channel's block keys.
    pub no: u32,
    pub count: u64,
    pub last_id: u64,
    /// The id of the first open message (0 when none is open).
    pub open_from: u64,
    /// Its messages up to this id expired (0 when none did); `count` leaves them out.
    pub expired: u64,
    /// Open messages: how many the views hold, counted again when they are read back on load
    /// (a log that erases records may have lost some since: those that expired, `count` then
    /// leaves them out).
    pub open: u32,
    /// Their bytes, counted when they are read back.
    #[serde(skip)]
    pub open_bytes: u32,
}

impl ChannelRecord {
    fn new(no: u32) -> Self {
        ChannelRecord { no, count: 0, last_id: 0, open_from: 0, expired: 0, open: 0, open_bytes: 0 }
    }
}

pub(crate) type Channels = HashMap<String, ChannelRecord>;

/// Each channel's open messages, oldest first, by channel number.
type Open = HashMap<u32, Vec<StoredMessage>>;

pub(crate) struct ChannelViews {
    tree: sled::Tree,
    blocks: BlockFile,
    open: RwLock<Open>,
    /// Readers' cursors, written in the views' batches.
    pub(crate) cursors: Cursors,
    /// When readers were woken about messages and acknowledged them, likewise.
    pub(crate) delivery: Delivery,
    /// The principals, written in the views' batches.
    pub(crate) principals: Principals,
    /// Which messages were taken back, likewise.
    pub(crate) redactions: Redactions,
    /// Odd while a batch that seals blocks is being applied; bumped twice per such batch.
    seals: AtomicU64,
}

fn channel_key(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + name.len());
    k.push(CHANNEL);
    k.extend_from_slice(name.as_bytes());
    k
}

/// The key under [`FORGETTING`] of expired messages whose first id is `first`.
fn forgetting_key(first: u64) -> [u8; 9] {
    let mut key = [FORGETTING; 9];
    key[1..].copy_from_slice(&first.to_be_bytes());
    key
}

/// The expired messages `ids` (one group, not empty) as written under [`FORGETTING`].
fn forgetting_entry(ids: &[u64]) -> ([u8; 9], Vec<u8>) {
    (forgetting_key(ids[0]), ids.iter().flat_map(|id| id.to_be_bytes()).collect())
}

fn keyed(kind: u8, no: u32, id: u64) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[0] = kind;
    k[1..5].copy_from_slice(&no.to_be_bytes());
    k[5..].copy_from_slice(&id.to_be_bytes());
    k
}

fn block_key(no: u32, first: u64) -> [u8; 13] {
    keyed(BLOCK, no, first)
}

/// The id in a block key.
fn key_id(key: &[u8]) -> Result<u64, StoreError> {
    key.get(5..13)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| corrupt("bad block key"))
}

/// The messages of a block: id and where its JSON lies. A damaged block is an error, never a
/// panic or a read past its end.
fn entries(block: &[u8]) -> impl Iterator<Item = Result<(u64, Range<usize>), StoreError>> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at == block.len() {
            return None;
        }
        let header = block.get(at..at + ENTRY_HEADER);
        let entry = header.and_then(|h| {
            let id = u64::from_be_bytes(h[..8].try_into().ok()?);
            let len = u32::from_be_bytes(h[8..].try_into().ok()?) as usize;
            let start = at + ENTRY_HEADER;
            (start + len <= block.len()).then_some((id, start..start + len))
        });
        match entry {
            Some((id, range)) => {
                at = range.end;
                Some(Ok((id, range)))
            }
            None => {
                let error = corrupt(format!("a block is cut short at byte {at}"));
                at = block.len();
                Some(Err(error))
            }
        }
    })
}

/// A message as the views hold it: its JSON.
fn stored(m: &Message) -> Result<StoredMessage, StoreError> {
    Ok(StoredMessage::new(m.id, serde_json::to_vec(m).map_err(corrupt)?.into()))
}

fn be_u64(bytes: &[u8]) -> u64 {
    u64::from_be_bytes(bytes.try_into().expect("8 bytes"))
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::corrupt(format!("channel views: {what}"))
}

fn decode_message(bytes: &[u8]) -> Result<Message, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(format!("bad message record: {e}")))
}

impl ChannelViews {
    /// The views of `db`, with their blocks file in the data directory `dir`.
    pub(crate) fn open(db: &sled::Db, dir: &Path) -> Result<Self, StoreError> {
        let blocks = BlockFile::open(dir)
            .map_err(|e| StoreError::io(format!("cannot open the blocks file in {}", dir.display()), e))?;
        Ok(ChannelViews {
            tree: db.open_tree("views")?,
            blocks,
            open: RwLock::new(Open::new()),
            cursors: Cursors::default(),
            delivery: Delivery::default(),
            principals: Principals::default(),
            redactions: Redactions::default(),
            seals: AtomicU64::new(0),
        })
    }

    /// Whether the views are laid out as this version writes them (empty views are).
    pub(crate) fn is_current(&self) -> Result<bool, StoreError> {
        Ok(self.tree.get([FORMAT_KEY])?.is_some_and(|v| *v == [FORMAT]) || self.tree.is_empty())
    }

    /// The log the views were built from, as [`EventLog::origin`] names it (`None` when not
    /// recorded).
    pub(crate) fn origin(&self) -> Result<Option<String>, StoreError> {
        Ok(self.tree.get([ORIGIN_KEY])?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Records the log the views are built from; they must be in the current layout (a crash
    /// may keep this without the batches after it, so it names the layout too).
    pub(crate) fn set_origin(&self, origin: &str) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        batch.insert(&[ORIGIN_KEY], origin.as_bytes());
        batch.insert(&[FORMAT_KEY], &[FORMAT]);
        Ok(self.tree.apply_batch(batch)?)
    }

    /// The checkpoint and every channel record; places the next block where the checkpoint
    /// says the blocks file ends, and reads the open messages back from `log` (without one, the
    /// views serve their sealed blocks only, until [`ChannelViews::read_back`]).
    pub(crate) fn load(&self, log: Option<&dyn EventLog>) -> Result<(u64, Channels), StoreError> {
        let (checkpoint, end) = match self.tree.get([CHECKPOINT])? {
            Some(v) if v.len() == 16 => (be_u64(&v[..8]), be_u64(&v[8..])),
            Some(_) => return Err(corrupt("bad checkpoint")),
            None => (0, 0),
        };
        self.blocks.set_end(end);
        let mut channels = Channels::new();
        for item in self.tree.scan_prefix([CHANNEL]) {
            let (k, v) = item?;
            let name = std::str::from_utf8(&k[1..]).map_err(|_| corrupt("channel name is not UTF-8"))?;
            let (record, _): (ChannelRecord, usize) =
                bincode::serde::decode_from_slice(&v, bincode::config::standard())
                    .map_err(|e| corrupt(format!("channel {name}: {e}")))?;
            channels.insert(name.to_owned(), record);
        }
        self.cursors.load(&self.tree)?;
        self.delivery.load(&self.tree)?;
        self.principals.load(&self.tree)?;
        self.redactions.load(&self.tree)?;
        if let Some(log) = log {
            self.read_back(log, checkpoint, &mut channels)?;
        }
        Ok((checkpoint, channels))
    }

    /// Every wake of a message and every cursor move's time, by key (for `check`).
    pub(crate) fn delivery_marks(&self) -> Result<std::collections::BTreeMap<Vec<u8>, Vec<u8>>, StoreError> {
        Delivery::marks(&self.tree)
    }

    /// Those of `ids` that `reader` was not woken about on `channel` yet.
    pub(crate) fn unwoken(&self, channel: &str, reader: &str, ids: &[u64]) -> Result<Vec<u64>, StoreError> {
        self.delivery.unwoken(&self.tree, channel, reader, ids)
    }

    /// Message `id` of `channel` as each reader there got it, as the log says.
    pub(crate) fn delivery_of(&self, channel: &str, id: u64) -> Result<Vec<(String, States)>, StoreError> {
        self.delivery.of_message(&self.tree, channel, id)
    }

    /// Reads the open messages (those after the channels' last sealed block, which the views
    /// keep in memory only) back from `log`, up to `checkpoint`.
    pub(crate) fn read_back(
        &self,
        log: &dyn EventLog,
        checkpoint: u64,
        channels: &mut Channels,
    ) -> Result<(), StoreError> {
        let open = read_back(log, checkpoint, channels, &self.redactions)?;
        *self.open.write().unwrap_or_else(|p| p.into_inner()) = open;
        Ok(())
    }

    /// Runs `read` until it ran while no seal was applied, so it saw the views before a seal or
    /// after it, not a mix (a seal moves open messages into a block).
    fn read<T>(&self, read: impl Fn() -> Result<T, StoreError>) -> Result<T, StoreError> {
        loop {
            let before = self.seals.load(Ordering::SeqCst);
            if before.is_multiple_of(2) {
                let result = read();
                if self.seals.load(Ordering::SeqCst) == before {
                    return result;
                }
            }
            std::thread::yield_now();
        }
    }

    /// Where the blocks of channel `no` holding ids above `after` start: the key id of the
    /// block holding `after + 1` (the last one starting at or before it), or 0.
    fn block_from(&self, no: u32, after: u64) -> Result<u64, StoreError> {
        match self.tree.range(block_key(no, 0)..=block_key(no, after + 1)).next_back() {
            Some(item) => key_id(&item?.0),
            None => Ok(0),
        }
    }

    /// Up to `limit` messages of channel `no` with `after < id <= upto`, oldest first.
    pub(crate) fn since(
        &self,
        no: u32,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        if after >= upto || limit == 0 {
            return Ok(Vec::new());
        }
        self.read(|| {
            let mut out = Vec::with_capacity(limit.min(512));
            for item in self.tree.range(block_key(no, self.block_from(no, after)?)..=block_key(no, upto)) {
                let block = self.block(&item?.1)?;
                for entry in entries(&block) {
                    let (id, range) = entry?;
                    if id > upto {
                        return Ok(out);
                    }
                    if id > after {
                        out.push(StoredMessage::new(id, block.slice(range)));
                        if out.len() == limit {
                            return Ok(out);
                        }
                    }
                }
            }
            let open = self.open.read().unwrap_or_else(|p| p.into_inner());
            let messages = open.get(&no).map_or(&[][..], Vec::as_slice);
            let start = messages.partition_point(|m| m.id <= after);
            let wanted = messages[start..].iter().take_while(|m| m.id <= upto);
            out.extend(wanted.take(limit - out.len()).cloned());
            Ok(out)
        })
    }

    /// The last `limit` messages of channel `no` with `after < id <= upto`, oldest first.
    pub(crate) fn tail(
        &self,
        no: u32,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.read(|| {
            // Newest first, turned round at the end.
            let mut out: Vec<StoredMessage> = {
                let open = self.open.read().unwrap_or_else(|p| p.into_inner());
                let messages = open.get(&no).map_or(&[][..], Vec::as_slice);
                let wanted = messages.iter().rev().filter(|m| m.id <= upto).take_while(|m| m.id > after);
                wanted.take(limit).cloned().collect()
            };
            if out.len() < limit {
                for item in self.tree.range(block_key(no, 0)..=block_key(no, upto)).rev() {
                    let block = self.block(&item?.1)?;
                    let in_block = entries(&block).collect::<Result<Vec<_>, _>>()?;
                    for (id, range) in in_block.into_iter().rev().filter(|(id, _)| *id <= upto) {
                        if id <= after {
                            out.reverse();
                            return Ok(out);
                        }
                        out.push(StoredMessage::new(id, block.slice(range)));
                        if out.len() == limit {
                            out.reverse();
                            return Ok(out);
                        }
                    }
                }
            }
            out.reverse();
            Ok(out)
        })
    }

    /// The message `id` as channel `no`'s view holds it, parsed.
    pub(crate) fn get(&self, no: u32, id: u64) -> Result<Option<Message>, StoreError> {
        let found = self.since(no, id.saturating_sub(1), id, 1)?;
        match found.first() {
            Some(m) if m.id == id => Ok(Some(decode_message(m.json())?)),
            _ => Ok(None),
        }
    }

    /// How many messages the views hold over `channels` (those that expired left out).
    pub(crate) fn message_count(&self, channels: &Channels) -> Result<u64, StoreError> {
        let expired: HashMap<u32, u64> = channels.values().map(|c| (c.no, c.expired)).collect();
        let after = |no: &u32| expired.get(no).copied().unwrap_or(0);
        let open = self.open.read().unwrap_or_else(|p| p.into_inner());
        let mut n = open.iter().map(|(no, ms)| ms.iter().filter(|m| m.id > after(no)).count() as u64).sum();
        for item in self.tree.scan_prefix([BLOCK]) {
            let (key, at) = item?;
            let no = key.get(1..5).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes);
            let no = no.ok_or_else(|| corrupt("bad block key"))?;
            for entry in entries(&self.block(&at)?) {
                if entry?.0 > after(&no) {
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// The expired messages whose records the log may still hold (it was stopped before it
    /// deleted them), in the groups the expiries wrote them.
    pub(crate) fn forgetting(&self) -> Result<Vec<Vec<u64>>, StoreError> {
        let ids =
            |bytes: &[u8]| bytes.chunks_exact(8).map(|c| u64::from_be_bytes(c.try_into().unwrap())).collect();
        self.tree.scan_prefix([FORGETTING]).map(|item| Ok(ids(&item?.1))).collect()
    }

    /// Asks `log` to delete the records of each group of expired messages (as [`Self::apply`]
    /// or [`Self::forgetting`] gave them), each group's entry taken out once it did.
    pub(crate) fn forget_in(&self, log: &dyn EventLog, groups: Vec<Vec<u64>>) -> Result<(), StoreError> {
        groups.iter().try_for_each(|ids| log.forget(ids, self.forgotten(ids)))
    }

    /// For the log to call once it deleted the records of `ids` (one group [`Self::apply`] or
    /// [`Self::forgetting`] gave): they are not asked for again. Asked again if it fails
    /// (deleting twice is harmless).
    pub(crate) fn forgotten(&self, ids: &[u64]) -> Forgotten {
        let (tree, key) = (self.tree.clone(), ids.first().map(|&first| forgetting_key(first)));
        Box::new(move || {
            if let Some(key) = key {
                let _ = tree.remove(key);
            }
        })
    }

    /// Empties the views, leaving them in the current layout.
    pub(crate) fn clear(&self) -> Result<(), StoreError> {
        self.tree.clear()?;
        self.tree.insert([FORMAT_KEY], &[FORMAT])?;
        self.open.write().unwrap_or_else(|p| p.into_inner()).clear();
        // What was loaded into memory goes too, or the replay would apply its events on top.
        self.cursors.load(&self.tree)?;
        self.delivery.load(&self.tree)?;
        self.principals.load(&self.tree)?;
        self.redactions.load(&self.tree)?;
        self.blocks.truncate(0)
    }

    /// Whether the blocks file and the loaded views disagree so that the views must be rebuilt:
    /// the file is shorter than the checkpoint says, or one of its newest blocks is damaged (a
    /// power cut can lose blocks written since the last sync while sled kept the views naming
    /// them). Returns what is wrong. The newest blocks, read for this, stay in memory.
    pub(crate) fn blocks_problem(&self) -> Result<Option<String>, StoreError> {
        let (len, end) = (self.blocks.len()?, self.blocks.end());
        if len < end {
            return Ok(Some(format!("the blocks file holds {len} bytes, the channel views name {end}")));
        }
        for item in self.tree.scan_prefix([BLOCK]) {
            let (_, at) = item?;
            let at = BlockRef::decode(&at).ok_or_else(|| corrupt("bad block reference"))?;
            if at.end() > end {
                return Ok(Some(format!("a block ends at byte {} of the blocks file, past {end}", at.end())));
            }
            if at.offset + RECENT_BYTES >= end {
                if let Err(e) = self.blocks.load(at) {
                    return Ok(Some(e.to_string()));
                }
            }
        }
        Ok(None)
    }

    /// Cuts bytes past the checkpoint's end off the blocks file: blocks of a batch a crash took
    /// away.
    pub(crate) fn cut_blocks(&self) -> Result<(), StoreError> {
        let len = self.blocks.len()?;
        if len > self.blocks.end() {
            self.blocks.truncate(self.blocks.end())?;
        }
        Ok(())
    }

    /// Makes the blocks written so far durable (with `durable`; without, only what punching
    /// dropped blocks needs, see [`BlockFile::sync`]); the caller flushes sled after.
    pub(crate) fn sync_blocks(&self, durable: bool) -> Result<(), StoreError> {
        self.blocks.sync(durable)
    }

    /// Makes the views durable: the blocks, then `db` (the database holding the views) that
    /// names them; twice, so the blocks dropped before the first flush are punched once it
    /// made the views without them durable.
    pub(crate) fn flush(&self, db: &sled::Db) -> Result<(), StoreError> {
        for _ in 0..2 {
            self.sync_blocks(true)?;
            db.flush()?;
        }
        Ok(())
    }

    /// Whether blocks were written since the last sync of the blocks file.
    #[cfg(test)]
    pub(crate) fn blocks_unsynced(&self) -> bool {
        self.blocks.unsynced()
    }

    /// Reads the block a block key's value names.
    fn block(&self, at: &[u8]) -> Result<Bytes, StoreError> {
        self.blocks.read(BlockRef::decode(at).ok_or_else(|| corrupt("bad block reference"))?)
    }

    /// Loaded from `log`: every key and value (but the deletes the log has yet to make), blocks
    /// read from the file, then the open messages under keys `[2] number id`, for comparing a
    /// rebuilt projection with an incremental one.
    #[cfg(test)]
    pub(crate) fn dump(&self, log: &dyn EventLog) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.load(Some(log)).unwrap();
        let mut out = Vec::new();
        for item in self.tree.iter() {
            let (k, v) = item.unwrap();
            if k[0] == FORGETTING {
                continue;
            }
            let v = if k[0] == BLOCK { self.block(&v).unwrap().to_vec() } else { v.to_vec() };
            out.push((k.to_vec(), v));
        }
        for (no, messages) in self.open.read().unwrap().iter() {
            out.extend(messages.iter().map(|m| (keyed(2, *no, m.id).to_vec(), m.json().to_vec())));
        }
        out.sort();
        out
    }
}

/// Reads the open messages back from `log`: each channel's messages from its first open id up
/// to the checkpoint, counted into its record.
/// A redacted message's text is erased from its copy (in nats mode, the stream still holds it).
fn read_back(
    log: &dyn EventLog,
    checkpoint: u64,
    channels: &mut Channels,
    redactions: &Redactions,
) -> Result<Open, StoreError> {
    let mut open = Open::new();
    // How many each channel held open: those not read back were erased from the log by an
    // expiry the views have not applied yet (a NATS stream another instance erases).
    let held: HashMap<u32, u32> =
        channels.values_mut().map(|c| (c.no, std::mem::take(&mut c.open))).collect();
    let Some(mut from) = channels.values().filter(|c| c.open_from > 0).map(|c| c.open_from).min() else {
        return Ok(open);
    };
    while from <= checkpoint {
        let events = log.read_from(from, READ_BACK_CHUNK)?;
        let Some(last) = events.last() else { break };
        from = last.id() + 1;
        for event in events.iter().filter(|e| e.id() <= checkpoint) {
            let Event::MessagePosted(m) = event else { continue };
            // A message of a channel the views do not know is for `check` to report.
            let Some(record) = channels.get_mut(&m.target) else { continue };
            if record.open_from == 0 || m.id < record.open_from || m.id <= record.expired {
                continue;
            }
            let mut message = stored(m)?;
            if redactions.get(m.id).is_some() {
                message = crate::store::projections::redactions::erased(&message);
            }
            record.open += 1;
            record.open_bytes = record.open_bytes.saturating_add(message.json().len() as u32);
            open.entry(record.no).or_default().push(message);
        }
    }
    for record in channels.values_mut() {
        let gone = held.get(&record.no).copied().unwrap_or(0).saturating_sub(record.open);
        record.count = record.count.saturating_sub(u64::from(gone));
    }
    Ok(open)
}
