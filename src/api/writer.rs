//! The single log writer behind the API: one thread owns the [`Pipeline`]
//! (input log → engine → planner → window commit) and takes writes and live
//! queries from the HTTP handlers over a channel, in arrival order. The
//! engine is synchronous and runs its own timely threads, so nothing of it
//! runs on a tokio thread.
//!
//! Windows: the writer closes the open window as soon as its inbox is empty
//! (a lone write is visible at once), or earlier when `max_records` records
//! or `max_delay_ms` have accumulated under a steady stream of writes. That
//! choice is appended to the log as a `WindowClosed` record with its close
//! stamp, so a replay of the log never depends on timing.
//!
//! Runs are planned here too (a selector is resolved against the engine's
//! artifact directory, which only this thread may read), and once a second
//! the writer ticks the cron [`Scheduler`] between windows, so a schedule
//! fires inside `recheck serve` with no other process.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::core::pipeline::{Committed, Pipeline, PipelineError};
use crate::core::runs::{RunPlan, RunPlanner, RunRequest};
use crate::core::runtime::{self, RuntimeEvent, RUNNING_SLA};
use crate::core::schedule::Scheduler;
use crate::engine::record::InputRecord;
use crate::engine::{ImpactAnswer, ImpactQuery};
use crate::model::{FindingStatus, JobKind, RecheckJob, RunTrigger, RuntimeState, Scope, Selector};
use crate::store::{JobFilter, RunOutcome};

use super::config::WindowPolicy;

/// Something that must exist before a removal is written (a removal of
/// something absent is a 404, not a log record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    Advisory(String),
    Artifact { tenant: String, artifact: String },
    Vex { scope: Scope, document: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("{0} not found")]
    NotFound(String),
    /// The store or engine failed; after a failed append the writer
    /// refuses writes from then on.
    #[error("the log writer failed: {0}")]
    Failed(String),
    #[error("the log writer has stopped")]
    Stopped,
    /// The request cannot be carried out as asked (`field` names the part
    /// at fault); nothing was written.
    #[error("{field}: {detail}")]
    Invalid { field: String, detail: String },
}

/// One artifact a run covers, with its findings as of the last closed window
/// (what a dry run shows as the impact set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactImpact {
    pub tenant: String,
    pub artifact: String,
    pub affected: usize,
    pub suppressed: usize,
}

/// A planned run: committed (`outcome`), or only simulated (`impact`).
#[derive(Debug, Clone)]
pub struct RunAnswer {
    pub plan: RunPlan,
    /// `None` for a dry run.
    pub outcome: Option<RunOutcome>,
    /// The selected artifacts' findings (dry runs only).
    pub impact: Vec<ArtifactImpact>,
}

/// Where one accepted write went.
#[derive(Debug)]
pub struct Appended {
    /// Input-log sequence numbers, one per record, in order.
    pub seqs: Vec<u64>,
    /// Resolves with the window that made the records visible.
    pub applied: Option<oneshot::Receiver<u64>>,
}

/// What a runtime event did.
#[derive(Debug, Clone)]
pub struct RuntimeAnswer {
    /// Seq of the metadata record, and the window that applied it.
    pub seq: u64,
    pub window: Option<u64>,
    /// The artifact's runtime state before the event.
    pub previous: RuntimeState,
    /// Pending jobs escalated (as escalated).
    pub escalated: Vec<RecheckJob>,
    /// The recheck run started for an artifact that started running with
    /// findings but no verdict.
    pub recheck: Option<RunPlan>,
}

/// A live query's answer and whether the thing asked about is known at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryAnswer {
    pub answer: ImpactAnswer,
    pub known: bool,
}

enum Command {
    Append {
        records: Vec<InputRecord>,
        expect: Option<Expect>,
        wait: bool,
        reply: oneshot::Sender<Result<Appended, WriteError>>,
    },
    Query {
        query: ImpactQuery,
        reply: oneshot::Sender<Result<QueryAnswer, WriteError>>,
    },
    Run {
        request: Box<RunRequest>,
        dry_run: bool,
        reply: oneshot::Sender<Result<RunAnswer, WriteError>>,
    },
    Runtime {
        event: RuntimeEvent,
        reply: oneshot::Sender<Result<RuntimeAnswer, WriteError>>,
    },
    /// Fire the cron schedules that are due.
    Tick,
}

/// How often the writer ticks the scheduler (cron's resolution is a minute;
/// a second keeps a fire within a second of its time).
const SCHEDULER_TICK: Duration = Duration::from_secs(1);

/// What `/readyz` reads: how far the writer has got.
#[derive(Debug, Default)]
pub struct WriterStatus {
    /// Last input-log seq applied to the engine.
    pub applied_seq: AtomicU64,
    /// Seq of the last committed window's `WindowClosed` (0: none yet).
    pub closed_seq: AtomicU64,
    pub last_window: AtomicU64,
    pub failed: AtomicBool,
    /// Woken when a window commits (its jobs are in the outbox): what the
    /// dispatcher of `recheck serve` waits on.
    pub committed: tokio::sync::Notify,
}

impl WriterStatus {
    fn update(&self, pipeline: &Pipeline) {
        self.applied_seq
            .store(pipeline.last_seq(), Ordering::SeqCst);
        if let Some(head) = pipeline.head() {
            self.closed_seq.store(head.seq, Ordering::SeqCst);
            if self.last_window.swap(head.window, Ordering::SeqCst) != head.window {
                self.committed.notify_one();
            }
        }
    }

    /// Every applied record is in a committed window and nothing failed.
    pub fn caught_up(&self) -> bool {
        !self.failed.load(Ordering::SeqCst)
            && self.applied_seq.load(Ordering::SeqCst) == self.closed_seq.load(Ordering::SeqCst)
    }
}

/// The handlers' handle on the writer thread.
#[derive(Clone)]
pub struct LogWriter {
    commands: mpsc::Sender<Command>,
    pub status: Arc<WriterStatus>,
}

impl LogWriter {
    /// Start the writer thread on `pipeline`. The thread ends (and shuts the
    /// engine down) when every handle is dropped.
    pub fn spawn(
        pipeline: Pipeline,
        policy: WindowPolicy,
    ) -> std::io::Result<(LogWriter, std::thread::JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(1024);
        let status = Arc::new(WriterStatus::default());
        status.update(&pipeline);
        let thread_status = status.clone();
        let handle = std::thread::Builder::new()
            .name("recheck-log-writer".into())
            .spawn(move || Writer::new(pipeline, policy, thread_status).run(rx))?;
        // The ticker holds only a weak handle: the writer still stops when
        // the last real handle is dropped, and the ticker with it.
        let ticker = tx.downgrade();
        std::thread::Builder::new()
            .name("recheck-scheduler-tick".into())
            .spawn(move || loop {
                std::thread::sleep(SCHEDULER_TICK);
                match ticker.upgrade() {
                    // A full inbox is busy enough; the next tick fires what is due.
                    Some(tx) => {
                        let _ = tx.try_send(Command::Tick);
                    }
                    None => break,
                }
            })?;
        Ok((
            LogWriter {
                commands: tx,
                status,
            },
            handle,
        ))
    }

    /// Append `records` (after checking `expect`); with `wait`, the answer
    /// carries a receiver for the window that applies them.
    pub async fn append(
        &self,
        records: Vec<InputRecord>,
        expect: Option<Expect>,
        wait: bool,
    ) -> Result<Appended, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Append {
                records,
                expect,
                wait,
                reply,
            })
            .await
            .map_err(|_| WriteError::Stopped)?;
        answer.await.map_err(|_| WriteError::Stopped)?
    }

    /// A live impact query, answered as of the last closed window.
    pub async fn query(&self, query: ImpactQuery) -> Result<QueryAnswer, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Query { query, reply })
            .await
            .map_err(|_| WriteError::Stopped)?;
        answer.await.map_err(|_| WriteError::Stopped)?
    }

    /// Plan `request` as of the last closed window and, unless `dry_run`,
    /// commit the run with its jobs (the outbox) in one transaction.
    pub async fn run(&self, request: RunRequest, dry_run: bool) -> Result<RunAnswer, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Run {
                request: Box::new(request),
                dry_run,
                reply,
            })
            .await
            .map_err(|_| WriteError::Stopped)?;
        answer.await.map_err(|_| WriteError::Stopped)?
    }
}

impl LogWriter {
    /// Record a runtime event as artifact metadata (applied at once) and
    /// escalate or recheck as [`runtime`] says.
    pub async fn runtime(&self, event: RuntimeEvent) -> Result<RuntimeAnswer, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Runtime { event, reply })
            .await
            .map_err(|_| WriteError::Stopped)?;
        answer.await.map_err(|_| WriteError::Stopped)?
    }
}

struct Writer {
    pipeline: Pipeline,
    policy: WindowPolicy,
    status: Arc<WriterStatus>,
    /// Records appended since the last close, and when the first came.
    open_records: usize,
    opened_at: Option<Instant>,
    waiting: Vec<oneshot::Sender<u64>>,
    failure: Option<String>,
    runs: RunPlanner,
    scheduler: Scheduler,
}

impl Writer {
    fn new(pipeline: Pipeline, policy: WindowPolicy, status: Arc<WriterStatus>) -> Writer {
        Writer {
            pipeline,
            policy,
            status,
            open_records: 0,
            opened_at: None,
            waiting: Vec::new(),
            failure: None,
            runs: RunPlanner::default(),
            scheduler: Scheduler::default(),
        }
    }

    fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        // Records a previous process appended but never closed.
        if self.pipeline.has_open_window() {
            self.close();
        }
        loop {
            let due = self.open_records >= self.policy.max_records.max(1)
                || self.opened_at.is_some_and(|t| {
                    t.elapsed() >= Duration::from_millis(self.policy.max_delay_ms)
                });
            if self.open_records > 0 && due {
                self.close();
                continue;
            }
            let command = if self.open_records == 0 {
                match rx.blocking_recv() {
                    Some(c) => c,
                    None => break,
                }
            } else {
                match rx.try_recv() {
                    Ok(c) => c,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        self.close();
                        continue;
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        self.close();
                        break;
                    }
                }
            };
            self.handle(command);
        }
        self.pipeline.shutdown();
    }

    fn fail(&mut self, what: String) {
        tracing::error!(error = %what, "log writer failed; refusing writes");
        self.status.failed.store(true, Ordering::SeqCst);
        self.failure = Some(what);
        self.waiting.clear();
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Append {
                records,
                expect,
                wait,
                reply,
            } => {
                let _ = reply.send(self.append(records, expect, wait));
            }
            Command::Query { query, reply } => {
                let _ = reply.send(self.query(&query));
            }
            Command::Run {
                request,
                dry_run,
                reply,
            } => {
                let _ = reply.send(self.run_request(&request, dry_run));
            }
            Command::Runtime { event, reply } => {
                let _ = reply.send(self.runtime(&event));
            }
            Command::Tick => self.tick(),
        }
    }

    fn runtime(&mut self, event: &RuntimeEvent) -> Result<RuntimeAnswer, WriteError> {
        if let Some(failure) = &self.failure {
            return Err(WriteError::Failed(failure.clone()));
        }
        // The directory is as of the last close: bring it up to everything
        // appended (an SBOM posted just before the event).
        if self.open_records > 0 {
            self.close();
        }
        let Some(entry) = self
            .pipeline
            .directory()
            .get(&event.tenant, &event.artifact)
        else {
            return Err(WriteError::NotFound(format!("artifact {}", event.artifact)));
        };
        let previous = entry.runtime;
        let record = event.record(&entry.labels);
        let appended = self.append(vec![record], None, false)?;
        self.close();
        if let Some(failure) = &self.failure {
            return Err(WriteError::Failed(failure.clone()));
        }
        let mut answer = RuntimeAnswer {
            seq: appended.seqs.first().copied().unwrap_or_default(),
            window: self.pipeline.last_window(),
            previous,
            escalated: Vec::new(),
            recheck: None,
        };
        if event.state != RuntimeState::Running || previous == RuntimeState::Running {
            return Ok(answer);
        }
        let now = chrono::Utc::now();
        let place = match (&event.cluster, &event.namespace) {
            (Some(c), Some(n)) => format!(" in {c}/{n}"),
            (Some(c), None) => format!(" in {c}"),
            (None, Some(n)) => format!(" in namespace {n}"),
            (None, None) => String::new(),
        };
        let reason = format!("artifact started running{place}");
        let store = self.pipeline.store().clone();
        let failed = |e: crate::store::StoreError| WriteError::Failed(e.to_string());
        let jobs = self
            .pipeline
            .block_on(store.jobs(&JobFilter {
                tenant: Some(event.tenant.clone()),
                artifact: Some(event.artifact.clone()),
                ..JobFilter::default()
            }))
            .map_err(failed)?;
        for job in &jobs {
            let Some(escalation) = runtime::escalation(job, now, &reason) else {
                continue;
            };
            let moved = self
                .pipeline
                .block_on(store.escalate_job(&job.id, job.state, &escalation))
                .map_err(failed)?;
            if moved {
                answer.escalated.push(RecheckJob {
                    escalation: Some(escalation),
                    ..job.clone()
                });
            }
        }
        let findings = self
            .query(&ImpactQuery::Artifact {
                tenant: event.tenant.clone(),
                artifact: event.artifact.clone(),
            })?
            .answer
            .findings;
        let affected: Vec<_> = findings
            .iter()
            .filter(|f| f.status == FindingStatus::Affected)
            .collect();
        if runtime::needs_recheck(affected.len(), &jobs) {
            let request = RunRequest {
                tenant: event.tenant.clone(),
                all_tenants: false,
                schedule: None,
                trigger: RunTrigger::Policy,
                mode: JobKind::Reevaluate,
                selector: Selector {
                    digests: vec![event.artifact.clone()],
                    ..Selector::default()
                },
                reason: Some(format!("{reason}: findings without a verdict")),
                priority: runtime::recheck_priority(
                    affected.iter().filter_map(|f| f.severity).max(),
                ),
                at: now,
            };
            let planner = RunPlanner { sla: RUNNING_SLA };
            let (plan, _) = self
                .pipeline
                .start_run(&planner, &request)
                .map_err(|e| WriteError::Failed(e.to_string()))?;
            tracing::info!(
                run = plan.run.id,
                artifact = event.artifact,
                "recheck of a newly running artifact"
            );
            answer.recheck = Some(plan);
        }
        Ok(answer)
    }

    /// The jobs a window just planned for artifacts that are running are
    /// escalated at once, as a running artifact's pending jobs are.
    fn escalate_running(&self, committed: &[Committed]) {
        let store = self.pipeline.store().clone();
        let now = chrono::Utc::now();
        for c in committed {
            let window = c.closed.deltas.window;
            let mut artifacts: Vec<(&str, &str)> = c
                .closed
                .findings
                .iter()
                .map(|(f, _)| (f.tenant.as_str(), f.artifact.as_str()))
                .collect();
            artifacts.sort();
            artifacts.dedup();
            for (tenant, artifact) in artifacts {
                let running = self
                    .pipeline
                    .directory()
                    .get(tenant, artifact)
                    .is_some_and(|e| e.runtime == RuntimeState::Running);
                if !running {
                    continue;
                }
                let jobs = self.pipeline.block_on(store.jobs(&JobFilter {
                    tenant: Some(tenant.to_string()),
                    artifact: Some(artifact.to_string()),
                    state: Some(crate::model::JobState::Planned),
                    limit: None,
                }));
                let jobs = match jobs {
                    Ok(jobs) => jobs,
                    Err(e) => {
                        tracing::warn!(error = %e, artifact, "cannot read jobs to escalate");
                        continue;
                    }
                };
                for job in jobs
                    .iter()
                    .filter(|j| j.window == window && j.run.is_none())
                {
                    let Some(escalation) = runtime::escalation(job, now, "artifact is running")
                    else {
                        continue;
                    };
                    if let Err(e) =
                        self.pipeline
                            .block_on(store.escalate_job(&job.id, job.state, &escalation))
                    {
                        tracing::warn!(error = %e, job = job.id, "cannot escalate");
                    }
                }
            }
        }
    }

    fn run_request(&self, request: &RunRequest, dry_run: bool) -> Result<RunAnswer, WriteError> {
        if let Some(failure) = &self.failure {
            return Err(WriteError::Failed(failure.clone()));
        }
        let invalid = |e: &dyn std::fmt::Display| WriteError::Invalid {
            field: "selector".into(),
            detail: e.to_string(),
        };
        if dry_run {
            let plan = self
                .pipeline
                .plan_run(&self.runs, request)
                .map_err(|e| invalid(&e))?;
            let impact = plan
                .jobs
                .iter()
                .map(|j| self.impact_of(&j.tenant, &j.artifact))
                .collect::<Result<_, _>>()?;
            return Ok(RunAnswer {
                plan,
                outcome: None,
                impact,
            });
        }
        match self.pipeline.start_run(&self.runs, request) {
            Ok((plan, outcome)) => {
                tracing::info!(
                    run = plan.run.id,
                    tenant = plan.run.tenant,
                    jobs = plan.jobs.len(),
                    "run committed"
                );
                Ok(RunAnswer {
                    plan,
                    outcome: Some(outcome),
                    impact: Vec::new(),
                })
            }
            Err(PipelineError::Run(e)) => Err(invalid(&e)),
            // The log is untouched: a failed run commit does not stop writes.
            Err(e) => Err(WriteError::Failed(e.to_string())),
        }
    }

    fn impact_of(&self, tenant: &str, artifact: &str) -> Result<ArtifactImpact, WriteError> {
        let answer = self.query(&ImpactQuery::Artifact {
            tenant: tenant.to_string(),
            artifact: artifact.to_string(),
        })?;
        let suppressed = answer
            .answer
            .findings
            .iter()
            .filter(|f| f.status == FindingStatus::Suppressed)
            .count();
        Ok(ArtifactImpact {
            tenant: tenant.to_string(),
            artifact: artifact.to_string(),
            affected: answer.answer.findings.len() - suppressed,
            suppressed,
        })
    }

    /// Fire due schedules; a failure is logged and retried on the next tick
    /// (a schedule's fire time commits once, whenever it gets through).
    fn tick(&self) {
        if self.failure.is_some() {
            return;
        }
        match self.scheduler.tick(&self.pipeline, chrono::Utc::now()) {
            Ok(tick) => {
                for (schedule, why) in &tick.failed {
                    tracing::warn!(schedule, error = %why, "schedule could not fire");
                }
            }
            Err(e) => tracing::warn!(error = %e, "scheduler tick failed"),
        }
    }

    fn append(
        &mut self,
        records: Vec<InputRecord>,
        expect: Option<Expect>,
        wait: bool,
    ) -> Result<Appended, WriteError> {
        if let Some(failure) = &self.failure {
            return Err(WriteError::Failed(failure.clone()));
        }
        if let Some(expect) = expect {
            let catalog = self.pipeline.engine().catalog();
            let (held, what) = match &expect {
                Expect::Advisory(id) => (catalog.holds_advisory(id), format!("advisory {id}")),
                Expect::Artifact { tenant, artifact } => (
                    catalog.holds_artifact(tenant, artifact),
                    format!("artifact {artifact}"),
                ),
                Expect::Vex { scope, document } => (
                    catalog.holds_vex(scope, document),
                    format!("VEX document {document}"),
                ),
            };
            if !held {
                return Err(WriteError::NotFound(what));
            }
        }
        let before = self.pipeline.last_seq();
        if let Err(e) = self.pipeline.push(&records) {
            let what = e.to_string();
            self.fail(what.clone());
            return Err(WriteError::Failed(what));
        }
        self.status.update(&self.pipeline);
        let after = self.pipeline.last_seq();
        if after > before {
            self.open_records += (after - before) as usize;
            self.opened_at.get_or_insert_with(Instant::now);
        }
        let applied = wait.then(|| {
            let (tx, rx) = oneshot::channel();
            self.waiting.push(tx);
            rx
        });
        Ok(Appended {
            seqs: (before + 1..=after).collect(),
            applied,
        })
    }

    fn close(&mut self) {
        let window = self.pipeline.next_window();
        let record = InputRecord::WindowClosed {
            window,
            closed_at: None,
        };
        match self.pipeline.push(&[record]) {
            Ok(committed) => {
                self.escalate_running(&committed);
                self.status.update(&self.pipeline);
                for w in self.waiting.drain(..) {
                    let _ = w.send(window);
                }
            }
            Err(e) => self.fail(e.to_string()),
        }
        self.open_records = 0;
        self.opened_at = None;
    }

    fn query(&self, query: &ImpactQuery) -> Result<QueryAnswer, WriteError> {
        let engine = self.pipeline.engine();
        let known = match query {
            ImpactQuery::Advisory(name) => !engine.catalog().advisories_named(name).is_empty(),
            ImpactQuery::Artifact { tenant, artifact } => {
                engine.catalog().holds_artifact(tenant, artifact)
            }
            _ => true,
        };
        let answer = engine
            .query(query)
            .map_err(|e| WriteError::Failed(e.to_string()))?;
        Ok(QueryAnswer { answer, known })
    }
}
