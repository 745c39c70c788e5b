//! The relay service: every front door (REST, MCP, the UI, the CLI through them) calls one
//! [`Relay`], so they validate, store and log the same way. Each call carries the [`Caller`] its
//! front door made of the request, once.
//!
//! The service is split by concern, each an `impl Relay` of its own:
//! - `post`: validating and storing a message (a reply's parent checked);
//! - `read`: pages since an id, the newest, before an id, threads, waits and follows (woken by
//!   the store's commit watch), and the readers' cursors (where a read starts, acknowledgements);
//! - `search`: full-text search over the index the store keeps;
//! - `channels`: the channel list, unread counts, and the list as it changes;
//! - `redact`: taking a message back (a tombstone from then on);
//! - `delivery`: where each message stands for each named reader (woken, read, acknowledged);
//! - `retention`: expiring what passed each channel's history limits;
//! - `presence`: who is listening where (live state only);
//! - `caller`: who is asking, and what it may do;
//! - `principals`: who a credential names, and their management (admins);
//! - `service`: the handle itself, its settings and errors, and what is left (readiness,
//!   metrics, export, stop, close); `limits`: the limits every front door shares.

mod caller;
mod channels;
mod delivery;
mod limits;
mod post;
mod presence;
mod principals;
mod read;
mod redact;
mod retention;
mod search;
mod service;

pub use caller::{Caller, Denied, Who};
pub use channels::{ChannelList, CHANNELS_EVERY, UNREAD_CAP};
pub use delivery::Delivery;
pub use limits::{
    clamp_limit, Limits, Retention, DEFAULT_TARGET, DEFAULT_WAIT, MAX_WAIT, MAX_WAITERS, MCP_DEFAULT_LIMIT,
    MCP_MAX_LIMIT, REST_DEFAULT_LIMIT, REST_MAX_LIMIT, SEARCH_DEFAULT_LIMIT,
};
pub use presence::{Listening, LINGER, READS_KEPT};
pub use principals::{CredentialInfo, NewPrincipal, PrincipalInfo};
pub use read::{Page, Start, Waiter};
pub use service::{Relay, RelayError, Settings};
