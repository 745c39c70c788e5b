//! Commands on a store no relay is running on: export, import, check, replay. Each takes the
//! data directory's lock, so a running relay makes them fail with a message that says so. Each
//! reads the log where the [`Backend`] says: the data directory's own, or the stream in nats
//! mode (which `export` reads while the relays run: it needs no data directory). `check`
//! compares the projections with the log; `rebuild` drops them and replays the log into them.

mod check;
pub(crate) mod rebuild;

pub use check::{check, CheckReport};

use crate::event::{reason_problem, via_problem, Change, Event, MAX_WAKE_IDS};
use crate::identity::Grants;
use crate::message::{summary_line, Redacted};
use crate::store::database::{Database, Options};
use crate::store::event_log::backend::Backend;
use crate::store::event_log::nats::{ImportRecord, NatsLog, NatsSettings};
use crate::store::event_log::EventLog;
use crate::store::projections::archive::ArchiveConfig;
use crate::store::projections::redactions;
use crate::store::StoreError;
use crate::values::Name;
use rebuild::{rebuild_projections, stream_of, CHUNK};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

/// Which events an export writes.
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    pub target: Option<String>,
    /// Only ids greater than this.
    pub since_id: u64,
    /// Only ids up to and including this.
    pub until_id: Option<u64>,
}

impl ExportFilter {
    fn keeps(&self, event: &Event) -> bool {
        self.target.as_deref().is_none_or(|t| event.target() == Some(t))
    }
}

/// One chunk of an export: the JSON lines of the events `filter` selects among those after
/// `after` (or after `filter.since_id`, if later) up to `upto`, and the last id read (`None` when
/// there is nothing left). `upto` is the last id when the export began, so an export is a
/// snapshot even while posts arrive. A message `redacted` names is written with its tombstone's
/// text in place of its own (its redaction follows as an event, when the export reaches it).
pub(crate) fn export_chunk(
    log: &dyn EventLog,
    filter: &ExportFilter,
    after: u64,
    upto: u64,
    redacted: &dyn Fn(u64) -> Option<Redacted>,
) -> Result<(Vec<u8>, Option<u64>), StoreError> {
    let after = after.max(filter.since_id);
    let upto = filter.until_id.map_or(upto, |u| u.min(upto));
    if after >= upto {
        return Ok((Vec::new(), None));
    }
    let events = log.read_from(after + 1, CHUNK)?;
    let Some(last) = events.last().map(Event::id) else { return Ok((Vec::new(), None)) };
    let mut out = Vec::new();
    for event in events.into_iter().filter(|e| e.id() <= upto && filter.keeps(e)) {
        let event = match event {
            Event::MessagePosted(mut m) => {
                if let Some(r) = redacted(m.id) {
                    m.text = r.text();
                }
                Event::MessagePosted(m)
            }
            event => event,
        };
        out.extend_from_slice(event.to_json_line().as_bytes());
    }
    Ok((out, Some(last)))
}

/// Exports the log as JSON Lines: the store's in `dir`, or the stream (shared and live: read
/// while the relays run, `dir` unused). Returns the bytes written.
pub fn export(
    dir: &Path,
    backend: &Backend,
    filter: &ExportFilter,
    out: &mut dyn Write,
) -> Result<u64, StoreError> {
    match stream_of(backend)? {
        Some(stream) => export_log(&stream, filter, out),
        None => export_log(&Database::open_existing(dir)?.log, filter, out),
    }
}

fn export_log(log: &dyn EventLog, filter: &ExportFilter, out: &mut dyn Write) -> Result<u64, StoreError> {
    let upto = log.last_id()?;
    let redacted = redactions::in_log(log, u64::MAX)?;
    let io_error = |e| StoreError::io("writing the export", e);
    let (mut after, mut written) = (0, 0);
    let redacted = |id| redacted.get(&id).cloned();
    while let (chunk, Some(last)) = export_chunk(log, filter, after, upto, &redacted)? {
        out.write_all(&chunk).map_err(io_error)?;
        written += chunk.len() as u64;
        after = last;
    }
    out.flush().map_err(io_error)?;
    Ok(written)
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}:{line}: {reason}; nothing was imported")]
    Line { path: String, line: u64, reason: String },
    #[error("the store in {dir} already holds messages (last id {last}); import into an empty data dir or stream, or (sled) pass --merge")]
    NotEmpty { dir: String, last: u64 },
    #[error("{path}:{line}: id {id} is already in the store with different content; nothing was imported")]
    Conflict { path: String, line: u64, id: u64 },
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("--merge is for a sled data dir; a stream is imported into only when empty")]
    Merge,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub imported: u64,
    /// Already present with identical content (`--merge`).
    pub skipped: u64,
    /// Where the events went: the data directory, or `the stream NAME`.
    pub into: String,
}

/// The channel of a message the store holds already (`None` when it holds none with that id).
type StoredPost<'a> = &'a dyn Fn(u64) -> Option<String>;

/// Reads an export: each line's event, checked, with its line number. Blank lines are skipped.
/// A redaction must name a message of its channel: earlier in the file, or in the store
/// (`stored`), or one that a later expiry of the channel in the file covers (a log that
/// forgot expired messages keeps their redactions).
fn read_export<'a>(
    path: &Path,
    stored: StoredPost<'a>,
) -> Result<impl Iterator<Item = Result<(u64, Event), ImportError>> + 'a, ImportError> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path)
        .map_err(|e| ImportError::Read { path: shown.clone(), reason: e.to_string() })?;
    let mut previous = 0;
    // The file's messages: id → channel, each channel's name kept once.
    let (mut posts, mut numbers, mut channels) = (HashMap::new(), HashMap::new(), Vec::<String>::new());
    let mut redacted = std::collections::HashSet::new();
    // Redactions of messages found nowhere yet: line, message, channel.
    let unresolved = std::rc::Rc::new(std::cell::RefCell::new(Vec::<(u64, u64, String)>::new()));
    let (pending, shown_end) = (unresolved.clone(), shown.clone());
    let lines = BufReader::new(file).lines().zip(1u64..).filter_map(move |(line, n)| {
        let bad = |reason: String| Some(Err(ImportError::Line { path: shown.clone(), line: n, reason }));
        let line = match line {
            Ok(l) if l.trim().is_empty() => return None,
            Ok(l) => l,
            Err(e) => return bad(format!("cannot read the line: {e}")),
        };
        let event = match Event::from_json_line(&line) {
            Ok(e) => e,
            Err(reason) => return bad(format!("not an exported event: {reason}")),
        };
        if let Err(reason) = importable(&event) {
            return bad(reason);
        }
        match &event {
            Event::MessagePosted(m) => {
                let at = *numbers.entry(m.target.clone()).or_insert_with(|| {
                    channels.push(m.target.clone());
                    channels.len() - 1
                });
                posts.insert(m.id, at);
            }
            Event::MessageRedacted(r) => {
                let in_file = posts.get(&r.message).map(|&at: &usize| channels[at].clone());
                match in_file.or_else(|| stored(r.message)) {
                    Some(target) if target == r.target => {}
                    Some(_) => return bad(not_a_message(r.message, &r.target)),
                    None => pending.borrow_mut().push((n, r.message, r.target.clone())),
                }
                if !redacted.insert(r.message) {
                    return bad(format!("message: {} is redacted already, earlier in the file", r.message));
                }
            }
            Event::MessagesExpired(x) => {
                pending.borrow_mut().retain(|(_, message, target)| *target != x.target || *message > x.upto)
            }
            _ => {}
        }
        let id = event.id();
        if id <= previous {
            return bad(format!("id {id} does not follow {previous}: ids must increase"));
        }
        previous = id;
        Some(Ok((n, event)))
    });
    let end = std::iter::once_with(move || {
        let (line, message, target) = unresolved.borrow_mut().drain(..).next()?;
        Some(Err(ImportError::Line { path: shown_end, line, reason: not_a_message(message, &target) }))
    });
    Ok(lines.chain(end.flatten()))
}

fn not_a_message(message: u64, target: &str) -> String {
    format!("message: {message} is not a message of {target} before it")
}

/// Whether an exported event holds what the relay itself would store.
fn importable(event: &Event) -> Result<(), String> {
    match event {
        Event::MessagePosted(m) => {
            Name::parse("target", &m.target)
                .and(Name::parse("sender", &m.sender))
                .map_err(|e| e.to_string())?;
            if m.text.trim().is_empty() {
                return Err("text: must not be empty".into());
            }
            if m.reply_to.is_some_and(|parent| parent >= m.id) {
                return Err(format!("reply_to: must be an id before the message's own, {}", m.id));
            }
            if m.redacted.is_some() {
                return Err("redacted: a message_posted record never holds it; a redaction is a message_redacted record".into());
            }
        }
        Event::MessageRedacted(r) => {
            Name::parse("target", &r.target)
                .and(Name::parse("by", &r.by))
                .and(Name::parse("post.sender", &r.post.sender))
                .map_err(|e| e.to_string())?;
            if r.message >= r.id {
                return Err(format!("message: {} must be an id before the event's own, {}", r.message, r.id));
            }
            if let Some(problem) = reason_problem(&r.reason) {
                return Err(format!("reason: {problem}"));
            }
        }
        Event::MessagesExpired(x) => {
            Name::parse("target", &x.target).map_err(|e| e.to_string())?;
            if x.upto >= x.id {
                return Err(format!("upto: {} must be an id before the event's own, {}", x.upto, x.id));
            }
        }
        Event::CursorMoved(c) => {
            Name::parse("target", &c.target)
                .and(Name::parse("reader", &c.reader))
                .map_err(|e| e.to_string())?;
            if c.to >= c.id {
                return Err(format!("to: {} must be an id before the event's own, {}", c.to, c.id));
            }
        }
        Event::ReaderWoken(w) => {
            Name::parse("target", &w.target)
                .and(Name::parse("reader", &w.reader))
                .map_err(|e| e.to_string())?;
            if w.ids.is_empty()
                || w.ids.len() > MAX_WAKE_IDS
                || w.ids.windows(2).any(|pair| pair[0] >= pair[1])
            {
                return Err(format!("ids: must name 1 to {MAX_WAKE_IDS} messages, in ascending order"));
            }
            if let Some(problem) = via_problem(&w.via) {
                return Err(format!("via: {problem}"));
            }
            if w.ids.last().is_some_and(|&last| last >= w.id) {
                return Err(format!("ids: must be ids before the event's own, {}", w.id));
            }
        }
        Event::PrincipalChanged(p) => {
            Name::parse("name", &p.name).map_err(|e| e.to_string())?;
            match &p.change {
                Change::Added { read, write, .. } | Change::GrantsChanged { read, write } => {
                    Grants::from_patterns("read", read)
                        .and(Grants::from_patterns("write", write))
                        .map_err(|e| e.to_string())?;
                }
                Change::CredentialIssued { key_id, hash } => {
                    if key_id.is_empty() || hash.len() != 64 {
                        return Err("a credential needs its key id and a SHA-256 hash".into());
                    }
                }
                Change::CredentialRevoked { .. } => {}
            }
        }
    }
    Ok(())
}

/// Appends an export to the log, keeping ids, timestamps and sources. In sled mode, to the store
/// in `dir` (creating its database with `options` when it has none; `merge` lets it hold
/// messages already), then rebuilds the projections; in nats mode, to an empty stream. The
/// whole file is checked before anything is stored.
pub fn import(
    dir: &Path,
    backend: &Backend,
    path: &Path,
    merge: bool,
    archive: Option<&ArchiveConfig>,
    options: Options,
) -> Result<ImportReport, ImportError> {
    if let Some(settings) = backend.stream() {
        if merge {
            return Err(ImportError::Merge);
        }
        return import_stream(settings, path, options.max_text_bytes);
    }
    let database = Database::open(dir, options)?;
    let log = database.log.events();
    let last = log.last_id()?;
    if last > 0 && !merge {
        return Err(ImportError::NotEmpty { dir: dir.display().to_string(), last });
    }
    let shown = path.display().to_string();
    let stored = |id| match log.get(id) {
        Ok(Some(Event::MessagePosted(m))) => Some(m.target),
        _ => None,
    };
    // Pass 1: every line parses, ids increase, and no id conflicts with the store.
    for item in read_export(path, &stored)? {
        let (line, event) = item?;
        if let Some(existing) = log.get(event.id())? {
            if existing != event {
                return Err(ImportError::Conflict { path: shown.clone(), line, id: event.id() });
            }
        }
    }
    // Pass 2: store what is new, in batches.
    let mut report = ImportReport { imported: 0, skipped: 0, into: dir.display().to_string() };
    let mut batch = Vec::with_capacity(CHUNK);
    let mut highest = last;
    for item in read_export(path, &stored)? {
        let (_, event) = item?;
        if log.get(event.id())?.is_some() {
            report.skipped += 1;
            continue;
        }
        highest = highest.max(event.id());
        batch.push(event);
        if batch.len() == CHUNK {
            log.append(&batch)?;
            report.imported += batch.len() as u64;
            batch.clear();
        }
    }
    log.append(&batch)?;
    report.imported += batch.len() as u64;
    log.set_reserved(highest.max(log.reserved()?))?;
    database.flush()?;
    database.log.flushed()?;
    rebuild_projections(&database, &database.log, archive, &mut |_, _| {})?;
    database.flush()?;
    Ok(report)
}

/// Appends an export to an empty NATS JetStream stream (nats mode), keeping ids, timestamps and
/// sources. The stream numbers messages itself: each message is published on condition that
/// the stream's last sequence is the id before it, and the ids of a gap (messages that expired,
/// or a crash's lost reservations in a sled log) are taken by records taken out at once; sent
/// [`IMPORT_CHUNK`] at a time.
fn import_stream(
    config: &NatsSettings,
    path: &Path,
    max_text_bytes: usize,
) -> Result<ImportReport, ImportError> {
    // The whole file is checked before anything is stored.
    let (mut next, mut gap) = (1, None);
    for item in read_export(path, &|_| None)? {
        let (line, event) = item?;
        if event.id() > next && gap.is_none() {
            gap = Some((line, event.id(), next));
        }
        next = event.id() + 1;
    }
    let log = NatsLog::connect(config, max_text_bytes, crate::usage_log::discard())?;
    let last = log.last_id()?;
    let into = format!("the stream {}", config.stream);
    if last > 0 {
        return Err(ImportError::NotEmpty { dir: into, last });
    }
    if let Some((line, id, expected)) = gap.filter(|_| !log.erasable()) {
        return Err(ImportError::Line {
            path: path.display().to_string(),
            line,
            reason: format!(
                "id {id} where {expected} was next: the stream {} denies deletes (an earlier relay made it), so it \
                 cannot keep a gap in the ids; import into a new stream, which the relay makes with deletes allowed",
                config.stream
            ),
        });
    }
    let mut report = ImportReport { imported: 0, skipped: 0, into };
    let (mut next, mut chunk, mut bytes) = (1, Vec::new(), 0);
    let mut add = |record: ImportRecord| -> Result<(), StoreError> {
        bytes += record.size();
        chunk.push(record);
        if chunk.len() >= IMPORT_CHUNK || bytes >= IMPORT_CHUNK_BYTES {
            bytes = 0;
            log.import_chunk(std::mem::take(&mut chunk))?;
        }
        Ok(())
    };
    for item in read_export(path, &|_| None)? {
        let (_, event) = item?;
        let id = event.id();
        for gap in next..id {
            add(log.gap_record(gap))?;
        }
        add(log.import_record(event))?;
        report.imported += 1;
        next = id + 1;
    }
    if !chunk.is_empty() {
        log.import_chunk(chunk)?;
    }
    Ok(report)
}

/// Records an import into a stream sends before it awaits their acknowledgements, and the
/// bytes they may hold at most.
const IMPORT_CHUNK: usize = 256;
const IMPORT_CHUNK_BYTES: usize = 8 << 20;

/// What `compact` did: the events replayed, the database's bytes before and after, and the
/// messages' records it sealed (written by a relay before records were sealed).
#[derive(Debug, Clone, Copy)]
pub struct CompactReport {
    pub replayed: u64,
    pub before: u64,
    pub after: u64,
    pub sealed: u64,
}

/// Erases, on a stopped relay, what redactions left in files: rebuilds every projection from
/// the log (the channel views and their blocks, the archive, the search index), then rewrites
/// the database so no old version of a rewritten record stays in its files, sealing the
/// messages' records an older relay wrote unsealed.
pub fn compact(
    dir: &Path,
    archive: Option<&ArchiveConfig>,
    backend: &Backend,
    progress: crate::store::Progress,
) -> Result<CompactReport, StoreError> {
    let replayed = rebuild::rebuild(dir, archive, backend, progress)?;
    let done = crate::store::database::compact(dir)?;
    Ok(CompactReport { replayed, before: done.before, after: done.after, sealed: done.sealed })
}

/// Writes each event as a readable line: `#id [sender -> target] first line of text`.
pub fn replay_print(dir: &Path, backend: &Backend, out: &mut dyn Write) -> Result<u64, StoreError> {
    match stream_of(backend)? {
        Some(stream) => print_log(&stream, out),
        None => print_log(&Database::open_existing(dir)?.log, out),
    }
}

fn print_log(log: &dyn EventLog, out: &mut dyn Write) -> Result<u64, StoreError> {
    let redacted = redactions::in_log(log, u64::MAX)?;
    let (mut after, mut count) = (0, 0);
    let io_error = |e| StoreError::io("writing", e);
    loop {
        let events = log.read_from(after + 1, CHUNK)?;
        let Some(last) = events.last().map(Event::id) else { break };
        for event in &events {
            let line = match event {
                Event::MessagePosted(m) => {
                    let text = redacted.get(&m.id).map(Redacted::text);
                    summary_line(m.id, &m.sender, &m.target, text.as_deref().unwrap_or(&m.text))
                }
                Event::CursorMoved(c) => {
                    format!("#{} [{} read {} up to #{}]", c.id, c.reader, c.target, c.to)
                }
                Event::PrincipalChanged(p) => {
                    format!("#{} [principal {}: {}]", p.id, p.name, p.change.describe())
                }
                Event::ReaderWoken(w) => {
                    let ids = w.ids.iter().map(|id| format!("#{id}")).collect::<Vec<_>>().join(" ");
                    format!("#{} [{} woken on {} about {ids} via {}]", w.id, w.reader, w.target, w.via)
                }
                Event::MessageRedacted(r) => {
                    format!("#{} [{} redacted #{} of {}: {}]", r.id, r.by, r.message, r.target, r.reason)
                }
                Event::MessagesExpired(x) => format!("#{} [{} expired up to #{}]", x.id, x.target, x.upto),
            };
            writeln!(out, "{line}").map_err(io_error)?;
            count += 1;
        }
        after = last;
    }
    out.flush().map_err(io_error)?;
    Ok(count)
}
