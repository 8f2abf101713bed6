//! The incremental engine against the reference matcher on the shared real
//! corpus, unaltered: real CycloneDX/SPDX SBOMs, real OSV advisories (PyPI
//! and crates.io), real OpenVEX/CSAF/CycloneDX VEX documents, plus the
//! bundled samples (real advisories, SBOMs naming affected versions). Random
//! sequences put, replace, withdraw and remove them; after every window the
//! accumulated deltas must equal `scan` over the documents then present.
//!
//! Real VEX documents rarely name what real SBOMs contain, so statements
//! aimed at the corpus's own findings (real purls, real CVE names) are mixed
//! in, with every status, so suppression is exercised on real data too.

mod common;

use std::path::Path;

use proptest::prelude::*;

use common::engine::{Accumulated, Naive};
use recheck::engine::record::{InputRecord, LogEntry};
use recheck::engine::{Engine, EngineConfig, WindowDeltas};
use recheck::formats::{self, Sniffed};
use recheck::model::{Advisory, FindingStatus, Sbom, Scope, VexProduct, VexStatement, VexStatus};
use recheck::scan::{scan, tenant_of};

struct Corpus {
    advisories: Vec<Advisory>,
    sboms: Vec<Sbom>,
    vex: Vec<(String, Vec<VexStatement>)>,
    /// Statements about findings the full corpus produces.
    aimed: Vec<VexStatement>,
}

/// The corpus's documents under `top`, then the bundled samples' (whose
/// SBOMs name versions the corpus's advisories affect).
fn documents(data: &Path, top: &str, samples: &str) -> Vec<(String, Vec<u8>)> {
    let bundled = recheck::samples::bundled_dir();
    common::json_files_skipping(&data.join(top), &["schema", "invalid"])
        .into_iter()
        .chain(common::json_files(&bundled.join(samples)))
        .map(|p| {
            let rel = p
                .strip_prefix(data)
                .or_else(|_| p.strip_prefix(&bundled))
                .unwrap_or(&p)
                .display()
                .to_string();
            let bytes = common::read(&p);
            (rel, bytes)
        })
        .collect()
}

fn corpus(data: &Path) -> Corpus {
    let advisories: Vec<Advisory> = documents(data, "osv", "advisories")
        .iter()
        .map(|(rel, bytes)| formats::osv::parse_advisory(rel, bytes).expect("OSV parses"))
        .collect();
    // Alternate the two tenants so tenant-scoped keys are exercised.
    let sboms: Vec<Sbom> = documents(data, "sbom", "sboms")
        .iter()
        .enumerate()
        .map(|(i, (rel, bytes))| {
            let scope = Scope::Tenant(format!("tenant-{}", i % 2));
            formats::parse_sbom(rel, bytes, scope).expect("SBOM parses")
        })
        .collect();
    let vex: Vec<(String, Vec<VexStatement>)> = documents(data, "vex", "vex")
        .iter()
        .filter(|(rel, bytes)| {
            matches!(
                formats::sniff(rel, bytes),
                Ok(Sniffed::OpenVex | Sniffed::Csaf | Sniffed::CycloneDx)
            )
        })
        .map(|(rel, bytes)| {
            let statements = formats::parse_vex(rel, bytes, Scope::Global).expect("VEX parses");
            (rel.clone(), statements)
        })
        .collect();
    let full = scan(&advisories, &sboms, &[]);
    let aimed: Vec<VexStatement> = full
        .findings
        .iter()
        .enumerate()
        .map(|(i, f)| VexStatement {
            vulnerability: f.vulnerability.clone(),
            aliases: vec![],
            product: match i % 2 {
                0 => VexProduct::Purl(f.purl.clone().unwrap_or_default()),
                _ => VexProduct::Artifact(f.artifact.clone()),
            },
            subcomponent: None,
            status: VexStatus::NotAffected,
            justification: Some("vulnerable_code_not_in_execute_path".into()),
            impact_statement: None,
            timestamp: Some("2026-06-01T00:00:00Z".into()),
            source: "aimed".into(),
            scope: Scope::Tenant(f.tenant.clone()),
        })
        .collect();
    println!(
        "real corpus: {} advisories, {} SBOMs, {} VEX documents, {} findings in all",
        advisories.len(),
        sboms.len(),
        vex.len(),
        full.findings.len()
    );
    assert!(
        !full.findings.is_empty(),
        "the real corpus must produce findings"
    );
    Corpus {
        advisories,
        sboms,
        vex,
        aimed,
    }
}

#[derive(Debug, Clone)]
enum Op {
    PutSbom(usize),
    RemoveSbom(usize),
    PutAdvisory(usize),
    Withdraw(usize),
    RemoveAdvisory(usize),
    PutVex(usize),
    RemoveVex(usize),
    /// An aimed statement with a status, in its own document.
    Aim(usize, u8),
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<usize>().prop_map(Op::PutSbom),
        1 => any::<usize>().prop_map(Op::RemoveSbom),
        2 => any::<usize>().prop_map(Op::PutAdvisory),
        1 => any::<usize>().prop_map(Op::Withdraw),
        1 => any::<usize>().prop_map(Op::RemoveAdvisory),
        1 => any::<usize>().prop_map(Op::PutVex),
        1 => any::<usize>().prop_map(Op::RemoveVex),
        3 => (any::<usize>(), 0u8..4).prop_map(|(i, s)| Op::Aim(i, s)),
        3 => Just(Op::Close),
    ]
}

const STATUSES: [VexStatus; 4] = [
    VexStatus::NotAffected,
    VexStatus::Affected,
    VexStatus::Fixed,
    VexStatus::UnderInvestigation,
];

/// Window 1 loads every advisory and half the SBOMs, so later steps change
/// a populated state; then the ops run. Returns the findings seen (affected,
/// suppressed) and every window's raw deltas.
fn run(corpus: &Corpus, ops: &[Op], config: &EngineConfig) -> (usize, usize, Vec<WindowDeltas>) {
    let mut engine = Engine::start(config).expect("engine starts");
    let mut naive = Naive::default();
    let mut accumulated = Accumulated::default();
    let (mut affected, mut suppressed) = (0, 0);
    let mut deltas = Vec::new();
    let mut records: Vec<InputRecord> = corpus
        .advisories
        .iter()
        .map(|a| InputRecord::Advisory {
            advisory: a.clone(),
        })
        .collect();
    records.extend(corpus.sboms.iter().step_by(2).map(|s| InputRecord::Sbom {
        tenant: tenant_of(s).to_string(),
        sbom: s.clone(),
    }));
    let mut window = 1;
    records.push(InputRecord::WindowClosed {
        window,
        closed_at: None,
    });
    let (n_adv, n_sbom, n_vex, n_aim) = (
        corpus.advisories.len(),
        corpus.sboms.len(),
        corpus.vex.len(),
        corpus.aimed.len(),
    );
    for op in ops.iter().cloned().chain([Op::Close]) {
        records.push(match op {
            Op::PutSbom(i) => {
                let s = &corpus.sboms[i % n_sbom];
                InputRecord::Sbom {
                    tenant: tenant_of(s).to_string(),
                    sbom: s.clone(),
                }
            }
            Op::RemoveSbom(i) => {
                let s = &corpus.sboms[i % n_sbom];
                InputRecord::ArtifactRemoved {
                    tenant: tenant_of(s).to_string(),
                    artifact: s.artifact.id.clone(),
                }
            }
            Op::PutAdvisory(i) => InputRecord::Advisory {
                advisory: corpus.advisories[i % n_adv].clone(),
            },
            Op::Withdraw(i) => {
                let mut a = corpus.advisories[i % n_adv].clone();
                a.withdrawn = Some("2026-11-30T00:00:00Z".into());
                InputRecord::Advisory { advisory: a }
            }
            Op::RemoveAdvisory(i) => InputRecord::AdvisoryRemoved {
                id: corpus.advisories[i % n_adv].id.clone(),
            },
            Op::PutVex(i) => {
                let (document, statements) = &corpus.vex[i % n_vex];
                InputRecord::Vex {
                    scope: Scope::Global,
                    document: document.clone(),
                    statements: statements.clone(),
                }
            }
            Op::RemoveVex(i) => InputRecord::VexRemoved {
                scope: Scope::Global,
                document: corpus.vex[i % n_vex].0.clone(),
            },
            Op::Aim(i, status) if n_aim > 0 => {
                let mut st = corpus.aimed[i % n_aim].clone();
                st.status = STATUSES[status as usize];
                InputRecord::Vex {
                    scope: Scope::Global,
                    document: format!("aimed-{}", i % n_aim),
                    statements: vec![st],
                }
            }
            Op::Aim(..) | Op::Close => {
                window += 1;
                InputRecord::WindowClosed {
                    window,
                    closed_at: None,
                }
            }
        });
    }
    for (seq, record) in records.into_iter().enumerate() {
        let seq = seq as u64 + 1;
        naive.apply(seq, &record);
        if let Some(closed) = engine
            .apply(&LogEntry { seq, record })
            .expect("engine applies")
        {
            accumulated.add(&closed);
            let got = accumulated.findings(&engine);
            assert_eq!(got, naive.expected(), "window {}", closed.deltas.window);
            affected += got
                .iter()
                .filter(|f| f.status == FindingStatus::Affected)
                .count();
            suppressed += got
                .iter()
                .filter(|f| f.status == FindingStatus::Suppressed)
                .count();
            deltas.push(closed.deltas);
        }
    }
    engine.shutdown();
    (affected, suppressed, deltas)
}

#[test]
fn engine_equals_full_recomputation_on_real_documents() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let corpus = corpus(&data);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 12,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let seen = std::cell::Cell::new((0, 0));
    let strategy = prop::collection::vec(op(), 1..30);
    runner
        .run(&strategy, |ops| {
            let (a, s, _) = run(&corpus, &ops, &EngineConfig::default());
            let (total_a, total_s) = seen.get();
            seen.set((total_a + a, total_s + s));
            Ok(())
        })
        .expect("engine equals scan after every window");
    let (affected, suppressed) = seen.get();
    println!("findings seen across windows: {affected} affected, {suppressed} suppressed");
    assert!(
        affected > 0 && suppressed > 0,
        "the histories exercise both outcomes"
    );
}

#[test]
fn two_workers_agree_on_real_documents() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let corpus = corpus(&data);
    let ops: Vec<Op> = (0..40)
        .map(|i| match i % 5 {
            0 => Op::PutSbom(i),
            1 => Op::Aim(i, (i % 4) as u8),
            2 => Op::Withdraw(i * 7),
            3 => Op::PutVex(i),
            _ => Op::Close,
        })
        .collect();
    let one = run(&corpus, &ops, &EngineConfig::default());
    let two = run(
        &corpus,
        &ops,
        &EngineConfig {
            workers: 2,
            ..EngineConfig::default()
        },
    );
    assert!(one.2.len() > 5, "several windows ran");
    assert_eq!(one.2, two.2, "identical delta streams");
}
