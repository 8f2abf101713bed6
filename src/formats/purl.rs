//! Package URLs (purl spec): parse, normalize per type, and map purl type ⇄
//! OSV ecosystem so SBOM components and advisory entries join on one key.
//!
//! SKELETON: helper "purl+cyclonedx+spdx" implements this file.

use std::collections::BTreeMap;

use super::FormatError;

/// A parsed, normalized package URL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Purl {
    pub ty: String,
    pub namespace: Option<String>,
    pub name: String,
    pub version: Option<String>,
    pub qualifiers: BTreeMap<String, String>,
    pub subpath: Option<String>,
}

impl Purl {
    /// Parse and normalize. `document`/`path` name where it came from for the error.
    pub fn parse(s: &str) -> Result<Purl, PurlError> {
        let _ = s;
        todo!()
    }

    /// The canonical string form (normalized, qualifiers sorted, percent-encoded).
    pub fn canonical(&self) -> String {
        todo!()
    }

    /// OSV ecosystem of this purl, e.g. `PyPI`, `npm`, `Maven`, `Go`,
    /// `crates.io`, `Debian:12` (from `distro=debian-12` / `bookworm`), `Alpine:v3.18`.
    pub fn ecosystem(&self) -> Option<String> {
        todo!()
    }

    /// OSV package name: `group:artifact` for Maven, `@scope/name` for npm,
    /// the full module path for Go, `vendor/name` for Packagist, PEP 503 for PyPI.
    pub fn package_name(&self) -> String {
        todo!()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid purl {input:?}: {reason}")]
pub struct PurlError {
    pub input: String,
    pub reason: String,
}

impl PurlError {
    pub fn at(self, document: &str, path: &str) -> FormatError {
        FormatError::new(document, path, super::ErrorKind::Invalid, self.to_string())
    }
}

/// purl type for an OSV ecosystem (base name before `:`), e.g. `PyPI` → `pypi`.
pub fn purl_type_for_ecosystem(ecosystem: &str) -> Option<&'static str> {
    let _ = ecosystem;
    todo!()
}

/// Normalize an OSV package name the way [`Purl::package_name`] does, so
/// `(ecosystem, name)` of an advisory equals that of a matching component.
pub fn normalize_package_name(ecosystem: &str, name: &str) -> String {
    let base = ecosystem.split(':').next().unwrap_or(ecosystem);
    match base {
        // PEP 503: lower-case, runs of `-`, `_`, `.` become one `-`.
        "PyPI" => {
            let mut out = String::with_capacity(name.len());
            let mut sep = false;
            for c in name.chars() {
                if matches!(c, '-' | '_' | '.') {
                    sep = true;
                } else {
                    if sep && !out.is_empty() {
                        out.push('-');
                    }
                    sep = false;
                    out.extend(c.to_lowercase());
                }
            }
            out
        }
        // npm and Packagist names are case-insensitive in practice and
        // registries store them lower-cased.
        "npm" | "Packagist" => name.to_lowercase(),
        _ => name.to_string(),
    }
}
