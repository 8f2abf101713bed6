//! Runtime hooks: `POST /api/v1/artifacts/{id}/runtime` with what a
//! deployment system saw (deployed, running, stopped; cluster and
//! namespace). The event is recorded as the artifact's metadata through the
//! input log and applied at once; an artifact that starts running has its
//! pending jobs escalated and, with findings but no verdict, gets a recheck
//! (the rules are in [`crate::core::runtime`]).
//!
//! Needs `scheduler.ingest`: a runtime event is an input like an SBOM's
//! labels, sent by the same deployment pipelines. The artifact must be one of
//! the caller's (another tenant's is a 404).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::core::runtime::RuntimeEvent;
use crate::model::{RecheckJob, Run, RuntimeState};

use super::auth::{Authorized, Ingest};
use super::extract::{json_body, Body};
use super::idempotency::{fingerprint, Outcome};
use super::problem::Problem;
use super::AppState;

/// What was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeEventKind {
    Deployed,
    Running,
    Stopped,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"event": "running", "cluster": "eu-1", "namespace": "payments"}))]
pub struct RuntimeBody {
    pub event: RuntimeEventKind,
    /// Kept as the artifact's `cluster` label.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Kept as the artifact's `namespace` label (what `namespaces`
    /// selectors read).
    #[serde(default)]
    pub namespace: Option<String>,
}

/// A recheck run started for the artifact.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Recheck {
    #[schema(value_type = Object)]
    pub run: Run,
    #[schema(value_type = Vec<Object>)]
    pub jobs: Vec<RecheckJob>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RuntimeRecorded {
    pub artifact: String,
    /// unknown, deployed, running or stopped.
    pub previous: String,
    pub state: String,
    /// The metadata record's seq and the window that applied it.
    pub seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<u64>,
    /// Pending jobs escalated (their `escalation` says to what).
    #[schema(value_type = Vec<Object>)]
    pub escalated: Vec<RecheckJob>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recheck: Option<Recheck>,
}

fn to_value<T: Serialize>(status: StatusCode, body: &T) -> Outcome {
    serde_json::to_value(body)
        .map(|v| (status, v))
        .map_err(|e| Problem::internal(&e))
}

/// Record where one of the caller's artifacts runs.
#[utoipa::path(
    post,
    path = "/api/v1/artifacts/{id}/runtime",
    tag = "ingest",
    params(("id" = String, Path, description = "Artifact id (as returned when its SBOM was accepted)")),
    request_body = RuntimeBody,
    responses(
        (status = 200, description = "Recorded and applied", body = RuntimeRecorded),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn post_runtime(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<Ingest>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Body(body): Body,
) -> Response {
    let print = fingerprint(method.as_str(), &uri.to_string(), &body);
    let handle = async {
        let parsed: RuntimeBody = json_body(&body)?;
        for (field, value) in [
            ("cluster", &parsed.cluster),
            ("namespace", &parsed.namespace),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(Problem::invalid_field(field, "an empty value"));
            }
        }
        let runtime = match parsed.event {
            RuntimeEventKind::Deployed => RuntimeState::Deployed,
            RuntimeEventKind::Running => RuntimeState::Running,
            RuntimeEventKind::Stopped => RuntimeState::Stopped,
        };
        let event = RuntimeEvent {
            tenant: principal.tenant.clone(),
            artifact: id.clone(),
            state: runtime,
            cluster: parsed.cluster,
            namespace: parsed.namespace,
        };
        let answer = state.writer.runtime(event).await?;
        to_value(
            StatusCode::OK,
            &RuntimeRecorded {
                artifact: id.clone(),
                previous: answer.previous.as_str().into(),
                state: runtime.as_str().into(),
                seq: answer.seq,
                window: answer.window,
                escalated: answer.escalated,
                recheck: answer.recheck.map(|plan| Recheck {
                    run: plan.run,
                    jobs: plan.jobs,
                }),
            },
        )
    };
    state
        .idempotency
        .run(&principal.tenant, &headers, print, handle)
        .await
}
