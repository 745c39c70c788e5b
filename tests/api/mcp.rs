//! `/mcp`: real MCP clients (the official Python and TypeScript SDKs, installed by
//! scripts/test), the protocol's edge cases as raw HTTP, and MCP and REST seeing the same data.

use crate::helpers::{request, spawn_app, spawn_app_with, start_relay, start_relay_on, Reply, TestApp};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Bounds one client run; the full Python run takes about a second.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

pub(crate) fn client_path(var: &str) -> PathBuf {
    let path = std::env::var_os(var).unwrap_or_else(|| {
        panic!("{var} is not set: run the tests with scripts/test, which installs the MCP clients")
    });
    PathBuf::from(path)
}

pub(crate) fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// Runs a client to completion within [`CLIENT_TIMEOUT`], killing it if it hangs.
pub(crate) fn run_client(mut cmd: Command) -> Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("client starts");
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

pub(crate) fn assert_client_passed(name: &str, out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} client failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{name}: {} checks passed", stdout.lines().filter(|l| l.starts_with("ok ")).count());
    stdout
}

#[test]
fn python_sdk_client_passes_every_check() {
    let app = spawn_app();
    python_sdk_checks(app.addr);
}

/// The Python SDK client's full run against the relay at `addr`.
pub(crate) fn python_sdk_checks(addr: std::net::SocketAddr) {
    let mut cmd = Command::new(client_path("RELAY_MCP_PYTHON"));
    cmd.arg(clients_dir().join("python_client.py")).arg(format!("http://{addr}/mcp")).arg("full");
    let stdout = assert_client_passed("python", &run_client(cmd));
    let delay =
        stdout.lines().find(|l| l.starts_with("wake-up delay")).expect("client reports the wake-up delay");
    eprintln!("{delay}");
}

#[test]
fn python_sdk_client_speaks_protocol_2026_07_28() {
    let app = spawn_app();
    let mut cmd = Command::new(client_path("RELAY_MCP_PYTHON"));
    cmd.arg(clients_dir().join("python_client.py")).arg(format!("http://{}/mcp", app.addr)).arg("modern");
    let stdout = assert_client_passed("python (2026-07-28)", &run_client(cmd));
    assert!(stdout.contains("ok negotiated 2026-07-28"), "{stdout}");
}

#[test]
fn typescript_sdk_client_passes_every_check() {
    let app = spawn_app();
    typescript_sdk_checks(app.addr);
}

/// The TypeScript SDK client's run against the relay at `addr`.
pub(crate) fn typescript_sdk_checks(addr: std::net::SocketAddr) {
    let node_dir = client_path("RELAY_MCP_NODE_DIR");
    // Node resolves packages from the script's folder, so the script runs beside node_modules.
    let script = node_dir.join("ts_client.mjs");
    std::fs::copy(clients_dir().join("ts_client.mjs"), &script).unwrap();
    let mut cmd = Command::new("node");
    cmd.arg(&script).arg(format!("http://{addr}/mcp/"));
    assert_client_passed("typescript", &run_client(cmd));
}

#[test]
fn a_session_keeps_working_across_a_relay_restart() {
    let work = tempfile::tempdir().unwrap();
    let relay = start_relay(work.path(), &[]);
    let port = relay.addr.port();
    let mut client = Command::new(client_path("RELAY_MCP_PYTHON"))
        .arg(clients_dir().join("python_client.py"))
        .arg(format!("http://127.0.0.1:{port}/mcp"))
        .arg("restart")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(client.stdout.take().unwrap()).lines();
    let ready = lines.by_ref().map(Result::unwrap).find(|l| l == "READY");
    assert!(ready.is_some(), "client initialized and called a tool");
    drop(relay); // SIGKILL: the worst kind of restart
    let _relay = start_relay_on(work.path(), port, &[]);
    writeln!(client.stdin.take().unwrap(), "go").unwrap();
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(client.wait().unwrap().success(), "client output: {rest:?}");
    assert!(rest.iter().any(|l| l == "ok same session works after the restart"), "{rest:?}");
}

pub(crate) fn mcp(app: &TestApp, body: &str, extra: &[(&str, &str)]) -> Reply {
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("MCP-Protocol-Version", "2025-06-18"),
    ];
    headers.extend_from_slice(extra);
    request(app.addr, "POST", "/mcp", &headers, Some(body.as_bytes()))
}

fn tool_call(app: &TestApp, name: &str, arguments: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": arguments}});
    let reply = mcp(app, &body.to_string(), &[]);
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["result"].clone()
}

fn jsonrpc_error_code(reply: &Reply) -> i64 {
    reply.json()["error"]["code"].as_i64().unwrap_or_else(|| panic!("no JSON-RPC error: {}", reply.text()))
}

#[test]
fn protocol_edge_cases_get_the_right_answers() {
    let app = spawn_app();
    // Missing Accept types.
    let reply = request(
        app.addr,
        "POST",
        "/mcp",
        &[("Content-Type", "application/json")],
        Some(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
    );
    assert_eq!(reply.status, 406, "{}", reply.text());
    // Unknown method: a JSON-RPC error, not an HTTP one.
    let reply = mcp(&app, r#"{"jsonrpc":"2.0","id":1,"method":"no/such"}"#, &[]);
    assert_eq!((reply.status, jsonrpc_error_code(&reply)), (200, -32601));
    // Unknown tool: invalid params.
    let reply = mcp(&app, r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"nope"}}"#, &[]);
    assert_eq!(jsonrpc_error_code(&reply), -32602);
    // Malformed JSON, batches, null ids, non-objects.
    for (body, code) in [
        ("{\"jsonrpc\":", -32700),
        ("", -32700),
        ("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", -32600),
        ("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}", -32600),
        ("42", -32600),
    ] {
        let reply = mcp(&app, body, &[]);
        assert_eq!((reply.status, jsonrpc_error_code(&reply)), (400, code), "{body:?}: {}", reply.text());
        assert_eq!(reply.json()["id"], Value::Null);
    }
    // A notification is accepted with no body.
    assert_eq!(mcp(&app, r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, &[]).status, 202);
    // Forged Host and foreign Origin: the same answers as every other route.
    mcp(&app, r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, &[("Host", "evil.example")])
        .assert_error(421, "evil.example");
    mcp(&app, r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, &[("Origin", "http://evil.example")])
        .assert_error(403, "origin");
    mcp(&app, r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, &[("Origin", "null")])
        .assert_error(403, "origin");
    let stream = [("Accept", "text/event-stream"), ("Origin", "http://evil.example")];
    request(app.addr, "GET", "/mcp", &stream, None).assert_error(403, "origin");
    // Stateless: no stream to open, no session to delete.
    assert_eq!(request(app.addr, "GET", "/mcp", &[("Accept", "text/event-stream")], None).status, 405);
    // A ping works, on /mcp and on /mcp/ (no redirect).
    assert_eq!(mcp(&app, r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, &[]).json()["result"], json!({}));
    let slash = request(
        app.addr,
        "POST",
        "/mcp/",
        &[("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")],
        Some(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
    );
    assert_eq!(slash.status, 200, "{}", slash.text());
    // Raw bytes: a request cut off mid-body gets an answer or a close, never a hang.
    let cut = format!(
        "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{{\"jsonrpc\"",
        app.addr
    );
    let started = Instant::now();
    let _ = std::net::TcpStream::connect(app.addr).and_then(|mut s| {
        s.write_all(cut.as_bytes())?;
        s.shutdown(std::net::Shutdown::Write)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        std::io::Read::read_to_end(&mut s, &mut Vec::new())
    });
    assert!(started.elapsed() < Duration::from_secs(10), "a cut-off request does not hang");
}

#[test]
fn a_body_over_the_limit_gets_413() {
    let app = spawn_app_with(|c| c.max_text_bytes = 1000);
    let pad = "x".repeat(relay::http::request::max_body_bytes(1000));
    let big = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{pad}"}}}}"#);
    mcp(&app, &big, &[]).assert_error(413, "limit");
}

#[test]
fn tool_arguments_are_checked_and_errors_name_the_field() {
    let app = spawn_app();
    for (tool, args, field) in [
        ("post_message", json!({"sender": "s", "text": "t"}), "target"),
        ("post_message", json!({"target": "t", "sender": "s", "text": "  "}), "text"),
        ("post_message", json!({"target": "t", "sender": "s\u{7}", "text": "x"}), "sender"),
        ("fetch_messages", json!({}), "target"),
        ("fetch_messages", json!({"target": "t", "since_id": "abc"}), "since_id"),
        ("fetch_messages", json!({"target": "t", "limit": [1]}), "limit"),
        ("wait_for_messages", json!({"target": "t"}), "since_id"),
        ("wait_for_messages", json!({"target": "t", "since_id": 0, "timeout_s": -1}), "timeout_s"),
        ("wait_for_messages", json!({"target": "t", "since_id": 0, "exclude_sender": 3}), "exclude_sender"),
    ] {
        let result = tool_call(&app, tool, args.clone());
        assert_eq!(result["isError"], true, "{tool} {args}: {result}");
        let text = result["content"][0]["text"].as_str().unwrap();
        assert!(text.starts_with(field), "{tool} {args}: {text:?} should name {field}");
    }
    assert_eq!(app.message_count(), 0, "no rejected post was stored");
    // limit is clamped, as in the Python relay.
    for i in 0..3 {
        app.post("t", "s", &format!("{i}"));
    }
    let page = tool_call(&app, "fetch_messages", json!({"target": "t", "limit": 0}));
    assert_eq!(page["structuredContent"]["messages"].as_array().unwrap().len(), 1);
    let page = tool_call(&app, "fetch_messages", json!({"target": "t", "limit": 1000}));
    assert_eq!(page["structuredContent"]["messages"].as_array().unwrap().len(), 3);
}

#[test]
fn mcp_and_rest_see_the_same_messages() {
    let app = spawn_app();
    let via_mcp =
        tool_call(&app, "post_message", json!({"target": "both", "sender": "claude", "text": "from mcp"}));
    let mcp_id = via_mcp["structuredContent"]["posted"].as_u64().unwrap();
    assert_eq!(via_mcp["structuredContent"], json!({"ok": true, "posted": mcp_id}));
    let via_rest = app.post("both", "codex", "from rest").json()["message"].clone();
    let rest_view = app.get("/api/messages?target=both").json()["messages"].clone();
    let mcp_view =
        tool_call(&app, "fetch_messages", json!({"target": "both"}))["structuredContent"]["messages"].clone();
    assert_eq!(rest_view, mcp_view, "same ids, same fields, same order");
    assert_eq!(rest_view[0]["id"].as_u64(), Some(mcp_id));
    assert_eq!(rest_view[0]["source"], "mcp");
    assert_eq!(rest_view[1], via_rest);
    let channels = tool_call(&app, "list_channels", json!({}))["structuredContent"]["channels"].clone();
    assert_eq!(channels, app.get("/api/channels").json()["channels"]);
}

#[test]
fn open_waits_end_when_the_relay_stops() {
    let app = spawn_app();
    let addr = app.addr;
    let waiter = std::thread::spawn(move || {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "wait_for_messages", "arguments": {"target": "t", "since_id": 0, "timeout_s": 50}}});
        let headers =
            [("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")];
        let started = Instant::now();
        let reply = request(addr, "POST", "/mcp", &headers, Some(body.to_string().as_bytes()));
        (started.elapsed(), reply.status)
    });
    // Time for the call to arrive and start waiting, even on a loaded machine.
    std::thread::sleep(Duration::from_millis(1000));
    let stopping = Instant::now();
    app.stop();
    assert!(stopping.elapsed() < Duration::from_secs(3), "stop did not wait for the 50 s wait");
    let (waited, status) = waiter.join().unwrap();
    assert!(waited < Duration::from_secs(5), "the wait answered at once");
    assert_eq!(status, 200);
}

#[test]
fn allowed_hosts_and_loopback_origins_reach_mcp() {
    use relay::values::HostPattern;
    let app = spawn_app_with(|c| c.allowed_hosts = vec![HostPattern::parse("relay.lan").unwrap()]);
    let port = app.addr.port();
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    for (host, origin) in [
        (format!("relay.lan:{port}"), format!("http://relay.lan:{port}")),
        (format!("LOCALHOST:{port}"), "http://localhost:5173".to_owned()),
        (format!("[::1]:{port}"), "http://[::1]:3000".to_owned()),
        (format!("127.0.0.1:{port}"), format!("https://127.0.0.1:{port}")),
    ] {
        let reply = mcp(&app, ping, &[("Host", &host), ("Origin", &origin)]);
        assert_eq!(reply.status, 200, "{host} {origin}: {}", reply.text());
    }
    mcp(&app, ping, &[("Host", "other.lan")]).assert_error(421, "other.lan");
}

/// A request as a client of protocol 2026-07-28 sends it: no `initialize`, the version and the
/// client in `_meta`, and the method (and tool) repeated in headers.
fn modern(app: &TestApp, method: &str, mut params: Value, headers: &[(&str, &str)]) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "1"},
    });
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let mut all = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", method),
    ];
    all.extend_from_slice(headers);
    let reply = request(app.addr, "POST", "/mcp", &all, Some(body.to_string().as_bytes()));
    assert_eq!(reply.status, 200, "{method}: {}", reply.text());
    reply.json()
}

#[test]
fn clients_of_protocol_2026_07_28_work_without_initialize() {
    let app = spawn_app();
    let found = modern(&app, "server/discover", json!({}), &[])["result"].clone();
    assert!(found["supportedVersions"].as_array().unwrap().contains(&json!("2026-07-28")), "{found}");
    for capability in ["tools", "prompts", "resources", "completions"] {
        assert!(found["capabilities"].get(capability).is_some(), "{capability}: {found}");
    }
    assert!(found["instructions"].as_str().unwrap().contains("review_latest_packet"), "{found}");
    assert_eq!(found["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "claude-codex-relay");

    let tools = modern(&app, "tools/list", json!({}), &[])["result"]["tools"].clone();
    assert_eq!(tools.as_array().unwrap().len(), 4, "{tools}");
    let args = json!({"name": "post_message", "arguments": {"target": "new", "sender": "s", "text": "hi"}});
    let posted = modern(&app, "tools/call", args.clone(), &[("Mcp-Name", "post_message")]);
    assert_eq!(posted["result"]["structuredContent"], json!({"ok": true, "posted": 1}), "{posted}");
    let args = json!({"name": "fetch_messages", "arguments": {"target": "new"}});
    let page = modern(&app, "tools/call", args, &[("Mcp-Name", "fetch_messages")]);
    assert_eq!(page["result"]["structuredContent"]["latest_id"], 1, "{page}");
    let read = modern(
        &app,
        "resources/read",
        json!({"uri": "relay://channel/new"}),
        &[("Mcp-Name", "relay://channel/new")],
    );
    assert!(read["result"]["contents"][0]["text"].as_str().unwrap().contains("\"hi\""), "{read}");
    let prompt = modern(
        &app,
        "prompts/get",
        json!({"name": "review_latest_packet", "arguments": {"channel": "new"}}),
        &[("Mcp-Name", "review_latest_packet")],
    );
    assert!(prompt["result"]["messages"][0]["content"]["text"].as_str().unwrap().contains("hi"), "{prompt}");

    // A header that disagrees with the body, and a request without the _meta it needs, are
    // refused with the spec's errors, and nothing is stored.
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "post_message", "arguments": {"target": "new", "sender": "s", "text": "again"}}});
    let send = |method: &str| {
        let headers = [
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", method),
            ("Mcp-Name", "post_message"),
        ];
        request(app.addr, "POST", "/mcp", &headers, Some(body.to_string().as_bytes()))
    };
    let reply = send("tools/list");
    assert_eq!(jsonrpc_error_code(&reply), -32020, "{}", reply.text());
    let reply = send("tools/call");
    assert_eq!(jsonrpc_error_code(&reply), -32602, "{}", reply.text());
    assert!(reply.text().contains("protocolVersion"), "{}", reply.text());
    assert_eq!(app.message_count(), 1);
}

/// `completion/complete` offers channel names, starting with what was typed, for the prompts'
/// `channel` argument and the resource template's `name` (a URI segment); other arguments get
/// none; an unknown prompt or template is refused. (Grants limiting them: principals.rs.)
#[test]
fn channel_arguments_complete_to_channel_names() {
    let app = spawn_app();
    assert_eq!(app.post("proj y", "claude", "a channel with a space").status, 201);
    let complete = |reference: Value, name: &str, value: &str| {
        let params = json!({"ref": reference, "argument": {"name": name, "value": value}});
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "completion/complete", "params": params});
        mcp(&app, &body.to_string(), &[]).json()
    };
    let prompt = json!({"type": "ref/prompt", "name": "review_latest_packet"});
    let template = json!({"type": "ref/resource", "uri": "relay://channel/{name}"});
    let got = complete(prompt.clone(), "channel", "proj");
    assert_eq!(got["result"]["completion"]["values"], json!(["proj y", "proj-x"]), "{got}");
    assert_eq!(got["result"]["completion"]["hasMore"], false, "{got}");
    let got = complete(template.clone(), "name", "proj");
    assert_eq!(got["result"]["completion"]["values"], json!(["proj%20y", "proj-x"]), "{got}");
    let got = complete(template, "name", "c");
    assert_eq!(got["result"]["completion"]["values"], json!(["claude", "codex"]), "{got}");
    let got = complete(prompt, "reviewer", "c");
    assert_eq!(got["result"]["completion"]["values"], json!([]), "{got}");
    let got = complete(json!({"type": "ref/prompt", "name": "nope"}), "channel", "");
    assert_eq!(got["error"]["code"], -32602, "{got}");
    assert!(got["error"]["message"].as_str().unwrap().contains("review_latest_packet"), "{got}");
    let got = complete(json!({"type": "ref/resource", "uri": "relay://other/{x}"}), "x", "");
    assert_eq!(got["error"]["code"], -32602, "{got}");
}

/// Agents pay for tool definitions on every turn: at most 6 tools and 1,200 tokens (the
/// tools/list result's JSON length / 4), output schemas included.
#[test]
fn tool_definitions_stay_within_the_token_budget() {
    let app = spawn_app();
    let reply = mcp(&app, r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#, &[]);
    let result = reply.json()["result"].clone();
    let tools = result["tools"].as_array().unwrap();
    let tokens = result.to_string().len() / 4;
    eprintln!("tools/list: {} tools, about {tokens} tokens", tools.len());
    assert!(tools.len() <= 6, "{} tools", tools.len());
    assert!(tokens <= 1200, "tool definitions cost about {tokens} tokens");
    for tool in tools {
        let output = &tool["outputSchema"];
        assert_eq!(output["type"], "object", "{}: {output}", tool["name"]);
        assert!(output["required"].as_array().is_some_and(|r| !r.is_empty()), "{}", tool["name"]);
    }
}

#[test]
fn prompts_and_resources_refuse_what_they_cannot_serve() {
    let app = spawn_app();
    app.post("proj-x", "claude", "packet one");
    app.post("proj-x", "codex", "feedback");
    let call = |method: &str, params: Value| {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        mcp(&app, &body.to_string(), &[]).json()
    };
    // The latest packet from anyone but the reviewer, quoted whole.
    let prompt =
        call("prompts/get", json!({"name": "review_latest_packet", "arguments": {"channel": "proj-x"}}));
    let text = prompt["result"]["messages"][0]["content"]["text"].as_str().unwrap().to_owned();
    assert!(
        text.contains("packet one") && text.contains("message 1") && !text.contains("feedback"),
        "{text}"
    );
    let empty =
        call("prompts/get", json!({"name": "review_latest_packet", "arguments": {"channel": "quiet"}}));
    let text = empty["result"]["messages"][0]["content"]["text"].as_str().unwrap().to_owned();
    assert!(text.contains("wait_for_messages") && text.contains("since_id 0"), "{text}");
    for (method, params, code, needle) in [
        ("prompts/get", json!({"name": "nope", "arguments": {"channel": "c"}}), -32602, "post_review_packet"),
        ("prompts/get", json!({"name": "post_review_packet"}), -32602, "channel: is required"),
        (
            "prompts/get",
            json!({"name": "post_review_packet", "arguments": {"channel": 5}}),
            -32602,
            "channel",
        ),
        (
            "prompts/get",
            json!({"name": "post_review_packet", "arguments": {"channel": "a\u{7}"}}),
            -32602,
            "control",
        ),
        ("resources/read", json!({"uri": "file:///etc/passwd"}), -32002, "relay://channel/NAME"),
        ("resources/read", json!({"uri": "relay://channel/%FF"}), -32602, "percent-encoded"),
        ("resources/read", json!({"uri": "relay://channel/"}), -32602, "target"),
    ] {
        let reply = call(method, params.clone());
        assert_eq!(reply["error"]["code"], code, "{method} {params}: {reply}");
        assert!(reply["error"]["message"].as_str().unwrap().contains(needle), "{method} {params}: {reply}");
    }
    let listed = call("resources/list", json!({}));
    let uris: Vec<&str> = listed["result"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert!(uris.contains(&"relay://channel/proj-x"), "{uris:?}");
    assert_eq!(app.message_count(), 2);
}
