//! Schedules (cron-style triggers of full re-evaluation runs) and the runs
//! they, or a person, start. Shaped after the seed's `schedules` and `runs`
//! so its users recognise them; the selector stays JSON until the schedule
//! slice gives it a type.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleMode {
    AnalysisOnly,
    ContentRefresh,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub id: String,
    pub tenant: String,
    /// Five-field cron expression.
    pub cron: String,
    /// IANA time zone the cron expression is read in.
    pub timezone: String,
    pub mode: ScheduleMode,
    /// Which artifacts a run covers (all, tenant, labels, namespace/repository, digests).
    pub selector: serde_json::Value,
    pub enabled: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunTrigger {
    Cron,
    Manual,
    Advisory,
    Vex,
    Policy,
    ContentRefresh,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Planning,
    Queued,
    Running,
    Completed,
    Cancelled,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub id: String,
    pub tenant: String,
    pub schedule: Option<String>,
    pub trigger: RunTrigger,
    pub state: RunState,
    /// UTC RFC 3339.
    pub created_at: String,
    /// Named counters (`artifacts`, `jobs`, `new_findings`, …).
    pub counters: BTreeMap<String, u64>,
    /// Sorted.
    pub jobs: Vec<String>,
}
