//! The incremental engine against the reference matcher.
//!
//! A property test drives random sequences of advisory inserts, edits
//! (ranges, severity, aliases), withdrawals, VEX changes and SBOM replacements
//! through the engine, window by window; after every window the accumulated
//! deltas must equal `scan` recomputed from scratch on the current inputs.
//! Advisories are real (bundled samples plus, when present, part of the shared
//! corpus); SBOMs come from the seeded fleet generator over real versions.

use std::collections::BTreeMap;

mod common;

use proptest::prelude::*;
use proptest::strategy::ValueTree;

use common::engine::{Accumulated, Metadata, Naive};
use recheck::engine::record::{InputRecord, LogEntry};
use recheck::engine::{Engine, EngineConfig, ImpactQuery, Row};
use recheck::fleet::{self, Corpus, FleetShape};
use recheck::formats;
use recheck::model::{
    Advisory, Finding, FindingStatus, RangeEvent, RuntimeState, Sbom, Scope, Severity, VexProduct,
    VexStatement, VexStatus,
};

struct Pools {
    advisories: Vec<Advisory>,
    corpus: Corpus,
    names: Vec<String>,
}

fn pools() -> Pools {
    let mut paths = vec![recheck::samples::bundled_dir().join("advisories")];
    if let Some(data) = recheck::samples::shared_data_dir() {
        paths.push(data.join("osv/pypi"));
    }
    let report = formats::load::load(&paths, formats::osv::parse_advisory);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    // Keep the proptest affordable: the samples and a slice of the corpus.
    let advisories: Vec<Advisory> = report
        .items
        .into_iter()
        .map(|(_, a)| a)
        .enumerate()
        .filter(|(i, a)| *i < 40 || a.id.starts_with("RUSTSEC") || a.withdrawn.is_some())
        .map(|(_, a)| a)
        .collect();
    let corpus = Corpus::from_documents(&advisories, &[]);
    let mut names: Vec<String> = advisories
        .iter()
        .flat_map(|a| a.names().map(str::to_string).collect::<Vec<_>>())
        .collect();
    names.sort();
    names.dedup();
    Pools {
        advisories,
        corpus,
        names,
    }
}

#[derive(Debug, Clone)]
enum Op {
    PutAdvisory(usize),
    /// Replace an advisory with a copy whose first range event moved to
    /// another real version string.
    EditRange(usize, usize),
    /// Same advisory, different severity vector.
    EditSeverity(usize, bool),
    /// Give an advisory an alias of another one: merges their groups.
    AddAlias(usize, usize),
    Withdraw(usize),
    RemoveAdvisory(usize),
    PutSbom(usize, u64),
    RemoveSbom(usize),
    PutVex(usize, Vec<(usize, usize, u8, u8)>),
    RemoveVex(usize),
    /// Label an artifact `team=<t>` and set its runtime state.
    PutMetadata(usize, u8, u8),
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<usize>().prop_map(Op::PutAdvisory),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(a, v)| Op::EditRange(a, v)),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(a, c)| Op::EditSeverity(a, c)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::AddAlias(a, b)),
        1 => any::<usize>().prop_map(Op::Withdraw),
        1 => any::<usize>().prop_map(Op::RemoveAdvisory),
        4 => (0usize..6, any::<u64>()).prop_map(|(i, s)| Op::PutSbom(i, s)),
        1 => (0usize..6).prop_map(Op::RemoveSbom),
        4 => (0usize..3, prop::collection::vec((any::<usize>(), any::<usize>(), 0u8..4, 0u8..3), 1..8))
            .prop_map(|(d, s)| Op::PutVex(d, s)),
        1 => (0usize..3).prop_map(Op::RemoveVex),
        2 => (0usize..6, 0u8..2, 0u8..4).prop_map(|(i, t, r)| Op::PutMetadata(i, t, r)),
        3 => Just(Op::Close),
    ]
}

const SHAPE: FleetShape = FleetShape {
    instances: 6 * 12,
    components_per_artifact: 12,
    tenants: 2,
    seed: 7,
};

fn sbom_variant(pools: &Pools, index: usize, seed: u64) -> Sbom {
    let mut sbom = fleet::artifact(&pools.corpus, &SHAPE, index);
    // Replace one component's version: an SBOM update that changes one thing.
    if !seed.is_multiple_of(3) {
        fleet::bump_component(
            &pools.corpus,
            &mut sbom,
            seed as usize / 3,
            seed as usize / 7,
        );
    }
    sbom
}

/// Per window: the raw deltas and the impact set they accumulate to.
type History = Vec<(Vec<(Row, isize)>, Vec<Finding>)>;

fn run_ops(pools: &Pools, ops: &[Op], config: &EngineConfig) -> History {
    let mut engine = Engine::start(config).expect("engine starts");
    let mut state = Naive::default();
    let mut accumulated = Accumulated::default();
    let mut window = 0u64;
    let mut per_window: History = Vec::new();
    let mut last_metadata = BTreeMap::new();
    let n_adv = pools.advisories.len();
    let mut ops = ops.to_vec();
    ops.push(Op::Close);
    for (seq, op) in ops.into_iter().enumerate() {
        let seq = seq as u64;
        let record = match op {
            Op::PutAdvisory(i) => InputRecord::Advisory {
                advisory: pools.advisories[i % n_adv].clone(),
            },
            Op::EditRange(i, v) => {
                let mut a = pools.advisories[i % n_adv].clone();
                let versions: Vec<&String> = pools
                    .corpus
                    .packages
                    .iter()
                    .flat_map(|p| p.versions.iter())
                    .collect();
                if let Some(ev) = a
                    .affected
                    .iter_mut()
                    .flat_map(|e| e.ranges.iter_mut())
                    .flat_map(|r| r.events.iter_mut())
                    .find(|e| matches!(e, RangeEvent::Fixed(_)))
                {
                    *ev = RangeEvent::Fixed(versions[v % versions.len()].clone());
                }
                InputRecord::Advisory { advisory: a }
            }
            Op::EditSeverity(i, critical) => {
                let mut a = pools.advisories[i % n_adv].clone();
                let vector = if critical {
                    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
                } else {
                    "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"
                };
                a.severity = vec![Severity {
                    kind: "CVSS_V3".into(),
                    vector: vector.into(),
                    computed: formats::cvss::score("CVSS_V3", vector),
                }];
                a.affected.iter_mut().for_each(|e| e.severity.clear());
                InputRecord::Advisory { advisory: a }
            }
            Op::AddAlias(i, j) => {
                let mut a = pools.advisories[i % n_adv].clone();
                let other = &pools.advisories[j % n_adv];
                a.aliases.push(other.id.clone());
                a.aliases.sort();
                a.aliases.dedup();
                InputRecord::Advisory { advisory: a }
            }
            Op::Withdraw(i) => {
                let mut a = pools.advisories[i % n_adv].clone();
                a.withdrawn = Some("2026-01-01T00:00:00Z".into());
                InputRecord::Advisory { advisory: a }
            }
            Op::RemoveAdvisory(i) => InputRecord::AdvisoryRemoved {
                id: pools.advisories[i % n_adv].id.clone(),
            },
            Op::PutSbom(i, s) => {
                let sbom = sbom_variant(pools, i, s);
                InputRecord::Sbom {
                    tenant: recheck::scan::tenant_of(&sbom).to_string(),
                    sbom,
                }
            }
            Op::RemoveSbom(i) => {
                let sbom = fleet::artifact(&pools.corpus, &SHAPE, i);
                InputRecord::ArtifactRemoved {
                    tenant: recheck::scan::tenant_of(&sbom).to_string(),
                    artifact: sbom.artifact.id,
                }
            }
            Op::PutVex(d, specs) => {
                let statements = specs
                    .into_iter()
                    .map(|(name, target, status, ts)| {
                        let sbom = fleet::artifact(&pools.corpus, &SHAPE, target % 6);
                        let component = &sbom.components[(target / 18) % sbom.components.len()];
                        let product = match (target / 6) % 3 {
                            0 => VexProduct::Artifact(sbom.artifact.id.clone()),
                            _ => VexProduct::Purl(component.purl.clone().unwrap_or_default()),
                        };
                        // Mostly name a vulnerability of the targeted component's
                        // package (so statements meet findings), sometimes any name.
                        let relevant: Vec<&str> = pools
                            .advisories
                            .iter()
                            .filter(|a| {
                                a.affected.iter().any(|e| {
                                    Some(&e.name) == component.package.as_ref()
                                        && Some(&e.ecosystem) == component.ecosystem.as_ref()
                                })
                            })
                            .flat_map(|a| a.names())
                            .collect();
                        let vulnerability = match relevant.len() {
                            n if n > 0 && name % 4 != 0 => relevant[name % n].to_string(),
                            _ => pools.names[name % pools.names.len()].clone(),
                        };
                        VexStatement {
                            vulnerability,
                            aliases: vec![],
                            product,
                            subcomponent: None,
                            status: [
                                VexStatus::NotAffected,
                                VexStatus::Affected,
                                VexStatus::Fixed,
                                VexStatus::UnderInvestigation,
                            ][status as usize],
                            justification: Some("component_not_present".into()),
                            impact_statement: None,
                            timestamp: Some(format!("2026-0{}-01T00:00:00Z", ts + 1)),
                            source: format!("doc-{d}"),
                            scope: Scope::Tenant(format!("tenant-{}", (target % 6) % 2)),
                        }
                    })
                    .collect();
                InputRecord::Vex {
                    scope: Scope::Global,
                    document: format!("doc-{d}"),
                    statements,
                }
            }
            Op::RemoveVex(d) => InputRecord::VexRemoved {
                scope: Scope::Global,
                document: format!("doc-{d}"),
            },
            Op::PutMetadata(i, team, runtime) => {
                let sbom = fleet::artifact(&pools.corpus, &SHAPE, i);
                InputRecord::ArtifactMetadata {
                    tenant: recheck::scan::tenant_of(&sbom).to_string(),
                    artifact: sbom.artifact.id,
                    labels: [("Team".to_string(), format!("team-{team}"))].into(),
                    runtime: RUNTIME[runtime as usize],
                }
            }
            Op::Close => {
                window += 1;
                InputRecord::WindowClosed {
                    window,
                    closed_at: None,
                }
            }
        };
        state.apply(seq, &record);
        let closes = matches!(record, InputRecord::WindowClosed { .. });
        let closed = engine
            .apply(&LogEntry { seq, record })
            .expect("engine applies");
        // Mid-window, queries see the last closed window, not the records
        // applied since.
        if !closes && seq.is_multiple_of(3) {
            if let Some((_, last)) = per_window.last() {
                check_queries(&engine, pools, last, &last_metadata);
            }
        }
        if let Some(closed) = closed {
            // The deltas are rows; names and texts (aliases, justifications)
            // are rendered from the current inputs when the set is read.
            accumulated.add(&closed);
            let got = accumulated.findings(&engine);
            assert_eq!(got, state.expected(), "window {window}");
            last_metadata = state.metadata.clone();
            check_queries(&engine, pools, &got, &last_metadata);
            per_window.push((closed.deltas.rows.clone(), got));
        }
    }
    engine.shutdown();
    per_window
}

const RUNTIME: [RuntimeState; 4] = [
    RuntimeState::Unknown,
    RuntimeState::Deployed,
    RuntimeState::Running,
    RuntimeState::Stopped,
];

/// The live queries against the impact set `findings` (as of the last closed
/// window) and the metadata of that window.
fn check_queries(engine: &Engine, pools: &Pools, findings: &[Finding], metadata: &Metadata) {
    let ask = |q: ImpactQuery| engine.query(&q).expect("query answered");
    for name in pools.names.iter().step_by(7).take(6) {
        let expected: Vec<Finding> = findings
            .iter()
            .filter(|f| &f.advisory == name || f.aliases.contains(name))
            .cloned()
            .collect();
        let got = ask(ImpactQuery::Advisory(name.clone())).findings;
        assert_eq!(got, expected, "advisory query {name}");
    }
    let artifacts: std::collections::BTreeSet<(String, String)> = findings
        .iter()
        .map(|f| (f.tenant.clone(), f.artifact.clone()))
        .collect();
    for (tenant, artifact) in artifacts.iter().take(3) {
        let expected: Vec<Finding> = findings
            .iter()
            .filter(|f| &f.tenant == tenant && &f.artifact == artifact)
            .cloned()
            .collect();
        let got = ask(ImpactQuery::Artifact {
            tenant: tenant.clone(),
            artifact: artifact.clone(),
        })
        .findings;
        assert_eq!(got, expected, "artifact query {artifact}");
    }
    if let Some(purl) = findings.first().and_then(|f| f.purl.clone()) {
        let package = findings[0].package.clone();
        let expected: Vec<(String, String)> = findings
            .iter()
            .filter(|f| f.package == package && f.ecosystem == findings[0].ecosystem)
            .map(|f| (f.tenant.clone(), f.artifact.clone()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(
            ask(ImpactQuery::Purl(purl)).artifacts,
            expected,
            "purl query"
        );
    }
    for tenant in ["tenant-0", "tenant-1"] {
        for team in ["team-0", "team-1"] {
            let expected: Vec<(String, String)> = artifacts
                .iter()
                .filter(|a| {
                    a.0 == tenant
                        && metadata
                            .get(*a)
                            .is_some_and(|m| m.0.get("Team").map(String::as_str) == Some(team))
                })
                .cloned()
                .collect();
            let got = ask(ImpactQuery::Label {
                tenant: tenant.into(),
                key: "team".into(),
                value: team.into(),
            })
            .artifacts;
            assert_eq!(got, expected, "label query {tenant} {team}");
        }
        let expected: Vec<(String, String)> = artifacts
            .iter()
            .filter(|a| {
                a.0 == tenant
                    && metadata
                        .get(*a)
                        .is_some_and(|m| m.1 == RuntimeState::Running)
            })
            .cloned()
            .collect();
        let got = ask(ImpactQuery::Runtime {
            tenant: tenant.into(),
            state: RuntimeState::Running,
        })
        .artifacts;
        assert_eq!(got, expected, "runtime query {tenant}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn engine_equals_full_recomputation_after_every_window(ops in prop::collection::vec(op(), 1..30)) {
        let pools = pools();
        run_ops(&pools, &ops, &EngineConfig::default());
    }
}

/// Identical delta streams (not just identical end states) from 1 and 2
/// workers, and from two runs of the same history.
#[test]
fn two_workers_agree_with_one() {
    let pools = pools();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut affected, mut suppressed) = (0usize, 0usize);
    for _ in 0..16 {
        let ops = prop::collection::vec(op(), 10..40)
            .new_tree(&mut runner)
            .expect("ops")
            .current();
        let one = run_ops(&pools, &ops, &EngineConfig::default());
        let two = run_ops(
            &pools,
            &ops,
            &EngineConfig {
                workers: 2,
                ..EngineConfig::default()
            },
        );
        assert_eq!(one, two);
        assert_eq!(
            one,
            run_ops(&pools, &ops, &EngineConfig::default()),
            "replay"
        );
        for (_, findings) in &one {
            affected += findings
                .iter()
                .filter(|f| f.status == FindingStatus::Affected)
                .count();
            suppressed += findings
                .iter()
                .filter(|f| f.status == FindingStatus::Suppressed)
                .count();
        }
    }
    println!("findings seen across windows: {affected} affected, {suppressed} suppressed");
    assert!(
        affected > 0 && suppressed > 0,
        "the generated histories exercise both outcomes"
    );
}
