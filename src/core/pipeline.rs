//! The write path of the scheduler core in one place: input records are
//! appended to the store's input log first (so nothing is applied that the
//! log does not hold), then applied to the engine with the sequence numbers
//! the store assigned; each `WindowClosed` turns into the planner's
//! [`WindowCommit`] — ledger entry, snapshot changes, jobs and the planner's
//! cursor in one store transaction.
//!
//! The engine is synchronous and the store async, so the pipeline owns a
//! current-thread tokio runtime and blocks on each store call; callers stay
//! synchronous (the CLI, tests, later the single log writer of `serve`).
//!
//! Opening a store that holds a log rebuilds the engine from the compacted
//! input snapshot (see [`super::compaction`]) plus the log after it; a
//! [`Readiness`] handle reports how far that has got, so `serve` can say
//! not-ready until the engine has caught up.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::engine::directory::ArtifactDirectory;
use crate::engine::record::{InputRecord, LogEntry};
use crate::engine::{ClosedWindow, Engine, EngineConfig, EngineError};
use crate::model::LedgerEntry;
use crate::store::{self, CommitOutcome, RunOutcome, SourceOffset, Store, StoreError};

use super::failpoint;
use super::planner::Planner;
use super::runs::{RunError, RunPlan, RunPlanner, RunRequest};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    #[error("starting the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("stored input record {seq}: {source}")]
    Record {
        seq: u64,
        #[source]
        source: StoreError,
    },
    #[error(transparent)]
    Run(#[from] RunError),
}

pub type Result<T, E = PipelineError> = std::result::Result<T, E>;

/// The log writer's clock: it stamps each `WindowClosed` it appends without a
/// `closed_at`, and the planner's SLA deadlines start at that stamp, so a
/// replay of the stored log plans the same deadlines.
pub type Clock = Box<dyn Fn() -> DateTime<Utc> + Send>;

/// One window that closed and was committed.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The engine's output for the window (rows and rendered findings).
    pub closed: ClosedWindow,
    pub outcome: CommitOutcome,
    pub deltas: usize,
    pub jobs: usize,
}

/// What [`Pipeline::open`] did with a store that already held a log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Records of the compacted input snapshot applied to the engine.
    pub snapshot_records: u64,
    /// The window the snapshot reflected (its deltas are not emitted again).
    pub snapshot_window: Option<u64>,
    /// Stored input-log records re-applied to the engine (the tail after
    /// the snapshot, or the whole log without one).
    pub records: u64,
    /// Closed windows the ledger already held (not committed again).
    pub windows_skipped: u64,
    /// Closed windows whose commit had been lost, committed on open.
    pub windows_committed: u64,
}

/// How far opening a pipeline has got: shared with whoever reports
/// readiness (`/readyz`) while [`Pipeline::open_with`] runs on another thread.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<ReadinessState>);

#[derive(Debug, Default)]
struct ReadinessState {
    ready: AtomicBool,
    applied: AtomicU64,
    total: AtomicU64,
}

/// A reading of [`Readiness`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The engine has caught up with the stored log and serves.
    pub ready: bool,
    /// Snapshot and log records applied so far.
    pub applied: u64,
    /// Records to apply before ready (known once the store was read).
    pub total: u64,
}

impl Readiness {
    pub fn progress(&self) -> Progress {
        Progress {
            ready: self.0.ready.load(Ordering::Acquire),
            applied: self.0.applied.load(Ordering::Relaxed),
            total: self.0.total.load(Ordering::Relaxed),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::Acquire)
    }

    fn applied(&self) {
        self.0.applied.fetch_add(1, Ordering::Relaxed);
    }
}

fn current_thread_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(PipelineError::Runtime)
}

/// Input log → engine → planner → window commit, on one store.
pub struct Pipeline {
    store: Arc<dyn Store>,
    engine: Engine,
    planner: Planner,
    clock: Clock,
    head: Option<LedgerEntry>,
    /// The last sequence number in the input log (every record up to it has
    /// been applied to the engine).
    last_seq: u64,
    recovered: Recovered,
    readiness: Readiness,
    /// When the oldest record of the open window was appended (for the
    /// append → applied lag), and how many records it holds so far.
    open_since: Option<Instant>,
    open_records: u64,
    // Last, so the store's connections close before the runtime stops.
    runtime: tokio::runtime::Runtime,
}

impl Pipeline {
    /// Open the store at `url` (see [`store::open`]) and start an engine,
    /// rebuilt from the store's input snapshot and log when it has them (see
    /// [`Pipeline::recovered`]).
    pub fn open(
        url: &str,
        engine: &EngineConfig,
        planner: Planner,
        clock: Clock,
    ) -> Result<Pipeline> {
        Pipeline::open_with(url, engine, planner, clock, Readiness::default())
    }

    /// [`Pipeline::open`], reporting its progress to `readiness` (ready once
    /// the engine has caught up with the stored log).
    pub fn open_with(
        url: &str,
        engine: &EngineConfig,
        planner: Planner,
        clock: Clock,
        readiness: Readiness,
    ) -> Result<Pipeline> {
        let runtime = current_thread_runtime()?;
        let store = runtime.block_on(store::open(url))?;
        Pipeline::start(runtime, store, engine, planner, clock, readiness)
    }

    /// Like [`Pipeline::open`] on a store the caller opened (and shares, e.g.
    /// with the readers of `serve`). The store's own tasks (a PostgreSQL
    /// connection) must run on a runtime that outlives the pipeline; the
    /// pipeline's runtime only drives the calls it makes.
    pub fn with_store(
        store: Arc<dyn Store>,
        engine: &EngineConfig,
        planner: Planner,
        clock: Clock,
    ) -> Result<Pipeline> {
        let runtime = current_thread_runtime()?;
        Pipeline::start(runtime, store, engine, planner, clock, Readiness::default())
    }

    fn start(
        runtime: tokio::runtime::Runtime,
        store: Arc<dyn Store>,
        engine: &EngineConfig,
        planner: Planner,
        clock: Clock,
        readiness: Readiness,
    ) -> Result<Pipeline> {
        let (last_seq, head, snapshot) = runtime.block_on(async {
            let last_seq = store.last_seq().await?;
            let head = store.ledger_head().await?;
            let snapshot = store.input_snapshot().await?;
            Ok::<_, StoreError>((last_seq, head, snapshot))
        })?;
        // A snapshot is only used for windows the ledger holds (compaction
        // never passes the ledger head; a store put together otherwise is
        // rebuilt from its whole log).
        let snapshot = snapshot.filter(|s| {
            head.as_ref()
                .is_some_and(|h| s.window <= h.window && s.seq <= last_seq)
        });
        let from = snapshot.map_or(1, |s| s.seq + 1);
        readiness.0.total.store(
            snapshot.map_or(0, |s| s.records) + (last_seq + 1).saturating_sub(from),
            Ordering::Relaxed,
        );
        let engine = Engine::start(engine)?;
        let mut pipeline = Pipeline {
            store,
            engine,
            planner,
            clock,
            head,
            last_seq,
            runtime,
            recovered: Recovered::default(),
            readiness,
            open_since: None,
            open_records: 0,
        };
        if let Some(snapshot) = snapshot {
            pipeline.load_snapshot(snapshot)?;
        }
        if last_seq >= from {
            pipeline.rebuild(from, last_seq)?;
        }
        pipeline.readiness.0.ready.store(true, Ordering::Release);
        crate::metrics::get().engine_ready.set(1);
        Ok(pipeline)
    }

    /// Applies the snapshot's records at their own sequence numbers and
    /// closes its window without committing or rendering it: the ledger
    /// holds that window and every one before.
    fn load_snapshot(&mut self, snapshot: store::SnapshotHead) -> Result<()> {
        const PAGE: usize = 10_000;
        let mut next = 0;
        loop {
            let page = self
                .runtime
                .block_on(self.store.read_input_snapshot(next, PAGE))?;
            let Some(last) = page.last() else { break };
            next = last.seq + 1;
            for input in page {
                let entry = input.log_entry().map_err(|source| PipelineError::Record {
                    seq: input.seq,
                    source,
                })?;
                self.engine.apply(&entry)?;
                self.recovered.snapshot_records += 1;
                self.readiness.applied();
            }
        }
        self.engine.set_render(false);
        let closed = self.engine.apply(&LogEntry {
            seq: snapshot.seq,
            record: InputRecord::WindowClosed {
                window: snapshot.window,
                closed_at: None,
            },
        });
        self.engine.set_render(true);
        closed?;
        self.recovered.snapshot_window = Some(snapshot.window);
        Ok(())
    }

    /// Re-reads the stored input log from `from` into the engine. Windows
    /// the ledger already holds are not committed (nor their deltas emitted)
    /// again; a window the log closed but whose commit was lost (a crash in
    /// between) is committed now.
    fn rebuild(&mut self, from: u64, last_seq: u64) -> Result<()> {
        const PAGE: usize = 10_000;
        let committed_through = self.head.as_ref().map(|h| h.window);
        let mut next = from;
        while next <= last_seq {
            let page = self.runtime.block_on(self.store.read_inputs(next, PAGE))?;
            let Some(last) = page.last() else { break };
            next = last.seq + 1;
            for input in page {
                let entry = input.log_entry().map_err(|source| PipelineError::Record {
                    seq: input.seq,
                    source,
                })?;
                self.recovered.records += 1;
                self.readiness.applied();
                let closed_at = entry.record.close_stamp();
                let Some(closed) = self.engine.apply(&entry)? else {
                    continue;
                };
                if committed_through.is_some_and(|w| closed.deltas.window <= w) {
                    self.recovered.windows_skipped += 1;
                    continue;
                }
                let closed_at = closed_at.unwrap_or_else(|| (self.clock)());
                self.commit(entry.seq, closed, closed_at)?;
                self.recovered.windows_committed += 1;
            }
        }
        Ok(())
    }

    /// What opening a non-empty store found and did.
    pub fn recovered(&self) -> Recovered {
        self.recovered
    }

    /// The handle [`Pipeline::open_with`] reported to (ready once open).
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Move the store's compacted input snapshot up to the last committed
    /// window (see [`super::compaction::compact`]).
    pub fn compact(&self) -> Result<Option<store::SnapshotHead>> {
        Ok(self
            .runtime
            .block_on(super::compaction::compact(self.store.as_ref()))?)
    }

    /// Append `records` to the input log as one batch, then apply them in
    /// order; every window they close is planned and committed before the
    /// next record is applied. Returns the committed windows.
    pub fn push(&mut self, records: &[InputRecord]) -> Result<Vec<Committed>> {
        self.push_from(records, &[])
    }

    /// [`Pipeline::push`] for a source: `offsets` (where the source has got
    /// to once these records are in) are written in the same transaction as
    /// the records, so after a crash the source resumes exactly after what
    /// the log holds.
    pub fn push_from(
        &mut self,
        records: &[InputRecord],
        offsets: &[SourceOffset],
    ) -> Result<Vec<Committed>> {
        let records: Vec<InputRecord> = records
            .iter()
            .cloned()
            .map(|record| match record {
                InputRecord::WindowClosed {
                    window,
                    closed_at: None,
                } => InputRecord::WindowClosed {
                    window,
                    closed_at: Some(
                        (self.clock)().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    ),
                },
                other => other,
            })
            .collect();
        let seqs = self.runtime.block_on(store::append_records(
            self.store.as_ref(),
            &records,
            offsets,
        ))?;
        if let Some(last) = seqs.last() {
            self.last_seq = *last;
        }
        let metrics = crate::metrics::get();
        metrics.appended(&records, self.last_seq);
        failpoint::hit(failpoint::AFTER_INPUT_APPEND);
        let appended = Instant::now();
        let mut committed = Vec::new();
        for (seq, record) in seqs.into_iter().zip(records) {
            let closed_at = record.close_stamp();
            let entry = LogEntry { seq, record };
            let started = Instant::now();
            if let Some(closed) = self.engine.apply(&entry)? {
                let closed_at = closed_at.unwrap_or_else(|| (self.clock)());
                committed.push(self.commit(seq, closed, closed_at)?);
                metrics.window_closed(started, self.open_since.take());
                self.open_records = 0;
            } else {
                self.open_since.get_or_insert(appended);
                self.open_records += 1;
                failpoint::hit(failpoint::MID_WINDOW);
            }
        }
        metrics
            .frontier_lag
            .set(i64::try_from(self.open_records).unwrap_or(i64::MAX));
        Ok(committed)
    }

    fn commit(
        &mut self,
        seq: u64,
        closed: ClosedWindow,
        closed_at: DateTime<Utc>,
    ) -> Result<Committed> {
        let window = closed.deltas.window;
        let deltas = Planner::deltas(&closed);
        // The planner has read everything up to and including this entry.
        let cursor = self.head.as_ref().map_or(1, |h| h.index + 2);
        let commit = self
            .planner
            .commit(window, seq, deltas, closed_at, Some(cursor));
        let outcome = self.runtime.block_on(self.store.commit_window(&commit))?;
        failpoint::hit(failpoint::AFTER_LEDGER_COMMIT);
        if let CommitOutcome::Committed { entry, .. } = &outcome {
            crate::metrics::get().window_committed(&commit, entry);
        }
        self.head = match &outcome {
            CommitOutcome::Committed { entry, .. } => Some(entry.clone()),
            // Someone else committed it: follow the store's head.
            CommitOutcome::AlreadyCommitted { .. } => {
                self.runtime.block_on(self.store.ledger_head())?
            }
        };
        tracing::debug!(
            window,
            deltas = commit.deltas.len(),
            jobs = commit.jobs.len(),
            "window committed"
        );
        Ok(Committed {
            closed,
            outcome,
            deltas: commit.deltas.len(),
            jobs: commit.jobs.len(),
        })
    }

    /// Every artifact with an SBOM as of the last closed window (what run
    /// selectors choose from).
    pub fn directory(&self) -> &ArtifactDirectory {
        self.engine.catalog().directory()
    }

    /// The last closed window (`None` before the first).
    pub fn last_window(&self) -> Option<u64> {
        self.engine.last_window()
    }

    /// The run `request` would start and its jobs, as of the last closed
    /// window; writes nothing (the API's dry run).
    pub fn plan_run(
        &self,
        planner: &RunPlanner,
        request: &RunRequest,
    ) -> Result<RunPlan, RunError> {
        planner.plan(request, self.directory(), self.last_window())
    }

    /// Plan `request` and commit the run with its jobs (the outbox) in one
    /// transaction. A request planned before (same run id) writes nothing
    /// and returns the stored run.
    pub fn start_run(
        &self,
        planner: &RunPlanner,
        request: &RunRequest,
    ) -> Result<(RunPlan, RunOutcome)> {
        let plan = self.plan_run(planner, request)?;
        let outcome = self
            .runtime
            .block_on(self.store.commit_run(&plan.clone().commit(Vec::new())))?;
        Ok((plan, outcome))
    }

    /// The store's backend (`embedded`, `postgres`, `mongodb`).
    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }

    /// Bytes the store occupies on disk, where the backend can say.
    pub fn storage_bytes(&self) -> Result<Option<u64>> {
        Ok(self.runtime.block_on(self.store.storage_bytes())?)
    }

    /// The last sequence number of the input log; every record up to it is
    /// applied to the engine.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Whether the log holds records after the last committed window's
    /// `WindowClosed` (applied, but not yet visible to queries).
    pub fn has_open_window(&self) -> bool {
        self.last_seq > self.head.as_ref().map_or(0, |h| h.seq)
    }

    /// The running engine, for live queries between writes.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The last committed ledger entry.
    pub fn head(&self) -> Option<&LedgerEntry> {
        self.head.as_ref()
    }

    /// The number the next `WindowClosed` should carry. Every window the log
    /// closed is committed once [`Pipeline::open`] returns, so that is the
    /// one after the ledger's head.
    pub fn next_window(&self) -> u64 {
        self.head.as_ref().map_or(1, |h| h.window + 1)
    }

    /// The store the pipeline writes to, for what runs beside it on the same
    /// runtime (sources reading their offsets, the dispatcher).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Run `future` on the pipeline's runtime: the store's connections live
    /// there, so whatever uses [`Pipeline::store`] (or a queue opened in
    /// such a call) must run there too. Not callable from inside a runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Stop the engine and close the store.
    pub fn shutdown(self) {
        self.engine.shutdown();
    }
}
