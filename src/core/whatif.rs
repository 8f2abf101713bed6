//! What-if: what applying one document (an OSV advisory or a VEX document)
//! would change, without applying it. The answer is the impact deltas the
//! document's window would commit and the recheck jobs the planner would
//! make of them; nothing is written and the engine is not touched.
//!
//! The engine cannot be asked (its state only moves by closing a window in
//! the log), so the simulation runs the reference matcher ([`crate::scan`],
//! the engine's specification: the two are tested equal) over the current
//! inputs as of the last committed window, once as they are and once with
//! the document applied, and takes the difference. Current inputs are the
//! latest record of each live document (see
//! [`super::compaction::current_inputs`]); VEX statements keep their log
//! order (the engine's tie-break), and the document comes after all of them,
//! as it would when appended. Only the caller's tenant is scanned: its SBOMs
//! against every advisory and the VEX it sees (its own and the feed's),
//! which is all a finding of its artifacts can depend on.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::engine::record::InputRecord;
use crate::model::{Advisory, ImpactDelta, ImpactFinding, RecheckJob, Sbom, Scope, VexStatement};
use crate::scan::{Matcher, ScanStats};
use crate::store::{Store, StoreError};

use super::compaction::current_inputs;
use super::planner::Planner;

/// The document a what-if applies.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Insert it, or replace the advisory with its id.
    Advisory(Box<Advisory>),
    /// Insert the document's statements, or replace those kept under the
    /// same scope and name.
    Vex {
        scope: Scope,
        document: String,
        statements: Vec<VexStatement>,
    },
}

/// What applying a [`Change`] would do to one tenant's impact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhatIf {
    /// The last committed window: the state compared against.
    pub as_of_window: Option<u64>,
    /// The window the document would be applied in, were it appended now
    /// and nothing else: the deltas and jobs carry it.
    pub window: u64,
    /// Net impact changes, sorted (the ledger's shape).
    pub deltas: Vec<ImpactDelta>,
    /// The jobs the planner would make of them, by id.
    pub jobs: Vec<RecheckJob>,
    /// SBOMs scanned (the tenant's artifacts).
    pub artifacts: usize,
}

/// The tenant's view of the current inputs.
#[derive(Default)]
struct Inputs {
    advisories: Vec<Advisory>,
    sboms: Vec<Sbom>,
    /// (scope, document, statements) in log order.
    vex: Vec<(Scope, String, Vec<VexStatement>)>,
}

impl Inputs {
    fn statements(&self) -> Vec<VexStatement> {
        self.vex
            .iter()
            .flat_map(|(_, _, s)| s.iter().cloned())
            .collect()
    }

    fn findings(&self) -> BTreeSet<ImpactFinding> {
        let vex = self.statements();
        let matcher = Matcher::new(&self.advisories, &vex);
        let mut stats = ScanStats::default();
        let mut findings = BTreeSet::new();
        for sbom in &self.sboms {
            matcher.scan_sbom(sbom, &mut stats, &mut findings);
        }
        findings.iter().map(ImpactFinding::from).collect()
    }

    fn apply(&mut self, change: &Change) {
        match change {
            Change::Advisory(advisory) => {
                self.advisories.retain(|a| a.id != advisory.id);
                self.advisories.push(advisory.as_ref().clone());
            }
            Change::Vex {
                scope,
                document,
                statements,
            } => {
                self.vex.retain(|(s, d, _)| s != scope || d != document);
                self.vex
                    .push((scope.clone(), document.clone(), statements.clone()));
            }
        }
    }
}

async fn inputs(store: &dyn Store, tenant: &str, through: u64) -> Result<Inputs, StoreError> {
    let mut out = Inputs::default();
    for entry in current_inputs(store, through).await? {
        match entry.log_entry()?.record {
            InputRecord::Advisory { advisory } => out.advisories.push(advisory),
            InputRecord::Sbom {
                tenant: t,
                mut sbom,
            } if t == tenant => {
                sbom.scope = Scope::Tenant(t);
                out.sboms.push(sbom);
            }
            InputRecord::Vex {
                scope,
                document,
                statements,
            } if scope.visible_to(tenant) => out.vex.push((scope, document, statements)),
            _ => {}
        }
    }
    Ok(out)
}

/// Simulate `change` for `tenant` as of the store's last committed window;
/// the jobs' deadlines count from `now`. Reads the store, writes nothing.
pub async fn what_if(
    store: &dyn Store,
    tenant: &str,
    change: &Change,
    planner: &Planner,
    now: DateTime<Utc>,
) -> Result<WhatIf, StoreError> {
    let head = store.ledger_head().await?;
    let through = head.as_ref().map_or(0, |h| h.seq);
    let window = head.as_ref().map_or(1, |h| h.window + 1);
    let mut state = inputs(store, tenant, through).await?;
    let artifacts = state.sboms.len();
    // The matcher is CPU work: keep it off the async runtime's threads.
    let change = change.clone();
    let (before, after) = tokio::task::spawn_blocking(move || {
        let before = state.findings();
        state.apply(&change);
        (before, state.findings())
    })
    .await
    .map_err(|e| {
        StoreError::new(
            crate::store::StoreErrorKind::Backend,
            format!("the simulation failed: {e}"),
        )
    })?;
    let mut deltas: Vec<ImpactDelta> = before
        .difference(&after)
        .map(|f| (f, -1))
        .chain(after.difference(&before).map(|f| (f, 1)))
        .map(|(f, diff)| ImpactDelta {
            window,
            diff,
            finding: f.clone(),
        })
        .collect();
    deltas.sort();
    let jobs = planner.jobs(window, &deltas, now);
    Ok(WhatIf {
        as_of_window: head.map(|h| h.window),
        window,
        deltas,
        jobs,
        artifacts,
    })
}
