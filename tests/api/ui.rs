//! The web UI over HTTP: pages, security headers, the event stream and "Load older" as raw
//! requests, then the whole page in a real browser (the system chromium driven by playwright-core,
//! installed by scripts/test).

use crate::helpers::{request, spawn_app, start_relay, start_relay_on, Reply, TestApp};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn assert_page_headers(reply: &Reply) {
    let csp = reply.header("content-security-policy").expect("CSP header");
    for part in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(reply.header("x-frame-options"), Some("DENY"));
    assert!(reply.header("content-type").unwrap().starts_with("text/html"));
}

#[test]
fn pages_render_with_strict_headers() {
    let app = spawn_app();
    app.post("proj x/1", "claude", "**hello** <b>there</b>");
    let index = app.get("/");
    assert_eq!(index.status, 200);
    assert_page_headers(&index);
    assert!(index.text().contains(r#"href="/c/proj%20x%2F1""#), "{}", index.text());
    assert!(index.text().contains(&format!("http://{}/mcp", app.addr)));

    let page = app.get("/c/proj%20x%2F1");
    assert_eq!(page.status, 200);
    assert_page_headers(&page);
    let html = page.text();
    assert!(html.contains("<strong>hello</strong> &lt;b&gt;there&lt;/b&gt;"), "{html}");
    assert!(html.contains(r#"data-channel="proj x/1""#));
    assert!(html.contains(r#"id="m-1""#));

    assert_page_headers(&app.get("/docs"));
    let empty = app.get("/c/nothing-here");
    assert_eq!(empty.status, 200);
    assert!(empty.text().contains("No messages in nothing-here yet"));
}

#[test]
fn bad_channel_names_get_a_plain_error_page() {
    let app = spawn_app();
    for (path, needle) in [("/c/%FF", "percent-encoded UTF-8"), ("/c/a%0Ab", "control")] {
        let reply = app.get(path);
        assert_eq!(reply.status, 400, "{path}");
        assert_page_headers(&reply);
        assert!(reply.text().contains(needle), "{path}: {}", reply.text());
    }
    let long = format!("/c/{}", "x".repeat(129));
    assert_eq!(app.get(&long).status, 400);
}

#[test]
fn static_files_are_served_with_their_types() {
    let app = spawn_app();
    for (file, kind) in
        [("relay.css", "text/css"), ("relay.js", "text/javascript"), ("theme.js", "text/javascript")]
    {
        let reply = app.get(&format!("/static/{file}"));
        assert_eq!(reply.status, 200, "{file}");
        assert!(reply.header("content-type").unwrap().starts_with(kind), "{file}");
        assert!(reply.body.len() > 100, "{file}");
    }
    app.get("/static/nope.js").assert_error(404, "no such route");
}

#[test]
fn load_older_pages_back_to_the_start() {
    let app = spawn_app();
    for i in 1..=250 {
        app.post("long", "codex", &format!("message {i}"));
    }
    let page = app.get("/c/long").text();
    assert_eq!(page.matches(r#"<li class="msg""#).count(), 100);
    assert!(page.contains(r#"data-first-id="151""#) && page.contains("Load older"));

    let older = app.get("/c/long/older?before=151").json();
    assert_eq!(older["more"], true);
    assert_eq!(older["first_id"], 51);
    let html = older["html"].as_str().unwrap();
    assert_eq!(html.matches(r#"<li class="msg""#).count(), 100);
    assert!(
        html.contains(r#"id="m-51""#) && html.contains(r#"id="m-150""#) && !html.contains(r#"id="m-151""#)
    );

    let last = app.get("/c/long/older?before=51").json();
    assert_eq!(last["more"], false);
    assert_eq!(last["html"].as_str().unwrap().matches(r#"<li class="msg""#).count(), 50);
    assert_eq!(app.get("/c/long/older?before=1").json()["html"], "");
    app.get("/c/long/older").assert_error(400, "before: is required");
    app.get("/c/long/older?before=x").assert_error(400, "not a message id");
}

#[test]
fn the_post_form_goes_through_the_origin_guard() {
    let app = spawn_app();
    let body = json!({"target": "t", "sender": "web-ui", "text": "from the page"}).to_string();
    let own = format!("http://{}", app.addr);
    let reply = post_ui(&app, &body, &[("Origin", &own)]);
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(reply.json()["message"]["source"], "ui");
    let foreign = post_ui(&app, &body, &[("Origin", "https://evil.example")]);
    foreign.assert_error(403, "may not write");
    assert_eq!(app.message_count(), 1);
}

fn post_ui(app: &TestApp, body: &str, extra: &[(&str, &str)]) -> Reply {
    let mut headers = vec![("Content-Type", "application/json")];
    headers.extend_from_slice(extra);
    request(app.addr, "POST", "/ui/messages", &headers, Some(body.as_bytes()))
}

/// Reads server-sent events from a raw connection: (id, data) pairs.
struct EventStream {
    reader: BufReader<TcpStream>,
}

impl EventStream {
    fn open(addr: SocketAddr, path: &str, last_event_id: Option<u64>) -> EventStream {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let resume = last_event_id.map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n{resume}\r\n")
            .unwrap();
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        assert!(status.contains(" 200 "), "{status}");
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
        }
        EventStream { reader }
    }

    /// The next `channels` event's list, as (name, count) pairs.
    fn next_channels(&mut self) -> Vec<(String, u64)> {
        let mut named = false;
        loop {
            let mut line = String::new();
            assert!(self.reader.read_line(&mut line).unwrap() > 0, "stream ended");
            let line = line.trim_end();
            if line == "event:channels" {
                named = true;
            } else if let (true, Some(v)) = (named, line.strip_prefix("data:")) {
                let data: Value = serde_json::from_str(v).unwrap();
                let list = data["channels"].as_array().unwrap().iter();
                return list
                    .map(|c| (c["name"].as_str().unwrap().to_owned(), c["count"].as_u64().unwrap()))
                    .collect();
            }
        }
    }

    /// The next event with an id (the message events), skipping chunk sizes and comments.
    fn next_message(&mut self) -> (u64, Value) {
        let (mut id, mut data) = (None, None);
        loop {
            let mut line = String::new();
            assert!(self.reader.read_line(&mut line).unwrap() > 0, "stream ended");
            let line = line.trim_end();
            if let Some(v) = line.strip_prefix("id:") {
                id = Some(v.parse().unwrap());
            } else if let Some(v) = line.strip_prefix("data:") {
                data = Some(serde_json::from_str(v).unwrap());
            } else if line.is_empty() {
                if let (Some(id), Some(data)) = (id.take(), data.take()) {
                    return (id, data);
                }
            }
        }
    }
}

#[test]
fn the_event_stream_sends_new_messages_and_resumes_after_an_id() {
    let app = spawn_app();
    app.post("live", "claude", "one");
    app.post("other", "claude", "elsewhere");
    let mut events = EventStream::open(app.addr, "/c/live/events?after=1", None);
    let id = app.post("live", "codex", "two ```rust\nfn x() {}\n```").json()["posted"].as_u64().unwrap();
    let (event_id, data) = events.next_message();
    assert_eq!((event_id, data["id"].as_u64()), (id, Some(id)));
    let html = data["html"].as_str().unwrap();
    assert!(html.starts_with(r#"<li class="msg" id="m-3""#), "{html}");
    assert!(html.contains("codex"));

    // A reconnect with Last-Event-ID gets what came after it, even with an older ?after=.
    app.post("live", "codex", "three");
    let mut resumed = EventStream::open(app.addr, "/c/live/events?after=0", Some(id));
    assert_eq!(resumed.next_message().0, 4);
    // Without either, the stream starts at the newest message.
    let mut fresh = EventStream::open(app.addr, "/c/live/events", None);
    let five = app.post("live", "codex", "five").json()["posted"].as_u64().unwrap();
    assert_eq!(fresh.next_message().0, five);
    drop(events);

    let mut bad = TcpStream::connect(app.addr).unwrap();
    write!(bad, "GET /c/live/events?after=-1 HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", app.addr)
        .unwrap();
    let mut reply = String::new();
    bad.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
}

#[test]
fn the_channel_list_streams_counts_and_new_channels() {
    let app = spawn_app();
    app.post("b", "codex", "one");
    let mut picker = EventStream::open(app.addr, "/channels/events", None);
    let mut page = EventStream::open(app.addr, "/c/b/events", None);
    let configured = [("claude".to_owned(), 0), ("codex".to_owned(), 0), ("proj-x".to_owned(), 0)];
    let mut expected = vec![("b".to_owned(), 1)];
    expected.extend(configured.iter().cloned());
    expected.sort();
    assert_eq!(picker.next_channels(), expected, "the list now, first");
    assert_eq!(page.next_channels(), expected, "a channel page's stream carries it too");
    let metrics = app.get("/metrics").text();
    assert!(metrics.contains("\nrelay_open_event_streams 2\n"), "{metrics}");
    app.post("b", "codex", "two");
    expected[0].1 = 2;
    assert_eq!(picker.next_channels(), expected, "a count grows");
    app.post("a", "claude", "new");
    expected.insert(0, ("a".to_owned(), 1));
    assert_eq!(picker.next_channels(), expected, "a new channel appears");
    // Three quick posts reach the picker as at most a few lists, ending with every count.
    for text in ["x", "y", "z"] {
        app.post("a", "claude", text);
    }
    expected[0].1 = 4;
    let mut updates = 0;
    while picker.next_channels() != expected {
        updates += 1;
        assert!(updates < 3, "the lists are coalesced");
    }
}

#[test]
fn the_event_stream_refuses_cross_site_readers() {
    let app = spawn_app();
    let reply = request(
        app.addr,
        "GET",
        "/c/live/events",
        &[("Accept", "text/event-stream"), ("Origin", "https://evil.example")],
        None,
    );
    reply.assert_error(403, "may not");
}

/// The whole UI in the system chromium, through playwright-core (see tests/clients/ui_browser.mjs).
/// Screenshots go to `<target>/tmp/ui-screenshots/`.
#[test]
fn the_page_works_in_a_real_browser() {
    browser_checks(&[], "ui-screenshots");
}

/// Runs tests/clients/ui_browser.mjs against a relay started with `env` (restarted halfway with
/// it too); screenshots go to `<target>/tmp/<shots>/`.
pub(crate) fn browser_checks(env: &[(&str, &str)], shots: &str) {
    let node_dir = PathBuf::from(std::env::var_os("RELAY_MCP_NODE_DIR").unwrap_or_else(|| {
        panic!(
            "RELAY_MCP_NODE_DIR is not set: run the tests with scripts/test, which installs playwright-core"
        )
    }));
    let chromium = std::env::var("RELAY_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: run the tests with scripts/test, which installs chromium"
    );
    let work = tempfile::tempdir().unwrap();
    // The script's channel with a limited history.
    let env = [env, &[("CLAUDE_CODEX_RETENTION", r#"{"ui-kept": {"messages": 150}}"#)]].concat();
    let env = env.as_slice();
    let relay = start_relay(work.path(), env);
    let addr = relay.addr;
    let script = node_dir.join("ui_browser.mjs");
    std::fs::copy(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/ui_browser.mjs"), &script)
        .unwrap();
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(shots);
    let mut browser = Command::new("node")
        .arg(&script)
        .arg(format!("http://{addr}"))
        .arg(&shots)
        .env("RELAY_CHROMIUM", &chromium)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    let mut to_browser = browser.stdin.take().unwrap();
    let started = Instant::now();
    let mut output = Vec::new();
    let mut relay = Some(relay);
    for line in BufReader::new(browser.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        assert!(started.elapsed() < Duration::from_secs(180), "browser test ran too long: {output:?}");
        if line.starts_with("RESTART ") {
            // Kill the relay, start it again on the same port, and post before the page's
            // reconnect (which waits a second) so only a correct resume shows the message.
            drop(relay.take());
            let again = start_relay_on(work.path(), addr.port(), env);
            let body =
                json!({"target": "ui-test", "sender": "codex", "text": "Posted while the page was away"});
            let posted = request(
                again.addr,
                "POST",
                "/api/messages",
                &[("Content-Type", "application/json")],
                Some(body.to_string().as_bytes()),
            );
            assert_eq!(posted.status, 201, "{}", posted.text());
            writeln!(to_browser, "POSTED {}", posted.json()["posted"]).unwrap();
            relay = Some(again);
        }
        output.push(line);
    }
    let status = browser.wait().unwrap();
    let mut stderr = String::new();
    browser.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(status.success(), "browser checks failed:\n{}\n{stderr}", output.join("\n"));
    let passed = output.iter().filter(|l| l.starts_with("ok ")).count();
    assert!(passed >= 30, "only {passed} checks ran:\n{}", output.join("\n"));
    eprintln!(
        "browser: {passed} checks passed; {}",
        output.iter().find(|l| l.starts_with("live delay")).unwrap()
    );
    for shot in ["channel-light.png", "channel-dark.png", "channel-phone-dark.png", "index-light.png"] {
        assert!(shots.join(shot).metadata().is_ok_and(|m| m.len() > 10_000), "{shot} missing");
    }
}

#[test]
fn open_event_streams_do_not_hold_up_a_stop() {
    let work = tempfile::tempdir().unwrap();
    let mut relay = start_relay(work.path(), &[]);
    let mut streams: Vec<EventStream> = ["/c/live/events", "/c/live/events", "/channels/events"]
        .iter()
        .map(|path| EventStream::open(relay.addr, path, None))
        .collect();
    let started = Instant::now();
    let status = Command::new("kill").args(["-TERM", &relay.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    assert_eq!(relay.child.wait().unwrap().code(), Some(0), "exit 0 on SIGTERM");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "stopped in {took:?}, not held by the streams");
    for stream in &mut streams {
        let mut rest = String::new();
        let _ = stream.reader.read_to_string(&mut rest);
        assert!(!rest.contains("id:"), "{rest}");
    }
}
