//! Reply threads through every front door: REST, MCP and `claude-codex-relay post --reply-to`.

use crate::helpers::{relay_command, spawn_app, TestApp};
use crate::mcp::mcp;
use serde_json::{json, Value};

fn ids(page: &Value) -> Vec<u64> {
    page["messages"].as_array().unwrap().iter().map(|m| m["id"].as_u64().unwrap()).collect()
}

fn post(app: &TestApp, target: &str, text: &str, reply_to: Value) -> (u16, Value) {
    let body = json!({"target": target, "sender": "codex", "text": text, "reply_to": reply_to});
    let reply = app.post_json("/api/messages", &body);
    (reply.status, reply.json())
}

fn tool(app: &TestApp, name: &str, arguments: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}});
    mcp(app, &body.to_string(), &[]).json()["result"].clone()
}

#[test]
fn replies_form_threads_and_a_reply_to_nothing_is_refused_storing_nothing() {
    let app = spawn_app();
    let root = post(&app, "proj-x", "Review packet: retry policy", Value::Null).1["posted"].as_u64().unwrap();
    let other = post(&app, "proj-x", "an unrelated packet", Value::Null).1["posted"].as_u64().unwrap();
    let (status, first) = post(&app, "proj-x", "verdict: two issues", json!(root));
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["message"]["reply_to"], root);
    let first = first["posted"].as_u64().unwrap();
    // A reply to the reply, through MCP: it belongs to the root's thread too.
    let args = json!({"target": "proj-x", "sender": "claude", "text": "fixed both", "reply_to": first});
    let fixed = tool(&app, "post_message", args);
    assert_eq!(fixed["isError"], false, "{fixed}");
    let fixed = fixed["structuredContent"]["posted"].as_u64().unwrap();
    let elsewhere = post(&app, "ops", "not in proj-x", Value::Null).1["posted"].as_u64().unwrap();

    // Refused, with the reason, and nothing stored.
    let count = app.message_count();
    let (status, body) = post(&app, "proj-x", "to nothing", json!(9999));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "reply_to: there is no message 9999 in the channel proj-x");
    let (status, body) = post(&app, "proj-x", "across channels", json!(elsewhere));
    assert_eq!(status, 400, "{body}");
    let (status, body) = post(&app, "proj-x", "bad id", json!("twelve"));
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().starts_with("reply_to:"), "{body}");
    let args = json!({"target": "proj-x", "sender": "claude", "text": "x", "reply_to": 9999});
    let refused = tool(&app, "post_message", args);
    assert_eq!(refused["isError"], true, "{refused}");
    assert_eq!(app.message_count(), count);

    // The threads, over REST and MCP; every read carries reply_to.
    let thread = |query: &str| ids(&app.get(&format!("/api/messages?target=proj-x&{query}")).json());
    assert_eq!(thread(&format!("thread={root}")), [root, first, fixed]);
    assert_eq!(thread(&format!("thread={first}")), [first, fixed], "a reply's own thread");
    assert_eq!(thread(&format!("thread={other}")), [other]);
    assert_eq!(thread(&format!("thread={root}&since_id={first}")), [fixed]);
    assert_eq!(thread(&format!("thread={root}&limit=2")), [root, first]);
    let fetched = tool(&app, "fetch_messages", json!({"target": "proj-x", "thread": root}));
    assert_eq!(ids(&fetched["structuredContent"]), [root, first, fixed]);
    assert_eq!(fetched["structuredContent"]["messages"][2]["reply_to"], first);
    let page = app.get("/api/messages?target=proj-x").json();
    assert!(page["messages"][0].get("reply_to").is_none(), "no field on a message that answers nothing");
    assert_eq!(page["messages"][2]["reply_to"], root);
    app.get(&format!("/api/messages?target=ops&thread={root}")).assert_error(400, "no message");
    let exported = app.get("/api/export").text();
    assert!(exported.contains(&format!(r#""reply_to":{first}"#)), "{exported}");
}

#[test]
fn post_takes_reply_to() {
    let app = spawn_app();
    let root = post(&app, "rv", "packet", Value::Null).1["posted"].as_u64().unwrap();
    let work = tempfile::tempdir().unwrap();
    let url = format!("http://{}", app.addr);
    let args =
        ["post", "--url", &url, "--target", "rv", "--sender", "ci", "--reply-to", &root.to_string(), "ok"];
    let out = relay_command(work.path(), &args, &[]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(app.all_messages("rv")[1]["reply_to"], root);
    let args = ["post", "--url", &url, "--target", "rv", "--sender", "ci", "--reply-to", "777", "no"];
    let out = relay_command(work.path(), &args, &[]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("there is no message 777 in the channel rv"));
}
