//! The worker's share of `recheck bench --suite queue`: jobs/s end to end —
//! dispatch into a queue, lease, policy evaluation over the stored snapshot,
//! signing, storing the event and execution record, ack — on an embedded
//! store filled through the real pipeline from the bundled samples.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::executor::PolicyExecutor;
use super::policy::LoadedPolicy;
use super::{Worker, WorkerConfig, WorkerPool};
use crate::attest::keys::SigningKey;
use crate::core::dispatcher::queued_job;
use crate::core::pipeline::Pipeline;
use crate::core::planner::Planner;
use crate::engine::record::InputRecord;
use crate::engine::EngineConfig;
use crate::formats;
use crate::model::{JobState, Scope};
use crate::queue::{self, QueueOptions};
use crate::store::{self, JobFilter};

/// The policy the benchmark evaluates with (every kind of condition).
const BENCH_POLICY: &str = r#"
default = "pass"
[[rule]]
name = "high-running"
verdict = "fail"
min_severity = "high"
runtime = ["running", "deployed", "unknown"]
vex_status = ["none", "affected", "under_investigation"]
[[rule]]
name = "scored-fixable"
verdict = "warn"
min_cvss = 4.0
fix_available = true
"#;

#[derive(Debug, Clone, Serialize)]
pub struct WorkerBench {
    pub backend: &'static str,
    pub jobs: usize,
    pub concurrency: usize,
    pub seconds: f64,
    pub jobs_per_second: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerBenchError {
    #[error("{0}")]
    Setup(String),
}

fn setup(e: impl std::fmt::Display) -> WorkerBenchError {
    WorkerBenchError::Setup(e.to_string())
}

/// Fill a fresh embedded store at `path` with one window: the sample
/// advisories and `artifacts` copies of the sample SBOMs (each its own
/// artifact, over four tenants), so the planner makes about one job per
/// artifact. Synchronous (the pipeline owns its runtime).
pub fn fill_store(path: &Path, artifacts: usize) -> Result<(), WorkerBenchError> {
    let samples = crate::samples::bundled_dir();
    let advisories =
        formats::load::load(&[samples.join("advisories")], formats::osv::parse_advisory);
    let sboms = formats::load::load(&[samples.join("sboms")], |name, bytes| {
        formats::parse_sbom(name, bytes, Scope::Global)
    });
    if sboms.items.is_empty() {
        return Err(setup("no sample SBOMs"));
    }
    let mut records: Vec<InputRecord> = advisories
        .items
        .into_iter()
        .map(|(_, advisory)| InputRecord::Advisory { advisory })
        .collect();
    for i in 0..artifacts {
        let (_, sbom) = &sboms.items[i % sboms.items.len()];
        let tenant = format!("tenant-{}", i % 4);
        let mut sbom = sbom.clone();
        sbom.artifact.id = format!("{}-{i}", sbom.artifact.id);
        sbom.scope = Scope::Tenant(tenant.clone());
        records.push(InputRecord::Sbom { tenant, sbom });
    }
    records.push(InputRecord::WindowClosed {
        window: 1,
        closed_at: None,
    });
    let url = path.to_string_lossy().to_string();
    let mut p = Pipeline::open(
        &url,
        &EngineConfig::default(),
        Planner::default(),
        Box::new(chrono::Utc::now),
    )
    .map_err(setup)?;
    p.push(&records).map_err(setup)?;
    p.shutdown();
    Ok(())
}

/// Dispatch every planned job of the store at `path` into the queue at
/// `queue_url` and run them with a worker pool of `concurrency` until all
/// are done.
pub async fn run(
    path: &Path,
    queue_url: &str,
    concurrency: usize,
) -> Result<WorkerBench, WorkerBenchError> {
    let store = store::open(&path.to_string_lossy()).await.map_err(setup)?;
    let options = QueueOptions {
        prefix: format!("recheck_bench_worker_{}", std::process::id()),
        lease: Duration::from_secs(60),
        ..QueueOptions::default()
    };
    let queue = queue::open(queue_url, options).await.map_err(setup)?;
    queue.purge().await.map_err(setup)?;
    let policy = Arc::new(LoadedPolicy::parse(BENCH_POLICY).map_err(setup)?);
    let key = Arc::new(SigningKey::from_seed(&[42; 32]).map_err(setup)?);
    let started = Instant::now();
    let jobs = store.outbox(usize::MAX).await.map_err(setup)?;
    for job in &jobs {
        queue
            .enqueue(queued_job(job).map_err(setup)?)
            .await
            .map_err(setup)?;
    }
    let ids: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
    store
        .mark_dispatched(&ids, &chrono::Utc::now().to_rfc3339())
        .await
        .map_err(setup)?;
    let worker = Arc::new(Worker::new(
        store.clone(),
        queue.clone(),
        policy,
        key,
        Arc::new(PolicyExecutor),
        Vec::new(),
        WorkerConfig {
            name: "bench".into(),
            concurrency,
            idle_poll: Duration::from_millis(2),
            lease: Duration::from_secs(60),
            ..WorkerConfig::default()
        },
    ));
    let pool = WorkerPool::start(worker);
    let mut idle = Instant::now();
    let mut last_open = usize::MAX;
    loop {
        let open = store
            .jobs(&JobFilter::default())
            .await
            .map_err(setup)?
            .iter()
            .filter(|j| !j.state.is_terminal())
            .count();
        if open == 0 {
            break;
        }
        if open != last_open {
            last_open = open;
            idle = Instant::now();
        } else if idle.elapsed() > Duration::from_secs(60) {
            pool.shutdown().await;
            return Err(setup(format!("{open} jobs made no progress for 60 s")));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    pool.shutdown().await;
    let done = store
        .jobs(&JobFilter {
            state: Some(JobState::Succeeded),
            ..JobFilter::default()
        })
        .await
        .map_err(setup)?
        .len();
    queue.purge().await.map_err(setup)?;
    Ok(WorkerBench {
        backend: queue.backend(),
        jobs: done,
        concurrency,
        seconds,
        jobs_per_second: if seconds > 0.0 {
            done as f64 / seconds
        } else {
            0.0
        },
    })
}
