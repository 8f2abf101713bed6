//! Every document of the shared real-data corpus parses. Counts per format are
//! printed; any error in a valid document fails. CycloneDX schema-invalid
//! fixtures (`invalid/` folders) must never panic and are either rejected with
//! an error naming the field or accepted with a warning; each is listed.

mod common;

use std::collections::BTreeMap;

use recheck::formats::{self, Sniffed};
use recheck::model::Scope;

#[test]
fn every_corpus_document_parses() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut invalid_outcomes = Vec::new();
    // JSON schemas sit beside the OpenVEX documents; they are not documents.
    let files: Vec<_> = ["osv", "sbom", "vex"]
        .iter()
        .flat_map(|top| common::json_files_skipping(&data.join(top), &["schema"]))
        .collect();
    let mut statements = 0usize;
    let mut components = 0usize;
    for path in &files {
        let rel = path
            .strip_prefix(&data)
            .unwrap_or(path)
            .display()
            .to_string();
        let bytes = common::read(path);
        let expect_invalid = path.components().any(|c| c.as_os_str() == "invalid");
        let in_vex = rel.starts_with("vex/");
        let kind = formats::sniff(&rel, &bytes);
        let result: Result<String, formats::FormatError> = match kind {
            Ok(Sniffed::Osv) => formats::osv::parse_advisory(&rel, &bytes).map(|_| "OSV".into()),
            Ok(Sniffed::CycloneDx) if in_vex => formats::parse_vex(&rel, &bytes, Scope::Global)
                .map(|s| {
                    statements += s.len();
                    "CycloneDX VEX".into()
                }),
            Ok(Sniffed::OpenVex | Sniffed::Csaf) => formats::parse_vex(&rel, &bytes, Scope::Global)
                .map(|s| {
                    statements += s.len();
                    if kind == Ok(Sniffed::Csaf) {
                        "CSAF".into()
                    } else {
                        "OpenVEX".into()
                    }
                }),
            Ok(Sniffed::CycloneDx) if expect_invalid => {
                formats::cyclonedx::parse_sbom_with_warnings(&rel, &bytes, Scope::Global).map(
                    |(s, warnings)| match warnings.first() {
                        Some(w) => format!("CycloneDX {} with warning: {w}", s.spec_version),
                        None => format!(
                            "CycloneDX {}, no warning: breaks only fields Recheck does not read",
                            s.spec_version
                        ),
                    },
                )
            }
            Ok(Sniffed::CycloneDx | Sniffed::Spdx) => {
                formats::parse_sbom(&rel, &bytes, Scope::Tenant("t".into())).map(|s| {
                    components += s.components.len();
                    format!("{:?} {}", s.format, s.spec_version)
                })
            }
            Ok(Sniffed::Unknown) => Err(formats::FormatError::new(
                &rel,
                ".",
                formats::ErrorKind::UnknownFormat,
                "format not recognised",
            )),
            Err(e) => Err(e),
        };
        match (result, expect_invalid) {
            (Ok(label), false) => *counts.entry(label).or_default() += 1,
            (Ok(label), true) => invalid_outcomes.push(format!("accepted: {rel}: {label}")),
            (Err(e), true) => invalid_outcomes.push(format!("rejected: {e}")),
            (Err(e), false) => failures.push(e.to_string()),
        }
    }
    println!("parsed documents per format:");
    for (label, n) in &counts {
        println!("  {label}: {n}");
    }
    println!("  ({components} SBOM components, {statements} VEX statements)");
    println!("schema-invalid fixtures ({}):", invalid_outcomes.len());
    for line in &invalid_outcomes {
        println!("  {line}");
    }
    assert!(
        counts.values().sum::<usize>() > 800,
        "corpus looks incomplete: {counts:?}"
    );
    assert!(
        failures.is_empty(),
        "{} valid documents failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
