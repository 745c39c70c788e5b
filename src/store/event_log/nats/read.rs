//! Reading the stream: a range of events through a pull consumer of its own, and an ordered
//! consumer for a follower; reads retried through a leader election.

use super::stream::{nats_error, numbered, stream_info, PUBLISH_BOUND};
use crate::event::Event;
use crate::store::StoreError;
use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use std::future::Future;
use std::time::{Duration, Instant};

/// The most messages one pull request of a read asks for.
pub(super) const READ_BATCH: usize = 4096;
/// How long a try waits for each request that sets up a read or the follower's consumer: right
/// after a cluster comes back or elects a new leader, a request can go unanswered for the
/// client's whole timeout (10 s) where the next one is answered at once (seen when a whole
/// cluster restarted: the read-back's consumer, 5 s lost to one try; and when a stopped leader
/// was replaced: the follower's new consumer, which held a post's answer for 10 s). Every third
/// try waits 5 s, so a cluster that is merely slow is still read.
const SHORT_TRY_BOUND: Duration = Duration::from_secs(1);
const LONG_TRY_BOUND: Duration = Duration::from_secs(5);

/// How long try number `tries` (from 0) waits for each request that sets it up: two short
/// tries, then a long one, and again.
pub(super) fn set_up_bound(tries: u32) -> Duration {
    if tries % 3 == 2 {
        LONG_TRY_BOUND
    } else {
        SHORT_TRY_BOUND
    }
}

/// `work`, or a (retried) error when it takes longer than `bound`.
pub(super) async fn bounded<T>(
    bound: Duration,
    what: &str,
    work: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(bound, work)
        .await
        .unwrap_or_else(|_| Err(StoreError::Nats(format!("{what}: no answer within {bound:?}"))))
}

/// Runs `attempt` (given how many tries came before) until it succeeds, fails for good
/// (damage), or [`PUBLISH_BOUND`] passes: a read during a leader election fails for a few
/// seconds, then works.
pub(super) async fn retrying<T, F: Future<Output = Result<T, StoreError>>>(
    attempt: impl Fn(u32) -> F,
) -> Result<T, StoreError> {
    let deadline = Instant::now() + PUBLISH_BOUND;
    for tries in 0.. {
        match attempt(tries).await {
            Err(StoreError::Nats(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            done => return done,
        }
    }
    unreachable!("the tries are counted in a u32")
}

/// What a read found: the records that exist from its start, and the last sequence it knows
/// about, every record between missing from `events` being erased (`erase.rs` puts back the
/// tombstones of redacted ones).
pub(super) struct Read {
    pub(super) events: Vec<Event>,
    pub(super) end: u64,
}

/// Up to `limit` records from `from`, as far as the stream's last one now (records erased by
/// redaction or retention leave gaps). Each read has a consumer of its own, deleted when the
/// read ends (the server's inactivity threshold removes one a failed read leaves behind, or one
/// whose creation answered after `bound`), so frequent reads do not pile consumers up on the
/// stream. `filter`: only records on these subjects (`None`: all).
pub(super) async fn read(
    js: &jetstream::Context,
    name: &str,
    filter: Option<&str>,
    from: u64,
    limit: usize,
    bound: Duration,
) -> Result<Read, StoreError> {
    let stream = bounded(bound, "reading the stream's state", stream_info(js, name)).await?;
    let last = stream.cached_info().state.last_sequence;
    let from = from.max(1);
    if from > last || limit == 0 {
        return Ok(Read { events: Vec::new(), end: last });
    }
    let config = consumer::pull::Config {
        deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: from },
        ack_policy: consumer::AckPolicy::None,
        inactive_threshold: Duration::from_secs(30),
        memory_storage: true,
        num_replicas: 1,
        filter_subject: filter.unwrap_or_default().to_owned(),
        ..Default::default()
    };
    let creating = async {
        stream
            .create_consumer(config)
            .await
            .map_err(|e| nats_error("cannot create a consumer of the stream", e))
    };
    let consumer = bounded(bound, "creating a consumer of the stream", creating).await?;
    let subject = filter.map_or_else(|| format!("relay.{name}.>"), str::to_owned);
    let read = match consumer.cached_info().num_pending {
        0 => bounded(bound, "asking the stream's leader", nothing_from(&stream, &subject, from, last))
            .await
            .map(|()| Read { events: Vec::new(), end: last }),
        _ => read_upto(&consumer, &stream, &subject, last, limit, bound).await,
    };
    // A consumer that cannot be deleted now goes when its inactivity threshold passes.
    let _ = tokio::time::timeout(bound, stream.delete_consumer(&consumer.cached_info().name)).await;
    read
}

/// Ok when the stream's leader holds no record on `subject` from `from` to `last`: a consumer
/// that saw none there may be on a replica that lags (after a restart of the cluster, say),
/// and records it has not received yet are not erased ones.
async fn nothing_from(
    stream: &stream::Stream,
    subject: &str,
    from: u64,
    last: u64,
) -> Result<(), StoreError> {
    match leaders_first(stream, subject, from).await? {
        Some(found) if found <= last => Err(StoreError::Nats(format!(
            "the stream's consumer has nothing from {from}, its leader has {found}: a replica that lags"
        ))),
        _ => Ok(()),
    }
}

/// The number of the first record on `subject` from `from` on, as the stream's leader knows
/// (a direct get may be answered by a replica that lags, which knows fewer records).
pub(super) async fn leaders_first(
    stream: &stream::Stream,
    subject: &str,
    from: u64,
) -> Result<Option<u64>, StoreError> {
    match stream.get_first_raw_message_by_subject(subject, from).await {
        Ok(found) => Ok(Some(found.sequence)),
        Err(e) if matches!(e.kind(), stream::LastRawMessageErrorKind::NoMessageFound) => Ok(None),
        Err(e) => Err(nats_error("asking the stream's leader for a record", e)),
    }
}

/// The records `consumer` delivers (those on `subject`), up to `limit` of them, or as far as
/// the one numbered `last` (or the stream's end, when records up to `last` were erased).
async fn read_upto(
    consumer: &consumer::PullConsumer,
    stream: &stream::Stream,
    subject: &str,
    last: u64,
    limit: usize,
    bound: Duration,
) -> Result<Read, StoreError> {
    let name = &consumer.cached_info().stream_name;
    let mut events: Vec<Event> = Vec::new();
    loop {
        let wanted = (limit - events.len()).min(READ_BATCH);
        let mut batch = consumer
            .batch()
            .max_messages(wanted)
            .expires(Duration::from_secs(10))
            .messages()
            .await
            .map_err(|e| nats_error(&format!("reading the stream {name}"), e))?;
        let before = events.len();
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| nats_error(&format!("reading the stream {name}"), e))?;
            let info = message.info().map_err(|e| nats_error("reading a stream message", e))?;
            let (sequence, pending) = (info.stream_sequence, info.pending);
            if sequence > last {
                return Ok(Read { events, end: last });
            }
            events.push(numbered(sequence, &message.payload)?);
            if sequence == last {
                return Ok(Read { events, end: last });
            }
            if pending == 0 {
                let asking = nothing_from(stream, subject, sequence + 1, last);
                return bounded(bound, "asking the stream's leader", asking)
                    .await
                    .map(|()| Read { events, end: last });
            }
            if events.len() == limit {
                return Ok(Read { events, end: sequence });
            }
        }
        if events.len() == before {
            return Err(StoreError::Nats(format!("reading the stream {name}: no message within 10 s")));
        }
    }
}

/// An ordered consumer of the whole stream from `from`.
pub(super) async fn ordered(
    stream: &stream::Stream,
    from: u64,
) -> Result<consumer::pull::Ordered, StoreError> {
    let config = consumer::pull::OrderedConfig {
        deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: from },
        ..Default::default()
    };
    let consumer = stream
        .create_consumer(config)
        .await
        .map_err(|e| nats_error("cannot create a consumer of the stream", e))?;
    consumer.messages().await.map_err(|e| nats_error("cannot read the stream", e))
}
