//! The dispatcher moves recheck jobs from the store's outbox to the queue.
//!
//! The store is the source of truth: a window commit writes its jobs as
//! `planned` in the same transaction as its ledger entry, and only the
//! dispatcher turns them into queue messages. It enqueues first and marks
//! them `queued` after, so a crash in between leaves a job planned and
//! enqueued; the next dispatch enqueues it again and the queue's
//! de-duplication of `(job_id, attempt)` drops the copy. Nothing is lost, and
//! within the de-dup window nothing is doubled.
//!
//! A queue that lost its contents (a Redis without persistence, a fresh
//! JetStream stream, a restarted in-process queue) is refilled from the store:
//! [`refill`] enqueues again every job the store still holds as `queued`.
//!
//! Everything here is async and holds no state between calls, so a
//! long-running process can call it from any task and drop a call to cancel
//! it (what was enqueued but not marked is then re-sent by the next call).

use chrono::{DateTime, SecondsFormat, Utc};

use crate::model::{self, JobState, RecheckJob};
use crate::queue::{self, Enqueued, Queue, QueueError, QueuedJob};
use crate::store::{JobFilter, Store, StoreError};

use super::failpoint;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DispatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("job {id}: {message}")]
    Job { id: String, message: String },
}

pub type Result<T, E = DispatchError> = std::result::Result<T, E>;

/// What one [`dispatch`] or [`refill`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dispatched {
    /// Jobs handed to the queue.
    pub enqueued: usize,
    /// Of those, how many the queue already had (its de-dup answer).
    pub duplicates: usize,
    /// Jobs moved planned → queued in the store.
    pub marked: usize,
}

impl Dispatched {
    /// Sum of two reports.
    pub fn add(&mut self, other: Dispatched) {
        self.enqueued += other.enqueued;
        self.duplicates += other.duplicates;
        self.marked += other.marked;
    }
}

/// Jobs taken from the outbox per round trip.
pub const BATCH: usize = 500;

/// The queue's priority class for a job's priority.
pub fn queue_priority(p: model::Priority) -> queue::Priority {
    match p {
        model::Priority::Emergency => queue::Priority::Emergency,
        model::Priority::High => queue::Priority::High,
        model::Priority::Normal => queue::Priority::Normal,
    }
}

/// The queue message for `job` as it enters the queue: routing facts and, as
/// payload, the canonical JSON (RFC 8785) of the job in state `queued`. The
/// attempt is the one the worker will run next.
pub fn queued_job(job: &RecheckJob) -> Result<QueuedJob> {
    let bad = |message: String| DispatchError::Job {
        id: job.id.clone(),
        message,
    };
    // An escalated job goes in with its escalation's urgency.
    let deadline = DateTime::parse_from_rfc3339(job.effective_deadline())
        .map_err(|e| bad(format!("SLA deadline {:?}: {e}", job.effective_deadline())))?
        .with_timezone(&Utc);
    let mut queued = job.clone();
    queued.state = JobState::Queued;
    let payload = crate::attest::canonical::to_vec(&queued)
        .map_err(|e| bad(format!("encoding the job: {e}")))?;
    Ok(QueuedJob {
        job_id: job.id.clone(),
        attempt: job.attempt + 1,
        tenant: job.tenant.clone(),
        priority: queue_priority(job.effective_priority()),
        deadline,
        payload,
    })
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

async fn enqueue_all(queue: &dyn Queue, jobs: &[RecheckJob]) -> Result<Dispatched> {
    let mut done = Dispatched::default();
    for job in jobs {
        let message = queued_job(job)?;
        let tenant = message.tenant.clone();
        match queue.enqueue(message).await? {
            Enqueued::Duplicate => done.duplicates += 1,
            Enqueued::Accepted => crate::metrics::get().dispatched(&tenant),
        }
        done.enqueued += 1;
        failpoint::hit(failpoint::MID_DISPATCH);
    }
    Ok(done)
}

/// Move every planned job of the outbox to the queue and mark it queued, in
/// batches of [`BATCH`] (window, id order), until the outbox is empty.
pub async fn dispatch(store: &dyn Store, queue: &dyn Queue) -> Result<Dispatched> {
    let mut total = Dispatched::default();
    loop {
        let jobs = store.outbox(BATCH).await?;
        if jobs.is_empty() {
            return Ok(total);
        }
        failpoint::hit(failpoint::AFTER_JOB_WRITE);
        let mut done = enqueue_all(queue, &jobs).await?;
        let ids: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
        done.marked = store.mark_dispatched(&ids, &now()).await?;
        tracing::debug!(
            enqueued = done.enqueued,
            duplicates = done.duplicates,
            marked = done.marked,
            "dispatched"
        );
        total.add(done);
        if jobs.len() < BATCH {
            return Ok(total);
        }
    }
}

/// Enqueue again every job the store holds as `queued`: after the queue lost
/// its contents. Jobs the queue still has (within its de-dup window) come
/// back as duplicates; beyond that window a worker may see a job twice and
/// fences the copy with the store's compare-and-set transitions. Marks
/// nothing.
pub async fn refill(store: &dyn Store, queue: &dyn Queue) -> Result<Dispatched> {
    let jobs = store
        .jobs(&JobFilter {
            state: Some(JobState::Queued),
            ..JobFilter::default()
        })
        .await?;
    let done = enqueue_all(queue, &jobs).await?;
    tracing::info!(
        enqueued = done.enqueued,
        duplicates = done.duplicates,
        "queue refilled from the store"
    );
    Ok(done)
}

/// Whether the queue looks like it lost jobs: some tenant has fewer jobs in
/// the queue (waiting or leased) than the store holds as `queued` for it.
/// Each store-queued job must be in the queue (a worker moves it to
/// `running` before it acks), so fewer means some were lost.
pub async fn queue_lost_jobs(store: &dyn Store, queue: &dyn Queue) -> Result<bool> {
    let jobs = store
        .jobs(&JobFilter {
            state: Some(JobState::Queued),
            ..JobFilter::default()
        })
        .await?;
    let mut per_tenant: std::collections::BTreeMap<&str, u64> = Default::default();
    for job in &jobs {
        *per_tenant.entry(job.tenant.as_str()).or_default() += 1;
    }
    for (tenant, queued) in per_tenant {
        let depth = queue.depth(tenant).await?;
        if depth.pending + depth.leased < queued {
            return Ok(true);
        }
    }
    Ok(false)
}
