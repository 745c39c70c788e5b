//! The one place where errors become HTTP statuses. Every error reply is JSON:
//! `{"ok": false, "error": "..."}`. 4xx means "refused, nothing stored"; 503 means "not
//! acknowledged, safe to retry".

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
    NotFound,
    MethodNotAllowed,
    Unavailable(String),
    Internal,
}

impl warp::reject::Reject for ApiError {}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Misdirected(_) => StatusCode::MISDIRECTED_REQUEST,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::BadRequest(m)
            | ApiError::TooLarge(m)
            | ApiError::Timeout(m)
            | ApiError::Forbidden(m)
            | ApiError::Misdirected(m)
            | ApiError::Unavailable(m)
            | ApiError::Unauthorized { reason: m, .. } => m.clone(),
            ApiError::NotFound => "no such route; see /docs for the API".into(),
            ApiError::MethodNotAllowed => "method not allowed on this route; see /docs for the API".into(),
            ApiError::Internal => "internal error; see the relay's log".into(),
        }
    }

    pub fn into_response(self) -> Response {
        if let ApiError::Unauthorized { sign_in: Some(next), .. } = &self {
            return super::ui::sign_in_page(self.status(), next, None);
        }
        let body = serde_json::json!({"ok": false, "error": self.message()});
        let mut response = warp::reply::with_status(warp::reply::json(&body), self.status()).into_response();
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
        match e {
            RelayError::Invalid(invalid) => ApiError::BadRequest(invalid.to_string()),
            RelayError::Busy(m) => ApiError::Unavailable(m),
            RelayError::Store(StoreError::Closed) => ApiError::Unavailable(StoreError::Closed.to_string()),
            RelayError::Store(e) => ApiError::Unavailable(format!("not stored: {e}")),
        }
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
