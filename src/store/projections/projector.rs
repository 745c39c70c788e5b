//! The channel views as a follower of the log: it applies each durable group of events to the
//! views, then publishes them to readers (the commit watch) and tells the archive thread. It
//! runs where the log calls its followers (the sled log: on its writer thread, before the
//! posters are answered); posters also wait for it themselves (read your writes), see
//! `Store::append`.
//!
//! If the views cannot be updated, the store fails (it takes no more posts until it is opened
//! again, when the views catch up from their checkpoint); the posts already durable are still
//! acknowledged, since they are in the log.

use crate::event::Event;
use crate::store::event_log::Follower;
use crate::store::projections::channel_views::Channels;
use crate::store::shared::Shared;
use crate::store::StoreError;
use slog::error;
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// A group of events the views applied, shared with the threads that follow them.
pub(crate) type Group = Arc<[Event]>;

/// Events a follower thread may have waiting (about 16 MB of 1 KB messages); past them the
/// projector drops groups rather than wait, and the thread reads what it missed from the log.
const EVENTS_WAITING: usize = 16_384;

/// The projector's end of a follower thread's channel (the archive's, the search index's).
pub(crate) struct GroupSender {
    tx: mpsc::Sender<Group>,
    waiting: Arc<AtomicUsize>,
    missed: Arc<AtomicBool>,
}

/// A follower thread's end: the groups the views applied, in order, so the thread need not
/// read them back from the log (in nats mode each read is a consumer made and deleted).
pub(crate) struct Groups {
    rx: mpsc::Receiver<Group>,
    waiting: Arc<AtomicUsize>,
    missed: Arc<AtomicBool>,
}

pub(crate) fn groups() -> (GroupSender, Groups) {
    let (tx, rx) = mpsc::channel();
    let (waiting, missed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
    (GroupSender { tx, waiting: waiting.clone(), missed: missed.clone() }, Groups { rx, waiting, missed })
}

impl GroupSender {
    fn send(&self, group: &Group) {
        if self.waiting.load(Ordering::SeqCst) + group.len() > EVENTS_WAITING {
            self.missed.store(true, Ordering::SeqCst);
            return;
        }
        self.waiting.fetch_add(group.len(), Ordering::SeqCst);
        // A thread that ended has nothing to be told.
        let _ = self.tx.send(group.clone());
    }
}

impl Groups {
    /// Waits for the next groups (at most `wait`, when given) and adds them to `fed`; returns
    /// the id the thread should catch up to (the last group's, or the views' own when groups
    /// were dropped; 0 when the wait passed without one), `None` once the projector is gone.
    pub(crate) fn next(
        &self,
        fed: &mut VecDeque<Group>,
        shared: &Shared,
        wait: Option<Duration>,
    ) -> Option<u64> {
        let first = match wait {
            None => self.rx.recv().ok()?,
            Some(wait) => match self.rx.recv_timeout(wait) {
                Ok(group) => group,
                Err(mpsc::RecvTimeoutError::Timeout) => return Some(0),
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            },
        };
        let received: Vec<Group> = std::iter::once(first).chain(self.rx.try_iter()).collect();
        self.waiting.fetch_sub(received.iter().map(|g| g.len()).sum(), Ordering::SeqCst);
        fed.extend(received);
        let last = fed.back().and_then(|g| g.last()).map_or(0, Event::id);
        // A thread that cannot write (its file gone, say) keeps only the newest; the rest it
        // reads from the log once it can.
        let mut held: usize = fed.iter().map(|g| g.len()).sum();
        while held > EVENTS_WAITING {
            held -= fed.pop_front().map_or(0, |g| g.len());
        }
        match self.missed.swap(false, Ordering::SeqCst) {
            true => Some(last.max(*shared.commits.borrow())),
            false => Some(last),
        }
    }
}

/// Up to `chunk` events after `from`, up to `upto`: from the groups `fed` when they start there
/// (those wholly done are dropped), else read from `log`.
pub(crate) fn events_after(
    log: &dyn crate::store::event_log::EventLog,
    fed: &mut VecDeque<Group>,
    from: u64,
    upto: u64,
    chunk: usize,
) -> Result<Vec<Event>, StoreError> {
    while fed.front().is_some_and(|g| g.last().is_none_or(|e| e.id() <= from)) {
        fed.pop_front();
    }
    if let Some(group) = fed.front().filter(|g| g.first().is_some_and(|e| e.id() <= from + 1)) {
        return Ok(group.iter().filter(|e| e.id() > from && e.id() <= upto).cloned().collect());
    }
    let mut events = log.read_from(from + 1, chunk)?;
    events.retain(|e| e.id() <= upto);
    Ok(events)
}

/// The messages `events` redact.
pub(crate) fn redacted(events: &[Event]) -> Vec<u64> {
    let message = |e: &Event| match e {
        Event::MessageRedacted(r) => Some(r.message),
        _ => None,
    };
    events.iter().filter_map(message).collect()
}

/// How often, at most, the views are made durable after expiries on a log outside the data
/// directory (sled's own commits do it for the sled log), so the blocks they drop are punched.
const FLUSH_AFTER_EXPIRY_EVERY: Duration = Duration::from_secs(5);

pub(crate) struct Projector {
    shared: Arc<Shared>,
    channels: Channels,
    /// Given each applied group: the text archive's and the search index's threads, when they
    /// are on.
    followers: Vec<GroupSender>,
    /// When the views were last made durable here.
    flushed: Instant,
}

impl Projector {
    pub(crate) fn new(shared: Arc<Shared>, channels: Channels, followers: Vec<GroupSender>) -> Self {
        Projector { shared, channels, followers, flushed: Instant::now() }
    }

    /// The projector as the log's follower.
    pub(crate) fn into_follower(mut self) -> Follower {
        Box::new(move |events| self.follow(events))
    }

    /// Applies one durable group, unless the store failed already.
    fn follow(&mut self, events: Vec<Event>) {
        if self.shared.failure().is_some() {
            return;
        }
        // A panic in a projection must not take the log's thread with it.
        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.apply(events)))
            .unwrap_or_else(|_| Err(StoreError::Crashed("the channel views panicked".into())));
        if let Err(e) = applied {
            error!(self.shared.logger, "updating channel views failed"; "error" => %e);
            self.shared.fail(format!("updating channel views failed: {e}"));
        }
    }

    fn apply(&mut self, events: Vec<Event>) -> Result<(), StoreError> {
        self.shared.injected_write_fault()?;
        let expired = self.shared.channel_views.apply(&events, &mut self.channels)?;
        // After the views dropped them (sled recovers a prefix of its writes, so never the
        // deletes without that batch); a crash before leaves the records in the log, where
        // `check` accepts them and export carries them (docs/reliability.md).
        if !expired.is_empty()
            && self.shared.log.origin().is_some()
            && self.flushed.elapsed() >= FLUSH_AFTER_EXPIRY_EVERY
        {
            self.shared.flush_projections()?;
            self.flushed = Instant::now();
        }
        self.shared.channel_views.forget_in(&*self.shared.log, expired)?;
        self.shared.log.erase(&redacted(&events))?;
        let size = events.len();
        self.publish(events.into());
        if let Some(observe) = self.shared.group_observer.get() {
            observe(size);
        }
        Ok(())
    }

    /// Readers see the group's messages from here on.
    fn publish(&self, events: Group) {
        let Some(last) = events.last() else { return };
        {
            let mut published = self.shared.published.write().unwrap_or_else(|p| p.into_inner());
            let touched: HashSet<&str> = events
                .iter()
                .filter_map(|e| match e {
                    Event::MessagePosted(m) => Some(m.target.as_str()),
                    Event::MessagesExpired(x) => Some(x.target.as_str()),
                    _ => None,
                })
                .filter(|name| self.channels.contains_key(*name))
                .collect();
            for name in touched {
                published.insert(name.to_owned(), self.channels[name]);
            }
        }
        self.shared.commits.send_replace(last.id());
        for follower in &self.followers {
            follower.send(&events);
        }
    }
}
