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
//! the views and the file agree again (see `Views::repair_blocks`). Every read checks the
//! CRC: a damaged block is an error naming the fix, never bytes sent to a client.

use super::StoreError;
use bytes::Bytes;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub(crate) const BLOCKS_FILE: &str = "blocks";

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
}

fn write_error(e: io::Error) -> StoreError {
    if e.kind() == io::ErrorKind::StorageFull {
        StoreError::Io(
            "the disk is full (no space left on device); free space, then restart the relay".into(),
        )
    } else {
        StoreError::Io(format!("writing the blocks file failed: {e}"))
    }
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
        Ok(BlockFile { file, end: AtomicU64::new(0), dirty: AtomicBool::new(false) })
    }

    /// The file's length on disk.
    pub fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
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
        self.file.set_len(end).map_err(write_error)?;
        self.set_end(end);
        self.dirty.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Writes `block` after the last one.
    pub fn append(&self, block: &[u8]) -> Result<BlockRef, StoreError> {
        let len = u32::try_from(block.len()).map_err(|_| StoreError::Io("a block over 4 GiB".into()))?;
        let at = self.end();
        self.dirty.store(true, Ordering::SeqCst);
        self.file.write_all_at(block, at).map_err(write_error)?;
        self.set_end(at + u64::from(len));
        Ok(BlockRef { offset: at, len, crc: crc32fast::hash(block) })
    }

    /// Reads one block, checking its CRC.
    pub fn read(&self, at: BlockRef) -> Result<Bytes, StoreError> {
        let mut buf = vec![0u8; at.len as usize];
        let damaged = |what: String| {
            StoreError::Corrupt(format!(
                "channel views: the block at byte {} of the blocks file {what}; run `claude-codex-relay rebuild`",
                at.offset
            ))
        };
        match self.file.read_exact_at(&mut buf, at.offset) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(damaged("is cut short".into())),
            Err(e) => return Err(StoreError::Io(format!("reading the blocks file failed: {e}"))),
        }
        if crc32fast::hash(&buf) != at.crc {
            return Err(damaged("fails its checksum".into()));
        }
        Ok(Bytes::from(buf))
    }

    /// Makes the blocks written so far durable (before sled's flush makes the views that name
    /// them durable).
    pub fn sync(&self) -> Result<(), StoreError> {
        if self.dirty.swap(false, Ordering::SeqCst) {
            if let Err(e) = self.file.sync_data() {
                self.dirty.store(true, Ordering::SeqCst);
                return Err(StoreError::Io(format!("syncing the blocks file failed: {e}")));
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
        let a = blocks.append(b"first block").unwrap();
        let b = blocks.append(b"second").unwrap();
        assert_eq!((a.offset, b.offset, blocks.end()), (0, 11, 17));
        assert_eq!(BlockRef::decode(&b.encode()), Some(b));
        assert_eq!(&blocks.read(b).unwrap()[..], b"second");

        let wrong_crc = BlockRef { crc: b.crc ^ 1, ..b };
        assert!(blocks.read(wrong_crc).unwrap_err().to_string().contains("fails its checksum"));
        let past_end = BlockRef { offset: 12, ..b };
        assert!(blocks.read(past_end).unwrap_err().to_string().contains("cut short"));

        blocks.truncate(11).unwrap();
        assert_eq!((blocks.len().unwrap(), blocks.end()), (11, 11));
        assert_eq!(&blocks.read(a).unwrap()[..], b"first block");
    }
}
