//! Reading: a channel's messages since an id, its newest, those before an id, a thread, a wait
//! for the next ones and a follow of every new one (both woken by the store's commit watch,
//! never by polling); and the readers' cursors, where a read that names a reader starts.

use super::caller::Caller;
use super::limits::{MAX_WAIT, MAX_WAITERS, REST_MAX_LIMIT};
use super::service::{blocking, Relay, RelayError};
use crate::message::StoredMessage;
use crate::metrics::Open;
use crate::store::StoreError;
use crate::values::{Invalid, Name};
use slog::info;
use std::time::{Duration, Instant};

/// A page of one channel's messages, oldest first. `latest_id` is the cursor to pass as
/// `since_id` next time: the last id in the page, or the `since_id` asked for when it is empty.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub target: String,
    pub messages: Vec<StoredMessage>,
    pub latest_id: u64,
    /// The views may be behind the log (nats mode, while the stream is not followed).
    pub stale: bool,
    /// Set when the read started before the channel's kept history (a tail or an older page:
    /// when it reaches the oldest message kept): its messages with lower ids expired
    /// (retention).
    pub expired_before: Option<u64>,
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

impl Relay {
    /// The thread of message `root` of `target`: it and every message answering it, or
    /// answering an answer, oldest first, those after `since_id`, at most `limit`.
    pub async fn thread(
        &self,
        target: &str,
        root: u64,
        since_id: u64,
        limit: usize,
        caller: &Caller,
    ) -> Result<Page, RelayError> {
        let target = self.readable(target, caller)?;
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
        let page = self.page(target, messages, since_id);
        self.log_fetch(&page, since_id, limit, "thread", caller);
        Ok(page)
    }

    /// Up to `limit` messages of `target` after `since_id`, oldest first.
    pub async fn fetch_since(
        &self,
        target: &str,
        since_id: u64,
        limit: usize,
        caller: &Caller,
    ) -> Result<Page, RelayError> {
        let target = self.readable(target, caller)?;
        let messages = self.since(&target, since_id, limit).await?;
        let page = self.page(target, messages, since_id);
        self.log_fetch(&page, since_id, limit, "since", caller);
        Ok(page)
    }

    /// The last `limit` messages of `target`, oldest first.
    pub async fn tail(&self, target: &str, limit: usize, caller: &Caller) -> Result<Page, RelayError> {
        let page = self.newest_before(self.readable(target, caller)?, u64::MAX, limit).await?;
        self.log_fetch(&page, 0, limit, "tail", caller);
        Ok(page)
    }

    /// The last `limit` messages of `target` before the id `before`, oldest first (the page
    /// above one already shown).
    pub async fn before(
        &self,
        target: &str,
        before: u64,
        limit: usize,
        caller: &Caller,
    ) -> Result<Page, RelayError> {
        let page = self.newest_before(self.readable(target, caller)?, before, limit).await?;
        self.inner.metrics.fetched(caller.source);
        info!(self.inner.usage_log, "fetch_messages";
            "target" => &page.target, "since_id" => 0, "limit" => limit, "returned" => page.messages.len(),
            "latest_id" => page.latest_id, "read" => "before", "before_id" => before, "source" => caller.source.as_str());
        Ok(page)
    }

    /// The last `limit` messages of `target` with ids below `before`, oldest first.
    async fn newest_before(&self, target: Name, before: u64, limit: usize) -> Result<Page, RelayError> {
        let (store, name) = (self.inner.store.clone(), target.as_str().to_owned());
        let messages = blocking(move || store.before(&name, before, limit)).await?;
        // Older messages expired matters once the page reaches the oldest one kept: when it
        // holds fewer than asked for.
        let full = messages.len() >= limit;
        let mut page = self.page(target, messages, 0);
        if full {
            page.expired_before = None;
        }
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
        caller: &Caller,
    ) -> Result<
        impl futures_util::Stream<Item = Result<Vec<StoredMessage>, RelayError>> + Send + 'static,
        RelayError,
    > {
        let target = self.readable(target, caller)?;
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
        caller: &Caller,
    ) -> Result<(Page, bool), RelayError> {
        let target = self.readable(target, caller)?;
        let _permit = self.wait_slot()?;
        let _open = Open::new(&self.inner.metrics.open_waits);
        let exclude_sender = who.exclude_sender;
        // Listed under the name it gave; a principal, under its own.
        let listed = who.reader.or(exclude_sender).map(|name| caller.name().unwrap_or(name));
        let _listening = listed.map(|name| self.inner.presence.listen(target.as_str(), name));
        self.inner.metrics.waited(caller.source);
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
            "source" => caller.source.as_str());
        Ok((self.page(target, messages, since_id), timed_out))
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
        caller: &Caller,
    ) -> Result<Option<u64>, RelayError> {
        // Without a reader nothing is read here: the read that follows checks the channel.
        let Some(reader) = self.allowed(caller, caller.reader(reader))? else { return Ok(since_id) };
        let (reader, target) = (Name::parse("reader", reader)?, self.readable(target, caller)?);
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

    /// `target` as a name, when the caller may read it.
    pub(super) fn readable(&self, target: &str, caller: &Caller) -> Result<Name, RelayError> {
        let target = Name::parse("target", target)?;
        self.allowed(caller, caller.may_read(target.as_str()))?;
        Ok(target)
    }

    /// One `fetch_messages` line of the usage log, with the keys the Python relay's log parsers
    /// read (target, since_id, limit, returned, latest_id); `read` says which kind of read.
    fn log_fetch(&self, page: &Page, since_id: u64, limit: usize, read: &'static str, caller: &Caller) {
        self.inner.metrics.fetched(caller.source);
        info!(self.inner.usage_log, "fetch_messages";
            "target" => &page.target, "since_id" => since_id, "limit" => limit,
            "returned" => page.messages.len(), "latest_id" => page.latest_id, "read" => read,
            "source" => caller.source.as_str());
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

    pub(super) fn page(&self, target: Name, messages: Vec<StoredMessage>, since_id: u64) -> Page {
        let latest_id = messages.last().map_or(since_id, |m| m.id);
        let expired = self.inner.store.expired(target.as_str());
        let expired_before = (since_id < expired).then_some(expired + 1);
        let stale = self.inner.store.stale();
        Page { target: target.as_str().to_owned(), messages, latest_id, stale, expired_before }
    }

    fn wait_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, RelayError> {
        self.inner.waiters.clone().try_acquire_owned().map_err(|_| {
            RelayError::Busy(format!("too many waits open at once (limit {MAX_WAITERS}); retry shortly"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Message, Source};
    use crate::relay::Settings;
    use crate::store::Store;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_wait_past_the_limit_is_refused_and_stop_ends_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let relay = Relay::for_tests(dir.path());
        let waits: Vec<_> = (0..MAX_WAITERS)
            .map(|_| {
                let relay = relay.clone();
                tokio::spawn(async move {
                    relay
                        .wait("t", 0, 200, MAX_WAIT, Waiter::default(), &Caller::anonymous(Source::Mcp))
                        .await
                })
            })
            .collect();
        // Let every wait take its place.
        while relay.inner.waiters.available_permits() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let refused = relay
            .wait("t", 0, 200, MAX_WAIT, Waiter::default(), &Caller::anonymous(Source::Mcp))
            .await
            .unwrap_err();
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
        let relay = Relay::for_tests(dir.path());
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
                        &Caller::anonymous(Source::Mcp),
                    )
                    .await
            })
        };
        relay.post("t", "me", "mine".into(), &Caller::anonymous(Source::Rest)).await.unwrap();
        let theirs = relay.post("t", "you", "theirs".into(), &Caller::anonymous(Source::Rest)).await.unwrap();
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
        let relay = Relay::new(store, Settings { max_text_bytes: 1000, ..Default::default() }, logger);
        relay.post("t", "me", "hello".into(), &Caller::anonymous(Source::Rest)).await.unwrap();
        relay.fetch_since("t", 0, 50, &Caller::anonymous(Source::Mcp)).await.unwrap();
        relay.tail("t", 200, &Caller::anonymous(Source::Rest)).await.unwrap();
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
}
