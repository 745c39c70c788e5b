//! nats mode through the binary: two relay instances in front of one JetStream stream on a
//! 3-node cluster (tests/support/nats_cluster.rs).

#[path = "../support/nats_cluster.rs"]
mod cluster;

use crate::helpers::{relay_command, request, start_relay};
use cluster::{free_port, Cluster};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const JSON: [(&str, &str); 1] = [("Content-Type", "application/json")];

fn post(addr: std::net::SocketAddr, target: &str, text: &str) -> u64 {
    let body = json!({"target": target, "sender": "tester", "text": text}).to_string();
    let reply = request(addr, "POST", "/api/messages", &JSON, Some(body.as_bytes()));
    assert_eq!(reply.status, 201, "{}", reply.text());
    reply.json()["posted"].as_u64().unwrap()
}

/// A relay instance in nats mode on the stream E2E, through the server at `url`.
fn nats_env(url: &str) -> [(&str, &str); 3] {
    [
        ("CLAUDE_CODEX_LOG_BACKEND", "nats"),
        ("CLAUDE_CODEX_NATS_URL", url),
        ("CLAUDE_CODEX_NATS_STREAM", "E2E"),
    ]
}

#[test]
fn two_instances_serve_one_log_and_wake_each_other() {
    let cluster = Cluster::start();
    let (work_a, work_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start_relay(work_a.path(), &nats_env(&cluster.urls[0]));
    let b = start_relay(work_b.path(), &nats_env(&cluster.urls[1]));

    // A REST wait and an SSE stream on A, woken by a post through B.
    let a_addr = a.addr;
    let waiter = std::thread::spawn(move || {
        let started = Instant::now();
        let reply = request(a_addr, "GET", "/api/messages?target=t&since_id=0&wait=20", &[], None);
        (reply.json(), started.elapsed())
    });
    let mut sse = TcpStream::connect(a.addr).unwrap();
    sse.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(sse, "GET /c/t/events?after=0 HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n", a.addr)
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let id = post(b.addr, "t", "through B");
    assert_eq!(id, 1, "the stream sequence is the id");
    let (woken, took) = waiter.join().unwrap();
    assert_eq!(woken["messages"][0]["text"], "through B", "{woken}");
    assert!(took < Duration::from_secs(10), "the wait on A woke: {took:?}");
    let mut lines = BufReader::new(sse).lines();
    let event_id = lines.by_ref().map(Result::unwrap).find(|l| l.starts_with("id:"));
    assert_eq!(event_id.as_deref(), Some("id:1"), "the SSE stream on A got the post through B");

    // More posts through both; then both serve the same bytes.
    for i in 0..5 {
        post(if i % 2 == 0 { a.addr } else { b.addr }, "t", &format!("post {i}"));
    }
    let last = post(a.addr, "u", "last");
    let caught_up = |addr| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let page: Value = request(addr, "GET", "/api/channels", &[], None).json();
            let max =
                page["details"].as_array().unwrap().iter().map(|c| c["last_id"].as_u64().unwrap()).max();
            if max == Some(last) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{addr} did not catch up to {last}");
    };
    caught_up(a.addr);
    caught_up(b.addr);
    for path in
        ["/api/messages?target=t", "/api/messages?target=u&since_id=0", "/api/channels", "/api/export"]
    {
        let (on_a, on_b) = (request(a.addr, "GET", path, &[], None), request(b.addr, "GET", path, &[], None));
        assert_eq!(on_a.status, 200, "{path}: {}", on_a.text());
        assert_eq!(on_a.body, on_b.body, "{path} differs between the instances");
    }
}

#[test]
fn nats_mode_without_servers_or_with_none_reachable_stops_start_up_naming_the_setting() {
    let work = tempfile::tempdir().unwrap();
    let out = relay_command(work.path(), &["--port", "0"], &[("CLAUDE_CODEX_LOG_BACKEND", "nats")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("nats_url"), "{stderr}");
    let nowhere = format!("nats://127.0.0.1:{}", free_port());
    let env = [("CLAUDE_CODEX_LOG_BACKEND", "nats"), ("CLAUDE_CODEX_NATS_URL", nowhere.as_str())];
    let out = relay_command(work.path(), &["--port", "0"], &env).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains(&format!("cannot connect to nats_url {nowhere}")),
        "{stderr}"
    );
}

#[test]
fn without_a_quorum_posts_get_503_readyz_says_why_and_reads_go_on() {
    let mut cluster = Cluster::start();
    let work = tempfile::tempdir().unwrap();
    let relay = start_relay(work.path(), &nats_env(&cluster.urls[0]));
    assert_eq!(request(relay.addr, "GET", "/readyz", &[], None).text(), "ready");
    let id = post(relay.addr, "t", "with a quorum");
    cluster.kill(1);
    cluster.kill(2);
    // Readiness notices within a few health checks, and says what is missing.
    let deadline = Instant::now() + Duration::from_secs(30);
    let not_ready = loop {
        let reply = request(relay.addr, "GET", "/readyz", &[], None);
        if reply.status == 503 {
            break reply;
        }
        assert!(Instant::now() < deadline, "still ready without a quorum");
        std::thread::sleep(Duration::from_millis(200));
    };
    not_ready.assert_error(503, "quorum");
    // Once the outage has lasted past the fail-fast delay, a post is refused at once.
    std::thread::sleep(Duration::from_secs(6));
    let body = json!({"target": "t", "sender": "tester", "text": "without"}).to_string();
    let started = Instant::now();
    let refused = request(relay.addr, "POST", "/api/messages", &JSON, Some(body.as_bytes()));
    refused.assert_error(503, "not stored");
    assert!(started.elapsed() < Duration::from_secs(2), "refused quickly: {:?}", started.elapsed());
    // Reads go on from the local views.
    let page = request(relay.addr, "GET", "/api/messages?target=t", &[], None);
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(page.json()["messages"][0]["id"].as_u64(), Some(id));
}

#[test]
fn a_sled_store_moves_to_a_stream_by_export_then_import_keeping_ids() {
    let cluster = Cluster::start();
    let work = tempfile::tempdir().unwrap();
    // A sled relay with some history, stopped, then exported.
    let sled = start_relay(work.path(), &[]);
    for i in 0..5 {
        post(sled.addr, if i % 2 == 0 { "a.b" } else { "c d" }, &format!("message {i}"));
    }
    drop(sled);
    let export = relay_command(work.path(), &["export", "--data-dir", "data"], &[]).output().unwrap();
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let backup = work.path().join("backup.jsonl");
    std::fs::write(&backup, &export.stdout).unwrap();

    let env = nats_env(&cluster.urls[0]);
    let imported = relay_command(work.path(), &["import", "backup.jsonl"], &env).output().unwrap();
    let said = String::from_utf8_lossy(&imported.stdout);
    assert!(
        imported.status.success() && said.contains("imported 5 events into the stream E2E"),
        "{said}{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    // Again: the stream is no longer empty.
    let again = relay_command(work.path(), &["import", "backup.jsonl"], &env).output().unwrap();
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("last id 5"));

    // An instance in front of the stream serves the same ids, and the stream exports the
    // same lines, from the command and from the running relay.
    let nats_dir = tempfile::tempdir().unwrap();
    let relay = start_relay(nats_dir.path(), &env);
    let from_relay = request(relay.addr, "GET", "/api/export", &[], None);
    assert_eq!(from_relay.body, export.stdout, "the stream holds the sled log, line for line");
    let from_command = relay_command(work.path(), &["export"], &env).output().unwrap();
    assert_eq!(from_command.stdout, export.stdout);
    assert_eq!(post(relay.addr, "a.b", "after the move"), 6);

    // A file whose ids do not run 1..N cannot keep them in a stream: refused, naming the line.
    let gappy = work.path().join("gappy.jsonl");
    let lines: Vec<&str> = std::str::from_utf8(&export.stdout).unwrap().lines().collect();
    std::fs::write(&gappy, format!("{}\n{}\n", lines[0], lines[2])).unwrap();
    let mut other = nats_env(&cluster.urls[1]);
    other[2] = ("CLAUDE_CODEX_NATS_STREAM", "OTHER");
    let refused = relay_command(work.path(), &["import", "gappy.jsonl"], &other).output().unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("gappy.jsonl:2: id 3 where 2 was next"), "{stderr}");
}
