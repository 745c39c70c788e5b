//! The log's trees: `events`, key = id as 8 big-endian bytes, value = encoded event; and in
//! `meta`, the id reservation: the highest id the relay may hand out before it must durably
//! reserve more. Because the reservation is flushed before any id under it is used, a crash can
//! lose unflushed events but never lets their ids be handed out again.

use crate::event::{self, Event};
use crate::store::StoreError;

const RESERVED_KEY: &[u8] = b"id_reserved";

pub(crate) struct Events {
    events: sled::Tree,
    meta: sled::Tree,
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
    pub(crate) fn open(db: &sled::Db) -> Result<Self, StoreError> {
        Ok(Events {
            events: db.open_tree("events")?,
            meta: db.open_tree("meta")?,
            rewriting: Default::default(),
        })
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

    /// Writes events (in memory until the database is flushed). One sled batch, so a batch is
    /// applied whole or not at all. A redaction rewrites the record of the message it names in
    /// the same batch, its text replaced by the tombstone's (the one record the log rewrites:
    /// DESIGN.md, "Forgetting on purpose"); returns those records as they were, for
    /// [`Events::restore`] if the commit fails.
    pub(crate) fn append(&self, events: &[Event]) -> Result<Vec<(u64, sled::IVec)>, StoreError> {
        let redacts = events.iter().any(|e| matches!(e, Event::MessageRedacted(_)));
        let _rewriting = redacts.then(|| self.rewriting());
        let mut batch = sled::Batch::default();
        let mut replaced = Vec::new();
        for e in events {
            batch.insert(&key(e.id()), event::encode(e));
            let Event::MessageRedacted(r) = e else { continue };
            let Some(record) = self.events.get(key(r.message))? else { continue };
            if let Event::MessagePosted(mut m) = event::decode(r.message, &record)? {
                m.text = r.tombstone_text();
                batch.insert(&key(r.message), event::encode(&Event::MessagePosted(m)));
                replaced.push((r.message, record));
            }
        }
        self.events.apply_batch(batch)?;
        Ok(replaced)
    }

    /// Puts back records [`Events::append`] rewrote, but for those deleted since.
    pub(crate) fn restore(&self, records: Vec<(u64, sled::IVec)>) -> Result<(), StoreError> {
        let _rewriting = self.rewriting();
        let mut batch = sled::Batch::default();
        for (id, record) in records {
            if self.events.contains_key(key(id))? {
                batch.insert(&key(id), record);
            }
        }
        self.events.apply_batch(batch)?;
        Ok(())
    }

    /// Takes out the records of messages that expired (written with the next commit's flush).
    /// One at a time, not in a batch: sled applies a batch under a lock that stops every other
    /// write and read of the database (the writer's commits, the views' batches, reads), where
    /// single removes go on beside them. Nothing needs them taken out together: a crash part
    /// way leaves some, which `check` accepts.
    pub(crate) fn forget(&self, ids: &[u64]) -> Result<(), StoreError> {
        for &id in ids {
            let _rewriting = self.rewriting();
            self.events.remove(key(id))?;
        }
        Ok(())
    }

    fn rewriting(&self) -> std::sync::MutexGuard<'_, ()> {
        self.rewriting.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes out the events `first..=last` (a commit that failed before it was durable).
    pub(crate) fn remove(&self, first: u64, last: u64) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for id in first..=last {
            batch.remove(&key(id));
        }
        self.events.apply_batch(batch)?;
        Ok(())
    }

    /// The event with this id, if the log has it.
    pub(crate) fn get(&self, id: u64) -> Result<Option<Event>, StoreError> {
        match self.events.get(key(id))? {
            Some(v) => Ok(Some(event::decode(id, &v)?)),
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
            Ok((id, event::decode(id, &v)))
        })
    }

    /// Events with id >= `from`, in id order, at most `limit` of them.
    pub(crate) fn read_from(&self, from: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::new();
        for item in self.events.range(key(from)..).take(limit) {
            let (k, v) = item?;
            out.push(event::decode(id_of(&k)?, &v)?);
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
        let db = sled::open(dir.path()).unwrap();
        let events = std::sync::Arc::new(Events::open(&db).unwrap());
        const N: u64 = 3000;
        let posts: Vec<Event> = (1..=N).map(|id| posted(id, "a", &format!("text {id}"))).collect();
        events.append(&posts).unwrap();
        let forgetting = {
            let events = events.clone();
            std::thread::spawn(move || (1..=N).for_each(|id| events.forget(&[id]).unwrap()))
        };
        for message in 1..=N {
            let post = Post { sender: "s".into(), ts: 1.0, source: Source::Cli, reply_to: None };
            let (target, by, reason) = ("a".into(), "admin".into(), String::new());
            let redaction = MessageRedacted { id: N + message, ts: 2.0, target, message, post, by, reason };
            events.append(&[Event::MessageRedacted(redaction)]).unwrap();
        }
        forgetting.join().unwrap();
        let back: Vec<u64> = (1..=N).filter(|id| events.events.contains_key(key(*id)).unwrap()).collect();
        assert_eq!(back, Vec::<u64>::new(), "records a redaction put back after their delete");
    }
}
