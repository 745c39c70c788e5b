//! The store: the event log (in the data directory's sled database, or a NATS JetStream
//! stream) and its projections (the channel views with the readers' cursors, the text archive,
//! the search index), each following the log from its own checkpoint. Plus the commands on a
//! stopped store (export, import, check, rebuild, replay).
//!
//! Nothing outside this module touches sled or NATS. The rest of the relay sees [`Store`]:
//! append a message or a cursor move (answered once it is durable and readers see it), read a
//! channel since an id or before one, search, list channels, the last visible id, and the
//! commit watch. The commit protocol is described once, in ARCHITECTURE.md ("The commit
//! protocol"); `event_log/sled/writer.rs` and `projections/projector.rs` follow it.
//!
//! The files, by kind:
//! - the log: `event_log` (the interface it is seen through), its backends `event_log::sled`
//!   (the trees, the group-commit writer, the disk syncs) and `event_log::nats` (the stream),
//!   `event_log::backend` (the choice between them) and `event_log::faults` (fault injection
//!   around either, with the `faults` feature only);
//! - the projections: `projections::projector` (the log's follower: applies each durable group
//!   to the views, publishes it, feeds the others), `channel_views` (with `cursors` and the
//!   sealed `blocks`), `archive`, `search`;
//! - the commands on a stopped store: `commands` (export, import, replay), `commands::check`
//!   and `commands::rebuild`;
//! - and what holds them together: `opening` (opening the store and closing it), `database`
//!   (opening sled with the directory's `lock`), `recovery` (catching the views up on open),
//!   `shared` (what the projector, the projection threads and the readers share), `error`.

mod commands;
mod database;
mod error;
mod event_log;
mod opening;
mod projections;
mod recovery;
mod shared;

use crate::event::{Change, Event, NewEvent};
use crate::message::{Message, NewMessage, Redacted, StoredMessage};
use crate::values::Name;
pub use commands::rebuild::rebuild;
pub use commands::{
    check, compact, export, import, replay_print, CheckReport, CompactReport, ExportFilter, ImportError,
    ImportReport,
};
pub use database::{Options, DEFAULT_CACHE_BYTES};
pub use error::StoreError;
pub use event_log::backend::{Backend, BackendKind};
#[cfg(feature = "faults")]
pub use event_log::faults::{FaultOp, FaultPlan};
pub use event_log::nats::{subject as stream_subject, NatsSettings, TextLimit};
use opening::Inner;
pub use projections::archive::ArchiveConfig;
use projections::delivery::Latest;
pub use projections::delivery::{Mark, ReaderStates, States};
pub use projections::principals::{Directory, Entry as PrincipalEntry, Unknown as UnknownCredential};
pub use projections::search::{Hit, SearchError, SearchOrder};
pub use recovery::{set_release_freed_memory, Progress};
use slog::{warn, Logger};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long a post's answer waits for the channel views to apply it (at once with the sled
/// log, whose follower runs before the answer; in nats mode, the follower's next batch).
const APPLY_WAIT: Duration = Duration::from_secs(10);

/// How far the projections are behind the log, in events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lags {
    pub views: u64,
    /// `None` when the store keeps no archive.
    pub archive: Option<u64>,
}

/// One channel as the store knows it, and who is listening there (the relay's live state).
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct ChannelStats {
    pub name: String,
    pub count: u64,
    pub last_id: u64,
    /// Who waits on the channel now (wait_for_messages with exclude_sender, watch, bridge).
    pub listening: Vec<String>,
    /// Each reader's cursor: the last id it acknowledged.
    pub readers: std::collections::BTreeMap<String, u64>,
    // How far each named reader got: the newest message it was woken about, read and
    // acknowledged, with when (docs/api.md, "Delivery"). Not a doc comment, and a plain object
    // in the schema: the MCP schema agents pay for on every turn stays short.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[schemars(schema_with = "crate::message::plain_object")]
    pub delivery: std::collections::BTreeMap<String, ReaderStates>,
    /// Messages after the cursor of the reader asked about (counted up to 1000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread: Option<u64>,
}

/// A handle on the open store; clones share it. The writer stops, after a final flush, when
/// [`Store::close`] is called or the last handle is dropped.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, catches the views up with the log and
    /// starts the writer, and the archive's writer when `archive` is given.
    pub fn open(
        dir: &Path,
        archive: Option<&ArchiveConfig>,
        options: Options,
        logger: Logger,
    ) -> Result<Store, StoreError> {
        Store::open_on(dir, archive, options, &Backend::sled(), logger)
    }

    /// [`Store::open`] with the log where `backend` says: in `dir` (sled), or in a NATS
    /// JetStream stream, `dir` then holding only the projections and their checkpoints.
    pub fn open_on(
        dir: &Path,
        archive: Option<&ArchiveConfig>,
        options: Options,
        backend: &Backend,
        logger: Logger,
    ) -> Result<Store, StoreError> {
        Ok(Store { inner: Arc::new(Inner::open(dir, archive, options, backend, logger)?) })
    }

    /// Appends a message; returns it with its id once it is durable and readers see it (so
    /// the poster reads its own write).
    pub async fn append(&self, message: NewMessage) -> Result<Message, StoreError> {
        match self.append_event(NewEvent::Message(message)).await? {
            Event::MessagePosted(m) => Ok(m),
            other => Err(StoreError::Crashed(format!("the log stored a message as {other:?}"))),
        }
    }

    /// Moves `reader`'s cursor on `target` to `to`, unless it is there or further already (a
    /// cursor never moves back). Returns the cursor once the move is durable and readers see it.
    pub async fn move_cursor(&self, reader: &Name, target: &Name, to: u64) -> Result<u64, StoreError> {
        if let Some(at) = self.cursor(reader.as_str(), target.as_str()).filter(|&at| at >= to) {
            return Ok(at);
        }
        self.append_event(NewEvent::Cursor { reader: reader.clone(), target: target.clone(), to }).await?;
        Ok(self.cursor(reader.as_str(), target.as_str()).unwrap_or(to))
    }

    /// The principals as the events applied so far leave them.
    pub fn principals(&self) -> Arc<Directory> {
        self.inner.shared.channel_views.principals.now()
    }

    /// Whether any principal exists (without taking the directory's lock).
    pub fn has_principals(&self) -> bool {
        self.inner.shared.channel_views.principals.any()
    }

    /// Appends a change to the principal `name`; returns once it is durable and applied.
    pub async fn change_principal(&self, name: &Name, change: Change) -> Result<(), StoreError> {
        self.append_event(NewEvent::Principal { name: name.clone(), change }).await.map(drop)
    }

    /// Where `reader` acknowledged `target` up to, `None` for a reader the channel never saw.
    pub fn cursor(&self, reader: &str, target: &str) -> Option<u64> {
        self.inner.shared.channel_views.cursors.get(target, reader)
    }

    /// Every reader of `target` with its cursor, by name.
    pub fn cursors(&self, target: &str) -> Vec<(String, u64)> {
        self.inner.shared.channel_views.cursors.of_channel(target)
    }

    /// Notes that `reader`'s session accepted a wake about messages `ids` of `target`: those it
    /// was not woken about yet (a message keeps its first wake). Returns them once the note is
    /// durable and applied; with none, nothing is appended.
    pub async fn note_wake(
        &self,
        reader: &Name,
        target: &Name,
        ids: Vec<u64>,
        via: String,
    ) -> Result<Vec<u64>, StoreError> {
        let views = &self.inner.shared.channel_views;
        let ids = views.unwoken(target.as_str(), reader.as_str(), &ids)?;
        if !ids.is_empty() {
            let (reader, target) = (reader.clone(), target.clone());
            self.append_event(NewEvent::Woken { reader, target, ids: ids.clone(), via }).await?;
        }
        Ok(ids)
    }

    /// Each reader woken on `target` or with a cursor there, with its latest states as the log
    /// says (woken, acknowledged), by name.
    pub fn delivery(&self, target: &str) -> Vec<(String, ReaderStates)> {
        let latest = self.inner.shared.channel_views.delivery.of_channel(target);
        let states = |l: Latest| ReaderStates { woken: l.woken, read: None, acknowledged: l.acknowledged };
        latest.into_iter().map(|(reader, l)| (reader, states(l))).collect()
    }

    /// Message `id` of `target` as each reader there got it, as the log says. Reads the views:
    /// call it off the async workers.
    pub fn delivery_of(&self, target: &str, id: u64) -> Result<Vec<(String, States)>, StoreError> {
        self.inner.shared.channel_views.delivery_of(target, id)
    }

    /// The channel of message `id` and when it was stored, from the log (`None` when no
    /// message has that id). Reads the log: call it off the async workers.
    pub fn target_of(&self, id: u64) -> Result<Option<(String, f64)>, StoreError> {
        let event = self.inner.shared.log.read_from(id, 1)?.into_iter().next();
        Ok(match event {
            Some(Event::MessagePosted(m)) if m.id == id => Some((m.target, m.ts)),
            _ => None,
        })
    }

    async fn append_event(&self, event: NewEvent) -> Result<Event, StoreError> {
        if let Some(reason) = self.inner.shared.failure() {
            return Err(StoreError::Failed(reason));
        }
        self.following().map_err(StoreError::Unavailable)?;
        let answer = self.inner.shared.log.append(event)?;
        let event = answer.await.map_err(|_| StoreError::Closed)??;
        if !self.inner.ack_early && tokio::time::timeout(APPLY_WAIT, self.applied(event.id())).await.is_err()
        {
            // Durable all the same (in nats mode, the stream has it); the views are behind.
            warn!(self.inner.shared.logger, "a post is stored but the channel views have not applied it yet";
                "id" => event.id(), "waited_s" => APPLY_WAIT.as_secs());
        }
        Ok(event)
    }

    /// Waits until readers see `id`, or the views can no longer take it (the store failed; the
    /// message is durable all the same, and the views catch up on the next open).
    async fn applied(&self, id: u64) {
        let mut commits = self.commit_watch();
        loop {
            if *commits.borrow_and_update() >= id || self.inner.shared.failure().is_some() {
                return;
            }
            if commits.changed().await.is_err() {
                return;
            }
        }
    }

    fn channel(&self, name: &str) -> Option<projections::channel_views::ChannelRecord> {
        self.inner.shared.published.read().unwrap_or_else(|p| p.into_inner()).get(name).copied()
    }

    /// The id of the last message of `channel` readers can see (0 when it has none).
    pub fn channel_last_id(&self, channel: &str) -> u64 {
        self.channel(channel).map_or(0, |c| c.last_id)
    }

    /// Messages matching `query` (in the channels `within` when given), at most `limit`: what the search
    /// index holds, which may lag the newest posts by a moment. Reads the index: call it off the
    /// async workers.
    pub fn search(
        &self,
        query: &str,
        within: Option<&[String]>,
        order: SearchOrder,
        limit: usize,
    ) -> Result<(Vec<Hit>, u64), SearchError> {
        let Some(index) = &self.inner.search else { return Err(SearchError::Off) };
        let (mut hits, total) = index.search(query, within, order, limit)?;
        // The index drops a redacted or expired message a moment after; the hits never show it.
        let redactions = &self.inner.shared.channel_views.redactions;
        let found = hits.len();
        hits.retain(|hit| redactions.get(hit.id).is_none() && hit.id > self.expired(&hit.target));
        let total = total.saturating_sub((found - hits.len()) as u64);
        Ok((hits, total))
    }

    /// Message `id` of `channel`, if it has one.
    pub fn message(&self, channel: &str, id: u64) -> Result<Option<StoredMessage>, StoreError> {
        let found = self.since(channel, id.saturating_sub(1), 1)?;
        Ok(found.into_iter().next().filter(|m| m.id == id))
    }

    /// Up to `limit` messages of `channel` with id > `after`, oldest first.
    pub fn since(&self, channel: &str, after: u64, limit: usize) -> Result<Vec<StoredMessage>, StoreError> {
        match self.channel(channel) {
            Some(c) => {
                let after = after.max(c.expired);
                self.shown(self.inner.shared.channel_views.since(c.no, after, c.last_id, limit)?)
            }
            None => Ok(Vec::new()),
        }
    }

    /// The last `limit` messages of `channel`, oldest first.
    pub fn tail(&self, channel: &str, limit: usize) -> Result<Vec<StoredMessage>, StoreError> {
        self.before(channel, u64::MAX, limit)
    }

    /// The last `limit` messages of `channel` with id < `before`, oldest first (`u64::MAX`: its
    /// last `limit`).
    pub fn before(&self, channel: &str, before: u64, limit: usize) -> Result<Vec<StoredMessage>, StoreError> {
        match self.channel(channel) {
            Some(c) if before > 0 => {
                let upto = c.last_id.min(before - 1);
                self.shown(self.inner.shared.channel_views.tail(c.no, c.expired, upto, limit)?)
            }
            _ => Ok(Vec::new()),
        }
    }

    /// Messages as they are served: a redacted one as its tombstone.
    fn shown(&self, messages: Vec<StoredMessage>) -> Result<Vec<StoredMessage>, StoreError> {
        self.inner.shared.channel_views.redactions.shown(messages)
    }

    /// How many redactions were applied since the store opened, as it changes (see
    /// [`Store::redacted_after`]).
    pub fn redaction_watch(&self) -> watch::Receiver<usize> {
        self.inner.shared.channel_views.redactions.watch()
    }

    /// The messages of `target` redacted after the first `seen` redactions applied since the
    /// store opened, and how many are applied now.
    pub fn redacted_after(&self, seen: usize, target: &str) -> (Vec<u64>, usize) {
        self.inner.shared.channel_views.redactions.applied_after(seen, target)
    }

    /// Message `id`'s redaction, if it was taken back.
    pub fn redaction(&self, id: u64) -> Option<Redacted> {
        self.inner.shared.channel_views.redactions.get(id)
    }

    /// Takes `messages` of `target` back on behalf of `by` (appended together, so they share
    /// commits); returns once every redaction is durable and applied. The caller checks that
    /// the messages exist and are not redacted yet.
    pub async fn redact(
        &self,
        target: &Name,
        messages: &[Message],
        by: &Name,
        reason: &str,
    ) -> Result<(), StoreError> {
        let redaction = |m: &Message| NewEvent::Redaction {
            target: target.clone(),
            message: m.id,
            post: m.into(),
            by: by.clone(),
            reason: reason.to_owned(),
        };
        let appends = messages.iter().map(|m| self.append_event(redaction(m)));
        futures_util::future::try_join_all(appends).await.map(drop)
    }

    /// The id up to which `channel`'s messages expired (0 when none did).
    pub fn expired(&self, channel: &str) -> u64 {
        self.channel(channel).map_or(0, |c| c.expired)
    }

    /// The id up to which `channel`'s messages should expire to keep at most `keep` of them
    /// (when given) and none posted before `posted_before` (seconds since the epoch, when
    /// given); the channel's current expiry when nothing more should. Reads the views: call it
    /// off the async workers.
    pub fn expiry_point(
        &self,
        channel: &str,
        keep: Option<u64>,
        posted_before: Option<f64>,
    ) -> Result<u64, StoreError> {
        let Some(c) = self.channel(channel) else { return Ok(0) };
        let views = &self.inner.shared.channel_views;
        let mut upto = c.expired;
        if let Some(keep) = keep.filter(|&keep| c.count > keep) {
            // In pages, so a first expiry of a long history holds few blocks at a time.
            let mut excess = (c.count - keep) as usize;
            while excess > 0 {
                let page = views.since(c.no, upto, c.last_id, excess.min(4096))?;
                let Some(last) = page.last() else { break };
                (upto, excess) = (last.id, excess - page.len());
            }
        }
        // An expiry applied meanwhile (another instance's) moved the start: this count is stale.
        if self.expired(channel) != c.expired {
            return Ok(self.expired(channel));
        }
        let Some(cutoff) = posted_before else { return Ok(upto) };
        loop {
            let page = views.since(c.no, upto, c.last_id, 256)?;
            for m in &page {
                let ts = m.ts().map_err(|e| StoreError::corrupt(format!("message {}: {e}", m.id)))?;
                if ts >= cutoff {
                    return Ok(upto);
                }
                upto = m.id;
            }
            if page.len() < 256 {
                return Ok(upto);
            }
        }
    }

    /// Makes `target`'s messages up to `upto` expire; returns once that is durable and applied.
    pub async fn expire(&self, target: &Name, upto: u64) -> Result<(), StoreError> {
        self.append_event(NewEvent::Expiry { target: target.clone(), upto }).await.map(drop)
    }

    /// Every channel that holds a message, sorted by name.
    pub fn channels(&self) -> Vec<ChannelStats> {
        let published = self.inner.shared.published.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = published
            .iter()
            .map(|(name, c)| ChannelStats {
                name: name.clone(),
                count: c.count,
                last_id: c.last_id,
                listening: Vec::new(),
                readers: Default::default(),
                delivery: Default::default(),
                unread: None,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Messages stored, over all channels.
    pub fn message_count(&self) -> u64 {
        self.inner.shared.published.read().unwrap_or_else(|p| p.into_inner()).values().map(|c| c.count).sum()
    }

    /// The id of the last message readers can see.
    pub fn last_id(&self) -> u64 {
        *self.inner.shared.commits.borrow()
    }

    /// One chunk of an export (see [`ExportFilter`]): up to `upto`, which the caller fixes at the
    /// start so the export is a snapshot.
    pub fn export_chunk(
        &self,
        filter: &ExportFilter,
        after: u64,
        upto: u64,
    ) -> Result<(Vec<u8>, Option<u64>), StoreError> {
        self.exportable()?;
        let redactions = &self.inner.shared.channel_views.redactions;
        commands::export_chunk(&*self.inner.shared.log, filter, after, upto, &|id| redactions.get(id))
    }

    /// Whether an export may start: it reads the log itself, so until the views hold what the
    /// log held when it was reached (nats mode), the principals they know (who may export) may
    /// be behind it.
    pub fn exportable(&self) -> Result<(), StoreError> {
        self.following().map_err(StoreError::Unavailable)
    }

    /// For fault tests (the `faults` feature): from now on, fail appends to the log or their
    /// answers, or the sled writer's disk operations, as `plan` says (`None` clears it). See
    /// `store/faults.rs`.
    #[cfg(feature = "faults")]
    pub fn inject_faults(&self, plan: Option<FaultPlan>) {
        self.inner.shared.faults.arm(plan);
    }

    /// How far each projection is behind the log's last durable id, in events.
    pub fn lags(&self) -> Result<Lags, StoreError> {
        let shared = &self.inner.shared;
        let log = shared.log.last_id()?;
        Ok(Lags {
            views: log.saturating_sub(*shared.commits.borrow()),
            archive: self
                .inner
                .has_archive
                .then(|| log.saturating_sub(shared.archived.load(Ordering::Relaxed))),
        })
    }

    /// Whether the store takes posts now; if not, what is missing.
    pub fn ready(&self) -> Result<(), String> {
        if let Some(reason) = self.inner.shared.failure() {
            return Err(format!("the store stopped accepting writes after an earlier failure ({reason})"));
        }
        self.following()?;
        self.inner.shared.log.ready()
    }

    /// Whether the views may be behind the log: in nats mode, while the stream is not reached
    /// or not answering, and until the views have caught up with what it held when reached.
    pub fn stale(&self) -> bool {
        !self.inner.shared.following.load(Ordering::Acquire) || self.inner.shared.log.behind(self.last_id())
    }

    /// Whether the views follow the log and hold what it held when it was reached; if not, why
    /// (the log's own reason first: not reached).
    fn following(&self) -> Result<(), String> {
        let shared = &self.inner.shared;
        if shared.following.load(Ordering::Acquire) && shared.log.caught_up(self.last_id()) {
            return Ok(());
        }
        shared.log.ready()?;
        Err("NATS JetStream: the channel views are catching up with the stream; retry shortly".into())
    }

    /// The largest text a post may carry, when the log takes less than `max_text_bytes` (in
    /// nats mode, the servers' `max_payload`).
    pub fn text_cap(&self) -> Option<usize> {
        self.inner.shared.log.text_cap()
    }

    /// Calls `observe` with the size of each group the channel views apply from now on (the
    /// first observer set stays).
    pub fn observe_groups(&self, observe: impl Fn(usize) + Send + Sync + 'static) {
        let _ = self.inner.shared.group_observer.set(Box::new(observe));
    }

    /// The commit watch: the last visible id, woken after each commit.
    pub fn commit_watch(&self) -> watch::Receiver<u64> {
        self.inner.shared.commits.subscribe()
    }

    /// Stops taking appends, lets the writer finish what is queued, and flushes. Blocks: call it
    /// from a blocking context. Appends after this get [`StoreError::Closed`].
    pub fn close(&self) -> Result<(), StoreError> {
        self.inner.close()
    }
}

#[cfg(test)]
mod tests;
