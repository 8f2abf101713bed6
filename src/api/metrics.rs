//! What the server tells Prometheus: `GET /metrics` (the process's registry,
//! see [`crate::metrics`]) and the middleware that counts and times every
//! request by its route template, so a path full of ids stays one series.
//!
//! `/metrics` needs no credential, like the probes: it carries counts, and
//! tenant names as labels, never documents; expose it to the monitoring
//! network only. It is not part of the tenant API, so it is not in
//! `openapi.json`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::metrics::{self, RouteStatus};

/// The Prometheus exposition of every metric of this process.
pub async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics::get().render(),
    )
}

/// The operations that write to the input log, as (method, route template):
/// their refusals count as rejected documents.
pub type IngestRoutes = Arc<BTreeSet<(String, String)>>;

/// The operations of `doc` tagged `ingest`, and every operation registered
/// at zero in the HTTP metrics.
pub fn routes(doc: &utoipa::openapi::OpenApi) -> IngestRoutes {
    let m = metrics::get();
    let mut ingest = BTreeSet::new();
    for (path, item) in &doc.paths.paths {
        let ops = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            m.preregister_http_route(method, path);
            if op
                .tags
                .as_ref()
                .is_some_and(|t| t.iter().any(|t| t == "ingest"))
            {
                ingest.insert((method.to_string(), path.clone()));
            }
        }
    }
    for path in ["/metrics", "/api/v1/openapi.json"] {
        m.preregister_http_route("GET", path);
    }
    Arc::new(ingest)
}

/// Why an ingest request was refused, from its status.
fn rejection(status: StatusCode) -> Option<&'static str> {
    match status.as_u16() {
        400 => Some("parse"),
        401 | 403 => Some("auth"),
        409 => Some("conflict"),
        413 => Some("too_large"),
        422 => Some("validation"),
        _ => None,
    }
}

/// Counts and times each request under its route template (`unmatched`
/// for paths no route serves).
pub async fn record(State(ingest): State<IngestRoutes>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
    let m = metrics::get();
    let status = response.status();
    if ingest.contains(&(method.clone(), route.clone())) {
        if let Some(reason) = rejection(status) {
            m.rejected(reason);
        }
    }
    m.http_requests
        .get_or_create(&RouteStatus {
            method: method.clone(),
            route: route.clone(),
            status: status.as_str().to_string(),
        })
        .inc();
    m.http_duration
        .get_or_create(&metrics::Route { method, route })
        .observe(metrics::seconds_since(started));
    response
}
