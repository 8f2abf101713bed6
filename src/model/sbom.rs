use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Scope;

/// What an SBOM describes: a container image, a package, a build.
///
/// `id` is the identity everything else keys on: the image/file digest
/// (`sha256:<hex>`) when the SBOM states one, else `name@version` (or `name`),
/// else the SBOM's own serial number / document namespace. It never depends
/// on file names or parse order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Artifact {
    pub id: String,
    pub name: Option<String>,
    pub version: Option<String>,
    pub digest: Option<String>,
    pub purl: Option<String>,
    /// Other identities of the same artifact that VEX documents may use: the
    /// CycloneDX serial number as `urn:cdx:<uuid>/<version>` and bare
    /// `urn:uuid:<uuid>`, the SPDX document namespace, the artifact purl.
    /// Sorted, de-duplicated.
    pub references: Vec<String>,
}

/// One package found inside an artifact.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Component {
    /// CycloneDX `bom-ref` or SPDX `SPDXID`, for explain traces.
    pub reference: Option<String>,
    pub name: String,
    pub version: Option<String>,
    /// Canonical purl string (see `formats::purl::Purl::canonical`).
    pub purl: Option<String>,
    /// OSV ecosystem derived from the purl (`PyPI`, `npm`, `Debian:12`, ...).
    pub ecosystem: Option<String>,
    /// OSV package name derived from the purl, normalized as advisories are.
    pub package: Option<String>,
    /// Algorithm (lower-case, e.g. `sha-256`) → hex.
    pub hashes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SbomFormat {
    CycloneDx,
    Spdx,
}

/// A parsed SBOM: the artifact it describes and its components, sorted and
/// de-duplicated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sbom {
    pub format: SbomFormat,
    pub spec_version: String,
    pub artifact: Artifact,
    pub scope: Scope,
    pub components: Vec<Component>,
}

/// Whether an artifact is deployed/running somewhere; running artifacts get
/// tighter SLAs downstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeState {
    Unknown,
    Deployed,
    Running,
    Stopped,
}

impl RuntimeState {
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeState::Unknown => "unknown",
            RuntimeState::Deployed => "deployed",
            RuntimeState::Running => "running",
            RuntimeState::Stopped => "stopped",
        }
    }
}
