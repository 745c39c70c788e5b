//! The REST API: `/api/messages` (GET, POST), `/api/messages/{id}` and `/api/channels/{name}`
//! (DELETE: redact),
//! `/api/messages/{id}/delivery`, `/api/wakes`,
//! `/api/channels`, `/healthz`, `/readyz`. Shapes are the
//! Python relay's, with fields added beside them (`latest_id`, `since_id`, channel details).

use super::auth::Gate;
use super::error::ApiError;
use super::fields::{optional_str, required_str, Object, PostFields};
use super::request::{
    bad, decode_segment, get_or_head, json_object, max_body_bytes, raw_query, read_body, Query,
};
use crate::message::Source;
use crate::relay::{
    clamp_limit, Caller, Page, Relay, Start, Waiter, DEFAULT_TARGET, REST_DEFAULT_LIMIT, REST_MAX_LIMIT,
    SEARCH_DEFAULT_LIMIT,
};
use crate::store::{ExportFilter, SearchOrder};
use crate::values::Name;
use bytes::Buf;
use futures_util::Stream;
use serde_json::{json, Value};
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::Filter;

pub fn routes(
    relay: Relay,
    gate: &Gate,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let with_relay = warp::any().map(move || relay.clone());
    let get_messages = warp::path!("api" / "messages")
        .and(get_or_head())
        .and(gate.api(Source::Rest))
        .and(raw_query())
        .and(with_relay.clone())
        .then(get_messages);
    // The web UI's post form has its own path so its posts are recorded as from the UI.
    let post_message = (warp::path!("api" / "messages").and(warp::post()).and(gate.api(Source::Rest)))
        .or(warp::path!("ui" / "messages").and(warp::post()).and(gate.ui()))
        .unify()
        .and(with_relay.clone())
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .then(post_message);
    // The web UI's Redact action has its own path, like its post form.
    let redact = (warp::path!("api" / "messages" / u64).and(warp::delete()).and(gate.api(Source::Rest)))
        .or(warp::path!("ui" / "messages" / u64).and(warp::delete()).and(gate.ui()))
        .unify()
        .and(with_relay.clone())
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .then(redact);
    let redact_channel = warp::path!("api" / "channels" / String)
        .and(warp::delete())
        .and(gate.api(Source::Rest))
        .and(with_relay.clone())
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .then(redact_channel);
    let delivery = warp::path!("api" / "messages" / u64 / "delivery")
        .and(get_or_head())
        .and(gate.api(Source::Rest))
        .and(raw_query())
        .and(with_relay.clone())
        .then(delivery);
    let wakes = warp::path!("api" / "wakes")
        .and(warp::post())
        .and(gate.api(Source::Rest))
        .and(with_relay.clone())
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .then(note_wake);
    let channels = warp::path!("api" / "channels")
        .and(get_or_head())
        .and(gate.api(Source::Rest))
        .and(raw_query())
        .and(with_relay.clone())
        .then(list_channels);
    let search = warp::path!("api" / "search")
        .and(get_or_head())
        .and(gate.api(Source::Rest))
        .and(raw_query())
        .and(with_relay.clone())
        .then(search);
    let export = warp::path!("api" / "export")
        .and(get_or_head())
        .and(gate.api(Source::Rest))
        .and(raw_query())
        .and(with_relay.clone())
        .then(export);
    let metrics = warp::path!("metrics")
        .and(get_or_head())
        .and(gate.api(Source::Rest))
        .and(with_relay.clone())
        .then(metrics);
    let health = warp::path!("healthz").and(get_or_head()).map(|| "ok".into_response());
    // Liveness says the process answers; readiness says whether it can take posts.
    let ready = warp::path!("readyz").and(get_or_head()).and(with_relay.clone()).map(|relay: Relay| {
        match relay.ready() {
            Ok(()) => "ready".into_response(),
            Err(missing) => {
                ApiError::Unavailable(format!("not ready: {missing}; reads are still served")).into_response()
            }
        }
    });
    get_messages
        .or(post_message)
        .unify()
        .or(redact)
        .unify()
        .or(redact_channel)
        .unify()
        .or(delivery)
        .unify()
        .or(wakes)
        .unify()
        .or(channels)
        .unify()
        .or(search)
        .unify()
        .or(export)
        .unify()
        .or(metrics)
        .unify()
        .or(health)
        .unify()
        .or(ready)
        .unify()
}

/// `GET /metrics`: the Prometheus text format.
async fn metrics(_: Caller, relay: Relay) -> Response {
    match relay.metrics_text().await {
        Ok(text) => {
            warp::reply::with_header(text, "content-type", "text/plain; version=0.0.4; charset=utf-8")
                .into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// A page as REST sends it: `{"target":…,"messages":[…],"latest_id":…}`, then `"stale":true`
/// while the views may be behind the log, and `"timed_out"` after a wait. The messages are the bytes the store holds, copied in, not parsed or re-encoded.
fn page_reply(page: &Page, timed_out: Option<bool>) -> Response {
    let size: usize = page.messages.iter().map(|m| m.json().len() + 1).sum();
    let mut body = Vec::with_capacity(size + page.target.len() * 6 + 64);
    body.extend_from_slice(b"{\"target\":");
    // A String always serializes; the Vec writer cannot fail.
    let _ = serde_json::to_writer(&mut body, &page.target);
    body.extend_from_slice(b",\"messages\":[");
    for (i, message) in page.messages.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(message.json());
    }
    body.extend_from_slice(format!("],\"latest_id\":{}", page.latest_id).as_bytes());
    if page.stale {
        body.extend_from_slice(b",\"stale\":true");
    }
    if let Some(id) = page.expired_before {
        body.extend_from_slice(format!(",\"expired_before\":{id}").as_bytes());
    }
    if let Some(timed_out) = timed_out {
        body.extend_from_slice(format!(",\"timed_out\":{timed_out}").as_bytes());
    }
    body.push(b'}');
    warp::reply::with_header(body, "content-type", "application/json").into_response()
}

async fn get_messages(caller: Caller, raw_query: String, relay: Relay) -> Response {
    let result = async {
        let query = Query::parse(&raw_query)?;
        let target = query.get("target").unwrap_or(DEFAULT_TARGET);
        let limit = clamp_limit(query.limit()?, REST_DEFAULT_LIMIT, REST_MAX_LIMIT);
        let wait = query.seconds("wait")?;
        let reader = query.get("reader");
        let start = Start::parse(query.get("start")).map_err(|e| bad(e.to_string()))?;
        // A read on the reader's behalf (what `watch` makes) is not the reader's own.
        let peek = match query.get("peek").map(str::trim) {
            None | Some("" | "false" | "0") => false,
            Some("true" | "1") => true,
            Some(_) => return Err(bad("peek: must be true or false")),
        };
        let read = |page: &Page| {
            if !peek {
                relay.note_read(reader, page, &caller)
            }
        };
        let since_id = relay.start_after(target, query.id("since_id")?, reader, start, &caller).await?;
        if let Some(root) = query.id("thread")? {
            let page = relay.thread(target, root, since_id.unwrap_or(0), limit, &caller).await?;
            read(&page);
            return Ok(page_reply(&page, None));
        }
        let (page, timed_out) = match (since_id, wait) {
            (Some(since), Some(wait)) => {
                let exclude = query.get("exclude_sender").map(|s| s.trim());
                let (page, timed_out) = relay
                    .wait(target, since, limit, wait, Waiter { exclude_sender: exclude, reader }, &caller)
                    .await?;
                (page, Some(timed_out))
            }
            (Some(since), None) => (relay.fetch_since(target, since, limit, &caller).await?, None),
            (None, Some(_)) => {
                return Err(bad("wait: needs since_id or reader (wait for messages after which id?)"))
            }
            (None, None) => (relay.tail(target, limit, &caller).await?, None),
        };
        read(&page);
        Ok::<_, ApiError>(page_reply(&page, timed_out))
    };
    result.await.unwrap_or_else(ApiError::into_response)
}

async fn post_message(
    caller: Caller,
    relay: Relay,
    declared: Option<u64>,
    body: impl Stream<Item = Result<impl Buf, warp::Error>>,
) -> Response {
    let result = async {
        let bytes = read_body(declared, body, max_body_bytes(relay.max_text_bytes())).await?;
        let fields = json_object(&bytes, "target, sender and text")?;
        let post = PostFields::parse(&fields).map_err(bad)?;
        let m =
            relay.post_reply(post.target, post.sender, post.text.to_owned(), post.reply_to, &caller).await?;
        let reply = warp::reply::json(&json!({"ok": true, "posted": m.id, "message": m}));
        Ok(warp::reply::with_status(reply, StatusCode::CREATED).into_response())
    };
    result.await.unwrap_or_else(ApiError::into_response)
}

/// `DELETE /api/messages/{id}`, with an optional body `{"reason": "...", "by": "NAME"}` (`by`
/// for a caller that is not a principal): redacts the message; 200 with the message as it now
/// stands, its tombstone.
async fn redact(
    id: u64,
    caller: Caller,
    relay: Relay,
    declared: Option<u64>,
    body: impl Stream<Item = Result<impl Buf, warp::Error>>,
) -> Response {
    let result = async {
        let fields = redaction_body(declared, body).await?;
        let (reason, by) = redaction_fields(&fields)?;
        let m = relay.redact(id, by, reason, &caller).await?;
        Ok::<_, ApiError>(warp::reply::json(&json!({"ok": true, "message": m})).into_response())
    };
    result.await.unwrap_or_else(ApiError::into_response)
}

/// `DELETE /api/channels/{name}`, with the same optional body: redacts every message of the
/// channel; 200 with how many.
async fn redact_channel(
    name: String,
    caller: Caller,
    relay: Relay,
    declared: Option<u64>,
    body: impl Stream<Item = Result<impl Buf, warp::Error>>,
) -> Response {
    let result = async {
        let name = decode_segment(&name)?;
        let fields = redaction_body(declared, body).await?;
        let (reason, by) = redaction_fields(&fields)?;
        let redacted = relay.redact_channel(&name, by, reason, &caller).await?;
        let reply = json!({"ok": true, "target": name, "redacted": redacted});
        Ok::<_, ApiError>(warp::reply::json(&reply).into_response())
    };
    result.await.unwrap_or_else(ApiError::into_response)
}

/// A redaction's body: none, or a JSON object.
async fn redaction_body(
    declared: Option<u64>,
    body: impl Stream<Item = Result<impl Buf, warp::Error>>,
) -> Result<Object, ApiError> {
    let bytes = read_body(declared, body, max_body_bytes(0)).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Object::new());
    }
    json_object(&bytes, "reason")
}

/// A redaction's `reason` (empty when absent) and `by`.
fn redaction_fields(fields: &Object) -> Result<(&str, Option<&str>), ApiError> {
    let reason = optional_str(fields, "reason").map_err(bad)?.unwrap_or("");
    Ok((reason, optional_str(fields, "by").map_err(bad)?))
}

/// `GET /api/messages/{id}/delivery[?target=CHANNEL]`: `{"id", "target", "stored", "readers":
/// {NAME: {"woken", "read", "acknowledged"}}}`, each a time or null.
async fn delivery(id: u64, caller: Caller, raw_query: String, relay: Relay) -> Response {
    let result = async {
        let query = Query::parse(&raw_query)?;
        let delivery = relay.delivery(id, query.get("target"), &caller).await?;
        Ok::<_, ApiError>(warp::reply::json(&delivery).into_response())
    };
    result.await.unwrap_or_else(ApiError::into_response)
}

/// `POST /api/wakes` `{"target", "reader", "ids": [...], "via"}`: a bridge or watcher records
/// that the reader's session accepted a wake about those messages. 201 once it is in the log,
/// with the ids `recorded` (those not woken about before; none appends nothing).
async fn note_wake(
    caller: Caller,
    relay: Relay,
    declared: Option<u64>,
    body: impl Stream<Item = Result<impl Buf, warp::Error>>,
) -> Response {
    let result = async {
        let bytes = read_body(declared, body, max_body_bytes(0)).await?;
        let fields = json_object(&bytes, "target, reader, ids and via")?;
        let (target, reader) = (required_str(&fields, "target"), required_str(&fields, "reader"));
        let (target, reader, via) =
            (target.map_err(bad)?, reader.map_err(bad)?, required_str(&fields, "via").map_err(bad)?);
        let ids = match fields.get("ids") {
            Some(Value::Array(ids)) => ids.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>(),
            _ => None,
        };
        let ids = ids.ok_or_else(|| bad("ids: must be an array of message ids"))?;
        let recorded = relay.note_wake(target, reader, ids, via, &caller).await?;
        let reply = warp::reply::json(&json!({"ok": true, "recorded": recorded}));
        Ok(warp::reply::with_status(reply, StatusCode::CREATED).into_response())
    };
    result.await.unwrap_or_else(ApiError::into_response)
}

/// `GET /api/export`: the log as JSON Lines, streamed chunk by chunk, up to the last id when the
/// request came in (a snapshot). Filters as `claude-codex-relay export`.
async fn export(caller: Caller, raw_query: String, relay: Relay) -> Response {
    if let Err(e) = relay.may_administer(&caller).and_then(|()| relay.exportable()) {
        return ApiError::from(e).into_response();
    }
    let filter = match export_filter(&raw_query) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let upto = relay.last_id();
    let chunks = futures_util::stream::unfold(Some(0u64), move |after| {
        let (relay, filter) = (relay.clone(), filter.clone());
        async move {
            match relay.export_chunk(filter, after?, upto).await {
                Ok((bytes, Some(last))) => Some((Ok(bytes), Some(last))),
                Ok((_, None)) => None,
                // The status is sent already: cut the stream so the client sees it incomplete.
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
            }
        }
    });
    let reply = warp::reply::stream(chunks);
    warp::reply::with_header(reply, "content-type", "application/x-ndjson").into_response()
}

fn export_filter(raw_query: &str) -> Result<ExportFilter, ApiError> {
    let query = Query::parse(raw_query)?;
    Ok(ExportFilter {
        target: query
            .get("target")
            .map(|t| Name::parse("target", t).map(|n| n.as_str().to_owned()).map_err(|e| bad(e.to_string())))
            .transpose()?,
        since_id: query.id("since_id")?.unwrap_or(0),
        until_id: query.id("until_id")?,
    })
}

/// `GET /api/search?q=…&target=…&limit=…&order=newest|relevance`: `{"query", "total", "hits":
/// [{"id", "target", "sender", "ts", "snippet", "highlights"}]}`.
async fn search(caller: Caller, raw_query: String, relay: Relay) -> Response {
    let result = async {
        let query = Query::parse(&raw_query)?;
        let q = query.get("q").unwrap_or_default();
        let limit = clamp_limit(query.limit()?, SEARCH_DEFAULT_LIMIT, REST_MAX_LIMIT);
        let order = match query.get("order").map(str::trim) {
            None | Some("" | "newest") => SearchOrder::Newest,
            Some("relevance") => SearchOrder::Relevance,
            Some(_) => return Err(bad(r#"order: must be "newest" (the default) or "relevance""#)),
        };
        let (hits, total) = relay.search(q, query.get("target"), order, limit, &caller).await?;
        Ok::<_, ApiError>(
            warp::reply::json(&json!({"query": q, "total": total, "hits": hits})).into_response(),
        )
    };
    result.await.unwrap_or_else(ApiError::into_response)
}

async fn list_channels(caller: Caller, raw_query: String, relay: Relay) -> Response {
    let result = async {
        let query = Query::parse(&raw_query)?;
        let channels = match query.get("reader") {
            Some(reader) => relay.channels_unread_by(reader, &caller).await?,
            None => relay.channels(&caller),
        };
        Ok::<_, ApiError>(warp::reply::json(&relay.channel_reply(channels)).into_response())
    };
    result.await.unwrap_or_else(ApiError::into_response)
}
