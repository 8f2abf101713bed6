//! Checks the incremental impact dataflow against a naive full recomputation of the same
//! semantics, window by window, with one and two timely workers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
use recheck_dataflows::{
    build, AdvisoryId, AdvisoryName, AdvisorySeverity, ArtifactId, ArtifactKey, ComponentId,
    ComponentKey, Diff, Entry, ImpactRow, Instance, NameId, Order, PackageKey, ProductKey, Query,
    QueryId, RangeEvaluator, Statement, StatementId, Target, Time, VersionId, VersionText,
    VexStatus,
};

type Triple = (u32, u32, u32);
/// `(introduced, fixed)`: affected iff `introduced <= version < fixed`.
type Spec = (Triple, Option<Triple>);
/// 0: inside a bounded range, 1: inside an open-ended range.
type Reason = u8;
type Row = ImpactRow<Reason>;

#[derive(Clone)]
struct Toy;

fn parse(text: &str) -> Option<Triple> {
    let mut parts = text.split('.').map(|p| p.parse::<u32>().ok());
    let triple = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(triple)
}

impl RangeEvaluator for Toy {
    type Spec = Spec;
    type Reason = Reason;
    fn evaluate(&self, (introduced, fixed): &Spec, version: &str) -> Option<Reason> {
        let v = parse(version)?;
        let inside = *introduced <= v && fixed.is_none_or(|f| v < f);
        inside.then_some(u8::from(fixed.is_none()))
    }
}

const PACKAGES: u64 = 3;
const VERSION_TEXTS: [&str; 5] = ["1.0.0", "1.2.0", "1.4.2", "2.0.0", "not-a-version"];
const ADVISORIES: u64 = 5;
const ARTIFACTS: u64 = 3;
const STATEMENTS: u64 = 4;
/// Component slots an SBOM may fill; a slot's bom-ref is the same in every artifact.
const SLOTS: u64 = 4;
/// The scope token every artifact has.
const SCOPE: ProductKey = 1;
/// A scope token no artifact has.
const FOREIGN_SCOPE: ProductKey = 2;
/// Includes names sorting before `CVE-` (so the CVE preference is observable) and other
/// advisories' own ids (so aliases merge advisories).
const ALIAS_POOL: [&str; 8] = [
    "CVE-2024-0002",
    "CVE-2024-0001",
    "PYSEC-7",
    "ALSA-2024:0001",
    "GHSA-0",
    "GHSA-1",
    "GHSA-3",
    "BIT-9",
];

fn own_name(advisory: AdvisoryId) -> String {
    format!("GHSA-{advisory}")
}

/// The caller's name ids: any injective-enough stable hash will do.
fn name_id(name: &str) -> NameId {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    name.hash(&mut h);
    h.finish()
}

#[derive(Clone, Debug)]
struct Advisory {
    severity: u8,
    aliases: BTreeSet<usize>,
    entries: Vec<(PackageKey, Spec)>,
}

#[derive(Clone, Debug)]
struct Vex {
    names: BTreeSet<String>,
    target: Target,
    order: Order,
    status: VexStatus,
}

/// Component slot -> (package, version).
type Sbom = BTreeMap<u64, (PackageKey, VersionId)>;

#[derive(Clone, Debug)]
enum Op {
    SetAdvisory(AdvisoryId, Advisory),
    SetSeverity(AdvisoryId, u8),
    Withdraw(AdvisoryId),
    SetStatement(StatementId, Vex),
    RetractStatement(StatementId),
    ReplaceSbom(ArtifactId, Sbom),
    /// Re-submits the artifact's SBOM with one component (chosen by index) at another version.
    BumpComponent(ArtifactId, usize, VersionId),
    /// Withdraws a live query or re-issues a withdrawn one (chosen by index).
    ToggleQuery(usize),
}

#[derive(Clone, Debug, Default)]
struct Model {
    advisories: BTreeMap<AdvisoryId, Advisory>,
    statements: BTreeMap<StatementId, Vex>,
    sboms: BTreeMap<ArtifactId, Sbom>,
    /// Queries the caller has withdrawn (all others are live).
    withdrawn_queries: BTreeSet<QueryId>,
}

impl Model {
    /// Applies `op`; returns the artifact and the old and new component ids of the instance a
    /// `BumpComponent` changed, if it changed one.
    fn apply(&mut self, op: &Op) -> Option<(ArtifactId, ComponentId, ComponentId)> {
        match op {
            Op::SetAdvisory(id, advisory) => {
                self.advisories.insert(*id, advisory.clone());
            }
            Op::SetSeverity(id, severity) => {
                if let Some(advisory) = self.advisories.get_mut(id) {
                    advisory.severity = *severity;
                }
            }
            Op::Withdraw(id) => {
                self.advisories.remove(id);
            }
            Op::SetStatement(id, vex) => {
                self.statements.insert(*id, vex.clone());
            }
            Op::RetractStatement(id) => {
                self.statements.remove(id);
            }
            Op::ReplaceSbom(id, sbom) => {
                self.sboms.insert(*id, sbom.clone());
            }
            Op::ToggleQuery(index) => {
                let all = queries();
                let (query, _) = all[index % all.len()];
                if !self.withdrawn_queries.remove(&query) {
                    self.withdrawn_queries.insert(query);
                }
            }
            Op::BumpComponent(id, index, version) => {
                let sbom = self.sboms.get_mut(id)?;
                let position = index % sbom.len().max(1);
                let (&slot, at) = sbom.iter_mut().nth(position)?;
                if at.1 == *version {
                    return None;
                }
                let old = component_id(slot, at.0, at.1);
                at.1 = *version;
                return Some((*id, old, component_id(slot, at.0, at.1)));
            }
        }
        None
    }

    fn inputs(&self) -> InputSets {
        let mut sets = InputSets {
            queries: queries()
                .into_iter()
                .filter(|(query, _)| !self.withdrawn_queries.contains(query))
                .collect(),
            ..InputSets::default()
        };
        for package in 0..PACKAGES {
            for (version, text) in VERSION_TEXTS.iter().enumerate() {
                sets.versions
                    .insert((package, version as u64, (*text).to_owned()));
            }
        }
        for (&id, advisory) in &self.advisories {
            sets.severities.insert((id, advisory.severity));
            sets.names
                .insert((id, name_id(&own_name(id)), own_name(id)));
            for &alias in &advisory.aliases {
                let alias = ALIAS_POOL[alias];
                sets.names.insert((id, name_id(alias), alias.to_owned()));
            }
            for (index, (package, spec)) in advisory.entries.iter().enumerate() {
                sets.entries.insert((*package, id, index as u32, *spec));
            }
        }
        for (&id, vex) in &self.statements {
            for name in &vex.names {
                sets.statements
                    .insert((id, name_id(name), vex.target, vex.order, vex.status));
            }
        }
        for (&artifact, sbom) in &self.sboms {
            for key in [SCOPE, 300 + artifact] {
                sets.artifact_keys.insert((artifact, key));
            }
            for (&slot, &(package, version)) in sbom {
                let component = component_id(slot, package, version);
                sets.instances
                    .insert((artifact, component, package, version));
                for key in component_keys(slot, package, version) {
                    sets.component_keys.insert((component, key));
                }
            }
        }
        sets
    }
}

/// The caller's component id: a hash of what the component is, so equal components of
/// different artifacts share it (and its keys).
fn component_id(slot: u64, package: PackageKey, version: VersionId) -> ComponentId {
    slot * 10_000 + package * 100 + version
}

/// The caller's component keys: purl without version, purl with version, bom-ref.
fn component_keys(slot: u64, package: PackageKey, version: VersionId) -> [ProductKey; 3] {
    [100 + package, 200 + package * 10 + version, 500 + slot]
}

#[derive(Clone, Debug, Default, PartialEq)]
struct InputSets {
    instances: BTreeSet<Instance>,
    versions: BTreeSet<VersionText>,
    entries: BTreeSet<Entry<Spec>>,
    severities: BTreeSet<AdvisorySeverity>,
    names: BTreeSet<AdvisoryName>,
    statements: BTreeSet<Statement>,
    artifact_keys: BTreeSet<ArtifactKey>,
    component_keys: BTreeSet<ComponentKey>,
    queries: BTreeSet<(QueryId, Query)>,
}

fn queries() -> Vec<(QueryId, Query)> {
    let mut queries = Vec::new();
    queries.extend((0..ADVISORIES).map(|a| (a, Query::Advisory(a))));
    queries.extend((0..ARTIFACTS).map(|r| (10 + r, Query::Artifact(r))));
    queries.extend((0..PACKAGES).map(|p| (20 + p, Query::Package(p))));
    queries.extend((0..ARTIFACTS).map(|r| (30 + r, Query::ArtifactsWithKey(300 + r))));
    queries.push((40, Query::ArtifactsWithKey(SCOPE)));
    queries
}

/// How much of the semantics a run exercised, so a weak generator cannot pass silently.
#[derive(Clone, Copy, Debug, Default)]
struct Coverage {
    rows: usize,
    vex_rows: usize,
    suppressed: usize,
    /// Findings with applicable statements of differing status (the latest must win).
    overrides: usize,
    /// Findings whose advisory shares its vulnerability group with another advisory.
    merged: usize,
    /// Rows whose latest statement targets a package, a whole artifact, a component of one.
    by_package: usize,
    by_artifact: usize,
    by_component: usize,
    /// Findings a statement would apply to but for its scope (no artifact has it).
    out_of_scope: usize,
    /// Findings a statement for their artifact skips because it names another component.
    narrowed_out: usize,
    bumps_checked: usize,
}

impl Coverage {
    fn add(&mut self, other: Coverage) {
        self.rows += other.rows;
        self.vex_rows += other.vex_rows;
        self.suppressed += other.suppressed;
        self.overrides += other.overrides;
        self.merged += other.merged;
        self.by_package += other.by_package;
        self.by_artifact += other.by_artifact;
        self.by_component += other.by_component;
        self.out_of_scope += other.out_of_scope;
        self.narrowed_out += other.narrowed_out;
        self.bumps_checked += other.bumps_checked;
    }
}

/// The same semantics as the dataflow, recomputed from scratch.
fn naive(sets: &InputSets) -> (BTreeSet<Row>, Coverage) {
    let mut coverage = Coverage::default();
    // Vulnerability groups as connected components of the advisory-name graph.
    let mut names_of: BTreeMap<AdvisoryId, BTreeSet<&str>> = BTreeMap::new();
    let mut advisories_of: BTreeMap<&str, BTreeSet<AdvisoryId>> = BTreeMap::new();
    for (advisory, _, name) in &sets.names {
        names_of.entry(*advisory).or_default().insert(name);
        advisories_of.entry(name).or_default().insert(*advisory);
    }
    let mut canonical_of_advisory: BTreeMap<AdvisoryId, String> = BTreeMap::new();
    let mut canonical_of_name: BTreeMap<&str, String> = BTreeMap::new();
    let mut merged: BTreeSet<AdvisoryId> = BTreeSet::new();
    for &start in names_of.keys() {
        if canonical_of_advisory.contains_key(&start) {
            continue;
        }
        let mut group_advisories = BTreeSet::from([start]);
        let mut group_names: BTreeSet<&str> = BTreeSet::new();
        let mut todo = vec![start];
        while let Some(advisory) = todo.pop() {
            for &name in &names_of[&advisory] {
                if group_names.insert(name) {
                    for &other in &advisories_of[name] {
                        if group_advisories.insert(other) {
                            todo.push(other);
                        }
                    }
                }
            }
        }
        let canonical = group_names
            .iter()
            .find(|n| n.starts_with("CVE-"))
            .or_else(|| group_names.iter().next())
            .map(|n| (*n).to_owned())
            .unwrap_or_default();
        let group_size = group_advisories.len();
        for advisory in group_advisories {
            if group_size > 1 {
                merged.insert(advisory);
            }
            canonical_of_advisory.insert(advisory, canonical.clone());
        }
        for name in group_names {
            canonical_of_name.insert(name, canonical.clone());
        }
    }
    let canonical_by_id: BTreeMap<NameId, &String> = canonical_of_name
        .iter()
        .map(|(name, canonical)| (name_id(name), canonical))
        .collect();
    let mut severity: BTreeMap<AdvisoryId, u8> = BTreeMap::new();
    for &(advisory, s) in &sets.severities {
        let slot = severity.entry(advisory).or_insert(s);
        *slot = (*slot).max(s);
    }
    let mut artifact_keys: BTreeMap<ArtifactId, BTreeSet<ProductKey>> = BTreeMap::new();
    for &(artifact, key) in &sets.artifact_keys {
        artifact_keys.entry(artifact).or_default().insert(key);
    }
    let mut component_keys: BTreeMap<ComponentId, BTreeSet<ProductKey>> = BTreeMap::new();
    for &(component, key) in &sets.component_keys {
        component_keys.entry(component).or_default().insert(key);
    }
    let no_keys = BTreeSet::new();

    let mut rows = BTreeSet::new();
    for &(artifact, component, package, version) in &sets.instances {
        let mut best: BTreeMap<AdvisoryId, (u32, Reason)> = BTreeMap::new();
        for (p, v, text) in &sets.versions {
            if (*p, *v) != (package, version) {
                continue;
            }
            for (p, advisory, index, spec) in &sets.entries {
                if *p != package {
                    continue;
                }
                if let Some(reason) = Toy.evaluate(spec, text) {
                    let slot = best.entry(*advisory).or_insert((*index, reason));
                    *slot = (*slot).min((*index, reason));
                }
            }
        }
        for (advisory, (entry, reason)) in best {
            let (Some(&severity), Some(vulnerability)) = (
                severity.get(&advisory),
                canonical_of_advisory.get(&advisory),
            ) else {
                continue;
            };
            let of_artifact = artifact_keys.get(&artifact).unwrap_or(&no_keys);
            let of_component = component_keys.get(&component).unwrap_or(&no_keys);
            let named: Vec<_> = sets
                .statements
                .iter()
                .filter(|(_, name, _, _, _)| canonical_by_id.get(name) == Some(&vulnerability))
                .collect();
            let applicable: BTreeSet<_> = named
                .iter()
                .filter(|(_, _, target, _, _)| match *target {
                    Target::Package { scope, package } => {
                        of_artifact.contains(&scope) && of_component.contains(&package)
                    }
                    Target::Artifact { artifact, sub } => {
                        of_artifact.contains(&artifact)
                            && sub.is_none_or(|sub| of_component.contains(&sub))
                    }
                })
                .map(|&&(statement, _, target, order, status)| (order, statement, target, status))
                .collect();
            coverage.out_of_scope += usize::from(named.iter().any(|(_, _, target, _, _)| {
                matches!(*target, Target::Package { scope, package }
                    if !of_artifact.contains(&scope) && of_component.contains(&package))
            }));
            coverage.narrowed_out += usize::from(named.iter().any(|(_, _, target, _, _)| {
                matches!(*target, Target::Artifact { artifact, sub: Some(sub) }
                    if of_artifact.contains(&artifact) && !of_component.contains(&sub))
            }));
            match applicable.last().map(|&(_, _, target, _)| target) {
                Some(Target::Package { .. }) => coverage.by_package += 1,
                Some(Target::Artifact { sub: None, .. }) => coverage.by_artifact += 1,
                Some(Target::Artifact { sub: Some(_), .. }) => coverage.by_component += 1,
                None => {}
            }
            let vex = applicable
                .last()
                .map(|&(_, statement, _, status)| (statement, status));
            let statuses: BTreeSet<_> = applicable
                .iter()
                .map(|(_, _, _, s)| s.suppresses())
                .collect();
            coverage.rows += 1;
            coverage.vex_rows += usize::from(vex.is_some());
            coverage.overrides += usize::from(statuses.len() > 1);
            coverage.merged += usize::from(merged.contains(&advisory));
            rows.insert(ImpactRow {
                artifact,
                advisory,
                component,
                package,
                version,
                vulnerability: name_id(vulnerability),
                severity,
                entry,
                reason,
                vex,
                suppressed: vex.is_some_and(|(_, s)| s.suppresses()),
            });
        }
    }
    coverage.suppressed = rows.iter().filter(|r| r.suppressed).count();
    (rows, coverage)
}

type Answers = (BTreeSet<(QueryId, Row)>, BTreeSet<(QueryId, ArtifactId)>);

fn naive_answers(rows: &BTreeSet<Row>, sets: &InputSets) -> Answers {
    let mut row_answers = BTreeSet::new();
    let mut artifact_answers = BTreeSet::new();
    for &(query, ref q) in &sets.queries {
        for row in rows {
            match q {
                Query::Advisory(a) if row.advisory == *a => {
                    row_answers.insert((query, row.clone()));
                }
                Query::Artifact(r) if row.artifact == *r => {
                    row_answers.insert((query, row.clone()));
                }
                Query::Package(p) if row.package == *p => {
                    artifact_answers.insert((query, row.artifact));
                }
                Query::ArtifactsWithKey(k) if sets.artifact_keys.contains(&(row.artifact, *k)) => {
                    artifact_answers.insert((query, row.artifact));
                }
                _ => {}
            }
        }
    }
    (row_answers, artifact_answers)
}

/// One window's output deltas, sorted.
#[derive(Clone, Debug, Default, PartialEq)]
struct Deltas {
    rows: Vec<(Row, Diff)>,
    row_answers: Vec<((QueryId, Row), Diff)>,
    artifact_answers: Vec<((QueryId, ArtifactId), Diff)>,
}

fn take<D: Ord + Clone>(buffer: &recheck_dataflows::Captured<D>, window: Time) -> Vec<(D, Diff)> {
    let mut updates: Vec<(D, Diff)> = buffer
        .borrow_mut()
        .drain(..)
        .map(|(datum, time, diff)| {
            assert_eq!(time, window, "output outside its window");
            (datum, diff)
        })
        .collect();
    differential_dataflow::consolidation::consolidate(&mut updates);
    updates
}

fn diff_into<D: differential_dataflow::Data>(
    session: &mut differential_dataflow::input::InputSession<Time, D, Diff>,
    old: &BTreeSet<D>,
    new: &BTreeSet<D>,
) {
    for gone in old.difference(new) {
        session.remove(gone.clone());
    }
    for added in new.difference(old) {
        session.insert(added.clone());
    }
}

/// Runs the windows (window 0 loads the queries, window `i + 1` applies `windows[i]`) and returns
/// every window's deltas, merged over workers.
fn run(workers: usize, windows: &[Vec<Op>]) -> Vec<Deltas> {
    let windows = Arc::new(windows.to_vec());
    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let (mut inputs, capture) = worker.dataflow::<Time, _, _>(|scope| {
            let (inputs, outputs) = build(scope, Toy);
            (inputs, outputs.capture())
        });
        let feeds = worker.index() == 0;
        let mut model = Model::default();
        let mut previous = InputSets::default();
        let mut out = Vec::new();
        for window in 0..=windows.len() {
            let time = window as Time;
            if window > 0 {
                for op in &windows[window - 1] {
                    model.apply(op);
                }
            }
            let next = model.inputs();
            if feeds {
                diff_into(&mut inputs.instances, &previous.instances, &next.instances);
                diff_into(&mut inputs.versions, &previous.versions, &next.versions);
                diff_into(&mut inputs.entries, &previous.entries, &next.entries);
                diff_into(
                    &mut inputs.severities,
                    &previous.severities,
                    &next.severities,
                );
                diff_into(&mut inputs.names, &previous.names, &next.names);
                diff_into(
                    &mut inputs.statements,
                    &previous.statements,
                    &next.statements,
                );
                diff_into(
                    &mut inputs.artifact_keys,
                    &previous.artifact_keys,
                    &next.artifact_keys,
                );
                diff_into(
                    &mut inputs.component_keys,
                    &previous.component_keys,
                    &next.component_keys,
                );
                diff_into(&mut inputs.queries, &previous.queries, &next.queries);
            }
            previous = next;
            inputs.advance_to(time + 1);
            inputs.flush();
            worker.step_or_park_while(None, || capture.probe.less_than(&(time + 1)));
            out.push(Deltas {
                rows: take(&capture.rows, time),
                row_answers: take(&capture.row_answers, time),
                artifact_answers: take(&capture.artifact_answers, time),
            });
        }
        out
    })
    .unwrap_or_else(|e| panic!("timely failed to start: {e}"));
    let mut merged: Vec<Deltas> = Vec::new();
    for result in guards.join() {
        let per_worker = result.unwrap_or_else(|e| panic!("worker failed: {e}"));
        merged.resize(per_worker.len(), Deltas::default());
        for (all, mine) in merged.iter_mut().zip(per_worker) {
            all.rows.extend(mine.rows);
            all.row_answers.extend(mine.row_answers);
            all.artifact_answers.extend(mine.artifact_answers);
        }
    }
    // A row's updates within a window may land on different workers: sum them.
    for deltas in &mut merged {
        differential_dataflow::consolidation::consolidate(&mut deltas.rows);
        differential_dataflow::consolidation::consolidate(&mut deltas.row_answers);
        differential_dataflow::consolidation::consolidate(&mut deltas.artifact_answers);
    }
    merged
}

/// Adds `deltas` into `state`, asserting they were already consolidated.
fn accumulate<D: Ord + Clone + std::fmt::Debug>(
    state: &mut BTreeMap<D, Diff>,
    deltas: &[(D, Diff)],
) {
    for pair in deltas.windows(2) {
        assert_ne!(pair[0].0, pair[1].0, "unconsolidated delta");
    }
    for (datum, diff) in deltas {
        assert_ne!(*diff, 0);
        let count = state.entry(datum.clone()).or_insert(0);
        *count += diff;
        if *count == 0 {
            state.remove(datum);
        }
    }
}

fn as_set<D: Ord + Clone + std::fmt::Debug>(state: &BTreeMap<D, Diff>) -> BTreeSet<D> {
    for (datum, count) in state {
        assert_eq!(*count, 1, "multiplicity of {datum:?}");
    }
    state.keys().cloned().collect()
}

/// Replays `windows` on one worker, comparing accumulated outputs to `naive` after every window.
fn check_against_naive(windows: &[Vec<Op>]) -> Coverage {
    let deltas = run(1, windows);
    assert_eq!(deltas.len(), windows.len() + 1);
    let mut model = Model::default();
    let mut rows = BTreeMap::new();
    let mut row_answers = BTreeMap::new();
    let mut artifact_answers = BTreeMap::new();
    let mut coverage = Coverage::default();
    for (window, delta) in deltas.iter().enumerate() {
        let bumped = match window.checked_sub(1).map(|i| windows[i].as_slice()) {
            Some([single]) => model.apply(single),
            Some(ops) => {
                for op in ops {
                    model.apply(op);
                }
                None
            }
            None => None,
        };
        accumulate(&mut rows, &delta.rows);
        accumulate(&mut row_answers, &delta.row_answers);
        accumulate(&mut artifact_answers, &delta.artifact_answers);
        let sets = model.inputs();
        let (expected, seen) = naive(&sets);
        coverage.add(seen);
        assert_eq!(as_set(&rows), expected, "rows after window {window}");
        let (expected_rows, expected_packages) = naive_answers(&expected, &sets);
        assert_eq!(
            as_set(&row_answers),
            expected_rows,
            "row answers after window {window}"
        );
        assert_eq!(
            as_set(&artifact_answers),
            expected_packages,
            "package answers after {window}"
        );
        if let Some((artifact, old, new)) = bumped {
            for (row, diff) in &delta.rows {
                let expected = if *diff < 0 { old } else { new };
                assert_eq!(
                    (row.artifact, row.component),
                    (artifact, expected),
                    "bump leaked: {row:?} {diff}"
                );
            }
            coverage.bumps_checked += 1;
        }
    }
    coverage
}

/// Range bounds at and between the versions in use, so ranges often contain some of them.
fn triple() -> impl Strategy<Value = Triple> {
    prop_oneof![
        Just((0, 0, 0)),
        Just((1, 0, 0)),
        Just((1, 2, 0)),
        Just((1, 3, 0)),
        Just((1, 4, 2)),
        Just((2, 0, 0)),
        Just((3, 0, 0)),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (triple(), proptest::option::of(triple()))
}

fn advisory() -> impl Strategy<Value = Advisory> {
    (
        0..4u8,
        proptest::collection::btree_set(0..ALIAS_POOL.len(), 0..3),
        proptest::collection::vec((0..PACKAGES, spec()), 1..4),
    )
        .prop_map(|(severity, aliases, entries)| Advisory {
            severity,
            aliases,
            entries,
        })
}

fn status() -> impl Strategy<Value = VexStatus> {
    (0..4u8).prop_map(|code| VexStatus::from_code(code).unwrap_or(VexStatus::Affected))
}

fn vex() -> impl Strategy<Value = Vex> {
    let name = prop_oneof![
        (0..ALIAS_POOL.len()).prop_map(|i| ALIAS_POOL[i].to_owned()),
        (0..ADVISORIES).prop_map(own_name),
    ];
    let package = prop_oneof![
        (0..PACKAGES).prop_map(|p| 100 + p),
        (0..PACKAGES, 0..VERSION_TEXTS.len() as u64).prop_map(|(p, v)| 200 + p * 10 + v),
    ];
    let scope = prop_oneof![4 => Just(SCOPE), 1 => Just(FOREIGN_SCOPE)];
    let sub = prop_oneof![
        Just(None),
        (0..SLOTS).prop_map(|c| Some(500 + c)),
        (0..PACKAGES).prop_map(|p| Some(100 + p)),
    ];
    let target = prop_oneof![
        (scope, package).prop_map(|(scope, package)| Target::Package { scope, package }),
        (0..ARTIFACTS, sub).prop_map(|(a, sub)| Target::Artifact {
            artifact: 300 + a,
            sub
        }),
    ];
    (
        proptest::collection::btree_set(name, 1..3),
        target,
        (0..3i64, 0..2u64),
        status(),
    )
        .prop_map(|(names, target, (timestamp_nanos, sequence), status)| Vex {
            names,
            target,
            order: Order {
                timestamp_nanos,
                sequence,
            },
            status,
        })
}

fn sbom() -> impl Strategy<Value = Sbom> {
    proptest::collection::btree_map(0..SLOTS, (0..PACKAGES, 0..VERSION_TEXTS.len() as u64), 1..5)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..ADVISORIES, advisory()).prop_map(|(id, a)| Op::SetAdvisory(id, a)),
        1 => (0..ADVISORIES, 0..4u8).prop_map(|(id, s)| Op::SetSeverity(id, s)),
        1 => (0..ADVISORIES).prop_map(Op::Withdraw),
        2 => (0..STATEMENTS, vex()).prop_map(|(id, v)| Op::SetStatement(id, v)),
        1 => (0..STATEMENTS).prop_map(Op::RetractStatement),
        2 => (0..ARTIFACTS, sbom()).prop_map(|(id, s)| Op::ReplaceSbom(id, s)),
        2 => (0..ARTIFACTS, 0..4usize, 0..VERSION_TEXTS.len() as u64)
            .prop_map(|(id, i, v)| Op::BumpComponent(id, i, v)),
        1 => (0..16usize).prop_map(Op::ToggleQuery),
    ]
}

/// A first window loading every SBOM, some advisories and statements, then random windows.
fn windows(max: usize) -> impl Strategy<Value = Vec<Vec<Op>>> {
    let load = (
        proptest::collection::vec(sbom(), ARTIFACTS as usize),
        proptest::collection::vec(advisory(), 3),
        proptest::collection::vec(vex(), 3),
    )
        .prop_map(|(sboms, advisories, statements)| {
            let sboms = (0..).zip(sboms).map(|(id, s)| Op::ReplaceSbom(id, s));
            let advisories = (0..).zip(advisories).map(|(id, a)| Op::SetAdvisory(id, a));
            let statements = (0..).zip(statements).map(|(id, v)| Op::SetStatement(id, v));
            sboms
                .chain(advisories)
                .chain(statements)
                .collect::<Vec<_>>()
        });
    let rest = proptest::collection::vec(
        prop_oneof![
            3 => op().prop_map(|op| vec![op]),
            1 => proptest::collection::vec(op(), 2..4),
        ],
        1..max,
    );
    (load, rest).prop_map(|(load, mut rest)| {
        rest.insert(0, load);
        rest
    })
}

/// A deterministic proptest run, so the printed coverage is reproducible and can be asserted.
#[test]
fn random_windows_match_naive_recomputation() {
    let config = ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let total = std::cell::RefCell::new(Coverage::default());
    let outcome = runner.run(&windows(14), |windows| {
        total.borrow_mut().add(check_against_naive(&windows));
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    let total = total.into_inner();
    println!("random windows: {total:?}");
    assert!(total.rows > 500, "{total:?}");
    assert!(
        total.vex_rows > 50 && total.suppressed > 20 && total.overrides > 10,
        "{total:?}"
    );
    assert!(total.merged > 50 && total.bumps_checked > 20, "{total:?}");
    assert!(
        total.by_package > 20 && total.by_artifact > 20 && total.by_component > 20,
        "{total:?}"
    );
    assert!(
        total.out_of_scope > 10 && total.narrowed_out > 10,
        "{total:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 8,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn two_workers_agree_with_one(windows in windows(10)) {
        let one = run(1, &windows);
        let two = run(2, &windows);
        prop_assert_eq!(&one, &two);
        prop_assert_eq!(run(2, &windows), two);
    }
}

fn entry(package: PackageKey, introduced: Triple, fixed: Option<Triple>) -> (PackageKey, Spec) {
    (package, (introduced, fixed))
}

/// A fixed scenario touching every rule: alias merge, severity edit, VEX override, SBOM bump.
fn scenario() -> Vec<Vec<Op>> {
    let log4j = Advisory {
        severity: 3,
        aliases: BTreeSet::from([0]),
        entries: vec![
            entry(0, (1, 0, 0), Some((1, 4, 0))),
            entry(0, (0, 0, 0), None),
        ],
    };
    let duplicate = Advisory {
        severity: 2,
        aliases: BTreeSet::from([2, 3]),
        entries: vec![entry(0, (1, 2, 0), Some((2, 0, 0)))],
    };
    let not_affected = Vex {
        names: BTreeSet::from(["PYSEC-7".to_owned()]),
        target: Target::Package {
            scope: SCOPE,
            package: 100,
        },
        order: Order {
            timestamp_nanos: 1,
            sequence: 0,
        },
        status: VexStatus::NotAffected,
    };
    let affected_later = Vex {
        names: BTreeSet::from(["CVE-2024-0002".to_owned()]),
        target: Target::Artifact {
            artifact: 300,
            sub: None,
        },
        order: Order {
            timestamp_nanos: 2,
            sequence: 0,
        },
        status: VexStatus::Affected,
    };
    vec![
        vec![Op::ReplaceSbom(
            0,
            BTreeMap::from([(0, (0, 1)), (1, (0, 2)), (2, (1, 1))]),
        )],
        vec![Op::SetAdvisory(0, log4j)],
        vec![Op::SetAdvisory(1, duplicate.clone())],
        vec![Op::SetStatement(0, not_affected)],
        vec![Op::SetAdvisory(
            1,
            Advisory {
                aliases: BTreeSet::from([0, 2, 3]),
                ..duplicate
            },
        )],
        vec![Op::SetSeverity(0, 1)],
        vec![Op::SetStatement(1, affected_later)],
        vec![Op::BumpComponent(0, 1, 3)],
        vec![Op::RetractStatement(1)],
        vec![Op::Withdraw(0)],
        vec![Op::SetStatement(2, later_affected(5, Some(501)))],
        vec![Op::SetStatement(
            3,
            Vex {
                target: Target::Package {
                    scope: FOREIGN_SCOPE,
                    package: 100,
                },
                ..later_affected(6, None)
            },
        )],
        vec![Op::SetStatement(2, later_affected(5, Some(500)))],
    ]
}

/// An `affected` statement for CVE-2024-0002 in artifact 0, narrowed to a component key.
fn later_affected(timestamp_nanos: i64, sub: Option<ProductKey>) -> Vex {
    Vex {
        names: BTreeSet::from(["CVE-2024-0002".to_owned()]),
        target: Target::Artifact { artifact: 300, sub },
        order: Order {
            timestamp_nanos,
            sequence: 0,
        },
        status: VexStatus::Affected,
    }
}

#[test]
fn scenario_matches_naive_and_bump_is_local() {
    let windows = scenario();
    let coverage = check_against_naive(&windows);
    println!("scenario over {} windows: {coverage:?}", windows.len() + 1);
    assert_eq!(coverage.bumps_checked, 1);
    assert!(
        coverage.rows > 10 && coverage.overrides > 0 && coverage.merged > 0,
        "{coverage:?}"
    );

    let deltas = run(1, &windows);
    // Window 3: without a CVE name the group is named by its smallest name.
    assert!(deltas[3]
        .rows
        .iter()
        .any(|(r, d)| *d == 1 && r.advisory == 1 && r.vulnerability == name_id("ALSA-2024:0001")));
    // Window 5 merges advisory 1 into CVE-2024-0002, whose PYSEC-7 statement now suppresses it.
    assert!(deltas[5].rows.iter().any(|(r, d)| *d == 1
        && r.advisory == 1
        && r.vulnerability == name_id("CVE-2024-0002")
        && r.suppressed));
    // Window 6 is a severity-only edit: every change is a retraction plus an insertion.
    assert!(!deltas[6].rows.is_empty());
    assert_eq!(
        deltas[6].rows.iter().filter(|(_, d)| *d == 1).count() * 2,
        deltas[6].rows.len()
    );
    // Window 7: the later `affected` statement overrides `not_affected` for artifact 0.
    assert!(deltas[7]
        .rows
        .iter()
        .any(|(r, d)| *d == 1 && r.vex == Some((1, VexStatus::Affected)) && !r.suppressed));
    // Window 11 names a component without findings, window 12 a scope no artifact has.
    assert!(deltas[11].rows.is_empty() && deltas[12].rows.is_empty());
    // Window 13 narrows the statement to the still affected slot 0, overriding not_affected.
    assert!(deltas[13].rows.iter().any(|(r, d)| *d == 1
        && r.component == 1
        && r.vex == Some((2, VexStatus::Affected))
        && !r.suppressed));
}

#[test]
fn runs_are_deterministic() {
    let windows = scenario();
    let first = run(1, &windows);
    assert_eq!(first, run(1, &windows));
    assert_eq!(first, run(2, &windows));
    assert!(first.iter().map(|d| d.rows.len()).sum::<usize>() > 10);
}
