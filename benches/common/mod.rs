//! What the benches share: the data sets, generated once under `target/bench-data/`.
#![allow(dead_code)] // each bench uses a part

use relay::event::Event;
use relay::message::{Message, Source};
use relay::store::{import, Backend};
use std::io::Write;
use std::path::PathBuf;

/// Bytes of text per message: the workload of the reference figures.
pub const TEXT_BYTES: usize = 1000;
/// Random queries prepared per data set; the benches cycle through them.
const QUERIES: usize = 4096;

pub fn channel_name(no: u64) -> String {
    format!("chan-{no:03}")
}

/// The message with this id: deterministic, so the store and the ceiling hold the same data.
pub fn message(id: u64, channels: u64) -> Message {
    let mut text = format!("Review packet {id}\n```diff\n");
    while text.len() < TEXT_BYTES - 4 {
        text.push_str(&format!("+    let value_{id} = compute({});\n", text.len()));
    }
    text.truncate(TEXT_BYTES - 4);
    text.push_str("\n```");
    Message {
        id,
        ts: 1_795_000_000.0 + id as f64 / 1000.0,
        target: channel_name(id % channels),
        sender: if id.is_multiple_of(2) { "claude".into() } else { "codex".into() },
        text,
        source: Source::Mcp,
        reply_to: None,
        redacted: None,
    }
}

pub fn bench_data_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench-data")
}

/// The store directory holding `n` messages over `channels` channels, generated on first use.
pub fn data_set(n: u64, channels: u64) -> PathBuf {
    let dir = bench_data_dir().join(format!("{n}-{channels}"));
    if dir.join("READY").exists() {
        return dir;
    }
    eprintln!("generating {n} messages over {channels} channels in {} (once)", dir.display());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let export = dir.with_extension("jsonl");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&export).unwrap());
        for id in 1..=n {
            out.write_all(Event::MessagePosted(message(id, channels)).to_json_line().as_bytes()).unwrap();
        }
    }
    import(&dir, &Backend::sled(), &export, false, None, Default::default()).unwrap();
    std::fs::remove_file(&export).unwrap();
    std::fs::write(dir.join("READY"), "").unwrap();
    dir
}
