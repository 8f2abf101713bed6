//! Bytes → model. Every parser takes a document name (for error messages)
//! and raw bytes, and returns the model type or a [`FormatError`] that names
//! the document and the JSON path at fault. Parsers never panic on input;
//! one bad document in a batch is reported and skipped (see [`load`]).

pub mod csaf;
pub mod cvss;
pub mod cyclonedx;
pub mod load;
pub mod openvex;
pub mod osv;
pub mod purl;
pub mod spdx;
pub mod vers;

use std::fmt;

use crate::model::{Sbom, Scope, VexStatement};

/// A document that could not be turned into the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FormatError {
    /// File path, `archive.zip!entry.json`, or a caller-given name.
    pub document: String,
    /// JSON pointer-ish path of the offending value, e.g.
    /// `affected[0].ranges[1].events[2]`; `.` for the whole document.
    pub path: String,
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Not JSON at all, or truncated.
    Syntax,
    /// JSON, but a field has the wrong type or a required field is missing.
    Schema,
    /// Well-formed, but the content is not acceptable (bad purl, bad range...).
    Invalid,
    /// A format we do not recognise.
    UnknownFormat,
    /// Could not be read (I/O, archive).
    Io,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: at {}: {}", self.document, self.path, self.message)
    }
}

impl FormatError {
    pub fn new(
        document: impl Into<String>,
        path: impl Into<String>,
        kind: ErrorKind,
        message: impl Into<String>,
    ) -> Self {
        FormatError {
            document: document.into(),
            path: path.into(),
            kind,
            message: message.into(),
        }
    }

    /// Deserialize `bytes` as `T`, reporting syntax errors and the JSON path of
    /// schema errors (via `serde_path_to_error`).
    pub fn deserialize<T: serde::de::DeserializeOwned>(
        document: &str,
        bytes: &[u8],
    ) -> Result<T, FormatError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = match e.path().to_string() {
                p if p == "?" || p.is_empty() => ".".to_string(),
                p => p,
            };
            let inner = e.into_inner();
            let kind = if inner.is_syntax() || inner.is_eof() {
                ErrorKind::Syntax
            } else {
                ErrorKind::Schema
            };
            FormatError::new(document, path, kind, inner.to_string())
        })?;
        de.end()
            .map_err(|e| FormatError::new(document, ".", ErrorKind::Syntax, e.to_string()))?;
        Ok(value)
    }
}

/// Parse any supported SBOM (CycloneDX JSON 1.2–1.6 or SPDX 2.2/2.3 JSON),
/// deciding by content, not by file name.
pub fn parse_sbom(document: &str, bytes: &[u8], scope: Scope) -> Result<Sbom, FormatError> {
    match sniff(document, bytes)? {
        Sniffed::CycloneDx => cyclonedx::parse_sbom(document, bytes, scope),
        Sniffed::Spdx => spdx::parse_sbom(document, bytes, scope),
        _ => Err(FormatError::new(
            document,
            ".",
            ErrorKind::UnknownFormat,
            "not an SBOM: expected CycloneDX (bomFormat) or SPDX (spdxVersion)",
        )),
    }
}

/// Parse any supported VEX document (OpenVEX, CSAF 2.0, CycloneDX VEX) into
/// normalized statements, deciding by content.
pub fn parse_vex(
    document: &str,
    bytes: &[u8],
    scope: Scope,
) -> Result<Vec<VexStatement>, FormatError> {
    match sniff(document, bytes)? {
        Sniffed::OpenVex => openvex::parse_vex(document, bytes, scope),
        Sniffed::Csaf => csaf::parse_vex(document, bytes, scope),
        Sniffed::CycloneDx => cyclonedx::parse_vex(document, bytes, scope),
        _ => Err(FormatError::new(
            document,
            ".",
            ErrorKind::UnknownFormat,
            "not a VEX document: expected OpenVEX (@context), CSAF (document.csaf_version) \
             or CycloneDX (bomFormat)",
        )),
    }
}

/// What kind of document a JSON text is, from its top-level keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    Osv,
    CycloneDx,
    Spdx,
    OpenVex,
    Csaf,
    Unknown,
}

/// Decide a document's format from its top-level keys.
pub fn sniff(document: &str, bytes: &[u8]) -> Result<Sniffed, FormatError> {
    let value: serde_json::Value = FormatError::deserialize(document, bytes)?;
    let Some(obj) = value.as_object() else {
        return Err(FormatError::new(
            document,
            ".",
            ErrorKind::Schema,
            "expected a JSON object at the top level",
        ));
    };
    Ok(if obj.contains_key("bomFormat") {
        Sniffed::CycloneDx
    } else if obj.contains_key("spdxVersion") {
        Sniffed::Spdx
    } else if obj
        .get("@context")
        .and_then(|c| c.as_str())
        .is_some_and(|c| c.starts_with("https://openvex.dev/ns"))
    {
        Sniffed::OpenVex
    } else if obj
        .get("document")
        .and_then(|d| d.get("csaf_version"))
        .is_some()
    {
        Sniffed::Csaf
    } else if obj.contains_key("id")
        && (obj.contains_key("affected") || obj.contains_key("modified"))
    {
        Sniffed::Osv
    } else {
        Sniffed::Unknown
    })
}
