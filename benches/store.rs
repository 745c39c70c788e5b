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

/// Random queries prepared per data set; the benches cycle through them.
const QUERIES: usize = 4096;

/// The same data in memory, keyed by (channel number, id).
fn ceiling(n: u64, channels: u64) -> BTreeMap<(u64, u64), Message> {
    (1..=n).map(|id| ((id % channels, id), message(id, channels))).collect()
}

/// Random (channel, since_id) pairs, the same for the store and the ceiling.
fn queries(n: u64, channels: u64) -> Vec<(u64, String, u64)> {
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
            (channel, channel_name(channel), next() % n)
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

fn quiet() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

fn fetch_since(c: &mut Criterion) {
    for (n, channels) in sizes() {
        let store = Store::open(&data_set(n, channels), None, quiet()).unwrap();
        let map = ceiling(n, channels);
        let queries = queries(n, channels);
        let mut group = c.benchmark_group(format!("fetch_since/{n}x{channels}"));
        let limits: &[usize] = if n == 1_000_000 { &[50, 200] } else { &[200] };
        for &limit in limits {
            group.throughput(Throughput::Elements(1));
            let mut i = 0;
            group.bench_function(BenchmarkId::new("store", limit), |b| {
                b.iter(|| {
                    let (_, name, after) = &queries[i % QUERIES];
                    i += 1;
                    black_box(store.since(name, *after, limit).unwrap())
                })
            });
            let mut i = 0;
            group.bench_function(BenchmarkId::new("btreemap", limit), |b| {
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
        group.finish();
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
