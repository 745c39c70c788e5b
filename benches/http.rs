//! HTTP round trips on one keep-alive loopback connection: a bare warp route returning a small
//! JSON (the ceiling), the relay's empty poll, a page of 200 messages of 1 KB, and a durable
//! post. Latency per request, one request at a time (concurrent load is a job for wrk). A
//! one-message MCP fetch straight to /mcp and through the stdio bridge: the bridge's own cost.
//! Then the web UI's channel page (the newest 100 messages, rendered) for channels of 10, 100
//! and 100,000 messages: a long history must not make the page slower.
//!
//! Run: `cargo bench --bench http` (figures in docs/benchmarks.md).

mod common;
#[allow(dead_code)] // the benches use a part of the tests' harness
#[path = "../tests/api/helpers.rs"]
mod helpers;

use criterion::{criterion_group, criterion_main, Criterion};
use helpers::{spawn_app_in, TestApp};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;
use warp::Filter;

/// One keep-alive HTTP/1.1 connection that reads replies by their Content-Length.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Where the last reply's body starts in `buf`.
    body_at: usize,
}

impl Conn {
    fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        Conn { stream, buf: Vec::with_capacity(1 << 20), body_at: 0 }
    }

    /// The last reply's body.
    fn body(&self) -> &[u8] {
        &self.buf[self.body_at..]
    }

    /// Sends a request and returns the reply's status and body length.
    fn send(&mut self, method: &str, path: &str, body: &str) -> (u16, usize) {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.stream.write_all(request.as_bytes()).unwrap();
        self.buf.clear();
        let mut chunk = [0u8; 65536];
        let mut head_end = None;
        loop {
            let n = self.stream.read(&mut chunk).unwrap();
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
            // Looked for once: a large reply comes in many reads.
            if head_end.is_none() {
                head_end = self.buf.windows(4).position(|w| w == b"\r\n\r\n");
            }
            let Some(end) = head_end else { continue };
            let head = std::str::from_utf8(&self.buf[..end]).unwrap().to_ascii_lowercase();
            let status = head[9..12].parse().unwrap();
            self.body_at = end + 4;
            if head.contains("transfer-encoding: chunked") {
                // rmcp's replies: whole once the last, empty chunk has come.
                if self.buf.ends_with(b"\r\n0\r\n\r\n") {
                    return (status, self.buf.len() - self.body_at);
                }
                continue;
            }
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .expect("replies have a Content-Length or are chunked");
            if self.buf.len() >= end + 4 + length {
                return (status, length);
            }
        }
    }
}

/// `claude-codex-relay bridge` as an MCP client starts it, initialized, without wake-ups.
struct StdioBridge {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl StdioBridge {
    fn start(relay: SocketAddr) -> StdioBridge {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_claude-codex-relay"))
            .args(["bridge", "--url", &format!("http://{relay}"), "--as", "bench", "--wake", "none"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (stdin, stdout) =
            (child.stdin.take().unwrap(), std::io::BufReader::new(child.stdout.take().unwrap()));
        let mut bridge = StdioBridge { child, stdin, stdout };
        let init = serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}});
        bridge.call(&init);
        writeln!(bridge.stdin, r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#).unwrap();
        bridge
    }

    fn call(&mut self, request: &serde_json::Value) -> String {
        writeln!(self.stdin, "{request}").unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut self.stdout, &mut line).unwrap();
        line
    }
}

impl Drop for StdioBridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A relay on `dir` in its own runtime thread (the socket tests' harness), with its archive in
/// `archive_dir` so the shared data sets stay as they are (a file of its own: two relays may
/// not write one archive); it stops when dropped.
fn start_relay(dir: &Path, archive_dir: &Path) -> TestApp {
    static RELAYS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RELAYS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let archive = archive_dir.join(format!("archive-{n}.log"));
    spawn_app_in(dir, |c| c.channel_log_path = archive)
}

/// A bare warp server with one route returning a small JSON, like an empty poll's reply.
fn start_bare_warp() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let route = warp::path!("poll").map(|| {
                warp::reply::json(
                    &serde_json::json!({"target": "chan-001", "messages": [], "latest_id": 9991}),
                )
            });
            warp::serve(route).incoming(listener).run().await;
        });
    });
    rx.recv().unwrap()
}

fn http(c: &mut Criterion) {
    let data = common::data_set(10_000, 10);
    let scratch = tempfile::tempdir().unwrap();
    let relay = start_relay(&data, scratch.path());
    let posts_dir = tempfile::tempdir().unwrap();
    let relay_for_posts = start_relay(posts_dir.path(), posts_dir.path());
    let bare = start_bare_warp();

    let mut group = c.benchmark_group("http");
    let mut conn = Conn::open(bare);
    group.bench_function("bare_warp_small_json", |b| {
        b.iter(|| assert_eq!(conn.send("GET", "/poll", "").0, 200))
    });

    let mut conn = Conn::open(relay.addr);
    // chan-001 holds ids 1, 11, ..., 9991: since its last id, the poll is empty.
    let empty = "/api/messages?target=chan-001&since_id=9991&limit=200";
    let (status, length) = conn.send("GET", empty, "");
    assert!(status == 200 && length < 80, "an empty page: {status} {length}");
    group.bench_function("relay_empty_poll", |b| b.iter(|| assert_eq!(conn.send("GET", empty, "").0, 200)));

    let mut i = 0u64;
    group.bench_function("relay_page_200x1KB", |b| {
        b.iter(|| {
            // A random channel and a start early enough for a full page.
            i = i.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let path = format!(
                "/api/messages?target={}&since_id={}&limit=200",
                common::channel_name(i % 10),
                (i >> 33) % 7000
            );
            let (status, length) = conn.send("GET", &path, "");
            assert!(status == 200 && length > 200_000);
        })
    });

    let mut i = 0u64;
    group.bench_function("relay_mcp_fetch_messages_200x1KB", |b| {
        b.iter(|| {
            i = i.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let call = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                "name": "fetch_messages",
                "arguments": {"target": common::channel_name(i % 10), "since_id": (i >> 33) % 7000, "limit": 200}}});
            let (status, length) = conn.send("POST", "/mcp", &call.to_string());
            assert!(status == 200 && length > 200_000, "{status} {length}");
        })
    });

    // What the stdio bridge adds per tool call: the same one-message fetch straight to /mcp and
    // through `claude-codex-relay bridge` (a JSON line in, HTTP to the relay, a JSON line out).
    let one = |i: u64| {
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "fetch_messages", "arguments": {"target": common::channel_name(i % 10), "limit": 1}}})
    };
    let mut i = 0u64;
    group.bench_function("relay_mcp_fetch_messages_1", |b| {
        b.iter(|| {
            i += 1;
            assert_eq!(conn.send("POST", "/mcp", &one(i).to_string()).0, 200);
        })
    });
    let mut bridge = StdioBridge::start(relay.addr);
    group.bench_function("bridge_mcp_fetch_messages_1", |b| {
        b.iter(|| {
            i += 1;
            assert!(bridge.call(&one(i)).contains(r#""isError":false"#));
        })
    });

    let mut conn = Conn::open(relay_for_posts.addr);
    let body =
        serde_json::json!({"target": "proj-x", "sender": "bench", "text": "x".repeat(200)}).to_string();
    group.bench_function("relay_durable_post", |b| {
        b.iter(|| assert_eq!(conn.send("POST", "/api/messages", &body).0, 201))
    });
    group.finish();
    wake_up(relay_for_posts.addr);

    // The web UI: the same page of the newest 100 messages whether the channel holds 100 or
    // 100,000. (RELAY_BENCH_QUICK: 10,000, so CI does not build the large set.)
    let long = if std::env::var_os("RELAY_BENCH_QUICK").is_some() { 10_000 } else { 100_000 };
    let long_relay = start_relay(&common::data_set(long, 1), scratch.path());
    let mut conn = Conn::open(relay_for_posts.addr);
    for (channel, n) in [("ten", 10), ("hundred", 100)] {
        for id in 1..=n {
            let text = common::message(id, 1).text;
            let body = serde_json::json!({"target": channel, "sender": "codex", "text": text}).to_string();
            assert_eq!(conn.send("POST", "/api/messages", &body).0, 201);
        }
    }
    let mut group = c.benchmark_group("ui");
    for (name, addr, path) in [
        ("channel_page_10", relay_for_posts.addr, "/c/ten".to_owned()),
        ("channel_page_100", relay_for_posts.addr, "/c/hundred".to_owned()),
        (
            if long == 100_000 { "channel_page_100000" } else { "channel_page_10000" },
            long_relay.addr,
            format!("/c/{}", common::channel_name(0)),
        ),
    ] {
        let mut conn = Conn::open(addr);
        let (status, length) = conn.send("GET", &path, "");
        assert!(status == 200 && length > 5_000, "{path}: {status} {length}");
        group.bench_function(name, |b| b.iter(|| assert_eq!(conn.send("GET", &path, "").0, 200)));
    }
    group.finish();
}

/// Wake-up delay: from the start of a post to a waiting client receiving it, for a REST long
/// poll and for MCP's `wait_for_messages`. It includes the post's own durable commit, since a
/// waiter is woken only once the message is on disk. Prints p50 and p99 of `ROUNDS` rounds
/// (criterion's mean per sample would hide the tail).
fn wake_up(addr: SocketAddr) {
    let rounds = if std::env::var_os("RELAY_BENCH_QUICK").is_some() { 20 } else { 500 };
    let mut poster = Conn::open(addr);
    for (name, channel) in [("REST wait", "wake-rest"), ("MCP wait_for_messages", "wake-mcp")] {
        let mut delays = Vec::with_capacity(rounds);
        let mut latest = 0;
        for round in 0..rounds {
            let body =
                serde_json::json!({"target": channel, "sender": "poster", "text": format!("wake {round}")});
            let (go, waiting) = std::sync::mpsc::channel::<u64>();
            let (arrived, woken) = std::sync::mpsc::channel::<std::time::Instant>();
            let waiter = std::thread::spawn(move || {
                let mut conn = Conn::open(addr);
                let since = waiting.recv().unwrap();
                let (method, path, body) = if name.starts_with("REST") {
                    ("GET", format!("/api/messages?target={channel}&since_id={since}&wait=10"), String::new())
                } else {
                    let call = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                        "name": "wait_for_messages",
                        "arguments": {"target": channel, "since_id": since, "timeout_s": 10}}});
                    ("POST", "/mcp".to_owned(), call.to_string())
                };
                let (status, _) = conn.send(method, &path, &body);
                arrived.send(std::time::Instant::now()).unwrap();
                assert_eq!(status, 200);
            });
            go.send(latest).unwrap();
            // Let the wait reach the relay and park before posting.
            std::thread::sleep(Duration::from_millis(5));
            let started = std::time::Instant::now();
            assert_eq!(poster.send("POST", "/api/messages", &body.to_string()).0, 201);
            delays.push(woken.recv().unwrap() - started);
            let reply: serde_json::Value = serde_json::from_slice(poster.body()).unwrap();
            latest = reply["posted"].as_u64().unwrap();
            waiter.join().unwrap();
        }
        delays.sort_unstable();
        let at = |q: f64| delays[((delays.len() - 1) as f64 * q).round() as usize];
        println!(
            "wake-up, {name}: p50 {:?}, p99 {:?}, max {:?} over {rounds} rounds",
            at(0.5),
            at(0.99),
            at(1.0)
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1)).sample_size(40);
    targets = http
}
criterion_main!(benches);
