//! The worker against real services: a PostgreSQL store (a fresh schema per
//! test, dropped afterwards) filled through the real pipeline from the
//! bundled samples, Redis Streams / NATS JetStream / in-process queues, and
//! local HTTP servers standing in for a Scanner endpoint. Unreachable
//! services are a loud SKIP (`RECHECK_POSTGRES_URI`, `RECHECK_REDIS_URL`,
//! `RECHECK_NATS_URL`), a failure under `CI=true`.
//!
//! Until the dispatcher lands, the tests move the store's outbox into the
//! queue themselves with the dispatcher's mapping (`core::dispatcher::queued_job`).

mod common;
#[path = "common/store_fixture.rs"]
mod store_fixture;

use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use common::skip;
use recheck::attest::dsse::Envelope;
use recheck::attest::keys::SigningKey;
use recheck::attest::statement::verify_completion;
use recheck::core::dispatcher::queued_job;
use recheck::core::pipeline::Pipeline;
use recheck::core::planner::Planner;
use recheck::engine::record::InputRecord;
use recheck::engine::EngineConfig;
use recheck::model::{JobState, Priority, RecheckJob, RuntimeState, Verdict};
use recheck::queue::{self, Queue, QueueOptions, TenantLimit, TenantLimits};
use recheck::store::{self, JobFilter, Store};
use recheck::worker::executor::{
    ExecutionRequest, Executor, ExecutorAnswer, ExecutorError, HttpExecutor, PolicyExecutor,
};
use recheck::worker::policy::LoadedPolicy;
use recheck::worker::retry::{RetryPolicy, SlaTable};
use recheck::worker::sink::{self, EventSink};
use recheck::worker::{
    event_id, ExecutionRecord, Worker, WorkerConfig, WorkerPool, COMPLETED_KIND, EXECUTION_KIND,
};
use store_fixture::{fixture, ACME, GLOBEX};

const POLICY: &str = r#"
default = "pass"
[[rule]]
name = "high-in-use"
verdict = "fail"
min_severity = "high"
vex_status = ["none", "affected", "under_investigation"]
runtime = ["running", "deployed", "unknown"]
[[rule]]
name = "fixable"
verdict = "warn"
fix_available = true
"#;

const TIMEOUT: Duration = Duration::from_secs(120);

// ------------------------------------------------------------ services

fn pg_base() -> String {
    std::env::var("RECHECK_POSTGRES_URI")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn redis_url() -> String {
    std::env::var("RECHECK_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn nats_url() -> String {
    std::env::var("RECHECK_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn unique(test: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "rw_{}_{}_{test}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A PostgreSQL schema of its own, dropped on `cleanup`.
struct Pg {
    url: String,
    schema: String,
}

impl Pg {
    async fn new(test: &str) -> Option<Pg> {
        let base = pg_base();
        if let Err(e) = tokio_postgres::connect(&base, tokio_postgres::NoTls).await {
            skip(&format!(
                "PostgreSQL not reachable at {base} ({e}): set RECHECK_POSTGRES_URI"
            ));
            return None;
        }
        let schema = unique(test);
        Some(Pg {
            url: format!("{base}?schema={schema}"),
            schema,
        })
    }

    async fn cleanup(&self) {
        let (client, conn) = tokio_postgres::connect(&pg_base(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
            .await
            .unwrap();
    }
}

async fn open_queue(
    url: &str,
    prefix: &str,
    tweak: impl FnOnce(&mut QueueOptions),
) -> Option<Arc<dyn Queue>> {
    let mut options = QueueOptions {
        prefix: prefix.to_string(),
        lease: Duration::from_secs(10),
        max_deliver: 20,
        ..QueueOptions::default()
    };
    tweak(&mut options);
    match queue::open(url, options).await {
        Ok(q) => {
            q.purge().await.unwrap();
            Some(q)
        }
        Err(e) => {
            skip(&format!(
                "queue at {url} unreachable ({e}): set RECHECK_REDIS_URL / RECHECK_NATS_URL"
            ));
            None
        }
    }
}

// ------------------------------------------------------------------ data

/// The sample log (three windows) with acme's payments-api marked running.
fn sample_windows() -> Vec<Vec<InputRecord>> {
    let mut windows = fixture().windows.clone();
    let payments = windows[0]
        .iter()
        .find_map(|r| match r {
            InputRecord::Sbom { tenant, sbom }
                if tenant == ACME && sbom.artifact.name.as_deref() == Some("payments-api") =>
            {
                Some(sbom.artifact.id.clone())
            }
            _ => None,
        })
        .expect("payments-api in the samples");
    let close = windows[0].pop().unwrap();
    windows[0].push(InputRecord::ArtifactMetadata {
        tenant: ACME.into(),
        artifact: payments,
        labels: BTreeMap::new(),
        runtime: RuntimeState::Running,
    });
    windows[0].push(close);
    windows
}

/// `n` windows: the samples' advisories in the first, and in each the
/// samples' SBOMs for both tenants under artifact ids of that window (so
/// every window plans fresh jobs with later deadlines).
fn load_windows(n: usize) -> Vec<Vec<InputRecord>> {
    let base = &fixture().windows[0];
    (1..=n)
        .map(|w| {
            let mut records: Vec<InputRecord> = if w == 1 {
                base.iter()
                    .filter(|r| matches!(r, InputRecord::Advisory { .. }))
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            let sboms = base.iter().filter_map(|r| match r {
                InputRecord::Sbom { sbom, .. } => Some(sbom),
                _ => None,
            });
            let mut seen = std::collections::BTreeSet::new();
            for sbom in sboms {
                if !seen.insert(sbom.artifact.id.clone()) {
                    continue;
                }
                for tenant in [ACME, GLOBEX] {
                    let mut s = sbom.clone();
                    s.artifact.id = format!("{}-w{w}", s.artifact.id);
                    s.scope = recheck::model::Scope::Tenant(tenant.into());
                    records.push(InputRecord::Sbom {
                        tenant: tenant.into(),
                        sbom: s,
                    });
                }
            }
            records.push(InputRecord::WindowClosed {
                window: w as u64,
                closed_at: None,
            });
            records
        })
        .collect()
}

/// Runs `windows` through the real pipeline into the store at `url`; the
/// log writer's clock is `clock`.
async fn fill(url: &str, windows: Vec<Vec<InputRecord>>, clock: recheck::core::pipeline::Clock) {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        let mut p = Pipeline::open(&url, &EngineConfig::default(), Planner::default(), clock)
            .expect("pipeline");
        for w in &windows {
            p.push(w).expect("push");
        }
        p.shutdown();
    })
    .await
    .unwrap();
}

fn now_clock() -> recheck::core::pipeline::Clock {
    Box::new(Utc::now)
}

/// A clock that moves a second per reading from `start`.
fn stepping_clock(start: DateTime<Utc>) -> recheck::core::pipeline::Clock {
    let n = AtomicI64::new(0);
    Box::new(move || start + TimeDelta::seconds(n.fetch_add(1, Ordering::Relaxed)))
}

/// The dispatcher's step: the outbox into the queue, in the given order.
async fn dispatch(store: &dyn Store, queue: &dyn Queue, reverse: bool) -> Vec<RecheckJob> {
    let mut jobs = store.outbox(10_000).await.unwrap();
    if reverse {
        jobs.reverse();
    }
    for job in &jobs {
        queue.enqueue(queued_job(job).unwrap()).await.unwrap();
    }
    let ids: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
    store
        .mark_dispatched(&ids, &Utc::now().to_rfc3339())
        .await
        .unwrap();
    jobs
}

fn key() -> Arc<SigningKey> {
    Arc::new(SigningKey::from_seed(&[7; 32]).unwrap())
}

fn worker(
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    executor: Arc<dyn Executor>,
    sinks: Vec<Arc<dyn EventSink>>,
    tweak: impl FnOnce(&mut WorkerConfig),
) -> Arc<Worker> {
    let mut config = WorkerConfig {
        name: "test".into(),
        concurrency: 2,
        retry: RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(400),
            max_delay: Duration::from_secs(5),
            attempt_budget: Duration::from_secs(2),
        },
        idle_poll: Duration::from_millis(20),
        lease: Duration::from_secs(10),
        ..WorkerConfig::default()
    };
    tweak(&mut config);
    Arc::new(Worker::new(
        store,
        queue,
        Arc::new(LoadedPolicy::parse(POLICY).unwrap()),
        key(),
        executor,
        sinks,
        config,
    ))
}

/// Waits until no job of the store is waiting or running.
async fn settle(store: &dyn Store) -> Vec<RecheckJob> {
    let started = Instant::now();
    loop {
        let jobs = store.jobs(&JobFilter::default()).await.unwrap();
        if jobs.iter().all(|j| j.state.is_terminal()) {
            return jobs;
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "jobs still open: {:?}",
            jobs.iter()
                .map(|j| (j.id.get(..8), j.state, j.attempt))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn execution(store: &dyn Store, job: &str) -> ExecutionRecord {
    let e = store
        .event(&event_id(EXECUTION_KIND, job, None))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no execution record for {job}"));
    serde_json::from_slice(&e.body).unwrap()
}

/// Every job ended succeeded (with one verifiable completion event) or
/// superseded (by a newer job of its artifact, with no event).
async fn check_outcomes(store: &dyn Store, jobs: &[RecheckJob]) -> usize {
    let public = key().public_key().clone();
    let mut succeeded = 0;
    for job in jobs {
        let event = store
            .event(&event_id(COMPLETED_KIND, &job.id, None))
            .await
            .unwrap();
        match job.state {
            JobState::Succeeded => {
                succeeded += 1;
                let event = event.expect("a succeeded job has its event");
                let envelope = Envelope::from_json(&event.body).unwrap();
                let signed = verify_completion(&envelope, std::slice::from_ref(&public)).unwrap();
                assert_eq!(signed.job_id, job.id);
                assert_eq!(signed.window, job.window);
            }
            JobState::Superseded => {
                assert!(event.is_none());
                assert!(jobs.iter().any(|n| n.tenant == job.tenant
                    && n.artifact == job.artifact
                    && n.window > job.window));
            }
            other => panic!("job {} ended {other:?}", job.id),
        }
    }
    succeeded
}

/// One XRANGE entry: its id and field/value pairs.
type StreamEntry = (String, Vec<(String, Vec<u8>)>);

async fn stream_event_ids(stream: &str) -> Vec<String> {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let entries: Vec<StreamEntry> = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(&mut con)
        .await
        .unwrap();
    entries
        .into_iter()
        .filter_map(|(_, fields)| {
            fields
                .into_iter()
                .find(|(k, _)| k == "id")
                .map(|(_, v)| String::from_utf8(v).unwrap())
        })
        .collect()
}

async fn drop_stream(stream: &str) {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("DEL")
        .arg(stream)
        .query_async(&mut con)
        .await
        .unwrap();
}

// ------------------------------------------------------------ executors

/// Fails each job's first `failures` attempts, then succeeds; records when
/// each call came.
struct Flaky {
    failures: usize,
    calls: Mutex<HashMap<String, Vec<Instant>>>,
}

#[async_trait]
impl Executor for Flaky {
    async fn execute(&self, r: ExecutionRequest<'_>) -> Result<ExecutorAnswer, ExecutorError> {
        let n = {
            let mut calls = self.calls.lock().unwrap();
            let c = calls.entry(r.job.id.clone()).or_default();
            c.push(Instant::now());
            c.len()
        };
        if n <= self.failures {
            Err(ExecutorError::retryable(format!("scanner busy (call {n})")))
        } else {
            PolicyExecutor.execute(r).await
        }
    }
}

/// The order jobs were run in.
#[derive(Default)]
struct Recorder {
    runs: Mutex<Vec<(String, Priority, String, Instant)>>,
}

#[async_trait]
impl Executor for Recorder {
    async fn execute(&self, r: ExecutionRequest<'_>) -> Result<ExecutorAnswer, ExecutorError> {
        self.runs.lock().unwrap().push((
            r.job.tenant.clone(),
            r.job.priority,
            r.job.sla_deadline.clone(),
            Instant::now(),
        ));
        PolicyExecutor.execute(r).await
    }
}

// ----------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_twice_then_succeeding_is_retried_with_growing_delays() {
    let Some(pg) = Pg::new("flaky").await else {
        return;
    };
    let Some(queue) = open_queue(&redis_url(), &unique("flaky"), |_| {}).await else {
        return;
    };
    fill(&pg.url, sample_windows(), now_clock()).await;
    let store = store::open(&pg.url).await.unwrap();
    let planned = dispatch(store.as_ref(), queue.as_ref(), false).await;
    assert!(planned.len() >= 5, "{planned:?}");
    let flaky = Arc::new(Flaky {
        failures: 2,
        calls: Mutex::default(),
    });
    let w = worker(store.clone(), queue.clone(), flaky.clone(), vec![], |_| {});
    let pool = WorkerPool::start(w.clone());
    let jobs = settle(store.as_ref()).await;
    pool.shutdown().await;

    let succeeded = check_outcomes(store.as_ref(), &jobs).await;
    assert!(succeeded >= 3, "{jobs:?}");
    // payments-api's window-1 job is covered by its window-2 job (VEX).
    assert!(jobs.iter().any(|j| j.state == JobState::Superseded));
    let retry = &w.config.retry;
    let calls = flaky.calls.lock().unwrap().clone();
    for job in jobs.iter().filter(|j| j.state == JobState::Succeeded) {
        assert_eq!(job.attempt, 3, "{job:?}");
        let at = &calls[&job.id];
        assert_eq!(at.len(), 3);
        let (gap1, gap2) = (at[1] - at[0], at[2] - at[1]);
        let (d1, d2) = (retry.backoff(&job.id, 1), retry.backoff(&job.id, 2));
        assert!(d2 > d1, "backoff must grow: {d1:?} then {d2:?}");
        assert!(
            gap1 >= d1 && gap2 >= d2,
            "waited {gap1:?}, {gap2:?} for {d1:?}, {d2:?}"
        );
        let states: Vec<(JobState, u32)> = store
            .job_history(&job.id)
            .await
            .unwrap()
            .iter()
            .map(|t| (t.to, t.attempt))
            .collect();
        use JobState::*;
        assert_eq!(
            states,
            vec![
                (Queued, 0),
                (Running, 1),
                (Failed, 1),
                (Retrying, 1),
                (Queued, 1),
                (Running, 2),
                (Failed, 2),
                (Retrying, 2),
                (Queued, 2),
                (Running, 3),
                (Succeeded, 3)
            ]
        );
        let record = execution(store.as_ref(), &job.id).await;
        assert_eq!(record.outcome, "succeeded");
        let outcomes: Vec<&str> = record.attempts.iter().map(|a| a.outcome.as_str()).collect();
        assert_eq!(outcomes, ["failed", "failed", "succeeded"]);
        assert!(record.attempts[0]
            .error
            .as_deref()
            .unwrap()
            .contains("scanner busy"));
    }
    // The running payments-api with its high-severity findings fails the policy.
    queue.purge().await.unwrap();
    pg.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_succeeding_job_is_dead_lettered_before_its_deadline() {
    let Some(pg) = Pg::new("never").await else {
        return;
    };
    let Some(queue) = open_queue(&redis_url(), &unique("never"), |_| {}).await else {
        return;
    };
    fill(&pg.url, vec![fixture().windows[0].clone()], now_clock()).await;
    let store = store::open(&pg.url).await.unwrap();
    let planned = dispatch(store.as_ref(), queue.as_ref(), false).await;
    let never = Arc::new(Flaky {
        failures: usize::MAX,
        calls: Mutex::default(),
    });
    // Every job is due 10 s after its window closed; attempts are unlimited,
    // so only the deadline stops the retries.
    let w = worker(store.clone(), queue.clone(), never.clone(), vec![], |c| {
        c.sla = SlaTable::parse("*=10s").unwrap();
        c.retry.max_attempts = 100;
        c.retry.attempt_budget = Duration::from_millis(500);
    });
    let pool = WorkerPool::start(w);
    let jobs = settle(store.as_ref()).await;
    pool.shutdown().await;
    let dead = queue.list_dead_letters(100).await.unwrap();
    assert_eq!(dead.len(), planned.len());
    for job in &jobs {
        assert_eq!(job.state, JobState::DeadLettered, "{job:?}");
        let record = execution(store.as_ref(), &job.id).await;
        let deadline = DateTime::parse_from_rfc3339(&record.deadline)
            .unwrap()
            .to_utc();
        let letter = dead.iter().find(|d| d.job.job_id == job.id).unwrap();
        assert!(letter.reason.contains("SLA deadline"), "{}", letter.reason);
        assert!(
            letter.dead_lettered_at < deadline,
            "{} vs {deadline}",
            letter.dead_lettered_at
        );
        assert!(job.attempt >= 2, "{job:?}");
        assert_eq!(record.attempts.len() as u32, job.attempt);
        assert!(store
            .event(&event_id(COMPLETED_KIND, &job.id, None))
            .await
            .unwrap()
            .is_none());
    }
    queue.purge().await.unwrap();
    pg.cleanup().await;
}

/// A local HTTP server: answers each job's requests from a script (status,
/// or `None` for "never answer"), 200 once the script is used up; with
/// `hang_first` the very first request of all is never answered.
struct Scripted {
    url: String,
    hits: Arc<Mutex<Vec<String>>>,
}

async fn scripted_server(script: Vec<Option<u16>>, hang_first: bool) -> Scripted {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/run", listener.local_addr().unwrap());
    let hits: Arc<Mutex<Vec<String>>> = Arc::default();
    let per_job: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let h = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (hits, per_job, script) = (h.clone(), per_job.clone(), script.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Headers, then the body by Content-Length.
                let (head_end, length) = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (i + 4, len);
                    }
                };
                while buf.len() < head_end + length {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let job = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Recheck-Job-Id: "))
                    .unwrap_or("")
                    .to_string();
                let first = {
                    let mut hits = hits.lock().unwrap();
                    hits.push(job.clone());
                    hits.len() == 1
                };
                if hang_first && first {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    return;
                }
                let n = {
                    let mut m = per_job.lock().unwrap();
                    let c = m.entry(job).or_default();
                    *c += 1;
                    *c
                };
                match script.get(n - 1).copied().unwrap_or(Some(200)) {
                    None => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    Some(status) => {
                        let body = format!("{{\"scanner\":\"test\",\"status\":{status}}}");
                        let reply = format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = sock.write_all(reply.as_bytes()).await;
                    }
                }
            });
        }
    });
    Scripted { url, hits }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_executor_success_5xx_retried_and_timeout() {
    let Some(pg) = Pg::new("http").await else {
        return;
    };
    let Some(queue) = open_queue(&redis_url(), &unique("http"), |_| {}).await else {
        return;
    };
    fill(&pg.url, vec![fixture().windows[0].clone()], now_clock()).await;
    let store = store::open(&pg.url).await.unwrap();
    dispatch(store.as_ref(), queue.as_ref(), false).await;
    // Per job: a 503, then no answer (timeout), then 200.
    let server = scripted_server(vec![Some(503), None], false).await;
    let http = Arc::new(HttpExecutor::new(&server.url, Duration::from_millis(800)).unwrap());
    let w = worker(store.clone(), queue.clone(), http, vec![], |_| {});
    let pool = WorkerPool::start(w);
    let jobs = settle(store.as_ref()).await;
    pool.shutdown().await;
    assert_eq!(check_outcomes(store.as_ref(), &jobs).await, jobs.len());
    for job in &jobs {
        let record = execution(store.as_ref(), &job.id).await;
        let a = &record.attempts;
        assert_eq!(a.len(), 3, "{a:?}");
        assert!(
            a[0].error.as_deref().unwrap().contains("answered 503"),
            "{a:?}"
        );
        assert!(
            a[1].error.as_deref().unwrap().contains("no answer within"),
            "{a:?}"
        );
        assert!(a[1].duration_ms >= 800);
        let answer = a[2].answer.as_ref().unwrap();
        assert_eq!(answer.status, Some(200));
        assert_eq!(answer.body["scanner"], "test");
    }
    assert_eq!(server.hits.lock().unwrap().len(), jobs.len() * 3);
    queue.purge().await.unwrap();
    pg.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_job_is_redelivered_and_completed_exactly_once() {
    let Some(pg) = Pg::new("kill").await else {
        return;
    };
    let prefix = unique("kill");
    let Some(queue) = open_queue(&nats_url(), &prefix, |o| o.lease = Duration::from_secs(2)).await
    else {
        return;
    };
    fill(&pg.url, vec![fixture().windows[0].clone()], now_clock()).await;
    let store = store::open(&pg.url).await.unwrap();
    let planned = dispatch(store.as_ref(), queue.as_ref(), false).await;
    // The first request hangs: the first worker is killed while it waits
    // for its first job's answer.
    let server = scripted_server(vec![], true).await;
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let key_path = dir.path().join("key.pem");
    std::fs::write(&key_path, key().to_pkcs8_pem().unwrap().as_bytes()).unwrap();
    let stream = format!("{prefix}:events");
    let spawn = |name: &str| -> Child {
        Command::new(env!("CARGO_BIN_EXE_recheck"))
            .args(["worker", "--store", &pg.url, "--queue", &nats_url()])
            .args([
                "--queue-prefix",
                &prefix,
                "--lease",
                "2",
                "--concurrency",
                "1",
            ])
            .arg("--policy")
            .arg(&policy)
            .arg("--signing-key")
            .arg(&key_path)
            .args(["--executor-url", &server.url, "--executor-timeout", "30"])
            .args(["--events", &format!("{}?stream={stream}", redis_url())])
            .args(["--backoff-ms", "200", "--name", name])
            .stdin(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut first = spawn("first");
    let started = Instant::now();
    while server.hits.lock().unwrap().is_empty() {
        assert!(
            started.elapsed() < TIMEOUT,
            "the first worker never called the executor"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let victim = server.hits.lock().unwrap()[0].clone();
    assert_eq!(
        store.job(&victim).await.unwrap().unwrap().state,
        JobState::Running
    );
    let mut second = spawn("second");
    let jobs = settle(store.as_ref()).await;
    // SIGTERM: a graceful stop.
    Command::new("kill")
        .arg(second.id().to_string())
        .status()
        .unwrap();
    let status = second.wait().unwrap();
    assert!(status.success(), "{status:?}");

    let succeeded = check_outcomes(store.as_ref(), &jobs).await;
    assert_eq!(succeeded, planned.len());
    let published = stream_event_ids(&stream).await;
    assert_eq!(published.len(), succeeded, "{published:?}");
    for job in &jobs {
        let id = event_id(COMPLETED_KIND, &job.id, None);
        assert_eq!(
            published.iter().filter(|p| **p == id).count(),
            1,
            "job {}",
            job.id
        );
    }
    let killed = execution(store.as_ref(), &victim).await;
    assert_eq!(killed.attempts[0].outcome, "lost", "{killed:?}");
    assert_eq!(killed.attempts.last().unwrap().outcome, "succeeded");
    drop_stream(&stream).await;
    queue.purge().await.unwrap();
    pg.cleanup().await;
}

async fn mixed_load(
    queue_url: &str,
    limits: TenantLimits,
    reverse: bool,
) -> Option<Vec<(String, Priority, String, Instant)>> {
    let pg = Pg::new("mixed").await?;
    let queue = open_queue(queue_url, &unique("mixed"), |o| o.tenant_limits = limits).await?;
    let start = Utc::now();
    fill(&pg.url, load_windows(4), stepping_clock(start)).await;
    let store = store::open(&pg.url).await.unwrap();
    let planned = dispatch(store.as_ref(), queue.as_ref(), reverse).await;
    assert!(planned.len() >= 16);
    let recorder = Arc::new(Recorder::default());
    let w = worker(
        store.clone(),
        queue.clone(),
        recorder.clone(),
        vec![],
        |c| {
            c.concurrency = 1;
        },
    );
    let pool = WorkerPool::start(w);
    let jobs = settle(store.as_ref()).await;
    pool.shutdown().await;
    assert_eq!(check_outcomes(store.as_ref(), &jobs).await, planned.len());
    queue.purge().await.unwrap();
    pg.cleanup().await;
    let runs = recorder.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), planned.len());
    Some(runs)
}

fn tenant_runs<'a>(
    runs: &'a [(String, Priority, String, Instant)],
    t: &str,
) -> Vec<&'a (String, Priority, String, Instant)> {
    runs.iter().filter(|r| r.0 == t).collect()
}

/// No tenant gets two turns in a row while the other still has work.
fn assert_fair(runs: &[(String, Priority, String, Instant)]) {
    let total_acme = tenant_runs(runs, ACME).len();
    let total_globex = runs.len() - total_acme;
    let (mut a, mut g) = (0usize, 0usize);
    for r in runs {
        if r.0 == ACME {
            a += 1
        } else {
            g += 1
        }
        if a < total_acme && g < total_globex {
            assert!(
                a.abs_diff(g) <= 1,
                "unfair after {a} acme and {g} globex runs"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edf_fairness_and_throughput_limit_under_mixed_load() {
    // In-process queue, jobs enqueued latest deadline first: exact EDF.
    let Some(runs) = mixed_load("memory://", TenantLimits::default(), true).await else {
        return;
    };
    for t in [ACME, GLOBEX] {
        let deadlines: Vec<&String> = tenant_runs(&runs, t).iter().map(|r| &r.2).collect();
        assert!(deadlines.is_sorted(), "{t}: {deadlines:?}");
    }
    assert_fair(&runs);

    // Redis Streams, enqueued in plan order: most urgent class first, then
    // earliest deadline (FIFO within a class) — EDF per class.
    let Some(runs) = mixed_load(&redis_url(), TenantLimits::default(), false).await else {
        return;
    };
    for t in [ACME, GLOBEX] {
        let keys: Vec<(Priority, &String)> =
            tenant_runs(&runs, t).iter().map(|r| (r.1, &r.2)).collect();
        let mut by_class: BTreeMap<Priority, Vec<&String>> = BTreeMap::new();
        for (p, d) in &keys {
            by_class.entry(*p).or_default().push(d);
        }
        for (p, ds) in by_class {
            assert!(ds.is_sorted(), "{t} {p:?}: {ds:?}");
        }
        let classes: Vec<Priority> = keys.iter().map(|k| k.0).collect();
        assert!(
            classes.is_sorted_by(|a, b| a >= b),
            "{t}: urgent classes first: {classes:?}"
        );
    }
    assert_fair(&runs);

    // A throughput limit on globex (2 deliveries/s) does not hold acme up.
    let limits = TenantLimits {
        per_tenant: BTreeMap::from([(
            GLOBEX.to_string(),
            TenantLimit {
                concurrency: None,
                per_second: Some(2),
            },
        )]),
        ..TenantLimits::default()
    };
    let Some(runs) = mixed_load(&redis_url(), limits, false).await else {
        return;
    };
    let globex: Vec<Instant> = tenant_runs(&runs, GLOBEX).iter().map(|r| r.3).collect();
    for w in globex.windows(3) {
        assert!(
            w[2] - w[0] >= Duration::from_millis(900),
            "3 globex runs within {:?}",
            w[2] - w[0]
        );
    }
    let acme_done = tenant_runs(&runs, ACME).last().unwrap().3;
    assert!(acme_done < *globex.last().unwrap());
    let acme_span = acme_done - runs[0].3;
    assert!(
        acme_span < globex[globex.len() - 1] - globex[0],
        "acme was held up: {acme_span:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_the_same_window_signs_identical_envelopes() {
    let Some(a) = Pg::new("replay_a").await else {
        return;
    };
    let Some(b) = Pg::new("replay_b").await else {
        return;
    };
    let Some(queue) = open_queue(&redis_url(), &unique("replay"), |_| {}).await else {
        return;
    };
    let at = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
        .unwrap()
        .to_utc();
    fill(&a.url, sample_windows(), stepping_clock(at)).await;
    fill(&b.url, sample_windows(), stepping_clock(at)).await;
    let store_a = store::open(&a.url).await.unwrap();
    let store_b = store::open(&b.url).await.unwrap();
    // Store A's jobs run through a worker; store B is only judged.
    dispatch(store_a.as_ref(), queue.as_ref(), false).await;
    let wa = worker(
        store_a.clone(),
        queue.clone(),
        Arc::new(PolicyExecutor),
        vec![],
        |_| {},
    );
    let pool = WorkerPool::start(wa.clone());
    let jobs = settle(store_a.as_ref()).await;
    pool.shutdown().await;
    let wb = worker(
        store_b.clone(),
        queue.clone(),
        Arc::new(PolicyExecutor),
        vec![],
        |_| {},
    );
    let mut verdicts = Vec::new();
    for job in jobs.iter().filter(|j| j.state == JobState::Succeeded) {
        let stored = store_a
            .event(&event_id(COMPLETED_KIND, &job.id, None))
            .await
            .unwrap()
            .unwrap();
        let (event_a, _) = wa.judge(job).await.unwrap();
        let (event_b, trace) = wb.judge(job).await.unwrap();
        assert_eq!(
            wa.sign(&event_a).unwrap(),
            stored.body,
            "replay on the same store"
        );
        assert_eq!(
            wb.sign(&event_b).unwrap(),
            stored.body,
            "replay on a second store"
        );
        // The explain trace names what matched and what suppressed it.
        for t in &trace.trace {
            assert!(!t.matched.is_empty() && !t.component.is_empty());
            if let Some(vex) = &t.vex {
                if vex.suppressed {
                    assert!(vex.source.is_some() && t.decided_by.starts_with("suppressed by VEX"));
                }
            }
        }
        verdicts.push((job.artifact.clone(), event_a.verdict, trace));
    }
    assert!(
        // The samples' advisories carry no CVSS vectors, so the fixable rule
        // (a `fixed` event closes the matched range) is what warns.
        verdicts.iter().any(|v| v.1 == Verdict::Warn
            && v.2
                .trace
                .iter()
                .any(|t| t.fix_available && t.decided_by == "rule fixable")),
        "{verdicts:?}"
    );
    assert!(verdicts
        .iter()
        .flat_map(|v| &v.2.trace)
        .any(|t| t.vex.as_ref().is_some_and(|v| v.suppressed)));
    queue.purge().await.unwrap();
    a.cleanup().await;
    b.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_cli_refuses_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_recheck"))
        .args(["worker", "--store"])
        .arg(dir.path().join("recheck.redb"))
        .args([
            "--queue",
            "redis://127.0.0.1:6379",
            "--policy",
            "p.toml",
            "--signing-key",
            "k.pem",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs a store shared between processes"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_events_reach_the_redis_and_nats_sinks() {
    let Some(pg) = Pg::new("sinks").await else {
        return;
    };
    let prefix = unique("sinks");
    let Some(queue) = open_queue("memory://", &prefix, |_| {}).await else {
        return;
    };
    fill(&pg.url, vec![fixture().windows[0].clone()], now_clock()).await;
    let store = store::open(&pg.url).await.unwrap();
    let planned = dispatch(store.as_ref(), queue.as_ref(), false).await;
    let stream = format!("{prefix}:events");
    let subject = format!("{prefix}.events");
    let nats = async_nats::connect(nats_url()).await;
    let Ok(nats) = nats else {
        skip("NATS unreachable: set RECHECK_NATS_URL");
        return;
    };
    let mut sub = nats.subscribe(subject.clone()).await.unwrap();
    nats.flush().await.unwrap();
    let sinks: Vec<Arc<dyn EventSink>> = vec![
        Arc::from(
            sink::open(&format!("{}?stream={stream}", redis_url()))
                .await
                .unwrap(),
        ),
        Arc::from(
            sink::open(&format!("{}?subject={subject}", nats_url()))
                .await
                .unwrap(),
        ),
    ];
    let w = worker(
        store.clone(),
        queue.clone(),
        Arc::new(PolicyExecutor),
        sinks,
        |_| {},
    );
    let pool = WorkerPool::start(w);
    let jobs = settle(store.as_ref()).await;
    pool.shutdown().await;
    assert_eq!(check_outcomes(store.as_ref(), &jobs).await, planned.len());
    let on_redis = stream_event_ids(&stream).await;
    assert_eq!(on_redis.len(), planned.len());
    use futures_util::StreamExt;
    for _ in 0..planned.len() {
        let msg = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .unwrap()
            .unwrap();
        let id = msg
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .unwrap()
            .as_str()
            .to_string();
        assert!(on_redis.contains(&id));
        let envelope = Envelope::from_json(&msg.payload).unwrap();
        verify_completion(&envelope, &[key().public_key().clone()]).unwrap();
    }
    drop_stream(&stream).await;
    pg.cleanup().await;
}
