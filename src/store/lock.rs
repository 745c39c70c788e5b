//! The data directory's lock file, so two relays (or a relay and a command on a stopped store)
//! never share one store. It holds the pid of the process that has it.

use crate::store::StoreError;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

const LOCK_FILE: &str = "relay.lock";
/// How long a start (or a command) waits for a lock held by another process. The kernel lets
/// go of a killed process's files only once it has torn down its memory, which under load can
/// take seconds: a supervisor that restarts the relay at once after a kill -9 would otherwise
/// find its own dead predecessor holding the lock. A live relay holds it for longer, and is
/// then named in the error.
const LOCK_WAIT: Duration = Duration::from_secs(10);
const LOCK_RETRY: Duration = Duration::from_millis(50);

/// Takes the lock of `dir` (creating the directory), waiting up to [`LOCK_WAIT`] while another
/// process holds it; held until the file is dropped.
pub(super) fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    let deadline = Instant::now() + LOCK_WAIT;
    let mut waiting_for = None;
    loop {
        match try_lock_dir(dir) {
            // This process's own lock too: a store closing on another thread (its last handle
            // dropped by a task still finishing) lets go within moments.
            Err(StoreError::Locked { pid, .. }) if Instant::now() < deadline => {
                if waiting_for.as_ref() != Some(&pid) {
                    // Said on stderr, where the person or supervisor that started it looks:
                    // every command that opens a store comes through here, not all with a log.
                    eprintln!(
                        "{} is locked by another relay (pid {pid}); waiting up to {} s for it to let go",
                        dir.display(),
                        LOCK_WAIT.as_secs()
                    );
                    waiting_for = Some(pid);
                }
                std::thread::sleep(LOCK_RETRY);
            }
            result => return result,
        }
    }
}

fn try_lock_dir(dir: &Path) -> Result<File, StoreError> {
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
