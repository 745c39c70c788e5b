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

pub(crate) struct Archive {
    config: ArchiveConfig,
    file: Rotating,
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
        Ok((Archive { config: config.clone(), file }, last))
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
                _ => {}
            }
        }
        self.file.flush()?;
        self.erase(redacted)
    }

    /// Overwrites the text of each message in `redacted` with what it maps to, in the files
    /// whose lines hold them (newest file first), and syncs each file it changed.
    fn erase(&self, mut redacted: HashMap<u64, String>) -> io::Result<()> {
        let files =
            std::iter::once(self.config.path.clone()).chain(backups(&self.config.path, self.config.backups));
        for path in files {
            if redacted.is_empty() {
                break;
            }
            let mut bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let mut file = None;
            let mut at = 0;
            while at < bytes.len() && !redacted.is_empty() {
                let end = bytes[at..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |n| at + n);
                let id = std::str::from_utf8(&bytes[at..end]).ok().and_then(id_of_line);
                if let Some(with) = id.and_then(|id| redacted.remove(&id)) {
                    let json = at + bytes[at..end].iter().position(|&b| b == b'{').unwrap_or(0);
                    if overwrite_text(&mut bytes[json..end], &with) {
                        if file.is_none() {
                            file = Some(std::fs::OpenOptions::new().write(true).open(&path)?);
                        }
                        if let Some(file) = &file {
                            std::os::unix::fs::FileExt::write_all_at(file, &bytes[json..end], json as u64)?;
                        }
                    }
                }
                at = end + 1;
            }
            if let Some(file) = file {
                file.sync_data()?;
            }
        }
        Ok(())
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

/// Opens the archive; returns it with the id it is written up to.
fn open_at_checkpoint(checkpoint: &Checkpoint, config: &ArchiveConfig) -> Result<(Archive, u64), StoreError> {
    let (archive, last_in_file) = Archive::open(config)
        .map_err(|e| StoreError::io(format!("cannot open the archive {}", config.path.display()), e))?;
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
    let (archive, mut done) = open_at_checkpoint(&checkpoint, config)?;
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
            Some(archive) => archive.follow(&*shared.log, &mut fed, &checkpoint, done, upto),
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
        if let Some(error) = error {
            // Posts go on. The file may be gone (its directory deleted): start a new one and
            // catch up from the checkpoint, now or after the next commit.
            error!(shared.logger, "archive behind the log"; "error" => error, "at" => done);
            // Closed first: its lock goes with it, and the new one takes it.
            archive = None;
            match open_at_checkpoint(&checkpoint, &config) {
                Ok((reopened, at)) => (archive, done) = (Some(reopened), at),
                Err(e) => error!(shared.logger, "cannot reopen the archive"; "error" => %e),
            }
        }
        let Some(next) = groups.next(&mut fed, &shared) else { return };
        upto = next;
    });
    spawned.map_err(|e| StoreError::io("cannot start the archive thread", e))
}
