//! One harness for every socket test: a relay on a free loopback port with its own temp data
//! dir, and a raw HTTP/1.1 client (so nothing quietly fixes a forged Host or Origin).

use relay::config::Config;
use relay::server::{open_store, Server};
use relay::store::Store;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Bounds every socket read and write, so a hung relay fails the test instead of hanging it.
const IO_TIMEOUT: Duration = Duration::from_secs(20);

pub struct TestApp {
    pub addr: SocketAddr,
    /// The relay's store, for tests that reach past HTTP (fault injection); let go on stop.
    store: Option<Store>,
    _temp: Option<tempfile::TempDir>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

use relay::usage_log::discard as quiet_log;

/// A relay with default settings on a fresh data dir.
pub fn spawn_app() -> TestApp {
    spawn_app_with(|_| {})
}

/// A relay on a fresh data dir, with settings changed by `tweak`.
pub fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let temp = tempfile::tempdir().unwrap();
    let mut app = spawn_app_in(temp.path(), tweak);
    app._temp = Some(temp);
    app
}

/// A relay on an existing data dir (to test restarts).
pub fn spawn_app_in(dir: &Path, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = Config {
        port: 0,
        data_dir: dir.to_owned(),
        channel_log_path: dir.join("log/channel_messages.log"),
        ..Config::default()
    };
    tweak(&mut config);
    let (addr_tx, addr_rx) = mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let store = open_store(&config, quiet_log()).await.expect("the store opens");
            let server = Server::bind_with(&config, store.clone(), quiet_log()).await.expect("relay starts");
            addr_tx.send((server.local_addr(), store)).unwrap();
            server
                .run(async {
                    let _ = stopped.await;
                })
                .await
                .expect("relay stops cleanly");
        });
    });
    let (addr, store) = addr_rx.recv_timeout(IO_TIMEOUT).expect("relay started in time");
    TestApp { addr, store: Some(store), _temp: None, stop: Some(stop), thread: Some(thread) }
}

impl TestApp {
    /// Stops the relay and waits until its store is closed.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// For the I/O fault tests, which arm faults in the store itself.
    #[cfg(feature = "faults")]
    pub fn store(&self) -> &Store {
        self.store.as_ref().expect("the relay is running")
    }

    fn shutdown(&mut self) {
        // The store's last handle must go with the relay, so a restart can open it again.
        self.store.take();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().expect("relay thread ends without panic");
        }
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn get(&self, path: &str) -> Reply {
        request(self.addr, "GET", path, &[], None)
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Reply {
        request(
            self.addr,
            "POST",
            path,
            &[("Content-Type", "application/json")],
            Some(body.to_string().as_bytes()),
        )
    }

    pub fn post(&self, target: &str, sender: &str, text: &str) -> Reply {
        self.post_json(
            "/api/messages",
            &serde_json::json!({"target": target, "sender": sender, "text": text}),
        )
    }

    /// Every message of a channel, paging with since_id.
    pub fn all_messages(&self, target: &str) -> Vec<Value> {
        all_messages(self.addr, target)
    }

    pub fn message_count(&self) -> u64 {
        let channels = self.get("/api/channels").json();
        channels["details"].as_array().unwrap().iter().map(|c| c["count"].as_u64().unwrap()).sum()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if !thread::panicking() {
            self.shutdown();
        }
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Asserts an error reply: this status, `{"ok": false, "error": ...}` naming `needle`.
    pub fn assert_error(&self, status: u16, needle: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        let json = self.json();
        assert_eq!(json["ok"], false, "{json}");
        let error = json["error"].as_str().expect("error is a string");
        assert!(error.contains(needle), "error {error:?} should mention {needle:?}");
        assert!(!error.contains('\n'), "error is one line");
    }
}

/// Sends a request with `Host` set to the relay's address (unless `headers` has one) and
/// `Connection: close`.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Reply {
    let mut raw = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        raw.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        raw.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    raw.push_str("Connection: close\r\n\r\n");
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    send_raw(addr, &bytes).expect("relay answers")
}

/// Writes raw bytes and reads the reply until the relay closes the connection.
pub fn send_raw(addr: SocketAddr, bytes: &[u8]) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.write_all(bytes)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_reply(&raw)
        .ok_or_else(|| std::io::Error::other(format!("malformed reply: {:?}", String::from_utf8_lossy(&raw))))
}

fn parse_reply(raw: &[u8]) -> Option<Reply> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked =
        headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    // A reply to HEAD names its encoding but sends no body.
    if chunked && !body.is_empty() {
        body = dechunk(&body)?;
    }
    Some(Reply { status, headers, body })
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..line_end]).ok()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

pub fn all_messages(addr: SocketAddr, target: &str) -> Vec<Value> {
    messages_after(addr, target, 0)
}

/// Every message of a channel with id > `after`, paging with since_id.
pub fn messages_after(addr: SocketAddr, target: &str, after: u64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut since = after;
    loop {
        let reply = request(
            addr,
            "GET",
            &format!("/api/messages?target={target}&since_id={since}&limit=500"),
            &[],
            None,
        );
        assert_eq!(reply.status, 200, "{}", reply.text());
        let page = reply.json();
        let messages = page["messages"].as_array().unwrap().clone();
        if messages.is_empty() {
            return out;
        }
        since = page["latest_id"].as_u64().unwrap();
        out.extend(messages);
    }
}

/// The real binary, started in its own working dir (so no config.json or log/ of the repo is
/// used) with no `CLAUDE_CODEX_*` variables from the test's environment.
pub struct RelayProcess {
    pub child: Child,
    pub addr: SocketAddr,
}

pub fn relay_command(workdir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_claude-codex-relay"));
    cmd.current_dir(workdir).args(args).stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("CLAUDE_CODEX_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd
}

/// Starts the binary on a free port and waits for its `listening on` line.
pub fn start_relay(workdir: &Path, env: &[(&str, &str)]) -> RelayProcess {
    start_relay_on(workdir, 0, env)
}

/// Starts the binary on `port` (0: a free one) and waits for its `listening on` line.
pub fn start_relay_on(workdir: &Path, port: u16, env: &[(&str, &str)]) -> RelayProcess {
    start_relay_within(workdir, port, env, IO_TIMEOUT)
}

/// [`start_relay_on`], waiting up to `wait` (a start that catches up a long log).
pub fn start_relay_within(workdir: &Path, port: u16, env: &[(&str, &str)], wait: Duration) -> RelayProcess {
    let port = port.to_string();
    let mut child = relay_command(workdir, &["--port", &port, "--data-dir", "data"], env)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(wait).expect("relay prints its address in time");
    let addr = line
        .strip_prefix("listening on http://")
        .or_else(|| line.strip_prefix("listening on https://"))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
    assert!(line.contains("(data: data, "), "{line}");
    RelayProcess { child, addr }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
