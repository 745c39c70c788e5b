//! The relay's HTTP client, for the `post`, `watch`, `search` and `bridge` commands: HTTP or
//! HTTPS to a running relay (REST, and one JSON-RPC message at a time to its stateless `/mcp`).
//! Over HTTPS it trusts the certificates in [`CA_VAR`]'s file when set, else those of
//! `SSL_CERT_FILE`, else the system's bundle.

use crate::relay::REST_DEFAULT_LIMIT;
use serde_json::{json, Value};
use std::time::Duration;

/// Messages asked for per long poll: the REST default page.
const WAIT_PAGE: u64 = REST_DEFAULT_LIMIT;
/// Longest a request may take: a long poll waits up to 50 s, plus room for the reply.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(70);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The relay did not answer (stopped, restarting, wrong URL): worth retrying.
    #[error("cannot reach the relay at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The relay answered 5xx: nothing was done, worth retrying.
    #[error("the relay could not do it ({status}): {error}")]
    Unavailable { status: u16, error: String },
    /// The relay refused the request (4xx): retrying will not help.
    #[error("the relay refused the request ({status}): {error}")]
    Refused { status: u16, error: String },
    /// The certificates to trust for an https URL, or the credential's file, cannot be read.
    #[error("{0}")]
    Trust(String),
}

impl ClientError {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, ClientError::Refused { .. } | ClientError::Trust(_))
    }
}

pub struct Client {
    base: String,
    agent: ureq::Agent,
    /// The credential (a principal's own, or the relay's `auth_token`), sent as
    /// `Authorization: Bearer` when set.
    token: Option<String>,
}

/// Where the client commands find their credential.
pub const TOKEN_VAR: &str = "CLAUDE_CODEX_AUTH_TOKEN";
/// A file holding the credential, read when neither `--token-file` nor [`TOKEN_VAR`] is given.
pub const TOKEN_FILE_VAR: &str = "CLAUDE_CODEX_TOKEN_FILE";
/// A PEM file of the certificates to trust for an https relay (a self-signed relay's own).
pub const CA_VAR: &str = "CLAUDE_CODEX_TLS_CA";
/// Where Debian (and most Linux systems) keep the bundle of public CAs.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The credential in `file`, trimmed; `None` when it is empty.
fn read_credential(file: &std::path::Path) -> Result<Option<String>, ClientError> {
    let read = std::fs::read_to_string(file).map_err(|e| {
        ClientError::Trust(format!("cannot read the credential file {}: {e}", file.display()))
    })?;
    Ok(Some(read.trim().to_owned()).filter(|t| !t.is_empty()))
}

impl Client {
    /// `url` is the relay's base URL, for example `http://127.0.0.1:8010`. The credential comes
    /// from the file `token_file` (`--token-file`), else from [`TOKEN_VAR`], else from the file
    /// [`TOKEN_FILE_VAR`] names; for an `https` URL, the certificates to trust as the module says.
    pub fn new(url: &str, token_file: Option<&std::path::Path>) -> Result<Client, ClientError> {
        let mut config =
            ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(REQUEST_TIMEOUT));
        if url.trim_start().to_ascii_lowercase().starts_with("https:") {
            config = config.tls_config(tls_config()?);
        }
        // An empty variable counts as unset, as for the relay's settings.
        let token = match (token_file, std::env::var(TOKEN_VAR).ok().filter(|t| !t.trim().is_empty())) {
            (Some(file), _) => read_credential(file)?,
            (None, Some(token)) => Some(token.trim().to_owned()),
            (None, None) => match std::env::var_os(TOKEN_FILE_VAR).filter(|f| !f.is_empty()) {
                Some(file) => read_credential(std::path::Path::new(&file))?,
                None => None,
            },
        };
        Ok(Client { base: url.trim_end_matches('/').to_owned(), agent: config.build().into(), token })
    }

    fn with_token<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.token {
            Some(token) => request.header("Authorization", format!("Bearer {token}")),
            None => request,
        }
    }

    fn answer(
        &self,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, ClientError> {
        let unreachable = |reason: String| ClientError::Unreachable { url: self.base.clone(), reason };
        let mut response = result.map_err(|e| unreachable(e.to_string()))?;
        let status = response.status().as_u16();
        let body: Value =
            response.body_mut().read_json().map_err(|e| unreachable(format!("unreadable reply: {e}")))?;
        let error = || body["error"].as_str().unwrap_or("no reason given").to_owned();
        match status {
            200..=299 => Ok(body),
            400..=499 => Err(ClientError::Refused { status, error: error() }),
            _ => Err(ClientError::Unavailable { status, error: error() }),
        }
    }

    /// Posts a message (answering `reply_to`, when given); returns its id once the relay has
    /// stored it.
    /// Without a `sender`, the relay posts under the credential's principal.
    pub fn post(
        &self,
        target: &str,
        sender: Option<&str>,
        text: &str,
        reply_to: Option<u64>,
    ) -> Result<u64, ClientError> {
        let body = json!({"target": target, "sender": sender, "text": text, "reply_to": reply_to});
        let reply = self.answer(
            self.with_token(self.agent.post(format!("{}/api/messages", self.base))).send_json(&body),
        )?;
        Ok(reply["posted"].as_u64().unwrap_or(0))
    }

    /// Records that `reader`'s session accepted a wake about messages `ids` of `target` (how:
    /// `via`), for the relay's delivery states.
    pub fn note_wake(&self, target: &str, reader: &str, ids: &[u64], via: &str) -> Result<(), ClientError> {
        let body = json!({"target": target, "reader": reader, "ids": ids, "via": via});
        self.call("POST", "/api/wakes", Some(&body)).map(drop)
    }

    /// Whether the relay takes posts (`GET /readyz`, which answers `ready` as text, or 503 with
    /// why not).
    pub fn ready(&self) -> Result<(), ClientError> {
        let result = self.agent.get(format!("{}/readyz", self.base)).call();
        match result {
            Ok(response) if response.status().is_success() => Ok(()),
            other => self.answer(other).map(|_| ()),
        }
    }

    /// A REST call: `method` on `path` (from the base URL) with an optional JSON body; the
    /// reply's JSON.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let result = match (method, body) {
            ("GET", _) => self.with_token(self.agent.get(&url)).call(),
            ("DELETE", None) => self.with_token(self.agent.delete(&url)).call(),
            ("DELETE", Some(body)) => {
                self.with_token(self.agent.delete(&url)).force_send_body().send_json(body)
            }
            ("PUT", body) => self.with_token(self.agent.put(&url)).send_json(body.unwrap_or(&json!({}))),
            (_, body) => self.with_token(self.agent.post(&url)).send_json(body.unwrap_or(&json!({}))),
        };
        self.answer(result)
    }

    /// Sends one JSON-RPC request to the relay's `/mcp` and returns the JSON-RPC reply whole
    /// (`result` or `error`). `/mcp` runs stateless, so no `initialize` is needed first.
    pub fn mcp(&self, method: &str, params: &Value) -> Result<Value, ClientError> {
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let reply = self
            .with_token(self.agent.post(format!("{}/mcp", self.base)))
            .header("Accept", "application/json, text/event-stream")
            .send_json(&request);
        let unreachable = |reason: String| ClientError::Unreachable { url: self.base.clone(), reason };
        let mut response = reply.map_err(|e| unreachable(e.to_string()))?;
        let status = response.status().as_u16();
        let body: Value = response.body_mut().read_json().map_err(|e| ClientError::Unavailable {
            status,
            error: format!("/mcp gave an unreadable reply: {e}"),
        })?;
        match status {
            200..=299 => Ok(body),
            _ => Err(ClientError::Unavailable {
                status,
                error: body["error"]["message"].as_str().unwrap_or("no reason given").to_owned(),
            }),
        }
    }

    /// A full-text search (`GET /api/search`): the reply, `{"query", "total", "hits"}`.
    pub fn search(
        &self,
        query: &str,
        target: Option<&str>,
        limit: u64,
        order: &str,
    ) -> Result<Value, ClientError> {
        let mut request = self
            .with_token(self.agent.get(format!("{}/api/search", self.base)))
            .query("q", query)
            .query("limit", limit.to_string())
            .query("order", order);
        if let Some(target) = target {
            request = request.query("target", target);
        }
        self.answer(request.call())
    }

    /// The id of the last message of `target` (0 when it has none).
    pub fn latest_id(&self, target: &str) -> Result<u64, ClientError> {
        let request = self
            .with_token(self.agent.get(format!("{}/api/messages", self.base)))
            .query("target", target)
            .query("limit", "1");
        Ok(self.answer(request.call())?["latest_id"].as_u64().unwrap_or(0))
    }

    /// Messages of `target` after `since_id`, waiting up to `wait` for the first one (long poll).
    /// Returns the reply: `messages`, `latest_id`, `timed_out`.
    pub fn wait(
        &self,
        target: &str,
        since_id: u64,
        wait: Duration,
        exclude_sender: Option<&str>,
    ) -> Result<Value, ClientError> {
        self.wait_as(target, Some(since_id), None, wait, exclude_sender)
    }

    /// [`Client::wait`] as `reader`: without `since_id`, after the reader's cursor (a reader new
    /// to the channel starts at its end); with it, the cursor first moves up to `since_id`. A
    /// read on the reader's behalf (`peek`): the relay does not count it as the reader's own.
    pub fn wait_as(
        &self,
        target: &str,
        since_id: Option<u64>,
        reader: Option<&str>,
        wait: Duration,
        exclude_sender: Option<&str>,
    ) -> Result<Value, ClientError> {
        let mut request = self
            .with_token(self.agent.get(format!("{}/api/messages", self.base)))
            .query("target", target)
            .query("limit", WAIT_PAGE.to_string())
            .query("wait", wait.as_secs_f64().to_string());
        if let Some(since_id) = since_id {
            request = request.query("since_id", since_id.to_string());
        }
        if let Some(reader) = reader {
            request = request.query("reader", reader).query("start", "end").query("peek", "true");
        }
        if let Some(sender) = exclude_sender {
            request = request.query("exclude_sender", sender);
        }
        self.answer(request.call())
    }
}

/// The first pause after a failed try, doubled each time up to [`LAST_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(500);
const LAST_RETRY: Duration = Duration::from_secs(10);

/// Retrying a relay that does not answer: doubling pauses between tries, and saying once that
/// it is down and once that it is back (each line starting with `who`, the command).
pub struct Retry {
    who: &'static str,
    pause: Duration,
    down: bool,
}

impl Retry {
    pub fn new(who: &'static str) -> Retry {
        Retry { who, pause: FIRST_RETRY, down: false }
    }

    /// Waits before the next try, longer each time.
    pub fn pause(&mut self) {
        std::thread::sleep(self.pause);
        self.pause = (self.pause * 2).min(LAST_RETRY);
    }

    /// A try failed (`what` says how): say so the first time, then wait before the next.
    pub fn failed(&mut self, what: impl std::fmt::Display) {
        if !self.down {
            eprintln!("{}: {what}; trying again until it works", self.who);
            self.down = true;
        }
        self.pause();
    }

    /// A try worked: say so when earlier ones had failed (`what`), and start the pauses over.
    pub fn worked(&mut self, what: impl std::fmt::Display) {
        if self.down {
            eprintln!("{}: {what}", self.who);
            self.down = false;
        }
        self.pause = FIRST_RETRY;
    }
}

/// rustls with ring, trusting the certificates of the first of [`CA_VAR`], `SSL_CERT_FILE` and
/// the system's bundle that is set (or, for the bundle, there).
fn tls_config() -> Result<ureq::tls::TlsConfig, ClientError> {
    let named =
        |var: &str| std::env::var_os(var).filter(|v| !v.is_empty()).map(|v| (var.to_owned(), v.into()));
    let (from, path): (String, std::path::PathBuf) = named(CA_VAR)
        .or_else(|| named("SSL_CERT_FILE"))
        .unwrap_or_else(|| ("the system's bundle".to_owned(), SYSTEM_BUNDLE.into()));
    let trust =
        |reason: String| ClientError::Trust(format!("cannot trust {} ({from}): {reason}", path.display()));
    let pem = std::fs::read(&path).map_err(|e| trust(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let ureq::tls::PemItem::Certificate(cert) = item.map_err(|e| trust(e.to_string()))? {
            certs.push(cert);
        }
    }
    if certs.is_empty() {
        return Err(trust("it holds no certificate".to_owned()));
    }
    Ok(ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
        .build())
}
