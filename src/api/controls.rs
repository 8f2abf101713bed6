//! Orchestration controls: an operator pauses a tenant's queue (its jobs keep
//! being planned and queued, and wait), resumes it, and sets its throughput
//! limits (jobs leased at once, deliveries per second). Both live with the
//! queue ([`crate::queue::Queue::set_paused`], [`crate::queue::Queue::set_limit`]),
//! so the server's own workers and every `recheck worker` on a shared queue
//! obey them. Needs `scheduler.admin`, and only ever for the credential's
//! own tenant. Replaying a window puts the window's jobs that are not
//! running (and not finished) back through the queue.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Admin, Authorized, Principal};
use super::extract::Body;
use super::job_control::requeue;
use super::problem::{kinds, Problem};
use super::AppState;
use crate::core::dispatcher::queued_job;
use crate::model::JobState;
use crate::queue::{ErrorKind, Queue, QueueError, TenantLimit};
use crate::store::JobFilter;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TenantQueueState {
    pub tenant: String,
    /// The tenant's jobs are not handed out while true.
    pub paused: bool,
}

/// A tenant's throughput limits; `null` (or absent) means the workers'
/// configured limit.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Jobs leased at once.
    #[serde(default)]
    pub concurrency: Option<u32>,
    /// Deliveries per second.
    #[serde(default)]
    pub per_second: Option<u32>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TenantLimits {
    pub tenant: String,
    /// The limits in force (the override over the configured ones).
    pub limits: Limits,
}

/// The queue, for the credential's own tenant only.
fn own_queue<'a>(
    state: &'a AppState,
    principal: &Principal,
    tenant: &str,
) -> Result<&'a dyn Queue, Problem> {
    if tenant != principal.tenant {
        return Err(Problem::forbidden(format!(
            "a credential of {} controls only its own tenant",
            principal.tenant
        )));
    }
    state
        .queue
        .as_deref()
        .ok_or_else(|| Problem::unavailable("this server has no queue"))
}

async fn set(
    state: &AppState,
    principal: &Principal,
    tenant: String,
    paused: bool,
) -> Result<Json<TenantQueueState>, Problem> {
    let queue = own_queue(state, principal, &tenant)?;
    queue
        .set_paused(&tenant, paused)
        .await
        .map_err(|e| Problem::unavailable(format!("the queue did not answer: {e}")))?;
    crate::metrics::get()
        .tenant_paused
        .get_or_create(&crate::metrics::Tenant::new(&tenant))
        .set(i64::from(paused));
    Ok(Json(TenantQueueState { tenant, paused }))
}

/// Stop handing out the tenant's jobs (new ones are still queued).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/pause",
    tag = "controls",
    params(("tenant" = String, Path, description = "The credential's own tenant")),
    responses(
        (status = 200, body = TenantQueueState),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn pause_tenant(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<Admin>,
    Path(tenant): Path<String>,
    // Read, so the keep-alive connection stays usable.
    Body(_): Body,
) -> Result<Json<TenantQueueState>, Problem> {
    set(&state, &principal, tenant, true).await
}

/// Hand out the tenant's jobs again.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/resume",
    tag = "controls",
    params(("tenant" = String, Path, description = "The credential's own tenant")),
    responses(
        (status = 200, body = TenantQueueState),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn resume_tenant(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<Admin>,
    Path(tenant): Path<String>,
    Body(_): Body,
) -> Result<Json<TenantQueueState>, Problem> {
    set(&state, &principal, tenant, false).await
}

/// Set the tenant's throughput limits for every worker on the queue.
#[utoipa::path(
    put,
    path = "/api/v1/tenants/{tenant}/limits",
    tag = "controls",
    params(("tenant" = String, Path, description = "The credential's own tenant")),
    request_body = Limits,
    responses(
        (status = 200, body = TenantLimits),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The queue cannot enforce that kind of limit", body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn put_limits(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<Admin>,
    Path(tenant): Path<String>,
    Body(body): Body,
) -> Result<Json<TenantLimits>, Problem> {
    let queue = own_queue(&state, &principal, &tenant)?;
    let wanted: Limits =
        serde_json::from_slice(&body).map_err(|e| Problem::bad_parameter("body", e.to_string()))?;
    let limit = TenantLimit {
        concurrency: wanted.concurrency,
        per_second: wanted.per_second,
    };
    queue
        .set_limit(&tenant, limit)
        .await
        .map_err(|e| match e.kind {
            ErrorKind::Config => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                kinds::INVALID_REQUEST,
                e.message,
            ),
            _ => Problem::unavailable(format!("the queue did not answer: {e}")),
        })?;
    let now = queue
        .limit(&tenant)
        .await
        .map_err(|e| Problem::unavailable(format!("the queue did not answer: {e}")))?;
    Ok(Json(TenantLimits {
        tenant,
        limits: Limits {
            concurrency: now.concurrency,
            per_second: now.per_second,
        },
    }))
}

/// The tenant's throughput limits in force and whether it is paused.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TenantControls {
    pub tenant: String,
    pub paused: bool,
    pub limits: Limits,
}

/// The tenant's queue controls as every worker on the queue applies them.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/limits",
    tag = "controls",
    params(("tenant" = String, Path, description = "The credential's own tenant")),
    responses(
        (status = 200, body = TenantControls),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_limits(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<Admin>,
    Path(tenant): Path<String>,
) -> Result<Json<TenantControls>, Problem> {
    let queue = own_queue(&state, &principal, &tenant)?;
    let unavailable =
        |e: QueueError| Problem::unavailable(format!("the queue did not answer: {e}"));
    let paused = queue.paused(&tenant).await.map_err(unavailable)?;
    let now = queue.limit(&tenant).await.map_err(unavailable)?;
    Ok(Json(TenantControls {
        tenant,
        paused,
        limits: Limits {
            concurrency: now.concurrency,
            per_second: now.per_second,
        },
    }))
}

/// What a window replay did, by job id (sorted).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WindowReplay {
    pub window: u64,
    /// Dead-lettered or cancelled jobs moved back to `queued`, as a new
    /// attempt of the same job id.
    pub requeued: Vec<String>,
    /// Queued jobs put into the queue again (a queue that lost them gets
    /// them back; one that still holds them de-duplicates).
    pub redispatched: Vec<String>,
    /// Jobs left alone, with their state: running (a worker holds them),
    /// finished (`succeeded`, `superseded`: a fresh evaluation is a recheck
    /// run), or in the dispatcher's or a worker's hands (`planned`,
    /// `failed`, `retrying`).
    pub skipped: Vec<SkippedJob>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SkippedJob {
    pub id: String,
    pub state: String,
}

/// Replay a window: every job of the tenant planned in `window` that is not
/// running goes back through the queue. Dead-lettered and cancelled jobs
/// become a new attempt of the same job id (as `/jobs/{id}/retry` does);
/// queued ones are dispatched again (for a queue that lost them). Finished
/// jobs are left as they are: their verdicts stand, and re-evaluating them
/// is a recheck run. A window without the tenant's jobs replays nothing.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/windows/{window}/replay",
    tag = "controls",
    params(
        ("tenant" = String, Path, description = "The credential's own tenant"),
        ("window" = u64, Path, description = "Window number (as job `window`)"),
    ),
    responses(
        (status = 200, body = WindowReplay),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A job changed state meanwhile", body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn replay_window(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<Admin>,
    Path((tenant, window)): Path<(String, String)>,
    Body(_): Body,
) -> Result<Json<WindowReplay>, Problem> {
    let queue = own_queue(&state, &principal, &tenant)?;
    let window: u64 = window.parse().map_err(|_| {
        Problem::bad_parameter("path.window", format!("{window:?} is not a window number"))
    })?;
    let filter = JobFilter {
        tenant: Some(tenant.clone()),
        ..JobFilter::default()
    };
    let mut jobs: Vec<_> = state
        .store
        .jobs(&filter)
        .await?
        .into_iter()
        .filter(|j| j.window == window && j.tenant == tenant)
        .collect();
    jobs.sort_by(|a, b| a.id.cmp(&b.id));
    let mut out = WindowReplay {
        window,
        requeued: Vec::new(),
        redispatched: Vec::new(),
        skipped: Vec::new(),
    };
    for job in jobs {
        match job.state {
            JobState::DeadLettered | JobState::Cancelled => {
                let id = job.id.clone();
                requeue(&state, job).await?;
                out.requeued.push(id);
            }
            JobState::Queued => {
                let message = queued_job(&job).map_err(|e| Problem::internal(&e))?;
                queue
                    .enqueue(message)
                    .await
                    .map_err(|e| Problem::unavailable(format!("the queue did not answer: {e}")))?;
                out.redispatched.push(job.id);
            }
            other => out.skipped.push(SkippedJob {
                id: job.id,
                state: other.as_str().into(),
            }),
        }
    }
    tracing::info!(
        %tenant,
        window,
        requeued = out.requeued.len(),
        redispatched = out.redispatched.len(),
        "window replayed"
    );
    Ok(Json(out))
}
