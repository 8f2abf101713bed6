//! Cron schedules over HTTP: create, read, replace and delete a tenant's
//! schedules. The log writer ticks the [`Scheduler`](crate::core::schedule)
//! every second, so a schedule stored here fires its runs inside `recheck
//! serve`; a run id is sha256(schedule, fire time) and the last fire time
//! moves in the run's own transaction, so nothing fires twice.
//!
//! A schedule is refused (422 naming the field) unless the scheduler could
//! fire it: five-field cron, IANA time zone, a valid selector that names no
//! other tenant. Ids are made by the server (a client-chosen id could name
//! another tenant's schedule); another tenant's schedule is a 404.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::core::runs::RunError;
use crate::core::schedule::{cursor_name, validate, CronSpec, ScheduleError};
use crate::model::{JobKind, Schedule, Selector};

use super::auth::{Authorized, RunsRead, RunsWrite};
use super::extract::{json_body, Body, Page, PageParams, Params};
use super::idempotency::{fingerprint, Outcome};
use super::problem::Problem;
use super::AppState;

fn utc_default() -> String {
    "UTC".into()
}

fn enabled_default() -> bool {
    true
}

fn reevaluate() -> JobKind {
    JobKind::Reevaluate
}

/// A schedule as a client writes it (POST creates, PUT replaces).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"cron": "30 2 * * *", "timezone": "Europe/Berlin", "selector": {"labels": {"env": "prod"}}, "mode": "reevaluate", "enabled": true}))]
pub struct ScheduleBody {
    /// Five fields: minute hour day-of-month month day-of-week
    /// (`*/15 9-17 * * MON-FRI`).
    #[schema(example = "30 2 * * *")]
    pub cron: String,
    /// IANA time zone the expression is read in (default `UTC`).
    #[serde(default = "utc_default")]
    pub timezone: String,
    /// Which of the caller's artifacts each run covers (as for runs).
    #[schema(value_type = Object)]
    pub selector: Selector,
    /// `reevaluate` (default) or `rescan`.
    #[serde(default = "reevaluate")]
    #[schema(value_type = String)]
    pub mode: JobKind,
    /// Default true.
    #[serde(default = "enabled_default")]
    pub enabled: bool,
}

/// A stored schedule with its last and next fire times.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScheduleView {
    #[schema(value_type = Object)]
    pub schedule: Schedule,
    /// UTC RFC 3339 of the last fire (absent: never fired).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_fire: Option<String>,
    /// UTC RFC 3339 of the next fire time (absent when disabled or never).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_fire: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScheduleDeleted {
    pub id: String,
    pub deleted: bool,
}

fn to_value<T: Serialize>(status: StatusCode, body: &T) -> Outcome {
    serde_json::to_value(body)
        .map(|v| (status, v))
        .map_err(|e| Problem::internal(&e))
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The schedule a body describes for `tenant`, checked as the scheduler
/// will check it; each refusal names its field.
fn schedule_of(
    body: ScheduleBody,
    tenant: &str,
    id: String,
    created_at: String,
) -> Result<Schedule, Problem> {
    if let Some(named) = &body.selector.tenant {
        if named != tenant {
            return Err(Problem::invalid_field(
                "selector.tenant",
                "a schedule covers the caller's tenant only",
            ));
        }
    }
    let schedule = Schedule {
        id,
        tenant: tenant.to_string(),
        cron: body.cron,
        timezone: body.timezone,
        mode: body.mode,
        selector: body.selector,
        enabled: body.enabled,
        created_at,
    };
    validate(&schedule).map_err(|e| match e {
        ScheduleError::Cron { reason, .. } => Problem::invalid_field("cron", reason),
        ScheduleError::TimeZone(_) => Problem::invalid_field("timezone", e.to_string()),
        ScheduleError::Run(RunError::Selector(s)) => {
            Problem::invalid_field("selector", s.to_string())
        }
        other => Problem::internal(&other),
    })?;
    Ok(schedule)
}

async fn view(state: &AppState, schedule: Schedule) -> Result<ScheduleView, Problem> {
    let last = state.store.cursor(&cursor_name(&schedule.id)).await?;
    let last = last
        .and_then(|s| i64::try_from(s).ok())
        .and_then(|s| Utc.timestamp_opt(s, 0).single());
    let created = DateTime::parse_from_rfc3339(&schedule.created_at)
        .map(|t| t.with_timezone(&Utc))
        .ok();
    let next = match (schedule.enabled, last.or(created)) {
        (true, Some(after)) => CronSpec::parse(&schedule.cron, &schedule.timezone)
            .ok()
            .and_then(|spec| spec.next_after(after)),
        _ => None,
    };
    Ok(ScheduleView {
        last_fire: last.map(stamp),
        next_fire: next.map(stamp),
        schedule,
    })
}

async fn own_schedule(state: &AppState, tenant: &str, id: &str) -> Result<Schedule, Problem> {
    match state.store.schedule(id).await? {
        Some(s) if s.tenant == tenant => Ok(s),
        _ => Err(Problem::not_found(format!("no schedule {id}"))),
    }
}

/// Create a schedule; its runs start at its fire times after now.
#[utoipa::path(
    post,
    path = "/api/v1/schedules",
    tag = "schedules",
    request_body = ScheduleBody,
    responses(
        (status = 201, body = ScheduleView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "cron, timezone or selector unusable (named in errors[].field)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn post_schedule(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<RunsWrite>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Body(body): Body,
) -> Response {
    let print = fingerprint(method.as_str(), &uri.to_string(), &body);
    let handle = async {
        let parsed: ScheduleBody = json_body(&body)?;
        let created_at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let id = {
            let mut h = Sha256::new();
            h.update(principal.tenant.as_bytes());
            h.update([0]);
            h.update(created_at.as_bytes());
            h.update([0]);
            h.update(&body);
            format!("sch-{}", &hex::encode(h.finalize())[..32])
        };
        let schedule = schedule_of(parsed, &principal.tenant, id, created_at)?;
        state.store.put_schedule(&schedule).await?;
        tracing::info!(
            schedule = schedule.id,
            tenant = schedule.tenant,
            cron = schedule.cron,
            "schedule created"
        );
        to_value(StatusCode::CREATED, &view(&state, schedule).await?)
    };
    state
        .idempotency
        .run(&principal.tenant, &headers, print, handle)
        .await
}

/// The caller's schedules, by id.
#[utoipa::path(
    get,
    path = "/api/v1/schedules",
    tag = "schedules",
    params(PageParams),
    responses(
        (status = 200, body = inline(Page<ScheduleView>)),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_schedules(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<RunsRead>,
    Params(page): Params<PageParams>,
) -> Result<Json<Page<ScheduleView>>, Problem> {
    let schedules = state.store.schedules(Some(&principal.tenant)).await?;
    let page = page.page(schedules, state.limits.max_page)?;
    let mut items = Vec::with_capacity(page.items.len());
    for s in page.items {
        items.push(view(&state, s).await?);
    }
    Ok(Json(Page {
        items,
        next_offset: page.next_offset,
    }))
}

/// One of the caller's schedules.
#[utoipa::path(
    get,
    path = "/api/v1/schedules/{id}",
    tag = "schedules",
    params(("id" = String, Path, description = "Schedule id")),
    responses(
        (status = 200, body = ScheduleView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_schedule(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<RunsRead>,
    Path(id): Path<String>,
) -> Result<Json<ScheduleView>, Problem> {
    let schedule = own_schedule(&state, &principal.tenant, &id).await?;
    Ok(Json(view(&state, schedule).await?))
}

/// Replace a schedule's cron, time zone, selector, mode and enabled flag
/// (its id, tenant, creation time and last fire time stay).
#[utoipa::path(
    put,
    path = "/api/v1/schedules/{id}",
    tag = "schedules",
    params(("id" = String, Path, description = "Schedule id")),
    request_body = ScheduleBody,
    responses(
        (status = 200, body = ScheduleView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn put_schedule(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<RunsWrite>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Body(body): Body,
) -> Response {
    let print = fingerprint(method.as_str(), &uri.to_string(), &body);
    let handle = async {
        let old = own_schedule(&state, &principal.tenant, &id).await?;
        let parsed: ScheduleBody = json_body(&body)?;
        let schedule = schedule_of(parsed, &principal.tenant, old.id, old.created_at)?;
        state.store.put_schedule(&schedule).await?;
        to_value(StatusCode::OK, &view(&state, schedule).await?)
    };
    state
        .idempotency
        .run(&principal.tenant, &headers, print, handle)
        .await
}

/// Delete a schedule (its runs stay).
#[utoipa::path(
    delete,
    path = "/api/v1/schedules/{id}",
    tag = "schedules",
    params(("id" = String, Path, description = "Schedule id")),
    responses(
        (status = 200, body = ScheduleDeleted),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_schedule(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<RunsWrite>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let print = fingerprint(method.as_str(), &uri.to_string(), &[]);
    let handle = async {
        let schedule = own_schedule(&state, &principal.tenant, &id).await?;
        let deleted = state.store.delete_schedule(&schedule.id).await?;
        to_value(
            StatusCode::OK,
            &ScheduleDeleted {
                id: schedule.id,
                deleted,
            },
        )
    };
    state
        .idempotency
        .run(&principal.tenant, &headers, print, handle)
        .await
}
