//! Synthetic but real-shaped fleets for benchmarks and property tests.
//!
//! Package names and version strings are drawn from real documents (the
//! advisory corpus: every `versions[]` entry and range event; the SBOM corpus:
//! every component with a purl), so generated components go through exactly
//! the version parsing and range code production uses. Only the fleet's shape
//! (how many artifacts, which package at which version where) is synthetic,
//! seeded and reproducible. Benchmarks say so in their output.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Advisory, Artifact, Component, RangeEvent, Sbom, SbomFormat, Scope};

/// A small deterministic PRNG (SplitMix64): the same seed gives the same fleet
/// on every machine and every version of this crate's dependencies.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) % (n.max(1) as u64)) as usize
    }

    /// Skewed towards small indices: a few hot packages appear everywhere,
    /// as `openssl` or `requests` do in real fleets.
    pub fn skewed(&mut self, n: usize) -> usize {
        let a = self.below(n);
        let b = self.below(n);
        a.min(b)
    }
}

/// One package that can appear in a generated SBOM, with the real versions
/// it may carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusPackage {
    pub ecosystem: String,
    /// OSV package name (normalized).
    pub package: String,
    /// The purl without version, e.g. `pkg:pypi/django`.
    pub purl_base: String,
    pub versions: Vec<String>,
    /// Whether some advisory covers this package.
    pub advised: bool,
}

/// Everything a fleet is drawn from.
#[derive(Debug, Clone, Default)]
pub struct Corpus {
    pub packages: Vec<CorpusPackage>,
}

fn purl_base_for(ecosystem: &str, package: &str) -> Option<String> {
    match ecosystem {
        "PyPI" => Some(format!("pkg:pypi/{package}")),
        "crates.io" => Some(format!("pkg:cargo/{package}")),
        _ => None,
    }
}

impl Corpus {
    /// Packages and versions from real advisories (packages whose purl we can
    /// write: PyPI and crates.io) and from real SBOM components with purls.
    pub fn from_documents(advisories: &[Advisory], sboms: &[Sbom]) -> Corpus {
        let mut map: BTreeMap<(String, String), (String, BTreeSet<String>, bool)> = BTreeMap::new();
        for adv in advisories {
            for entry in &adv.affected {
                let Some(base) = purl_base_for(&entry.ecosystem, &entry.name) else {
                    continue;
                };
                let slot = map
                    .entry((entry.ecosystem.clone(), entry.name.clone()))
                    .or_insert_with(|| (base, BTreeSet::new(), true));
                slot.2 = true;
                slot.1.extend(entry.versions.iter().cloned());
                for r in &entry.ranges {
                    for ev in &r.events {
                        let v = ev.version();
                        if !(matches!(ev, RangeEvent::Introduced(_)) && v == "0") {
                            slot.1.insert(v.to_string());
                        }
                    }
                }
            }
        }
        for sbom in sboms {
            for c in &sbom.components {
                let (Some(eco), Some(pkg), Some(v), Some(purl)) =
                    (&c.ecosystem, &c.package, &c.version, &c.purl)
                else {
                    continue;
                };
                let base = purl.split('@').next().unwrap_or(purl).to_string();
                if base.contains('?') || base.contains('#') {
                    continue;
                }
                map.entry((eco.clone(), pkg.clone()))
                    .or_insert_with(|| (base, BTreeSet::new(), false))
                    .1
                    .insert(v.clone());
            }
        }
        Corpus {
            packages: map
                .into_iter()
                .filter(|(_, (_, vs, _))| !vs.is_empty())
                .map(
                    |((ecosystem, package), (purl_base, versions, advised))| CorpusPackage {
                        ecosystem,
                        package,
                        purl_base,
                        versions: versions.into_iter().collect(),
                        advised,
                    },
                )
                .collect(),
        }
    }

    pub fn version_count(&self) -> usize {
        self.packages.iter().map(|p| p.versions.len()).sum()
    }
}

/// Shape of a generated fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetShape {
    pub instances: usize,
    pub components_per_artifact: usize,
    pub tenants: usize,
    pub seed: u64,
}

impl FleetShape {
    pub fn artifacts(&self) -> usize {
        self.instances.div_ceil(self.components_per_artifact.max(1))
    }
}

/// The component for `package` at `version`, as an SBOM parser would produce it.
pub fn component(package: &CorpusPackage, version: &str) -> Component {
    let purl = format!("{}@{version}", package.purl_base);
    Component {
        reference: Some(purl.clone()),
        name: package.package.clone(),
        version: Some(version.to_string()),
        purl: Some(purl),
        ecosystem: Some(package.ecosystem.clone()),
        package: Some(package.package.clone()),
        hashes: BTreeMap::new(),
    }
}

/// The same SBOM with component number `index` (modulo the count) moved to
/// the `version`-th (modulo) real version of its package: the smallest SBOM
/// update.
pub fn bump_component(corpus: &Corpus, sbom: &mut Sbom, index: usize, version: usize) {
    if sbom.components.is_empty() {
        return;
    }
    let i = index % sbom.components.len();
    let c = &sbom.components[i];
    let Some(p) = corpus.packages.iter().find(|p| {
        Some(&p.package) == c.package.as_ref() && Some(&p.ecosystem) == c.ecosystem.as_ref()
    }) else {
        return;
    };
    sbom.components[i] = component(p, &p.versions[version % p.versions.len()]);
    sbom.components.sort();
}

/// Artifact number `index` of the fleet: deterministic in (shape, index), so
/// artifacts can be generated lazily, in any order, or regenerated to replace.
pub fn artifact(corpus: &Corpus, shape: &FleetShape, index: usize) -> Sbom {
    let mut rng = SplitMix64::new(shape.seed ^ (index as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let name = format!("fleet/app-{index:08}");
    let digest = format!("sha256:{:016x}{:016x}{:032x}", shape.seed, index, 0u8);
    let tenant = format!("tenant-{}", index % shape.tenants.max(1));
    let start = index * shape.components_per_artifact;
    let count = shape
        .components_per_artifact
        .min(shape.instances.saturating_sub(start));
    let mut components = Vec::with_capacity(count);
    let mut used = BTreeSet::new();
    let n = corpus.packages.len();
    while components.len() < count && used.len() < n {
        let p = &corpus.packages[rng.skewed(n)];
        if !used.insert((&p.ecosystem, &p.package)) {
            continue;
        }
        let v = &p.versions[rng.below(p.versions.len())];
        components.push(component(p, v));
    }
    components.sort();
    Sbom {
        format: SbomFormat::CycloneDx,
        spec_version: "1.5".into(),
        artifact: Artifact {
            id: digest.clone(),
            name: Some(name),
            version: Some("1.0.0".into()),
            digest: Some(digest),
            purl: None,
            references: Vec::new(),
        },
        scope: Scope::Tenant(tenant),
        components,
    }
}
