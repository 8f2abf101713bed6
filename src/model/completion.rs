//! What a finished recheck job established, as the facts that follow from
//! the input log alone. Attempts, timings and executor answers are not here:
//! they differ between runs, and this is what gets signed and must replay
//! byte for byte.

use serde::{Deserialize, Serialize};

use super::JobReason;

/// The result of one recheck job for one artifact. Digests are lower-case hex
/// sha256 of the canonical JSON of what they name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionEvent {
    /// The job's deterministic id (sha256 over tenant, artifact, window,
    /// reasons).
    pub job_id: String,
    pub tenant: String,
    /// The artifact's id (`Artifact::id`).
    pub artifact: String,
    /// sha256 of the artifact itself (image or file digest): the in-toto
    /// subject.
    pub artifact_sha256: String,
    /// The input-log window whose deltas caused the job.
    pub window: u64,
    /// Why the job exists; sorted, de-duplicated when signed.
    pub reasons: Vec<JobReason>,
    pub policy_version: String,
    pub verdict: Verdict,
    /// Of the artifact's findings evaluated (sorted).
    pub findings_sha256: String,
    /// Of the policy evaluator's explain trace.
    pub explain_trace_sha256: String,
}

/// The built-in policy evaluator's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}
