//! The MCP front door: the tools `post_message`, `fetch_messages`, `list_channels` (the Python
//! relay's contracts) and `wait_for_messages`, served over Streamable HTTP by rmcp.
//!
//! Arguments arrive as a raw JSON object and are checked here, so a bad argument is a tool
//! error (`isError: true`) naming the field, which an agent can read and fix, rather than a
//! JSON-RPC protocol error. The advertised input schemas still come from typed structs.

use super::{completion, prompts, resources};
use crate::http::error::ApiError;
use crate::http::fields::{optional_id, optional_number, optional_str, required_str, PostFields};
use crate::message::{Source, StoredMessage};
use crate::relay::{
    clamp_limit, Caller, ChannelList, Page, Relay, RelayError, Start, Waiter, DEFAULT_WAIT,
    MCP_DEFAULT_LIMIT, MCP_MAX_LIMIT,
};
use crate::values::seconds;
use rmcp::handler::server::common::Extension;
use rmcp::handler::server::common::{schema_for_input, schema_for_output};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, CompleteRequestParams, CompleteResult, ErrorData, GetPromptRequestParams,
    GetPromptResponse, Implementation, JsonObject, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{tool, tool_handler, tool_router, ServerHandler};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{json, Value};
use slog::info;
use std::sync::Arc;
use warp::http::request::Parts;

const INSTRUCTIONS: &str = "\
A message relay between coding agents and their humans, on named channels (for example proj-x).
Review workflow: the author posts a review packet with post_message (a summary, the change as a
```diff fenced block, questions); the reviewer fetches it with fetch_messages or waits for it with
wait_for_messages, reviews, and posts feedback on the same channel (verdict, issues, tests to run).
Keep the latest_id of each reply and pass it as since_id next time, so you see each message once;
add reader=<your name> and the relay keeps your place, so after a restart reader alone resumes.
The prompts post_review_packet and review_latest_packet (argument: channel) walk through each side
of a review. Each channel is a resource, relay://channel/NAME: its last 50 messages as JSON.";

#[allow(dead_code)] // read only for its schema
#[derive(JsonSchema)]
struct PostArgs {
    /// The channel, for example "proj-x".
    target: String,
    /// Who is posting, for example "claude" or "codex".
    sender: String,
    /// The message, markdown. Put code changes in a ```diff fenced block.
    text: String,
    /// The id of the message this answers (same channel).
    reply_to: Option<u64>,
}

#[allow(dead_code)] // read only for its schema
#[derive(JsonSchema)]
struct FetchArgs {
    /// The channel.
    target: String,
    /// Only ids above this: your previous latest_id.
    #[schemars(default = "zero")]
    since_id: Option<u64>,
    /// At most this many (1 to 200).
    #[schemars(default = "default_limit")]
    limit: Option<i64>,
    /// Your name. Alone: what you have not acknowledged. With since_id: acknowledges up to it.
    reader: Option<String>,
    /// "end": a new reader starts at the channel's end.
    start: Option<String>,
    /// Only this message and its replies.
    thread: Option<u64>,
    /// Search instead: words, "a phrase", sender:NAME. Newest first.
    q: Option<String>,
}

#[allow(dead_code)] // read only for its schema
#[derive(JsonSchema)]
struct WaitArgs {
    /// The channel.
    target: String,
    /// The latest_id you last saw (or pass reader).
    since_id: Option<u64>,
    /// Seconds to wait, at most 50.
    #[schemars(default = "default_wait")]
    timeout_s: Option<f64>,
    /// Skip this sender's messages (your own name).
    exclude_sender: Option<String>,
    /// Your name, as in fetch_messages.
    reader: Option<String>,
}

#[allow(dead_code)] // read only for its schema
#[derive(JsonSchema)]
struct ListArgs {
    /// Your name: adds each channel's unread count for you.
    reader: Option<String>,
}

#[allow(dead_code)] // read only for its schema
#[derive(JsonSchema)]
struct NoArgs {}

fn zero() -> u64 {
    0
}
fn default_limit() -> i64 {
    MCP_DEFAULT_LIMIT as i64
}
fn default_wait() -> f64 {
    DEFAULT_WAIT.as_secs_f64()
}

fn schema<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    compact(schema_for_input::<T>().expect("tool argument structs have object schemas"))
}

fn output_schema<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    compact(schema_for_output::<T>())
}

/// Agents pay for tool definitions in tokens on every turn, so a schema keeps only what a
/// client checks or a model reads: no `$schema` (MCP's default dialect is the same), no
/// `format` annotations or `minimum: 0` on ids and counts, and no descriptions of shared
/// definitions or their fields (those are the Rust doc comments of the types, written for this
/// code's readers).
fn compact(schema: Arc<JsonObject>) -> Arc<JsonObject> {
    // None of the relay's types has a field named `format`, `minimum` or `$schema`.
    fn strip(map: &mut JsonObject) {
        map.remove("$schema");
        map.remove("format");
        // Every number is an id or a count: the relay checks them itself.
        map.remove("minimum");
        if let Some(Value::Object(defs)) = map.get_mut("$defs") {
            for def in defs.values_mut().filter_map(Value::as_object_mut) {
                def.remove("description");
                if let Some(Value::Object(fields)) = def.get_mut("properties") {
                    fields.values_mut().filter_map(Value::as_object_mut).for_each(|f| {
                        f.remove("description");
                    });
                }
            }
        }
        for value in map.values_mut() {
            match value {
                Value::Object(inner) => strip(inner),
                Value::Array(items) => items.iter_mut().filter_map(Value::as_object_mut).for_each(strip),
                _ => {}
            }
        }
    }
    let mut map = Arc::unwrap_or_clone(schema);
    strip(&mut map);
    Arc::new(map)
}

/// What `post_message` answers; each tool's result is one of these types, serialized, and its
/// `outputSchema` is derived from the same type.
#[derive(Serialize, JsonSchema)]
struct Posted {
    ok: bool,
    posted: u64,
}

#[derive(Serialize, JsonSchema)]
struct Fetched<'a> {
    messages: &'a [StoredMessage],
    // Pass this as since_id next time (the tools' descriptions say so; not a doc comment, so
    // the schema agents pay for stays short).
    latest_id: u64,
    // Present (true) while the relay cannot follow its log (nats mode, servers unreachable):
    // the messages may be behind. Not a doc comment: the schema agents pay for stays short.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stale: bool,
    // Set when since_id was before the kept history: older messages expired (retention). A
    // plain integer in the schema, which agents pay for on every turn.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::message::plain_integer")]
    expired_before: Option<u64>,
}

#[derive(Serialize, JsonSchema)]
struct Waited<'a> {
    #[serde(flatten)]
    page: Fetched<'a>,
    /// True when no message arrived before timeout_s.
    timed_out: bool,
}

fn structured(value: impl Serialize) -> Result<CallToolResult, ToolError> {
    let value = serde_json::to_value(value).map_err(|e| format!("cannot encode the result: {e}"))?;
    Ok(CallToolResult::structured(value))
}

/// What a tool call answers with when its arguments or the relay refuse it.
type ToolError = String;

/// The caller the front door made of the HTTP request (`mcp::handle` puts it in the request's
/// extensions, which rmcp hands on). A request that came in any other way is nobody's: the
/// relay's own anonymous caller.
fn caller(parts: &Parts) -> Caller {
    parts.extensions.get::<Caller>().cloned().unwrap_or_else(|| Caller::anonymous(Source::Mcp))
}

/// [`caller`], for the handlers that get the request's context rather than its parts.
fn caller_in(context: &RequestContext<RoleServer>) -> Caller {
    context.extensions.get::<Parts>().map_or_else(|| Caller::anonymous(Source::Mcp), caller)
}

fn relay_error(e: RelayError) -> ToolError {
    ApiError::from(e).message()
}

fn fetched(page: &Page) -> Fetched<'_> {
    let expired_before = page.expired_before;
    Fetched { messages: &page.messages, latest_id: page.latest_id, stale: page.stale, expired_before }
}

/// What `/docs` shows of the MCP front door: the tools, prompts and resource templates exactly
/// as the server lists them.
pub fn catalog() -> Value {
    let arguments = |schema: &JsonObject| -> Vec<Value> {
        let required = schema.get("required").and_then(Value::as_array).cloned().unwrap_or_default();
        let properties = schema.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
        properties
            .into_iter()
            .map(|(name, p)| {
                let is_required = required.contains(&Value::String(name.clone()));
                json!({"name": name, "required": is_required, "description": p.get("description")})
            })
            .collect()
    };
    let tools: Vec<Value> = RelayMcp::tool_router()
        .list_all()
        .into_iter()
        .map(|t| json!({"name": t.name, "description": t.description, "arguments": arguments(&t.input_schema)}))
        .collect();
    json!({
        "tools": tools,
        "prompts": prompts::list().prompts,
        "resources": resources::templates().resource_templates,
    })
}

/// The MCP server: one per session (or per request, stateless), all sharing one [`Relay`].
#[derive(Clone)]
pub struct RelayMcp {
    relay: Relay,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl RelayMcp {
    pub fn new(relay: Relay) -> Self {
        RelayMcp { relay, tool_router: Self::tool_router() }
    }

    /// The id a read starts after, from `since_id`, `reader` and `start` ([`Relay::start_after`]).
    async fn start_after(
        &self,
        args: &JsonObject,
        target: &str,
        caller: &Caller,
    ) -> Result<Option<u64>, ToolError> {
        let start = Start::parse(optional_str(args, "start")?).map_err(|e| e.to_string())?;
        let (since_id, reader) = (optional_id(args, "since_id")?, optional_str(args, "reader")?);
        self.relay.start_after(target, since_id, reader, start, caller).await.map_err(relay_error)
    }

    /// Refused calls get their line in the tool-usage log here; the relay logs the rest.
    fn logged(
        &self,
        tool: &'static str,
        result: Result<CallToolResult, ToolError>,
    ) -> Result<CallToolResult, ToolError> {
        if let Err(e) = &result {
            info!(self.relay.usage_log(), "{}", tool; "error" => e, "source" => "mcp");
        }
        result
    }

    /// Refused prompt and resource requests, likewise.
    fn logged_protocol<T>(&self, method: &'static str, result: Result<T, ErrorData>) -> Result<T, ErrorData> {
        if let Err(e) = &result {
            info!(self.relay.usage_log(), "{}", method; "error" => e.message.as_ref(), "source" => "mcp");
        }
        result
    }

    #[tool(
        description = "Post a message to a channel; answers with its id once it is stored on disk.",
        input_schema = schema::<PostArgs>(),
        output_schema = output_schema::<Posted>()
    )]
    async fn post_message(
        &self,
        Parameters(args): Parameters<JsonObject>,
        Extension(parts): Extension<Parts>,
    ) -> Result<CallToolResult, ToolError> {
        let caller = caller(&parts);
        let result = async {
            let post = PostFields::parse(&args)?;
            let (text, reply_to) = (post.text.to_owned(), post.reply_to);
            let m = self.relay.post_reply(post.target, post.sender, text, reply_to, &caller).await;
            let m = m.map_err(relay_error)?;
            structured(Posted { ok: true, posted: m.id })
        }
        .await;
        self.logged("post_message", result)
    }

    #[tool(
        description = "Fetch messages of a channel with id > since_id, oldest first. Pass latest_id as since_id next time, with reader=<your name> so the relay keeps your place.",
        input_schema = schema::<FetchArgs>(),
        output_schema = output_schema::<Fetched>()
    )]
    async fn fetch_messages(
        &self,
        Parameters(args): Parameters<JsonObject>,
        Extension(parts): Extension<Parts>,
    ) -> Result<CallToolResult, ToolError> {
        let caller = caller(&parts);
        let result = async {
            let target = required_str(&args, "target")?;
            let since_id = self.start_after(&args, target, &caller).await?.unwrap_or(0);
            let limit = optional_number(&args, "limit")?.map(|n| n as i128);
            let limit = clamp_limit(limit, MCP_DEFAULT_LIMIT, MCP_MAX_LIMIT);
            let page = match (optional_str(&args, "q")?, optional_id(&args, "thread")?) {
                (Some(q), _) => self.relay.search_page(q, target, limit, &caller).await,
                (None, Some(root)) => self.relay.thread(target, root, since_id, limit, &caller).await,
                (None, None) => self.relay.fetch_since(target, since_id, limit, &caller).await,
            }
            .map_err(relay_error)?;
            self.relay.note_read(optional_str(&args, "reader")?, &page, &caller);
            structured(fetched(&page))
        }
        .await;
        self.logged("fetch_messages", result)
    }

    #[tool(
        description = "List channels with each one's count, last_id, listeners, cursors and delivery.",
        input_schema = schema::<ListArgs>(),
        output_schema = output_schema::<ChannelList>()
    )]
    async fn list_channels(
        &self,
        Parameters(args): Parameters<JsonObject>,
        Extension(parts): Extension<Parts>,
    ) -> Result<CallToolResult, ToolError> {
        let caller = caller(&parts);
        let result = async {
            let channels = match optional_str(&args, "reader")? {
                Some(reader) => self.relay.channels_unread_by(reader, &caller).await.map_err(relay_error)?,
                None => self.relay.channels(&caller),
            };
            structured(self.relay.channel_reply(channels))
        }
        .await;
        self.logged("list_channels", result)
    }

    #[tool(
        description = "Wait for the next message on a channel instead of polling: returns once a message with id > since_id arrives (skipping exclude_sender's), or after timeout_s with timed_out.",
        input_schema = schema::<WaitArgs>(),
        output_schema = output_schema::<Waited>()
    )]
    async fn wait_for_messages(
        &self,
        Parameters(args): Parameters<JsonObject>,
        Extension(parts): Extension<Parts>,
    ) -> Result<CallToolResult, ToolError> {
        let caller = caller(&parts);
        let result = async {
            let target = required_str(&args, "target")?;
            let since_id = self
                .start_after(&args, target, &caller)
                .await?
                .ok_or("since_id: is required (or pass reader)")?;
            let timeout = match optional_number(&args, "timeout_s")? {
                Some(s) => seconds("timeout_s", s).map_err(|e| e.to_string())?,
                None => DEFAULT_WAIT,
            };
            let exclude = optional_str(&args, "exclude_sender")?.map(str::trim);
            let reader = optional_str(&args, "reader")?;
            let (page, timed_out) = self
                .relay
                .wait(
                    target,
                    since_id,
                    MCP_MAX_LIMIT as usize,
                    timeout,
                    Waiter { exclude_sender: exclude, reader },
                    &caller,
                )
                .await
                .map_err(relay_error)?;
            self.relay.note_read(reader, &page, &caller);
            structured(Waited { page: fetched(&page), timed_out })
        }
        .await;
        self.logged("wait_for_messages", result)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for RelayMcp {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_prompts()
            .enable_resources()
            .enable_completions()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("claude-codex-relay", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_prompts(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(prompts::list())
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let caller = caller_in(&context);
        let result = prompts::get(&self.relay, &caller, &request.name, request.arguments).await;
        self.logged_protocol("prompts/get", result).map(Into::into)
    }

    async fn list_resources(
        &self,
        _: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(resources::list(&self.relay, &caller_in(&context)))
    }

    async fn list_resource_templates(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(resources::templates())
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let result = resources::read(&self.relay, &caller_in(&context), &request.uri).await;
        self.logged_protocol("resources/read", result).map(Into::into)
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let result =
            completion::complete(&self.relay, &caller_in(&context), &request.r#ref, &request.argument);
        self.logged_protocol("completion/complete", result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_declare_the_python_relays_arguments() {
        let post = schema::<PostArgs>();
        assert_eq!(post["required"], json!(["target", "sender", "text"]));
        let fetch = schema::<FetchArgs>();
        assert_eq!(fetch["required"], json!(["target"]));
        assert_eq!(fetch["properties"]["limit"]["default"], json!(50));
        assert_eq!(fetch["properties"]["since_id"]["default"], json!(0));
    }
}
