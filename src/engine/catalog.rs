//! The engine's host-side bookkeeping: turns input-log records into ± updates
//! of the dataflow's integer collections, and turns output rows back into
//! findings.
//!
//! The dataflow only sees ids; this catalog remembers, per source (advisory
//! id, SBOM of an artifact, VEX document), which rows it contributed, so a
//! replacement retracts exactly the old rows and inserts the new ones;
//! differential then cancels what did not change, and only real differences
//! come out. It also keeps the reverse maps (id → name) needed to render rows,
//! sized by distinct names rather than by instances.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use recheck_dataflows as df;

use super::directory::{ArtifactDirectory, ArtifactEntry};
use super::ids;
use super::record::InputRecord;
use crate::model::{
    Advisory, AffectedRange, Artifact, Finding, FindingStatus, MatchReason, Rating, RuntimeState,
    Sbom, Scope, VexProduct, VexStatement, VexStatus,
};
use crate::scan::{component_identity, product, statement_order};
use crate::versions::{CompiledAffected, RangeMatch};

/// What the dataflow needs of one affected entry to evaluate versions against it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EntrySpec {
    pub ecosystem: String,
    pub name: String,
    pub entry: u32,
    pub ranges: Vec<AffectedRange>,
    pub versions: Vec<String>,
}

/// A VEX statement row as the dataflow takes it: one per name it gives.
pub type StatementRow = df::Statement;

/// ± updates for every input collection, produced by one or more records.
#[derive(Debug, Default)]
pub struct Updates {
    pub instances: Vec<(df::Instance, df::Diff)>,
    pub versions: Vec<(df::VersionText, df::Diff)>,
    pub entries: Vec<(df::Entry<EntrySpec>, df::Diff)>,
    pub severities: Vec<(df::AdvisorySeverity, df::Diff)>,
    pub names: Vec<(df::AdvisoryName, df::Diff)>,
    pub statements: Vec<(StatementRow, df::Diff)>,
    pub artifact_keys: Vec<((df::ArtifactId, df::ProductKey), df::Diff)>,
    pub component_keys: Vec<((df::ComponentId, df::ProductKey), df::Diff)>,
}

impl Updates {
    pub fn len(&self) -> usize {
        self.instances.len()
            + self.versions.len()
            + self.entries.len()
            + self.severities.len()
            + self.names.len()
            + self.statements.len()
            + self.artifact_keys.len()
            + self.component_keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Severity rank for the dataflow: 0 unrated, then none..critical.
pub fn severity_rank(rating: Option<Rating>) -> df::Severity {
    match rating {
        None => 0,
        Some(Rating::None) => 1,
        Some(Rating::Low) => 2,
        Some(Rating::Medium) => 3,
        Some(Rating::High) => 4,
        Some(Rating::Critical) => 5,
    }
}

fn rating_of(rank: df::Severity) -> Option<Rating> {
    match rank {
        1 => Some(Rating::None),
        2 => Some(Rating::Low),
        3 => Some(Rating::Medium),
        4 => Some(Rating::High),
        5 => Some(Rating::Critical),
        _ => None,
    }
}

fn df_status(s: VexStatus) -> df::VexStatus {
    match s {
        VexStatus::NotAffected => df::VexStatus::NotAffected,
        VexStatus::Affected => df::VexStatus::Affected,
        VexStatus::Fixed => df::VexStatus::Fixed,
        VexStatus::UnderInvestigation => df::VexStatus::UnderInvestigation,
    }
}

/// Rows one advisory contributes.
#[derive(Debug, Default, Clone)]
struct AdvisoryRows {
    entries: Vec<df::Entry<EntrySpec>>,
    severity: Option<df::AdvisorySeverity>,
    names: Vec<df::AdvisoryName>,
}

fn advisory_rows(adv: &Advisory) -> AdvisoryRows {
    if adv.withdrawn.is_some() {
        return AdvisoryRows::default();
    }
    let id = ids::advisory_id(&adv.id);
    let entries = adv
        .affected
        .iter()
        .enumerate()
        .map(|(i, e)| {
            (
                ids::package_key(&e.ecosystem, &e.name),
                id,
                i as u32,
                EntrySpec {
                    ecosystem: e.ecosystem.clone(),
                    name: e.name.clone(),
                    entry: i as u32,
                    ranges: e.ranges.clone(),
                    versions: e.versions.clone(),
                },
            )
        })
        .collect();
    let mut names: Vec<df::AdvisoryName> = adv
        .names()
        .map(|n| (id, ids::name_id(n), n.to_string()))
        .collect();
    names.sort();
    names.dedup();
    AdvisoryRows {
        entries,
        severity: Some((id, severity_rank(adv.max_severity().map(|s| s.rating)))),
        names,
    }
}

/// What the catalog keeps of a component, to render findings.
#[derive(Debug, Clone)]
struct ComponentInfo {
    purl: Option<String>,
    ecosystem: String,
    package: String,
    version: String,
    keys: Vec<df::ProductKey>,
    uses: usize,
}

#[derive(Debug, Clone)]
struct ArtifactRows {
    artifact: df::ArtifactId,
    instances: Arc<[df::Instance]>,
    keys: Vec<df::ProductKey>,
    describes: Artifact,
}

/// What the catalog keeps of a statement, to render findings.
#[derive(Debug, Clone)]
struct StatementInfo {
    status: VexStatus,
    justification: Option<String>,
    source: String,
}

/// Host-side state of the engine. See the module documentation.
#[derive(Debug, Default)]
pub struct Catalog {
    advisories: BTreeMap<String, (Advisory, AdvisoryRows)>,
    advisory_names: HashMap<df::AdvisoryId, String>,
    sboms: BTreeMap<(String, String), ArtifactRows>,
    artifact_names: HashMap<df::ArtifactId, (String, String)>,
    components: HashMap<df::ComponentId, ComponentInfo>,
    versions: HashMap<(df::PackageKey, df::VersionId), (String, usize)>,
    vex: BTreeMap<(Scope, String), Vec<StatementRow>>,
    statements: HashMap<df::StatementId, StatementInfo>,
    /// Texts of advisory names and how many live advisories give each; a
    /// name no longer given is dropped once its window is rendered.
    names: HashMap<df::NameId, (String, usize)>,
    /// Compiled affected entries for rendering explanations, by (advisory,
    /// entry, as of the last close); live ones are dropped when their advisory
    /// changes, last-close ones when the window ends.
    compiled: RefCell<HashMap<(df::AdvisoryId, u32, bool), Arc<CompiledAffected>>>,
    /// Keys from the latest metadata record of each artifact (labels, runtime state).
    metadata: HashMap<df::ArtifactId, Vec<df::ProductKey>>,
    /// Labels from the latest metadata record of each artifact, keys
    /// lower-cased, for selectors.
    labels: HashMap<(String, String), BTreeMap<String, String>>,
    /// Runtime state from the latest metadata record of each artifact (the
    /// runtime hooks compare with it to see an artifact start running).
    runtime: HashMap<(String, String), RuntimeState>,
    /// Every artifact with an SBOM as of the last closed window.
    directory: ArtifactDirectory,
    /// Artifacts whose SBOM or metadata changed in the current window; their
    /// directory entries are refreshed when it closes.
    touched: BTreeSet<(String, String)>,
    /// Names of things removed or replaced in the current window: the
    /// window's retractions are rendered with them, then they are dropped.
    retired: Retired,
}

#[derive(Debug, Default)]
struct Retired {
    advisories: HashMap<df::AdvisoryId, Advisory>,
    artifacts: HashMap<df::ArtifactId, (String, String)>,
    components: HashMap<df::ComponentId, ComponentInfo>,
    statements: HashMap<df::StatementId, StatementInfo>,
}

impl Catalog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Apply one record (not `WindowClosed`, which the engine handles),
    /// appending the resulting updates. `seq` is the record's log position.
    pub fn apply(&mut self, seq: u64, record: &InputRecord, out: &mut Updates) {
        match record {
            InputRecord::Advisory { advisory } => self.put_advisory(advisory, out),
            InputRecord::AdvisoryRemoved { id } => self.remove_advisory(id, out),
            InputRecord::Sbom { tenant, sbom } => self.put_sbom(tenant, sbom, out),
            InputRecord::ArtifactRemoved { tenant, artifact } => {
                self.remove_sbom(tenant, artifact, out);
                self.put_metadata(ids::artifact_id(tenant, artifact), Vec::new(), out);
                self.labels.remove(&(tenant.clone(), artifact.clone()));
                self.runtime.remove(&(tenant.clone(), artifact.clone()));
            }
            InputRecord::ArtifactMetadata {
                tenant,
                artifact,
                labels,
                runtime,
            } => {
                let mut keys: Vec<df::ProductKey> = labels
                    .iter()
                    .map(|(k, v)| product::label_key(tenant, k, v))
                    .chain([product::runtime_key(tenant, *runtime)])
                    .map(|k| ids::product_key(&k))
                    .collect();
                keys.sort_unstable();
                keys.dedup();
                self.put_metadata(ids::artifact_id(tenant, artifact), keys, out);
                let key = (tenant.clone(), artifact.clone());
                self.labels.insert(
                    key.clone(),
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_lowercase(), v.clone()))
                        .collect(),
                );
                self.runtime.insert(key.clone(), *runtime);
                self.touched.insert(key);
            }
            InputRecord::Vex {
                scope,
                document,
                statements,
            } => self.put_vex(seq, scope, document, statements, out),
            InputRecord::VexRemoved { scope, document } => self.remove_vex(scope, document, out),
            InputRecord::WindowClosed { .. } => {}
        }
    }

    /// Replaces an artifact's metadata keys; SBOM replacements leave them alone.
    fn put_metadata(
        &mut self,
        artifact: df::ArtifactId,
        keys: Vec<df::ProductKey>,
        out: &mut Updates,
    ) {
        let old = self.metadata.remove(&artifact).unwrap_or_default();
        out.artifact_keys
            .extend(old.iter().map(|k| ((artifact, *k), -1)));
        out.artifact_keys
            .extend(keys.iter().map(|k| ((artifact, *k), 1)));
        if !keys.is_empty() {
            self.metadata.insert(artifact, keys);
        }
    }

    /// The advisories that had `name` as their id or one of their aliases
    /// when the last window closed (what live queries see).
    pub fn advisories_named(&self, name: &str) -> Vec<df::AdvisoryId> {
        let retired = &self.retired.advisories;
        let mut found: Vec<df::AdvisoryId> = retired
            .iter()
            .filter(|(_, a)| a.names().any(|n| n == name))
            .map(|(id, _)| *id)
            .collect();
        found.extend(
            self.advisories
                .values()
                .map(|(a, _)| (ids::advisory_id(&a.id), a))
                .filter(|(id, a)| !retired.contains_key(id) && a.names().any(|n| n == name))
                .map(|(id, _)| id),
        );
        found
    }

    /// Every artifact with an SBOM as of the last closed window.
    pub fn directory(&self) -> &ArtifactDirectory {
        &self.directory
    }

    /// Whether the records applied so far (closed or not) hold an advisory
    /// with this id.
    pub fn holds_advisory(&self, id: &str) -> bool {
        self.advisories.contains_key(id)
    }

    /// Whether the records applied so far hold an SBOM of this artifact.
    pub fn holds_artifact(&self, tenant: &str, artifact: &str) -> bool {
        self.sboms
            .contains_key(&(tenant.to_string(), artifact.to_string()))
    }

    /// Whether the records applied so far hold statements of this VEX document.
    pub fn holds_vex(&self, scope: &Scope, document: &str) -> bool {
        self.vex
            .contains_key(&(scope.clone(), document.to_string()))
    }

    /// `(tenant, artifact)` of an artifact id as of the last closed window.
    pub fn artifact_name(&self, artifact: df::ArtifactId) -> Option<&(String, String)> {
        self.retired
            .artifacts
            .get(&artifact)
            .or_else(|| self.artifact_names.get(&artifact))
    }

    /// Renders a row of the last closed window's state, with the names it
    /// had then (records applied since may have replaced them).
    pub fn finding_as_of_last_close(&self, row: &super::Row) -> Option<Finding> {
        self.finding(row, -1)
    }

    fn put_advisory(&mut self, adv: &Advisory, out: &mut Updates) {
        self.remove_advisory(&adv.id, out);
        let rows = advisory_rows(adv);
        out.entries
            .extend(rows.entries.iter().cloned().map(|r| (r, 1)));
        out.severities.extend(rows.severity.iter().map(|r| (*r, 1)));
        out.names.extend(rows.names.iter().cloned().map(|r| (r, 1)));
        for (_, id, text) in &rows.names {
            self.names.entry(*id).or_insert_with(|| (text.clone(), 0)).1 += 1;
        }
        self.forget_compiled(ids::advisory_id(&adv.id));
        self.advisory_names
            .insert(ids::advisory_id(&adv.id), adv.id.clone());
        self.advisories.insert(adv.id.clone(), (adv.clone(), rows));
    }

    fn remove_advisory(&mut self, id: &str, out: &mut Updates) {
        if let Some((adv, rows)) = self.advisories.remove(id) {
            self.retired
                .advisories
                .entry(ids::advisory_id(id))
                .or_insert(adv);
            out.entries
                .extend(rows.entries.into_iter().map(|r| (r, -1)));
            out.severities
                .extend(rows.severity.into_iter().map(|r| (r, -1)));
            for (_, id, _) in &rows.names {
                if let Some(n) = self.names.get_mut(id) {
                    n.1 = n.1.saturating_sub(1);
                }
            }
            self.forget_compiled(ids::advisory_id(id));
            out.names.extend(rows.names.into_iter().map(|r| (r, -1)));
        }
    }

    fn put_sbom(&mut self, tenant: &str, sbom: &Sbom, out: &mut Updates) {
        self.remove_sbom(tenant, &sbom.artifact.id, out);
        let artifact = ids::artifact_id(tenant, &sbom.artifact.id);
        let keys: Vec<df::ProductKey> = product::artifact_keys(&sbom.artifact, tenant)
            .iter()
            .map(|k| ids::product_key(k))
            .collect();
        out.artifact_keys
            .extend(keys.iter().map(|k| ((artifact, *k), 1)));
        let mut seen = std::collections::BTreeSet::new();
        let mut instances = Vec::new();
        for c in &sbom.components {
            let (Some(eco), Some(pkg), Some(version)) = (&c.ecosystem, &c.package, &c.version)
            else {
                continue;
            };
            let identity = component_identity(c);
            if !seen.insert(identity.clone()) {
                continue;
            }
            let package = ids::package_key(eco, pkg);
            let version_id = ids::version_id(eco, pkg, version);
            let component = ids::component_id(&identity, c.reference.as_deref());
            instances.push((artifact, component, package, version_id));
            out.instances
                .push(((artifact, component, package, version_id), 1));
            let v = self
                .versions
                .entry((package, version_id))
                .or_insert_with(|| (version.clone(), 0));
            if v.1 == 0 {
                out.versions
                    .push(((package, version_id, version.clone()), 1));
            }
            v.1 += 1;
            let info = self
                .components
                .entry(component)
                .or_insert_with(|| ComponentInfo {
                    purl: c.purl.clone(),
                    ecosystem: eco.clone(),
                    package: pkg.clone(),
                    version: version.clone(),
                    keys: product::component_keys(c)
                        .iter()
                        .map(|k| ids::product_key(k))
                        .collect(),
                    uses: 0,
                });
            if info.uses == 0 {
                out.component_keys
                    .extend(info.keys.iter().map(|k| ((component, *k), 1)));
            }
            info.uses += 1;
        }
        self.artifact_names
            .insert(artifact, (tenant.to_string(), sbom.artifact.id.clone()));
        let key = (tenant.to_string(), sbom.artifact.id.clone());
        self.touched.insert(key.clone());
        self.sboms.insert(
            key,
            ArtifactRows {
                artifact,
                instances: instances.into(),
                keys,
                describes: sbom.artifact.clone(),
            },
        );
    }

    fn remove_sbom(&mut self, tenant: &str, artifact: &str, out: &mut Updates) {
        let Some(rows) = self
            .sboms
            .remove(&(tenant.to_string(), artifact.to_string()))
        else {
            return;
        };
        self.touched
            .insert((tenant.to_string(), artifact.to_string()));
        out.artifact_keys
            .extend(rows.keys.iter().map(|k| ((rows.artifact, *k), -1)));
        if let Some(names) = self.artifact_names.get(&rows.artifact) {
            self.retired
                .artifacts
                .entry(rows.artifact)
                .or_insert_with(|| names.clone());
        }
        for &inst in rows.instances.iter() {
            out.instances.push((inst, -1));
            let (_, component, package, version) = inst;
            if let Some(v) = self.versions.get_mut(&(package, version)) {
                v.1 -= 1;
                if v.1 == 0 {
                    out.versions.push(((package, version, v.0.clone()), -1));
                    self.versions.remove(&(package, version));
                }
            }
            if let Some(info) = self.components.get_mut(&component) {
                info.uses -= 1;
                if info.uses == 0 {
                    out.component_keys
                        .extend(info.keys.iter().map(|k| ((component, *k), -1)));
                    if let Some(info) = self.components.remove(&component) {
                        self.retired.components.entry(component).or_insert(info);
                    }
                }
            }
        }
    }

    fn put_vex(
        &mut self,
        seq: u64,
        scope: &Scope,
        document: &str,
        statements: &[VexStatement],
        out: &mut Updates,
    ) {
        self.remove_vex(scope, document, out);
        let scope_token = product::scope_token(scope);
        let mut rows = Vec::new();
        for (i, st) in statements.iter().enumerate() {
            let id = ids::stable_id("statement", &[&scope_token, document, &i.to_string()]);
            let (pk, sub) = product::statement_keys(st);
            // Same order as the reference matcher: timestamp, then input position.
            let (timestamp_nanos, sequence) = statement_order(st, (seq << 24) | i as u64);
            let order = df::Order {
                timestamp_nanos,
                sequence,
            };
            // A statement on a package (a purl product without subcomponent) is
            // matched from the component side; everything else names an artifact.
            let target = match (&st.product, &sub) {
                (VexProduct::Purl(_), Some(package)) if st.subcomponent.is_none() => {
                    df::Target::Package {
                        scope: ids::product_key(&pk),
                        package: ids::product_key(package),
                    }
                }
                _ => df::Target::Artifact {
                    artifact: ids::product_key(&pk),
                    sub: sub.as_deref().map(ids::product_key),
                },
            };
            let mut names: Vec<&str> = std::iter::once(st.vulnerability.as_str())
                .chain(st.aliases.iter().map(String::as_str))
                .collect();
            names.sort();
            names.dedup();
            for n in names {
                rows.push((id, ids::name_id(n), target, order, df_status(st.status)));
            }
            self.statements.insert(
                id,
                StatementInfo {
                    status: st.status,
                    justification: st.justification.clone(),
                    source: st.source.clone(),
                },
            );
        }
        out.statements.extend(rows.iter().cloned().map(|r| (r, 1)));
        self.vex.insert((scope.clone(), document.to_string()), rows);
    }

    fn remove_vex(&mut self, scope: &Scope, document: &str, out: &mut Updates) {
        if let Some(rows) = self.vex.remove(&(scope.clone(), document.to_string())) {
            for r in &rows {
                if let Some(info) = self.statements.remove(&r.0) {
                    self.retired.statements.entry(r.0).or_insert(info);
                }
            }
            out.statements.extend(rows.into_iter().map(|r| (r, -1)));
        }
    }

    /// Render a dataflow update as a finding: insertions with the current
    /// names, retractions with the names as they were before this window's
    /// changes. `None` if an id is unknown (a bug upstream, logged by callers).
    pub fn finding(&self, row: &super::Row, diff: df::Diff) -> Option<Finding> {
        let old = diff < 0;
        let artifact_names = old
            .then(|| self.retired.artifacts.get(&row.artifact))
            .flatten()
            .or_else(|| self.artifact_names.get(&row.artifact));
        let (tenant, artifact) = artifact_names?;
        let advisory = old
            .then(|| self.retired.advisories.get(&row.advisory))
            .flatten()
            .or_else(|| {
                self.advisory_names
                    .get(&row.advisory)
                    .and_then(|n| self.advisories.get(n))
                    .map(|(a, _)| a)
            })?;
        let component = self
            .components
            .get(&row.component)
            .or_else(|| self.retired.components.get(&row.component))?;
        let statement = row.vex.and_then(|(id, _)| {
            let retired = self.retired.statements.get(&id);
            let live = self.statements.get(&id);
            if old {
                retired.or(live)
            } else {
                live.or(retired)
            }
        });
        let reason = self.reason(advisory, row.entry, &component.version, old)?;
        let vulnerability = self.names.get(&row.vulnerability)?.0.clone();
        Some(Finding {
            tenant: tenant.clone(),
            artifact: artifact.clone(),
            advisory: advisory.id.clone(),
            vulnerability,
            aliases: advisory.aliases.clone(),
            purl: component.purl.clone(),
            ecosystem: component.ecosystem.clone(),
            package: component.package.clone(),
            version: component.version.clone(),
            severity: rating_of(row.severity),
            status: if row.suppressed {
                FindingStatus::Suppressed
            } else {
                FindingStatus::Affected
            },
            reason,
            vex_status: statement.map(|s| s.status),
            justification: statement.and_then(|s| s.justification.clone()),
            vex_source: statement.map(|s| s.source.clone()),
        })
    }

    /// Forget the names retired during the window just rendered, and bring
    /// the directory up to the window's close.
    pub fn end_window(&mut self) {
        for key in std::mem::take(&mut self.touched) {
            let entry = self.sboms.get(&key).map(|rows| ArtifactEntry {
                artifact: rows.describes.clone(),
                labels: self.labels.get(&key).cloned().unwrap_or_default(),
                runtime: self
                    .runtime
                    .get(&key)
                    .copied()
                    .unwrap_or(RuntimeState::Unknown),
                instances: rows.instances.clone(),
            });
            self.directory.put(&key.0, &key.1, entry);
        }
        self.retired = Retired::default();
        self.names.retain(|_, (_, uses)| *uses > 0);
        self.compiled.get_mut().retain(|&(_, _, old), _| !old);
    }

    fn forget_compiled(&mut self, advisory: df::AdvisoryId) {
        self.compiled
            .get_mut()
            .retain(|&(a, _, old), _| old || a != advisory);
    }

    /// Why `version` matched entry `entry` of `advisory`, as `scan` explains it.
    fn reason(
        &self,
        advisory: &Advisory,
        entry: u32,
        version: &str,
        old: bool,
    ) -> Option<MatchReason> {
        let key = (ids::advisory_id(&advisory.id), entry, old);
        let cached = self.compiled.borrow().get(&key).cloned();
        let compiled = match cached {
            Some(c) => c,
            None => {
                let affected = advisory.affected.get(entry as usize)?;
                let c = Arc::new(CompiledAffected::new(affected, entry as usize));
                self.compiled.borrow_mut().insert(key, c.clone());
                c
            }
        };
        match compiled.matches(version) {
            RangeMatch::Affected(reason) => Some(reason),
            RangeMatch::NotAffected => None,
        }
    }
}
