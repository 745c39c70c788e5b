//! The stream's health, checked every [`HEALTH_EVERY`]: whether a quorum of its servers
//! answers, since when it has not and why, and the highest sequence known to be in it.

use super::stream::stream_info;
use async_nats::jetstream::{self, stream};
use slog::{warn, Logger};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the stream's health is checked, and how long one check may take.
pub(super) const HEALTH_EVERY: Duration = Duration::from_secs(1);

/// How long the stream must have been unreachable (and a post unacknowledged) before posts are
/// refused at once instead of retried: longer than a leader election after the loss of one
/// server. Also how recently a follower must have been heard from to count toward a quorum.
pub(super) const FAIL_FAST_AFTER: Duration = Duration::from_secs(5);

/// Why a post to the stream would not be acknowledged now, as its leader sees its replicas: a
/// leader that lost its followers answers for a while before it steps down, so its answering
/// alone does not show a quorum.
pub(super) fn quorum_problem(name: &str, info: &stream::Info) -> Option<String> {
    let cluster = info.cluster.as_ref()?;
    if cluster.leader.is_none() {
        return Some(format!("the stream {name} has no leader: no quorum of its servers"));
    }
    let replicas = cluster.replicas.len() + 1;
    let needed = replicas / 2 + 1;
    // A follower counts when it is caught up, or was heard from lately (one that lags behind
    // under load). Neither alone will do: after a leader change the new leader can report a
    // caught-up follower as not heard from for a long while (seen with a SIGSTOPped leader).
    let seen = |p: &&stream::PeerInfo| !p.offline && (p.current || p.active < FAIL_FAST_AFTER);
    let up = 1 + cluster.replicas.iter().filter(seen).count();
    (up < needed).then(|| {
        format!("only {up} of the {replicas} servers of the stream {name} answer; a post needs a quorum of {needed}")
    })
}

/// A time the stream has not answered as posts need.
pub(super) struct Outage {
    pub(super) since: Instant,
    pub(super) why: String,
}

/// What the health check keeps up to date for the log.
pub(super) struct Health {
    /// Since when, and why, the stream has not answered (`None` while it does).
    pub(super) down: Mutex<Option<Outage>>,
    /// Whether the last post sent went unacknowledged.
    pub(super) publish_failed: AtomicBool,
    /// The highest sequence known to be in the stream: from the stream's state and this
    /// instance's acknowledgements.
    pub(super) known_last: AtomicU64,
    /// Why following the stream stopped for good (a damaged record), if it did: the local
    /// views would never show another post, so the instance takes none and is not ready.
    pub(super) stopped: Mutex<Option<String>>,
}

/// Asks the stream for its state every [`HEALTH_EVERY`]: it answers only while a quorum of its
/// replicas has a leader. Records since when it has not, and why, and its last sequence.
pub(super) async fn watch_health(js: jetstream::Context, name: String, health: Arc<Health>, logger: Logger) {
    loop {
        let asked = tokio::time::timeout(HEALTH_EVERY, stream_info(&js, &name)).await;
        let problem = match asked {
            Ok(Ok(stream)) => {
                let info = stream.cached_info();
                health.known_last.fetch_max(info.state.last_sequence, Ordering::Relaxed);
                quorum_problem(&name, info)
            }
            // Said once with the backend's prefix, by `ready` and the post's refusal.
            Ok(Err(crate::store::StoreError::Nats(why))) => Some(why),
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!(
                "the stream {name} did not answer within {HEALTH_EVERY:?}: no quorum of its servers, or none reachable"
            )),
        };
        {
            let mut down = health.down.lock().unwrap_or_else(|p| p.into_inner());
            match (problem, down.is_some()) {
                (None, true) => {
                    warn!(logger, "the NATS stream takes posts again"; "stream" => &name);
                    *down = None;
                }
                (Some(why), false) => {
                    warn!(logger, "the NATS stream cannot take posts"; "stream" => &name, "why" => &why);
                    *down = Some(Outage { since: Instant::now(), why });
                }
                _ => {}
            }
        }
        tokio::time::sleep(HEALTH_EVERY).await;
    }
}
