//! Deliberately broken documents of our own, one small file per fault, in
//! tests/fixtures/broken/bad: each must be rejected with the expected error
//! kind at the expected JSON path, naming the document; and a batch load of
//! that folder next to a folder of good documents must report every broken
//! file while still returning the good ones. Inputs that the fuzzers found
//! to crash a parser are kept here as regression cases.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use recheck::formats::load::{self, LoadReport};
use recheck::formats::purl::Purl;
use recheck::formats::vers::VersRange;
use recheck::formats::{self, osv, ErrorKind, FormatError, Sniffed};
use recheck::model::Scope;

use common::read;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/broken")
}

/// How a test reads a fixture.
#[derive(Debug, Clone, Copy)]
enum Parser {
    Osv,
    Sbom,
    Vex,
}

/// Parse any document the way a mixed batch would: by sniffed format.
fn parse_any(name: &str, bytes: &[u8]) -> Result<String, FormatError> {
    let kind = match formats::sniff(name, bytes) {
        Ok(Sniffed::Osv) | Err(_) => Parser::Osv,
        Ok(Sniffed::CycloneDx | Sniffed::Spdx) if !name.contains("vex") => Parser::Sbom,
        Ok(_) => Parser::Vex,
    };
    parse(kind, name, bytes)
}

fn parse(parser: Parser, name: &str, bytes: &[u8]) -> Result<String, FormatError> {
    match parser {
        Parser::Osv => osv::parse_advisory(name, bytes).map(|a| format!("advisory {}", a.id)),
        Parser::Sbom => formats::parse_sbom(name, bytes, Scope::Global)
            .map(|s| format!("sbom {}", s.artifact.id)),
        Parser::Vex => formats::parse_vex(name, bytes, Scope::Global)
            .map(|st| format!("{} statements", st.len())),
    }
}

/// `(file, parser, expected kind, expected JSON path)`.
const EXPECTED: &[(&str, Parser, ErrorKind, &str)] = &[
    (
        "osv-truncated.json",
        Parser::Osv,
        ErrorKind::Syntax,
        "affected[0].ranges",
    ),
    (
        "osv-two-keys-event.json",
        Parser::Osv,
        ErrorKind::Invalid,
        "affected[0].ranges[0].events[1]",
    ),
    (
        "osv-package-without-name.json",
        Parser::Osv,
        ErrorKind::Schema,
        "affected[0].package",
    ),
    (
        "cdx-bad-spec-version.json",
        Parser::Sbom,
        ErrorKind::Invalid,
        "specVersion",
    ),
    (
        "cdx-components-not-array.json",
        Parser::Sbom,
        ErrorKind::Schema,
        "components",
    ),
    (
        "spdx-packages-not-array.json",
        Parser::Sbom,
        ErrorKind::Schema,
        "packages",
    ),
    (
        "openvex-bad-status.json",
        Parser::Vex,
        ErrorKind::Invalid,
        "statements[0].status",
    ),
    (
        "csaf-status-not-object.json",
        Parser::Vex,
        ErrorKind::Schema,
        "vulnerabilities[0].product_status[0]",
    ),
    (
        "unknown-format.json",
        Parser::Vex,
        ErrorKind::UnknownFormat,
        ".",
    ),
];

#[test]
fn each_broken_document_fails_with_kind_and_path() {
    let dir = fixtures().join("bad");
    for (file, parser, kind, path) in EXPECTED {
        let e = parse(*parser, file, &read(&dir.join(file)))
            .expect_err(&format!("{file} must not parse"));
        println!("{file}: {:?} at {}: {}", e.kind, e.path, e.message);
        assert_eq!((e.kind, e.path.as_str()), (*kind, *path), "{file}: {e}");
        assert_eq!(e.document, *file);
    }
    let mut on_disk: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = EXPECTED.iter().map(|e| e.0.to_string()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "every broken fixture has an expected error"
    );
}

#[test]
fn broken_purls_are_rejected_with_a_reason() {
    let text = String::from_utf8(read(&fixtures().join("bad/purls.txt"))).unwrap();
    let mut checked = 0;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (purl, reason) = line.split_once('\t').unwrap_or((line, ""));
        let e = Purl::parse(purl).expect_err(&format!("{purl:?} must not parse"));
        println!("{purl:?}: {}", e.reason);
        assert!(e.reason.contains(reason), "{purl:?}: {e}");
        let at = e.at("purls.txt", "components[0].purl");
        assert_eq!(
            (at.kind, at.path.as_str()),
            (ErrorKind::Invalid, "components[0].purl")
        );
        checked += 1;
    }
    println!("broken purls: {checked}");
    assert!(checked >= 8);
}

#[test]
fn loading_reports_every_broken_file_and_keeps_the_good_ones() {
    let (bad, good) = (fixtures().join("bad"), fixtures().join("good"));
    let report: LoadReport<String> = load::load(&[&bad, &good], parse_any);
    for e in &report.errors {
        println!("error: {e}");
    }
    for (name, item) in &report.items {
        println!("ok: {name}: {item}");
    }
    let mut failed: Vec<String> = report
        .errors
        .iter()
        .map(|e| {
            Path::new(&e.document)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    failed.sort();
    let mut expected: Vec<String> = EXPECTED.iter().map(|e| e.0.to_string()).collect();
    expected.sort();
    assert_eq!(failed, expected);
    let items: Vec<&str> = report.items.iter().map(|(_, i)| i.as_str()).collect();
    assert_eq!(items, ["2 statements", "advisory RUSTSEC-2018-0011"]);
}

/// Found by `fuzz_vers`: a percent-encoded control character in a version
/// must stay encoded in the canonical form, so that it parses again.
#[test]
fn fuzz_regression_vers_canonical_form_reparses() {
    let r = VersRange::parse("vers:maven/1.%007.C8|<x").unwrap();
    let canonical = r.to_string();
    assert_eq!(canonical, "vers:maven/<x|1.%007.C8");
    assert_eq!(VersRange::parse(&canonical).unwrap().to_string(), canonical);
    let spaced = VersRange::parse("vers:npm/1.0.0%20").unwrap();
    assert_eq!(spaced.to_string(), "vers:npm/1.0.0%20");
}
