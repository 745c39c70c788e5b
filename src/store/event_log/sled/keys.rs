//! The keys that seal messages' records in the sled log, one random key per message, kept in a
//! file of their own (`message-keys` in the data directory) that is written in place: a
//! message's record holds its event compressed (zstd) and encrypted under its key
//! (AES-128-GCM), and erasing the message erases the key. sled writes a changed record to a
//! new place and keeps the old version in its files until it reuses that space; sealed, the
//! old version holds nothing anyone can read once the key is gone, and no byte of the text
//! ever reaches sled's files.
//!
//! The key of id N is bytes 16N..16N+16 of the file; sixteen zeros are no key (never written,
//! or erased). Erased keys are overwritten with zeros, and a file-system page holding no key
//! any more is punched out of the file, so a log that forgets old messages keeps the file small.

use crate::store::StoreError;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
use ring::rand::{SecureRandom, SystemRandom};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

/// The file in the data directory.
pub(crate) const FILE: &str = "message-keys";

/// The first byte of a sealed record (event format versions are small numbers).
pub(super) const SEALED: u8 = 0x80;

const KEY: u64 = 16;
/// zstd's level for a record before it is sealed: the fast one the database's pages use.
const ZSTD_LEVEL: i32 = 1;
const PAGE: u64 = 4096;

type Key = [u8; KEY as usize];

pub(super) struct Keys {
    path: PathBuf,
    /// Opened once there is one (created by the first seal: a data directory whose log is in
    /// NATS has none).
    file: OnceLock<File>,
    random: SystemRandom,
    /// Whether [`Keys::seal`] syncs the keys it wrote before it returns.
    sync_on_seal: AtomicBool,
    /// Held while keys are written and while they are erased: an erase finds a page without
    /// keys and punches it out, which must not drop a key written in between (the writer
    /// seals while the forgetting thread erases).
    writing: Mutex<()>,
}

/// Ids in order, as runs of consecutive ids (first, last).
fn runs(ids: impl IntoIterator<Item = u64>) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for id in ids {
        match runs.last_mut() {
            Some(run) if run.1 + 1 == id => run.1 = id,
            _ => runs.push((id, id)),
        }
    }
    runs
}

/// Where the key of `id` is in the file.
fn offset(id: u64) -> Result<u64, StoreError> {
    id.checked_mul(KEY)
        .filter(|at| *at < u64::MAX - KEY)
        .ok_or_else(|| StoreError::corrupt(format!("event id {id} is too large for {FILE}")))
}

fn cipher(key: &Key) -> Result<LessSafeKey, String> {
    let key = UnboundKey::new(&AES_128_GCM, key).map_err(|_| "a key of the wrong length".to_string())?;
    Ok(LessSafeKey::new(key))
}

/// Each key seals one record only; the id in the nonce and the associated data ties the record
/// to its place in the log.
fn nonce(id: u64) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[..8].copy_from_slice(&id.to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

impl Keys {
    pub(super) fn open(data_dir: &Path) -> Keys {
        let (file, random, sync_on_seal) = (OnceLock::new(), SystemRandom::new(), AtomicBool::new(true));
        Keys { path: data_dir.join(FILE), file, random, sync_on_seal, writing: Mutex::default() }
    }

    pub(super) fn set_sync_on_seal(&self, on: bool) {
        self.sync_on_seal.store(on, Ordering::Relaxed);
    }

    /// The file, created when `create` (else `None` while there is none). A file created here
    /// is synced with its directory, so a power cut keeps its name.
    fn file(&self, create: bool) -> Result<Option<&File>, StoreError> {
        if let Some(file) = self.file.get() {
            return Ok(Some(file));
        }
        let failed = |e| StoreError::dir(&self.path, e);
        let opened = std::fs::OpenOptions::new().read(true).write(true).open(&self.path);
        let file = match opened {
            Ok(file) => file,
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(failed(e)),
            Err(_) if !create => return Ok(None),
            Err(_) => {
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&self.path)
                    .map_err(failed)?;
                let dir = self.path.parent().unwrap_or(Path::new("."));
                file.sync_all().and_then(|()| File::open(dir)?.sync_all()).map_err(failed)?;
                file
            }
        };
        Ok(Some(self.file.get_or_init(|| file)))
    }

    /// Seals each record of `records` (id, encoded event) under a new key, its key written to
    /// the file first, and synced unless [`Keys::set_sync_on_seal`] turned that off.
    pub(super) fn seal(&self, records: &mut [(u64, Vec<u8>)]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut keys = vec![0u8; records.len() * KEY as usize];
        self.random
            .fill(&mut keys)
            .map_err(|_| StoreError::Failed("no random bytes for the message keys".into()))?;
        let keys: Vec<Key> =
            keys.chunks_exact(KEY as usize).map(|k| k.try_into().unwrap_or_default()).collect();
        if keys.iter().any(|k| *k == Key::default()) {
            return Err(StoreError::Failed("the system's random source gave a key of zeros".into()));
        }
        let Some(file) = self.file(true)? else { return Err(StoreError::Failed(format!("no {FILE}"))) };
        let _writing = self.writing();
        let mut at = 0;
        for (first, last) in runs(records.iter().map(|r| r.0)) {
            let count = (last - first + 1) as usize;
            let run = keys[at..at + count].concat();
            file.write_all_at(&run, offset(first)?)
                .map_err(|e| StoreError::io("writing the message keys failed", e))?;
            at += count;
        }
        if self.sync_on_seal.load(Ordering::Relaxed) {
            self.sync()?;
        }
        for ((id, record), key) in records.iter_mut().zip(&keys) {
            let compressed = zstd::block::compress(record, ZSTD_LEVEL)
                .map_err(|e| StoreError::io(format!("compressing the record of event {id} failed"), e))?;
            let mut sealed = Vec::with_capacity(1 + compressed.len() + AES_128_GCM.tag_len());
            sealed.push(SEALED);
            sealed.extend_from_slice(&compressed);
            let tag = cipher(key)
                .map_err(StoreError::Failed)?
                .seal_in_place_separate_tag(nonce(*id), Aad::from(id.to_be_bytes()), &mut sealed[1..])
                .map_err(|_| StoreError::Failed(format!("sealing the record of event {id} failed")))?;
            sealed.extend_from_slice(tag.as_ref());
            *record = sealed;
        }
        Ok(())
    }

    /// The record of event `id` as encoded, opened with its key when it is sealed. An error
    /// says why it cannot be read.
    pub(super) fn open_record<'a>(
        &self,
        id: u64,
        record: &'a [u8],
    ) -> Result<std::borrow::Cow<'a, [u8]>, String> {
        let Some((&SEALED, sealed)) = record.split_first() else { return Ok(record.into()) };
        let mut key = Key::default();
        if let Some(file) = self.file(false).map_err(|e| e.to_string())? {
            file.read_exact_at(&mut key, offset(id).map_err(|e| e.to_string())?).or_else(|e| {
                match e.kind() {
                    io::ErrorKind::UnexpectedEof => Ok(()),
                    _ => Err(format!("reading its key in {FILE} failed: {e}")),
                }
            })?;
        }
        if key == Key::default() {
            return Err(format!("its key is not in {FILE} (erased, or the file was lost)"));
        }
        let mut plain = sealed.to_vec();
        let opened = cipher(&key)?
            .open_in_place(nonce(id), Aad::from(id.to_be_bytes()), &mut plain)
            .map_err(|_| format!("its key in {FILE} does not open it (damaged)"))?;
        let record =
            zstd::stream::decode_all(&opened[..]).map_err(|e| format!("cannot decompress it: {e}"))?;
        Ok(record.into())
    }

    fn writing(&self) -> MutexGuard<'_, ()> {
        self.writing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the keys written so far durable.
    pub(super) fn sync(&self) -> Result<(), StoreError> {
        match self.file.get() {
            Some(file) => file.sync_data().map_err(|e| StoreError::io("syncing the message keys failed", e)),
            None => Ok(()),
        }
    }

    /// Overwrites the keys of `ids` (in order) that are not zeros yet with zeros and syncs the
    /// file, then punches out each page left without a key (a file system that cannot punch
    /// keeps the zeros).
    pub(super) fn erase(&self, ids: &[u64]) -> Result<(), StoreError> {
        let failed = |e| StoreError::io("erasing message keys failed", e);
        if ids.is_empty() {
            return Ok(());
        }
        let Some(file) = self.file(false)? else { return Ok(()) };
        let _writing = self.writing();
        let mut held = Vec::with_capacity(ids.len());
        let mut key = Key::default();
        for &id in ids {
            let read = file.read_at(&mut key, offset(id)?).map_err(failed)?;
            if key[..read].iter().any(|b| *b != 0) {
                held.push(id);
            }
        }
        if held.is_empty() {
            return Ok(());
        }
        let mut pages = Vec::new();
        for (first, last) in runs(held) {
            let (start, end) = (offset(first)?, offset(last)? + KEY);
            file.write_all_at(&vec![0; (end - start) as usize], start).map_err(failed)?;
            pages.extend(start / PAGE..=(end - 1) / PAGE);
        }
        // The zeros on the disk before a punch frees their blocks, which keep what they held.
        self.sync()?;
        pages.dedup();
        let mut page = vec![0u8; PAGE as usize];
        for at in pages.into_iter().map(|p| p * PAGE) {
            let read = file.read_at(&mut page, at).map_err(failed)?;
            if page[..read].iter().all(|b| *b == 0) {
                let mode = rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE;
                match rustix::fs::fallocate(file, mode, at, PAGE) {
                    Ok(()) | Err(rustix::io::Errno::OPNOTSUPP) => {}
                    Err(e) => return Err(failed(e.into())),
                }
            }
        }
        Ok(())
    }

    /// Bytes the file takes on disk (holes excluded).
    #[cfg(test)]
    pub(super) fn disk_bytes(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        self.file.get().and_then(|f| f.metadata().ok()).map_or(0, |m| m.blocks() * 512)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_record_opens_with_its_key_only_and_not_once_the_key_is_erased() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::open(dir.path());
        let plain = b"a record holding hunter2".to_vec();
        let mut records = vec![(7, plain.clone()), (8, plain.clone()), (10, plain.clone())];
        keys.seal(&mut records).unwrap();
        for (id, record) in &records {
            assert_eq!(record[0], SEALED);
            assert!(!record.windows(7).any(|w| w == b"hunter2"), "the text is sealed");
            assert_eq!(keys.open_record(*id, record).unwrap().as_ref(), &plain[..]);
        }
        // A record under another id's key, or changed, does not open.
        assert!(keys.open_record(8, &records[0].1).is_err());
        let mut changed = records[1].1.clone();
        changed[5] ^= 1;
        assert!(keys.open_record(8, &changed).is_err());
        // An unsealed record is returned as it is.
        assert_eq!(keys.open_record(9, &[2, 1, 2]).unwrap().as_ref(), &[2, 1, 2]);
        keys.erase(&[7]).unwrap();
        let erased = keys.open_record(7, &records[0].1).unwrap_err();
        assert!(erased.contains("not in message-keys"), "{erased}");
        assert_eq!(keys.open_record(10, &records[2].1).unwrap().as_ref(), &plain[..], "the others stay");
    }

    #[test]
    fn pages_left_without_keys_leave_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::open(dir.path());
        let mut records: Vec<(u64, Vec<u8>)> = (1..=2048).map(|id| (id, vec![2, 0])).collect();
        keys.seal(&mut records).unwrap();
        keys.sync().unwrap();
        let full = keys.disk_bytes();
        assert!(full >= 2048 * KEY, "{full}");
        // The first 1,000 in two calls that each leave the page they share half full.
        keys.erase(&(1..=500).collect::<Vec<_>>()).unwrap();
        keys.erase(&(501..=1000).collect::<Vec<_>>()).unwrap();
        let after = keys.disk_bytes();
        assert!(after <= full - 3 * PAGE, "{full} bytes before, {after} after");
        assert!(keys.open_record(1001, &records[1000].1).is_ok());
    }
}
