//! Runtime hooks: deployment systems report where an artifact runs, and a
//! running artifact is more urgent than one sitting in a registry. This
//! module holds the rules; the log writer of `serve` applies them.
//!
//! - A runtime event becomes an `ArtifactMetadata` input record (so live
//!   queries and policies see the state as of each window): the artifact's
//!   labels as held, with `cluster` and `namespace` set from the event.
//! - When an artifact is running, each of its pending jobs (planned, queued,
//!   retrying) is escalated: priority one step above its planned priority,
//!   deadline no later than [`RUNNING_SLA`] from the moment it was seen
//!   running. The planned priority and deadline stay (replay recomputes
//!   them); the escalation is recorded beside them and dispatch uses it.
//! - An artifact that starts running with affected findings but no verdict
//!   for its latest window (no job of it has succeeded since its findings
//!   last changed, and none is pending) gets a recheck: a one-artifact run,
//!   due within [`RUNNING_SLA`].

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

use crate::engine::directory::NAMESPACE_LABEL;
use crate::engine::record::InputRecord;
use crate::model::{Escalation, JobState, Priority, Rating, RecheckJob, RuntimeState};

/// How soon a running artifact's pending work is due: a fifth of the
/// five-minute incremental SLA.
pub const RUNNING_SLA: TimeDelta = TimeDelta::minutes(1);

/// The label a runtime event's cluster is kept under.
pub const CLUSTER_LABEL: &str = "cluster";

/// What a deployment system reports about one artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeEvent {
    pub tenant: String,
    pub artifact: String,
    pub state: RuntimeState,
    pub cluster: Option<String>,
    pub namespace: Option<String>,
}

impl RuntimeEvent {
    /// The metadata record of this event over the artifact's current
    /// `labels` (a metadata record replaces labels and state together).
    pub fn record(&self, labels: &BTreeMap<String, String>) -> InputRecord {
        let mut labels = labels.clone();
        if let Some(cluster) = &self.cluster {
            labels.insert(CLUSTER_LABEL.into(), cluster.clone());
        }
        if let Some(namespace) = &self.namespace {
            labels.insert(NAMESPACE_LABEL.into(), namespace.clone());
        }
        InputRecord::ArtifactMetadata {
            tenant: self.tenant.clone(),
            artifact: self.artifact.clone(),
            labels,
            runtime: self.state,
        }
    }
}

/// One step up: normal → high → emergency.
pub fn raised(priority: Priority) -> Priority {
    match priority {
        Priority::Normal => Priority::High,
        Priority::High | Priority::Emergency => Priority::Emergency,
    }
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The escalation of a pending `job` of an artifact seen running at `at`,
/// or `None` when it is already at least that urgent (or not pending).
pub fn escalation(job: &RecheckJob, at: DateTime<Utc>, reason: &str) -> Option<Escalation> {
    if !matches!(
        job.state,
        JobState::Planned | JobState::Queued | JobState::Retrying
    ) {
        return None;
    }
    let priority = job.effective_priority().max(raised(job.priority));
    let due = stamp(
        at.checked_add_signed(RUNNING_SLA)
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
    );
    // RFC 3339 UTC stamps of one format order as text; parse to compare
    // stamps written with other precisions.
    let current = job.effective_deadline();
    let earlier = match (
        DateTime::parse_from_rfc3339(current),
        DateTime::parse_from_rfc3339(&due),
    ) {
        (Ok(c), Ok(d)) => d < c,
        _ => true,
    };
    let sla_deadline = if earlier { due } else { current.to_string() };
    if priority == job.effective_priority() && sla_deadline == current {
        return None;
    }
    Some(Escalation {
        priority,
        sla_deadline,
        at: at.to_rfc3339_opts(SecondsFormat::Millis, true),
        reason: reason.to_string(),
    })
}

/// Whether an artifact that starts running needs a recheck: it has
/// affected findings, and among its `jobs` none is pending or running and
/// none has succeeded for the latest window any of them was planned for.
pub fn needs_recheck(affected_findings: usize, jobs: &[RecheckJob]) -> bool {
    if affected_findings == 0 {
        return false;
    }
    let pending = jobs.iter().any(|j| {
        matches!(
            j.state,
            JobState::Planned
                | JobState::Queued
                | JobState::Running
                | JobState::Failed
                | JobState::Retrying
        )
    });
    if pending {
        return false;
    }
    let latest = jobs.iter().map(|j| j.window).max();
    !jobs
        .iter()
        .any(|j| j.state == JobState::Succeeded && Some(j.window) >= latest)
}

/// The priority of a running artifact's recheck, from its worst affected
/// severity.
pub fn recheck_priority(worst: Option<Rating>) -> Priority {
    match worst {
        Some(Rating::Critical) => Priority::Emergency,
        _ => Priority::High,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::JobKind;

    fn job(priority: Priority, deadline: &str, state: JobState) -> RecheckJob {
        RecheckJob {
            state,
            ..RecheckJob::planned(
                "acme",
                "sha256:1",
                3,
                JobKind::Reevaluate,
                Vec::new(),
                priority,
                deadline.into(),
            )
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn pending_jobs_get_one_step_more_priority_and_a_deadline_no_later() {
        let now = at("2026-12-01T10:00:00Z");
        let e = escalation(
            &job(Priority::Normal, "2026-12-01T11:00:00Z", JobState::Queued),
            now,
            "r",
        )
        .unwrap();
        assert_eq!(e.priority, Priority::High);
        assert_eq!(e.sla_deadline, "2026-12-01T10:01:00Z");
        // An earlier deadline is kept; emergency stays emergency.
        let e = escalation(
            &job(Priority::High, "2026-12-01T10:00:30Z", JobState::Planned),
            now,
            "r",
        )
        .unwrap();
        assert_eq!(
            (e.priority, e.sla_deadline.as_str()),
            (Priority::Emergency, "2026-12-01T10:00:30Z")
        );
        // Escalating an escalated job again changes nothing; running work is left alone.
        let mut j = job(Priority::Normal, "2026-12-01T11:00:00Z", JobState::Planned);
        j.escalation = escalation(&j, now, "r");
        assert_eq!(escalation(&j, now, "r"), None);
        assert_eq!(
            escalation(
                &job(Priority::Normal, "2026-12-01T11:00:00Z", JobState::Running),
                now,
                "r"
            ),
            None
        );
    }

    #[test]
    fn a_recheck_only_without_a_verdict_for_the_latest_window() {
        let done = |w: u64, s: JobState| RecheckJob {
            window: w,
            ..job(Priority::Normal, "2026-12-01T11:00:00Z", s)
        };
        assert!(!needs_recheck(0, &[]));
        assert!(needs_recheck(2, &[]));
        assert!(!needs_recheck(2, &[done(3, JobState::Succeeded)]));
        assert!(needs_recheck(
            2,
            &[
                done(3, JobState::Succeeded),
                done(4, JobState::DeadLettered)
            ]
        ));
        assert!(!needs_recheck(2, &[done(4, JobState::Queued)]));
    }
}
