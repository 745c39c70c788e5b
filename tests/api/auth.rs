//! The bearer token: every route with no token, a wrong one, the right one, one in the query
//! string and the browser's cookie; the sign-in form; the host and origin guard with auth on;
//! the token kept out of the log; exposure beyond loopback refused without a token.

use crate::helpers::{relay_command, request, spawn_app_with, start_relay, Reply, TestApp};
use relay::values::Token;

const TOKEN: &str = "test-token-0123456789abcdef";
const RIGHT: &str = "Bearer test-token-0123456789abcdef";
const WRONG: &str = "Bearer test-token-0123456789abcdeX";

fn app() -> TestApp {
    spawn_app_with(|c| c.auth_token = Some(Token::parse(TOKEN).unwrap()))
}

const MCP_PING: &str = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
const POST_BODY: &str = r#"{"target":"t","sender":"s","text":"hello"}"#;

/// (method, path, body, is a web UI route)
const ROUTES: [(&str, &str, Option<&str>, bool); 14] = [
    ("GET", "/api/messages?target=t", None, false),
    ("POST", "/api/messages", Some(POST_BODY), false),
    ("GET", "/api/channels", None, false),
    ("GET", "/api/export", None, false),
    ("POST", "/mcp", Some(MCP_PING), false),
    ("GET", "/openapi.json", None, false),
    ("GET", "/metrics", None, false),
    ("GET", "/", None, true),
    ("GET", "/c/t", None, true),
    ("GET", "/c/t/older?before=5", None, true),
    ("POST", "/ui/messages", Some(POST_BODY), true),
    ("GET", "/docs", None, true),
    ("GET", "/c/t/events?after=0", None, true),
    ("GET", "/channels/events", None, true),
];

fn call(app: &TestApp, method: &str, path: &str, body: Option<&str>, extra: &[(&str, &str)]) -> Reply {
    let mut headers =
        vec![("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")];
    headers.extend_from_slice(extra);
    if path.contains("/events") {
        // A stream never ends: read only the head.
        let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", app.addr);
        for (k, v) in &headers {
            raw.push_str(&format!("{k}: {v}\r\n"));
        }
        raw.push_str("\r\n");
        return head_only(app, &raw);
    }
    request(app.addr, method, path, &headers, body.map(str::as_bytes))
}

fn head_only(app: &TestApp, raw: &str) -> Reply {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut stream = std::net::TcpStream::connect(app.addr).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    stream.write_all(raw.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let code = status.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    // A refusal has a body of known length; a stream's body never ends, so it is not read.
    let length = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok());
    let mut body = vec![0; length.unwrap_or(0)];
    reader.read_exact(&mut body).unwrap();
    Reply { status: code, headers, body }
}

/// Messages stored, over all channels.
fn stored(app: &TestApp) -> u64 {
    let channels = request(app.addr, "GET", "/api/channels", &[("Authorization", RIGHT)], None).json();
    channels["details"].as_array().unwrap().iter().map(|c| c["count"].as_u64().unwrap()).sum()
}

#[test]
fn every_route_needs_the_token() {
    let app = app();
    for (method, path, body, ui) in ROUTES {
        let none = call(&app, method, path, body, &[]);
        assert_eq!(none.status, 401, "{method} {path} without a token");
        let wrong = call(&app, method, path, body, &[("Authorization", WRONG)]);
        assert_eq!(wrong.status, 401, "{method} {path} with a wrong token");
        let page = ["/", "/docs", "/c/t"].contains(&path);
        if page {
            assert!(
                none.header("content-type").unwrap().starts_with("text/html"),
                "{path}: the sign-in page"
            );
            assert!(none.text().contains("action=\"/ui/login\""), "{path}");
        } else {
            assert_eq!(
                none.header("www-authenticate"),
                Some("Bearer realm=\"claude-codex-relay\""),
                "{path}"
            );
            assert!(none.json()["error"].as_str().unwrap().contains("Authorization: Bearer"), "{path}");
        }
        assert!(!none.text().contains(TOKEN) && !wrong.text().contains(TOKEN));

        let right = call(&app, method, path, body, &[("Authorization", RIGHT)]);
        assert!(
            (200..300).contains(&right.status),
            "{method} {path} with the token: {} {}",
            right.status,
            right.text()
        );

        let query = if path.contains('?') {
            format!("{path}&token={TOKEN}")
        } else {
            format!("{path}?token={TOKEN}")
        };
        let in_query = call(&app, method, &query, body, &[("Authorization", RIGHT)]);
        in_query.assert_error(400, "a token in the URL is refused");

        let cookie = format!("relay_token={TOKEN}");
        let by_cookie = call(&app, method, path, body, &[("Cookie", &cookie)]);
        let expected = if ui { "2xx" } else { "401" };
        let got = if (200..300).contains(&by_cookie.status) { "2xx" } else { &by_cookie.status.to_string() };
        assert_eq!(got, expected, "{method} {path} with the cookie");
    }
    // Open without a token: liveness and the page assets.
    assert_eq!(app.get("/healthz").status, 200);
    assert_eq!(app.get("/static/relay.css").status, 200);
    // Three posts went in: REST and UI with the token, UI with the cookie.
    assert_eq!(stored(&app), 3);
}

#[test]
fn the_sign_in_form_sets_a_strict_cookie() {
    let app = app();
    let form = |token: &str, next: &str| {
        let body = format!("token={token}&next={next}");
        request(
            app.addr,
            "POST",
            "/ui/login",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some(body.as_bytes()),
        )
    };
    let ok = form(TOKEN, "%2Fc%2Fproj-x");
    assert_eq!(ok.status, 303, "{}", ok.text());
    assert_eq!(ok.header("location"), Some("/c/proj-x"));
    let cookie = ok.header("set-cookie").unwrap();
    assert!(cookie.starts_with(&format!("relay_token={TOKEN};")), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let bad = form("not-the-token-0123456789", "%2F");
    assert_eq!(bad.status, 401);
    assert!(bad.header("set-cookie").is_none());
    assert!(bad.text().contains("not this relay"));
    // Only paths on this relay: no open redirect.
    for next in ["https%3A%2F%2Fevil.example", "%2F%2Fevil.example"] {
        assert_eq!(form(TOKEN, next).header("location"), Some("/"), "{next}");
    }
}

#[test]
fn the_guard_still_holds_with_the_token() {
    let app = app();
    let rebinding = request(
        app.addr,
        "GET",
        "/api/channels",
        &[("Host", "evil.example"), ("Authorization", RIGHT)],
        None,
    );
    assert_eq!(rebinding.status, 421);
    let cross_site = request(
        app.addr,
        "POST",
        "/api/messages",
        &[("Content-Type", "application/json"), ("Origin", "https://evil.example"), ("Authorization", RIGHT)],
        Some(POST_BODY.as_bytes()),
    );
    cross_site.assert_error(403, "may not write");
    let cookie = format!("relay_token={TOKEN}");
    let forged_form = request(
        app.addr,
        "POST",
        "/ui/messages",
        &[("Content-Type", "application/json"), ("Sec-Fetch-Site", "cross-site"), ("Cookie", &cookie)],
        Some(POST_BODY.as_bytes()),
    );
    forged_form.assert_error(403, "cross-site");
    let channels = request(app.addr, "GET", "/api/channels", &[("Authorization", RIGHT)], None).json();
    assert_eq!(
        channels["details"].as_array().unwrap().iter().map(|c| c["count"].as_u64().unwrap()).sum::<u64>(),
        0
    );
}

#[test]
fn the_token_stays_out_of_the_log() {
    let work = tempfile::tempdir().unwrap();
    let relay = start_relay(work.path(), &[("CLAUDE_CODEX_AUTH_TOKEN", TOKEN)]);
    for auth in [RIGHT, WRONG] {
        request(relay.addr, "GET", "/api/channels", &[("Authorization", auth)], None);
        request(relay.addr, "GET", &format!("/api/channels?token={TOKEN}"), &[], None);
        let post = request(
            relay.addr,
            "POST",
            "/api/messages",
            &[("Content-Type", "application/json"), ("Authorization", auth)],
            Some(POST_BODY.as_bytes()),
        );
        assert_eq!(post.status, if auth == RIGHT { 201 } else { 401 });
    }
    // A clean stop, so the log's buffer is written out.
    let mut relay = relay;
    std::process::Command::new("kill").args(["-TERM", &relay.child.id().to_string()]).status().unwrap();
    relay.child.wait().unwrap();
    let log = std::fs::read_to_string(work.path().join("log/claude_codex.log")).unwrap();
    assert!(log.contains("http_error") && log.contains("401"), "{log}");
    assert!(!log.contains("0123456789abcde"), "the token (or the wrong one) is in the log:\n{log}");
}

#[test]
fn listening_beyond_loopback_needs_a_token() {
    let work = tempfile::tempdir().unwrap();
    // The check runs before anything is bound, so nothing listens beyond loopback here.
    let out = relay_command(work.path(), &["--host", "0.0.0.0", "--port", "0"], &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    for needle in ["refusing to listen on 0.0.0.0 without a token", "auth_token", "--insecure-no-auth"] {
        assert!(stderr.contains(needle), "{stderr}");
    }
    assert!(!work.path().join("storage").exists(), "refused before opening the store");
    let bad = relay_command(work.path(), &["--port", "0"], &[("CLAUDE_CODEX_AUTH_TOKEN", "short")])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("auth_token must be at least 16 characters"));
}

/// Principals guard a relay as a token does: beyond loopback it starts, warning that their
/// credentials would cross the network in clear text, instead of refusing.
#[test]
fn principals_guard_a_relay_beyond_loopback_as_a_token_does() {
    let work = tempfile::tempdir().unwrap();
    let added =
        relay_command(work.path(), &["principals", "add", "root", "--role", "admin"], &[]).output().unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    // 192.0.2.1 (TEST-NET-1) is no address of this machine: the check passes and the bind
    // then fails, so nothing listens beyond loopback.
    let out = relay_command(work.path(), &["--host", "192.0.2.1", "--port", "0"], &[]).output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("with credentials but without TLS"), "{stderr}");
    assert!(!stderr.contains("refusing to listen") && stderr.contains("192.0.2.1"), "{stderr}");
}
