//! Scale-out figures, side by side in one run: two relay instances in nats mode on a 3-node
//! JetStream cluster (R3, every write synced), and one relay in sled mode (fsync on), all
//! processes on this machine:
//! - posts/s with 32 posters (through both instances in nats mode), beside the ceiling: raw
//!   JetStream publishes of the same size by 32 async-nats tasks over two connections, each
//!   awaiting its PubAck, to a stream of its own on the same cluster;
//! - wake-up: a REST wait woken by a post (in nats mode, posted through the other instance),
//!   beside a raw publish's round trip one at a time;
//! - pages/s: a page of 200 messages from the local views;
//! - catch-up: a fresh instance reading the whole stream at start.
//!
//! `RELAY_BENCH_CATCH_UP=N` first fills the stream up to N events for the catch-up (published
//! straight into the stream, 1,024 in flight: through the relays a million posts would take
//! most of an hour).
//!
//! Plain timing, not criterion: these are throughputs of many threads and processes.
//! Run: `cargo bench --bench scale_out` (needs RELAY_NATS_SERVER, which scripts/test sets up);
//! `RELAY_BENCH_QUICK=1` runs each part once, briefly (CI).

#[allow(dead_code)] // the bench uses a part of the tests' harness
#[path = "../tests/api/helpers.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "../tests/support/nats_cluster.rs"]
mod nats_cluster;

use helpers::{request, start_relay_within};
use nats_cluster::Cluster;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const POSTERS: usize = 32;
/// How long the CPU of a part is read past its end.
const SETTLE: Duration = Duration::from_secs(1);
/// The pause before each wake-up round's post (the wait is parked by then), and before each raw
/// publish it is compared with: after a pause every process on the way has gone idle, and waking
/// an idle thread costs more than one already running.
const PAUSE: Duration = Duration::from_millis(50);

fn post(addr: SocketAddr, target: &str, text: &str) -> Option<u64> {
    let body = serde_json::json!({"target": target, "sender": "bench", "text": text}).to_string();
    let reply = request(
        addr,
        "POST",
        "/api/messages",
        &[("Content-Type", "application/json")],
        Some(body.as_bytes()),
    );
    (reply.status == 201).then(|| reply.json()["posted"].as_u64().unwrap())
}

/// Posts of about 1 KB from [`POSTERS`] threads for `span`, spread over `relays`, each thread
/// on a connection it keeps (as wrk's posters).
fn posts_per_second(relays: &[SocketAddr], span: Duration) -> f64 {
    let body = serde_json::json!({"target": "bench", "sender": "bench", "text": "x".repeat(1000)});
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..POSTERS)
        .map(|i| {
            let (url, done, body) =
                (format!("http://{}/api/messages", relays[i % relays.len()]), done.clone(), body.clone());
            std::thread::spawn(move || {
                let agent = ureq::Agent::new_with_defaults();
                while started.elapsed() < span {
                    // The answer read to its end, so the connection serves the next post.
                    let posted =
                        agent.post(&url).send_json(&body).and_then(|r| r.into_body().read_to_string());
                    if posted.is_ok() {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Waits on `waiter` woken by posts through `poster`: per round, the time from sending the post
/// to the wait's answer, and the post's own round trip (its 201), sorted each.
fn wake_ups(waiter: SocketAddr, poster: SocketAddr, rounds: usize) -> (Vec<Duration>, Vec<Duration>) {
    let mut last = post(poster, "wake", "start").unwrap();
    let (mut times, mut posts) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        // Let the waiter catch up to `last` first, so the wait is for the next post.
        let path = format!("/api/messages?target=wake&since_id={last}&wait=20");
        let woken = std::thread::spawn(move || {
            let reply = request(waiter, "GET", &path, &[], None);
            (Instant::now(), reply.json()["latest_id"].as_u64().unwrap())
        });
        std::thread::sleep(PAUSE);
        let sent = Instant::now();
        let id = post(poster, "wake", "ping").unwrap();
        posts.push(sent.elapsed());
        let (at, latest) = woken.join().unwrap();
        assert_eq!(latest, id, "woken by the post");
        times.push(at - sent);
        last = id;
    }
    times.sort();
    posts.sort();
    (times, posts)
}

fn pages_per_second(addr: SocketAddr, span: Duration) -> f64 {
    let (started, mut pages) = (Instant::now(), 0u64);
    while started.elapsed() < span {
        let reply = request(addr, "GET", "/api/messages?target=bench&limit=200", &[], None);
        assert_eq!(reply.status, 200);
        pages += 1;
    }
    pages as f64 / started.elapsed().as_secs_f64()
}

/// Publishes `count` messages of about 200 bytes to channel `seed` of the stream `RELAY`,
/// as a relay would write them.
fn seed(url: &str, count: u64) {
    use relay::event::{encode, Event};
    use relay::message::{Message, Source};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
        let subject = relay::store::stream_subject("RELAY", "seed");
        let mut acks = std::collections::VecDeque::new();
        for i in 0..count {
            let message = Message {
                id: 0,
                ts: 1.7e9 + i as f64,
                target: "seed".into(),
                sender: "bench".into(),
                text: format!("seeded message {i} {}", "x".repeat(160)),
                source: Source::Rest,
                reply_to: None,
                redacted: None,
            };
            acks.push_back(
                js.publish(subject.clone(), encode(&Event::MessagePosted(message)).into()).await.unwrap(),
            );
            if acks.len() >= 1024 {
                acks.pop_front().unwrap().await.unwrap();
            }
        }
        for ack in acks {
            ack.await.unwrap();
        }
    });
}

/// Raw JetStream publishes of `text` for `span` by [`POSTERS`] tasks over one connection per
/// url, each awaiting its PubAck before the next (what one post needs): publishes/s and each
/// publish's round trip, sorted. `followed`: an ordered consumer on each connection reads every
/// publish meanwhile, as each relay instance's follower does.
fn raw_publishes(urls: &[&str], text: &str, span: Duration, followed: bool) -> (f64, Vec<Duration>) {
    use async_nats::jetstream::{self, consumer, stream};
    use futures_util::StreamExt;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut contexts = Vec::new();
        for url in urls {
            contexts.push(jetstream::new(async_nats::connect(*url).await.unwrap()));
        }
        // As the relay makes its stream (R3, file, deduplicated by message id, direct gets).
        let config = stream::Config {
            name: "RAW".into(),
            subjects: vec!["raw.>".into()],
            num_replicas: 3,
            duplicate_window: Duration::from_secs(120),
            allow_direct: true,
            ..Default::default()
        };
        let stream = contexts[0].get_or_create_stream(config).await.unwrap();
        let mut followers = Vec::new();
        for js in contexts.iter().filter(|_| followed) {
            let config = consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::New,
                ..Default::default()
            };
            let stream = js.get_stream(stream.cached_info().config.name.as_str()).await.unwrap();
            let mut messages = stream.create_consumer(config).await.unwrap().messages().await.unwrap();
            followers.push(tokio::spawn(async move { while messages.next().await.is_some() {} }));
        }
        let payload = bytes::Bytes::from(text.to_owned());
        let started = Instant::now();
        let tasks: Vec<_> = (0..POSTERS)
            .map(|task| {
                let (js, payload) = (contexts[task % contexts.len()].clone(), payload.clone());
                tokio::spawn(async move {
                    let mut times = Vec::new();
                    while started.elapsed() < span {
                        let id = format!("{followed}-{task}-{}", times.len());
                        times.push(raw_publish(&js, payload.clone(), id).await);
                    }
                    times
                })
            })
            .collect();
        let mut times = Vec::new();
        for task in tasks {
            times.extend(task.await.unwrap());
        }
        let rate = times.len() as f64 / started.elapsed().as_secs_f64();
        followers.iter().for_each(tokio::task::JoinHandle::abort);
        times.sort();
        (rate, times)
    })
}

/// One raw publish to the stream [`raw_publishes`] made, awaiting its PubAck: its round trip.
async fn raw_publish(js: &async_nats::jetstream::Context, payload: bytes::Bytes, id: String) -> Duration {
    let sent = Instant::now();
    let message = async_nats::jetstream::message::PublishMessage::build().payload(payload).message_id(id);
    js.send_publish("raw.bench", message).await.unwrap().await.unwrap();
    sent.elapsed()
}

/// `rounds` raw publishes of `text` one at a time through `url`, then `rounds` more each after a
/// [`PAUSE`]: their round trips, sorted each.
fn raw_one_at_a_time(url: &str, text: &str, rounds: usize) -> (Vec<Duration>, Vec<Duration>) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
        let payload = bytes::Bytes::from(text.to_owned());
        let (mut back_to_back, mut paused) = (Vec::new(), Vec::new());
        for i in 0..rounds {
            back_to_back.push(raw_publish(&js, payload.clone(), format!("single-{i}")).await);
        }
        for i in 0..rounds {
            tokio::time::sleep(PAUSE).await;
            paused.push(raw_publish(&js, payload.clone(), format!("paused-{i}")).await);
        }
        back_to_back.sort();
        paused.sort();
        (back_to_back, paused)
    })
}

/// The CPU time (user and system) the processes `pids` used so far, 0 standing for this one
/// (the bench's clients), in seconds.
fn cpu_seconds(pids: &[u32]) -> f64 {
    let used = |pid: &u32| {
        let path = if *pid == 0 { "/proc/self/stat".to_owned() } else { format!("/proc/{pid}/stat") };
        let stat = std::fs::read_to_string(path).unwrap();
        // Past the name in parentheses, from field 3 on: utime and stime are fields 14 and
        // 15, in clock ticks (100 a second on Linux).
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        (fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()) as f64 / 100.0
    };
    pids.iter().map(used).sum()
}

/// Runs `work`, which does `count(&result)` posts, and says what each cost in CPU: the NATS
/// servers `nats`, the relays `relays`, the bench's own clients. Read [`SETTLE`] after the work,
/// so what the processes finish after the last answer (search indexing, the archive, the
/// replicas) counts too.
fn cpu_per_post<T>(
    nats: &[u32],
    relays: &[u32],
    work: impl FnOnce() -> T,
    count: impl Fn(&T) -> f64,
) -> (T, String) {
    let groups = [nats, relays, &[0]];
    let before = groups.map(cpu_seconds);
    let out = work();
    let posts = count(&out).max(1.0);
    std::thread::sleep(SETTLE);
    let used = groups.map(cpu_seconds);
    let per = |i: usize| format!("{:.2}", (used[i] - before[i]) * 1000.0 / posts);
    let cost = format!("CPU ms per post: nats servers {}, relays {}, clients {}", per(0), per(1), per(2));
    (out, cost)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let quick = std::env::var_os("RELAY_BENCH_QUICK").is_some();
    let (span, rounds) = if quick { (Duration::from_millis(300), 3) } else { (Duration::from_secs(10), 200) };
    let cluster = Cluster::start();
    let nats_env = |url: &str| {
        [("CLAUDE_CODEX_LOG_BACKEND", "nats".to_owned()), ("CLAUDE_CODEX_NATS_URL", url.to_owned())]
    };
    let start = |dir: &std::path::Path, env: &[(&str, String)]| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // Long enough for the catch-up of a large stream at start.
        start_relay_within(dir, 0, &env, Duration::from_secs(600))
    };
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let sled = start(dirs[0].path(), &[]);
    let a = start(dirs[1].path(), &nats_env(&cluster.urls[0]));
    let b = start(dirs[2].path(), &nats_env(&cluster.urls[1]));

    let pct = |t: &[Duration], p: usize| ms(t[(t.len() * p / 100).min(t.len() - 1)]);
    let (nats_pids, relays) = (cluster.pids(), [a.child.id(), b.child.id()]);
    let (sled_posts, sled_cpu) = cpu_per_post(
        &[],
        &[sled.child.id()],
        || posts_per_second(&[sled.addr], span),
        |r| r * span.as_secs_f64(),
    );
    let raw_urls = [cluster.urls[0].as_str(), cluster.urls[1].as_str()];
    let text = "x".repeat(1000);
    let ((raw, raw_times), raw_cpu) =
        cpu_per_post(&nats_pids, &[], || raw_publishes(&raw_urls, &text, span, false), |r| r.1.len() as f64);
    let (raw_single, raw_paused) = raw_one_at_a_time(raw_urls[0], &text, rounds);
    let ((followed, followed_times), followed_cpu) =
        cpu_per_post(&nats_pids, &[], || raw_publishes(&raw_urls, &text, span, true), |r| r.1.len() as f64);
    let (nats_posts, nats_cpu) = cpu_per_post(
        &nats_pids,
        &relays,
        || posts_per_second(&[a.addr, b.addr], span),
        |r| r * span.as_secs_f64(),
    );
    println!(
        "posts/s, {POSTERS} posters, 1 KB: sled {sled_posts:.0}; nats via 2 instances {nats_posts:.0} ({:.2}x sled, \
         {:.2}x raw); raw JetStream publishes {raw:.0}/s (p50 {} p99 {})",
        nats_posts / sled_posts,
        nats_posts / raw,
        pct(&raw_times, 50),
        pct(&raw_times, 99)
    );
    println!(
        "  raw JetStream with an ordered consumer per connection reading along: {followed:.0}/s (p50 {} p99 {}); \
         the relay in nats mode {:.2}x of that",
        pct(&followed_times, 50),
        pct(&followed_times, 99),
        nats_posts / followed
    );
    println!(
        "  sled: {sled_cpu}\n  raw JetStream: {raw_cpu}\n  raw, followed: {followed_cpu}\n  nats: {nats_cpu}"
    );

    let sled_wake = wake_ups(sled.addr, sled.addr, rounds);
    let nats_wake = wake_ups(a.addr, b.addr, rounds);
    println!(
        "wake-up from sending the post, {rounds} rounds: sled (same instance) p50 {} p99 {}; \
         nats (posted through B, waiting on A) p50 {} p99 {}",
        pct(&sled_wake.0, 50),
        pct(&sled_wake.0, 99),
        pct(&nats_wake.0, 50),
        pct(&nats_wake.0, 99)
    );
    println!(
        "  of which the post's own round trip: sled p50 {} p99 {}; nats p50 {} p99 {}; \
         a raw JetStream publish, one at a time: p50 {} p99 {}; each after a pause of {PAUSE:?} as the posts: p50 {} p99 {}",
        pct(&sled_wake.1, 50),
        pct(&sled_wake.1, 99),
        pct(&nats_wake.1, 50),
        pct(&nats_wake.1, 99),
        pct(&raw_single, 50),
        pct(&raw_single, 99),
        pct(&raw_paused, 50),
        pct(&raw_paused, 99)
    );

    let sled_pages = pages_per_second(sled.addr, span);
    let nats_pages = pages_per_second(a.addr, span);
    println!(
        "pages/s, 200 messages, one client: sled {sled_pages:.0}; nats instance A {nats_pages:.0} ({:.2}x sled)",
        nats_pages / sled_pages
    );

    let events = request(a.addr, "GET", "/api/channels", &[], None).json()["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["last_id"].as_u64().unwrap())
        .max()
        .unwrap();
    let wanted: u64 =
        std::env::var("RELAY_BENCH_CATCH_UP").map_or(0, |n| n.parse().expect("a number of events"));
    let events = if wanted > events {
        let started = Instant::now();
        seed(&cluster.urls[2], wanted - events);
        let took = started.elapsed().as_secs_f64();
        println!("seeded {} events straight into the stream in {took:.1} s", wanted - events);
        wanted
    } else {
        events
    };
    let started = Instant::now();
    let c = start(dirs[3].path(), &nats_env(&cluster.urls[2]));
    let took = started.elapsed();
    println!(
        "catch-up: a fresh instance read {events} events and listened after {:.2} s ({:.0} events/s, start-up included)",
        took.as_secs_f64(),
        events as f64 / took.as_secs_f64()
    );
    drop(c);
}
