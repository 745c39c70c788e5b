//! `watch --codex-app-server`: the open Codex session woken in place, on the real Codex
//! app-server with a scripted model (tests/clients/codex_wake.py stands in for the TUI).

use crate::helpers::{relay_command, request, start_relay};
use crate::mcp::{client_path, clients_dir, run_client};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The Codex session: the app-server, its scripted model and the client standing in for the TUI.
struct Session {
    child: Child,
    /// Closed when the session is dropped: the client then stops the app-server and exits.
    commands: Option<ChildStdin>,
    answers: mpsc::Receiver<String>,
    socket: String,
    thread: String,
}

impl Session {
    /// With `relay`, the session has the relay's tools, and a woken turn uses them.
    fn start(work: &Path, relay: Option<std::net::SocketAddr>) -> Session {
        let dir = work.join("codex");
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new(client_path("RELAY_MCP_PYTHON"))
            .arg(clients_dir().join("codex_wake.py"))
            .arg(client_path("RELAY_CODEX"))
            .arg(&dir)
            .args(relay.map(|addr| format!("http://{addr}")))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let commands = child.stdin.take();
        let answers = lines_of(child.stdout.take().unwrap());
        let first: Value =
            serde_json::from_str(&answers.recv_timeout(Duration::from_secs(90)).unwrap()).unwrap();
        let field = |name: &str| first[name].as_str().unwrap().to_owned();
        Session { child, commands, answers, socket: field("socket"), thread: field("thread") }
    }

    fn ask(&mut self, command: &str) -> Value {
        writeln!(self.commands.as_mut().unwrap(), "{command}").unwrap();
        serde_json::from_str(&self.answers.recv_timeout(Duration::from_secs(60)).unwrap()).unwrap()
    }

    /// The user texts of each request the model got, and the streams Codex dropped, once `done`
    /// holds for them (or 30 s passed).
    fn requests_until(&mut self, done: impl Fn(&[Vec<String>], &Value) -> bool) -> (Vec<Vec<String>>, Value) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let seen = self.ask("requests");
            let requests: Vec<Vec<String>> = serde_json::from_value(seen["requests"].clone()).unwrap();
            if done(&requests, &seen["aborted"]) || Instant::now() > deadline {
                return (requests, seen["aborted"].clone());
            }
            thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Session {
    /// Ends the client by closing its input, so it stops the app-server it started (a kill would
    /// leave that running); killed only if it has not ended within 15 s.
    fn drop(&mut self) {
        drop(self.commands.take());
        let deadline = Instant::now() + Duration::from_secs(15);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines_of(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// `watch` as codex's waker; hands back its stderr lines, where it says what it does.
fn start_waker(work: &Path, port: u16, extra: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let url = format!("http://127.0.0.1:{port}");
    let mut args = vec!["watch", "--url", &url, "--target", "rv", "--not-from", "codex", "--wait", "2"];
    args.extend_from_slice(extra);
    let mut child =
        relay_command(work, &args, &[]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let said = lines_of(child.stderr.take().unwrap());
    (child, said)
}

/// The first line `watch` says that contains `part`, within 60 s.
fn said(lines: &mpsc::Receiver<String>, part: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut other = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(part) => return line,
            Ok(line) => other.push(line),
            Err(_) => break,
        }
    }
    panic!("watch never said {part:?}; it said: {other:#?}");
}

/// Posts on channel `rv` as `sender`; the message's id.
fn post(addr: std::net::SocketAddr, sender: &str, text: &str) -> u64 {
    let body = serde_json::json!({"target": "rv", "sender": sender, "text": text}).to_string();
    let headers = [("Content-Type", "application/json")];
    let posted = request(addr, "POST", "/api/messages", &headers, Some(body.as_bytes()));
    assert_eq!(posted.status, 201, "{}", posted.text());
    posted.json()["posted"].as_u64().unwrap()
}

/// Waits up to 10 s for the reader `codex`'s cursor on `rv` to reach `id`.
fn cursor_reaches(addr: std::net::SocketAddr, id: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while codex_cursor(addr) < id {
        assert!(Instant::now() < deadline, "the cursor did not move past #{id}");
        thread::sleep(Duration::from_millis(100));
    }
}

/// Creates channel `rv` (a post from codex, which the waker skips) and, once `watch` is
/// started, waits until it waits there: a reader new to a channel starts at its end, so a post
/// before its first poll would be behind it.
fn seed(addr: std::net::SocketAddr) {
    post(addr, "codex", "seed");
}

fn listening(addr: std::net::SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rv = rv_details(addr);
        if rv.as_ref().is_some_and(|c| c["listening"].as_array().unwrap().iter().any(|n| n == "codex")) {
            return;
        }
        assert!(Instant::now() < deadline, "watch never waited on rv: {rv:?}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// When the relay says codex's message `id` reached `state` (null: it did not).
fn state(addr: std::net::SocketAddr, id: u64, state: &str) -> Value {
    let delivery = request(addr, "GET", &format!("/api/messages/{id}/delivery"), &[], None).json();
    delivery["readers"]["codex"][state].clone()
}

fn woken(addr: std::net::SocketAddr, id: u64) -> Value {
    state(addr, id, "woken")
}

fn codex_cursor(addr: std::net::SocketAddr) -> u64 {
    rv_details(addr).and_then(|c| c["readers"]["codex"].as_u64()).unwrap_or(0)
}

/// Channel `rv` as `/api/channels` details it, once it exists.
fn rv_details(addr: std::net::SocketAddr) -> Option<Value> {
    let channels = request(addr, "GET", "/api/channels", &[], None).json();
    channels["details"].as_array().unwrap().iter().find(|c| c["name"] == "rv").cloned()
}

/// Claude's post wakes the thread Codex has open: a new turn in it, whose model request
/// carries the session's earlier turn (the same conversation, not a fresh one); the wake names
/// the channel, the sender and how to fetch; the reader's cursor moves once the turn is accepted.
#[test]
fn a_post_wakes_the_open_codex_thread_in_place() {
    wakes_in_place(false);
}

/// The same, with the relay as the session's MCP server: the woken turn fetches the message and
/// posts a verdict quoting it.
#[test]
fn a_woken_turn_fetches_and_answers_through_the_relay() {
    wakes_in_place(true);
}

fn wakes_in_place(with_tools: bool) {
    let work = tempfile::tempdir().unwrap();
    let relay = start_relay(work.path(), &[]);
    let mut session = Session::start(work.path(), with_tools.then_some(relay.addr));
    let address = format!("unix://{}", session.socket);
    seed(relay.addr);
    let (mut waker, lines) =
        start_waker(work.path(), relay.addr.port(), &["--reader", "codex", "--codex-app-server", &address]);
    said(&lines, &format!("will wake Codex thread {}", session.thread));
    listening(relay.addr);
    let sent = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let id = post(relay.addr, "claude", "please review the diff");
    let woke = said(&lines, "woke Codex thread");
    assert!(woke.contains(&session.thread) && woke.contains("started turn"), "{woke}");
    let (requests, aborted) = session.requests_until(|r, _| r.len() >= 2);
    // From the start of the post to the model's request in the woken turn (docs/benchmarks.md).
    let arrived = session.ask("requests")["times"][1].as_f64().unwrap();
    eprintln!("codex wake-up delay: {:.0} ms", (arrived - sent) * 1000.0);
    // The woken turn's requests (it calls two tools, so three of them) all end with the wake.
    assert!(requests[1..].iter().all(|r| r.last() == requests[1].last()), "one turn: {requests:?}");
    let wake = &requests[1];
    assert_eq!(wake[0], "hello from the session", "the same thread: {requests:?}");
    let text = wake.last().unwrap();
    assert!(
        text.contains(&format!("1 new message on relay channel rv from claude (#{id})"))
            && text.contains("fetch_messages")
            && text.contains(&format!(r#"since_id {}, reader "codex""#, id - 1)),
        "{text}"
    );
    assert_eq!(aborted, serde_json::json!([]));
    cursor_reaches(relay.addr, id);
    assert!(woken(relay.addr, id).is_f64(), "the accepted turn is recorded as woken");
    if !with_tools {
        // The turn did not fetch (no tools): watch's own polls are not codex's reads.
        assert!(state(relay.addr, id, "read").is_null(), "not read: only watch polled");
        waker.kill().unwrap();
        waker.wait().unwrap();
        return;
    }
    // The woken turn did what the wake said: fetched the message and answered on the channel.
    let deadline = Instant::now() + Duration::from_secs(30);
    let verdict = loop {
        let page = request(relay.addr, "GET", "/api/messages?target=rv", &[], None).json();
        let from_codex = page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["sender"] == "codex" && m["text"] != "seed")
            .cloned();
        match from_codex {
            Some(m) => break m["text"].as_str().unwrap().to_owned(),
            None if Instant::now() < deadline => thread::sleep(Duration::from_millis(200)),
            None => panic!("codex never answered on rv: {page}"),
        }
    };
    assert!(verdict.contains("please review the diff"), "the verdict quotes what it fetched: {verdict}");
    assert!(state(relay.addr, id, "read").is_f64(), "the woken turn's fetch is codex's read");
    waker.kill().unwrap();
    waker.wait().unwrap();
}

/// The app-server stops: the wake says so and keeps the messages; once it is back (the session
/// resumed its thread there), the thread is woken with them.
#[test]
fn a_codex_app_server_that_stops_is_woken_once_it_is_back() {
    let work = tempfile::tempdir().unwrap();
    let relay = start_relay(work.path(), &[]);
    let mut session = Session::start(work.path(), None);
    let address = format!("unix://{}", session.socket);
    seed(relay.addr);
    let (mut waker, lines) =
        start_waker(work.path(), relay.addr.port(), &["--reader", "codex", "--codex-app-server", &address]);
    said(&lines, "will wake Codex thread");
    listening(relay.addr);
    let before = codex_cursor(relay.addr);
    assert_eq!(session.ask("stop")["ok"], true);
    let id = post(relay.addr, "claude", "while codex is away");
    said(&lines, "these messages will wake it when it can be reached");
    assert_eq!(codex_cursor(relay.addr), before, "nothing acknowledged while nothing was woken");
    assert!(woken(relay.addr, id).is_null(), "not woken while the app-server is away");
    assert_eq!(session.ask("start")["ok"], true);
    let woke = said(&lines, "woke Codex thread");
    assert!(woke.contains(&session.thread), "{woke}");
    let wake = format!("from claude (#{id})");
    let (requests, _) =
        session.requests_until(|r, _| r.iter().any(|t| t.last().is_some_and(|t| t.contains(&wake))));
    let woken = requests.iter().find(|t| t.last().is_some_and(|t| t.contains(&wake))).unwrap();
    assert_eq!(woken[0], "hello from the session", "the resumed thread: {requests:?}");
    cursor_reaches(relay.addr, id);
    waker.kill().unwrap();
    waker.wait().unwrap();
}

/// A thread running a turn is woken once the turn completes, in a turn of its own (the running
/// one is not disturbed); with several threads open, watch asks for --thread; with --steer the
/// wake goes into the running turn.
#[test]
fn a_busy_codex_thread_is_woken_after_its_turn_several_need_a_name_and_steer_goes_into_it() {
    let work = tempfile::tempdir().unwrap();
    let relay = start_relay(work.path(), &[]);
    let mut session = Session::start(work.path(), None);
    let address = format!("unix://{}", session.socket);
    let (mut waker, lines) = start_waker(work.path(), relay.addr.port(), &["--codex-app-server", &address]);
    said(&lines, "will wake Codex thread");
    assert_eq!(session.ask("busy 4")["ok"], true);
    let id = post(relay.addr, "claude", "while you work");
    said(&lines, "is running a turn; waking it once the turn completes");
    said(&lines, "started turn");
    let (requests, aborted) = session.requests_until(|r, _| r.len() >= 3);
    assert_eq!(aborted, serde_json::json!([]), "the running turn was not disturbed: {requests:?}");
    let slow = requests.iter().position(|r| r.last().is_some_and(|t| t.contains("SLOW4"))).unwrap();
    let wake =
        requests.iter().position(|r| r.last().is_some_and(|t| t.contains("relay channel rv"))).unwrap();
    assert!(
        wake > slow && requests[wake].iter().any(|t| t.contains("SLOW4")),
        "a turn after it: {requests:?}"
    );
    assert!(requests[wake].last().unwrap().contains(&format!("since_id {})", id - 1)), "{requests:?}");
    waker.kill().unwrap();
    waker.wait().unwrap();

    session.ask("open");
    let url = format!("http://{}", relay.addr);
    let args = ["watch", "--url", &url, "--target", "rv", "--codex-app-server", &address];
    let out = run_client(relay_command(work.path(), &args, &[]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("2 Codex threads are open; name one with --thread"),
        "{stderr}"
    );
    assert!(stderr.contains(&session.thread), "the threads are listed: {stderr}");

    // Named, and told to steer: the wake goes into the running turn.
    let thread_arg = session.thread.clone();
    let (mut waker, lines) = start_waker(
        work.path(),
        relay.addr.port(),
        &["--codex-app-server", &address, "--thread", &thread_arg, "--steer"],
    );
    said(&lines, &format!("will wake Codex thread {}", session.thread));
    assert_eq!(session.ask("busy 6")["ok"], true);
    let id = post(relay.addr, "claude", "steer me");
    said(&lines, "steered into its running turn");
    let wake = format!("from claude (#{id})");
    let (requests, aborted) = session.requests_until(|r, aborted| {
        r.last().is_some_and(|t| t.last().unwrap().contains(&wake)) && aborted != &serde_json::json!([])
    });
    let last = requests.last().unwrap();
    assert!(last.last().unwrap().contains(&wake), "{requests:?}");
    assert_eq!(
        last[last.len() - 2],
        "long work SLOW6",
        "the running turn's input, then the wake: {requests:?}"
    );
    assert_ne!(aborted, serde_json::json!([]), "the running turn's sampling restarted with the wake");
    waker.kill().unwrap();
    waker.wait().unwrap();
}

/// With no app-server there, watch says so and, given --exec, runs the command instead, saying
/// which path it took; without --exec it keeps the messages for the next try.
#[test]
fn without_the_app_server_watch_says_so_and_runs_exec_instead() {
    let work = tempfile::tempdir().unwrap();
    let relay = start_relay(work.path(), &[]);
    let nowhere = format!("unix://{}", work.path().join("none.sock").display());
    seed(relay.addr);
    let (mut waker, lines) = start_waker(
        work.path(),
        relay.addr.port(),
        &["--reader", "codex", "--codex-app-server", &nowhere, "--exec", "cat > batch.json"],
    );
    said(&lines, "cannot reach the Codex app-server at unix://");
    listening(relay.addr);
    let id = post(relay.addr, "claude", "fall back");
    said(&lines, "running --exec instead");
    cursor_reaches(relay.addr, id);
    assert!(woken(relay.addr, id).is_f64(), "--exec succeeded: woken");
    let batch = std::fs::read_to_string(work.path().join("batch.json")).unwrap();
    assert!(batch.contains("fall back"), "{batch}");
    waker.kill().unwrap();
    waker.wait().unwrap();

    let (mut waker, lines) =
        start_waker(work.path(), relay.addr.port(), &["--reader", "codex", "--codex-app-server", &nowhere]);
    let kept = post(relay.addr, "claude", "kept");
    said(&lines, "these messages will wake it when it can be reached");
    thread::sleep(Duration::from_secs(1));
    let cursor = codex_cursor(relay.addr);
    assert!(cursor >= id && cursor < kept, "not acknowledged while nothing was woken: {cursor}");
    assert!(woken(relay.addr, kept).is_null(), "nor said to be woken");
    waker.kill().unwrap();
    waker.wait().unwrap();
}

/// Runs `watch` until it stops by itself (within 60 s): how it ended, and all it said.
fn watch_until_it_stops(work: &Path, port: u16, extra: &[&str]) -> (std::process::ExitStatus, String) {
    let (mut waker, lines) = start_waker(work, port, extra);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = waker.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "watch did not stop: {:?}", lines.try_iter().collect::<Vec<_>>());
        thread::sleep(Duration::from_millis(50));
    };
    (status, lines.iter().collect::<Vec<_>>().join("\n"))
}

/// A free loopback port (nothing listens on it once this returns).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Bad input each gets a clear message, and no message is lost or said to be woken, and no cursor
/// moves: an address that is not one, an app-server that speaks another protocol version, a
/// wrong token (these stop `watch`), and an unknown thread (`watch` waits for it to open).
#[test]
fn bad_app_server_input_is_said_clearly_and_moves_no_cursor() {
    let work = tempfile::tempdir().unwrap();
    let relay = start_relay(work.path(), &[]);
    let port = relay.addr.port();
    seed(relay.addr);
    let ended = |extra: &[&str], needle: &str| {
        let (status, said) = watch_until_it_stops(work.path(), port, extra);
        assert!(!status.success() && said.contains(needle), "{status}: {said}");
    };
    ended(&["--reader", "codex", "--codex-app-server", "http://127.0.0.1:1"], "is not an app-server address");

    // Another version of the protocol: Codex's own answer to a method it does not know.
    let foreign = work.path().join("foreign.sock");
    let mut server = Command::new(client_path("RELAY_MCP_PYTHON"))
        .arg(clients_dir().join("foreign_app_server.py"))
        .arg(&foreign)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let ready = lines_of(server.stdout.take().unwrap()).recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(ready, "ready");
    let address = format!("unix://{}", foreign.display());
    ended(&["--reader", "codex", "--codex-app-server", &address], "does not know thread/loaded/list");
    server.kill().unwrap();
    server.wait().unwrap();

    // The real app-server on ws:// with a capability token: a wrong one is refused.
    let (token, wrong) = (work.path().join("token"), work.path().join("wrong"));
    std::fs::write(&token, "right-token\n").unwrap();
    std::fs::write(&wrong, "wrong-token\n").unwrap();
    let ws_port = free_port();
    let home = work.path().join("codex-home");
    std::fs::create_dir_all(&home).unwrap();
    let mut app_server = Command::new(client_path("RELAY_CODEX"))
        .args([
            "app-server",
            "--listen",
            &format!("ws://127.0.0.1:{ws_port}"),
            "--ws-auth",
            "capability-token",
        ])
        .arg("--ws-token-file")
        .arg(&token)
        .env("CODEX_HOME", &home)
        .env("HOME", work.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", ws_port)).is_err() {
        assert!(Instant::now() < deadline, "the app-server listens on {ws_port}");
        thread::sleep(Duration::from_millis(50));
    }
    let ws = format!("ws://127.0.0.1:{ws_port}");
    let with = |file: &Path| {
        vec!["--reader", "codex", "--codex-app-server", &ws, "--codex-token-file"]
            .into_iter()
            .map(str::to_owned)
            .chain([file.display().to_string()])
            .collect::<Vec<_>>()
    };
    let args = with(&wrong);
    ended(&args.iter().map(String::as_str).collect::<Vec<_>>(), "invalid websocket bearer token");

    // The right token and a thread that is not open: said, and waited for; nothing is woken.
    let mut args = with(&token);
    args.extend(["--thread".to_owned(), "019a0000-0000-7000-8000-000000000000".to_owned()]);
    let (mut waker, lines) =
        start_waker(work.path(), port, &args.iter().map(String::as_str).collect::<Vec<_>>());
    said(
        &lines,
        "the Codex thread 019a0000-0000-7000-8000-000000000000 is not open on the app-server (open: none)",
    );
    listening(relay.addr);
    let before = codex_cursor(relay.addr);
    let id = post(relay.addr, "claude", "for a thread that is not open");
    said(&lines, "these messages will wake it when it can be reached");
    assert_eq!(codex_cursor(relay.addr), before, "no cursor moved");
    assert!(woken(relay.addr, id).is_null(), "nothing said to be woken");
    let kept = request(relay.addr, "GET", "/api/messages?target=rv&reader=codex", &[], None).json();
    assert!(kept["messages"].as_array().unwrap().iter().any(|m| m["id"] == id), "the message waits: {kept}");
    waker.kill().unwrap();
    waker.wait().unwrap();
    app_server.kill().unwrap();
    app_server.wait().unwrap();
}
