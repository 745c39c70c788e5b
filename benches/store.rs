//! Store-level benches: fetch-since and tail on the real sled store, against an in-memory
//! `BTreeMap<(channel, id), Message>` measured in the same run (the practical ceiling).
//!
//! Data sets (messages of about 1 KB, spread over channels in turn) are generated once, through
//! `import`, into `target/bench-data/` and reused by later runs. `RELAY_BENCH_QUICK=1` uses only
//! the 10k set (for CI's smoke run: `cargo test --benches`).
//!
//! Run: `cargo bench --bench store` (figures in docs/benchmarks.md).

mod common;

use common::{channel_name, data_set, message};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use relay::message::Message;
use relay::store::Store;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

/// Random queries prepared per data set; the benches cycle through them. Enough that the
/// blocks they touch in the 1M set (about 256 KiB a page) are far more than the store's cache.
const QUERIES: usize = 1 << 16;

/// The same data in memory, keyed by (channel number, id).
fn ceiling(n: u64, channels: u64) -> BTreeMap<(u64, u64), Message> {
    (1..=n).map(|id| ((id % channels, id), message(id, channels))).collect()
}

/// Random (channel, since_id) pairs, the same for the store and the ceiling: `since_id` anywhere
/// in the log, or with `recent`, among its last 2,000 ids (what an agent that keeps up asks).
fn queries(n: u64, channels: u64, recent: bool) -> Vec<(u64, String, u64)> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..QUERIES)
        .map(|_| {
            let channel = next() % channels;
            let after = if recent { n - next() % 2000.min(n) } else { next() % n };
            (channel, channel_name(channel), after)
        })
        .collect()
}

fn sizes() -> Vec<(u64, u64)> {
    if std::env::var_os("RELAY_BENCH_QUICK").is_some() {
        vec![(10_000, 10)]
    } else {
        vec![(10_000, 10), (100_000, 10), (1_000_000, 10), (100_000, 100)]
    }
}

use relay::usage_log::discard as quiet;

fn fetch_since(c: &mut Criterion) {
    for (n, channels) in sizes() {
        // RELAY_BENCH_CACHE_MB: sled's cache, as `cache_mb` sets it for the relay.
        let cache = std::env::var("RELAY_BENCH_CACHE_MB").ok().and_then(|v| v.parse::<u64>().ok());
        let cache_bytes = cache.map_or(relay::store::DEFAULT_CACHE_BYTES, |mb| mb << 20);
        let options = relay::store::Options { cache_bytes, ..Default::default() };
        let store = Store::open(&data_set(n, channels), None, options, quiet()).unwrap();
        let map = ceiling(n, channels);
        let mut group = c.benchmark_group(format!("fetch_since/{n}x{channels}"));
        let limits: &[usize] = if n == 1_000_000 { &[50, 200] } else { &[200] };
        for (kind, recent) in [("", false), ("recent-", true)] {
            let queries = queries(n, channels, recent);
            for &limit in limits {
                group.throughput(Throughput::Elements(1));
                let mut i = 0;
                group.bench_function(BenchmarkId::new(format!("{kind}store"), limit), |b| {
                    b.iter(|| {
                        let (_, name, after) = &queries[i % QUERIES];
                        i += 1;
                        black_box(store.since(name, *after, limit).unwrap())
                    })
                });
                let mut i = 0;
                group.bench_function(BenchmarkId::new(format!("{kind}btreemap"), limit), |b| {
                    b.iter(|| {
                        let (channel, _, after) = queries[i % QUERIES];
                        i += 1;
                        let page: Vec<Message> = map
                            .range((channel, after + 1)..=(channel, u64::MAX))
                            .take(limit)
                            .map(|(_, m)| m.clone())
                            .collect();
                        black_box(page)
                    })
                });
            }
        }
        group.finish();
        let queries = queries(n, channels, false);
        let mut group = c.benchmark_group(format!("tail/{n}x{channels}"));
        let mut i = 0;
        group.bench_function("store", |b| {
            b.iter(|| {
                let (_, name, _) = &queries[i % QUERIES];
                i += 1;
                black_box(store.tail(name, 200).unwrap())
            })
        });
        let mut i = 0;
        group.bench_function("btreemap", |b| {
            b.iter(|| {
                let (channel, _, _) = queries[i % QUERIES];
                i += 1;
                let mut page: Vec<Message> = map
                    .range((channel, 0)..=(channel, u64::MAX))
                    .rev()
                    .take(200)
                    .map(|(_, m)| m.clone())
                    .collect();
                page.reverse();
                black_box(page)
            })
        });
        group.finish();
        store.close().unwrap();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1)).sample_size(40);
    targets = fetch_since
}
criterion_main!(benches);
