//! Files rotated by size (`file-rotate`): the tool-usage log and the text archive. Once a file
//! passes its size it becomes `.1`, the older backups move up one, and the oldest past the count
//! is deleted.

use crate::lock::NotLocked;
use file_rotate::{compression::Compression, suffix::AppendCount, ContentLimit, FileRotate};
use std::io;
use std::path::{Path, PathBuf};

/// A rotating file, and the lock (`PATH.lock`) that keeps other relays from writing and
/// rotating it too (two writers renaming the same files lose lines, and `file-rotate` panics).
pub struct Rotating {
    file: FileRotate<AppendCount>,
    _lock: std::fs::File,
}

impl io::Write for Rotating {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Opens `path` for appending (creating it and its folder), rotated once it passes `max_bytes`,
/// keeping `backups` old files. Another relay writing it is an error naming its pid (after the
/// wait a dying one gets).
pub fn open(path: &Path, max_bytes: u64, backups: usize) -> io::Result<Rotating> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let lock = crate::lock::acquire(Path::new(&format!("{}.lock", path.display())), path).map_err(|e| match e {
        NotLocked::Held(pid) => io::Error::other(format!(
            "{} is written by another relay (pid {pid}): run one relay per folder, or give this one its own log_path and channel_log_path (and data_dir)",
            path.display()
        )),
        NotLocked::Io(e) => e,
    })?;
    // Fail here with the reason, not later inside the rotating writer.
    std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    let file = FileRotate::new(
        path,
        AppendCount::new(backups),
        ContentLimit::BytesSurpassed(max_bytes.max(1) as usize),
        Compression::None,
        None,
    );
    Ok(Rotating { file, _lock: lock })
}

/// The backups of `path`, newest first.
pub fn backups(path: &Path, count: usize) -> impl Iterator<Item = PathBuf> + '_ {
    (1..=count).map(move |n| PathBuf::from(format!("{}.{n}", path.display())))
}
