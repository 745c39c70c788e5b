//! What sled's flush leaves out, for surviving a power cut (not just a process crash).
//!
//! sled 0.34 makes its log durable with `sync_file_range`, which writes the pages out but does
//! not flush the drive's cache or the file's metadata, and it never syncs the files it puts
//! values over about 128 KiB in (`blobs/`) nor the directories that name them. When on, each
//! group commit therefore also runs `fdatasync` on the data file, and `fsync` on any new blob
//! file and on the directories once. Measured cost: docs/reliability.md.

use crate::store::StoreError;
use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

pub(super) struct DiskSync {
    enabled: bool,
    /// sled's data file, opened for syncing only.
    data: File,
    /// Directories whose entries must be durable: synced once, at the first sync.
    dirs: Vec<PathBuf>,
    blobs: PathBuf,
    /// Blob files already synced.
    synced: HashSet<OsString>,
}

impl DiskSync {
    /// `db_dir` is sled's directory (holding `db`, `conf`, `blobs/`).
    pub(super) fn open(data_dir: &Path, db_dir: &Path) -> io::Result<DiskSync> {
        Ok(DiskSync {
            enabled: true,
            data: File::open(db_dir.join("db"))?,
            dirs: vec![data_dir.to_owned(), db_dir.to_owned(), db_dir.join("blobs")],
            blobs: db_dir.join("blobs"),
            synced: HashSet::new(),
        })
    }

    pub(super) fn set_enabled(&mut self, enabled: bool) {
        self.enabled = enabled;
    }

    pub(super) fn enabled(&self) -> bool {
        self.enabled
    }

    #[cfg(test)]
    pub(super) fn synced_blobs(&self) -> usize {
        self.synced.len()
    }

    /// Makes what the last sled flush wrote durable against a power cut.
    pub(super) fn sync(&mut self) -> Result<(), StoreError> {
        self.sync_files().map_err(|e| StoreError::io("syncing the database to disk failed", e))
    }

    fn sync_files(&mut self) -> io::Result<()> {
        if !self.enabled {
            return Ok(());
        }
        self.data.sync_data()?;
        let mut present = HashSet::new();
        let mut new_blob = false;
        if let Ok(entries) = std::fs::read_dir(&self.blobs) {
            for entry in entries {
                let entry = entry?;
                let name = entry.file_name();
                if !self.synced.contains(&name) {
                    File::open(entry.path())?.sync_data()?;
                    new_blob = true;
                }
                present.insert(name);
            }
        }
        // Blobs sled removed are forgotten; new ones need their directory entry synced.
        self.synced = present;
        if new_blob && !self.dirs.contains(&self.blobs) {
            File::open(&self.blobs)?.sync_all()?;
        }
        for dir in std::mem::take(&mut self.dirs) {
            if dir.exists() {
                File::open(&dir)?.sync_all()?;
            }
        }
        Ok(())
    }
}
