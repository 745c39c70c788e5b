//! The writer thread: the one place appends happen, one group commit at a time, following the
//! commit protocol described in ARCHITECTURE.md ("The commit protocol"). It makes each group
//! durable and hands it to the projector (`projector.rs`), which applies and publishes it.

use super::shared::Shared;
use super::StoreError;
use crate::event::Event;
use crate::message::{Message, NewMessage};
use slog::error;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

/// Most appends committed in one group: bounds the memory and the latency of one commit.
pub const MAX_BATCH: usize = 1024;

/// Ids reserved per durable reservation: one extra flush per this many posts, and at most this
/// many ids skipped after a crash.
const ID_RESERVE_STEP: u64 = 1000;

/// How long the unsafe mode (`CLAUDE_CODEX_UNSAFE_ACK_BEFORE_FLUSH`, tests only) holds a group
/// between acknowledging and writing it.
const UNSAFE_WRITE_DELAY: Duration = Duration::from_millis(20);

pub(super) struct Request {
    pub(super) message: NewMessage,
    pub(super) reply: oneshot::Sender<Result<Message, StoreError>>,
}

/// The writer thread's own state.
pub(super) struct Writer {
    shared: Arc<Shared>,
    next_id: u64,
    reserved: u64,
    ack_early: bool,
    /// Sent each durable group, to apply to the channel views.
    projector: mpsc::Sender<Vec<Event>>,
}

fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

impl Writer {
    /// A writer going on from `reserved`, the highest id already reserved (or used).
    pub(super) fn new(
        shared: Arc<Shared>,
        reserved: u64,
        ack_early: bool,
        projector: mpsc::Sender<Vec<Event>>,
    ) -> Writer {
        Writer { shared, next_id: reserved + 1, reserved, ack_early, projector }
    }

    pub(super) fn run(mut self, rx: mpsc::Receiver<Request>) -> Result<(), StoreError> {
        while let Ok(first) = rx.recv() {
            let mut group = vec![first];
            while group.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(r) => group.push(r),
                    Err(_) => break,
                }
            }
            self.commit_group(group);
        }
        // Every sender is gone: give back the unused reservation so a clean restart goes on
        // without a gap, and make everything durable.
        if self.shared.failure().is_none() {
            self.shared.injected_write_fault()?;
            self.shared.event_log.set_reserved(self.next_id - 1)?;
        }
        self.shared.flush()
    }

    fn commit_group(&mut self, group: Vec<Request>) {
        if let Some(reason) = self.shared.failure() {
            for r in group {
                let _ = r.reply.send(Err(StoreError::Failed(reason.clone())));
            }
            return;
        }
        let (messages, mut replies): (Vec<_>, Vec<_>) =
            group.into_iter().map(|r| (r.message, r.reply)).unzip();
        let events = self.assign_ids(messages);
        if self.ack_early {
            answer(&events, std::mem::take(&mut replies));
            thread::sleep(UNSAFE_WRITE_DELAY);
        }
        if let Err(e) = self.write_durably(&events) {
            error!(self.shared.logger, "commit failed"; "error" => %e);
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
            return;
        }
        // The events are durable from here on: every poster gets "posted" (once the views have
        // them, or could not take them: they catch up from the log on the next start).
        answer(&events, replies);
        let _ = self.projector.send(events);
    }

    /// Gives each message the next id. Ids are spent even if the commit fails, so an
    /// id is never handed out twice.
    fn assign_ids(&mut self, messages: Vec<NewMessage>) -> Vec<Event> {
        let ts = now_secs();
        let first = self.next_id;
        self.next_id += messages.len() as u64;
        messages
            .into_iter()
            .zip(first..)
            .map(|(m, id)| {
                Event::MessagePosted(Message {
                    id,
                    ts,
                    target: m.target.as_str().to_owned(),
                    sender: m.sender.as_str().to_owned(),
                    text: m.text.into_string(),
                    source: m.source,
                })
            })
            .collect()
    }

    /// The protocol's *reserve* and *write*. On failure the events are taken out again (best effort)
    /// so a later flush does not store posts whose posters were told they failed.
    fn write_durably(&mut self, events: &[Event]) -> Result<(), StoreError> {
        let (Some(first), Some(last)) = (events.first(), events.last()) else { return Ok(()) };
        let (first, last) = (first.id(), last.id());
        if last > self.reserved {
            let reserved = last + ID_RESERVE_STEP;
            self.shared.injected_write_fault()?;
            self.shared.event_log.set_reserved(reserved)?;
            self.shared.flush()?;
            self.reserved = reserved;
        }
        let result = self
            .shared
            .injected_write_fault()
            .and_then(|()| self.shared.event_log.append(events))
            .and_then(|()| self.shared.flush());
        if let Err(e) = &result {
            let undo =
                self.shared.injected_write_fault().and_then(|()| self.shared.event_log.remove(first, last));
            if let Err(undo) = undo {
                self.shared.fail(format!("{e}; then taking the failed posts out failed too: {undo}"));
            }
        }
        result
    }
}

/// Tells each poster its message (the events are in the order of the replies).
fn answer(events: &[Event], replies: Vec<oneshot::Sender<Result<Message, StoreError>>>) {
    for (event, reply) in events.iter().zip(replies) {
        let Event::MessagePosted(m) = event;
        let _ = reply.send(Ok(m.clone()));
    }
}
