//! The web UI's live streams (Server-Sent Events): a channel's new messages, rendered, the
//! tombstones of those redacted meanwhile, and the channel list as it changes.

use super::view::{channel_links, reader_of, render_messages, Ui};
use crate::http::error::ApiError;
use crate::http::request::{decode_segment, Query};
use crate::message::StoredMessage;
use crate::metrics::Open;
use crate::relay::{Caller, Relay};
use crate::values::Name;
use futures_util::{Stream, StreamExt};
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use warp::reply::{Reply, Response};

/// Messages per Server-Sent Event batch.
pub(super) const EVENT_BATCH: usize = 100;
/// How often an idle event stream sends a comment, so dead connections are noticed.
pub(super) const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How long a browser waits before reconnecting a dropped event stream.
pub(super) const RECONNECT: Duration = Duration::from_secs(1);

/// The channel list as Server-Sent Events named `channels`, each `{"channels": [{"name",
/// "href", "count", "current", "listening", "readers", "delivery", "unread"}]}`: the list now, then each
/// time it changes.
pub(super) fn channel_events(
    relay: &Relay,
    reader: Option<Name>,
    caller: Caller,
) -> Result<impl Stream<Item = Result<warp::sse::Event, Infallible>> + Send + 'static, ApiError> {
    Ok(relay.follow_channels(reader, caller)?.map(|list| {
        let data = json!({"channels": channel_links(list, None)});
        Ok(warp::sse::Event::default().event("channels").json_data(data).unwrap_or_default())
    }))
}

/// New messages of a channel as Server-Sent Events, each `{"id", "html"}`. Starts after
/// `Last-Event-ID` (a reconnect), else after `?after=`, else at the newest message. A message
/// redacted meanwhile comes as an event named `redacted`, `{"id", "html"}`: its tombstone.
pub(super) fn events(
    relay: Relay,
    ui: Arc<Ui>,
    name: &str,
    query: &str,
    last: Option<String>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let name = decode_segment(name)?;
    let resume = last.and_then(|id| id.trim().parse().ok());
    let after = match resume {
        Some(id) => id,
        None => Query::parse(query)?.id("after")?.unwrap_or_else(|| relay.last_id()),
    };
    let batches = relay.follow(&name, after, EVENT_BATCH, &caller).map_err(ApiError::from)?;
    let ui_for_redactions = ui.clone();
    let first = futures_util::stream::once(async { Ok(warp::sse::Event::default().retry(RECONNECT)) });
    let messages = batches
        .then(move |batch| {
            let ui = ui.clone();
            async move {
                let batch = batch.map_err(ApiError::from)?;
                tokio::task::spawn_blocking(move || {
                    let mut out = Vec::with_capacity(batch.len());
                    for m in &batch {
                        let html = render_messages(&ui, std::slice::from_ref(m))?;
                        let event = warp::sse::Event::default()
                            .id(m.id.to_string())
                            .json_data(
                                json!({"id": m.id, "html": html, "reply_to": m.reply_to().ok().flatten()}),
                            )
                            .map_err(|_| ApiError::Internal)?;
                        out.push(event);
                    }
                    Ok::<_, ApiError>(out)
                })
                .await
                .map_err(|_| ApiError::Internal)?
            }
        })
        .flat_map(|result: Result<Vec<warp::sse::Event>, ApiError>| {
            let events = result.unwrap_or_else(|e| {
                // The browser shows the reason and reconnects after RECONNECT.
                vec![warp::sse::Event::default().event("relay-error").data(e.message())]
            });
            futures_util::stream::iter(events.into_iter().map(Ok::<_, Infallible>))
        });
    // Messages redacted meanwhile, each rendered as its tombstone, to replace where it is shown.
    let redacted = relay
        .follow_redactions(&name, &caller)
        .map_err(ApiError::from)?
        .then(move |messages| {
            let ui = ui_for_redactions.clone();
            let rendered = tokio::task::spawn_blocking(move || {
                let event = |m: &StoredMessage| {
                    let html = render_messages(&ui, std::slice::from_ref(m)).ok()?;
                    warp::sse::Event::default()
                        .event("redacted")
                        .json_data(json!({"id": m.id, "html": html}))
                        .ok()
                };
                messages.iter().filter_map(event).collect::<Vec<_>>()
            });
            async move { rendered.await.unwrap_or_default() }
        })
        .flat_map(|events| futures_util::stream::iter(events.into_iter().map(Ok::<_, Infallible>)));
    // A page that picked a reader listens on the channel as that reader while it is open.
    let reader = reader_of(query)?;
    let listening = reader.as_ref().map(|r| relay.listen(&name, r, &caller)).transpose()?;
    let others = futures_util::stream::select(redacted, channel_events(&relay, reader, caller)?);
    let live = futures_util::stream::select(messages, others).map(move |event| {
        let _held = &listening;
        event
    });
    Ok(sse_reply(&relay, first.chain(live)))
}

/// An event stream with keep-alive comments, counted in `relay_open_event_streams` while open.
pub(super) fn sse_reply(
    relay: &Relay,
    events: impl Stream<Item = Result<warp::sse::Event, Infallible>> + Send + Sync + 'static,
) -> Response {
    let open = Open::new(&relay.metrics().open_streams);
    let events = events.map(move |event| {
        let _counted = &open;
        event
    });
    warp::sse::reply(warp::sse::keep_alive().interval(KEEP_ALIVE).stream(events)).into_response()
}
