//! The HTTP front door: every route behind the host guard, every error through one mapping.

mod docs;
pub mod error;
pub mod guard;
pub mod rest;

use crate::relay::Relay;
use guard::HostPolicy;
use warp::Filter;

pub use docs::spec as openapi_spec;

/// Every route of the relay, guarded, with errors turned into JSON replies.
pub fn routes(
    relay: Relay,
    policy: HostPolicy,
) -> impl Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible> + Clone {
    let max_text_bytes = relay.max_text_bytes();
    guard::filter(policy)
        .and(rest::routes(relay).or(docs::routes(max_text_bytes)).unify())
        .recover(error::recover)
        .unify()
}
