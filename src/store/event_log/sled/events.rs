//! The log's trees: `events`, key = id as 8 big-endian bytes, value = encoded event; and in
//! `meta`, the id reservation: the highest id the relay may hand out before it must durably
//! reserve more. Because the reservation is flushed before any id under it is used, a crash can
//! lose unflushed events but never lets their ids be handed out again.
//!
//! A message's record is sealed under a key of its own (`keys.rs`). A redaction rewrites the
//! record as the tombstone, not sealed, and an expiry deletes it; [`Events::erase`] then erases
//! the key.

use super::keys::{Keys, SEALED};
use crate::event::{self, Event};
use crate::store::StoreError;
use std::path::Path;

const RESERVED_KEY: &[u8] = b"id_reserved";

pub(crate) struct Events {
    events: sled::Tree,
    meta: sled::Tree,
    keys: Keys,
    /// Held by a redaction's rewrite of a record (read, then written in the batch) and by each
    /// delete of an expired one, so the rewrite never puts back a record deleted meanwhile.
    rewriting: std::sync::Mutex<()>,
}

pub(crate) fn key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

fn id_of(key: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| StoreError::corrupt(format!("event key of {} bytes, expected 8", key.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

fn decode_u64(bytes: &[u8], what: &str) -> Result<u64, StoreError> {
    id_of(bytes).map_err(|_| StoreError::corrupt(format!("{what} is not 8 bytes")))
}

impl Events {
    /// The trees of `db`, with the keys of the data directory `dir`.
    pub(crate) fn open(db: &sled::Db, dir: &Path) -> Result<Self, StoreError> {
        Ok(Events {
            events: db.open_tree("events")?,
            meta: db.open_tree("meta")?,
            keys: Keys::open(dir),
            rewriting: Default::default(),
        })
    }

    /// Decodes the record stored under `id`, opening it first when it is sealed; `None` when
    /// it was deleted since it was read. A sealed record read just before a redaction rewrote
    /// it or an expiry deleted it, whose key is erased by the time it is opened, is read again:
    /// the tombstone then, or nothing.
    fn decode(&self, id: u64, record: &[u8]) -> Result<Option<Event>, event::DecodeError> {
        let record = match self.keys.open_record(id, record) {
            Ok(record) => record,
            Err(reason) => match self.events.get(key(id)) {
                Ok(Some(now)) if now.first() != Some(&SEALED) => now.to_vec().into(),
                Ok(None) => return Ok(None),
                _ => return Err(event::DecodeError::Body { id, reason }),
            },
        };
        event::decode(id, &record).map(Some)
    }

    /// The id of the last event in the log, 0 when it is empty.
    pub(crate) fn last_id(&self) -> Result<u64, StoreError> {
        match self.events.last()? {
            Some((k, _)) => id_of(&k),
            None => Ok(0),
        }
    }

    /// An id kept in `meta` (0 when it was never set).
    fn meta_id(&self, name: &[u8], what: &str) -> Result<u64, StoreError> {
        match self.meta.get(name)? {
            Some(v) => decode_u64(&v, what),
            None => Ok(0),
        }
    }

    fn set_meta_id(&self, name: &[u8], id: u64) -> Result<(), StoreError> {
        self.meta.insert(name, &key(id))?;
        Ok(())
    }

    /// The highest id reserved so far (0 when none was).
    pub(crate) fn reserved(&self) -> Result<u64, StoreError> {
        self.meta_id(RESERVED_KEY, "the id reservation")
    }

    /// Records a new reservation; the caller flushes before using ids under it.
    pub(crate) fn set_reserved(&self, id: u64) -> Result<(), StoreError> {
        self.set_meta_id(RESERVED_KEY, id)
    }

    /// Writes events (in memory until the database is flushed), each message sealed under a new
    /// key. One sled batch, so a batch is applied whole or not at all. A redaction rewrites the
    /// record of the message it names in the same batch as its tombstone, not sealed (the one
    /// record the log rewrites: DESIGN.md, "Forgetting on purpose"); the old record's key is
    /// erased once that is durable ([`Events::erase`]). Returns those records as they were, for
    /// [`Events::undo`] if the commit fails.
    pub(crate) fn append(&self, events: &[Event]) -> Result<Vec<(u64, sled::IVec)>, StoreError> {
        let redacts = events.iter().any(|e| matches!(e, Event::MessageRedacted(_)));
        let _rewriting = redacts.then(|| self.rewriting());
        let (mut sealed, mut plain) = (Vec::new(), Vec::new());
        let mut replaced = Vec::new();
        for e in events {
            let record = (e.id(), event::encode(e));
            match e {
                Event::MessagePosted(_) => sealed.push(record),
                _ => plain.push(record),
            }
            let Event::MessageRedacted(r) = e else { continue };
            let tombstone = (r.message, event::encode(&Event::MessagePosted(r.tombstone())));
            // A message posted in this batch (an import) is written as its tombstone only.
            if let Some(at) = sealed.iter().position(|(id, _)| *id == r.message) {
                sealed.remove(at);
                plain.push(tombstone);
                continue;
            }
            let Some(record) = self.events.get(key(r.message))? else { continue };
            // A sealed record is a message's: its tombstone needs no key (nor one still there).
            let message = record.first() == Some(&SEALED)
                || matches!(event::decode(r.message, &record)?, Event::MessagePosted(_));
            if message {
                plain.push(tombstone);
                replaced.push((r.message, record));
            }
        }
        self.keys.seal(&mut sealed)?;
        let mut batch = sled::Batch::default();
        for (id, record) in sealed.into_iter().chain(plain) {
            batch.insert(&key(id), record);
        }
        self.events.apply_batch(batch)?;
        Ok(replaced)
    }

    /// Erases the keys of the messages `ids` whose records are no longer sealed (redacted) or
    /// gone (expired), once that is durable: the old versions sled's files may still hold can
    /// no longer be read. A key already erased is left alone, so calling it again (each start
    /// does, for every redaction the views know) costs a read.
    pub(crate) fn erase(&self, ids: &[u64]) -> Result<(), StoreError> {
        let mut gone = Vec::with_capacity(ids.len());
        for &id in ids {
            if self.events.get(key(id))?.is_none_or(|r| r.first() != Some(&SEALED)) {
                gone.push(id);
            }
        }
        gone.sort_unstable();
        self.keys.erase(&gone)
    }

    /// For `compact`: seals the records among `records` (key, record) that are messages'
    /// written before records were sealed; returns how many. Their keys are synced.
    pub(crate) fn seal_plain(&self, records: &mut [(sled::IVec, Vec<u8>)]) -> Result<u64, StoreError> {
        let mut plain = Vec::new();
        for (at, (key, record)) in records.iter().enumerate() {
            let id = id_of(key)?;
            if record.first() != Some(&SEALED)
                && matches!(event::decode(id, record)?, Event::MessagePosted(_))
            {
                plain.push((at, id));
            }
        }
        let mut sealing: Vec<(u64, Vec<u8>)> =
            plain.iter().map(|&(at, id)| (id, std::mem::take(&mut records[at].1))).collect();
        self.keys.seal(&mut sealing)?;
        for (&(at, _), (_, record)) in plain.iter().zip(sealing) {
            records[at].1 = record;
        }
        Ok(plain.len() as u64)
    }

    /// Whether each message's key is synced as it is sealed, before its record is written (a
    /// power cut must not keep a record without its key): on with power safety (`fsync`).
    pub(crate) fn set_power_safe(&self, on: bool) {
        self.keys.set_sync_on_seal(on);
    }

    /// Takes out the records of messages that expired (written with the next commit's flush;
    /// their keys are erased by [`Events::erase`] once that is durable). One at a time, not in
    /// a batch: sled applies a batch under a lock that stops every other write and read of the
    /// database (the writer's commits, the views' batches, reads), where single removes go on
    /// beside them. Nothing needs them taken out together: a crash part way leaves some, which
    /// `check` accepts.
    pub(crate) fn forget(&self, ids: &[u64]) -> Result<(), StoreError> {
        for &id in ids {
            let _rewriting = self.rewriting();
            self.events.remove(key(id))?;
        }
        Ok(())
    }

    /// Makes every write to the database so far survive a crash (sled's flush).
    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        self.events.flush()?;
        Ok(())
    }

    fn rewriting(&self) -> std::sync::MutexGuard<'_, ()> {
        self.rewriting.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Undoes a commit that failed before it was durable, in one batch (sled recovers whole
    /// batches or none): takes out the events `first..=last` and puts back the records
    /// [`Events::append`] rewrote (`replaced`), but for those deleted since.
    pub(crate) fn undo(
        &self,
        first: u64,
        last: u64,
        replaced: Vec<(u64, sled::IVec)>,
    ) -> Result<(), StoreError> {
        let _rewriting = self.rewriting();
        let mut batch = sled::Batch::default();
        for id in first..=last {
            batch.remove(&key(id));
        }
        for (id, record) in replaced {
            if !(first..=last).contains(&id) && self.events.contains_key(key(id))? {
                batch.insert(&key(id), record);
            }
        }
        self.events.apply_batch(batch)?;
        Ok(())
    }

    /// The event with this id, if the log has it.
    pub(crate) fn get(&self, id: u64) -> Result<Option<Event>, StoreError> {
        match self.events.get(key(id))? {
            Some(v) => Ok(self.decode(id, &v)?),
            None => Ok(None),
        }
    }

    /// Every record in id order, with its decoding result: a damaged record is reported and the
    /// scan goes on past it.
    pub(crate) fn scan_raw(
        &self,
    ) -> impl Iterator<Item = Result<(u64, Result<Event, event::DecodeError>), StoreError>> + '_ {
        self.events.iter().map(|item| {
            let (k, v) = item?;
            let id = id_of(&k)?;
            let deleted = || event::DecodeError::Body { id, reason: "deleted while it was read".into() };
            Ok((id, self.decode(id, &v).and_then(|e| e.ok_or_else(deleted))))
        })
    }

    /// Events with id >= `from`, in id order, at most `limit` of them.
    pub(crate) fn read_from(&self, from: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::new();
        for item in self.events.range(key(from)..).take(limit) {
            let (k, v) = item?;
            let id = id_of(&k)?;
            out.extend(self.decode(id, &v)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{MessageRedacted, Post};
    use crate::message::Source;
    use crate::store::tests::posted;

    /// A redaction's rewrite of a record racing the delete of that record (its message expired
    /// meanwhile) never puts the record back.
    #[test]
    fn a_redaction_racing_a_delete_leaves_the_record_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let events = std::sync::Arc::new(Events::open(&db, dir.path()).unwrap());
        const N: u64 = 3000;
        let posts: Vec<Event> = (1..=N).map(|id| posted(id, "a", &format!("text {id}"))).collect();
        events.append(&posts).unwrap();
        let forgetting = {
            let events = events.clone();
            std::thread::spawn(move || (1..=N).for_each(|id| events.forget(&[id]).unwrap()))
        };
        for message in 1..=N {
            events.append(&[redaction(N + message, message)]).unwrap();
        }
        forgetting.join().unwrap();
        let back: Vec<u64> = (1..=N).filter(|id| events.events.contains_key(key(*id)).unwrap()).collect();
        assert_eq!(back, Vec::<u64>::new(), "records a redaction put back after their delete");
    }

    fn redaction(id: u64, message: u64) -> Event {
        let post = Post { sender: "s".into(), ts: 1.0, source: Source::Cli, reply_to: None };
        let (target, by, reason) = ("a".into(), "admin".into(), String::new());
        Event::MessageRedacted(MessageRedacted { id, ts: 2.0, target, message, post, by, reason })
    }

    fn key_of(dir: &std::path::Path, id: u64) -> Vec<u8> {
        let keys = std::fs::read(dir.join(super::super::keys::FILE)).unwrap();
        keys[id as usize * 16..][..16].to_vec()
    }

    /// A message's record never holds its text in the clear; its key is erased once its record is
    /// rewritten by a redaction or deleted by an expiry, not before, and again costs nothing; a
    /// sealed record read before its redaction reads as the tombstone once the key is gone.
    #[test]
    fn a_key_is_erased_once_its_record_is_no_longer_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let events = Events::open(&db, dir.path()).unwrap();
        events.append(&[posted(1, "a", "hunter2 one"), posted(2, "a", "hunter2 two")]).unwrap();
        let raw = events.events.get(key(1)).unwrap().unwrap();
        assert!(raw[0] == SEALED && !raw.windows(7).any(|w| w == b"hunter2"), "sealed");
        events.erase(&[1, 2]).unwrap();
        assert_ne!(key_of(dir.path(), 1), [0; 16], "kept while the record is sealed");
        let replaced = events.append(&[redaction(3, 1)]).unwrap();
        assert_eq!(replaced.len(), 1);
        events.erase(&[1]).unwrap();
        assert_eq!(key_of(dir.path(), 1), [0; 16], "erased once the tombstone is written");
        events.erase(&[1]).unwrap();
        let Some(Event::MessagePosted(before)) = events.decode(1, &raw).unwrap() else { panic!("message 1") };
        assert!(before.text.starts_with("redacted by admin"), "{}", before.text);
        events.forget(&[2]).unwrap();
        events.erase(&[2]).unwrap();
        assert_eq!(key_of(dir.path(), 2), [0; 16], "erased once the record is deleted");
        let ids: Vec<u64> = events.read_from(1, 10).unwrap().iter().map(Event::id).collect();
        assert_eq!(ids, [1, 3]);
        // A message and its redaction in one batch (an import): only the tombstone is written.
        events.append(&[posted(5, "a", "hunter2 five"), redaction(6, 5)]).unwrap();
        let raw5 = events.events.get(key(5)).unwrap().unwrap();
        assert!(raw5[0] != SEALED && !raw5.windows(7).any(|w| w == b"hunter2"), "the tombstone only");
        assert_eq!(events.decode(2, &raw).unwrap(), None, "deleted since it was read");
    }
}
