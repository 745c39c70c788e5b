//! `GET /metrics`: scraped after real traffic through REST and MCP; the metric names are pinned.

use crate::helpers::{request, spawn_app};
use serde_json::json;
use std::collections::BTreeMap;

/// Every metric family the relay reports. A change here is a change for every dashboard and
/// alert built on them: update docs/api.md ("Metrics") with it.
const NAMES: [&str; 13] = [
    "relay_commit_group_size",
    "relay_commit_seconds",
    "relay_denied_total",
    "relay_disk_bytes",
    "relay_fetches_total",
    "relay_log_last_id",
    "relay_open_connections",
    "relay_open_event_streams",
    "relay_open_waits",
    "relay_posts_total",
    "relay_projection_lag_events",
    "relay_refused_requests_total",
    "relay_waits_total",
];

/// The samples of a scrape: `name{labels}` to value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (key, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {l:?}"));
            (key.to_owned(), value.parse().unwrap_or_else(|_| panic!("not a number: {l:?}")))
        })
        .collect()
}

#[test]
fn a_scrape_counts_what_happened_under_pinned_names() {
    let app = spawn_app();
    app.post("m", "claude", "one");
    app.post("m", "codex", "two");
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "post_message", "arguments": {"target": "m", "sender": "mcp", "text": "three"}}});
    let headers = [("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")];
    assert_eq!(request(app.addr, "POST", "/mcp", &headers, Some(body.to_string().as_bytes())).status, 200);
    app.get("/api/messages?target=m&since_id=0");
    assert_eq!(app.get("/api/messages?target=m&since_id=3&wait=0.05").status, 200);
    assert_eq!(app.get("/api/messages?since_id=nope").status, 400);
    assert_eq!(request(app.addr, "GET", "/api/channels", &[("Host", "evil.example")], None).status, 421);

    let reply = app.get("/metrics");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply.header("content-type").is_some_and(|t| t.starts_with("text/plain; version=0.0.4")));
    let text = reply.text();
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(names, NAMES, "the metric names are pinned:\n{text}");
    for name in NAMES {
        assert!(text.contains(&format!("# HELP {name} ")), "{name} has no help text");
    }

    let got = samples(&text);
    let value = |key: &str| *got.get(key).unwrap_or_else(|| panic!("no sample {key}:\n{text}"));
    assert_eq!(value(r#"relay_posts_total{source="rest"}"#), 2.0);
    assert_eq!(value(r#"relay_posts_total{source="mcp"}"#), 1.0);
    assert_eq!(value(r#"relay_posts_total{source="ui"}"#), 0.0);
    assert_eq!(value(r#"relay_fetches_total{source="rest"}"#), 1.0);
    assert_eq!(value(r#"relay_waits_total{source="rest"}"#), 1.0);
    assert_eq!(value(r#"relay_refused_requests_total{status="400"}"#), 1.0);
    assert_eq!(value(r#"relay_refused_requests_total{status="421"}"#), 1.0);
    assert_eq!(value("relay_commit_seconds_count"), 3.0);
    assert!(value("relay_commit_seconds_sum") > 0.0);
    assert_eq!(value("relay_commit_group_size_sum"), 3.0, "every message in one group or another");
    assert_eq!(value("relay_log_last_id"), 3.0);
    assert_eq!(value(r#"relay_projection_lag_events{projection="views"}"#), 0.0);
    assert_eq!(value(r#"relay_open_waits"#), 0.0);
    assert_eq!(value(r#"relay_open_connections"#), 1.0, "the scrape's own");
    assert!(value(r#"relay_disk_bytes{what="data"}"#) > 0.0);
}
