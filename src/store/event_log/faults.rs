//! Seams for fault tests; a test arms [`Faults`] to fail the k-th operation of a kind, once or
//! from then on. Unarmed, a check is one relaxed atomic load.
//!
//! - Around any log, [`FaultyLog`] wraps the [`EventLog`] interface, so one test body runs
//!   against both backends: an append refused before the log sees it (`Append`), or stored with
//!   its acknowledgement lost (`Answer`, what a lost PubAck or a dropped connection does).
//! - Inside the sled backend, where a wrapper cannot reach, every disk operation of the writer
//!   thread (a write to the log, the views or the id reservation; a flush) asks
//!   [`Faults::check`] first (`Write`, `Flush`), which tests the writer's undo and its refusal
//!   to go on. A failed write has written nothing. A failed flush has flushed: the data may well
//!   be on disk, and only the answer is lost, the worse case for a store that must not report a
//!   post as failed and then keep it.

use crate::event::Event;
use crate::event::NewEvent;
use crate::store::event_log::{Appending, EventLog, Follower, Forgotten};
use crate::store::StoreError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Test-only switch: acknowledge each group before writing it, as a write-behind relay would.
/// It exists so the crash test can show that it detects lost acknowledged posts. (Skipping only
/// the flush would not do: sled hands writes to the OS at once, and a killed process does not
/// lose the OS's cache.) Read only in builds with the `faults` feature.
const UNSAFE_ACK_ENV: &str = "CLAUDE_CODEX_UNSAFE_ACK_BEFORE_FLUSH";

/// Whether the environment asks for [`UNSAFE_ACK_ENV`]'s unsafe acknowledgements.
pub(crate) fn ack_early_asked() -> bool {
    std::env::var_os(UNSAFE_ACK_ENV).is_some_and(|v| v == "1")
}

/// The kinds of operation a fault can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOp {
    /// A disk write of the sled writer.
    Write,
    /// A disk flush of the sled writer.
    Flush,
    /// An append to the log, refused before the log sees it (either backend).
    Append,
    /// An append's acknowledgement, lost after the log stored it (either backend).
    Answer,
    /// Every deletion of expired messages' records, lost before the log made it (as by a
    /// crash): armed, `nth` and `sticky` do not matter.
    Forget,
}

/// Which operation fails, and whether the disk recovers after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultPlan {
    pub op: FaultOp,
    /// The operation of that kind to fail, counted from 1 since the plan was armed.
    pub nth: u64,
    /// Whether every later operation of that kind fails too (until the plan is disarmed).
    pub sticky: bool,
}

#[derive(Default)]
pub(crate) struct Faults {
    armed: AtomicBool,
    /// The plan and how many operations of its kind have been seen.
    state: Mutex<Option<(FaultPlan, u64)>>,
}

impl Faults {
    pub(crate) fn arm(&self, plan: Option<FaultPlan>) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = plan.map(|p| (p, 0));
        self.armed.store(plan.is_some(), Ordering::Relaxed);
    }

    /// Whether a plan for `op` is armed.
    fn aims_at(&self, op: FaultOp) -> bool {
        self.armed.load(Ordering::Relaxed)
            && self.state.lock().unwrap_or_else(|p| p.into_inner()).is_some_and(|(plan, _)| plan.op == op)
    }

    /// Fails when the armed plan says this operation fails.
    pub(crate) fn check(&self, op: FaultOp) -> Result<(), StoreError> {
        if !self.armed.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Some((plan, seen)) = state.as_mut() else { return Ok(()) };
        if plan.op != op {
            return Ok(());
        }
        *seen += 1;
        if *seen == plan.nth || (plan.sticky && *seen > plan.nth) {
            let what = match op {
                FaultOp::Write => "disk write",
                FaultOp::Flush => "disk flush",
                FaultOp::Append => "append",
                FaultOp::Forget => "deletion of expired records",
                FaultOp::Answer => {
                    return Err(StoreError::Unacknowledged(format!(
                        "injected fault: the acknowledgement of append #{seen} was lost"
                    )))
                }
            };
            return Err(StoreError::io(
                "injected fault",
                std::io::Error::other(format!("{what} #{seen} failed")),
            ));
        }
        Ok(())
    }
}

/// A log whose appends fail as the armed plan says, around a real one.
pub(crate) struct FaultyLog {
    pub(crate) inner: Arc<dyn EventLog>,
    pub(crate) faults: Arc<Faults>,
}

impl EventLog for FaultyLog {
    fn append(&self, event: NewEvent) -> Result<Appending, StoreError> {
        self.faults.check(FaultOp::Append)?;
        let stored = self.inner.append(event)?;
        if !self.faults.aims_at(FaultOp::Answer) {
            return Ok(stored);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let faults = self.faults.clone();
        // The answer comes once the log has the message; only then can it be lost.
        std::thread::spawn(move || {
            let answer = match stored.blocking_recv() {
                Ok(Ok(message)) => faults.check(FaultOp::Answer).map(|()| message),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(StoreError::Closed),
            };
            let _ = tx.send(answer);
        });
        Ok(rx)
    }

    fn read_from(&self, from: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.inner.read_from(from, limit)
    }

    fn last_id(&self) -> Result<u64, StoreError> {
        self.inner.last_id()
    }

    fn follow(&self, after: u64, follower: Follower) -> Result<(), StoreError> {
        self.inner.follow(after, follower)
    }

    fn origin(&self) -> Option<String> {
        self.inner.origin()
    }

    fn ready(&self) -> Result<(), String> {
        self.inner.ready()
    }

    fn caught_up(&self, applied: u64) -> bool {
        self.inner.caught_up(applied)
    }

    fn behind(&self, applied: u64) -> bool {
        self.inner.behind(applied)
    }

    fn text_cap(&self) -> Option<usize> {
        self.inner.text_cap()
    }

    /// An armed `Forget` loses the deletes, as a crash before they ran would.
    fn forget(&self, ids: &[u64], done: Forgotten) -> Result<(), StoreError> {
        if self.faults.aims_at(FaultOp::Forget) {
            return Ok(());
        }
        self.inner.forget(ids, done)
    }

    fn erase(&self, ids: &[u64]) -> Result<(), StoreError> {
        self.inner.erase(ids)
    }

    fn close(&self) -> Result<(), StoreError> {
        self.inner.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcomes(faults: &Faults, op: FaultOp, n: usize) -> Vec<bool> {
        (0..n).map(|_| faults.check(op).is_ok()).collect()
    }

    #[test]
    fn unarmed_nothing_fails() {
        assert!(outcomes(&Faults::default(), FaultOp::Flush, 5).iter().all(|ok| *ok));
    }

    #[test]
    fn once_fails_only_the_nth_of_its_kind() {
        let faults = Faults::default();
        faults.arm(Some(FaultPlan { op: FaultOp::Write, nth: 3, sticky: false }));
        assert!(outcomes(&faults, FaultOp::Flush, 4).iter().all(|ok| *ok));
        assert_eq!(outcomes(&faults, FaultOp::Write, 5), [true, true, false, true, true]);
    }

    #[test]
    fn sticky_fails_from_the_nth_on_until_disarmed() {
        let faults = Faults::default();
        faults.arm(Some(FaultPlan { op: FaultOp::Flush, nth: 2, sticky: true }));
        assert_eq!(outcomes(&faults, FaultOp::Flush, 4), [true, false, false, false]);
        faults.arm(None);
        assert!(faults.check(FaultOp::Flush).is_ok());
    }
}
