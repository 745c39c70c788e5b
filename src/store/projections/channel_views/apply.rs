//! Applying the log's events to the channel views: one atomic batch per group, messages added
//! to their channels' open messages and sealed into blocks when full (or when a sweep finds
//! them too old or too many), cursors moved, wakes and acknowledgements noted, principals
//! changed, messages redacted, expired messages dropped, the checkpoint written.

use super::{
    block_key, channel_key, corrupt, entries, forgetting_entry, stored, ChannelRecord, ChannelViews,
    Channels, Open, CHECKPOINT, ENTRY_HEADER, FORGET_CHUNK, FORMAT, FORMAT_KEY,
};
use crate::event::{Event, MessageRedacted, MessagesExpired};
use crate::message::{overwrite_text, Message};
use crate::store::projections::blocks::BlockRef;
use crate::store::projections::cursors::Moves;
use crate::store::projections::delivery::{self, Delivery};
use crate::store::projections::principals::{Directory, Principals};
use crate::store::projections::redactions;
use crate::store::StoreError;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;

/// Messages sealed into one block: a page of 200 touches four or five blocks.
const BLOCK_MESSAGES: u32 = 64;
/// Bytes of JSON that seal a block early, so large messages do not make huge blocks (a message
/// larger than this is a block of its own).
const BLOCK_BYTES: u32 = 96 * 1024;
/// A channel's open messages are sealed once the log is this many ids past the first of them,
/// so opening reads back at most about this many events.
pub(crate) const OPEN_SPAN: u64 = 16_384;
/// Bytes of open messages over all channels past which all of them are sealed.
pub(crate) const OPEN_BYTES: u64 = 32 * 1024 * 1024;
/// How often, in ids, the two bounds above are checked.
const SWEEP_EVERY: u64 = 256;

/// A batch being applied: its messages not sealed yet, by channel number, and the channels
/// whose open messages from earlier batches it sealed.
#[derive(Default)]
struct Applying {
    fresh: Open,
    sealed: HashSet<u32>,
    cursors: Moves,
    delivery: delivery::Changes,
    /// The principals as the batch leaves them, when it changes them.
    principals: Option<Directory>,
    redactions: redactions::Added,
    /// Blocks to rewrite in place with redacted texts erased, by offset: their key, where they
    /// lie, and their new bytes.
    erased_blocks: BTreeMap<u64, (sled::IVec, BlockRef, Vec<u8>)>,
    /// Open messages whose text to erase once the batch is written: channel number and id.
    erased_open: Vec<(u32, u64)>,
    /// Channels whose open messages up to an id expire once the batch is written.
    expired_open: Vec<(u32, u64)>,
    /// The messages that expired in this batch, for the log to forget.
    expired: Vec<u64>,
    /// Blocks the batch drops (all their messages expired), to punch out of the file after it.
    dropped: Vec<BlockRef>,
}

/// Appends one message to a block being built.
fn push_entry(block: &mut Vec<u8>, id: u64, json: &[u8]) {
    block.extend_from_slice(&id.to_be_bytes());
    block.extend_from_slice(&(json.len() as u32).to_be_bytes());
    block.extend_from_slice(json);
}

impl ChannelViews {
    /// Applies events in atomic batches, updating `channels` (the caller's copy) to match: one
    /// batch, but that each run of redactions is a batch of its own, and each expiry too, so
    /// the messages they name are in the views (open or sealed, in the tree, not in a pending
    /// batch) when they are erased or dropped, no seal in the same batch copies an open message
    /// before that, and no erasure rewrites a block an expiry drops. Returns the ids of the
    /// messages that expired, for the log to forget, in the groups written under
    /// [`super::FORGETTING`] (one per [`FORGET_CHUNK`] ids of each expiry).
    pub(crate) fn apply(
        &self,
        events: &[Event],
        channels: &mut Channels,
    ) -> Result<Vec<Vec<u64>>, StoreError> {
        let redaction = |e: &Event| matches!(e, Event::MessageRedacted(_));
        let expiry = |e: &Event| matches!(e, Event::MessagesExpired(_));
        let (mut rest, mut expired) = (events, Vec::new());
        while let Some(first) = rest.first() {
            let run = match expiry(first) {
                true => 1,
                false => rest
                    .iter()
                    .position(|e| expiry(e) || redaction(e) != redaction(first))
                    .unwrap_or(rest.len()),
            };
            let (batch, after) = rest.split_at(run);
            expired.extend(self.apply_one(batch, channels)?);
            rest = after;
        }
        Ok(expired)
    }

    /// Applies events in one atomic batch.
    fn apply_one(&self, events: &[Event], channels: &mut Channels) -> Result<Vec<Vec<u64>>, StoreError> {
        let end = self.blocks.end();
        let result = self.apply_batch(events, channels);
        if result.is_err() {
            // Blocks this batch appended belong to nothing: the next ones go over them.
            self.blocks.set_end(end);
        }
        result
    }

    fn apply_batch(&self, events: &[Event], channels: &mut Channels) -> Result<Vec<Vec<u64>>, StoreError> {
        let Some(last) = events.last() else { return Ok(Vec::new()) };
        let mut batch = sled::Batch::default();
        let mut work = Applying::default();
        let mut touched: Vec<&str> = Vec::new();
        let mut swept = Vec::new();
        for event in events {
            match event {
                Event::MessagePosted(m) => {
                    self.add_message(m, channels, &mut work, &mut batch)?;
                    touched.push(m.target.as_str());
                }
                Event::CursorMoved(c) => {
                    if self.cursors.apply(c, &mut work.cursors, &mut batch) {
                        self.delivery.acknowledged(c, &mut work.delivery, &mut batch);
                    }
                }
                Event::PrincipalChanged(p) => self.principals.apply(p, &mut work.principals),
                Event::ReaderWoken(w) => {
                    self.delivery.woken(&self.tree, w, &mut work.delivery, &mut batch)?
                }
                Event::MessageRedacted(r) => {
                    if self.redactions.apply(r, &mut work.redactions, &mut batch)? {
                        self.erase(r, channels, &mut work)?;
                    }
                }
                Event::MessagesExpired(x) => {
                    if self.expire(x, channels, &mut work, &mut batch)? {
                        touched.push(x.target.as_str());
                    }
                }
            }
            if event.id().is_multiple_of(SWEEP_EVERY) {
                swept.extend(self.sweep(event.id(), channels, &mut work, &mut batch)?);
            }
        }
        touched.extend(swept.iter().map(String::as_str));
        touched.sort_unstable();
        touched.dedup();
        for name in touched {
            let bytes = bincode::serde::encode_to_vec(channels[name], bincode::config::standard())
                .map_err(corrupt)?;
            batch.insert(channel_key(name), bytes);
        }
        let forget: Vec<Vec<u64>> = work.expired.chunks(FORGET_CHUNK).map(<[u64]>::to_vec).collect();
        for ids in &forget {
            let (key, value) = forgetting_entry(ids);
            batch.insert(&key, value);
        }
        Principals::write(&work.principals, &mut batch)?;
        Delivery::write(&work.delivery, &mut batch)?;
        let mut checkpoint = [0u8; 16];
        checkpoint[..8].copy_from_slice(&last.id().to_be_bytes());
        checkpoint[8..].copy_from_slice(&self.blocks.end().to_be_bytes());
        batch.insert(&[CHECKPOINT], &checkpoint);
        batch.insert(&[FORMAT_KEY], &[FORMAT]);
        // Sealing moves messages from memory into blocks, and erasing changes blocks in place:
        // readers that overlap either start again (`ChannelViews::read`).
        let sealing = !work.sealed.is_empty()
            || !work.erased_blocks.is_empty()
            || !work.erased_open.is_empty()
            || !work.expired.is_empty()
            || !work.dropped.is_empty();
        if sealing {
            self.seals.fetch_add(1, Ordering::SeqCst);
        }
        let erased = std::mem::take(&mut work.erased_blocks);
        for (key, at, block) in erased.values() {
            batch.insert(key, &BlockRef { crc: crc32fast::hash(block), ..*at }.encode());
        }
        let result = erased
            .into_iter()
            .try_for_each(|(offset, (_, _, block))| self.blocks.overwrite(offset, block))
            .and_then(|()| Ok(self.tree.apply_batch(batch)?));
        if result.is_ok() {
            // The redactions first: a reader that sees an erased text sees its tombstone too.
            self.redactions.publish(work.redactions);
            let mut open = self.open.write().unwrap_or_else(|p| p.into_inner());
            for no in &work.sealed {
                open.remove(no);
            }
            for (no, messages) in work.fresh {
                open.entry(no).or_default().extend(messages);
            }
            for (no, upto) in work.expired_open {
                if let Some(messages) = open.get_mut(&no) {
                    messages.retain(|m| m.id > upto);
                }
            }
            for (no, id) in work.erased_open {
                if let Some(m) = open.get_mut(&no).and_then(|ms| ms.iter_mut().find(|m| m.id == id)) {
                    *m = redactions::erased(m);
                }
            }
            // Named by nothing once this batch is durable (a crash before leaves their disk).
            self.blocks.punch(&work.dropped);
            self.cursors.publish(work.cursors);
            self.delivery.publish(work.delivery);
            self.principals.publish(work.principals);
        }
        if sealing {
            self.seals.fetch_add(1, Ordering::SeqCst);
        }
        result.map(|()| forget)
    }

    /// Drops the messages of `x.target` up to `x.upto` (those not dropped yet): each block that
    /// holds only such messages leaves the index, and the open ones leave once the batch is
    /// written. Returns whether the channel changed.
    fn expire(
        &self,
        x: &MessagesExpired,
        channels: &mut Channels,
        work: &mut Applying,
        batch: &mut sled::Batch,
    ) -> Result<bool, StoreError> {
        let next_no = channels.len() as u32;
        let Some(record) = channels.get_mut(&x.target) else {
            // A channel whose every message the log forgot (a rebuild, or an instance that
            // started after a NATS stream erased them): known again from its expiry.
            if x.upto > 0 {
                let record =
                    ChannelRecord { last_id: x.upto, expired: x.upto, ..ChannelRecord::new(next_no) };
                channels.insert(x.target.clone(), record);
            }
            return Ok(x.upto > 0);
        };
        if x.upto <= record.expired {
            return Ok(false);
        }
        let (no, after) = (record.no, record.expired);
        let mut gone = Vec::new();
        for item in self.tree.range(block_key(no, self.block_from(no, after)?)..=block_key(no, x.upto)) {
            let (key, at) = item?;
            let ids =
                entries(&self.block(&at)?).map(|e| e.map(|(id, _)| id)).collect::<Result<Vec<_>, _>>()?;
            gone.extend(ids.iter().filter(|&&id| id > after && id <= x.upto));
            if ids.last().is_none_or(|&id| id <= x.upto) {
                work.dropped.push(BlockRef::decode(&at).ok_or_else(|| corrupt("bad block reference"))?);
                batch.remove(key);
            }
        }
        if record.open > 0 {
            let open = self.open.read().unwrap_or_else(|p| p.into_inner());
            let messages = open.get(&no).map_or(&[][..], Vec::as_slice);
            let kept = messages.partition_point(|m| m.id <= x.upto);
            gone.extend(messages[..kept].iter().map(|m| m.id).filter(|&id| id > after));
            let left = &messages[kept..];
            record.open = left.len() as u32;
            record.open_bytes = left.iter().map(|m| m.json().len() as u32).fold(0, u32::saturating_add);
            record.open_from = left.first().map_or(0, |m| m.id);
            work.expired_open.push((no, x.upto));
        }
        record.expired = x.upto;
        record.count = record.count.saturating_sub(gone.len() as u64);
        work.expired.extend(gone);
        Ok(true)
    }

    /// Erases the text of the message `r` redacts where the views hold it: in its channel's
    /// open messages (once the batch is written), or in its block, rewritten in place with the
    /// batch (its new checksum in it). A block a crash left erased but named with its old
    /// checksum is taken as it is; any other damage is an error.
    fn erase(&self, r: &MessageRedacted, channels: &Channels, work: &mut Applying) -> Result<(), StoreError> {
        let Some(no) = channels.get(&r.target).filter(|c| r.message > c.expired).map(|c| c.no) else {
            return Ok(());
        };
        let open = self.open.read().unwrap_or_else(|p| p.into_inner());
        if open.get(&no).is_some_and(|messages| messages.iter().any(|m| m.id == r.message)) {
            work.erased_open.push((no, r.message));
            return Ok(());
        }
        drop(open);
        let Some(item) = self.tree.range(block_key(no, 0)..=block_key(no, r.message)).next_back() else {
            return Ok(());
        };
        let (key, at) = item?;
        let at = BlockRef::decode(&at).ok_or_else(|| corrupt("bad block reference"))?;
        let (block, sound) = match work.erased_blocks.remove(&at.offset) {
            Some((_, _, block)) => (block, true),
            None => self.blocks.read_unchecked(at)?,
        };
        let mut block = block;
        let found = entries(&block).find(|entry| entry.as_ref().is_ok_and(|(id, _)| *id == r.message));
        let erased_before = match found {
            Some(Ok((_, range))) => {
                let before = block[range.clone()].to_vec();
                overwrite_text(&mut block[range.clone()], "") && block[range] == before[..]
            }
            _ => false,
        };
        if !sound && !erased_before {
            let at = at.offset;
            return Err(corrupt(format!("the block at byte {at} of the blocks file fails its checksum")));
        }
        work.erased_blocks.insert(at.offset, (key, at, block));
        Ok(())
    }

    /// Adds a message to its channel's open messages, sealing them into a block when full.
    fn add_message(
        &self,
        m: &Message,
        channels: &mut Channels,
        work: &mut Applying,
        batch: &mut sled::Batch,
    ) -> Result<(), StoreError> {
        let next_no = channels.len() as u32;
        let record = channels.entry(m.target.clone()).or_insert(ChannelRecord::new(next_no));
        let message = stored(m)?;
        record.count += 1;
        record.last_id = m.id;
        if record.open == 0 {
            record.open_from = m.id;
        }
        record.open += 1;
        record.open_bytes = record.open_bytes.saturating_add(message.json().len() as u32);
        work.fresh.entry(record.no).or_default().push(message);
        if record.open >= BLOCK_MESSAGES || record.open_bytes >= BLOCK_BYTES {
            self.seal(record, work, batch)?;
        }
        Ok(())
    }

    /// Writes the open messages of the channel `record` as one block to the blocks file: those
    /// of earlier batches (unless a seal in this batch took them already), then this batch's;
    /// adds to `batch` where it lies, keyed by its first id (`open_from`).
    fn seal(
        &self,
        record: &mut ChannelRecord,
        work: &mut Applying,
        batch: &mut sled::Batch,
    ) -> Result<(), StoreError> {
        let fresh = work.fresh.remove(&record.no).unwrap_or_default();
        if record.open == 0 {
            return Ok(());
        }
        let mut block = Vec::with_capacity(record.open_bytes as usize + ENTRY_HEADER * record.open as usize);
        if work.sealed.insert(record.no) {
            let open = self.open.read().unwrap_or_else(|p| p.into_inner());
            for m in open.get(&record.no).into_iter().flatten().filter(|m| m.id > record.expired) {
                if work.erased_open.contains(&(record.no, m.id)) {
                    // Redacted in this batch (a sweep seals it): sealed erased.
                    push_entry(&mut block, m.id, redactions::erased(m).json());
                } else {
                    push_entry(&mut block, m.id, m.json());
                }
            }
        }
        for m in &fresh {
            push_entry(&mut block, m.id, m.json());
        }
        let at = self.blocks.append(block)?;
        batch.insert(&block_key(record.no, record.open_from), &at.encode());
        (record.open, record.open_bytes, record.open_from) = (0, 0, 0);
        Ok(())
    }

    /// At id `id`, seals the channels whose open messages start [`OPEN_SPAN`] ids back or
    /// more, or all open ones when they hold more than [`OPEN_BYTES`]. Returns their names.
    fn sweep(
        &self,
        id: u64,
        channels: &mut Channels,
        work: &mut Applying,
        batch: &mut sled::Batch,
    ) -> Result<Vec<String>, StoreError> {
        let open_bytes: u64 = channels.values().map(|c| u64::from(c.open_bytes)).sum();
        let mut due: Vec<(u32, String)> = channels
            .iter()
            .filter(|(_, c)| c.open > 0 && (open_bytes > OPEN_BYTES || c.open_from + OPEN_SPAN <= id))
            .map(|(name, c)| (c.no, name.clone()))
            .collect();
        // In channel order, so a rebuild appends the blocks in the same order.
        due.sort_unstable();
        for (_, name) in &due {
            if let Some(record) = channels.get_mut(name) {
                self.seal(record, work, batch)?;
            }
        }
        Ok(due.into_iter().map(|(_, name)| name).collect())
    }
}
