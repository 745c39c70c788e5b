//! Posting: a message is checked (names, text size, the message it answers) and appended; the
//! answer comes once it is durable.

use super::caller::Caller;
use super::service::{blocking, Relay, RelayError};
use crate::message::{Message, NewMessage, StoredMessage};
use crate::values::{Invalid, Name, Text};
use slog::info;
use std::time::Instant;

impl Relay {
    /// Validates and stores a message; returns it once it is durable.
    pub async fn post(
        &self,
        target: &str,
        sender: &str,
        text: String,
        caller: &Caller,
    ) -> Result<Message, RelayError> {
        self.post_reply(target, Some(sender), text, None, caller).await
    }

    /// [`Relay::post`] of a message that answers `reply_to`, which must be a message of the
    /// same channel (else nothing is stored). A principal posts as itself: `sender` may be left
    /// out, and one naming someone else is refused.
    pub async fn post_reply(
        &self,
        target: &str,
        sender: Option<&str>,
        text: String,
        reply_to: Option<u64>,
        caller: &Caller,
    ) -> Result<Message, RelayError> {
        let sender = self.allowed(caller, caller.sender(sender))?;
        let target = Name::parse("target", target)?;
        self.allowed(caller, caller.may_write(target.as_str()))?;
        let message = NewMessage {
            target,
            sender: Name::parse("sender", sender.ok_or_else(|| Invalid::new("sender", "is required"))?)?,
            text: self.text(text)?,
            source: caller.source,
            reply_to,
        };
        if let Some(parent) = reply_to {
            self.message_of(&message.target, parent, "reply_to").await?;
        }
        let started = Instant::now();
        let m = self.inner.store.append(message).await?;
        self.inner.metrics.posted(caller.source, started.elapsed());
        info!(self.inner.usage_log, "post_message";
            "target" => &m.target, "sender" => &m.sender, "id" => m.id,
            "text_len" => m.text.len(), "source" => caller.source.as_str());
        Ok(m)
    }

    /// `raw` as a post's text: at most `max_text_bytes`, or what the NATS servers' `max_payload`
    /// leaves when that is less (nats mode, `max_text_bytes` left at its default).
    fn text(&self, raw: String) -> Result<Text, Invalid> {
        let configured = self.inner.max_text_bytes;
        match self.inner.store.text_cap().filter(|&cap| cap < configured) {
            Some(cap) if raw.len() > cap => Err(Invalid::new(
                "text",
                format!(
                    "is {} bytes, over the limit of {cap} bytes that the NATS servers' max_payload leaves \
                     (raise max_payload in their configuration to take max_text_bytes, {configured})",
                    raw.len()
                ),
            )),
            _ => Text::parse(raw, configured),
        }
    }

    /// The text of message `id` of `target`, if it has one and it can be read (quotes in the web
    /// UI). Reads the store: call it off the async workers.
    pub fn message_text(&self, target: &str, id: u64) -> Option<String> {
        Some(self.inner.store.message(target, id).ok()??.decode().ok()?.text)
    }

    /// Message `id` of `target`, or an error naming `field` when the channel has no such message.
    pub(super) async fn message_of(
        &self,
        target: &Name,
        id: u64,
        field: &'static str,
    ) -> Result<StoredMessage, RelayError> {
        let (store, name) = (self.inner.store.clone(), target.as_str().to_owned());
        blocking(move || store.message(&name, id)).await?.ok_or_else(|| {
            Invalid::new(field, format!("there is no message {id} in the channel {}", target.as_str())).into()
        })
    }
}
