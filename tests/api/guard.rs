//! The host and origin guard, spoken as raw HTTP bytes so no client library fixes a forged
//! header on the way.

use crate::helpers::{send_raw, spawn_app, spawn_app_with, Reply};
use relay::values::HostPattern;

const POST_BODY: &str = r#"{"target":"t","sender":"s","text":"hello"}"#;

fn raw_post(app: &crate::helpers::TestApp, headers: &str) -> Reply {
    let raw = format!(
        "POST /api/messages HTTP/1.1\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{POST_BODY}",
        POST_BODY.len()
    );
    send_raw(app.addr, raw.as_bytes()).unwrap()
}

fn raw_get(app: &crate::helpers::TestApp, path: &str, headers: &str) -> Reply {
    send_raw(app.addr, format!("GET {path} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n").as_bytes())
        .unwrap()
}

#[test]
fn forged_host_gets_421_on_every_route() {
    let app = spawn_app();
    for path in
        ["/healthz", "/api/messages?target=t", "/api/channels", "/openapi.json", "/docs", "/no-such-route"]
    {
        raw_get(&app, path, "Host: evil.example:8010\r\n").assert_error(421, "evil.example");
    }
    raw_post(&app, "Host: attacker.test\r\n").assert_error(421, "not allowed");
    assert_eq!(app.message_count(), 0);
}

#[test]
fn loopback_hosts_are_served() {
    let app = spawn_app();
    let port = app.addr.port();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "localhost".into(),
        format!("[::1]:{port}"),
    ] {
        assert_eq!(raw_get(&app, "/healthz", &format!("Host: {host}\r\n")).status, 200, "{host}");
    }
}

#[test]
fn two_host_headers_get_421() {
    let app = spawn_app();
    let host = app.host();
    raw_get(&app, "/healthz", &format!("Host: {host}\r\nHost: evil.example\r\n")).assert_error(421, "Host");
}

#[test]
fn missing_host_gets_421() {
    let app = spawn_app();
    let reply = send_raw(app.addr, b"GET /healthz HTTP/1.0\r\n\r\n").unwrap();
    reply.assert_error(421, "Host");
}

#[test]
fn foreign_and_null_origins_cannot_post() {
    let app = spawn_app();
    let host = app.host();
    for origin in ["http://evil.example", "https://evil.example:443", "null", "http://127.0.0.1.evil.example"]
    {
        raw_post(&app, &format!("Host: {host}\r\nOrigin: {origin}\r\n")).assert_error(403, "origin");
    }
    assert_eq!(app.message_count(), 0, "nothing stored");
}

#[test]
fn cross_site_form_post_is_refused() {
    let app = spawn_app();
    let host = app.host();
    raw_post(&app, &format!("Host: {host}\r\nSec-Fetch-Site: cross-site\r\n"))
        .assert_error(403, "cross-site");
    assert_eq!(app.message_count(), 0);
}

#[test]
fn own_and_loopback_origins_can_post() {
    let app = spawn_app();
    let host = app.host();
    for origin in [format!("http://{host}"), "http://localhost:5173".into(), "http://[::1]:3000".into()] {
        let reply =
            raw_post(&app, &format!("Host: {host}\r\nOrigin: {origin}\r\nSec-Fetch-Site: same-origin\r\n"));
        assert_eq!(reply.status, 201, "{origin}: {}", reply.text());
    }
    // A local tool sends no Origin at all.
    assert_eq!(raw_post(&app, &format!("Host: {host}\r\n")).status, 201);
}

#[test]
fn reads_are_allowed_with_any_origin() {
    let app = spawn_app();
    let host = app.host();
    assert_eq!(raw_get(&app, "/api/channels", &format!("Host: {host}\r\nOrigin: null\r\n")).status, 200);
}

#[test]
fn allowed_hosts_open_the_relay_to_named_hosts() {
    let app = spawn_app_with(|c| {
        c.allowed_hosts =
            vec![HostPattern::parse("relay.lan").unwrap(), HostPattern::parse("10.0.0.5:9999").unwrap()]
    });
    let port = app.addr.port();
    assert_eq!(raw_get(&app, "/healthz", &format!("Host: relay.lan:{port}\r\n")).status, 200);
    assert_eq!(raw_get(&app, "/healthz", "Host: 10.0.0.5:9999\r\n").status, 200);
    raw_get(&app, "/healthz", &format!("Host: 10.0.0.5:{port}\r\n")).assert_error(421, "10.0.0.5");
    let reply = raw_post(&app, &format!("Host: relay.lan:{port}\r\nOrigin: http://relay.lan:{port}\r\n"));
    assert_eq!(reply.status, 201, "{}", reply.text());
}
