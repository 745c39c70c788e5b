//! `claude-codex-relay bridge`: the relay as a stdio MCP server, for Claude Code and any client
//! that starts its MCP servers as child processes. Tool calls are forwarded, one JSON-RPC message
//! each, to the running relay's `/mcp`, so names, schemas and results are the relay's own.
//!
//! It also follows channels on the relay (long polls, woken by posts) and wakes an idle session
//! when someone else posts there: through Claude Code's messaging socket
//! (`CLAUDE_CODE_MESSAGING_SOCKET`, one JSON line: the session sees it as a message from another
//! session), or as a `notifications/claude/channel` notification (Claude Code's channels, shown to
//! the model as a `<channel>` tag). One of the two per session, never both, and each message once.

use super::client::{Client, Retry};
use crate::message::summary_line;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, CustomNotification, ErrorCode,
    ErrorData, Implementation, JsonObject, ListToolsResult, PaginatedRequestParams, ProtocolVersion,
    ServerCapabilities, ServerConfig, ServerNotification,
};
use rmcp::service::{NotificationContext, Peer, RequestContext, RoleServer};
use rmcp::{ServerHandler, ServiceExt};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Where Claude Code names its messaging socket for the servers it starts.
const SOCKET_VAR: &str = "CLAUDE_CODE_MESSAGING_SOCKET";
/// The notification Claude Code's channels take: `{content, meta}`.
const CHANNEL_METHOD: &str = "notifications/claude/channel";
/// Messages that arrive within this time of each other make one wake-up.
const BURST: Duration = Duration::from_millis(150);
/// Messages listed in one wake-up; the rest are counted.
const LISTED: usize = 5;
/// Each long poll on the relay waits up to this long.
const POLL: Duration = Duration::from_secs(25);

#[derive(Debug, Clone, clap::Args)]
pub struct BridgeArgs {
    /// The relay's base URL
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8010")]
    pub url: String,
    /// A file holding the credential (else CLAUDE_CODEX_AUTH_TOKEN, else CLAUDE_CODEX_TOKEN_FILE)
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// Your sender name on the relay: your own messages never wake you
    #[arg(long = "as", value_name = "NAME")]
    pub name: String,
    /// A channel to follow; a new message there from anyone else wakes the session (repeat the
    /// flag for more channels)
    #[arg(long, value_name = "CHANNEL")]
    pub follow: Vec<String>,
    /// How to wake the session: `auto` uses Claude Code's messaging socket when it offers one,
    /// else a channel notification; `channel` for sessions started with channels enabled;
    /// `none` only forwards tool calls
    #[arg(long, value_enum, value_name = "HOW", default_value = "auto")]
    pub wake: Wake,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Wake {
    Auto,
    Socket,
    Channel,
    None,
}

pub fn bridge(args: BridgeArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.wake == Wake::None || !args.follow.is_empty(),
        "nothing to wake the session for: name a channel with --follow CHANNEL (or pass --wake none)"
    );
    let socket = std::env::var_os(SOCKET_VAR).filter(|s| !s.is_empty());
    anyhow::ensure!(
        args.wake != Wake::Socket || socket.is_some(),
        "--wake socket: {SOCKET_VAR} is not set (Claude Code sets it for the MCP servers it starts)"
    );
    let wake = match (args.wake, socket) {
        (Wake::Auto | Wake::Socket, Some(path)) => Delivery::Socket(path.into()),
        (Wake::Auto | Wake::Channel, _) => Delivery::Channel,
        _ => Delivery::None,
    };
    let client = Arc::new(Client::new(&args.url, args.token_file.as_deref())?);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let bridge =
            Bridge { client, args: Arc::new(args), wake, following: Arc::new(AtomicBool::new(false)) };
        let service = bridge.serve(rmcp::transport::stdio()).await?;
        service.waiting().await?;
        Ok(ExitCode::SUCCESS)
    })
}

#[derive(Debug, Clone)]
enum Delivery {
    Socket(std::path::PathBuf),
    Channel,
    None,
}

#[derive(Clone)]
struct Bridge {
    client: Arc<Client>,
    args: Arc<BridgeArgs>,
    wake: Delivery,
    /// Set once the followers run: a second `initialized` starts no second set.
    following: Arc<AtomicBool>,
}

impl Bridge {
    /// Sends one JSON-RPC request to the relay and reads its `result` as `T`; a JSON-RPC error
    /// comes back as it is, an unreachable relay as an error naming its URL.
    async fn forward<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: Value,
    ) -> Result<T, ErrorData> {
        let client = self.client.clone();
        let reply = tokio::task::spawn_blocking(move || client.mcp(method, &params))
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        if let Some(error) = reply.get("error") {
            return Err(serde_json::from_value(error.clone()).unwrap_or_else(|_| {
                ErrorData::internal_error(format!("the relay answered {method} with {error}"), None)
            }));
        }
        serde_json::from_value(reply["result"].clone()).map_err(|e| {
            ErrorData::internal_error(format!("the relay's answer to {method} is not one: {e}"), None)
        })
    }
}

impl ServerHandler for Bridge {
    fn get_info(&self) -> ServerConfig {
        let mut experimental = BTreeMap::new();
        if matches!(self.wake, Delivery::Channel) {
            experimental.insert("claude/channel".to_owned(), JsonObject::new());
        }
        let capabilities =
            ServerCapabilities::builder().enable_experimental_with(experimental).enable_tools().build();
        let follows = self.args.follow.join(", ");
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("claude-codex-relay-bridge", env!("CARGO_PKG_VERSION")))
            .with_instructions(format!(
                "The claude-codex-relay tools, forwarded to the relay at {}. You are {:?} there. New \
                 messages from others on {} arrive as a short notice; read them in full with \
                 fetch_messages.",
                self.args.url,
                self.args.name,
                if follows.is_empty() { "no channel" } else { &follows },
            ))
    }

    /// 2025-11-25 at most: Claude Code takes channel notifications only from a server that
    /// negotiated it (the 2026-07-28 revision has no path for a notification nobody asked for).
    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::known_up_to(&ProtocolVersion::V_2025_11_25))
    }

    async fn list_tools(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.forward("tools/list", json!({})).await
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let params =
            serde_json::to_value(&request).map_err(|e| ErrorData::invalid_params(e.to_string(), None))?;
        let result = match self.forward::<CallToolResult>("tools/call", params).await {
            // The relay could not be asked: say so to the model as the tool's result.
            Err(e) if e.code == ErrorCode::INTERNAL_ERROR => {
                CallToolResult::error(vec![ContentBlock::text(e.message)])
            }
            other => other?,
        };
        Ok(result.into())
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        if matches!(self.wake, Delivery::None) || self.following.swap(true, Ordering::SeqCst) {
            return;
        }
        let (sender, messages) = mpsc::unbounded_channel();
        for channel in &self.args.follow {
            let (client, channel, name, sender) =
                (self.client.clone(), channel.clone(), self.args.name.clone(), sender.clone());
            std::thread::spawn(move || follow(&client, &channel, &name, &sender));
        }
        tokio::spawn(wake(messages, self.wake.clone(), self.args.name.clone(), context.peer));
    }
}

/// Follows one channel from its current end and sends each message from someone else on.
/// Runs on its own thread (the client blocks) until the bridge stops.
fn follow(client: &Client, channel: &str, name: &str, out: &mpsc::UnboundedSender<Value>) {
    let mut retry = Retry::new("bridge");
    let mut last = None;
    while !out.is_closed() {
        let polled = match last {
            None => client.latest_id(channel).map(|id| (id, Vec::new())),
            Some(since) => client.wait(channel, since, POLL, Some(name)).map(|page| {
                let latest = page["latest_id"].as_u64().unwrap_or(since);
                (latest, page["messages"].as_array().cloned().unwrap_or_default())
            }),
        };
        match polled {
            Ok((latest, messages)) => {
                retry.worked(format_args!("following {channel} again"));
                last = Some(latest);
                for m in messages.into_iter().filter(|m| m["sender"] != name) {
                    let _ = out.send(m);
                }
            }
            Err(e) if !e.is_retryable() => {
                eprintln!("bridge: stopped following {channel}: {e}");
                return;
            }
            Err(e) => retry.failed(format_args!("cannot follow {channel}: {e}")),
        }
    }
}

/// Turns messages into wake-ups: a burst becomes one, and no message is delivered twice.
async fn wake(
    mut messages: mpsc::UnboundedReceiver<Value>,
    how: Delivery,
    name: String,
    peer: Peer<RoleServer>,
) {
    let mut delivered: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(first) = messages.recv().await {
        let mut burst = vec![first];
        while let Ok(Some(m)) = tokio::time::timeout(BURST, messages.recv()).await {
            burst.push(m);
        }
        burst.retain(|m| {
            let (channel, id) = (m["target"].as_str().unwrap_or_default(), m["id"].as_u64().unwrap_or(0));
            let seen = delivered.entry(channel.to_owned()).or_default();
            (id > *seen).then(|| *seen = id).is_some()
        });
        let Some(last) = burst.last() else { continue };
        let text = wake_text(&burst, &name);
        let sent = match &how {
            Delivery::Socket(path) => {
                to_socket(path, &text).await.map_err(|e| format!("{}: {e}", path.display()))
            }
            Delivery::Channel => {
                let meta = json!({
                    "channel": last["target"],
                    "sender": last["sender"],
                    "id": last["id"].to_string(),
                });
                let note =
                    CustomNotification::new(CHANNEL_METHOD, Some(json!({"content": text, "meta": meta})));
                peer.send_notification(ServerNotification::CustomNotification(note))
                    .await
                    .map_err(|e| e.to_string())
            }
            Delivery::None => Ok(()),
        };
        if let Err(e) = sent {
            eprintln!("bridge: could not wake the session ({e}); the messages wait on the relay");
        }
    }
}

async fn to_socket(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let line = json!({"type": "user", "message": {"role": "user", "content": text}});
    let mut stream = tokio::net::UnixStream::connect(path).await?;
    stream.write_all(format!("{line}\n").as_bytes()).await?;
    stream.shutdown().await
}

/// The short notice an agent is woken with: per channel, the first lines of a few messages and
/// how to read them in full.
fn wake_text(messages: &[Value], name: &str) -> String {
    let mut channels: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for m in messages {
        channels.entry(m["target"].as_str().unwrap_or_default()).or_default().push(m);
    }
    let mut text = String::from("New on the relay:");
    for (channel, list) in channels {
        let first_id = list[0]["id"].as_u64().unwrap_or(1);
        for m in list.iter().take(LISTED) {
            let field = |k: &str| m[k].as_str().unwrap_or_default();
            text.push_str(&format!(
                "\n{}",
                summary_line(m["id"].as_u64().unwrap_or(0), field("sender"), channel, field("text"))
            ));
        }
        if list.len() > LISTED {
            text.push_str(&format!("\n... and {} more on {channel}", list.len() - LISTED));
        }
        text.push_str(&format!(
            "\nRead in full: fetch_messages with target {channel:?} and since_id {} (reply with post_message as {name:?}).",
            first_id - 1
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_becomes_one_notice_per_channel_with_the_way_to_read_it() {
        let m = |id: u64, target: &str, text: &str| json!({"id": id, "target": target, "sender": "codex", "text": text});
        let mut burst: Vec<Value> =
            (3..10).map(|id| m(id, "proj-x", &format!("\n  packet {id}\nbody"))).collect();
        burst.push(m(12, "ops", "deploy done"));
        let text = wake_text(&burst, "claude");
        assert!(text.contains("#3 [codex -> proj-x] packet 3"), "{text}");
        assert!(text.contains("#7 [codex -> proj-x] packet 7"), "{text}");
        assert!(!text.contains("packet 8"), "{text}");
        assert!(text.contains("... and 2 more on proj-x"), "{text}");
        assert!(text.contains(r#"target "proj-x" and since_id 2"#), "{text}");
        assert!(text.contains("#12 [codex -> ops] deploy done"), "{text}");
        assert!(text.contains(r#"target "ops" and since_id 11"#), "{text}");
        assert!(!text.contains("body"), "{text}");
    }
}
