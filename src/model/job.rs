//! Recheck jobs: the unit of work the planner makes of a window's deltas (one
//! job per artifact and window) and the state machine every backend and
//! worker follows. A job's id is a hash of what it is about, so planning the
//! same window twice yields the same ids and creates nothing new.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::FindingStatus;

/// What the worker does: re-evaluate the verdict against the SBOM already
/// held (the default), or re-scan the artifact's content (mutable tags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Reevaluate,
    Rescan,
}

/// Whether a finding appeared (+1) or went away (−1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Added,
    Removed,
}

impl Direction {
    pub fn of_diff(diff: i64) -> Direction {
        if diff < 0 {
            Direction::Removed
        } else {
            Direction::Added
        }
    }
}

/// Why a job exists: one advisory's finding on the artifact changed in this
/// direction. A VEX suppression shows as the `affected` row removed and the
/// `suppressed` row added.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JobReason {
    pub advisory: String,
    pub vulnerability: String,
    pub status: FindingStatus,
    pub direction: Direction,
}

/// The seed's policy-run priorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Normal,
    High,
    Emergency,
}

/// planned → queued → running → succeeded | failed → retrying → … →
/// dead_lettered; cancelled and superseded end a job that has not finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Planned,
    Queued,
    Running,
    Succeeded,
    Failed,
    Retrying,
    DeadLettered,
    Cancelled,
    Superseded,
}

impl JobState {
    pub const ALL: [JobState; 9] = [
        JobState::Planned,
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Retrying,
        JobState::DeadLettered,
        JobState::Cancelled,
        JobState::Superseded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Planned => "planned",
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Retrying => "retrying",
            JobState::DeadLettered => "dead_lettered",
            JobState::Cancelled => "cancelled",
            JobState::Superseded => "superseded",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// Finished: no worker moves a job out of these. Only an operator's
    /// retry takes a dead-lettered or cancelled job back (`→ retrying`).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded
                | JobState::DeadLettered
                | JobState::Cancelled
                | JobState::Superseded
        )
    }

    /// Whether the state machine has an edge `self → next`. A retry goes back
    /// to the queue (or straight to running for an in-process worker);
    /// superseding only happens to work not yet started; an operator may
    /// retry a dead-lettered or cancelled job.
    pub fn allows(self, next: JobState) -> bool {
        use JobState::*;
        matches!(
            (self, next),
            (Planned, Queued | Cancelled | Superseded)
                | (Queued, Running | Cancelled | Superseded)
                | (Running, Succeeded | Failed | Cancelled)
                | (Failed, Retrying | DeadLettered | Cancelled)
                | (
                    Retrying,
                    Queued | Running | DeadLettered | Cancelled | Superseded
                )
                | (DeadLettered | Cancelled, Retrying)
        )
    }
}

/// One recorded state change of a job.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JobTransition {
    pub from: JobState,
    pub to: JobState,
    /// UTC RFC 3339.
    pub at: String,
    /// The attempt this transition belongs to (1 for the first run).
    pub attempt: u32,
}

/// All deltas of one artifact within one window, as one unit of work.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecheckJob {
    /// [`RecheckJob::compute_id`] of the fields below.
    pub id: String,
    pub tenant: String,
    pub artifact: String,
    pub window: u64,
    pub kind: JobKind,
    /// Sorted, de-duplicated.
    pub reasons: Vec<JobReason>,
    pub priority: Priority,
    /// UTC RFC 3339: when the job's result is due.
    pub sla_deadline: String,
    pub state: JobState,
    /// The latest attempt (0 until the job first runs).
    pub attempt: u32,
    /// The run that planned this job; `None` for a window's job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

/// What a job id commits to, in this field order.
#[derive(Serialize)]
struct IdInput<'a> {
    tenant: &'a str,
    artifact: &'a str,
    window: u64,
    reasons: &'a [JobReason],
    /// Absent for window jobs, so their ids are what they always were.
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<&'a str>,
}

impl RecheckJob {
    /// A planned job; reasons are sorted and de-duplicated, and the id is
    /// derived from them.
    pub fn planned(
        tenant: &str,
        artifact: &str,
        window: u64,
        kind: JobKind,
        mut reasons: Vec<JobReason>,
        priority: Priority,
        sla_deadline: String,
    ) -> RecheckJob {
        reasons.sort();
        reasons.dedup();
        RecheckJob {
            id: RecheckJob::compute_id(tenant, artifact, window, &reasons),
            tenant: tenant.to_string(),
            artifact: artifact.to_string(),
            window,
            kind,
            reasons,
            priority,
            sla_deadline,
            state: JobState::Planned,
            attempt: 0,
            run: None,
        }
    }

    /// A planned job of run `run` on one artifact: no reasons (the run's
    /// reason is on the run), evaluated as of `window`. Its id commits to
    /// the run, so it never equals a window job's or another run's.
    pub fn for_run(
        run: &str,
        tenant: &str,
        artifact: &str,
        window: u64,
        kind: JobKind,
        priority: Priority,
        sla_deadline: String,
    ) -> RecheckJob {
        RecheckJob {
            id: id_of(&IdInput {
                tenant,
                artifact,
                window,
                reasons: &[],
                run: Some(run),
            }),
            tenant: tenant.to_string(),
            artifact: artifact.to_string(),
            window,
            kind,
            reasons: Vec::new(),
            priority,
            sla_deadline,
            state: JobState::Planned,
            attempt: 0,
            run: Some(run.to_string()),
        }
    }

    /// The id this job's content derives (what stores check on insert).
    pub fn derived_id(&self) -> String {
        id_of(&IdInput {
            tenant: &self.tenant,
            artifact: &self.artifact,
            window: self.window,
            reasons: &self.reasons,
            run: self.run.as_deref(),
        })
    }

    /// sha256 hex of the JSON of `{tenant, artifact, window, reasons}`;
    /// `reasons` must already be sorted and de-duplicated.
    pub fn compute_id(tenant: &str, artifact: &str, window: u64, reasons: &[JobReason]) -> String {
        id_of(&IdInput {
            tenant,
            artifact,
            window,
            reasons,
            run: None,
        })
    }
}

fn id_of(input: &IdInput<'_>) -> String {
    let bytes = serde_json::to_vec(input).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(advisory: &str, direction: Direction) -> JobReason {
        JobReason {
            advisory: advisory.into(),
            vulnerability: format!("CVE-{advisory}"),
            status: FindingStatus::Affected,
            direction,
        }
    }

    fn job(kind: JobKind, reasons: Vec<JobReason>, priority: Priority) -> RecheckJob {
        RecheckJob::planned(
            "acme",
            "sha256:1",
            4,
            kind,
            reasons,
            priority,
            "2026-01-01T00:05:00Z".into(),
        )
    }

    #[test]
    fn id_ignores_reason_order_and_duplicates_but_not_content() {
        use Direction::{Added, Removed};
        let a = job(
            JobKind::Reevaluate,
            vec![reason("B", Added), reason("A", Removed)],
            Priority::Normal,
        );
        // Kind and priority are not part of what the job is about.
        let b = job(
            JobKind::Rescan,
            vec![
                reason("A", Removed),
                reason("B", Added),
                reason("A", Removed),
            ],
            Priority::High,
        );
        assert_eq!(a.id, b.id);
        assert_eq!(a.reasons, b.reasons);
        assert_eq!(a.id.len(), 64);
        let c = job(
            JobKind::Reevaluate,
            vec![reason("B", Removed), reason("A", Removed)],
            Priority::Normal,
        );
        assert_ne!(a.id, c.id);
        let other_tenant = RecheckJob::compute_id("globex", "sha256:1", 4, &a.reasons);
        assert_ne!(a.id, other_tenant);
        assert_eq!(a.derived_id(), a.id);
    }

    #[test]
    fn window_job_ids_are_unchanged_and_run_jobs_differ() {
        let reasons = vec![reason("A", Direction::Added)];
        // The id of a window job as it was before jobs could belong to runs.
        let before = {
            #[derive(Serialize)]
            struct Old<'a> {
                tenant: &'a str,
                artifact: &'a str,
                window: u64,
                reasons: &'a [JobReason],
            }
            let bytes = serde_json::to_vec(&Old {
                tenant: "acme",
                artifact: "sha256:1",
                window: 4,
                reasons: &reasons,
            })
            .unwrap();
            hex::encode(Sha256::digest(bytes))
        };
        let window_job = job(JobKind::Reevaluate, reasons, Priority::Normal);
        assert_eq!(window_job.id, before);
        assert!(!serde_json::to_string(&window_job)
            .unwrap()
            .contains("\"run\""));
        let at = "2026-01-01T01:00:00Z".to_string();
        let r1 = RecheckJob::for_run(
            "r1",
            "acme",
            "sha256:1",
            4,
            JobKind::Rescan,
            Priority::Normal,
            at.clone(),
        );
        let r2 = RecheckJob::for_run(
            "r2",
            "acme",
            "sha256:1",
            4,
            JobKind::Rescan,
            Priority::Normal,
            at,
        );
        assert_ne!(r1.id, r2.id);
        assert_ne!(r1.id, RecheckJob::compute_id("acme", "sha256:1", 4, &[]));
        assert_eq!(r1.derived_id(), r1.id);
        let back: RecheckJob = serde_json::from_str(&serde_json::to_string(&r1).unwrap()).unwrap();
        assert_eq!(back, r1);
    }

    #[test]
    fn state_machine_edges() {
        use JobState::*;
        assert!(Planned.allows(Queued));
        assert!(Queued.allows(Superseded));
        assert!(Failed.allows(Retrying));
        assert!(Retrying.allows(DeadLettered));
        assert!(!Running.allows(Superseded));
        assert!(!Planned.allows(Running));
        for terminal in JobState::ALL.into_iter().filter(|s| s.is_terminal()) {
            let operator_retry = matches!(terminal, DeadLettered | Cancelled);
            for next in JobState::ALL {
                assert_eq!(
                    terminal.allows(next),
                    operator_retry && next == Retrying,
                    "{terminal:?} -> {next:?}"
                );
            }
        }
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
    }
}
