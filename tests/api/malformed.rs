//! A pinned table of malformed requests and the answer each gets: status, and a piece of the
//! error text. Every one is refused with a 4xx (or, for reads, answered within the rules), none
//! gets a 5xx, and nothing is stored. Requests go out as raw bytes, so invalid UTF-8 and broken
//! framing reach the relay as sent.

use crate::helpers::{send_raw, spawn_app_with, Reply, TestApp};
use serde_json::{json, Value};

/// The text limit of the relay under test: small, so "one byte over" stays small.
const MAX_TEXT: usize = 1000;
/// The body limit that follows from it (request::max_body_bytes).
const MAX_BODY: usize = MAX_TEXT * 6 + 64 * 1024;

struct Case {
    name: String,
    request: Vec<u8>,
    status: u16,
    /// Found in the body (an error message, or the JSON-RPC error/tool text).
    needle: String,
}

fn raw(method: &str, target: &[u8], headers: &[(&str, &[u8])], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let has_host = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host"));
    if !has_host {
        out.extend_from_slice(b"Host: 127.0.0.1\r\n");
    }
    for (k, v) in headers {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-length")) {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(body);
    out
}

struct Table(Vec<Case>);

impl Table {
    fn add(&mut self, name: impl Into<String>, request: Vec<u8>, status: u16, needle: &str) {
        self.0.push(Case { name: name.into(), request, status, needle: needle.into() });
    }

    fn post(&mut self, name: impl Into<String>, body: &[u8], status: u16, needle: &str) {
        let request = raw("POST", b"/api/messages", &[("Content-Type", b"application/json")], body);
        self.add(name, request, status, needle);
    }

    fn get(&mut self, query: &str, status: u16, needle: &str) {
        let request = raw("GET", format!("/api/messages?{query}").as_bytes(), &[], b"");
        self.add(format!("GET ?{query}"), request, status, needle);
    }

    fn mcp(&mut self, name: impl Into<String>, body: &[u8], status: u16, needle: &str) {
        let headers: [(&str, &[u8]); 3] = [
            ("Content-Type", b"application/json"),
            ("Accept", b"application/json, text/event-stream"),
            ("MCP-Protocol-Version", b"2025-06-18"),
        ];
        self.add(name, raw("POST", b"/mcp", &headers, body), status, needle);
    }

    /// A tool call whose arguments are refused: the tool answers `isError` with this text.
    fn tool(&mut self, tool: &str, arguments: Value, needle: &str) {
        let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": tool, "arguments": arguments}});
        self.mcp(format!("{tool} {arguments}"), body.to_string().as_bytes(), 200, needle);
    }
}

fn message(target: Value, sender: Value, text: Value) -> Vec<u8> {
    json!({"target": target, "sender": sender, "text": text}).to_string().into_bytes()
}

fn table() -> Table {
    let mut t = Table(Vec::new());

    // POST /api/messages: bodies that are not a JSON object.
    const NOT_JSON: &str = "not valid JSON";
    const NOT_OBJECT: &str = "must be a JSON object";
    for (body, needle) in [
        ("", NOT_JSON),
        ("{", NOT_JSON),
        ("}", NOT_JSON),
        ("nul", NOT_JSON),
        ("[", NOT_JSON),
        ("{\"target\":", NOT_JSON),
        ("{'target':'a','sender':'b','text':'c'}", NOT_JSON),
        ("{target:\"a\"}", NOT_JSON),
        ("{\"target\":\"a\",}", NOT_JSON),
        ("{\"target\":\"a\",\"sender\":\"b\",\"text\":\"c\"} trailing", NOT_JSON),
        // A byte order mark is skipped (Windows tools write one): what follows is read.
        ("\u{feff}{\"target\":\"a\"}", "text: is required"),
        ("\u{feff}\u{feff}{}", NOT_JSON),
        ("{\"text\": NaN}", NOT_JSON),
        ("/* comment */ {}", NOT_JSON),
        ("{\"target\":\"a\\x\"}", NOT_JSON),
        ("{\"target\":\"\\ud800\"}", NOT_JSON),
        ("\"text\"", NOT_OBJECT),
        ("123", NOT_OBJECT),
        ("true", NOT_OBJECT),
        ("null", NOT_OBJECT),
        ("[]", NOT_OBJECT),
        ("[1,2]", NOT_OBJECT),
    ] {
        t.post(format!("body {body:?}"), body.as_bytes(), 400, needle);
    }
    t.post(
        "body of invalid UTF-8",
        b"{\"target\":\"\xff\xfe\",\"sender\":\"b\",\"text\":\"c\"}",
        400,
        "not valid JSON",
    );
    t.post("body of a lone continuation byte", b"\x80", 400, "not valid JSON");

    // Fields of the wrong type, one at a time.
    let good = || (json!("chan"), json!("me"), json!("hello"));
    for field in ["target", "sender", "text"] {
        for bad in
            [json!(1), json!(1.5), json!(true), json!(null), json!([]), json!({}), json!(["a"]), json!(-0)]
        {
            let (mut target, mut sender, mut text) = good();
            match field {
                "target" => target = bad.clone(),
                "sender" => sender = bad.clone(),
                _ => text = bad.clone(),
            }
            // A null sender is a sender left out (a principal's posts need none).
            let want = if field == "sender" && bad.is_null() {
                "sender: is required".to_owned()
            } else {
                format!("{field}: must be a string")
            };
            t.post(format!("{field} = {bad}"), &message(target, sender, text), 400, &want);
        }
    }
    // Missing fields.
    for (body, needle) in [
        (json!({}), "target: is required"),
        (json!({"sender": "me", "text": "x"}), "target: is required"),
        (json!({"target": "c", "text": "x"}), "sender: is required"),
        (json!({"target": "c", "sender": "me"}), "text: is required"),
        // A principal may leave the sender out: the text is missed first.
        (json!({"target": "c"}), "text: is required"),
        (json!({"text": "x"}), "target: is required"),
        (json!({"Target": "c", "sender": "me", "text": "x"}), "target: is required"),
    ] {
        t.post(format!("missing: {body}"), body.to_string().as_bytes(), 400, needle);
    }
    // Names that are not names.
    for field in ["target", "sender"] {
        for (bad, needle) in [
            ("", "must not be empty"),
            ("   ", "must not be empty"),
            ("\t", "must not be empty"),
            ("a\u{0}b", "must not contain control characters"),
            ("a\nb", "must not contain control characters"),
            ("a\u{7f}b", "must not contain control characters"),
            ("a\u{9b}b", "must not contain control characters"),
            (&"x".repeat(129), "must be at most 128 characters"),
            (&"é".repeat(129), "must be at most 128 characters"),
        ] {
            let (mut target, mut sender, text) = good();
            if field == "target" {
                target = json!(bad);
            } else {
                sender = json!(bad);
            }
            let name = format!("{field} = {:?}", bad.chars().take(12).collect::<String>());
            t.post(name, &message(target, sender, text), 400, &format!("{field}: {needle}"));
        }
    }
    // Texts that are blank or over the limit.
    for (text, needle) in [
        (String::new(), "text:"),
        (" ".into(), "text:"),
        ("\n\t \r\n".into(), "text:"),
        ("x".repeat(MAX_TEXT + 1), "1000 bytes"),
        ("é".repeat(MAX_TEXT / 2 + 1), "1000 bytes"),
        ("🦀".repeat(MAX_TEXT / 4 + 1), "1000 bytes"),
    ] {
        let (target, sender, _) = good();
        t.post(format!("text of {} bytes", text.len()), &message(target, sender, json!(text)), 400, needle);
    }
    // Bodies over the body limit, declared or not.
    let over = format!("{{\"target\":\"c\",\"sender\":\"me\",\"text\":\"{}\"}}", "x".repeat(MAX_BODY));
    t.post("body one byte over the limit", &over.as_bytes()[..MAX_BODY + 1], 413, "over the limit");
    let declared = raw("POST", b"/api/messages", &[("Content-Length", b"104857600")], b"{}");
    t.add("100 MiB declared", declared, 413, "over the limit");
    let declared = raw(
        "POST",
        b"/mcp",
        &[("Content-Length", b"104857600"), ("Accept", b"application/json, text/event-stream")],
        b"{}",
    );
    t.add("100 MiB declared to /mcp", declared, 413, "over the limit");

    // GET /api/messages: parameters.
    for (query, status, needle) in [
        ("", 200, "\"target\":\"proj-x\""),
        ("target=", 400, "target:"),
        ("target=%20", 400, "target:"),
        ("target=%00", 400, "control"),
        ("target=a%0Ab", 400, "control"),
        ("target=%FF", 400, "percent-encoded UTF-8"),
        ("target=%C3", 400, "percent-encoded UTF-8"),
        ("target=%ED%A0%80", 400, "percent-encoded UTF-8"),
        ("limit=5", 200, "\"target\":\"proj-x\""),
        ("target=c&limit=0", 200, "\"messages\":[]"),
        ("target=c&limit=-1", 200, "\"messages\":[]"),
        ("target=c&limit=9223372036854775808", 200, "\"messages\":[]"),
        ("target=c&limit=18446744073709551616", 200, "\"messages\":[]"),
        ("target=c&limit=99999999999999999999999999999999999999999", 400, "limit:"),
        ("target=c&limit=abc", 400, "limit:"),
        ("target=c&limit=", 400, "limit:"),
        ("target=c&limit=1.5", 400, "limit:"),
        ("target=c&limit=1e3", 400, "limit:"),
        ("target=c&limit=0x10", 400, "limit:"),
        ("target=c&limit=%2B5", 200, "\"messages\":[]"),
        ("target=c&since_id=0", 200, "\"latest_id\":0"),
        ("target=c&since_id=-1", 400, "since_id:"),
        ("target=c&since_id=9223372036854775808", 200, "\"latest_id\":9223372036854775808"),
        ("target=c&since_id=18446744073709551615", 200, "\"latest_id\":18446744073709551615"),
        ("target=c&since_id=18446744073709551616", 400, "since_id:"),
        ("target=c&since_id=abc", 400, "since_id:"),
        ("target=c&since_id=", 400, "since_id:"),
        ("target=c&since_id=1.5", 400, "since_id:"),
        ("target=c&since_id=%FF", 400, "percent-encoded UTF-8"),
        ("target=c&wait=1", 400, "wait: needs since_id"),
        ("target=c&since_id=0&wait=-1", 400, "wait:"),
        ("target=c&since_id=0&wait=abc", 400, "wait:"),
        ("target=c&since_id=0&wait=NaN", 400, "wait:"),
        ("target=c&since_id=0&wait=inf", 400, "wait:"),
        ("target=c&since_id=0&wait=1e999", 400, "wait:"),
        ("target=c&since_id=0&wait=", 400, "wait:"),
        ("target=c&since_id=0&wait=0", 200, "\"timed_out\":true"),
        ("target=c&since_id=0&wait=0.001&exclude_sender=x", 200, "\"timed_out\":true"),
        // A stray % is kept as it is (as browsers do), and unknown parameters are ignored.
        ("target=c&%G1=1", 200, "\"messages\":[]"),
        ("target=c&x=%", 200, "\"messages\":[]"),
    ] {
        t.get(query, status, needle);
    }
    t.add("query of raw invalid UTF-8", raw("GET", b"/api/messages?target=\xff", &[], b""), 400, "");
    for (query, needle) in [
        ("since_id=-1", "since_id:"),
        ("until_id=abc", "until_id:"),
        ("target=%FF", "UTF-8"),
        ("target=", "target:"),
    ] {
        t.add(
            format!("export ?{query}"),
            raw("GET", format!("/api/export?{query}").as_bytes(), &[], b""),
            400,
            needle,
        );
    }

    // JSON-RPC on /mcp.
    for (name, body, status, needle) in [
        ("not JSON", "nope", 400, "-32700"),
        ("empty body", "", 400, "-32700"),
        ("invalid UTF-8", "\u{0}", 400, "-32700"),
        ("a batch", r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, 400, "-32600"),
        ("an empty batch", "[]", 400, "-32600"),
        ("a number", "42", 400, "-32600"),
        ("a string", r#""ping""#, 400, "-32600"),
        ("id null", r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#, 400, "-32600"),
        ("id a float", r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#, 400, "-32600"),
        ("id an object", r#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#, 400, "-32600"),
        ("id an array", r#"{"jsonrpc":"2.0","id":[1],"method":"ping"}"#, 400, "-32600"),
        ("id a bool", r#"{"jsonrpc":"2.0","id":true,"method":"ping"}"#, 400, "-32600"),
        ("id past i64", r#"{"jsonrpc":"2.0","id":9223372036854775808,"method":"ping"}"#, 400, "-32600"),
        ("jsonrpc 1.0", r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#, 400, "-32600"),
        ("jsonrpc a number", r#"{"jsonrpc":2.0,"id":1,"method":"ping"}"#, 400, "-32600"),
        ("no jsonrpc", r#"{"id":1,"method":"ping"}"#, 400, "-32600"),
        ("method a number", r#"{"jsonrpc":"2.0","id":1,"method":7}"#, 400, "-32600"),
        ("no method", r#"{"jsonrpc":"2.0","id":1}"#, 400, "-32600"),
        ("params a string", r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":"x"}"#, 400, "-32600"),
        ("params a number", r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":3}"#, 400, "-32600"),
        ("unknown method", r#"{"jsonrpc":"2.0","id":1,"method":"nope"}"#, 200, "-32601"),
        (
            "unknown method, string id",
            r#"{"jsonrpc":"2.0","id":"x","method":"tools/unknown"}"#,
            200,
            "-32601",
        ),
        ("tools/call without params", r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#, 400, "-32602"),
        (
            "tools/call without a name",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
            400,
            "-32602",
        ),
        (
            "tools/call name a number",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":1}}"#,
            400,
            "-32602",
        ),
        (
            "tools/call arguments an array",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_channels","arguments":[]}}"#,
            400,
            "-32602",
        ),
        (
            "tools/call arguments a string",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_channels","arguments":"x"}}"#,
            400,
            "-32602",
        ),
        (
            "unknown tool",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"drop_tables","arguments":{}}}"#,
            200,
            "-32602",
        ),
    ] {
        t.mcp(format!("mcp {name}"), body.as_bytes(), status, needle);
    }
    t.mcp("mcp body of invalid UTF-8", b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}", 400, "-32700");
    let ping = br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let mcp_with = |headers: &[(&str, &[u8])]| raw("POST", b"/mcp", headers, ping);
    t.add(
        "mcp bad MCP-Protocol-Version",
        mcp_with(&[
            ("Content-Type", b"application/json"),
            ("Accept", b"application/json, text/event-stream"),
            ("MCP-Protocol-Version", b"1999-01-01"),
        ]),
        400,
        "MCP-Protocol-Version",
    );
    t.add(
        "mcp MCP-Protocol-Version of invalid UTF-8",
        mcp_with(&[
            ("Content-Type", b"application/json"),
            ("Accept", b"application/json, text/event-stream"),
            ("MCP-Protocol-Version", b"\xff"),
        ]),
        400,
        "",
    );
    t.add("mcp without Accept", mcp_with(&[("Content-Type", b"application/json")]), 406, "");
    t.add(
        "mcp Content-Type text/plain",
        mcp_with(&[("Content-Type", b"text/plain"), ("Accept", b"application/json, text/event-stream")]),
        415,
        "",
    );
    t.add(
        "mcp over the body limit",
        {
            let big = format!(
                "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{{\"x\":\"{}\"}}}}",
                "x".repeat(MAX_BODY)
            );
            raw("POST", b"/mcp", &[("Accept", b"application/json, text/event-stream")], big.as_bytes())
        },
        413,
        "over the limit",
    );

    // Tool arguments of the wrong kind: the tool says which argument, as a tool error.
    for (field, bad) in [
        ("target", json!(5)),
        ("sender", json!(null)),
        ("text", json!([])),
        ("target", json!("")),
        ("text", json!(" ")),
        ("sender", json!("a\u{0}b")),
    ] {
        let mut arguments = json!({"target": "c", "sender": "me", "text": "hi"});
        arguments[field] = bad;
        t.tool("post_message", arguments, &format!("{field}:"));
    }
    t.tool("post_message", json!({"target": "c", "sender": "me"}), "text:");
    t.tool(
        "post_message",
        json!({"target": "c", "sender": "me", "text": "x".repeat(MAX_TEXT + 1)}),
        "1000 bytes",
    );
    for (field, bad) in [
        ("target", json!(null)),
        ("target", json!(7)),
        ("since_id", json!(-1)),
        ("since_id", json!("abc")),
        ("since_id", json!(1.5)),
        ("since_id", json!(18446744073709551616.0)),
        ("limit", json!("abc")),
        ("limit", json!([])),
    ] {
        let mut arguments = json!({"target": "c"});
        arguments[field] = bad;
        t.tool("fetch_messages", arguments, &format!("{field}:"));
    }
    for (field, bad) in [
        ("target", json!(null)),
        ("since_id", json!(-5)),
        ("since_id", json!({})),
        ("timeout_s", json!(-1)),
        ("timeout_s", json!("soon")),
        ("exclude_sender", json!(3)),
    ] {
        let mut arguments = json!({"target": "c", "since_id": 0, "timeout_s": 0});
        arguments[field] = bad;
        t.tool("wait_for_messages", arguments, &format!("{field}:"));
    }
    t.tool("fetch_messages", json!({}), "target:");
    t.tool("wait_for_messages", json!({"target": "c"}), "since_id:");

    // Headers: Host, Origin, framing.
    let body = message(json!("c"), json!("me"), json!("hi"));
    let post_with = |headers: &[(&str, &[u8])]| {
        let mut all: Vec<(&str, &[u8])> = vec![("Content-Type", b"application/json")];
        all.extend_from_slice(headers);
        raw("POST", b"/api/messages", &all, &body)
    };
    t.add("Host of invalid UTF-8", post_with(&[("Host", b"\xff\xfe")]), 421, "");
    t.add("Host of a foreign name", post_with(&[("Host", b"evil.example")]), 421, "not allowed");
    t.add("Host with a bad port", post_with(&[("Host", b"127.0.0.1:99999")]), 421, "");
    t.add("Host empty", post_with(&[("Host", b"")]), 421, "");
    t.add("Origin of invalid UTF-8", post_with(&[("Origin", b"\xff")]), 403, "may not write");
    t.add("Origin null", post_with(&[("Origin", b"null")]), 403, "may not write");
    t.add("Origin foreign", post_with(&[("Origin", b"https://evil.example")]), 403, "may not write");
    t.add(
        "Origin twice",
        post_with(&[("Origin", b"http://127.0.0.1"), ("Origin", b"http://127.0.0.1")]),
        403,
        "more than one",
    );
    t.add("Origin with a path", post_with(&[("Origin", b"javascript:alert(1)")]), 403, "may not write");
    t.add("Sec-Fetch-Site cross-site", post_with(&[("Sec-Fetch-Site", b"cross-site")]), 403, "cross-site");
    t.add(
        "Content-Length not a number",
        raw("POST", b"/api/messages", &[("Content-Length", b"abc")], b""),
        400,
        "",
    );
    t.add(
        "Content-Length negative",
        raw("POST", b"/api/messages", &[("Content-Length", b"-1")], b""),
        400,
        "",
    );

    // Routes and methods.
    for (method, path, status) in [
        ("GET", "/api/nope", 404),
        ("GET", "/api", 404),
        ("GET", "/mcpx", 404),
        ("GET", "/static/../Cargo.toml", 404),
        ("GET", "/static/%2e%2e/Cargo.toml", 404),
        ("PUT", "/api/messages", 405),
        ("DELETE", "/api/messages", 405),
        ("PATCH", "/api/messages", 405),
        ("POST", "/api/channels", 405),
        ("POST", "/healthz", 405),
        ("DELETE", "/api/export", 405),
    ] {
        t.add(format!("{method} {path}"), raw(method, path.as_bytes(), &[], b""), status, "");
    }
    t
}

fn stored(app: &TestApp) -> u64 {
    app.message_count()
}

#[test]
fn malformed_requests_get_their_pinned_answers() {
    let app = spawn_app_with(|c| c.max_text_bytes = MAX_TEXT);
    let cases = table().0;
    assert!(cases.len() >= 200, "the table keeps at least 200 cases: {}", cases.len());
    let mut wrong = Vec::new();
    for case in &cases {
        let reply: Reply = match send_raw(app.addr, &case.request) {
            Ok(reply) => reply,
            Err(e) => {
                wrong.push(format!("{}: no answer ({e})", case.name));
                continue;
            }
        };
        let text = reply.text();
        if reply.status != case.status || !text.contains(&case.needle) || reply.status >= 500 {
            wrong.push(format!(
                "{}: got {} {:?}, want {} with {:?}",
                case.name,
                reply.status,
                &text[..text.len().min(200)],
                case.status,
                case.needle
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases answered otherwise:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
    assert_eq!(stored(&app), 0, "no malformed request stored anything");
    eprintln!("malformed requests: {} cases, all answered as pinned, none stored", cases.len());
}

/// Resident memory of a process, from /proc.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc status");
    kb * 1024
}

#[test]
fn hundred_mib_bodies_are_refused_without_growing_memory() {
    use std::io::{Read, Write};
    let work = tempfile::tempdir().unwrap();
    let relay = crate::helpers::start_relay(work.path(), &[]);
    // Let start-up settle (the web UI loads its syntaxes in the background) before the baseline.
    crate::helpers::request(relay.addr, "GET", "/c/warm", &[], None);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let before = rss_bytes(relay.child.id());
    for path in ["/api/messages", "/mcp", "/ui/messages"] {
        // Chunked, so no Content-Length gives it away: the relay must stop reading at its limit.
        let mut stream = std::net::TcpStream::connect(relay.addr).unwrap();
        stream.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
            relay.addr
        )
        .unwrap();
        let chunk = vec![b'x'; 1 << 20];
        let mut sent = 0;
        for _ in 0..100 {
            let head = format!("{:x}\r\n", chunk.len());
            let ok = stream
                .write_all(head.as_bytes())
                .and_then(|()| stream.write_all(&chunk))
                .and_then(|()| stream.write_all(b"\r\n"));
            if ok.is_err() {
                break; // The relay answered and closed: it stopped reading.
            }
            sent += 1;
        }
        let _ = stream.write_all(b"0\r\n\r\n");
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply);
        let reply = String::from_utf8_lossy(&reply);
        assert!(
            reply.starts_with("HTTP/1.1 413"),
            "{path} after {sent} MiB: {}",
            &reply[..reply.len().min(200)]
        );
    }
    let growth = rss_bytes(relay.child.id()).saturating_sub(before);
    eprintln!("100 MiB bodies to 3 routes: resident memory grew {} KiB", growth / 1024);
    assert!(growth < 32 << 20, "memory grew {growth} bytes");
}

/// Hostile credentials on a relay with a principal: each gets 401 saying what is wrong, never a
/// 5xx, and nothing is stored.
#[test]
fn hostile_credentials_get_401_saying_which() {
    let app = spawn_app_with(|_| {});
    // On a relay with no principal yet, the first is added by whoever may call it.
    let added = app.post_json("/api/principals", &json!({"name": "codex"}));
    assert_eq!(added.status, 201, "{}", added.text());
    let real = added.json()["credential"].as_str().unwrap().to_owned();
    let other = app.post_json("/api/principals/codex/credentials", &json!({}));
    assert_eq!(other.status, 401, "the relay is closed now: {}", other.text());
    let body = message(json!("t"), json!("codex"), json!("hello"));
    let bearer = |value: &[u8]| {
        let headers: [(&str, &[u8]); 2] = [("Content-Type", b"application/json"), ("Authorization", value)];
        raw("POST", b"/api/messages", &headers, &body)
    };
    let forged_secret =
        format!("Bearer {}{}", &real[..real.len() - 1], if real.ends_with('0') { '1' } else { '0' });
    let forged_key = format!("Bearer ccr_000000000000_{}", &real[17..]);
    let upper = format!("Bearer {}", real.to_uppercase());
    let long = format!("Bearer ccr_{}", "a".repeat(300));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "no credential",
            raw("POST", b"/api/messages", &[("Content-Type", b"application/json")], &body),
            "needs a credential",
        ),
        ("empty bearer", bearer(b"Bearer "), "malformed"),
        ("basic scheme", bearer(b"Basic Y29kZXg6eA=="), "malformed"),
        ("lowercase scheme", bearer(format!("bearer {real}").as_bytes()), "malformed"),
        ("not UTF-8", bearer(b"Bearer ccr_\xff\xfe"), "malformed"),
        ("the secret off by one", bearer(forged_secret.as_bytes()), "not one this relay issued"),
        ("another key id", bearer(forged_key.as_bytes()), "not one this relay issued"),
        ("upper case", bearer(upper.as_bytes()), "wrong or malformed"),
        ("300 characters", bearer(long.as_bytes()), "too long"),
        ("a guess at a token", bearer(b"Bearer 0123456789abcdef0123"), "wrong or malformed"),
        ("in the query", raw("GET", b"/api/messages?target=t&token=abc", &[], b""), "in the URL"),
    ];
    let mut wrong = Vec::new();
    for (name, request, needle) in &cases {
        let reply = send_raw(app.addr, request).unwrap();
        let want = if name.contains("query") { 400 } else { 401 };
        if reply.status != want || !reply.text().contains(needle) {
            wrong.push(format!("{name}: got {} {}", reply.status, reply.text()));
        }
    }
    let two = raw(
        "POST",
        b"/api/messages",
        &[
            ("Content-Type", b"application/json"),
            ("Authorization", format!("Bearer {real}").as_bytes()),
            ("Authorization", format!("Bearer {real}").as_bytes()),
        ],
        &body,
    );
    let reply = send_raw(app.addr, &two).unwrap();
    if reply.status != 401 || !reply.text().contains("more than one") {
        wrong.push(format!("two headers: got {} {}", reply.status, reply.text()));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let channels = send_raw(
        app.addr,
        &raw("GET", b"/api/channels", &[("Authorization", format!("Bearer {real}").as_bytes())], b""),
    );
    let counts = channels.unwrap().json()["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(counts, 0, "no hostile request stored anything");
    let good = send_raw(app.addr, &bearer(format!("Bearer {real}").as_bytes())).unwrap();
    assert_eq!(good.status, 201, "the real credential still works: {}", good.text());
}
