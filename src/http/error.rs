//! The one place where errors become what a client sees: an HTTP status and the error's public
//! text, for REST (JSON `{"ok": false, "error": "..."}`), the web UI's pages and event streams,
//! MCP tool errors, JSON-RPC errors and the connection limit's 503. 4xx means "refused,
//! nothing stored"; 503 means "not acknowledged, safe to retry". What to do about a store
//! error is said here, for a client of the HTTP front doors.

use crate::relay::RelayError;
use crate::store::StoreError;
use std::convert::Infallible;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::Rejection;

#[derive(Debug, Clone)]
pub enum ApiError {
    BadRequest(String),
    TooLarge(String),
    /// The body did not arrive in time.
    Timeout(String),
    Forbidden(String),
    /// No token, or a wrong one. `sign_in`: the web UI path to return to after signing in
    /// (the reply is then the sign-in page instead of JSON).
    Unauthorized {
        reason: String,
        sign_in: Option<String>,
    },
    Misdirected(String),
    /// A JSON-RPC message `/mcp` refuses before rmcp sees it, with its JSON-RPC error code.
    JsonRpc {
        code: i64,
        message: String,
    },
    NotFound,
    /// What the request names does not exist: 404, saying what.
    Missing(String),
    /// It cannot be done to what the request names as that stands now: 409, saying why.
    Conflict(String),
    /// A feature the relay's settings turned off: 404, with what to change.
    Off(String),
    MethodNotAllowed,
    Unavailable(String),
    Internal,
}

impl warp::reject::Reject for ApiError {}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::JsonRpc { .. } => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Misdirected(_) => StatusCode::MISDIRECTED_REQUEST,
            ApiError::NotFound | ApiError::Missing(_) | ApiError::Off(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The text a client may see: never internals.
    pub fn message(&self) -> String {
        match self {
            ApiError::JsonRpc { message: m, .. }
            | ApiError::BadRequest(m)
            | ApiError::TooLarge(m)
            | ApiError::Timeout(m)
            | ApiError::Forbidden(m)
            | ApiError::Misdirected(m)
            | ApiError::Unavailable(m)
            | ApiError::Off(m)
            | ApiError::Missing(m)
            | ApiError::Conflict(m)
            | ApiError::Unauthorized { reason: m, .. } => m.clone(),
            ApiError::NotFound => "no such route; see /docs for the API".into(),
            ApiError::MethodNotAllowed => "method not allowed on this route; see /docs for the API".into(),
            ApiError::Internal => "internal error; see the relay's log".into(),
        }
    }

    /// The JSON body of the reply: the JSON-RPC error shape for `/mcp`, else ours.
    pub fn body(&self) -> serde_json::Value {
        match self {
            ApiError::JsonRpc { code, message } => {
                serde_json::json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}})
            }
            _ => serde_json::json!({"ok": false, "error": self.message()}),
        }
    }

    pub fn into_response(self) -> Response {
        if let ApiError::Unauthorized { sign_in: Some(next), .. } = &self {
            return super::pages::sign_in_page(self.status(), next, None);
        }
        let mut response =
            warp::reply::with_status(warp::reply::json(&self.body()), self.status()).into_response();
        if let ApiError::Unauthorized { .. } = self {
            response.headers_mut().insert(
                warp::http::header::WWW_AUTHENTICATE,
                warp::http::HeaderValue::from_static("Bearer realm=\"claude-codex-relay\""),
            );
        }
        response
    }
}

impl From<RelayError> for ApiError {
    fn from(e: RelayError) -> Self {
        let store = match e {
            RelayError::Invalid(invalid) => return ApiError::BadRequest(invalid.to_string()),
            RelayError::Busy(m) => return ApiError::Unavailable(m),
            RelayError::Off(m) => return ApiError::Off(m),
            RelayError::Missing(m) => return ApiError::Missing(m),
            RelayError::Conflict(m) => return ApiError::Conflict(m),
            RelayError::Denied(d) if d.unauthenticated() => {
                return ApiError::Unauthorized { reason: d.message, sign_in: None }
            }
            RelayError::Denied(d) => return ApiError::Forbidden(d.message),
            RelayError::Store(e) => e,
        };
        ApiError::Unavailable(match &store {
            StoreError::Closed => format!("{store}; retry when it is back"),
            StoreError::Failed(_) => format!("not stored: {store}; restart the relay"),
            StoreError::DiskFull(_) => format!("not stored: {store}; free space, then restart the relay"),
            StoreError::Corrupt { .. } => {
                format!(
                    "not stored: {store}; stop the relay and run `claude-codex-relay check`: it lists the \
                     damage (`rebuild` repairs the channel views)"
                )
            }
            StoreError::Unacknowledged(_) => format!(
                "not acknowledged: {store}; the post may be stored, or be stored once the servers \
                 recover: fetch the channel before posting it again"
            ),
            _ => format!("not stored: {store}"),
        })
    }
}

/// Turns every rejection (ours and warp's own) into the JSON error reply.
pub async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    use warp::reject::{InvalidHeader, InvalidQuery, LengthRequired, MethodNotAllowed, PayloadTooLarge};
    let error = if let Some(e) = rejection.find::<ApiError>() {
        e.clone()
    } else if rejection.is_not_found() {
        ApiError::NotFound
    } else if rejection.find::<MethodNotAllowed>().is_some() {
        ApiError::MethodNotAllowed
    } else if rejection.find::<InvalidQuery>().is_some() {
        ApiError::BadRequest("query string is not valid URL-encoded UTF-8".into())
    } else if let Some(e) = rejection.find::<InvalidHeader>() {
        ApiError::BadRequest(e.to_string())
    } else if rejection.find::<PayloadTooLarge>().is_some() {
        ApiError::TooLarge("request body is too large".into())
    } else if rejection.find::<LengthRequired>().is_some() {
        ApiError::BadRequest("a Content-Length header is required".into())
    } else {
        ApiError::Internal
    };
    Ok(error.into_response())
}
