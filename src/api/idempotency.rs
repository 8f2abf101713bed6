//! `Idempotency-Key` on mutations: a retried request with the same key (per
//! tenant) gets the original response instead of writing again; the same key
//! with a different request is a 422, and one still being handled a 409.
//! Only successful responses are remembered, so a failed request may be
//! retried with its key. Kept in memory (the newest `CAPACITY` keys): a
//! restart forgets them.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Mutex;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::problem::{kinds, Problem};

const CAPACITY: usize = 100_000;
const HEADER: &str = "idempotency-key";

enum Entry {
    InFlight {
        fingerprint: String,
    },
    Done {
        fingerprint: String,
        status: StatusCode,
        body: Vec<u8>,
    },
}

#[derive(Default)]
pub struct Idempotency {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<(String, String), Entry>,
    order: VecDeque<(String, String)>,
}

/// A response worth remembering: status and JSON body.
pub type Outcome = Result<(StatusCode, serde_json::Value), Problem>;

/// The fingerprint of a request: its method, path with query, and body.
pub fn fingerprint(method: &str, uri: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(uri.as_bytes());
    h.update([0]);
    h.update(body);
    hex::encode(h.finalize())
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

impl Idempotency {
    /// Run `handle` unless `headers` carry a key this tenant already used.
    pub async fn run<F>(
        &self,
        tenant: &str,
        headers: &HeaderMap,
        fingerprint: String,
        handle: F,
    ) -> Response
    where
        F: Future<Output = Outcome>,
    {
        let Some(key) = headers.get(HEADER) else {
            return respond(handle.await);
        };
        let Some(key) = key
            .to_str()
            .ok()
            .filter(|k| !k.is_empty() && k.len() <= 255)
        else {
            return Problem::bad_parameter(
                "header.Idempotency-Key",
                "Idempotency-Key must be 1 to 255 visible characters",
            )
            .into_response();
        };
        let slot = (tenant.to_string(), key.to_string());
        {
            let Ok(mut inner) = self.inner.lock() else {
                return Problem::internal(&"idempotency table poisoned").into_response();
            };
            match inner.entries.get(&slot) {
                Some(Entry::Done {
                    fingerprint: f,
                    status,
                    body,
                }) if *f == fingerprint => return json_response(*status, body.clone()),
                Some(Entry::InFlight { fingerprint: f }) if *f == fingerprint => {
                    return Problem::new(
                        StatusCode::CONFLICT,
                        kinds::IDEMPOTENCY,
                        "a request with this Idempotency-Key is still being handled",
                    )
                    .into_response()
                }
                Some(_) => {
                    return Problem::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        kinds::IDEMPOTENCY,
                        "this Idempotency-Key was used for a different request",
                    )
                    .into_response()
                }
                None => {
                    inner.entries.insert(
                        slot.clone(),
                        Entry::InFlight {
                            fingerprint: fingerprint.clone(),
                        },
                    );
                }
            }
        }
        let mut release = Release {
            table: self,
            slot: Some(slot.clone()),
        };
        let outcome = handle.await;
        release.slot = None;
        let Ok(mut inner) = self.inner.lock() else {
            return respond(outcome);
        };
        match &outcome {
            Ok((status, value)) => {
                let body = serde_json::to_vec(value).unwrap_or_default();
                inner.entries.insert(
                    slot.clone(),
                    Entry::Done {
                        fingerprint,
                        status: *status,
                        body,
                    },
                );
                inner.order.push_back(slot);
                while inner.order.len() > CAPACITY {
                    if let Some(old) = inner.order.pop_front() {
                        inner.entries.remove(&old);
                    }
                }
            }
            Err(_) => {
                inner.entries.remove(&slot);
            }
        }
        respond(outcome)
    }
}

/// Frees an in-flight key whose request was abandoned (the client went away
/// and the handler's future was dropped), so a retry is not refused forever.
struct Release<'a> {
    table: &'a Idempotency,
    slot: Option<(String, String)>,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        if let (Some(slot), Ok(mut inner)) = (self.slot.take(), self.table.inner.lock()) {
            if matches!(inner.entries.get(&slot), Some(Entry::InFlight { .. })) {
                inner.entries.remove(&slot);
            }
        }
    }
}

fn respond(outcome: Outcome) -> Response {
    match outcome {
        Ok((status, value)) => (status, axum::Json(value)).into_response(),
        Err(problem) => problem.into_response(),
    }
}
