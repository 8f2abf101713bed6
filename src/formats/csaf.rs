//! CSAF 2.0 (VEX profile and product_status of advisories). SKELETON: helper "osv+cvss+openvex+csaf".

use super::FormatError;
use crate::model::{Scope, VexStatement};

pub fn parse_vex(
    document: &str,
    bytes: &[u8],
    scope: Scope,
) -> Result<Vec<VexStatement>, FormatError> {
    let _ = (document, bytes, scope);
    todo!()
}
