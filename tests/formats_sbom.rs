//! Corpus-wide checks of the CycloneDX and SPDX parsers (and CycloneDX VEX)
//! against the real public documents in the shared data set, plus our own
//! deliberately broken documents.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use recheck::formats::purl::Purl;
use recheck::formats::{cyclonedx, spdx, ErrorKind, FormatError};
use recheck::model::{Sbom, Scope, VexProduct, VexStatement, VexStatus};

use common::{json_files, read, shared_data};

fn rel(base: &Path, path: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn tenant() -> Scope {
    Scope::Tenant("t1".to_string())
}

fn cdx_sbom(path: &Path) -> (Sbom, Vec<FormatError>) {
    let name = path.display().to_string();
    cyclonedx::parse_sbom_with_warnings(&name, &read(path), tenant())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn cdx_vex(path: &Path) -> Vec<VexStatement> {
    let name = path.display().to_string();
    cyclonedx::parse_vex(&name, &read(path), Scope::Global).unwrap_or_else(|e| panic!("{e}"))
}

fn spdx_sbom(path: &Path) -> (Sbom, Vec<FormatError>) {
    let name = path.display().to_string();
    spdx::parse_sbom_with_warnings(&name, &read(path), tenant()).unwrap_or_else(|e| panic!("{e}"))
}

#[derive(Default)]
struct Tally {
    files: usize,
    components: usize,
    with_purl: usize,
    with_ecosystem: usize,
    warnings: usize,
}

fn print_totals(format: &str, totals: &BTreeMap<String, Tally>) {
    for (version, t) in totals {
        println!(
            "TOTAL {format} {version}: {} files, {} components ({} with purl, {} with ecosystem), {} warnings",
            t.files, t.components, t.with_purl, t.with_ecosystem, t.warnings
        );
    }
}

fn tally(totals: &mut BTreeMap<String, Tally>, sbom: &Sbom, warnings: usize) {
    let t = totals.entry(sbom.spec_version.clone()).or_default();
    t.files += 1;
    t.components += sbom.components.len();
    t.with_purl += sbom.components.iter().filter(|c| c.purl.is_some()).count();
    t.with_ecosystem += sbom
        .components
        .iter()
        .filter(|c| c.ecosystem.is_some())
        .count();
    t.warnings += warnings;
}

/// Invariants every parsed SBOM must hold, whatever its content.
fn check_invariants(what: &str, sbom: &Sbom) {
    assert!(!sbom.artifact.id.is_empty(), "{what}: empty artifact id");
    let mut sorted = sbom.components.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted, sbom.components,
        "{what}: components not sorted/deduped"
    );
    let mut refs = sbom.artifact.references.clone();
    refs.sort();
    refs.dedup();
    assert_eq!(
        refs, sbom.artifact.references,
        "{what}: references not sorted/deduped"
    );
    for c in &sbom.components {
        if let Some(p) = &c.purl {
            let reparsed = Purl::parse(p).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(&reparsed.canonical(), p, "{what}: purl not canonical");
            assert_eq!(c.ecosystem, reparsed.ecosystem(), "{what}: {p}");
            assert_eq!(c.package.as_deref(), Some(reparsed.package_name().as_str()));
        } else {
            assert!(
                c.ecosystem.is_none() && c.package.is_none(),
                "{what}: {c:?}"
            );
        }
    }
}

#[test]
fn every_cyclonedx_sbom_parses() {
    let Some(data) = shared_data() else { return };
    let base = data.join("sbom/cyclonedx");
    let mut files = json_files(&base.join("bom-examples"));
    files.extend(json_files(&base.join("in-the-wild")));
    for version in ["1.4", "1.5", "1.6"] {
        files.extend(json_files(
            &base.join("spec-tests").join(version).join("valid"),
        ));
    }
    assert!(
        files.len() > 100,
        "expected the CycloneDX corpus, found {}",
        files.len()
    );
    let mut totals = BTreeMap::new();
    for path in &files {
        let what = rel(&base, path);
        let (sbom, warnings) = cdx_sbom(path);
        println!(
            "{what}: spec {} artifact {:?}: {} components, {} warnings",
            sbom.spec_version,
            sbom.artifact.id,
            sbom.components.len(),
            warnings.len()
        );
        for w in &warnings {
            println!("    warning: {w}");
        }
        check_invariants(&what, &sbom);
        assert_eq!(sbom.scope, tenant());
        tally(&mut totals, &sbom, warnings.len());
    }
    print_totals("CycloneDX", &totals);
    assert_eq!(
        totals.keys().cloned().collect::<Vec<_>>(),
        ["1.4", "1.5", "1.6"]
    );
}

#[test]
fn every_spdx_sbom_parses() {
    let Some(data) = shared_data() else { return };
    let base = data.join("sbom/spdx");
    let files = json_files(&base);
    assert!(
        files.len() >= 20,
        "expected the SPDX corpus, found {}",
        files.len()
    );
    let mut totals = BTreeMap::new();
    for path in &files {
        let what = rel(&base, path);
        let (sbom, warnings) = spdx_sbom(path);
        println!(
            "{what}: {} artifact {:?} ({} references): {} components, {} warnings",
            sbom.spec_version,
            sbom.artifact.id,
            sbom.artifact.references.len(),
            sbom.components.len(),
            warnings.len()
        );
        for w in &warnings {
            println!("    warning: {w}");
        }
        check_invariants(&what, &sbom);
        tally(&mut totals, &sbom, warnings.len());
    }
    print_totals("SPDX", &totals);
    assert_eq!(
        totals.keys().cloned().collect::<Vec<_>>(),
        ["SPDX-2.2", "SPDX-2.3"]
    );
}

/// The schema's `invalid-*` fixtures: none may panic; those that break a
/// field we read must be rejected naming it or accepted with a warning on it.
#[test]
fn cyclonedx_invalid_spec_tests_are_rejected_or_warned() {
    let Some(data) = shared_data() else { return };
    let base = data.join("sbom/cyclonedx/spec-tests");
    // Fixture stem → the path the error or a warning must name.
    let modelled: &[(&str, &str)] = &[
        ("invalid-bomformat", "bomFormat"),
        ("invalid-component-ref", "components[1].bom-ref"),
        ("invalid-component-type", "components[0].type"),
        ("invalid-empty-component", "components[0]"),
        ("invalid-hash-alg", "components[0].hashes[0]"),
        ("invalid-hash-md5", "components[0].hashes[0]"),
        ("invalid-hash-sha1", "components[0].hashes[1]"),
        ("invalid-hash-sha256", "components[0].hashes[2]"),
        ("invalid-hash-sha512", "components[0].hashes[3]"),
        ("invalid-metadata-timestamp", "metadata.timestamp"),
        ("invalid-missing-component-type", "components[0]"),
        ("invalid-serialnumber", "serialNumber"),
    ];
    let (mut rejected, mut warned, mut silent) = (0, 0, 0);
    let mut checked = 0;
    for version in ["1.4", "1.5", "1.6"] {
        for path in json_files(&base.join(version).join("invalid")) {
            let what = rel(&base, &path);
            let name = path.display().to_string();
            let result = cyclonedx::parse_sbom_with_warnings(&name, &read(&path), tenant());
            let named: Vec<String> = match &result {
                Err(e) => {
                    rejected += 1;
                    println!(
                        "{what}: REJECTED at {} ({:?}): {}",
                        e.path, e.kind, e.message
                    );
                    vec![e.path.clone()]
                }
                Ok((_, ws)) if !ws.is_empty() => {
                    warned += 1;
                    for w in ws {
                        println!("{what}: ACCEPTED with warning at {}: {}", w.path, w.message);
                    }
                    ws.iter().map(|w| w.path.clone()).collect()
                }
                Ok(_) => {
                    silent += 1;
                    println!("{what}: ACCEPTED without warning (the broken field is not read)");
                    Vec::new()
                }
            };
            let stem = path
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or_default()
                .trim_end_matches(".json")
                .trim_end_matches(version)
                .trim_end_matches('-');
            if let Some((_, field)) = modelled.iter().find(|(s, _)| *s == stem) {
                checked += 1;
                assert!(
                    named.iter().any(|p| p == field),
                    "{what}: expected an error or warning at {field}, got {named:?}"
                );
            }
        }
    }
    println!("TOTAL invalid fixtures: {rejected} rejected, {warned} warned, {silent} silent");
    assert_eq!(checked, modelled.len() * 3);
    assert_eq!(
        rejected, 3,
        "only the three invalid-bomformat files are fatal"
    );
}

#[test]
fn every_cyclonedx_vex_document_parses() {
    let Some(data) = shared_data() else { return };
    let base = data.join("vex/cyclonedx");
    let files = json_files(&base);
    assert!(
        files.len() >= 39,
        "expected the CycloneDX VEX corpus, found {}",
        files.len()
    );
    let mut total = 0;
    let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
    for path in &files {
        let what = rel(&base, path);
        let name = path.display().to_string();
        let (statements, warnings) =
            cyclonedx::parse_vex_with_warnings(&name, &read(path), Scope::Global)
                .unwrap_or_else(|e| panic!("{e}"));
        println!(
            "{what}: {} statements, {} warnings",
            statements.len(),
            warnings.len()
        );
        for w in &warnings {
            println!("    warning: {w}");
        }
        for s in &statements {
            assert_eq!(s.scope, Scope::Global);
            assert!(!s.vulnerability.is_empty());
            *by_status.entry(s.status.as_str()).or_default() += 1;
        }
        total += statements.len();
        // The BOMs that VEX documents link to are SBOMs as well.
        cdx_sbom(path);
    }
    println!(
        "TOTAL CycloneDX VEX: {} files, {total} statements, by status {by_status:?}",
        files.len()
    );
    assert_eq!(by_status.len(), 4, "all four statuses occur: {by_status:?}");
}

fn sbom_file(rel_path: &str) -> Option<PathBuf> {
    Some(shared_data()?.join(rel_path))
}

#[test]
fn juice_shop_components_are_npm() {
    let Some(path) = sbom_file("sbom/cyclonedx/bom-examples/juice-shop-via_npm-flat.bom.1.4.json")
    else {
        return;
    };
    let (sbom, warnings) = cdx_sbom(&path);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(sbom.spec_version, "1.4");
    println!(
        "juice-shop: {} components, artifact {:?}",
        sbom.components.len(),
        sbom.artifact
    );
    assert!((1100..=1116).contains(&sbom.components.len()));
    assert!(sbom
        .components
        .iter()
        .all(|c| c.ecosystem.as_deref() == Some("npm")));
    let express = sbom
        .components
        .iter()
        .find(|c| c.package.as_deref() == Some("express"))
        .expect("express is a juice-shop dependency");
    assert!(express
        .purl
        .as_deref()
        .is_some_and(|p| p.starts_with("pkg:npm/express@")));
    assert!(express.hashes.contains_key("sha-512") || express.hashes.contains_key("sha-1"));
    // No serialNumber: the artifact purl is its only other identity.
    assert_eq!(sbom.artifact.id, "juice-shop@14.1.1");
    let purl =
        "pkg:npm/juice-shop@14.1.1?vcs_url=git%2Bhttps://github.com/juice-shop/juice-shop.git";
    assert_eq!(sbom.artifact.purl.as_deref(), Some(purl));
    assert_eq!(sbom.artifact.references, [purl]);
}

#[test]
fn laravel_composer_purls_map_to_packagist() {
    let Some(path) = sbom_file("sbom/cyclonedx/bom-examples/laravel-7.12.0.bom.1.4.json") else {
        return;
    };
    let (sbom, _) = cdx_sbom(&path);
    let packagist: Vec<_> = sbom
        .components
        .iter()
        .filter(|c| c.ecosystem.as_deref() == Some("Packagist"))
        .collect();
    println!(
        "laravel: {} components, {} Packagist",
        sbom.components.len(),
        packagist.len()
    );
    assert_eq!(sbom.components.len(), 62);
    assert_eq!(packagist.len(), 62);
    assert!(packagist.iter().all(|c| c
        .package
        .as_deref()
        .is_some_and(|p| p.contains('/') && p == p.to_lowercase())));
    assert!(packagist
        .iter()
        .any(|c| c.package.as_deref() == Some("symfony/http-foundation")));
}

#[test]
fn spdx_described_package_is_the_artifact() {
    let Some(path) = sbom_file("sbom/spdx/spdx-spec/SPDXJSONExample-v2.3.spdx.json") else {
        return;
    };
    let (sbom, _) = spdx_sbom(&path);
    println!("{:#?}", sbom.artifact);
    // documentDescribes names SPDXRef-File (not a package) and SPDXRef-Package,
    // glibc, whose SHA256 checksum is the artifact digest.
    assert_eq!(sbom.artifact.name.as_deref(), Some("glibc"));
    assert_eq!(sbom.artifact.version.as_deref(), Some("2.11.1"));
    assert_eq!(
        sbom.artifact.id,
        "sha256:11b6d3ee554eedf79299905a98f9b9a04e498210b59f15094c916c91d150efcd"
    );
    assert_eq!(
        sbom.artifact.digest.as_deref(),
        Some(sbom.artifact.id.as_str())
    );
    assert!(sbom
        .artifact
        .references
        .iter()
        .any(|r| r.starts_with("http://spdx.org/spdxdocs/spdx-example-444504E0")));
    assert!(sbom
        .components
        .iter()
        .all(|c| c.reference.as_deref() != Some("SPDXRef-Package")));
    assert!(sbom.components.iter().all(|c| !c.name.ends_with(".c")));
}

#[test]
fn spdx_oci_image_root_has_a_digest_id() {
    let Some(path) = sbom_file("sbom/spdx/vexctl/examples_csaf_sbom.spdx.json") else {
        return;
    };
    let (sbom, _) = spdx_sbom(&path);
    println!("{:#?}", sbom.artifact);
    assert!(
        sbom.artifact.id.starts_with("sha256:"),
        "{:?}",
        sbom.artifact
    );
    assert_eq!(
        sbom.artifact.digest.as_deref(),
        Some(sbom.artifact.id.as_str())
    );
    assert!(sbom
        .artifact
        .purl
        .as_deref()
        .is_some_and(|p| p.starts_with("pkg:oci/")));
    assert_eq!(sbom.components.len(), 2);
}

#[test]
fn spdx_syft_sbom_without_describes_uses_the_namespace() {
    let Some(path) = sbom_file("sbom/spdx/in-the-wild/flux_0.26.3_sbom.spdx.json") else {
        return;
    };
    let (sbom, _) = spdx_sbom(&path);
    assert!(sbom
        .artifact
        .id
        .starts_with("https://anchore.com/syft/file/flux_0.26.3"));
    assert_eq!(sbom.components.len(), 244);
    let go = sbom
        .components
        .iter()
        .filter(|c| c.ecosystem.as_deref() == Some("Go"))
        .count();
    println!("flux: {} components, {go} Go", sbom.components.len());
    assert!(go > 200);
}

fn statements(rel_path: &str) -> Option<Vec<VexStatement>> {
    Some(cdx_vex(&shared_data()?.join(rel_path)))
}

#[test]
fn vex_use_case_1_is_not_affected_for_the_product() {
    let Some(st) = statements("vex/cyclonedx/Use-Cases/Case-1/vex.json") else {
        return;
    };
    assert_eq!(st.len(), 1);
    let s = &st[0];
    assert_eq!(s.vulnerability, "CVE-2020-25649");
    assert_eq!(s.status, VexStatus::NotAffected);
    assert_eq!(
        s.product,
        VexProduct::Artifact("Acme Product@2.4.0".to_string())
    );
    assert_eq!(s.subcomponent, None);
    assert_eq!(s.justification.as_deref(), Some("code_not_reachable"));
    assert!(s
        .impact_statement
        .as_deref()
        .is_some_and(|d| d.contains("not reachable")));
    assert_eq!(s.timestamp.as_deref(), Some("2022-01-13T00:00:00Z"));
}

#[test]
fn vex_use_case_10_lists_individual_versions() {
    let Some(st) = statements("vex/cyclonedx/Use-Cases/Case-10/vex.json") else {
        return;
    };
    let products: Vec<String> = st
        .iter()
        .map(|s| match &s.product {
            VexProduct::Artifact(id) | VexProduct::Purl(id) => id.clone(),
        })
        .collect();
    println!("{products:?}");
    assert!(products.contains(&"Acme Product@2.2.0".to_string()));
    assert!(products.contains(&"Acme Product@2.4.0".to_string()));
    assert!(st.iter().all(|s| s.status == VexStatus::NotAffected));
}

#[test]
fn vex_bom_links_name_the_linked_bom_and_component() {
    let Some(st) = statements("vex/cyclonedx/Use-Cases/Case-13/vex.json") else {
        return;
    };
    assert_eq!(st.len(), 3);
    let product3 = st
        .iter()
        .find(|s| s.subcomponent.as_deref() == Some("acme-product-3"))
        .expect("acme-product-3 statement");
    assert_eq!(
        product3.product,
        VexProduct::Artifact("urn:cdx:240b5b0b-917d-4f48-816c-97e1944d8079/1".to_string())
    );
    assert_eq!(product3.status, VexStatus::Affected);
    assert_eq!(
        st.iter()
            .filter(|s| s.status == VexStatus::NotAffected)
            .count(),
        2
    );

    // The linked BOM carries the same urn:cdx reference, so the two join.
    let Some(bom) = sbom_file("vex/cyclonedx/Use-Cases/Case-13/bom-3.json") else {
        return;
    };
    let (sbom, _) = cdx_sbom(&bom);
    let VexProduct::Artifact(urn) = &product3.product else {
        unreachable!()
    };
    assert!(
        sbom.artifact.references.contains(urn),
        "{:?}",
        sbom.artifact
    );
}

#[test]
fn vex_bom_link_fragment_may_be_a_purl() {
    let Some(st) = statements("vex/cyclonedx/vex.json") else {
        return;
    };
    assert_eq!(st.len(), 1);
    let s = &st[0];
    assert_eq!(s.aliases, ["SNYK-JAVA-COMFASTERXMLJACKSONCORE-1048302"]);
    assert_eq!(
        s.product,
        VexProduct::Artifact("urn:cdx:3e671687-395b-41f5-a30f-a58921a69b79/1".to_string())
    );
    assert_eq!(
        s.subcomponent.as_deref(),
        Some("pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.10.0?type=jar")
    );
    assert_eq!(s.status, VexStatus::NotAffected);
    // `updated` wins over `published` and the (absent) metadata timestamp.
    assert!(s.timestamp.is_some());
}

#[test]
fn cisa_case_3_mixes_all_statuses() {
    let Some(st) = statements("vex/cyclonedx/CISA-Use-Cases/Case-3/vex.json") else {
        return;
    };
    let count = |status| st.iter().filter(|s| s.status == status).count();
    assert_eq!(st.len(), 19);
    assert_eq!(count(VexStatus::UnderInvestigation), 5);
    assert_eq!(count(VexStatus::NotAffected), 6);
    assert_eq!(count(VexStatus::Affected), 5);
    assert_eq!(count(VexStatus::Fixed), 3);
    assert!(st
        .iter()
        .all(|s| s.product == VexProduct::Artifact("GHI@17.4".to_string())));
}

#[test]
fn embedded_vex_resolves_component_bom_refs_to_purls() {
    let doc = br#"{
      "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 2,
      "serialNumber": "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
      "metadata": {"timestamp": "2024-01-01T00:00:00Z",
                   "component": {"type": "application", "name": "app", "version": "1.0", "bom-ref": "app"}},
      "components": [
        {"type": "library", "name": "jackson-databind", "version": "2.10.0", "bom-ref": "jd",
         "purl": "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.10.0"},
        {"type": "library", "name": "vendored", "bom-ref": "v"}
      ],
      "vulnerabilities": [
        {"id": "CVE-2020-25649", "analysis": {"state": "false_positive", "lastUpdated": "2024-02-02T00:00:00Z"},
         "affects": [{"ref": "jd"}, {"ref": "v"},
                     {"ref": "jd", "versions": [{"version": "2.9.0", "status": "unaffected"},
                                                {"range": "vers:maven/<2.9"}]}]},
        {"id": "CVE-2021-1", "affects": [{"ref": "pkg:npm/%40scope/x@1.0.0"}]},
        {"id": "CVE-2021-2", "analysis": {"state": "resolved_with_pedigree"}, "affects": [{"ref": "app"}]},
        {"id": "CVE-2021-3", "analysis": {"state": "in_triage"}}
      ]
    }"#;
    let (st, warnings) = cyclonedx::parse_vex_with_warnings("embedded", doc, Scope::Global)
        .unwrap_or_else(|e| panic!("{e}"));
    println!("{st:#?}\n{warnings:#?}");
    let jd = "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.10.0";
    let find = |vuln: &str, product: &VexProduct| {
        st.iter()
            .find(|s| s.vulnerability == vuln && &s.product == product)
            .unwrap_or_else(|| panic!("{vuln} {product:?} in {st:#?}"))
    };
    let s = find("CVE-2020-25649", &VexProduct::Purl(jd.to_string()));
    assert_eq!(s.status, VexStatus::NotAffected);
    assert_eq!(s.timestamp.as_deref(), Some("2024-02-02T00:00:00Z"));
    assert_eq!(s.source, "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79");
    let vendored = st
        .iter()
        .find(|s| s.subcomponent.as_deref() == Some("v"))
        .expect("component without purl");
    assert_eq!(
        vendored.product,
        VexProduct::Artifact("app@1.0".to_string())
    );
    find(
        "CVE-2020-25649",
        &VexProduct::Purl(
            "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.9.0".to_string(),
        ),
    );
    let npm = find(
        "CVE-2021-1",
        &VexProduct::Purl("pkg:npm/%40scope/x@1.0.0".to_string()),
    );
    assert_eq!(
        npm.status,
        VexStatus::Affected,
        "no analysis means affected"
    );
    assert_eq!(npm.timestamp.as_deref(), Some("2024-01-01T00:00:00Z"));
    let app = find("CVE-2021-2", &VexProduct::Artifact("app@1.0".to_string()));
    assert_eq!(app.status, VexStatus::Fixed);
    assert!(
        st.iter().all(|s| s.vulnerability != "CVE-2021-3"),
        "no affects, no statement"
    );
    assert_eq!(st.len(), 5);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(
        warnings[0].path,
        "vulnerabilities[0].affects[2].versions[1]"
    );
}

#[test]
fn cyclonedx_artifact_identity_rules() {
    let parse = |doc: &str| {
        cyclonedx::parse_sbom("doc", doc.as_bytes(), tenant()).unwrap_or_else(|e| panic!("{e}"))
    };
    let hex = "a".repeat(64);
    let by_hash = parse(&format!(
        r#"{{"bomFormat":"CycloneDX","specVersion":"1.6","metadata":{{"component":
            {{"type":"container","name":"img","version":"1","hashes":[{{"alg":"SHA-256","content":"{}"}}]}}}}}}"#,
        hex.to_uppercase()
    ));
    assert_eq!(by_hash.artifact.id, format!("sha256:{hex}"));
    let by_purl = parse(&format!(
        r#"{{"bomFormat":"CycloneDX","specVersion":"1.5","metadata":{{"component":
            {{"type":"container","name":"img","purl":"pkg:oci/img@sha256%3A{hex}?tag=latest"}}}}}}"#
    ));
    assert_eq!(by_purl.artifact.id, format!("sha256:{hex}"));
    assert_eq!(
        by_purl.artifact.references,
        [format!("pkg:oci/img@sha256:{hex}?tag=latest")]
    );
    let by_version = parse(&format!(
        r#"{{"bomFormat":"CycloneDX","specVersion":"1.4","metadata":{{"component":
            {{"type":"container","name":"img","version":"sha256:{hex}"}}}}}}"#
    ));
    assert_eq!(by_version.artifact.id, format!("sha256:{hex}"));
    let by_name = parse(
        r#"{"bomFormat":"CycloneDX","specVersion":"1.4","metadata":{"component":{"type":"application","name":"app"}}}"#,
    );
    assert_eq!(by_name.artifact.id, "app");
    let by_serial = parse(
        r#"{"bomFormat":"CycloneDX","specVersion":"1.4","version":3,
            "serialNumber":"urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79"}"#,
    );
    assert_eq!(
        by_serial.artifact.id,
        "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79"
    );
    assert_eq!(
        by_serial.artifact.references,
        [
            "urn:cdx:3e671687-395b-41f5-a30f-a58921a69b79/3",
            "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79"
        ]
    );
    let bare = r#"{"bomFormat":"CycloneDX","specVersion":"1.2"}"#;
    let by_bytes = parse(bare);
    assert!(by_bytes.artifact.id.starts_with("sha256:"));
    assert_eq!(by_bytes.artifact.id, parse(bare).artifact.id, "stable");
}

#[test]
fn nested_components_are_found_and_services_are_not() {
    let doc = br#"{"bomFormat":"CycloneDX","specVersion":"1.6",
      "metadata":{"component":{"type":"application","name":"app","components":[
          {"type":"library","name":"inner","purl":"pkg:pypi/Inner_Pkg@1.0"}]}},
      "components":[{"type":"library","name":"outer","purl":"pkg:cargo/outer@0.1.0","components":[
          {"type":"library","name":"deep","purl":"pkg:golang/github.com/a/deep@v1.2.3"},
          {"type":"library","name":"bad","purl":"not a purl"}]},
          {"type":"library","name":"outer","purl":"pkg:cargo/outer@0.1.0"}],
      "services":[{"name":"api","bom-ref":"svc"}]}"#;
    let (sbom, warnings) = cyclonedx::parse_sbom_with_warnings("nested", doc, tenant())
        .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = sbom.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["bad", "deep", "inner", "outer"]);
    let eco: Vec<Option<&str>> = sbom
        .components
        .iter()
        .map(|c| c.ecosystem.as_deref())
        .collect();
    assert_eq!(eco, [None, Some("Go"), Some("PyPI"), Some("crates.io")]);
    let inner = sbom
        .components
        .iter()
        .find(|c| c.name == "inner")
        .expect("inner");
    assert_eq!(inner.package.as_deref(), Some("inner-pkg"));
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].path, "components[0].components[1].purl");
    assert_eq!(warnings[0].kind, ErrorKind::Invalid);
}

/// Our own broken documents: each must fail with the given kind at the given path.
#[test]
fn broken_documents_fail_with_kind_and_path() {
    let cdx: &[(&str, ErrorKind, &str)] = &[
        (
            r#"{"bomFormat":"SPDX","specVersion":"1.4"}"#,
            ErrorKind::Invalid,
            "bomFormat",
        ),
        (
            r#"{"bomFormat":"CycloneDX","specVersion":"2.0"}"#,
            ErrorKind::Invalid,
            "specVersion",
        ),
        (
            r#"{"bomFormat":"CycloneDX","specVersion":1.4}"#,
            ErrorKind::Schema,
            "specVersion",
        ),
        (r#"{"bomFormat":"CycloneDX"}"#, ErrorKind::Schema, "."),
        (
            r#"{"bomFormat":"CycloneDX","specVersion":"1.4","components":{}}"#,
            ErrorKind::Schema,
            "components",
        ),
        (
            r#"{"bomFormat":"CycloneDX","specVersion":"1.4","components":[{"name":"a","purl":7}]}"#,
            ErrorKind::Schema,
            "components[0].purl",
        ),
        (
            r#"{"bomFormat":"CycloneDX","specVersion":"1.4","components":[{"name":"a","components":[{"hashes":[{"alg":"MD5"}]}]}]}"#,
            ErrorKind::Schema,
            "components[0].components[0].hashes[0]",
        ),
        (
            r#"{"bomFormat":"CycloneDX","specVersion":"1.4","vulnerabilities":[{"id":"X","affects":[{}]}]}"#,
            ErrorKind::Schema,
            "vulnerabilities[0].affects[0]",
        ),
        (
            r#"{"bomFormat":"CycloneDX","specVersion":"1.4","#,
            ErrorKind::Syntax,
            "",
        ),
        ("[1,2]", ErrorKind::Schema, "[0]"),
        ("\u{feff}garbage", ErrorKind::Syntax, ""),
    ];
    for (doc, kind, path) in cdx {
        for result in [
            cyclonedx::parse_sbom("broken", doc.as_bytes(), tenant()).map(|_| ()),
            cyclonedx::parse_vex("broken", doc.as_bytes(), tenant()).map(|_| ()),
        ] {
            let err = result.expect_err(doc);
            println!("{doc} -> {err} ({:?})", err.kind);
            check_error(doc, &err, *kind, path);
            assert_eq!(err.document, "broken");
        }
    }
    let spdx_docs: &[(&str, ErrorKind, &str)] = &[
        (
            r#"{"spdxVersion":"SPDX-3.0"}"#,
            ErrorKind::Invalid,
            "spdxVersion",
        ),
        (
            r#"{"spdxVersion":"SPDX-2.3","packages":[{"name":"a"}]}"#,
            ErrorKind::Schema,
            "packages[0]",
        ),
        (
            r#"{"spdxVersion":"SPDX-2.3","packages":{"name":"a"}}"#,
            ErrorKind::Schema,
            "packages",
        ),
        (
            r#"{"spdxVersion":"SPDX-2.3","packages":[{"SPDXID":"SPDXRef-a","name":"a","checksums":[{"algorithm":"SHA1"}]}]}"#,
            ErrorKind::Schema,
            "packages[0].checksums[0]",
        ),
        (
            r#"{"spdxVersion":"SPDX-2.3","relationships":[{"spdxElementId":1}]}"#,
            ErrorKind::Schema,
            "relationships[0].spdxElementId",
        ),
        (r#"{"spdxVersion":"SPDX-2.3""#, ErrorKind::Syntax, ""),
    ];
    for (doc, kind, path) in spdx_docs {
        let err = spdx::parse_sbom("broken", doc.as_bytes(), tenant()).expect_err(doc);
        println!("{doc} -> {err} ({:?})", err.kind);
        check_error(doc, &err, *kind, path);
    }
}

/// Syntax errors have no meaningful JSON path (the shared deserializer
/// reports where it stopped), so only their kind is checked.
fn check_error(doc: &str, err: &FormatError, kind: ErrorKind, path: &str) {
    assert_eq!(err.kind, kind, "{doc}: {err}");
    if kind != ErrorKind::Syntax {
        assert_eq!(err.path, path, "{doc}: {err}");
    }
}

#[test]
fn spdx_value_problems_are_warnings() {
    let doc = br#"{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"d",
      "documentNamespace":"https://example.com/d-1",
      "documentDescribes":["SPDXRef-b-root","SPDXRef-a-root","SPDXRef-file"],
      "packages":[
        {"SPDXID":"SPDXRef-b-root","name":"tool","versionInfo":"2.0"},
        {"SPDXID":"SPDXRef-a-root","name":"app","versionInfo":"1.0",
         "checksums":[{"algorithm":"SHA256","checksumValue":"ABCDEF"},{"algorithm":"SHA1","checksumValue":"da39a3ee5e6b4b0d3255bfef95601890afd80709"}]},
        {"SPDXID":"SPDXRef-dep","name":"requests","versionInfo":"NOASSERTION",
         "externalRefs":[{"referenceCategory":"PACKAGE_MANAGER","referenceType":"purl","referenceLocator":"pkg:pypi/Requests@2.31.0"}]},
        {"SPDXID":"SPDXRef-bad","name":"bad",
         "externalRefs":[{"referenceCategory":"PACKAGE-MANAGER","referenceType":"purl","referenceLocator":"pkg:/"}]},
        {"SPDXID":"SPDXRef-dep","name":"dup"}
      ],
      "files":[{"SPDXID":"SPDXRef-file","fileName":"./a.c"}]}"#;
    let (sbom, warnings) =
        spdx::parse_sbom_with_warnings("d", doc, tenant()).unwrap_or_else(|e| panic!("{e}"));
    println!("{sbom:#?}\n{warnings:#?}");
    assert_eq!(sbom.artifact.id, "app@1.0", "first root by SPDXID");
    assert_eq!(
        sbom.artifact.references,
        ["https://example.com/d-1", "tool@2.0"]
    );
    let names: Vec<&str> = sbom.components.iter().map(|c| c.name.as_str()).collect();
    // Sorted by SPDXID (the first field of Component): b-root, bad, dep.
    assert_eq!(names, ["tool", "bad", "requests"]);
    let requests = sbom
        .components
        .iter()
        .find(|c| c.name == "requests")
        .expect("requests");
    assert_eq!(requests.version.as_deref(), Some("2.31.0"));
    assert_eq!(requests.package.as_deref(), Some("requests"));
    assert_eq!(requests.ecosystem.as_deref(), Some("PyPI"));
    let paths: Vec<&str> = warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "packages[1].checksums[0]",
            "packages[3].externalRefs[0].referenceLocator",
            "packages[4].SPDXID"
        ]
    );
}

#[test]
fn dispatch_sniffs_both_formats() {
    let Some(data) = shared_data() else { return };
    let cdx = data.join("sbom/cyclonedx/in-the-wild/kawipiko-sbom-cdx.json");
    let spdx_path = data.join("sbom/spdx/in-the-wild/julia.spdx.json");
    let a =
        recheck::formats::parse_sbom("k", &read(&cdx), tenant()).unwrap_or_else(|e| panic!("{e}"));
    let b = recheck::formats::parse_sbom("j", &read(&spdx_path), tenant())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.format, recheck::model::SbomFormat::CycloneDx);
    assert_eq!(b.format, recheck::model::SbomFormat::Spdx);
    assert_eq!(a.components.len(), 27);
    assert_eq!(b.artifact.name.as_deref(), Some("Julia"));
    assert_eq!(b.components.len(), 33);
}

/// Truncated and byte-flipped real documents: parsers return errors or
/// results, never panic.
#[test]
fn mangled_documents_never_panic() {
    let Some(data) = shared_data() else { return };
    let docs = [
        "sbom/cyclonedx/spec-tests/1.6/valid/valid-bom-1.6.json",
        "sbom/cyclonedx/spec-tests/1.5/valid/valid-vulnerability-1.5.json",
        "vex/cyclonedx/vex.json",
        "vex/cyclonedx/Use-Cases/Case-10/vex.json",
        "sbom/spdx/spdx-spec/SPDXJSONExample-v2.3.spdx.json",
        "sbom/spdx/vexctl/examples_csaf_sbom.spdx.json",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    const ALPHABET: &[u8] = b"\"{}[],:0a%#@/\\\xff";
    let mut outcomes = [0usize; 2];
    for rel_path in docs {
        let bytes = read(&data.join(rel_path));
        let mut variants: Vec<Vec<u8>> = (0..bytes.len())
            .step_by(13)
            .map(|n| bytes[..n].to_vec())
            .collect();
        for _ in 0..300 {
            let mut v = bytes.clone();
            for _ in 0..3 {
                let at = (next() as usize) % v.len();
                v[at] = ALPHABET[(next() as usize) % ALPHABET.len()];
            }
            variants.push(v);
        }
        for v in &variants {
            for ok in [
                cyclonedx::parse_sbom("m", v, tenant()).is_ok(),
                cyclonedx::parse_vex("m", v, tenant()).is_ok(),
                spdx::parse_sbom("m", v, tenant()).is_ok(),
            ] {
                outcomes[usize::from(ok)] += 1;
            }
        }
    }
    println!(
        "mangled documents: {} rejected, {} accepted",
        outcomes[0], outcomes[1]
    );
    assert!(outcomes[0] > 0 && outcomes[1] > 0);
}
