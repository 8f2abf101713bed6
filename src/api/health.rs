//! Probes for orchestrators; they need no credential and reveal no tenant
//! data. Ready means the store answers and the engine has applied every
//! record of the input log into a committed window.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    pub store: bool,
    /// Every record of the input log is applied and in a committed window.
    pub engine_caught_up: bool,
    /// The store's last input-log sequence number.
    pub log_seq: Option<u64>,
    pub applied_seq: u64,
    pub last_window: u64,
}

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    security(()),
    responses((status = 200, body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The store is reachable and the engine caught up with the log (503 until then).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    security(()),
    responses((status = 200, body = Readiness), (status = 503, body = Readiness))
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let log_seq = state.store.last_seq().await.ok();
    let status = &state.writer.status;
    let applied_seq = status.applied_seq.load(Ordering::SeqCst);
    let engine_caught_up = status.caught_up() && log_seq == Some(applied_seq);
    let ready = log_seq.is_some() && engine_caught_up;
    (
        if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(Readiness {
            status: if ready { "ready" } else { "not_ready" },
            store: log_seq.is_some(),
            engine_caught_up,
            log_seq,
            applied_seq,
            last_window: status.last_window.load(Ordering::SeqCst),
        }),
    )
}
