use serde::{Deserialize, Serialize};

/// One OSV advisory (schema 1.6), reduced to what matching and reporting need.
/// Unknown fields are not kept; `ecosystem_specific` / `database_specific`
/// are kept verbatim because downstream policy may read them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advisory {
    pub id: String,
    pub modified: Option<String>,
    pub published: Option<String>,
    pub withdrawn: Option<String>,
    pub aliases: Vec<String>,
    pub related: Vec<String>,
    pub summary: Option<String>,
    pub severity: Vec<Severity>,
    pub affected: Vec<AffectedPackage>,
    pub database_specific: Option<serde_json::Value>,
}

impl Advisory {
    /// The advisory id followed by its aliases: every name this flaw goes by here.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.id.as_str()).chain(self.aliases.iter().map(String::as_str))
    }

    /// The highest-rated severity of the advisory itself or of any affected entry.
    pub fn max_severity(&self) -> Option<SeverityScore> {
        self.severity
            .iter()
            .chain(self.affected.iter().flat_map(|a| a.severity.iter()))
            .filter_map(|s| s.computed)
            .max_by(|a, b| a.score.total_cmp(&b.score))
    }
}

/// One `affected[]` entry: a package in an ecosystem and the versions of it
/// the advisory covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AffectedPackage {
    /// OSV ecosystem exactly as written, e.g. `PyPI`, `Debian:11`, `Alpine:v3.18`.
    pub ecosystem: String,
    /// Package name normalized the way components are (see `formats::purl`),
    /// e.g. PEP 503 for PyPI, so `(ecosystem, name)` joins with components.
    pub name: String,
    pub purl: Option<String>,
    pub ranges: Vec<AffectedRange>,
    /// Explicit `versions[]`, the only source of truth for ecosystems without
    /// a known version order.
    pub versions: Vec<String>,
    pub severity: Vec<Severity>,
    pub ecosystem_specific: Option<serde_json::Value>,
    pub database_specific: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RangeKind {
    Semver,
    Ecosystem,
    Git,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AffectedRange {
    pub kind: RangeKind,
    pub repo: Option<String>,
    pub events: Vec<RangeEvent>,
}

/// An OSV range event. `introduced: "0"` means "from the beginning".
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RangeEvent {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

impl RangeEvent {
    pub fn version(&self) -> &str {
        match self {
            RangeEvent::Introduced(v)
            | RangeEvent::Fixed(v)
            | RangeEvent::LastAffected(v)
            | RangeEvent::Limit(v) => v,
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            RangeEvent::Introduced(_) => "introduced",
            RangeEvent::Fixed(_) => "fixed",
            RangeEvent::LastAffected(_) => "last_affected",
            RangeEvent::Limit(_) => "limit",
        }
    }
}

/// A severity entry as written (`type` + `score`, e.g. a CVSS vector) with
/// the base score computed from it when the vector is one we can score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Severity {
    /// `CVSS_V2`, `CVSS_V3`, `CVSS_V4`, `Ubuntu`, ...
    pub kind: String,
    pub vector: String,
    pub computed: Option<SeverityScore>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeverityScore {
    pub score: f64,
    pub rating: Rating,
}

/// Qualitative rating (CVSS v3/v4 bands). Ordered so `max` is "worst".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rating {
    None,
    Low,
    Medium,
    High,
    Critical,
}

impl Rating {
    /// CVSS v3.x / v4.0 qualitative severity rating scale.
    pub fn from_score(score: f64) -> Rating {
        if score >= 9.0 {
            Rating::Critical
        } else if score >= 7.0 {
            Rating::High
        } else if score >= 4.0 {
            Rating::Medium
        } else if score > 0.0 {
            Rating::Low
        } else {
            Rating::None
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Rating::None => "none",
            Rating::Low => "low",
            Rating::Medium => "medium",
            Rating::High => "high",
            Rating::Critical => "critical",
        }
    }
}
