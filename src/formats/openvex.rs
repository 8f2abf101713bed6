//! OpenVEX 0.2.x (and the older 0.0.1 shape) → normalized
//! [`VexStatement`]s. OpenVEX is the format tenants most often hand-write,
//! so both spellings of vulnerabilities, products and subcomponents (plain
//! strings or objects) are accepted, and each statement is flattened to one
//! row per (product, subcomponent) so the engine can join on it directly.

use serde::Deserialize;

use super::{ErrorKind, FormatError};
use crate::model::{Scope, VexProduct, VexStatement, VexStatus};

#[derive(Deserialize)]
struct RawDocument {
    #[serde(rename = "@context")]
    context: String,
    #[serde(rename = "@id")]
    id: Option<String>,
    timestamp: Option<String>,
    last_updated: Option<String>,
    #[serde(default)]
    statements: Vec<RawStatement>,
}

#[derive(Deserialize)]
struct RawStatement {
    vulnerability: Option<RawVulnerability>,
    #[serde(default)]
    products: Vec<RawComponent>,
    /// 0.0.1: subcomponents at statement level, applying to every product.
    #[serde(default)]
    subcomponents: Vec<RawComponent>,
    status: String,
    justification: Option<String>,
    impact_statement: Option<String>,
    timestamp: Option<String>,
    last_updated: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawVulnerability {
    Name(String),
    Object {
        #[serde(rename = "@id")]
        id: Option<String>,
        name: Option<String>,
        #[serde(default)]
        aliases: Vec<String>,
    },
}

/// A product or subcomponent: a bare identifier or an object.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawComponent {
    Id(String),
    Object {
        #[serde(rename = "@id")]
        id: Option<String>,
        identifiers: Option<RawIdentifiers>,
        #[serde(default)]
        subcomponents: Vec<RawComponent>,
    },
}

#[derive(Deserialize)]
struct RawIdentifiers {
    purl: Option<String>,
    cpe23: Option<String>,
    cpe22: Option<String>,
}

impl RawComponent {
    /// The component's identity: a purl when it has one (as `@id` or in
    /// `identifiers`), else its `@id` or CPE as an artifact reference.
    fn identity(&self) -> Option<VexProduct> {
        let (id, identifiers) = match self {
            RawComponent::Id(id) => (Some(id), None),
            RawComponent::Object {
                id, identifiers, ..
            } => (id.as_ref(), identifiers.as_ref()),
        };
        let id = id.filter(|s| !s.is_empty());
        if let Some(purl) = id.filter(|s| is_purl(s)) {
            return Some(VexProduct::Purl(purl.clone()));
        }
        if let Some(purl) = identifiers
            .and_then(|i| i.purl.as_ref())
            .filter(|s| is_purl(s))
        {
            return Some(VexProduct::Purl(purl.clone()));
        }
        id.or_else(|| identifiers.and_then(|i| i.cpe23.as_ref().or(i.cpe22.as_ref())))
            .map(|s| VexProduct::Artifact(s.clone()))
    }

    fn subcomponents(&self) -> &[RawComponent] {
        match self {
            RawComponent::Id(_) => &[],
            RawComponent::Object { subcomponents, .. } => subcomponents,
        }
    }
}

fn is_purl(s: &str) -> bool {
    s.starts_with("pkg:")
}

fn id_string(product: VexProduct) -> String {
    match product {
        VexProduct::Purl(s) | VexProduct::Artifact(s) => s,
    }
}

/// Parse an OpenVEX JSON document into statements, sorted and de-duplicated.
pub fn parse_vex(
    document: &str,
    bytes: &[u8],
    scope: Scope,
) -> Result<Vec<VexStatement>, FormatError> {
    let raw: RawDocument = FormatError::deserialize(document, bytes)?;
    if !raw.context.starts_with("https://openvex.dev/ns") {
        return Err(FormatError::new(
            document,
            "@context",
            ErrorKind::UnknownFormat,
            format!("not an OpenVEX context: {:?}", raw.context),
        ));
    }
    let source = raw.id.clone().unwrap_or_else(|| document.to_string());
    let invalid = |path: String, message: String| {
        FormatError::new(document, path, ErrorKind::Invalid, message)
    };
    let mut out = Vec::new();
    for (i, st) in raw.statements.iter().enumerate() {
        let path = format!("statements[{i}]");
        let status = match st.status.as_str() {
            "not_affected" => VexStatus::NotAffected,
            "affected" => VexStatus::Affected,
            "fixed" => VexStatus::Fixed,
            "under_investigation" => VexStatus::UnderInvestigation,
            other => {
                return Err(invalid(
                    format!("{path}.status"),
                    format!(
                        "unknown status {other:?} (expected not_affected, affected, fixed or \
                         under_investigation)"
                    ),
                ))
            }
        };
        let (vulnerability, mut aliases) = match &st.vulnerability {
            Some(RawVulnerability::Name(n)) => (Some(n.clone()), Vec::new()),
            Some(RawVulnerability::Object { id, name, aliases }) => {
                (name.clone().or_else(|| id.clone()), aliases.clone())
            }
            None => (None, Vec::new()),
        };
        let Some(vulnerability) = vulnerability.filter(|v| !v.is_empty()) else {
            return Err(invalid(
                format!("{path}.vulnerability"),
                "statement names no vulnerability".into(),
            ));
        };
        aliases.retain(|a| *a != vulnerability);
        aliases.sort();
        aliases.dedup();
        // The latest change to the statement is what "latest wins" compares.
        let timestamp = st
            .last_updated
            .clone()
            .or_else(|| st.timestamp.clone())
            .or_else(|| raw.last_updated.clone())
            .or_else(|| raw.timestamp.clone());
        for (j, product) in st.products.iter().enumerate() {
            let Some(identity) = product.identity() else {
                return Err(invalid(
                    format!("{path}.products[{j}]"),
                    "product has no @id, purl or cpe".into(),
                ));
            };
            let mut subs = Vec::new();
            for (k, sub) in product.subcomponents().iter().enumerate() {
                match sub.identity() {
                    Some(s) => subs.push(Some(id_string(s))),
                    None => {
                        return Err(invalid(
                            format!("{path}.products[{j}].subcomponents[{k}]"),
                            "subcomponent has no @id, purl or cpe".into(),
                        ))
                    }
                }
            }
            for (k, sub) in st.subcomponents.iter().enumerate() {
                match sub.identity() {
                    Some(s) => subs.push(Some(id_string(s))),
                    None => {
                        return Err(invalid(
                            format!("{path}.subcomponents[{k}]"),
                            "subcomponent has no @id, purl or cpe".into(),
                        ))
                    }
                }
            }
            if subs.is_empty() {
                subs.push(None);
            }
            for subcomponent in subs {
                out.push(VexStatement {
                    vulnerability: vulnerability.clone(),
                    aliases: aliases.clone(),
                    product: identity.clone(),
                    subcomponent,
                    status,
                    justification: st.justification.clone(),
                    impact_statement: st.impact_statement.clone(),
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

    fn parse(doc: &str) -> Result<Vec<VexStatement>, FormatError> {
        parse_vex("t.json", doc.as_bytes(), Scope::Tenant("acme".into()))
    }

    #[test]
    fn flattens_products_and_subcomponents() {
        let doc = r#"{
            "@context": "https://openvex.dev/ns/v0.2.0",
            "@id": "https://example.org/vex-1",
            "timestamp": "2023-01-01T00:00:00Z",
            "statements": [
              {"vulnerability": {"@id": "https://nvd/CVE-1", "name": "CVE-1", "aliases": ["GHSA-x", "CVE-1"]},
               "products": [
                 {"@id": "pkg:oci/app@sha256%3Aabc",
                  "subcomponents": [{"@id": "pkg:npm/a@1"}, {"identifiers": {"purl": "pkg:npm/b@2"}}]},
                 {"@id": "sha256:def"},
                 {"identifiers": {"cpe23": "cpe:2.3:a:x:y:1:*:*:*:*:*:*:*"}}
               ],
               "status": "not_affected", "justification": "component_not_present",
               "timestamp": "2023-02-02T00:00:00Z"},
              {"vulnerability": "CVE-2", "products": ["registry.example/app:1", "pkg:npm/c@3"],
               "subcomponents": ["pkg:npm/d@4"], "status": "fixed"},
              {"vulnerability": "CVE-3", "status": "affected"}
            ]
        }"#;
        let st = parse(doc).unwrap();
        let rows: Vec<_> = st
            .iter()
            .map(|s| {
                (
                    s.vulnerability.as_str(),
                    s.product.clone(),
                    s.subcomponent.as_deref(),
                    s.timestamp.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (
                    "CVE-1",
                    VexProduct::Purl("pkg:oci/app@sha256%3Aabc".into()),
                    Some("pkg:npm/a@1"),
                    Some("2023-02-02T00:00:00Z")
                ),
                (
                    "CVE-1",
                    VexProduct::Purl("pkg:oci/app@sha256%3Aabc".into()),
                    Some("pkg:npm/b@2"),
                    Some("2023-02-02T00:00:00Z")
                ),
                (
                    "CVE-1",
                    VexProduct::Artifact("cpe:2.3:a:x:y:1:*:*:*:*:*:*:*".into()),
                    None,
                    Some("2023-02-02T00:00:00Z")
                ),
                (
                    "CVE-1",
                    VexProduct::Artifact("sha256:def".into()),
                    None,
                    Some("2023-02-02T00:00:00Z")
                ),
                (
                    "CVE-2",
                    VexProduct::Purl("pkg:npm/c@3".into()),
                    Some("pkg:npm/d@4"),
                    Some("2023-01-01T00:00:00Z")
                ),
                (
                    "CVE-2",
                    VexProduct::Artifact("registry.example/app:1".into()),
                    Some("pkg:npm/d@4"),
                    Some("2023-01-01T00:00:00Z")
                ),
            ]
        );
        assert_eq!(st[0].aliases, ["GHSA-x"]);
        assert_eq!(st[0].source, "https://example.org/vex-1");
        assert_eq!(st[0].scope, Scope::Tenant("acme".into()));
        assert_eq!(
            st[0].justification.as_deref(),
            Some("component_not_present")
        );
    }

    #[test]
    fn rejects_bad_statements_with_paths() {
        let base = |st: &str| {
            format!(
                r#"{{"@context": "https://openvex.dev/ns", "statements": [{{"vulnerability": "CVE-1", "products": ["p"], "status": "fixed"}}, {st}]}}"#
            )
        };
        for (doc, path, kind) in [
            (
                base(r#"{"vulnerability": "CVE-1", "products": ["p"], "status": "mitigated"}"#),
                "statements[1].status",
                ErrorKind::Invalid,
            ),
            (
                base(r#"{"products": ["p"], "status": "fixed"}"#),
                "statements[1].vulnerability",
                ErrorKind::Invalid,
            ),
            (
                base(r#"{"vulnerability": "CVE-1", "products": [{}], "status": "fixed"}"#),
                "statements[1].products[0]",
                ErrorKind::Invalid,
            ),
            (
                base(r#"{"vulnerability": "CVE-1", "products": ["p"]}"#),
                "statements[1]",
                ErrorKind::Schema,
            ),
            (
                base(r#"{"vulnerability": "CVE-1", "products": [7], "status": "fixed"}"#),
                "statements[1].products[0]",
                ErrorKind::Schema,
            ),
            (
                r#"{"@context": "https://example.org/ns", "statements": []}"#.to_string(),
                "@context",
                ErrorKind::UnknownFormat,
            ),
            (
                r#"{"@context": "https://openvex.dev/ns", "statements": [{"#.to_string(),
                "statements[0].?",
                ErrorKind::Syntax,
            ),
        ] {
            match parse(&doc) {
                Err(e) => assert_eq!((e.path.as_str(), e.kind), (path, kind), "{doc}: {e}"),
                Ok(v) => panic!("{doc}: expected an error, got {v:?}"),
            }
        }
    }
}
