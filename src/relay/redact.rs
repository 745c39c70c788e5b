//! Taking a message back: a redaction is checked (the message exists and the caller may see
//! it, may redact it, and gives a reason that fits) and appended; from then on every front door
//! serves the message as a tombstone (`store/projections/redactions.rs`).

use super::caller::Caller;
use super::service::{blocking, Relay, RelayError};
use crate::event::reason_problem;
use crate::message::{Message, StoredMessage};
use crate::store::StoreError;
use crate::values::{Invalid, Name};
use slog::info;

/// Messages a channel's redaction reads and redacts at a time.
const PAGE: usize = 1000;

/// A redaction's reason, trimmed, if it fits.
fn checked_reason(reason: &str) -> Result<&str, Invalid> {
    let reason = reason.trim();
    match reason_problem(reason) {
        Some(problem) => Err(Invalid::new("reason", problem)),
        None => Ok(reason),
    }
}

impl Relay {
    /// Redacts message `id` on behalf of the caller (`by`: the name it goes under, for a caller
    /// that is not a principal); returns the message as it now stands. An unknown id and a
    /// message the caller may not read are the same 404; a message redacted already is a
    /// conflict, and nothing is appended.
    pub async fn redact(
        &self,
        id: u64,
        by: Option<&str>,
        reason: &str,
        caller: &Caller,
    ) -> Result<Message, RelayError> {
        let reason = checked_reason(reason)?;
        let missing = || RelayError::Missing(format!("no message has the id {id}"));
        let store = self.inner.store.clone();
        let (target, _) = blocking(move || store.target_of(id)).await?.ok_or_else(missing)?;
        if self.readable(&target, caller).is_err() {
            return Err(missing());
        }
        let target = Name::parse("target", &target)?;
        let _redacting = self.inner.redacting.lock().await;
        let message = self.current(&target, id).await?;
        if let Some(done) = &message.redacted {
            return Err(RelayError::Conflict(format!("message {id} was redacted already, by {}", done.by)));
        }
        let by = self.allowed(caller, caller.redactor(by, target.as_str(), &message.sender))?;
        let by = Name::parse("by", by)?;
        self.inner.store.redact(&target, std::slice::from_ref(&message), &by, reason).await?;
        info!(self.inner.usage_log, "redact_message";
            "target" => target.as_str(), "id" => id, "by" => by.as_str(), "source" => caller.source.as_str());
        self.current(&target, id).await
    }

    /// Redacts every message of `channel` not redacted yet (an admin's, once principals exist);
    /// returns how many. A channel the caller may not read, or that holds no message, is 404.
    /// Messages posted meanwhile are left; a failure part-way leaves those done redacted (asking
    /// again finishes).
    pub async fn redact_channel(
        &self,
        channel: &str,
        by: Option<&str>,
        reason: &str,
        caller: &Caller,
    ) -> Result<u64, RelayError> {
        let reason = checked_reason(reason)?;
        let missing = || RelayError::Missing(format!("no channel named {channel:?} holds a message"));
        let target = self.readable(channel, caller).map_err(|_| missing())?;
        if self.inner.store.channel_last_id(target.as_str()) == 0 {
            return Err(missing());
        }
        self.allowed(caller, caller.admin())?;
        // An admin redacts anyone's messages, under its own name (or the one given).
        let by = Name::parse("by", self.allowed(caller, caller.redactor(by, target.as_str(), ""))?)?;
        // The messages there now: one posted meanwhile is left as it is.
        let upto = self.inner.store.channel_last_id(target.as_str());
        let _redacting = self.inner.redacting.lock().await;
        let (mut after, mut redacted) = (0, 0);
        while after < upto {
            let (store, name) = (self.inner.store.clone(), target.as_str().to_owned());
            let page = blocking(move || store.since(&name, after, PAGE)).await?;
            let page: Vec<_> = page.into_iter().take_while(|m| m.id <= upto).collect();
            let Some(last) = page.last().map(|m| m.id) else { break };
            let unredacted = page.iter().filter(|m| self.inner.store.redaction(m.id).is_none());
            let messages = unredacted
                .map(|m| m.decode().map_err(|e| StoreError::corrupt(format!("message {}: {e}", m.id))))
                .collect::<Result<Vec<Message>, _>>()?;
            self.inner.store.redact(&target, &messages, &by, reason).await?;
            redacted += messages.len() as u64;
            after = last;
        }
        info!(self.inner.usage_log, "redact_channel";
            "target" => target.as_str(), "messages" => redacted, "by" => by.as_str(), "source" => caller.source.as_str());
        Ok(redacted)
    }

    /// The messages of `target` redacted from now on, as they are (the web UI turns each into
    /// its tombstone where it is shown). Ends when the relay stops.
    pub fn follow_redactions(
        &self,
        target: &str,
        caller: &Caller,
    ) -> Result<impl futures_util::Stream<Item = Vec<StoredMessage>> + Send + 'static, RelayError> {
        let target = self.readable(target, caller)?;
        let mut changes = self.inner.store.redaction_watch();
        let seen = *changes.borrow_and_update();
        let state = (self.clone(), target, changes, seen);
        Ok(futures_util::stream::unfold(state, |(relay, target, mut changes, mut seen)| async move {
            loop {
                tokio::select! {
                    changed = changes.changed() => changed.ok()?,
                    () = relay.inner.stopping.cancelled() => return None,
                }
                let (ids, now) = relay.inner.store.redacted_after(seen, target.as_str());
                seen = now;
                if ids.is_empty() {
                    continue;
                }
                let (store, name) = (relay.inner.store.clone(), target.as_str().to_owned());
                let found = blocking(move || {
                    let found = ids.iter().map(|&id| store.message(&name, id));
                    found.collect::<Result<Vec<_>, _>>()
                })
                .await;
                let messages: Vec<StoredMessage> = found.ok()?.into_iter().flatten().collect();
                return Some((messages, (relay, target, changes, seen)));
            }
        }))
    }

    /// Message `id` of `target` as the store serves it now, parsed.
    async fn current(&self, target: &Name, id: u64) -> Result<Message, RelayError> {
        let stored = self.message_of(target, id, "id").await?;
        Ok(stored.decode().map_err(|e| StoreError::corrupt(format!("message {id}: {e}")))?)
    }
}
