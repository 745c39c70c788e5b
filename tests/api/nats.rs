//! nats mode through the binary: two relay instances in front of one JetStream stream on a
//! 3-node cluster (tests/support/nats_cluster.rs).

#[path = "../support/nats_cluster.rs"]
pub(crate) mod cluster;

use crate::helpers::{self, relay_command, request, RelayProcess};
use crate::process::{lost_messages_after, start_writers, Acked};
use cluster::{free_port, Cluster};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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

/// Starts an instance and waits until it is ready: it serves before it reaches its stream, and
/// takes posts once it has.
fn start_relay(workdir: &std::path::Path, env: &[(&str, &str)]) -> RelayProcess {
    let relay = helpers::start_relay(workdir, env);
    ready_within(relay.addr, Duration::from_secs(30));
    relay
}

/// How long the relay at `addr` takes to answer `/readyz` with 200, at most `bound`.
fn ready_within(addr: SocketAddr, bound: Duration) -> Duration {
    ready_in(addr, bound).unwrap_or_else(|why| panic!("{why}"))
}

/// [`ready_within`], or why not.
fn ready_in(addr: SocketAddr, bound: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        let reply = request(addr, "GET", "/readyz", &[], None);
        if reply.status == 200 {
            return Ok(started.elapsed());
        }
        if started.elapsed() >= bound {
            return Err(format!("{addr} not ready within {bound:?}: {}", reply.text()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An MCP tool call without a session; its structured result.
fn tool(addr: SocketAddr, name: &str, arguments: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}});
    let headers = [("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")];
    let reply = request(addr, "POST", "/mcp", &headers, Some(body.to_string().as_bytes()));
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["result"].clone()
}

/// Until the relay at `addr` has applied id `last` (the largest of its channels' last ids), within 10 s.
fn caught_up(addr: SocketAddr, last: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let page: Value = request(addr, "GET", "/api/channels", &[], None).json();
        let max = page["details"].as_array().unwrap().iter().map(|c| c["last_id"].as_u64().unwrap()).max();
        if max >= Some(last) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{addr} did not catch up to {last}");
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
    caught_up(a.addr, last);
    caught_up(b.addr, last);
    for path in
        ["/api/messages?target=t", "/api/messages?target=u&since_id=0", "/api/channels", "/api/export"]
    {
        let (on_a, on_b) = (request(a.addr, "GET", path, &[], None), request(b.addr, "GET", path, &[], None));
        assert_eq!(on_a.status, 200, "{path}: {}", on_a.text());
        assert_eq!(on_a.body, on_b.body, "{path} differs between the instances");
    }

    // A reader's acknowledgement through A is its place on B too.
    let reply = request(
        a.addr,
        "GET",
        &format!("/api/messages?target=t&reader=codex&since_id={}", id + 1),
        &[],
        None,
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let deadline = Instant::now() + Duration::from_secs(10);
    let from_b = loop {
        let page = request(b.addr, "GET", "/api/messages?target=t&reader=codex", &[], None).json();
        if page["messages"].as_array().unwrap().len() == 4 || Instant::now() > deadline {
            break page;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let texts: Vec<_> = from_b["messages"].as_array().unwrap().iter().map(|m| m["text"].clone()).collect();
    assert_eq!(texts, ["post 1", "post 2", "post 3", "post 4"], "{from_b}");

    // Delivery states reach every instance: a wake recorded through B shows on A, beside the
    // acknowledgement made through A, with the same times as on B.
    let wake = json!({"target": "t", "reader": "codex", "ids": [id], "via": "a test"}).to_string();
    let reply = request(b.addr, "POST", "/api/wakes", &JSON, Some(wake.as_bytes()));
    assert_eq!(reply.status, 201, "{}", reply.text());
    let codex_on = |addr: SocketAddr| {
        let delivery = request(addr, "GET", &format!("/api/messages/{id}/delivery"), &[], None).json();
        delivery["readers"]["codex"].clone()
    };
    let started = Instant::now();
    while !codex_on(a.addr)["woken"].is_f64() {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "A shows the wake within 1 s: {}",
            codex_on(a.addr)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("a wake recorded through B showed on A after {:?}", started.elapsed());
    let (on_a, on_b) = (codex_on(a.addr), codex_on(b.addr));
    assert!(on_a["acknowledged"].is_f64(), "{on_a}");
    assert_eq!(
        (&on_a["woken"], &on_a["acknowledged"]),
        (&on_b["woken"], &on_b["acknowledged"]),
        "{on_a} {on_b}"
    );

    // Each instance keeps its own search index, fed from the stream: A finds what B took.
    let deadline = Instant::now() + Duration::from_secs(10);
    let found = loop {
        let found = request(a.addr, "GET", "/api/search?q=through", &[], None).json();
        if found["total"] == 1 || Instant::now() > deadline {
            break found;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(found["hits"][0]["id"], id, "{found}");

    // A redaction through A shows on B as a tombstone within 1 s, and B's search drops it.
    let reply =
        request(a.addr, "DELETE", &format!("/api/messages/{id}"), &JSON, Some(br#"{"reason":"test"}"#));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let text_on_b = || {
        let page = request(b.addr, "GET", "/api/messages?target=t", &[], None).json();
        let message = page["messages"].as_array().unwrap().iter().find(|m| m["id"] == id).cloned();
        message.map(|m| m["text"].clone()).unwrap_or_default()
    };
    let started = Instant::now();
    while text_on_b() != "redacted by anonymous: test" {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "B shows the tombstone within 1 s: {}",
            text_on_b()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("a redaction through A showed on B after {:?}", started.elapsed());
    let found = request(b.addr, "GET", "/api/search?q=through", &[], None).json();
    assert_eq!(found["hits"], json!([]), "{found}");

    // The message's record leaves the stream's files on every server at once, and the
    // replicas' raft logs at JetStream's next snapshot of the stream (every 2 minutes at most).
    let started = Instant::now();
    let in_files = |within: Duration, raft_logs: bool| loop {
        let holding: Vec<String> = crate::files::files_holding(cluster.dir(), b"through B")
            .into_iter()
            .filter(|f| raft_logs || !f.contains("/_js_/"))
            .collect();
        if holding.is_empty() || started.elapsed() > within {
            break holding;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        in_files(Duration::from_secs(10), false),
        Vec::<String>::new(),
        "the streams' files hold the text"
    );
    eprintln!("the redacted text left the streams' files after {:?}", started.elapsed());
    // An instance started after that serves the tombstone, made from the redaction.
    let work_c = tempfile::tempdir().unwrap();
    let c = start_relay(work_c.path(), &nats_env(&cluster.urls[2]));
    caught_up(c.addr, last);
    let (on_a, on_c) =
        (request(a.addr, "GET", "/api/export", &[], None), request(c.addr, "GET", "/api/export", &[], None));
    assert!(on_c.text().contains("redacted by anonymous: test"), "{}", on_c.text());
    assert_eq!(on_a.body, on_c.body, "an instance started after the erasure exports the same");
    assert_eq!(in_files(Duration::from_secs(180), true), Vec::<String>::new(), "the raft logs hold the text");
    eprintln!("the redacted text left the raft logs after {:?}", started.elapsed());
}

#[test]
fn nats_mode_without_servers_stops_and_with_none_reachable_serves_and_keeps_trying() {
    let work = tempfile::tempdir().unwrap();
    let out = relay_command(work.path(), &["--port", "0"], &[("CLAUDE_CODEX_LOG_BACKEND", "nats")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("nats_url"), "{stderr}");
    // Nothing listens there: the instance serves, says what it waits for, and refuses posts at once.
    let port = free_port();
    let nowhere = format!("nats://127.0.0.1:{port}");
    let env = [nats_env(&nowhere).as_slice(), &[("CLAUDE_CODEX_NATS_REPLICAS", "1")]].concat();
    let relay = helpers::start_relay(work.path(), &env);
    assert_eq!(request(relay.addr, "GET", "/healthz", &[], None).status, 200);
    let not_ready = request(relay.addr, "GET", "/readyz", &[], None);
    not_ready.assert_error(503, &format!("cannot connect to nats_url {nowhere}"));
    // The health check's command says the same and exits 1.
    let url = format!("http://{}", relay.addr);
    let probe = relay_command(work.path(), &["ready", "--url", &url], &[]).output().unwrap();
    let said = String::from_utf8_lossy(&probe.stderr);
    assert!(probe.status.code() == Some(1) && said.contains("cannot connect to nats_url"), "{said}");
    let body = json!({"target": "t", "sender": "tester", "text": "nowhere"}).to_string();
    let started = Instant::now();
    let refused = request(relay.addr, "POST", "/api/messages", &JSON, Some(body.as_bytes()));
    refused.assert_error(503, "not reachable");
    assert!(started.elapsed() < Duration::from_secs(1), "refused at once: {:?}", started.elapsed());
    let page = request(relay.addr, "GET", "/api/messages?target=t", &[], None).json();
    assert_eq!(page["stale"], true, "{page}");
    // A server comes up where the setting points: the instance reaches it without a restart.
    let _server = Cluster::standalone_on(port, "");
    let took = ready_within(relay.addr, Duration::from_secs(10));
    eprintln!("ready {took:?} after the server started");
    let probe = relay_command(work.path(), &["ready", "--url", &url], &[]).output().unwrap();
    assert!(probe.status.success() && probe.stdout == b"ready\n", "{probe:?}");
    post(relay.addr, "t", "reached");
    let page = request(relay.addr, "GET", "/api/messages?target=t", &[], None).json();
    assert_eq!(page.get("stale"), None, "{page}");
}

/// An instance restarted while every server is down serves its views, marked stale, refuses
/// posts at once, and once the cluster is back catches up with what another instance took
/// meanwhile, without a restart.
#[test]
fn an_instance_serves_its_views_while_the_cluster_is_down_and_catches_up_when_it_is_back() {
    let mut cluster = Cluster::start();
    let all = cluster.urls.join(",");
    let (work_a, work_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start_relay(work_a.path(), &nats_env(&all));
    let b = start_relay(work_b.path(), &nats_env(&all));
    // 64 messages seal a block (kept in A's views); the rest stay open (read back from the log).
    for i in 0..70 {
        post(a.addr, "t", &format!("before {i}"));
    }
    let mut a = a;
    std::process::Command::new("kill").args(["-TERM", &a.child.id().to_string()]).status().unwrap();
    assert_eq!(a.child.wait().unwrap().code(), Some(0));
    let mut last = 0;
    for i in 0..5 {
        last = post(b.addr, "t", &format!("while A was away {i}"));
    }
    drop(b);
    for node in 0..3 {
        cluster.kill(node);
    }

    let a = helpers::start_relay(work_a.path(), &nats_env(&all));
    assert_eq!(request(a.addr, "GET", "/healthz", &[], None).status, 200);
    request(a.addr, "GET", "/readyz", &[], None).assert_error(503, "not reachable");
    let page = request(a.addr, "GET", "/api/messages?target=t&limit=500", &[], None);
    assert_eq!(page.status, 200, "{}", page.text());
    let page = page.json();
    assert_eq!(page["stale"], true, "{page}");
    let ids: Vec<u64> =
        page["messages"].as_array().unwrap().iter().map(|m| m["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (1..=64).collect::<Vec<_>>(), "the sealed block, from the local views");
    let fetched = tool(a.addr, "fetch_messages", json!({"target": "t", "since_id": 60}));
    assert_eq!(fetched["structuredContent"]["stale"], true, "{fetched}");
    let body = json!({"target": "t", "sender": "tester", "text": "down"}).to_string();
    let started = Instant::now();
    request(a.addr, "POST", "/api/messages", &JSON, Some(body.as_bytes())).assert_error(503, "not reachable");
    assert!(started.elapsed() < Duration::from_secs(1), "refused at once: {:?}", started.elapsed());
    // An export reads the stream itself, and waits for the views (and the principals they know).
    request(a.addr, "GET", "/api/export", &[], None).assert_error(503, "not reachable");

    for node in 0..3 {
        cluster.restart(node);
    }
    // Up: the stream has a settled leader and takes consumers (the instance reads through one);
    // the second can lag the first by seconds after the whole cluster restarts.
    let restarted = Instant::now();
    cluster.settled_leader("E2E");
    let settled = restarted.elapsed();
    cluster.takes_consumers("E2E");
    let up = restarted.elapsed();
    let took = ready_within(a.addr, Duration::from_secs(30));
    eprintln!("cluster restarted: leader settled after {settled:?}, consumers taken after {up:?}; instance ready {took:?} later");
    if took >= Duration::from_secs(2) {
        // What the instance tried meanwhile, for whoever reads the failure.
        let log = std::fs::read_to_string(work_a.path().join("log/claude_codex.log")).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains("NATS") || l.contains("stream"))
            .for_each(|l| eprintln!("relay A: {l}"));
    }
    assert!(took < Duration::from_secs(2), "ready within 2 s of the cluster being up: {took:?}");
    // Ready means caught up: no wait here.
    let page = request(a.addr, "GET", "/api/messages?target=t&limit=500", &[], None).json();
    assert_eq!(page.get("stale"), None, "{page}");
    assert_eq!(page["messages"].as_array().unwrap().len(), 75, "{page}");
    let fetched = tool(a.addr, "fetch_messages", json!({"target": "t", "since_id": 70}));
    assert_eq!(fetched["structuredContent"].get("stale"), None, "{fetched}");
    assert_eq!(fetched["structuredContent"]["messages"][4]["id"], last, "{fetched}");
    post(a.addr, "t", "after");
}

/// The instance names one server only, which is down while the instance starts: it comes up.
#[test]
fn an_instance_whose_only_server_restarts_with_it_comes_up() {
    let mut cluster = Cluster::start();
    let work = tempfile::tempdir().unwrap();
    let relay = start_relay(work.path(), &nats_env(&cluster.urls[0]));
    post(relay.addr, "t", "first");
    drop(relay);
    cluster.kill(0);
    let relay = helpers::start_relay(work.path(), &nats_env(&cluster.urls[0]));
    std::thread::sleep(Duration::from_millis(500));
    cluster.restart(0);
    ready_within(relay.addr, Duration::from_secs(30));
    post(relay.addr, "t", "second");
    // The servers the cluster advertised are known now: without the named one, posts go on.
    cluster.kill(0);
    post(relay.addr, "t", "third");
}

/// Credentials the servers refuse are a configuration error: start-up stops at once, naming it.
#[test]
fn wrong_nats_credentials_stop_start_up_at_once() {
    let server = Cluster::standalone_on(free_port(), "authorization { token: right-token }");
    let work = tempfile::tempdir().unwrap();
    let env = [nats_env(&server.urls[0]).as_slice(), &[("CLAUDE_CODEX_NATS_TOKEN", "wrong-token")]].concat();
    let started = Instant::now();
    let out = relay_command(work.path(), &["--port", "0", "--data-dir", "data"], &env).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("authorization violation"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(5), "at once: {:?}", started.elapsed());
}

/// A new cluster and two instances started at the same moment, again and again
/// (`RELAY_NATS_FRESH_STARTS`, 20 by default): every instance becomes ready, none exits.
#[test]
fn a_fresh_cluster_and_instances_started_together_all_come_up() {
    let starts = std::env::var("RELAY_NATS_FRESH_STARTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let (mut slowest, mut unformed) = (Duration::ZERO, 0);
    'starts: for start in 0..starts {
        let cluster = Cluster::start_unwaited();
        let works = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let mut relays: Vec<RelayProcess> =
            (0..2).map(|i| helpers::start_relay(works[i].path(), &nats_env(&cluster.urls[i]))).collect();
        for (i, relay) in relays.iter_mut().enumerate() {
            match ready_in(relay.addr, Duration::from_secs(60)) {
                Ok(took) => slowest = slowest.max(took),
                // The harness's cluster, not the relay: its node never joined a JetStream cluster.
                Err(why) if !cluster.node_answers_jetstream(i, Duration::from_secs(5)) => {
                    eprintln!(
                        "start {start}: node {i} itself answers no JetStream; not counted ({why})\n{}",
                        cluster.logs()
                    );
                    unformed += 1;
                    continue 'starts;
                }
                Err(why) => panic!("start {start}: {why}"),
            }
            assert!(relay.child.try_wait().unwrap().is_none(), "start {start}: an instance exited");
        }
        post(relays[0].addr, "t", &format!("start {start}"));
    }
    eprintln!(
        "fresh starts: {starts} ({unformed} clusters never formed), all others ready, slowest {slowest:?}"
    );
    assert!(unformed * 10 <= starts, "{unformed} of {starts} test clusters never formed");
}

/// A server with the default max_payload (1 MB) takes less than the default max_text_bytes: the
/// instance starts and refuses a text over what the servers take, naming why. A max_text_bytes
/// other than the default, set on purpose, is refused at start.
#[test]
fn a_default_max_payload_caps_posts_unless_max_text_bytes_was_set() {
    let server = Cluster::standalone();
    let work = tempfile::tempdir().unwrap();
    let env = [nats_env(&server.urls[0]).as_slice(), &[("CLAUDE_CODEX_NATS_REPLICAS", "1")]].concat();
    let relay = start_relay(work.path(), &env);
    let big = "x".repeat(1 << 20);
    let body = json!({"target": "t", "sender": "tester", "text": big}).to_string();
    let refused = request(relay.addr, "POST", "/api/messages", &JSON, Some(body.as_bytes()));
    refused.assert_error(400, "max_payload");
    let fits = json!({"target": "t", "sender": "tester", "text": "y".repeat(900_000)}).to_string();
    assert_eq!(request(relay.addr, "POST", "/api/messages", &JSON, Some(fits.as_bytes())).status, 201);
    drop(relay);
    let asked = [env.as_slice(), &[("CLAUDE_CODEX_MAX_TEXT_BYTES", "2097152")]].concat();
    let out = relay_command(work.path(), &["--port", "0", "--data-dir", "data"], &asked).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("max_payload"), "{stderr}");
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
    // The first post is sent and goes unacknowledged within the bound; once the outage has
    // lasted past the fail-fast delay, the next is refused at once without being sent.
    let body = json!({"target": "t", "sender": "tester", "text": "without"}).to_string();
    let started = Instant::now();
    let first = request(relay.addr, "POST", "/api/messages", &JSON, Some(body.as_bytes()));
    first.assert_error(503, "not acknowledged");
    assert!(started.elapsed() < Duration::from_secs(12), "within the bound: {:?}", started.elapsed());
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

    // A file whose ids have gaps keeps them in a stream: the gaps' sequences are taken by
    // records erased at once.
    let gappy = work.path().join("gappy.jsonl");
    let lines: Vec<&str> = std::str::from_utf8(&export.stdout).unwrap().lines().collect();
    let kept = format!("{}\n{}\n", lines[0], lines[2]);
    std::fs::write(&gappy, &kept).unwrap();
    let mut other = nats_env(&cluster.urls[1]);
    other[2] = ("CLAUDE_CODEX_NATS_STREAM", "OTHER");
    let imported = relay_command(work.path(), &["import", "gappy.jsonl"], &other).output().unwrap();
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    let from_command = relay_command(work.path(), &["export"], &other).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&from_command.stdout), kept, "the same ids, the gap's left out");
}

/// Kill cycles in CI; `RELAY_NATS_KILL_CYCLES` asks for more.
const DEFAULT_NATS_KILL_CYCLES: usize = 4;

/// Eight writers post through two instances over REST and MCP while each cycle kills (SIGKILL)
/// the stream's leader node or one instance, then starts it again. After each cycle both
/// instances hold every acknowledged post exactly once, under its id. The check is the sled
/// crash test's, which `the_crash_check_detects_posts_acknowledged_before_the_flush` shows
/// failing on lost posts.
#[test]
fn acknowledged_posts_survive_killing_the_streams_leader_or_an_instance() {
    let cycles = std::env::var("RELAY_NATS_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_NATS_KILL_CYCLES);
    let mut cluster = Cluster::start();
    // Each instance knows every server, so it reconnects elsewhere when its own is killed.
    let servers = |first: usize| {
        let mut urls = cluster.urls.clone();
        urls.rotate_left(first);
        urls.join(",")
    };
    let servers = [servers(0), servers(1)];
    let works = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let start = |i: usize| start_relay(works[i].path(), &nats_env(&servers[i]));
    let mut relays: [RelayProcess; 2] = [start(0), start(1)];
    // Both replicas of the new stream are current before the first writer posts.
    cluster.settled_leader("E2E");
    let acked: Acked = Arc::default();
    let mut rng = fastrand::Rng::new();
    let mut checked_to = 0;
    let (mut leader_kills, mut instance_kills) = (0, 0);
    for cycle in 0..cycles {
        let highest = acked.lock().unwrap().keys().last().copied().unwrap_or(0);
        let stop = Arc::new(AtomicBool::new(false));
        let writers = start_writers(&[relays[0].addr, relays[1].addr], cycle, &acked, &stop);
        let started = Instant::now();
        while acked.lock().unwrap().range(highest + 1..).next().is_none() {
            assert!(started.elapsed() < Duration::from_secs(10), "cycle {cycle}: no post acknowledged");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(100 + rng.u64(..400)));
        let victim = rng.usize(..3);
        if victim == 2 {
            let leader = cluster.settled_leader("E2E");
            cluster.kill(leader);
            // Posts stall while the others elect a leader, then go on.
            std::thread::sleep(Duration::from_secs(3));
            stop.store(true, Ordering::Relaxed);
            writers.into_iter().for_each(|w| w.join().unwrap());
            cluster.restart(leader);
            leader_kills += 1;
        } else {
            relays[victim].child.kill().unwrap();
            relays[victim].child.wait().unwrap();
            std::thread::sleep(Duration::from_millis(300));
            stop.store(true, Ordering::Relaxed);
            writers.into_iter().for_each(|w| w.join().unwrap());
            relays[victim] = start(victim);
            instance_kills += 1;
        }
        cluster.settled_leader("E2E");
        let last = acked.lock().unwrap().keys().last().copied().unwrap_or(0);
        assert!(last > highest, "cycle {cycle}: posts were acknowledged");
        for relay in &relays {
            caught_up(relay.addr, last);
            let lost = lost_messages_after(relay.addr, &acked, checked_to);
            assert!(lost.is_empty(), "cycle {cycle}: {} lost or changed {lost:?}", relay.addr);
        }
        checked_to = highest;
    }
    for relay in &relays {
        assert_eq!(lost_messages_after(relay.addr, &acked, 0), Vec::<u64>::new());
    }
    let exports = relays.each_ref().map(|r| request(r.addr, "GET", "/api/export", &[], None).body);
    assert_eq!(exports[0], exports[1], "both instances export the same lines");
    eprintln!(
        "nats kill cycles: {cycles} ({leader_kills} of the stream's leader, {instance_kills} of an instance), \
         acknowledged posts: {}, lost: 0",
        acked.lock().unwrap().len()
    );
}

/// SIGSTOP stands in for a partition. A stopped leader is replaced: a post through an instance
/// on another node is stored once, within the bound, and the old leader's return forks nothing.
/// With two of three nodes stopped no post is acknowledged, the 503 comes within the bound,
/// reads go on, and a post refused as "not acknowledged" is stored at most once afterwards.
#[test]
fn a_stopped_leader_is_replaced_and_two_stopped_nodes_acknowledge_nothing() {
    let cluster = Cluster::start();
    let work = tempfile::tempdir().unwrap();
    // The stream is made through node 0; the instance under test then runs on a node that does
    // not lead it, so the stop cuts off the leader and not the instance's own server.
    let first = start_relay(work.path(), &nats_env(&cluster.urls[0]));
    post(first.addr, "p", "before");
    drop(first);
    let leader = cluster.settled_leader("E2E");
    let home = (leader + 1) % 3;
    let relay = start_relay(work.path(), &nats_env(&cluster.urls[home]));
    let body = |text: &str| json!({"target": "p", "sender": "tester", "text": text}).to_string();
    let send = |text: &str| {
        let started = Instant::now();
        let reply = request(relay.addr, "POST", "/api/messages", &JSON, Some(body(text).as_bytes()));
        (reply, started.elapsed())
    };

    cluster.signal(leader, "STOP");
    let (reply, took) = send("while the leader is stopped");
    assert_eq!(reply.status, 201, "a new leader takes it: {}", reply.text());
    eprintln!("a post while the leader was stopped: 201 after {took:?}");
    assert!(took < Duration::from_secs(12), "within the bound: {took:?}");
    cluster.signal(leader, "CONT");
    cluster.settled_leader("E2E");
    post(relay.addr, "p", "after the old leader came back");

    let others = [(home + 1) % 3, (home + 2) % 3];
    others.iter().for_each(|&n| cluster.signal(n, "STOP"));
    let (reply, took) = send("without a quorum");
    reply.assert_error(503, "not acknowledged");
    assert!(took < Duration::from_secs(12), "within the bound: {took:?}");
    let page = request(relay.addr, "GET", "/api/messages?target=p", &[], None);
    assert_eq!(page.status, 200, "reads go on: {}", page.text());
    others.iter().for_each(|&n| cluster.signal(n, "CONT"));
    cluster.settled_leader("E2E");
    // Posts refused at once after a failed one until the instance sees the stream back.
    let deadline = Instant::now() + Duration::from_secs(30);
    while request(relay.addr, "GET", "/readyz", &[], None).status != 200 {
        assert!(Instant::now() < deadline, "not ready again within 30 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    post(relay.addr, "p", "last");

    let texts: Vec<String> = crate::helpers::all_messages(relay.addr, "p")
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .filter(|t| t != "without a quorum")
        .collect();
    assert_eq!(texts, ["before", "while the leader is stopped", "after the old leader came back", "last"]);
    let unacknowledged = crate::helpers::all_messages(relay.addr, "p")
        .iter()
        .filter(|m| m["text"] == "without a quorum")
        .count();
    assert!(unacknowledged <= 1, "stored {unacknowledged} times");
    eprintln!(
        "the post refused without a quorum was stored {unacknowledged} time(s) once the nodes came back"
    );
}

/// The real MCP clients (the Python and TypeScript SDKs) and the browser checks, unchanged,
/// against instances in nats mode.
#[test]
fn mcp_sdk_clients_and_the_browser_work_in_nats_mode() {
    let cluster = Cluster::start();
    let work = tempfile::tempdir().unwrap();
    let relay = start_relay(work.path(), &nats_env(&cluster.urls[0]));
    crate::mcp::python_sdk_checks(relay.addr);
    crate::mcp::typescript_sdk_checks(relay.addr);
    drop(relay);
    // The browser checks count what they see: a stream of their own.
    let servers = cluster.urls.join(",");
    let mut env = nats_env(&servers);
    env[2] = ("CLAUDE_CODEX_NATS_STREAM", "UI");
    crate::ui::browser_checks(&env, "ui-screenshots-nats");
}

/// `check` and `rebuild` of a stopped instance, through the binary: the stream against the
/// instance's views.
#[test]
fn check_and_rebuild_compare_and_rebuild_an_instances_views_from_the_stream() {
    let cluster = Cluster::start();
    let (work, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let env = nats_env(&cluster.urls[0]);
    let relay = start_relay(work.path(), &env);
    for i in 0..3 {
        post(relay.addr, "c", &format!("message {i}"));
    }
    drop(relay);
    let run = |args: &[&str]| {
        let out = relay_command(work.path(), args, &env).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, said) = run(&["check", "--data-dir", "data"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("3 events, log and views sound"), "{said}");
    // The stream is made again with other messages, while the instance is stopped.
    let urls = cluster.urls.clone();
    tokio::runtime::Runtime::new().unwrap().block_on(async move {
        let js = async_nats::jetstream::new(async_nats::connect(urls.as_slice()).await.unwrap());
        js.delete_stream("E2E").await.unwrap();
    });
    let elsewhere = start_relay(other.path(), &env);
    for i in 0..4 {
        post(elsewhere.addr, "c", &format!("new {i}"));
    }
    let (code, said) = run(&["check", "--data-dir", "data"]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("the channel views were built from the NATS stream E2E created"), "{said}");
    // (Its open messages are read back from whichever stream is there: the origin is what tells.)
    assert!(said.contains("4 events, 1 problem"), "{said}");
    let (code, said) = run(&["rebuild", "--data-dir", "data"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("from 4 events"), "{said}");
    let (code, said) = run(&["check", "--data-dir", "data"]);
    assert_eq!(code, Some(0), "{said}");
    // The rebuilt instance serves what the stream holds, as the other instance does.
    let relay = start_relay(work.path(), &env);
    let path = "/api/messages?target=c";
    assert_eq!(
        request(relay.addr, "GET", path, &[], None).body,
        request(elsewhere.addr, "GET", path, &[], None).body
    );
    let archive = std::fs::read_to_string(work.path().join("log/channel_messages.log")).unwrap();
    assert!(archive.contains("new 3") && !archive.contains("message 0"), "the archive rewritten: {archive}");
}

/// The command-line clients: `watch` on one instance shows what `post` sends through the other.
#[test]
fn watch_on_one_instance_shows_what_post_sends_through_the_other() {
    let cluster = Cluster::start();
    let (work_a, work_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start_relay(work_a.path(), &nats_env(&cluster.urls[0]));
    let b = start_relay(work_b.path(), &nats_env(&cluster.urls[1]));
    let (mut watch, lines) = crate::watch::start_watch(work_a.path(), a.addr.port(), &[]);
    std::thread::sleep(Duration::from_millis(500));
    crate::watch::post(work_b.path(), b.addr.port(), "claude", "through B");
    crate::watch::post(work_b.path(), b.addr.port(), "codex", "again");
    assert_eq!(crate::watch::next_line(&lines), "#1 [claude -> rv] through B");
    assert_eq!(crate::watch::next_line(&lines), "#2 [codex -> rv] again");
    let _ = watch.kill();
    let _ = watch.wait();
}

/// Principals live in the stream: a principal added through one instance speaks through the
/// other, and a revoke through one is refused by the other within 1 s.
#[test]
fn a_revoke_through_one_instance_is_refused_by_the_other_within_a_second() {
    let cluster = Cluster::start();
    let works = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let a = start_relay(works[0].path(), &nats_env(&cluster.urls[0]));
    let b = start_relay(works[1].path(), &nats_env(&cluster.urls[1]));
    let as_ = |credential: &str, addr: SocketAddr, method: &str, path: &str, body: Option<Value>| {
        let bearer = format!("Bearer {credential}");
        let mut headers = vec![JSON[0]];
        if !credential.is_empty() {
            headers.push(("Authorization", bearer.as_str()));
        }
        request(addr, method, path, &headers, body.map(|b| b.to_string()).as_deref().map(str::as_bytes))
    };
    // On a relay with no principals yet, whoever reaches it adds the first (an open relay).
    let added = as_("", a.addr, "POST", "/api/principals", Some(json!({"name": "root", "role": "admin"})));
    assert_eq!(added.status, 201, "{}", added.text());
    let root = added.json()["credential"].as_str().unwrap().to_owned();
    let added = as_(&root, a.addr, "POST", "/api/principals", Some(json!({"name": "codex"})));
    let codex = added.json()["credential"].as_str().unwrap().to_owned();
    let on_b = |credential: &str| as_(credential, b.addr, "GET", "/api/channels", None).status;
    let deadline = Instant::now() + Duration::from_secs(10);
    while on_b(&codex) != 200 {
        assert!(Instant::now() < deadline, "instance B learns of codex");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(on_b(""), 401, "B needs credentials too now");
    let posted = as_(&codex, b.addr, "POST", "/api/messages", Some(json!({"target": "t", "text": "via b"})));
    assert_eq!(posted.json()["message"]["sender"], "codex", "{}", posted.text());

    let revoked = as_(&root, a.addr, "DELETE", "/api/credentials/codex", None);
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    let started = Instant::now();
    while on_b(&codex) != 401 {
        assert!(started.elapsed() < Duration::from_secs(1), "B refuses the revoked credential within 1 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("revoked on A, refused on B after {:?}", started.elapsed());

    // The stream holds them: an instance killed (-9) and started on a new data dir knows them all.
    drop(b);
    let fresh = tempfile::tempdir().unwrap();
    let c = start_relay(fresh.path(), &nats_env(&cluster.urls[2]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while as_(&root, c.addr, "GET", "/api/principals", None).status != 200 {
        assert!(Instant::now() < deadline, "a new instance learns the principals from the stream");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(as_(&codex, c.addr, "GET", "/api/channels", None).status, 401, "still revoked");
}

/// Retention in nats mode: the expired messages' records leave the stream (its files; the raft
/// logs at the next snapshot), reads say they expired, `check` stays sound, and an instance
/// started afterwards serves the same kept history.
#[test]
fn retention_erases_expired_records_from_the_stream() {
    let cluster = Cluster::start();
    let (work, later) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut env = nats_env(&cluster.urls[0]).to_vec();
    env.push(("CLAUDE_CODEX_RETENTION", r#"{"short": {"messages": 5}}"#));
    let relay = start_relay(work.path(), &env);
    for i in 0..30 {
        post(relay.addr, "short", &format!("short-lived {i:02}"));
    }
    let last = post(relay.addr, "long", "kept for good");
    let data = work.path().join("data");
    assert!(
        data.join("db").is_dir() && !data.join("message-keys").exists(),
        "a log in NATS has no message keys"
    );
    let page =
        |addr: SocketAddr| request(addr, "GET", "/api/messages?target=short&since_id=0", &[], None).json();
    let started = Instant::now();
    let in_files = |text: &str| {
        let holding = crate::files::files_holding(cluster.dir(), text.as_bytes());
        holding.into_iter().filter(|f| !f.contains("/_js_/")).collect::<Vec<_>>()
    };
    while !in_files("short-lived 00").is_empty() || !in_files("short-lived 24").is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "expired records stay: {:?}",
            in_files("short-lived 00")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("expired records left the streams' files after {:?}", started.elapsed());
    assert!(!in_files("short-lived 25").is_empty(), "a kept message's record stays");
    let kept = page(relay.addr);
    let texts: Vec<&str> =
        kept["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(
        texts,
        ["short-lived 25", "short-lived 26", "short-lived 27", "short-lived 28", "short-lived 29"]
    );
    assert_eq!(kept["expired_before"], 26, "{kept}");
    drop(relay);
    let out = relay_command(work.path(), &["check", "--data-dir", "data"], &env).output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh = start_relay(later.path(), &env);
    caught_up(fresh.addr, last);
    assert_eq!(page(fresh.addr), kept, "an instance started after the erasure serves the same");
}
