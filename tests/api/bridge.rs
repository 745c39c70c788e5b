//! `claude-codex-relay bridge`: the relay's tools over stdio, and wake-ups. The bridge runs as the
//! real binary speaking JSON-RPC lines on its stdin and stdout, as Claude Code starts it; the last
//! test drives the real Claude Code (from npm, installed by scripts/test) against a scripted model.

use crate::helpers::{request, spawn_app, start_relay, TestApp};
use crate::mcp::{assert_client_passed, client_path, clients_dir, mcp, run_client};
use crate::principals::add;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A bridge process and the JSON-RPC lines it writes.
struct Bridge {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<Value>,
}

impl Bridge {
    fn start(url: &str, args: &[&str], env: &[(&str, &str)]) -> Bridge {
        let mut child = Command::new(env!("CARGO_BIN_EXE_claude-codex-relay"))
            .args(["bridge", "--url", url, "--as", "claude"])
            .args(args)
            .env_remove("CLAUDE_CODE_MESSAGING_SOCKET")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the bridge starts");
        let (sender, lines) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let _ = sender.send(serde_json::from_str(&line).expect("the bridge writes JSON lines"));
            }
        });
        let stdin = child.stdin.take().unwrap();
        let mut bridge = Bridge { child, stdin, lines };
        let init = bridge.call(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
        );
        assert_eq!(init["result"]["protocolVersion"], "2025-11-25", "{init}");
        bridge.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        bridge
    }

    fn send(&mut self, message: &Value) {
        writeln!(self.stdin, "{message}").unwrap();
    }

    /// Sends a request and returns its reply, skipping notifications.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.send(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}));
        loop {
            let line = self.next(Duration::from_secs(20)).unwrap_or_else(|| panic!("no answer to {method}"));
            if line.get("id").is_some() {
                return line;
            }
        }
    }

    fn next(&self, within: Duration) -> Option<Value> {
        self.lines.recv_timeout(within).ok()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn relay_mcp(app: &TestApp, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    mcp(app, &body.to_string(), &[]).json()
}

#[test]
fn the_bridge_serves_the_relays_own_tools_and_results() {
    let app = spawn_app();
    let mut bridge = Bridge::start(&format!("http://{}", app.addr), &["--wake", "none"], &[]);
    let tools = bridge.call("tools/list", json!({}));
    assert_eq!(tools["result"], relay_mcp(&app, "tools/list", json!({}))["result"]);

    let post =
        json!({"name": "post_message", "arguments": {"target": "proj-x", "sender": "claude", "text": "hi"}});
    let posted = bridge.call("tools/call", post);
    assert_eq!(posted["result"]["structuredContent"]["posted"], 1, "{posted}");
    assert_eq!(app.all_messages("proj-x")[0]["text"], "hi");
    let fetch = json!({"name": "fetch_messages", "arguments": {"target": "proj-x"}});
    assert_eq!(
        bridge.call("tools/call", fetch.clone())["result"],
        relay_mcp(&app, "tools/call", fetch)["result"]
    );

    // The relay's refusals come back as the relay gave them.
    let bad = json!({"name": "post_message", "arguments": {"target": "", "sender": "c", "text": "x"}});
    let refused = bridge.call("tools/call", bad.clone());
    assert_eq!(refused["result"]["isError"], true, "{refused}");
    assert_eq!(refused["result"], relay_mcp(&app, "tools/call", bad)["result"]);
    let unknown = json!({"name": "nope", "arguments": {}});
    assert_eq!(
        bridge.call("tools/call", unknown.clone())["error"],
        relay_mcp(&app, "tools/call", unknown)["error"]
    );
}

#[test]
fn a_call_through_the_bridge_to_a_stopped_relay_names_the_relay() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let mut bridge = Bridge::start(&url, &["--wake", "none"], &[]);
    let post =
        json!({"name": "post_message", "arguments": {"target": "proj-x", "sender": "claude", "text": "hi"}});
    let reply = bridge.call("tools/call", post);
    assert_eq!(reply["result"]["isError"], true, "{reply}");
    let text = reply["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains(&format!("cannot reach the relay at {url}")), "{text}");
    let listed = bridge.call("tools/list", json!({}));
    assert!(listed["error"]["message"].as_str().unwrap().contains(&url), "{listed}");
}

#[test]
fn a_burst_of_posts_is_one_channel_notification_and_none_is_repeated() {
    let app = spawn_app();
    let mut bridge =
        Bridge::start(&format!("http://{}", app.addr), &["--follow", "proj-x", "--wake", "channel"], &[]);
    let capabilities = bridge.call("tools/list", json!({})); // a round trip: the follower has started
    assert!(capabilities.get("result").is_some());
    std::thread::sleep(Duration::from_millis(300));
    app.post("proj-x", "claude", "my own: never a wake-up");
    for i in 1..=3 {
        app.post("proj-x", "codex", &format!("packet {i}\n```diff\n+x\n```"));
    }
    app.post("elsewhere", "codex", "not followed");
    let note = bridge.next(Duration::from_secs(10)).expect("a channel notification");
    assert_eq!(note["method"], "notifications/claude/channel", "{note}");
    let content = note["params"]["content"].as_str().unwrap();
    for i in 1..=3 {
        assert!(content.contains(&format!("#{} [codex -> proj-x] packet {i}", i + 1)), "{content}");
    }
    assert!(
        !content.contains("my own") && !content.contains("not followed") && !content.contains("diff"),
        "{content}"
    );
    assert!(content.contains(r#"fetch_messages with target "proj-x" and since_id 1"#), "{content}");
    assert_eq!(note["params"]["meta"], json!({"channel": "proj-x", "sender": "codex", "id": "4"}));
    assert!(bridge.next(Duration::from_millis(800)).is_none(), "one notification for the burst");

    app.post("proj-x", "codex", "later");
    let note = bridge.next(Duration::from_secs(10)).expect("a second notification");
    let content = note["params"]["content"].as_str().unwrap();
    assert!(content.contains("#6 [codex -> proj-x] later") && !content.contains("packet"), "{content}");
}

#[test]
fn the_messaging_socket_gets_one_json_line_per_wake_up() {
    let app = spawn_app();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("messaging.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let socket = path.to_str().unwrap();
    let _bridge = Bridge::start(
        &format!("http://{}", app.addr),
        &["--follow", "proj-x"],
        &[("CLAUDE_CODE_MESSAGING_SOCKET", socket)],
    );
    std::thread::sleep(Duration::from_millis(500));
    app.post("proj-x", "codex", "review packet");
    let (mut stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut line = String::new();
    stream.read_to_string(&mut line).unwrap();
    let message: Value = serde_json::from_str(line.trim_end()).unwrap();
    assert_eq!(message["type"], "user");
    let text = message["message"]["content"].as_str().unwrap();
    assert!(text.starts_with("New on the relay:\n#1 [codex -> proj-x] review packet"), "{text}");
}

/// Who listens where: `details` of `GET /api/channels`, or of MCP `list_channels` with `mcp`.
fn listening_in(app: &TestApp, mcp: bool) -> Vec<(String, Value)> {
    let details = if mcp {
        let call = json!({"name": "list_channels", "arguments": {}});
        relay_mcp(app, "tools/call", call)["result"]["structuredContent"]["details"].clone()
    } else {
        app.get("/api/channels").json()["details"].clone()
    };
    let details = details.as_array().unwrap().iter();
    details
        .filter(|c| c["listening"] != json!([]))
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c["listening"].clone()))
        .collect()
}

fn until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn listeners_are_listed_while_they_wait_and_drop_out_when_they_go() {
    let app = spawn_app();
    let listening = |app: &TestApp| listening_in(app, false);
    assert!(listening(&app).is_empty());
    let bridge =
        Bridge::start(&format!("http://{}", app.addr), &["--follow", "proj-x", "--wake", "channel"], &[]);
    let addr = app.addr;
    let poll = std::thread::spawn(move || {
        request(addr, "GET", "/api/messages?target=ops&since_id=0&wait=2&exclude_sender=codex", &[], None)
    });
    let both = vec![("ops".to_owned(), json!(["codex"])), ("proj-x".to_owned(), json!(["claude"]))];
    assert!(until(Duration::from_secs(5), || listening(&app) == both), "{:?}", listening(&app));
    assert!(listening_in(&app, true).contains(&both[1]), "{:?}", listening_in(&app, true));
    // Channels nobody posted on yet are listed because someone listens there.
    let channels = app.get("/api/channels").json()["channels"].clone();
    assert!(channels.as_array().unwrap().contains(&json!("ops")), "{channels}");

    drop(bridge);
    assert_eq!(poll.join().unwrap().status, 200);
    assert!(until(Duration::from_secs(8), || listening(&app).is_empty()), "{:?}", listening(&app));
}

#[test]
fn the_bridge_refuses_to_start_with_nothing_to_do() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_claude-codex-relay"))
            .args(["bridge", "--as", "claude"])
            .args(args)
            .env_remove("CLAUDE_CODE_MESSAGING_SOCKET")
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--follow CHANNEL"));
    let out = run(&["--follow", "proj-x", "--wake", "socket"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("CLAUDE_CODE_MESSAGING_SOCKET is not set"));
}

/// The real Claude Code, idle, woken by a post through the bridge, answering with post_message.
#[test]
fn real_claude_code_is_woken_by_a_post_and_answers_on_the_relay() {
    let app = spawn_app();
    let work = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(client_path("RELAY_MCP_PYTHON"));
    cmd.arg(clients_dir().join("claude_wake.py"))
        .arg(format!("http://{}", app.addr))
        .arg(env!("CARGO_BIN_EXE_claude-codex-relay"))
        .arg(client_path("RELAY_CLAUDE"))
        .arg(work.path());
    let stdout = assert_client_passed("claude code", &run_client(cmd));
    let delay = stdout.lines().find(|l| l.starts_with("wake-up delay")).expect("the delay is reported");
    eprintln!("{delay}");
}

/// The same, on a relay with principals: the bridge speaks with claude's own credential, codex
/// posts with its own, and Claude Code's answer is stored under claude's name.
#[test]
fn real_claude_code_speaks_with_its_own_credential() {
    let work = tempfile::tempdir().unwrap();
    let (claude, codex) = (add(work.path(), &["claude"]), add(work.path(), &["codex"]));
    let relay = start_relay(work.path(), &[]);
    let session = work.path().join("session");
    std::fs::create_dir(&session).unwrap();
    let mut cmd = Command::new(client_path("RELAY_MCP_PYTHON"));
    cmd.arg(clients_dir().join("claude_wake.py"))
        .arg(format!("http://{}", relay.addr))
        .arg(env!("CARGO_BIN_EXE_claude-codex-relay"))
        .arg(client_path("RELAY_CLAUDE"))
        .arg(&session)
        .env("RELAY_CLAUDE_CREDENTIAL", &claude)
        .env("RELAY_CODEX_CREDENTIAL", &codex);
    let stdout = assert_client_passed("claude code with its credential", &run_client(cmd));
    assert!(stdout.contains("ok the reply"), "{stdout}");
}

/// The bridge speaks with its credential's principal only: a post naming another sender comes
/// back as the relay's refusal, and nothing is stored.
#[test]
fn the_bridge_speaks_only_as_its_credentials_principal() {
    let work = tempfile::tempdir().unwrap();
    let (claude, root) = (add(work.path(), &["claude"]), add(work.path(), &["root", "--role", "admin"]));
    let relay = start_relay(work.path(), &[]);
    let url = format!("http://{}", relay.addr);
    let mut bridge =
        Bridge::start(&url, &["--wake", "none"], &[("CLAUDE_CODEX_AUTH_TOKEN", claude.as_str())]);
    let post = |sender: &str| json!({"name": "post_message", "arguments": {"target": "proj-x", "sender": sender, "text": format!("as {sender}")}});
    let forged = bridge.call("tools/call", post("HumanOverseer"));
    assert_eq!(forged["result"]["isError"], true, "{forged}");
    assert!(forged.to_string().contains("may not post as"), "{forged}");
    let own = bridge.call("tools/call", post("claude"));
    assert_eq!(own["result"]["structuredContent"]["ok"], true, "{own}");
    let bearer = format!("Bearer {root}");
    let stored = request(
        relay.addr,
        "GET",
        "/api/messages?target=proj-x",
        &[("Authorization", bearer.as_str())],
        None,
    );
    let senders: Vec<Value> =
        stored.json()["messages"].as_array().unwrap().iter().map(|m| m["sender"].clone()).collect();
    assert_eq!(senders, [json!("claude")]);
}
