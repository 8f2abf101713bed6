//! The run planner: a run (a cron schedule firing, a person, a policy) asks
//! for every artifact a selector covers to be re-evaluated or re-scanned; the
//! planner turns it into one job per artifact, committed with the run in one
//! store transaction as an outbox (the jobs `planned`, for the dispatcher to
//! queue), or returned without writing anything as a dry run.
//!
//! Planning is a pure function of the request (including its time) and the
//! engine's artifact directory as of the last closed window, so the same
//! request plans the same run id and job ids, and a cron fire time that two
//! schedulers (or one restarted) both fire commits once.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::engine::directory::ArtifactDirectory;
use crate::model::{
    JobKind, Priority, RecheckJob, Run, RunState, RunTrigger, Selector, SelectorError,
};
use crate::store::{CursorMove, RunCommit};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    #[error("selector: {0}")]
    Selector(#[from] SelectorError),
    #[error("selector names tenant {named}, but the run is {tenant}'s")]
    OtherTenant { tenant: String, named: String },
}

/// What someone asks a run to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRequest {
    /// Who asks: the schedule's tenant, the API caller's.
    pub tenant: String,
    /// Whether the selector may reach every tenant's artifacts (an admin's
    /// run); otherwise it covers `tenant`'s only.
    pub all_tenants: bool,
    pub schedule: Option<String>,
    pub trigger: RunTrigger,
    pub mode: JobKind,
    pub selector: Selector,
    pub reason: Option<String>,
    pub priority: Priority,
    /// When the run starts (a cron run: its fire time); the jobs' SLA
    /// deadlines count from here.
    pub at: DateTime<Utc>,
}

/// What a run id commits to: a schedule's run is one per fire time, whatever
/// else changed about the schedule since.
#[derive(Serialize)]
#[serde(untagged)]
enum RunIdInput<'a> {
    Scheduled {
        schedule: &'a str,
        fire_time: &'a str,
    },
    Adhoc {
        tenant: &'a str,
        all_tenants: bool,
        trigger: RunTrigger,
        mode: JobKind,
        selector: &'a Selector,
        reason: Option<&'a str>,
        priority: Priority,
        at: &'a str,
    },
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl RunRequest {
    /// sha256 hex of `{schedule, fire_time}` for a schedule's cron run, else
    /// of the whole request; the same request twice is the same run.
    pub fn run_id(&self) -> String {
        let at = stamp(self.at);
        let input = match (&self.schedule, self.trigger) {
            (Some(schedule), RunTrigger::Cron) => RunIdInput::Scheduled {
                schedule,
                fire_time: &at,
            },
            _ => RunIdInput::Adhoc {
                tenant: &self.tenant,
                all_tenants: self.all_tenants,
                trigger: self.trigger,
                mode: self.mode,
                selector: &self.selector,
                reason: self.reason.as_deref(),
                priority: self.priority,
                at: &at,
            },
        };
        hex::encode(Sha256::digest(
            serde_json::to_vec(&input).unwrap_or_default(),
        ))
    }
}

/// A planned run and its jobs (sorted by id), not yet written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPlan {
    pub run: Run,
    pub jobs: Vec<RecheckJob>,
}

impl RunPlan {
    /// The store transaction that writes this plan, moving `cursors` with it.
    pub fn commit(self, cursors: Vec<CursorMove>) -> RunCommit {
        RunCommit {
            run: self.run,
            jobs: self.jobs,
            cursors,
        }
    }
}

/// How run jobs are planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPlanner {
    /// Time from a run's start to each of its jobs' SLA deadline. Full runs
    /// are background work next to the five minutes of incremental jobs.
    pub sla: TimeDelta,
}

impl Default for RunPlanner {
    fn default() -> Self {
        RunPlanner {
            sla: TimeDelta::hours(1),
        }
    }
}

impl RunPlanner {
    /// One job per artifact `request.selector` covers in `directory`, as of
    /// `window` (the last closed window). A run with no artifacts is
    /// `completed` at once; otherwise it is `queued` (its jobs are in the
    /// outbox). Counters: `artifacts`, `jobs`, `tenants`.
    pub fn plan(
        &self,
        request: &RunRequest,
        directory: &ArtifactDirectory,
        window: Option<u64>,
    ) -> Result<RunPlan, RunError> {
        request.selector.validate()?;
        if let Some(named) = &request.selector.tenant {
            if !request.all_tenants && *named != request.tenant {
                return Err(RunError::OtherTenant {
                    tenant: request.tenant.clone(),
                    named: named.clone(),
                });
            }
        }
        let within = (!request.all_tenants).then_some(request.tenant.as_str());
        let selected = match window {
            Some(_) => directory.select(&request.selector, within),
            None => Vec::new(),
        };
        let id = request.run_id();
        let deadline = request
            .at
            .checked_add_signed(self.sla)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
            .to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut jobs: Vec<RecheckJob> = selected
            .iter()
            .map(|(tenant, artifact)| {
                RecheckJob::for_run(
                    &id,
                    tenant,
                    artifact,
                    window.unwrap_or_default(),
                    request.mode,
                    request.priority,
                    deadline.clone(),
                )
            })
            .collect();
        jobs.sort_by(|a, b| a.id.cmp(&b.id));
        let mut tenants: Vec<&str> = selected.iter().map(|(t, _)| t.as_str()).collect();
        tenants.dedup();
        let counters = [
            ("artifacts", selected.len()),
            ("jobs", jobs.len()),
            ("tenants", tenants.len()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v as u64))
        .collect();
        let run = Run {
            id,
            tenant: request.tenant.clone(),
            schedule: request.schedule.clone(),
            trigger: request.trigger,
            mode: request.mode,
            selector: request.selector.clone(),
            reason: request.reason.clone(),
            window,
            state: if jobs.is_empty() {
                RunState::Completed
            } else {
                RunState::Queued
            },
            created_at: stamp(request.at),
            counters,
            jobs: jobs.iter().map(|j| j.id.clone()).collect(),
        };
        Ok(RunPlan { run, jobs })
    }
}
