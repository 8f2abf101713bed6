//! Extractors that validate before a handler runs and reject with problem
//! details naming the part at fault (axum's own rejections are plain text),
//! plus the one pagination shape every list operation uses.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::problem::{kinds, Problem};
use super::AppState;

/// Query parameters, 400 naming the parameter when they do not parse.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Problem> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Params)
            .map_err(|e| {
                let location = match e.path().to_string() {
                    p if p == "." || p.is_empty() || p == "?" => "query".to_string(),
                    p => format!("query.{p}"),
                };
                Problem::bad_parameter(&location, e.into_inner().to_string())
            })
    }
}

/// The raw request body within the size limit (413 beyond it).
pub struct Body(pub Bytes);

impl FromRequest<AppState> for Body {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Problem> {
        let limit = state.limits.max_body_bytes;
        Bytes::from_request(req, state)
            .await
            .map(Body)
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Problem::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        kinds::TOO_LARGE,
                        format!("request body exceeds {limit} bytes"),
                    )
                } else {
                    Problem::bad_parameter("body", e.body_text())
                }
            })
    }
}

/// `offset` / `limit` of a list operation.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items to skip (from a previous page's `next_offset`).
    #[serde(default)]
    pub offset: Option<usize>,
    /// Items per page (default 100, at most the server's `max_page`).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// One page of a list in its stable order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Where the next page starts; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<usize>,
}

impl PageParams {
    pub fn page<T>(&self, all: Vec<T>, max_page: usize) -> Result<Page<T>, Problem> {
        let limit = self.limit.unwrap_or(100);
        if limit == 0 || limit > max_page {
            return Err(Problem::bad_parameter(
                "query.limit",
                format!("limit must be between 1 and {max_page}"),
            ));
        }
        let offset = self.offset.unwrap_or(0);
        let total = all.len();
        let items: Vec<T> = all.into_iter().skip(offset).take(limit).collect();
        let end = offset.saturating_add(items.len());
        Ok(Page {
            next_offset: (end < total).then_some(end),
            items,
        })
    }
}

/// A JSON request body as `T`: 400 when it is not JSON, 422 naming the field
/// (`errors[].field`, a JSON path) when it does not fit `T`.
pub fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    crate::formats::FormatError::deserialize("body", body)
        .map_err(|e| Problem::invalid_documents(vec![("body".into(), e)]))
}
