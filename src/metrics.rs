//! The relay's metrics, served at `GET /metrics` in the Prometheus text format (the
//! `prometheus` crate). One registry per relay, so relays in one process (the tests) keep their
//! own counts. Every name is listed, with its meaning, in docs/api.md ("Metrics"); a test pins
//! the set.

use crate::message::Source;
use prometheus::{
    exponential_buckets, Encoder, Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

const SOURCES: [Source; 4] = [Source::Rest, Source::Mcp, Source::Ui, Source::Cli];

/// Why a request was refused for who sent it (`relay_denied_total`'s reasons): 401s first.
pub const DENIAL_REASONS: [&str; 8] = [
    "no_credential",
    "unknown_credential",
    "revoked_credential",
    "wrong_sender",
    "wrong_reader",
    "no_grant",
    "not_admin",
    "not_sender",
];

/// What the relay counts as it works; the gauges of its state are set at each scrape.
pub struct Metrics {
    registry: Registry,
    posts: IntCounterVec,
    fetches: IntCounterVec,
    waits: IntCounterVec,
    refused: IntCounterVec,
    denied: IntCounterVec,
    commit_seconds: Histogram,
    group_size: Histogram,
    pub open_waits: IntGauge,
    pub open_streams: IntGauge,
    pub open_connections: IntGauge,
    lag: IntGaugeVec,
    last_id: IntGauge,
    disk_bytes: IntGaugeVec,
    /// What `relay_disk_bytes` measures, by label (see [`disk_bytes`]).
    disk: Vec<(&'static str, PathBuf)>,
}

/// The relay's state at a scrape.
pub struct Snapshot {
    pub last_id: u64,
    pub views_lag: u64,
    pub archive_lag: Option<u64>,
}

impl Metrics {
    /// `disk`: the directories (every file under them) and rotating files (each with its
    /// rotated copies) whose size to report, each with its label.
    pub fn new(disk: Vec<(&'static str, PathBuf)>) -> Metrics {
        let by = |name: &str, help: &str, label: &str| {
            IntCounterVec::new(Opts::new(name, help), &[label]).expect("a valid counter")
        };
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("a valid gauge");
        let gauges_by = |name: &str, help: &str, label: &str| {
            IntGaugeVec::new(Opts::new(name, help), &[label]).expect("a valid gauge")
        };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect("a valid histogram")
        };
        let metrics = Metrics {
            registry: Registry::new(),
            posts: by("relay_posts_total", "Messages stored, by the front door they came through.", "source"),
            fetches: by("relay_fetches_total", "Reads of a channel's messages, by front door.", "source"),
            waits: by("relay_waits_total", "Waits for a new message (MCP wait_for_messages, REST ?wait=), by front door.", "source"),
            refused: by("relay_refused_requests_total", "HTTP requests answered with an error status, by status.", "status"),
            denied: by("relay_denied_total", "Requests refused for who sent them (401 and 403), by reason.", "reason"),
            commit_seconds: histogram(
                "relay_commit_seconds",
                "From a post reaching the store to its acknowledgement: queueing, its group's write and flush, and the channel views applying it.",
                exponential_buckets(0.0005, 2.0, 14).expect("valid buckets"),
            ),
            group_size: histogram(
                "relay_commit_group_size",
                "Messages per group commit.",
                exponential_buckets(1.0, 2.0, 12).expect("valid buckets"),
            ),
            open_waits: gauge("relay_open_waits", "Waits open now (MCP and REST)."),
            open_streams: gauge("relay_open_event_streams", "Server-Sent Event streams open now (the web UI)."),
            open_connections: gauge("relay_open_connections", "HTTP connections open now."),
            lag: gauges_by("relay_projection_lag_events", "Events the projection has yet to apply from the log.", "projection"),
            last_id: gauge("relay_log_last_id", "The id of the last message in the log."),
            disk_bytes: gauges_by("relay_disk_bytes", "Bytes on disk: the data directory, the archive and the usage log (with their rotated copies).", "what"),
            disk,
        };
        let collectors: [Box<dyn prometheus::core::Collector>; 13] = [
            Box::new(metrics.denied.clone()),
            Box::new(metrics.posts.clone()),
            Box::new(metrics.fetches.clone()),
            Box::new(metrics.waits.clone()),
            Box::new(metrics.refused.clone()),
            Box::new(metrics.commit_seconds.clone()),
            Box::new(metrics.group_size.clone()),
            Box::new(metrics.open_waits.clone()),
            Box::new(metrics.open_streams.clone()),
            Box::new(metrics.open_connections.clone()),
            Box::new(metrics.lag.clone()),
            Box::new(metrics.last_id.clone()),
            Box::new(metrics.disk_bytes.clone()),
        ];
        for collector in collectors {
            metrics.registry.register(collector).expect("each metric is registered once");
        }
        // Every front door shows from the first scrape, at 0.
        for source in SOURCES {
            for counter in [&metrics.posts, &metrics.fetches, &metrics.waits] {
                counter.with_label_values(&[source.as_str()]);
            }
        }
        for reason in DENIAL_REASONS {
            metrics.denied.with_label_values(&[reason]);
        }
        metrics
    }

    pub fn posted(&self, source: Source, took: Duration) {
        self.posts.with_label_values(&[source.as_str()]).inc();
        self.commit_seconds.observe(took.as_secs_f64());
    }

    pub fn fetched(&self, source: Source) {
        self.fetches.with_label_values(&[source.as_str()]).inc();
    }

    pub fn waited(&self, source: Source) {
        self.waits.with_label_values(&[source.as_str()]).inc();
    }

    /// A request refused for who sent it; `reason` is one of [`DENIAL_REASONS`].
    pub fn denied(&self, reason: &'static str) {
        debug_assert!(DENIAL_REASONS.contains(&reason), "{reason} is listed");
        self.denied.with_label_values(&[reason]).inc();
    }

    pub fn refused(&self, status: u16) {
        self.refused.with_label_values(&[&status.to_string()]).inc();
    }

    pub fn group_committed(&self, size: usize) {
        self.group_size.observe(size as f64);
    }

    /// The text a scrape gets. Reads file sizes: call it off the async workers.
    pub fn render(&self, now: Snapshot) -> String {
        self.last_id.set(now.last_id as i64);
        self.lag.with_label_values(&["views"]).set(now.views_lag as i64);
        if let Some(lag) = now.archive_lag {
            self.lag.with_label_values(&["archive"]).set(lag as i64);
        }
        for (label, dir) in &self.disk {
            self.disk_bytes.with_label_values(&[label]).set(disk_bytes(dir) as i64);
        }
        let mut out = Vec::new();
        // Encoding what the registry gathered into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Holds a gauge one higher while alive: an open wait, stream or connection.
pub struct Open(IntGauge);

impl Open {
    pub fn new(gauge: &IntGauge) -> Open {
        gauge.inc();
        Open(gauge.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The bytes of every file under `path` when it is a directory; else of the file and its
/// rotated copies beside it (`name.1`, `name.2`, ...). 0 for what cannot be read.
fn disk_bytes(path: &Path) -> u64 {
    if path.is_dir() {
        return dir_bytes(path);
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return 0;
    };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n == name || n.starts_with(&format!("{name}."))))
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// Bytes of the files under `dir`, in every folder below it.
pub(crate) fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&entry.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_holds_its_gauge_up_while_alive() {
        let metrics = Metrics::new(Vec::new());
        let first = Open::new(&metrics.open_waits);
        let second = Open::new(&metrics.open_waits);
        assert_eq!(metrics.open_waits.get(), 2);
        drop((first, second));
        assert_eq!(metrics.open_waits.get(), 0);
    }

    #[test]
    fn disk_bytes_count_a_tree_or_a_file_with_its_rotated_copies() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("a.log"), [0u8; 10]).unwrap();
        std::fs::write(dir.path().join("a.log.1"), [0u8; 7]).unwrap();
        std::fs::write(dir.path().join("a.logger"), [0u8; 100]).unwrap();
        std::fs::write(dir.path().join("sub/b"), [0u8; 5]).unwrap();
        assert_eq!(disk_bytes(dir.path()), 122);
        assert_eq!(disk_bytes(&dir.path().join("a.log")), 17);
        assert_eq!(disk_bytes(&dir.path().join("missing")), 0);
    }
}
