use serde::{Deserialize, Serialize};

use super::{Rating, VexStatus};

/// "Component C of artifact X is affected by advisory A" (or was, until a VEX
/// statement suppressed it). One row per advisory; `vulnerability` is the
/// canonical id shared by all advisories that alias each other.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Finding {
    pub tenant: String,
    pub artifact: String,
    pub advisory: String,
    pub vulnerability: String,
    pub aliases: Vec<String>,
    pub purl: Option<String>,
    pub ecosystem: String,
    pub package: String,
    pub version: String,
    pub severity: Option<Rating>,
    pub status: FindingStatus,
    pub reason: MatchReason,
    /// Set when a VEX statement applies (suppressing or not).
    pub vex_status: Option<VexStatus>,
    pub justification: Option<String>,
    pub vex_source: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingStatus {
    Affected,
    Suppressed,
}

/// Why a version matched: the range event that opened the affected interval,
/// or the explicit `versions[]` list.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "via")]
pub enum MatchReason {
    /// `version` lies in `[introduced, fixed)` / `[introduced, last_affected]`
    /// / `[introduced, limit)` of range number `range` of affected entry `entry`.
    Range {
        entry: usize,
        range: usize,
        introduced: String,
        /// The closing event (`fixed: 1.2.3`, `last_affected: 1.2`, ...) if any.
        until: Option<String>,
    },
    /// `version` is listed in `versions[]` of affected entry `entry`.
    Listed { entry: usize },
}
