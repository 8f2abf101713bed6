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

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

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
/// Why a job was dead-lettered.
pub const DEAD_LETTER_REASONS: [&str; 3] = ["attempts_exhausted", "deadline", "max_deliver"];

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
            "Time from appending a document to the engine having applied its window",
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
            "Records held by the engine's arrangements, by arrangement",
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
            "Jobs waiting in the queue, by tenant and priority",
            self.queue_depth.clone(),
        );
        r.register(
            "recheck_queue_oldest_job_age_seconds",
            "Age of the oldest waiting job, by tenant",
            self.queue_oldest_age.clone(),
        );
        r.register(
            "recheck_queue_leases_expired",
            "Leases that expired before the worker acked, by tenant",
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
            "Deliveries held back by a tenant's concurrency or throughput limit",
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
