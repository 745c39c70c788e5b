//! Durable appends through group commit: N posters at once, each waiting for its post to be
//! acknowledged (flushed) before sending the next, on a real sled store in a temp dir.
//!
//! Run: `cargo bench --bench append` (figures in docs/benchmarks.md). `RELAY_BENCH_QUICK=1` with
//! `cargo test --benches` runs each case once.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use relay::message::{NewMessage, Source};
use relay::store::{Options, Store};
use relay::values::{Name, Text};
use std::time::{Duration, Instant};

fn message(poster: usize, n: u64) -> NewMessage {
    NewMessage {
        target: Name::parse("target", ["proj-x", "codex", "claude"][poster % 3]).unwrap(),
        sender: Name::parse("sender", &format!("poster-{poster}")).unwrap(),
        text: Text::parse(format!("post {n} of poster {poster}: {}", "x".repeat(200)), 1 << 20).unwrap(),
        source: Source::Rest,
        reply_to: None,
    }
}

fn append(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut group = c.benchmark_group("append");
    // power_safe: each commit also fdatasyncs (the default); crash_safe: sled's flush alone;
    // search_off: power_safe without the search index's thread (posts with search on vs off).
    for (mode, power_safe, search) in
        [("power_safe", true, true), ("crash_safe", false, true), ("power_safe_search_off", true, false)]
    {
        let dir = tempfile::tempdir().unwrap();
        let options = Options { power_safe, search, ..Options::default() };
        let store = Store::open(dir.path(), None, options, relay::usage_log::discard()).unwrap();
        for posters in [1usize, 8, 32] {
            // One iteration = one acknowledged post per poster.
            group.throughput(Throughput::Elements(posters as u64));
            group.bench_function(BenchmarkId::new(format!("durable_posts_{mode}"), posters), |b| {
                b.iter_custom(|iters| {
                    let started = Instant::now();
                    runtime.block_on(async {
                        let tasks: Vec<_> = (0..posters)
                            .map(|poster| {
                                let store = store.clone();
                                tokio::spawn(async move {
                                    for n in 0..iters {
                                        store.append(message(poster, n)).await.unwrap();
                                    }
                                })
                            })
                            .collect();
                        for t in tasks {
                            t.await.unwrap();
                        }
                    });
                    started.elapsed()
                })
            });
        }
        store.close().unwrap();
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1)).sample_size(20);
    targets = append
}
criterion_main!(benches);
