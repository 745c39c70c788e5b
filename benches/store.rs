//! Store-level benches: fetch-since and tail on the real sled store, against an in-memory
//! `BTreeMap<(channel, id), Message>` measured in the same run (the practical ceiling).
//!
//! Data sets (messages of about 1 KB, spread over channels in turn) are generated once, through
//! `import`, into `target/bench-data/` and reused by later runs. `RELAY_BENCH_QUICK=1` uses only
//! the 10k set (for CI's smoke run: `cargo test --benches`).
//!
//! Run: `cargo bench --bench store` (figures in docs/benchmarks.md).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use relay::event::Event;
use relay::message::{Message, Source};
use relay::store::{import, Store};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// Bytes of text per message: the workload of the reference figures.
const TEXT_BYTES: usize = 1000;
/// Random queries prepared per data set; the benches cycle through them.
const QUERIES: usize = 4096;

fn channel_name(no: u64) -> String {
    format!("chan-{no:03}")
}

/// The message with this id: deterministic, so the store and the ceiling hold the same data.
fn message(id: u64, channels: u64) -> Message {
    let mut text = format!("Review packet {id}\n```diff\n");
    while text.len() < TEXT_BYTES - 4 {
        text.push_str(&format!("+    let value_{id} = compute({});\n", text.len()));
    }
    text.truncate(TEXT_BYTES - 4);
    text.push_str("\n```");
    Message {
        id,
        ts: 1_795_000_000.0 + id as f64 / 1000.0,
        target: channel_name(id % channels),
        sender: if id.is_multiple_of(2) { "claude".into() } else { "codex".into() },
        text,
        source: Source::Mcp,
    }
}

fn bench_data_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench-data")
}

/// The store directory holding `n` messages over `channels` channels, generated on first use.
fn data_set(n: u64, channels: u64) -> PathBuf {
    let dir = bench_data_dir().join(format!("{n}-{channels}"));
    if dir.join("READY").exists() {
        return dir;
    }
    eprintln!("generating {n} messages over {channels} channels in {} (once)", dir.display());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let export = dir.with_extension("jsonl");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&export).unwrap());
        for id in 1..=n {
            out.write_all(Event::MessagePosted(message(id, channels)).to_json_line().as_bytes()).unwrap();
        }
    }
    import(&dir, &export, false, None).unwrap();
    std::fs::remove_file(&export).unwrap();
    std::fs::write(dir.join("READY"), "").unwrap();
    dir
}

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
