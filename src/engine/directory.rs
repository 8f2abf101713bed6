//! Every artifact the engine holds an SBOM for, with what selectors ask of
//! it (identity, repository names, labels, packages), as of the last closed
//! window — the same state live queries see, so a run planned between windows
//! covers exactly the artifacts whose deltas have been emitted.
//!
//! The dataflow only answers for *affected* artifacts; a full re-evaluation
//! run covers every artifact a selector names, affected or not, so the
//! directory lives on the host side, next to the catalog that feeds it.

use std::collections::BTreeMap;
use std::sync::Arc;

use recheck_dataflows as df;

use super::ids;
use crate::formats::purl::{normalize_package_name, Purl};
use crate::model::{Artifact, RuntimeState, Selector};

/// The label the `namespaces` criterion reads.
pub const NAMESPACE_LABEL: &str = "namespace";

/// What a selector can ask of one artifact.
#[derive(Debug, Clone)]
pub struct ArtifactEntry {
    pub artifact: Artifact,
    /// Keys lower-cased (label keys are case-insensitive).
    pub labels: BTreeMap<String, String>,
    /// From the latest metadata record (`unknown` without one).
    pub runtime: RuntimeState,
    /// Shared with the catalog's rows of the SBOM (no copy per artifact).
    pub(crate) instances: Arc<[df::Instance]>,
}

impl ArtifactEntry {
    /// The names this artifact's repository goes by: its name, and for each
    /// purl it carries `<repository_url>/<name>` and `<namespace>/<name>`.
    pub fn repositories(&self) -> Vec<String> {
        let mut out: Vec<String> = self.artifact.name.iter().cloned().collect();
        let purls = self
            .artifact
            .purl
            .iter()
            .chain(self.artifact.references.iter())
            .filter(|r| r.starts_with("pkg:"));
        for purl in purls {
            let Ok(p) = Purl::parse(purl) else { continue };
            if let Some(url) = p.qualifiers.get("repository_url") {
                out.push(format!("{}/{}", url.trim_end_matches('/'), p.name));
            }
            if let Some(ns) = &p.namespace {
                out.push(format!("{ns}/{}", p.name));
            }
            out.push(p.name.clone());
        }
        out.sort();
        out.dedup();
        out
    }

    fn has_package(&self, keys: &[df::PackageKey]) -> bool {
        self.instances.iter().any(|i| keys.contains(&i.2))
    }
}

/// `(tenant, artifact id)` → entry, ordered.
#[derive(Debug, Clone, Default)]
pub struct ArtifactDirectory {
    entries: BTreeMap<(String, String), ArtifactEntry>,
}

impl ArtifactDirectory {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, tenant: &str, artifact: &str) -> Option<&ArtifactEntry> {
        self.entries
            .get(&(tenant.to_string(), artifact.to_string()))
    }

    pub(crate) fn put(&mut self, tenant: &str, artifact: &str, entry: Option<ArtifactEntry>) {
        let key = (tenant.to_string(), artifact.to_string());
        match entry {
            Some(e) => {
                self.entries.insert(key, e);
            }
            None => {
                self.entries.remove(&key);
            }
        }
    }

    /// The `(tenant, artifact)` pairs `selector` covers, sorted; only
    /// `within`'s artifacts when given (a tenant's run never reaches another
    /// tenant's). The selector is taken as valid (see [`Selector::validate`]).
    pub fn select(&self, selector: &Selector, within: Option<&str>) -> Vec<(String, String)> {
        let tenant = match (within, selector.tenant.as_deref()) {
            (Some(a), Some(b)) if a != b => return Vec::new(),
            (a, b) => a.or(b),
        };
        let packages: Vec<df::PackageKey> = selector
            .packages
            .iter()
            .map(|p| ids::package_key(&p.ecosystem, &normalize_package_name(&p.ecosystem, &p.name)))
            .collect();
        let digests: Vec<String> = selector.digests.iter().map(|d| d.to_lowercase()).collect();
        let labels: Vec<(String, &String)> = selector
            .labels
            .iter()
            .map(|(k, v)| (k.to_lowercase(), v))
            .collect();
        let matches = |e: &ArtifactEntry| {
            labels.iter().all(|(k, v)| e.labels.get(k) == Some(*v))
                && (selector.namespaces.is_empty()
                    || e.labels
                        .get(NAMESPACE_LABEL)
                        .is_some_and(|ns| selector.namespaces.contains(ns)))
                && (digests.is_empty()
                    || std::iter::once(&e.artifact.id)
                        .chain(e.artifact.digest.iter())
                        .any(|d| digests.contains(&d.to_lowercase())))
                && (selector.repositories.is_empty()
                    || e.repositories()
                        .iter()
                        .any(|r| selector.repositories.contains(r)))
                && (packages.is_empty() || e.has_package(&packages))
        };
        let range: Box<dyn Iterator<Item = (&(String, String), &ArtifactEntry)> + '_> = match tenant
        {
            Some(t) => Box::new(
                self.entries
                    .range((t.to_string(), String::new())..)
                    .take_while(move |((tenant, _), _)| tenant == t),
            ),
            None => Box::new(self.entries.iter()),
        };
        range
            .filter(|(_, e)| matches(e))
            .map(|(k, _)| k.clone())
            .collect()
    }
}
