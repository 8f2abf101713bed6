//! `POST /api/v1/whatif`: what applying an OSV advisory or a VEX document
//! would change for the caller's artifacts (findings added and removed per
//! artifact, and the recheck jobs the planner would make), without applying
//! it. The simulation ([`crate::core::whatif`]) reads the store's current
//! inputs and runs the reference matcher with and without the document; it
//! writes nothing and does not go near the log writer or the engine.
//!
//! Needs `scheduler.runs.write` (it plans jobs, as a dry run does); a
//! global-scope VEX document, as for ingest, needs `scheduler.admin`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::core::planner::Planner;
use crate::core::whatif::{what_if, Change};
use crate::formats;
use crate::model::{ImpactDelta, ImpactFinding, RecheckJob};

use super::auth::{Authorized, RunsWrite};
use super::extract::{json_body, Body};
use super::ingest::{parse_scope, vex_document_name};
use super::problem::Problem;
use super::AppState;

/// One document to simulate: `advisory` or `vex`, not both.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"advisory": {"schema_version": "1.6.0", "id": "EXAMPLE-2026-1", "modified": "2026-12-01T00:00:00Z", "aliases": ["CVE-2026-0001"], "affected": [{"package": {"ecosystem": "PyPI", "name": "jinja2"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.11.3"}]}]}]}}))]
pub struct WhatIfBody {
    /// An OSV advisory (a new one, or a new version of one held).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub advisory: Option<serde_json::Value>,
    /// An OpenVEX, CSAF 2.0 or CycloneDX VEX document.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub vex: Option<serde_json::Value>,
    /// The name the VEX document would be kept under (as `document=` on
    /// ingest; default its own id): one held under it is replaced.
    #[serde(default)]
    pub document: Option<String>,
    /// `tenant` (default) or `global` for the VEX document.
    #[serde(default)]
    pub scope: Option<String>,
}

/// One artifact's findings that would appear or go away.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ArtifactChange {
    pub artifact: String,
    #[schema(value_type = Vec<Object>)]
    pub added: Vec<ImpactFinding>,
    #[schema(value_type = Vec<Object>)]
    pub removed: Vec<ImpactFinding>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WhatIfResult {
    /// The last committed window: the state compared against.
    pub as_of_window: Option<u64>,
    /// The window the document would land in if appended now alone.
    pub window: u64,
    /// Per artifact, by id.
    pub artifacts: Vec<ArtifactChange>,
    /// The same changes as the ledger would record them (`/impact/changes`'s shape).
    #[schema(value_type = Vec<Object>)]
    pub deltas: Vec<ImpactDelta>,
    /// The jobs the window would plan.
    #[schema(value_type = Vec<Object>)]
    pub jobs: Vec<RecheckJob>,
    /// The caller's artifacts the simulation scanned.
    pub scanned: usize,
    /// The VEX document name used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
}

/// Simulate an advisory or VEX document and report what would change.
#[utoipa::path(
    post,
    path = "/api/v1/whatif",
    tag = "runs",
    request_body = WhatIfBody,
    responses(
        (status = 200, body = WhatIfResult),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The document is invalid, or neither or both were given", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn post_whatif(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<RunsWrite>,
    Body(body): Body,
) -> Result<Json<WhatIfResult>, Problem> {
    let parsed: WhatIfBody = json_body(&body)?;
    let encode = |v: &serde_json::Value| serde_json::to_vec(v).map_err(|e| Problem::internal(&e));
    let (change, document) = match (&parsed.advisory, &parsed.vex) {
        (Some(advisory), None) => {
            if parsed.document.is_some() || parsed.scope.is_some() {
                return Err(Problem::invalid_field(
                    "document",
                    "document and scope name a VEX document; an advisory has neither",
                ));
            }
            let advisory = formats::osv::parse_advisory("body.advisory", &encode(advisory)?)
                .map_err(|e| Problem::invalid_documents(vec![("body.advisory".into(), e)]))?;
            (Change::Advisory(Box::new(advisory)), None)
        }
        (None, Some(vex)) => {
            let scope =
                parse_scope(parsed.scope.as_deref(), &principal).map_err(|p| match p.status {
                    400 => Problem::invalid_field("scope", "scope must be `tenant` or `global`"),
                    _ => p,
                })?;
            let bytes = encode(vex)?;
            let document = match parsed.document {
                Some(d) if d.is_empty() => {
                    return Err(Problem::invalid_field("document", "an empty document name"))
                }
                Some(d) => d,
                None => vex_document_name(&bytes),
            };
            let statements = formats::parse_vex(&document, &bytes, scope.clone())
                .map_err(|e| Problem::invalid_documents(vec![("body.vex".into(), e)]))?;
            (
                Change::Vex {
                    scope,
                    document: document.clone(),
                    statements,
                },
                Some(document),
            )
        }
        _ => {
            return Err(Problem::invalid_field(
                "advisory",
                "give exactly one of `advisory` and `vex`",
            ))
        }
    };
    let result = what_if(
        state.store.as_ref(),
        &principal.tenant,
        &change,
        &Planner::default(),
        chrono::Utc::now(),
    )
    .await?;
    let mut by_artifact: BTreeMap<String, ArtifactChange> = BTreeMap::new();
    for d in &result.deltas {
        let entry = by_artifact
            .entry(d.finding.artifact.clone())
            .or_insert_with(|| ArtifactChange {
                artifact: d.finding.artifact.clone(),
                added: Vec::new(),
                removed: Vec::new(),
            });
        match d.diff > 0 {
            true => entry.added.push(d.finding.clone()),
            false => entry.removed.push(d.finding.clone()),
        }
    }
    Ok(Json(WhatIfResult {
        as_of_window: result.as_of_window,
        window: result.window,
        artifacts: by_artifact.into_values().collect(),
        deltas: result.deltas,
        jobs: result.jobs,
        scanned: result.artifacts,
        document,
    }))
}
