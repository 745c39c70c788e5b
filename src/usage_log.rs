//! The tool-usage log `log/claude_codex.log`: one line per record, rotated by size, written off
//! the request path through slog-async. A line is the Python relay's shape: local time, level,
//! the operation, then its fields as a JSON object:
//! `2026-11-25 14:03:07,512 INFO post_message {"id":42,"target":"proj-x",...}`.
//! Warnings and errors are also printed to stderr.

use file_rotate::{compression::Compression, suffix::AppendCount, ContentLimit, FileRotate};
use serde_json::{Map, Value};
use slog::{Drain, Key, Level, Logger, OwnedKVList, Record, KV};
use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// Records that may wait for the writer thread before new ones are dropped (and the drop is
/// reported in the log).
const QUEUE_LEN: usize = 4096;

pub use slog_async::AsyncGuard;

struct LineDrain {
    file: Mutex<FileRotate<AppendCount>>,
}

struct Fields(Map<String, Value>);

impl slog::Serializer for Fields {
    fn emit_arguments(&mut self, key: Key, val: &fmt::Arguments) -> slog::Result {
        self.0.insert(key.to_string(), Value::String(val.to_string()));
        Ok(())
    }
    fn emit_u64(&mut self, key: Key, val: u64) -> slog::Result {
        self.0.insert(key.to_string(), val.into());
        Ok(())
    }
    fn emit_usize(&mut self, key: Key, val: usize) -> slog::Result {
        self.0.insert(key.to_string(), val.into());
        Ok(())
    }
    fn emit_i64(&mut self, key: Key, val: i64) -> slog::Result {
        self.0.insert(key.to_string(), val.into());
        Ok(())
    }
    fn emit_bool(&mut self, key: Key, val: bool) -> slog::Result {
        self.0.insert(key.to_string(), val.into());
        Ok(())
    }
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
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // Fail here with the reason, not later inside the rotating writer.
    std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    let file = FileRotate::new(
        path,
        AppendCount::new(backups),
        ContentLimit::BytesSurpassed(max_bytes.max(1) as usize),
        Compression::None,
        None,
    );
    let (drain, guard) = slog_async::Async::new(LineDrain { file: Mutex::new(file) })
        .chan_size(QUEUE_LEN)
        .thread_name("usage-log".into())
        .build_with_guard();
    Ok((Logger::root(drain.fuse(), slog::o!()), guard))
}

#[cfg(test)]
mod tests {
    use super::*;
    use slog::info;

    #[test]
    fn lines_have_time_level_operation_and_json_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log/usage.log");
        let (log, guard) = open(&path, 1 << 20, 2).unwrap();
        info!(log, "post_message"; "target" => "proj-x", "id" => 7u64);
        drop(log);
        drop(guard);
        let text = std::fs::read_to_string(&path).unwrap();
        let (head, json) = text.trim_end().split_once(" INFO post_message ").unwrap();
        assert_eq!(head.len(), "2026-11-25 14:03:07,512".len(), "{head}");
        let fields: Value = serde_json::from_str(json).unwrap();
        assert_eq!(fields, serde_json::json!({"target": "proj-x", "id": 7}));
    }

    #[test]
    fn the_log_rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("usage.log");
        let (log, guard) = open(&path, 200, 2).unwrap();
        for i in 0..50u64 {
            info!(log, "fetch_messages"; "n" => i);
        }
        drop(log);
        drop(guard);
        assert!(dir.path().join("usage.log.1").exists());
        assert!(dir.path().join("usage.log.2").exists());
        assert!(!dir.path().join("usage.log.3").exists());
    }
}
