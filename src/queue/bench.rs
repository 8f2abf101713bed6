//! Queue throughput for `recheck bench`: jobs/s through enqueue, lease and
//! ack on one backend, the queue's share of the end-to-end job rate. The
//! suite also runs real jobs through each queue with the worker and its
//! policy evaluator (`worker::bench`).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use futures_util::{stream, StreamExt, TryStreamExt};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{open, Enqueued, ErrorKind, Priority, Queue, QueueError, QueueOptions, QueuedJob};

#[derive(Debug, Clone)]
pub struct QueueBenchConfig {
    pub jobs: usize,
    /// Jobs per `lease` call.
    pub batch: usize,
    /// Jobs are spread round-robin over this many tenants.
    pub tenants: usize,
    /// Enqueues and acks in flight at once (one worker pipelining).
    pub concurrency: usize,
    /// Jobs for the end-to-end run through the worker (policy evaluator).
    pub worker_jobs: usize,
    /// Worker slots for that run.
    pub worker_concurrency: usize,
}

impl Default for QueueBenchConfig {
    fn default() -> Self {
        QueueBenchConfig {
            jobs: 10_000,
            batch: 64,
            tenants: 4,
            concurrency: 32,
            worker_jobs: 1_000,
            worker_concurrency: 4,
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct QueueBench {
    pub backend: &'static str,
    pub jobs: usize,
    pub batch: usize,
    pub tenants: usize,
    pub concurrency: usize,
    pub enqueue_seconds: f64,
    pub drain_seconds: f64,
    pub enqueue_jobs_per_second: f64,
    /// Lease + ack.
    pub drain_jobs_per_second: f64,
    /// Enqueue + lease + ack, the queue's ceiling for the end-to-end rate.
    pub end_to_end_jobs_per_second: f64,
    /// Deliveries of a job already seen (at-least-once; expected 0 with the
    /// benchmark's long lease).
    pub redeliveries: usize,
}

/// Opens `url` under a prefix of its own (`recheck_bench_<pid>`), pushes
/// `config.jobs` jobs through enqueue, lease and ack, checks every job came
/// out exactly once, and purges what it made.
pub async fn run(url: &str, config: &QueueBenchConfig) -> Result<QueueBench, QueueError> {
    let options = QueueOptions {
        prefix: format!("recheck_bench_{}", std::process::id()),
        lease: Duration::from_secs(60),
        ..QueueOptions::default()
    };
    let queue = open(url, options).await?;
    queue.purge().await?;
    let result = measure(&*queue, config).await;
    queue.purge().await?;
    result
}

fn bench_job(n: usize, tenants: usize) -> QueuedJob {
    let job_id = hex::encode(Sha256::digest(format!("bench-job-{n}").as_bytes()));
    let tenant = format!("tenant-{}", n % tenants.max(1));
    let priority = Priority::ALL[n % 3];
    // Shaped like a planned RecheckJob: an artifact, a window and reasons.
    let artifact = hex::encode(Sha256::digest(
        format!("bench-artifact-{}", n / 4).as_bytes(),
    ));
    let payload = format!(
        r#"{{"job_id":"{job_id}","tenant":"{tenant}","kind":"reevaluate","artifact":"sha256:{artifact}","window":{},"reasons":[{{"advisory":"GHSA-{:04x}-bench","direction":"added"}}],"priority":"{priority}"}}"#,
        n / 100,
        n % 0xffff,
    );
    QueuedJob {
        job_id,
        attempt: 1,
        tenant,
        priority,
        deadline: Utc
            .timestamp_opt(1_767_225_600 + n as i64, 0)
            .single()
            .unwrap_or_default(),
        payload: payload.into_bytes(),
    }
}

async fn measure(queue: &dyn Queue, config: &QueueBenchConfig) -> Result<QueueBench, QueueError> {
    let parallel = config.concurrency.max(1);
    let started = Instant::now();
    let accepted: Vec<Enqueued> = stream::iter(0..config.jobs)
        .map(|n| queue.enqueue(bench_job(n, config.tenants)))
        .buffer_unordered(parallel)
        .try_collect()
        .await?;
    let enqueue_seconds = started.elapsed().as_secs_f64();
    if accepted.iter().any(|e| *e != Enqueued::Accepted) {
        return Err(QueueError::new(
            ErrorKind::Backend,
            "benchmark jobs were taken for duplicates",
        ));
    }

    let drain_started = Instant::now();
    let mut seen = HashSet::new();
    let mut redeliveries = 0;
    let mut idle_since: Option<Instant> = None;
    while seen.len() < config.jobs {
        let batch = queue.lease("bench", config.batch.max(1)).await?;
        if batch.is_empty() {
            // Nothing visible yet is fine for a moment (a stream backend may
            // lag its own counts); for long it means jobs were lost.
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_secs(10) {
                return Err(QueueError::new(
                    ErrorKind::Backend,
                    format!("only {} of {} jobs came out", seen.len(), config.jobs),
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        idle_since = None;
        for d in &batch {
            if !seen.insert(d.job.job_id.clone()) {
                redeliveries += 1;
            }
        }
        stream::iter(&batch)
            .map(|d| queue.ack(&d.token))
            .buffer_unordered(parallel)
            .try_collect::<()>()
            .await?;
    }
    let drain_seconds = drain_started.elapsed().as_secs_f64();
    let rate = |secs: f64| {
        if secs > 0.0 {
            config.jobs as f64 / secs
        } else {
            0.0
        }
    };
    Ok(QueueBench {
        backend: queue.backend(),
        jobs: config.jobs,
        batch: config.batch,
        tenants: config.tenants,
        concurrency: parallel,
        enqueue_seconds,
        drain_seconds,
        enqueue_jobs_per_second: rate(enqueue_seconds),
        drain_jobs_per_second: rate(drain_seconds),
        end_to_end_jobs_per_second: rate(enqueue_seconds + drain_seconds),
        redeliveries,
    })
}
