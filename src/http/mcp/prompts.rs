//! The review workflow as MCP prompts (Claude Code offers a server's prompts as slash commands,
//! for example `/mcp__relay__review_latest_packet proj-x`):
//! - `post_review_packet`: how to post the change just made as a review packet, then wait;
//! - `review_latest_packet`: the channel's latest packet from someone else, quoted, with how to
//!   answer it.

use crate::http::error::ApiError;
use crate::message::Message;
use crate::relay::{Caller, Relay, MCP_DEFAULT_LIMIT};
use rmcp::model::{
    ErrorData, GetPromptResult, JsonObject, ListPromptsResult, Prompt, PromptArgument, PromptMessage, Role,
};
use serde_json::Value;

const POST: &str = "post_review_packet";
const REVIEW: &str = "review_latest_packet";
/// Every prompt's name; each takes a `channel` argument.
pub const NAMES: [&str; 2] = [POST, REVIEW];

fn argument(name: &str, description: &str, required: bool) -> PromptArgument {
    PromptArgument::new(name).with_description(description).with_required(required)
}

pub fn list() -> ListPromptsResult {
    let channel = || argument("channel", "The relay channel, for example proj-x", true);
    ListPromptsResult::with_all_items(vec![
        Prompt::new(
            POST,
            Some("Post the change you just made as a review packet on a channel, then wait for the review"),
            Some(vec![channel(), argument("sender", "Your name on the relay (default: claude)", false)]),
        ),
        Prompt::new(
            REVIEW,
            Some("Review the latest packet on a channel and post feedback"),
            Some(vec![channel(), argument("reviewer", "Your name on the relay (default: codex)", false)]),
        ),
    ])
}

pub async fn get(
    relay: &Relay,
    caller: &Caller,
    name: &str,
    args: Option<JsonObject>,
) -> Result<GetPromptResult, ErrorData> {
    let args = args.unwrap_or_default();
    let text = |field: &str| match args.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_owned())),
        Some(_) => Err(ErrorData::invalid_params(format!("{field}: must be a non-empty string"), None)),
    };
    let channel = text("channel")?.ok_or_else(|| ErrorData::invalid_params("channel: is required", None))?;
    let refused = |e: ApiError| ErrorData::invalid_params(e.message(), None);
    let (description, body) = match name {
        POST => {
            let sender = text("sender")?.unwrap_or_else(|| "claude".into());
            // Validates the channel the same way a post would, so a bad name is refused now.
            relay.tail(&channel, 1, caller).await.map_err(|e| refused(e.into()))?;
            (format!("Post a review packet on {channel}"), post_packet(&channel, &sender))
        }
        REVIEW => {
            let reviewer = text("reviewer")?.unwrap_or_else(|| "codex".into());
            let page = relay
                .tail(&channel, MCP_DEFAULT_LIMIT as usize, caller)
                .await
                .map_err(|e| refused(e.into()))?;
            let mut latest = None;
            for stored in page.messages.iter().rev() {
                let m = stored.decode().map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
                if m.sender != reviewer {
                    latest = Some(m);
                    break;
                }
            }
            let body = review_packet(&channel, &reviewer, page.latest_id, latest.as_ref());
            (format!("Review the latest packet on {channel}"), body)
        }
        _ => {
            let known = NAMES.join(", ");
            return Err(ErrorData::invalid_params(
                format!("no prompt {name:?}; the prompts are {known}"),
                None,
            ));
        }
    };
    Ok(GetPromptResult::new(vec![PromptMessage::new_text(Role::User, body)]).with_description(description))
}

fn post_packet(channel: &str, sender: &str) -> String {
    format!(
        "Post a review packet for the change you just made, with the relay's post_message tool \
         (target \"{channel}\", sender \"{sender}\"). The text is markdown with three parts:\n\
         1. Summary: what changed and why, in a few lines.\n\
         2. The change itself, as `git diff` output in a ```diff fenced block.\n\
         3. Questions: what you want the reviewer to check.\n\
         Then wait for the review with wait_for_messages (target \"{channel}\", since_id = the id \
         post_message returned, exclude_sender \"{sender}\"), calling it again while it times out, \
         and act on the feedback."
    )
}

fn review_packet(channel: &str, reviewer: &str, latest_id: u64, packet: Option<&Message>) -> String {
    let answer = format!(
        "Post your review with post_message (target \"{channel}\", sender \"{reviewer}\"): a verdict \
         (approve or request changes), each issue with its file and line, and the tests to run. \
         Then wait for the next packet with wait_for_messages (target \"{channel}\", since_id = the \
         id post_message returned, exclude_sender \"{reviewer}\")."
    );
    match packet {
        Some(m) => format!(
            "Review this packet from {} (message {} on channel {channel}):\n\n{}\n\n{answer}",
            m.sender, m.id, m.text
        ),
        None => format!(
            "Channel {channel} holds no packet from anyone but {reviewer} among its latest messages. \
             Wait for one with wait_for_messages (target \"{channel}\", since_id {latest_id}, \
             exclude_sender \"{reviewer}\") and review what arrives. {answer}"
        ),
    }
}
