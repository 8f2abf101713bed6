//! The dispatcher on each queue backend (in-process, Redis Streams, NATS
//! JetStream; the servers used for real, each test under its own prefix):
//! the bundled samples' three windows are committed through the production
//! pipeline into the embedded store, leaving planned jobs in its outbox.
//! Dispatch moves every one to the queue exactly once — also when a crash
//! had already enqueued one without marking it — and marks it queued; the
//! queue message carries the job's canonical JSON, its priority class and
//! SLA deadline. After the queue loses its contents (purge: Redis keys
//! flushed, fresh JetStream streams, a new in-process queue) the loss is
//! detected and `refill` puts back exactly the jobs the store holds as
//! queued; refilling again within the de-dup window adds nothing.

mod common;
#[path = "common/store_fixture.rs"]
mod store_fixture;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use recheck::core::dispatcher::{self, queued_job, Dispatched};
use recheck::core::pipeline::Pipeline;
use recheck::core::planner::Planner;
use recheck::engine::EngineConfig;
use recheck::model::{JobState, RecheckJob};
use recheck::queue::{self, Delivery, ErrorKind, Queue, QueueOptions};
use recheck::store::{JobFilter, Store};
use store_fixture::{closed_at, fixture};

/// A store holding the fixture's three committed windows and their planned
/// jobs.
fn planned_store(path: &std::path::Path) -> String {
    let url = path.display().to_string();
    let mut pipeline = Pipeline::open(
        &url,
        &EngineConfig::default(),
        Planner::default(),
        Box::new(closed_at),
    )
    .unwrap();
    for records in &fixture().windows {
        pipeline.push(records).unwrap();
    }
    pipeline.shutdown();
    url
}

async fn open_queue(backend: &str) -> Option<Arc<dyn Queue>> {
    let (url, var) = match backend {
        "memory" => ("memory://".to_string(), ""),
        "redis" => (
            std::env::var("RECHECK_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
            "RECHECK_REDIS_URL",
        ),
        "nats" => (
            std::env::var("RECHECK_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
            "RECHECK_NATS_URL",
        ),
        other => panic!("unknown backend {other}"),
    };
    let options = QueueOptions {
        prefix: format!("rcdispatch_{backend}_{}", std::process::id()),
        lease: Duration::from_secs(60),
        dedup_window: Duration::from_secs(300),
        ..QueueOptions::default()
    };
    match queue::open(&url, options).await {
        Ok(q) => {
            q.purge().await.unwrap();
            Some(q)
        }
        Err(e) if e.kind == ErrorKind::Connect => {
            common::skip(&format!(
                "{backend} queue at {url} unreachable ({e}): set {var}"
            ));
            None
        }
        Err(e) => panic!("opening the {backend} queue: {e}"),
    }
}

/// Lease everything the queue hands out (acking it) until it has nothing
/// for a while.
async fn drain(q: &dyn Queue) -> Vec<Delivery> {
    let mut out = Vec::new();
    let mut idle = 0;
    while idle < 3 {
        let got = q.lease("dispatch-test", 100).await.unwrap();
        if got.is_empty() {
            idle += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        idle = 0;
        for d in &got {
            q.ack(&d.token).await.unwrap();
        }
        out.extend(got);
    }
    out
}

async fn queued(store: &dyn Store) -> Vec<RecheckJob> {
    store
        .jobs(&JobFilter {
            state: Some(JobState::Queued),
            ..JobFilter::default()
        })
        .await
        .unwrap()
}

/// Each stored job exactly once among `deliveries`, as the dispatcher
/// encodes it.
fn check_delivered(deliveries: &[Delivery], jobs: &[RecheckJob]) {
    let ids: Vec<&str> = deliveries.iter().map(|d| d.job.job_id.as_str()).collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "a job id delivered twice: {ids:?}");
    let expected: BTreeSet<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(unique, expected);
    for d in deliveries {
        let job = jobs.iter().find(|j| j.id == d.job.job_id).unwrap();
        assert_eq!(d.job, queued_job(job).unwrap());
        let carried: RecheckJob = serde_json::from_slice(&d.job.payload).unwrap();
        assert_eq!(
            carried,
            RecheckJob {
                state: JobState::Queued,
                ..job.clone()
            }
        );
        assert_eq!(d.job.attempt, 1);
        assert_eq!(d.job.tenant, job.tenant);
        assert_eq!(
            d.job.deadline,
            chrono::DateTime::parse_from_rfc3339(&job.sla_deadline).unwrap()
        );
    }
}

async fn dispatch_and_refill(backend: &str) {
    let Some(q) = open_queue(backend).await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // The pipeline runs its own runtime: build the store off this one.
    let path = tmp.path().join("s.redb");
    let url = std::thread::spawn(move || planned_store(&path))
        .join()
        .unwrap();
    let store = recheck::store::open(&url).await.unwrap();
    let planned = store.outbox(1000).await.unwrap();
    assert!(planned.len() >= 4, "{planned:?}");
    assert!(!dispatcher::queue_lost_jobs(store.as_ref(), q.as_ref())
        .await
        .unwrap());

    // A crash had enqueued the first job without marking it.
    q.enqueue(queued_job(&planned[0]).unwrap()).await.unwrap();
    let done = dispatcher::dispatch(store.as_ref(), q.as_ref())
        .await
        .unwrap();
    assert_eq!(
        done,
        Dispatched {
            enqueued: planned.len(),
            duplicates: 1,
            marked: planned.len()
        }
    );
    assert!(store.outbox(1000).await.unwrap().is_empty());
    let jobs = queued(store.as_ref()).await;
    assert_eq!(jobs.len(), planned.len());
    for job in &jobs {
        let history = store.job_history(&job.id).await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(
            (history[0].from, history[0].to),
            (JobState::Planned, JobState::Queued)
        );
    }
    // Nothing left to dispatch; the queue holds what the store says.
    assert_eq!(
        dispatcher::dispatch(store.as_ref(), q.as_ref())
            .await
            .unwrap(),
        Dispatched::default()
    );
    assert!(!dispatcher::queue_lost_jobs(store.as_ref(), q.as_ref())
        .await
        .unwrap());

    // The queue loses everything: detected, refilled from the store.
    q.purge().await.unwrap();
    assert!(dispatcher::queue_lost_jobs(store.as_ref(), q.as_ref())
        .await
        .unwrap());
    let refilled = dispatcher::refill(store.as_ref(), q.as_ref())
        .await
        .unwrap();
    assert_eq!(
        (refilled.enqueued, refilled.duplicates, refilled.marked),
        (jobs.len(), 0, 0)
    );
    assert!(!dispatcher::queue_lost_jobs(store.as_ref(), q.as_ref())
        .await
        .unwrap());
    // Refilling a queue that still has them adds nothing (de-dup window).
    let again = dispatcher::refill(store.as_ref(), q.as_ref())
        .await
        .unwrap();
    assert_eq!(again.duplicates, jobs.len());
    let delivered = drain(q.as_ref()).await;
    check_delivered(&delivered, &jobs);
    q.purge().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_and_refill_on_memory() {
    dispatch_and_refill("memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_and_refill_on_redis() {
    dispatch_and_refill("redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_and_refill_on_nats() {
    dispatch_and_refill("nats").await;
}
