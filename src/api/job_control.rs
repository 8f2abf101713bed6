//! What an operator does to single jobs: retry or cancel one, read the
//! explain trace of its completion, and list and replay dead letters.
//!
//! The store stays the source of truth: a retry or replay first moves the
//! job back (`dead_lettered | cancelled → retrying → queued`, compare-and-set,
//! so a job a worker moved meanwhile is a 409), then puts it into the queue.
//! A dead letter is a job the store holds as `dead_lettered`, or one the
//! queue gave up on by itself (it kept killing its workers); both are listed,
//! and the queue's copy is replayed when it has one, so it is not listed
//! twice. Like every job read, another tenant's job is a 404.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::core::dispatcher::queued_job;
use crate::model::{JobState, JobTransition, RecheckJob, RuntimeState, Verdict};
use crate::queue::{DeadLetter, Queue};
use crate::store::JobFilter;
use crate::worker::{execution_record, policy::TraceEntry};

use super::auth::{Authorized, Principal, RunsRead, RunsWrite};
use super::extract::{Body, Page, PageParams, Params};
use super::idempotency::{fingerprint, Outcome};
use super::problem::Problem;
use super::AppState;

/// Problem type of an operation the job's state does not allow.
const JOB_STATE: &str = "/problems/job-state";

/// How many of the queue's dead letters are looked through (all tenants).
const QUEUE_DEAD_LETTERS: usize = 10_000;

/// The explain trace of a job's completion.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Explanation {
    pub job: String,
    /// The signed completion event the trace belongs to (its statement holds
    /// the trace's sha256).
    pub completion_event: Option<String>,
    /// pass, warn or fail.
    #[schema(value_type = String)]
    pub verdict: Verdict,
    /// The artifact's runtime state as of the job's window.
    #[schema(value_type = String)]
    pub runtime: RuntimeState,
    /// Per finding: advisory, vulnerability, component, purl, the range
    /// event that matched (`matched`), the VEX statement that applies
    /// (`vex`: status, justification, source document) and what decided.
    #[schema(value_type = Vec<Object>)]
    pub trace: Vec<TraceEntry>,
}

/// A job taken out of circulation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeadLetterView {
    /// The job id (what `/dead-letters/{id}/replay` takes).
    pub id: String,
    pub artifact: String,
    pub window: u64,
    /// The job's state in the store: `dead_lettered`, or the state it was
    /// left in when the queue gave up on it.
    pub state: String,
    pub attempt: u32,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_lettered_at: Option<String>,
    /// Deliveries before the queue gave up (when the queue holds it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<u32>,
}

fn job_state_problem(detail: String) -> Problem {
    Problem::new(StatusCode::CONFLICT, JOB_STATE, detail)
}

fn queue_of(state: &AppState) -> Result<&dyn Queue, Problem> {
    state
        .queue
        .as_deref()
        .ok_or_else(|| Problem::unavailable("this server runs no queue"))
}

/// The caller's job `id`, or 404.
async fn own_job(state: &AppState, principal: &Principal, id: &str) -> Result<RecheckJob, Problem> {
    match state.store.job(id).await? {
        Some(job) if job.tenant == principal.tenant => Ok(job),
        _ => Err(Problem::not_found(format!("no job {id}"))),
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn transition(
    state: &AppState,
    job: &RecheckJob,
    from: JobState,
    to: JobState,
) -> Result<bool, Problem> {
    let t = JobTransition {
        from,
        to,
        at: now(),
        attempt: job.attempt,
    };
    Ok(state.store.transition_job(&job.id, &t).await?)
}

/// Moves `job` to `cancelled` unless it has finished: `Ok(None)` once
/// cancelled, `Ok(Some(state))` when it had finished in `state` (or is gone).
/// A worker may move the job between our read and our write, so it is read
/// again and tried a few times before giving up. The job endpoint and run
/// cancellation both cancel through here.
pub(super) async fn cancel(
    state: &AppState,
    mut job: RecheckJob,
) -> Result<Option<JobState>, Problem> {
    for _ in 0..8 {
        if job.state.is_terminal() || !job.state.allows(JobState::Cancelled) {
            return Ok(Some(job.state));
        }
        if transition(state, &job, job.state, JobState::Cancelled).await? {
            return Ok(None);
        }
        match state.store.job(&job.id).await? {
            Some(again) => job = again,
            None => return Ok(Some(job.state)),
        }
    }
    Err(job_state_problem(format!(
        "job {} keeps changing state; try again",
        job.id
    )))
}

/// The queue's dead letters of one tenant, by job id.
async fn queue_dead_letters(
    queue: &dyn Queue,
    tenant: &str,
) -> Result<BTreeMap<String, DeadLetter>, Problem> {
    let all = queue
        .list_dead_letters(QUEUE_DEAD_LETTERS)
        .await
        .map_err(|e| Problem::internal(&e))?;
    Ok(all
        .into_iter()
        .filter(|d| d.job.tenant == tenant)
        .map(|d| (d.job.job_id.clone(), d))
        .collect())
}

/// Move a dead-lettered or cancelled `job` back to `queued` and put it into
/// the queue (replaying the queue's dead letter of it when there is one).
pub(super) async fn requeue(state: &AppState, job: RecheckJob) -> Result<RecheckJob, Problem> {
    let queue = queue_of(state)?;
    let dead = queue_dead_letters(queue, &job.tenant)
        .await?
        .remove(&job.id);
    match job.state {
        JobState::DeadLettered | JobState::Cancelled => {
            if !transition(state, &job, job.state, JobState::Retrying).await?
                || !transition(state, &job, JobState::Retrying, JobState::Queued).await?
            {
                return Err(job_state_problem(format!(
                    "job {} changed state meanwhile; read it and try again",
                    job.id
                )));
            }
        }
        // The queue gave up on a job the store still holds as open: the
        // replayed delivery is taken over by a worker as usual.
        _ if dead.is_some() => {}
        other => {
            return Err(job_state_problem(format!(
                "job {} is {}: only dead-lettered or cancelled jobs can be retried",
                job.id,
                other.as_str()
            )))
        }
    }
    match dead {
        Some(d) => queue
            .replay_dead_letter(&d.id)
            .await
            .map_err(|e| Problem::internal(&e))?,
        None => {
            let mut message = queued_job(&job).map_err(|e| Problem::internal(&e))?;
            // The de-dup key must be new even for a job that never ran (its
            // first dispatch used attempt 1): count the operator's retries in.
            let history = state.store.job_history(&job.id).await?;
            let retries = history
                .iter()
                .filter(|t| {
                    t.to == JobState::Retrying
                        && matches!(t.from, JobState::DeadLettered | JobState::Cancelled)
                })
                .count();
            message.attempt = message
                .attempt
                .saturating_add(u32::try_from(retries).unwrap_or(u32::MAX));
            queue
                .enqueue(message)
                .await
                .map_err(|e| Problem::internal(&e))?;
        }
    }
    state
        .store
        .job(&job.id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no job {}", job.id)))
}

fn to_value<T: Serialize>(status: StatusCode, body: &T) -> Outcome {
    serde_json::to_value(body)
        .map(|v| (status, v))
        .map_err(|e| Problem::internal(&e))
}

/// Run a dead-lettered or cancelled job again (one more attempt; it goes
/// through the queue like any job).
#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/retry",
    tag = "jobs",
    params(
        ("id" = String, Path, description = "Job id"),
        ("Idempotency-Key" = Option<String>, Header, description = "The same key returns the original result"),
    ),
    responses(
        (status = 202, description = "Queued again", body = Object),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job is not dead-lettered or cancelled", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn retry_job(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<RunsWrite>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    // Read (and ignored), so the connection stays usable: hyper closes a
    // keep-alive connection whose request body was left unread.
    Body(_): Body,
) -> Response {
    let print = fingerprint(method.as_str(), &uri.to_string(), &[]);
    let handle = async {
        let job = own_job(&state, &principal, &id).await?;
        if !matches!(job.state, JobState::DeadLettered | JobState::Cancelled) {
            return Err(job_state_problem(format!(
                "job {id} is {}: only dead-lettered or cancelled jobs can be retried",
                job.state.as_str()
            )));
        }
        let job = requeue(&state, job).await?;
        to_value(StatusCode::ACCEPTED, &job)
    };
    state
        .idempotency
        .run(&principal.tenant, &headers, print, handle)
        .await
}

/// Cancel a job that has not finished. A running attempt is not
/// interrupted, but its result is dropped (no completion event).
#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/cancel",
    tag = "jobs",
    params(
        ("id" = String, Path, description = "Job id"),
        ("Idempotency-Key" = Option<String>, Header, description = "The same key returns the original result"),
    ),
    responses(
        (status = 200, description = "Cancelled", body = Object),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has finished", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cancel_job(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<RunsWrite>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    // Read (and ignored), so the connection stays usable: hyper closes a
    // keep-alive connection whose request body was left unread.
    Body(_): Body,
) -> Response {
    let print = fingerprint(method.as_str(), &uri.to_string(), &[]);
    let handle = async {
        let job = own_job(&state, &principal, &id).await?;
        match cancel(&state, job).await? {
            None => to_value(StatusCode::OK, &own_job(&state, &principal, &id).await?),
            Some(finished) => Err(job_state_problem(format!(
                "job {id} is {}: it has finished",
                finished.as_str()
            ))),
        }
    };
    state
        .idempotency
        .run(&principal.tenant, &headers, print, handle)
        .await
}

/// The explain trace of a job's completion: for each finding, the advisory,
/// the component and purl, the range event that matched and the VEX
/// statement that applies (and whether it suppressed the finding).
#[utoipa::path(
    get,
    path = "/api/v1/jobs/{id}/explain",
    tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, body = Explanation),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has not completed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn explain_job(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<RunsRead>,
    Path(id): Path<String>,
) -> Result<Json<Explanation>, Problem> {
    let job = own_job(&state, &principal, &id).await?;
    let record = execution_record(state.store.as_ref(), &job)
        .await
        .map_err(|e| Problem::internal(&e))?;
    let not_done = |why: String| job_state_problem(format!("job {id} {why}"));
    let record = match record {
        Some(r) if job.state == JobState::Succeeded => r,
        Some(r) if job.state == JobState::DeadLettered => {
            return Err(not_done(format!(
                "was dead-lettered: {}",
                r.reason.unwrap_or_default()
            )))
        }
        _ => {
            return Err(not_done(format!(
                "has not completed (it is {})",
                job.state.as_str()
            )))
        }
    };
    let evaluation = record
        .evaluation
        .ok_or_else(|| not_done("completed without an evaluation".into()))?;
    Ok(Json(Explanation {
        job: job.id,
        completion_event: record.completion_event,
        verdict: evaluation.verdict,
        runtime: evaluation.runtime,
        trace: evaluation.trace,
    }))
}

/// The caller's dead letters, by (window, job id).
#[utoipa::path(
    get,
    path = "/api/v1/dead-letters",
    tag = "jobs",
    params(PageParams),
    responses(
        (status = 200, body = inline(Page<DeadLetterView>)),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_dead_letters(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<RunsRead>,
    Params(page): Params<PageParams>,
) -> Result<Json<Page<DeadLetterView>>, Problem> {
    let mut from_queue = match state.queue.as_deref() {
        Some(q) => queue_dead_letters(q, &principal.tenant).await?,
        None => BTreeMap::new(),
    };
    let mut jobs = state
        .store
        .jobs(&JobFilter {
            tenant: Some(principal.tenant.clone()),
            state: Some(JobState::DeadLettered),
            ..JobFilter::default()
        })
        .await?;
    for id in from_queue.keys() {
        if !jobs.iter().any(|j| j.id == *id) {
            match state.store.job(id).await? {
                Some(job) if job.tenant == principal.tenant => jobs.push(job),
                _ => {}
            }
        }
    }
    jobs.sort_by(|a, b| (a.window, &a.id).cmp(&(b.window, &b.id)));
    let mut items = Vec::with_capacity(jobs.len());
    for job in jobs {
        let queued = from_queue.remove(&job.id);
        let record = execution_record(state.store.as_ref(), &job)
            .await
            .map_err(|e| Problem::internal(&e))?;
        let reason = record
            .and_then(|r| r.reason)
            .or_else(|| queued.as_ref().map(|d| d.reason.clone()))
            .unwrap_or_default();
        let at = match &queued {
            Some(d) => Some(d.dead_lettered_at.to_rfc3339()),
            None => state
                .store
                .job_history(&job.id)
                .await?
                .iter()
                .rev()
                .find(|t| t.to == JobState::DeadLettered)
                .map(|t| t.at.clone()),
        };
        items.push(DeadLetterView {
            id: job.id,
            artifact: job.artifact,
            window: job.window,
            state: job.state.as_str().to_string(),
            attempt: job.attempt,
            reason,
            dead_lettered_at: at,
            deliveries: queued.map(|d| d.deliveries),
        });
    }
    Ok(Json(page.page(items, state.limits.max_page)?))
}

/// Put a dead-lettered job back into the queue (one more attempt).
#[utoipa::path(
    post,
    path = "/api/v1/dead-letters/{id}/replay",
    tag = "jobs",
    params(
        ("id" = String, Path, description = "Job id of the dead letter"),
        ("Idempotency-Key" = Option<String>, Header, description = "The same key returns the original result"),
    ),
    responses(
        (status = 202, description = "Queued again", body = Object),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dead letter", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn replay_dead_letter(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<RunsWrite>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    // Read (and ignored), so the connection stays usable: hyper closes a
    // keep-alive connection whose request body was left unread.
    Body(_): Body,
) -> Response {
    let print = fingerprint(method.as_str(), &uri.to_string(), &[]);
    let handle = async {
        let missing = || Problem::not_found(format!("no dead letter {id}"));
        let job = own_job(&state, &principal, &id)
            .await
            .map_err(|_| missing())?;
        let in_queue = match state.queue.as_deref() {
            Some(q) => queue_dead_letters(q, &principal.tenant)
                .await?
                .contains_key(&id),
            None => false,
        };
        if job.state != JobState::DeadLettered && !in_queue {
            return Err(missing());
        }
        let job = requeue(&state, job).await?;
        to_value(StatusCode::ACCEPTED, &job)
    };
    state
        .idempotency
        .run(&principal.tenant, &headers, print, handle)
        .await
}
