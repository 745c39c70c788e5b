//! What every HTTP front door reads from a request in the same way: the query string (or a
//! form), the body under a size and time limit, and the ids, page sizes and seconds in them.

use super::error::ApiError;
use super::fields::Object;
use crate::values::seconds;
use bytes::{Buf, BufMut};
use futures_util::{Stream, StreamExt};
use std::collections::HashMap;
use std::time::Duration;
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

pub(super) fn bad(reason: impl Into<String>) -> ApiError {
    ApiError::BadRequest(reason.into())
}

/// GET, or HEAD (monitors and load balancers send it): a HEAD reply has GET's status and
/// headers, and hyper sends no body with it.
pub(super) fn get_or_head() -> impl Filter<Extract = (), Error = warp::Rejection> + Copy {
    warp::get().or(warp::head()).unify()
}

/// UTF-8's byte order mark, which Windows tools write at the start of a file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The raw query string, empty when the request has none (warp's own filter refuses that case).
pub(super) fn raw_query() -> impl Filter<Extract = (String,), Error = std::convert::Infallible> + Clone {
    warp::query::raw().or(warp::any().map(String::new)).unify()
}

/// A decoded URL query or form body (`a=1&b=x+y`). Unlike a lossy decoder, it refuses bytes
/// that are not UTF-8 instead of turning them into U+FFFD, so a garbled channel name is an
/// error, not a different channel. A repeated parameter keeps its last value.
#[derive(Debug, Default)]
pub(super) struct Query(HashMap<String, String>);

impl Query {
    pub(super) fn parse(raw: &str) -> Result<Query, ApiError> {
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
            .collect::<Result<_, _>>()
            .map(Query)
    }

    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A message id: a whole number of 0 or more.
    pub(super) fn id(&self, key: &str) -> Result<Option<u64>, ApiError> {
        self.get(key)
            .map(|raw| {
                raw.trim().parse().map_err(|_| {
                    bad(format!("{key}: {raw:?} is not a message id (a whole number from 0 to {})", u64::MAX))
                })
            })
            .transpose()
    }

    /// A page size. Out-of-range sizes are clamped by the service, so only non-numbers fail.
    pub(super) fn limit(&self) -> Result<Option<i128>, ApiError> {
        self.get("limit")
            .map(|raw| raw.trim().parse().map_err(|_| bad(format!("limit: {raw:?} is not a whole number"))))
            .transpose()
    }

    /// Seconds to wait: a number of 0 or more (the service caps it).
    pub(super) fn seconds(&self, key: &'static str) -> Result<Option<Duration>, ApiError> {
        self.get(key)
            .map(|raw| {
                let n = raw.trim().parse().unwrap_or(f64::NAN);
                seconds(key, n).map_err(|e| bad(e.to_string()))
            })
            .transpose()
    }
}

/// A request body that must be one JSON object; `holding` names its fields for the error
/// (empty: no names).
pub(super) fn json_object(bytes: &[u8], holding: &str) -> Result<Object, ApiError> {
    match serde_json::from_slice(bytes) {
        Ok(serde_json::Value::Object(fields)) => Ok(fields),
        Ok(_) if holding.is_empty() => Err(bad("body must be a JSON object")),
        Ok(_) => Err(bad(format!("body must be a JSON object with {holding}"))),
        Err(e) => Err(bad(format!("body is not valid JSON: {e}"))),
    }
}

/// Reads a request body into memory, refusing it as soon as it passes `limit` bytes (by its
/// Content-Length, or while streaming when it has none). A byte order mark at its start is
/// dropped.
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
    if out.starts_with(BOM) {
        out.drain(..BOM.len());
    }
    Ok(out)
}

/// Characters left as they are in a channel's path segment.
const SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// A channel name as one path segment of a URL (the UI's pages, MCP resource URIs).
pub fn path_segment(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, SEGMENT).to_string()
}

/// A path segment as the channel name it spells.
pub fn decode_segment(segment: &str) -> Result<String, ApiError> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ApiError::BadRequest("channel: the path is not valid percent-encoded UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use warp::http::StatusCode;

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, warp::Error>> {
        futures_util::stream::iter(parts.iter().map(|p| Ok(Bytes::from_static(p))).collect::<Vec<_>>())
    }

    fn query(raw: &str) -> Query {
        Query::parse(raw).unwrap()
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
    async fn a_byte_order_mark_is_dropped() {
        assert_eq!(read_body(None, chunks(&[b"\xEF\xBB", b"\xBF{}"]), 9).await.unwrap(), b"{}");
        assert_eq!(read_body(None, chunks(&[b"{}\xEF\xBB\xBF"]), 9).await.unwrap(), b"{}\xEF\xBB\xBF");
    }

    #[tokio::test]
    async fn declared_length_over_limit_is_refused_before_reading() {
        let err = read_body(Some(5), chunks(&[]), 4).await.unwrap_err();
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn ids_must_be_non_negative_whole_numbers() {
        assert_eq!(query("since_id=+7+").id("since_id").unwrap(), Some(7));
        assert_eq!(query("before=%37").id("before").unwrap(), Some(7), "percent-decoded");
        assert_eq!(query("").id("since_id").unwrap(), None);
        for raw in ["-1", "abc", "1.5", "18446744073709551616", ""] {
            assert!(query(&format!("since_id={raw}")).id("since_id").is_err(), "{raw}");
        }
    }

    #[test]
    fn limit_must_be_a_whole_number() {
        assert_eq!(query("limit=-3").limit().unwrap(), Some(-3));
        assert_eq!(query("limit=18446744073709551616").limit().unwrap(), Some(1 << 64));
        assert!(query("limit=abc").limit().is_err());
        assert!(query("limit=").limit().is_err());
    }

    #[test]
    fn seconds_are_a_number_of_zero_or_more() {
        assert_eq!(query("wait=1.5").seconds("wait").unwrap(), Some(Duration::from_millis(1500)));
        assert_eq!(query("wait=1e300").seconds("wait").unwrap(), Some(Duration::MAX));
        for raw in ["-1", "x", "NaN", "inf", ""] {
            assert!(query(&format!("wait={raw}")).seconds("wait").is_err(), "{raw}");
        }
    }

    #[test]
    fn query_is_decoded() {
        let q = query("target=proj%2Dx+2&limit=5&&flag&limit=6");
        assert_eq!(q.get("target"), Some("proj-x 2"));
        assert_eq!(q.get("limit"), Some("6"));
        assert_eq!(q.get("flag"), Some(""));
        assert!(query("").0.is_empty());
    }

    #[test]
    fn query_with_invalid_utf8_is_refused() {
        assert!(Query::parse("target=%ff").is_err());
        assert!(Query::parse("%c3=x").is_err());
    }

    #[test]
    fn body_limit_fits_the_largest_escaped_text() {
        assert!(max_body_bytes(100) >= 600);
        assert_eq!(max_body_bytes(usize::MAX), usize::MAX);
    }
}
