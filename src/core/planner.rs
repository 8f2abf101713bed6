//! The job planner: turns one closed window's impact deltas into the
//! [`WindowCommit`] the store writes as one transaction — the ledger payload,
//! the snapshot changes (both derived from the deltas by the store) and the
//! window's recheck jobs, coalesced to one job per (tenant, artifact).
//!
//! Planning is a pure function of the window's deltas and the close time the
//! caller passes in (the planner reads no clock), so the same window always
//! yields the same job ids and the store's insert-if-absent makes planning it
//! twice create nothing new.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

use crate::engine::ClosedWindow;
use crate::model::{Direction, ImpactDelta, JobKind, JobReason, Priority, Rating, RecheckJob};
use crate::store::{CursorMove, WindowCommit};

/// The planner's cursor into the delta ledger, moved in each window's commit.
pub const CURSOR: &str = "planner";

/// How jobs are planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planner {
    /// Time from the window's close to each job's SLA deadline. The default is
    /// the seed system's incremental-run SLA (five minutes after the change).
    pub sla: TimeDelta,
}

impl Default for Planner {
    fn default() -> Self {
        Planner {
            sla: TimeDelta::minutes(5),
        }
    }
}

/// The priority a job gets from the most severe finding among its deltas.
pub fn priority_of(severity: Option<Rating>) -> Priority {
    match severity {
        Some(Rating::Critical) => Priority::Emergency,
        Some(Rating::High) => Priority::High,
        _ => Priority::Normal,
    }
}

/// One artifact's deltas of a window, gathered into its job.
#[derive(Default)]
struct Coalesced {
    reasons: Vec<JobReason>,
    worst: Option<Rating>,
}

impl Planner {
    /// The window's deltas as the ledger stores them, from the engine's
    /// rendered findings.
    pub fn deltas(closed: &ClosedWindow) -> Vec<ImpactDelta> {
        ImpactDelta::from_findings(
            closed.deltas.window,
            closed.findings.iter().map(|(f, d)| (f, *d as i64)),
        )
    }

    /// One planned `reevaluate` job per (tenant, artifact) with any delta in
    /// `window`: its reasons are the changed (advisory, vulnerability,
    /// status, direction), its priority follows the most severe delta, and
    /// its deadline is `closed_at` plus the SLA. Sorted by id.
    pub fn jobs(
        &self,
        window: u64,
        deltas: &[ImpactDelta],
        closed_at: DateTime<Utc>,
    ) -> Vec<RecheckJob> {
        let mut by_artifact: BTreeMap<(&str, &str), Coalesced> = BTreeMap::new();
        for d in deltas {
            let f = &d.finding;
            let job = by_artifact
                .entry((f.tenant.as_str(), f.artifact.as_str()))
                .or_default();
            job.reasons.push(JobReason {
                advisory: f.advisory.clone(),
                vulnerability: f.vulnerability.clone(),
                status: f.status,
                direction: Direction::of_diff(d.diff),
            });
            job.worst = job.worst.max(f.severity);
        }
        // Saturates instead of failing: only reachable with a clock near the
        // end of chrono's range.
        let deadline = closed_at
            .checked_add_signed(self.sla)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
            .to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut jobs: Vec<RecheckJob> = by_artifact
            .into_iter()
            .map(|((tenant, artifact), job)| {
                RecheckJob::planned(
                    tenant,
                    artifact,
                    window,
                    JobKind::Reevaluate,
                    job.reasons,
                    priority_of(job.worst),
                    deadline.clone(),
                )
            })
            .collect();
        jobs.sort_by(|a, b| a.id.cmp(&b.id));
        jobs
    }

    /// The commit of `window` (closed by the input-log record `seq`): its
    /// deltas, their jobs and, when given, the planner's cursor moved to
    /// `cursor` in the same transaction.
    pub fn commit(
        &self,
        window: u64,
        seq: u64,
        deltas: Vec<ImpactDelta>,
        closed_at: DateTime<Utc>,
        cursor: Option<u64>,
    ) -> WindowCommit {
        let jobs = self.jobs(window, &deltas, closed_at);
        let cursors = cursor
            .map(|position| CursorMove {
                name: CURSOR.to_string(),
                position,
            })
            .into_iter()
            .collect();
        WindowCommit::new(window, seq, deltas, jobs, cursors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FindingStatus, ImpactFinding, MatchReason};

    fn delta(artifact: &str, advisory: &str, severity: Option<Rating>, diff: i64) -> ImpactDelta {
        ImpactDelta {
            window: 7,
            diff,
            finding: ImpactFinding {
                tenant: "acme".into(),
                artifact: artifact.into(),
                advisory: advisory.into(),
                vulnerability: format!("CVE-{advisory}"),
                purl: None,
                ecosystem: "PyPI".into(),
                package: "p".into(),
                version: "1".into(),
                severity,
                status: FindingStatus::Affected,
                reason: MatchReason::Listed { entry: 0 },
                vex_status: None,
                justification: None,
                vex_source: None,
            },
        }
    }

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn one_job_per_artifact_with_priority_from_the_worst_delta() {
        let deltas = vec![
            delta("a", "X", Some(Rating::Low), 1),
            delta("a", "Y", Some(Rating::Critical), -1),
            // Two rows of one advisory (two components) give one reason.
            delta("a", "X", Some(Rating::Low), 1),
            delta("b", "X", Some(Rating::High), 1),
            delta("c", "Z", None, 1),
        ];
        let jobs = Planner::default().jobs(7, &deltas, at());
        let by: BTreeMap<&str, &RecheckJob> =
            jobs.iter().map(|j| (j.artifact.as_str(), j)).collect();
        assert_eq!(jobs.len(), 3);
        assert_eq!(by["a"].priority, Priority::Emergency);
        assert_eq!(by["b"].priority, Priority::High);
        assert_eq!(by["c"].priority, Priority::Normal);
        assert_eq!(by["a"].reasons.len(), 2);
        assert_eq!(by["a"].reasons[1].direction, Direction::Removed);
        assert!(jobs
            .iter()
            .all(|j| j.sla_deadline == "2026-12-01T10:05:00Z"));
        assert!(jobs.is_sorted_by(|x, y| x.id <= y.id));
        let commit = Planner::default().commit(7, 40, deltas, at(), Some(3));
        assert_eq!(commit.jobs, jobs);
        assert_eq!(commit.cursors[0].position, 3);
    }
}
