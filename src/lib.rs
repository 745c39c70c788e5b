//! claude-codex-relay: a durable local message relay for coding agents.
//!
//! # Layout
//! - [`values`]: parsed values (names, text, tokens, host patterns, seconds), checked where they
//!   enter; a leaf that imports nothing of ours.
//! - [`message`]: a message as posted and as stored.
//! - [`event`]: the log's records and their encoding (version byte + bincode 2).
//! - [`store`]: the sled database: event log, channel views, text archive, group-commit writer,
//!   export/import/check. The only module that touches sled.
//! - [`relay`]: the service every front door calls (post, fetch since, tail, wait, channels).
//! - [`metrics`]: what `/metrics` reports (Prometheus text format).
//! - [`http`]: warp routes: host guard, token, REST, `/mcp` and its tools (rmcp), the web UI,
//!   OpenAPI and docs, the pages and templates, the error mapping, and the server loop with its
//!   connection limits.
//! - [`render`]: agent text (markdown) to safe, highlighted HTML.
//! - [`server`]: bind, serve, stop.
//! - [`config`]: layered settings (flags, environment, config.json, defaults).
//! - [`usage_log`]: the rotating tool-usage log behind slog; [`rotating`]: the size-rotated files
//!   it and the text archive are written to.
//! - [`cli`]: subcommands, `watch` and `post` among them (REST clients of a running relay);
//!   `main.rs` only calls it.
//!
//! See ARCHITECTURE.md for the invariants.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod event;
pub mod http;
pub mod message;
pub mod metrics;
pub mod presence;
pub mod relay;
pub mod render;
pub mod rotating;
pub mod server;
pub mod store;
pub mod usage_log;
pub mod values;
