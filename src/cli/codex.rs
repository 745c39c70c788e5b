//! Waking an open Codex session through Codex's app-server (`codex app-server`, which the Codex
//! TUI starts, or attaches to with `codex --remote`): JSON-RPC, one message per WebSocket text
//! frame, over the app-server's unix socket (or `ws://HOST:PORT` with a bearer token).
//!
//! A wake is one short connection: `initialize`, the thread's status (`thread/read`), a wait
//! while a turn runs (`thread/status/changed` reaches every connection), then `turn/start` with
//! a short text naming the channel, the senders and how to fetch. With `steer`, a running turn
//! gets the text through `turn/steer` instead. A turn is never interrupted.

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

/// The Codex whose app-server protocol this speaks, as its tests run it.
const TESTED_WITH: &str = "0.169.0";
/// How long one request may wait for its answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);
/// How often a wait for a running turn asks for the thread's status again, in case a
/// notification was missed.
const RECHECK_EVERY: Duration = Duration::from_secs(5);
/// How long one wake waits for a running turn before `watch` polls the relay again (and comes
/// back to wait more, with the messages that arrived meanwhile).
const WAIT_FOR_TURN: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum CodexError {
    /// The app-server cannot be reached, has no thread to wake yet, or refused a call that may
    /// work later (a thread just unloaded, a turn that ended in between): worth trying again.
    #[error("{0}")]
    Unreachable(String),
    /// The thread is running a turn (or waits on its user): the wake waits, it never falls back
    /// to another path.
    #[error("{0}")]
    Busy(String),
    /// What trying again will not fix: a refused token, several threads and none named, a
    /// protocol this code does not speak.
    #[error("{0}")]
    Refused(String),
}

/// Where the app-server listens: `unix://` (the default control socket, where the daemon the
/// Codex TUI starts listens), `unix://PATH`, or `ws://HOST:PORT`.
#[derive(Debug, Clone)]
pub enum Address {
    Unix(PathBuf),
    Ws(String),
}

impl Address {
    pub fn parse(raw: &str) -> Result<Address, String> {
        if let Some(path) = raw.strip_prefix("unix://") {
            return Ok(Address::Unix(match path {
                "" => default_socket()?,
                path => PathBuf::from(path),
            }));
        }
        if raw.starts_with("ws://") {
            return Ok(Address::Ws(raw.to_owned()));
        }
        Err(format!("{raw:?} is not an app-server address: unix://, unix://PATH or ws://HOST:PORT"))
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Unix(path) => write!(f, "unix://{}", path.display()),
            Address::Ws(url) => f.write_str(url),
        }
    }
}

/// The app-server's control socket: `$CODEX_HOME/app-server-control/app-server-control.sock`
/// (`CODEX_HOME` is `~/.codex` unless set).
fn default_socket() -> Result<PathBuf, String> {
    let home = match std::env::var_os("CODEX_HOME") {
        Some(home) => PathBuf::from(home),
        None => {
            PathBuf::from(std::env::var_os("HOME").ok_or("HOME is not set: name the socket, unix://PATH")?)
                .join(".codex")
        }
    };
    Ok(home.join("app-server-control").join("app-server-control.sock"))
}

/// A unix or TCP stream, for the WebSocket.
enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
        }
    }
}

impl Stream {
    fn set_read_timeout(&self, timeout: Duration) -> std::io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(Some(timeout)),
            Stream::Tcp(s) => s.set_read_timeout(Some(timeout)),
        }
    }

    fn set_write_timeout(&self, timeout: Duration) -> std::io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_write_timeout(Some(timeout)),
            Stream::Tcp(s) => s.set_write_timeout(Some(timeout)),
        }
    }
}

/// One initialized connection to the app-server.
pub struct AppServer {
    socket: WebSocket<Stream>,
    next_id: u64,
}

/// A thread's state as the app-server reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    Idle,
    /// A turn runs; the flags say when it waits on an approval or on the user.
    Active(String),
    /// Not loaded, or failed: nothing to wake.
    Other(String),
}

fn status_of(value: &Value) -> Status {
    match value["type"].as_str() {
        Some("idle") => Status::Idle,
        Some("active") => Status::Active(
            value["activeFlags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        other => Status::Other(other.unwrap_or("unknown").to_owned()),
    }
}

impl AppServer {
    /// Connects and initializes. `token`: the bearer token of a `ws://` listener started with
    /// `--ws-auth` (a unix socket is guarded by its file's permissions alone).
    pub fn connect(address: &Address, token: Option<&str>) -> Result<AppServer, CodexError> {
        let unreachable = |e: &dyn std::fmt::Display| {
            CodexError::Unreachable(format!("cannot reach the Codex app-server at {address}: {e}"))
        };
        let (stream, url) = match address {
            Address::Unix(path) => (
                Stream::Unix(UnixStream::connect(path).map_err(|e| unreachable(&e))?),
                "ws://localhost/".to_owned(),
            ),
            Address::Ws(url) => {
                let authority = url["ws://".len()..].split('/').next().unwrap_or_default();
                let mut addrs = authority.to_socket_addrs().map_err(|e| unreachable(&e))?;
                let addr = addrs.next().ok_or_else(|| unreachable(&"the name has no address"))?;
                let stream = TcpStream::connect_timeout(&addr, ANSWER_WITHIN).map_err(|e| unreachable(&e))?;
                (Stream::Tcp(stream), url.clone())
            }
        };
        stream.set_read_timeout(ANSWER_WITHIN).map_err(|e| unreachable(&e))?;
        stream.set_write_timeout(ANSWER_WITHIN).map_err(|e| unreachable(&e))?;
        let mut request = url.as_str().into_client_request().map_err(|e| unreachable(&e))?;
        if let Some(token) = token {
            let value = format!("Bearer {token}").parse().map_err(|_| {
                CodexError::Refused("the app-server token holds characters a header cannot carry".into())
            })?;
            request.headers_mut().insert("Authorization", value);
        }
        let (socket, _) = tungstenite::client(request, stream).map_err(|e| match e {
            tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response)) => {
                let body = response.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default();
                CodexError::Refused(format!(
                    "the Codex app-server at {address} refused the connection ({}): {}",
                    response.status(),
                    body.trim()
                ))
            }
            other => unreachable(&other),
        })?;
        let mut server = AppServer { socket, next_id: 1 };
        let client = json!({"name": "claude-codex-relay", "version": env!("CARGO_PKG_VERSION")});
        server.request("initialize", json!({"clientInfo": client}))?;
        server.send(json!({"method": "initialized", "params": {}}))?;
        Ok(server)
    }

    fn send(&mut self, message: Value) -> Result<(), CodexError> {
        self.socket.send(Message::text(message.to_string())).map_err(lost)
    }

    /// The next JSON-RPC message; `None` when `wait` passed without one.
    fn next(&mut self, wait: Duration) -> Result<Option<Value>, CodexError> {
        // A zero timeout would mean none at all.
        let _ = self.socket.get_ref().set_read_timeout(wait.max(Duration::from_millis(1)));
        loop {
            match self.socket.read() {
                Ok(Message::Text(text)) => {
                    let message = serde_json::from_str(text.as_str()).map_err(|e| {
                        CodexError::Unreachable(format!("the Codex app-server sent what is not JSON: {e}"))
                    })?;
                    return Ok(Some(message));
                }
                Ok(Message::Close(_)) => {
                    return Err(CodexError::Unreachable("the Codex app-server closed the connection".into()))
                }
                Ok(_) => continue, // pings are answered by tungstenite on the next read or write
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    return Ok(None)
                }
                Err(e) => return Err(lost(e)),
            }
        }
    }

    /// Sends a request and waits for its answer; notifications in between are dropped.
    fn request(&mut self, method: &str, params: Value) -> Result<Value, CodexError> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"id": id, "method": method, "params": params}))?;
        let deadline = Instant::now() + ANSWER_WITHIN;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Some(message) = self.next(left)? else { break };
            let reply = message.get("result").is_some() || message.get("error").is_some();
            if message["id"] != id || !reply {
                continue;
            }
            if let Some(error) = message.get("error") {
                let why = error["message"].as_str().unwrap_or("no reason given");
                // Codex answers a method it does not know as an invalid request naming it.
                if error["code"] == -32601 || why.contains(&format!("unknown variant `{method}`")) {
                    return Err(CodexError::Refused(format!(
                        "the Codex app-server does not know {method}: it speaks another version of the \
                         protocol than this relay (written for Codex {TESTED_WITH}); update Codex or the relay"
                    )));
                }
                return Err(CodexError::Unreachable(format!("the Codex app-server refused {method}: {why}")));
            }
            return Ok(message["result"].clone());
        }
        Err(CodexError::Unreachable(format!(
            "the Codex app-server did not answer {method} within {ANSWER_WITHIN:?}"
        )))
    }

    /// The thread to wake: `wanted`, when it is loaded, else the one thread loaded (helper
    /// threads, `ephemeral` ones the TUI makes for titles and sub-agents', do not count).
    pub fn pick_thread(&mut self, wanted: Option<&str>) -> Result<String, CodexError> {
        let loaded = self.request("thread/loaded/list", json!({}))?;
        let ids: Vec<String> = loaded["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|id| id.as_str().map(str::to_owned))
            .collect();
        if let Some(wanted) = wanted {
            return match ids.iter().any(|id| id == wanted) {
                true => Ok(wanted.to_owned()),
                false => Err(CodexError::Unreachable(format!(
                    "the Codex thread {wanted} is not open on the app-server (open: {})",
                    if ids.is_empty() { "none".to_owned() } else { ids.join(", ") }
                ))),
            };
        }
        let mut open = Vec::new();
        for id in ids {
            // One gone since the list (a title helper is dropped after each turn) is not open.
            let Ok(read) = self.request("thread/read", json!({"threadId": id})) else { continue };
            let thread = &read["thread"];
            let helper = thread["ephemeral"] == true || !thread["parentThreadId"].is_null();
            if !helper && status_of(&thread["status"]) != Status::Other("notLoaded".into()) {
                open.push((id, thread["preview"].as_str().unwrap_or_default().to_owned()));
            }
        }
        match open.len() {
            0 => Err(CodexError::Unreachable("no Codex session is open on the app-server yet".into())),
            1 => Ok(open.remove(0).0),
            _ => Err(CodexError::Refused(format!(
                "{} Codex threads are open; name one with --thread: {}",
                open.len(),
                open.iter()
                    .map(|(id, preview)| format!("{id} ({:?})", preview.chars().take(40).collect::<String>()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    fn status(&mut self, thread: &str) -> Result<Status, CodexError> {
        Ok(status_of(&self.request("thread/read", json!({"threadId": thread}))?["thread"]["status"]))
    }

    /// Gives `text` to the thread: a new turn once no turn runs (`on_wait` is called once if it
    /// has to wait for one), or with `steer` into the running turn. Returns how it went in.
    pub fn wake(
        &mut self,
        thread: &str,
        text: &str,
        steer: bool,
        mut on_wait: impl FnMut(),
    ) -> Result<String, CodexError> {
        let input = json!([{"type": "text", "text": text}]);
        let mut waited = false;
        let give_up = Instant::now() + WAIT_FOR_TURN;
        loop {
            match self.status(thread)? {
                Status::Idle => break,
                Status::Active(_) if steer => {
                    let read =
                        self.request("thread/read", json!({"threadId": thread, "includeTurns": true}))?;
                    let running = read["thread"]["turns"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .rev()
                        .find(|turn| turn["status"] == "inProgress")
                        .and_then(|turn| turn["id"].as_str().map(str::to_owned));
                    let Some(turn) = running else {
                        if Instant::now() >= give_up {
                            let why = format!("the Codex thread {thread} is active with no turn to steer");
                            return Err(CodexError::Busy(why));
                        }
                        self.until_changed(thread)?;
                        continue;
                    };
                    let params = json!({"threadId": thread, "expectedTurnId": turn, "input": input});
                    match self.request("turn/steer", params) {
                        Ok(_) => return Ok(format!("steered into its running turn {turn}")),
                        // The turn ended in between: start one.
                        Err(CodexError::Unreachable(why)) if why.contains("no active turn") => break,
                        Err(e) => return Err(e),
                    }
                }
                Status::Active(flags) => {
                    if !waited {
                        on_wait();
                        waited = true;
                    }
                    if Instant::now() >= give_up {
                        let waiting = match flags.as_str() {
                            "" => String::new(),
                            flags => format!(" ({flags})"),
                        };
                        return Err(CodexError::Busy(format!(
                            "the Codex thread {thread} is still running a turn{waiting}"
                        )));
                    }
                    self.until_changed(thread)?;
                }
                Status::Other(what) => {
                    return Err(CodexError::Unreachable(format!("the Codex thread {thread} is {what}")))
                }
            }
        }
        let started = self.request("turn/start", json!({"threadId": thread, "input": input}))?;
        let turn = started["turn"]["id"].as_str().unwrap_or("?");
        Ok(format!("started turn {turn}"))
    }

    /// Waits until the thread's status changes (or [`RECHECK_EVERY`] passes).
    fn until_changed(&mut self, thread: &str) -> Result<(), CodexError> {
        let deadline = Instant::now() + RECHECK_EVERY;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next(left)? {
                Some(m) if m["method"] == "thread/status/changed" && m["params"]["threadId"] == thread => {
                    return Ok(())
                }
                Some(_) => continue,
                None => break,
            }
        }
        Ok(())
    }
}

fn lost(e: tungstenite::Error) -> CodexError {
    CodexError::Unreachable(format!("the connection to the Codex app-server failed: {e}"))
}
