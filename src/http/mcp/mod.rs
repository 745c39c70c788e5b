//! `/mcp` (and `/mcp/`, without a redirect: clients break on redirects): rmcp's Streamable
//! HTTP service inside a warp filter, on the same port and behind the same host guard as
//! everything else.
//!
//! The service runs stateless (no session ids), so a client that initialized before a restart
//! keeps working after it without a new `initialize`. rmcp's own Host and Origin lists are fed
//! from the same [`HostPolicy`] as the host guard in front of every route: the guard answers
//! first (so a forged Host or a foreign Origin gets the same answer on `/mcp` as anywhere else),
//! and rmcp's check is a second line applying the same lists.

mod completion;
mod prompts;
mod resources;
mod tools;

use crate::http::auth::Gate;
use crate::http::error::ApiError;
use crate::http::guard::HostPolicy;
use crate::http::request::{max_body_bytes, raw_query, read_body};
use crate::message::Source;
use crate::relay::{Caller, Relay};
use bytes::{Buf, Bytes};
use futures_util::Stream;
use http_body_util::Full;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{json, Value};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
pub use tools::catalog;
use tools::RelayMcp;
use warp::http::{HeaderMap, Method, Request};
use warp::path::FullPath;
use warp::reply::{Reply, Response};
use warp::Filter;

type Service = StreamableHttpService<RelayMcp, LocalSessionManager>;

pub fn routes(
    relay: Relay,
    policy: &HostPolicy,
    gate: &Gate,
    stop: CancellationToken,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let max_body = max_body_bytes(relay.max_text_bytes());
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_cancellation_token(stop)
        .with_max_request_body_bytes(max_body)
        .with_allowed_hosts(policy.host_list())
        .with_allowed_origins(policy.origin_list());
    let service: Arc<Service> = Arc::new(StreamableHttpService::new(
        move || Ok(RelayMcp::new(relay.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    ));
    let at_mcp = warp::path::full()
        .and_then(|path: FullPath| async move {
            match path.as_str() {
                "/mcp" | "/mcp/" => Ok(()),
                _ => Err(warp::reject::not_found()),
            }
        })
        .untuple_one();
    at_mcp
        .and(gate.api(Source::Mcp))
        .and(warp::method())
        .and(warp::path::full())
        .and(raw_query())
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .then(move |caller, method, path: FullPath, query: String, headers, body| {
            let service = service.clone();
            let uri = if query.is_empty() {
                path.as_str().to_owned()
            } else {
                format!("{}?{query}", path.as_str())
            };
            handle(service, caller, method, uri, headers, body, max_body)
        })
}

/// Refuses, with the JSON-RPC error the spec names, what rmcp would answer with a bare 415:
/// a body that is not JSON (-32700); a batch, an `id` that is null or not a string or whole
/// number, a `jsonrpc` other than "2.0", a non-string `method`, `params` that are not an object
/// (-32600); a `tools/call` without a tool name or with `arguments` that are not an object
/// (-32602).
fn check_jsonrpc(body: &[u8]) -> Result<(), (i64, String)> {
    let invalid = |reason: &str| Err((-32600, format!("invalid request: {reason}")));
    let message = match serde_json::from_slice::<Value>(body) {
        Err(e) => return Err((-32700, format!("parse error: the body is not valid JSON: {e}"))),
        Ok(Value::Array(_)) => {
            return invalid("JSON-RPC batches are not supported; send one message per request")
        }
        Ok(Value::Object(m)) => m,
        Ok(_) => return invalid("a JSON-RPC message is a JSON object"),
    };
    if message.get("jsonrpc") != Some(&json!("2.0")) {
        return invalid(r#"jsonrpc must be "2.0""#);
    }
    match message.get("id") {
        Some(Value::Null) => return invalid("id must be a string or a number, not null"),
        Some(Value::String(_)) | None => {}
        // rmcp reads numeric ids as i64.
        Some(Value::Number(n)) if n.is_i64() => {}
        Some(_) => return invalid("id must be a string or a whole number from -2^63 to 2^63-1"),
    }
    let is_response = message.contains_key("result") || message.contains_key("error");
    let method = match message.get("method") {
        Some(Value::String(m)) => m.as_str(),
        None if is_response => return Ok(()),
        _ => return invalid("method must be a string"),
    };
    let params = match message.get("params") {
        None => None,
        Some(Value::Object(p)) => Some(p),
        Some(_) => return invalid("params must be an object"),
    };
    if method == "tools/call" {
        let bad_params = |reason: &str| Err((-32602, format!("invalid params: {reason}")));
        let Some(params) = params else { return bad_params("tools/call needs params with the tool's name") };
        if !params.get("name").is_some_and(Value::is_string) {
            return bad_params("params.name must be the tool's name, a string");
        }
        if params.get("arguments").is_some_and(|a| !a.is_object() && !a.is_null()) {
            return bad_params("params.arguments must be an object");
        }
    }
    Ok(())
}

/// Hands one request to rmcp and streams its reply back through warp. The body is read here,
/// with the same limit as REST, so an oversized or malformed one gets a clear answer first.
async fn handle<S, B>(
    service: Arc<Service>,
    caller: Caller,
    method: Method,
    uri: String,
    headers: HeaderMap,
    body: S,
    max_body: usize,
) -> Response
where
    S: Stream<Item = Result<B, warp::Error>> + Send + 'static,
    B: Buf + Send + 'static,
{
    let declared = headers.get("content-length").and_then(|v| v.to_str().ok()?.parse().ok());
    let body = match read_body(declared, body, max_body).await {
        Ok(bytes) => bytes,
        Err(e) => return e.into_response(),
    };
    if method == Method::POST {
        if let Err((code, message)) = check_jsonrpc(&body) {
            // The message never reached the server, so its id is unknown: `null`.
            return ApiError::JsonRpc { code, message }.into_response();
        }
    }
    let mut request = match Request::builder().method(method).uri(uri).body(Full::new(Bytes::from(body))) {
        Ok(r) => r,
        Err(_) => return ApiError::BadRequest("malformed request line".into()).into_response(),
    };
    *request.headers_mut() = headers;
    // The tools read who is asking from here (rmcp hands the request's parts to them).
    request.extensions_mut().insert(caller);
    let (parts, body) = service.handle(request).await.into_parts();
    let mut reply = warp::reply::stream(http_body_util::BodyExt::into_data_stream(body)).into_response();
    *reply.status_mut() = parts.status;
    *reply.headers_mut() = parts.headers;
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_messages_are_refused_before_rmcp() {
        let bad = [
            "{",
            "",
            "[]",
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
            "3",
            r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
            r#"{"id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":9223372036854775808,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":"x"}"#,
        ];
        for body in bad {
            let (code, _) = check_jsonrpc(body.as_bytes()).expect_err(body);
            assert!(code == -32700 || code == -32600, "{body:?}: {code}");
        }
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":3}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":[1]}}"#,
        ] {
            assert_eq!(check_jsonrpc(body.as_bytes()).expect_err(body).0, -32602, "{body}");
        }
        assert!(check_jsonrpc(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#).is_ok());
        assert!(check_jsonrpc(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).is_ok());
        assert!(check_jsonrpc(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).is_ok());
    }
}
