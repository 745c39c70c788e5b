//! The data directory's lock file, so two relays (or a relay and a command on a stopped store)
//! never share one store. It holds the pid of the process that has it.

use super::StoreError;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::Path;

const LOCK_FILE: &str = "relay.lock";

/// Takes the lock of `dir` (creating the directory); held until the file is dropped.
pub(super) fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| StoreError::dir(dir, e))?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK_FILE))
        .map_err(|e| StoreError::dir(dir, e))?;
    match file.try_lock() {
        Ok(()) => {
            let pid = std::process::id().to_string();
            file.set_len(0)
                .and_then(|()| file.write_all(pid.as_bytes()))
                .map_err(|e| StoreError::dir(dir, e))?;
            Ok(file)
        }
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = if pid.trim().is_empty() { "unknown".to_owned() } else { pid.trim().to_owned() };
            Err(StoreError::Locked { dir: dir.to_owned(), pid })
        }
        Err(TryLockError::Error(e)) => Err(StoreError::dir(dir, e)),
    }
}
