//! CycloneDX JSON 1.2–1.6: SBOMs and VEX. Both read the same document shape,
//! so one set of serde types and one component walk serve [`parse_sbom`] and
//! [`parse_vex`]; VEX `affects[].ref` values resolve against the components
//! of the very document they appear in, and `vers:` version ranges expand
//! over the versions that document names.
//!
//! Problems that spoil one value but not the document (a bad purl, an unknown
//! hash algorithm, an empty bom-ref) are warnings: the value is dropped, the
//! rest is kept, and the `*_with_warnings` functions return them as
//! [`FormatError`]s with the JSON path. `parse_sbom` / `parse_vex` log them.
//!
//! `metadata.component` is the artifact, not a component, but the components
//! nested inside it are part of the artifact and are kept. Services are not
//! packages and are not read. A component's version is its purl's
//! [`Purl::match_version`] when the purl has one (the purl is the matching
//! key, and it carries the rpm epoch), else its `version` field.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::purl::Purl;
use super::vers::VersRange;
use super::{ErrorKind, FormatError};
use crate::model::{
    Artifact, Component, Sbom, SbomFormat, Scope, VexProduct, VexStatement, VexStatus,
};

#[derive(Deserialize)]
struct Bom {
    #[serde(rename = "bomFormat")]
    bom_format: String,
    #[serde(rename = "specVersion")]
    spec_version: String,
    #[serde(rename = "serialNumber")]
    serial_number: Option<String>,
    version: Option<u64>,
    metadata: Option<Metadata>,
    components: Option<Vec<CdxComponent>>,
    vulnerabilities: Option<Vec<Vulnerability>>,
}

#[derive(Deserialize)]
struct Metadata {
    timestamp: Option<String>,
    component: Option<CdxComponent>,
}

#[derive(Deserialize)]
struct CdxComponent {
    #[serde(rename = "type")]
    ty: Option<String>,
    #[serde(rename = "bom-ref")]
    bom_ref: Option<String>,
    name: Option<String>,
    version: Option<String>,
    purl: Option<String>,
    hashes: Option<Vec<CdxHash>>,
    components: Option<Vec<CdxComponent>>,
}

#[derive(Deserialize)]
struct CdxHash {
    alg: String,
    content: String,
}

#[derive(Deserialize)]
struct Vulnerability {
    id: Option<String>,
    references: Option<Vec<VulnReference>>,
    published: Option<String>,
    updated: Option<String>,
    analysis: Option<Analysis>,
    affects: Option<Vec<Affects>>,
}

#[derive(Deserialize)]
struct VulnReference {
    id: Option<String>,
}

#[derive(Deserialize)]
struct Analysis {
    state: Option<String>,
    justification: Option<String>,
    detail: Option<String>,
    #[serde(rename = "lastUpdated")]
    last_updated: Option<String>,
}

#[derive(Deserialize)]
struct Affects {
    #[serde(rename = "ref")]
    reference: String,
    versions: Option<Vec<AffectedVersion>>,
}

#[derive(Deserialize)]
struct AffectedVersion {
    version: Option<String>,
    range: Option<String>,
    status: Option<String>,
}

/// CycloneDX 1.6 `component.type` values (earlier versions use a subset).
const COMPONENT_TYPES: &[&str] = &[
    "application",
    "framework",
    "library",
    "container",
    "platform",
    "operating-system",
    "device",
    "device-driver",
    "firmware",
    "file",
    "machine-learning-model",
    "data",
    "cryptographic-asset",
];

/// Collects per-value problems of one document.
pub(crate) struct Warnings<'a> {
    document: &'a str,
    list: Vec<FormatError>,
}

impl<'a> Warnings<'a> {
    pub(crate) fn new(document: &'a str) -> Self {
        Warnings {
            document,
            list: Vec::new(),
        }
    }

    pub(crate) fn document_name(&self) -> &'a str {
        self.document
    }

    pub(crate) fn push(&mut self, path: &str, message: impl Into<String>) {
        self.list.push(FormatError::new(
            self.document,
            path,
            ErrorKind::Invalid,
            message,
        ));
    }

    pub(crate) fn push_error(&mut self, error: FormatError) {
        self.list.push(error);
    }

    pub(crate) fn finish(self) -> Vec<FormatError> {
        self.list
    }
}

/// Logs the warnings of a caller that does not want them returned, so that
/// dropped values never disappear silently.
pub(crate) fn log_warnings(warnings: &[FormatError]) {
    for w in warnings {
        tracing::warn!(document = %w.document, path = %w.path, "{}", w.message);
    }
}

/// Hash algorithm (already lower-cased) → expected hex length; `None` for
/// variable-length BLAKE3.
fn known_hash_length(alg: &str) -> Option<Option<usize>> {
    Some(match alg {
        "md2" | "md4" | "md5" => Some(32),
        "sha-1" => Some(40),
        "sha-224" => Some(56),
        "sha-256" | "sha3-256" | "blake2b-256" => Some(64),
        "sha-384" | "sha3-384" | "blake2b-384" => Some(96),
        "sha-512" | "sha3-512" | "blake2b-512" => Some(128),
        "blake3" => None,
        _ => return None,
    })
}

/// Validate one hash for the `hashes` map: known algorithm, hex content of
/// the right length. Returns the lower-cased content.
pub(crate) fn check_hash(alg: &str, content: &str) -> Result<String, String> {
    let Some(length) = known_hash_length(alg) else {
        return Err(format!("unknown hash algorithm {alg:?}"));
    };
    let hex_ok = !content.is_empty() && content.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex_ok || length.is_some_and(|n| n != content.len()) {
        return Err(format!(
            "{alg} hash content {content:?} is not a valid hex digest"
        ));
    }
    Ok(content.to_ascii_lowercase())
}

/// The `sha256:<hex>` digest of an artifact, from its SHA-256 hash, a purl
/// version such as `pkg:oci/app@sha256:…`, or a version that is a digest.
pub(crate) fn artifact_digest(
    hashes: &BTreeMap<String, String>,
    purl: Option<&Purl>,
    version: Option<&str>,
) -> Option<String> {
    if let Some(hex) = hashes.get("sha-256") {
        return Some(format!("sha256:{hex}"));
    }
    let from_version = |v: &str| {
        let hex = v
            .strip_prefix("sha256:")
            .or_else(|| v.strip_prefix("SHA256:"))?;
        (!hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| format!("sha256:{}", hex.to_ascii_lowercase()))
    };
    purl.and_then(|p| p.version.as_deref())
        .and_then(from_version)
        .or_else(|| version.and_then(from_version))
}

/// Identity of a document that names nothing else: the digest of its bytes.
pub(crate) fn bytes_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Shape check for RFC 3339 date-times (`2022-01-13T00:00:00Z`,
/// `2020-04-13T20:20:39+00:00`, fractional seconds allowed).
pub(crate) fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r)
            .is_some_and(|d| d.iter().all(|c| c.is_ascii_digit()))
    };
    let at = |i: usize, set: &[u8]| b.get(i).is_some_and(|c| set.contains(c));
    if !(digits(0..4)
        && at(4, b"-")
        && digits(5..7)
        && at(7, b"-")
        && digits(8..10)
        && at(10, b"Tt ")
        && digits(11..13)
        && at(13, b":")
        && digits(14..16)
        && at(16, b":")
        && digits(17..19))
    {
        return false;
    }
    let mut i = 19;
    if at(i, b".") {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            digits(i + 1..i + 3) && at(i + 3, b":") && digits(i + 4..i + 6) && i + 6 == b.len()
        }
        _ => false,
    }
}

/// What a bom-ref of this document stands for.
enum RefTarget {
    /// The metadata component: the artifact itself.
    Artifact,
    Component(Option<Purl>),
}

/// A document after the walk that SBOM and VEX parsing share.
struct Walked {
    bom: Bom,
    artifact: Artifact,
    components: Vec<Component>,
    refs: BTreeMap<String, RefTarget>,
}

fn read(document: &str, bytes: &[u8], w: &mut Warnings) -> Result<Walked, FormatError> {
    let mut bom: Bom = FormatError::deserialize(document, bytes)?;
    if bom.bom_format != "CycloneDX" {
        return Err(FormatError::new(
            document,
            "bomFormat",
            ErrorKind::Invalid,
            format!(
                "bomFormat must be \"CycloneDX\", found {:?}",
                bom.bom_format
            ),
        ));
    }
    if !matches!(
        bom.spec_version.as_str(),
        "1.2" | "1.3" | "1.4" | "1.5" | "1.6"
    ) {
        return Err(FormatError::new(
            document,
            "specVersion",
            ErrorKind::Invalid,
            format!(
                "unsupported CycloneDX specVersion {:?} (JSON 1.2–1.6 are supported)",
                bom.spec_version
            ),
        ));
    }
    if let Some(serial) = &bom.serial_number {
        if !is_uuid_urn(serial) {
            w.push(
                "serialNumber",
                format!("serialNumber {serial:?} is not an RFC 4122 urn:uuid"),
            );
        }
    }
    if let Some(ts) = bom.metadata.as_ref().and_then(|m| m.timestamp.as_deref()) {
        if !is_rfc3339(ts) {
            w.push(
                "metadata.timestamp",
                format!("timestamp {ts:?} is not an RFC 3339 date-time"),
            );
        }
    }

    let mut refs = BTreeMap::new();
    let mut components = Vec::new();
    let meta_component = bom.metadata.as_mut().and_then(|m| m.component.take());
    let artifact = match &meta_component {
        Some(meta) => {
            let path = "metadata.component";
            let purl = component_purl(meta, path, w);
            let hashes = component_hashes(meta, path, w);
            if let Some(r) = usable_ref(meta, path, w) {
                refs.insert(r, RefTarget::Artifact);
            }
            if let Some(children) = &meta.components {
                walk(
                    children,
                    &format!("{path}.components"),
                    w,
                    &mut components,
                    &mut refs,
                );
            }
            let version = meta.version.clone().filter(|v| !v.is_empty());
            let name = meta.name.clone().filter(|n| !n.is_empty());
            let digest = artifact_digest(&hashes, purl.as_ref(), version.as_deref());
            Artifact {
                id: digest
                    .clone()
                    .or_else(|| name_at_version(name.as_deref(), version.as_deref()))
                    .unwrap_or_default(),
                name,
                version,
                digest,
                purl: purl.as_ref().map(Purl::canonical),
                references: Vec::new(),
            }
        }
        None => Artifact {
            id: String::new(),
            name: None,
            version: None,
            digest: None,
            purl: None,
            references: Vec::new(),
        },
    };
    if let Some(top) = &bom.components {
        walk(top, "components", w, &mut components, &mut refs);
    }

    let mut artifact = artifact;
    if artifact.id.is_empty() {
        // Nothing in the document names the artifact: fall back to the serial
        // number, and failing that to the digest of the document bytes, so
        // the id is still stable for the same document.
        artifact.id = bom
            .serial_number
            .clone()
            .unwrap_or_else(|| bytes_digest(bytes));
    }
    let mut references = Vec::new();
    if let Some(serial) = &bom.serial_number {
        let uuid = serial.strip_prefix("urn:uuid:").unwrap_or(serial);
        references.push(format!("urn:cdx:{uuid}/{}", bom.version.unwrap_or(1)));
        references.push(serial.clone());
    }
    if let Some(p) = &artifact.purl {
        references.push(p.clone());
    }
    references.sort();
    references.dedup();
    artifact.references = references;

    components.sort();
    components.dedup();
    Ok(Walked {
        bom,
        artifact,
        components,
        refs,
    })
}

fn is_uuid_urn(s: &str) -> bool {
    let Some(uuid) = s.strip_prefix("urn:uuid:") else {
        return false;
    };
    let groups: Vec<&str> = uuid.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    lengths == [8, 4, 4, 4, 12]
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub(crate) fn name_at_version(name: Option<&str>, version: Option<&str>) -> Option<String> {
    match (name, version) {
        (Some(n), Some(v)) => Some(format!("{n}@{v}")),
        (Some(n), None) => Some(n.to_string()),
        _ => None,
    }
}

fn walk(
    list: &[CdxComponent],
    prefix: &str,
    w: &mut Warnings,
    out: &mut Vec<Component>,
    refs: &mut BTreeMap<String, RefTarget>,
) {
    for (i, c) in list.iter().enumerate() {
        let path = format!("{prefix}[{i}]");
        match c.ty.as_deref() {
            None => w.push(&path, "component has no type"),
            Some(t) if !COMPONENT_TYPES.contains(&t) => w.push(
                &format!("{path}.type"),
                format!("unknown component type {t:?}"),
            ),
            Some(_) => {}
        }
        let purl = component_purl(c, &path, w);
        let hashes = component_hashes(c, &path, w);
        let reference = usable_ref(c, &path, w);
        if let Some(r) = &reference {
            if refs.contains_key(r) {
                w.push(
                    &format!("{path}.bom-ref"),
                    format!("duplicate bom-ref {r:?}"),
                );
            } else {
                refs.insert(r.clone(), RefTarget::Component(purl.clone()));
            }
        }
        match c.name.as_deref().filter(|n| !n.is_empty()) {
            Some(name) => out.push(Component {
                reference,
                name: name.to_string(),
                version: purl
                    .as_ref()
                    .and_then(Purl::match_version)
                    .or_else(|| c.version.clone().filter(|v| !v.is_empty())),
                ecosystem: purl.as_ref().and_then(Purl::ecosystem),
                package: purl.as_ref().map(Purl::package_name),
                purl: purl.as_ref().map(Purl::canonical),
                hashes,
            }),
            None => w.push(&path, "component has no name; skipped"),
        }
        if let Some(children) = &c.components {
            walk(children, &format!("{path}.components"), w, out, refs);
        }
    }
}

fn component_purl(c: &CdxComponent, path: &str, w: &mut Warnings) -> Option<Purl> {
    let raw = c.purl.as_deref().filter(|p| !p.is_empty())?;
    match Purl::parse(raw) {
        Ok(p) => Some(p),
        Err(e) => {
            w.push_error(e.at(w.document, &format!("{path}.purl")));
            None
        }
    }
}

fn component_hashes(c: &CdxComponent, path: &str, w: &mut Warnings) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (j, h) in c.hashes.iter().flatten().enumerate() {
        let alg = h.alg.to_ascii_lowercase();
        match check_hash(&alg, &h.content) {
            Ok(content) => {
                out.insert(alg, content);
            }
            Err(msg) => w.push(&format!("{path}.hashes[{j}]"), msg),
        }
    }
    out
}

fn usable_ref(c: &CdxComponent, path: &str, w: &mut Warnings) -> Option<String> {
    match c.bom_ref.as_deref() {
        Some("") => {
            w.push(&format!("{path}.bom-ref"), "empty bom-ref");
            None
        }
        other => other.map(str::to_string),
    }
}

pub fn parse_sbom(document: &str, bytes: &[u8], scope: Scope) -> Result<Sbom, FormatError> {
    let (sbom, warnings) = parse_sbom_with_warnings(document, bytes, scope)?;
    log_warnings(&warnings);
    Ok(sbom)
}

/// Like [`parse_sbom`], also returning the problems that dropped single
/// values (bad purls, hashes, bom-refs) while keeping the document.
pub fn parse_sbom_with_warnings(
    document: &str,
    bytes: &[u8],
    scope: Scope,
) -> Result<(Sbom, Vec<FormatError>), FormatError> {
    let mut w = Warnings::new(document);
    let walked = read(document, bytes, &mut w)?;
    let sbom = Sbom {
        format: SbomFormat::CycloneDx,
        spec_version: walked.bom.spec_version,
        artifact: walked.artifact,
        scope,
        components: walked.components,
    };
    Ok((sbom, w.finish()))
}

pub fn parse_vex(
    document: &str,
    bytes: &[u8],
    scope: Scope,
) -> Result<Vec<VexStatement>, FormatError> {
    let (statements, warnings) = parse_vex_with_warnings(document, bytes, scope)?;
    log_warnings(&warnings);
    Ok(statements)
}

/// What an `affects[]` entry points at, before `versions` refine it.
enum Target {
    Purl(Purl),
    /// The document's own artifact (its metadata component).
    ThisArtifact,
    /// A whole artifact that cannot be versioned here, optionally narrowed to
    /// one of its components by bom-ref.
    Artifact {
        id: String,
        subcomponent: Option<String>,
    },
}

/// Statements from the `vulnerabilities[]` section.
///
/// Decisions: a vulnerability without `analysis.state` is a plain "this is
/// present" report and becomes `affected` (it must never suppress a
/// finding). A vulnerability without `affects` names no product and yields
/// no statement. `affects[].versions` entries with an exact `version`
/// become one statement each on the versioned product.
///
/// A `range` (a purl-spec `vers:` range) names no single product, so it is
/// expanded over the versions of the same product that this document names
/// (see [`known_versions`]): one statement per version inside the range. The
/// expansion is sound but not complete, so a range that is not a plain list
/// of versions is also reported as a warning; a range that holds none of the
/// known versions is dropped with a warning rather than widened to every
/// version. Not stating the remaining versions never suppresses a finding.
pub fn parse_vex_with_warnings(
    document: &str,
    bytes: &[u8],
    scope: Scope,
) -> Result<(Vec<VexStatement>, Vec<FormatError>), FormatError> {
    let mut w = Warnings::new(document);
    let walked = read(document, bytes, &mut w)?;
    let source = walked
        .bom
        .serial_number
        .clone()
        .unwrap_or_else(|| document.to_string());
    let doc_timestamp = walked
        .bom
        .metadata
        .as_ref()
        .and_then(|m| m.timestamp.clone());
    let targets = resolve_all(&walked, &mut w);
    let known = known_versions(&walked, &targets);
    let mut out = Vec::new();
    for (i, v) in walked.bom.vulnerabilities.iter().flatten().enumerate() {
        let path = format!("vulnerabilities[{i}]");
        let Some(id) = v.id.clone().filter(|id| !id.is_empty()) else {
            w.push(&path, "vulnerability has no id; skipped");
            continue;
        };
        let mut aliases: Vec<String> = v
            .references
            .iter()
            .flatten()
            .filter_map(|r| r.id.clone())
            .filter(|a| !a.is_empty() && *a != id)
            .collect();
        aliases.sort();
        aliases.dedup();
        let analysis = v.analysis.as_ref();
        let status = match analysis.and_then(|a| a.state.as_deref()) {
            None => VexStatus::Affected,
            Some(state) => state_status(state).unwrap_or_else(|| {
                w.push(
                    &format!("{path}.analysis.state"),
                    format!("unknown analysis state {state:?}; treated as affected"),
                );
                VexStatus::Affected
            }),
        };
        let timestamp = [
            analysis.and_then(|a| a.last_updated.clone()),
            v.updated.clone(),
            v.published.clone(),
            doc_timestamp.clone(),
        ]
        .into_iter()
        .flatten()
        .find(|t| is_rfc3339(t));
        let base = VexStatement {
            vulnerability: id,
            aliases,
            product: VexProduct::Artifact(walked.artifact.id.clone()),
            subcomponent: None,
            status,
            justification: analysis.and_then(|a| a.justification.clone()),
            impact_statement: analysis.and_then(|a| a.detail.clone()),
            timestamp,
            source: source.clone(),
            scope: scope.clone(),
        };
        for (k, affects) in v.affects.iter().flatten().enumerate() {
            let apath = format!("{path}.affects[{k}]");
            let Some(target) = targets.get(&(i, k)) else {
                continue;
            };
            let Some(versions) = affects.versions.as_ref().filter(|vs| !vs.is_empty()) else {
                let (product, subcomponent) = unversioned(&walked, target);
                out.push(VexStatement {
                    product,
                    subcomponent,
                    ..base.clone()
                });
                continue;
            };
            for (n, entry) in versions.iter().enumerate() {
                let vpath = format!("{apath}.versions[{n}]");
                let versions = match (entry.version.as_deref(), entry.range.as_deref()) {
                    (Some(version), _) if !version.is_empty() => vec![version.to_string()],
                    (_, Some(range)) => {
                        match expand_range(
                            range,
                            target,
                            &known,
                            &affects.reference,
                            &vpath,
                            &mut w,
                        ) {
                            Some(versions) => versions,
                            None => continue,
                        }
                    }
                    _ => {
                        w.push(&vpath, "entry has neither version nor range; skipped");
                        continue;
                    }
                };
                let status = match entry_status(base.status, entry.status.as_deref()) {
                    Some(s) => s,
                    None => {
                        w.push(
                            &format!("{vpath}.status"),
                            format!("unknown version status {:?}; skipped", entry.status),
                        );
                        continue;
                    }
                };
                for version in &versions {
                    let Some((product, subcomponent)) = versioned(&walked, target, version) else {
                        w.push(
                            &vpath,
                            format!(
                                "version {version:?} of {:?} cannot be expressed as a product; skipped",
                                affects.reference
                            ),
                        );
                        break;
                    };
                    out.push(VexStatement {
                        product,
                        subcomponent,
                        status,
                        ..base.clone()
                    });
                }
            }
        }
    }
    out.sort();
    out.dedup();
    Ok((out, w.finish()))
}

/// The targets of every `affects[]` entry of the vulnerabilities that have
/// an id, keyed by (vulnerability index, affects index), resolved once so
/// that each bad ref is reported once.
fn resolve_all(walked: &Walked, w: &mut Warnings) -> BTreeMap<(usize, usize), Target> {
    let mut out = BTreeMap::new();
    for (i, v) in walked.bom.vulnerabilities.iter().flatten().enumerate() {
        if v.id.as_deref().is_none_or(str::is_empty) {
            continue;
        }
        for (k, affects) in v.affects.iter().flatten().enumerate() {
            let path = format!("vulnerabilities[{i}].affects[{k}]");
            out.insert((i, k), resolve(walked, &affects.reference, &path, w));
        }
    }
    out
}

/// Which product a set of known versions belongs to: the document's own
/// artifact, or a package by purl type/namespace/name (qualifiers and
/// subpaths do not make another product, as in `scan::product`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum ProductKey {
    ThisArtifact,
    Package {
        ty: String,
        namespace: Option<String>,
        name: String,
    },
}

fn product_key(target: &Target) -> Option<ProductKey> {
    match target {
        Target::ThisArtifact => Some(ProductKey::ThisArtifact),
        Target::Purl(p) => Some(package_key(p)),
        Target::Artifact { .. } => None,
    }
}

fn package_key(p: &Purl) -> ProductKey {
    ProductKey::Package {
        ty: p.ty.clone(),
        namespace: p.namespace.clone(),
        name: p.name.clone(),
    }
}

/// The versions of each product that the document itself names: the
/// versions of its components and of its own artifact, the versions of purl
/// refs, the exact `affects[].versions[].version` entries and every version
/// written in an `affects[].versions[].range`. These are the versions a range
/// is expanded over.
fn known_versions(
    walked: &Walked,
    targets: &BTreeMap<(usize, usize), Target>,
) -> BTreeMap<ProductKey, BTreeSet<String>> {
    let mut known: BTreeMap<ProductKey, BTreeSet<String>> = BTreeMap::new();
    let mut add = |key: ProductKey, version: &str| {
        if !version.is_empty() {
            known.entry(key).or_default().insert(version.to_string());
        }
    };
    if let Some(version) = &walked.artifact.version {
        add(ProductKey::ThisArtifact, version);
    }
    for c in &walked.components {
        if let Some(p) = c.purl.as_deref().and_then(|p| Purl::parse(p).ok()) {
            if let Some(version) = &p.version {
                add(package_key(&p), version);
            }
        }
    }
    for (i, v) in walked.bom.vulnerabilities.iter().flatten().enumerate() {
        for (k, affects) in v.affects.iter().flatten().enumerate() {
            let Some(target) = targets.get(&(i, k)) else {
                continue;
            };
            let Some(key) = product_key(target) else {
                continue;
            };
            if let Target::Purl(Purl {
                version: Some(version),
                ..
            }) = target
            {
                add(key.clone(), version);
            }
            for entry in affects.versions.iter().flatten() {
                if let Some(version) = &entry.version {
                    add(key.clone(), version);
                }
                if let Some(range) = entry
                    .range
                    .as_deref()
                    .and_then(|r| VersRange::parse(r).ok())
                {
                    for c in range.constraints() {
                        add(key.clone(), &c.version);
                    }
                }
            }
        }
    }
    known
}

/// The known versions of `target` that `range` holds, or `None` (with a
/// warning) when the range is invalid or holds none of them.
fn expand_range(
    range: &str,
    target: &Target,
    known: &BTreeMap<ProductKey, BTreeSet<String>>,
    reference: &str,
    path: &str,
    w: &mut Warnings,
) -> Option<Vec<String>> {
    let parsed = match VersRange::parse(range) {
        Ok(r) => r,
        Err(e) => {
            w.push(&format!("{path}.range"), format!("{e}; skipped"));
            return None;
        }
    };
    let inside: Vec<String> = product_key(target)
        .and_then(|key| known.get(&key))
        .into_iter()
        .flatten()
        .filter(|v| parsed.contains(v).unwrap_or(false))
        .cloned()
        .collect();
    if inside.is_empty() {
        w.push(
            path,
            format!(
                "version range {range:?} holds none of the versions this document names \
                 for {reference:?}; skipped"
            ),
        );
        return None;
    }
    if !parsed.is_enumeration() {
        w.push(
            path,
            format!(
                "version range {range:?} is stated only for the versions of {reference:?} \
                 this document names ({}); other versions in it are not covered",
                inside.join(", ")
            ),
        );
    }
    Some(inside)
}

fn state_status(state: &str) -> Option<VexStatus> {
    Some(match state {
        "not_affected" | "false_positive" => VexStatus::NotAffected,
        "resolved" | "resolved_with_pedigree" => VexStatus::Fixed,
        "exploitable" => VexStatus::Affected,
        "in_triage" => VexStatus::UnderInvestigation,
        _ => return None,
    })
}

/// Status of one `affects[].versions` entry: `unaffected` overrides an
/// `exploitable` analysis for that version, `unknown` means still open.
fn entry_status(base: VexStatus, status: Option<&str>) -> Option<VexStatus> {
    Some(match status {
        None => base,
        Some("affected") if base.suppresses() => VexStatus::Affected,
        Some("affected") => base,
        Some("unaffected") if base.suppresses() => base,
        Some("unaffected") => VexStatus::NotAffected,
        Some("unknown") => VexStatus::UnderInvestigation,
        Some(_) => return None,
    })
}

fn resolve(walked: &Walked, reference: &str, path: &str, w: &mut Warnings) -> Target {
    if let Some(target) = walked.refs.get(reference) {
        return match target {
            RefTarget::Artifact => Target::ThisArtifact,
            RefTarget::Component(Some(p)) => Target::Purl(p.clone()),
            RefTarget::Component(None) => Target::Artifact {
                id: walked.artifact.id.clone(),
                subcomponent: Some(reference.to_string()),
            },
        };
    }
    if let Some(link) = reference.strip_prefix("urn:cdx:") {
        let (bom, fragment) = match link.split_once('#') {
            Some((bom, frag)) => (bom, Some(frag)),
            None => (link, None),
        };
        let subcomponent = fragment.filter(|f| !f.is_empty()).map(|f| {
            decode_fragment(f).unwrap_or_else(|| {
                w.push(
                    &format!("{path}.ref"),
                    "BOM-Link fragment is not valid percent-encoding; kept as written",
                );
                f.to_string()
            })
        });
        return Target::Artifact {
            id: format!("urn:cdx:{bom}"),
            subcomponent,
        };
    }
    if reference.starts_with("pkg:") {
        match Purl::parse(reference) {
            Ok(p) => return Target::Purl(p),
            Err(e) => w.push_error(e.at(w.document, &format!("{path}.ref"))),
        }
    } else {
        w.push(
            &format!("{path}.ref"),
            format!("ref {reference:?} is not a bom-ref of this document, a BOM-Link or a purl"),
        );
    }
    Target::Artifact {
        id: walked.artifact.id.clone(),
        subcomponent: Some(reference.to_string()),
    }
}

fn unversioned(walked: &Walked, target: &Target) -> (VexProduct, Option<String>) {
    match target {
        Target::Purl(p) => (VexProduct::Purl(p.canonical()), None),
        Target::ThisArtifact => (VexProduct::Artifact(walked.artifact.id.clone()), None),
        Target::Artifact { id, subcomponent } => {
            (VexProduct::Artifact(id.clone()), subcomponent.clone())
        }
    }
}

/// The product at one exact version: a purl gets that version; the
/// document's own artifact becomes `name@version`, the id an SBOM of that
/// version would carry. Anything else has no versioned identity.
fn versioned(
    walked: &Walked,
    target: &Target,
    version: &str,
) -> Option<(VexProduct, Option<String>)> {
    match target {
        Target::Purl(p) => Some((VexProduct::Purl(p.with_version(version).canonical()), None)),
        Target::ThisArtifact if walked.artifact.digest.is_none() => walked
            .artifact
            .name
            .as_ref()
            .map(|n| (VexProduct::Artifact(format!("{n}@{version}")), None)),
        _ => None,
    }
}

fn decode_fragment(f: &str) -> Option<String> {
    let bytes = f.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_shapes() {
        for ok in [
            "2022-01-13T00:00:00Z",
            "2020-04-13T20:20:39+00:00",
            "2023-06-01T12:00:00.123456-05:30",
            "2023-06-01t12:00:00z",
        ] {
            assert!(is_rfc3339(ok), "{ok}");
        }
        for bad in [
            "",
            "2020-04-13",
            "2020-04-13T20:20:39",
            "2020-04-13T20:20:39.Z",
            "2020-04-13T20:20:39+0000",
            "2020-04-13T20:20:39Zjunk",
            "20200413T202039Z",
            "2020-04-13T20:20:39+00:0é",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }

    #[test]
    fn hashes_are_checked_by_algorithm_and_length() {
        assert_eq!(
            check_hash("md5", "3942447FAC867AE5CDB3229B658F4D48").as_deref(),
            Ok("3942447fac867ae5cdb3229b658f4d48")
        );
        assert!(check_hash("sha-1", "3942447fac867ae5cdb3229b658f4d48").is_err());
        assert!(check_hash("sha-256", "zz").is_err());
        assert!(check_hash("blake3", "abcd").is_ok());
        assert!(check_hash("blake3", "").is_err());
        assert!(check_hash("crc32", "abcd").is_err());
    }

    #[test]
    fn digest_prefers_the_hash_then_purl_then_version() {
        let hex = "b".repeat(64);
        let mut hashes = BTreeMap::new();
        let purl = Purl::parse(&format!("pkg:oci/app@sha256:{}", "c".repeat(64))).ok();
        assert_eq!(
            artifact_digest(&hashes, purl.as_ref(), Some(&format!("sha256:{hex}"))),
            Some(format!("sha256:{}", "c".repeat(64)))
        );
        assert_eq!(
            artifact_digest(
                &hashes,
                None,
                Some(&format!("SHA256:{}", hex.to_uppercase()))
            ),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(artifact_digest(&hashes, None, Some("1.0.0")), None);
        assert_eq!(artifact_digest(&hashes, None, Some("sha256:")), None);
        hashes.insert("sha-256".to_string(), "a".repeat(64));
        assert_eq!(
            artifact_digest(&hashes, purl.as_ref(), None),
            Some(format!("sha256:{}", "a".repeat(64)))
        );
    }

    #[test]
    fn version_entry_status_refines_the_analysis() {
        use VexStatus::*;
        assert_eq!(
            entry_status(Affected, Some("unaffected")),
            Some(NotAffected)
        );
        assert_eq!(entry_status(Fixed, Some("unaffected")), Some(Fixed));
        assert_eq!(entry_status(NotAffected, Some("affected")), Some(Affected));
        assert_eq!(
            entry_status(UnderInvestigation, Some("affected")),
            Some(UnderInvestigation)
        );
        assert_eq!(
            entry_status(NotAffected, Some("unknown")),
            Some(UnderInvestigation)
        );
        assert_eq!(entry_status(Fixed, None), Some(Fixed));
        assert_eq!(entry_status(Fixed, Some("maybe")), None);
        assert_eq!(state_status("false_positive"), Some(NotAffected));
        assert_eq!(state_status("resolved_with_pedigree"), Some(Fixed));
        assert_eq!(state_status("exploitable"), Some(Affected));
        assert_eq!(state_status("in_triage"), Some(UnderInvestigation));
        assert_eq!(state_status("NOT_AFFECTED"), None);
    }

    #[test]
    fn ranges_expand_over_the_versions_the_document_names() {
        let doc = br#"{
          "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
          "metadata": {"component": {"type": "application", "name": "app", "version": "3.1",
                                     "bom-ref": "app"}},
          "components": [
            {"type": "library", "name": "lodash", "bom-ref": "old", "purl": "pkg:npm/lodash@4.17.20"},
            {"type": "library", "name": "lodash", "bom-ref": "new", "purl": "pkg:npm/lodash@4.17.21"}
          ],
          "vulnerabilities": [
            {"id": "CVE-1", "analysis": {"state": "exploitable"},
             "affects": [{"ref": "new", "versions": [{"range": "vers:npm/<4.17.21", "status": "affected"}]},
                         {"ref": "app", "versions": [{"range": "vers:generic/>=3.0|<4.0", "status": "unaffected"},
                                                     {"range": "vers:generic/>=4.0|>=5.0"}]}]}
          ]
        }"#;
        let (st, warnings) =
            parse_vex_with_warnings("doc", doc, Scope::Global).unwrap_or_else(|e| panic!("{e}"));
        let got: Vec<(&VexProduct, VexStatus)> =
            st.iter().map(|s| (&s.product, s.status)).collect();
        assert_eq!(
            got,
            [
                (
                    &VexProduct::Purl("pkg:npm/lodash@4.17.20".into()),
                    VexStatus::Affected
                ),
                (
                    &VexProduct::Artifact("app@3.0".into()),
                    VexStatus::NotAffected
                ),
                (
                    &VexProduct::Artifact("app@3.1".into()),
                    VexStatus::NotAffected
                ),
            ]
        );
        let paths: Vec<&str> = warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "vulnerabilities[0].affects[0].versions[0]",
                "vulnerabilities[0].affects[1].versions[0]",
                "vulnerabilities[0].affects[1].versions[1].range",
            ],
            "{warnings:#?}"
        );
    }

    #[test]
    fn bom_link_fragments_are_percent_decoded() {
        assert_eq!(
            decode_fragment("pkg%3Anpm%2Fa%401.0").as_deref(),
            Some("pkg:npm/a@1.0")
        );
        assert_eq!(decode_fragment("plain-ref").as_deref(), Some("plain-ref"));
        assert_eq!(decode_fragment("bad%4"), None);
        assert_eq!(decode_fragment("%ff"), None);
    }

    #[test]
    fn serial_numbers_must_be_uuid_urns() {
        assert!(is_uuid_urn("urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79"));
        assert!(!is_uuid_urn("urn:uuid:3e671687-395b-41f5-a30f"));
        assert!(!is_uuid_urn("3e671687-395b-41f5-a30f-a58921a69b79"));
        assert!(!is_uuid_urn(
            "urn:uuid:3e671687-395b-41f5-a30f-a58921a69bzz"
        ));
    }
}
