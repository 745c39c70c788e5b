//! Retention through the real binary: a channel with a message limit (set by a pattern) that
//! received 10,000 messages serves its newest 100 and says older ones expired; a channel the
//! pattern does not name keeps everything; new posts keep the limit; expired messages leave
//! search and the archive; `check` is sound across kill -9, `rebuild` and export then import; bad settings are
//! refused with the setting named.

use crate::helpers::{relay_command, start_relay};
use crate::principals::{call, tool};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

const KEEP: u64 = 100;
const ENV: [(&str, &str); 1] = [("CLAUDE_CODEX_RETENTION", r#"{"ci-*": {"messages": 100}}"#)];

fn run(work: &Path, args: &[&str]) -> String {
    let out = relay_command(work, args, &[]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn page(addr: SocketAddr, target: &str, since: u64) -> Value {
    let reply =
        call(addr, "GET", &format!("/api/messages?target={target}&since_id={since}&limit=500"), "", None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

fn ids(page: &Value) -> Vec<u64> {
    page["messages"].as_array().unwrap().iter().map(|m| m["id"].as_u64().unwrap()).collect()
}

/// Waits (up to 20 s) until `target` serves exactly `KEEP` messages from since_id 0, then
/// returns that page.
fn trimmed(addr: SocketAddr, target: &str) -> Value {
    let started = Instant::now();
    loop {
        let page = page(addr, target, 0);
        if ids(&page).len() as u64 == KEEP || started.elapsed() > Duration::from_secs(20) {
            return page;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Checks that `page` holds the newest `KEEP` of `posted` and says where history starts: the
/// channel's messages below `expired_before` expired, so it lies after the newest expired one
/// and at or before the oldest kept (other events' ids may lie between them).
fn holds_newest(page: &Value, posted: &[u64]) {
    let newest = &posted[posted.len() - KEEP as usize..];
    assert_eq!(ids(page), newest, "the newest {KEEP} messages");
    let from = page["expired_before"].as_u64().unwrap_or_else(|| panic!("no expired_before: {page}"));
    let newest_expired = posted[posted.len() - KEEP as usize - 1];
    assert!(newest_expired < from && from <= newest[0], "expired_before {from}, kept from {}", newest[0]);
}

fn search_total(addr: SocketAddr, query: &str) -> u64 {
    let reply = call(addr, "GET", &format!("/api/search?q={query}"), "", None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["total"].as_u64().unwrap()
}

#[test]
fn a_channel_keeps_its_newest_messages_and_says_older_ones_expired() {
    let work = tempfile::tempdir().unwrap();
    // 10,000 messages on ci-build and 50 on proj-x, interleaved, imported as one store.
    let mut lines = String::new();
    let (mut ci, mut proj) = (Vec::new(), Vec::new());
    for id in 1..=10_050u64 {
        let (target, list) = if id % 201 == 0 { ("proj-x", &mut proj) } else { ("ci-build", &mut ci) };
        list.push(id);
        let text = format!("build log line w{id}x");
        let line = json!({"type": "message_posted", "id": id, "ts": 1.0e9 + id as f64, "target": target,
            "sender": "ci", "text": text, "source": "cli"});
        lines += &format!("{line}\n");
    }
    assert_eq!((ci.len(), proj.len()), (10_000, 50));
    let file = work.path().join("history.jsonl");
    std::fs::write(&file, lines).unwrap();
    run(work.path(), &["import", file.to_str().unwrap(), "--data-dir", "data"]);

    let relay = start_relay(work.path(), &ENV);
    let addr = relay.addr;
    holds_newest(&trimmed(addr, "ci-build"), &ci);
    let kept = page(addr, "proj-x", 0);
    assert_eq!(ids(&kept), proj, "a channel no pattern names keeps everything");
    assert!(kept.get("expired_before").is_none(), "{kept}");
    // A read from inside the kept history says nothing of expiry; MCP says it too.
    let inside = page(addr, "ci-build", ci[ci.len() - 10]);
    assert_eq!((ids(&inside).len(), inside.get("expired_before")), (9, None));
    // The newest messages alone say nothing of expiry; the page that reaches the oldest kept does.
    let tail =
        |limit: u64| call(addr, "GET", &format!("/api/messages?target=ci-build&limit={limit}"), "", None);
    assert_eq!(tail(10).json().get("expired_before"), None, "{}", tail(10).text());
    holds_newest(&tail(KEEP + 1).json(), &ci);
    let fetched = tool(addr, "", "fetch_messages", json!({"target": "ci-build", "since_id": 5, "limit": 3}));
    let fetched = &fetched["structuredContent"];
    assert_eq!(fetched["expired_before"], json!(ci[ci.len() - KEEP as usize]), "{fetched}");
    assert_eq!(fetched["messages"][0]["id"], json!(ci[ci.len() - KEEP as usize]), "{fetched}");
    // The web UI: no "Load older" where history was cut, but a line saying so.
    let shown = call(addr, "GET", "/c/ci-build", "", None).text();
    assert!(shown.contains("Older messages expired") && !shown.contains("load-older"), "{shown}");
    assert!(!call(addr, "GET", "/c/proj-x", "", None).text().contains("Older messages expired"));
    let thread = call(addr, "GET", &format!("/c/ci-build/t/{}", ci[ci.len() - 1]), "", None).text();
    assert!(thread.contains("Thread of") && !thread.contains("Older messages expired"), "{thread}");
    let older =
        call(addr, "GET", &format!("/c/ci-build/older?before={}", ci[ci.len() - 10]), "", None).json();
    assert_eq!(
        (older["more"].clone(), older["expired_before"].clone()),
        (json!(false), json!(ci[ci.len() - KEEP as usize]))
    );
    let listed = call(addr, "GET", "/api/channels", "", None).json();
    let count = listed["details"].as_array().unwrap().iter().find(|c| c["name"] == "ci-build").unwrap()
        ["count"]
        .clone();
    assert_eq!(count, json!(KEEP), "{listed}");

    // New posts keep the limit; the expired leave search.
    for n in 0..150 {
        let body = json!({"target": "ci-build", "sender": "ci", "text": format!("live line {n}")});
        let reply = call(addr, "POST", "/api/messages", "", Some(body));
        assert_eq!(reply.status, 201, "{}", reply.text());
        ci.push(reply.json()["posted"].as_u64().unwrap());
    }
    let started = Instant::now();
    let mut now = trimmed(addr, "ci-build");
    while ids(&now)[0] != ci[ci.len() - KEEP as usize] && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
        now = trimmed(addr, "ci-build");
    }
    holds_newest(&now, &ci);
    let started = Instant::now();
    while search_total(addr, "w500x") > 0 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(search_total(addr, "w500x"), 0, "an expired message leaves search");
    assert_eq!(search_total(addr, &format!("w{}x", proj[0])), 1, "a kept one stays");
    // The archive's lines of the messages the first trim expired say "expired" (the sweep after
    // the first expiry; later ones wait a minute); the kept ones keep their text.
    let archive = || std::fs::read_to_string(work.path().join("log/channel_messages.log")).unwrap();
    let started = Instant::now();
    while archive().contains("line w500x") && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let archived = archive();
    assert!(!archived.contains("line w500x"), "an expired message leaves the archive");
    assert!(archived.contains(&format!("line w{}x", proj[0])), "a kept one stays");
    assert!(
        archived.matches(r#""text":"expired "#).count() >= 9_900,
        "each line stays, its text overwritten"
    );

    // kill -9, check, rebuild, check, restart: the same.
    let mut relay = relay;
    relay.child.kill().unwrap();
    relay.child.wait().unwrap();
    for command in ["check", "rebuild", "check"] {
        run(work.path(), &[command, "--data-dir", "data"]);
    }
    let relay = start_relay(work.path(), &ENV);
    holds_newest(&page(relay.addr, "ci-build", 0), &ci);
    drop(relay);

    // Export then import into another data dir: the expiry travels (no retention set there).
    let exported = run(work.path(), &["export", "--data-dir", "data"]);
    assert!(exported.contains("\"type\":\"messages_expired\""), "the expiry is exported");
    assert!(!exported.contains("\"text\":\"build log line w500x\""), "the log forgot expired messages");
    let copy = tempfile::tempdir().unwrap();
    let file = copy.path().join("export.jsonl");
    std::fs::write(&file, &exported).unwrap();
    run(copy.path(), &["import", file.to_str().unwrap(), "--data-dir", "data"]);
    run(copy.path(), &["check", "--data-dir", "data"]);
    let copied = start_relay(copy.path(), &[]);
    holds_newest(&page(copied.addr, "ci-build", 0), &ci);
    assert_eq!(ids(&page(copied.addr, "proj-x", 0)), proj);
}

#[test]
fn bad_retention_settings_are_refused_with_the_setting_named() {
    let work = tempfile::tempdir().unwrap();
    for (key, value, needle) in [
        ("CLAUDE_CODEX_RETENTION_MESSAGES", "-1", "retention_messages must be a whole number of 0 or more"),
        ("CLAUDE_CODEX_RETENTION_DAYS", "-2", "retention_days must be a number of days of 0 or more"),
        ("CLAUDE_CODEX_RETENTION", r#"{"ci-*": {"days": -1}}"#, "pattern \"ci-*\": days must be"),
        ("CLAUDE_CODEX_RETENTION", r#"{"ci-*": {"weeks": 1}}"#, "\"weeks\" is not a limit"),
        ("CLAUDE_CODEX_RETENTION", "[1]", "must be an object of channel pattern"),
    ] {
        let out = relay_command(work.path(), &["--port", "0", "--data-dir", "data"], &[(key, value)])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(needle), "{key}={value}: {stderr}");
    }
    assert!(!work.path().join("data").exists(), "nothing was created");
}
