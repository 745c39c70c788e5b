//! The tool-usage log `log/claude_codex.log`: one line per record, rotated by size, written off
//! the request path through slog-async. A line is the Python relay's shape: local time, level,
//! the operation, then its fields as a JSON object:
//! `2026-11-25 14:03:07,512 INFO post_message {"id":42,"target":"proj-x",...}`.
//! The relay's own warnings and errors are also printed to stderr. rmcp, warp and hyper report
//! through `tracing`; [`TracingBridge`] forwards their warnings and errors into the file only.

use crate::rotating::Rotating;
use serde_json::{Map, Value};
use slog::{Drain, Key, Level, Logger, OwnedKVList, Record, KV};
use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tracing::field::{Field, Visit};
use tracing::span;

/// Records that may wait for the writer thread before new ones are dropped (and the drop is
/// reported in the log).
const QUEUE_LEN: usize = 4096;

pub use slog_async::AsyncGuard;

struct LineDrain {
    file: Mutex<Rotating>,
}

struct Fields(Map<String, Value>);

/// Numbers and booleans keep their JSON type; everything else is written as a string.
macro_rules! emit_json {
    ($($method:ident: $t:ty),*) => {
        $(fn $method(&mut self, key: Key, val: $t) -> slog::Result {
            self.0.insert(key.to_string(), val.into());
            Ok(())
        })*
    };
}

impl slog::Serializer for Fields {
    fn emit_arguments(&mut self, key: Key, val: &fmt::Arguments) -> slog::Result {
        self.0.insert(key.to_string(), Value::String(val.to_string()));
        Ok(())
    }
    emit_json!(emit_u8: u8, emit_u16: u16, emit_u32: u32, emit_u64: u64, emit_usize: usize,
        emit_i8: i8, emit_i16: i16, emit_i32: i32, emit_i64: i64, emit_isize: isize, emit_bool: bool);
}

/// Formats one record as a log line.
fn line(record: &Record, values: &OwnedKVList) -> String {
    let mut fields = Fields(Map::new());
    // Serializing into a map cannot fail.
    let _ = values.serialize(record, &mut fields);
    let _ = record.kv().serialize(record, &mut fields);
    let time = chrono::Local::now().format("%Y-%m-%d %H:%M:%S,%3f");
    format!("{time} {} {} {}\n", record.level().as_str(), record.msg(), Value::Object(fields.0))
}

impl Drain for LineDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), slog::Never> {
        let line = line(record, values);
        if record.level().is_at_least(Level::Warning) {
            eprint!("{line}");
        }
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = file.write_all(line.as_bytes()) {
            eprintln!("warning: cannot write the tool-usage log: {e}");
        }
        Ok(())
    }
}

/// Opens (creating its folder) the rotating log at `path`: rotated once it passes `max_bytes`,
/// keeping `backups` old files (`.1` newest).
pub fn open(path: &Path, max_bytes: u64, backups: usize) -> std::io::Result<(Logger, AsyncGuard)> {
    let file = crate::rotating::open(path, max_bytes, backups)?;
    let (drain, guard) = slog_async::Async::new(LineDrain { file: Mutex::new(file) })
        .chan_size(QUEUE_LEN)
        .thread_name("usage-log".into())
        .build_with_guard();
    Ok((Logger::root(drain.fuse(), slog::o!()), guard))
}

/// A logger that drops every record: for tests, benches and tools that log nothing.
pub fn discard() -> Logger {
    Logger::root(slog::Discard, slog::o!())
}

/// A `tracing` subscriber that sends the warnings and errors of the libraries the relay uses
/// (rmcp, warp, hyper) to the slog logger, one INFO line each with the library's level and the
/// event's fields.
pub struct TracingBridge {
    logger: Logger,
    next_span: AtomicU64,
}

impl TracingBridge {
    pub fn new(logger: Logger) -> Self {
        TracingBridge { logger, next_span: AtomicU64::new(1) }
    }
}

struct EventFields(Map<String, Value>);

impl Visit for EventFields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::String(value.to_owned()));
    }
}

impl tracing::Subscriber for TracingBridge {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::WARN
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::WARN)
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = EventFields(Map::new());
        event.record(&mut fields);
        let message = match fields.0.remove("message") {
            Some(Value::String(m)) => m,
            _ => String::new(),
        };
        let target = event.metadata().target();
        let level = event.metadata().level().as_str();
        let fields = Value::Object(fields.0).to_string();
        // Into the file only, keeping the library's level as a field: most of these are about
        // a client (a dropped connection, a malformed request), not the relay, and do not
        // belong on the operator's terminal.
        slog::info!(self.logger, "{}", message; "target" => target, "level" => level, "fields" => fields);
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use slog::info;

    #[test]
    fn lines_have_time_level_operation_and_json_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log/usage.log");
        let (logger, guard) = open(&path, 1 << 20, 2).unwrap();
        info!(logger, "post_message"; "target" => "proj-x", "id" => 7u64);
        drop(logger);
        drop(guard);
        let text = std::fs::read_to_string(&path).unwrap();
        let (head, json) = text.trim_end().split_once(" INFO post_message ").unwrap();
        assert_eq!(head.len(), "2026-11-25 14:03:07,512".len(), "{head}");
        let fields: Value = serde_json::from_str(json).unwrap();
        assert_eq!(fields, serde_json::json!({"target": "proj-x", "id": 7}));
    }

    #[test]
    fn tracing_warnings_reach_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("usage.log");
        let (logger, guard) = open(&path, 1 << 20, 2).unwrap();
        tracing::subscriber::with_default(TracingBridge::new(logger.clone()), || {
            tracing::info!("too chatty to keep");
            tracing::warn!(host = "evil.example", "rejected request");
        });
        drop(logger);
        drop(guard);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("too chatty"), "{text}");
        assert!(text.contains(" INFO rejected request {"), "{text}");
        assert!(text.contains(r#""level":"WARN""#), "{text}");
        assert!(text.contains("evil.example"), "{text}");
    }

    #[test]
    fn the_log_rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("usage.log");
        let (logger, guard) = open(&path, 200, 2).unwrap();
        for i in 0..50u64 {
            info!(logger, "fetch_messages"; "n" => i);
        }
        drop(logger);
        drop(guard);
        assert!(dir.path().join("usage.log.1").exists());
        assert!(dir.path().join("usage.log.2").exists());
        assert!(!dir.path().join("usage.log.3").exists());
    }
}
