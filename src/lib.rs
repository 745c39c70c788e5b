//! claude-codex-relay: a durable local message relay for coding agents.
//!
//! # Layout
//! - [`values`]: parsed values (names, text, tokens, host patterns, seconds), checked where they
//!   enter; a leaf that imports nothing of ours.
//! - [`message`]: a message as posted and as stored.
//! - [`identity`]: principals (roles, channel grants) and their credentials; a leaf beside
//!   `values`.
//! - [`event`]: the log's records and their encoding (version byte + bincode 2).
//! - [`store`]: the event log (sled, or a NATS JetStream stream) and its backends; the
//!   projections (channel views and readers' cursors, text archive, search index); the
//!   commands on a stopped store (export, import, check, rebuild). The only module that
//!   touches sled or NATS.
//! - [`relay`]: the service every front door calls, split by concern: posting, reading and
//!   cursors, search, the channel list, presence; each call carries the [`relay::Caller`] its
//!   front door made of the request.
//! - [`metrics`]: what `/metrics` reports (Prometheus text format).
//! - [`http`]: warp routes: host guard, token (where a request becomes a caller), REST, `/mcp`
//!   and its tools (rmcp), the web UI (with `render`, agent text to safe, highlighted HTML),
//!   OpenAPI and docs, the pages and templates, the error mapping, and the server loop with its
//!   connection limits.
//! - [`server`]: bind, serve, stop.
//! - [`config`]: layered settings (flags, environment, config.json, defaults).
//! - [`usage_log`]: the rotating tool-usage log behind slog; [`rotating`]: the size-rotated files
//!   it and the text archive are written to; [`lock`]: the lock files that keep a second relay
//!   off a data directory and those files.
//! - [`cli`]: subcommands, `watch` and `post` among them (REST clients of a running relay);
//!   `main.rs` only calls it.
//!
//! See ARCHITECTURE.md for the invariants.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod event;
pub mod http;
pub mod identity;
pub mod lock;
pub mod message;
pub mod metrics;
pub mod relay;
pub mod rotating;
pub mod server;
pub mod store;
pub mod usage_log;
pub mod values;
