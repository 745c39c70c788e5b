//! Property tests through the real HTTP path: random REST bodies, query strings and JSON-RPC
//! messages against one relay. Whatever arrives: never a 5xx, never a dropped connection, and a
//! post is stored exactly when it is acknowledged. `RELAY_FUZZ_CASES` sets the cases per
//! property (CI: 3,500 each, 10,500 in all).

use crate::helpers::{send_raw, spawn_app_with, TestApp};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};

const MAX_TEXT: usize = 2000;

fn cases() -> u32 {
    std::env::var("RELAY_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3500)
}

fn runner() -> TestRunner {
    TestRunner::new(Config { cases: cases(), failure_persistence: None, ..Config::default() })
}

fn send(app: &TestApp, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Vec<u8>) {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", app.addr).into_bytes();
    for (k, v) in headers {
        raw.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    raw.extend_from_slice(format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()).as_bytes());
    raw.extend_from_slice(body);
    let reply = send_raw(app.addr, &raw).expect("the relay answers every request");
    (reply.status, reply.body)
}

/// Strings that hit the interesting parts: names, controls, quotes, escapes, multibyte.
fn fuzzy_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z-]{0,8}",
        "[ -~]{0,40}",
        "\\PC{0,20}",
        "[\\x00-\\x1f\\x7f\"\\\\ ]{0,6}",
        Just("x".repeat(129)),
        Just("y".repeat(MAX_TEXT + 1)),
    ]
}

/// A JSON value of any shape, a few levels deep.
fn fuzzy_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1e20f64..1e20).prop_map(|f| json!(f)),
        fuzzy_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    "target|sender|text|id|method|params|jsonrpc|name|arguments|since_id|limit"
                        .prop_map(String::from),
                    fuzzy_string()
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A POST body: a message with fuzzed fields, any JSON, or bytes.
fn post_body() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![fuzzy_string().prop_map(Value::String), fuzzy_json()];
    prop_oneof![
        (field.clone(), field.clone(), field)
            .prop_map(|(t, s, x)| json!({"target": t, "sender": s, "text": x}).to_string().into_bytes()),
        fuzzy_json().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}

#[test]
fn random_posts_are_stored_exactly_when_acknowledged() {
    let app = spawn_app_with(|c| c.max_text_bytes = MAX_TEXT);
    let acknowledged = AtomicU64::new(0);
    runner()
        .run(&post_body(), |body| {
            let (status, reply) =
                send(&app, "POST", "/api/messages", &[("Content-Type", "application/json")], &body);
            prop_assert!(status < 500, "{status}: {}", String::from_utf8_lossy(&reply));
            prop_assert!(status == 201 || status == 400 || status == 413, "{status}");
            if status == 201 {
                acknowledged.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(app.message_count(), acknowledged.load(Ordering::Relaxed), "stored = acknowledged");
    eprintln!(
        "random posts: {} cases, {} acknowledged and stored",
        cases(),
        acknowledged.load(Ordering::Relaxed)
    );
}

#[test]
fn random_query_strings_never_fail_the_relay() {
    let app = spawn_app_with(|c| c.max_text_bytes = MAX_TEXT);
    app.post("chan", "me", "one");
    let key = prop_oneof![
        Just("target"),
        Just("since_id"),
        Just("limit"),
        Just("wait"),
        Just("exclude_sender"),
        Just("before"),
        Just("x")
    ];
    // Values as a URL carries them: percent-escapes (valid or not), signs, digits, letters.
    let value = "(%[0-9A-Fa-f]{2}|%|[-+0-9.eE]|[a-z]|chan){0,6}";
    let query = prop::collection::vec((key, value), 0..5);
    let path =
        prop_oneof![Just("/api/messages"), Just("/api/export"), Just("/c/chan/older"), Just("/api/channels")];
    runner()
        .run(&(path, query), |(path, pairs)| {
            // A wait is capped at 0.05 s here so the run stays short; it is not what is tested.
            let query: Vec<String> = pairs
                .iter()
                .map(
                    |(k, v)| {
                        if *k == "wait" {
                            format!("wait=0.0{}", v.len() % 5)
                        } else {
                            format!("{k}={v}")
                        }
                    },
                )
                .collect();
            let (status, reply) = send(&app, "GET", &format!("{path}?{}", query.join("&")), &[], b"");
            prop_assert!(
                status == 200 || status == 400,
                "{path}?{}: {status} {}",
                query.join("&"),
                String::from_utf8_lossy(&reply)
            );
            Ok(())
        })
        .unwrap();
    assert_eq!(app.message_count(), 1);
    eprintln!("random query strings: {} cases, none failed the relay", cases());
}

#[test]
fn random_jsonrpc_messages_get_protocol_answers() {
    let app = spawn_app_with(|c| c.max_text_bytes = MAX_TEXT);
    let method = prop_oneof![
        Just(json!("tools/call")),
        Just(json!("tools/list")),
        Just(json!("ping")),
        Just(json!("initialize")),
        Just(json!("notifications/initialized")),
        fuzzy_json()
    ];
    let tool = prop_oneof![
        Just(json!("post_message")),
        Just(json!("fetch_messages")),
        Just(json!("list_channels")),
        Just(json!("wait_for_messages")),
        fuzzy_json()
    ];
    let arguments = prop_oneof![
        fuzzy_json(),
        (fuzzy_json(), fuzzy_json(), fuzzy_json())
            .prop_map(|(t, s, x)| json!({"target": t, "sender": s, "text": x, "timeout_s": 0})),
        ("[a-z]{1,8}", "[a-z]{1,8}", "[ -~]{1,40}")
            .prop_map(|(t, s, x)| json!({"target": t, "sender": s, "text": x, "timeout_s": 0})),
    ];
    let id = prop_oneof![Just(json!(1)), Just(json!("a")), fuzzy_json()];
    let message =
        (method, tool, arguments, id, any::<bool>()).prop_map(|(method, name, arguments, id, with_id)| {
            let mut m =
                json!({"jsonrpc": "2.0", "method": method, "params": {"name": name, "arguments": arguments}});
            if with_id {
                m["id"] = id;
            }
            m.to_string().into_bytes()
        });
    let body = prop_oneof![4 => message, 1 => fuzzy_json().prop_map(|v| v.to_string().into_bytes())];
    let before = app.message_count();
    let acknowledged = AtomicU64::new(0);
    let headers = [("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")];
    runner()
        .run(&body, |body| {
            let (status, reply) = send(&app, "POST", "/mcp", &headers, &body);
            let text = String::from_utf8_lossy(&reply);
            prop_assert!(
                [200, 202, 400, 413].contains(&status),
                "{status}: {text} for {}",
                String::from_utf8_lossy(&body)
            );
            if status == 200 {
                let answer: Value = serde_json::from_slice(&reply)
                    .map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
                prop_assert!(answer.get("result").is_some() != answer.get("error").is_some(), "{text}");
                let posted = answer["result"]["structuredContent"]["posted"].as_u64().is_some();
                if posted {
                    acknowledged.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(app.message_count() - before, acknowledged.load(Ordering::Relaxed), "stored = acknowledged");
    eprintln!(
        "random JSON-RPC messages: {} cases, {} posts acknowledged and stored",
        cases(),
        acknowledged.load(Ordering::Relaxed)
    );
}
