//! The web UI, rendered on the server from the handlebars templates in `templates/`:
//! - `GET /` the channel picker and how to connect an agent;
//! - `GET /c/{channel}` the channel's newest page of messages and the post form;
//! - `GET /c/{channel}/older?before=ID` the page above, as `{"html", "more"}`;
//! - `GET /c/{channel}/events?after=ID` new messages as Server-Sent Events (`id:` is the message
//!   id, so a reconnecting browser resumes from `Last-Event-ID`);
//!   The same stream carries the channel list as `channels` events;
//! - `GET /channels/events` the channel list alone, for the channel picker: the list now, then
//!   each time a count grows or a channel appears;
//! - `GET /static/*` the stylesheet and scripts (no CDN: the UI works offline).
//!
//! The post form sends `POST /ui/messages` (see `rest.rs`). Agent text only reaches a page
//! through [`Renderer::markdown`], and templates use triple braces for that output alone.

use super::auth::Gate;
use super::error::ApiError;
use super::pages::{self, html};
use super::request::{decode_segment, get_or_head, path_segment, raw_query, Query};
use crate::message::{Message, Source, StoredMessage};
use crate::metrics::Open;
use crate::relay::{Relay, RelayError, REST_MAX_LIMIT};
use crate::render::Renderer;
use crate::store::ChannelStats;
use crate::store::SearchOrder;
use crate::values::Name;
use chrono::{DateTime, Local, SecondsFormat, TimeZone};
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use serde_json::json;
use slog::{error, Logger};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use warp::http::{header, StatusCode};
use warp::reply::{Reply, Response};
use warp::Filter;

/// Messages on a channel page, and in each "Load older" page.
pub const PAGE_SIZE: usize = 100;
/// Messages per Server-Sent Event batch.
const EVENT_BATCH: usize = 100;
/// How often an idle event stream sends a comment, so dead connections are noticed.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How long a browser waits before reconnecting a dropped event stream.
const RECONNECT: Duration = Duration::from_secs(1);
/// Senders the post form offers before any are seen.
const DEFAULT_SENDERS: [&str; 4] = ["web-ui", "user", "claude", "codex"];

const STATIC_FILES: [(&str, &str, &str); 3] = [
    ("relay.css", "text/css; charset=utf-8", include_str!("../../static/relay.css")),
    ("relay.js", "text/javascript; charset=utf-8", include_str!("../../static/relay.js")),
    ("theme.js", "text/javascript; charset=utf-8", include_str!("../../static/theme.js")),
];

/// The error page for `error`, with its public text.
fn error_page(error: &ApiError) -> Response {
    pages::error_page(error.status(), &error.message())
}

/// The renderer, one per process: loading the syntaxes and compiling their regexes is costly,
/// and it holds nothing per relay. The first call starts a thread that warms up the common
/// languages, so the first page with code does not wait on them.
fn renderer() -> &'static Renderer {
    static RENDERER: LazyLock<Renderer> = LazyLock::new(|| {
        // Without the thread (the system is out of them) the first page is just slower.
        let _ = std::thread::Builder::new().name("ui-warm-up".into()).spawn(|| RENDERER.warm_up());
        Renderer::new()
    });
    &RENDERER
}

/// One message as the templates see it.
#[derive(Serialize)]
struct MessageView {
    id: u64,
    target: String,
    sender: String,
    /// One of eight colours, the same for a sender everywhere.
    hue: u32,
    /// RFC 3339 UTC, for `<time datetime>`; the page script shows it in the reader's zone.
    iso: String,
    /// The relay's local time, shown until the script runs.
    time: String,
    /// Sanitised HTML of the text.
    html: String,
    /// On a reply: the message it answers, a link to it and the start of its text.
    reply_to: Option<u64>,
    reply_href: String,
    quote: String,
    /// The page of this message's thread.
    thread_href: String,
}

#[derive(Serialize)]
struct ChannelLink {
    href: String,
    name: String,
    count: u64,
    current: bool,
    /// "codex is listening on proj-x", or empty when nobody waits there.
    listening: String,
    /// Each reader's cursor: the last id it acknowledged.
    readers: BTreeMap<String, u64>,
    /// Messages after the cursor of the reader the page picked.
    unread: Option<u64>,
}

/// Bytes of rendered message HTML kept in memory.
const CACHE_BYTES: usize = 16 << 20;

/// Rendered message HTML by id. A message never changes, so an entry never goes stale; the
/// oldest entries leave first once the cache holds [`CACHE_BYTES`].
#[derive(Default)]
struct HtmlCache {
    by_id: HashMap<u64, Arc<str>>,
    order: VecDeque<u64>,
    bytes: usize,
}

impl HtmlCache {
    fn insert(&mut self, id: u64, html: Arc<str>) {
        if self.by_id.insert(id, html.clone()).is_some() {
            return;
        }
        self.order.push_back(id);
        self.bytes += html.len();
        while self.bytes > CACHE_BYTES {
            let Some(old) = self.order.pop_front() else { break };
            self.bytes -= self.by_id.remove(&old).map_or(0, |h| h.len());
        }
    }
}

struct Ui {
    renderer: &'static Renderer,
    rendered: Mutex<HtmlCache>,
    logger: Logger,
    /// Where the quotes of replies come from (`None` in the template tests).
    relay: Option<Relay>,
}

/// Characters of a quoted message shown above a reply.
const QUOTE_CHARS: usize = 80;

impl Ui {
    fn new(logger: Logger, relay: Option<Relay>) -> Ui {
        Ui { renderer: renderer(), rendered: Mutex::default(), logger, relay }
    }

    /// The first line of message `id` of `channel`, cut to [`QUOTE_CHARS`]; empty when it
    /// cannot be read. Reads the store: called off the async workers.
    fn quote(&self, channel: &str, id: u64) -> String {
        let text = self.relay.as_ref().and_then(|relay| relay.message_text(channel, id));
        let first =
            text.as_deref().unwrap_or("").lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
        match first.char_indices().nth(QUOTE_CHARS) {
            Some((at, _)) => format!("{}…", &first[..at]),
            None => first.to_owned(),
        }
    }

    fn view(&self, stored: &StoredMessage) -> Result<MessageView, ApiError> {
        let m: Message =
            stored.decode().map_err(|e| ApiError::Unavailable(format!("message {}: {e}", stored.id)))?;
        let (iso, time) = times(m.ts);
        let href = channel_href(&m.target);
        Ok(MessageView {
            id: m.id,
            html: self.html(m.id, &m.text).to_string(),
            hue: hue(&m.sender),
            iso,
            time,
            reply_to: m.reply_to,
            reply_href: m.reply_to.map_or_else(String::new, |parent| format!("{href}#m-{parent}")),
            quote: m.reply_to.map_or_else(String::new, |parent| self.quote(&m.target, parent)),
            thread_href: format!("{href}/t/{}", m.id),
            target: m.target,
            sender: m.sender,
        })
    }

    /// The message's text rendered, from the cache when it was rendered before.
    fn html(&self, id: u64, text: &str) -> Arc<str> {
        let cache = || self.rendered.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(html) = cache().by_id.get(&id) {
            return html.clone();
        }
        let html: Arc<str> = self.renderer.markdown(text).into();
        cache().insert(id, html.clone());
        html
    }

    fn message_views(&self, messages: &[StoredMessage]) -> Result<Vec<MessageView>, ApiError> {
        messages.iter().map(|m| self.view(m)).collect()
    }

    /// A template error is logged; the reader gets a plain 500 page without its text.
    fn render(&self, template: &str, data: &serde_json::Value) -> Result<String, ApiError> {
        pages::render(template, data).map_err(|e| {
            error!(self.logger, "ui_error"; "template" => template, "error" => e.to_string());
            ApiError::Internal
        })
    }
}

/// Everything a page needs that is not the messages themselves.
struct PageContext {
    channels: Vec<ChannelLink>,
    mcp_url: String,
    /// On a thread's page: its first message.
    thread: Option<u64>,
    /// On the search page: the query and what it found.
    search: Option<serde_json::Value>,
}

/// One of eight colours for a sender, the same everywhere.
fn hue(sender: &str) -> u32 {
    sender.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32)) % 8
}

/// A message's time as RFC 3339 UTC (for `<time datetime>`) and in the relay's local time.
fn times(ts: f64) -> (String, String) {
    let when = DateTime::from_timestamp_micros((ts * 1e6) as i64).unwrap_or_default();
    let local = Local.from_utc_datetime(&when.naive_utc()).format("%Y-%m-%d %H:%M:%S").to_string();
    (when.to_rfc3339_opts(SecondsFormat::Millis, true), local)
}

/// Results shown on the search page.
const SEARCH_PAGE: usize = 50;

/// `/search?q=…&target=…`: the newest matches, each linking to its place in its channel. A
/// query that cannot be parsed gets the page with the reason, as a 400.
async fn search_page(relay: Relay, ui: Arc<Ui>, host: String, raw_query: String) -> Response {
    let result = async {
        let query = Query::parse(&raw_query)?;
        let q = query.get("q").unwrap_or_default().to_owned();
        let target = query.get("target").filter(|t| !t.trim().is_empty());
        let (search, status) =
            match relay.search(&q, target, SearchOrder::Newest, SEARCH_PAGE, Source::Ui).await {
                Ok((hits, total)) => {
                    let shown = hits.len();
                    let hits: Vec<_> = hits
                        .into_iter()
                        .map(|h| {
                            let (iso, time) = times(h.ts);
                            let href = format!("{}#m-{}", channel_href(&h.target), h.id);
                            json!({"href": href, "id": h.id, "hue": hue(&h.sender), "sender": h.sender,
                            "target": h.target, "iso": iso, "time": time, "snippet": h.snippet})
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
            channels: channel_links(relay.channels(Source::Ui), None),
            mcp_url: format!("http://{host}/mcp"),
            thread: None,
            search: Some(search),
        };
        let body = tokio::task::spawn_blocking(move || render_page(&ui, &context, None, &[]))
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
        |host: String, (relay, ui): (Relay, Arc<Ui>)| async move { page(relay, ui, host, None, None).await },
    );
    let channel =
        warp::path!("c" / String).and(get_or_head()).and(gate.page()).and(host).and(with.clone()).then(
            |name: String, host: String, (relay, ui): (Relay, Arc<Ui>)| async move {
                match decode_segment(&name) {
                    Ok(name) => page(relay, ui, host, Some(name), None).await,
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
        .then(|host: String, query: String, (relay, ui): (Relay, Arc<Ui>)| {
            search_page(relay, ui, host, query)
        });
    let thread = warp::path!("c" / String / "t" / u64)
        .and(get_or_head())
        .and(gate.page())
        .and(host)
        .and(with.clone())
        .then(|name: String, root: u64, host: String, (relay, ui): (Relay, Arc<Ui>)| async move {
            match decode_segment(&name) {
                Ok(name) => page(relay, ui, host, Some(name), Some(root)).await,
                Err(e) => error_page(&e),
            }
        });
    let older = warp::path!("c" / String / "older")
        .and(get_or_head())
        .and(gate.ui())
        .and(raw_query())
        .and(with.clone())
        .then(|name: String, query: String, (relay, ui): (Relay, Arc<Ui>)| async move {
            older(relay, ui, &name, &query).await.unwrap_or_else(ApiError::into_response)
        });
    let events = warp::path!("c" / String / "events")
        .and(get_or_head())
        .and(gate.ui())
        .and(raw_query())
        .and(warp::header::optional::<String>("last-event-id"))
        .and(with.clone())
        .map(|name: String, query: String, last: Option<String>, (relay, ui): (Relay, Arc<Ui>)| {
            events(relay, ui, &name, &query, last).unwrap_or_else(ApiError::into_response)
        });
    let channels =
        warp::path!("channels" / "events").and(get_or_head()).and(gate.ui()).and(raw_query()).and(with).map(
            |query: String, (relay, _): (Relay, Arc<Ui>)| match reader_of(&query) {
                Ok(reader) => sse_reply(&relay, channel_events(&relay, reader)),
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

/// The page of a channel.
fn channel_href(name: &str) -> String {
    format!("/c/{}", path_segment(name))
}

fn channel_links(channels: Vec<ChannelStats>, current: Option<&str>) -> Vec<ChannelLink> {
    channels
        .into_iter()
        .map(|c| ChannelLink {
            href: channel_href(&c.name),
            current: Some(c.name.as_str()) == current,
            listening: listening_text(&c.listening, &c.name),
            name: c.name,
            count: c.count,
            readers: c.readers,
            unread: c.unread,
        })
        .collect()
}

fn listening_text(names: &[String], channel: &str) -> String {
    match names {
        [] => String::new(),
        [one] => format!("{one} is listening on {channel}"),
        [rest @ .., last] => format!("{} and {last} are listening on {channel}", rest.join(", ")),
    }
}

/// The `reader` a page picked, whose unread counts the channel list then carries.
fn reader_of(query: &str) -> Result<Option<Name>, ApiError> {
    let query = Query::parse(query)?;
    let reader = query.get("reader").filter(|r| !r.trim().is_empty());
    reader.map(|r| Name::parse("reader", r)).transpose().map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// The channel list as Server-Sent Events named `channels`, each `{"channels": [{"name",
/// "href", "count", "current", "listening", "readers", "unread"}]}`: the list now, then each
/// time it changes.
fn channel_events(
    relay: &Relay,
    reader: Option<Name>,
) -> impl Stream<Item = Result<warp::sse::Event, Infallible>> + Send + 'static {
    relay.follow_channels(reader).map(|list| {
        let data = json!({"channels": channel_links(list, None)});
        Ok(warp::sse::Event::default().event("channels").json_data(data).unwrap_or_default())
    })
}

/// The index (no channel), a channel's page, or the page of one thread of it (`thread`: its
/// first message).
async fn page(
    relay: Relay,
    ui: Arc<Ui>,
    host: String,
    channel: Option<String>,
    thread: Option<u64>,
) -> Response {
    let context = PageContext {
        channels: channel_links(relay.channels(Source::Ui), channel.as_deref()),
        mcp_url: format!("http://{host}/mcp"),
        thread,
        search: None,
    };
    let result = async {
        let messages = match (&channel, thread) {
            (Some(name), Some(root)) => {
                relay.thread(name, root, 0, REST_MAX_LIMIT as usize, Source::Ui).await?.messages
            }
            (Some(name), None) => relay.tail(name, PAGE_SIZE + 1, Source::Ui).await?.messages,
            (None, _) => Vec::new(),
        };
        tokio::task::spawn_blocking(move || render_page(&ui, &context, channel.as_deref(), &messages))
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
        "first_id": shown.first().map_or(0, |m| m.id),
        "last_id": shown.last().map_or(0, |m| m.id),
        "senders": senders,
        "mcp_url": mcp,
        "claude_cmd": format!("claude mcp add --transport http relay {mcp}"),
        "bridge_cmd": format!(
            "claude mcp add relay -- claude-codex-relay bridge --url {} --as claude --follow {}",
            mcp.strip_suffix("/mcp").unwrap_or(mcp),
            channel.unwrap_or("proj-x")
        ),
        "codex_cmd": format!("codex mcp add relay --url {mcp}"),
        "version": env!("CARGO_PKG_VERSION"),
    });
    ui.render("page", &data)
}

/// Rendered `message` partials, oldest first.
fn render_messages(ui: &Ui, messages: &[StoredMessage]) -> Result<String, ApiError> {
    let mut out = String::new();
    for view in ui.message_views(messages)? {
        out.push_str(&ui.render("message", &json!(view))?);
    }
    Ok(out)
}

async fn older(relay: Relay, ui: Arc<Ui>, name: &str, query: &str) -> Result<Response, ApiError> {
    let name = decode_segment(name)?;
    let before = Query::parse(query)?
        .id("before")?
        .ok_or_else(|| ApiError::BadRequest("before: is required".into()))?;
    let messages = relay.before(&name, before, PAGE_SIZE + 1, Source::Ui).await?.messages;
    tokio::task::spawn_blocking(move || {
        let more = messages.len() > PAGE_SIZE;
        let shown = &messages[messages.len().saturating_sub(PAGE_SIZE)..];
        let html = render_messages(&ui, shown)?;
        let first_id = shown.first().map_or(before, |m| m.id);
        Ok(warp::reply::json(&json!({"html": html, "more": more, "first_id": first_id})).into_response())
    })
    .await
    .map_err(|_| ApiError::Internal)?
}

/// New messages of a channel as Server-Sent Events, each `{"id", "html"}`. Starts after
/// `Last-Event-ID` (a reconnect), else after `?after=`, else at the newest message.
fn events(
    relay: Relay,
    ui: Arc<Ui>,
    name: &str,
    query: &str,
    last: Option<String>,
) -> Result<Response, ApiError> {
    let name = decode_segment(name)?;
    let resume = last.and_then(|id| id.trim().parse().ok());
    let after = match resume {
        Some(id) => id,
        None => Query::parse(query)?.id("after")?.unwrap_or_else(|| relay.last_id()),
    };
    let batches = relay.follow(&name, after, EVENT_BATCH).map_err(ApiError::from)?;
    let first = futures_util::stream::once(async { Ok(warp::sse::Event::default().retry(RECONNECT)) });
    let messages = batches
        .then(move |batch| {
            let ui = ui.clone();
            async move {
                let batch = batch.map_err(ApiError::from)?;
                tokio::task::spawn_blocking(move || {
                    let mut out = Vec::with_capacity(batch.len());
                    for m in &batch {
                        let html = render_messages(&ui, std::slice::from_ref(m))?;
                        let event = warp::sse::Event::default()
                            .id(m.id.to_string())
                            .json_data(
                                json!({"id": m.id, "html": html, "reply_to": m.reply_to().ok().flatten()}),
                            )
                            .map_err(|_| ApiError::Internal)?;
                        out.push(event);
                    }
                    Ok::<_, ApiError>(out)
                })
                .await
                .map_err(|_| ApiError::Internal)?
            }
        })
        .flat_map(|result: Result<Vec<warp::sse::Event>, ApiError>| {
            let events = result.unwrap_or_else(|e| {
                // The browser shows the reason and reconnects after RECONNECT.
                vec![warp::sse::Event::default().event("relay-error").data(e.message())]
            });
            futures_util::stream::iter(events.into_iter().map(Ok::<_, Infallible>))
        });
    // A page that picked a reader listens on the channel as that reader while it is open.
    let reader = reader_of(query)?;
    let listening = reader.as_ref().map(|r| relay.listen(&name, r)).transpose()?;
    let live = futures_util::stream::select(messages, channel_events(&relay, reader)).map(move |event| {
        let _held = &listening;
        event
    });
    Ok(sse_reply(&relay, first.chain(live)))
}

/// An event stream with keep-alive comments, counted in `relay_open_event_streams` while open.
fn sse_reply(
    relay: &Relay,
    events: impl Stream<Item = Result<warp::sse::Event, Infallible>> + Send + Sync + 'static,
) -> Response {
    let open = Open::new(&relay.metrics().open_streams);
    let events = events.map(move |event| {
        let _counted = &open;
        event
    });
    warp::sse::reply(warp::sse::keep_alive().interval(KEEP_ALIVE).stream(events)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ui() -> Ui {
        Ui::new(crate::usage_log::discard(), None)
    }

    #[test]
    fn the_html_cache_keeps_to_its_size() {
        let mut cache = HtmlCache::default();
        let big: Arc<str> = "x".repeat(CACHE_BYTES / 4).into();
        for id in 1..=10 {
            cache.insert(id, big.clone());
            cache.insert(id, big.clone());
        }
        assert!(cache.bytes <= CACHE_BYTES);
        assert_eq!(cache.by_id.len(), 4);
        assert_eq!(cache.order, [7, 8, 9, 10]);
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
                unread: None,
            }],
            mcp_url: "http://127.0.0.1:8010/mcp".into(),
            thread: None,
            search: None,
        };
        let json = r#"{"id":7,"ts":1795000000.5,"target":"<x> & \"y\"","sender":"<b>me</b>","text":"**hi**","source":"rest"}"#;
        let stored = StoredMessage::new(7, bytes::Bytes::from_static(json.as_bytes()));
        let page = render_page(&ui(), &context, Some("<x> & \"y\""), &[stored]).unwrap();
        assert!(page.contains(r#"href="/c/%3Cx%3E%20%26%20%22y%22""#), "{page}");
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
