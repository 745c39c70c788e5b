//! Files rotated by size (`file-rotate`): the tool-usage log and the text archive. Once a file
//! passes its size it becomes `.1`, the older backups move up one, and the oldest past the count
//! is deleted.

use file_rotate::{compression::Compression, suffix::AppendCount, ContentLimit, FileRotate};
use std::io;
use std::path::{Path, PathBuf};

/// Opens `path` for appending (creating it and its folder), rotated once it passes `max_bytes`,
/// keeping `backups` old files.
pub fn open(path: &Path, max_bytes: u64, backups: usize) -> io::Result<FileRotate<AppendCount>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // Fail here with the reason, not later inside the rotating writer.
    std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    Ok(FileRotate::new(
        path,
        AppendCount::new(backups),
        ContentLimit::BytesSurpassed(max_bytes.max(1) as usize),
        Compression::None,
        None,
    ))
}

/// The backups of `path`, newest first.
pub fn backups(path: &Path, count: usize) -> impl Iterator<Item = PathBuf> + '_ {
    (1..=count).map(move |n| PathBuf::from(format!("{}.{n}", path.display())))
}
