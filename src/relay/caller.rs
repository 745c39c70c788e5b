//! Who is asking. Each front door turns a request into one [`Caller`], once, where it comes in
//! (from its credential, and which door it came through), and hands it to every service call
//! the request makes: the service decides with the caller in hand, never the front doors.

use crate::message::Source;

/// Who the credential a request carried says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// No credential: a relay with no token set, as a pair of agents on one laptop runs it.
    Anonymous,
    /// The holder of the shared `auth_token` (the bearer token, or the UI's sign-in cookie):
    /// may do anything.
    Admin,
}

/// A request's caller: who it is and the front door it came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub who: Who,
    /// The front door, recorded with posts and counted in the metrics.
    pub source: Source,
}

impl Caller {
    pub fn new(who: Who, source: Source) -> Caller {
        Caller { who, source }
    }

    /// The relay's own calls and the tests': no credential, through `source`.
    pub fn anonymous(source: Source) -> Caller {
        Caller::new(Who::Anonymous, source)
    }
}
