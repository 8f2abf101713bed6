//! Impact-set queries. Live ones (by advisory or alias, by artifact, by
//! purl) are answered by the engine as of the last closed window; what
//! changed since a window or sequence number is read from the delta ledger.
//! Every answer is cut to the caller's tenant, in a stable order, and paged.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::engine::ImpactQuery;
use crate::model::{Finding, ImpactDelta, LedgerPayload};

use super::auth::{Authorized, RunsRead};
use super::extract::{Page, PageParams, Params};
use super::problem::Problem;
use super::AppState;

/// One affected artifact of an advisory, with its matching components.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ArtifactImpact {
    pub artifact: String,
    /// Findings on the artifact's components, in `recheck scan`'s order.
    #[schema(value_type = Vec<Object>)]
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ArtifactRef {
    pub artifact: String,
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ArtifactQuery {
    /// Artifact id.
    pub artifact: String,
    #[serde(default)]
    pub offset: Option<usize>,
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PurlQuery {
    /// A package URL; any version of its package matches.
    pub purl: String,
    #[serde(default)]
    pub offset: Option<usize>,
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// Changes of windows after this one.
    #[serde(default)]
    pub since_window: Option<u64>,
    /// Changes of windows closed after this input-log sequence number.
    #[serde(default)]
    pub since_seq: Option<u64>,
    #[serde(default)]
    pub offset: Option<usize>,
    #[serde(default)]
    pub limit: Option<usize>,
}

/// What changed: the tenant's impact deltas, window by window.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Changes {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<ImpactDelta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<usize>,
    /// The last committed window read (0: none yet); ask with
    /// `since_window` set to it for what comes next.
    pub through_window: u64,
}

fn page_of(offset: Option<usize>, limit: Option<usize>) -> PageParams {
    PageParams { offset, limit }
}

/// Artifacts of the caller's tenant affected by an advisory (by its id or
/// any alias), each with its findings.
#[utoipa::path(
    get,
    path = "/api/v1/impact/advisories/{id}",
    tag = "impact",
    params(("id" = String, Path, description = "Advisory id or alias (e.g. a CVE)"), PageParams),
    responses(
        (status = 200, body = inline(Page<ArtifactImpact>)),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No advisory has this id or alias", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn by_advisory(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<RunsRead>,
    Path(id): Path<String>,
    Params(page): Params<PageParams>,
) -> Result<Json<Page<ArtifactImpact>>, Problem> {
    let answer = state
        .writer
        .query(ImpactQuery::Advisory(id.clone()))
        .await?;
    if !answer.known {
        return Err(Problem::not_found(format!(
            "no advisory has id or alias {id}"
        )));
    }
    let mut by_artifact: BTreeMap<String, Vec<Finding>> = BTreeMap::new();
    for f in answer.answer.findings {
        if f.tenant == principal.tenant {
            by_artifact.entry(f.artifact.clone()).or_default().push(f);
        }
    }
    let items = by_artifact
        .into_iter()
        .map(|(artifact, findings)| ArtifactImpact { artifact, findings })
        .collect();
    Ok(Json(page.page(items, state.limits.max_page)?))
}

/// The findings of one artifact of the caller's tenant.
#[utoipa::path(
    get,
    path = "/api/v1/impact/artifacts",
    tag = "impact",
    params(ArtifactQuery),
    responses(
        (status = 200, body = inline(Page<serde_json::Value>)),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The tenant has no such artifact", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn by_artifact(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<RunsRead>,
    Params(q): Params<ArtifactQuery>,
) -> Result<Json<Page<Finding>>, Problem> {
    let answer = state
        .writer
        .query(ImpactQuery::Artifact {
            tenant: principal.tenant.clone(),
            artifact: q.artifact.clone(),
        })
        .await?;
    if !answer.known {
        return Err(Problem::not_found(format!("no artifact {}", q.artifact)));
    }
    let findings: Vec<Finding> = answer
        .answer
        .findings
        .into_iter()
        .filter(|f| f.tenant == principal.tenant)
        .collect();
    Ok(Json(
        page_of(q.offset, q.limit).page(findings, state.limits.max_page)?,
    ))
}

/// Artifacts of the caller's tenant affected through a package (any version
/// of the purl's package).
#[utoipa::path(
    get,
    path = "/api/v1/impact/purls",
    tag = "impact",
    params(PurlQuery),
    responses(
        (status = 200, body = inline(Page<ArtifactRef>)),
        (status = 400, description = "Not a package URL", body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn by_purl(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<RunsRead>,
    Params(q): Params<PurlQuery>,
) -> Result<Json<Page<ArtifactRef>>, Problem> {
    let purl = crate::formats::purl::Purl::parse(&q.purl)
        .map_err(|e| Problem::bad_parameter("query.purl", format!("not a package URL: {e}")))?;
    if purl.ecosystem().is_none() {
        return Err(Problem::bad_parameter(
            "query.purl",
            format!("no OSV ecosystem is known for purl type {}", purl.ty),
        ));
    }
    let answer = state
        .writer
        .query(ImpactQuery::Purl(q.purl.clone()))
        .await?;
    let artifacts: Vec<ArtifactRef> = answer
        .answer
        .artifacts
        .into_iter()
        .filter(|(tenant, _)| *tenant == principal.tenant)
        .map(|(_, artifact)| ArtifactRef { artifact })
        .collect();
    Ok(Json(
        page_of(q.offset, q.limit).page(artifacts, state.limits.max_page)?,
    ))
}

/// The caller's impact deltas of the windows after `since_window` (or closed
/// after input-log seq `since_seq`), from the delta ledger, in window order.
#[utoipa::path(
    get,
    path = "/api/v1/impact/changes",
    tag = "impact",
    params(ChangesQuery),
    responses(
        (status = 200, body = Changes),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn changes(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<RunsRead>,
    Params(q): Params<ChangesQuery>,
) -> Result<Json<Changes>, Problem> {
    if q.since_window.is_some() && q.since_seq.is_some() {
        return Err(Problem::bad_parameter(
            "query.since_seq",
            "give since_window or since_seq, not both",
        ));
    }
    const PAGE: usize = 1000;
    let mut deltas = Vec::new();
    let mut through = 0;
    let mut next = 0;
    loop {
        let records = state.store.read_ledger(next, PAGE).await?;
        let Some(last) = records.last() else { break };
        next = last.entry.index + 1;
        for record in &records {
            through = record.entry.window;
            let after = match (q.since_window, q.since_seq) {
                (_, Some(seq)) => record.entry.seq > seq,
                (window, None) => record.entry.window > window.unwrap_or(0),
            };
            if !after {
                continue;
            }
            let payload: LedgerPayload =
                serde_json::from_slice(&record.payload).map_err(|e| Problem::internal(&e))?;
            deltas.extend(
                payload
                    .deltas
                    .into_iter()
                    .filter(|d| d.finding.tenant == principal.tenant),
            );
        }
        if records.len() < PAGE {
            break;
        }
    }
    let page = page_of(q.offset, q.limit).page(deltas, state.limits.max_page)?;
    Ok(Json(Changes {
        items: page.items,
        next_offset: page.next_offset,
        through_window: through,
    }))
}
