//! Recheck's Prometheus metrics: one process-wide registry that every part
//! (input log writer, engine, planner, dispatcher, queues, workers, events,
//! HTTP) records into, exposed on `/metrics` of `recheck serve` and
//! `recheck worker`.
//!
//! Why one global: the parts that record are spread over threads the
//! dataflow, the store runtime and the HTTP server own, and threading an
//! `Arc<Metrics>` through all of them would add a parameter to every
//! constructor for no gain in testability (tests read the rendered text).
//!
//! Every label set whose values are known in advance (kinds, directions,
//! priorities, severities, executors, sinks, reasons, the configured tenants)
//! is created at zero by [`Metrics::preregister`], so dashboards and alert
//! expressions find quiet series instead of "no data". Names are `recheck_*`
//! with their unit in the name; the encoding is the crate's, never
//! hand-written.

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::engine::record::InputRecord;
use crate::model::{JobKind as ModelJobKind, LedgerEntry, Rating, Scope};
use crate::queue::{Priority, Queue};
use crate::store::WindowCommit;

/// Input document kinds as the input log names them.
pub const INPUT_KINDS: [&str; 8] = [
    "advisory",
    "advisory_removed",
    "sbom",
    "artifact_removed",
    "vex",
    "vex_removed",
    "artifact_metadata",
    "window_closed",
];
/// Why an input was refused.
pub const REJECT_REASONS: [&str; 5] = ["parse", "validation", "too_large", "auth", "conflict"];
pub const PRIORITIES: [&str; 3] = ["emergency", "high", "normal"];
/// Finding severities, `none` for findings without a rating.
pub const SEVERITIES: [&str; 5] = ["critical", "high", "medium", "low", "none"];
pub const JOB_KINDS: [&str; 2] = ["reevaluate", "rescan"];
pub const EXECUTORS: [&str; 2] = ["policy", "http"];
pub const EVENT_SINKS: [&str; 4] = ["store", "nats", "redis", "webhook"];
/// The ledger's named consumers Recheck itself runs.
pub const CURSOR_CONSUMERS: [&str; 1] = ["planner"];
/// Why a job was dead-lettered: its last attempt failed, a retry could not
/// finish before the SLA deadline, the executor said retrying is pointless,
/// the queue gave up redelivering it, or the store did not know the job.
pub const DEAD_LETTER_REASONS: [&str; 5] = [
    "attempts_exhausted",
    "deadline",
    "not_retryable",
    "max_deliver",
    "unknown_job",
];
/// The tenant label of feed documents (advisories, global VEX).
pub const GLOBAL_TENANT: &str = "global";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindTenant {
    pub kind: String,
    pub tenant: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Direction {
    pub direction: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Arrangement {
    pub arrangement: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobKind {
    pub kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Consumer {
    pub consumer: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantPriority {
    pub tenant: String,
    pub priority: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Tenant {
    pub tenant: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantReason {
    pub tenant: String,
    pub reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindExecutor {
    pub kind: String,
    pub executor: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Severity {
    pub severity: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Sink {
    pub sink: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Route {
    pub method: String,
    pub route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteStatus {
    pub method: String,
    pub route: String,
    pub status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Component {
    pub component: String,
    pub version: String,
}

impl KindTenant {
    /// The kind (the input log's tag) and owner of an input record.
    pub fn of(record: &InputRecord) -> KindTenant {
        let scope_tenant = |scope: &Scope| match scope {
            Scope::Global => GLOBAL_TENANT.to_string(),
            Scope::Tenant(t) => t.clone(),
        };
        let (kind, tenant) = match record {
            InputRecord::Advisory { .. } => ("advisory", GLOBAL_TENANT.to_string()),
            InputRecord::AdvisoryRemoved { .. } => ("advisory_removed", GLOBAL_TENANT.to_string()),
            InputRecord::Sbom { tenant, .. } => ("sbom", tenant.clone()),
            InputRecord::ArtifactRemoved { tenant, .. } => ("artifact_removed", tenant.clone()),
            InputRecord::Vex { scope, .. } => ("vex", scope_tenant(scope)),
            InputRecord::VexRemoved { scope, .. } => ("vex_removed", scope_tenant(scope)),
            InputRecord::ArtifactMetadata { tenant, .. } => ("artifact_metadata", tenant.clone()),
            InputRecord::WindowClosed { .. } => ("window_closed", GLOBAL_TENANT.to_string()),
        };
        KindTenant {
            kind: kind.to_string(),
            tenant,
        }
    }
}

impl KindExecutor {
    pub fn new(kind: ModelJobKind, executor: &str) -> KindExecutor {
        KindExecutor {
            kind: job_kind(kind).to_string(),
            executor: executor.to_string(),
        }
    }
}

impl Severity {
    /// A job's highest severity (`none` without one).
    pub fn of(rating: Option<Rating>) -> Severity {
        let severity = match rating {
            Some(Rating::Critical) => "critical",
            Some(Rating::High) => "high",
            Some(Rating::Medium) => "medium",
            Some(Rating::Low) => "low",
            _ => "none",
        };
        Severity {
            severity: severity.to_string(),
        }
    }
}

impl Tenant {
    pub fn new(tenant: &str) -> Tenant {
        Tenant {
            tenant: tenant.to_string(),
        }
    }
}

impl TenantReason {
    pub fn new(tenant: &str, reason: &str) -> TenantReason {
        TenantReason {
            tenant: tenant.to_string(),
            reason: reason.to_string(),
        }
    }
}

impl Sink {
    /// The sink kind of a sink named by its URL (`nats`, `redis`, `webhook`).
    pub fn of_url(url: &str) -> Sink {
        let sink = match url.split_once("://").map(|(scheme, _)| scheme) {
            Some("nats") => "nats",
            Some("redis") | Some("rediss") => "redis",
            Some("http") | Some("https") => "webhook",
            _ => "other",
        };
        Sink {
            sink: sink.to_string(),
        }
    }

    pub fn store() -> Sink {
        Sink {
            sink: "store".to_string(),
        }
    }
}

/// The job kind as the job model serializes it.
pub fn job_kind(kind: ModelJobKind) -> &'static str {
    match kind {
        ModelJobKind::Reevaluate => "reevaluate",
        ModelJobKind::Rescan => "rescan",
    }
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn seconds_buckets() -> Histogram {
    // 0.5 ms … ≈ 4.4 min: windows, jobs and HTTP requests alike.
    Histogram::new(exponential_buckets(0.0005, 2.5, 15))
}

fn margin_buckets() -> Histogram {
    // Deadline minus finish time; negative is a breach.
    Histogram::new([
        -3600.0, -600.0, -60.0, -10.0, 0.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0,
    ])
}

fn attempt_buckets() -> Histogram {
    Histogram::new([1.0, 2.0, 3.0, 4.0, 5.0, 8.0, 13.0])
}

/// Every metric Recheck exports. Fields are public so the recording sites
/// read as `metrics::get().jobs_started.get_or_create(..).inc()`.
pub struct Metrics {
    registry: Registry,
    pub build_info: Family<Component, Gauge>,
    // Input log.
    pub input_appended: Family<KindTenant, Counter>,
    pub input_rejected: Family<Reason, Counter>,
    pub input_apply_lag: Histogram,
    pub input_log_seq: Gauge,
    // Engine.
    pub window_duration: Histogram,
    pub deltas: Family<Direction, Counter>,
    pub arrangement_records: Family<Arrangement, Gauge>,
    pub frontier_lag: Gauge,
    pub engine_ready: Gauge,
    // Planner and cursors.
    pub jobs_planned: Family<JobKind, Counter>,
    pub deltas_coalesced: Counter,
    pub cursor_position: Family<Consumer, Gauge>,
    pub cursor_lag: Family<Consumer, Gauge>,
    pub ledger_head: Gauge,
    // Queue.
    pub queue_depth: Family<TenantPriority, Gauge>,
    pub queue_oldest_age: Family<Tenant, Gauge>,
    pub leases_expired: Family<Tenant, Counter>,
    pub redeliveries: Family<Tenant, Counter>,
    pub dead_lettered: Family<TenantReason, Counter>,
    pub jobs_dispatched: Family<Tenant, Counter>,
    pub tenant_paused: Family<Tenant, Gauge>,
    // Worker.
    pub jobs_started: Family<KindExecutor, Counter>,
    pub jobs_succeeded: Family<KindExecutor, Counter>,
    pub jobs_failed: Family<KindExecutor, Counter>,
    pub jobs_superseded: Counter,
    pub job_duration: Histograms<KindExecutor>,
    pub job_attempts: Histogram,
    pub sla_margin: Histograms<Severity>,
    pub sla_breaches: Family<Severity, Counter>,
    pub jobs_throttled: Family<Tenant, Counter>,
    pub workers_busy: Gauge,
    // Completion events.
    pub events_signed: Counter,
    pub events_published: Family<Sink, Counter>,
    pub event_publish_failures: Family<Sink, Counter>,
    // HTTP.
    pub http_requests: Family<RouteStatus, Counter>,
    pub http_duration: Histograms<Route>,
}

impl Metrics {
    fn new() -> Metrics {
        let m = Metrics {
            registry: Registry::default(),
            build_info: Family::default(),
            input_appended: Family::default(),
            input_rejected: Family::default(),
            input_apply_lag: seconds_buckets(),
            input_log_seq: Gauge::default(),
            window_duration: seconds_buckets(),
            deltas: Family::default(),
            arrangement_records: Family::default(),
            frontier_lag: Gauge::default(),
            engine_ready: Gauge::default(),
            jobs_planned: Family::default(),
            deltas_coalesced: Counter::default(),
            cursor_position: Family::default(),
            cursor_lag: Family::default(),
            ledger_head: Gauge::default(),
            queue_depth: Family::default(),
            queue_oldest_age: Family::default(),
            leases_expired: Family::default(),
            redeliveries: Family::default(),
            dead_lettered: Family::default(),
            jobs_dispatched: Family::default(),
            tenant_paused: Family::default(),
            jobs_started: Family::default(),
            jobs_succeeded: Family::default(),
            jobs_failed: Family::default(),
            jobs_superseded: Counter::default(),
            job_duration: Family::new_with_constructor(seconds_buckets),
            job_attempts: attempt_buckets(),
            sla_margin: Family::new_with_constructor(margin_buckets),
            sla_breaches: Family::default(),
            jobs_throttled: Family::default(),
            workers_busy: Gauge::default(),
            events_signed: Counter::default(),
            events_published: Family::default(),
            event_publish_failures: Family::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(seconds_buckets),
        };
        m.register()
    }

    fn register(mut self) -> Metrics {
        let r = &mut self.registry;
        // Counter names are given without `_total`: the encoder appends it.
        r.register(
            "recheck_build_info",
            "Recheck build (always 1), by component and version",
            self.build_info.clone(),
        );
        r.register(
            "recheck_input_appended_documents",
            "Documents appended to the input log, by kind and tenant (`global` for feed documents)",
            self.input_appended.clone(),
        );
        r.register(
            "recheck_input_rejected_documents",
            "Documents refused before reaching the input log, by reason",
            self.input_rejected.clone(),
        );
        r.register(
            "recheck_input_apply_lag_seconds",
            "Time from appending a window's oldest document to the window being applied and committed",
            self.input_apply_lag.clone(),
        );
        r.register(
            "recheck_input_log_sequence",
            "Sequence number of the newest input-log entry",
            self.input_log_seq.clone(),
        );
        r.register(
            "recheck_engine_window_duration_seconds",
            "Time to close one window (engine + planner + store commit)",
            self.window_duration.clone(),
        );
        r.register(
            "recheck_engine_deltas",
            "Impact deltas emitted by the engine, by direction (added/removed)",
            self.deltas.clone(),
        );
        r.register(
            "recheck_engine_arrangement_records",
            "Records the engine's arrangements hold, by input collection (net of retractions) and impact_rows",
            self.arrangement_records.clone(),
        );
        r.register(
            "recheck_engine_frontier_lag_records",
            "Input-log records appended but not yet covered by a closed window",
            self.frontier_lag.clone(),
        );
        r.register(
            "recheck_engine_ready",
            "1 once the engine has caught up with the stored input log",
            self.engine_ready.clone(),
        );
        r.register(
            "recheck_planner_jobs_planned",
            "Recheck jobs planned, by kind",
            self.jobs_planned.clone(),
        );
        r.register(
            "recheck_planner_deltas_coalesced",
            "Impact deltas folded into recheck jobs (several deltas of one artifact make one job)",
            self.deltas_coalesced.clone(),
        );
        r.register(
            "recheck_cursor_position_entries",
            "Ledger index a named consumer will read next",
            self.cursor_position.clone(),
        );
        r.register(
            "recheck_cursor_lag_entries",
            "Ledger entries a named consumer has not read yet",
            self.cursor_lag.clone(),
        );
        r.register(
            "recheck_ledger_head_window",
            "Window of the newest committed ledger entry",
            self.ledger_head.clone(),
        );
        r.register(
            "recheck_queue_depth_jobs",
            "Jobs ready to be leased, by tenant and priority (leased jobs and retries waiting out a delay not included)",
            self.queue_depth.clone(),
        );
        r.register(
            "recheck_queue_oldest_job_age_seconds",
            "Age of the oldest job the queue holds for a tenant (waiting or in flight)",
            self.queue_oldest_age.clone(),
        );
        r.register(
            "recheck_queue_leases_expired",
            "Jobs delivered while an earlier holder's expired lease still had them running, by tenant",
            self.leases_expired.clone(),
        );
        r.register(
            "recheck_queue_redeliveries",
            "Jobs delivered again after a lease expired or a nak, by tenant",
            self.redeliveries.clone(),
        );
        r.register(
            "recheck_queue_dead_lettered_jobs",
            "Jobs moved to the dead-letter queue, by tenant and reason",
            self.dead_lettered.clone(),
        );
        r.register(
            "recheck_queue_dispatched_jobs",
            "Jobs moved from the store's outbox to the queue, by tenant",
            self.jobs_dispatched.clone(),
        );
        r.register(
            "recheck_queue_tenant_paused",
            "1 while a tenant's queue is paused",
            self.tenant_paused.clone(),
        );
        r.register(
            "recheck_worker_jobs_started",
            "Job attempts started, by kind and executor",
            self.jobs_started.clone(),
        );
        r.register(
            "recheck_worker_jobs_succeeded",
            "Job attempts that succeeded, by kind and executor",
            self.jobs_succeeded.clone(),
        );
        r.register(
            "recheck_worker_jobs_failed",
            "Job attempts that failed, by kind and executor",
            self.jobs_failed.clone(),
        );
        r.register(
            "recheck_worker_jobs_superseded",
            "Jobs not executed because a newer job for the artifact was queued",
            self.jobs_superseded.clone(),
        );
        r.register(
            "recheck_worker_job_duration_seconds",
            "Duration of one job attempt, by kind and executor",
            self.job_duration.clone(),
        );
        r.register(
            "recheck_worker_job_attempts",
            "Attempts a job needed to finish",
            self.job_attempts.clone(),
        );
        r.register(
            "recheck_worker_sla_margin_seconds",
            "SLA deadline minus finish time of each finished job, by highest severity (negative: breached)",
            self.sla_margin.clone(),
        );
        r.register(
            "recheck_worker_sla_breaches",
            "Jobs that finished or were dead-lettered after their SLA deadline, by highest severity",
            self.sla_breaches.clone(),
        );
        r.register(
            "recheck_worker_throttled_jobs",
            "Leases that skipped a tenant with waiting jobs because of its concurrency or throughput limit (in-process queue)",
            self.jobs_throttled.clone(),
        );
        r.register(
            "recheck_worker_busy_slots",
            "Worker slots running a job now",
            self.workers_busy.clone(),
        );
        r.register(
            "recheck_events_signed",
            "Completion events signed",
            self.events_signed.clone(),
        );
        r.register(
            "recheck_events_published",
            "Completion events delivered, by sink",
            self.events_published.clone(),
        );
        r.register(
            "recheck_events_publish_failures",
            "Completion event deliveries that failed, by sink",
            self.event_publish_failures.clone(),
        );
        r.register(
            "recheck_http_requests",
            "HTTP requests, by method, route template and status",
            self.http_requests.clone(),
        );
        r.register(
            "recheck_http_request_duration_seconds",
            "HTTP request latency, by method and route template",
            self.http_duration.clone(),
        );
        self
    }

    /// Creates the label sets known in advance at zero, so every series a
    /// dashboard or alert reads exists before its first event.
    pub fn preregister<'a>(&self, component: &str, tenants: impl IntoIterator<Item = &'a str>) {
        self.build_info
            .get_or_create(&Component {
                component: component.to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        for reason in REJECT_REASONS {
            touch(&self.input_rejected, &label_reason(reason));
        }
        for direction in ["added", "removed"] {
            touch(
                &self.deltas,
                &Direction {
                    direction: direction.to_string(),
                },
            );
        }
        for kind in JOB_KINDS {
            touch(
                &self.jobs_planned,
                &JobKind {
                    kind: kind.to_string(),
                },
            );
            for executor in EXECUTORS {
                let l = KindExecutor {
                    kind: kind.to_string(),
                    executor: executor.to_string(),
                };
                touch(&self.jobs_started, &l);
                touch(&self.jobs_succeeded, &l);
                touch(&self.jobs_failed, &l);
                touch(&self.job_duration, &l);
            }
        }
        for severity in SEVERITIES {
            let l = Severity {
                severity: severity.to_string(),
            };
            touch(&self.sla_margin, &l);
            touch(&self.sla_breaches, &l);
        }
        for sink in EVENT_SINKS {
            let l = Sink {
                sink: sink.to_string(),
            };
            touch(&self.events_published, &l);
            touch(&self.event_publish_failures, &l);
        }
        for consumer in CURSOR_CONSUMERS {
            let l = Consumer {
                consumer: consumer.to_string(),
            };
            touch(&self.cursor_position, &l);
            touch(&self.cursor_lag, &l);
        }
        for kind in INPUT_KINDS {
            touch(
                &self.input_appended,
                &KindTenant {
                    kind: kind.to_string(),
                    tenant: GLOBAL_TENANT.to_string(),
                },
            );
        }
        for tenant in tenants {
            self.preregister_tenant(tenant);
        }
    }

    /// Zero series for one HTTP route (the server calls it for every route it
    /// mounts), with the statuses alerts compare: success and server error.
    pub fn preregister_http_route(&self, method: &str, route: &str) {
        touch(
            &self.http_duration,
            &Route {
                method: method.to_string(),
                route: route.to_string(),
            },
        );
        for status in ["200", "500"] {
            touch(
                &self.http_requests,
                &RouteStatus {
                    method: method.to_string(),
                    route: route.to_string(),
                    status: status.to_string(),
                },
            );
        }
    }

    /// Zero series for one tenant (called for configured tenants at start and
    /// for a tenant seen for the first time).
    pub fn preregister_tenant(&self, tenant: &str) {
        for kind in INPUT_KINDS {
            touch(
                &self.input_appended,
                &KindTenant {
                    kind: kind.to_string(),
                    tenant: tenant.to_string(),
                },
            );
        }
        for priority in PRIORITIES {
            touch(
                &self.queue_depth,
                &TenantPriority {
                    tenant: tenant.to_string(),
                    priority: priority.to_string(),
                },
            );
        }
        let t = Tenant {
            tenant: tenant.to_string(),
        };
        touch(&self.queue_oldest_age, &t);
        touch(&self.leases_expired, &t);
        touch(&self.redeliveries, &t);
        touch(&self.jobs_dispatched, &t);
        touch(&self.tenant_paused, &t);
        touch(&self.jobs_throttled, &t);
        for reason in DEAD_LETTER_REASONS {
            touch(
                &self.dead_lettered,
                &TenantReason {
                    tenant: tenant.to_string(),
                    reason: reason.to_string(),
                },
            );
        }
    }

    /// Records appended to the input log (the newest at `last_seq`).
    pub fn appended(&self, records: &[InputRecord], last_seq: u64) {
        for r in records {
            self.input_appended.get_or_create(&KindTenant::of(r)).inc();
        }
        self.input_log_seq.set(clamp(last_seq));
    }

    /// A window closed: the engine started on it at `started`; its oldest
    /// record was appended at `open_since` (none for an empty window).
    pub fn window_closed(&self, started: Instant, open_since: Option<Instant>) {
        self.window_duration.observe(seconds_since(started));
        if let Some(t) = open_since {
            self.input_apply_lag.observe(seconds_since(t));
        }
    }

    /// A window's commit written as ledger entry `entry`.
    pub fn window_committed(&self, commit: &WindowCommit, entry: &LedgerEntry) {
        let added = commit.deltas.iter().filter(|d| d.diff > 0).count() as u64;
        let removed = commit.deltas.len() as u64 - added;
        for (direction, n) in [("added", added), ("removed", removed)] {
            self.deltas
                .get_or_create(&Direction {
                    direction: direction.to_string(),
                })
                .inc_by(n);
        }
        for job in &commit.jobs {
            self.jobs_planned
                .get_or_create(&JobKind {
                    kind: job_kind(job.kind).to_string(),
                })
                .inc();
        }
        self.deltas_coalesced.inc_by(commit.deltas.len() as u64);
        for c in &commit.cursors {
            let consumer = Consumer {
                consumer: c.name.clone(),
            };
            self.cursor_position
                .get_or_create(&consumer)
                .set(clamp(c.position));
            self.cursor_lag
                .get_or_create(&consumer)
                .set(clamp((entry.index + 1).saturating_sub(c.position)));
        }
        self.ledger_head.set(clamp(entry.window));
    }

    /// Records one of the engine's arrangements holds.
    pub fn arrangement(&self, name: &str, records: i64) {
        self.arrangement_records
            .get_or_create(&Arrangement {
                arrangement: name.to_string(),
            })
            .set(records);
    }

    /// A document refused before reaching the input log (`reason`: one of
    /// [`REJECT_REASONS`]).
    pub fn rejected(&self, reason: &str) {
        self.input_rejected
            .get_or_create(&label_reason(reason))
            .inc();
    }

    /// A job moved from the store's outbox into the queue.
    pub fn dispatched(&self, tenant: &str) {
        self.jobs_dispatched
            .get_or_create(&Tenant::new(tenant))
            .inc();
    }

    /// A lease skipped a tenant with waiting jobs at its concurrency or
    /// throughput limit.
    pub fn throttled(&self, tenant: &str) {
        self.jobs_throttled
            .get_or_create(&Tenant::new(tenant))
            .inc();
    }

    /// A job delivered again (after a lease expired or a nak).
    pub fn redelivered(&self, tenant: &str) {
        self.redeliveries.get_or_create(&Tenant::new(tenant)).inc();
    }

    /// A delivery found its job still running: the previous holder's lease
    /// expired under it.
    pub fn lease_expired(&self, tenant: &str) {
        self.leases_expired
            .get_or_create(&Tenant::new(tenant))
            .inc();
    }

    /// A worker gave up on a job (`reason`: one of [`DEAD_LETTER_REASONS`]).
    pub fn dead_lettered(&self, tenant: &str, reason: &str) {
        self.dead_lettered
            .get_or_create(&TenantReason::new(tenant, reason))
            .inc();
    }

    /// An attempt started; the slot counts as busy until the guard drops.
    pub fn job_started(&self, labels: &KindExecutor) -> BusySlot {
        self.jobs_started.get_or_create(labels).inc();
        self.workers_busy.inc();
        BusySlot
    }

    /// An attempt that started at `started` ended.
    pub fn job_finished(&self, labels: &KindExecutor, started: Instant, ok: bool) {
        let outcome = if ok {
            &self.jobs_succeeded
        } else {
            &self.jobs_failed
        };
        outcome.get_or_create(labels).inc();
        self.job_duration
            .get_or_create(labels)
            .observe(seconds_since(started));
    }

    /// A job finished (succeeded or dead-lettered) after `attempts` attempts,
    /// now, against its SLA `deadline`; false when that breached the SLA.
    pub fn job_done(
        &self,
        attempts: u32,
        deadline: chrono::DateTime<chrono::Utc>,
        worst: Option<Rating>,
    ) -> bool {
        self.job_attempts.observe(f64::from(attempts));
        let severity = Severity::of(worst);
        let margin = (deadline - chrono::Utc::now()).num_milliseconds() as f64 / 1000.0;
        self.sla_margin.get_or_create(&severity).observe(margin);
        let met = margin >= 0.0;
        if !met {
            self.sla_breaches.get_or_create(&severity).inc();
        }
        met
    }

    /// A completion event delivered to (or refused by) a sink.
    pub fn event_published(&self, sink: &Sink, ok: bool) {
        let family = if ok {
            &self.events_published
        } else {
            &self.event_publish_failures
        };
        family.get_or_create(sink).inc();
    }

    /// A job the queue itself gave up on after `max_deliver` deliveries
    /// (its workers kept dying or timing out on it).
    pub fn max_deliver_dead_lettered(&self, tenant: &str) {
        self.dead_lettered
            .get_or_create(&TenantReason::new(tenant, "max_deliver"))
            .inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an encoder error would be a bug
        // in a metric's label type, which the unit test below covers.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics");
        }
        out
    }
}

/// A worker slot running a job; dropping it frees the slot in
/// `recheck_worker_busy_slots`.
pub struct BusySlot;

impl Drop for BusySlot {
    fn drop(&mut self) {
        get().workers_busy.dec();
    }
}

/// Keeps the queue gauges (depth by tenant and priority, oldest job age,
/// paused) current: every `every`, one [`Queue::backlog`] call. A tenant that left
/// the queue reads zero. Runs until the task is dropped; a failed sample
/// keeps the previous values and is logged.
pub async fn sample_queue(queue: Arc<dyn Queue>, every: Duration) {
    let m = get();
    let mut seen = std::collections::BTreeSet::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let backlog = match queue.backlog().await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "sampling the queue's backlog");
                continue;
            }
        };
        let now = chrono::Utc::now();
        let mut current = std::collections::BTreeSet::new();
        for b in &backlog {
            for (priority, n) in Priority::ALL.iter().zip(b.ready) {
                m.queue_depth
                    .get_or_create(&TenantPriority {
                        tenant: b.tenant.clone(),
                        priority: priority.as_str().to_string(),
                    })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
            if let Ok(paused) = queue.paused(&b.tenant).await {
                m.tenant_paused
                    .get_or_create(&Tenant::new(&b.tenant))
                    .set(i64::from(paused));
            }
            let age = b.oldest.map_or(0, |t| (now - t).num_seconds().max(0));
            m.queue_oldest_age
                .get_or_create(&Tenant::new(&b.tenant))
                .set(age);
            current.insert(b.tenant.clone());
        }
        for gone in seen.difference(&current) {
            for priority in PRIORITIES {
                m.queue_depth
                    .get_or_create(&TenantPriority {
                        tenant: gone.clone(),
                        priority: priority.to_string(),
                    })
                    .set(0);
            }
            m.queue_oldest_age.get_or_create(&Tenant::new(gone)).set(0);
        }
        seen.extend(current);
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Seconds since `start`, for the histograms.
pub fn seconds_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

/// Creates a series at zero without recording anything.
fn touch<L, M, C>(family: &Family<L, M, C>, labels: &L)
where
    L: Clone + std::hash::Hash + Eq,
    C: prometheus_client::metrics::family::MetricConstructor<M>,
{
    drop(family.get_or_create(labels));
}

fn label_reason(reason: &str) -> Reason {
    Reason {
        reason: reason.to_string(),
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preregistered_series_render_at_zero_with_their_names() {
        let m = Metrics::new();
        m.preregister("serve", ["acme"]);
        m.jobs_planned
            .get_or_create(&JobKind {
                kind: "reevaluate".into(),
            })
            .inc();
        let text = m.render();
        assert!(text.contains(r#"recheck_planner_jobs_planned_total{kind="reevaluate"} 1"#));
        assert!(text.contains(r#"recheck_planner_jobs_planned_total{kind="rescan"} 0"#));
        assert!(text.contains(r#"recheck_queue_depth_jobs{tenant="acme",priority="emergency"} 0"#));
        assert!(text.contains(
            r#"recheck_queue_dead_lettered_jobs_total{tenant="acme",reason="deadline"} 0"#
        ));
        let margin = text
            .lines()
            .find(|l| {
                l.starts_with("recheck_worker_sla_margin_seconds_bucket{")
                    && l.contains("critical")
                    && l.contains("-60")
            })
            .unwrap_or_default()
            .to_string();
        assert!(margin.ends_with(" 0"), "{text}");
        assert!(text.contains("recheck_build_info{component=\"serve\""));
        assert!(text.ends_with("# EOF\n"));
    }
}
