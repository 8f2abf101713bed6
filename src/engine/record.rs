//! The input-log record: the only thing the engine consumes.
//!
//! Every accepted change (an advisory, a VEX document, an SBOM, artifact
//! metadata) becomes one record, appended by the single log writer, and so do
//! `WindowClosed` marks. The engine advances its input frontier only on
//! `WindowClosed`, so replaying the same log gives the same deltas in the same
//! windows; the writer is the only place a clock is read (to decide when a
//! window's length has elapsed) and callers may also ask for an immediate
//! close, so a lone advisory is never left waiting.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::model::RuntimeState;
use crate::model::{Advisory, Sbom, Scope, VexStatement};

/// One entry of the input log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InputRecord {
    /// Insert an advisory or replace the one with the same id. An advisory
    /// with `withdrawn` set retracts its findings.
    Advisory {
        advisory: Advisory,
    },
    /// The advisory's source disappeared (e.g. its file was deleted).
    AdvisoryRemoved {
        id: String,
    },
    /// Insert or replace the SBOM of `(tenant, sbom.artifact.id)`; only the
    /// component differences produce deltas.
    Sbom {
        tenant: String,
        sbom: Sbom,
    },
    ArtifactRemoved {
        tenant: String,
        artifact: String,
    },
    /// Insert or replace all statements of one VEX document.
    Vex {
        scope: Scope,
        document: String,
        statements: Vec<VexStatement>,
    },
    VexRemoved {
        scope: Scope,
        document: String,
    },
    /// Labels and runtime state of an artifact.
    ArtifactMetadata {
        tenant: String,
        artifact: String,
        labels: BTreeMap<String, String>,
        runtime: RuntimeState,
    },
    /// Everything appended since the previous `WindowClosed` belongs to
    /// `window`; the engine may now compute and emit its deltas. The log
    /// writer stamps `closed_at` (UTC RFC 3339) when it appends the record,
    /// so SLA deadlines derived from it replay exactly; the engine ignores it.
    WindowClosed {
        window: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        closed_at: Option<String>,
    },
}

impl InputRecord {
    /// The close time the log writer stamped on a `WindowClosed` record;
    /// `None` for other records and for a missing or unreadable stamp.
    pub fn close_stamp(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        match self {
            InputRecord::WindowClosed {
                closed_at: Some(at),
                ..
            } => chrono::DateTime::parse_from_rfc3339(at)
                .ok()
                .map(|t| t.with_timezone(&chrono::Utc)),
            _ => None,
        }
    }
}

/// A record with its position in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    pub seq: u64,
    pub record: InputRecord,
}
