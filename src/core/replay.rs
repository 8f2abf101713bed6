//! Replay: recompute every window from a store's input log and compare with
//! what was recorded.
//!
//! Determinism is a promise Recheck makes to auditors: the same input log
//! gives the same deltas in the same windows and the same recheck jobs. This
//! module checks that promise against a real store, window by window: a fresh
//! engine reads the stored log from the first record (the engine's state
//! depends on all of it), the production planner plans each closed window
//! with the close stamp the log writer recorded, and the ledger payload bytes
//! and the jobs are compared with the stored ones. Nothing is written.

use std::collections::BTreeMap;

use crate::engine::record::InputRecord;
use crate::engine::{Engine, EngineConfig, EngineError};
use crate::model::{JobState, RecheckJob};
use crate::store::{JobFilter, Store, StoreError};

use super::planner::Planner;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("input record {seq}: {message}")]
    Record { seq: u64, message: String },
}

/// How one recorded window differs from its recomputation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// The recomputed deltas (ledger payload bytes) differ from the stored entry's.
    Deltas { window: u64 },
    /// The recomputed jobs (ids and content, state aside) differ.
    Jobs { window: u64 },
    /// The log closes a window the ledger does not hold.
    Unrecorded { window: u64 },
    /// The ledger holds a window the log never closes.
    NotInLog { window: u64 },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Deltas { window } => write!(f, "window {window}: deltas differ"),
            Mismatch::Jobs { window } => write!(f, "window {window}: jobs differ"),
            Mismatch::Unrecorded { window } => {
                write!(f, "window {window}: closed in the log, not in the ledger")
            }
            Mismatch::NotInLog { window } => {
                write!(f, "window {window}: in the ledger, never closed in the log")
            }
        }
    }
}

/// What a replay compared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Input records read.
    pub records: u64,
    /// Windows compared (those at or after `from`).
    pub windows: usize,
    pub deltas: usize,
    pub jobs: usize,
    pub mismatches: Vec<Mismatch>,
}

/// A job as planned: the state and attempt it has reached since, and an
/// escalation (runtime hooks, decided by when they came, not by the log),
/// are not part of the plan.
fn as_planned(job: &RecheckJob) -> RecheckJob {
    RecheckJob {
        state: JobState::Planned,
        attempt: 0,
        escalation: None,
        ..job.clone()
    }
}

/// Replays `store`'s whole input log and compares windows `>= from`.
pub async fn replay(
    store: &dyn Store,
    engine: &EngineConfig,
    planner: &Planner,
    from: u64,
) -> Result<ReplayReport, ReplayError> {
    const PAGE: usize = 10_000;
    let mut recorded = BTreeMap::new();
    let mut index = 0;
    loop {
        let page = store.read_ledger(index, 1_000).await?;
        let Some(last) = page.last() else { break };
        index = last.entry.index + 1;
        for record in page {
            recorded.insert(record.entry.window, record.payload);
        }
    }
    let mut jobs: BTreeMap<u64, Vec<RecheckJob>> = BTreeMap::new();
    // Runs' jobs are planned from requests and schedules, not from the log.
    for job in store.jobs(&JobFilter::default()).await? {
        if job.run.is_none() {
            jobs.entry(job.window).or_default().push(as_planned(&job));
        }
    }
    let mut report = ReplayReport::default();
    let mut seen = std::collections::BTreeSet::new();
    let mut engine = Engine::start(engine)?;
    let mut next = 1;
    loop {
        let page = store.read_inputs(next, PAGE).await?;
        let Some(last) = page.last() else { break };
        next = last.seq + 1;
        for input in page {
            let entry = input.log_entry()?;
            report.records += 1;
            let closed_at = match &entry.record {
                InputRecord::WindowClosed { .. } => Some(entry.record.close_stamp().ok_or_else(
                    || ReplayError::Record {
                        seq: entry.seq,
                        message: "window close without a valid closed_at stamp".into(),
                    },
                )?),
                _ => None,
            };
            let Some(closed) = engine.apply(&entry)? else {
                continue;
            };
            let window = closed.deltas.window;
            seen.insert(window);
            if window < from {
                continue;
            }
            let closed_at = closed_at.unwrap_or_default();
            let commit =
                planner.commit(window, entry.seq, Planner::deltas(&closed), closed_at, None);
            report.windows += 1;
            report.deltas += commit.deltas.len();
            report.jobs += commit.jobs.len();
            match recorded.get(&window) {
                None => report.mismatches.push(Mismatch::Unrecorded { window }),
                Some(payload) if *payload != commit.payload() => {
                    report.mismatches.push(Mismatch::Deltas { window })
                }
                Some(_) => {}
            }
            let mut stored = jobs.remove(&window).unwrap_or_default();
            stored.sort_by(|a, b| a.id.cmp(&b.id));
            if recorded.contains_key(&window) && stored != commit.jobs {
                report.mismatches.push(Mismatch::Jobs { window });
            }
        }
    }
    engine.shutdown();
    for window in recorded.keys().filter(|w| **w >= from && !seen.contains(w)) {
        report
            .mismatches
            .push(Mismatch::NotInLog { window: *window });
    }
    Ok(report)
}
