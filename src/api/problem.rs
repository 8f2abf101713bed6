//! Every error the API returns is an RFC 9457 problem-details document
//! (`application/problem+json`), so a client handles one shape whatever went
//! wrong; a rejected document names the field at fault (`errors[].field`).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::formats::FormatError;

/// One field a request got wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The request part or document at fault: `body`, `query.artifact`, a
    /// document index in a batch (`body[3]`), …
    pub location: String,
    /// JSON path inside the document (`affected[0].ranges[1].events[2]`;
    /// `.` for the whole document).
    pub field: String,
    pub detail: String,
}

/// RFC 9457 problem details, with `errors` as an extension member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type (`about:blank` when the status says it all).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// The problem-type URIs this API uses (relative, resolved against the API).
pub mod kinds {
    pub const INVALID_DOCUMENT: &str = "/problems/invalid-document";
    pub const INVALID_REQUEST: &str = "/problems/invalid-request";
    pub const UNAUTHENTICATED: &str = "/problems/unauthenticated";
    pub const FORBIDDEN: &str = "/problems/forbidden";
    pub const NOT_FOUND: &str = "/problems/not-found";
    pub const TOO_LARGE: &str = "/problems/payload-too-large";
    pub const IDEMPOTENCY: &str = "/problems/idempotency-key-reused";
    pub const UNAVAILABLE: &str = "/problems/unavailable";
    pub const RATE_LIMITED: &str = "/problems/rate-limited";
    pub const INTERNAL: &str = "/problems/internal";
}

impl Problem {
    pub fn new(status: StatusCode, kind: &str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: kind.to_string(),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Problem {
        self.errors = errors;
        self
    }

    /// 400 naming a request parameter.
    pub fn bad_parameter(location: &str, detail: impl Into<String>) -> Problem {
        let detail = detail.into();
        Problem::new(StatusCode::BAD_REQUEST, kinds::INVALID_REQUEST, &detail).with_errors(vec![
            FieldError {
                location: location.to_string(),
                field: ".".into(),
                detail,
            },
        ])
    }

    /// 422: the request body parsed, but `field` (a JSON path in it) has a
    /// value that cannot be used.
    pub fn invalid_field(field: &str, detail: impl Into<String>) -> Problem {
        let detail = detail.into();
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            kinds::INVALID_REQUEST,
            format!("{field}: {detail}"),
        )
        .with_errors(vec![FieldError {
            location: "body".into(),
            field: field.to_string(),
            detail,
        }])
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, kinds::NOT_FOUND, detail)
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, kinds::UNAUTHENTICATED, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, kinds::FORBIDDEN, detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, kinds::UNAVAILABLE, detail)
    }

    /// A server-side failure: the cause goes to the log, the client gets a
    /// generic message.
    pub fn internal(cause: &dyn std::fmt::Display) -> Problem {
        tracing::error!(error = %cause, "request failed");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            kinds::INTERNAL,
            "the server failed to handle the request",
        )
    }

    /// 422 (400 for a document that is not JSON) for parser errors; each
    /// error names its document's place in the request and the field.
    pub fn invalid_documents(errors: Vec<(String, FormatError)>) -> Problem {
        let syntax = errors
            .iter()
            .all(|(_, e)| e.kind == crate::formats::ErrorKind::Syntax);
        let status = if syntax {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        let detail = match errors.as_slice() {
            [(_, one)] => format!("invalid document: at {}: {}", one.path, one.message),
            many => format!("{} invalid documents; nothing was written", many.len()),
        };
        Problem::new(status, kinds::INVALID_DOCUMENT, detail).with_errors(
            errors
                .into_iter()
                .map(|(location, e)| FieldError {
                    location,
                    field: e.path,
                    detail: e.message,
                })
                .collect(),
        )
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (
            self.status_code(),
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response()
    }
}

impl From<crate::store::StoreError> for Problem {
    fn from(e: crate::store::StoreError) -> Problem {
        match e.kind {
            crate::store::StoreErrorKind::NotFound => Problem::not_found(e.message),
            crate::store::StoreErrorKind::Connect => {
                Problem::unavailable("the store is unreachable")
            }
            _ => Problem::internal(&e),
        }
    }
}
