//! Orchestration controls: an operator pauses a tenant's queue (its jobs keep
//! being planned and queued, and wait) and resumes it. The flag lives with
//! the queue ([`crate::queue::Queue::set_paused`]), so the server's own
//! workers and every `recheck worker` on a shared queue obey it. Needs
//! `scheduler.admin`, and only ever for the credential's own tenant.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{Admin, Authorized, Principal};
use super::extract::Body;
use super::problem::Problem;
use super::AppState;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TenantQueueState {
    pub tenant: String,
    /// The tenant's jobs are not handed out while true.
    pub paused: bool,
}

async fn set(
    state: &AppState,
    principal: &Principal,
    tenant: String,
    paused: bool,
) -> Result<Json<TenantQueueState>, Problem> {
    if tenant != principal.tenant {
        return Err(Problem::forbidden(format!(
            "a credential of {} controls only its own tenant",
            principal.tenant
        )));
    }
    let queue = state
        .queue
        .as_deref()
        .ok_or_else(|| Problem::unavailable("this server has no queue"))?;
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
