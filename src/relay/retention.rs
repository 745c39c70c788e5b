//! Retention: each channel keeps the history its settings choose (`retention_messages`, the
//! newest N; `retention_days`, those posted in the last D days; per-channel patterns may
//! override either). A task checks every channel once a second after new posts, and once a
//! minute in any case, and appends an expiry (`MessagesExpired`) for what passed the limits:
//! the store then drops those messages from its views and search, and in sled mode from the log.
//! Between checks a channel may hold a few more than its limit.

use super::limits::Limits;
use super::service::{blocking, Relay, RelayError};
use crate::values::Name;
use slog::{info, warn};
use std::time::{Duration, Instant};

/// How often a check may run after new posts.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How often a check runs without new posts (messages age).
const AGE_CHECK_EVERY: Duration = Duration::from_secs(60);

impl Relay {
    /// Keeps every channel within its retention until the relay stops (returns at once when
    /// retention is off).
    pub async fn keep_retention(self) {
        if !self.inner.retention.is_on() {
            return;
        }
        let mut commits = self.inner.store.commit_watch();
        // The first turn checks at once.
        commits.mark_changed();
        let (mut checked_at, mut failing) = (Instant::now(), false);
        loop {
            let posted = commits.has_changed().unwrap_or(false);
            if posted || checked_at.elapsed() >= AGE_CHECK_EVERY {
                commits.borrow_and_update();
                checked_at = Instant::now();
                match self.trim().await {
                    Ok(()) => failing = false,
                    Err(e) if !failing => {
                        failing = true;
                        warn!(self.inner.usage_log, "retention: expiring messages failed; retrying"; "error" => %e);
                    }
                    Err(_) => {}
                }
            }
            tokio::select! {
                () = tokio::time::sleep(CHECK_EVERY) => {}
                () = self.inner.stopping.cancelled() => return,
            }
        }
    }

    /// Expires what passed each channel's limits now; a channel that fails does not hold up
    /// the others (the first error is returned).
    async fn trim(&self) -> Result<(), RelayError> {
        let now = crate::values::unix_now();
        let mut first_error = None;
        for channel in self.inner.store.channels() {
            let limits = self.inner.retention.of(&channel.name);
            if limits != Limits::default() {
                if let Err(e) = self.trim_channel(&channel.name, limits, now).await {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn trim_channel(&self, channel: &str, limits: Limits, now: f64) -> Result<(), RelayError> {
        let posted_before = limits.days.map(|days| now - days * 86_400.0);
        let (store, name) = (self.inner.store.clone(), channel.to_owned());
        let upto = blocking(move || store.expiry_point(&name, limits.messages, posted_before)).await?;
        if upto > self.inner.store.expired(channel) {
            self.inner.store.expire(&Name::parse("target", channel)?, upto).await?;
            info!(self.inner.usage_log, "messages_expired"; "target" => channel, "upto" => upto);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::limits::Retention;
    use super::*;

    #[test]
    fn the_longest_matching_pattern_overrides_what_it_names() {
        let pattern = |p| glob::Pattern::new(p).unwrap();
        let retention = Retention {
            days: 30.0,
            messages: 0,
            patterns: vec![
                (pattern("ci-*"), Limits { days: Some(7.0), messages: None }),
                (pattern("ci-nightly-*"), Limits { days: Some(0.0), messages: Some(100) }),
            ],
        };
        assert!(retention.is_on());
        assert_eq!(retention.of("proj-x"), Limits { days: Some(30.0), messages: None });
        assert_eq!(retention.of("ci-lint"), Limits { days: Some(7.0), messages: None });
        assert_eq!(retention.of("ci-nightly-1"), Limits { days: None, messages: Some(100) });
        assert!(!Retention::default().is_on());
    }
}
