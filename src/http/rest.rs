//! The REST API: `/api/messages` (GET, POST), `/api/channels`, `/healthz`. Shapes are the
//! Python relay's, with fields added beside them (`latest_id`, `since_id`, channel details).

use super::error::ApiError;
use crate::message::{Name, Source};
use crate::relay::{clamp_limit, Page, Relay, MAX_WAIT, REST_DEFAULT_LIMIT, REST_MAX_LIMIT};
use crate::store::ExportFilter;
#[cfg(test)]
use bytes::Bytes;
use bytes::{Buf, BufMut};
use futures_util::{Stream, StreamExt};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::time::Duration;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::Filter;

/// How long a request body may take to arrive in full; a client that stalls is answered 408
/// and its connection freed.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Room in a request body beyond the text itself, for the other fields and JSON syntax.
const BODY_OVERHEAD_BYTES: usize = 64 * 1024;
/// JSON can spell one byte of text in up to six (`\u0000`), so the largest valid text can take
/// this many times `max_text_bytes` in a body.
const JSON_ESCAPE_FACTOR: usize = 6;

/// The largest request body accepted for a given text limit: any text within the limit fits,
/// however it is escaped.
pub fn max_body_bytes(max_text_bytes: usize) -> usize {
    max_text_bytes.saturating_mul(JSON_ESCAPE_FACTOR).saturating_add(BODY_OVERHEAD_BYTES)
}

pub fn routes(relay: Relay) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let with_relay = warp::any().map(move || relay.clone());
    let get_messages = warp::path!("api" / "messages")
        .and(warp::get())
        .and(super::raw_query())
        .and(with_relay.clone())
        .then(get_messages);
    // The web UI's post form has its own path so its posts are recorded as from the UI.
    let post_message = (warp::path!("api" / "messages").map(|| Source::Rest))
        .or(warp::path!("ui" / "messages").map(|| Source::Ui))
        .unify()
        .and(warp::post())
        .and(with_relay.clone())
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .then(post_message);
    let channels =
        warp::path!("api" / "channels").and(warp::get()).and(with_relay.clone()).map(list_channels);
    let export =
        warp::path!("api" / "export").and(warp::get()).and(super::raw_query()).and(with_relay).then(export);
    let health = warp::path!("healthz").and(warp::get()).map(|| "ok".into_response());
    get_messages.or(post_message).unify().or(channels).unify().or(export).unify().or(health).unify()
}

fn bad(reason: impl Into<String>) -> ApiError {
    ApiError::BadRequest(reason.into())
}

/// An integer query value. Out-of-range page sizes are clamped later, so only non-numbers fail.
fn parse_limit(raw: &str) -> Result<i128, ApiError> {
    raw.trim().parse().map_err(|_| bad(format!("limit: {raw:?} is not a whole number")))
}

fn parse_id(field: &str, raw: &str) -> Result<u64, ApiError> {
    raw.trim()
        .parse()
        .map_err(|_| bad(format!("{field}: {raw:?} is not a whole number from 0 to {}", u64::MAX)))
}

fn parse_since_id(raw: &str) -> Result<u64, ApiError> {
    parse_id("since_id", raw)
}

/// Seconds to wait for news: a number of 0 or more, capped at [`MAX_WAIT`].
fn parse_wait(raw: &str) -> Result<Duration, ApiError> {
    match raw.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Ok(Duration::from_secs_f64(s.min(MAX_WAIT.as_secs_f64()))),
        _ => Err(bad(format!("wait: {raw:?} is not a number of seconds of 0 or more"))),
    }
}

/// Decodes a URL query (`a=1&b=x+y`). Unlike a lossy decoder, it refuses bytes that are not
/// UTF-8 instead of turning them into U+FFFD, so a garbled channel name is an error, not a
/// different channel. A repeated parameter keeps its last value.
pub(super) fn parse_query(raw: &str) -> Result<HashMap<String, String>, ApiError> {
    let decode = |part: &str| {
        let spaced = part.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| bad(format!("query: {part:?} is not valid percent-encoded UTF-8")))
    };
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(key)?, decode(value)?))
        })
        .collect()
}

/// A page as REST sends it: `{"target":…,"messages":[…],"latest_id":…}`, then `"timed_out"`
/// after a wait. The messages are the bytes the store holds, copied in, not parsed or re-encoded.
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
    if let Some(timed_out) = timed_out {
        body.extend_from_slice(format!(",\"timed_out\":{timed_out}").as_bytes());
    }
    body.push(b'}');
    warp::reply::with_header(body, "content-type", "application/json").into_response()
}

async fn get_messages(raw_query: String, relay: Relay) -> Response {
    let result = async {
        let query = parse_query(&raw_query)?;
        let target = query.get("target").ok_or_else(|| bad("target: is required (?target=CHANNEL)"))?;
        let limit = query.get("limit").map(|v| parse_limit(v)).transpose()?;
        let limit = clamp_limit(limit, REST_DEFAULT_LIMIT, REST_MAX_LIMIT);
        let wait = query.get("wait").map(|v| parse_wait(v)).transpose()?;
        let since_id = query.get("since_id").map(|v| parse_since_id(v)).transpose()?;
        let (page, timed_out) = match (since_id, wait) {
            (Some(since), Some(wait)) => {
                let exclude = query.get("exclude_sender").map(|s| s.trim());
                let (page, timed_out) = relay.wait(target, since, limit, wait, exclude, Source::Rest).await?;
                (page, Some(timed_out))
            }
            (Some(since), None) => (relay.fetch_since(target, since, limit, Source::Rest).await?, None),
            (None, Some(_)) => return Err(bad("wait: needs since_id (wait for messages after which id?)")),
            (None, None) => (relay.tail(target, limit, Source::Rest).await?, None),
        };
        Ok::<_, ApiError>(page_reply(&page, timed_out))
    };
    result.await.unwrap_or_else(ApiError::into_response)
}

/// Reads a request body into memory, refusing it as soon as it passes `limit` bytes (by its
/// Content-Length, or while streaming when it has none).
pub(super) async fn read_body<S, B>(declared: Option<u64>, body: S, limit: usize) -> Result<Vec<u8>, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let too_large = || ApiError::TooLarge(format!("request body is over the limit of {limit} bytes"));
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut out = Vec::with_capacity(declared.unwrap_or(0) as usize);
    let mut body = std::pin::pin!(body);
    let read = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| bad(format!("cannot read the request body: {e}")))?;
            if out.len() + chunk.remaining() > limit {
                return Err(too_large());
            }
            out.put(chunk);
        }
        Ok(())
    };
    tokio::time::timeout(BODY_READ_TIMEOUT, read).await.map_err(|_| {
        ApiError::Timeout(format!("the request body did not arrive within {} s", BODY_READ_TIMEOUT.as_secs()))
    })??;
    Ok(out)
}

fn string_field(body: &Map<String, Value>, field: &str) -> Result<String, ApiError> {
    match body.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(bad(format!("{field}: must be a string"))),
        None => Err(bad(format!("{field}: is required"))),
    }
}

async fn post_message(
    source: Source,
    relay: Relay,
    declared: Option<u64>,
    body: impl Stream<Item = Result<impl Buf, warp::Error>>,
) -> Response {
    let result = async {
        let bytes = read_body(declared, body, max_body_bytes(relay.max_text_bytes())).await?;
        let json: Value =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("body is not valid JSON: {e}")))?;
        let Value::Object(fields) = json else {
            return Err(bad("body must be a JSON object with target, sender and text"));
        };
        let (target, sender) = (string_field(&fields, "target")?, string_field(&fields, "sender")?);
        let text = string_field(&fields, "text")?;
        let m = relay.post(&target, &sender, text, source).await?;
        let reply = warp::reply::json(&json!({"ok": true, "posted": m.id, "message": m}));
        Ok(warp::reply::with_status(reply, StatusCode::CREATED).into_response())
    };
    result.await.unwrap_or_else(ApiError::into_response)
}

/// `GET /api/export`: the log as JSON Lines, streamed chunk by chunk, up to the last id when the
/// request came in (a snapshot). Filters as `claude-codex-relay export`.
async fn export(raw_query: String, relay: Relay) -> Response {
    let filter = match export_filter(&raw_query) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let upto = relay.store().last_id();
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
    let query = parse_query(raw_query)?;
    Ok(ExportFilter {
        target: query
            .get("target")
            .map(|t| Name::parse("target", t).map(|n| n.as_str().to_owned()).map_err(|e| bad(e.to_string())))
            .transpose()?,
        since_id: query.get("since_id").map(|v| parse_id("since_id", v)).transpose()?.unwrap_or(0),
        until_id: query.get("until_id").map(|v| parse_id("until_id", v)).transpose()?,
    })
}

fn list_channels(relay: Relay) -> Response {
    let all = relay.channels(Source::Rest);
    let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
    let details: Vec<Value> =
        all.iter().map(|c| json!({"name": c.name, "count": c.count, "last_id": c.last_id})).collect();
    warp::reply::json(&json!({"channels": names, "details": details})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, warp::Error>> {
        futures_util::stream::iter(parts.iter().map(|p| Ok(Bytes::from_static(p))).collect::<Vec<_>>())
    }

    #[tokio::test]
    async fn body_within_limit_is_read_whole() {
        assert_eq!(read_body(None, chunks(&[b"ab", b"cd"]), 4).await.unwrap(), b"abcd");
    }

    #[tokio::test]
    async fn body_over_limit_without_length_is_refused_while_streaming() {
        let err = read_body(None, chunks(&[b"ab", b"cde"]), 4).await.unwrap_err();
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn declared_length_over_limit_is_refused_before_reading() {
        let err = read_body(Some(5), chunks(&[]), 4).await.unwrap_err();
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn since_id_must_be_a_non_negative_whole_number() {
        assert_eq!(parse_since_id(" 7 ").unwrap(), 7);
        for raw in ["-1", "abc", "1.5", "18446744073709551616", ""] {
            assert!(parse_since_id(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn limit_must_be_a_whole_number() {
        assert_eq!(parse_limit("-3").unwrap(), -3);
        assert_eq!(parse_limit("18446744073709551616").unwrap(), 1 << 64);
        assert!(parse_limit("abc").is_err());
        assert!(parse_limit("").is_err());
    }

    #[test]
    fn query_is_decoded() {
        let q = parse_query("target=proj%2Dx+2&limit=5&&flag&limit=6").unwrap();
        assert_eq!(q["target"], "proj-x 2");
        assert_eq!(q["limit"], "6");
        assert_eq!(q["flag"], "");
        assert!(parse_query("").unwrap().is_empty());
    }

    #[test]
    fn query_with_invalid_utf8_is_refused() {
        assert!(parse_query("target=%ff").is_err());
        assert!(parse_query("%c3=x").is_err());
    }

    #[test]
    fn body_limit_fits_the_largest_escaped_text() {
        assert!(max_body_bytes(100) >= 600);
        assert_eq!(max_body_bytes(usize::MAX), usize::MAX);
    }
}
