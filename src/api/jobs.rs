//! Recheck jobs and completion events as the store holds them, cut to the
//! caller's tenant: another tenant's job or event is a 404, never a 403, so
//! ids of other tenants cannot be probed.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::model::{JobState, RecheckJob, StoredEvent};
use crate::store::JobFilter;

use super::auth::{Authorized, RunsRead};
use super::extract::{Page, PageParams, Params};
use super::problem::Problem;
use super::AppState;

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    /// planned, queued, running, succeeded, failed, retrying, dead_lettered,
    /// cancelled or superseded.
    #[serde(default)]
    pub state: Option<String>,
    /// Artifact id.
    #[serde(default)]
    pub artifact: Option<String>,
    #[serde(default)]
    pub offset: Option<usize>,
    #[serde(default)]
    pub limit: Option<usize>,
}

/// A stored completion event: its metadata and the DSSE envelope it carries.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventView {
    pub id: String,
    pub job: String,
    pub kind: String,
    pub occurred_at: String,
    /// The signed DSSE envelope (verify it with `recheck verify`).
    #[schema(value_type = Object)]
    pub envelope: serde_json::Value,
}

/// The caller's jobs by (window, id), filtered by state and artifact.
#[utoipa::path(
    get,
    path = "/api/v1/jobs",
    tag = "jobs",
    params(JobsQuery),
    responses(
        (status = 200, body = inline(Page<serde_json::Value>)),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_jobs(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<RunsRead>,
    Params(q): Params<JobsQuery>,
) -> Result<Json<Page<RecheckJob>>, Problem> {
    let job_state = match q.state.as_deref() {
        None => None,
        Some(s) => Some(JobState::parse(s).ok_or_else(|| {
            Problem::bad_parameter("query.state", format!("unknown job state {s:?}"))
        })?),
    };
    let jobs = state
        .store
        .jobs(&JobFilter {
            tenant: Some(principal.tenant.clone()),
            state: job_state,
            artifact: q.artifact,
            limit: None,
        })
        .await?;
    let page = PageParams {
        offset: q.offset,
        limit: q.limit,
    };
    Ok(Json(page.page(jobs, state.limits.max_page)?))
}

/// One of the caller's jobs.
#[utoipa::path(
    get,
    path = "/api/v1/jobs/{id}",
    tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, body = Object),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_job(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<RunsRead>,
    Path(id): Path<String>,
) -> Result<Json<RecheckJob>, Problem> {
    match state.store.job(&id).await? {
        Some(job) if job.tenant == principal.tenant => Ok(Json(job)),
        _ => Err(Problem::not_found(format!("no job {id}"))),
    }
}

/// One of the caller's completion events.
#[utoipa::path(
    get,
    path = "/api/v1/events/{id}",
    tag = "jobs",
    params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 200, body = EventView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_event(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<RunsRead>,
    Path(id): Path<String>,
) -> Result<Json<EventView>, Problem> {
    let event: StoredEvent = match state.store.event(&id).await? {
        Some(e) if e.tenant == principal.tenant => e,
        _ => return Err(Problem::not_found(format!("no event {id}"))),
    };
    let envelope = serde_json::from_slice(&event.body).map_err(|e| Problem::internal(&e))?;
    Ok(Json(EventView {
        id: event.id,
        job: event.job,
        kind: event.kind,
        occurred_at: event.occurred_at,
        envelope,
    }))
}
