//! Full-text search over the 1M set (`RELAY_BENCH_QUICK`: the 10k set): the index built from
//! the log on open (catch-up time), its disk beside the messages' bytes, the process's RSS, then
//! search latency for a rare word, a common word and a phrase, newest first, 20 results; then
//! the p50 and p99 of each, of a rare phrase, and of the common phrase looked up by positions.
//!
//! Run: `cargo bench --bench search` (figures in docs/benchmarks.md).

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use relay::store::{Options, SearchOrder, Store};
use std::path::Path;
use std::time::{Duration, Instant};

fn bytes_under(path: &Path) -> u64 {
    std::fs::read_dir(path).map_or(0, |entries| {
        entries
            .flatten()
            .map(|e| e.metadata().map_or(0, |m| if m.is_dir() { bytes_under(&e.path()) } else { m.len() }))
            .sum()
    })
}

fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok());
    kib.unwrap_or(0) / 1024
}

fn search(c: &mut Criterion) {
    let n = if std::env::var_os("RELAY_BENCH_QUICK").is_some() { 10_000 } else { 1_000_000 };
    let data = common::data_set(n, 10);
    let _ = std::fs::remove_dir_all(data.join("search"));
    let started = Instant::now();
    let store = Store::open(&data, None, Options::default(), relay::usage_log::discard()).unwrap();
    // Every message holds "compute": the index has caught up once it finds them all.
    while store.search("compute", None, SearchOrder::Newest, 1).unwrap().1 < n {
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = started.elapsed();
    let index = bytes_under(&data.join("search"));
    let messages = n * common::TEXT_BYTES as u64;
    eprintln!(
        "search index: {n} messages indexed in {:.1} s ({:.0}/s); {:.1} MB for {:.1} MB of text ({:.2}x); RSS {} MiB",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        index as f64 / 1e6,
        messages as f64 / 1e6,
        index as f64 / messages as f64,
        rss_mib()
    );
    let mut group = c.benchmark_group("search");
    let mut i = 0u64;
    group.bench_function(format!("rare_word_{n}"), |b| {
        b.iter(|| {
            i = i.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            // From n/10 up: smaller numbers are also in every text (compute(length)), and the
            // cut end of a text can leave the first digits of a longer id.
            let id = n / 10 + (i >> 33) % (n - n / 10);
            let (hits, total) = store.search(&id.to_string(), None, SearchOrder::Newest, 20).unwrap();
            let ids: Vec<u64> = hits.iter().map(|h| h.id).collect();
            assert!(ids.contains(&id), "{id}: {total} found: {ids:?}");
        })
    });
    group.bench_function(format!("common_word_{n}"), |b| {
        b.iter(|| assert_eq!(store.search("compute", None, SearchOrder::Newest, 20).unwrap().0.len(), 20))
    });
    group.bench_function(format!("phrase_{n}"), |b| {
        b.iter(|| {
            assert_eq!(store.search("\"review packet\"", None, SearchOrder::Newest, 20).unwrap().0.len(), 20)
        })
    });
    group.finish();
    // p50 and p99 of single queries, timed one by one (criterion reports estimates of the mean).
    // The same phrase with a slop of one is looked up through its words' positions, as every
    // phrase was before the index kept word pairs: the cost the pairs save, in the same run.
    for (name, query) in [
        ("rare word", "777777"),
        ("common word", "compute"),
        ("phrase", "\"review packet\""),
        ("phrase by positions", "\"review packet\"~1"),
        ("rare phrase", "\"packet 777777\""),
    ] {
        let query = if n < 1_000_000 { query.replace("777777", "7777") } else { query.to_owned() };
        let query = query.as_str();
        let mut took: Vec<Duration> = (0..200)
            .map(|_| {
                let started = Instant::now();
                store.search(query, None, SearchOrder::Newest, 20).unwrap();
                started.elapsed()
            })
            .collect();
        took.sort_unstable();
        eprintln!(
            "{name}: p50 {:?}, p99 {:?} over {} queries",
            took[took.len() / 2],
            took[took.len() * 99 / 100],
            took.len()
        );
    }
    eprintln!("RSS after the searches: {} MiB", rss_mib());
    store.close().unwrap();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1)).sample_size(30);
    targets = search
}
criterion_main!(benches);
