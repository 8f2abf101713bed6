//! The compacted snapshot of current inputs: the latest record of every live
//! document (advisory, SBOM, VEX document, artifact metadata), with the
//! sequence number it was appended at, as of a committed window's close.
//! A restarting engine loads it and then only the log tail after it, instead
//! of every record ever appended.
//!
//! A record's effect on the engine depends only on its document's latest
//! record: a replacement retracts exactly what the previous one gave, a
//! removal (or a withdrawn advisory, which matches nothing) leaves no trace
//! but a retraction. So applying just the latest live records, at their
//! original sequence numbers (VEX precedence uses them), leaves the engine
//! in the state the whole log does, and the windows after it produce the
//! same deltas.
//!
//! Compaction is a step of its own, not part of the window commit: it reads
//! the log from where the snapshot stands to the last committed window and
//! moves the snapshot in one transaction, conditional on where it stood, so a
//! crash or two compactors leave it consistent (a lagging snapshot only means
//! a longer tail).

use std::collections::BTreeMap;

use crate::engine::record::InputRecord;
use crate::model::Scope;
use crate::scan::product::scope_token;
use crate::store::{InputEntry, SnapshotHead, SnapshotRow, SnapshotUpdate, Store, StoreError};

/// What one record does to the snapshot.
enum Effect {
    Put(String),
    Delete(Vec<String>),
    None,
}

/// A document key: the JSON array of its parts (unambiguous, and text every
/// backend stores).
fn key(parts: &[&str]) -> String {
    serde_json::to_string(parts).unwrap_or_default()
}

fn advisory_key(id: &str) -> String {
    key(&["advisory", id])
}

fn sbom_key(tenant: &str, artifact: &str) -> String {
    key(&["sbom", tenant, artifact])
}

fn metadata_key(tenant: &str, artifact: &str) -> String {
    key(&["metadata", tenant, artifact])
}

fn vex_key(scope: &Scope, document: &str) -> String {
    key(&["vex", &scope_token(scope), document])
}

fn effect(record: &InputRecord) -> Effect {
    match record {
        InputRecord::Advisory { advisory } if advisory.withdrawn.is_some() => {
            Effect::Delete(vec![advisory_key(&advisory.id)])
        }
        InputRecord::Advisory { advisory } => Effect::Put(advisory_key(&advisory.id)),
        InputRecord::AdvisoryRemoved { id } => Effect::Delete(vec![advisory_key(id)]),
        InputRecord::Sbom { tenant, sbom } => Effect::Put(sbom_key(tenant, &sbom.artifact.id)),
        InputRecord::ArtifactRemoved { tenant, artifact } => Effect::Delete(vec![
            sbom_key(tenant, artifact),
            metadata_key(tenant, artifact),
        ]),
        InputRecord::Vex {
            scope, document, ..
        } => Effect::Put(vex_key(scope, document)),
        InputRecord::VexRemoved { scope, document } => {
            Effect::Delete(vec![vex_key(scope, document)])
        }
        InputRecord::ArtifactMetadata {
            tenant, artifact, ..
        } => Effect::Put(metadata_key(tenant, artifact)),
        InputRecord::WindowClosed { .. } => Effect::None,
    }
}

/// Log entries read per page.
const PAGE: usize = 10_000;

/// Fold the log records from `from` through `through` into `latest`: each
/// document key's latest record (`None`: removed).
async fn fold(
    store: &dyn Store,
    latest: &mut BTreeMap<String, Option<InputEntry>>,
    from: u64,
    through: u64,
) -> Result<(), StoreError> {
    let mut next = from;
    while next <= through {
        let page = store.read_inputs(next, PAGE).await?;
        let Some(last) = page.last() else { break };
        next = last.seq + 1;
        for input in page.into_iter().filter(|i| i.seq <= through) {
            match effect(&input.log_entry()?.record) {
                Effect::Put(key) => {
                    latest.insert(key, Some(input));
                }
                Effect::Delete(keys) => {
                    for key in keys {
                        latest.insert(key, None);
                    }
                }
                Effect::None => {}
            }
        }
    }
    Ok(())
}

/// The latest record of every live document as of input seq `through` (the
/// `WindowClosed` of a committed window), in seq order: the snapshot where
/// it does not pass `through`, then the log after it. What a simulation
/// starts from (see [`super::whatif`]); reads only.
pub async fn current_inputs(
    store: &dyn Store,
    through: u64,
) -> Result<Vec<InputEntry>, StoreError> {
    let mut latest: BTreeMap<String, Option<InputEntry>> = BTreeMap::new();
    let snapshot = store.input_snapshot().await?.filter(|s| s.seq <= through);
    if snapshot.is_some() {
        let mut next = 0;
        loop {
            let page = store.read_input_snapshot(next, PAGE).await?;
            let Some(last) = page.last() else { break };
            next = last.seq + 1;
            for input in page {
                if let Effect::Put(key) = effect(&input.log_entry()?.record) {
                    latest.insert(key, Some(input));
                }
            }
        }
    }
    fold(
        store,
        &mut latest,
        snapshot.map_or(1, |s| s.seq + 1),
        through,
    )
    .await?;
    let mut out: Vec<InputEntry> = latest.into_values().flatten().collect();
    out.sort_by_key(|e| e.seq);
    Ok(out)
}

/// Move the snapshot up to the last committed window: fold the log records
/// after the snapshot's seq, through that window's `WindowClosed`, into
/// per-document puts and deletes. Returns the new head, or the current one
/// when nothing was committed since (`None`: nothing to compact yet).
/// `Ok(None)` also when another compactor moved the snapshot meanwhile.
pub async fn compact(store: &dyn Store) -> Result<Option<SnapshotHead>, StoreError> {
    let current = store.input_snapshot().await?;
    let Some(head) = store.ledger_head().await? else {
        return Ok(current);
    };
    let base = current.map(|c| c.seq);
    if base.is_some_and(|b| b >= head.seq) {
        return Ok(current);
    }
    // Latest effect per document key: Some(row) to put, None to delete.
    let mut latest: BTreeMap<String, Option<InputEntry>> = BTreeMap::new();
    fold(store, &mut latest, base.map_or(1, |b| b + 1), head.seq).await?;
    let mut update = SnapshotUpdate {
        base,
        seq: head.seq,
        window: head.window,
        put: Vec::new(),
        delete: Vec::new(),
    };
    for (key, row) in latest {
        match row {
            Some(entry) => update.put.push(SnapshotRow { key, entry }),
            None => update.delete.push(key),
        }
    }
    if !store.compact_inputs(&update).await? {
        return Ok(None);
    }
    let moved = store.input_snapshot().await?;
    tracing::info!(
        seq = head.seq,
        window = head.window,
        records = moved.map(|m| m.records),
        "input snapshot compacted"
    );
    Ok(moved)
}
