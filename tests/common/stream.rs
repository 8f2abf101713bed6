//! A real-data input stream for the input-stream and crash tests: a pool of
//! real documents (the bundled samples, whose SBOMs name versions their
//! advisories affect, plus advisories, SBOMs and VEX documents from the shared
//! corpus) and a seeded sequence of directory changes over it — documents
//! added, edited (an advisory withdrawn or reinstated) and deleted — the way a
//! cron job's pull changes a checkout.

// Each test binary that includes this uses only some of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use recheck::formats;
use recheck::model::{
    Advisory, Direction, Finding, ImpactFinding, JobReason, LedgerPayload, RecheckJob, Sbom, Scope,
    VexStatement,
};
use recheck::store::Store;

/// The folders of a watched directory, one per document kind.
pub const ADVISORIES: &str = "advisories";
pub const SBOMS: &str = "sboms";
pub const VEX: &str = "vex";

/// splitmix64: a seeded, dependency-free generator.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Documents of one kind: (file name, bytes).
pub type Docs = Vec<(String, Vec<u8>)>;

/// The pool of real documents a stream draws from.
pub struct Pool {
    /// Bundled sample advisories first (they match the sample SBOMs), then
    /// shared-corpus ones.
    pub advisories: Docs,
    /// How many of `advisories` are the samples.
    pub sample_advisories: usize,
    pub sboms: Docs,
    pub vex: Docs,
}

fn read_dir_json(dir: &Path) -> Docs {
    super::json_files(dir)
        .into_iter()
        .filter(|p| p.parent() == Some(dir))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            (name, super::read(&p))
        })
        .collect()
}

/// The pool: the samples, every `stride`-th shared OSV advisory (PyPI and
/// crates.io, skipping ids the samples hold) and the shared SBOMs and OpenVEX
/// documents that parse.
pub fn pool(data: &Path, stride: usize) -> Pool {
    let samples = recheck::samples::bundled_dir();
    let mut advisories = read_dir_json(&samples.join("advisories"));
    let sample_advisories = advisories.len();
    for eco in ["pypi", "crates"] {
        for (i, doc) in read_dir_json(&data.join("osv").join(eco))
            .into_iter()
            .enumerate()
        {
            if i % stride == 0 && !advisories.iter().any(|(n, _)| *n == doc.0) {
                advisories.push(doc);
            }
        }
    }
    let scope = Scope::Tenant("t".into());
    let mut sboms = read_dir_json(&samples.join("sboms"));
    for dir in [
        "sbom/cyclonedx/bom-examples",
        "sbom/spdx/spdx-examples",
        "sbom/spdx/in-the-wild",
    ] {
        for (name, bytes) in read_dir_json(&data.join(dir)) {
            if bytes.len() < 1_000_000 && formats::parse_sbom(&name, &bytes, scope.clone()).is_ok()
            {
                sboms.push((name, bytes));
            }
        }
    }
    let mut vex = read_dir_json(&samples.join("vex"));
    for (name, bytes) in read_dir_json(&data.join("vex/openvex")) {
        if formats::parse_vex(&name, &bytes, scope.clone()).is_ok_and(|s| !s.is_empty()) {
            vex.push((name, bytes));
        }
    }
    Pool {
        advisories,
        sample_advisories,
        sboms,
        vex,
    }
}

/// One change to the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put(String, Vec<u8>),
    Delete(String),
}

impl Op {
    pub fn apply(&self, dir: &Path) {
        match self {
            Op::Put(rel, bytes) => {
                let path = dir.join(rel);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                // Write beside and rename, as a checkout update does.
                let tmp = dir.join(format!(".{}.tmp", rel.replace('/', "_")));
                std::fs::write(&tmp, bytes).unwrap();
                std::fs::rename(&tmp, &path).unwrap();
            }
            Op::Delete(rel) => std::fs::remove_file(dir.join(rel)).unwrap(),
        }
    }
}

/// An advisory's JSON withdrawn (or reinstated, `withdrawn: None`).
pub fn with_withdrawn(bytes: &[u8], withdrawn: Option<&str>) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    let obj = v.as_object_mut().unwrap();
    match withdrawn {
        Some(at) => {
            obj.insert("withdrawn".into(), at.into());
        }
        None => {
            obj.remove("withdrawn");
        }
    }
    serde_json::to_vec_pretty(&v).unwrap()
}

/// `n` seeded steps of changes over `pool`: the first puts the sample SBOMs,
/// two corpus SBOMs and a third of the advisories; every later one makes one
/// to three random changes (add, withdraw, reinstate or delete an advisory;
/// add or delete an SBOM or a VEX document), biased towards the sample
/// documents so most windows move findings.
pub fn steps(pool: &Pool, seed: u64, n: usize) -> Vec<Vec<Op>> {
    let mut rng = Rng::new(seed);
    // rel path → current bytes
    let mut present: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let adv = |i: usize| format!("{ADVISORIES}/{}", pool.advisories[i].0);
    let sbom = |i: usize| format!("{SBOMS}/{}", pool.sboms[i].0);
    let vex = |i: usize| format!("{VEX}/{}", pool.vex[i].0);
    let mut out = Vec::new();
    let mut first = Vec::new();
    for i in 0..pool.sboms.len().min(5) {
        first.push(Op::Put(sbom(i), pool.sboms[i].1.clone()));
    }
    for i in (0..pool.advisories.len()).step_by(3) {
        first.push(Op::Put(adv(i), pool.advisories[i].1.clone()));
    }
    for op in &first {
        if let Op::Put(rel, bytes) = op {
            present.insert(rel.clone(), bytes.clone());
        }
    }
    out.push(first);
    let mut stamp = 0;
    while out.len() < n {
        let mut ops = Vec::new();
        for _ in 0..1 + rng.below(3) {
            let i = if rng.below(2) == 0 {
                rng.below(pool.sample_advisories)
            } else {
                rng.below(pool.advisories.len())
            };
            let op = match rng.below(7) {
                0 | 1 => {
                    let rel = adv(i);
                    match present.get(&rel) {
                        None => Op::Put(rel, pool.advisories[i].1.clone()),
                        Some(now) if now.windows(9).any(|w| w == b"withdrawn") => {
                            Op::Put(rel, with_withdrawn(now, None))
                        }
                        Some(now) => {
                            stamp += 1;
                            let at = format!("2026-11-{:02}T00:00:00Z", 1 + stamp % 28);
                            Op::Put(rel, with_withdrawn(now, Some(&at)))
                        }
                    }
                }
                2 => {
                    let rel = adv(i);
                    if present.contains_key(&rel) {
                        Op::Delete(rel)
                    } else {
                        Op::Put(rel, pool.advisories[i].1.clone())
                    }
                }
                3 | 4 => {
                    let j = rng.below(pool.sboms.len());
                    let rel = sbom(j);
                    if present.contains_key(&rel) {
                        Op::Delete(rel)
                    } else {
                        Op::Put(rel, pool.sboms[j].1.clone())
                    }
                }
                _ => {
                    let j = rng.below(pool.vex.len());
                    let rel = vex(j);
                    if present.contains_key(&rel) {
                        Op::Delete(rel)
                    } else {
                        Op::Put(rel, pool.vex[j].1.clone())
                    }
                }
            };
            if ops.iter().any(|o: &Op| rel_of(o) == rel_of(&op)) {
                continue;
            }
            match &op {
                Op::Put(rel, bytes) => {
                    present.insert(rel.clone(), bytes.clone());
                }
                Op::Delete(rel) => {
                    present.remove(rel);
                }
            }
            ops.push(op);
        }
        out.push(ops);
    }
    out
}

fn rel_of(op: &Op) -> &str {
    match op {
        Op::Put(rel, _) | Op::Delete(rel) => rel,
    }
}

/// What the reference matcher (`scan`) finds over the documents in `dir`
/// (SBOMs and VEX owned by `tenant`), as impact rows with their counts: what
/// the ledger's deltas must add up to.
pub fn expected_impact(dir: &Path, tenant: &str) -> BTreeMap<ImpactFinding, i64> {
    let scope = Scope::Tenant(tenant.to_string());
    let load = |kind: &str| {
        let d = dir.join(kind);
        if d.is_dir() {
            vec![d]
        } else {
            Vec::new()
        }
    };
    let advisories: Vec<Advisory> =
        formats::load::load(&load(ADVISORIES), formats::osv::parse_advisory)
            .items
            .into_iter()
            .map(|(_, a)| a)
            .collect();
    let sboms: Vec<Sbom> = formats::load::load(&load(SBOMS), |name, bytes| {
        formats::parse_sbom(name, bytes, scope.clone())
    })
    .items
    .into_iter()
    .map(|(_, s)| s)
    .collect();
    let vex: Vec<VexStatement> = formats::load::load(&load(VEX), |name, bytes| {
        formats::parse_vex(name, bytes, scope.clone())
    })
    .items
    .into_iter()
    .flat_map(|(_, s)| s)
    .collect();
    let findings: Vec<Finding> = recheck::scan::scan(&advisories, &sboms, &vex).findings;
    let mut out = BTreeMap::new();
    for f in &findings {
        *out.entry(ImpactFinding::from(f)).or_default() += 1;
    }
    out
}

/// Every ledger entry's payload, in order.
pub async fn ledger_payloads(store: &dyn Store) -> Vec<LedgerPayload> {
    store
        .read_ledger(0, 1_000_000)
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.payload).unwrap())
        .collect()
}

/// The impact rows the ledger's deltas add up to (rows that net to zero
/// dropped).
pub fn net_impact(payloads: &[LedgerPayload]) -> BTreeMap<ImpactFinding, i64> {
    let mut net: BTreeMap<ImpactFinding, i64> = BTreeMap::new();
    for d in payloads.iter().flat_map(|p| &p.deltas) {
        *net.entry(d.finding.clone()).or_default() += d.diff;
    }
    net.retain(|_, n| *n != 0);
    net
}

/// Every delta is covered by exactly one job (its artifact's job of its
/// window, whose reasons name it), every job's reasons are exactly its
/// artifact's deltas of that window, and no job id appears twice.
pub fn check_coverage(payloads: &[LedgerPayload], jobs: &[RecheckJob]) {
    let ids: BTreeSet<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids.len(), jobs.len(), "a job id appears twice in the store");
    for p in payloads {
        let window: Vec<&RecheckJob> = jobs.iter().filter(|j| j.window == p.window).collect();
        let mut expected: BTreeMap<(&str, &str), BTreeSet<JobReason>> = BTreeMap::new();
        for d in &p.deltas {
            let f = &d.finding;
            let covering: Vec<&&RecheckJob> = window
                .iter()
                .filter(|j| j.tenant == f.tenant && j.artifact == f.artifact)
                .collect();
            assert_eq!(covering.len(), 1, "window {}: delta {d:?}", p.window);
            let reason = JobReason {
                advisory: f.advisory.clone(),
                vulnerability: f.vulnerability.clone(),
                status: f.status,
                direction: Direction::of_diff(d.diff),
            };
            assert!(covering[0].reasons.contains(&reason), "{reason:?}");
            expected
                .entry((&f.tenant, &f.artifact))
                .or_default()
                .insert(reason);
        }
        assert_eq!(
            window.len(),
            expected.len(),
            "window {}: one job per artifact",
            p.window
        );
        for job in window {
            let reasons = &expected[&(job.tenant.as_str(), job.artifact.as_str())];
            assert_eq!(job.reasons, reasons.iter().cloned().collect::<Vec<_>>());
        }
    }
    let windows: BTreeSet<u64> = payloads.iter().map(|p| p.window).collect();
    assert!(
        jobs.iter().all(|j| windows.contains(&j.window)),
        "a job of a window the ledger lacks"
    );
}
