//! What the durable core keeps of the engine's output: one [`ImpactDelta`]
//! per finding that appeared (+1) or disappeared (−1) in a window, and the
//! [`ImpactFinding`] rows that make up an artifact's current impact snapshot.
//! They are a compact projection of [`Finding`] (no aliases): enough for
//! jobs, snapshots and the impact queries, and, with the match reason and the
//! VEX provenance, for the policy evaluator's explain trace, which reads the
//! stored snapshot rather than the live engine.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Finding, FindingStatus, MatchReason, Rating, VexStatus};

/// One row of an artifact's impact snapshot: "component `purl` of
/// `artifact` is affected by `advisory` (or was, until VEX suppressed it)".
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ImpactFinding {
    pub tenant: String,
    pub artifact: String,
    pub advisory: String,
    pub vulnerability: String,
    pub purl: Option<String>,
    pub ecosystem: String,
    pub package: String,
    pub version: String,
    pub severity: Option<Rating>,
    pub status: FindingStatus,
    /// The range event (or `versions[]` entry) that matched.
    pub reason: MatchReason,
    /// Set when a VEX statement applies (suppressing or not).
    pub vex_status: Option<VexStatus>,
    pub justification: Option<String>,
    /// The VEX document the deciding statement came from.
    pub vex_source: Option<String>,
}

impl From<&Finding> for ImpactFinding {
    fn from(f: &Finding) -> Self {
        ImpactFinding {
            tenant: f.tenant.clone(),
            artifact: f.artifact.clone(),
            advisory: f.advisory.clone(),
            vulnerability: f.vulnerability.clone(),
            purl: f.purl.clone(),
            ecosystem: f.ecosystem.clone(),
            package: f.package.clone(),
            version: f.version.clone(),
            severity: f.severity,
            status: f.status,
            reason: f.reason.clone(),
            vex_status: f.vex_status,
            justification: f.justification.clone(),
            vex_source: f.vex_source.clone(),
        }
    }
}

impl ImpactFinding {
    /// A stable key for this exact row within its artifact: sha256 hex of its
    /// JSON (fixed field order, so the same row always has the same key).
    pub fn key(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(bytes))
    }

    /// The purl without version, qualifiers or subpath
    /// (`pkg:pypi/jinja2@2.4.1?x=y` → `pkg:pypi/jinja2`), so impact queries
    /// can ask for a package whatever its version.
    pub fn purl_base(&self) -> Option<&str> {
        self.purl.as_deref().map(purl_base)
    }
}

/// See [`ImpactFinding::purl_base`]. A canonical purl percent-encodes `@` in
/// its namespace and name, so the last `@` before `?`/`#` starts the version.
pub fn purl_base(purl: &str) -> &str {
    let end = purl.find(['?', '#']).unwrap_or(purl.len());
    let head = &purl[..end];
    head.rfind('@').map_or(head, |at| &head[..at])
}

/// One change of one artifact's impact in one window. `diff` is +1 when the
/// finding appeared, −1 when it went away; a VEX suppression is a −1 of the
/// `affected` row and a +1 of the `suppressed` one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ImpactDelta {
    pub window: u64,
    pub diff: i64,
    pub finding: ImpactFinding,
}

impl ImpactDelta {
    /// The deltas of a closed window as the engine renders them (findings
    /// with their diffs), sorted.
    pub fn from_findings<'a, I>(window: u64, findings: I) -> Vec<ImpactDelta>
    where
        I: IntoIterator<Item = (&'a Finding, i64)>,
    {
        let mut deltas: Vec<ImpactDelta> = findings
            .into_iter()
            .map(|(f, diff)| ImpactDelta {
                window,
                diff,
                finding: f.into(),
            })
            .collect();
        deltas.sort();
        deltas
    }
}

#[cfg(test)]
mod tests {
    use super::purl_base;

    #[test]
    fn purl_base_strips_version_qualifiers_and_subpath() {
        assert_eq!(purl_base("pkg:pypi/jinja2@2.4.1"), "pkg:pypi/jinja2");
        assert_eq!(
            purl_base("pkg:npm/%40babel/core@7.0.0?arch=x#lib"),
            "pkg:npm/%40babel/core"
        );
        assert_eq!(
            purl_base("pkg:deb/debian/openssl@3.0.11-1~deb12u2?distro=debian-12"),
            "pkg:deb/debian/openssl"
        );
        assert_eq!(purl_base("pkg:cargo/tokio"), "pkg:cargo/tokio");
    }
}
