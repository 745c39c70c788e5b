//! The projections of the log, each rebuilt from it and kept by following it from its own
//! checkpoint: `projector` (the follower that applies each durable group to the channel views,
//! publishes it and feeds the others), `channel_views` with the readers' `cursors` and
//! `delivery`, the `principals`, the `redactions` and their sealed `blocks`, the text `archive`, and the `search`
//! index.

pub(crate) mod archive;
pub(crate) mod blocks;
pub(crate) mod channel_views;
pub(crate) mod cursors;
pub(crate) mod delivery;
pub(crate) mod principals;
pub(crate) mod projector;
pub(crate) mod redactions;
pub(crate) mod search;
