//! End to end: `recheck scan` and `recheck demo` on the bundled samples (real
//! advisories and a real SPDX SBOM, plus SBOMs/VEX made around them) print the
//! findings the advisories' ranges and the VEX statements call for.

use std::process::Command;

use serde_json::Value;

fn recheck() -> Command {
    Command::new(env!("CARGO_BIN_EXE_recheck"))
}

fn samples() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples")
}

fn scan_samples() -> Vec<Value> {
    let s = samples();
    let out = recheck()
        .arg("scan")
        .arg("--advisories")
        .arg(s.join("advisories"))
        .arg("--sbom")
        .arg(s.join("sboms"))
        .arg("--vex")
        .arg(s.join("vex"))
        .output()
        .expect("run recheck scan");
    assert!(
        out.status.success(),
        "scan failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8 output");
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is a JSON object"))
        .collect()
}

fn find<'a>(rows: &'a [Value], package: &str, version: &str, advisory: &str) -> Option<&'a Value> {
    rows.iter()
        .find(|r| r["package"] == package && r["version"] == version && r["advisory"] == advisory)
}

#[test]
fn scan_reports_known_findings_on_bundled_samples() {
    let rows = scan_samples();
    for key in [
        "artifact",
        "advisory",
        "vulnerability",
        "aliases",
        "purl",
        "ecosystem",
        "version",
        "severity",
        "status",
    ] {
        assert!(
            rows.iter().all(|r| r.get(key).is_some()),
            "every row has {key}"
        );
    }

    // Inside PYSEC-2020-149's range [1.25.2, 1.25.8).
    let urllib3 = find(&rows, "urllib3", "1.25.7", "PYSEC-2020-149").expect("urllib3 finding");
    assert_eq!(urllib3["status"], "affected");
    assert_eq!(urllib3["vulnerability"], "CVE-2020-7212");
    assert_eq!(urllib3["ecosystem"], "PyPI");

    // Django 3.2.13 is in [3.2, 3.2.14) of PYSEC-2022-213 but past 3.2.11 (PYSEC-2022-1).
    assert!(find(&rows, "django", "3.2.13", "PYSEC-2022-213").is_some());
    assert!(find(&rows, "django", "3.2.13", "PYSEC-2022-1").is_none());
    // The fixed versions are not affected.
    assert!(rows
        .iter()
        .all(|r| !(r["package"] == "django" && r["version"] == "3.2.14")));
    assert!(
        rows.iter().all(|r| r["package"] != "pyyaml"),
        "PyYAML 5.1 is the fix"
    );
    assert!(rows
        .iter()
        .all(|r| !(r["package"] == "requests" && r["version"] == "2.31.0")));
    // A withdrawn advisory matches nothing.
    assert!(rows.iter().all(|r| r["advisory"] != "PYSEC-2020-221"));

    // The VEX statement is made on the CVE alias of PYSEC-2023-74.
    let requests = find(&rows, "requests", "2.28.1", "PYSEC-2023-74").expect("requests finding");
    assert_eq!(requests["status"], "suppressed");
    assert_eq!(
        requests["justification"],
        "vulnerable_code_not_in_execute_path"
    );
    assert_eq!(requests["vulnerability"], "CVE-2023-32681");

    // under_investigation is recorded but does not suppress.
    let jinja = find(&rows, "jinja2", "2.10", "PYSEC-2019-217").expect("jinja2 finding");
    assert_eq!(jinja["status"], "affected");
    assert_eq!(jinja["vex_status"], "under_investigation");

    // Real SPDX example SBOM: tokio 1.19.2 is inside RUSTSEC-2023-0001's [1.19.0, 1.20.3).
    let tokio = find(&rows, "tokio", "1.19.2", "RUSTSEC-2023-0001").expect("tokio finding");
    assert_eq!(tokio["ecosystem"], "crates.io");
    assert_eq!(tokio["vulnerability"], "CVE-2023-22466");

    // Output is sorted and unique.
    let lines: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    let mut sorted = lines.clone();
    sorted.sort_by(|a, b| {
        let ka: Value = serde_json::from_str(a).unwrap_or_default();
        let kb: Value = serde_json::from_str(b).unwrap_or_default();
        (
            ka["tenant"].as_str(),
            ka["artifact"].as_str(),
            ka["advisory"].as_str(),
        )
            .cmp(&(
                kb["tenant"].as_str(),
                kb["artifact"].as_str(),
                kb["advisory"].as_str(),
            ))
    });
    assert_eq!(lines, sorted, "sorted by tenant, artifact, advisory");
}

#[test]
fn scan_is_byte_identical_across_runs() {
    assert_eq!(scan_samples(), scan_samples());
}

#[test]
fn demo_terminates_and_explains() {
    let out = recheck().arg("demo").output().expect("run recheck demo");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("SUPPRESSED PYSEC-2023-74"), "{text}");
    assert!(
        text.contains("vulnerable_code_not_in_execute_path"),
        "{text}"
    );
    assert!(text.contains("AFFECTED   PYSEC-2022-213"), "{text}");
}

fn version_order(ecosystem: &str, input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = recheck()
        .args(["version-order", "--ecosystem", ecosystem])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // The command may exit before reading its input (an unknown ecosystem):
    // the closed pipe is then expected, not a failure of the test.
    let written = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes());
    if let Err(e) = written {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write: {e}");
    }
    child.wait_with_output().expect("wait")
}

#[test]
fn version_order_sorts_in_ecosystem_order() {
    let out = version_order("PyPI", "1.10\n1.2rc1\n1.2\n1.0.post1\n1.0\n");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1.0\n1.0.post1\n1.2rc1\n1.2\n1.10\n"
    );
    let out = version_order("Debian:12", "1:1.0\n2.0~rc1\n2.0\n1.9-3\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1.9-3\n2.0~rc1\n2.0\n1:1.0\n"
    );
}

#[test]
fn version_order_reports_bad_lines_and_exits_2() {
    let out = version_order(
        "crates.io",
        "1.10.0\n1.2.0-rc.1\nnot a version\n1.2.0\n0.9.1\n",
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "0.9.1\n1.2.0-rc.1\n1.2.0\n1.10.0\n"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a version"));
    let unknown = version_order("NoSuchEcosystem", "1\n");
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no known version order"));
}

#[test]
fn scan_skips_a_bad_document_and_strict_fails() {
    let dir = std::env::temp_dir().join(format!("recheck-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let bad = dir.join("broken.json");
    std::fs::write(&bad, b"{\"id\": \"X-1\", \"affected\": [").expect("write");
    let s = samples();
    let run = |strict: bool| {
        let mut c = recheck();
        c.arg("scan")
            .arg("--advisories")
            .arg(s.join("advisories"))
            .arg(&bad)
            .arg("--sbom")
            .arg(s.join("sboms"));
        if strict {
            c.arg("--strict");
        }
        c.output().expect("run scan")
    };
    let lenient = run(false);
    assert!(lenient.status.success());
    assert!(String::from_utf8_lossy(&lenient.stderr).contains("broken.json"));
    assert!(
        !lenient.stdout.is_empty(),
        "the good documents still produce findings"
    );
    let strict = run(true);
    assert!(!strict.status.success());
    std::fs::remove_dir_all(&dir).ok();
}
