//! The domain types every other layer speaks: advisories, components, VEX
//! statements, findings, and what the durable core and the worker make of
//! them (impact deltas, ledger entries, recheck jobs, schedules, completion
//! events). They are plain data (serde, plus sha256 for the ids that must
//! agree everywhere) so that parsers, the reference matcher, the engine and
//! the stores agree on one shape.

mod advisory;
mod completion;
mod event;
mod finding;
mod impact;
mod job;
mod ledger;
mod sbom;
mod schedule;
mod vex;

pub use advisory::{
    Advisory, AffectedPackage, AffectedRange, RangeEvent, RangeKind, Rating, Severity,
    SeverityScore,
};
pub use completion::{CompletionEvent, Verdict};
pub use event::StoredEvent;
pub use finding::{Finding, FindingStatus, MatchReason};
pub use impact::{purl_base, ImpactDelta, ImpactFinding};
pub use job::{
    Direction, Escalation, JobKind, JobReason, JobState, JobTransition, Priority, RecheckJob,
};
pub use ledger::{link_hash, LedgerEntry, LedgerPayload, LedgerRecord, GENESIS};
pub use sbom::{Artifact, Component, RuntimeState, Sbom, SbomFormat};
pub use schedule::{PackageSelector, Run, RunState, RunTrigger, Schedule, Selector, SelectorError};
pub use vex::{VexProduct, VexStatement, VexStatus};

use serde::{Deserialize, Serialize};

/// Who a piece of data belongs to. Advisories are always global (one feed for
/// everyone); SBOMs and artifacts belong to a tenant; VEX statements belong to
/// a tenant or are global when they come from the feed (vendor VEX).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "scope", content = "tenant")]
pub enum Scope {
    Global,
    Tenant(String),
}

impl Scope {
    /// Whether data of this scope is visible to `tenant`.
    pub fn visible_to(&self, tenant: &str) -> bool {
        match self {
            Scope::Global => true,
            Scope::Tenant(t) => t == tenant,
        }
    }
}

/// The tenant used when a caller does not name one (CLI one-shots, the demo).
pub const DEFAULT_TENANT: &str = "default";
