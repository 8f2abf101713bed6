//! Ingest: documents become input-log records. A request is parsed and
//! validated whole before anything is appended, so a rejected request writes
//! nothing; an accepted one answers with the sequence numbers its records
//! got (`202`), or with `?wait=true` once the window that applies them has
//! closed (`200`, with that window).
//!
//! Advisories and feed VEX are global (they change every tenant's impact),
//! so writing them needs `scheduler.admin`; SBOMs and tenant VEX need
//! `scheduler.ingest` and always belong to the caller's tenant.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use crate::engine::record::InputRecord;
use crate::formats::{self, ErrorKind, FormatError};
use crate::model::{RuntimeState, Scope};

use super::auth::{Admin, Authorized, Ingest, Principal};
use super::config::Scope as ApiScope;
use super::extract::{Body, Params};
use super::idempotency::{fingerprint, Outcome};
use super::problem::{kinds, Problem};
use super::writer::{Appended, Expect, WriteError};
use super::AppState;

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitParams {
    /// Answer only once the window that applies this write has closed.
    #[serde(default)]
    pub wait: bool,
}

/// Where one document of a batch went.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DocumentResult {
    /// Position in the request (0 for a single document).
    pub index: usize,
    pub id: String,
    /// Input-log sequence number of its record.
    pub seq: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdvisoriesAccepted {
    pub results: Vec<DocumentResult>,
    /// The window that applied them (with `?wait=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<u64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Written {
    pub seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<u64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VexAccepted {
    /// The document name its statements are kept (and replaced) under.
    pub document: String,
    /// `tenant` or `global`.
    pub scope: String,
    pub statements: usize,
    pub seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<u64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SbomAccepted {
    /// The artifact id everything else refers to (its digest when known).
    pub artifact: String,
    pub components: usize,
    /// The SBOM record's seq, then the metadata record's (when labels or a
    /// repository were given).
    pub seqs: Vec<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<u64>,
}

/// An SBOM with the artifact metadata Recheck cannot read from it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SbomUpload {
    /// CycloneDX JSON 1.2–1.6 or SPDX 2.2/2.3 JSON.
    #[schema(value_type = Object)]
    pub sbom: serde_json::Value,
    /// Labels for selectors and label queries.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Source repository; kept as the label `repository`.
    #[serde(default)]
    pub repository: Option<String>,
    /// `sha256:<hex>` of the image or file; must agree with the SBOM when it
    /// states one, and becomes the artifact id when it does not.
    #[serde(default)]
    pub digest: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VexParams {
    /// The name to keep the statements under (a later document with the same
    /// name replaces them); default: the document's own id (OpenVEX `@id`,
    /// CSAF `document.tracking.id`, CycloneDX `serialNumber`), else its sha256.
    #[serde(default)]
    pub document: Option<String>,
    /// `tenant` (default) or `global` (feed VEX, needs scheduler.admin).
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub wait: bool,
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VexDocumentParams {
    pub document: String,
    /// `tenant` (default) or `global`.
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub wait: bool,
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ArtifactParams {
    /// Artifact id (as returned when its SBOM was accepted).
    pub artifact: String,
    #[serde(default)]
    pub wait: bool,
}

impl From<WriteError> for Problem {
    fn from(e: WriteError) -> Problem {
        match e {
            WriteError::NotFound(what) => Problem::not_found(format!("{what} not found")),
            WriteError::Invalid { field, detail } => Problem::invalid_field(&field, detail),
            WriteError::Failed(_) | WriteError::Stopped => {
                Problem::unavailable(format!("{e}; nothing more is accepted"))
            }
        }
    }
}

/// 202 with the seqs, or with `wait` 200 once applied.
pub(super) async fn settle(appended: Appended) -> Result<(StatusCode, Option<u64>), Problem> {
    match appended.applied {
        None => Ok((StatusCode::ACCEPTED, None)),
        Some(rx) => {
            let window = rx
                .await
                .map_err(|_| Problem::unavailable("the log writer failed before applying"))?;
            Ok((StatusCode::OK, Some(window)))
        }
    }
}

pub(super) fn to_value<T: Serialize>(status: StatusCode, body: &T) -> Outcome {
    serde_json::to_value(body)
        .map(|v| (status, v))
        .map_err(|e| Problem::internal(&e))
}

pub(super) fn request_fingerprint(method: &Method, uri: &Uri, body: &[u8]) -> String {
    fingerprint(method.as_str(), &uri.to_string(), body)
}

pub(super) fn parse_scope(scope: Option<&str>, principal: &Principal) -> Result<Scope, Problem> {
    match scope.unwrap_or("tenant") {
        "tenant" => Ok(Scope::Tenant(principal.tenant.clone())),
        "global" => {
            principal.require(ApiScope::Admin)?;
            Ok(Scope::Global)
        }
        other => Err(Problem::bad_parameter(
            "query.scope",
            format!("scope must be `tenant` or `global`, not {other:?}"),
        )),
    }
}

fn one_seq(appended: &Appended) -> Result<u64, Problem> {
    appended
        .seqs
        .first()
        .copied()
        .ok_or_else(|| Problem::internal(&"the log writer assigned no sequence number"))
}

/// Ingest one OSV advisory, or a JSON array of them (all or nothing).
#[utoipa::path(
    post,
    path = "/api/v1/advisories",
    tag = "ingest",
    params(WaitParams),
    request_body(content = Object, description = "An OSV advisory or an array of them", content_type = "application/json"),
    responses(
        (status = 202, description = "Appended to the input log", body = AdvisoriesAccepted),
        (status = 200, description = "Appended and applied (`wait=true`)", body = AdvisoriesAccepted),
        (status = 400, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid documents, each named with its field", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn post_advisories(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<Admin>,
    Params(params): Params<WaitParams>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Body(body): Body,
) -> Response {
    let print = request_fingerprint(&method, &uri, &body);
    let handle = async {
        let value: serde_json::Value = FormatError::deserialize("body", &body)
            .map_err(|e| Problem::invalid_documents(vec![("body".into(), e)]))?;
        let documents: Vec<(String, Vec<u8>)> = match value {
            serde_json::Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    (
                        format!("body[{i}]"),
                        serde_json::to_vec(v).unwrap_or_default(),
                    )
                })
                .collect(),
            _ => vec![("body".to_string(), body.to_vec())],
        };
        if documents.is_empty() {
            return Err(Problem::bad_parameter("body", "an empty batch"));
        }
        if documents.len() > state.limits.max_batch {
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                kinds::TOO_LARGE,
                format!(
                    "{} documents; at most {} per request",
                    documents.len(),
                    state.limits.max_batch
                ),
            ));
        }
        let mut advisories = Vec::new();
        let mut errors = Vec::new();
        for (location, bytes) in &documents {
            match formats::osv::parse_advisory(location, bytes) {
                Ok(a) => advisories.push(a),
                Err(e) => errors.push((location.clone(), e)),
            }
        }
        if !errors.is_empty() {
            return Err(Problem::invalid_documents(errors));
        }
        let ids: Vec<String> = advisories.iter().map(|a| a.id.clone()).collect();
        let records = advisories
            .into_iter()
            .map(|advisory| InputRecord::Advisory { advisory })
            .collect();
        let appended = state.writer.append(records, None, params.wait).await?;
        let results = ids
            .into_iter()
            .zip(&appended.seqs)
            .enumerate()
            .map(|(index, (id, seq))| DocumentResult {
                index,
                id,
                seq: *seq,
            })
            .collect();
        let (status, window) = settle(appended).await?;
        to_value(status, &AdvisoriesAccepted { results, window })
    };
    state
        .idempotency
        .run(&principal.tenant, &headers, print, handle)
        .await
}

/// Remove an advisory (its findings are retracted); to keep it but mark it
/// withdrawn, post it again with `withdrawn` set.
#[utoipa::path(
    delete,
    path = "/api/v1/advisories/{id}",
    tag = "ingest",
    params(("id" = String, Path, description = "Advisory id"), WaitParams),
    responses(
        (status = 202, body = Written),
        (status = 200, body = Written),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_advisory(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<Admin>,
    Path(id): Path<String>,
    Params(params): Params<WaitParams>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let print = request_fingerprint(&method, &uri, &[]);
    let handle = async {
        let record = InputRecord::AdvisoryRemoved { id: id.clone() };
        let appended = state
            .writer
            .append(vec![record], Some(Expect::Advisory(id)), params.wait)
            .await?;
        let seq = one_seq(&appended)?;
        let (status, window) = settle(appended).await?;
        to_value(status, &Written { seq, window })
    };
    state
        .idempotency
        .run(&principal.tenant, &headers, print, handle)
        .await
}

/// The name a VEX document is kept under when the caller gives none.
pub(super) fn vex_document_name(body: &[u8]) -> String {
    let value: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let own = value.as_ref().and_then(|v| {
        v.get("@id")
            .or_else(|| v.pointer("/document/tracking/id"))
            .or_else(|| v.get("serialNumber"))
            .and_then(|id| id.as_str())
            .filter(|id| !id.is_empty())
            .map(str::to_string)
    });
    own.unwrap_or_else(|| format!("sha256:{}", hex::encode(Sha256::digest(body))))
}

/// Ingest a VEX document (OpenVEX, CSAF 2.0 or CycloneDX VEX); it replaces
/// the statements of an earlier document with the same name.
#[utoipa::path(
    post,
    path = "/api/v1/vex",
    tag = "ingest",
    params(VexParams),
    request_body(content = Object, description = "An OpenVEX, CSAF 2.0 or CycloneDX VEX document", content_type = "application/json"),
    responses(
        (status = 202, body = VexAccepted),
        (status = 200, body = VexAccepted),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn post_vex(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<Ingest>,
    Params(params): Params<VexParams>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Body(body): Body,
) -> Response {
    let print = request_fingerprint(&method, &uri, &body);
    let handle = async {
        let scope = parse_scope(params.scope.as_deref(), &principal)?;
        let document = match params.document {
            Some(d) if d.is_empty() => {
                return Err(Problem::bad_parameter(
                    "query.document",
                    "an empty document name",
                ))
            }
            Some(d) => d,
            None => vex_document_name(&body),
        };
        let statements = formats::parse_vex(&document, &body, scope.clone())
            .map_err(|e| Problem::invalid_documents(vec![("body".into(), e)]))?;
        let count = statements.len();
        let record = InputRecord::Vex {
            scope: scope.clone(),
            document: document.clone(),
            statements,
        };
        let appended = state.writer.append(vec![record], None, params.wait).await?;
        let seq = one_seq(&appended)?;
        let (status, window) = settle(appended).await?;
        to_value(
            status,
            &VexAccepted {
                document,
                scope: scope_name(&scope).into(),
                statements: count,
                seq,
                window,
            },
        )
    };
    state
        .idempotency
        .run(&principal.tenant, &headers, print, handle)
        .await
}

fn scope_name(scope: &Scope) -> &'static str {
    match scope {
        Scope::Global => "global",
        Scope::Tenant(_) => "tenant",
    }
}

/// Remove a VEX document's statements.
#[utoipa::path(
    delete,
    path = "/api/v1/vex",
    tag = "ingest",
    params(VexDocumentParams),
    responses(
        (status = 202, body = Written),
        (status = 200, body = Written),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_vex(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<Ingest>,
    Params(params): Params<VexDocumentParams>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let print = request_fingerprint(&method, &uri, &[]);
    let handle = async {
        let scope = parse_scope(params.scope.as_deref(), &principal)?;
        let record = InputRecord::VexRemoved {
            scope: scope.clone(),
            document: params.document.clone(),
        };
        let expect = Expect::Vex {
            scope,
            document: params.document,
        };
        let appended = state
            .writer
            .append(vec![record], Some(expect), params.wait)
            .await?;
        let seq = one_seq(&appended)?;
        let (status, window) = settle(appended).await?;
        to_value(status, &Written { seq, window })
    };
    state
        .idempotency
        .run(&principal.tenant, &headers, print, handle)
        .await
}

fn is_sha256_digest(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The SBOM and metadata of an upload: either `{"sbom": …, "labels": …}` or
/// a bare SBOM document.
fn parse_upload(body: &[u8], tenant: &str) -> Result<(crate::model::Sbom, SbomUpload), Problem> {
    let value: serde_json::Value = FormatError::deserialize("body", body)
        .map_err(|e| Problem::invalid_documents(vec![("body".into(), e)]))?;
    let bare = value.get("bomFormat").is_some() || value.get("spdxVersion").is_some();
    let upload: SbomUpload = if bare {
        SbomUpload {
            sbom: value,
            labels: BTreeMap::new(),
            repository: None,
            digest: None,
        }
    } else {
        FormatError::deserialize("body", body)
            .map_err(|e| Problem::invalid_documents(vec![("body".into(), e)]))?
    };
    let location = if bare { "body" } else { "body.sbom" };
    let bytes = serde_json::to_vec(&upload.sbom).map_err(|e| Problem::internal(&e))?;
    let mut sbom = formats::parse_sbom(location, &bytes, Scope::Tenant(tenant.to_string()))
        .map_err(|e| Problem::invalid_documents(vec![(location.into(), e)]))?;
    let field_error = |field: &str, message: String| {
        Problem::invalid_documents(vec![(
            "body".into(),
            FormatError::new("body", field, ErrorKind::Invalid, message),
        )])
    };
    if let Some(digest) = &upload.digest {
        if !is_sha256_digest(digest) {
            return Err(field_error(
                "digest",
                "expected sha256:<64 hex digits>".into(),
            ));
        }
        match &sbom.artifact.digest {
            Some(stated) if !stated.eq_ignore_ascii_case(digest) => {
                return Err(field_error(
                    "digest",
                    format!("the SBOM states digest {stated}"),
                ))
            }
            Some(_) => {}
            None => {
                let old = std::mem::replace(&mut sbom.artifact.id, digest.to_ascii_lowercase());
                sbom.artifact.digest = Some(sbom.artifact.id.clone());
                sbom.artifact.references.push(old);
                sbom.artifact.references.sort();
                sbom.artifact.references.dedup();
            }
        }
    }
    if let Some(key) = upload.labels.keys().find(|k| k.is_empty()) {
        return Err(field_error(
            &format!("labels.{key}"),
            "an empty label key".into(),
        ));
    }
    if upload.repository.is_some() && upload.labels.contains_key("repository") {
        return Err(field_error(
            "labels.repository",
            "give the repository once (field `repository`)".into(),
        ));
    }
    Ok((sbom, upload))
}

/// Ingest an SBOM (CycloneDX or SPDX) for the caller's tenant, with labels,
/// repository and digest; it replaces the artifact's earlier SBOM. Labels
/// replace the artifact's earlier labels (and its runtime state, which is set
/// by the runtime hooks).
#[utoipa::path(
    post,
    path = "/api/v1/sboms",
    tag = "ingest",
    params(WaitParams),
    request_body(content = SbomUpload, description = "An SBOM with metadata, or a bare SBOM document"),
    responses(
        (status = 202, body = SbomAccepted),
        (status = 200, body = SbomAccepted),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn post_sbom(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<Ingest>,
    Params(params): Params<WaitParams>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Body(body): Body,
) -> Response {
    let print = request_fingerprint(&method, &uri, &body);
    let handle = async {
        let tenant = principal.tenant.clone();
        let (sbom, upload) = parse_upload(&body, &tenant)?;
        let artifact = sbom.artifact.id.clone();
        let components = sbom.components.len();
        let mut labels = upload.labels;
        if let Some(repository) = upload.repository {
            labels.insert("repository".into(), repository);
        }
        let mut records = vec![InputRecord::Sbom {
            tenant: tenant.clone(),
            sbom,
        }];
        if !labels.is_empty() {
            records.push(InputRecord::ArtifactMetadata {
                tenant,
                artifact: artifact.clone(),
                labels,
                runtime: RuntimeState::Unknown,
            });
        }
        let appended = state.writer.append(records, None, params.wait).await?;
        let seqs = appended.seqs.clone();
        let (status, window) = settle(appended).await?;
        to_value(
            status,
            &SbomAccepted {
                artifact,
                components,
                seqs,
                window,
            },
        )
    };
    state
        .idempotency
        .run(&principal.tenant, &headers, print, handle)
        .await
}

/// Remove an artifact of the caller's tenant (its SBOM and metadata).
#[utoipa::path(
    delete,
    path = "/api/v1/artifacts",
    tag = "ingest",
    params(ArtifactParams),
    responses(
        (status = 202, body = Written),
        (status = 200, body = Written),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_artifact(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<Ingest>,
    Params(params): Params<ArtifactParams>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let print = request_fingerprint(&method, &uri, &[]);
    let handle = async {
        let tenant = principal.tenant.clone();
        let record = InputRecord::ArtifactRemoved {
            tenant: tenant.clone(),
            artifact: params.artifact.clone(),
        };
        let expect = Expect::Artifact {
            tenant,
            artifact: params.artifact,
        };
        let appended = state
            .writer
            .append(vec![record], Some(expect), params.wait)
            .await?;
        let seq = one_seq(&appended)?;
        let (status, window) = settle(appended).await?;
        to_value(status, &Written { seq, window })
    };
    state
        .idempotency
        .run(&principal.tenant, &headers, print, handle)
        .await
}
