//! The web UI, rendered on the server from the handlebars templates in `views/`:
//! - `GET /` the channel picker and how to connect an agent;
//! - `GET /c/{channel}` the channel's newest page of messages and the post form;
//! - `GET /c/{channel}/older?before=ID` the page above, as `{"html", "more", "first_id",
//!   "expired_before"}`;
//! - `GET /c/{channel}/events?after=ID` new messages as Server-Sent Events (`id:` is the message
//!   id, so a reconnecting browser resumes from `Last-Event-ID`);
//!   The same stream carries the channel list as `channels` events;
//! - `GET /channels/events` the channel list alone, for the channel picker: the list now, then
//!   each time a count grows or a channel appears;
//! - `GET /static/*` the stylesheet and scripts (no CDN: the UI works offline).
//!
//! The post form sends `POST /ui/messages` (see `rest.rs`). Agent text only reaches a page
//! through [`Renderer::markdown`] (`render`), and templates use triple braces for that output
//! alone. `view` turns a stored message into what the templates show; `events` are the live
//! streams.

mod events;
mod render;
mod view;

use super::auth::Gate;
use super::error::ApiError;
use super::pages::{self, html};
use super::request::{decode_segment, get_or_head, raw_query, Query};
use crate::message::StoredMessage;
use crate::relay::{Caller, Relay, RelayError, DEFAULT_TARGET, REST_MAX_LIMIT};
use crate::store::SearchOrder;
use events::{channel_events, events, sse_reply};
#[cfg(doc)]
use render::Renderer;
use serde_json::json;
use std::sync::Arc;
use view::{channel_href, channel_links, hue, reader_of, render_messages, times, ChannelLink, Ui};
use warp::http::{header, StatusCode};
use warp::reply::{Reply, Response};
use warp::Filter;

/// Messages on a channel page, and in each "Load older" page.
pub const PAGE_SIZE: usize = 100;
/// Senders the post form offers before any are seen.
const DEFAULT_SENDERS: [&str; 4] = ["web-ui", "user", "claude", "codex"];

const STATIC_FILES: [(&str, &str, &str); 3] = [
    ("relay.css", "text/css; charset=utf-8", include_str!("../../../static/relay.css")),
    ("relay.js", "text/javascript; charset=utf-8", include_str!("../../../static/relay.js")),
    ("theme.js", "text/javascript; charset=utf-8", include_str!("../../../static/theme.js")),
];

/// The error page for `error`, with its public text.
fn error_page(error: &ApiError) -> Response {
    pages::error_page(error.status(), &error.message())
}

/// Everything a page needs that is not the messages themselves.
struct PageContext {
    channels: Vec<ChannelLink>,
    mcp_url: String,
    /// On a thread's page: its first message.
    thread: Option<u64>,
    /// On the search page: the query and what it found.
    search: Option<serde_json::Value>,
    /// The principal signed in, who posts as itself.
    signed_in: Option<String>,
}

/// Results shown on the search page.
const SEARCH_PAGE: usize = 50;

/// `/search?q=…&target=…`: the newest matches, each linking to its place in its channel. A
/// query that cannot be parsed gets the page with the reason, as a 400.
async fn search_page(relay: Relay, ui: Arc<Ui>, caller: Caller, host: String, raw_query: String) -> Response {
    let result = async {
        let query = Query::parse(&raw_query)?;
        let q = query.get("q").unwrap_or_default().to_owned();
        let target = query.get("target").filter(|t| !t.trim().is_empty());
        let (search, status) = match relay.search(&q, target, SearchOrder::Newest, SEARCH_PAGE, &caller).await
        {
            Ok((hits, total)) => {
                let shown = hits.len();
                let hits: Vec<_> = hits
                    .into_iter()
                    .map(|h| {
                        let (iso, time) = times(h.ts);
                        let href = format!("{}#m-{}", channel_href(&h.target), h.id);
                        let pieces: Vec<_> = h
                            .pieces()
                            .into_iter()
                            .map(|(text, hit)| json!({"text": text, "hit": hit}))
                            .collect();
                        json!({"href": href, "id": h.id, "hue": hue(&h.sender), "sender": h.sender,
                            "target": h.target, "iso": iso, "time": time, "snippet": pieces})
                    })
                    .collect();
                let found = json!({"query": q, "total": total, "one": total == 1, "hits": hits,
                    "more": total > shown as u64, "shown": shown, "error": null});
                (found, StatusCode::OK)
            }
            Err(RelayError::Invalid(why)) => (
                json!({"query": q, "total": 0, "one": false, "hits": [], "more": false, "shown": 0,
                        "error": why.to_string()}),
                StatusCode::BAD_REQUEST,
            ),
            Err(e) => return Err(ApiError::from(e)),
        };
        let context = PageContext {
            channels: channel_links(relay.channels(&caller), None),
            mcp_url: format!("http://{host}/mcp"),
            thread: None,
            search: Some(search),
            signed_in: caller.name().map(str::to_owned),
        };
        let body = tokio::task::spawn_blocking(move || render_page(&ui, &context, None, &[], None))
            .await
            .map_err(|_| ApiError::Internal)??;
        Ok::<_, ApiError>(html(status, body))
    };
    result.await.unwrap_or_else(|e| error_page(&e))
}

pub fn routes(
    relay: Relay,
    gate: &Gate,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let ui = Arc::new(Ui::new(relay.usage_log().clone(), Some(relay.clone())));
    let with = warp::any().map(move || (relay.clone(), ui.clone()));
    let host = warp::header::optional::<String>("host").map(|h: Option<String>| h.unwrap_or_default());

    let index = warp::path::end().and(get_or_head()).and(gate.page()).and(host).and(with.clone()).then(
        |caller: Caller, host: String, (relay, ui): (Relay, Arc<Ui>)| async move {
            page(relay, ui, caller, host, None, None).await
        },
    );
    let channel =
        warp::path!("c" / String).and(get_or_head()).and(gate.page()).and(host).and(with.clone()).then(
            |name: String, caller: Caller, host: String, (relay, ui): (Relay, Arc<Ui>)| async move {
                match decode_segment(&name) {
                    Ok(name) => page(relay, ui, caller, host, Some(name), None).await,
                    Err(e) => error_page(&e),
                }
            },
        );
    let search = warp::path!("search")
        .and(get_or_head())
        .and(gate.page())
        .and(host)
        .and(raw_query())
        .and(with.clone())
        .then(|caller: Caller, host: String, query: String, (relay, ui): (Relay, Arc<Ui>)| {
            search_page(relay, ui, caller, host, query)
        });
    let thread = warp::path!("c" / String / "t" / u64)
        .and(get_or_head())
        .and(gate.page())
        .and(host)
        .and(with.clone())
        .then(|name: String, root: u64, caller: Caller, host: String, (relay, ui): (Relay, Arc<Ui>)| async move {
            match decode_segment(&name) {
                Ok(name) => page(relay, ui, caller, host, Some(name), Some(root)).await,
                Err(e) => error_page(&e),
            }
        });
    let older = warp::path!("c" / String / "older")
        .and(get_or_head())
        .and(gate.ui())
        .and(raw_query())
        .and(with.clone())
        .then(|name: String, caller: Caller, query: String, (relay, ui): (Relay, Arc<Ui>)| async move {
            older(relay, ui, caller, &name, &query).await.unwrap_or_else(ApiError::into_response)
        });
    let events = warp::path!("c" / String / "events")
        .and(get_or_head())
        .and(gate.ui())
        .and(raw_query())
        .and(warp::header::optional::<String>("last-event-id"))
        .and(with.clone())
        .map(
            |name: String,
             caller: Caller,
             query: String,
             last: Option<String>,
             (relay, ui): (Relay, Arc<Ui>)| {
                events(relay, ui, &name, &query, last, caller).unwrap_or_else(ApiError::into_response)
            },
        );
    let channels =
        warp::path!("channels" / "events").and(get_or_head()).and(gate.ui()).and(raw_query()).and(with).map(
            |caller: Caller, query: String, (relay, _): (Relay, Arc<Ui>)| match reader_of(&query)
                .and_then(|reader| channel_events(&relay, reader, caller))
            {
                Ok(events) => sse_reply(&relay, events),
                Err(e) => e.into_response(),
            },
        );
    let files = warp::path!("static" / String).and(get_or_head()).map(|name: String| {
        match STATIC_FILES.iter().find(|(file, ..)| *file == name) {
            Some((_, kind, body)) => {
                let reply = warp::reply::with_header(*body, header::CONTENT_TYPE, *kind);
                warp::reply::with_header(reply, header::CACHE_CONTROL, "no-cache").into_response()
            }
            None => ApiError::NotFound.into_response(),
        }
    });
    index
        .or(channel)
        .unify()
        .or(thread)
        .unify()
        .or(search)
        .unify()
        .or(older)
        .unify()
        .or(events)
        .unify()
        .or(channels)
        .unify()
        .or(files)
        .unify()
}

/// The index (no channel), a channel's page, or the page of one thread of it (`thread`: its
/// first message).
async fn page(
    relay: Relay,
    ui: Arc<Ui>,
    caller: Caller,
    host: String,
    channel: Option<String>,
    thread: Option<u64>,
) -> Response {
    let context = PageContext {
        channels: channel_links(relay.channels(&caller), channel.as_deref()),
        mcp_url: format!("http://{host}/mcp"),
        thread,
        search: None,
        signed_in: caller.name().map(str::to_owned),
    };
    let result = async {
        // A thread whose root is kept has all its replies (newer): only a channel's page says
        // older messages expired.
        let (messages, expired_before) = match (&channel, thread) {
            (Some(name), Some(root)) => {
                (relay.thread(name, root, 0, REST_MAX_LIMIT as usize, &caller).await?.messages, None)
            }
            (Some(name), None) => {
                let page = relay.tail(name, PAGE_SIZE + 1, &caller).await?;
                (page.messages, page.expired_before)
            }
            (None, _) => (Vec::new(), None),
        };
        tokio::task::spawn_blocking(move || {
            render_page(&ui, &context, channel.as_deref(), &messages, expired_before)
        })
        .await
        .map_err(|_| ApiError::Internal)?
    };
    match result.await {
        Ok(body) => html(StatusCode::OK, body),
        Err(e) => error_page(&e),
    }
}

fn render_page(
    ui: &Ui,
    context: &PageContext,
    channel: Option<&str>,
    messages: &[StoredMessage],
    expired_before: Option<u64>,
) -> Result<String, ApiError> {
    // A thread's page shows the whole thread; a channel's, its newest PAGE_SIZE messages.
    let page_size = if context.thread.is_some() { messages.len() } else { PAGE_SIZE };
    let more = messages.len() > page_size;
    let shown = &messages[messages.len() - page_size.min(messages.len())..];
    let views = ui.message_views(shown)?;
    let mut senders: Vec<&str> = DEFAULT_SENDERS.to_vec();
    for v in &views {
        if !senders.contains(&v.sender.as_str()) {
            senders.push(&v.sender);
        }
    }
    let mcp = &context.mcp_url;
    let data = json!({
        "channel": channel,
        "thread": context.thread,
        "search": context.search,
        "channel_href": channel.map(channel_href),
        "channels": context.channels,
        "messages": views,
        "more": more,
        // Shown where "Load older" would be: the page reached the oldest message kept.
        "expired_before": expired_before,
        "first_id": shown.first().map_or(0, |m| m.id),
        "last_id": shown.last().map_or(0, |m| m.id),
        "senders": senders,
        "signed_in": context.signed_in,
        "mcp_url": mcp,
        "claude_cmd": format!("claude mcp add --transport http relay {mcp}"),
        "bridge_cmd": format!(
            "claude mcp add relay -- claude-codex-relay bridge --url {} --as claude --follow {}",
            mcp.strip_suffix("/mcp").unwrap_or(mcp),
            channel.unwrap_or(DEFAULT_TARGET)
        ),
        "codex_cmd": format!("codex mcp add relay --url {mcp}"),
        "version": env!("CARGO_PKG_VERSION"),
    });
    ui.render("page", &data)
}

async fn older(
    relay: Relay,
    ui: Arc<Ui>,
    caller: Caller,
    name: &str,
    query: &str,
) -> Result<Response, ApiError> {
    let name = decode_segment(name)?;
    let before = Query::parse(query)?
        .id("before")?
        .ok_or_else(|| ApiError::BadRequest("before: is required".into()))?;
    let page = relay.before(&name, before, PAGE_SIZE + 1, &caller).await?;
    let (messages, expired_before) = (page.messages, page.expired_before);
    tokio::task::spawn_blocking(move || {
        let more = messages.len() > PAGE_SIZE;
        let shown = &messages[messages.len().saturating_sub(PAGE_SIZE)..];
        let html = render_messages(&ui, shown)?;
        let first_id = shown.first().map_or(before, |m| m.id);
        Ok(warp::reply::json(
            &json!({"html": html, "more": more, "first_id": first_id, "expired_before": expired_before}),
        )
        .into_response())
    })
    .await
    .map_err(|_| ApiError::Internal)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use view::listening_text;

    fn ui() -> Ui {
        Ui::new(crate::usage_log::discard(), None)
    }

    #[test]
    fn a_template_error_is_a_plain_500() {
        let error = ui().render("no-such-template", &json!({})).unwrap_err();
        assert!(matches!(error, ApiError::Internal));
        let page = error_page(&error);
        assert_eq!(page.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(page.headers().contains_key(header::CONTENT_SECURITY_POLICY));
    }

    #[test]
    fn the_page_template_escapes_names_and_keeps_rendered_html() {
        let context = PageContext {
            channels: vec![ChannelLink {
                href: channel_href("<x> & \"y\""),
                name: "<x> & \"y\"".into(),
                count: 1,
                current: true,
                listening: listening_text(&["<i>codex</i>".into(), "b".into(), "c".into()], "<x>"),
                readers: BTreeMap::new(),
                delivery: BTreeMap::new(),
                unread: None,
            }],
            mcp_url: "http://127.0.0.1:8010/mcp".into(),
            thread: None,
            search: None,
            signed_in: Some("ana".into()),
        };
        let json = r#"{"id":7,"ts":1795000000.5,"target":"<x> & \"y\"","sender":"<b>me</b>","text":"**hi**","source":"rest"}"#;
        let stored = StoredMessage::new(7, bytes::Bytes::from_static(json.as_bytes()));
        let page = render_page(&ui(), &context, Some("<x> & \"y\""), &[stored], None).unwrap();
        assert!(page.contains(r#"href="/c/%3Cx%3E%20%26%20%22y%22""#), "{page}");
        assert!(
            page.contains("Signed in as <b>ana</b>") && page.contains(r#"value="ana" readonly"#),
            "{page}"
        );
        assert!(page.contains("&lt;b&gt;me&lt;/b&gt;") && !page.contains("<b>me</b>"));
        assert!(page.contains("<strong>hi</strong>"));
        assert!(page.contains(r#"<time datetime="2026-11-18T"#), "{page}");
        assert!(page.contains("claude mcp add --transport http relay http://127.0.0.1:8010/mcp"));
        assert!(
            page.contains(
                "bridge --url http://127.0.0.1:8010 --as claude --follow &lt;x&gt; &amp; &quot;y&quot;"
            ),
            "{page}"
        );
        let listening =
            r#"<span class="listening">&lt;i&gt;codex&lt;/i&gt;, b and c are listening on &lt;x&gt;</span>"#;
        assert!(page.contains(listening), "{page}");
    }
}
