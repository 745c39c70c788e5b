//! How a message looks on a page: its text rendered once (markdown, highlighted, sanitised)
//! and cached, the quote of what a reply answers, its sender's colour and its times.

use super::render::Renderer;
use crate::http::error::ApiError;
use crate::http::pages;
use crate::http::request::{path_segment, Query};
use crate::message::{Message, StoredMessage};
use crate::relay::Relay;
use crate::store::{ChannelStats, ReaderStates};
use crate::values::Name;
use chrono::{DateTime, Local, SecondsFormat, TimeZone};
use serde::Serialize;
use serde_json::json;
use slog::{error, Logger};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex};

/// The renderer, one per process: loading the syntaxes and compiling their regexes is costly,
/// and it holds nothing per relay. The first call starts a thread that warms up the common
/// languages, so the first page with code does not wait on them.
pub(super) fn renderer() -> &'static Renderer {
    static RENDERER: LazyLock<Renderer> = LazyLock::new(|| {
        // Without the thread (the system is out of them) the first page is just slower.
        let _ = std::thread::Builder::new().name("ui-warm-up".into()).spawn(|| RENDERER.warm_up());
        Renderer::new()
    });
    &RENDERER
}

/// One message as the templates see it.
#[derive(Serialize)]
pub(super) struct MessageView {
    id: u64,
    target: String,
    pub(super) sender: String,
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
    /// Taken back: `html` is then the tombstone's text.
    redacted: bool,
}

/// Bytes of rendered message HTML kept in memory.
pub(super) const CACHE_BYTES: usize = 16 << 20;

/// Rendered message HTML by id. A message changes only when it is redacted, which takes its
/// entry out; the oldest entries leave first once the cache holds [`CACHE_BYTES`].
#[derive(Default)]
pub(super) struct HtmlCache {
    by_id: HashMap<u64, Arc<str>>,
    order: VecDeque<u64>,
    bytes: usize,
}

impl HtmlCache {
    pub(super) fn insert(&mut self, id: u64, html: Arc<str>) {
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

pub(super) struct Ui {
    renderer: &'static Renderer,
    rendered: Mutex<HtmlCache>,
    logger: Logger,
    /// Where the quotes of replies come from (`None` in the template tests).
    relay: Option<Relay>,
}

/// Characters of a quoted message shown above a reply.
pub(super) const QUOTE_CHARS: usize = 80;

impl Ui {
    pub(super) fn new(logger: Logger, relay: Option<Relay>) -> Ui {
        Ui { renderer: renderer(), rendered: Mutex::default(), logger, relay }
    }

    /// The first line of message `id` of `channel`, cut to [`QUOTE_CHARS`]; empty when it
    /// cannot be read. Reads the store: called off the async workers.
    pub(super) fn quote(&self, channel: &str, id: u64) -> String {
        let text = self.relay.as_ref().and_then(|relay| relay.message_text(channel, id));
        let first =
            text.as_deref().unwrap_or("").lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
        match first.char_indices().nth(QUOTE_CHARS) {
            Some((at, _)) => format!("{}…", &first[..at]),
            None => first.to_owned(),
        }
    }

    pub(super) fn view(&self, stored: &StoredMessage) -> Result<MessageView, ApiError> {
        let m: Message =
            stored.decode().map_err(|e| ApiError::Unavailable(format!("message {}: {e}", stored.id)))?;
        let (iso, time) = times(m.ts);
        let href = channel_href(&m.target);
        let html = match m.redacted {
            // Never cached, and the message's text, rendered before its redaction, leaves the cache.
            Some(_) => {
                self.forget(m.id);
                self.renderer.markdown(&m.text)
            }
            None => self.html(m.id, &m.text).to_string(),
        };
        Ok(MessageView {
            id: m.id,
            html,
            redacted: m.redacted.is_some(),
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
    pub(super) fn html(&self, id: u64, text: &str) -> Arc<str> {
        let cache = || self.rendered.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(html) = cache().by_id.get(&id) {
            return html.clone();
        }
        let html: Arc<str> = self.renderer.markdown(text).into();
        cache().insert(id, html.clone());
        html
    }

    /// Takes message `id`'s rendered HTML out of the cache.
    fn forget(&self, id: u64) {
        let mut cache = self.rendered.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(html) = cache.by_id.remove(&id) {
            cache.bytes -= html.len();
            cache.order.retain(|&kept| kept != id);
        }
    }

    pub(super) fn message_views(&self, messages: &[StoredMessage]) -> Result<Vec<MessageView>, ApiError> {
        messages.iter().map(|m| self.view(m)).collect()
    }

    /// A template error is logged; the reader gets a plain 500 page without its text.
    pub(super) fn render(&self, template: &str, data: &serde_json::Value) -> Result<String, ApiError> {
        pages::render(template, data).map_err(|e| {
            error!(self.logger, "ui_error"; "template" => template, "error" => e.to_string());
            ApiError::Internal
        })
    }
}

/// One of eight colours for a sender, the same everywhere.
pub(super) fn hue(sender: &str) -> u32 {
    sender.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32)) % 8
}

/// A message's time as RFC 3339 UTC (for `<time datetime>`) and in the relay's local time.
pub(super) fn times(ts: f64) -> (String, String) {
    let when = DateTime::from_timestamp_micros((ts * 1e6) as i64).unwrap_or_default();
    let local = Local.from_utc_datetime(&when.naive_utc()).format("%Y-%m-%d %H:%M:%S").to_string();
    (when.to_rfc3339_opts(SecondsFormat::Millis, true), local)
}

/// Rendered `message` partials, oldest first.
pub(super) fn render_messages(ui: &Ui, messages: &[StoredMessage]) -> Result<String, ApiError> {
    let mut out = String::new();
    for view in ui.message_views(messages)? {
        out.push_str(&ui.render("message", &json!(view))?);
    }
    Ok(out)
}

#[derive(Serialize)]
pub(super) struct ChannelLink {
    pub(super) href: String,
    pub(super) name: String,
    pub(super) count: u64,
    pub(super) current: bool,
    /// "codex is listening on proj-x", or empty when nobody waits there.
    pub(super) listening: String,
    /// Each reader's cursor: the last id it acknowledged.
    pub(super) readers: BTreeMap<String, u64>,
    /// How far each named reader got: woken, read, acknowledged (each the newest id, and when).
    pub(super) delivery: BTreeMap<String, ReaderStates>,
    /// Messages after the cursor of the reader the page picked.
    pub(super) unread: Option<u64>,
}

/// The page of a channel.
pub(super) fn channel_href(name: &str) -> String {
    format!("/c/{}", path_segment(name))
}

pub(super) fn channel_links(channels: Vec<ChannelStats>, current: Option<&str>) -> Vec<ChannelLink> {
    channels
        .into_iter()
        .map(|c| ChannelLink {
            href: channel_href(&c.name),
            current: Some(c.name.as_str()) == current,
            listening: listening_text(&c.listening, &c.name),
            name: c.name,
            count: c.count,
            readers: c.readers,
            delivery: c.delivery,
            unread: c.unread,
        })
        .collect()
}

pub(super) fn listening_text(names: &[String], channel: &str) -> String {
    match names {
        [] => String::new(),
        [one] => format!("{one} is listening on {channel}"),
        [rest @ .., last] => format!("{} and {last} are listening on {channel}", rest.join(", ")),
    }
}

/// The `reader` a page picked, whose unread counts the channel list then carries.
pub(super) fn reader_of(query: &str) -> Result<Option<Name>, ApiError> {
    let query = Query::parse(query)?;
    let reader = query.get("reader").filter(|r| !r.trim().is_empty());
    reader.map(|r| Name::parse("reader", r)).transpose().map_err(|e| ApiError::BadRequest(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
