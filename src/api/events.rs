//! The live event stream: `GET /api/v1/events/stream` sends the caller's
//! tenant's job events as Server-Sent Events, each with its event id (the id
//! `GET /api/v1/events/{id}` serves) and its kind as the SSE event name.
//!
//! Live events come from an in-process broadcast channel ([`EventHub`])
//! that the workers of this server feed as they store each event, so an open
//! stream costs no store reads. A (re)connecting client names the last event
//! it saw (`Last-Event-ID`, or `?after=`); the events stored after it are read
//! from the store first (catch-up), then the live ones follow. Events are
//! ordered by (`occurred_at`, id); a stream that fell behind the channel, or
//! a server whose workers run in other processes (`recheck serve --workers
//! 0`), catches up from the store again. `follow=false` ends the stream after
//! the catch-up, for clients that poll.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::Stream;
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc, watch};
use utoipa::IntoParams;

use crate::model::StoredEvent;
use crate::store::{JobFilter, Store, StoreError};
use crate::worker::{event_id, ATTEMPT_KIND, COMPLETED_KIND, EXECUTION_KIND};

use super::auth::{Authorized, RunsRead};
use super::extract::Params;
use super::jobs::EventView;
use super::problem::Problem;
use super::AppState;

/// Events buffered per stream before a slow client is made to catch up
/// from the store instead.
const FEED_CAPACITY: usize = 4096;

/// Where stored events are announced to open streams.
pub struct EventHub {
    feed: broadcast::Sender<StoredEvent>,
    closing: watch::Sender<bool>,
    /// Re-read the store this often (no in-process worker feeds the hub).
    poll: Option<Duration>,
}

impl Default for EventHub {
    fn default() -> Self {
        EventHub::new(None)
    }
}

impl EventHub {
    pub fn new(poll: Option<Duration>) -> EventHub {
        EventHub {
            feed: broadcast::channel(FEED_CAPACITY).0,
            closing: watch::channel(false).0,
            poll,
        }
    }

    /// The sender workers announce stored events on.
    pub fn sender(&self) -> broadcast::Sender<StoredEvent> {
        self.feed.clone()
    }

    /// End every open stream (the server is shutting down; an open stream
    /// would hold the graceful shutdown up forever).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Event kinds, comma-separated: `completed` (the signed
    /// `recheck.job.completed@1`, the default), `execution`, `attempt`, or
    /// the full kind names.
    #[serde(default)]
    pub kind: Option<String>,
    /// Resume after this event id (as `Last-Event-ID`, which wins when both
    /// are given).
    #[serde(default)]
    pub after: Option<String>,
    /// `false`: end the stream once the stored events are sent.
    #[serde(default)]
    pub follow: Option<bool>,
}

fn parse_kinds(text: Option<&str>) -> Result<Vec<&'static str>, Problem> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Ok(vec![COMPLETED_KIND]);
    };
    let mut kinds = Vec::new();
    for part in text.split(',').map(str::trim) {
        let kind = match part {
            "completed" | COMPLETED_KIND => COMPLETED_KIND,
            "execution" | EXECUTION_KIND => EXECUTION_KIND,
            "attempt" | ATTEMPT_KIND => ATTEMPT_KIND,
            other => {
                return Err(Problem::bad_parameter(
                    "query.kind",
                    format!("unknown event kind {other:?} (completed, execution, attempt)"),
                ))
            }
        };
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

/// The stream's position: events sort by (occurred_at, id).
type Cursor = (String, String);

fn cursor_of(e: &StoredEvent) -> Cursor {
    (e.occurred_at.clone(), e.id.clone())
}

/// The tenant's stored events of `kinds` after `cursor`, in order. Event
/// ids derive from job ids, so they are read through the tenant's jobs: a
/// job that never ran has none.
async fn stored_after(
    store: &dyn Store,
    tenant: &str,
    kinds: &[&str],
    cursor: Option<&Cursor>,
) -> Result<Vec<StoredEvent>, StoreError> {
    let jobs = store
        .jobs(&JobFilter {
            tenant: Some(tenant.to_string()),
            ..JobFilter::default()
        })
        .await?;
    let mut out = Vec::new();
    for job in jobs.iter().filter(|j| j.attempt > 0) {
        let mut ids = Vec::new();
        for kind in kinds {
            match *kind {
                ATTEMPT_KIND => {
                    ids.extend((1..=job.attempt).map(|a| event_id(kind, &job.id, Some(a))))
                }
                EXECUTION_KIND => {
                    ids.push(event_id(kind, &job.id, None));
                    ids.push(event_id(kind, &job.id, Some(job.attempt)));
                }
                _ => ids.push(event_id(kind, &job.id, None)),
            }
        }
        for id in ids {
            if let Some(e) = store.event(&id).await? {
                if e.tenant == tenant && cursor.is_none_or(|c| cursor_of(&e) > *c) {
                    out.push(e);
                }
            }
        }
    }
    out.sort_by_key(cursor_of);
    out.dedup_by(|a, b| a.id == b.id);
    Ok(out)
}

fn sse_event(e: &StoredEvent) -> Option<Event> {
    let envelope = serde_json::from_slice(&e.body).ok()?;
    let view = EventView {
        id: e.id.clone(),
        job: e.job.clone(),
        kind: e.kind.clone(),
        occurred_at: e.occurred_at.clone(),
        envelope,
    };
    Event::default()
        .id(&e.id)
        .event(&e.kind)
        .json_data(&view)
        .ok()
}

/// One open stream: catch-up, then live events until the client goes away
/// or the server shuts down.
struct Streamer {
    store: Arc<dyn Store>,
    tenant: String,
    kinds: Vec<&'static str>,
    cursor: Option<Cursor>,
    /// Ids sent by catch-ups, which live events racing them must not repeat.
    sent: HashSet<String>,
    out: mpsc::Sender<Result<Event, Infallible>>,
}

impl Streamer {
    /// Send `e`; false when the client has gone.
    async fn send(&mut self, e: &StoredEvent) -> bool {
        let Some(event) = sse_event(e) else {
            tracing::warn!(event = %e.id, "stored event body is not JSON; not streamed");
            return true;
        };
        if self.cursor.as_ref().is_none_or(|c| cursor_of(e) > *c) {
            self.cursor = Some(cursor_of(e));
        }
        self.out.send(Ok(event)).await.is_ok()
    }

    async fn catch_up(&mut self) -> bool {
        let events = match stored_after(
            self.store.as_ref(),
            &self.tenant,
            &self.kinds,
            self.cursor.as_ref(),
        )
        .await
        {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(error = %e, "event stream catch-up failed");
                return true;
            }
        };
        for e in events {
            if self.sent.insert(e.id.clone()) && !self.send(&e).await {
                return false;
            }
        }
        true
    }

    async fn run(
        mut self,
        mut live: broadcast::Receiver<StoredEvent>,
        mut closing: watch::Receiver<bool>,
        follow: bool,
        poll: Option<Duration>,
    ) {
        if !self.catch_up().await || !follow {
            return;
        }
        let mut tick = poll.map(tokio::time::interval);
        // A handle of our own to notice the client leaving, so the select
        // below borrows nothing of `self`.
        let out = self.out.clone();
        loop {
            let polled = async {
                match tick.as_mut() {
                    Some(t) => {
                        t.tick().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let go_on = tokio::select! {
                _ = async {
                    // The guard `wait_for` returns is not `Send`: drop it here.
                    let _ = closing.wait_for(|c| *c).await;
                } => false,
                _ = out.closed() => false,
                _ = polled => self.catch_up().await,
                got = live.recv() => match got {
                    Ok(e) => {
                        if e.tenant == self.tenant
                            && self.kinds.contains(&e.kind.as_str())
                            && !self.sent.contains(&e.id)
                        {
                            self.send(&e).await
                        } else {
                            true
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up().await,
                    Err(broadcast::error::RecvError::Closed) => false,
                },
            };
            if !go_on {
                return;
            }
        }
    }
}

/// The caller's job events as Server-Sent Events (`id`: event id, `event`:
/// kind, `data`: the event as `GET /api/v1/events/{id}` serves it, whose
/// `envelope` is the signed DSSE envelope of a completion, or the record of
/// an attempt or execution), stored ones after `Last-Event-ID` / `after`
/// first, then live ones.
#[utoipa::path(
    get,
    path = "/api/v1/events/stream",
    tag = "jobs",
    params(
        StreamQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id"),
    ),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream", body = String),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn stream_events(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<RunsRead>,
    Params(q): Params<StreamQuery>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let kinds = parse_kinds(q.kind.as_deref())?;
    let after = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| Problem::bad_parameter("header.Last-Event-ID", "not text"))?
                .to_string(),
        ),
        None => q.after.clone(),
    };
    let cursor = match after.filter(|a| !a.is_empty()) {
        None => None,
        Some(id) => match state.store.event(&id).await? {
            Some(e) if e.tenant == principal.tenant => Some(cursor_of(&e)),
            // Another tenant's id reads as unknown.
            _ => {
                return Err(Problem::bad_parameter(
                    "query.after",
                    format!("no event {id} to resume after"),
                ))
            }
        },
    };
    // Subscribe before the catch-up read, so nothing stored in between is
    // missed (what both deliver is sent once).
    let live = state.events.feed.subscribe();
    let closing = state.events.closing.subscribe();
    let (out, rx) = mpsc::channel(64);
    let streamer = Streamer {
        store: state.store.clone(),
        tenant: principal.tenant.clone(),
        kinds,
        cursor,
        sent: HashSet::new(),
        out,
    };
    tokio::spawn(streamer.run(live, closing, q.follow.unwrap_or(true), state.events.poll));
    Ok(Sse::new(receiver_stream(rx))
        .keep_alive(KeepAlive::default())
        .into_response())
}

fn receiver_stream<T>(rx: mpsc::Receiver<T>) -> impl Stream<Item = T> {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|t| (t, rx)) })
}
