//! The limits every front door shares: pages, waits, the default channel, and the history
//! channels keep (retention, applied by `retention.rs`). Each is clamped in one place, here or
//! in the service.

use std::time::Duration;

/// The channel `GET /api/messages` reads when it names none (the Python relay's default), and
/// the one the web UI's connect box shows before any is picked.
pub const DEFAULT_TARGET: &str = "proj-x";
/// REST `GET /api/messages`: default and largest page (the Python relay's numbers).
pub const REST_DEFAULT_LIMIT: u64 = 200;
pub const REST_MAX_LIMIT: u64 = 500;
/// MCP `fetch_messages`: default and largest page (the Python relay's numbers).
pub const MCP_DEFAULT_LIMIT: u64 = 50;
pub const MCP_MAX_LIMIT: u64 = 200;
/// Search results per page unless asked otherwise.
pub const SEARCH_DEFAULT_LIMIT: u64 = 20;
/// Default and longest wait for new messages. The cap stays under Codex's default tool timeout
/// (60 s) with room for the reply to travel.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(25);
pub const MAX_WAIT: Duration = Duration::from_secs(50);
/// Waits open at once. Each holds a task and a watch subscription; past this many, something
/// is looping, and a clear error beats unbounded growth.
pub const MAX_WAITERS: usize = 256;

/// Clamps a requested page size into `1..=max` (the Python relay clamped rather than refused).
pub fn clamp_limit(requested: Option<i128>, default: u64, max: u64) -> usize {
    requested.map_or(default, |n| n.clamp(1, max as i128) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_defaults_when_absent() {
        assert_eq!(clamp_limit(None, 50, 200), 50);
    }

    #[test]
    fn limit_is_clamped_into_range() {
        assert_eq!(clamp_limit(Some(0), 50, 200), 1);
        assert_eq!(clamp_limit(Some(-5), 50, 200), 1);
        assert_eq!(clamp_limit(Some(201), 50, 200), 200);
        assert_eq!(clamp_limit(Some(i128::MAX), 200, 500), 500);
        assert_eq!(clamp_limit(Some(7), 50, 200), 7);
    }
}

/// What history the channels keep; zero keeps everything.
#[derive(Debug, Clone, Default)]
pub struct Retention {
    /// Days of history a channel keeps (0: all).
    pub days: f64,
    /// Messages a channel keeps (0: all).
    pub messages: u64,
    /// Overrides by channel pattern: the longest pattern that matches a channel's name wins,
    /// and what it leaves out comes from the two above.
    pub patterns: Vec<(glob::Pattern, Limits)>,
}

/// One pattern's limits; `None` leaves the general setting, `Some(0)` keeps everything.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    pub days: Option<f64>,
    pub messages: Option<u64>,
}

impl Retention {
    /// Whether some channel could lose messages.
    pub fn is_on(&self) -> bool {
        let on = |l: &Limits| l.days.is_some_and(|d| d > 0.0) || l.messages.is_some_and(|n| n > 0);
        self.days > 0.0 || self.messages > 0 || self.patterns.iter().any(|(_, l)| on(l))
    }

    /// The limits of `channel`, with zeros as `None`.
    pub fn of(&self, channel: &str) -> Limits {
        let matching = self.patterns.iter().filter(|(p, _)| p.matches(channel));
        let over = matching.max_by_key(|(p, _)| p.as_str().len()).map(|(_, l)| *l).unwrap_or_default();
        Limits {
            days: Some(over.days.unwrap_or(self.days)).filter(|&d| d > 0.0),
            messages: Some(over.messages.unwrap_or(self.messages)).filter(|&n| n > 0),
        }
    }
}
