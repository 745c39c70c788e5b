//! The channel views as a follower of the log: it applies each durable group of events to the
//! views, then publishes them to readers (the commit watch) and tells the archive thread. It
//! runs where the log calls its followers (the sled log: on its writer thread, before the
//! posters are answered); posters also wait for it themselves (read your writes), see
//! `Store::append`.
//!
//! If the views cannot be updated, the store fails (it takes no more posts until it is opened
//! again, when the views catch up from their checkpoint); the posts already durable are still
//! acknowledged, since they are in the log.

use crate::event::Event;
use crate::store::event_log::Follower;
use crate::store::projections::channel_views::Channels;
use crate::store::shared::Shared;
use crate::store::StoreError;
use slog::error;
use std::collections::HashSet;
use std::sync::{mpsc, Arc};

pub(crate) struct Projector {
    shared: Arc<Shared>,
    channels: Channels,
    /// Told the last id of each applied group: the text archive's and the search index's
    /// threads, when they are on.
    followers: Vec<mpsc::Sender<u64>>,
}

impl Projector {
    pub(crate) fn new(shared: Arc<Shared>, channels: Channels, followers: Vec<mpsc::Sender<u64>>) -> Self {
        Projector { shared, channels, followers }
    }

    /// The projector as the log's follower.
    pub(crate) fn into_follower(mut self) -> Follower {
        Box::new(move |events| self.follow(&events))
    }

    /// Applies one durable group, unless the store failed already.
    fn follow(&mut self, events: &[Event]) {
        if self.shared.failure().is_some() {
            return;
        }
        // A panic in a projection must not take the log's thread with it.
        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.apply(events)))
            .unwrap_or_else(|_| Err(StoreError::Crashed("the channel views panicked".into())));
        if let Err(e) = applied {
            error!(self.shared.logger, "updating channel views failed"; "error" => %e);
            self.shared.fail(format!("updating channel views failed: {e}"));
        }
    }

    fn apply(&mut self, events: &[Event]) -> Result<(), StoreError> {
        self.shared.injected_write_fault()?;
        self.shared.channel_views.apply(events, &mut self.channels)?;
        self.publish(events);
        if let Some(observe) = self.shared.group_observer.get() {
            observe(events.len());
        }
        Ok(())
    }

    /// Readers see the group's messages from here on.
    fn publish(&self, events: &[Event]) {
        let Some(last) = events.last() else { return };
        {
            let mut published = self.shared.published.write().unwrap_or_else(|p| p.into_inner());
            let touched: HashSet<&str> = events
                .iter()
                .filter_map(|e| match e {
                    Event::MessagePosted(m) => Some(m.target.as_str()),
                    _ => None,
                })
                .collect();
            for name in touched {
                published.insert(name.to_owned(), self.channels[name]);
            }
        }
        self.shared.commits.send_replace(last.id());
        for follower in &self.followers {
            let _ = follower.send(last.id());
        }
    }
}
