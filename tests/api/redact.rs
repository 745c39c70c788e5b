//! Redaction through every front door of the real binary: a secret posted through REST, MCP and
//! the UI, taken back through REST, the CLI and the UI, is then served nowhere (pages, threads,
//! MCP tools and resources, the UI, search, export, `replay --print`), across kill -9, `check`,
//! `rebuild` and export then import; bad redactions are refused with nothing changed; with
//! principals, only the sender, a person who may post there, or an admin may redact.

use crate::files::files_holding;
use crate::helpers::{relay_command, request, start_relay, Reply};
use crate::principals::{add, call, tool};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;

const SECRETS: [&str; 3] = ["sk7f3a9rest", "sk8b2c1mcp", "sk9d4e2ui"];

fn ok(reply: Reply, status: u16) -> Value {
    assert_eq!(reply.status, status, "{}", reply.text());
    reply.json()
}

fn redact(addr: SocketAddr, id: u64, credential: &str, body: Option<Value>) -> Reply {
    call(addr, "DELETE", &format!("/api/messages/{id}"), credential, body)
}

/// Everything a client can read of channel `ops`, as one string (search, which echoes the
/// query, is asked apart: [`search_hits`]).
fn everything_served(addr: SocketAddr, root: u64) -> String {
    let mut all = String::new();
    for path in [
        "/api/messages?target=ops".to_owned(),
        format!("/api/messages?target=ops&thread={root}"),
        "/c/ops".to_owned(),
        "/api/export".to_owned(),
    ] {
        let reply = call(addr, "GET", &path, "", None);
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        all += &reply.text();
    }
    all += &tool(addr, "", "fetch_messages", json!({"target": "ops"})).to_string();
    let read = json!({"jsonrpc": "2.0", "id": 2, "method": "resources/read", "params": {"uri": "relay://channel/ops"}});
    all += &call(addr, "POST", "/mcp", "", Some(read)).text();
    all
}

fn search_hits(addr: SocketAddr, secret: &str) -> usize {
    let found = ok(call(addr, "GET", &format!("/api/search?q={secret}"), "", None), 200);
    found["hits"].as_array().map_or(0, Vec::len)
}

fn run(work: &Path, args: &[&str]) -> String {
    let out = relay_command(work, args, &[]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn tombstones(addr: SocketAddr) -> Vec<Value> {
    let page = ok(call(addr, "GET", "/api/messages?target=ops", "", None), 200);
    page["messages"].as_array().unwrap().iter().filter(|m| m.get("redacted").is_some()).cloned().collect()
}

#[test]
fn a_redacted_secret_is_served_nowhere_and_stays_redacted() {
    let work = tempfile::tempdir().unwrap();
    let relay = start_relay(work.path(), &[]);
    let addr = relay.addr;
    let posted = |path: &str, text: &str| {
        let body = json!({"target": "ops", "sender": "claude", "text": format!("the token is {text}")});
        ok(call(addr, "POST", path, "", Some(body)), 201)["posted"].as_u64().unwrap()
    };
    let rest = posted("/api/messages", SECRETS[0]);
    let mcp = tool(
        addr,
        "",
        "post_message",
        json!({"target": "ops", "sender": "claude", "text": format!("the token is {}", SECRETS[1])}),
    );
    let mcp = mcp["structuredContent"]["posted"].as_u64().unwrap_or_else(|| panic!("{mcp}"));
    let ui = posted("/ui/messages", SECRETS[2]);
    let body = json!({"target": "ops", "sender": "codex", "text": "please take that back", "reply_to": rest});
    let reply = ok(call(addr, "POST", "/api/messages", "", Some(body)), 201)["posted"].as_u64().unwrap();
    // Served everywhere before (so the checks below can fail), search included once it caught up.
    let before = everything_served(addr, rest);
    let page_before = ok(call(addr, "GET", "/api/messages?target=ops", "", None), 200);
    assert!(SECRETS.iter().all(|s| before.contains(s)), "{before}");
    while search_hits(addr, SECRETS[0]) == 0 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // Taken back through REST (with a reason), the CLI and the UI's action.
    let redacted = ok(redact(addr, rest, "", Some(json!({"reason": "leaked a token", "by": "codex"}))), 200);
    let tombstone = &redacted["message"];
    assert_eq!(tombstone["text"], "redacted by codex: leaked a token", "{redacted}");
    assert_eq!(
        (tombstone["id"].as_u64(), &tombstone["sender"], &tombstone["target"]),
        (Some(rest), &json!("claude"), &json!("ops"))
    );
    assert_eq!(tombstone["redacted"]["by"], "codex");
    assert_eq!(tombstone["redacted"]["reason"], "leaked a token");
    let url = format!("http://{addr}");
    let said =
        run(work.path(), &["redact", &mcp.to_string(), "--url", &url, "--by", "claude", "--reason", "oops"]);
    assert_eq!(said.trim(), format!("#{mcp} redacted by claude: oops"));
    ok(call(addr, "DELETE", &format!("/ui/messages/{ui}"), "", None), 200);

    // Served nowhere now; the reply still answers its tombstone; the rest is as it was.
    let after = everything_served(addr, rest);
    for secret in SECRETS {
        assert!(!after.contains(secret), "{secret} is still served: {after}");
        assert_eq!(search_hits(addr, secret), 0);
    }
    assert!(after.contains("redacted by anonymous") && after.contains("please take that back"), "{after}");
    let page = ok(call(addr, "GET", "/api/messages?target=ops", "", None), 200);
    let ids: Vec<u64> =
        page["messages"].as_array().unwrap().iter().map(|m| m["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [rest, mcp, ui, reply], "ids stay; nothing is renumbered");
    assert_eq!(page["messages"][3]["reply_to"].as_u64(), Some(rest));
    for (now, then) in
        page["messages"].as_array().unwrap().iter().zip(page_before["messages"].as_array().unwrap())
    {
        assert_eq!((&now["ts"], &now["source"]), (&then["ts"], &then["source"]), "time and source stay");
    }

    // Bad redactions: a clear 4xx each, nothing appended.
    redact(addr, 9999, "", None).assert_error(404, "no message has the id 9999");
    redact(addr, rest, "", None).assert_error(409, "redacted already, by codex");
    redact(addr, reply, "", Some(json!({"reason": "x".repeat(501)}))).assert_error(400, "reason");
    redact(addr, reply, "", Some(json!({"reason": "two\nlines"}))).assert_error(400, "reason");
    redact(addr, reply, "", Some(json!({"reason": 5}))).assert_error(400, "reason");
    let garbage = request(addr, "DELETE", &format!("/api/messages/{reply}"), &[], Some(b"{"));
    garbage.assert_error(400, "JSON");
    let tombstoned = tombstones(addr);
    assert_eq!(tombstoned.len(), 3, "only the three redactions were made");

    // kill -9, then check, rebuild, check: the tombstones stay, from the log.
    let mut relay = relay;
    relay.child.kill().unwrap();
    relay.child.wait().unwrap();
    for command in ["check", "rebuild", "check"] {
        run(work.path(), &[command, "--data-dir", "data"]);
    }
    let printed = run(work.path(), &["replay", "--print", "--data-dir", "data"]);
    let exported = run(work.path(), &["export", "--data-dir", "data"]);
    for secret in SECRETS {
        assert!(!printed.contains(secret) && !exported.contains(secret), "{printed}\n{exported}");
    }
    assert_eq!(exported.matches("\"type\":\"message_redacted\"").count(), 3, "{exported}");
    assert_eq!(
        exported.matches("\"post\":{\"sender\":\"claude\"").count(),
        3,
        "what each tombstone keeps: {exported}"
    );
    let relay = start_relay(work.path(), &[]);
    assert_eq!(tombstones(relay.addr), tombstoned, "the same after kill -9 and rebuild");
    drop(relay);

    // Export then import into another data dir: the tombstones travel, the secrets do not.
    let copy = tempfile::tempdir().unwrap();
    let file = copy.path().join("export.jsonl");
    std::fs::write(&file, &exported).unwrap();
    run(copy.path(), &["import", file.to_str().unwrap(), "--data-dir", "data"]);
    run(copy.path(), &["check", "--data-dir", "data"]);
    let copied = start_relay(copy.path(), &[]);
    assert_eq!(tombstones(copied.addr), tombstoned);
    let served = everything_served(copied.addr, rest);
    assert!(SECRETS.iter().all(|s| !served.contains(s)), "{served}");
    // The CLI takes a whole channel back: here, the one message left.
    let url = format!("http://{}", copied.addr);
    let said = run(copy.path(), &["redact", "--channel", "ops", "--url", &url, "--reason", "cleanup"]);
    assert_eq!(said.trim(), "redacted 1 messages of ops");
    assert_eq!(tombstones(copied.addr).len(), 4);
}

fn tombstones_of(messages: &[Value]) -> Vec<Value> {
    messages.iter().filter(|m| m.get("redacted").is_some()).cloned().collect()
}

#[test]
fn with_principals_the_sender_a_person_who_may_post_or_an_admin_redacts() {
    let work = tempfile::tempdir().unwrap();
    let root = add(work.path(), &["root", "--role", "admin"]);
    let codex = add(work.path(), &["codex", "--read", "proj-*", "--write", "proj-*"]);
    let claude = add(work.path(), &["claude", "--read", "proj-*", "--write", "proj-*"]);
    let eve = add(work.path(), &["eve", "--role", "person", "--read", "proj-*", "--write", "proj-*"]);
    let outsider = add(work.path(), &["outsider", "--read", "ops", "--write", "ops"]);
    let relay = start_relay(work.path(), &[]);
    let addr = relay.addr;
    let post = |credential: &str, text: &str| {
        let body = json!({"target": "proj-x", "text": text});
        ok(call(addr, "POST", "/api/messages", credential, Some(body)), 201)["posted"].as_u64().unwrap()
    };
    let (by_codex, by_claude, another) =
        (post(&codex, "codex's"), post(&claude, "claude's"), post(&claude, "more"));

    // Another agent may not, nor speak as someone else; an outsider learns nothing.
    redact(addr, by_claude, &codex, None).assert_error(403, "may not redact a message \"claude\" posted");
    redact(addr, by_codex, &codex, Some(json!({"by": "claude"}))).assert_error(403, "may not redact as");
    let hidden = redact(addr, by_claude, &outsider, None);
    hidden.assert_error(404, "no message has the id");
    assert!(!hidden.text().contains("proj-x"), "{}", hidden.text());
    assert!(tombstones_in(addr, &root).is_empty(), "nothing refused was redacted");

    // The sender, a person who may post there, an admin: each under its own name.
    let own = ok(redact(addr, by_codex, &codex, None), 200);
    assert_eq!(own["message"]["redacted"]["by"], "codex");
    let person = ok(redact(addr, by_claude, &eve, Some(json!({"reason": "pasted a key"}))), 200);
    assert_eq!(person["message"]["text"], "redacted by eve: pasted a key");
    assert_eq!(ok(redact(addr, another, &root, None), 200)["message"]["redacted"]["by"], "root");
    assert_eq!(tombstones_in(addr, &root).len(), 3);

    // A whole channel: admins only; what was redacted already is left as it is.
    for n in 0..5 {
        post(&claude, &format!("more {n}"));
    }
    let channel = |credential: &str, name: &str| {
        call(addr, "DELETE", &format!("/api/channels/{name}"), credential, None)
    };
    channel(&eve, "proj-x").assert_error(403, "not an admin");
    channel(&outsider, "proj-x").assert_error(404, "no channel named \"proj-x\" holds a message");
    channel(&root, "proj-y").assert_error(404, "no channel named");
    assert_eq!(tombstones_in(addr, &root).len(), 3, "nothing refused was redacted");
    let done = ok(channel(&root, "proj-x"), 200);
    assert_eq!((done["target"].as_str(), done["redacted"].as_u64()), (Some("proj-x"), Some(5)), "{done}");
    let all = tombstones_in(addr, &root);
    assert_eq!(all.len(), 8);
    assert!(all[3..].iter().all(|m| m["redacted"]["by"] == "root"), "{all:?}");
    assert_eq!(ok(channel(&root, "proj-x"), 200)["redacted"], 0, "nothing left to redact");
}

fn tombstones_in(addr: SocketAddr, credential: &str) -> Vec<Value> {
    let page = ok(call(addr, "GET", "/api/messages?target=proj-x", credential, None), 200);
    tombstones_of(page["messages"].as_array().unwrap())
}

/// Waits up to `limit` for no file under `dir` to hold `needle`; returns those that still do.
fn erased_within(dir: &Path, needle: &[u8], limit: std::time::Duration) -> Vec<String> {
    let started = std::time::Instant::now();
    loop {
        let left = files_holding(dir, needle);
        if left.is_empty() || started.elapsed() > limit {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn a_redacted_text_leaves_every_file_and_never_reaches_the_databases_files() {
    let work = tempfile::tempdir().unwrap();
    // A small archive, so the first secret's line is in a rotated file by the time it is redacted.
    let env = [("CLAUDE_CODEX_CHANNEL_LOG_MAX_BYTES", "20000")];
    let relay = start_relay(work.path(), &env);
    let addr = relay.addr;
    let post = |text: String| {
        let body = json!({"target": "ops", "sender": "claude", "text": text});
        ok(call(addr, "POST", "/api/messages", "", Some(body)), 201)["posted"].as_u64().unwrap()
    };
    // One secret in a sealed block (64 messages seal one) and a rotated archive file, one still
    // open in memory and in the current archive file.
    let (sealed, open) = ("hunter2sealedsecret", "hunter2opensecret");
    let first = post(format!("oops: {sealed}"));
    for n in 0..150 {
        post(format!("filler {n} {}", "x".repeat(200)));
    }
    let second = post(format!("oops again: {open}"));
    for secret in [sealed, open] {
        // The archive's thread writes the line a little after the post is answered.
        let started = std::time::Instant::now();
        let archived =
            || files_holding(work.path(), secret.as_bytes()).iter().any(|f| f.contains("channel_messages"));
        while !archived() && started.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let before = erased_within(work.path(), secret.as_bytes(), std::time::Duration::ZERO);
        assert!(before.iter().any(|f| f.ends_with("/data/blocks")) || secret == open, "{before:?}");
        assert!(before.iter().any(|f| f.contains("channel_messages.log")), "{secret}: {before:?}");
        // The log's record is sealed under the message's key: sled's files never hold the text.
        assert!(!before.iter().any(|f| f.contains("/data/db/")), "{secret}: {before:?}");
    }
    ok(redact(addr, first, "", Some(json!({"reason": "a password"}))), 200);
    ok(redact(addr, second, "", None), 200);
    // Their keys are erased before the answer: what sled's files keep of the sealed records
    // can no longer be read.
    let keys = std::fs::read(work.path().join("data/message-keys")).unwrap();
    for id in [first, second] {
        assert_eq!(keys[id as usize * 16..][..16], [0; 16], "the key of {id}");
    }
    assert_ne!(keys[(second as usize - 1) * 16..][..16], [0; 16], "a filler's key stays");
    // Killed at once: the erasure is finished by the next start, from the log.
    let mut relay = relay;
    relay.child.kill().unwrap();
    relay.child.wait().unwrap();
    let relay = start_relay(work.path(), &env);
    let started = std::time::Instant::now();
    for secret in [sealed, open] {
        let left = erased_within(work.path(), secret.as_bytes(), std::time::Duration::from_secs(60));
        assert_eq!(left, Vec::<String>::new(), "{secret} is still in these files");
    }
    println!(
        "erased from the blocks, the archive and the search index {:?} after the restart",
        started.elapsed()
    );
    // The archive's lines say who took them back; their neighbours are untouched.
    let archive = std::fs::read_to_string(work.path().join("log/channel_messages.log")).unwrap();
    assert!(archive.contains("redacted by anonymous") && archive.contains("filler 149"), "{archive}");
    let page = ok(call(relay.addr, "GET", "/api/messages?target=ops&limit=500", "", None), 200);
    assert_eq!(page["messages"].as_array().unwrap().len(), 152, "no message lost");
    drop(relay);

    // compact on the stopped relay keeps every message (it rewrites the records of a log
    // written before records were sealed, whose text only it erases from sled's files).
    let out = relay_command(work.path(), &["compact", "--data-dir", "data"], &env).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for secret in [sealed, open] {
        assert_eq!(files_holding(work.path(), secret.as_bytes()), Vec::<String>::new(), "{secret}");
    }
    run(work.path(), &["check", "--data-dir", "data"]);
    let relay = start_relay(work.path(), &env);
    let page = ok(call(relay.addr, "GET", "/api/messages?target=ops&limit=500", "", None), 200);
    assert_eq!(page["messages"].as_array().unwrap().len(), 152, "compact kept every message");
    assert_eq!(page["messages"][0]["text"], "redacted by anonymous: a password");
}
