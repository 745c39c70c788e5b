//! The HTTP front doors (REST, MCP, docs): every route behind the host guard, every error
//! through one mapping.

mod docs;
pub mod error;
pub mod guard;
mod mcp;
pub mod rest;

use crate::relay::Relay;
use guard::HostPolicy;
use tokio_util::sync::CancellationToken;
use warp::Filter;

pub use docs::spec as openapi_spec;

/// Every route of the relay, guarded, with errors turned into JSON replies.
/// `mcp_stop` ends rmcp's in-flight requests; cancel it once the grace period is over.
pub fn routes(
    relay: Relay,
    policy: HostPolicy,
    mcp_stop: CancellationToken,
) -> impl Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible> + Clone {
    let max_text_bytes = relay.max_text_bytes();
    guard::filter(policy)
        .and(
            rest::routes(relay.clone())
                .or(mcp::routes(relay, mcp_stop))
                .unify()
                .or(docs::routes(max_text_bytes))
                .unify(),
        )
        .recover(error::recover)
        .unify()
}
