//! The HTTP control plane (`recheck serve`): what users and other services
//! talk to. One axum [`Router`] over one [`AppState`]; writes go to the
//! single log writer ([`writer`]), impact queries to the live engine behind
//! it, job and event reads straight to the store.
//!
//! Every handler is registered through `utoipa-axum`, so the OpenAPI document
//! served at `/api/v1/openapi.json` is generated from the same code that
//! routes (a route cannot exist undocumented). Every operation except the
//! probes and the document itself needs a credential ([`auth`]); the tenant
//! comes from the credential alone. Errors are RFC 9457 problem details
//! ([`problem`]).

pub mod auth;
pub mod config;
mod controls;
pub mod events;
mod examples;
mod extract;
mod health;
mod idempotency;
mod impact;
mod ingest;
mod job_control;
mod jobs;
mod metrics;
pub mod problem;
mod runs;
mod runtime;
mod schedules;
pub mod webhooks;
mod whatif;
pub mod writer;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::Router;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::queue::Queue;
use crate::store::Store;

use auth::Authenticator;
use config::Limits;
use problem::Problem;
use writer::LogWriter;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub auth: Arc<Authenticator>,
    pub store: Arc<dyn Store>,
    pub writer: LogWriter,
    pub limits: Limits,
    /// The queue jobs are retried and replayed into (none: those 503).
    pub queue: Option<Arc<dyn Queue>>,
    /// Live events for `/events/stream`.
    pub events: Arc<events::EventHub>,
    /// Feed webhook secrets and rate limits (none configured: every
    /// webhook call is refused).
    pub webhooks: Arc<webhooks::Webhooks>,
    idempotency: Arc<idempotency::Idempotency>,
}

impl AppState {
    pub fn new(
        auth: Authenticator,
        store: Arc<dyn Store>,
        writer: LogWriter,
        limits: Limits,
    ) -> AppState {
        AppState {
            auth: Arc::new(auth),
            store,
            writer,
            limits,
            queue: None,
            events: Arc::new(events::EventHub::default()),
            webhooks: Arc::new(webhooks::Webhooks::default()),
            idempotency: Arc::new(idempotency::Idempotency::default()),
        }
    }

    pub fn with_queue(mut self, queue: Arc<dyn Queue>) -> AppState {
        self.queue = Some(queue);
        self
    }

    pub fn with_events(mut self, events: Arc<events::EventHub>) -> AppState {
        self.events = events;
        self
    }

    pub fn with_webhooks(mut self, config: config::WebhookConfig) -> AppState {
        self.webhooks = Arc::new(webhooks::Webhooks::new(config));
        self
    }
}

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key or a JWT signed by a configured key"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Recheck",
        description = "Keeps a fleet's vulnerability verdicts current: ingest advisories, VEX and SBOMs; \
                       query impact sets; read recheck jobs and their signed completion events."
    ),
    modifiers(&SecuritySchemes),
    security(("bearer" = []), ("api_key" = [])),
    tags(
        (name = "ingest", description = "Documents into the input log (scheduler.ingest; global feed: scheduler.admin; feed webhooks: an HMAC signature instead of a credential)"),
        (name = "impact", description = "Impact sets as of the last closed window (scheduler.runs.read)"),
        (name = "jobs", description = "Recheck jobs, dead letters and completion events (reads: scheduler.runs.read; retry, cancel, replay: scheduler.runs.write)"),
        (name = "controls", description = "Pause and resume a tenant's queue, set its throughput limits (scheduler.admin, own tenant)"),
        (name = "health", description = "Probes (no credential)")
    )
)]
struct ApiDoc;

/// Every operation, each registered with its OpenAPI description.
fn operations() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(ingest::post_advisories))
        .routes(routes!(ingest::delete_advisory))
        .routes(routes!(ingest::post_vex, ingest::delete_vex))
        .routes(routes!(ingest::post_sbom))
        .routes(routes!(ingest::delete_artifact))
        .routes(routes!(impact::by_advisory))
        .routes(routes!(impact::by_artifact))
        .routes(routes!(impact::by_purl))
        .routes(routes!(impact::changes))
        .routes(routes!(jobs::list_jobs))
        .routes(routes!(jobs::get_job))
        .routes(routes!(jobs::get_event))
        .routes(routes!(job_control::retry_job))
        .routes(routes!(job_control::cancel_job))
        .routes(routes!(job_control::explain_job))
        .routes(routes!(job_control::list_dead_letters))
        .routes(routes!(job_control::replay_dead_letter))
        .routes(routes!(events::stream_events))
        .routes(routes!(runs::post_run, runs::list_runs))
        .routes(routes!(runs::get_run))
        .routes(routes!(runs::cancel_run))
        .routes(routes!(schedules::post_schedule, schedules::list_schedules))
        .routes(routes!(
            schedules::get_schedule,
            schedules::put_schedule,
            schedules::delete_schedule
        ))
        .routes(routes!(whatif::post_whatif))
        .routes(routes!(runtime::post_runtime))
        .routes(routes!(controls::pause_tenant))
        .routes(routes!(controls::resume_tenant))
        .routes(routes!(controls::get_limits, controls::put_limits))
        .routes(routes!(controls::replay_window))
        .routes(routes!(webhooks::advisory_export))
        .routes(routes!(webhooks::vex_export))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
}

/// The router of every operation and its OpenAPI document.
fn documented() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = operations().split_for_parts();
    examples::attach(&mut doc);
    (router, doc)
}

/// The OpenAPI document of [`router`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented().1
}

/// The router of a process that only reports: `GET /metrics` and
/// `GET /healthz` (`recheck worker --metrics-listen`).
pub fn metrics_router() -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(metrics::metrics))
        .route("/healthz", axum::routing::get(health::healthz))
}

/// The API's router; `/api/v1/openapi.json` serves the document generated
/// from the same registrations.
pub fn router(state: AppState) -> Router {
    let max_body = state.limits.max_body_bytes;
    let (router, doc) = documented();
    let ingest = metrics::routes(&doc);
    let doc = Arc::new(doc);
    router
        .route("/metrics", axum::routing::get(metrics::metrics))
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(|| async { Problem::not_found("no such resource") })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                problem::kinds::INVALID_REQUEST,
                "method not allowed on this resource",
            )
        })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            ingest,
            metrics::record,
        ))
        .with_state(state)
}
