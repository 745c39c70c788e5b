//! Delivery states (woken, read, acknowledged) through REST and MCP, across a kill -9 of the real
//! binary, in export, `check` and `rebuild`; and bad wakes refused with nothing changed.

use crate::helpers::{relay_command, request, start_relay, Reply};
use serde_json::{json, Value};
use std::net::SocketAddr;

fn call(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Reply {
    let body = body.map(Value::to_string);
    let headers: &[(&str, &str)] = &[("Content-Type", "application/json")];
    request(addr, method, path, headers, body.as_deref().map(str::as_bytes))
}

fn ok(reply: Reply, status: u16) -> Value {
    assert_eq!(reply.status, status, "{}", reply.text());
    reply.json()
}

/// The states of message `id` for `reader`: (woken, read, acknowledged), each a time or null.
fn states(addr: SocketAddr, id: u64, reader: &str) -> (Value, Value, Value) {
    let delivery = ok(call(addr, "GET", &format!("/api/messages/{id}/delivery"), None), 200);
    assert_eq!((delivery["id"].as_u64(), delivery["target"].as_str()), (Some(id), Some("rv")), "{delivery}");
    let of = &delivery["readers"][reader];
    (of["woken"].clone(), of["read"].clone(), of["acknowledged"].clone())
}

fn wake(addr: SocketAddr, ids: &[u64]) -> Reply {
    let body = json!({"target": "rv", "reader": "codex", "ids": ids, "via": "a test"});
    call(addr, "POST", "/api/wakes", Some(&body))
}

#[test]
fn each_state_is_said_only_once_it_happened_and_the_logged_ones_survive_kill_9() {
    let work = tempfile::tempdir().unwrap();
    let relay = start_relay(work.path(), &[]);
    let addr = relay.addr;
    let post = |text: &str| {
        let body = json!({"target": "rv", "sender": "claude", "text": text});
        ok(call(addr, "POST", "/api/messages", Some(&body)), 201)["posted"].as_u64().unwrap()
    };
    let (first, second, third) = (post("packet 1"), post("packet 2"), post("packet 3"));
    // Stored only: no named reader has done anything yet.
    let delivery = ok(call(addr, "GET", &format!("/api/messages/{second}/delivery"), None), 200);
    assert_eq!(delivery["readers"], json!({}), "{delivery}");
    let page = ok(call(addr, "GET", "/api/messages?target=rv", None), 200);
    assert_eq!(delivery["stored"], page["messages"][1]["ts"], "stored when the post was: {delivery}");

    // Woken about the last two (as a watcher says after Codex accepted the turn).
    ok(wake(addr, &[second, third]), 201);
    let (woken, read, acknowledged) = states(addr, second, "codex");
    assert!(woken.is_f64() && read.is_null() && acknowledged.is_null(), "{woken} {read} {acknowledged}");
    assert!(states(addr, first, "codex").0.is_null(), "the wake did not name the first message");

    // Read: a fetch that names the reader returns all three.
    let page = ok(call(addr, "GET", "/api/messages?target=rv&reader=codex", None), 200);
    assert_eq!(page["messages"].as_array().unwrap().len(), 3);
    let (_, read, acknowledged) = states(addr, first, "codex");
    assert!(read.is_f64() && acknowledged.is_null(), "{read} {acknowledged}");

    // Acknowledged: the cursor passes the second message, not the third.
    ok(call(addr, "GET", &format!("/api/messages?target=rv&reader=codex&since_id={second}"), None), 200);
    let before_kill = states(addr, second, "codex");
    assert!(before_kill.2.is_f64(), "{before_kill:?}");
    assert!(states(addr, third, "codex").2.is_null(), "the cursor has not passed the third");
    assert!(before_kill.0.as_f64() <= before_kill.2.as_f64(), "woken before acknowledged: {before_kill:?}");

    // A second wake naming the second message again keeps its first time, and adds nothing to
    // the log.
    assert_eq!(ok(wake(addr, &[second]), 201)["recorded"], json!([]));
    assert_eq!(states(addr, second, "codex").0, before_kill.0);

    // The channel list carries each reader's newest states, over REST and MCP alike.
    let channels = ok(call(addr, "GET", "/api/channels", None), 200);
    let rv = channels["details"].as_array().unwrap().iter().find(|c| c["name"] == "rv").unwrap().clone();
    let codex = &rv["delivery"]["codex"];
    assert_eq!(
        (codex["woken"]["id"].as_u64(), codex["read"]["id"].as_u64(), codex["acknowledged"]["id"].as_u64()),
        (Some(third), Some(third), Some(second)),
        "{rv}"
    );
    let listed = mcp_tool(addr, "list_channels", json!({}));
    let rv_mcp = listed["details"].as_array().unwrap().iter().find(|c| c["name"] == "rv").unwrap().clone();
    assert_eq!(rv_mcp["delivery"], rv["delivery"], "MCP and REST list the same states");
    // An MCP fetch that names a reader is a read too.
    mcp_tool(addr, "fetch_messages", json!({"target": "rv", "reader": "gemini"}));
    assert!(states(addr, third, "gemini").1.is_f64(), "read through MCP");

    // Bad wakes: a clear 4xx each, nothing recorded.
    let refused = |body: Value, status: u16, needle: &str| {
        call(addr, "POST", "/api/wakes", Some(&body)).assert_error(status, needle);
    };
    refused(json!({"target": "rv", "reader": "codex", "ids": [999], "via": "x"}), 400, "no message 999");
    refused(json!({"target": "rv", "reader": "codex", "ids": [], "via": "x"}), 400, "ids");
    refused(json!({"target": "rv", "reader": "codex", "ids": ["two"], "via": "x"}), 400, "ids");
    refused(json!({"target": "rv", "reader": "codex", "ids": [first], "via": "x".repeat(201)}), 400, "via");
    refused(json!({"target": "rv", "ids": [first], "via": "x"}), 400, "reader");
    refused(json!({"target": "elsewhere", "reader": "codex", "ids": [first], "via": "x"}), 400, "no message");
    let garbage = request(addr, "POST", "/api/wakes", &[("Content-Type", "application/json")], Some(b"{"));
    garbage.assert_error(400, "JSON");
    assert!(states(addr, first, "codex").0.is_null(), "no refused wake was recorded");
    call(addr, "GET", "/api/messages/999/delivery", None).assert_error(404, "no message has the id 999");
    let named = ok(call(addr, "GET", &format!("/api/messages/{second}/delivery?target=rv"), None), 200);
    assert_eq!(named["readers"]["codex"]["woken"], before_kill.0, "found in the channel named");
    call(addr, "GET", &format!("/api/messages/{second}/delivery?target=other"), None)
        .assert_error(404, "no message");
    call(addr, "GET", "/api/messages/x/delivery", None).assert_error(404, "no such route");

    // kill -9: woken and acknowledged are in the log and come back as they were; read was this
    // process's live state.
    let mut relay = relay;
    relay.child.kill().unwrap();
    relay.child.wait().unwrap();
    let relay = start_relay(work.path(), &[]);
    let after = states(relay.addr, second, "codex");
    assert_eq!((&after.0, &after.2), (&before_kill.0, &before_kill.2), "{after:?} {before_kill:?}");
    assert!(after.1.is_null(), "read is live state: {after:?}");

    // The wakes travel in export, and check and rebuild agree with the log.
    let exported = call(relay.addr, "GET", "/api/export", None).text();
    assert_eq!(exported.matches("\"type\":\"reader_woken\"").count(), 1, "{exported}");
    drop(relay);
    for command in ["check", "rebuild", "check"] {
        let out = relay_command(work.path(), &[command, "--data-dir", "data"], &[]).output().unwrap();
        assert!(out.status.success(), "{command}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let relay = start_relay(work.path(), &[]);
    let rebuilt = states(relay.addr, second, "codex");
    assert_eq!((&rebuilt.0, &rebuilt.2), (&before_kill.0, &before_kill.2), "rebuilt from the log");

    // With principals, each records its own wakes only.
    let addr = relay.addr;
    let added =
        ok(call(addr, "POST", "/api/principals", Some(&json!({"name": "root", "role": "admin"}))), 201);
    let root = format!("Bearer {}", added["credential"].as_str().unwrap());
    let as_root = [("Content-Type", "application/json"), ("Authorization", root.as_str())];
    let body = json!({"name": "codex"}).to_string();
    let added = request(addr, "POST", "/api/principals", &as_root, Some(body.as_bytes()));
    let codex = format!("Bearer {}", ok(added, 201)["credential"].as_str().unwrap());
    let as_codex = [("Content-Type", "application/json"), ("Authorization", codex.as_str())];
    let wake_as = |reader: &str| {
        let body = json!({"target": "rv", "reader": reader, "ids": [first], "via": "x"}).to_string();
        request(addr, "POST", "/api/wakes", &as_codex, Some(body.as_bytes()))
    };
    wake_as("claude").assert_error(403, "reader");
    assert_eq!(ok(wake_as("codex"), 201)["recorded"], json!([first]));
    // A principal kept out of rv learns nothing of its messages, not even their channel.
    let body = json!({"name": "outsider", "read": ["elsewhere"], "write": ["elsewhere"]}).to_string();
    let added = request(addr, "POST", "/api/principals", &as_root, Some(body.as_bytes()));
    let outsider = format!("Bearer {}", ok(added, 201)["credential"].as_str().unwrap());
    let refused = request(
        addr,
        "GET",
        &format!("/api/messages/{first}/delivery"),
        &[("Authorization", outsider.as_str())],
        None,
    );
    refused.assert_error(404, "no message has the id");
    assert!(!refused.text().contains("rv"), "{}", refused.text());
    let delivery = request(addr, "GET", &format!("/api/messages/{first}/delivery"), &as_codex, None).json();
    assert!(
        delivery["readers"]["codex"]["woken"].is_f64() && delivery["readers"].get("claude").is_none(),
        "{delivery}"
    );
}

/// An MCP tool call over `/mcp` (stateless): its structured result.
fn mcp_tool(addr: SocketAddr, name: &str, arguments: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}});
    let headers: &[(&str, &str)] =
        &[("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")];
    let reply = request(addr, "POST", "/mcp", headers, Some(body.to_string().as_bytes()));
    let text = reply.text();
    let json = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or(&text);
    let reply: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(reply["result"]["isError"], false, "{reply}");
    reply["result"]["structuredContent"].clone()
}
