//! The worker: takes recheck jobs off the queue, judges each artifact's
//! current findings with the policy evaluator, runs the configured executor,
//! and turns the result into a signed completion event that is stored and
//! published. It is the same code in `recheck worker` (separate processes on
//! a shared store and queue) and in `recheck serve` (a [`WorkerPool`] inside
//! the server process).
//!
//! The store is the source of truth and the fence. Delivery is at-least-once,
//! so every step is a compare-and-set job transition:
//! - `queued → running` (attempt n+1) takes a job; a delivery whose job is
//!   already finished (succeeded, superseded, dead-lettered, cancelled) is
//!   only acknowledged;
//! - a delivery of a job still `running` means its previous holder lost the
//!   lease (it died or stalled): that attempt is recorded as failed and the
//!   job taken over (`running → failed → retrying → running`);
//! - a failed attempt goes `running → failed`, then `retrying → queued`
//!   with a backoff that never reaches past the job's SLA deadline, or
//!   `failed → dead_lettered` with the reason;
//! - a job whose artifact already has a newer job waiting is marked
//!   `superseded` and not run (the newer evaluation covers it);
//! - completion stores the event first (insert-if-absent under an id derived
//!   from the job id, so a second completion stores nothing), publishes it,
//!   and only then moves `running → succeeded`.
//!
//! The signed statement depends only on the store's content for the job's
//! window (see [`context`]); attempts, timings and the executor's answer go
//! into separate records beside it (`recheck.job.attempt@1` per attempt,
//! `recheck.job.execution@1` once the job is done), stored as events too.

pub mod bench;
pub mod context;
pub mod executor;
pub mod http;
pub mod policy;
pub mod retry;
pub mod sink;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, watch};
use tracing::Instrument;

use crate::attest::keys::SigningKey;
use crate::attest::{canonical, statement, AttestError};
use crate::model::{
    CompletionEvent, FindingStatus, JobState, JobTransition, Priority, Rating, RecheckJob,
    StoredEvent,
};
use crate::queue::{self, Delivery, Queue, QueueError};
use crate::store::{ImpactQuery, JobFilter, Store, StoreError};

use context::InputIndex;
use executor::{ExecutionRequest, Executor, ExecutorAnswer, ExecutorError};
use policy::{EvalContext, Evaluation, LoadedPolicy};
use retry::{RetryDecision, RetryPolicy, SlaTable};
use sink::EventSink;

pub const COMPLETED_KIND: &str = "recheck.job.completed@1";
pub const ATTEMPT_KIND: &str = "recheck.job.attempt@1";
pub const EXECUTION_KIND: &str = "recheck.job.execution@1";

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Queue(#[from] QueueError),
    #[error("signing: {0}")]
    Attest(#[from] AttestError),
    #[error("job {job}: {message}")]
    Job { job: String, message: String },
}

/// The id of an event of `kind` about `job` (and `attempt`, for attempt
/// records): sha256 hex, so every worker computes the same one.
pub fn event_id(kind: &str, job: &str, attempt: Option<u32>) -> String {
    let text = match attempt {
        Some(a) => format!("{kind}:{job}:{a}"),
        None => format!("{kind}:{job}"),
    };
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The execution record of `job`'s latest finish (an operator's retry
/// finishes a job again, recorded under its last attempt), if it finished.
pub async fn execution_record(
    store: &dyn Store,
    job: &RecheckJob,
) -> Result<Option<ExecutionRecord>, WorkerError> {
    for id in [
        event_id(EXECUTION_KIND, &job.id, Some(job.attempt)),
        event_id(EXECUTION_KIND, &job.id, None),
    ] {
        if let Some(event) = store.event(&id).await? {
            let record = serde_json::from_slice(&event.body).map_err(|e| WorkerError::Job {
                job: job.id.clone(),
                message: format!("execution record {id}: {e}"),
            })?;
            return Ok(Some(record));
        }
    }
    Ok(None)
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The consumer name on the queue and in attempt records.
    pub name: String,
    /// Jobs run at once.
    pub concurrency: usize,
    pub retry: RetryPolicy,
    pub sla: SlaTable,
    /// Wait between polls of an empty queue.
    pub idle_poll: Duration,
    /// The queue's lease: held jobs are extended at a third of it.
    pub lease: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            name: format!("worker-{}", std::process::id()),
            concurrency: 4,
            retry: RetryPolicy::default(),
            sla: SlaTable::default(),
            idle_poll: Duration::from_millis(100),
            lease: queue::QueueOptions::default().lease,
        }
    }
}

/// What handling one delivery came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Completed {
        event_id: String,
        published: bool,
    },
    /// Already finished, or another worker holds it: acknowledged only.
    Duplicate(JobState),
    Superseded {
        by: String,
    },
    Retrying {
        attempt: u32,
        delay: Duration,
    },
    DeadLettered {
        reason: String,
    },
}

/// One attempt as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub job_id: String,
    pub attempt: u32,
    pub worker: String,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u64,
    /// `succeeded`, `failed` or `lost` (the lease expired under its holder).
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<ExecutorAnswer>,
}

/// Everything about a finished job that is not signed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    pub job_id: String,
    /// `succeeded` or `dead_lettered`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub deadline: String,
    pub attempts: Vec<AttemptRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<Evaluation>,
}

/// The pieces a worker needs; shared by every task of a pool.
pub struct Worker {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn Queue>,
    pub policy: Arc<LoadedPolicy>,
    pub key: Arc<SigningKey>,
    pub executor: Arc<dyn Executor>,
    pub sinks: Vec<Arc<dyn EventSink>>,
    pub config: WorkerConfig,
    index: InputIndex,
    handled: AtomicU64,
    /// Every event this worker stores, as it is stored (`recheck serve`'s
    /// live event stream listens here).
    feed: Option<broadcast::Sender<StoredEvent>>,
    /// Wakes idle slots before their next poll ([`Worker::wake`]).
    wake: tokio::sync::Notify,
}

/// A job as judged for one attempt: what the statement and SLA need.
struct Judged {
    event: CompletionEvent,
    evaluation: Evaluation,
    deadline: DateTime<Utc>,
    /// The worst affected severity the job is about (its SLA class).
    worst: Option<Rating>,
}

/// The severity a job's priority stands for, when its findings could not be
/// read.
fn priority_severity(priority: Priority) -> Option<Rating> {
    match priority {
        Priority::Emergency => Some(Rating::Critical),
        Priority::High => Some(Rating::High),
        Priority::Normal => None,
    }
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Worker {
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn Queue>,
        policy: Arc<LoadedPolicy>,
        key: Arc<SigningKey>,
        executor: Arc<dyn Executor>,
        sinks: Vec<Arc<dyn EventSink>>,
        config: WorkerConfig,
    ) -> Worker {
        Worker {
            store,
            queue,
            policy,
            key,
            executor,
            sinks,
            config,
            index: InputIndex::default(),
            handled: AtomicU64::new(0),
            feed: None,
            wake: tokio::sync::Notify::new(),
        }
    }

    /// Jobs were just enqueued: idle slots look at the queue now instead of
    /// at their next poll (a dispatcher in the same process calls this).
    pub fn wake(&self) {
        self.wake.notify_waiters();
    }

    /// Also hand every stored event (completions, attempt and execution
    /// records) to `feed`; nobody listening is fine.
    pub fn with_event_feed(mut self, feed: broadcast::Sender<StoredEvent>) -> Worker {
        self.feed = Some(feed);
        self
    }

    fn announce(&self, event: &StoredEvent) {
        if let Some(feed) = &self.feed {
            // An error only says no stream is open right now.
            let _ = feed.send(event.clone());
        }
    }

    /// Store `event` (insert-if-absent) and feed it when it is new.
    async fn store_event(&self, event: &StoredEvent) -> Result<bool, WorkerError> {
        let new = self.store.put_event(event).await?;
        if new {
            self.announce(event);
        }
        Ok(new)
    }

    /// Deliveries handled so far (any outcome).
    pub fn handled(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }

    /// The completion event and evaluation of `job` from the store's
    /// current content: a pure function of it (no clock), so replaying the
    /// same window signs the same bytes.
    pub async fn judge(
        &self,
        job: &RecheckJob,
    ) -> Result<(CompletionEvent, Evaluation), WorkerError> {
        let j = self.judge_inner(job).await?;
        Ok((j.event, j.evaluation))
    }

    async fn judge_inner(&self, job: &RecheckJob) -> Result<Judged, WorkerError> {
        let mut findings = self
            .store
            .impact(&ImpactQuery::Artifact {
                tenant: job.tenant.clone(),
                artifact: job.artifact.clone(),
            })
            .await?;
        findings.sort();
        let mut advisories: Vec<&str> = findings.iter().map(|f| f.advisory.as_str()).collect();
        advisories.dedup();
        let ctx = self
            .index
            .context(self.store.as_ref(), job, &advisories)
            .await?;
        let as_of = match ctx.closed_at {
            Some(t) => t,
            None => DateTime::parse_from_rfc3339(&job.sla_deadline)
                .map_err(|e| WorkerError::Job {
                    job: job.id.clone(),
                    message: format!("no close stamp and sla_deadline unreadable: {e}"),
                })?
                .to_utc(),
        };
        let evaluation = self.policy.evaluate(
            &findings,
            &EvalContext {
                runtime: ctx.runtime,
                as_of,
                cvss: ctx.cvss.clone(),
            },
        );
        // The SLA follows the worst affected finding the job is about.
        let worst = findings
            .iter()
            .filter(|f| f.status == FindingStatus::Affected)
            .filter(|f| job.reasons.iter().any(|r| r.advisory == f.advisory))
            .filter_map(|f| f.severity)
            .max()
            .or(priority_severity(job.priority));
        let deadline = self.config.sla.deadline(as_of, worst, ctx.runtime);
        let event = CompletionEvent {
            job_id: job.id.clone(),
            tenant: job.tenant.clone(),
            artifact: job.artifact.clone(),
            artifact_sha256: ctx.artifact_sha256,
            window: job.window,
            reasons: job.reasons.clone(),
            policy_version: self.policy.version.clone(),
            verdict: evaluation.verdict,
            findings_sha256: canonical::sha256_hex(&findings)?,
            explain_trace_sha256: evaluation.trace_sha256()?,
        };
        Ok(Judged {
            event,
            evaluation,
            deadline,
            worst,
        })
    }

    /// The signed envelope JSON of a completion event.
    pub fn sign(&self, event: &CompletionEvent) -> Result<Vec<u8>, WorkerError> {
        let signed = statement::sign_completion(event, &self.key)?.to_json()?;
        crate::metrics::get().events_signed.inc();
        Ok(signed)
    }

    async fn transition(
        &self,
        id: &str,
        from: JobState,
        to: JobState,
        attempt: u32,
    ) -> Result<bool, WorkerError> {
        let t = JobTransition {
            from,
            to,
            at: now_text(),
            attempt,
        };
        Ok(self.store.transition_job(id, &t).await?)
    }

    async fn record_attempt(
        &self,
        record: &AttemptRecord,
        tenant: &str,
    ) -> Result<(), WorkerError> {
        let body = serde_json::to_vec(record).map_err(|e| WorkerError::Job {
            job: record.job_id.clone(),
            message: e.to_string(),
        })?;
        self.store_event(&StoredEvent {
            id: event_id(ATTEMPT_KIND, &record.job_id, Some(record.attempt)),
            tenant: tenant.to_string(),
            job: record.job_id.clone(),
            kind: ATTEMPT_KIND.to_string(),
            occurred_at: record.finished_at.clone(),
            body,
        })
        .await?;
        Ok(())
    }

    /// The attempt records of a job, 1..=last.
    pub async fn attempts(&self, job: &str, last: u32) -> Result<Vec<AttemptRecord>, WorkerError> {
        let mut out = Vec::new();
        for a in 1..=last {
            if let Some(e) = self
                .store
                .event(&event_id(ATTEMPT_KIND, job, Some(a)))
                .await?
            {
                if let Ok(r) = serde_json::from_slice(&e.body) {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    async fn record_execution(
        &self,
        job: &RecheckJob,
        record: &ExecutionRecord,
    ) -> Result<(), WorkerError> {
        let body = serde_json::to_vec(record).map_err(|e| WorkerError::Job {
            job: job.id.clone(),
            message: e.to_string(),
        })?;
        let mut event = StoredEvent {
            id: event_id(EXECUTION_KIND, &job.id, None),
            tenant: job.tenant.clone(),
            job: job.id.clone(),
            kind: EXECUTION_KIND.to_string(),
            occurred_at: now_text(),
            body,
        };
        if !self.store_event(&event).await? {
            // The job finished before and an operator retried it: this
            // finish is recorded under its last attempt (see
            // [`execution_record`]).
            event.id = event_id(EXECUTION_KIND, &job.id, Some(job.attempt));
            self.store_event(&event).await?;
        }
        Ok(())
    }

    /// A newer job of the same (tenant, artifact) that is waiting or done.
    async fn newer_job(&self, job: &RecheckJob) -> Result<Option<RecheckJob>, WorkerError> {
        let jobs = self
            .store
            .jobs(&JobFilter {
                tenant: Some(job.tenant.clone()),
                artifact: Some(job.artifact.clone()),
                ..JobFilter::default()
            })
            .await?;
        Ok(jobs.into_iter().find(|j| {
            j.window > job.window
                && matches!(
                    j.state,
                    JobState::Planned
                        | JobState::Queued
                        | JobState::Running
                        | JobState::Failed
                        | JobState::Retrying
                        | JobState::Succeeded
                )
        }))
    }

    /// Handle one delivery to the end (acked, nacked or dead-lettered).
    pub async fn handle(&self, d: &Delivery) -> Result<Outcome, WorkerError> {
        self.handled.fetch_add(1, Ordering::Relaxed);
        let metrics = crate::metrics::get();
        if d.deliveries > 1 {
            metrics.redelivered(&d.job.tenant);
        }
        let id = d.job.job_id.as_str();
        let Some(mut job) = self.store.job(id).await? else {
            let reason = format!("job {id} is not in the store");
            self.queue.dead_letter(&d.token, &reason).await?;
            metrics.dead_lettered(&d.job.tenant, "unknown_job");
            return Ok(Outcome::DeadLettered { reason });
        };
        if job.state == JobState::Planned {
            // Enqueued by a dispatcher that has not marked it yet.
            self.transition(id, JobState::Planned, JobState::Queued, job.attempt)
                .await?;
            job = self.reload(id).await?;
        }
        if job.state.is_terminal() {
            self.queue.ack(&d.token).await?;
            return Ok(Outcome::Duplicate(job.state));
        }
        if matches!(job.state, JobState::Queued | JobState::Retrying) {
            if let Some(newer) = self.newer_job(&job).await? {
                if self
                    .transition(id, job.state, JobState::Superseded, job.attempt)
                    .await?
                {
                    self.queue.ack(&d.token).await?;
                    metrics.jobs_superseded.inc();
                    return Ok(Outcome::Superseded { by: newer.id });
                }
                job = self.reload(id).await?;
            }
        }
        // Take the job for attempt n+1, taking it over from a holder whose
        // lease expired.
        let attempt = job.attempt + 1;
        let taken = match job.state {
            JobState::Queued | JobState::Retrying => {
                self.transition(id, job.state, JobState::Running, attempt)
                    .await?
            }
            JobState::Running | JobState::Failed => {
                let lost = job.attempt;
                if job.state == JobState::Running {
                    metrics.lease_expired(&job.tenant);
                    self.transition(id, JobState::Running, JobState::Failed, lost)
                        .await?;
                    let at = now_text();
                    self.record_attempt(
                        &AttemptRecord {
                            job_id: job.id.clone(),
                            attempt: lost,
                            worker: String::new(),
                            started_at: at.clone(),
                            finished_at: at,
                            duration_ms: 0,
                            outcome: "lost".into(),
                            error: Some(format!(
                                "lease expired (delivery {} of the job)",
                                d.deliveries
                            )),
                            answer: None,
                        },
                        &job.tenant,
                    )
                    .await?;
                }
                self.transition(id, JobState::Failed, JobState::Retrying, lost)
                    .await?
                    && self
                        .transition(id, JobState::Retrying, JobState::Running, attempt)
                        .await?
            }
            _ => false,
        };
        if !taken {
            // Someone else moved it between our read and our write.
            let now = self.reload(id).await?;
            self.queue.ack(&d.token).await?;
            return Ok(Outcome::Duplicate(now.state));
        }
        job.state = JobState::Running;
        job.attempt = attempt;
        self.run_attempt(&job, d).await
    }

    /// Whether the store still has `job` running in our attempt (a job taken
    /// over after a lost lease runs under a later attempt number).
    async fn still_ours(&self, job: &RecheckJob) -> Result<bool, WorkerError> {
        let now = self.reload(&job.id).await?;
        Ok(now.state == JobState::Running && now.attempt == job.attempt)
    }

    async fn reload(&self, id: &str) -> Result<RecheckJob, WorkerError> {
        self.store.job(id).await?.ok_or_else(|| WorkerError::Job {
            job: id.to_string(),
            message: "vanished from the store".into(),
        })
    }

    async fn run_attempt(&self, job: &RecheckJob, d: &Delivery) -> Result<Outcome, WorkerError> {
        let started = Instant::now();
        let metrics = crate::metrics::get();
        let labels = crate::metrics::KindExecutor::new(job.kind, self.executor.name());
        let _busy = metrics.job_started(&labels);
        let started_at = now_text();
        let judged = self.judge_inner(job).await;
        let result = match &judged {
            Ok(j) => {
                let request = ExecutionRequest {
                    job,
                    attempt: job.attempt,
                    policy_version: &self.policy.version,
                    evaluation: &j.evaluation,
                };
                self.with_heartbeat(d, self.executor.execute(request)).await
            }
            Err(e) => Err(ExecutorError::retryable(format!("judging the job: {e}"))),
        };
        let record = AttemptRecord {
            job_id: job.id.clone(),
            attempt: job.attempt,
            worker: self.config.name.clone(),
            started_at,
            finished_at: now_text(),
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            outcome: if result.is_ok() {
                "succeeded"
            } else {
                "failed"
            }
            .into(),
            error: result.as_ref().err().map(|e| e.message.clone()),
            answer: result.as_ref().ok().cloned(),
        };
        metrics.job_finished(&labels, started, result.is_ok());
        self.record_attempt(&record, &job.tenant).await?;
        match result {
            Ok(_) => self.complete(job, d, judged?).await,
            Err(e) => {
                let (deadline, worst) = match judged {
                    Ok(j) => (Some(j.deadline), j.worst),
                    Err(_) => (None, priority_severity(job.priority)),
                };
                self.fail(job, d, &e, deadline, worst).await
            }
        }
    }

    /// Run `work`, extending the lease at a third of its length meanwhile.
    async fn with_heartbeat<T>(
        &self,
        d: &Delivery,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        let every = (self.config.lease / 3).max(Duration::from_millis(50));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = tick.tick() => {
                    if let Err(e) = self.queue.extend(&d.token).await {
                        tracing::warn!(error = %e, "could not extend the lease");
                    }
                }
            }
        }
    }

    async fn complete(
        &self,
        job: &RecheckJob,
        d: &Delivery,
        judged: Judged,
    ) -> Result<Outcome, WorkerError> {
        if !self.still_ours(job).await? {
            // Taken over (or finished) meanwhile: the new holder completes it.
            self.queue.ack(&d.token).await.ok();
            return Ok(Outcome::Duplicate(self.reload(&job.id).await?.state));
        }
        let body = self.sign(&judged.event)?;
        let stored = StoredEvent {
            id: event_id(COMPLETED_KIND, &job.id, None),
            tenant: job.tenant.clone(),
            job: job.id.clone(),
            kind: COMPLETED_KIND.to_string(),
            occurred_at: now_text(),
            body,
        };
        let new = self.store.put_event(&stored).await?;
        if new {
            crate::metrics::get().event_published(&crate::metrics::Sink::store(), true);
        }
        // A stored event whose job is not marked succeeded was stored by a
        // worker that died before publishing: publish it (again).
        let publish = new || self.reload(&job.id).await?.state != JobState::Succeeded;
        if publish {
            self.announce(&stored);
            for sink in &self.sinks {
                if let Err(e) = sink::publish(sink.as_ref(), &stored).await {
                    tracing::warn!(sink = sink.name(), error = %e, "publishing the completion event");
                }
            }
        }
        let attempts = self.attempts(&job.id, job.attempt).await?;
        self.record_execution(
            job,
            &ExecutionRecord {
                job_id: job.id.clone(),
                outcome: "succeeded".into(),
                completion_event: Some(stored.id.clone()),
                reason: None,
                deadline: judged.deadline.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                attempts,
                evaluation: Some(judged.evaluation),
            },
        )
        .await?;
        self.transition(&job.id, JobState::Running, JobState::Succeeded, job.attempt)
            .await?;
        if !crate::metrics::get().job_done(job.attempt, judged.deadline, judged.worst) {
            tracing::warn!(job = %job.id, "completed after its SLA deadline");
        }
        self.queue.ack(&d.token).await?;
        Ok(Outcome::Completed {
            event_id: stored.id,
            published: publish,
        })
    }

    async fn fail(
        &self,
        job: &RecheckJob,
        d: &Delivery,
        error: &ExecutorError,
        deadline: Option<DateTime<Utc>>,
        worst: Option<Rating>,
    ) -> Result<Outcome, WorkerError> {
        let n = job.attempt;
        if !self.still_ours(job).await?
            || !self
                .transition(&job.id, JobState::Running, JobState::Failed, n)
                .await?
        {
            // Taken over meanwhile: the new holder decides.
            self.queue.ack(&d.token).await.ok();
            return Ok(Outcome::Duplicate(self.reload(&job.id).await?.state));
        }
        // Without a judged deadline (the store could not be read), fall back
        // to the planner's.
        let deadline = deadline
            .or_else(|| {
                DateTime::parse_from_rfc3339(&job.sla_deadline)
                    .ok()
                    .map(|t| t.to_utc())
            })
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let (decision, cause) = if error.retryable {
            let decision = self.config.retry.decide(&job.id, n, Utc::now(), deadline);
            let cause = if n >= self.config.retry.max_attempts {
                "attempts_exhausted"
            } else {
                "deadline"
            };
            (decision, cause)
        } else {
            (
                RetryDecision::GiveUp(format!("attempt {n} failed and is not retryable")),
                "not_retryable",
            )
        };
        match decision {
            RetryDecision::RetryAfter(delay) => {
                self.transition(&job.id, JobState::Failed, JobState::Retrying, n)
                    .await?;
                self.transition(&job.id, JobState::Retrying, JobState::Queued, n)
                    .await?;
                self.queue.nak(&d.token, delay).await?;
                Ok(Outcome::Retrying { attempt: n, delay })
            }
            RetryDecision::GiveUp(why) => {
                let reason = format!("{why}: {}", error.message);
                self.transition(&job.id, JobState::Failed, JobState::DeadLettered, n)
                    .await?;
                let attempts = self.attempts(&job.id, n).await?;
                self.record_execution(
                    job,
                    &ExecutionRecord {
                        job_id: job.id.clone(),
                        outcome: "dead_lettered".into(),
                        completion_event: None,
                        reason: Some(reason.clone()),
                        deadline: deadline.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                        attempts,
                        evaluation: None,
                    },
                )
                .await?;
                self.queue.dead_letter(&d.token, &reason).await?;
                let metrics = crate::metrics::get();
                metrics.dead_lettered(&job.tenant, cause);
                metrics.job_done(n, deadline, worst);
                Ok(Outcome::DeadLettered { reason })
            }
        }
    }

    /// One task's loop: lease a job, handle it, until `stop` turns true;
    /// a job in hand is finished first.
    async fn run_slot(self: Arc<Self>, slot: usize, mut stop: watch::Receiver<bool>) {
        let consumer = format!("{}-{slot}", self.config.name);
        loop {
            if *stop.borrow() {
                return;
            }
            // Listen for `wake` before looking, so a job enqueued between an
            // empty lease and the wait below is not left to the next poll.
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let batch = match self.queue.lease(&consumer, 1).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "lease failed");
                    Vec::new()
                }
            };
            let Some(d) = batch.into_iter().next() else {
                tokio::select! {
                    _ = tokio::time::sleep(self.config.idle_poll) => {}
                    _ = stop.changed() => {}
                    _ = woken => {}
                }
                continue;
            };
            let span = tracing::info_span!("job", id = %d.job.job_id, tenant = %d.job.tenant, delivery = d.deliveries);
            match self.handle(&d).instrument(span.clone()).await {
                Ok(outcome) => span.in_scope(|| tracing::info!(?outcome, "handled")),
                Err(e) => {
                    span.in_scope(|| tracing::warn!(error = %e, "job left to its lease"));
                    // Let the lease lapse faster: give it back at once.
                    self.queue.nak(&d.token, Duration::from_secs(1)).await.ok();
                }
            }
        }
    }
}

/// Tasks running a [`Worker`] on the current tokio runtime.
pub struct WorkerPool {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    worker: Arc<Worker>,
}

impl WorkerPool {
    /// Start `worker.config.concurrency` tasks.
    pub fn start(worker: Arc<Worker>) -> WorkerPool {
        let (stop, rx) = watch::channel(false);
        let tasks = (0..worker.config.concurrency.max(1))
            .map(|slot| tokio::spawn(worker.clone().run_slot(slot, rx.clone())))
            .collect();
        WorkerPool {
            stop,
            tasks,
            worker,
        }
    }

    pub fn worker(&self) -> &Arc<Worker> {
        &self.worker
    }

    /// Stop leasing, let the jobs in hand finish, and wait for the tasks.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        for t in self.tasks {
            if let Err(e) = t.await {
                tracing::warn!(error = %e, "worker task ended abnormally");
            }
        }
    }
}
