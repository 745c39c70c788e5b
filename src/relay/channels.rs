//! The channel list: configured channels, every channel with messages and every one someone
//! listens on, with counts, cursors and listeners; unread counts for a reader; and the list as
//! it changes, for the web UI.

use super::caller::Caller;
use super::limits::REST_MAX_LIMIT;
use super::presence::Listening;
use super::service::{blocking, Relay, RelayError};
use crate::store::{ChannelStats, StoreError};
use crate::values::Name;
use serde::Serialize;
use slog::info;
use std::time::Duration;

/// How often at most [`Relay::follow_channels`] sends a changed channel list.
pub const CHANNELS_EVERY: Duration = Duration::from_millis(250);

/// Unread counts stop here: a count of 1000 means 1000 or more.
pub const UNREAD_CAP: u64 = 1000;

/// The channel list as REST and MCP send it: the names (the Python relay's shape) and, beside
/// them, each channel's message count and last id.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ChannelList {
    pub channels: Vec<String>,
    pub details: Vec<ChannelStats>,
    // Present (true) while the relay does not follow its log (nats mode, servers unreachable):
    // the counts may be behind. Not a doc comment: the MCP schema agents pay for stays short.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
}

impl Relay {
    /// `details` as REST and MCP send them.
    pub fn channel_reply(&self, details: Vec<ChannelStats>) -> ChannelList {
        let channels = details.iter().map(|c| c.name.clone()).collect();
        ChannelList { channels, details, stale: self.inner.store.stale() }
    }

    /// Configured channels, every channel that holds a message and every one someone listens
    /// on, sorted by name: those the caller may read.
    pub fn channels(&self, caller: &Caller) -> Vec<ChannelStats> {
        let all = self.channel_list(caller);
        info!(self.inner.usage_log, "list_channels"; "returned" => all.len(), "source" => caller.source.as_str());
        all
    }

    /// [`Relay::channels`], with each one's count of messages after `reader`'s cursor.
    pub async fn channels_unread_by(
        &self,
        reader: &str,
        caller: &Caller,
    ) -> Result<Vec<ChannelStats>, RelayError> {
        let reader = self.allowed(caller, caller.reader(Some(reader)))?.unwrap_or(reader);
        let reader = Name::parse("reader", reader)?;
        let mut all = self.channels(caller);
        self.count_unread(&mut all, &reader).await?;
        Ok(all)
    }

    async fn count_unread(&self, channels: &mut [ChannelStats], reader: &Name) -> Result<(), StoreError> {
        for channel in channels {
            let after = channel.readers.get(reader.as_str()).copied().unwrap_or(0);
            channel.unread = Some(self.unread(&channel.name, after).await?);
        }
        Ok(())
    }

    /// Messages of `channel` after `after`, counted up to [`UNREAD_CAP`].
    async fn unread(&self, channel: &str, after: u64) -> Result<u64, StoreError> {
        let (store, channel) = (self.inner.store.clone(), channel.to_owned());
        blocking(move || {
            let (mut count, mut after) = (0, after);
            while count < UNREAD_CAP {
                let page = store.since(&channel, after, REST_MAX_LIMIT as usize)?;
                let Some(last) = page.last() else { break };
                (count, after) = (count + page.len() as u64, last.id);
            }
            Ok(count.min(UNREAD_CAP))
        })
        .await
    }

    /// The channel list now, then each time it changes (a count grows, a channel appears, a
    /// listener comes or goes), at most once per [`CHANNELS_EVERY`]; woken by commits and
    /// presence changes, never by polling. Ends when the relay stops.
    /// With a `reader` (a principal's own name only), each channel comes with its unread count
    /// for that reader. Only the channels `caller` may read.
    pub fn follow_channels(
        &self,
        reader: Option<Name>,
        caller: Caller,
    ) -> Result<impl futures_util::Stream<Item = Vec<ChannelStats>> + Send + 'static, RelayError> {
        self.allowed(&caller, caller.reader(reader.as_ref().map(Name::as_str)))?;
        let watches = (self.inner.store.commit_watch(), self.inner.presence.changes());
        let state = (self.clone(), caller, watches, reader, None);
        Ok(futures_util::stream::unfold(state, |(relay, caller, mut watches, reader, mut last)| async move {
            loop {
                if last.is_some() {
                    let stopping = relay.inner.stopping.clone();
                    let (commits, presence) = &mut watches;
                    tokio::time::sleep(CHANNELS_EVERY).await;
                    tokio::select! {
                        changed = commits.changed() => if changed.is_err() { return None },
                        changed = presence.changed() => if changed.is_err() { return None },
                        () = stopping.cancelled() => return None,
                    }
                }
                watches.0.borrow_and_update();
                watches.1.borrow_and_update();
                let mut now = relay.channel_list(&caller);
                if let Some(reader) = &reader {
                    // A count that cannot be read now is left out; the next change tries again.
                    let _ = relay.count_unread(&mut now, reader).await;
                }
                if last.as_ref() != Some(&now) {
                    last = Some(now.clone());
                    return Some((now, (relay, caller, watches, reader, last)));
                }
            }
        }))
    }

    /// The names of the channels [`Relay::channels`] lists that start with `prefix`, sorted:
    /// what a client completes a channel argument from. Not logged: clients ask on each key.
    pub fn channel_names(&self, caller: &Caller, prefix: &str) -> Vec<String> {
        let all = self.channel_list(caller).into_iter().map(|c| c.name);
        all.filter(|name| name.starts_with(prefix)).collect()
    }

    /// Configured channels, channels with messages and channels someone listens on: those
    /// `caller` may read.
    fn channel_list(&self, caller: &Caller) -> Vec<ChannelStats> {
        let mut listening = self.inner.presence.snapshot();
        let mut all = self.inner.store.channels();
        let empty =
            self.inner.channels.iter().map(|n| n.as_str().to_owned()).chain(listening.keys().cloned());
        for name in empty.collect::<Vec<_>>() {
            if !all.iter().any(|c| c.name == name) {
                let (listening, readers, delivery) = Default::default();
                all.push(ChannelStats {
                    name,
                    count: 0,
                    last_id: 0,
                    listening,
                    readers,
                    delivery,
                    unread: None,
                });
            }
        }
        all.retain(|c| caller.sees(&c.name));
        for channel in &mut all {
            channel.listening = listening.remove(&channel.name).unwrap_or_default();
            channel.readers = self.inner.store.cursors(&channel.name).into_iter().collect();
            channel.delivery = self.reader_states(&channel.name);
        }
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Lists `name` as listening on `target` until the result is dropped (a stream that names
    /// its reader; waits do this themselves).
    pub fn listen(&self, target: &str, name: &Name, caller: &Caller) -> Result<Listening, RelayError> {
        let target = self.readable(target, caller)?;
        self.allowed(caller, caller.reader(Some(name.as_str())))?;
        Ok(self.inner.presence.listen(target.as_str(), name.as_str()))
    }
}
