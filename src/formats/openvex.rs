//! OpenVEX 0.2.x (and 0.0.1). SKELETON: helper "osv+cvss+openvex+csaf".

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
