//! The straightforward reference matcher behind `recheck scan`.
//!
//! It recomputes everything from scratch with plain maps: index advisory
//! entries by `(ecosystem, package)`, evaluate each component version, group
//! advisories into vulnerabilities, then let the latest applicable VEX
//! statement decide suppression. It is deliberately simple: the incremental
//! engine is tested (property tests) and benchmarked against it.

pub mod product;
pub mod render;
pub mod vulnerability;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::model::{
    Advisory, Artifact, Component, Finding, FindingStatus, Sbom, Scope, VexStatement,
    DEFAULT_TENANT,
};
use crate::versions::{CompiledAffected, RangeMatch};
pub use vulnerability::VulnerabilityIndex;

/// Tenant an SBOM's artifact belongs to.
pub fn tenant_of(sbom: &Sbom) -> &str {
    match &sbom.scope {
        Scope::Tenant(t) => t,
        Scope::Global => DEFAULT_TENANT,
    }
}

/// Identity of a component inside its artifact: its purl, else name@version.
pub fn component_identity(component: &Component) -> String {
    match (&component.purl, &component.version) {
        (Some(p), _) => p.clone(),
        (None, Some(v)) => format!("{}@{v}", component.name),
        (None, None) => component.name.clone(),
    }
}

/// Order of a VEX statement for "latest wins": its timestamp (UTC
/// nanoseconds; statements without one are oldest), then its position in the
/// input, later wins.
pub fn statement_order(statement: &VexStatement, position: u64) -> (i64, u64) {
    let ts = statement
        .timestamp
        .as_deref()
        .and_then(parse_timestamp)
        .unwrap_or(i64::MIN);
    (ts, position)
}

/// RFC 3339 (or a bare date) → UTC nanoseconds since the epoch.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return t.timestamp_nanos_opt();
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return t.and_utc().timestamp_nanos_opt();
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|t| t.and_utc().timestamp_nanos_opt())
}

/// Counters describing one scan, for summaries and for spotting data the
/// matcher could not use.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ScanStats {
    pub advisories: usize,
    pub withdrawn: usize,
    pub affected_entries: usize,
    /// Entries in ecosystems without a known version order: matched only by
    /// their explicit `versions[]`.
    pub unordered_entries: BTreeMap<String, usize>,
    pub unusable_ranges: usize,
    pub artifacts: usize,
    pub components: usize,
    /// Components with ecosystem, package and version: the ones that can match.
    pub matchable_components: usize,
    pub vex_statements: usize,
    pub vulnerabilities: usize,
    pub affected: usize,
    pub suppressed: usize,
}

#[derive(Debug, Clone)]
pub struct ScanReport {
    /// Sorted, unique.
    pub findings: Vec<Finding>,
    pub stats: ScanStats,
}

/// The reference matcher's indexes over advisories and VEX statements, built
/// once and then applied to any number of SBOMs.
pub struct Matcher<'a> {
    vulns: VulnerabilityIndex,
    /// (ecosystem, package) → [(advisory, compiled entry)], entries in order.
    by_package: BTreeMap<(&'a str, &'a str), Vec<(&'a Advisory, CompiledAffected)>>,
    /// product key → (statement position, subcomponent key).
    by_key: BTreeMap<String, Vec<(usize, Option<String>)>>,
    vex: &'a [VexStatement],
    orders: Vec<(i64, u64)>,
    /// Counters about the advisories and statements.
    pub stats: ScanStats,
}

impl<'a> Matcher<'a> {
    /// `vex` is in input order: later statements win ties on timestamp.
    pub fn new(advisories: &'a [Advisory], vex: &'a [VexStatement]) -> Matcher<'a> {
        let mut stats = ScanStats {
            advisories: advisories.len(),
            vex_statements: vex.len(),
            ..ScanStats::default()
        };
        let live: Vec<&Advisory> = advisories
            .iter()
            .filter(|a| {
                let withdrawn = a.withdrawn.is_some();
                stats.withdrawn += usize::from(withdrawn);
                !withdrawn
            })
            .collect();
        let vulns = VulnerabilityIndex::build(live.iter().copied());
        stats.vulnerabilities = vulns.len();
        let mut by_package: BTreeMap<(&str, &str), Vec<(&Advisory, CompiledAffected)>> =
            BTreeMap::new();
        for adv in live {
            for (i, entry) in adv.affected.iter().enumerate() {
                stats.affected_entries += 1;
                let compiled = CompiledAffected::new(entry, i);
                if !compiled.is_ordered() {
                    *stats
                        .unordered_entries
                        .entry(entry.ecosystem.clone())
                        .or_default() += 1;
                }
                stats.unusable_ranges += compiled.unusable_ranges();
                by_package
                    .entry((entry.ecosystem.as_str(), entry.name.as_str()))
                    .or_default()
                    .push((adv, compiled));
            }
        }
        let mut by_key: BTreeMap<String, Vec<(usize, Option<String>)>> = BTreeMap::new();
        for (i, st) in vex.iter().enumerate() {
            let (product, sub) = product::statement_keys(st);
            by_key.entry(product).or_default().push((i, sub));
        }
        let orders = vex
            .iter()
            .enumerate()
            .map(|(i, s)| statement_order(s, i as u64))
            .collect();
        Matcher {
            vulns,
            by_package,
            by_key,
            vex,
            orders,
            stats,
        }
    }

    /// Add the findings of one SBOM to `findings`, counting into `stats`.
    pub fn scan_sbom(&self, sbom: &Sbom, stats: &mut ScanStats, findings: &mut BTreeSet<Finding>) {
        let tenant = tenant_of(sbom);
        let artifact_keys = product::artifact_keys(&sbom.artifact, tenant);
        let mut seen = BTreeSet::new();
        for component in &sbom.components {
            stats.components += 1;
            let (Some(eco), Some(pkg), Some(version)) =
                (&component.ecosystem, &component.package, &component.version)
            else {
                continue;
            };
            if !seen.insert(component_identity(component)) {
                continue;
            }
            stats.matchable_components += 1;
            let Some(entries) = self.by_package.get(&(eco.as_str(), pkg.as_str())) else {
                continue;
            };
            let mut keys: Option<Vec<String>> = None;
            let mut matched: BTreeSet<&str> = BTreeSet::new();
            for (adv, compiled) in entries {
                if matched.contains(adv.id.as_str()) {
                    continue;
                }
                let RangeMatch::Affected(reason) = compiled.matches(version) else {
                    continue;
                };
                matched.insert(&adv.id);
                let vulnerability = self.vulns.canonical(&adv.id).to_string();
                let keys = keys.get_or_insert_with(|| product::component_keys(component));
                let statement = latest_applicable(
                    &self.vulns,
                    &vulnerability,
                    &artifact_keys,
                    keys,
                    &self.by_key,
                    self.vex,
                    &self.orders,
                );
                findings.insert(make_finding(
                    tenant,
                    &sbom.artifact,
                    adv,
                    vulnerability,
                    component,
                    eco,
                    pkg,
                    version,
                    reason,
                    statement,
                ));
            }
        }
    }
}

/// Match every component of every SBOM against every advisory and apply VEX.
/// `vex` is in input order: later statements win ties on timestamp.
pub fn scan(advisories: &[Advisory], sboms: &[Sbom], vex: &[VexStatement]) -> ScanReport {
    let matcher = Matcher::new(advisories, vex);
    let mut stats = matcher.stats.clone();
    // A later SBOM of the same artifact replaces the earlier one, as it does
    // in the input log.
    let mut current: BTreeMap<(&str, &str), &Sbom> = BTreeMap::new();
    for sbom in sboms {
        current.insert((tenant_of(sbom), sbom.artifact.id.as_str()), sbom);
    }
    stats.artifacts = current.len();
    let mut findings = BTreeSet::new();
    for sbom in current.into_values() {
        matcher.scan_sbom(sbom, &mut stats, &mut findings);
    }
    let findings: Vec<Finding> = findings.into_iter().collect();
    stats.suppressed = findings
        .iter()
        .filter(|f| f.status == FindingStatus::Suppressed)
        .count();
    stats.affected = findings.len() - stats.suppressed;
    ScanReport { findings, stats }
}

/// The latest statement that names this vulnerability (by any of its names)
/// and whose product keys are the artifact's / component's.
fn latest_applicable<'a>(
    vulns: &VulnerabilityIndex,
    vulnerability: &str,
    artifact_keys: &[String],
    component_keys: &[String],
    by_key: &BTreeMap<String, Vec<(usize, Option<String>)>>,
    vex: &'a [VexStatement],
    orders: &[(i64, u64)],
) -> Option<&'a VexStatement> {
    let names = vulns.names(vulnerability);
    let names_it = |s: &VexStatement| {
        std::iter::once(&s.vulnerability)
            .chain(s.aliases.iter())
            .any(|n| names.is_some_and(|g| g.contains(n)) || n == vulnerability)
    };
    artifact_keys
        .iter()
        .filter_map(|k| by_key.get(k))
        .flatten()
        .filter(|(_, sub)| {
            sub.as_ref()
                .is_none_or(|s| component_keys.binary_search(s).is_ok())
        })
        .map(|(i, _)| *i)
        .filter(|&i| vex.get(i).is_some_and(names_it))
        .max_by_key(|&i| orders.get(i).copied())
        .and_then(|i| vex.get(i))
}

#[allow(clippy::too_many_arguments)]
fn make_finding(
    tenant: &str,
    artifact: &Artifact,
    advisory: &Advisory,
    vulnerability: String,
    component: &Component,
    ecosystem: &str,
    package: &str,
    version: &str,
    reason: crate::model::MatchReason,
    statement: Option<&VexStatement>,
) -> Finding {
    let suppressed = statement.is_some_and(|s| s.status.suppresses());
    Finding {
        tenant: tenant.to_string(),
        artifact: artifact.id.clone(),
        advisory: advisory.id.clone(),
        vulnerability,
        aliases: advisory.aliases.clone(),
        purl: component.purl.clone(),
        ecosystem: ecosystem.to_string(),
        package: package.to_string(),
        version: version.to_string(),
        severity: advisory.max_severity().map(|s| s.rating),
        status: if suppressed {
            FindingStatus::Suppressed
        } else {
            FindingStatus::Affected
        },
        reason,
        vex_status: statement.map(|s| s.status),
        justification: statement.and_then(|s| s.justification.clone()),
        vex_source: statement.map(|s| s.source.clone()),
    }
}
