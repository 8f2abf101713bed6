//! CSAF 2.0 → normalized [`VexStatement`]s. Vendors (Red Hat, Cisco, BSI,
//! ...) publish product status in CSAF, both in the VEX profile and in plain
//! security advisories, so both are read. CSAF names products by opaque
//! product ids; this module resolves them through the product tree to purls
//! (or CPE / name when there is no purl), and turns relationships such as
//! `default_component_of` into "component X inside product Y" statements.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::{ErrorKind, FormatError};
use crate::model::{Scope, VexProduct, VexStatement, VexStatus};

#[derive(Deserialize)]
struct RawCsaf {
    document: RawDocument,
    product_tree: Option<RawTree>,
    #[serde(default)]
    vulnerabilities: Vec<RawVulnerability>,
}

#[derive(Deserialize)]
struct RawDocument {
    csaf_version: String,
    tracking: Option<RawTracking>,
}

#[derive(Deserialize)]
struct RawTracking {
    id: Option<String>,
    current_release_date: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawTree {
    #[serde(default)]
    branches: Vec<RawBranch>,
    #[serde(default)]
    full_product_names: Vec<RawProduct>,
    #[serde(default)]
    relationships: Vec<RawRelationship>,
    #[serde(default)]
    product_groups: Vec<RawGroup>,
}

#[derive(Deserialize)]
struct RawBranch {
    #[serde(default)]
    branches: Vec<RawBranch>,
    product: Option<RawProduct>,
}

#[derive(Deserialize)]
struct RawProduct {
    name: Option<String>,
    product_id: String,
    product_identification_helper: Option<RawHelper>,
}

#[derive(Deserialize)]
struct RawHelper {
    purl: Option<String>,
    cpe: Option<String>,
}

#[derive(Deserialize)]
struct RawRelationship {
    full_product_name: RawProduct,
    product_reference: String,
    relates_to_product_reference: String,
}

#[derive(Deserialize)]
struct RawGroup {
    group_id: String,
    #[serde(default)]
    product_ids: Vec<String>,
}

#[derive(Deserialize)]
struct RawVulnerability {
    cve: Option<String>,
    #[serde(default)]
    ids: Vec<RawId>,
    product_status: Option<RawProductStatus>,
    #[serde(default)]
    flags: Vec<RawScoped>,
    #[serde(default)]
    threats: Vec<RawScoped>,
}

#[derive(Deserialize)]
struct RawId {
    text: String,
}

/// A flag (`label`) or threat (`category` + `details`) and the products or
/// product groups it applies to.
#[derive(Deserialize)]
struct RawScoped {
    label: Option<String>,
    category: Option<String>,
    details: Option<String>,
    #[serde(default)]
    product_ids: Vec<String>,
    #[serde(default)]
    group_ids: Vec<String>,
}

#[derive(Deserialize, Default)]
struct RawProductStatus {
    #[serde(default)]
    known_not_affected: Vec<String>,
    #[serde(default)]
    known_affected: Vec<String>,
    #[serde(default)]
    first_affected: Vec<String>,
    #[serde(default)]
    last_affected: Vec<String>,
    #[serde(default)]
    fixed: Vec<String>,
    #[serde(default)]
    first_fixed: Vec<String>,
    #[serde(default)]
    under_investigation: Vec<String>,
}

impl RawProductStatus {
    fn lists(&self) -> [(&'static str, VexStatus, &[String]); 7] {
        [
            (
                "known_not_affected",
                VexStatus::NotAffected,
                &self.known_not_affected,
            ),
            ("known_affected", VexStatus::Affected, &self.known_affected),
            ("first_affected", VexStatus::Affected, &self.first_affected),
            ("last_affected", VexStatus::Affected, &self.last_affected),
            ("fixed", VexStatus::Fixed, &self.fixed),
            ("first_fixed", VexStatus::Fixed, &self.first_fixed),
            (
                "under_investigation",
                VexStatus::UnderInvestigation,
                &self.under_investigation,
            ),
        ]
    }
}

/// What a product id stands for: the product, and the component inside it
/// when the id was defined by a relationship.
#[derive(Clone)]
struct Resolved {
    product: VexProduct,
    subcomponent: Option<String>,
}

fn identity(p: &RawProduct) -> VexProduct {
    let helper = p.product_identification_helper.as_ref();
    if let Some(purl) = helper
        .and_then(|h| h.purl.as_ref())
        .filter(|s| s.starts_with("pkg:"))
    {
        return VexProduct::Purl(purl.clone());
    }
    let name = helper
        .and_then(|h| h.cpe.as_ref())
        .or(p.name.as_ref())
        .filter(|s| !s.is_empty())
        .unwrap_or(&p.product_id);
    VexProduct::Artifact(name.clone())
}

fn collect_branches(branches: &[RawBranch], out: &mut BTreeMap<String, Resolved>) {
    for b in branches {
        if let Some(p) = &b.product {
            out.insert(
                p.product_id.clone(),
                Resolved {
                    product: identity(p),
                    subcomponent: None,
                },
            );
        }
        collect_branches(&b.branches, out);
    }
}

/// product_id → identity for every product the tree defines.
fn resolve_tree(tree: &RawTree) -> BTreeMap<String, Resolved> {
    let mut map = BTreeMap::new();
    collect_branches(&tree.branches, &mut map);
    for p in &tree.full_product_names {
        map.insert(
            p.product_id.clone(),
            Resolved {
                product: identity(p),
                subcomponent: None,
            },
        );
    }
    for r in &tree.relationships {
        // The parent's own identity; an undefined parent is kept by its id
        // so the statement stays visible in explain traces.
        let product = map
            .get(&r.relates_to_product_reference)
            .map(|p| p.product.clone())
            .unwrap_or_else(|| VexProduct::Artifact(r.relates_to_product_reference.clone()));
        let subcomponent = Some(match map.get(&r.product_reference) {
            Some(Resolved {
                product: VexProduct::Purl(s) | VexProduct::Artifact(s),
                ..
            }) => s.clone(),
            None => r.product_reference.clone(),
        });
        map.insert(
            r.full_product_name.product_id.clone(),
            Resolved {
                product,
                subcomponent,
            },
        );
    }
    map
}

/// product_id → first value of `pick` among the entries that apply to it.
/// An entry naming no products or groups applies to every product.
fn scoped_values<'a>(
    entries: &'a [RawScoped],
    groups: &BTreeMap<&str, &'a [String]>,
    pick: impl Fn(&'a RawScoped) -> Option<&'a String>,
) -> (BTreeMap<&'a str, &'a str>, Option<&'a str>) {
    let mut by_product = BTreeMap::new();
    let mut everywhere = None;
    for e in entries {
        let Some(value) = pick(e) else { continue };
        if e.product_ids.is_empty() && e.group_ids.is_empty() {
            everywhere = everywhere.or(Some(value.as_str()));
        }
        let grouped = e
            .group_ids
            .iter()
            .filter_map(|g| groups.get(g.as_str()))
            .flat_map(|ids| ids.iter());
        for id in e.product_ids.iter().chain(grouped) {
            by_product.entry(id.as_str()).or_insert(value.as_str());
        }
    }
    (by_product, everywhere)
}

/// Parse a CSAF 2.0 JSON document into statements, sorted and de-duplicated.
pub fn parse_vex(
    document: &str,
    bytes: &[u8],
    scope: Scope,
) -> Result<Vec<VexStatement>, FormatError> {
    let raw: RawCsaf = FormatError::deserialize(document, bytes)?;
    if !raw.document.csaf_version.starts_with("2.") {
        return Err(FormatError::new(
            document,
            "document.csaf_version",
            ErrorKind::UnknownFormat,
            format!("unsupported CSAF version {:?}", raw.document.csaf_version),
        ));
    }
    let tracking = raw.document.tracking.as_ref();
    let source = tracking
        .and_then(|t| t.id.clone())
        .unwrap_or_else(|| document.to_string());
    let timestamp = tracking.and_then(|t| t.current_release_date.clone());
    let empty_tree = RawTree::default();
    let tree = raw.product_tree.as_ref().unwrap_or(&empty_tree);
    let products = resolve_tree(tree);
    let groups: BTreeMap<&str, &[String]> = tree
        .product_groups
        .iter()
        .map(|g| (g.group_id.as_str(), g.product_ids.as_slice()))
        .collect();

    let mut out = Vec::new();
    for (i, v) in raw.vulnerabilities.iter().enumerate() {
        let path = format!("vulnerabilities[{i}]");
        let names: BTreeSet<&str> = v
            .cve
            .iter()
            .chain(v.ids.iter().map(|id| &id.text))
            .map(String::as_str)
            .collect();
        let Some(vulnerability) = v
            .cve
            .as_deref()
            .or_else(|| v.ids.first().map(|id| id.text.as_str()))
        else {
            return Err(FormatError::new(
                document,
                path,
                ErrorKind::Invalid,
                "vulnerability has neither cve nor ids",
            ));
        };
        let aliases: Vec<String> = names
            .iter()
            .filter(|n| **n != vulnerability)
            .map(|n| n.to_string())
            .collect();
        let (justifications, any_justification) =
            scoped_values(&v.flags, &groups, |f| f.label.as_ref());
        let (impacts, any_impact) = scoped_values(&v.threats, &groups, |t| {
            t.details
                .as_ref()
                .filter(|_| t.category.as_deref() == Some("impact"))
        });
        let status_lists = v.product_status.as_ref().map(RawProductStatus::lists);
        for (list, status, ids) in status_lists.iter().flatten() {
            for (j, id) in ids.iter().enumerate() {
                let resolved = match products.get(id) {
                    Some(r) => r.clone(),
                    None if raw.product_tree.is_none() => {
                        return Err(FormatError::new(
                            document,
                            "product_tree",
                            ErrorKind::Invalid,
                            format!(
                                "{path}.product_status.{list}[{j}] refers to product {id:?} but \
                                 the document has no product_tree"
                            ),
                        ))
                    }
                    None => {
                        tracing::warn!(document, product_id = %id, "{path}.product_status.{list}[{j}]: product id not defined in product_tree");
                        Resolved {
                            product: VexProduct::Artifact(id.clone()),
                            subcomponent: None,
                        }
                    }
                };
                // Justification and impact only qualify "not affected".
                let not_affected = *status == VexStatus::NotAffected;
                let qualifier = |m: &BTreeMap<&str, &str>, any: Option<&str>| {
                    not_affected
                        .then(|| m.get(id.as_str()).copied().or(any))
                        .flatten()
                        .map(str::to_string)
                };
                out.push(VexStatement {
                    vulnerability: vulnerability.to_string(),
                    aliases: aliases.clone(),
                    product: resolved.product,
                    subcomponent: resolved.subcomponent,
                    status: *status,
                    justification: qualifier(&justifications, any_justification),
                    impact_statement: qualifier(&impacts, any_impact),
                    timestamp: timestamp.clone(),
                    source: source.clone(),
                    scope: scope.clone(),
                });
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{
      "document": {"category": "csaf_vex", "csaf_version": "2.0",
                   "tracking": {"id": "EX-1", "current_release_date": "2024-05-01T00:00:00Z"}},
      "product_tree": {
        "branches": [{"category": "vendor", "name": "V", "branches": [
          {"category": "product_version", "name": "1",
           "product": {"name": "App 1", "product_id": "APP-1",
                       "product_identification_helper": {"cpe": "cpe:/a:v:app:1"}}},
          {"category": "product_version", "name": "lib",
           "product": {"name": "lib 2", "product_id": "LIB-2",
                       "product_identification_helper": {"purl": "pkg:npm/lib@2"}}}
        ]}],
        "full_product_names": [{"name": "Other", "product_id": "OTHER"}],
        "relationships": [{"category": "default_component_of",
          "full_product_name": {"name": "lib 2 in App 1", "product_id": "APP-1:LIB-2"},
          "product_reference": "LIB-2", "relates_to_product_reference": "APP-1"}],
        "product_groups": [{"group_id": "G", "product_ids": ["APP-1:LIB-2", "OTHER"]}]
      },
      "vulnerabilities": [{
        "cve": "CVE-2024-1", "ids": [{"system_name": "GHSA", "text": "GHSA-abc"}],
        "product_status": {"known_not_affected": ["APP-1:LIB-2", "OTHER"], "first_fixed": ["LIB-2"],
                           "under_investigation": ["APP-1"]},
        "flags": [{"label": "vulnerable_code_not_in_execute_path", "group_ids": ["G"]}],
        "threats": [{"category": "impact", "details": "not reachable", "product_ids": ["APP-1:LIB-2"]},
                    {"category": "exploit_status", "details": "none", "product_ids": ["OTHER"]}]
      }]
    }"#;

    #[test]
    fn resolves_relationships_groups_and_flags() {
        let st = parse_vex("t.json", DOC.as_bytes(), Scope::Global).unwrap();
        let rows: Vec<_> = st
            .iter()
            .map(|s| {
                (
                    s.product.clone(),
                    s.subcomponent.as_deref(),
                    s.status,
                    s.justification.as_deref(),
                    s.impact_statement.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (
                    VexProduct::Purl("pkg:npm/lib@2".into()),
                    None,
                    VexStatus::Fixed,
                    None,
                    None
                ),
                (
                    VexProduct::Artifact("Other".into()),
                    None,
                    VexStatus::NotAffected,
                    Some("vulnerable_code_not_in_execute_path"),
                    None
                ),
                (
                    VexProduct::Artifact("cpe:/a:v:app:1".into()),
                    None,
                    VexStatus::UnderInvestigation,
                    None,
                    None
                ),
                (
                    VexProduct::Artifact("cpe:/a:v:app:1".into()),
                    Some("pkg:npm/lib@2"),
                    VexStatus::NotAffected,
                    Some("vulnerable_code_not_in_execute_path"),
                    Some("not reachable")
                ),
            ]
        );
        assert!(st.iter().all(|s| s.vulnerability == "CVE-2024-1"
            && s.aliases == ["GHSA-abc"]
            && s.source == "EX-1"
            && s.timestamp.as_deref() == Some("2024-05-01T00:00:00Z")));
    }

    #[test]
    fn reports_errors_with_paths() {
        for (doc, path, kind) in [
            (
                r#"{"document": {"csaf_version": "2.0"}, "vulnerabilities": [{"cve": "CVE-1", "product_status": {"fixed": ["P"]}}]}"#,
                "product_tree",
                ErrorKind::Invalid,
            ),
            (
                r#"{"document": {"csaf_version": "2.0"}, "vulnerabilities": [{"product_status": {}}]}"#,
                "vulnerabilities[0]",
                ErrorKind::Invalid,
            ),
            (
                r#"{"document": {"csaf_version": "2.0"}, "vulnerabilities": [{"cve": "CVE-1", "product_status": {"fixed": "P"}}]}"#,
                "vulnerabilities[0].product_status.fixed",
                ErrorKind::Schema,
            ),
            (
                r#"{"document": {"csaf_version": "2.0"}, "product_tree": {"branches": [{"product": {"name": "x"}}]}}"#,
                "product_tree.branches[0].product",
                ErrorKind::Schema,
            ),
            (r#"{"document": {}}"#, "document", ErrorKind::Schema),
            (
                r#"{"document": {"csaf_version": "1.0"}}"#,
                "document.csaf_version",
                ErrorKind::UnknownFormat,
            ),
        ] {
            match parse_vex("t.json", doc.as_bytes(), Scope::Global) {
                Err(e) => assert_eq!((e.path.as_str(), e.kind), (path, kind), "{doc}: {e}"),
                Ok(v) => panic!("{doc}: expected an error, got {v:?}"),
            }
        }
    }
}
