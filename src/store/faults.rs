//! A seam for I/O fault tests: every disk operation of the writer thread (a write to the log,
//! the views or the id reservation; a flush) asks [`Faults::check`] first, and a test can arm it
//! to fail the k-th operation of a kind, once or from then on. Unarmed, a check is one relaxed
//! atomic load.
//!
//! A failed write has written nothing. A failed flush has flushed: the data may well be on
//! disk, and only the answer is lost, the worse case for a store that must not report a post as
//! failed and then keep it.

use super::StoreError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The kinds of disk operation a fault can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOp {
    Write,
    Flush,
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
pub(super) struct Faults {
    armed: AtomicBool,
    /// The plan and how many operations of its kind have been seen.
    state: Mutex<Option<(FaultPlan, u64)>>,
}

impl Faults {
    pub(super) fn arm(&self, plan: Option<FaultPlan>) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = plan.map(|p| (p, 0));
        self.armed.store(plan.is_some(), Ordering::Relaxed);
    }

    /// Fails when the armed plan says this operation fails.
    pub(super) fn check(&self, op: FaultOp) -> Result<(), StoreError> {
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
                FaultOp::Write => "write",
                FaultOp::Flush => "flush",
            };
            return Err(StoreError::io(
                "injected fault",
                std::io::Error::other(format!("disk {what} #{seen} failed")),
            ));
        }
        Ok(())
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
