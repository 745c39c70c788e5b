//! Channels as MCP resources: `relay://channel/{name}` reads a channel's most recent messages,
//! as JSON in the shape `fetch_messages` answers with. Clients that let a user attach a
//! resource to a conversation (an @-mention in Claude Code) can so bring a channel into view.

use crate::http::error::ApiError;
use crate::http::request::{decode_segment, path_segment};
use crate::relay::{Caller, Relay, MCP_DEFAULT_LIMIT};
use rmcp::model::{
    ErrorData, ListResourceTemplatesResult, ListResourcesResult, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate,
};
use serde_json::json;

const PREFIX: &str = "relay://channel/";
/// The one resource template: any channel by name.
pub const TEMPLATE: &str = "relay://channel/{name}";
const RECENT: usize = MCP_DEFAULT_LIMIT as usize;
const JSON: &str = "application/json";

pub fn uri(channel: &str) -> String {
    format!("{PREFIX}{}", path_segment(channel))
}

/// One resource per channel the relay lists.
pub fn list(relay: &Relay, caller: &Caller) -> ListResourcesResult {
    let resources = relay
        .channels(caller)
        .into_iter()
        .map(|c| {
            Resource::new(uri(&c.name), c.name.clone())
                .with_description(format!(
                    "The last {RECENT} messages of channel {} ({} in all, last id {})",
                    c.name, c.count, c.last_id
                ))
                .with_mime_type(JSON)
        })
        .collect();
    ListResourcesResult::with_all_items(resources)
}

/// Any channel, listed or not, by name.
pub fn templates() -> ListResourceTemplatesResult {
    let template = ResourceTemplate::new(TEMPLATE, "channel")
        .with_description(format!(
            "The last {RECENT} messages of the channel `name` (percent-encoded), oldest first"
        ))
        .with_mime_type(JSON);
    ListResourceTemplatesResult::with_all_items(vec![template])
}

pub async fn read(relay: &Relay, caller: &Caller, uri: &str) -> Result<ReadResourceResult, ErrorData> {
    let segment = uri.strip_prefix(PREFIX).ok_or_else(|| {
        ErrorData::resource_not_found(format!("no resource {uri}: channels are {PREFIX}NAME"), None)
    })?;
    let refused = |e: ApiError| ErrorData::invalid_params(e.message(), None);
    let channel = decode_segment(segment).map_err(refused)?;
    let page = relay.tail(&channel, RECENT, caller).await.map_err(|e| refused(e.into()))?;
    let mut body = json!({"target": page.target, "messages": page.messages, "latest_id": page.latest_id});
    if let Some(id) = page.expired_before {
        body["expired_before"] = id.into();
    }
    let contents = ResourceContents::text(body.to_string(), uri).with_mime_type(JSON);
    Ok(ReadResourceResult::new(vec![contents]))
}
