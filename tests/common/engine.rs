//! The naive side of the engine property tests: the inputs as they stand
//! after each log record, recomputed from scratch with `scan`, and the
//! engine's window deltas accumulated into the impact set they add up to.

use std::collections::BTreeMap;

use recheck::engine::record::InputRecord;
use recheck::engine::{ClosedWindow, Engine, Row};
use recheck::model::{Advisory, Finding, RuntimeState, Sbom, Scope, VexStatement};
use recheck::scan::scan;

/// Labels and runtime state of each `(tenant, artifact)`.
pub type Metadata = BTreeMap<(String, String), (BTreeMap<String, String>, RuntimeState)>;

/// The current inputs, mirrored record by record.
#[derive(Default, Clone)]
pub struct Naive {
    pub advisories: BTreeMap<String, Advisory>,
    pub sboms: BTreeMap<(String, String), Sbom>,
    /// (scope, document) → (seq of its latest put, statements)
    pub vex: BTreeMap<(Scope, String), (u64, Vec<VexStatement>)>,
    pub metadata: Metadata,
}

impl Naive {
    pub fn apply(&mut self, seq: u64, record: &InputRecord) {
        match record {
            InputRecord::Advisory { advisory } => {
                self.advisories
                    .insert(advisory.id.clone(), advisory.clone());
            }
            InputRecord::AdvisoryRemoved { id } => {
                self.advisories.remove(id);
            }
            InputRecord::Sbom { tenant, sbom } => {
                self.sboms
                    .insert((tenant.clone(), sbom.artifact.id.clone()), sbom.clone());
            }
            InputRecord::ArtifactRemoved { tenant, artifact } => {
                let key = (tenant.clone(), artifact.clone());
                self.sboms.remove(&key);
                self.metadata.remove(&key);
            }
            InputRecord::Vex {
                scope,
                document,
                statements,
            } => {
                self.vex
                    .insert((scope.clone(), document.clone()), (seq, statements.clone()));
            }
            InputRecord::VexRemoved { scope, document } => {
                self.vex.remove(&(scope.clone(), document.clone()));
            }
            InputRecord::ArtifactMetadata {
                tenant,
                artifact,
                labels,
                runtime,
            } => {
                self.metadata.insert(
                    (tenant.clone(), artifact.clone()),
                    (labels.clone(), *runtime),
                );
            }
            InputRecord::WindowClosed { .. } => {}
        }
    }

    /// `scan` over the current inputs; VEX statements in log order, as the
    /// engine sees them (a later document wins a timestamp tie).
    pub fn expected(&self) -> Vec<Finding> {
        let advisories: Vec<Advisory> = self.advisories.values().cloned().collect();
        let sboms: Vec<Sbom> = self.sboms.values().cloned().collect();
        let mut docs: Vec<&(u64, Vec<VexStatement>)> = self.vex.values().collect();
        docs.sort_by_key(|(seq, _)| *seq);
        let vex: Vec<VexStatement> = docs.into_iter().flat_map(|(_, s)| s.clone()).collect();
        scan(&advisories, &sboms, &vex).findings
    }
}

/// The engine's deltas added up window by window.
#[derive(Default)]
pub struct Accumulated {
    rows: BTreeMap<Row, isize>,
}

impl Accumulated {
    /// Adds one window's deltas; every row must end with multiplicity 0 or 1.
    pub fn add(&mut self, closed: &ClosedWindow) {
        for (row, d) in &closed.deltas.rows {
            *self.rows.entry(row.clone()).or_default() += d;
        }
        self.rows.retain(|_, d| *d != 0);
        assert!(
            self.rows.values().all(|d| *d == 1),
            "every accumulated row has multiplicity 1"
        );
    }

    /// The impact set, rendered with the engine's current names (aliases,
    /// justifications are read, not accumulated), in `scan`'s order.
    pub fn findings(&self, engine: &Engine) -> Vec<Finding> {
        let mut got: Vec<Finding> = self
            .rows
            .keys()
            .map(|row| {
                engine
                    .catalog()
                    .finding(row, 1)
                    .expect("every live row renders")
            })
            .collect();
        got.sort();
        got
    }
}
