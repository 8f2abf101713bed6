//! The dataflow's range evaluation, implemented with the foundation's
//! version semantics (`crate::versions`), so the engine and `recheck scan`
//! decide "is this version affected" with the same code.
//!
//! The dataflow only learns *whether* a version matched: the explanation
//! (which range, which events) has version texts in it, and carrying texts
//! through the arrangements of findings made every merge allocate. The
//! catalog recomputes the explanation for the rows it renders.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use recheck_dataflows::RangeEvaluator;

use super::catalog::EntrySpec;

use crate::model::AffectedPackage;
use crate::versions::{CompiledAffected, RangeMatch};

/// Compiles each entry once per worker and evaluates versions against it.
#[derive(Debug, Clone, Default)]
pub struct VersionEvaluator {
    compiled: Rc<RefCell<HashMap<EntrySpec, Rc<CompiledAffected>>>>,
}

impl VersionEvaluator {
    /// Retracted specs are never evaluated again; a bounded cache keeps a
    /// long-running engine from accumulating every edit ever seen.
    const CACHE_LIMIT: usize = 1 << 16;

    fn compile(&self, spec: &EntrySpec) -> Rc<CompiledAffected> {
        if let Some(c) = self.compiled.borrow().get(spec) {
            return c.clone();
        }
        if self.compiled.borrow().len() >= Self::CACHE_LIMIT {
            self.compiled.borrow_mut().clear();
        }
        let entry = AffectedPackage {
            ecosystem: spec.ecosystem.clone(),
            name: spec.name.clone(),
            purl: None,
            ranges: spec.ranges.clone(),
            versions: spec.versions.clone(),
            severity: Vec::new(),
            ecosystem_specific: None,
            database_specific: None,
        };
        let compiled = Rc::new(CompiledAffected::new(&entry, spec.entry as usize));
        self.compiled
            .borrow_mut()
            .insert(spec.clone(), compiled.clone());
        compiled
    }
}

impl RangeEvaluator for VersionEvaluator {
    type Spec = EntrySpec;
    type Reason = ();

    fn evaluate(&self, spec: &EntrySpec, version: &str) -> Option<()> {
        match self.compile(spec).matches(version) {
            RangeMatch::Affected(_) => Some(()),
            RangeMatch::NotAffected => None,
        }
    }
}
