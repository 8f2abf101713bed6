//! OSV advisories (schema 1.6). SKELETON: helper "osv+cvss+openvex+csaf".

use super::FormatError;
use crate::model::Advisory;

/// Parse one OSV JSON document.
pub fn parse_advisory(document: &str, bytes: &[u8]) -> Result<Advisory, FormatError> {
    let _ = (document, bytes);
    todo!()
}
