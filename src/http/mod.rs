//! The HTTP front doors (REST, MCP, docs, web UI): every route behind the host guard, every error
//! through one mapping.

mod admin;
pub mod auth;
mod docs;
pub mod error;
mod fields;
pub mod guard;
mod mcp;
mod pages;
pub mod request;
mod rest;
pub mod serve;
pub mod tls;
mod ui;

use crate::relay::Relay;
use crate::values::Token;
use guard::HostPolicy;
use slog::Logger;
use tokio_util::sync::CancellationToken;
use warp::Filter;

/// Every route of the relay, guarded, with errors turned into JSON replies.
/// `token`: when set (or once a principal exists), every route but `/healthz`, `/readyz`,
/// `/static/*` and the sign-in form needs a credential (see [`auth`]). `secure`: the relay serves HTTPS (its sign-in cookie is then `Secure`).
/// `mcp_stop` ends rmcp's in-flight requests; cancel it once the grace period is over.
pub fn routes(
    relay: Relay,
    policy: HostPolicy,
    token: Option<Token>,
    secure: bool,
    mcp_stop: CancellationToken,
    logger: Logger,
) -> impl Filter<Extract = (impl warp::Reply,), Error = std::convert::Infallible> + Clone {
    let max_text_bytes = relay.max_text_bytes();
    let relay_for_ui = relay.clone();
    let metrics = relay.metrics().clone();
    // One line per refused or failed request, so a forged Host or a malformed call is visible.
    let log_errors = warp::log::custom(move |info| {
        let status = info.status().as_u16();
        if status >= 400 {
            metrics.refused(status);
            slog::info!(logger, "http_error"; "status" => status, "method" => info.method().as_str(),
                "path" => info.path(), "host" => info.host().unwrap_or(""));
        }
    });
    let gate = auth::Gate::new(token, relay.clone());
    guard::filter(policy.clone())
        .and(auth::no_token_in_query(&gate))
        .and(
            auth::login(&gate, secure)
                .or(rest::routes(relay.clone(), &gate))
                .unify()
                .or(admin::routes(relay.clone(), &gate))
                .unify()
                .or(mcp::routes(relay, &policy, &gate, mcp_stop))
                .unify()
                .or(docs::routes(max_text_bytes, &gate))
                .unify()
                .or(ui::routes(relay_for_ui, &gate))
                .unify(),
        )
        .recover(error::recover)
        .unify()
        .with(log_errors)
}

/// Headers from name-value pairs, for the unit tests of the guard and the token.
#[cfg(test)]
fn test_headers(pairs: &[(&'static str, &'static str)]) -> warp::http::HeaderMap {
    let mut headers = warp::http::HeaderMap::new();
    for (name, value) in pairs {
        headers.append(*name, warp::http::HeaderValue::from_static(value));
    }
    headers
}
