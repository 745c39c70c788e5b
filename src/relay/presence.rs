//! Who is listening on which channel: live state, never logged. A listener is a name with a
//! wait open on a channel (`wait_for_messages`, a REST long poll, which is what `watch` and the
//! bridge make), named by the wait's `reader` or `exclude_sender`, or a channel page's live
//! stream that picked a reader. A name stays listed for [`LINGER`] after
//! its last wait ends, so one that waits again at once (the usual loop) does not flicker, and
//! one that went away drops out within seconds.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

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
        Arc::new(Presence { listeners: Mutex::default(), changed: watch::Sender::new(0) })
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
}
