//! Who is listening on which channel, and who read which message when: live state, never
//! logged. A listener is a name with a wait open on a channel (`wait_for_messages`, a REST long
//! poll, which is what `watch` and the bridge make), named by the wait's `reader` or
//! `exclude_sender`, or a channel page's live stream that picked a reader. A name stays listed
//! for [`LINGER`] after its last wait ends, so one that waits again at once (the usual loop)
//! does not flicker, and one that went away drops out within seconds. Reads are kept for the
//! newest [`READS_KEPT`] messages each reader read on each channel, for 1,024 readers and
//! channels.

use crate::store::Mark;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Messages whose read time is kept, per reader and channel.
pub const READS_KEPT: usize = 4096;
/// Readers and channels whose reads are kept; past it, the pair read least recently goes.
const READ_PAIRS_KEPT: usize = 1024;

/// How long a name stays listed after its last wait on a channel ended.
pub const LINGER: Duration = Duration::from_secs(3);

#[derive(Default)]
struct Listener {
    open: u32,
    /// When the last open wait ended.
    left: Option<Instant>,
}

pub struct Presence {
    listeners: Mutex<BTreeMap<(String, String), Listener>>,
    /// Who read which message when (`relay/delivery.rs`).
    pub(super) reads: Reads,
    /// Bumped on every change, and once more when a name drops out.
    changed: watch::Sender<u64>,
}

/// Held while a wait is open; the name is released when it is dropped.
pub struct Listening {
    presence: Arc<Presence>,
    key: (String, String),
}

impl Presence {
    pub fn new() -> Arc<Presence> {
        Arc::new(Presence {
            listeners: Mutex::default(),
            reads: Reads::default(),
            changed: watch::Sender::new(0),
        })
    }

    pub fn listen(self: &Arc<Self>, channel: &str, name: &str) -> Listening {
        let key = (channel.to_owned(), name.to_owned());
        self.lock().entry(key.clone()).or_default().open += 1;
        self.bump();
        Listening { presence: self.clone(), key }
    }

    /// Each channel someone listens on now, with their names, sorted.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<String>> {
        let now = Instant::now();
        let mut listeners = self.lock();
        listeners.retain(|_, l| l.open > 0 || l.left.is_some_and(|t| now - t < LINGER));
        let mut channels: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (channel, name) in listeners.keys() {
            channels.entry(channel.clone()).or_default().push(name.clone());
        }
        channels
    }

    /// A receiver that sees each change.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Notes that `reader` read `ids` of `channel` at `ts` (each message keeps its first read).
    pub(super) fn read(&self, channel: &str, reader: &str, ids: impl Iterator<Item = u64>, ts: f64) {
        if self.reads.note(channel, reader, ids, ts) {
            self.bump();
        }
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Listener>> {
        // The map holds plain counters: one left by a panicking thread is still usable.
        self.listeners.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        if let Some(l) = self.presence.lock().get_mut(&self.key) {
            l.open -= 1;
            l.left = Some(Instant::now());
        }
        // Tell the followers again once the name may have dropped out.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let presence = self.presence.clone();
            runtime.spawn(async move {
                tokio::time::sleep(LINGER).await;
                presence.bump();
            });
        }
    }
}

/// When each reader read each message, by channel then reader: live state.
#[derive(Default)]
pub(super) struct Reads(Mutex<BTreeMap<(String, String), BTreeMap<u64, f64>>>);

/// When a reader last read something new on a channel.
fn newest(read: &BTreeMap<u64, f64>) -> f64 {
    read.values().copied().fold(f64::MIN, f64::max)
}

impl Reads {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), BTreeMap<u64, f64>>> {
        // Plain data: a map left by a panicking thread is still usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes that `reader` read `ids` of `channel` at `ts`; a message keeps its first read.
    /// Says whether anything changed.
    fn note(&self, channel: &str, reader: &str, ids: impl Iterator<Item = u64>, ts: f64) -> bool {
        let mut all = self.lock();
        let pair = (channel.to_owned(), reader.to_owned());
        if !all.contains_key(&pair) && all.len() >= READ_PAIRS_KEPT {
            let stalest =
                all.iter().min_by(|a, b| newest(a.1).total_cmp(&newest(b.1))).map(|(p, _)| p.clone());
            all.remove(&stalest.unwrap_or_default());
        }
        let read = all.entry(pair).or_default();
        let before = read.len();
        for id in ids {
            read.entry(id).or_insert(ts);
        }
        let changed = read.len() != before;
        while read.len() > READS_KEPT {
            read.pop_first();
        }
        changed
    }

    pub(super) fn of_message(&self, channel: &str, reader: &str, id: u64) -> Option<f64> {
        self.lock().get(&(channel.to_owned(), reader.to_owned())).and_then(|read| read.get(&id).copied())
    }

    /// Each reader's newest read message on `channel`.
    pub(super) fn latest(&self, channel: &str) -> Vec<(String, Mark)> {
        let all = self.lock();
        let from = (channel.to_owned(), String::new());
        let of_channel = all.range(from..).take_while(|((c, _), _)| c == channel);
        of_channel
            .filter_map(|((_, reader), read)| {
                read.last_key_value().map(|(&id, &ts)| (reader.clone(), Mark { id, ts }))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_name_is_listed_while_it_waits_and_a_little_after() {
        let presence = Presence::new();
        let mut changes = presence.changes();
        let first = presence.listen("proj-x", "codex");
        let second = presence.listen("proj-x", "codex");
        let _other = presence.listen("ops", "claude");
        let listening = |c: &str| presence.snapshot().remove(c).unwrap_or_default();
        assert_eq!(listening("proj-x"), ["codex"]);
        assert_eq!(listening("ops"), ["claude"]);
        assert!(listening("nobody").is_empty());
        drop(first);
        assert_eq!(listening("proj-x"), ["codex"]);
        drop(second);
        changes.borrow_and_update();
        assert_eq!(listening("proj-x"), ["codex"], "lingers after its waits end");
        tokio::time::sleep(LINGER).await;
        changes.changed().await.unwrap();
        assert!(listening("proj-x").is_empty());
        assert_eq!(listening("ops"), ["claude"]);
    }

    #[test]
    fn a_read_keeps_its_first_time_and_only_the_newest_reads_are_kept() {
        let presence = Presence::new();
        let mut changes = presence.changes();
        changes.borrow_and_update();
        presence.read("rv", "codex", [1, 2].into_iter(), 10.0);
        assert!(changes.has_changed().unwrap(), "a new read tells the followers");
        changes.borrow_and_update();
        presence.read("rv", "codex", [2, 3].into_iter(), 20.0);
        let reads = &presence.reads;
        assert_eq!(
            (reads.of_message("rv", "codex", 2), reads.of_message("rv", "codex", 3)),
            (Some(10.0), Some(20.0))
        );
        assert_eq!(reads.of_message("rv", "claude", 2), None);
        assert_eq!(reads.latest("rv"), [("codex".to_owned(), Mark { id: 3, ts: 20.0 })]);
        changes.borrow_and_update();
        presence.read("rv", "codex", [1].into_iter(), 30.0);
        assert!(!changes.has_changed().unwrap(), "a read again changes nothing");
        presence.read("rv", "codex", 10..10 + READS_KEPT as u64, 40.0);
        assert_eq!(reads.of_message("rv", "codex", 1), None, "the oldest reads make room");
        assert_eq!(reads.of_message("rv", "codex", 10), Some(40.0));
    }
}
