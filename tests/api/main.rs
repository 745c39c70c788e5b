//! Socket and process tests, compiled as one binary. Each test gets its own relay on a free
//! loopback port and its own temp data dir.

mod auth;
mod bridge;
mod codex_wake;
mod cursors;
mod damage;
mod delivery;
mod diskfull;
#[cfg(feature = "faults")]
mod faults;
#[path = "../support/files.rs"]
mod files;
mod fuzz;
mod guard;
mod helpers;
mod limits;
mod malformed;
mod mcp;
mod metrics;
mod nats;
mod openapi;
mod principals;
mod process;
mod redact;
mod rest;
mod retention;
mod search;
mod threads;
mod tls;
mod ui;
mod watch;
