//! The text archive `log/channel_messages.log`: a projection of the log for humans and grep.
//!
//! One line per message, the Python relay's format: the message's time in local time, a space,
//! then the message as JSON (`id, ts, target, sender, text, source`). Rotated by size, `.1`
//! newest. Its own thread writes it from the log, never on the request path.
//!
//! Crash safety: lines are written (and flushed to the file) before the checkpoint in sled moves
//! on. After a crash the checkpoint may lag the file, so on start the archive reads the id of
//! the last whole line in the file and skips up to it, and it cuts off a partial last line.
//! Nothing is lost and nothing is written twice.
//!
//! A redaction overwrites its message's text in place, in whichever file holds the line (the
//! current one or a rotated one): "redacted by NAME: REASON" padded with spaces to the text's
//! length (spaces only when it does not fit), so no byte of the text stays and every other line
//! stays where it was. Done again after a crash, it writes the same bytes.
//!
//! Expired messages (`MessagesExpired`, retention) have their lines' text overwritten the same
//! way, with "expired", by a sweep of the archive files ([`Archive::sweep`]): right after the
//! first expiry, then at most once a minute, on this thread, idle or not. A sweep reads the
//! files newest first, down to the first whose last line an earlier sweep covered. What is left
//! to sweep lives in memory; on start it is taken from the channel views (each channel's
//! expiry), so a crash only delays it.

use crate::event::Event;
use crate::message::{overwrite_text, Message};
use crate::rotating::{self, backups, Rotating};
use crate::store::event_log::EventLog;
use crate::store::projections::projector::{events_after, Group, Groups};
use crate::store::shared::Shared;
use crate::store::StoreError;
use chrono::TimeZone;

use slog::error;
use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Events read from the log per batch of lines.
const CHUNK: usize = 1024;

/// Where the archive goes and how it rotates (from the config's `channel_log_*` keys).
#[derive(Debug, Clone)]
pub struct ArchiveConfig {
    pub path: PathBuf,
    pub max_bytes: u64,
    pub backups: usize,
}

/// One archive line, newline included. The time is the message's own, so a rebuild writes the
/// same bytes.
pub fn line(m: &Message) -> String {
    let secs = m.ts.floor();
    let nanos = ((m.ts - secs) * 1e9) as u32;
    let time = chrono::Local
        .timestamp_opt(secs as i64, nanos.min(999_999_999))
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S,%3f").to_string())
        .unwrap_or_else(|| "0000-00-00 00:00:00,000".into());
    let json = serde_json::to_string(m).expect("a message always encodes as JSON");
    format!("{time} {json}\n")
}

/// The id in an archive line, if it is one.
fn id_of_line(line: &str) -> Option<u64> {
    let json = line.split_once(' ')?.1.split_once(' ')?.1;
    serde_json::from_str::<serde_json::Value>(json).ok()?.get("id")?.as_u64()
}

/// Cuts a partial last line off `path` and returns the id of its last whole line.
fn repair_and_last_id(path: &Path) -> io::Result<Option<u64>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if whole < bytes.len() {
        std::fs::OpenOptions::new().write(true).open(path)?.set_len(whole as u64)?;
    }
    let text = String::from_utf8_lossy(&bytes[..whole]);
    Ok(text.lines().next_back().and_then(id_of_line))
}

/// An expired message's text in its archive line.
const EXPIRED_TEXT: &str = "expired";
/// Sweeps for expired lines are at most this often: each reads the files holding lines newer
/// than what the last one covered.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

pub(crate) struct Archive {
    config: ArchiveConfig,
    file: Rotating,
    /// Each channel's expiry (the id up to which its messages expired) still to sweep.
    expired: HashMap<String, u64>,
    /// Each channel's expiry the last sweep overwrote the lines of.
    swept: HashMap<String, u64>,
    last_sweep: Option<Instant>,
}

/// What [`Archive::edit_lines`] does after a line.
enum Line {
    Kept,
    /// Changed in place: to be written back; `last` when no other line is to change.
    Changed {
        last: bool,
    },
    /// The rest of this file is newer than any line to change (lines are in id order).
    RestNewer,
    /// No line in any file is left to change.
    Done,
}

/// The id and channel of an archive line's message (its JSON, read without copying the text).
#[derive(serde::Deserialize)]
struct LineHead<'a> {
    id: u64,
    #[serde(borrow)]
    target: std::borrow::Cow<'a, str>,
}

impl Archive {
    /// Opens the archive for appending. Returns it and the id of the last message it holds.
    pub(crate) fn open(config: &ArchiveConfig) -> io::Result<(Archive, Option<u64>)> {
        // Locked before the repair touches it: another relay's archive is refused, not cut.
        let file = rotating::open(&config.path, config.max_bytes, config.backups)?;
        let mut last = repair_and_last_id(&config.path)?;
        if last.is_none() {
            // Just rotated: the newest lines are in `.1`.
            if let Some(newest) = backups(&config.path, config.backups).next() {
                last = repair_and_last_id(&newest)?;
            }
        }
        let archive = Archive {
            config: config.clone(),
            file,
            expired: HashMap::new(),
            swept: HashMap::new(),
            last_sweep: None,
        };
        Ok((archive, last))
    }

    /// Deletes the archive and its backups (for a rebuild).
    pub(crate) fn remove_files(config: &ArchiveConfig) -> io::Result<()> {
        for path in std::iter::once(config.path.clone()).chain(backups(&config.path, config.backups)) {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    fn append(&mut self, events: &[Event]) -> io::Result<()> {
        // The archive is the messages' text; cursor moves are not part of it.
        // Redactions wait to be done together, but never past a later line: after a crash the
        // archive goes on after its last line, so what came before that line must be done.
        let mut redacted = HashMap::new();
        for event in events {
            match event {
                Event::MessagePosted(m) => {
                    if !redacted.is_empty() {
                        self.file.flush()?;
                        self.erase(std::mem::take(&mut redacted))?;
                    }
                    self.file.write_all(line(m).as_bytes())?;
                }
                Event::MessageRedacted(r) => {
                    redacted.insert(r.message, r.tombstone_text());
                }
                Event::MessagesExpired(x) => self.expire(&x.target, x.upto),
                _ => {}
            }
        }
        self.file.flush()?;
        self.erase(redacted)
    }

    /// Overwrites the text of each message in `redacted` with what it maps to, in the files
    /// whose lines hold them (newest file first), and syncs each file it changed.
    fn erase(&self, mut redacted: HashMap<u64, String>) -> io::Result<()> {
        if redacted.is_empty() {
            return Ok(());
        }
        self.edit_lines(0, |json| {
            let id = serde_json::from_slice::<LineHead>(json).ok().map(|h| h.id);
            match id.and_then(|id| redacted.remove(&id)) {
                Some(with) if overwrite_text(json, &with) => Line::Changed { last: redacted.is_empty() },
                Some(_) if redacted.is_empty() => Line::Done,
                _ => Line::Kept,
            }
        })
    }

    /// Goes through the lines of every archive file, newest file first, handing `edit` each
    /// line's JSON (the message) to change in place; writes back the lines it changed and syncs
    /// each file it changed. Stops at a file whose last line's id is `done_upto` or less (older
    /// files hold older lines only).
    fn edit_lines(&self, done_upto: u64, mut edit: impl FnMut(&mut [u8]) -> Line) -> io::Result<()> {
        let files =
            std::iter::once(self.config.path.clone()).chain(backups(&self.config.path, self.config.backups));
        for path in files {
            if done_upto > 0 && last_id(&path)?.is_some_and(|id| id <= done_upto) {
                break;
            }
            let mut bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let (mut file, mut at, mut last) = (None, 0, false);
            while at < bytes.len() && !last {
                let end = bytes[at..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |n| at + n);
                let json = at + bytes[at..end].iter().position(|&b| b == b'{').unwrap_or(end - at);
                match edit(&mut bytes[json..end]) {
                    Line::Kept => {}
                    Line::RestNewer => break,
                    Line::Done => last = true,
                    Line::Changed { last: no_more } => {
                        let file = match &mut file {
                            Some(file) => file,
                            None => file.insert(std::fs::OpenOptions::new().write(true).open(&path)?),
                        };
                        std::os::unix::fs::FileExt::write_all_at(file, &bytes[json..end], json as u64)?;
                        last = no_more;
                    }
                }
                at = end + 1;
            }
            if let Some(file) = file {
                file.sync_data()?;
            }
            if last {
                break;
            }
        }
        Ok(())
    }

    /// How long until a sweep is due, when an expiry is left to sweep.
    pub(crate) fn sweep_due_in(&self) -> Option<Duration> {
        if self.expired.iter().all(|(channel, upto)| self.swept.get(channel) >= Some(upto)) {
            return None;
        }
        Some(self.last_sweep.map_or(Duration::ZERO, |at| SWEEP_EVERY.saturating_sub(at.elapsed())))
    }

    /// Notes that `channel`'s messages up to `upto` expired: the next sweep overwrites them.
    fn expire(&mut self, channel: &str, upto: u64) {
        let at = self.expired.entry(channel.to_owned()).or_default();
        *at = (*at).max(upto);
    }

    /// Overwrites the text of the expired messages' lines in every archive file, when an expiry
    /// is left to sweep and the last sweep was [`SWEEP_EVERY`] ago (or none was).
    /// `written`: the id up to which the archive holds the log's lines (expiries may be ahead
    /// of it: lines written later are swept later).
    pub(crate) fn sweep_when_due(&mut self, written: u64) -> io::Result<()> {
        if self.sweep_due_in() != Some(Duration::ZERO) {
            return Ok(());
        }
        self.last_sweep = Some(Instant::now());
        let expiries = self.expired.clone();
        self.sweep(&expiries, &self.swept)?;
        self.swept = expiries.into_iter().map(|(channel, upto)| (channel, upto.min(written))).collect();
        Ok(())
    }

    /// Overwrites with [`EXPIRED_TEXT`] the text of each line whose message `expiries` covers
    /// and `swept` (what an earlier sweep did) does not, in every archive file, and syncs each
    /// file it changed.
    fn sweep(&self, expiries: &HashMap<String, u64>, swept: &HashMap<String, u64>) -> io::Result<()> {
        let newest_expired = expiries.values().copied().max().unwrap_or(0);
        // Lines up to the lowest id a channel left to sweep was swept up to are all done.
        let swept_upto = |channel: &String| swept.get(channel).copied().unwrap_or(0);
        let left = expiries.iter().filter(|(channel, &upto)| upto > swept_upto(channel));
        let done_upto = left.map(|(channel, _)| swept_upto(channel)).min().unwrap_or(0);
        self.edit_lines(done_upto, |json| {
            let Ok(head) = serde_json::from_slice::<LineHead>(json) else { return Line::Kept };
            if head.id > newest_expired {
                return Line::RestNewer;
            }
            let channel = head.target.as_ref();
            let done = swept.get(channel).is_some_and(|&upto| head.id <= upto);
            if done || expiries.get(channel).is_none_or(|&upto| head.id > upto) {
                return Line::Kept;
            }
            let before = json.to_vec();
            match overwrite_text(json, EXPIRED_TEXT) && before != json {
                true => Line::Changed { last: false },
                false => Line::Kept,
            }
        })
    }

    /// Writes every event after `from` up to `upto` (from the groups `fed` when they hold them,
    /// else from the log), moving the checkpoint after each batch. Returns the new checkpoint.
    pub(crate) fn follow(
        &mut self,
        log: &dyn EventLog,
        fed: &mut VecDeque<Group>,
        checkpoint: &Checkpoint,
        mut from: u64,
        upto: u64,
    ) -> Result<u64, StoreError> {
        while from < upto {
            let events = events_after(log, fed, from, upto, CHUNK)?;
            let Some(last) = events.last().map(Event::id) else { break };
            self.append(&events).map_err(|e| {
                StoreError::io(format!("writing the archive {}", self.config.path.display()), e)
            })?;
            checkpoint.set(last)?;
            from = last;
        }
        Ok(from)
    }
}

/// Where the archive's checkpoint is kept: the id of the last event written to the file, in the
/// database's `meta` tree (a projection's state, beside the channel views).
pub(crate) struct Checkpoint {
    meta: sled::Tree,
}

/// The id of the last line of the archive file `path` (`None` when it has no line, or its last
/// line is longer than the tail read).
fn last_id(path: &Path) -> io::Result<Option<u64>> {
    use std::io::{Read, Seek, SeekFrom};
    const TAIL: u64 = 64 << 10;
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL)))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    let body = tail.strip_suffix(b"\n").unwrap_or(&tail);
    let Some(start) = body.iter().rposition(|&b| b == b'\n').map(|n| n + 1).or((len <= TAIL).then_some(0))
    else {
        return Ok(None);
    };
    let line = &body[start..];
    let json = &line[line.iter().position(|&b| b == b'{').unwrap_or(line.len())..];
    Ok(serde_json::from_slice::<LineHead>(json).ok().map(|head| head.id))
}

const CHECKPOINT_KEY: &[u8] = b"archive_checkpoint";

impl Checkpoint {
    pub(crate) fn open(db: &sled::Db) -> Result<Checkpoint, StoreError> {
        Ok(Checkpoint { meta: db.open_tree("meta")? })
    }

    /// The id the file is written up to, as far as the checkpoint knows (0 when never set).
    pub(crate) fn get(&self) -> Result<u64, StoreError> {
        match self.meta.get(CHECKPOINT_KEY)? {
            Some(v) => <[u8; 8]>::try_from(v.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::corrupt("the archive checkpoint is not 8 bytes")),
            None => Ok(0),
        }
    }

    pub(crate) fn set(&self, id: u64) -> Result<(), StoreError> {
        self.meta.insert(CHECKPOINT_KEY, &id.to_be_bytes())?;
        Ok(())
    }
}

/// Opens the archive; returns it with the id it is written up to. Every channel's expiry is
/// left to sweep: a crash may have come before the sweep.
fn open_at_checkpoint(
    checkpoint: &Checkpoint,
    shared: &Shared,
    config: &ArchiveConfig,
) -> Result<(Archive, u64), StoreError> {
    let (mut archive, last_in_file) = Archive::open(config)
        .map_err(|e| StoreError::io(format!("cannot open the archive {}", config.path.display()), e))?;
    for (channel, record) in shared.published.read().unwrap_or_else(|p| p.into_inner()).iter() {
        if record.expired > 0 {
            archive.expire(channel, record.expired);
        }
    }
    Ok((archive, checkpoint.get()?.max(last_in_file.unwrap_or(0))))
}

/// Starts the thread that writes the archive: it catches up with the log, then follows each
/// group the views applied, until the projector is gone.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    config: &ArchiveConfig,
    groups: Groups,
) -> Result<thread::JoinHandle<()>, StoreError> {
    let checkpoint = Checkpoint::open(&shared.db)?;
    let (archive, mut done) = open_at_checkpoint(&checkpoint, &shared, config)?;
    // `None` after a failure, until it is opened again.
    let mut archive = Some(archive);
    // What the views hold now (in nats mode before the stream is reached, less than it).
    let mut upto = *shared.commits.borrow();
    shared.archived.store(done, Ordering::Relaxed);
    let config = config.clone();
    let mut fed = VecDeque::new();
    let spawned = thread::Builder::new().name("relay-archive".into()).spawn(move || loop {
        // A panic in the rotating writer must not end the archive for the rest of the run.
        let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match archive.as_mut() {
            Some(archive) => {
                let at = archive.follow(&*shared.log, &mut fed, &checkpoint, done, upto)?;
                if let Err(e) = archive.sweep_when_due(at) {
                    // Tried again with the next group after a minute.
                    error!(shared.logger, "archive: expired lines not overwritten yet"; "error" => %e);
                }
                Ok(at)
            }
            None => Err(StoreError::Crashed("the archive could not be opened again".into())),
        }));
        let error = match step {
            Ok(Ok(at)) => {
                done = at;
                shared.archived.store(done, Ordering::Relaxed);
                None
            }
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some("the rotating writer panicked".to_owned()),
        };
        let failed = error.is_some();
        if let Some(error) = error {
            // Posts go on. The file may be gone (its directory deleted): start a new one and
            // catch up from the checkpoint, now or after the next commit.
            error!(shared.logger, "archive behind the log"; "error" => error, "at" => done);
            // Closed first: its lock goes with it, and the new one takes it.
            archive = None;
            match open_at_checkpoint(&checkpoint, &shared, &config) {
                Ok((reopened, at)) => (archive, done) = (Some(reopened), at),
                Err(e) => error!(shared.logger, "cannot reopen the archive"; "error" => %e),
            }
        }
        // An idle relay sweeps when the sweep is due, without waiting for a post (but for an
        // archive that just failed: it waits for the next group, as it did before).
        let wait = archive.as_ref().filter(|_| !failed).and_then(Archive::sweep_due_in);
        let Some(next) = groups.next(&mut fed, &shared, wait) else { return };
        upto = upto.max(next);
    });
    spawned.map_err(|e| StoreError::io("cannot start the archive thread", e))
}

#[cfg(test)]
mod tests {
    use super::last_id;

    #[test]
    fn a_files_last_line_gives_its_id_when_the_tail_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("channel_messages.log");
        assert_eq!(last_id(&path).unwrap(), None, "no file");
        std::fs::write(&path, "").unwrap();
        assert_eq!(last_id(&path).unwrap(), None, "no line");
        let line = |id: u64, text: &str| {
            format!("2026-12-06 09:00:00 {{\"id\":{id},\"target\":\"c\",\"text\":\"{text}\"}}\n")
        };
        std::fs::write(&path, line(3, "one")).unwrap();
        assert_eq!(last_id(&path).unwrap(), Some(3), "one line");
        std::fs::write(&path, line(3, "one") + &line(7, "two")).unwrap();
        assert_eq!(last_id(&path).unwrap(), Some(7));
        let long = "x".repeat(70 << 10);
        std::fs::write(&path, line(3, "one") + &line(8, &long)).unwrap();
        assert_eq!(last_id(&path).unwrap(), None, "a last line longer than the tail read");
        std::fs::write(&path, line(8, &long) + &line(9, "short")).unwrap();
        assert_eq!(last_id(&path).unwrap(), Some(9));
    }
}
