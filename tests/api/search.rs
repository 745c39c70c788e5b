//! Full-text search: `GET /api/search`, MCP `fetch_messages` with `q`, `claude-codex-relay
//! search`, bad queries, and the index across a kill -9, `check` and `rebuild`.

use crate::helpers::{relay_command, request, spawn_app, spawn_app_with, start_relay, TestApp};
use crate::mcp::mcp;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn search(addr: SocketAddr, query: &str) -> (u16, Value) {
    let reply = request(addr, "GET", &format!("/api/search?{query}"), &[], None);
    (reply.status, reply.json())
}

fn ids(found: &Value) -> Vec<u64> {
    found["hits"].as_array().unwrap().iter().map(|h| h["id"].as_u64().unwrap()).collect()
}

/// Waits until the index has caught up: `q` finds `total` messages.
fn indexed(addr: SocketAddr, q: &str, total: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, found) = search(addr, &format!("q={q}&limit=500"));
        if status == 200 && found["total"] == total {
            return found;
        }
        assert!(Instant::now() < deadline, "the index did not reach {total} for {q}: {status} {found}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The parts of a hit's snippet its highlights name (character ranges).
fn highlighted(hit: &Value) -> Vec<String> {
    let chars: Vec<char> = hit["snippet"].as_str().unwrap().chars().collect();
    let ranges = hit["highlights"].as_array().unwrap();
    ranges
        .iter()
        .map(|r| chars[r[0].as_u64().unwrap() as usize..r[1].as_u64().unwrap() as usize].iter().collect())
        .collect()
}

fn post(app: &TestApp, target: &str, sender: &str, text: &str) -> u64 {
    app.post(target, sender, text).json()["posted"].as_u64().unwrap()
}

#[test]
fn search_finds_words_phrases_senders_channels_and_ranges() {
    let app = spawn_app();
    let packet = post(
        &app,
        "proj-x",
        "claude",
        "Review packet: change the retry policy\n```diff\n-retries = 3\n+retries = 5\n```",
    );
    let verdict =
        post(&app, "proj-x", "codex", "Verdict: the retry change looks right; policy docs need an update");
    let elsewhere = post(&app, "ops", "codex", "Deploy notes: retry the deploy <script>alert(1)</script>");
    indexed(app.addr, "retry", 3);

    let (_, found) = search(app.addr, "q=retry+policy");
    assert_eq!(ids(&found), [verdict, packet], "every word must match; newest first");
    let snippet = found["hits"][1]["snippet"].as_str().unwrap();
    assert!(snippet.starts_with("Review packet: change the retry policy"), "{snippet}");
    assert_eq!(highlighted(&found["hits"][1]), ["retry", "policy"]);
    assert_eq!(found["hits"][0]["target"], "proj-x");
    assert_eq!(found["hits"][0]["sender"], "codex");
    assert!(found["hits"][0]["ts"].as_f64().unwrap() > 1.7e9);
    let (_, found) = search(app.addr, "q=%22retry+policy%22");
    assert_eq!(ids(&found), [packet], "a phrase");
    let (_, found) = search(app.addr, "q=retry+sender:codex");
    assert_eq!(ids(&found), [elsewhere, verdict]);
    let (_, found) = search(app.addr, "q=retry+channel:ops");
    assert_eq!(ids(&found), [elsewhere]);
    let (_, found) = search(app.addr, "q=retry&target=proj-x");
    assert_eq!(ids(&found), [verdict, packet]);
    let (_, found) = search(app.addr, &format!("q=id:%5B{verdict}+TO+{elsewhere}%5D"));
    assert_eq!(ids(&found), [elsewhere, verdict], "an id range");
    let (_, found) = search(app.addr, "q=retry&limit=1");
    assert_eq!((ids(&found), found["total"].as_u64()), (vec![elsewhere], Some(3)));
    let (_, found) = search(app.addr, "q=deploy+OR+policy&order=relevance");
    assert_eq!(ids(&found)[0], elsewhere, "deploy twice: the best match first");
    // The API gives the text as it is, the matches beside it; the UI's results page escapes it.
    let (_, found) = search(app.addr, "q=alert");
    let snippet = found["hits"][0]["snippet"].as_str().unwrap();
    assert!(snippet.contains("<script>alert(1)"), "{snippet}");
    assert_eq!(highlighted(&found["hits"][0]), ["alert"]);
    let page = request(app.addr, "GET", "/search?q=alert", &[], None);
    assert_eq!(page.status, 200);
    let page = page.text();
    assert!(page.contains("&lt;script&gt;<b>alert</b>(1)") && !page.contains("<script>alert"), "{page}");
    let (_, found) = search(app.addr, "q=nothing+like+this");
    assert_eq!((ids(&found), found["total"].as_u64()), (vec![], Some(0)));

    // MCP: fetch_messages with q gives the whole messages, newest first.
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "fetch_messages", "arguments": {"target": "proj-x", "q": "retry"}}});
    let result = mcp(&app, &body.to_string(), &[]).json()["result"].clone();
    let messages = result["structuredContent"]["messages"].as_array().unwrap().clone();
    assert_eq!(messages.iter().map(|m| m["id"].as_u64().unwrap()).collect::<Vec<_>>(), [verdict, packet]);
    assert!(messages[1]["text"].as_str().unwrap().contains("+retries = 5"));

    // The command line.
    let work = tempfile::tempdir().unwrap();
    let url = format!("http://{}", app.addr);
    let out =
        relay_command(work.path(), &["search", "--url", &url, "--target", "proj-x", "retry", "policy"], &[])
            .output()
            .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("#{packet} [claude -> proj-x] Review packet: change the *retry* *policy*")),
        "{stdout}"
    );
    assert!(stdout.ends_with("2 of 2 matching\n"), "{stdout}");
}

/// A phrase matches its words in place, nothing else: its pairs found apart, or its words with a
/// dropped word (over 40 characters) between them, do not; a slop allows the gap.
#[test]
fn phrases_match_their_words_in_place_only() {
    let app = spawn_app();
    let apart = post(&app, "proj-x", "claude", "retry policy here, and a policy change there");
    let whole = post(&app, "proj-x", "codex", "the retry policy change is in");
    let gap = post(&app, "ops", "claude", &format!("retry {} policy", "x".repeat(41)));
    let hyphen = post(&app, "ops", "codex", "Retry-Policy!");
    // Words whose lowercase splits ("İ" gives "i" and a combining dot) or grows past the
    // tokenizer's 40 bytes ("Ⱥ" takes 2 bytes, its lowercase 3).
    let dotted = post(&app, "ops", "claude", "İstanbul office opens");
    let grown = post(&app, "ops", "codex", &format!("Ⱥ{} x marks", "a".repeat(37)));
    indexed(app.addr, "retry", 4);
    indexed(app.addr, "marks", 1);

    let (_, found) = search(app.addr, "q=%22retry+policy+change%22");
    assert_eq!(ids(&found), [whole], "three words: both pairs, and in place");
    assert_eq!(highlighted(&found["hits"][0]), ["retry", "policy", "change"]);
    let (_, found) = search(app.addr, "q=%22retry+policy%22");
    assert_eq!(ids(&found), [hyphen, whole, apart], "the dropped word keeps its place");
    let (_, found) = search(app.addr, "q=retry-policy");
    assert_eq!(ids(&found), [hyphen, whole, apart], "words joined by a hyphen are a phrase");
    let (_, found) = search(app.addr, "q=%22retry+policy%22~1");
    assert_eq!(ids(&found), [hyphen, gap, whole, apart], "a slop of one allows the gap");
    let (_, found) = search(app.addr, "q=%22POLICY+change%22&order=relevance");
    assert_eq!(ids(&found).len(), 2, "{found}");
    let (_, found) = search(app.addr, "q=%22retry+policy%22+-change&target=ops");
    assert_eq!(ids(&found), [hyphen]);
    let (_, found) = search(app.addr, "q=%22change+policy%22");
    assert_eq!(found["total"], 0, "the words in another order: {found}");
    let encoded = |q: &str| -> String { q.bytes().map(|b| format!("%{b:02X}")).collect() };
    let (status, found) = search(app.addr, &format!("q={}", encoded("\"İstanbul office\"")));
    assert_eq!((status, ids(&found)), (200, vec![dotted]), "{found}");
    let (status, found) = search(app.addr, &format!("q={}", encoded(&format!("\"Ⱥ{} x\"", "a".repeat(37)))));
    assert_eq!((status, ids(&found)), (200, vec![grown]), "{found}");
    let (status, found) = search(app.addr, "q=pairs:x");
    assert_eq!(status, 400, "the index's own field is not one to search: {found}");
}

#[test]
fn a_bad_query_gets_400_saying_what_is_wrong_never_5xx() {
    let app = spawn_app();
    post(&app, "proj-x", "claude", "something to find");
    for (query, says) in [
        ("q=", "q: must not be empty"),
        ("target=proj-x", "q: must not be empty"),
        ("q=%28unclosed", "q: "),
        ("q=id:%5Bx+TO+y%5D", "q: "),
        ("q=find&order=sideways", "order: must be"),
        ("q=find&limit=many", "limit"),
        ("q=find&target=%20", "target"),
    ] {
        let (status, body) = search(app.addr, query);
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body["error"].as_str().unwrap().starts_with(says), "{query}: {body}");
    }
    for odd in ["%22", "%3A", "sender%3A", "AND", "*", "-", "%5B", "id:%3E", "a%5E2", "~", "%2B%2B", "%5C"] {
        let (status, body) = search(app.addr, &format!("q={odd}"));
        assert!(status == 200 || status == 400, "q={odd}: {status} {body}");
    }
    let work = tempfile::tempdir().unwrap();
    let url = format!("http://{}", app.addr);
    let out = relay_command(work.path(), &["search", "--url", &url, "(unclosed"], &[]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("(400): q: "),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// With `search: false` a search is refused with 404 naming the setting (not a 503 that says to
/// restart); the MCP tool says the same; the rest of the relay works.
#[test]
fn a_relay_with_search_turned_off_says_so() {
    let app = spawn_app_with(|config| config.search = false);
    post(&app, "proj-x", "claude", "something to find");
    let (status, body) = search(app.addr, "q=something");
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("search is turned off in this relay's settings (search: false)"),
        "{body}"
    );
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "fetch_messages", "arguments": {"target": "proj-x", "q": "something"}}});
    let result = mcp(&app, &call.to_string(), &[]).json()["result"].clone();
    assert_eq!(result["isError"], true, "{result}");
    assert!(result.to_string().contains("search is turned off"), "{result}");
    assert_eq!(crate::helpers::all_messages(app.addr, "proj-x").len(), 1);
}

/// Posts acknowledged just before a kill -9 are found once the relay is back; `check` finds the
/// index sound and `rebuild` makes it again from the log.
#[test]
fn search_finds_every_acknowledged_message_after_kill_9_and_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start_relay(dir.path(), &[]);
    let body = |i: u32| json!({"target": "proj-x", "sender": "claude", "text": format!("needle number {i}")});
    let mut acked = 0;
    for i in 0..60 {
        let body = body(i).to_string();
        let reply = request(
            relay.addr,
            "POST",
            "/api/messages",
            &[("Content-Type", "application/json")],
            Some(body.as_bytes()),
        );
        assert_eq!(reply.status, 201);
        acked += 1;
    }
    drop(relay); // SIGKILL, most likely before the index committed the last posts
    let relay = start_relay(dir.path(), &[]);
    let found = indexed(relay.addr, "needle", acked);
    assert_eq!(found["hits"].as_array().unwrap().len() as u64, acked, "each once");
    let mut relay = relay;
    relay.child.kill().unwrap();
    relay.child.wait().unwrap();

    let out = relay_command(dir.path(), &["check", "--data-dir", "data"], &[]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    std::fs::remove_dir_all(dir.path().join("data/search")).unwrap();
    let out = relay_command(dir.path(), &["rebuild", "--data-dir", "data"], &[]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = relay_command(dir.path(), &["check", "--data-dir", "data"], &[]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let relay = start_relay(dir.path(), &[]);
    indexed(relay.addr, "needle", acked);
}
