//! The dataflow's range evaluation, implemented with the foundation's
//! version semantics (`crate::versions`), so the engine and `recheck scan`
//! decide "is this version affected" with the same code.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use recheck_dataflows::RangeEvaluator;

use super::catalog::EntrySpec;
use serde::{Deserialize, Serialize};

use crate::model::{AffectedPackage, MatchReason};
use crate::versions::{CompiledAffected, RangeMatch};

/// `MatchReason` as it travels between timely processes. The model's type is
/// internally tagged for readable JSON, which a non-self-describing wire
/// format (timely's bincode) cannot decode; this mirror is plainly tagged.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WireReason {
    Range {
        entry: usize,
        range: usize,
        introduced: String,
        until: Option<String>,
    },
    Listed {
        entry: usize,
    },
}

impl From<MatchReason> for WireReason {
    fn from(r: MatchReason) -> Self {
        match r {
            MatchReason::Range {
                entry,
                range,
                introduced,
                until,
            } => WireReason::Range {
                entry,
                range,
                introduced,
                until,
            },
            MatchReason::Listed { entry } => WireReason::Listed { entry },
        }
    }
}

impl From<WireReason> for MatchReason {
    fn from(r: WireReason) -> Self {
        match r {
            WireReason::Range {
                entry,
                range,
                introduced,
                until,
            } => MatchReason::Range {
                entry,
                range,
                introduced,
                until,
            },
            WireReason::Listed { entry } => MatchReason::Listed { entry },
        }
    }
}

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
    type Reason = WireReason;

    fn evaluate(&self, spec: &EntrySpec, version: &str) -> Option<WireReason> {
        match self.compile(spec).matches(version) {
            RangeMatch::Affected(reason) => Some(reason.into()),
            RangeMatch::NotAffected => None,
        }
    }
}
