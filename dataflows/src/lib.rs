//! The pure incremental impact dataflow of Recheck.
//!
//! Recheck must keep advisory x SBOM x VEX verdicts current as any of the three changes, without
//! recomputing the fleet. This crate states that computation once, as a differential dataflow,
//! so that a window of input changes yields exactly the impact rows that changed. It does no I/O
//! and reads no clock: the root crate owns hashing names to ids, version semantics (through
//! [`RangeEvaluator`]) and persistence, and drives the dataflow window by window.
//!
//! Everything is keyed by caller-assigned `u64` ids (derived from sha256 so all processes agree);
//! only version texts, the caller's range specs and (inside the small alias-grouping step) the
//! texts of vulnerability names travel as payloads, so arrangements of findings and rows hold
//! plain integers.
//!
//! Driving it: build with [`build`] inside `worker.dataflow(..)`, feed the [`Inputs`] sessions
//! (from any worker), call [`Inputs::advance_to`]`(w + 1)` and [`Inputs::flush`], then step the
//! worker until `probe.less_than(&(w + 1))` is false. Output updates at time `w` are that window's
//! impact deltas.

use std::cell::RefCell;
use std::hash::Hash;
use std::rc::Rc;

use differential_dataflow::input::{Input, InputSession};
use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::operators::Iterate;
use differential_dataflow::{ExchangeData, VecCollection};
use serde::{Deserialize, Serialize};
use timely::dataflow::{ProbeHandle, Scope};

/// Evaluation window; all inputs advance together from window to window.
pub type Time = u64;
/// Multiplicity of an update (+1 insert, -1 retract).
pub type Diff = isize;
/// Hash of an artifact (one SBOM subject).
pub type ArtifactId = u64;
/// Hash of a component's identity; it answers to the same [`ComponentKey`]s in every artifact.
pub type ComponentId = u64;
/// Hash of (ecosystem, package name).
pub type PackageKey = u64;
/// Hash of a version text within a package.
pub type VersionId = u64;
/// Hash of an advisory's own id.
pub type AdvisoryId = u64;
/// Position of an affected entry within its advisory; the smallest matching one explains a finding.
pub type EntryIndex = u32;
/// Caller-defined severity rank; larger is more severe.
pub type Severity = u8;
/// Hash of a VEX statement.
pub type StatementId = u64;
/// Hash of a key an artifact or component answers to, which VEX statements target.
pub type ProductKey = u64;
/// Caller-chosen id of a live impact query.
pub type QueryId = u64;
/// Hash of a vulnerability name (an advisory's id or one of its aliases).
pub type NameId = u64;

/// Orders VEX statements: a larger value is the later statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Order {
    /// Statement timestamp in nanoseconds since the epoch.
    pub timestamp_nanos: i64,
    /// Tie-breaker among statements with the same timestamp (e.g. position in its document).
    pub sequence: u64,
}

/// VEX status of a statement; `NotAffected` and `Fixed` suppress a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum VexStatus {
    /// Code 0.
    NotAffected,
    /// Code 1.
    Affected,
    /// Code 2.
    Fixed,
    /// Code 3.
    UnderInvestigation,
}

impl VexStatus {
    /// Decodes the wire code (0 not_affected, 1 affected, 2 fixed, 3 under_investigation).
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::NotAffected),
            1 => Some(Self::Affected),
            2 => Some(Self::Fixed),
            3 => Some(Self::UnderInvestigation),
            _ => None,
        }
    }

    /// The wire code of this status.
    pub fn code(self) -> u8 {
        match self {
            Self::NotAffected => 0,
            Self::Affected => 1,
            Self::Fixed => 2,
            Self::UnderInvestigation => 3,
        }
    }

    /// Whether a finding whose latest applicable statement has this status is suppressed.
    pub fn suppresses(self) -> bool {
        matches!(self, Self::NotAffected | Self::Fixed)
    }
}

/// Decides whether a version text falls in an affected entry's range.
///
/// The dataflow calls `evaluate` once per (distinct package version, entry of that package) pair,
/// again when either side is retracted, so it must be a pure function of its arguments.
pub trait RangeEvaluator: Clone + 'static {
    /// The caller's compact, serializable encoding of one affected entry.
    type Spec: ExchangeData + Hash;
    /// Why a version matched (caller-defined), carried into [`ImpactRow::reason`].
    type Reason: ExchangeData + Hash;
    /// `Some(reason)` iff `version` is affected by `spec`.
    fn evaluate(&self, spec: &Self::Spec, version: &str) -> Option<Self::Reason>;
}

/// A component of an artifact at a version: `(artifact, component, package, version)`.
pub type Instance = (ArtifactId, ComponentId, PackageKey, VersionId);
/// The text of a version id: `(package, version, text)`.
pub type VersionText = (PackageKey, VersionId, String);
/// One affected entry of an advisory: `(package, advisory, entry index, spec)`.
pub type Entry<S> = (PackageKey, AdvisoryId, EntryIndex, S);
/// An advisory's severity: `(advisory, severity)`; the maximum wins if several are present.
pub type AdvisorySeverity = (AdvisoryId, Severity);
/// An advisory's own id or one of its aliases: `(advisory, name id, name text)`; the text only
/// decides which name of a group is canonical.
pub type AdvisoryName = (AdvisoryId, NameId, String);
/// What a VEX statement targets, as caller-hashed product keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Target {
    /// A package wherever it appears: instances whose component has key `package`, inside
    /// artifacts that have key `scope` (the caller's tenant/global scope token).
    Package {
        /// The scope token the artifact must have.
        scope: ProductKey,
        /// The key the component must have.
        package: ProductKey,
    },
    /// An artifact (any artifact having key `artifact`), optionally narrowed to the component
    /// having key `sub`.
    Artifact {
        /// The key the artifact must have.
        artifact: ProductKey,
        /// The key the component must have, if the statement names one.
        sub: Option<ProductKey>,
    },
}
/// `(statement, name, target, order, status)`; one row per vulnerability name the statement gives.
pub type Statement = (StatementId, NameId, Target, Order, VexStatus);
/// A key an artifact answers to (its scope tokens, digest, references...): `(artifact, key)`.
pub type ArtifactKey = (ArtifactId, ProductKey);
/// A key a component answers to (purl with/without version, bom-ref): `(component, key)`.
/// The caller guarantees a ComponentId always has the same keys wherever it occurs.
pub type ComponentKey = (ComponentId, ProductKey);

/// A live impact query; its answers stay current while the query is present in the input.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Query {
    /// All impact rows of one advisory.
    Advisory(AdvisoryId),
    /// All impact rows of one artifact.
    Artifact(ArtifactId),
    /// The artifacts with at least one impact row through this package.
    Package(PackageKey),
    /// The artifacts with at least one impact row that answer to this key (a label, a runtime
    /// state, a repository: whatever the caller feeds as [`ArtifactKey`]s).
    ArtifactsWithKey(ProductKey),
}

/// One finding of an advisory in one component instance, with its VEX verdict.
///
/// Any change to a field (suppression, severity, vulnerability label, reason) is emitted as a
/// retraction of the old row and an insertion of the new one.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ImpactRow<R> {
    /// The affected artifact.
    pub artifact: ArtifactId,
    /// The advisory that matched.
    pub advisory: AdvisoryId,
    /// The affected component instance within the artifact.
    pub component: ComponentId,
    /// The component's package.
    pub package: PackageKey,
    /// The component's version.
    pub version: VersionId,
    /// Canonical name of the advisory's vulnerability group: the smallest `CVE-` name of the
    /// group, else its smallest name.
    pub vulnerability: NameId,
    /// The advisory's severity.
    pub severity: Severity,
    /// The smallest entry index of the advisory that matched this version.
    pub entry: EntryIndex,
    /// The evaluator's explanation for that entry.
    pub reason: R,
    /// The latest applicable VEX statement and its status, if any.
    pub vex: Option<(StatementId, VexStatus)>,
    /// Whether the latest applicable statement suppresses the finding.
    pub suppressed: bool,
}

/// The input sessions of one worker's copy of the dataflow.
///
/// Updates may be fed through any worker; every worker must advance its sessions. Inputs are
/// sets: insert a row once, retract it with `remove` of the identical row; an edit is a
/// retraction plus an insertion in the same window.
pub struct Inputs<S: ExchangeData> {
    /// Component instances of artifacts; a component has one (package, version).
    pub instances: InputSession<Time, Instance, Diff>,
    /// Version texts (only those of versions in use are ever evaluated). Keep one text per
    /// (package, version); with several, the smallest matching (entry, reason) over them wins.
    pub versions: InputSession<Time, VersionText, Diff>,
    /// Affected entries of advisories.
    pub entries: InputSession<Time, Entry<S>, Diff>,
    /// Advisory severities; an advisory without one yields no rows.
    pub severities: InputSession<Time, AdvisorySeverity, Diff>,
    /// Advisory ids and aliases; an advisory without any (send at least its own id) yields no
    /// rows.
    pub names: InputSession<Time, AdvisoryName, Diff>,
    /// VEX statements.
    pub statements: InputSession<Time, Statement, Diff>,
    /// Keys artifacts answer to.
    pub artifact_keys: InputSession<Time, ArtifactKey, Diff>,
    /// Keys components answer to; the same for a component in every artifact it occurs in.
    pub component_keys: InputSession<Time, ComponentKey, Diff>,
    /// Live impact queries.
    pub queries: InputSession<Time, (QueryId, Query), Diff>,
}

impl<S: ExchangeData> Inputs<S> {
    /// Moves every session to window `time`; later updates land in that window.
    pub fn advance_to(&mut self, time: Time) {
        self.advance_data_to(time);
        self.queries.advance_to(time);
    }

    /// Moves every session but `queries` to `time`.
    ///
    /// Queries may run on a finer clock than the data: a query placed at a time `t` between the
    /// last closed window `w` and the data's time is answered, from the state as of `w`, as soon
    /// as the query session passes `t`, without waiting for the next window to close.
    pub fn advance_data_to(&mut self, time: Time) {
        self.instances.advance_to(time);
        self.versions.advance_to(time);
        self.entries.advance_to(time);
        self.severities.advance_to(time);
        self.names.advance_to(time);
        self.statements.advance_to(time);
        self.artifact_keys.advance_to(time);
        self.component_keys.advance_to(time);
    }

    /// Sends buffered updates and progress into the dataflow.
    pub fn flush(&mut self) {
        self.instances.flush();
        self.versions.flush();
        self.entries.flush();
        self.severities.flush();
        self.names.flush();
        self.statements.flush();
        self.artifact_keys.flush();
        self.component_keys.flush();
        self.queries.flush();
    }

    /// The window updates are currently sent to.
    pub fn time(&self) -> Time {
        *self.instances.time()
    }
}

/// The outputs of one worker's copy of the dataflow (each worker sees its own share).
pub struct Outputs<'scope, R: ExchangeData> {
    /// All impact rows. A window's updates sum to its deltas but need not be consolidated
    /// (a row may come and go within the window): consolidate them per window.
    pub rows: VecCollection<'scope, Time, ImpactRow<R>, Diff>,
    /// Answers to `Query::Advisory` and `Query::Artifact`: `(query, row)`.
    pub row_answers: VecCollection<'scope, Time, (QueryId, ImpactRow<R>), Diff>,
    /// Answers to `Query::Package` and `Query::ArtifactsWithKey`: `(query, artifact)`.
    pub artifact_answers: VecCollection<'scope, Time, (QueryId, ArtifactId), Diff>,
    /// Passes window `w` once all three outputs are complete for `w`; attach further sinks
    /// with `probe_with(&probe)` so it also covers them.
    pub probe: ProbeHandle<Time>,
}

/// Key ordering the canonical vulnerability name: any `CVE-` name before any other, then by
/// string, so the group minimum is the canonical name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
struct GroupKey {
    not_cve: bool,
    name: String,
    id: NameId,
}

/// Vertex of the advisory-name graph whose connected components are vulnerabilities.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum Node {
    Advisory(AdvisoryId),
    Name(NameId),
}

/// The part of a finding that rides along the VEX join unchanged.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
struct Finding<R> {
    advisory: AdvisoryId,
    package: PackageKey,
    version: VersionId,
    severity: Severity,
    entry: EntryIndex,
    reason: R,
}

type FindingKey = (ArtifactId, ComponentId, NameId);

fn row<R: Clone>(
    key: &FindingKey,
    finding: &Finding<R>,
    vex: Option<(StatementId, VexStatus)>,
) -> ImpactRow<R> {
    ImpactRow {
        artifact: key.0,
        advisory: finding.advisory,
        component: key.1,
        package: finding.package,
        version: finding.version,
        vulnerability: key.2,
        severity: finding.severity,
        entry: finding.entry,
        reason: finding.reason.clone(),
        vex,
        suppressed: vex.is_some_and(|(_, status)| status.suppresses()),
    }
}

/// Builds the whole impact dataflow in `scope` and returns its input sessions and outputs.
///
/// Call once per worker inside `worker.dataflow::<Time, _, _>(..)`, with the same evaluator
/// semantics on every worker. Stateful arrangements: instances by (package, version), entries by
/// package, version texts in use, vulnerability labels, affected versions with their advisory's
/// severity and label, findings (by instance, by component and by artifact), artifact and
/// component keys (by key and as sets), and the rows by advisory and by artifact. Package queries
/// are computed when asked, from the affected versions and the instances.
pub fn build<'scope, E: RangeEvaluator>(
    scope: Scope<'scope, Time>,
    evaluator: E,
) -> (Inputs<E::Spec>, Outputs<'scope, E::Reason>) {
    let (instances_in, instances) = scope.new_collection::<Instance, Diff>();
    let (versions_in, versions) = scope.new_collection::<VersionText, Diff>();
    let (entries_in, entries) = scope.new_collection::<Entry<E::Spec>, Diff>();
    let (severities_in, severities) = scope.new_collection::<AdvisorySeverity, Diff>();
    let (names_in, names) = scope.new_collection::<AdvisoryName, Diff>();
    let (statements_in, statements) = scope.new_collection::<Statement, Diff>();
    let (artifact_keys_in, artifact_keys) = scope.new_collection::<ArtifactKey, Diff>();
    let (component_keys_in, component_keys) = scope.new_collection::<ComponentKey, Diff>();
    let (queries_in, queries) = scope.new_collection::<(QueryId, Query), Diff>();

    // 1. Evaluate each entry once per distinct version in use, not once per instance.
    let instances_by_version = compact::arrange(instances.clone().map(
        |(artifact, component, package, version)| ((package, version), (artifact, component)),
    ));
    let versions_in_use = instances
        .map(|(_, _, package, version)| (package, version))
        .distinct();
    let version_texts = versions
        .map(|(package, version, text)| ((package, version), text))
        .semijoin(versions_in_use)
        .map(|((package, version), text)| (package, (version, text)));
    let entries_by_package = entries
        .map(|(package, advisory, entry, spec)| (package, (advisory, entry, spec)))
        .arrange_by_key();
    let affected = version_texts
        .join_core(
            entries_by_package,
            move |package, (version, text), (advisory, entry, spec)| {
                evaluator
                    .evaluate(spec, text)
                    .map(|reason| ((*package, *version, *advisory), (*entry, reason)))
            },
        )
        .reduce(|_, matches, out| {
            if let Some((first, _)) = matches.first() {
                out.push(((*first).clone(), 1 as Diff));
            }
        });

    // Vulnerability groups: propagate the minimum GroupKey over the advisory-name graph.
    let edges = names.clone().flat_map(|(advisory, name, _)| {
        [
            (Node::Advisory(advisory), Node::Name(name)),
            (Node::Name(name), Node::Advisory(advisory)),
        ]
    });
    let seeds = names.map(|(_, id, name)| {
        let key = GroupKey {
            not_cve: !name.starts_with("CVE-"),
            name,
            id,
        };
        (Node::Name(id), key)
    });
    let labels = seeds.clone().iterate(|inner, labels| {
        let edges = edges.enter(inner);
        let seeds = seeds.enter(inner);
        labels
            .join_map(edges, |_, key, next| (next.clone(), key.clone()))
            .concat(seeds)
            .reduce(|_, keys, out| {
                if let Some((least, _)) = keys.first() {
                    out.push(((*least).clone(), 1 as Diff));
                }
            })
    });
    let advisory_labels = labels.clone().flat_map(|(node, key)| match node {
        Node::Advisory(advisory) => Some((advisory, key.id)),
        Node::Name(_) => None,
    });
    let name_labels = labels.flat_map(|(node, key)| match node {
        Node::Name(name) => Some((name, key.id)),
        Node::Advisory(_) => None,
    });
    let advisory_info = severities
        .reduce(|_, severities, out| {
            if let Some((most, _)) = severities.last() {
                out.push((**most, 1 as Diff));
            }
        })
        .join(advisory_labels);

    // 2. Findings per instance, keyed by the instance and its vulnerability for the VEX join.
    // Severity and vulnerability join the affected versions (few) rather than the findings
    // (many), so no arrangement of all findings by advisory is needed.
    let affected_findings = affected
        .map(|((package, version, advisory), matched)| (advisory, (package, version, matched)))
        .join_map(
            advisory_info,
            |&advisory, (package, version, (entry, reason)), &(severity, vulnerability)| {
                let finding = Finding {
                    advisory,
                    package: *package,
                    version: *version,
                    severity,
                    entry: *entry,
                    reason: reason.clone(),
                };
                ((*package, *version), (vulnerability, finding))
            },
        )
        .arrange_by_key();
    let affected_by_package = affected_findings
        .clone()
        .as_collection(|&(package, version), _| (package, version))
        .distinct()
        .arrange_by_key();
    let findings = affected_findings.clone().join_core(
        instances_by_version.clone(),
        |_, (vulnerability, finding), &(artifact, component)| {
            Some(((artifact, component, *vulnerability), finding.clone()))
        },
    );

    // 3. VEX: the latest statement naming the group and targeting the finding. Statements are
    // expanded only over the keys they name, then over the findings of the components or
    // artifacts having those keys, so no step touches instances without findings.
    let targeted = statements
        .map(|(statement, name, target, order, status)| (name, (statement, target, order, status)))
        .join_map(
            name_labels,
            |_, &(statement, target, order, status), &vulnerability| {
                (target, (vulnerability, (order, statement, status)))
            },
        );
    let findings_by_component = compact::arrange(
        findings
            .clone()
            .map(|((artifact, component, vulnerability), _)| {
                ((component, vulnerability), artifact)
            }),
    );
    let findings_by_artifact = compact::arrange(
        findings
            .clone()
            .map(|((artifact, component, vulnerability), _)| {
                (artifact, (component, vulnerability))
            }),
    );
    let components_by_key = compact::arrange(
        component_keys
            .clone()
            .map(|(component, key)| (key, component)),
    );
    let component_has_key = compact::arrange_set(component_keys);
    let artifacts_by_key = artifact_keys
        .clone()
        .map(|(artifact, key)| (key, artifact))
        .arrange_by_key();
    let artifact_has_key = artifact_keys.arrange_by_self();

    // Package targets: components with the package key, their findings, artifacts in scope.
    let package_applied = targeted
        .clone()
        .flat_map(|(target, (vulnerability, vex))| match target {
            Target::Package { scope, package } => Some((package, (scope, vulnerability, vex))),
            Target::Artifact { .. } => None,
        })
        .join_core(
            components_by_key,
            |_, (scope, vulnerability, vex), &component| {
                Some(((component, *vulnerability), (*scope, *vex)))
            },
        )
        .join_core(
            findings_by_component,
            |(component, vulnerability), &(scope, vex), &artifact| {
                Some(((artifact, scope), (*component, *vulnerability, vex)))
            },
        )
        .join_core(
            artifact_has_key,
            |&(artifact, _), (component, vulnerability, vex), &()| {
                Some(((artifact, *component, *vulnerability), *vex))
            },
        );

    // Artifact targets: artifacts with the key, their findings, narrowed to a component key.
    let artifact_applied = targeted
        .flat_map(|(target, (vulnerability, vex))| match target {
            Target::Artifact { artifact, sub } => Some((artifact, (sub, vulnerability, vex))),
            Target::Package { .. } => None,
        })
        .join_core(
            artifacts_by_key.clone(),
            |_, (sub, vulnerability, vex), &artifact| {
                Some((artifact, (*vulnerability, *sub, *vex)))
            },
        )
        .join_core(
            findings_by_artifact.clone(),
            |&artifact, &(named, sub, vex), &(component, vulnerability)| {
                (named == vulnerability)
                    .then_some(((artifact, component, vulnerability), (sub, vex)))
            },
        );
    let whole_artifact = artifact_applied
        .clone()
        .flat_map(|(finding, (sub, vex))| sub.is_none().then_some((finding, vex)));
    let narrowed = artifact_applied
        .flat_map(|((artifact, component, vulnerability), (sub, vex))| {
            sub.map(|sub| ((component, sub), (artifact, vulnerability, vex)))
        })
        .join_core(
            component_has_key,
            |&(component, _), (artifact, vulnerability, vex), &()| {
                Some(((*artifact, component, *vulnerability), *vex))
            },
        );

    let latest_statements = package_applied
        .concat(whole_artifact)
        .concat(narrowed)
        .reduce(|_, candidates, out| {
            if let Some((&(_, statement, status), _)) = candidates.last() {
                out.push(((statement, status), 1 as Diff));
            }
        })
        .arrange_by_key();
    let findings_by_key = findings.clone().arrange_by_key();
    let vexed_keys = latest_statements
        .clone()
        .as_collection(|key, _| *key)
        .arrange_by_self();

    // 4. Rows: each finding with its latest statement, or with none. Not arranged: the caller
    // sums a window's updates, and queries rebuild the rows they ask for from the findings.
    let rows = findings_by_key
        .clone()
        .join_core(latest_statements.clone(), |key, finding, &vex| {
            Some(row(key, finding, Some(vex)))
        })
        .concat(findings.map(|(key, finding)| row(&key, &finding, None)))
        .concat(
            findings_by_key
                .clone()
                .join_core(vexed_keys.clone(), |key, finding, &()| {
                    Some(row(key, finding, None))
                })
                .negate(),
        );

    // Live queries, computed when asked from the shared arrangements: the finding keys a
    // query covers, then their findings and statements, as for the rows above.
    let affected_by_advisory = affected_findings
        .as_collection(|&(package, version), (vulnerability, finding)| {
            (finding.advisory, ((package, version), *vulnerability))
        })
        .arrange_by_key();
    let of_advisory = queries
        .clone()
        .flat_map(|(query, q)| match q {
            Query::Advisory(advisory) => Some((advisory, query)),
            _ => None,
        })
        .join_core(
            affected_by_advisory,
            |&advisory, &query, &(version, vulnerability)| {
                Some((version, (query, advisory, vulnerability)))
            },
        )
        .join_core(
            instances_by_version.clone(),
            |_, &(query, advisory, vulnerability), &(artifact, component)| {
                Some((
                    (artifact, component, vulnerability),
                    (query, Some(advisory)),
                ))
            },
        );
    let of_artifact = queries
        .clone()
        .flat_map(|(query, q)| match q {
            Query::Artifact(artifact) => Some((artifact, query)),
            _ => None,
        })
        .join_core(
            findings_by_artifact.clone(),
            |&artifact, &query, &(component, vulnerability)| {
                Some(((artifact, component, vulnerability), (query, None)))
            },
        )
        // Advisories of one vulnerability group share finding keys.
        .distinct();
    let asked = of_advisory
        .concat(of_artifact)
        .join_core(findings_by_key, |key, &(query, advisory), finding| {
            advisory
                .is_none_or(|a| a == finding.advisory)
                .then(|| (*key, (query, finding.clone())))
        })
        .arrange_by_key();
    let row_answers = asked
        .clone()
        .join_core(latest_statements, |key, (query, finding), &vex| {
            Some((*query, row(key, finding, Some(vex))))
        })
        .concat(
            asked
                .clone()
                .as_collection(|key, (query, finding)| (*query, row(key, finding, None))),
        )
        .concat(
            asked
                .join_core(vexed_keys, |key, (query, finding), &()| {
                    Some((*query, row(key, finding, None)))
                })
                .negate(),
        )
        .consolidate();
    // Computed when asked rather than maintained: the package's affected versions, their
    // instances, distinct artifacts. (Findings and rows are the same set of instances; VEX
    // only annotates them.)
    let through_package = queries
        .clone()
        .flat_map(|(query, q)| match q {
            Query::Package(package) => Some((package, query)),
            _ => None,
        })
        .join_core(affected_by_package, |&package, &query, &version| {
            Some(((package, version), query))
        })
        .join_core(instances_by_version, |_, &query, &(artifact, _)| {
            Some((query, artifact))
        })
        .distinct();
    // Artifacts having the key, kept if they have any row at all.
    let affected_artifacts = findings_by_artifact
        .as_collection(|&artifact, _| artifact)
        .distinct()
        .arrange_by_self();
    let with_key = queries
        .flat_map(|(query, q)| match q {
            Query::ArtifactsWithKey(key) => Some((key, query)),
            _ => None,
        })
        .join_core(artifacts_by_key, |_, &query, &artifact| {
            Some((artifact, query))
        })
        .join_core(affected_artifacts, |&artifact, &query, &()| {
            Some((query, artifact))
        });
    let artifact_answers = through_package.concat(with_key).consolidate();

    let probe = ProbeHandle::new();
    let rows = rows.probe_with(&probe);
    let row_answers = row_answers.probe_with(&probe);
    let artifact_answers = artifact_answers.probe_with(&probe);

    let inputs = Inputs {
        instances: instances_in,
        versions: versions_in,
        entries: entries_in,
        severities: severities_in,
        names: names_in,
        statements: statements_in,
        artifact_keys: artifact_keys_in,
        component_keys: component_keys_in,
        queries: queries_in,
    };
    (
        inputs,
        Outputs {
            rows,
            row_answers,
            artifact_answers,
            probe,
        },
    )
}

/// Updates collected from one worker's outputs, in arrival order.
pub type Captured<D> = Rc<RefCell<Vec<(D, Time, Diff)>>>;

/// One worker's collected outputs and the probe covering them.
pub struct Capture<R> {
    /// Impact row updates.
    pub rows: Captured<ImpactRow<R>>,
    /// `(query, row)` answer updates.
    pub row_answers: Captured<(QueryId, ImpactRow<R>)>,
    /// `(query, artifact)` answer updates.
    pub artifact_answers: Captured<(QueryId, ArtifactId)>,
    /// Passes window `w` once the captured updates of `w` are all present.
    pub probe: ProbeHandle<Time>,
}

impl<'scope, R: ExchangeData> Outputs<'scope, R> {
    /// Collects all three outputs into shared buffers the caller drains between windows.
    pub fn capture(self) -> Capture<R> {
        fn sink<'s, D: ExchangeData>(
            collection: VecCollection<'s, Time, D, Diff>,
            probe: &ProbeHandle<Time>,
        ) -> Captured<D> {
            let buffer: Captured<D> = Rc::default();
            let writer = Rc::clone(&buffer);
            collection
                .inspect(move |update| writer.borrow_mut().push(update.clone()))
                .probe_with(probe);
            buffer
        }
        Capture {
            rows: sink(self.rows, &self.probe),
            row_answers: sink(self.row_answers, &self.probe),
            artifact_answers: sink(self.artifact_answers, &self.probe),
            probe: self.probe,
        }
    }
}

/// Arrangements for large collections (instances, component keys, findings) that do not keep
/// unused update capacity.
///
/// The stock builder reserves time and diff slots for every update, but stores only one for a
/// run of identical `(time, diff)` pairs; a freshly loaded SBOM fleet is exactly such a run, so
/// without this the reservation (16 bytes per update) lingers until the batch is next merged.
mod compact {
    use std::marker::PhantomData;

    use differential_dataflow::batcher::merge::chunker::ContainerChunker;
    use differential_dataflow::batcher::merge::vec::VecMerger;
    use differential_dataflow::batcher::merge::{MergeBatcher, Sealer};
    use differential_dataflow::trace::implementations::ord_neu::{OrdKeyBatch, OrdValBatch};
    use differential_dataflow::trace::implementations::{
        KeyBuilder, KeySpine, ValBuilder, ValSpine, Vector,
    };
    use differential_dataflow::{ExchangeData, Hashable, VecCollection};

    use super::{Arranged, Diff, Time, TraceAgent};

    type Update<K, V> = ((K, V), Time, Diff);

    pub(crate) struct ShrinkingSealer<K, V>(PhantomData<(K, V)>);

    impl<K: ExchangeData, V: ExchangeData> Sealer<Vec<Update<K, V>>> for ShrinkingSealer<K, V> {
        type Output = OrdValBatch<Vector<Update<K, V>>>;
        fn seal(chain: &mut Vec<Vec<Update<K, V>>>) -> Option<Self::Output> {
            let mut batch = <ValBuilder<K, V, Time, Diff> as Sealer<_>>::seal(chain)?;
            batch.storage.upds.times.shrink_to_fit();
            batch.storage.upds.diffs.shrink_to_fit();
            Some(batch)
        }
    }

    pub(crate) struct ShrinkingKeySealer<K>(PhantomData<K>);

    impl<K: ExchangeData> Sealer<Vec<Update<K, ()>>> for ShrinkingKeySealer<K> {
        type Output = OrdKeyBatch<Vector<Update<K, ()>>>;
        fn seal(chain: &mut Vec<Vec<Update<K, ()>>>) -> Option<Self::Output> {
            let mut batch = <KeyBuilder<K, Time, Diff> as Sealer<_>>::seal(chain)?;
            batch.storage.upds.times.shrink_to_fit();
            batch.storage.upds.diffs.shrink_to_fit();
            Some(batch)
        }
    }

    type Batcher<K, V, S> =
        MergeBatcher<ContainerChunker<Vec<Update<K, V>>>, VecMerger<(K, V), Time, Diff>, S>;

    /// `arrange_by_key`, with batches trimmed to the updates they hold.
    pub(crate) fn arrange<'scope, K, V>(
        collection: VecCollection<'scope, Time, (K, V), Diff>,
    ) -> Arranged<'scope, TraceAgent<ValSpine<K, V, Time, Diff>>>
    where
        K: ExchangeData + Hashable,
        V: ExchangeData,
    {
        collection.arrange::<Batcher<K, V, ShrinkingSealer<K, V>>, ValSpine<K, V, Time, Diff>>(
            Batcher::new,
        )
    }

    /// `arrange_by_self`, with batches trimmed to the updates they hold.
    pub(crate) fn arrange_set<'scope, K>(
        collection: VecCollection<'scope, Time, K, Diff>,
    ) -> Arranged<'scope, TraceAgent<KeySpine<K, Time, Diff>>>
    where
        K: ExchangeData + Hashable,
    {
        collection
            .map(|key| (key, ()))
            .arrange::<Batcher<K, (), ShrinkingKeySealer<K>>, KeySpine<K, Time, Diff>>(Batcher::new)
    }
}
