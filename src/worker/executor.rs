//! What runs a job once the built-in policy evaluator has judged it: nothing
//! more (the built-in executor), or an external Scanner / Policy Engine
//! reached over HTTP. An executor's answer goes into the execution record,
//! never into the signed statement (it may differ between attempts).

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::http;
use super::policy::Evaluation;
use crate::model::RecheckJob;

/// What an executor is given.
#[derive(Debug, Clone, Copy)]
pub struct ExecutionRequest<'a> {
    pub job: &'a RecheckJob,
    pub attempt: u32,
    pub policy_version: &'a str,
    pub evaluation: &'a Evaluation,
}

/// An executor's answer, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutorAnswer {
    pub executor: String,
    /// The HTTP status, for the HTTP executor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The answer body (JSON when it parses as JSON, else a string).
    pub body: Value,
}

/// A failed attempt. `retryable` failures (timeouts, 5xx, connection
/// errors) are retried within the SLA; others dead-letter the job at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExecutorError {
    pub retryable: bool,
    pub message: String,
}

impl ExecutorError {
    pub fn retryable(message: impl Into<String>) -> Self {
        ExecutorError {
            retryable: true,
            message: message.into(),
        }
    }

    pub fn fatal(message: impl Into<String>) -> Self {
        ExecutorError {
            retryable: false,
            message: message.into(),
        }
    }
}

#[async_trait]
pub trait Executor: Send + Sync {
    /// The `executor` label of the worker metrics (`policy`, `http`).
    fn name(&self) -> &'static str {
        "custom"
    }

    async fn execute(&self, request: ExecutionRequest<'_>)
        -> Result<ExecutorAnswer, ExecutorError>;
}

/// The built-in executor: the policy evaluator's verdict is the result.
pub struct PolicyExecutor;

#[async_trait]
impl Executor for PolicyExecutor {
    fn name(&self) -> &'static str {
        "policy"
    }

    async fn execute(
        &self,
        request: ExecutionRequest<'_>,
    ) -> Result<ExecutorAnswer, ExecutorError> {
        Ok(ExecutorAnswer {
            executor: "policy".to_string(),
            status: None,
            body: serde_json::json!({ "verdict": request.evaluation.verdict }),
        })
    }
}

/// POSTs `{job, attempt, policy_version, evaluation}` to an endpoint; a 2xx
/// answer completes the job, a 5xx, 408, 429, timeout or connection error is
/// retried, any other status fails it for good.
pub struct HttpExecutor {
    pub url: String,
    pub timeout: Duration,
}

impl HttpExecutor {
    pub fn new(url: &str, timeout: Duration) -> Result<HttpExecutor, http::HttpError> {
        http::check_url(url)?;
        Ok(HttpExecutor {
            url: url.to_string(),
            timeout,
        })
    }
}

#[derive(Serialize)]
struct HttpRequestBody<'a> {
    job: &'a RecheckJob,
    attempt: u32,
    policy_version: &'a str,
    evaluation: &'a Evaluation,
}

#[async_trait]
impl Executor for HttpExecutor {
    fn name(&self) -> &'static str {
        "http"
    }

    async fn execute(
        &self,
        request: ExecutionRequest<'_>,
    ) -> Result<ExecutorAnswer, ExecutorError> {
        let body = serde_json::to_vec(&HttpRequestBody {
            job: request.job,
            attempt: request.attempt,
            policy_version: request.policy_version,
            evaluation: request.evaluation,
        })
        .map_err(|e| ExecutorError::fatal(format!("encoding the request: {e}")))?;
        let attempt = request.attempt.to_string();
        let headers = [
            ("Recheck-Job-Id", request.job.id.as_str()),
            ("Recheck-Attempt", attempt.as_str()),
        ];
        let response = http::post_json(&self.url, &headers, &body, self.timeout)
            .await
            .map_err(|e| match e {
                http::HttpError::Url(_) => ExecutorError::fatal(format!("{}: {e}", self.url)),
                e => ExecutorError::retryable(format!("{}: {e}", self.url)),
            })?;
        let text = String::from_utf8_lossy(&response.body);
        let answer = serde_json::from_slice(&response.body)
            .unwrap_or_else(|_| Value::String(text.chars().take(4096).collect()));
        match response.status {
            200..=299 => Ok(ExecutorAnswer {
                executor: "http".to_string(),
                status: Some(response.status),
                body: answer,
            }),
            s @ (408 | 429 | 500..=599) => Err(ExecutorError::retryable(format!(
                "{} answered {s}: {}",
                self.url,
                text.chars().take(200).collect::<String>()
            ))),
            s => Err(ExecutorError::fatal(format!(
                "{} answered {s}: {}",
                self.url,
                text.chars().take(200).collect::<String>()
            ))),
        }
    }
}
