//! The relay service: post, fetch since an id, tail, list channels. Every front door (REST, MCP,
//! UI, CLI) calls this, so they validate, store and log the same way.

use crate::message::{Message, NewMessage, Source, StoredMessage};
use crate::metrics::{Metrics, Open, Snapshot};
use crate::presence::{Listening, Presence};
use crate::store::{ChannelStats, ExportFilter, Hit, SearchError, SearchOrder, Store, StoreError};
use crate::values::{Invalid, Name, Text};
use serde::Serialize;
use slog::{info, Logger};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// The channel `GET /api/messages` reads when it names none (the Python relay's default).
pub const DEFAULT_TARGET: &str = "proj-x";
/// REST `GET /api/messages`: default and largest page (the Python relay's numbers).
pub const REST_DEFAULT_LIMIT: u64 = 200;
pub const REST_MAX_LIMIT: u64 = 500;
/// MCP `fetch_messages`: default and largest page (the Python relay's numbers).
pub const MCP_DEFAULT_LIMIT: u64 = 50;
pub const MCP_MAX_LIMIT: u64 = 200;
/// Default and longest wait for new messages. The cap stays under Codex's default tool timeout
/// (60 s) with room for the reply to travel.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(25);
pub const MAX_WAIT: Duration = Duration::from_secs(50);
/// Waits open at once. Each holds a task and a watch subscription; past this many, something
/// is looping, and a clear error beats unbounded growth.
pub const MAX_WAITERS: usize = 256;
/// How often at most [`Relay::follow_channels`] sends a changed channel list.
pub const CHANNELS_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Refused: nothing was stored.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The store could not do it: nothing was acknowledged.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Too many calls of one kind at once; retry later.
    #[error("{0}")]
    Busy(String),
}

/// A page of one channel's messages, oldest first. `latest_id` is the cursor to pass as
/// `since_id` next time: the last id in the page, or the `since_id` asked for when it is empty.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub target: String,
    pub messages: Vec<StoredMessage>,
    pub latest_id: u64,
}

/// What the service takes from the settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Channels listed even before they hold a message.
    pub channels: Vec<Name>,
    /// The largest text a post may carry.
    pub max_text_bytes: usize,
    /// What `/metrics` reports the disk use of, by label (see [`Metrics::new`]).
    pub disk: Vec<(&'static str, std::path::PathBuf)>,
}

/// Where a reader new to a channel starts: `start=end` in a read that names a `reader`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Start {
    #[default]
    Beginning,
    End,
}

impl Start {
    pub fn parse(raw: Option<&str>) -> Result<Start, Invalid> {
        match raw.map(str::trim) {
            None | Some("" | "beginning" | "0") => Ok(Start::Beginning),
            Some("end") => Ok(Start::End),
            Some(_) => Err(Invalid::new("start", r#"must be "end" (or "beginning", the default)"#)),
        }
    }
}

/// Who waits: whose messages do not end the wait, and the reader it waits as. Either names it
/// as listening on the channel (the reader first).
#[derive(Debug, Clone, Copy, Default)]
pub struct Waiter<'a> {
    pub exclude_sender: Option<&'a str>,
    pub reader: Option<&'a str>,
}

/// Search results per page unless asked otherwise.
pub const SEARCH_DEFAULT_LIMIT: u64 = 20;

/// Unread counts stop here: a count of 1000 means 1000 or more.
pub const UNREAD_CAP: u64 = 1000;

/// The channel list as REST and MCP send it: the names (the Python relay's shape) and, beside
/// them, each channel's message count and last id.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ChannelList {
    pub channels: Vec<String>,
    pub details: Vec<ChannelStats>,
}

impl From<Vec<ChannelStats>> for ChannelList {
    fn from(details: Vec<ChannelStats>) -> Self {
        ChannelList { channels: details.iter().map(|c| c.name.clone()).collect(), details }
    }
}

#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    channels: Vec<Name>,
    max_text_bytes: usize,
    usage_log: Logger,
    waiters: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    /// Cancelled when the relay stops, so open waits answer at once instead of holding the stop.
    stopping: CancellationToken,
    presence: Arc<Presence>,
}

/// Clamps a requested page size into `1..=max` (the Python relay clamped rather than refused).
pub fn clamp_limit(requested: Option<i128>, default: u64, max: u64) -> usize {
    requested.map_or(default, |n| n.clamp(1, max as i128) as u64) as usize
}

impl Relay {
    pub fn new(store: Store, settings: Settings, usage_log: Logger) -> Relay {
        let metrics = Arc::new(Metrics::new(settings.disk));
        let observer = metrics.clone();
        store.observe_groups(move |size| observer.group_committed(size));
        Relay {
            inner: Arc::new(Inner {
                store,
                channels: settings.channels,
                max_text_bytes: settings.max_text_bytes,
                usage_log,
                waiters: Arc::new(Semaphore::new(MAX_WAITERS)),
                metrics,
                stopping: CancellationToken::new(),
                presence: Presence::new(),
            }),
        }
    }

    /// The id of the last message readers can see.
    pub fn last_id(&self) -> u64 {
        self.inner.store.last_id()
    }

    /// Messages stored, over all channels.
    pub fn message_count(&self) -> u64 {
        self.inner.store.message_count()
    }

    /// Whether the relay takes posts now; if not, what is missing. Reads are served either way.
    pub fn ready(&self) -> Result<(), String> {
        self.inner.store.ready()
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The metrics as a scrape gets them.
    pub async fn metrics_text(&self) -> Result<String, RelayError> {
        let (store, metrics, last_id) =
            (self.inner.store.clone(), self.inner.metrics.clone(), self.last_id());
        // The lags ask the log (over the network in nats mode) and the disk figures read the
        // file system: off the async workers.
        Ok(blocking(move || {
            let lags = store.lags()?;
            Ok(metrics.render(Snapshot { last_id, views_lag: lags.views, archive_lag: lags.archive }))
        })
        .await?)
    }

    /// The tool-usage logger, for front doors that log calls the relay never saw.
    pub fn usage_log(&self) -> &Logger {
        &self.inner.usage_log
    }

    pub fn max_text_bytes(&self) -> usize {
        self.inner.max_text_bytes
    }

    /// Validates and stores a message; returns it once it is durable.
    pub async fn post(
        &self,
        target: &str,
        sender: &str,
        text: String,
        source: Source,
    ) -> Result<Message, RelayError> {
        self.post_reply(target, sender, text, None, source).await
    }

    /// [`Relay::post`] of a message that answers `reply_to`, which must be a message of the
    /// same channel (else nothing is stored).
    pub async fn post_reply(
        &self,
        target: &str,
        sender: &str,
        text: String,
        reply_to: Option<u64>,
        source: Source,
    ) -> Result<Message, RelayError> {
        let message = NewMessage {
            target: Name::parse("target", target)?,
            sender: Name::parse("sender", sender)?,
            text: Text::parse(text, self.inner.max_text_bytes)?,
            source,
            reply_to,
        };
        if let Some(parent) = reply_to {
            self.message_of(&message.target, parent, "reply_to").await?;
        }
        let started = Instant::now();
        let m = self.inner.store.append(message).await?;
        self.inner.metrics.posted(source, started.elapsed());
        info!(self.inner.usage_log, "post_message";
            "target" => &m.target, "sender" => &m.sender, "id" => m.id,
            "text_len" => m.text.len(), "source" => source.as_str());
        Ok(m)
    }

    /// The text of message `id` of `target`, if it has one and it can be read (quotes in the web
    /// UI). Reads the store: call it off the async workers.
    pub fn message_text(&self, target: &str, id: u64) -> Option<String> {
        Some(self.inner.store.message(target, id).ok()??.decode().ok()?.text)
    }

    /// Messages matching the full-text `query` (in `target` when given), at most `limit`,
    /// newest or best first, and how many match in all. A query that cannot be parsed is refused naming what is wrong.
    pub async fn search(
        &self,
        query: &str,
        target: Option<&str>,
        order: SearchOrder,
        limit: usize,
        source: Source,
    ) -> Result<(Vec<Hit>, u64), RelayError> {
        if query.trim().is_empty() {
            return Err(Invalid::new(
                "q",
                "must not be empty: words, \"a phrase\", sender:NAME, channel:NAME",
            )
            .into());
        }
        let target = target.map(|t| Name::parse("target", t)).transpose()?;
        let (store, query_text) = (self.inner.store.clone(), query.to_owned());
        let found = tokio::task::spawn_blocking(move || {
            store.search(&query_text, target.as_ref().map(Name::as_str), order, limit)
        })
        .await
        .map_err(|e| StoreError::Crashed(format!("a search failed: {e}")))?;
        let (hits, total) = match found {
            Ok(found) => found,
            Err(SearchError::Query(why)) => return Err(Invalid::new("q", why).into()),
            Err(SearchError::Store(e)) => return Err(e.into()),
        };
        info!(self.inner.usage_log, "search_messages";
            "query" => query, "returned" => hits.len(), "total" => total, "source" => source.as_str());
        Ok((hits, total))
    }

    /// The messages of `target` matching `query`, newest first, whole (MCP's fetch_messages with
    /// `q`); `latest_id` is the newest of them.
    pub async fn search_page(
        &self,
        query: &str,
        target: &str,
        limit: usize,
        source: Source,
    ) -> Result<Page, RelayError> {
        let (hits, _) = self.search(query, Some(target), SearchOrder::Newest, limit, source).await?;
        let target = Name::parse("target", target)?;
        let mut messages = Vec::with_capacity(hits.len());
        for hit in hits {
            messages.push(self.message_of(&target, hit.id, "q").await?);
        }
        let latest_id = messages.first().map_or(0, |m| m.id);
        Ok(Page { target: target.as_str().to_owned(), messages, latest_id })
    }

    /// Message `id` of `target`, or an error naming `field` when the channel has no such message.
    async fn message_of(
        &self,
        target: &Name,
        id: u64,
        field: &'static str,
    ) -> Result<StoredMessage, RelayError> {
        let (store, name) = (self.inner.store.clone(), target.as_str().to_owned());
        blocking(move || store.message(&name, id)).await?.ok_or_else(|| {
            Invalid::new(field, format!("there is no message {id} in the channel {}", target.as_str())).into()
        })
    }

    /// The thread of message `root` of `target`: it and every message answering it, or
    /// answering an answer, oldest first, those after `since_id`, at most `limit`.
    pub async fn thread(
        &self,
        target: &str,
        root: u64,
        since_id: u64,
        limit: usize,
        source: Source,
    ) -> Result<Page, RelayError> {
        let target = Name::parse("target", target)?;
        let first = self.message_of(&target, root, "thread").await?;
        let (store, name) = (self.inner.store.clone(), target.as_str().to_owned());
        let messages = blocking(move || {
            let mut members = std::collections::HashSet::from([root]);
            let mut out: Vec<StoredMessage> = (root > since_id).then_some(first).into_iter().collect();
            let mut after = root;
            // Answers come after what they answer: one pass from the root gathers them all.
            while out.len() < limit {
                let page = store.since(&name, after, REST_MAX_LIMIT as usize)?;
                let Some(last) = page.last() else { break };
                after = last.id;
                for m in page {
                    let parent =
                        m.reply_to().map_err(|e| StoreError::corrupt(format!("message {}: {e}", m.id)))?;
                    if parent.is_some_and(|p| members.contains(&p)) {
                        members.insert(m.id);
                        if m.id > since_id && out.len() < limit {
                            out.push(m);
                        }
                    }
                }
            }
            Ok(out)
        })
        .await?;
        let page = page(target, messages, since_id);
        self.log_fetch(&page, since_id, limit, "thread", source);
        Ok(page)
    }

    /// Up to `limit` messages of `target` after `since_id`, oldest first.
    pub async fn fetch_since(
        &self,
        target: &str,
        since_id: u64,
        limit: usize,
        source: Source,
    ) -> Result<Page, RelayError> {
        let target = Name::parse("target", target)?;
        let messages = self.since(&target, since_id, limit).await?;
        let page = page(target, messages, since_id);
        self.log_fetch(&page, since_id, limit, "since", source);
        Ok(page)
    }

    /// The last `limit` messages of `target`, oldest first.
    pub async fn tail(&self, target: &str, limit: usize, source: Source) -> Result<Page, RelayError> {
        let target = Name::parse("target", target)?;
        let store = self.inner.store.clone();
        let name = target.as_str().to_owned();
        let messages = blocking(move || store.tail(&name, limit)).await?;
        let page = page(target, messages, 0);
        self.log_fetch(&page, 0, limit, "tail", source);
        Ok(page)
    }

    /// The last `limit` messages of `target` before the id `before`, oldest first (the page
    /// above one already shown).
    pub async fn before(
        &self,
        target: &str,
        before: u64,
        limit: usize,
        source: Source,
    ) -> Result<Page, RelayError> {
        let target = Name::parse("target", target)?;
        let store = self.inner.store.clone();
        let name = target.as_str().to_owned();
        let messages = blocking(move || store.before(&name, before, limit)).await?;
        let page = page(target, messages, 0);
        self.inner.metrics.fetched(source);
        info!(self.inner.usage_log, "fetch_messages";
            "target" => &page.target, "since_id" => 0, "limit" => limit, "returned" => page.messages.len(),
            "latest_id" => page.latest_id, "read" => "before", "before_id" => before, "source" => source.as_str());
        Ok(page)
    }

    /// Every message of `target` after `after` as it is committed: batches of up to `limit`,
    /// oldest first, woken by each commit. Holds one of the [`MAX_WAITERS`] slots while open and
    /// ends when the relay stops (or after an error, which it yields first).
    pub fn follow(
        &self,
        target: &str,
        after: u64,
        limit: usize,
    ) -> Result<
        impl futures_util::Stream<Item = Result<Vec<StoredMessage>, RelayError>> + Send + 'static,
        RelayError,
    > {
        let target = Name::parse("target", target)?;
        let permit = self.wait_slot()?;
        let state = (self.clone(), target, after, self.inner.store.commit_watch(), permit);
        Ok(futures_util::stream::unfold(Some(state), move |state| async move {
            let (relay, target, cursor, mut commits, permit) = state?;
            match relay.next_batch(&target, cursor, limit, &mut commits, None).await {
                Err(e) => Some((Err(e.into()), None)),
                Ok(None) => None,
                Ok(Some(batch)) => {
                    let cursor = batch.last().map_or(cursor, |m| m.id);
                    Some((Ok(batch), Some((relay, target, cursor, commits, permit))))
                }
            }
        }))
    }

    /// Waits until `target` has a message after `since_id` (one not from `who.exclude_sender`,
    /// when given), or `timeout` (capped at [`MAX_WAIT`]) passes. Woken by each commit, never by
    /// polling. Returns the page and whether it timed out; an empty page keeps `latest_id` =
    /// `since_id`. Meanwhile `who` is listed as listening on the channel.
    pub async fn wait(
        &self,
        target: &str,
        since_id: u64,
        limit: usize,
        timeout: Duration,
        who: Waiter<'_>,
        source: Source,
    ) -> Result<(Page, bool), RelayError> {
        let target = Name::parse("target", target)?;
        let _permit = self.wait_slot()?;
        let _open = Open::new(&self.inner.metrics.open_waits);
        let exclude_sender = who.exclude_sender;
        let _listening =
            who.reader.or(exclude_sender).map(|name| self.inner.presence.listen(target.as_str(), name));
        self.inner.metrics.waited(source);
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout.min(MAX_WAIT);
        let mut commits = self.inner.store.commit_watch();
        let mut cursor = since_id;
        let (messages, timed_out) = loop {
            let Some(batch) = self.next_batch(&target, cursor, limit, &mut commits, Some(deadline)).await?
            else {
                break (Vec::new(), true);
            };
            cursor = batch.last().map_or(cursor, |m| m.id);
            let Some(excluded) = exclude_sender else { break (batch, false) };
            let mut wanted = Vec::with_capacity(batch.len());
            for m in batch {
                let sender = m.sender().map_err(|e| StoreError::corrupt(format!("message {}: {e}", m.id)))?;
                if sender != excluded {
                    wanted.push(m);
                }
            }
            if !wanted.is_empty() {
                break (wanted, false);
            }
            // Only the caller's own messages so far: the next turn looks past them.
        };
        info!(self.inner.usage_log, "wait_for_messages";
            "target" => target.as_str(), "since_id" => since_id, "returned" => messages.len(),
            "timed_out" => timed_out, "waited_ms" => started.elapsed().as_millis() as u64,
            "source" => source.as_str());
        Ok((page(target, messages, since_id), timed_out))
    }

    /// One `fetch_messages` line of the usage log, with the keys the Python relay's log parsers
    /// read (target, since_id, limit, returned, latest_id); `read` says which kind of read.
    fn log_fetch(&self, page: &Page, since_id: u64, limit: usize, read: &'static str, source: Source) {
        self.inner.metrics.fetched(source);
        info!(self.inner.usage_log, "fetch_messages";
            "target" => &page.target, "since_id" => since_id, "limit" => limit,
            "returned" => page.messages.len(), "latest_id" => page.latest_id, "read" => read,
            "source" => source.as_str());
    }

    /// The next messages of `target` after `after`, woken by each commit, never by polling:
    /// `None` once `deadline` passes, the relay stops or the store closes.
    async fn next_batch(
        &self,
        target: &Name,
        after: u64,
        limit: usize,
        commits: &mut tokio::sync::watch::Receiver<u64>,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Option<Vec<StoredMessage>>, StoreError> {
        loop {
            commits.borrow_and_update();
            let batch = self.since(target, after, limit).await?;
            if !batch.is_empty() {
                return Ok(Some(batch));
            }
            let timeout = async {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = commits.changed() => if changed.is_err() { return Ok(None) },
                () = timeout => return Ok(None),
                () = self.inner.stopping.cancelled() => return Ok(None),
            }
        }
    }

    /// The store's `since`, answered at once when the channel has nothing after `after` (the
    /// poll agents make most), and off the async workers otherwise.
    async fn since(&self, target: &Name, after: u64, limit: usize) -> Result<Vec<StoredMessage>, StoreError> {
        if self.inner.store.channel_last_id(target.as_str()) <= after {
            return Ok(Vec::new());
        }
        let (store, name) = (self.inner.store.clone(), target.as_str().to_owned());
        blocking(move || store.since(&name, after, limit)).await
    }

    fn wait_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, RelayError> {
        self.inner.waiters.clone().try_acquire_owned().map_err(|_| {
            RelayError::Busy(format!("too many waits open at once (limit {MAX_WAITERS}); retry shortly"))
        })
    }

    /// Ends every open wait: each answers at once with what it has (usually nothing).
    pub fn stop(&self) {
        self.inner.stopping.cancel();
    }

    /// One chunk of an export of the running store: JSON lines of the events after `after` up to
    /// `upto`, and the last id read (`None` once there is nothing left).
    pub async fn export_chunk(
        &self,
        filter: ExportFilter,
        after: u64,
        upto: u64,
    ) -> Result<(Vec<u8>, Option<u64>), RelayError> {
        let store = self.inner.store.clone();
        Ok(blocking(move || store.export_chunk(&filter, after, upto)).await?)
    }

    /// Stops taking posts, commits what is queued and closes the store.
    pub async fn close(&self) -> Result<(), StoreError> {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || store.close())
            .await
            .map_err(|e| StoreError::Crashed(format!("closing the store failed: {e}")))?
    }

    /// Lists `name` as listening on `target` until the result is dropped (a stream that names
    /// its reader; waits do this themselves).
    pub fn listen(&self, target: &str, name: &Name) -> Result<Listening, RelayError> {
        let target = Name::parse("target", target)?;
        Ok(self.inner.presence.listen(target.as_str(), name.as_str()))
    }

    /// Configured channels, every channel that holds a message and every one someone listens
    /// on, sorted by name.
    pub fn channels(&self, source: Source) -> Vec<ChannelStats> {
        let all = self.channel_list();
        info!(self.inner.usage_log, "list_channels"; "returned" => all.len(), "source" => source.as_str());
        all
    }

    /// [`Relay::channels`], with each one's count of messages after `reader`'s cursor.
    pub async fn channels_unread_by(
        &self,
        reader: &str,
        source: Source,
    ) -> Result<Vec<ChannelStats>, RelayError> {
        let reader = Name::parse("reader", reader)?;
        let mut all = self.channels(source);
        self.count_unread(&mut all, &reader).await?;
        Ok(all)
    }

    async fn count_unread(&self, channels: &mut [ChannelStats], reader: &Name) -> Result<(), StoreError> {
        for channel in channels {
            let after = channel.readers.get(reader.as_str()).copied().unwrap_or(0);
            channel.unread = Some(self.unread(&channel.name, after).await?);
        }
        Ok(())
    }

    /// Messages of `channel` after `after`, counted up to [`UNREAD_CAP`].
    async fn unread(&self, channel: &str, after: u64) -> Result<u64, StoreError> {
        let (store, channel) = (self.inner.store.clone(), channel.to_owned());
        blocking(move || {
            let (mut count, mut after) = (0, after);
            while count < UNREAD_CAP {
                let page = store.since(&channel, after, REST_MAX_LIMIT as usize)?;
                let Some(last) = page.last() else { break };
                (count, after) = (count + page.len() as u64, last.id);
            }
            Ok(count.min(UNREAD_CAP))
        })
        .await
    }

    /// The id a read of `target` starts after. Without a reader: `since_id` as given. With a
    /// reader and a `since_id`: that id, and the reader's cursor moves up to it (an
    /// acknowledgement, durable before this returns; never past the channel's last message,
    /// never back). With a reader alone: its cursor; a reader new to the channel starts at 0,
    /// or with [`Start::End`] at the channel's end (recorded, so its next read goes on from
    /// there).
    pub async fn start_after(
        &self,
        target: &str,
        since_id: Option<u64>,
        reader: Option<&str>,
        start: Start,
    ) -> Result<Option<u64>, RelayError> {
        let Some(reader) = reader else { return Ok(since_id) };
        let (reader, target) = (Name::parse("reader", reader)?, Name::parse("target", target)?);
        let store = &self.inner.store;
        let end = store.channel_last_id(target.as_str());
        match (since_id, store.cursor(reader.as_str(), target.as_str())) {
            (Some(since), _) => {
                store.move_cursor(&reader, &target, since.min(end)).await?;
                Ok(Some(since))
            }
            (None, Some(at)) => Ok(Some(at)),
            (None, None) if start == Start::End => Ok(Some(store.move_cursor(&reader, &target, end).await?)),
            (None, None) => Ok(Some(0)),
        }
    }

    /// The channel list now, then each time it changes (a count grows, a channel appears, a
    /// listener comes or goes), at most once per [`CHANNELS_EVERY`]; woken by commits and
    /// presence changes, never by polling. Ends when the relay stops.
    /// With a `reader`, each channel comes with its unread count for that reader.
    pub fn follow_channels(
        &self,
        reader: Option<Name>,
    ) -> impl futures_util::Stream<Item = Vec<ChannelStats>> + Send + 'static {
        let watches = (self.inner.store.commit_watch(), self.inner.presence.changes());
        let state = (self.clone(), watches, reader, None);
        futures_util::stream::unfold(state, |(relay, mut watches, reader, mut last)| async move {
            loop {
                if last.is_some() {
                    let stopping = relay.inner.stopping.clone();
                    let (commits, presence) = &mut watches;
                    tokio::time::sleep(CHANNELS_EVERY).await;
                    tokio::select! {
                        changed = commits.changed() => if changed.is_err() { return None },
                        changed = presence.changed() => if changed.is_err() { return None },
                        () = stopping.cancelled() => return None,
                    }
                }
                watches.0.borrow_and_update();
                watches.1.borrow_and_update();
                let mut now = relay.channel_list();
                if let Some(reader) = &reader {
                    // A count that cannot be read now is left out; the next change tries again.
                    let _ = relay.count_unread(&mut now, reader).await;
                }
                if last.as_ref() != Some(&now) {
                    last = Some(now.clone());
                    return Some((now, (relay, watches, reader, last)));
                }
            }
        })
    }

    /// Configured channels, channels with messages and channels someone listens on.
    fn channel_list(&self) -> Vec<ChannelStats> {
        let mut listening = self.inner.presence.snapshot();
        let mut all = self.inner.store.channels();
        let empty =
            self.inner.channels.iter().map(|n| n.as_str().to_owned()).chain(listening.keys().cloned());
        for name in empty.collect::<Vec<_>>() {
            if !all.iter().any(|c| c.name == name) {
                let (listening, readers) = Default::default();
                all.push(ChannelStats { name, count: 0, last_id: 0, listening, readers, unread: None });
            }
        }
        for channel in &mut all {
            channel.listening = listening.remove(&channel.name).unwrap_or_default();
            channel.readers = self.inner.store.cursors(&channel.name).into_iter().collect();
        }
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }
}

fn page(target: Name, messages: Vec<StoredMessage>, since_id: u64) -> Page {
    let latest_id = messages.last().map_or(since_id, |m| m.id);
    Page { target: target.as_str().to_owned(), messages, latest_id }
}

/// Runs a store read off the async workers: a sled read can wait on the disk.
async fn blocking<T: Send + 'static>(
    read: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(read)
        .await
        .unwrap_or_else(|e| Err(StoreError::Crashed(format!("read task failed: {e}"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay_in(dir: &std::path::Path) -> Relay {
        let logger = crate::usage_log::discard();
        let settings = Settings { channels: Vec::new(), max_text_bytes: 1000, disk: Vec::new() };
        Relay::new(Store::open(dir, None, Default::default(), logger.clone()).unwrap(), settings, logger)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_wait_past_the_limit_is_refused_and_stop_ends_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let relay = relay_in(dir.path());
        let waits: Vec<_> = (0..MAX_WAITERS)
            .map(|_| {
                let relay = relay.clone();
                tokio::spawn(async move {
                    relay.wait("t", 0, 200, MAX_WAIT, Waiter::default(), Source::Mcp).await
                })
            })
            .collect();
        // Let every wait take its place.
        while relay.inner.waiters.available_permits() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let refused = relay.wait("t", 0, 200, MAX_WAIT, Waiter::default(), Source::Mcp).await.unwrap_err();
        assert!(refused.to_string().contains("too many waits"), "{refused}");
        relay.stop();
        for w in waits {
            let (page, timed_out) = w.await.unwrap().unwrap();
            assert!(timed_out && page.messages.is_empty());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wait_skips_the_excluded_sender_and_returns_the_next_message() {
        let dir = tempfile::tempdir().unwrap();
        let relay = relay_in(dir.path());
        let waiter = {
            let relay = relay.clone();
            tokio::spawn(async move {
                relay
                    .wait(
                        "t",
                        0,
                        200,
                        MAX_WAIT,
                        Waiter { exclude_sender: Some("me"), reader: None },
                        Source::Mcp,
                    )
                    .await
            })
        };
        relay.post("t", "me", "mine".into(), Source::Rest).await.unwrap();
        let theirs = relay.post("t", "you", "theirs".into(), Source::Rest).await.unwrap();
        let (page, timed_out) = waiter.await.unwrap().unwrap();
        assert!(!timed_out);
        let got: Vec<Message> = page.messages.iter().map(|m| m.decode().unwrap()).collect();
        assert_eq!(got, vec![theirs.clone()]);
        assert_eq!(page.latest_id, theirs.id);
    }

    /// The usage log's post and fetch lines carry the keys the Python relay's log parsers read.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn usage_log_lines_carry_the_python_relays_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log/usage.log");
        let (logger, guard) = crate::usage_log::open(&path, 1 << 20, 1).unwrap();
        let store = Store::open(dir.path(), None, Default::default(), crate::usage_log::discard()).unwrap();
        let relay = Relay::new(
            store,
            Settings { channels: Vec::new(), max_text_bytes: 1000, disk: Vec::new() },
            logger,
        );
        relay.post("t", "me", "hello".into(), Source::Rest).await.unwrap();
        relay.fetch_since("t", 0, 50, Source::Mcp).await.unwrap();
        relay.tail("t", 200, Source::Rest).await.unwrap();
        relay.close().await.unwrap();
        drop(relay);
        drop(guard);
        let text = std::fs::read_to_string(&path).unwrap();
        let payloads = |op: &str| -> Vec<serde_json::Value> {
            let marker = format!(" INFO {op} ");
            text.lines()
                .filter_map(|l| l.split_once(&marker).map(|(_, json)| serde_json::from_str(json).unwrap()))
                .collect()
        };
        let posts = payloads("post_message");
        assert_eq!(posts.len(), 1, "{text}");
        for key in ["id", "target", "sender", "text_len", "source"] {
            assert!(posts[0].get(key).is_some(), "post line lacks {key}: {}", posts[0]);
        }
        assert_eq!(posts[0]["text_len"], 5);
        let fetches = payloads("fetch_messages");
        assert_eq!(fetches.len(), 2, "{text}");
        for fetch in &fetches {
            for key in ["target", "since_id", "limit", "returned", "latest_id"] {
                assert!(fetch.get(key).is_some(), "fetch line lacks {key}: {fetch}");
            }
            assert_eq!(
                (fetch["returned"].as_u64(), fetch["latest_id"].as_u64()),
                (Some(1), Some(1)),
                "{fetch}"
            );
        }
    }

    #[test]
    fn limit_defaults_when_absent() {
        assert_eq!(clamp_limit(None, 50, 200), 50);
    }

    #[test]
    fn limit_is_clamped_into_range() {
        assert_eq!(clamp_limit(Some(0), 50, 200), 1);
        assert_eq!(clamp_limit(Some(-5), 50, 200), 1);
        assert_eq!(clamp_limit(Some(201), 50, 200), 200);
        assert_eq!(clamp_limit(Some(i128::MAX), 200, 500), 500);
        assert_eq!(clamp_limit(Some(7), 50, 200), 7);
    }
}
