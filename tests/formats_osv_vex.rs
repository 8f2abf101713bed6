//! Corpus tests for the advisory and VEX parsers: every real OSV, OpenVEX
//! and CSAF document in the shared data set must parse, known documents must
//! yield known content, and broken variants of real documents must fail with
//! the right error kind and JSON path.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use recheck::formats::purl::Purl;
use recheck::formats::{self, csaf, cvss, openvex, osv, ErrorKind, FormatError};
use recheck::model::{Rating, Scope, VexProduct, VexStatement, VexStatus};
use serde_json::{json, Value};

use common::{json_files, json_files_skipping, read, shared_data};

#[test]
fn every_osv_advisory_parses() {
    let Some(data) = shared_data() else { return };
    let report = osv::load(&[data.join("osv")]);
    for e in &report.errors {
        eprintln!("error: {e}");
    }
    assert!(
        report.errors.is_empty(),
        "{} OSV documents failed",
        report.errors.len()
    );
    let mut per_ecosystem: BTreeMap<String, usize> = BTreeMap::new();
    for (_, a) in &report.items {
        let eco = a
            .affected
            .first()
            .map_or("<none>", |p| p.ecosystem.as_str());
        *per_ecosystem.entry(eco.to_string()).or_default() += 1;
    }
    println!("OSV advisories per ecosystem: {per_ecosystem:?}");
    assert_eq!(per_ecosystem.get("crates.io"), Some(&201));
    assert_eq!(per_ecosystem.get("PyPI"), Some(&444));
    let withdrawn = report
        .items
        .iter()
        .filter(|(_, a)| a.withdrawn.is_some())
        .count();
    assert_eq!(withdrawn, 5, "2 PyPI + 3 RustSec advisories are withdrawn");

    // Every purl an advisory gives is stored canonical, and maps to the very
    // (ecosystem, name) the entry states, so matching by either agrees.
    let mut with_purl = 0;
    let mut mismatches = Vec::new();
    for (doc, a) in &report.items {
        for (i, p) in a.affected.iter().enumerate() {
            let Some(purl) = &p.purl else { continue };
            with_purl += 1;
            let parsed = Purl::parse(purl).unwrap_or_else(|e| panic!("{doc}: {e}"));
            assert_eq!(&parsed.canonical(), purl, "{doc}: purl is not canonical");
            let from_purl = (parsed.ecosystem(), parsed.package_name());
            if from_purl != (Some(p.ecosystem.clone()), p.name.clone()) {
                mismatches.push(format!(
                    "{doc} affected[{i}]: entry ({}, {}) vs purl {purl} -> {from_purl:?}",
                    p.ecosystem, p.name
                ));
            }
        }
    }
    for m in &mismatches {
        println!("purl mismatch: {m}");
    }
    println!(
        "OSV affected entries with a purl: {with_purl}, mismatches: {}",
        mismatches.len()
    );
    assert!(with_purl > 500, "the corpus has purls: {with_purl}");
    assert!(mismatches.is_empty(), "{} mismatches", mismatches.len());
}

#[test]
fn every_cvss_vector_in_the_corpus_scores() {
    let Some(data) = shared_data() else { return };
    let report = osv::load(&[data.join("osv")]);
    let mut per_kind: BTreeMap<String, usize> = BTreeMap::new();
    for (name, a) in &report.items {
        let entries = a
            .severity
            .iter()
            .chain(a.affected.iter().flat_map(|p| p.severity.iter()));
        for s in entries.filter(|s| s.kind.starts_with("CVSS_")) {
            match cvss::evaluate(&s.kind, &s.vector) {
                Ok(Some(score)) => assert_eq!(s.computed, Some(score), "{name}"),
                other => panic!("{name}: {} {:?} did not score: {other:?}", s.kind, s.vector),
            }
            *per_kind.entry(s.kind.clone()).or_default() += 1;
        }
    }
    println!("scored CVSS vectors per kind: {per_kind:?}");
    assert!(
        per_kind.get("CVSS_V3").is_some_and(|n| *n >= 80),
        "{per_kind:?}"
    );
    assert!(
        per_kind.get("CVSS_V4").is_some_and(|n| *n >= 5),
        "{per_kind:?}"
    );
}

#[test]
fn rustsec_2018_0011_content() {
    let Some(data) = shared_data() else { return };
    let path = data.join("osv/crates/RUSTSEC-2018-0011.json");
    let a = osv::parse_advisory("RUSTSEC-2018-0011.json", &read(&path)).unwrap();
    assert_eq!(a.id, "RUSTSEC-2018-0011");
    assert_eq!(a.aliases, ["CVE-2018-20998", "GHSA-69fv-gw6g-8ccg"]);
    assert!(a.related.is_empty());
    assert_eq!(a.published.as_deref(), Some("2018-12-18T12:00:00Z"));
    let sev = a.max_severity().unwrap();
    assert_eq!((sev.score, sev.rating), (9.8, Rating::Critical));
    let p = &a.affected[0];
    assert_eq!(
        (p.ecosystem.as_str(), p.name.as_str()),
        ("crates.io", "arrayfire")
    );
    assert_eq!(p.purl.as_deref(), Some("pkg:cargo/arrayfire"));
    assert_eq!(
        p.ranges[0].events,
        [
            recheck::model::RangeEvent::Introduced("3.5.1-0".into()),
            recheck::model::RangeEvent::Fixed("3.6.0".into())
        ]
    );
    assert_eq!(
        p.ecosystem_specific.as_ref().unwrap()["affects"]["os"],
        json!(["windows"])
    );
    assert_eq!(
        p.database_specific.as_ref().unwrap()["categories"],
        json!(["memory-corruption"])
    );
    assert_eq!(a.database_specific, Some(json!({"license": "CC0-1.0"})));
}

#[test]
fn pypi_names_are_pep503_and_timestamps_stay_text() {
    let Some(data) = shared_data() else { return };
    let report = osv::load(&[data.join("osv/pypi")]);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let a = &report
        .items
        .iter()
        .find(|(_, a)| a.id == "PYSEC-2007-3")
        .unwrap()
        .1;
    assert_eq!(a.modified.as_deref(), Some("2021-07-16T01:31:34.212521Z"));
    assert_eq!(a.affected[0].versions, ["0.10", "0.8.4", "0.9"]);
    for (name, a) in &report.items {
        for p in &a.affected {
            assert_eq!(p.name, p.name.to_lowercase(), "{name}");
            assert!(!p.name.contains(['_', '.']), "{name}: {}", p.name);
        }
    }
    let git_ranges = report
        .items
        .iter()
        .filter(|(_, a)| {
            a.affected
                .iter()
                .flat_map(|p| &p.ranges)
                .any(|r| r.repo.is_some())
        })
        .count();
    assert_eq!(git_ranges, 225);
}

#[test]
fn osv_zip_export_loads() {
    let Some(data) = shared_data() else { return };
    let dir = std::env::temp_dir().join(format!("recheck-osv-zip-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let zip_path = dir.join("all.zip");
    let sources = json_files(&data.join("osv/crates"));
    {
        let mut zip = zip::ZipWriter::new(fs::File::create(&zip_path).unwrap());
        let opts = zip::write::SimpleFileOptions::default();
        for src in &sources {
            let name = src.file_name().unwrap().to_str().unwrap();
            zip.start_file(name, opts).unwrap();
            zip.write_all(&read(src)).unwrap();
        }
        zip.start_file("README.txt", opts).unwrap();
        zip.write_all(b"not an advisory").unwrap();
        zip.start_file("broken.json", opts).unwrap();
        zip.write_all(br#"{"id": "BROKEN-1", "affected": ["#)
            .unwrap();
        zip.finish().unwrap();
    }
    let report = osv::load(&[&zip_path]);
    fs::remove_dir_all(&dir).unwrap();
    println!(
        "zip: {} advisories, {} errors",
        report.items.len(),
        report.errors.len()
    );
    assert_eq!(report.items.len(), sources.len());
    assert_eq!(report.errors.len(), 1);
    let e = &report.errors[0];
    assert_eq!(e.document, format!("{}!broken.json", zip_path.display()));
    assert_eq!(e.kind, ErrorKind::Syntax);
    let (name, a) = report
        .items
        .iter()
        .find(|(_, a)| a.id == "RUSTSEC-2018-0011")
        .unwrap();
    assert!(name.ends_with("all.zip!RUSTSEC-2018-0011.json"), "{name}");
    assert_eq!(a.aliases.len(), 2);
}

fn vex_counts(dir: &Path, expect_csaf: bool) -> BTreeMap<String, Vec<VexStatement>> {
    let mut out = BTreeMap::new();
    let mut failures = Vec::new();
    // OpenVEX ships its JSON schema in a `schema` folder beside the documents.
    for path in json_files_skipping(dir, &["schema"]) {
        let name = path.strip_prefix(dir).unwrap().display().to_string();
        let bytes = read(&path);
        let sniffed = formats::sniff(&name, &bytes).unwrap();
        assert_eq!(
            sniffed,
            if expect_csaf {
                formats::Sniffed::Csaf
            } else {
                formats::Sniffed::OpenVex
            },
            "{name}"
        );
        match formats::parse_vex(&name, &bytes, Scope::Global) {
            Ok(st) => {
                println!("{name}: {} statements", st.len());
                out.insert(name, st);
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    out
}

#[test]
fn every_openvex_document_parses() {
    let Some(data) = shared_data() else { return };
    let docs = vex_counts(&data.join("vex/openvex"), false);
    assert_eq!(docs.len(), 20);
    let total: usize = docs.values().map(Vec::len).sum();
    println!("OpenVEX: {} documents, {total} statements", docs.len());
    let mut statuses: BTreeMap<&str, usize> = BTreeMap::new();
    for s in docs.values().flatten() {
        *statuses.entry(s.status.as_str()).or_default() += 1;
    }
    println!("OpenVEX statuses: {statuses:?}");
    // The only `affected` statement in the corpus (vexctl test.vex.json)
    // names no product, so it applies to nothing and yields no row.
    assert_eq!(
        statuses.keys().copied().collect::<Vec<_>>(),
        ["fixed", "not_affected", "under_investigation"]
    );
    assert!(docs["vexctl__pkg_ctl_testdata_test.vex.json"].is_empty());

    let st = &docs["go-vex__vex__v0.2.0.json"];
    assert_eq!(st.len(), 10, "5 statements x 2 subcomponents");
    let oci =
        "pkg:oci/alpine@sha256%3A124c7d2707904eea7431fffe91522a01e5a861a624ee31d03372cc1d138a3126";
    let s = st
        .iter()
        .find(|s| {
            s.vulnerability == "CVE-2023-3446"
                && s.subcomponent.as_deref() == Some("pkg:apk/alpine/libssl3@3.0.8-r3")
        })
        .unwrap();
    assert_eq!(s.product, VexProduct::Purl(oci.into()));
    assert_eq!(s.status, VexStatus::NotAffected);
    assert_eq!(
        s.justification.as_deref(),
        Some("vulnerable_code_not_present")
    );
    assert_eq!(
        s.impact_statement.as_deref(),
        Some("affected functions were removed before packaging")
    );
    assert_eq!(
        s.timestamp.as_deref(),
        Some("2023-07-17T18:28:47.696004345-06:00")
    );
    assert!(s
        .source
        .ends_with("vex-d4e9020b6d0d26f131d535e055902dd6ccf3e2088bce3079a8cd3588a4b14c78"));

    // 0.0.1: string vulnerability and products, document timestamp.
    let st = &docs["go-vex__vex__v0.0.1.json"];
    assert_eq!(st.len(), 2);
    assert!(st.iter().all(|s| s.vulnerability == "CVE-2023-12345"
        && s.status == VexStatus::Fixed
        && s.timestamp.as_deref() == Some("2023-01-08T18:02:03.647787998-06:00")));

    // Image references and bare names are artifacts, not purls.
    let st = &docs["vexctl__pkg_ctl_testdata_images.vex.json"];
    assert!(st.contains_product(&VexProduct::Artifact(
        "registry.k8s.io/kube-apiserver:v1.26.0".into()
    )));
    assert!(st.contains_product(&VexProduct::Artifact("nginx".into())));

    // Aliases on the vulnerability object.
    let st = &docs["vexctl__examples_sarif_sample-history.openvex.json"];
    assert!(st
        .iter()
        .all(|s| s.aliases == ["SNYK-DEBIAN12-LIBDE265-3361563"]));
}

trait HasProduct {
    fn contains_product(&self, p: &VexProduct) -> bool;
}

impl HasProduct for Vec<VexStatement> {
    fn contains_product(&self, p: &VexProduct) -> bool {
        self.iter().any(|s| s.product == *p)
    }
}

#[test]
fn every_csaf_document_parses() {
    let Some(data) = shared_data() else { return };
    let docs = vex_counts(&data.join("vex/csaf"), true);
    assert_eq!(docs.len(), 22);
    let total: usize = docs.values().map(Vec::len).sum();
    println!("CSAF: {} documents, {total} statements", docs.len());

    let st = &docs["csaf_vex/vexctl__examples_csaf_csaf.json"];
    assert_eq!(st.len(), 1);
    assert_eq!(
        st[0].product,
        VexProduct::Purl("pkg:generic/component1@1.3.4".into())
    );
    assert_eq!(st[0].status, VexStatus::NotAffected);
    assert_eq!(st[0].source, "2022-EVD-UC-01-NA-001");

    let st = &docs["csaf_vex/sec-vex-2022-0001.json"];
    let log4shell = st
        .iter()
        .find(|s| s.vulnerability == "CVE-2021-44228")
        .unwrap();
    assert_eq!(
        log4shell.justification.as_deref(),
        Some("component_not_present")
    );
    assert_eq!(
        log4shell.impact_statement.as_deref(),
        Some("Secvisogram is written in JavaScript. No Java is included.")
    );

    // A relationship: the component inside the parent product.
    let st = &docs["csaf_vex/go-vex__csaf__csaf.json"];
    assert!(st
        .iter()
        .any(|s| s.product == VexProduct::Purl("pkg:maven/@1.3.4".into())
            && s.status == VexStatus::NotAffected
            && s.vulnerability == "CVE-2009-4487"));

    let sa = &docs["security_advisory/rhsa-2021_5186.json"];
    let na = sa
        .iter()
        .filter(|s| s.status == VexStatus::NotAffected)
        .count();
    let fixed = sa.iter().filter(|s| s.status == VexStatus::Fixed).count();
    assert_eq!(
        (na, fixed),
        (4, 2),
        "2 vulnerabilities x (2 not affected, 1 fixed)"
    );
}

#[test]
fn large_red_hat_csaf_is_fast_and_resolves_relationships() {
    let Some(data) = shared_data() else { return };
    let bytes = read(&data.join("vex/csaf/csaf_vex/go-vex__rhsa-2020_1358.json"));
    let start = Instant::now();
    let st = csaf::parse_vex("rhsa-2020_1358.json", &bytes, Scope::Global).unwrap();
    let elapsed = start.elapsed();
    println!("rhsa-2020_1358: {} statements in {elapsed:?}", st.len());
    assert!(elapsed.as_secs_f64() < 5.0, "{elapsed:?}");
    assert_eq!(st.len(), 2 * 737);
    let slof = st
        .iter()
        .find(|s| {
            s.vulnerability == "CVE-2020-1711"
                && s.subcomponent.as_deref()
                    == Some("SLOF-0:20171214-6.gitfa98132.module+el8.1.0+4066+0f1aadab.noarch")
        })
        .unwrap();
    assert_eq!(
        slof.product,
        VexProduct::Artifact("cpe:/a:redhat:enterprise_linux:8::appstream".into())
    );
    assert_eq!(slof.status, VexStatus::Fixed);
    assert_eq!(slof.source, "RHSA-2020:1358");
    assert_eq!(slof.timestamp.as_deref(), Some("2020-04-07T14:17:00Z"));
    assert_eq!(
        slof.aliases,
        ["https://bugzilla.redhat.com/show_bug.cgi?id=1794290"]
    );
    // Red Hat's "impact" threat is a severity word, not a not-affected reason.
    assert!(st.iter().all(|s| s.impact_statement.is_none()));
}

/// Parse a real document, let `edit` break it, and return the error.
fn broken(
    path: &Path,
    edit: impl FnOnce(&mut Value),
    parse: impl Fn(&[u8]) -> Result<(), FormatError>,
) -> FormatError {
    let mut v: Value = serde_json::from_slice(&read(path)).unwrap();
    edit(&mut v);
    let bytes = serde_json::to_vec(&v).unwrap();
    parse(&bytes).expect_err("broken document must not parse")
}

#[test]
fn broken_documents_fail_with_kind_and_path() {
    let Some(data) = shared_data() else { return };
    let rustsec = data.join("osv/crates/RUSTSEC-2018-0011.json");
    let osv_parse = |b: &[u8]| osv::parse_advisory("broken.json", b).map(|_| ());

    let full = read(&rustsec);
    let e = osv::parse_advisory("broken.json", &full[..full.len() / 2]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Syntax, "{e}");
    assert_eq!(e.document, "broken.json");

    let e = broken(
        &rustsec,
        |v| v["affected"] = json!({"package": "arrayfire"}),
        osv_parse,
    );
    assert_eq!(
        (e.kind, e.path.as_str()),
        (ErrorKind::Schema, "affected"),
        "{e}"
    );

    let e = broken(
        &rustsec,
        |v| v["affected"][0]["ranges"][0]["events"][1] = json!({"fixed": "3.6.0", "limit": "4"}),
        osv_parse,
    );
    assert_eq!(
        (e.kind, e.path.as_str()),
        (ErrorKind::Invalid, "affected[0].ranges[0].events[1]"),
        "{e}"
    );

    let e = broken(
        &rustsec,
        |v| v["affected"][0]["ranges"][0]["type"] = json!("SEMVER2"),
        osv_parse,
    );
    assert_eq!(
        (e.kind, e.path.as_str()),
        (ErrorKind::Invalid, "affected[0].ranges[0].type"),
        "{e}"
    );

    let e = broken(
        &rustsec,
        |v| v["affected"][0]["ranges"][0]["events"] = json!([]),
        osv_parse,
    );
    assert_eq!(
        (e.kind, e.path.as_str()),
        (ErrorKind::Invalid, "affected[0].ranges[0].events"),
        "{e}"
    );

    let e = broken(&rustsec, |v| v["id"] = json!(""), osv_parse);
    assert_eq!((e.kind, e.path.as_str()), (ErrorKind::Invalid, "id"), "{e}");

    let e = broken(
        &data.join("vex/openvex/go-vex__vex__v0.2.0.json"),
        |v| v["statements"][3]["status"] = json!("false_positive"),
        |b| openvex::parse_vex("broken.json", b, Scope::Global).map(|_| ()),
    );
    assert_eq!(
        (e.kind, e.path.as_str()),
        (ErrorKind::Invalid, "statements[3].status"),
        "{e}"
    );

    let e = broken(
        &data.join("vex/csaf/csaf_vex/2022-evd-uc-01-na-001.json"),
        |v| {
            v.as_object_mut().unwrap().remove("product_tree");
        },
        |b| csaf::parse_vex("broken.json", b, Scope::Global).map(|_| ()),
    );
    assert_eq!(
        (e.kind, e.path.as_str()),
        (ErrorKind::Invalid, "product_tree"),
        "{e}"
    );
    assert!(
        e.message
            .contains("vulnerabilities[0].product_status.known_not_affected[0]"),
        "{e}"
    );

    let e = broken(
        &data.join("vex/csaf/csaf_vex/2022-evd-uc-01-na-001.json"),
        |v| v["vulnerabilities"][0]["product_status"]["known_not_affected"] = json!("CSAFPID-0001"),
        |b| csaf::parse_vex("broken.json", b, Scope::Global).map(|_| ()),
    );
    assert_eq!(
        (e.kind, e.path.as_str()),
        (
            ErrorKind::Schema,
            "vulnerabilities[0].product_status.known_not_affected"
        ),
        "{e}"
    );
}

/// CycloneDX VEX use cases 4 and 5 state ranges (`vers:semver/...`) on the
/// document's own product. Each range is expanded over the versions the
/// document names, so the product gets one statement per such version, with
/// the status the use case's README gives it, and nothing else.
#[test]
fn cyclonedx_use_case_ranges_expand_to_named_versions() {
    use recheck::formats::cyclonedx;
    let Some(data) = shared_data() else { return };
    let case = |n: u32| {
        let path = data.join(format!("vex/cyclonedx/Use-Cases/Case-{n}/vex.json"));
        let (st, warnings) =
            cyclonedx::parse_vex_with_warnings("case", &read(&path), Scope::Global)
                .unwrap_or_else(|e| panic!("{e}"));
        let got: Vec<(String, VexStatus)> = st
            .iter()
            .map(|s| match &s.product {
                VexProduct::Artifact(a) => (a.clone(), s.status),
                other => panic!("unexpected product {other:?}"),
            })
            .collect();
        println!("Case-{n}: {got:?}");
        for w in &warnings {
            println!("    warning: {w}");
        }
        (st, got, warnings)
    };
    // "not exploitable in Acme Product versions 2.2.0 through 2.4.0".
    let (st, got, warnings) = case(4);
    assert_eq!(
        got,
        [
            ("Acme Product@2.2.0".to_string(), VexStatus::NotAffected),
            ("Acme Product@2.4.0".to_string(), VexStatus::NotAffected),
        ]
    );
    assert!(st
        .iter()
        .all(|s| s.justification.as_deref() == Some("code_not_reachable")));
    assert_eq!(warnings.len(), 1, "the range is only partly stated");
    assert_eq!(
        warnings[0].path,
        "vulnerabilities[0].affects[0].versions[0]"
    );
    // "not exploitable in 7.0.0 and higher, nor prior to 1.5.0; exploitable
    // from 1.5.0 up to (excluding) 7.0.0".
    let (_, got, warnings) = case(5);
    assert_eq!(
        got,
        [
            ("Acme Product@1.5.0".to_string(), VexStatus::Affected),
            ("Acme Product@7.0.0".to_string(), VexStatus::NotAffected),
        ]
    );
    assert_eq!(warnings.len(), 2);
}

/// The CycloneDX specification's vulnerability example states three ranges
/// on jackson-databind while the document holds jackson-databind 2.9.4.
/// `<2.6.7.5` holds no version the document names; the other two
/// (`2.7.0|<2.8.11.1`, `2.9.0|<2.9.5`) put an upper bound after an exact
/// version, which the vers specification rejects (read literally they would
/// mean "anything below"). So no statement is made and none is widened.
#[test]
fn cyclonedx_ranges_expand_only_over_named_versions() {
    use recheck::formats::cyclonedx;
    let Some(data) = shared_data() else { return };
    let path = data.join("sbom/cyclonedx/spec-tests/1.6/valid/valid-vulnerability-1.6.json");
    let (st, warnings) = cyclonedx::parse_vex_with_warnings("spec", &read(&path), Scope::Global)
        .unwrap_or_else(|e| panic!("{e}"));
    for w in &warnings {
        println!("    warning: {w}");
    }
    assert!(st.is_empty(), "{st:#?}");
    let paths: Vec<&str> = warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "vulnerabilities[0].affects[0].versions[0]",
            "vulnerabilities[0].affects[0].versions[1].range",
            "vulnerabilities[0].affects[0].versions[2].range",
        ]
    );
    assert!(
        warnings[0].message.contains("holds none"),
        "{}",
        warnings[0]
    );
}
