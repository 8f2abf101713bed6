//! CVSS vectors → base score and rating. SKELETON: helper "osv+cvss+openvex+csaf".

use crate::model::SeverityScore;

/// Score an OSV severity entry (`type`, `score`); `None` for kinds we do not score.
pub fn score(kind: &str, vector: &str) -> Option<SeverityScore> {
    let _ = (kind, vector);
    todo!()
}
