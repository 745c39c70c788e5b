//! `claude-codex-relay watch`: follow a channel on a running relay, print each new message, and
//! optionally run a command per batch, or wake the open Codex session through its app-server
//! (`cli::codex`). The built-in replacement for the old polling scripts.

use super::client::{Client, Retry};
use super::codex::{Address, AppServer, CodexError};
use crate::message::summary_line;
use crate::values::seconds;
use anyhow::Context;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    /// The relay's base URL
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8010")]
    pub url: String,
    /// A file holding the credential (else CLAUDE_CODEX_AUTH_TOKEN, else CLAUDE_CODEX_TOKEN_FILE)
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The channel to follow
    #[arg(long, value_name = "CHANNEL")]
    pub target: String,
    /// Only messages from this sender
    #[arg(long, value_name = "SENDER", conflicts_with = "not_from")]
    pub from: Option<String>,
    /// Skip messages from this sender (your own, usually)
    #[arg(long, value_name = "SENDER")]
    pub not_from: Option<String>,
    /// Remember the last id handled in FILE, so a restart goes on where it stopped
    #[arg(long, value_name = "FILE", conflicts_with = "reader")]
    pub state_file: Option<PathBuf>,
    /// Keep your place on the relay instead, as the reader NAME (a cursor in the relay's log,
    /// moved on only after --exec succeeded or Codex took the wake, which the relay then shows
    /// as woken for NAME); a reader new to the channel starts at its end
    #[arg(long, value_name = "NAME")]
    pub reader: Option<String>,
    /// Start after this id when there is no state file [default: the channel's last id, so only
    /// new messages]
    #[arg(long, value_name = "ID", conflicts_with = "reader")]
    pub since_id: Option<u64>,
    /// Run CMD (with sh -c) once per batch of new messages: the messages as a JSON array on its
    /// stdin, RELAY_TARGET, RELAY_LAST_ID and RELAY_SENDER in its environment. The batch counts as
    /// handled only when CMD succeeds; otherwise it is delivered again.
    #[arg(long, value_name = "CMD")]
    pub exec: Option<String>,
    /// Wake the open Codex session instead: a turn on its thread, on the Codex app-server at
    /// ADDR (without ADDR, unix://: the control socket of the app-server the Codex TUI starts;
    /// else unix://PATH or ws://HOST:PORT). With --exec, CMD runs when the app-server cannot be
    /// reached
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "unix://")]
    pub codex_app_server: Option<String>,
    /// The Codex thread to wake [default: the one open thread; several need this]
    #[arg(long, value_name = "ID", requires = "codex_app_server")]
    pub thread: Option<String>,
    /// Give the wake to a running turn (turn/steer) instead of waiting for it to complete
    #[arg(long, requires = "codex_app_server")]
    pub steer: bool,
    /// A file holding the bearer token of a ws:// app-server started with --ws-auth
    #[arg(long, value_name = "FILE", requires = "codex_app_server")]
    pub codex_token_file: Option<PathBuf>,
    /// Stop after the first batch of new messages
    #[arg(long)]
    pub once: bool,
    /// Seconds each long poll waits on the relay (which caps it at 50)
    #[arg(long, value_name = "SECONDS", default_value = "25", value_parser = wait_seconds)]
    pub wait: Duration,
}

fn wait_seconds(raw: &str) -> Result<Duration, String> {
    seconds("wait", raw.trim().parse().unwrap_or(f64::NAN)).map_err(|e| e.to_string())
}

fn read_state(path: &Path) -> anyhow::Result<Option<u64>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let id =
                text.trim().parse().with_context(|| format!("state file {} holds no id", path.display()))?;
            Ok(Some(id))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read the state file {}", path.display())),
    }
}

/// Writes the id to a temporary file and renames it over the state file: never half-written.
fn write_state(path: &Path, id: u64) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{id}\n"))
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("cannot write the state file {}", path.display()))
}

fn summary(m: &Value) -> String {
    let field = |name: &str| m[name].as_str().unwrap_or("?");
    summary_line(m["id"].as_u64().unwrap_or(0), field("sender"), field("target"), field("text"))
}

/// Runs the command for one batch; true when it succeeded.
fn run_command(cmd: &str, target: &str, batch: &[Value]) -> anyhow::Result<bool> {
    let last = batch.last().expect("a batch is never empty");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .env("RELAY_TARGET", target)
        .env("RELAY_LAST_ID", last["id"].to_string())
        .env("RELAY_SENDER", last["sender"].as_str().unwrap_or(""))
        .stdin(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    let json = serde_json::to_vec(batch)?;
    // A command that does not read its stdin closes the pipe: that is its business.
    let _ = child.stdin.take().expect("stdin is piped").write_all(&json);
    let status = child.wait()?;
    if !status.success() {
        eprintln!("watch: {cmd:?} failed ({status}); these messages will be delivered again");
    }
    Ok(status.success())
}

/// Runs --exec for a batch; true when it succeeded, which counts as a wake the reader took.
fn exec_batch(client: &Client, args: &WatchArgs, cmd: &str, batch: &[Value]) -> anyhow::Result<bool> {
    let handled = run_command(cmd, &args.target, batch)?;
    if handled {
        note_wake(client, args, batch, "watch --exec: the command succeeded");
    }
    Ok(handled)
}

/// Tells the relay that the reader was woken about `batch` (with a reader only: the states are
/// a named reader's). A failure is said, not fatal: the wake happened; the relay will only
/// not show it.
fn note_wake(client: &Client, args: &WatchArgs, batch: &[Value], via: &str) {
    let Some(reader) = args.reader.as_deref() else { return };
    let ids: Vec<u64> = batch.iter().filter_map(|m| m["id"].as_u64()).collect();
    if let Err(e) = client.note_wake(&args.target, reader, &ids, via) {
        eprintln!("watch: the relay did not record the wake ({e}); its delivery states will not show it");
    }
}

/// The Codex app-server to wake, with its token.
struct Codex {
    address: Address,
    token: Option<String>,
}

impl Codex {
    fn from_args(args: &WatchArgs) -> anyhow::Result<Option<Codex>> {
        let Some(raw) = &args.codex_app_server else { return Ok(None) };
        let address = Address::parse(raw).map_err(anyhow::Error::msg)?;
        let token = match &args.codex_token_file {
            Some(file) => Some(
                std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read the app-server token file {}", file.display()))?
                    .trim()
                    .to_owned(),
            ),
            None => None,
        };
        let codex = Codex { address, token };
        // Said at once: which thread it will wake, or why none can be chosen.
        match codex.connect().and_then(|mut server| server.pick_thread(args.thread.as_deref())) {
            Ok(thread) => {
                eprintln!("watch: will wake Codex thread {thread} on the app-server at {}", codex.address)
            }
            Err(CodexError::Refused(why)) => anyhow::bail!(why),
            Err(CodexError::Unreachable(why) | CodexError::Busy(why)) => {
                eprintln!("watch: {why}; trying again when messages arrive")
            }
        }
        Ok(Some(codex))
    }

    fn connect(&self) -> Result<AppServer, CodexError> {
        AppServer::connect(&self.address, self.token.as_deref())
    }

    /// Wakes the thread with a short text about `batch`; says how it went in, and returns it.
    fn wake(&self, args: &WatchArgs, batch: &[Value]) -> Result<String, CodexError> {
        let mut server = self.connect()?;
        let thread = server.pick_thread(args.thread.as_deref())?;
        let text = wake_text(&args.target, args.reader.as_deref(), batch);
        let how = server.wake(&thread, &text, args.steer, || {
            eprintln!("watch: Codex thread {thread} is running a turn; waking it once the turn completes")
        })?;
        eprintln!("watch: woke Codex thread {thread} on the app-server at {}: {how}", self.address);
        Ok(format!("Codex app-server, thread {thread}: {how}"))
    }
}

/// What a wake says: where the messages are, from whom, and how to read them.
fn wake_text(target: &str, reader: Option<&str>, batch: &[Value]) -> String {
    let mut senders: Vec<&str> = Vec::new();
    for sender in batch.iter().filter_map(|m| m["sender"].as_str()) {
        if !senders.contains(&sender) {
            senders.push(sender);
        }
    }
    let id = |m: Option<&Value>| m.and_then(|m| m["id"].as_u64()).unwrap_or(0);
    let (first, last) = (id(batch.first()), id(batch.last()));
    let (count, ids) = match batch.len() {
        1 => ("1 new message".to_owned(), format!("#{last}")),
        n => (format!("{n} new messages"), format!("#{first}-#{last}")),
    };
    // By id: the watcher's next poll moves the reader's cursor past them, likely before the
    // turn reads them.
    let how = match reader {
        Some(reader) => format!("since_id {}, reader \"{reader}\"", first.saturating_sub(1)),
        None => format!("since_id {}", first.saturating_sub(1)),
    };
    format!(
        "{count} on relay channel {target} from {} ({ids}). Read them with the relay's fetch_messages tool \
         (target \"{target}\", {how}), then answer on {target} with post_message.",
        senders.join(", ")
    )
}

pub fn watch(args: &WatchArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.url, args.token_file.as_deref())?;
    let codex = Codex::from_args(args)?;
    // Trying the app-server again: longer pauses, one line per outage.
    let mut waking = Retry::new("watch");
    let mut retry = Retry::new("watch");
    let reader = args.reader.as_deref();
    // With a reader, the relay knows where to start: `None` until the first batch is handled.
    let mut last = match args.state_file.as_deref().map(read_state).transpose()?.flatten().or(args.since_id) {
        Some(id) => Some(id),
        None if reader.is_some() => None,
        None => loop {
            match client.latest_id(&args.target) {
                Ok(id) => break Some(id),
                Err(e) if e.is_retryable() => retry.failed(&e),
                Err(e) => return Err(e.into()),
            }
        },
    };
    loop {
        let page = match client.wait_as(&args.target, last, reader, args.wait, args.not_from.as_deref()) {
            Ok(page) => page,
            Err(e) if e.is_retryable() => {
                retry.failed(&e);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        retry.worked(format_args!("the relay at {} is back", args.url));
        let batch: Vec<Value> = page["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| args.from.as_deref().is_none_or(|s| m["sender"] == s))
            .filter(|m| args.not_from.as_deref().is_none_or(|s| m["sender"] != s))
            .cloned()
            .collect();
        for m in &batch {
            println!("{}", summary(m));
        }
        let handled = match (&codex, &args.exec) {
            _ if batch.is_empty() => true,
            (Some(codex), exec) => match codex.wake(args, &batch) {
                Ok(how) => {
                    waking.worked("the Codex app-server answers again");
                    note_wake(&client, args, &batch, &how);
                    true
                }
                Err(CodexError::Refused(why)) => anyhow::bail!(why),
                Err(CodexError::Busy(why)) => {
                    waking.failed(format_args!("{why}; waking it once the turn completes"));
                    continue;
                }
                Err(CodexError::Unreachable(why)) => match exec {
                    Some(cmd) => {
                        eprintln!("watch: {why}; running --exec instead");
                        exec_batch(&client, args, cmd, &batch)?
                    }
                    None => {
                        waking.failed(format_args!(
                            "{why}; these messages will wake it when it can be reached"
                        ));
                        continue;
                    }
                },
            },
            (None, Some(cmd)) => exec_batch(&client, args, cmd, &batch)?,
            (None, None) => true,
        };
        if !handled {
            retry.pause();
            continue;
        }
        // Handled: the next poll's since_id acknowledges it (with a reader, on the relay).
        last = page["latest_id"].as_u64().or(last);
        if let (Some(path), Some(last)) = (&args.state_file, last) {
            write_state(path, last)?;
        }
        if args.once && !batch.is_empty() {
            if reader.is_some() {
                // No next poll to acknowledge the batch: a poll that waits for nothing does.
                client.wait_as(&args.target, last, reader, Duration::ZERO, None)?;
            }
            return Ok(ExitCode::SUCCESS);
        }
    }
}
