//! Per-reader cursors through every front door: REST, MCP, `list_channels`, `watch --reader`,
//! and across a restart and a kill -9 of the real binary.

use crate::helpers::{messages_after, request, spawn_app, start_relay, TestApp};
use crate::mcp::mcp;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;

fn ids(page: &Value) -> Vec<u64> {
    page["messages"].as_array().unwrap().iter().map(|m| m["id"].as_u64().unwrap()).collect()
}

fn get(addr: SocketAddr, path: &str) -> Value {
    let reply = request(addr, "GET", path, &[], None);
    assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    reply.json()
}

fn tool(app: &TestApp, name: &str, arguments: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}});
    let reply = mcp(app, &body.to_string(), &[]).json();
    assert_eq!(reply["result"]["isError"], false, "{reply}");
    reply["result"]["structuredContent"].clone()
}

#[test]
fn a_reader_gets_what_it_has_not_acknowledged_and_acknowledges_by_passing_since_id() {
    let app = spawn_app();
    let post = |text: &str| app.post("proj-x", "claude", text).json()["posted"].as_u64().unwrap();
    for i in 1..=3 {
        post(&format!("packet {i}"));
    }
    let read = |query: &str| ids(&get(app.addr, &format!("/api/messages?target=proj-x&{query}")));
    // A reader new to the channel starts at 0; reading alone acknowledges nothing.
    assert_eq!(read("reader=codex"), [1, 2, 3]);
    assert_eq!(read("reader=codex"), [1, 2, 3]);
    // since_id acknowledges up to it: the cursor moves, and the read starts there.
    assert_eq!(read("reader=codex&since_id=2"), [3]);
    assert_eq!(read("reader=codex"), [3]);
    // Never backwards: an older since_id reads from there but leaves the cursor.
    assert_eq!(read("reader=codex&since_id=1"), [2, 3]);
    assert_eq!(read("reader=codex"), [3]);
    // Never past the channel's last message, whatever since_id says.
    assert!(read("reader=codex&since_id=999").is_empty());
    // A cursor move is an event with an id of its own: message ids go on after it.
    let fourth = post("packet 4");
    assert!(fourth > 4, "{fourth}");
    assert_eq!(read("reader=codex"), [fourth], "a message after the cursor is delivered");

    // MCP: the same cursor.
    let fetched = tool(&app, "fetch_messages", json!({"target": "proj-x", "reader": "codex"}));
    assert_eq!(ids(&fetched), [fourth]);
    let fetched =
        tool(&app, "fetch_messages", json!({"target": "proj-x", "reader": "codex", "since_id": fourth}));
    assert!(ids(&fetched).is_empty());
    assert!(read("reader=codex").is_empty());

    // start=end: a new reader skips the history, and its place is kept from there.
    assert!(read("reader=late&start=end").is_empty());
    let fifth = post("packet 5");
    assert_eq!(read("reader=late"), [fifth]);
    assert_eq!(read("reader=newcomer"), [1, 2, 3, fourth, fifth], "without start=end, from the start");

    // Cursors and unread counts in the channel lists.
    let channels = get(app.addr, "/api/channels?reader=codex");
    let details = channels["details"].as_array().unwrap();
    let proj = details.iter().find(|c| c["name"] == "proj-x").unwrap();
    assert_eq!(proj["readers"], json!({"codex": fourth, "late": fourth}));
    assert_eq!(proj["unread"], 1);
    assert!(details.iter().all(|c| c["unread"].is_u64()), "{channels}");
    let listed = tool(&app, "list_channels", json!({"reader": "late"}));
    let proj = listed["details"].as_array().unwrap().iter().find(|c| c["name"] == "proj-x").unwrap().clone();
    assert_eq!(proj["unread"], 1);
    assert!(get(app.addr, "/api/channels")["details"][0].get("unread").is_none());

    // Bad input is refused with a reason, and moves nothing.
    let reply = request(app.addr, "GET", "/api/messages?target=proj-x&reader=codex&start=middle", &[], None);
    reply.assert_error(400, "start");
    let reply = request(app.addr, "GET", "/api/messages?target=proj-x&reader=%20", &[], None);
    reply.assert_error(400, "reader");
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "fetch_messages", "arguments": {"target": "proj-x", "reader": 7}}});
    let refused = mcp(&app, &body.to_string(), &[]).json();
    assert_eq!(refused["result"]["isError"], true, "{refused}");
    assert_eq!(readers(app.addr)["codex"], fourth);
}

/// The readers' cursors on proj-x, from `GET /api/channels`.
fn readers(addr: SocketAddr) -> Value {
    let channels = get(addr, "/api/channels");
    let details = channels["details"].as_array().unwrap();
    details.iter().find(|c| c["name"] == "proj-x").map_or(json!({}), |c| c["readers"].clone())
}

/// A request to a relay that may be killed meanwhile: `None` when it did not answer.
fn try_request(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Option<(u16, Value)> {
    let body = body.map(|b| b.to_string());
    std::panic::catch_unwind(|| {
        let headers: &[(&str, &str)] = &[("Content-Type", "application/json")];
        let reply = request(addr, method, path, headers, body.as_deref().map(str::as_bytes));
        (reply.status, reply.json())
    })
    .ok()
}

#[test]
fn a_wait_with_a_reader_and_no_since_id_waits_after_the_cursor() {
    let app = spawn_app();
    app.post("proj-x", "claude", "seen");
    get(app.addr, "/api/messages?target=proj-x&reader=codex&since_id=1");
    let addr = app.addr;
    let waiter = std::thread::spawn(move || {
        get(addr, "/api/messages?target=proj-x&reader=codex&wait=10&exclude_sender=codex")
    });
    std::thread::sleep(Duration::from_millis(300));
    let new = app.post("proj-x", "claude", "new").json()["posted"].as_u64().unwrap();
    let page = waiter.join().unwrap();
    assert_eq!(ids(&page), [new]);
    assert_eq!(page["timed_out"], false);
    let waited =
        tool(&app, "wait_for_messages", json!({"target": "proj-x", "reader": "codex", "timeout_s": 0.2}));
    assert_eq!(ids(&waited), [new], "not acknowledged yet: delivered again");
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "wait_for_messages", "arguments": {"target": "proj-x", "timeout_s": 0.2}}});
    let refused = mcp(&app, &body.to_string(), &[]).json();
    let text = refused["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("since_id: is required (or pass reader)"), "{refused}");
}

/// kill -9 while a reader acknowledges, again and again: after each restart the cursor is at
/// least the last acknowledgement the relay answered, and a read by the reader alone gives
/// exactly the messages after the cursor.
#[test]
fn acknowledged_cursors_survive_kill_9_and_later_messages_are_delivered_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked = 0;
    for cycle in 0..3u64 {
        let relay = start_relay(dir.path(), &[]);
        let addr = relay.addr;
        // The cursor the relay kept through the last kill.
        let kept = readers(addr)["codex"].as_u64().unwrap_or(0);
        assert!(kept >= acked, "cycle {cycle}: the cursor {kept} is behind the acknowledged {acked}");
        let after = messages_after(addr, "proj-x", kept)
            .iter()
            .map(|m| m["id"].as_u64().unwrap())
            .collect::<Vec<_>>();
        assert_eq!(ids(&get(addr, "/api/messages?target=proj-x&reader=codex&limit=500")), after);
        // Post and acknowledge in a loop, and kill the relay in the middle of it.
        let poster = std::thread::spawn(move || {
            let mut last_acked = 0;
            for i in 0..1_000 {
                let body = json!({"target": "proj-x", "sender": "claude", "text": format!("{cycle}-{i}")});
                let Some((201, posted)) = try_request(addr, "POST", "/api/messages", Some(&body)) else {
                    break;
                };
                let id = posted["posted"].as_u64().unwrap();
                let path = format!("/api/messages?target=proj-x&reader=codex&since_id={id}");
                let Some((200, _)) = try_request(addr, "GET", &path, None) else { break };
                last_acked = id;
            }
            last_acked
        });
        std::thread::sleep(Duration::from_millis(400 + 150 * cycle));
        let mut relay = relay;
        relay.child.kill().unwrap();
        relay.child.wait().unwrap();
        acked = acked.max(poster.join().unwrap());
        assert!(acked > 0, "cycle {cycle}: some acknowledgements went through before the kill");
    }
    let relay = start_relay(dir.path(), &[]);
    assert!(readers(relay.addr)["codex"].as_u64().unwrap() >= acked);
}
