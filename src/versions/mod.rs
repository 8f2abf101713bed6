//! Ecosystem version order and OSV range evaluation.
//! SKELETON: helper "versions" implements this module (one file per family).

use std::cmp::Ordering;

use crate::model::{AffectedPackage, MatchReason};

/// A version ordering scheme shared by one or more OSV ecosystems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    SemVer,
    Go,
    Pep440,
    Maven,
    RubyGems,
    NuGet,
    Packagist,
    Pub,
    Hex,
    Dpkg,
    Rpm,
    Apk,
    Cran,
    Hackage,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{scheme:?} version {version:?} is not valid: {reason}")]
pub struct VersionError {
    pub scheme: Scheme,
    pub version: String,
    pub reason: String,
}

impl Scheme {
    /// Scheme of an OSV ecosystem (its base name before `:`); `None` if unknown.
    pub fn for_ecosystem(ecosystem: &str) -> Option<Scheme> {
        let _ = ecosystem;
        todo!()
    }

    pub fn compare(&self, a: &str, b: &str) -> Result<Ordering, VersionError> {
        let _ = (a, b);
        todo!()
    }
}

/// Stable ascending sort of the parseable versions; errors for the others.
pub fn sort_versions(scheme: Scheme, lines: &[String]) -> (Vec<String>, Vec<VersionError>) {
    let _ = (scheme, lines);
    todo!()
}

/// Result of evaluating one version against one affected entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeMatch {
    Affected(MatchReason),
    NotAffected,
}

/// An affected entry with its range event versions parsed once, so that
/// evaluating many versions against it is cheap.
#[derive(Debug, Clone)]
pub struct CompiledAffected {
    _private: (),
}

impl CompiledAffected {
    pub fn new(entry: &AffectedPackage, entry_index: usize) -> CompiledAffected {
        let _ = (entry, entry_index);
        todo!()
    }

    /// Whether the ecosystem has a known order (else only `versions[]` counts).
    pub fn is_ordered(&self) -> bool {
        todo!()
    }

    /// Ranges that could not be evaluated (unparseable event versions).
    pub fn unusable_ranges(&self) -> usize {
        todo!()
    }

    pub fn matches(&self, version: &str) -> RangeMatch {
        let _ = version;
        todo!()
    }
}
