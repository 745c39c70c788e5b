//! Erasing records from the stream, and reading around the gaps that leaves.
//!
//! The record of a redacted message, and those of messages retention dropped, are deleted
//! from the stream by each instance once its views applied the redaction or the expiry
//! (`STREAM.MSG.DELETE`, which overwrites the record in the servers' files; a record another
//! instance deleted first is gone already, which is fine).
//!
//! Reads then meet gaps. A gap is a message that expired (nothing to show) or one that was
//! redacted, whose tombstone a reader makes from its redaction: the stream keeps redactions on
//! subjects of their own (`<channel>.r`), each after the message it names, so it is in the
//! stream before that message is deleted. A reader that finds a gap the redactions it knows do
//! not explain reads those published since it last looked: a record deleted before the read
//! found its gap had its redaction in the stream by then.

use super::read::{read, Read};
use super::stream::{nats_error, redactions_filter, stream_info};
use crate::event::{Event, MessageRedacted};
use crate::store::StoreError;
use async_nats::jetstream;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use futures_util::StreamExt;
use slog::{warn, Logger};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a read of the redactions waits for each request that sets it up.
const BOUND: Duration = Duration::from_secs(5);
/// How long an erasure keeps trying a record the servers fail to delete.
const ERASE_PATIENCE: Duration = Duration::from_secs(30);
/// Deletes in flight at once.
const ERASING_AT_ONCE: usize = 16;

/// The redactions a reader has seen, by the message they name, and the sequence up to which it
/// read them.
#[derive(Default)]
pub(super) struct Tombstones {
    known: tokio::sync::Mutex<Known>,
}

#[derive(Default)]
struct Known {
    by_message: BTreeMap<u64, MessageRedacted>,
    upto: u64,
}

impl Known {
    /// The redactions of messages in `from..=end` that `events` lacks.
    fn missing_from<'a>(
        &'a self,
        events: &'a [Event],
        from: u64,
        end: u64,
    ) -> impl Iterator<Item = &'a MessageRedacted> {
        self.by_message
            .range(from..=end)
            .filter(|(id, _)| events.binary_search_by_key(*id, Event::id).is_err())
            .map(|(_, r)| r)
    }
}

impl Tombstones {
    /// The records `found` by a read from `from`, with the tombstones of redacted messages in
    /// its gaps, in id order.
    pub(super) async fn fill(
        &self,
        js: &jetstream::Context,
        name: &str,
        found: Read,
        from: u64,
    ) -> Result<Vec<Event>, StoreError> {
        let Read { mut events, end } = found;
        let gaps = (end + 1).saturating_sub(from).saturating_sub(events.len() as u64);
        if gaps == 0 {
            return Ok(events);
        }
        let mut known = self.known.lock().await;
        if (known.missing_from(&events, from, end).count() as u64) < gaps {
            let redactions =
                read(js, name, Some(&redactions_filter(name)), known.upto + 1, usize::MAX, BOUND).await?;
            for event in redactions.events {
                if let Event::MessageRedacted(r) = event {
                    known.by_message.entry(r.message).or_insert(r);
                }
            }
            known.upto = known.upto.max(redactions.end);
        }
        let tombstones: Vec<Event> =
            known.missing_from(&events, from, end).map(|r| Event::MessagePosted(r.tombstone())).collect();
        if !tombstones.is_empty() {
            events.extend(tombstones);
            events.sort_unstable_by_key(Event::id);
        }
        Ok(events)
    }
}

/// Deletes the records `ids` from the stream, a few at a time, each tried again for up to
/// [`ERASE_PATIENCE`]; a record gone already is erased. `ask_first`: asks the stream's leader
/// whether each record is still there before deleting it (a read, where every delete is a
/// proposal the replicas agree on: for erasures done again, mostly of records gone already).
/// Returns whether every record is gone.
pub(super) async fn erase(
    js: jetstream::Context,
    name: String,
    ids: Vec<u64>,
    ask_first: bool,
    logger: Logger,
) -> bool {
    let started = Instant::now();
    let stream = loop {
        match stream_info(&js, &name).await {
            Ok(stream) => break stream,
            Err(e) if started.elapsed() >= ERASE_PATIENCE => {
                warn!(logger, "cannot erase records from the stream; they are tried again at the next start"; "error" => %e, "records" => ids.len());
                return false;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    let all = std::sync::atomic::AtomicBool::new(true);
    futures_util::stream::iter(ids)
        .for_each_concurrent(ERASING_AT_ONCE, |id| {
            let (stream, logger, all) = (&stream, &logger, &all);
            async move {
                if ask_first {
                    let found = stream.get_raw_message(id).await;
                    if matches!(found, Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound)) {
                        return;
                    }
                }
                loop {
                    let why = match stream.delete_message(id).await {
                        Ok(_) => return,
                        Err(e) if e.to_string().contains("no message found") => return,
                        Err(e) => nats_error("erasing a record", e),
                    };
                    if started.elapsed() >= ERASE_PATIENCE {
                        warn!(logger, "a record could not be erased from the stream; it is tried again at the next start";
                            "id" => id, "error" => %why);
                        all.store(false, std::sync::atomic::Ordering::Relaxed);
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        })
        .await;
    all.into_inner()
}
