//! SPDX 2.2 / 2.3 JSON SBOMs. The package(s) the document DESCRIBES are the
//! artifact; every other package is a component. Files are not components:
//! advisories name packages, never files.
//!
//! When several packages are described, the first by SPDXID is the artifact
//! and the ids of the others become artifact references; they also stay
//! components, because the artifact identity covers only one of them and
//! dropping the rest would hide their vulnerabilities.
//!
//! As for CycloneDX, problems with one value (bad purl, checksum) are
//! warnings returned by [`parse_sbom_with_warnings`] and logged by
//! [`parse_sbom`].

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::cyclonedx::{
    artifact_digest, bytes_digest, check_hash, log_warnings, name_at_version, Warnings,
};
use super::purl::Purl;
use super::{ErrorKind, FormatError};
use crate::model::{Artifact, Component, Sbom, SbomFormat, Scope};

#[derive(Deserialize)]
struct Document {
    #[serde(rename = "spdxVersion")]
    spdx_version: String,
    #[serde(rename = "SPDXID")]
    spdx_id: Option<String>,
    name: Option<String>,
    #[serde(rename = "documentNamespace")]
    namespace: Option<String>,
    #[serde(rename = "documentDescribes")]
    describes: Option<Vec<String>>,
    packages: Option<Vec<Package>>,
    relationships: Option<Vec<Relationship>>,
}

#[derive(Deserialize)]
struct Package {
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    name: Option<String>,
    #[serde(rename = "versionInfo")]
    version_info: Option<String>,
    #[serde(rename = "externalRefs")]
    external_refs: Option<Vec<ExternalRef>>,
    checksums: Option<Vec<Checksum>>,
}

#[derive(Deserialize)]
struct ExternalRef {
    #[serde(rename = "referenceCategory")]
    category: Option<String>,
    #[serde(rename = "referenceType")]
    ty: Option<String>,
    #[serde(rename = "referenceLocator")]
    locator: Option<String>,
}

#[derive(Deserialize)]
struct Checksum {
    algorithm: String,
    #[serde(rename = "checksumValue")]
    value: String,
}

#[derive(Deserialize)]
struct Relationship {
    #[serde(rename = "spdxElementId")]
    element: Option<String>,
    #[serde(rename = "relationshipType")]
    ty: Option<String>,
    #[serde(rename = "relatedSpdxElement")]
    related: Option<String>,
}

pub fn parse_sbom(document: &str, bytes: &[u8], scope: Scope) -> Result<Sbom, FormatError> {
    let (sbom, warnings) = parse_sbom_with_warnings(document, bytes, scope)?;
    log_warnings(&warnings);
    Ok(sbom)
}

/// One package after validation.
struct Parsed {
    component: Option<Component>,
    name: Option<String>,
    version: Option<String>,
    purl: Option<Purl>,
    hashes: BTreeMap<String, String>,
}

/// Like [`parse_sbom`], also returning the problems that dropped single
/// values while keeping the document.
pub fn parse_sbom_with_warnings(
    document: &str,
    bytes: &[u8],
    scope: Scope,
) -> Result<(Sbom, Vec<FormatError>), FormatError> {
    let doc: Document = FormatError::deserialize(document, bytes)?;
    if !matches!(doc.spdx_version.as_str(), "SPDX-2.2" | "SPDX-2.3") {
        return Err(FormatError::new(
            document,
            "spdxVersion",
            ErrorKind::Invalid,
            format!(
                "unsupported spdxVersion {:?} (SPDX-2.2 and SPDX-2.3 JSON are supported)",
                doc.spdx_version
            ),
        ));
    }
    let mut w = Warnings::new(document);
    let doc_id = doc.spdx_id.as_deref().unwrap_or("SPDXRef-DOCUMENT");

    let mut packages: BTreeMap<String, Parsed> = BTreeMap::new();
    for (i, p) in doc.packages.iter().flatten().enumerate() {
        let path = format!("packages[{i}]");
        if p.spdx_id.is_empty() {
            w.push(&format!("{path}.SPDXID"), "empty SPDXID; package skipped");
            continue;
        }
        if packages.contains_key(&p.spdx_id) {
            w.push(
                &format!("{path}.SPDXID"),
                format!("duplicate SPDXID {:?}; package skipped", p.spdx_id),
            );
            continue;
        }
        packages.insert(p.spdx_id.clone(), parse_package(p, &path, &mut w));
    }

    let mut roots: BTreeSet<&str> = doc.describes.iter().flatten().map(String::as_str).collect();
    for r in doc.relationships.iter().flatten() {
        match (r.element.as_deref(), r.ty.as_deref(), r.related.as_deref()) {
            (Some(e), Some("DESCRIBES"), Some(x)) if e == doc_id => {
                roots.insert(x);
            }
            (Some(x), Some("DESCRIBED_BY"), Some(e)) if e == doc_id => {
                roots.insert(x);
            }
            _ => {}
        }
    }
    // Described files (and ids that name nothing here) are not packages.
    let roots: Vec<&str> = roots
        .into_iter()
        .filter(|id| packages.contains_key(*id))
        .collect();

    let mut references: Vec<String> = doc.namespace.iter().cloned().collect();
    let artifact = match roots.split_first() {
        Some((first, others)) => {
            let root = packages.get(*first);
            let purl = root.and_then(|r| r.purl.as_ref());
            let name = root.and_then(|r| r.name.clone());
            let version = root.and_then(|r| r.version.clone());
            let digest = root.and_then(|r| artifact_digest(&r.hashes, purl, version.as_deref()));
            for other in others {
                if let Some(id) = packages.get(*other).and_then(package_identity) {
                    references.push(id);
                }
            }
            if let Some(p) = purl {
                references.push(p.canonical());
            }
            Artifact {
                id: digest
                    .clone()
                    .or_else(|| name_at_version(name.as_deref(), version.as_deref()))
                    .unwrap_or_else(|| (*first).to_string()),
                name,
                version,
                digest,
                purl: purl.map(Purl::canonical),
                references: Vec::new(),
            }
        }
        None => Artifact {
            // No described package: the namespace is the document's own
            // unique id; without it, the digest of the bytes is.
            id: doc.namespace.clone().unwrap_or_else(|| bytes_digest(bytes)),
            name: doc.name.clone(),
            version: None,
            digest: None,
            purl: None,
            references: Vec::new(),
        },
    };
    references.sort();
    references.dedup();
    let artifact = Artifact {
        references,
        ..artifact
    };

    let first_root = roots.first().copied();
    let mut components: Vec<Component> = packages
        .into_iter()
        .filter(|(id, _)| Some(id.as_str()) != first_root)
        .filter_map(|(_, p)| p.component)
        .collect();
    components.sort();
    components.dedup();

    let sbom = Sbom {
        format: SbomFormat::Spdx,
        spec_version: doc.spdx_version,
        artifact,
        scope,
        components,
    };
    Ok((sbom, w.finish()))
}

/// How another described package is named among the artifact references.
fn package_identity(p: &Parsed) -> Option<String> {
    artifact_digest(&p.hashes, p.purl.as_ref(), p.version.as_deref())
        .or_else(|| name_at_version(p.name.as_deref(), p.version.as_deref()))
}

fn parse_package(p: &Package, path: &str, w: &mut Warnings) -> Parsed {
    let mut purl = None;
    for (j, r) in p.external_refs.iter().flatten().enumerate() {
        let category_ok = matches!(
            r.category.as_deref(),
            Some("PACKAGE_MANAGER" | "PACKAGE-MANAGER")
        );
        if !category_ok || r.ty.as_deref() != Some("purl") {
            continue;
        }
        let rpath = format!("{path}.externalRefs[{j}].referenceLocator");
        let Some(locator) = r.locator.as_deref() else {
            w.push(&rpath, "purl reference without referenceLocator");
            continue;
        };
        match Purl::parse(locator) {
            Ok(parsed) if purl.is_none() => purl = Some(parsed),
            Ok(_) => w.push(&rpath, "package has more than one purl; the first is used"),
            Err(e) => w.push_error(e.at(w.document_name(), &rpath)),
        }
    }
    let mut hashes = BTreeMap::new();
    for (j, c) in p.checksums.iter().flatten().enumerate() {
        let alg = hash_alg(&c.algorithm);
        match check_hash(&alg, &c.value) {
            Ok(value) => {
                hashes.insert(alg, value);
            }
            Err(msg) => w.push(&format!("{path}.checksums[{j}]"), msg),
        }
    }
    // NOASSERTION / NONE mean "no version stated", not a version string.
    let version = p
        .version_info
        .clone()
        .filter(|v| !v.is_empty() && v != "NOASSERTION" && v != "NONE");
    let name = p.name.clone().filter(|n| !n.is_empty());
    let component = match &name {
        Some(n) => Some(Component {
            reference: Some(p.spdx_id.clone()),
            name: n.clone(),
            version: purl
                .as_ref()
                .and_then(Purl::match_version)
                .or_else(|| version.clone()),
            ecosystem: purl.as_ref().and_then(Purl::ecosystem),
            package: purl.as_ref().map(Purl::package_name),
            purl: purl.as_ref().map(Purl::canonical),
            hashes: hashes.clone(),
        }),
        None => {
            w.push(path, "package has no name; skipped");
            None
        }
    };
    Parsed {
        component,
        name,
        version,
        purl,
        hashes,
    }
}

/// SPDX checksum algorithm → the CycloneDX-style name used in
/// `Component::hashes` (`SHA256` → `sha-256`, `SHA3-256` → `sha3-256`).
fn hash_alg(algorithm: &str) -> String {
    let lower = algorithm.to_ascii_lowercase();
    match lower.strip_prefix("sha") {
        Some(bits) if !bits.is_empty() && bits.bytes().all(|b| b.is_ascii_digit()) => {
            format!("sha-{bits}")
        }
        _ => lower,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_algorithms_take_the_cyclonedx_spelling() {
        assert_eq!(hash_alg("SHA256"), "sha-256");
        assert_eq!(hash_alg("SHA1"), "sha-1");
        assert_eq!(hash_alg("SHA512"), "sha-512");
        assert_eq!(hash_alg("SHA3-256"), "sha3-256");
        assert_eq!(hash_alg("BLAKE2b-256"), "blake2b-256");
        assert_eq!(hash_alg("MD5"), "md5");
        assert_eq!(hash_alg("SHA"), "sha");
    }

    #[test]
    fn described_by_relationships_also_name_roots() {
        let doc = br#"{"spdxVersion":"SPDX-2.2","SPDXID":"SPDXRef-DOCUMENT",
          "packages":[{"SPDXID":"SPDXRef-app","name":"app","versionInfo":"3"},
                      {"SPDXID":"SPDXRef-lib","name":"lib","versionInfo":"1",
                       "externalRefs":[{"referenceCategory":"PACKAGE-MANAGER","referenceType":"purl",
                                        "referenceLocator":"pkg:rpm/redhat/lib@1.0-2?epoch=3"}]}],
          "relationships":[{"spdxElementId":"SPDXRef-app","relationshipType":"DESCRIBED_BY",
                            "relatedSpdxElement":"SPDXRef-DOCUMENT"}]}"#;
        let (sbom, warnings) = match parse_sbom_with_warnings("d", doc, Scope::Global) {
            Ok(ok) => ok,
            Err(e) => panic!("{e}"),
        };
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(sbom.artifact.id, "app@3");
        assert_eq!(sbom.components.len(), 1);
        let lib = &sbom.components[0];
        assert_eq!(
            lib.version.as_deref(),
            Some("3:1.0-2"),
            "rpm epoch folded in"
        );
        assert_eq!(lib.ecosystem.as_deref(), Some("Red Hat"));
    }
}
