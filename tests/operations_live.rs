//! The operations assets against a real Prometheus (issue 7): Debian's
//! `prometheus` scrapes a running `recheck serve` (PostgreSQL store in a
//! schema of its own, no in-process worker) and a `recheck worker`
//! (PostgreSQL + NATS JetStream under a prefix of its own) every second,
//! with `operations/worker-prometheus-rules.yaml` loaded, while a real-data
//! workload runs: the corpus's OSV advisories and the bundled SBOMs and VEX
//! through the HTTP API, one refused document; serve's dispatcher moves the
//! planned jobs to the queue (`--workers 0`: the worker process runs them).
//! Three faults are injected: the executor always fails for
//! the tenant `doomed` (two attempts: a dead letter), a 1 s SLA for
//! high-severity jobs met by a scanner that takes 1.5 s for `acme`'s
//! edge-proxy image (a breach), and an event webhook on a closed port
//! (publish failures).
//!
//! Then every dashboard query, every recording rule's expression and every
//! alert expression without its threshold comparison runs through
//! Prometheus' `/api/v1/query` and must return at least one series; and the
//! counters the faults drive must have moved, as Prometheus scraped them.
//!
//! A missing `prometheus` binary, PostgreSQL or NATS is a loud SKIP, and a
//! failure under `CI=true`.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use recheck::api::config::ServeConfig;
use recheck::attest::keys::SigningKey;
use recheck::model::JobState;
use recheck::queue::{self, QueueOptions};
use recheck::store::{JobFilter, Store};
use serde_json::Value;

const ADMIN: &str = "live-acme-admin-5b1c";
const DOOMED: &str = "live-doomed-ingest-77d0";
const TIMEOUT: Duration = Duration::from_secs(240);

/// The worker's SLA table: one second for high-severity jobs, the default
/// (a week) for jobs without a rated finding. Only `acme`'s edge-proxy
/// image has a high one (RUSTSEC-2016-0001, CVSS 3.0 base 8.1), so it
/// breaches; `doomed`'s jobs keep their week and dead-letter from their
/// attempts.
const SLA: &str = "high:*=1s";

/// What `doomed` uploads: a bundled SBOM with affected PyPI packages.
const DOOMED_SBOM: &str = "sboms/payments-api.cdx.json";

/// An image SBOM made for this test: the Rust crate `openssl` at 0.8.3,
/// inside RUSTSEC-2016-0001's range (fixed in 0.9.0) in the corpus.
const EDGE_PROXY_SBOM: &str = r#"{
  "bomFormat": "CycloneDX",
  "specVersion": "1.5",
  "serialNumber": "urn:uuid:0b6f2d0e-7c1a-4d47-9d51-6f1f3e0c2a11",
  "version": 1,
  "metadata": {
    "component": {"type": "container", "bom-ref": "image", "name": "edge-proxy", "version": "1.0.0"}
  },
  "components": [
    {"type": "library", "bom-ref": "pkg:cargo/openssl@0.8.3", "name": "openssl", "version": "0.8.3", "purl": "pkg:cargo/openssl@0.8.3"}
  ]
}"#;

const POLICY: &str = r#"
default = "pass"
[[rule]]
name = "high"
verdict = "fail"
min_severity = "high"
"#;

fn pg_base() -> String {
    std::env::var("RECHECK_POSTGRES_URI")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn nats_url() -> String {
    std::env::var("RECHECK_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn operations() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("operations")
}

/// `prometheus` on PATH, or `None` after a SKIP (a failure under CI=true).
fn prometheus() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("prometheus"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        common::skip(
            "prometheus not found on PATH (install Debian's `prometheus` package; scripts/test.sh does)",
        );
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A child process killed (and reaped) when the test ends, however it ends.
struct Running(Child, &'static str);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.0.try_wait() {
            panic!("{} exited early: {status}", self.1);
        }
    }
}

/// A PostgreSQL schema of its own, dropped at the end.
struct Pg {
    url: String,
    schema: String,
}

impl Pg {
    async fn new() -> Option<Pg> {
        let base = pg_base();
        if let Err(e) = tokio_postgres::connect(&base, tokio_postgres::NoTls).await {
            common::skip(&format!(
                "PostgreSQL not reachable at {base} ({e}): set RECHECK_POSTGRES_URI"
            ));
            return None;
        }
        let schema = format!("ops_live_{}", std::process::id());
        Some(Pg {
            url: format!("{base}?schema={schema}"),
            schema,
        })
    }

    async fn drop_schema(&self) {
        let (client, conn) = tokio_postgres::connect(&pg_base(), tokio_postgres::NoTls)
            .await
            .expect("PostgreSQL");
        tokio::spawn(conn);
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
            .await
            .expect("drop schema");
    }
}

/// The executor behind `--executor-url`: answers every job with 200, the
/// edge-proxy image's after 1.5 s (past its 1 s SLA), and the tenant
/// `doomed`'s always with a 503.
async fn executor() -> String {
    async fn answer(body: axum::body::Bytes) -> (axum::http::StatusCode, String) {
        let job: Value = serde_json::from_slice(&body).unwrap_or_default();
        if job["job"]["artifact"]
            .as_str()
            .is_some_and(|a| a.starts_with("edge-proxy"))
        {
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        if job["job"]["tenant"] == "doomed" {
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "scanner down for doomed".into(),
            )
        } else {
            (axum::http::StatusCode::OK, r#"{"scanner":"live"}"#.into())
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().route("/", axum::routing::post(answer));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/")
}

fn config_text() -> String {
    let hash = ServeConfig::hash_key;
    format!(
        r#"tenants = ["acme", "doomed"]

[[api_keys]]
name = "acme-admin"
tenant = "acme"
sha256 = "{}"
scopes = ["scheduler.admin"]

[[api_keys]]
name = "doomed-ingest"
tenant = "doomed"
sha256 = "{}"
scopes = ["scheduler.ingest"]

[windows]
max_delay_ms = 50
"#,
        hash(ADMIN),
        hash(DOOMED),
    )
}

/// Starts `recheck serve` (dispatching to the NATS queue under `prefix`, no
/// in-process worker) and returns it with its address (from its
/// `listening on http://ADDR` line).
fn start_serve(store: &str, config: &Path, prefix: &str) -> (Running, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_recheck"))
        .args(["serve", "--listen", "127.0.0.1:0", "--store", store])
        .args([
            "--queue",
            &nats_url(),
            "--queue-prefix",
            prefix,
            "--workers",
            "0",
        ])
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start recheck serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("listening on http://") {
                let _ = tx.send(addr.trim().to_string());
            }
        }
    });
    let serve = Running(child, "recheck serve");
    let addr = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("recheck serve never said where it listens");
    (serve, addr.parse().expect("address"))
}

/// One HTTP exchange: status and body (no error on 4xx/5xx).
fn call(method: &str, url: &str, key: &str, body: Option<Vec<u8>>) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    let auth = format!("Bearer {key}");
    let result = match (method, body) {
        ("POST", Some(b)) => agent
            .post(url)
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .send(&b[..]),
        ("GET", None) => agent.get(url).header("Authorization", &auth).call(),
        other => panic!("unsupported call {other:?}"),
    };
    let mut response = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (status, text)
}

/// A Prometheus instant query: the result vector, or the error.
fn query(prom: &str, expr: &str) -> Result<Vec<Value>, String> {
    let url = format!("http://{prom}/api/v1/query");
    let mut response = ureq::get(&url)
        .query("query", expr)
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .map_err(|e| e.to_string())?;
    let body: Value = response.body_mut().read_json().map_err(|e| e.to_string())?;
    if body["status"] != "success" {
        return Err(body.to_string());
    }
    match &body["data"]["result"] {
        Value::Array(series) => Ok(series.clone()),
        other => Err(format!("not a vector: {other}")),
    }
}

/// The value of a query that sums to one series.
fn scalar(prom: &str, expr: &str) -> f64 {
    query(prom, expr)
        .ok()
        .and_then(|s| s.first().cloned())
        .and_then(|s| s["value"][1].as_str().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// Every `expr` of the dashboard's panels (rows' nested panels included),
/// with Grafana's variables replaced as a query against Prometheus carries
/// them.
fn dashboard_queries() -> Vec<String> {
    let text = std::fs::read_to_string(operations().join("worker-grafana-dashboard.json"))
        .expect("dashboard");
    let d: Value = serde_json::from_str(&text).expect("dashboard JSON");
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = d["panels"].as_array().into_iter().flatten().collect();
    while let Some(panel) = stack.pop() {
        stack.extend(panel["panels"].as_array().into_iter().flatten());
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                out.push(
                    expr.replace("$__rate_interval", "5m")
                        .replace("$__range", "1h")
                        .replace("$tenant", ".*"),
                );
            }
        }
    }
    out
}

/// The rules file's `(name, expr)` pairs, recording rules and alerts, in
/// file order (expressions are one line, or a `|` block).
fn rules() -> Vec<(String, bool, String)> {
    let text =
        std::fs::read_to_string(operations().join("worker-prometheus-rules.yaml")).expect("rules");
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut current: Option<(String, bool)> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if let Some(name) = line.strip_prefix("- record: ") {
            current = Some((name.to_string(), false));
        } else if let Some(name) = line.strip_prefix("- alert: ") {
            current = Some((name.to_string(), true));
        } else if let Some(expr) = line.strip_prefix("expr: ") {
            let (name, alert) = current.take().expect("expr outside a rule");
            let expr = if expr.trim() == "|" {
                let indent = |l: &str| l.len() - l.trim_start().len();
                let first = indent(lines[i + 1]);
                let mut block = Vec::new();
                while i + 1 < lines.len()
                    && (lines[i + 1].trim().is_empty() || indent(lines[i + 1]) >= first)
                {
                    i += 1;
                    block.push(lines[i].trim());
                }
                block.join(" ")
            } else {
                expr.to_string()
            };
            out.push((name, alert, expr.trim().to_string()));
        }
        i += 1;
    }
    out
}

/// An alert expression without its trailing `<op> <number>`.
fn strip_threshold(expr: &str) -> String {
    let tokens: Vec<&str> = expr.split_whitespace().collect();
    let n = tokens.len();
    assert!(
        n >= 3
            && tokens[n - 1].parse::<f64>().is_ok()
            && ["==", "!=", ">", "<", ">=", "<="].contains(&tokens[n - 2]),
        "alert expression {expr:?} does not end in a threshold comparison"
    );
    tokens[..n - 2].join(" ")
}

#[test]
fn stripping_a_threshold_keeps_the_expression() {
    assert_eq!(
        strip_threshold(r#"up{job="recheck-worker"} == 0"#),
        r#"up{job="recheck-worker"}"#
    );
    assert_eq!(
        strip_threshold("sum by (tenant) (recheck:dead_lettered:rate15m) > 0.01"),
        "sum by (tenant) (recheck:dead_lettered:rate15m)"
    );
    let parsed = rules();
    assert!(parsed.iter().filter(|r| r.1).count() >= 10, "{parsed:?}");
    assert!(parsed.iter().filter(|r| !r.1).count() >= 8, "{parsed:?}");
    assert!(parsed.iter().all(|r| !r.2.is_empty() && !r.2.contains('|')));
}

/// Polls `done` every 250 ms until it holds or `TIMEOUT` passes.
async fn wait_for(what: &str, children: &mut [&mut Running], mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    loop {
        if done() {
            return;
        }
        for c in children.iter_mut() {
            c.assert_alive();
        }
        assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_rule_and_alert_query_answers_from_a_live_prometheus() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let Some(prometheus_bin) = prometheus() else {
        return;
    };
    let Some(pg) = Pg::new().await else {
        return;
    };
    let prefix = format!("ops_live_{}", std::process::id());
    let queue = match queue::open(
        &nats_url(),
        QueueOptions {
            prefix: prefix.clone(),
            ..QueueOptions::default()
        },
    )
    .await
    {
        Ok(q) => q,
        Err(e) => {
            common::skip(&format!(
                "NATS not reachable at {} ({e}): set RECHECK_NATS_URL",
                nats_url()
            ));
            return;
        }
    };
    queue.purge().await.expect("purge");

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, config_text()).expect("config");
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).expect("policy");
    let key = dir.path().join("key.pem");
    let signing = SigningKey::from_seed(&[9; 32]).expect("key");
    std::fs::write(&key, signing.to_pkcs8_pem().expect("pem").as_bytes()).expect("key");

    // serve first: it creates the schema the worker opens.
    let (mut serve, api) = start_serve(&pg.url, &config, &prefix);
    let executor_url = executor().await;
    let closed_webhook = format!("http://127.0.0.1:{}/events", free_port());
    let worker_metrics = format!("127.0.0.1:{}", free_port());
    let worker = Command::new(env!("CARGO_BIN_EXE_recheck"))
        .args(["worker", "--store", &pg.url, "--queue", &nats_url()])
        .args([
            "--queue-prefix",
            &prefix,
            "--concurrency",
            "2",
            "--lease",
            "10",
        ])
        .arg("--policy")
        .arg(&policy)
        .arg("--signing-key")
        .arg(&key)
        .args(["--executor-url", &executor_url, "--executor-timeout", "5"])
        .args(["--events", &closed_webhook])
        .args([
            "--events",
            &format!("{}?subject={prefix}.events", nats_url()),
        ])
        .args([
            "--max-attempts",
            "2",
            "--backoff-ms",
            "100",
            "--attempt-budget",
            "1",
        ])
        // Tiny for acme's severities, a week for doomed's (so its dead
        // letter comes from its attempts, not its deadline).
        .args(["--sla", SLA])
        .args(["--metrics-listen", &worker_metrics])
        .stdin(Stdio::null())
        .spawn()
        .expect("start recheck worker");
    let mut worker = Running(worker, "recheck worker");

    let prom_addr = format!("127.0.0.1:{}", free_port());
    let prom_config = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_config,
        format!(
            r#"global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {rules}
scrape_configs:
  - job_name: recheck-serve
    static_configs:
      - targets: ["{api}"]
  - job_name: recheck-worker
    static_configs:
      - targets: ["{worker_metrics}"]
"#,
            rules = operations().join("worker-prometheus-rules.yaml").display(),
        ),
    )
    .expect("prometheus config");
    let prom_log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log");
    let prom = Command::new(&prometheus_bin)
        .arg(format!("--config.file={}", prom_config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={prom_addr}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(prom_log)
        .spawn()
        .expect("start prometheus");
    let mut prom = Running(prom, "prometheus");
    wait_for("prometheus to be ready", &mut [&mut prom], || {
        ureq::get(&format!("http://{prom_addr}/-/ready"))
            .call()
            .is_ok()
    })
    .await;

    // The workload: every corpus advisory (global, in batches), one refused
    // document, the bundled SBOMs for acme and one for doomed, acme's VEX.
    let base = format!("http://{api}");
    let mut advisories: Vec<PathBuf> = Vec::new();
    for eco in ["pypi", "crates"] {
        advisories.extend(common::json_files(&data.join("osv").join(eco)));
    }
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    advisories.extend(common::json_files(&samples.join("advisories")));
    assert!(advisories.len() > 400, "{}", advisories.len());
    let mut appended = 0;
    for chunk in advisories.chunks(200) {
        let docs: Vec<Value> = chunk
            .iter()
            .map(|p| serde_json::from_slice(&common::read(p)).expect("advisory JSON"))
            .collect();
        let body = serde_json::to_vec(&docs).expect("encode");
        let (status, text) = call(
            "POST",
            &format!("{base}/api/v1/advisories?wait=true"),
            ADMIN,
            Some(body),
        );
        assert_eq!(status, 200, "{text}");
        appended += docs.len();
    }
    let (status, text) = call(
        "POST",
        &format!("{base}/api/v1/advisories"),
        ADMIN,
        Some(br#"{"id": "BROKEN-1", "affected": "not a list"}"#.to_vec()),
    );
    assert_eq!(status, 422, "{text}");
    for sbom in common::json_files(&samples.join("sboms")) {
        let (status, text) = call(
            "POST",
            &format!("{base}/api/v1/sboms?wait=true"),
            ADMIN,
            Some(common::read(&sbom)),
        );
        assert_eq!(status, 200, "{}: {text}", sbom.display());
    }
    let (status, text) = call(
        "POST",
        &format!("{base}/api/v1/sboms?wait=true"),
        ADMIN,
        Some(EDGE_PROXY_SBOM.as_bytes().to_vec()),
    );
    assert_eq!(status, 200, "{text}");
    let (status, text) = call(
        "POST",
        &format!("{base}/api/v1/sboms?wait=true"),
        DOOMED,
        Some(common::read(&samples.join(DOOMED_SBOM))),
    );
    assert_eq!(status, 200, "{text}");
    let (status, text) = call(
        "POST",
        &format!("{base}/api/v1/vex?wait=true"),
        ADMIN,
        Some(common::read(&samples.join("vex/payments-api.openvex.json"))),
    );
    assert_eq!(status, 200, "{text}");

    let store: Arc<dyn Store> = recheck::store::open(&pg.url).await.expect("store");

    // Every job ends: succeeded, or dead-lettered for doomed.
    let start = Instant::now();
    let jobs = loop {
        let jobs = store.jobs(&JobFilter::default()).await.expect("jobs");
        if jobs.iter().all(|j| j.state.is_terminal()) {
            break jobs;
        }
        serve.assert_alive();
        worker.assert_alive();
        assert!(start.elapsed() < TIMEOUT, "jobs never finished: {jobs:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let dead: Vec<_> = jobs
        .iter()
        .filter(|j| j.state == JobState::DeadLettered)
        .collect();
    assert!(
        !dead.is_empty() && dead.iter().all(|j| j.tenant == "doomed"),
        "{jobs:?}"
    );
    assert!(jobs
        .iter()
        .any(|j| j.tenant == "acme" && j.state == JobState::Succeeded));

    // What the faults and the workload drove, as Prometheus scraped it.
    let p = prom_addr.as_str();
    let expectations: Vec<(String, f64)> = vec![
        (
            r#"sum(recheck_queue_dead_lettered_jobs_total{job="recheck-worker",tenant="doomed",reason="attempts_exhausted"})"#.into(),
            dead.len() as f64,
        ),
        (
            r#"sum(recheck_worker_sla_breaches_total{job="recheck-worker",severity="high"})"#.into(),
            1.0,
        ),
        (
            r#"sum(recheck_events_publish_failures_total{job="recheck-worker",sink="webhook"})"#.into(),
            1.0,
        ),
        (
            r#"sum(recheck_events_published_total{job="recheck-worker",sink="nats"})"#.into(),
            1.0,
        ),
        (
            r#"sum(recheck_worker_jobs_failed_total{job="recheck-worker",executor="http"})"#.into(),
            2.0 * dead.len() as f64,
        ),
        (
            r#"sum(recheck_input_appended_documents_total{job="recheck-serve",kind="advisory"})"#.into(),
            appended as f64,
        ),
        (
            r#"sum(recheck_input_rejected_documents_total{job="recheck-serve",reason="validation"})"#.into(),
            1.0,
        ),
        (
            r#"sum(recheck_engine_window_duration_seconds_count{job="recheck-serve"})"#.into(),
            5.0,
        ),
        (
            r#"sum(recheck_planner_jobs_planned_total{job="recheck-serve"})"#.into(),
            jobs.len() as f64,
        ),
        (
            r#"sum(recheck_queue_dispatched_jobs_total{job="recheck-serve"})"#.into(),
            jobs.len() as f64,
        ),
        (
            r#"sum(recheck_http_requests_total{job="recheck-serve",route="/api/v1/sboms",status="200"})"#.into(),
            5.0,
        ),
        (
            r#"max(recheck_engine_arrangement_records{job="recheck-serve",arrangement="entries"})"#.into(),
            1.0,
        ),
    ];
    let start = Instant::now();
    loop {
        let short: Vec<String> = expectations
            .iter()
            .map(|(q, min)| (q, min, scalar(p, q)))
            // NaN (no answer yet) counts as short.
            .filter(|(_, min, got)| got.partial_cmp(min).is_none_or(|o| o.is_lt()))
            .map(|(q, min, got)| format!("{q}: {got}, want at least {min}"))
            .collect();
        if short.is_empty() {
            break;
        }
        prom.assert_alive();
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "Prometheus never saw:\n{}",
            short.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Recording rules and alerts are evaluated every second; let them run on
    // the final values and the range functions see two samples of each.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let mut failures = Vec::new();
    let mut asked = BTreeSet::new();
    let dashboard = dashboard_queries();
    assert!(dashboard.len() >= 20, "{}", dashboard.len());
    let rules = rules();
    let mut queries: Vec<(String, String)> = dashboard
        .into_iter()
        .map(|q| ("dashboard".to_string(), q))
        .collect();
    for (name, alert, expr) in &rules {
        if *alert {
            queries.push((format!("alert {name}"), strip_threshold(expr)));
        } else {
            queries.push((format!("recording rule {name}"), expr.clone()));
            // And the series the rule records.
            queries.push((format!("recorded {name}"), name.clone()));
        }
    }
    for (source, q) in &queries {
        if !asked.insert(q.clone()) {
            continue;
        }
        match query(p, q) {
            Ok(series) if !series.is_empty() => {}
            Ok(_) => failures.push(format!("{source}: no series for {q}")),
            Err(e) => failures.push(format!("{source}: {q}: {e}")),
        }
    }
    // What a scrape costs, for the record (seen with --nocapture).
    for job in ["recheck-serve", "recheck-worker"] {
        eprintln!(
            "{job}: {} samples per scrape, {:.1} ms",
            scalar(p, &format!(r#"max(scrape_samples_scraped{{job="{job}"}})"#)),
            1000.0
                * scalar(
                    p,
                    &format!(r#"max(scrape_duration_seconds{{job="{job}"}})"#)
                ),
        );
    }
    eprintln!("{} distinct queries asked", asked.len());
    assert!(asked.len() >= 40, "only {} distinct queries", asked.len());
    assert!(
        failures.is_empty(),
        "{} of {} queries failed:\n{}",
        failures.len(),
        asked.len(),
        failures.join("\n")
    );

    drop(prom);
    drop(worker);
    drop(serve);
    queue.purge().await.expect("purge");
    pg.drop_schema().await;
}
