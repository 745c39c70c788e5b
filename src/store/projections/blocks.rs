//! The channel views' sealed blocks, in one append-only file beside sled's database (`blocks`
//! in the data directory), read with `pread`.
//!
//! Sealed blocks never change, and they are most of the views' bytes. Kept in sled, every block
//! a reader touched stayed in the process's memory, whatever `cache_mb` said (sled 0.34 does
//! not bound its cache; docs/benchmarks.md, target 7). Here the operating system's page cache
//! holds them, shared and reclaimable, and the relay's memory stays small however much of the
//! history is read.
//!
//! The views tree in sled keeps, for each block, where it lies ([`BlockRef`]: offset, length,
//! CRC-32), and its checkpoint keeps the file's length as of that checkpoint, so after a crash
//! the views and the file agree again (`ChannelViews::blocks_problem`, `ChannelViews::cut_blocks`). Every
//! read from the file checks the CRC: a damaged block is an error naming the fix, never bytes
//! sent to a client.
//!
//! Blocks that expired (retention) are dropped from the views and their bytes given back to the
//! file system by punching a hole over them ([`BlockFile::punch`]): the file's length keeps
//! growing, the disk it takes does not.
//!
//! The newest [`RECENT_BYTES`] of blocks also stay in memory, where the pages agents ask for
//! most are read without a copy: those just sealed, and on open those the tail check read.

use crate::store::StoreError;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

pub(crate) const BLOCKS_FILE: &str = "blocks";

/// Bytes of the newest blocks kept in memory: 256 blocks of 64 messages of 1 KB.
pub(crate) const RECENT_BYTES: u64 = 16 * 1024 * 1024;

/// Where one block lies in the file, and its checksum: the value of a block's key in sled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockRef {
    pub offset: u64,
    pub len: u32,
    pub crc: u32,
}

impl BlockRef {
    pub const ENCODED: usize = 16;

    pub fn encode(&self) -> [u8; Self::ENCODED] {
        let mut out = [0u8; Self::ENCODED];
        out[..8].copy_from_slice(&self.offset.to_be_bytes());
        out[8..12].copy_from_slice(&self.len.to_be_bytes());
        out[12..].copy_from_slice(&self.crc.to_be_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<BlockRef> {
        let bytes: &[u8; Self::ENCODED] = bytes.try_into().ok()?;
        Some(BlockRef {
            offset: u64::from_be_bytes(bytes[..8].try_into().ok()?),
            len: u32::from_be_bytes(bytes[8..12].try_into().ok()?),
            crc: u32::from_be_bytes(bytes[12..].try_into().ok()?),
        })
    }

    pub fn end(&self) -> u64 {
        self.offset + u64::from(self.len)
    }
}

pub(crate) struct BlockFile {
    file: File,
    /// Where the next block goes; written by the one thread that applies events.
    end: AtomicU64,
    /// Written since the last [`BlockFile::sync`].
    dirty: AtomicBool,
    recent: Mutex<Recent>,
    /// Blocks to punch out of the file ([`BlockFile::punch`]), in two generations.
    punches: Mutex<Punches>,
}

/// Blocks no view names any more, to punch out once that is durable: `queued` since the last
/// sync, `ready` since the one before (whose flush made the views without them durable).
#[derive(Default)]
struct Punches {
    queued: Vec<BlockRef>,
    ready: Vec<BlockRef>,
}

/// The newest blocks, by offset, and their bytes in all.
#[derive(Default)]
struct Recent {
    blocks: BTreeMap<u64, Bytes>,
    bytes: u64,
}

impl Recent {
    fn keep(&mut self, offset: u64, block: Bytes) {
        self.bytes += block.len() as u64;
        if let Some(old) = self.blocks.insert(offset, block) {
            self.bytes -= old.len() as u64;
        }
        while self.bytes > RECENT_BYTES {
            let Some((_, oldest)) = self.blocks.pop_first() else { break };
            self.bytes -= oldest.len() as u64;
        }
    }

    fn forget(&mut self, offset: u64) {
        if let Some(block) = self.blocks.remove(&offset) {
            self.bytes -= block.len() as u64;
        }
    }

    fn forget_from(&mut self, offset: u64) {
        for (_, block) in self.blocks.split_off(&offset) {
            self.bytes -= block.len() as u64;
        }
    }
}

fn write_error(e: io::Error) -> StoreError {
    StoreError::io("writing the blocks file failed", e)
}

impl BlockFile {
    /// Opens (creating) the blocks file in the data directory `dir`.
    pub fn open(dir: &Path) -> io::Result<BlockFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(BLOCKS_FILE))?;
        Ok(BlockFile {
            file,
            end: AtomicU64::new(0),
            dirty: AtomicBool::new(false),
            recent: Mutex::default(),
            punches: Mutex::default(),
        })
    }

    /// The file's length on disk.
    pub fn len(&self) -> Result<u64, StoreError> {
        self.file.metadata().map(|m| m.len()).map_err(|e| StoreError::io("reading the blocks file failed", e))
    }

    /// Where the next block goes.
    pub fn end(&self) -> u64 {
        self.end.load(Ordering::SeqCst)
    }

    /// Places the next block at `end` (the length the views' checkpoint records).
    pub fn set_end(&self, end: u64) {
        self.end.store(end, Ordering::SeqCst);
    }

    /// Cuts the file to `end`: bytes past it belong to no block the views know.
    pub fn truncate(&self, end: u64) -> Result<(), StoreError> {
        self.recent().forget_from(end);
        self.file.set_len(end).map_err(write_error)?;
        self.set_end(end);
        self.dirty.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes `block` after the last one.
    pub fn append(&self, block: Vec<u8>) -> Result<BlockRef, StoreError> {
        let len =
            u32::try_from(block.len()).map_err(|_| write_error(io::Error::other("a block over 4 GiB")))?;
        let at = self.end();
        self.dirty.store(true, Ordering::SeqCst);
        self.file.write_all_at(&block, at).map_err(write_error)?;
        self.set_end(at + u64::from(len));
        let crc = crc32fast::hash(&block);
        self.recent().keep(at, Bytes::from(block));
        Ok(BlockRef { offset: at, len, crc })
    }

    /// Writes `block` over the one at `offset`, the same length (a redaction erasing a text).
    pub fn overwrite(&self, offset: u64, block: Vec<u8>) -> Result<(), StoreError> {
        self.dirty.store(true, Ordering::SeqCst);
        self.file.write_all_at(&block, offset).map_err(write_error)?;
        let mut recent = self.recent();
        if recent.blocks.contains_key(&offset) {
            recent.keep(offset, Bytes::from(block));
        }
        Ok(())
    }

    /// Gives the disk under `blocks` back to the file system once the views that no longer
    /// name them are durable: the second [`BlockFile::sync`] from now (each sync is followed
    /// by sled's flush) punches them. Until then a crash finds them as they were.
    pub fn punch(&self, blocks: &[BlockRef]) {
        let mut recent = self.recent();
        for b in blocks {
            recent.forget(b.offset);
        }
        drop(recent);
        self.punches.lock().unwrap_or_else(|p| p.into_inner()).queued.extend_from_slice(blocks);
    }

    /// Zeroes `blocks` and frees the whole file-system blocks among them, the file's length
    /// unchanged (`fallocate` with `FALLOC_FL_PUNCH_HOLE`); adjacent ones as one range.
    fn punch_now(&self, blocks: &[BlockRef]) -> io::Result<()> {
        let mut ranges: Vec<(u64, u64)> = blocks.iter().map(|b| (b.offset, b.end())).collect();
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            match merged.last_mut() {
                Some(last) if last.1 >= start => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        let mode = rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE;
        for (start, end) in merged {
            rustix::fs::fallocate(&self.file, mode, start, end - start)?;
        }
        Ok(())
    }

    /// A block's bytes from the file, whether they pass its checksum or not (an erasure a crash
    /// interrupted leaves a block changed before the views named its new checksum).
    pub fn read_unchecked(&self, at: BlockRef) -> Result<(Vec<u8>, bool), StoreError> {
        let mut buf = vec![0u8; at.len as usize];
        self.file
            .read_exact_at(&mut buf, at.offset)
            .map_err(|e| StoreError::io("reading the blocks file failed", e))?;
        let sound = crc32fast::hash(&buf) == at.crc;
        Ok((buf, sound))
    }

    /// One block: from memory when it is among the newest, else from the file.
    pub fn read(&self, at: BlockRef) -> Result<Bytes, StoreError> {
        let kept = self.recent().blocks.get(&at.offset).cloned();
        match kept {
            Some(block) if block.len() == at.len as usize => Ok(block),
            _ => self.read_file(at),
        }
    }

    /// Reads one block from the file, checking its CRC, and keeps it in memory if it is among
    /// the newest.
    pub fn load(&self, at: BlockRef) -> Result<Bytes, StoreError> {
        let block = self.read_file(at)?;
        if at.offset + RECENT_BYTES >= self.end() {
            self.recent().keep(at.offset, block.clone());
        }
        Ok(block)
    }

    fn read_file(&self, at: BlockRef) -> Result<Bytes, StoreError> {
        let mut buf = vec![0u8; at.len as usize];
        let damaged = |what: String| {
            StoreError::corrupt(format!(
                "channel views: the block at byte {} of the blocks file {what}",
                at.offset
            ))
        };
        match self.file.read_exact_at(&mut buf, at.offset) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(damaged("is cut short".into())),
            Err(e) => return Err(StoreError::io("reading the blocks file failed", e)),
        }
        if crc32fast::hash(&buf) != at.crc {
            return Err(damaged("fails its checksum".into()));
        }
        Ok(Bytes::from(buf))
    }

    #[cfg(test)]
    pub fn unsynced(&self) -> bool {
        self.dirty.load(Ordering::SeqCst)
    }

    /// Makes the blocks written so far durable when `durable` (before sled's flush makes the
    /// views that name them durable). Either way punches the blocks whose views the last flush
    /// made durable: on a file system that cannot punch holes their bytes stay, which changes
    /// nothing a reader sees. Those queued when the store closes keep their disk.
    pub fn sync(&self, durable: bool) -> Result<(), StoreError> {
        let ready = {
            let mut punches = self.punches.lock().unwrap_or_else(|p| p.into_inner());
            let queued = std::mem::take(&mut punches.queued);
            std::mem::replace(&mut punches.ready, queued)
        };
        if !ready.is_empty() && self.punch_now(&ready).is_ok() {
            self.dirty.store(true, Ordering::SeqCst);
        }
        if durable && self.dirty.swap(false, Ordering::SeqCst) {
            if let Err(e) = self.file.sync_data() {
                self.dirty.store(true, Ordering::SeqCst);
                return Err(StoreError::io("syncing the blocks file failed", e));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_read_back_and_damage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = BlockFile::open(dir.path()).unwrap();
        let a = blocks.append(b"first block".to_vec()).unwrap();
        let b = blocks.append(b"second".to_vec()).unwrap();
        assert_eq!((a.offset, b.offset, blocks.end()), (0, 11, 17));
        assert_eq!(BlockRef::decode(&b.encode()), Some(b));
        assert_eq!(&blocks.read(b).unwrap()[..], b"second");

        // Damage on disk is found by every read from the file, even of a block kept in memory.
        let wrong_crc = BlockRef { crc: b.crc ^ 1, ..b };
        assert!(blocks.load(wrong_crc).unwrap_err().to_string().contains("fails its checksum"));
        let past_end = BlockRef { offset: 12, ..b };
        assert!(blocks.load(past_end).unwrap_err().to_string().contains("cut short"));

        blocks.truncate(11).unwrap();
        assert_eq!((blocks.len().unwrap(), blocks.end()), (11, 11));
        assert_eq!(&blocks.read(a).unwrap()[..], b"first block");
        assert!(blocks.read(b).is_err(), "a block cut off is not served from memory");

        // Reopened: nothing in memory until loaded, then served from memory.
        drop(blocks);
        let blocks = BlockFile::open(dir.path()).unwrap();
        blocks.set_end(11);
        assert_eq!(&blocks.load(a).unwrap()[..], b"first block");
        std::fs::write(dir.path().join(BLOCKS_FILE), b"XXXXXXXXXXX").unwrap();
        assert_eq!(&blocks.read(a).unwrap()[..], b"first block");
        assert!(blocks.load(a).is_err());
    }
}
