//! Request-body examples for the OpenAPI document (ingest and feed
//! webhooks), taken from the bundled samples (real public documents, see `samples/README.md`). Readers of the
//! document see a payload that the server accepts, and OpenAPI-driven
//! fuzzers (schemathesis' examples phase) start from valid requests instead
//! of only random objects that every ingest route rejects.

use utoipa::openapi::path::Operation;
use utoipa::openapi::{OpenApi, RefOr};

const ADVISORY: &str = include_str!("../../samples/advisories/PYSEC-2020-149.json");
const SBOM: &str = include_str!("../../samples/sboms/billing-worker.cdx.json");
const VEX: &str = include_str!("../../samples/vex/payments-api.openvex.json");

fn parsed(text: &str) -> serde_json::Value {
    // The samples are part of the crate and parsed by its tests; an
    // unparsable one leaves the operation without an example.
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

/// The example body of each ingest operation (all POSTs), by path.
fn examples() -> Vec<(&'static str, serde_json::Value)> {
    let sbom = parsed(SBOM);
    vec![
        ("/api/v1/advisories", parsed(ADVISORY)),
        (
            "/api/v1/sboms",
            serde_json::json!({
                "sbom": sbom,
                "labels": {"team": "billing", "env": "prod"},
                "repository": "registry.example.com/shop/billing-worker",
            }),
        ),
        ("/api/v1/vex", parsed(VEX)),
        (
            "/api/v1/webhooks/advisories",
            serde_json::json!({
                "exportId": "advisory-export-2026-12-04T10:00:00Z",
                "advisories": [parsed(ADVISORY)],
                "removed": [],
            }),
        ),
        (
            "/api/v1/webhooks/vex",
            serde_json::json!({
                "exportId": "vex-export-2026-12-04T10:00:00Z",
                "documents": [{"document": parsed(VEX)}],
                "removed": [],
            }),
        ),
    ]
}

fn post<'a>(doc: &'a mut OpenApi, path: &str) -> Option<&'a mut Operation> {
    doc.paths.paths.get_mut(path)?.post.as_mut()
}

/// Sets the example of each ingest operation's JSON request body.
pub fn attach(doc: &mut OpenApi) {
    for (path, example) in examples() {
        if example.is_null() {
            continue;
        }
        let Some(RefOr::T(body)) = post(doc, path).and_then(|op| op.request_body.as_mut()) else {
            continue;
        };
        if let Some(RefOr::T(content)) = body.content.get_mut("application/json") {
            content.example = Some(example);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ingest_operation_gets_its_sample_as_example() {
        let mut doc = crate::api::openapi();
        for (path, _) in examples() {
            let Some(RefOr::T(body)) = post(&mut doc, path).and_then(|op| op.request_body.as_ref())
            else {
                panic!("{path} has an inline request body");
            };
            let example = match &body.content["application/json"] {
                RefOr::T(content) => content.example.as_ref(),
                RefOr::Ref(_) => None,
            };
            assert!(
                example.is_some_and(|e| e.is_object()),
                "{path}: {example:?}"
            );
        }
    }
}
