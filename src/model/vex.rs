use serde::{Deserialize, Serialize};

use super::Scope;

/// One normalized VEX statement, whatever format it came from (OpenVEX, CSAF
/// 2.0 VEX profile, CycloneDX VEX): "vulnerability V, in product P, has
/// status S, because J, as of T".
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VexStatement {
    /// The vulnerability id as the statement names it (CVE, GHSA, ...).
    pub vulnerability: String,
    /// Other names the document gives for the same vulnerability.
    pub aliases: Vec<String>,
    pub product: VexProduct,
    /// When the statement is scoped to one component of the product (OpenVEX
    /// `subcomponents`, CSAF `default_component_of`, a CycloneDX bom-link
    /// fragment): that component's purl, or its bom-ref / SPDXID.
    pub subcomponent: Option<String>,
    pub status: VexStatus,
    pub justification: Option<String>,
    pub impact_statement: Option<String>,
    /// RFC 3339 timestamp of the statement (or of its document), used for
    /// "latest statement wins".
    pub timestamp: Option<String>,
    /// Which document it came from (its id or path), for explain traces.
    pub source: String,
    pub scope: Scope,
}

/// What a VEX statement is about: a package (by purl, optionally versioned)
/// or a whole artifact (by digest or id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum VexProduct {
    Purl(String),
    Artifact(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VexStatus {
    NotAffected,
    Affected,
    Fixed,
    UnderInvestigation,
}

impl VexStatus {
    /// Whether this status takes a finding out of the affected set.
    pub fn suppresses(self) -> bool {
        matches!(self, VexStatus::NotAffected | VexStatus::Fixed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            VexStatus::NotAffected => "not_affected",
            VexStatus::Affected => "affected",
            VexStatus::Fixed => "fixed",
            VexStatus::UnderInvestigation => "under_investigation",
        }
    }
}
