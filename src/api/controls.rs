//! Orchestration controls: an operator pauses a tenant's queue (its jobs keep
//! being planned and queued, and wait), resumes it, and sets its throughput
//! limits (jobs leased at once, deliveries per second). Both live with the
//! queue ([`crate::queue::Queue::set_paused`], [`crate::queue::Queue::set_limit`]),
//! so the server's own workers and every `recheck worker` on a shared queue
//! obey them. Needs `scheduler.admin`, and only ever for the credential's
//! own tenant.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Admin, Authorized, Principal};
use super::extract::Body;
use super::problem::{kinds, Problem};
use super::AppState;
use crate::queue::{ErrorKind, Queue, TenantLimit};

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
