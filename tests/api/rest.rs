//! Every REST route against a real relay on a loopback port.

use crate::helpers::{request, spawn_app, spawn_app_in, spawn_app_with};
use serde_json::{json, Value};
use std::thread;

fn ids(messages: &[Value]) -> Vec<u64> {
    messages.iter().map(|m| m["id"].as_u64().unwrap()).collect()
}

#[test]
fn post_replies_201_in_the_python_relays_shape() {
    let app = spawn_app();
    let reply = app.post(" proj-x ", "claude", "summary\n```diff\n+x\n```\n");
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert!(reply.header("content-type").unwrap().starts_with("application/json"));
    let body = reply.json();
    assert_eq!(body["ok"], true);
    let id = body["posted"].as_u64().expect("posted is an integer id");
    let m = &body["message"];
    assert_eq!(m["id"].as_u64(), Some(id));
    assert!(m["ts"].is_f64(), "ts is a float: {m}");
    let ts = m["ts"].as_f64().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    assert!((now - ts).abs() < 60.0, "ts {ts} is seconds since the epoch");
    assert_eq!(m["target"], "proj-x", "target is trimmed");
    assert_eq!(m["sender"], "claude");
    assert_eq!(m["text"], "summary\n```diff\n+x\n```\n", "text is kept exactly");
    assert_eq!(m["source"], "rest");
}

#[test]
fn get_returns_the_last_messages_oldest_first() {
    let app = spawn_app();
    let posted: Vec<u64> =
        (0..10).map(|i| app.post("t", "s", &format!("m{i}")).json()["posted"].as_u64().unwrap()).collect();
    app.post("other", "s", "elsewhere");
    let body = app.get("/api/messages?target=t&limit=3").json();
    assert_eq!(body["target"], "t");
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(ids(messages), posted[7..]);
    assert_eq!(messages[0]["text"], "m7");
    for field in ["id", "ts", "target", "sender", "text"] {
        assert!(messages[0].get(field).is_some(), "message has {field}");
    }
    assert_eq!(body["latest_id"].as_u64(), Some(posted[9]));
    let all = app.get("/api/messages?target=t").json();
    assert_eq!(ids(all["messages"].as_array().unwrap()), posted, "default limit covers all 10");
}

#[test]
fn since_id_returns_the_oldest_messages_after_it() {
    let app = spawn_app();
    let posted: Vec<u64> =
        (0..10).map(|i| app.post("t", "s", &format!("m{i}")).json()["posted"].as_u64().unwrap()).collect();
    let body = app.get(&format!("/api/messages?target=t&since_id={}&limit=4", posted[2])).json();
    assert_eq!(ids(body["messages"].as_array().unwrap()), posted[3..7]);
    assert_eq!(body["latest_id"].as_u64(), Some(posted[6]));
    let empty = app.get(&format!("/api/messages?target=t&since_id={}", posted[9])).json();
    assert_eq!(empty["messages"], json!([]));
    assert_eq!(empty["latest_id"].as_u64(), Some(posted[9]), "an empty page echoes since_id");
    let unknown = app.get("/api/messages?target=nobody&since_id=0").json();
    assert_eq!((unknown["messages"].clone(), unknown["latest_id"].clone()), (json!([]), json!(0)));
}

#[test]
fn limit_is_clamped_to_1_and_500() {
    let app = spawn_app();
    let handles: Vec<_> = (0..6)
        .map(|w| {
            let addr = app.addr;
            thread::spawn(move || {
                for i in 0..86 {
                    let body =
                        json!({"target": "big", "sender": "s", "text": format!("{w}.{i}")}).to_string();
                    let r = request(addr, "POST", "/api/messages", &[], Some(body.as_bytes()));
                    assert_eq!(r.status, 201);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let count = |q: &str| {
        app.get(&format!("/api/messages?target=big&{q}")).json()["messages"].as_array().unwrap().len()
    };
    assert_eq!(count("limit=0"), 1);
    assert_eq!(count("limit=-5"), 1);
    assert_eq!(count("limit=100000"), 500);
    assert_eq!(count("limit=18446744073709551616"), 500);
    assert_eq!(count(""), 200);
    assert_eq!(count("since_id=0&limit=9999"), 500);
    let all = app.all_messages("big");
    assert_eq!(all.len(), 516);
    assert!(ids(&all).windows(2).all(|w| w[0] < w[1]), "ids increase");
}

#[test]
fn channels_lists_configured_and_seen_with_counts() {
    let app = spawn_app_with(|c| c.channels = vec![relay::values::Name::parse("channels", "zeta").unwrap()]);
    app.post("alpha", "s", "1");
    let last = app.post("alpha", "s", "2").json()["posted"].as_u64().unwrap();
    let body = app.get("/api/channels").json();
    assert_eq!(body["channels"], json!(["alpha", "zeta"]));
    assert_eq!(
        body["details"],
        json!([
            {"name": "alpha", "count": 2, "last_id": last, "listening": [], "readers": {}},
            {"name": "zeta", "count": 0, "last_id": 0, "listening": [], "readers": {}}
        ])
    );
}

#[test]
fn default_channels_are_the_python_relays() {
    let app = spawn_app();
    assert_eq!(app.get("/api/channels").json()["channels"], json!(["claude", "codex", "proj-x"]));
}

#[test]
fn bad_posts_get_400_naming_the_field_and_store_nothing() {
    let app = spawn_app_with(|c| c.max_text_bytes = 1000);
    let long = "x".repeat(129);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "JSON"),
        (b"".to_vec(), "JSON"),
        (b"[1,2]".to_vec(), "object"),
        (b"\"text\"".to_vec(), "object"),
        (b"null".to_vec(), "object"),
        (json!({"sender": "s", "text": "t"}).to_string().into_bytes(), "target"),
        (json!({"target": "t", "text": "t"}).to_string().into_bytes(), "sender"),
        (json!({"target": "t", "sender": "s"}).to_string().into_bytes(), "text"),
        (json!({"target": "  ", "sender": "s", "text": "t"}).to_string().into_bytes(), "target"),
        (json!({"target": "t", "sender": "", "text": "t"}).to_string().into_bytes(), "sender"),
        (json!({"target": "t", "sender": "s", "text": " \n\t "}).to_string().into_bytes(), "text"),
        (json!({"target": 5, "sender": "s", "text": "t"}).to_string().into_bytes(), "target"),
        (json!({"target": "t", "sender": ["s"], "text": "t"}).to_string().into_bytes(), "sender"),
        (json!({"target": "t", "sender": "s", "text": null}).to_string().into_bytes(), "text"),
        (json!({"target": "a\u{0}b", "sender": "s", "text": "t"}).to_string().into_bytes(), "target"),
        (json!({"target": "t", "sender": "s\u{1b}[31m", "text": "t"}).to_string().into_bytes(), "sender"),
        (json!({"target": long, "sender": "s", "text": "t"}).to_string().into_bytes(), "target"),
        (json!({"target": "t", "sender": long, "text": "t"}).to_string().into_bytes(), "sender"),
        (json!({"target": "t", "sender": "s", "text": "y".repeat(1001)}).to_string().into_bytes(), "text"),
        (b"\xff\xfe{}".to_vec(), "JSON"),
    ];
    for (body, field) in &cases {
        let reply = request(app.addr, "POST", "/api/messages", &[], Some(body));
        reply.assert_error(400, field);
    }
    assert_eq!(app.message_count(), 0, "no rejected post was stored");
    // The limits themselves are allowed.
    let ok = json!({"target": "x".repeat(128), "sender": "s", "text": "y".repeat(1000)});
    assert_eq!(app.post_json("/api/messages", &ok).status, 201);
}

#[test]
fn body_over_the_limit_gets_413_and_stores_nothing() {
    let app = spawn_app_with(|c| c.max_text_bytes = 1000);
    let limit = relay::http::request::max_body_bytes(1000);
    let big = json!({"target": "t", "sender": "s", "text": "z".repeat(limit)}).to_string();
    request(app.addr, "POST", "/api/messages", &[], Some(big.as_bytes())).assert_error(413, "limit");
    // Chunked, with no Content-Length: refused while streaming.
    let mut raw = format!(
        "POST /api/messages HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.addr
    )
    .into_bytes();
    for chunk in big.as_bytes().chunks(8192) {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    // The relay may answer and close before reading the whole body; a reset is acceptable then.
    if let Ok(reply) = crate::helpers::send_raw(app.addr, &raw) {
        reply.assert_error(413, "limit");
    }
    assert_eq!(app.message_count(), 0);
}

#[test]
fn bad_queries_get_400_naming_the_parameter() {
    let app = spawn_app();
    let cases = [
        ("/api/messages?target=", "target"),
        ("/api/messages?target=%20", "target"),
        ("/api/messages?target=t&limit=abc", "limit"),
        ("/api/messages?target=t&limit=", "limit"),
        ("/api/messages?target=t&limit=1.5", "limit"),
        ("/api/messages?target=t&since_id=-1", "since_id"),
        ("/api/messages?target=t&since_id=abc", "since_id"),
        ("/api/messages?target=t&since_id=18446744073709551616", "since_id"),
        ("/api/messages?target=a%07b", "target"),
        ("/api/messages?target=%ff", "query"),
    ];
    for (path, field) in cases {
        app.get(path).assert_error(400, field);
    }
}

#[test]
fn unknown_routes_get_json_404_and_wrong_methods_405() {
    let app = spawn_app();
    app.get("/nope").assert_error(404, "no such route");
    app.get("/api/messages/extra").assert_error(404, "no such route");
    request(app.addr, "POST", "/nope", &[], Some(b"{}")).assert_error(404, "no such route");
    request(app.addr, "DELETE", "/api/messages", &[], None).assert_error(405, "method");
    request(app.addr, "PUT", "/api/messages", &[], Some(b"{}")).assert_error(405, "method");
    request(app.addr, "POST", "/api/channels", &[], Some(b"{}")).assert_error(405, "method");
    request(app.addr, "POST", "/healthz", &[], Some(b"")).assert_error(405, "method");
}

#[test]
fn healthz_says_ok() {
    let app = spawn_app();
    let reply = app.get("/healthz");
    assert_eq!((reply.status, reply.text().as_str()), (200, "ok"));
}

#[test]
fn docs_page_is_html_with_a_strict_policy() {
    let app = spawn_app();
    let reply = app.get("/docs");
    assert_eq!(reply.status, 200);
    assert!(reply.header("content-type").unwrap().starts_with("text/html"));
    assert!(reply.header("content-security-policy").unwrap().contains("default-src 'none'"));
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    let page = reply.text();
    assert!(page.contains("/api/messages") && page.contains("since_id"));
    let css = app.get("/static/relay.css");
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
}

#[test]
fn messages_and_ids_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_in(dir.path(), |_| {});
    let before: Vec<Value> =
        (0..5).map(|i| app.post("r", "s", &format!("before {i}")).json()["message"].clone()).collect();
    app.stop();
    let app = spawn_app_in(dir.path(), |_| {});
    assert_eq!(app.all_messages("r"), before, "same messages, same ids, same content");
    let next = app.post("r", "s", "after").json()["posted"].as_u64().unwrap();
    assert!(next > before.last().unwrap()["id"].as_u64().unwrap());
}

#[test]
fn wait_long_polls_until_a_message_arrives() {
    let app = spawn_app();
    let first = app.post("w", "claude", "packet").json()["posted"].as_u64().unwrap();
    let addr = app.addr;
    let waiter = thread::spawn(move || {
        let started = std::time::Instant::now();
        let path = format!("/api/messages?target=w&since_id={first}&wait=20&exclude_sender=claude");
        (request(addr, "GET", &path, &[], None).json(), started.elapsed())
    });
    thread::sleep(std::time::Duration::from_millis(200));
    app.post("w", "claude", "own message: does not end the wait");
    thread::sleep(std::time::Duration::from_millis(200));
    let reply = app.post("w", "codex", "feedback").json()["posted"].as_u64().unwrap();
    let (body, waited) = waiter.join().unwrap();
    assert_eq!(body["timed_out"], false);
    assert_eq!(ids(body["messages"].as_array().unwrap()), vec![reply]);
    assert!(waited < std::time::Duration::from_secs(10), "woken by the post, not the timeout");
    let empty = app.get(&format!("/api/messages?target=w&since_id={reply}&wait=0.2")).json();
    assert_eq!((empty["timed_out"].clone(), empty["latest_id"].clone()), (json!(true), json!(reply)));
    app.get("/api/messages?target=w&wait=1").assert_error(400, "wait");
    app.get("/api/messages?target=w&since_id=0&wait=-1").assert_error(400, "wait");
    app.get("/api/messages?target=w&since_id=0&wait=soon").assert_error(400, "wait");
}

#[test]
fn export_streams_the_log_as_json_lines() {
    let app = spawn_app();
    for i in 0..30 {
        app.post(["a", "b"][i % 2], "s", &format!("m{i}"));
    }
    let reply = app.get("/api/export");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<Value> = reply.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 30);
    assert_eq!(lines[0]["type"], "message_posted");
    assert_eq!(lines[0]["text"], "m0");
    let only_b = app.get("/api/export?target=b&since_id=10&until_id=20").text();
    let b_ids: Vec<u64> =
        only_b.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_u64().unwrap()).collect();
    assert_eq!(b_ids, vec![12, 14, 16, 18, 20]);
    app.get("/api/export?since_id=-1").assert_error(400, "since_id");
}

#[test]
fn head_answers_get_routes_with_their_status_and_headers_and_no_body() {
    let app = spawn_app();
    assert_eq!(app.post("proj-x", "claude", "hello").status, 201);
    for path in ["/healthz", "/", "/c/proj-x", "/api/messages", "/api/channels", "/docs", "/openapi.json"] {
        let get = request(app.addr, "GET", path, &[], None);
        let head = request(app.addr, "HEAD", path, &[], None);
        assert_eq!((get.status, head.status), (200, 200), "{path}");
        assert_eq!(head.header("content-type"), get.header("content-type"), "{path}");
        assert!(head.body.is_empty(), "{path}: {:?}", head.text());
    }
    assert_eq!(request(app.addr, "HEAD", "/no-such-route", &[], None).status, 404);
}

#[test]
fn get_messages_without_a_target_reads_the_python_relays_default_channel() {
    let app = spawn_app();
    assert_eq!(app.post("proj-x", "claude", "for the default").status, 201);
    assert_eq!(app.post("other", "claude", "elsewhere").status, 201);
    let page = app.get("/api/messages").json();
    assert_eq!(page["target"], "proj-x");
    let texts: Vec<&str> =
        page["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["for the default"]);
}

#[test]
fn a_json_body_after_a_byte_order_mark_is_read() {
    let app = spawn_app();
    let with_bom = |json: Value| [b"\xEF\xBB\xBF".as_slice(), json.to_string().as_bytes()].concat();
    let body = with_bom(json!({"target": "bom", "sender": "windows", "text": "from Notepad"}));
    let posted =
        request(app.addr, "POST", "/api/messages", &[("Content-Type", "application/json")], Some(&body));
    assert_eq!(posted.status, 201, "{}", posted.text());
    let call = with_bom(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "fetch_messages", "arguments": {"target": "bom"}}}));
    let headers = [("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")];
    let fetched = request(app.addr, "POST", "/mcp", &headers, Some(&call));
    assert_eq!(fetched.status, 200, "{}", fetched.text());
    assert!(fetched.text().contains("from Notepad"), "{}", fetched.text());
}
