//! Lock files, so two relays (or a relay and a command on a stopped store) never share a data
//! directory, a tool-usage log or a text archive. A lock file holds the pid of the process that
//! has it; the kernel lets go of it when that process ends.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a start (or a command) waits for a lock held by another process. The kernel lets
/// go of a killed process's files only once it has torn down its memory, which under load can
/// take seconds: a supervisor that restarts the relay at once after a kill -9 would otherwise
/// find its own dead predecessor holding the lock. A live relay holds it for longer, and is
/// then named in the error.
const LOCK_WAIT: Duration = Duration::from_secs(10);
const LOCK_RETRY: Duration = Duration::from_millis(50);

/// Why a lock was not taken.
#[derive(Debug)]
pub enum NotLocked {
    /// Another process holds it (its pid, or "unknown").
    Held(String),
    Io(io::Error),
}

/// Takes the lock file `path` (creating it), waiting up to [`LOCK_WAIT`] while another process
/// holds it; held until the file is dropped. `what` names what it guards, for the message said
/// while waiting.
pub fn acquire(path: &Path, what: &Path) -> Result<File, NotLocked> {
    let deadline = Instant::now() + LOCK_WAIT;
    let mut waiting_for = None;
    loop {
        match try_acquire(path) {
            // This process's own lock too: a store closing on another thread (its last handle
            // dropped by a task still finishing) lets go within moments.
            Err(NotLocked::Held(pid)) if Instant::now() < deadline => {
                if waiting_for.as_ref() != Some(&pid) {
                    // Said on stderr, where the person or supervisor that started it looks:
                    // every command that opens a store comes through here, not all with a log.
                    eprintln!(
                        "{} is locked by another relay (pid {pid}); waiting up to {} s for it to let go",
                        what.display(),
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

fn try_acquire(path: &Path) -> Result<File, NotLocked> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(NotLocked::Io)?;
    match file.try_lock() {
        Ok(()) => {
            let pid = std::process::id().to_string();
            file.set_len(0).and_then(|()| file.write_all(pid.as_bytes())).map_err(NotLocked::Io)?;
            Ok(file)
        }
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            Err(NotLocked::Held(if pid.trim().is_empty() {
                "unknown".to_owned()
            } else {
                pid.trim().to_owned()
            }))
        }
        Err(TryLockError::Error(e)) => Err(NotLocked::Io(e)),
    }
}
