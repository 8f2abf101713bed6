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

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::engine::record::{InputRecord, LogEntry};
use crate::engine::{ClosedWindow, Engine, EngineConfig, EngineError};
use crate::model::LedgerEntry;
use crate::store::{self, CommitOutcome, Store, StoreError};

use super::planner::Planner;

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
    /// Stored input records re-applied to the engine.
    pub records: u64,
    /// Closed windows the ledger already held (not committed again).
    pub windows_skipped: u64,
    /// Closed windows whose commit had been lost, committed on open.
    pub windows_committed: u64,
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
    // Last, so the store's connections close before the runtime stops.
    runtime: tokio::runtime::Runtime,
}

impl Pipeline {
    /// Open the store at `url` (see [`store::open`]) and start an engine,
    /// rebuilt from the store's input log when it has one (see
    /// [`Pipeline::recovered`]).
    pub fn open(
        url: &str,
        engine: &EngineConfig,
        planner: Planner,
        clock: Clock,
    ) -> Result<Pipeline> {
        let runtime = current_thread_runtime()?;
        let store = runtime.block_on(store::open(url))?;
        Pipeline::start(runtime, store, engine, planner, clock)
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
        Pipeline::start(runtime, store, engine, planner, clock)
    }

    fn start(
        runtime: tokio::runtime::Runtime,
        store: Arc<dyn Store>,
        engine: &EngineConfig,
        planner: Planner,
        clock: Clock,
    ) -> Result<Pipeline> {
        let (last_seq, head) = runtime.block_on(async {
            let last_seq = store.last_seq().await?;
            let head = store.ledger_head().await?;
            Ok::<_, StoreError>((last_seq, head))
        })?;
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
        };
        if last_seq > 0 {
            pipeline.rebuild(last_seq)?;
        }
        Ok(pipeline)
    }

    /// Re-reads the stored input log into the fresh engine. Windows the
    /// ledger already holds are not committed (nor their deltas emitted)
    /// again; a window the log closed but whose commit was lost (a crash in
    /// between) is committed now.
    fn rebuild(&mut self, last_seq: u64) -> Result<()> {
        const PAGE: usize = 10_000;
        let committed_through = self.head.as_ref().map(|h| h.window);
        let mut next = 1;
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

    /// Append `records` to the input log as one batch, then apply them in
    /// order; every window they close is planned and committed before the
    /// next record is applied. Returns the committed windows.
    pub fn push(&mut self, records: &[InputRecord]) -> Result<Vec<Committed>> {
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
        let seqs =
            self.runtime
                .block_on(store::append_records(self.store.as_ref(), &records, &[]))?;
        if let Some(last) = seqs.last() {
            self.last_seq = *last;
        }
        let mut committed = Vec::new();
        for (seq, record) in seqs.into_iter().zip(records) {
            let closed_at = record.close_stamp();
            let entry = LogEntry { seq, record };
            if let Some(closed) = self.engine.apply(&entry)? {
                let closed_at = closed_at.unwrap_or_else(|| (self.clock)());
                committed.push(self.commit(seq, closed, closed_at)?);
            }
        }
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

    /// The store's backend (`embedded`, `postgres`, `mongodb`).
    pub fn backend(&self) -> &'static str {
        self.store.backend()
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

    /// The number the next `WindowClosed` gets.
    pub fn next_window(&self) -> u64 {
        self.head.as_ref().map_or(1, |h| h.window + 1)
    }

    /// The running engine, for live queries between writes.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The last committed ledger entry.
    pub fn head(&self) -> Option<&LedgerEntry> {
        self.head.as_ref()
    }

    /// Stop the engine and close the store.
    pub fn shutdown(self) {
        self.engine.shutdown();
    }
}
