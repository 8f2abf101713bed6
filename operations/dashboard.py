#!/usr/bin/env python3
"""Builds operations/worker-grafana-dashboard.json with grafana-foundation-sdk's
typed builders, so the dashboard is reviewed as code and every panel is a
valid Grafana model. Run it after changing a panel:

    python3 operations/dashboard.py > operations/worker-grafana-dashboard.json

tests/operations.rs checks that the committed JSON is exactly this script's
output, and then runs every panel query against a real Prometheus.
"""

import json
import sys

from grafana_foundation_sdk.builders import dashboard, prometheus, timeseries, stat
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    DashboardCursorSync,
    VariableRefresh,
    VariableSort,
)

DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "$__rate_interval"
T = 'tenant=~"$tenant"'

# (row, panels); a panel is (title, unit, description, [(expr, legend)]).
ROWS = [
    ("Throughput", [
        ("Jobs finished per second", "ops", "Job attempts that succeeded or failed, by kind and executor.", [
            (f"sum by (kind, executor) (rate(recheck_worker_jobs_succeeded_total[{RATE}]))", "succeeded {{kind}}/{{executor}}"),
            (f"sum by (kind, executor) (rate(recheck_worker_jobs_failed_total[{RATE}]))", "failed {{kind}}/{{executor}}"),
        ]),
        ("Jobs planned and dispatched per second", "ops", "Planner output and outbox-to-queue moves.", [
            (f"sum by (kind) (rate(recheck_planner_jobs_planned_total[{RATE}]))", "planned {{kind}}"),
            (f"sum by (tenant) (rate(recheck_queue_dispatched_jobs_total{{{T}}}[{RATE}]))", "dispatched {{tenant}}"),
        ]),
        ("Job duration p50 / p99", "s", "Duration of one job attempt.", [
            (f"histogram_quantile(0.5, sum by (le, executor) (rate(recheck_worker_job_duration_seconds_bucket[{RATE}])))", "p50 {{executor}}"),
            (f"histogram_quantile(0.99, sum by (le, executor) (rate(recheck_worker_job_duration_seconds_bucket[{RATE}])))", "p99 {{executor}}"),
        ]),
    ]),
    ("Queue", [
        ("Queue depth", "short", "Jobs waiting, by tenant and priority.", [
            (f"sum by (tenant, priority) (recheck_queue_depth_jobs{{{T}}})", "{{tenant}} {{priority}}"),
        ]),
        ("Oldest waiting job", "s", "Age of the oldest queued job; compare with the SLA (5 min for incremental runs).", [
            (f"max by (tenant) (recheck_queue_oldest_job_age_seconds{{{T}}})", "{{tenant}}"),
        ]),
        ("Throttled and paused", "short", "Deliveries held back by tenant limits; paused tenants.", [
            (f"sum by (tenant) (rate(recheck_worker_throttled_jobs_total{{{T}}}[{RATE}]))", "throttled/s {{tenant}}"),
            (f"max by (tenant) (recheck_queue_tenant_paused{{{T}}})", "paused {{tenant}}"),
        ]),
    ]),
    ("SLA", [
        ("SLA margin (p10 / p50)", "s", "Deadline minus finish time; below zero is a breach.", [
            (f"histogram_quantile(0.1, sum by (le, severity) (rate(recheck_worker_sla_margin_seconds_bucket[{RATE}])))", "p10 {{severity}}"),
            (f"histogram_quantile(0.5, sum by (le, severity) (rate(recheck_worker_sla_margin_seconds_bucket[{RATE}])))", "p50 {{severity}}"),
        ]),
        ("SLA breaches", "short", "Jobs finished or dead-lettered after their deadline, by severity.", [
            (f"sum by (severity) (increase(recheck_worker_sla_breaches_total[{RATE}]))", "{{severity}}"),
        ]),
    ]),
    ("Retries and dead letters", [
        ("Redeliveries and expired leases", "ops", "Work handed out again.", [
            (f"sum by (tenant) (rate(recheck_queue_redeliveries_total{{{T}}}[{RATE}]))", "redelivered {{tenant}}"),
            (f"sum by (tenant) (rate(recheck_queue_leases_expired_total{{{T}}}[{RATE}]))", "lease expired {{tenant}}"),
        ]),
        ("Dead-lettered jobs", "short", "Jobs moved to the dead-letter queue, by reason.", [
            (f"sum by (tenant, reason) (increase(recheck_queue_dead_lettered_jobs_total{{{T}}}[{RATE}]))", "{{tenant}} {{reason}}"),
        ]),
        ("Attempts per finished job (p90)", "short", "How many attempts jobs needed.", [
            (f"histogram_quantile(0.9, sum by (le) (rate(recheck_worker_job_attempts_bucket[{RATE}])))", "p90"),
        ]),
    ]),
    ("Engine and input log", [
        ("Window latency p50 / p99", "s", "Closing one window: engine, planner and store commit.", [
            (f"histogram_quantile(0.5, sum by (le) (rate(recheck_engine_window_duration_seconds_bucket[{RATE}])))", "p50"),
            (f"histogram_quantile(0.99, sum by (le) (rate(recheck_engine_window_duration_seconds_bucket[{RATE}])))", "p99"),
        ]),
        ("Impact deltas per second", "ops", "Findings that appeared or went away.", [
            (f"sum by (direction) (rate(recheck_engine_deltas_total[{RATE}]))", "{{direction}}"),
        ]),
        ("Input documents per second", "ops", "Appended by kind; rejected by reason.", [
            (f"sum by (kind) (rate(recheck_input_appended_documents_total{{{T}}}[{RATE}]))", "appended {{kind}}"),
            (f"sum by (reason) (rate(recheck_input_rejected_documents_total[{RATE}]))", "rejected {{reason}}"),
        ]),
        ("Apply lag p99 and cursor lag", "short", "Append-to-applied latency (s) and ledger entries not yet read per consumer.", [
            (f"histogram_quantile(0.99, sum by (le) (rate(recheck_input_apply_lag_seconds_bucket[{RATE}])))", "apply lag p99 (s)"),
            ("max by (consumer) (recheck_cursor_lag_entries)", "cursor lag {{consumer}}"),
        ]),
    ]),
    ("Events and HTTP", [
        ("Completion events", "ops", "Signed, published by sink, publish failures by sink.", [
            (f"sum(rate(recheck_events_signed_total[{RATE}]))", "signed"),
            (f"sum by (sink) (rate(recheck_events_published_total[{RATE}]))", "published {{sink}}"),
            (f"sum by (sink) (rate(recheck_events_publish_failures_total[{RATE}]))", "failed {{sink}}"),
        ]),
        ("HTTP requests by status", "reqps", "Requests per second by status code.", [
            (f"sum by (status) (rate(recheck_http_requests_total[{RATE}]))", "{{status}}"),
        ]),
        ("HTTP latency p99 by route", "s", "Request latency.", [
            (f"histogram_quantile(0.99, sum by (le, route) (rate(recheck_http_request_duration_seconds_bucket[{RATE}])))", "{{route}}"),
        ]),
    ]),
]


def build():
    d = (
        dashboard.Dashboard("Recheck scheduler and workers")
        .uid("recheck-worker")
        .description("Recheck: input log, impact engine, planner, queues, workers, signed events, HTTP API.")
        .tags(["recheck", "scheduler"])
        .time("now-6h", "now")
        .refresh("30s")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .with_variable(
            dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")
        )
        .with_variable(
            dashboard.QueryVariable("tenant")
            .label("Tenant")
            .datasource(DS)
            .query("label_values(recheck_queue_depth_jobs, tenant)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
    )
    panel_id = 1
    for row_title, panels in ROWS:
        d = d.with_row(dashboard.Row(row_title).id(panel_id))
        panel_id += 1
        for title, unit, description, queries in panels:
            p = (
                timeseries.Panel()
                .id(panel_id)
                .title(title)
                .description(description)
                .datasource(DS)
                .unit(unit)
                .height(8)
                .span(8)
            )
            for i, (expr, legend) in enumerate(queries):
                p = p.with_target(
                    prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(chr(ord("A") + i))
                )
            d = d.with_panel(p)
            panel_id += 1
    return d.build()


def render(model) -> str:
    return json.dumps(model, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def check(path: str) -> int:
    """The committed file must be this script's output, and survive a round
    trip through the SDK's typed model unchanged."""
    from grafana_foundation_sdk.models.dashboard import Dashboard

    text = open(path, encoding="utf-8").read()
    if text != render(build()):
        print(f"{path} is not the output of operations/dashboard.py; regenerate it", file=sys.stderr)
        return 1
    parsed = json.loads(text)
    again = json.loads(render(Dashboard.from_json(parsed)))
    if again != parsed:
        print(f"{path} changes in a round trip through the typed model", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        sys.exit(check(sys.argv[2]))
    sys.stdout.write(render(build()))
