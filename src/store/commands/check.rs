//! `check`: reads the whole log and compares each projection with it, changing nothing.

use super::rebuild::{log_of, stream_of, CHUNK};
use crate::event::{CursorMoved, Event, ReaderWoken};
use crate::message::Message;
use crate::store::database::Database;
use crate::store::event_log::backend::Backend;
use crate::store::event_log::EventLog;
use crate::store::projections::delivery::{mark_key, ts_value, Latest, Mark, ACKNOWLEDGED, WOKEN};
use crate::store::projections::principals::Directory;
use crate::store::projections::redactions::{self, ById};
use crate::store::StoreError;
use std::collections::BTreeMap;
use std::path::Path;

/// What `check` found: how many events it read, and every problem, each naming its id.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub events: u64,
    pub problems: Vec<String>,
}

/// Reads the whole log and the channel views of `dir`, changing nothing.
pub fn check(dir: &Path, backend: &Backend) -> Result<CheckReport, StoreError> {
    let database = Database::open_existing(dir)?;
    let stream = stream_of(backend)?;
    let (log, views) = (log_of(&database, &stream), &database.channel_views);
    let mut report = CheckReport::default();
    if !views.is_current()? {
        report.problems.push("the channel views are laid out by an older version".to_owned());
    }
    if let (Some(origin), Some(seen)) = (log.origin(), views.origin()?) {
        if seen != origin {
            report.problems.push(format!("the channel views were built from {seen}; the log is {origin}"));
        }
    }
    let (checkpoint, channels) = match views.load(Some(log)) {
        Ok(loaded) => loaded,
        Err(e) => {
            report.problems.push(e.to_string());
            (0, Default::default())
        }
    };
    match views.blocks_problem() {
        Ok(None) => {}
        Ok(Some(problem)) => report.problems.push(problem),
        Err(e) => report.problems.push(e.to_string()),
    }
    let mut in_views = std::collections::HashMap::<String, (u64, u64)>::new();
    let mut cursors = BTreeMap::<(String, String), u64>::new();
    let mut delivery = Expected::default();
    let mut principals = Directory::default();
    let mut logged = ById::new();
    let mut expired = std::collections::HashMap::<String, u64>::new();
    // The redactions the views applied (up to their checkpoint), read first: each follows the
    // message it names. Damage is reported by the scan below.
    let erased = redactions::in_log(log, checkpoint).unwrap_or_default();
    let mut previous = 0;
    let records: Box<dyn Iterator<Item = Result<Record, StoreError>>> = match &stream {
        Some(stream) => Box::new(stream_records(stream)),
        None => Box::new(
            database
                .log
                .events()
                .scan_raw()
                .map(|item| item.map(|(id, e)| (id, e.map_err(|e| e.to_string())))),
        ),
    };
    for item in records {
        let (id, result) = item?;
        report.events += 1;
        if id <= previous {
            report.problems.push(format!("event {id}: out of order after {previous}"));
        }
        previous = id;
        let event = match result {
            Ok(e) => e,
            Err(e) => {
                report.problems.push(e);
                continue;
            }
        };
        if id > checkpoint {
            continue; // not applied yet: the views catch up on the next start
        }
        let m = match &event {
            Event::MessagePosted(m) => m,
            Event::CursorMoved(c) => {
                let pair = (c.target.clone(), c.reader.clone());
                if cursors.get(&pair).is_none_or(|&at| c.to > at) {
                    cursors.insert(pair.clone(), c.to);
                    delivery.acknowledged(c);
                }
                continue;
            }
            Event::ReaderWoken(w) => {
                delivery.woken(w);
                continue;
            }
            Event::PrincipalChanged(p) => {
                principals.apply(p);
                continue;
            }
            Event::MessageRedacted(r) => {
                logged.entry(r.message).or_insert_with(|| r.redacted());
                continue;
            }
            Event::MessagesExpired(x) => {
                let upto = expired.entry(x.target.clone()).or_default();
                *upto = x.upto.max(*upto);
                continue;
            }
        };
        let Some(record) = channels.get(&m.target) else {
            report.problems.push(format!("event {id}: channel {:?} missing from the views", m.target));
            continue;
        };
        let seen = in_views.entry(m.target.clone()).or_default();
        if id <= record.expired {
            // Expired (the views' expiries are compared with the log's below); it counted in
            // the channel's last id.
            seen.1 = id;
            continue;
        }
        match views.get(record.no, id) {
            Ok(Some(viewed)) if !erased.contains_key(&id) && viewed == *m => {}
            // A redacted message's text is erased from the views (and, in sled mode, replaced in
            // the log's record by the tombstone's); the rest of it stays.
            Ok(Some(viewed)) if erased.contains_key(&id) => {
                if !viewed.text.trim().is_empty() {
                    report
                        .problems
                        .push(format!("event {id}: redacted, but the channel view still holds its text"));
                }
                if (Message { text: viewed.text.clone(), ..m.clone() }) != viewed {
                    report.problems.push(format!("event {id}: the channel view holds different content"));
                }
            }
            Ok(Some(_)) => {
                report.problems.push(format!("event {id}: the channel view holds different content"))
            }
            Ok(None) => {
                report.problems.push(format!("event {id}: missing from the view of channel {:?}", m.target))
            }
            Err(e) => report.problems.push(format!("event {id}: {e}")),
        }
        *seen = (seen.0 + 1, id);
    }
    if checkpoint > previous {
        report
            .problems
            .push(format!("views checkpoint {checkpoint} is past the log's last event {previous}"));
    }
    let search = crate::store::projections::search::DIR;
    if dir.join(search).exists() && crate::store::projections::search::laid_out_now(dir)? {
        search_problems(dir, log, &mut report.problems)?;
    }
    if views.redactions.all() != logged {
        report.problems.push("the redactions in the views differ from the log's".to_owned());
    }
    if *views.principals.now() != principals {
        report.problems.push("the principals in the views differ from the log's".to_owned());
    }
    if views.cursors.all() != cursors {
        report.problems.push(format!(
            "the readers' cursors in the views ({:?}) differ from the log's ({cursors:?})",
            views.cursors.all()
        ));
    }
    if views.delivery.all() != delivery.latest || views.delivery_marks()? != delivery.marks {
        report
            .problems
            .push("the readers' wakes and acknowledgements in the views differ from the log's".to_owned());
    }
    for (name, record) in &channels {
        let logged = expired.get(name).copied().unwrap_or(0);
        if record.expired != logged {
            report.problems.push(format!(
                "channel {name:?}: views expired messages up to id {}, the log up to id {logged}",
                record.expired
            ));
        }
        let (count, last_id) = in_views.get(name).copied().unwrap_or_default();
        // A log that forgot expired messages (sled) no longer shows the channel's last id
        // when every message of it expired.
        let forgotten = count == 0 && last_id <= logged && record.last_id <= logged;
        let last_id = if forgotten { record.last_id } else { last_id };
        if (record.count, record.last_id) != (count, last_id) {
            report.problems.push(format!(
                "channel {name:?}: views record {} messages up to id {}, the log {count} up to id {last_id}",
                record.count, record.last_id
            ));
        }
    }
    let expected: u64 = in_views.values().map(|(count, _)| count).sum();
    match views.message_count(&channels) {
        Ok(held) if held != expected => report
            .problems
            .push(format!("the views hold {held} messages, the log {expected} up to the checkpoint")),
        Ok(_) => {}
        Err(e) => report.problems.push(e.to_string()),
    }
    Ok(report)
}

/// A record of the log as `check` reads it: its id, and the event or what is wrong with it.
type Record = (u64, Result<Event, String>);

/// Every event of a stream in id order, read in chunks. A read that fails (a damaged record
/// among the chunk, the stream unreachable) is reported at the id it was to start from, and
/// the scan ends there.
fn stream_records(log: &dyn EventLog) -> impl Iterator<Item = Result<Record, StoreError>> + '_ {
    let (mut after, mut buffered, mut done) = (0, std::collections::VecDeque::new(), false);
    std::iter::from_fn(move || {
        if buffered.is_empty() && !done {
            match log.read_from(after + 1, CHUNK) {
                Ok(events) => {
                    done = events.is_empty();
                    buffered.extend(events);
                }
                Err(e) => {
                    done = true;
                    let problem = format!("event {}: the stream cannot be read from here on: {e}", after + 1);
                    return Some(Ok((after + 1, Err(problem))));
                }
            }
        }
        let event: Event = buffered.pop_front()?;
        after = event.id();
        Some(Ok((after, Ok(event))))
    })
}

/// Compares the search index with the log: it must hold each message up to its checkpoint once,
/// but the redacted and the expired ones. A channel expired after the checkpoint is compared
/// above that expiry only: the log may have forgotten the records below it already (the index
/// drops them once it applies the expiry), so neither side is counted there.
fn search_problems(dir: &Path, log: &dyn EventLog, problems: &mut Vec<String>) -> Result<(), StoreError> {
    let index = crate::store::projections::search::SearchIndex::open(dir)?;
    let checkpoint = index.checkpoint()?;
    let mut after = 0;
    // Each channel's messages the index should hold.
    let mut held = std::collections::HashMap::<String, std::collections::BTreeSet<u64>>::new();
    // Each channel's newest expiry after the checkpoint: the last message it covers.
    let mut later = std::collections::HashMap::<String, u64>::new();
    loop {
        // Damage in the log is reported by the scan above; the index is then not compared.
        let Ok(events) = log.read_from(after + 1, CHUNK) else { return Ok(()) };
        let Some(last) = events.last().map(Event::id) else { break };
        for event in events {
            match event {
                Event::MessagesExpired(x) if x.id > checkpoint => {
                    let upto = later.entry(x.target).or_default();
                    *upto = x.upto.max(*upto);
                }
                _ if event.id() > checkpoint => {}
                Event::MessagePosted(m) => {
                    held.entry(m.target).or_default().insert(m.id);
                }
                // The index drops a redacted message, and expired ones.
                Event::MessageRedacted(r) => {
                    held.entry(r.target).or_default().remove(&r.message);
                }
                Event::MessagesExpired(x) => {
                    let ids = held.entry(x.target).or_default();
                    *ids = ids.split_off(&(x.upto + 1));
                }
                _ => {}
            }
        }
        after = last;
    }
    let mut indexed = index.count()?;
    for (channel, upto) in &later {
        indexed = indexed.saturating_sub(index.count_upto(channel, *upto)?);
        if let Some(ids) = held.get_mut(channel) {
            *ids = ids.split_off(&(upto + 1));
        }
    }
    let messages: u64 = held.values().map(|ids| ids.len() as u64).sum();
    if indexed != messages {
        let above = if later.is_empty() { "" } else { " (both counted above the expiries made after it)" };
        problems.push(format!(
            "the search index holds {indexed} messages; the log has {messages} up to its checkpoint {checkpoint}{above}"
        ));
    }
    Ok(())
}

/// The readers' states the log's events make (`projections/delivery.rs`): the latest of each,
/// and each message's wake and each cursor move's time, by key.
#[derive(Default)]
struct Expected {
    latest: BTreeMap<(String, String), Latest>,
    marks: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Expected {
    /// A cursor's move forward.
    fn acknowledged(&mut self, c: &CursorMoved) {
        let latest = self.latest.entry((c.target.clone(), c.reader.clone())).or_default();
        latest.acknowledged = Some(Mark { id: c.to, ts: c.ts });
        self.marks.insert(mark_key(ACKNOWLEDGED, &c.target, &c.reader, c.to), ts_value(c.ts).to_vec());
    }

    fn woken(&mut self, w: &ReaderWoken) {
        let latest = self.latest.entry((w.target.clone(), w.reader.clone())).or_default();
        for &id in &w.ids {
            let key = mark_key(WOKEN, &w.target, &w.reader, id);
            if self.marks.contains_key(&key) {
                continue;
            }
            self.marks.insert(key, ts_value(w.ts).to_vec());
            if latest.woken.is_none_or(|m| id > m.id) {
                latest.woken = Some(Mark { id, ts: w.ts });
            }
        }
    }
}
