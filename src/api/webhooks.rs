//! Feed webhooks: upstream services (an advisory exporter, a VEX exporter)
//! push their export events here instead of calling the ingest API with a
//! credential. A request names its tenant (`X-Recheck-Tenant`) and is signed
//! with that tenant's configured secret: `X-Recheck-Signature:
//! sha256=<hex HMAC-SHA256 of the raw body>`, checked in constant time
//! before the body is parsed. Each tenant may call `max_requests` times per
//! `window_secs` (a sliding window); beyond that the answer is 429 with
//! `Retry-After`. Writing the global feed (advisories, global VEX) needs a
//! secret marked `feed = true`.
//!
//! An event is parsed whole before anything is appended, like the ingest
//! API, and honours `Idempotency-Key` and `?wait=true` the same way.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;

use crate::engine::record::InputRecord;
use crate::formats::{self, FormatError};
use crate::model::Scope;

use super::config::{WebhookConfig, WebhookSecret};
use super::extract::{Body, Params};
use super::ingest::{request_fingerprint, settle, to_value, vex_document_name, WaitParams};
use super::problem::{kinds, Problem};
use super::AppState;

pub const TENANT_HEADER: &str = "x-recheck-tenant";
pub const SIGNATURE_HEADER: &str = "x-recheck-signature";

/// The configured secrets and each tenant's recent calls.
#[derive(Debug, Default)]
pub struct Webhooks {
    config: WebhookConfig,
    recent: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// `sha256=<hex>` of `body` under `secret`: what a sender puts in
/// `X-Recheck-Signature`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Webhooks {
    pub fn new(config: WebhookConfig) -> Webhooks {
        Webhooks {
            config,
            recent: Mutex::default(),
        }
    }

    /// The secret that signed `body`, or 401 (one answer for an unknown
    /// tenant, a missing or malformed header and a wrong signature).
    fn authenticate(&self, headers: &HeaderMap, body: &[u8]) -> Result<&WebhookSecret, Problem> {
        let refused = || Problem::unauthenticated("missing or invalid webhook signature");
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let tenant = text(TENANT_HEADER).ok_or_else(refused)?;
        let given = text(SIGNATURE_HEADER)
            .and_then(|s| s.strip_prefix("sha256="))
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(refused)?;
        let source = self
            .config
            .secrets
            .iter()
            .find(|s| s.tenant == tenant)
            .ok_or_else(refused)?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(source.secret.as_bytes())
            .map_err(|_| refused())?;
        mac.update(body);
        mac.verify_slice(&given).map_err(|_| refused())?;
        Ok(source)
    }

    /// Counts a call of `tenant`; 429 with `Retry-After` (whole seconds
    /// until the oldest call leaves the window) when it has none left.
    fn admit(&self, tenant: &str) -> Result<(), Refused> {
        let window = Duration::from_secs(self.config.window_secs);
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let calls = recent.entry(tenant.to_string()).or_default();
        while calls
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            calls.pop_front();
        }
        if calls.len() < self.config.max_requests as usize {
            calls.push_back(now);
            return Ok(());
        }
        let wait = calls
            .front()
            .map_or(window, |t| window.saturating_sub(now.duration_since(*t)));
        let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
        let problem = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            kinds::RATE_LIMITED,
            format!(
                "tenant {tenant} made {} webhook calls within {} s; retry after {seconds} s",
                self.config.max_requests, self.config.window_secs
            ),
        );
        Err(Refused(problem, Some(seconds)))
    }

    /// Signature, then rate limit: a forged request spends no tenant's
    /// budget.
    fn check(&self, headers: &HeaderMap, body: &[u8]) -> Result<WebhookSecret, Refused> {
        let source = self
            .authenticate(headers, body)
            .map_err(|p| Refused(p, None))?;
        self.admit(&source.tenant)?;
        Ok(source.clone())
    }
}

/// A refused call, with the seconds to wait when it was rate limited.
#[derive(Debug)]
struct Refused(Problem, Option<u64>);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let mut response = self.0.into_response();
        if let Some(seconds) = self.1 {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// An advisory exporter's event: advisories added or changed, and ids
/// removed, since its previous export.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdvisoryExport {
    /// The exporter's id of this export (echoed back).
    pub export_id: String,
    /// OSV advisories.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub advisories: Vec<serde_json::Value>,
    /// Ids of advisories the feed no longer carries.
    #[serde(default)]
    pub removed: Vec<String>,
}

/// A VEX exporter's event: documents added or replaced, and names removed.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VexExport {
    pub export_id: String,
    /// `tenant` (the signer's tenant, default) or `global` (needs a feed
    /// secret).
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub documents: Vec<VexExportDocument>,
    /// Names of documents whose statements are withdrawn.
    #[serde(default)]
    pub removed: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VexExportDocument {
    /// The name its statements are kept under (default: the document's own
    /// id, else its sha256).
    #[serde(default)]
    pub name: Option<String>,
    /// OpenVEX, CSAF 2.0 or CycloneDX VEX.
    #[schema(value_type = Object)]
    pub document: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportAccepted {
    pub export_id: String,
    /// Input-log sequence numbers of the event's records, in order.
    pub seqs: Vec<u64>,
    /// The window that applied them (with `wait=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<u64>,
}

fn parse_event<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    FormatError::deserialize("body", body)
        .map_err(|e| Problem::invalid_documents(vec![("body".into(), e)]))
}

async fn append(
    state: &AppState,
    export_id: String,
    records: Vec<InputRecord>,
    wait: bool,
) -> super::idempotency::Outcome {
    if records.is_empty() {
        return Err(Problem::bad_parameter("body", "an export with no changes"));
    }
    let appended = state.writer.append(records, None, wait).await?;
    let seqs = appended.seqs.clone();
    let (status, window) = settle(appended).await?;
    to_value(
        status,
        &ExportAccepted {
            export_id,
            seqs,
            window,
        },
    )
}

/// An advisory-export event: OSV advisories into the global feed.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/advisories",
    tag = "ingest",
    security(()),
    params(
        ("X-Recheck-Tenant" = String, Header, description = "Whose webhook secret signed the body"),
        ("X-Recheck-Signature" = String, Header, description = "sha256=<hex HMAC-SHA256 of the raw body>"),
        WaitParams
    ),
    request_body(content = AdvisoryExport, description = "An advisory-export event"),
    responses(
        (status = 202, body = ExportAccepted),
        (status = 200, description = "Appended and applied (`wait=true`)", body = ExportAccepted),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Unknown tenant or bad signature", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The secret may not write the global feed", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn advisory_export(
    State(state): State<AppState>,
    Params(params): Params<WaitParams>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Body(body): Body,
) -> Response {
    let source = match state.webhooks.check(&headers, &body) {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    if !source.feed {
        return Problem::forbidden(format!(
            "the webhook secret of {} may not write the global feed",
            source.tenant
        ))
        .into_response();
    }
    let print = request_fingerprint(&method, &uri, &body);
    let handle = async {
        let event: AdvisoryExport = parse_event(&body)?;
        if event.advisories.len() + event.removed.len() > state.limits.max_batch {
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                kinds::TOO_LARGE,
                format!("at most {} changes per export", state.limits.max_batch),
            ));
        }
        let mut records = Vec::new();
        let mut errors = Vec::new();
        for (i, v) in event.advisories.iter().enumerate() {
            let location = format!("body.advisories[{i}]");
            let bytes = serde_json::to_vec(v).map_err(|e| Problem::internal(&e))?;
            match formats::osv::parse_advisory(&location, &bytes) {
                Ok(advisory) => records.push(InputRecord::Advisory { advisory }),
                Err(e) => errors.push((location, e)),
            }
        }
        if !errors.is_empty() {
            return Err(Problem::invalid_documents(errors));
        }
        records.extend(
            event
                .removed
                .into_iter()
                .map(|id| InputRecord::AdvisoryRemoved { id }),
        );
        append(&state, event.export_id, records, params.wait).await
    };
    state
        .idempotency
        .run(&source.tenant, &headers, print, handle)
        .await
}

/// A VEX-export event: VEX documents for the signer's tenant (or, with a
/// feed secret, the global feed).
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/vex",
    tag = "ingest",
    security(()),
    params(
        ("X-Recheck-Tenant" = String, Header, description = "Whose webhook secret signed the body"),
        ("X-Recheck-Signature" = String, Header, description = "sha256=<hex HMAC-SHA256 of the raw body>"),
        WaitParams
    ),
    request_body(content = VexExport, description = "A VEX-export event"),
    responses(
        (status = 202, body = ExportAccepted),
        (status = 200, description = "Appended and applied (`wait=true`)", body = ExportAccepted),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Unknown tenant or bad signature", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Global scope without a feed secret", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn vex_export(
    State(state): State<AppState>,
    Params(params): Params<WaitParams>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Body(body): Body,
) -> Response {
    let source = match state.webhooks.check(&headers, &body) {
        Ok(s) => s,
        Err(refused) => return refused.into_response(),
    };
    let print = request_fingerprint(&method, &uri, &body);
    let handle = async {
        let event: VexExport = parse_event(&body)?;
        let scope = match event.scope.as_deref().unwrap_or("tenant") {
            "tenant" => Scope::Tenant(source.tenant.clone()),
            "global" if source.feed => Scope::Global,
            "global" => {
                return Err(Problem::forbidden(format!(
                    "the webhook secret of {} may not write the global feed",
                    source.tenant
                )))
            }
            other => {
                return Err(Problem::bad_parameter(
                    "body.scope",
                    format!("scope must be `tenant` or `global`, not {other:?}"),
                ))
            }
        };
        if event.documents.len() + event.removed.len() > state.limits.max_batch {
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                kinds::TOO_LARGE,
                format!("at most {} changes per export", state.limits.max_batch),
            ));
        }
        let mut records = Vec::new();
        let mut errors = Vec::new();
        for (i, d) in event.documents.iter().enumerate() {
            let location = format!("body.documents[{i}]");
            let bytes = serde_json::to_vec(&d.document).map_err(|e| Problem::internal(&e))?;
            let name = match &d.name {
                Some(n) if !n.is_empty() => n.clone(),
                _ => vex_document_name(&bytes),
            };
            match formats::parse_vex(&name, &bytes, scope.clone()) {
                Ok(statements) => records.push(InputRecord::Vex {
                    scope: scope.clone(),
                    document: name,
                    statements,
                }),
                Err(e) => errors.push((location, e)),
            }
        }
        if !errors.is_empty() {
            return Err(Problem::invalid_documents(errors));
        }
        records.extend(
            event
                .removed
                .into_iter()
                .map(|document| InputRecord::VexRemoved {
                    scope: scope.clone(),
                    document,
                }),
        );
        append(&state, event.export_id, records, params.wait).await
    };
    state
        .idempotency
        .run(&source.tenant, &headers, print, handle)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks(max: u32) -> Webhooks {
        Webhooks::new(WebhookConfig {
            max_requests: max,
            window_secs: 60,
            secrets: vec![WebhookSecret {
                tenant: "acme".into(),
                secret: "0123456789abcdef-acme".into(),
                feed: false,
            }],
        })
    }

    fn headers(tenant: &str, signature: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(TENANT_HEADER, HeaderValue::from_str(tenant).unwrap());
        h.insert(SIGNATURE_HEADER, HeaderValue::from_str(signature).unwrap());
        h
    }

    #[test]
    fn only_the_tenants_secret_over_these_exact_bytes_passes() {
        let w = hooks(10);
        let body = br#"{"exportId":"e1"}"#;
        let good = signature("0123456789abcdef-acme", body);
        assert!(w.authenticate(&headers("acme", &good), body).is_ok());
        // RFC 4231 test case 2, so the HMAC is the standard one.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        for (tenant, sig, b) in [
            ("acme", good.as_str(), &br#"{"exportId":"e2"}"#[..]),
            ("globex", good.as_str(), &body[..]),
            ("acme", &good[7..], &body[..]),
            ("acme", "sha256=zz", &body[..]),
        ] {
            let p = w.authenticate(&headers(tenant, sig), b).unwrap_err();
            assert_eq!(p.status, 401);
        }
    }

    #[test]
    fn the_call_beyond_the_limit_is_told_when_to_retry() {
        let w = hooks(2);
        assert!(w.admit("acme").is_ok() && w.admit("acme").is_ok());
        let refused = w.admit("acme").unwrap_err().into_response();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        let after: u64 = refused.headers()[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((59..=60).contains(&after), "{after}");
        // Another tenant has its own budget.
        assert!(w.admit("globex").is_ok());
    }
}
