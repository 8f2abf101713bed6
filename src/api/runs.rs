//! Runs over HTTP: policy-triggered rechecks of every artifact a selector
//! covers (`POST /api/v1/runs`), their dry-run simulation, and reading and
//! cancelling runs. A run is planned by the log writer (only it may read the
//! engine's artifact directory) as of the last closed window, and committed
//! with its jobs in one store transaction (the outbox the dispatcher drains),
//! exactly as the core's scheduler does; a dry run returns the same plan and
//! the selected artifacts' findings and writes nothing.
//!
//! The run's tenant is the caller's and its selector reaches only that
//! tenant's artifacts; another tenant's run is a 404.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::core::runs::RunRequest;
use crate::model::{JobKind, Priority, RecheckJob, Run, RunState, RunTrigger, Selector};
use crate::store::RunOutcome;

use super::auth::{Authorized, RunsRead, RunsWrite};
use super::extract::{json_body, Body, Page, PageParams, Params};
use super::idempotency::{fingerprint, Outcome};
use super::job_control;
use super::problem::Problem;
use super::writer::ArtifactImpact;
use super::AppState;

/// A recheck of every artifact `selector` covers.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"selector": {"all": true}, "reason": "policy changed", "mode": "reevaluate", "dryRun": true}))]
pub struct RunBody {
    /// Which of the caller's artifacts: `{"all": true}`, or any of `tenant`
    /// (the caller's own), `labels` (`{"env": "prod"}`), `namespaces`,
    /// `repositories`, `digests`, `packages` (`[{"ecosystem": "PyPI",
    /// "name": "django"}]`); every criterion given must hold.
    #[schema(value_type = Object)]
    pub selector: Selector,
    /// Why the run is asked for (kept on the run).
    #[schema(example = "policy changed")]
    pub reason: String,
    /// `reevaluate` (verdict against the SBOM held) or `rescan` (the
    /// artifact's content again).
    #[schema(value_type = String, example = "reevaluate")]
    pub mode: JobKind,
    /// Simulate: answer with the impact set and the jobs the run would
    /// create, and write nothing.
    #[serde(default, rename = "dryRun", alias = "dry_run")]
    pub dry_run: bool,
    /// `normal` (default), `high` or `emergency`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub priority: Option<Priority>,
    /// `manual` (default), `policy`, `advisory`, `vex` or `content-refresh`
    /// (`cron` is the schedules' own).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub trigger: Option<RunTrigger>,
}

/// One artifact a dry run would recheck, with its findings as of the last
/// closed window.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImpactItem {
    pub artifact: String,
    pub affected: usize,
    pub suppressed: usize,
}

impl From<ArtifactImpact> for ImpactItem {
    fn from(i: ArtifactImpact) -> ImpactItem {
        ImpactItem {
            artifact: i.artifact,
            affected: i.affected,
            suppressed: i.suppressed,
        }
    }
}

/// A run as planned: committed, or simulated (`dryRun`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunPlanned {
    #[schema(value_type = Object)]
    pub run: Run,
    /// One planned job per selected artifact, by id.
    #[schema(value_type = Vec<Object>)]
    pub jobs: Vec<RecheckJob>,
    #[serde(rename = "dryRun")]
    pub dry_run: bool,
    /// False when the same run had been committed before (nothing new was
    /// written) and always for a dry run.
    pub created: bool,
    /// The selected artifacts and their findings (dry runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impact: Option<Vec<ImpactItem>>,
}

/// A run with the states its jobs are in now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunView {
    #[schema(value_type = Object)]
    pub run: Run,
    /// Job state → how many of the run's jobs are in it.
    pub job_states: BTreeMap<String, u64>,
}

/// What cancelling a run did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunCancelled {
    #[schema(value_type = Object)]
    pub run: Run,
    /// Jobs moved to `cancelled` now.
    pub cancelled: Vec<String>,
    /// Jobs that had already finished (or been cancelled or superseded).
    pub finished: usize,
}

fn to_value<T: Serialize>(status: StatusCode, body: &T) -> Outcome {
    serde_json::to_value(body)
        .map(|v| (status, v))
        .map_err(|e| Problem::internal(&e))
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// The request a body asks for, checked before the writer sees it (so each
/// refusal names its field).
fn request_of(body: RunBody, tenant: &str) -> Result<(RunRequest, bool), Problem> {
    body.selector
        .validate()
        .map_err(|e| Problem::invalid_field("selector", e.to_string()))?;
    if let Some(named) = &body.selector.tenant {
        if named != tenant {
            // Not a 403: another tenant's name must not be confirmable.
            return Err(Problem::invalid_field(
                "selector.tenant",
                "a run covers the caller's tenant only",
            ));
        }
    }
    if body.reason.trim().is_empty() {
        return Err(Problem::invalid_field("reason", "an empty reason"));
    }
    let trigger = body.trigger.unwrap_or(RunTrigger::Manual);
    if trigger == RunTrigger::Cron {
        return Err(Problem::invalid_field(
            "trigger",
            "cron runs are started by schedules",
        ));
    }
    Ok((
        RunRequest {
            tenant: tenant.to_string(),
            all_tenants: false,
            schedule: None,
            trigger,
            mode: body.mode,
            selector: body.selector,
            reason: Some(body.reason),
            priority: body.priority.unwrap_or(Priority::Normal),
            at: now(),
        },
        body.dry_run,
    ))
}

/// Start a run (or simulate one with `dryRun: true`).
#[utoipa::path(
    post,
    path = "/api/v1/runs",
    tag = "runs",
    request_body = RunBody,
    responses(
        (status = 201, description = "The run and its jobs, committed", body = RunPlanned),
        (status = 200, description = "A dry run, or a run committed before", body = RunPlanned),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field cannot be used (named in errors[].field)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn post_run(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<RunsWrite>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Body(body): Body,
) -> Response {
    let print = fingerprint(method.as_str(), &uri.to_string(), &body);
    let handle = async {
        let parsed: RunBody = json_body(&body)?;
        let (request, dry_run) = request_of(parsed, &principal.tenant)?;
        let answer = state.writer.run(request, dry_run).await?;
        let (status, created, run) = match answer.outcome {
            None => (StatusCode::OK, false, answer.plan.run),
            Some(RunOutcome::Committed { .. }) => (StatusCode::CREATED, true, answer.plan.run),
            Some(RunOutcome::AlreadyExists { run }) => (StatusCode::OK, false, *run),
        };
        to_value(
            status,
            &RunPlanned {
                run,
                jobs: answer.plan.jobs,
                dry_run,
                created,
                impact: dry_run.then(|| answer.impact.into_iter().map(Into::into).collect()),
            },
        )
    };
    state
        .idempotency
        .run(&principal.tenant, &headers, print, handle)
        .await
}

/// The caller's runs, oldest first (by creation time, then id).
#[utoipa::path(
    get,
    path = "/api/v1/runs",
    tag = "runs",
    params(PageParams),
    responses(
        (status = 200, body = inline(Page<serde_json::Value>)),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_runs(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<RunsRead>,
    Params(page): Params<PageParams>,
) -> Result<Json<Page<Run>>, Problem> {
    let mut runs = state.store.runs(Some(&principal.tenant)).await?;
    runs.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
    Ok(Json(page.page(runs, state.limits.max_page)?))
}

async fn own_run(state: &AppState, tenant: &str, id: &str) -> Result<Run, Problem> {
    match state.store.run(id).await? {
        Some(run) if run.tenant == tenant => Ok(run),
        _ => Err(Problem::not_found(format!("no run {id}"))),
    }
}

/// One of the caller's runs, with its jobs' current states.
#[utoipa::path(
    get,
    path = "/api/v1/runs/{id}",
    tag = "runs",
    params(("id" = String, Path, description = "Run id")),
    responses(
        (status = 200, body = RunView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_run(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<RunsRead>,
    Path(id): Path<String>,
) -> Result<Json<RunView>, Problem> {
    let run = own_run(&state, &principal.tenant, &id).await?;
    let mut job_states = BTreeMap::new();
    for job in &run.jobs {
        if let Some(job) = state.store.job(job).await? {
            *job_states
                .entry(job.state.as_str().to_string())
                .or_default() += 1;
        }
    }
    Ok(Json(RunView { run, job_states }))
}

/// Cancel a run: every job of it not yet finished is cancelled (a queued
/// job still in the queue is dropped by the worker that leases it, which
/// finds it cancelled).
#[utoipa::path(
    post,
    path = "/api/v1/runs/{id}/cancel",
    tag = "runs",
    params(("id" = String, Path, description = "Run id")),
    responses(
        (status = 200, body = RunCancelled),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run has already ended", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cancel_run(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<RunsWrite>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let print = fingerprint(method.as_str(), &uri.to_string(), &[]);
    let handle = async {
        let mut run = own_run(&state, &principal.tenant, &id).await?;
        if matches!(
            run.state,
            RunState::Cancelled | RunState::Completed | RunState::Error
        ) {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                super::problem::kinds::INVALID_REQUEST,
                format!("run {id} has already ended ({:?})", run.state).to_lowercase(),
            ));
        }
        let mut cancelled = Vec::new();
        for job in run.jobs.clone() {
            let Some(held) = state.store.job(&job).await? else {
                continue;
            };
            if job_control::cancel(&state, held).await?.is_none() {
                cancelled.push(job);
            }
        }
        let finished = run.jobs.len() - cancelled.len();
        run.state = RunState::Cancelled;
        run.counters
            .insert("cancelled".into(), cancelled.len() as u64);
        state.store.put_run(&run).await?;
        tracing::info!(run = run.id, cancelled = cancelled.len(), "run cancelled");
        to_value(
            StatusCode::OK,
            &RunCancelled {
                run,
                cancelled,
                finished,
            },
        )
    };
    state
        .idempotency
        .run(&principal.tenant, &headers, print, handle)
        .await
}
