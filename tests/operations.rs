//! The operations assets (`operations/`) stay true to Recheck: the alert rules
//! pass promtool's checks and unit tests, every dashboard query parses as
//! PromQL, every metric they read is one Recheck exports, the dashboard is the
//! output of its typed generator and survives a round trip through
//! grafana-foundation-sdk's model, and every `runbook_url` lands on a section
//! of the runbook.
//!
//! promtool comes from Debian's `prometheus` package (scripts/test.sh installs
//! it); grafana-foundation-sdk from tests/requirements.txt.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn operations() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("operations")
}

fn read(name: &str) -> String {
    let path = operations().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// `promtool`, or `None` (with a SKIP line) where it is not installed; under
/// `CI=true` a missing promtool fails instead.
fn promtool() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("promtool"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("promtool is not installed (apt-get install prometheus; scripts/test.sh does)");
        }
        eprintln!("SKIP: promtool not found on PATH (install Debian's `prometheus` package)");
    }
    found
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

fn dashboard() -> serde_json::Value {
    serde_json::from_str(&read("worker-grafana-dashboard.json")).expect("dashboard JSON")
}

/// Every (panel id, refId, expr) of the dashboard, rows' nested panels included.
fn dashboard_queries(d: &serde_json::Value) -> Vec<(u64, String, String)> {
    let mut out = Vec::new();
    let mut stack: Vec<&serde_json::Value> = d["panels"].as_array().into_iter().flatten().collect();
    while let Some(panel) = stack.pop() {
        stack.extend(panel["panels"].as_array().into_iter().flatten());
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                out.push((
                    panel["id"].as_u64().expect("panel id"),
                    target["refId"].as_str().unwrap_or("").to_string(),
                    expr.to_string(),
                ));
            }
        }
    }
    out.sort();
    out
}

/// Grafana's variables replaced by what a query against Prometheus itself
/// would carry.
fn substitute_variables(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$__range", "1h")
        .replace("$tenant", ".*")
}

/// `recheck_*` metric names referenced in `text` (recording-rule names use
/// colons and are not matched).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("recheck_") {
        let start = i + at;
        let preceded = start > 0
            && (bytes[start - 1].is_ascii_alphanumeric()
                || bytes[start - 1] == b'_'
                || bytes[start - 1] == b':');
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if !preceded {
            names.insert(text[start..end].to_string());
        }
        i = end;
    }
    names
}

/// The sample names Recheck's `/metrics` exposes (histograms as their
/// `_bucket`/`_sum`/`_count` series, counters with `_total`).
fn exported_names() -> BTreeSet<String> {
    let metrics = recheck::metrics::get();
    metrics.preregister("test", ["acme"]);
    // `recheck serve` registers each route it mounts.
    metrics.preregister_http_route("GET", "/healthz");
    metrics
        .render()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

#[test]
fn alert_rules_pass_promtool_check_and_unit_tests() {
    let Some(promtool) = promtool() else { return };
    let dir = operations();
    let check = run_ok(
        Command::new(&promtool)
            .arg("check")
            .arg("rules")
            .arg(dir.join("worker-prometheus-rules.yaml")),
    );
    assert!(check.contains("SUCCESS"), "{check}");
    let test = run_ok(Command::new(&promtool).current_dir(&dir).args([
        "test",
        "rules",
        "worker-prometheus-rules.test.yaml",
    ]));
    assert!(test.contains("SUCCESS"), "{test}");
    // Every alert has a unit test that makes it fire.
    let rules = read("worker-prometheus-rules.yaml");
    let tests = read("worker-prometheus-rules.test.yaml");
    for alert in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        let fires = tests
            .split("alertname: ")
            .skip(1)
            .any(|case| case.starts_with(&format!("{alert}\n")) && case.contains("exp_labels"));
        assert!(fires, "alert {alert} has no promtool test that fires it");
    }
}

#[test]
fn every_dashboard_query_parses_as_promql() {
    let Some(promtool) = promtool() else { return };
    let queries = dashboard_queries(&dashboard());
    assert!(
        queries.len() >= 20,
        "only {} dashboard queries",
        queries.len()
    );
    // promtool parses a rules file's expressions, so each query becomes a
    // recording rule of a throwaway file.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (panel, ref_id, expr) in &queries {
        rules.push_str(&format!(
            "      - record: dashboard:panel_{panel}_{ref_id}\n        expr: {}\n",
            serde_json::to_string(&substitute_variables(expr)).expect("string")
        ));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dashboard-queries.yaml");
    std::fs::write(&path, rules).expect("write");
    let out = run_ok(Command::new(&promtool).arg("check").arg("rules").arg(&path));
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", queries.len())),
        "{out}"
    );
}

#[test]
fn dashboard_has_unique_panel_ids_and_datasource_and_tenant_variables() {
    let d = dashboard();
    let mut ids = BTreeSet::new();
    let mut stack: Vec<&serde_json::Value> =
        d["panels"].as_array().expect("panels").iter().collect();
    let mut count = 0;
    while let Some(panel) = stack.pop() {
        count += 1;
        let id = panel["id"].as_u64().expect("every panel has an id");
        assert!(ids.insert(id), "panel id {id} is used twice");
        stack.extend(panel["panels"].as_array().into_iter().flatten());
        if panel["type"] != "row" {
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "panel {id} does not use the datasource variable"
            );
        }
    }
    assert!(count > 20);
    let vars: Vec<&serde_json::Value> = d["templating"]["list"]
        .as_array()
        .expect("variables")
        .iter()
        .collect();
    assert!(
        vars.iter().any(|v| v["type"] == "datasource"
            && v["name"] == "datasource"
            && v["query"] == "prometheus"),
        "no Prometheus datasource variable"
    );
    assert!(
        vars.iter()
            .any(|v| v["type"] == "query" && v["name"] == "tenant"),
        "no tenant variable"
    );
}

#[test]
fn dashboard_is_its_generators_output_and_round_trips_through_the_sdk_model() {
    let dir = operations();
    let probe = Command::new("python3")
        .args(["-c", "import grafana_foundation_sdk"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "grafana-foundation-sdk is not installed (pip install -r tests/requirements.txt)"
            );
        }
        eprintln!("SKIP: python3 module grafana_foundation_sdk missing (pip install -r tests/requirements.txt)");
        return;
    }
    run_ok(
        Command::new("python3")
            .arg(dir.join("dashboard.py"))
            .arg("--check")
            .arg(dir.join("worker-grafana-dashboard.json")),
    );
    // The check is not vacuous: a hand edit is caught.
    let edited = read("worker-grafana-dashboard.json").replacen("Queue depth", "Queue size", 1);
    let tmp = tempfile::NamedTempFile::new().expect("tempfile");
    std::fs::write(tmp.path(), edited).expect("write");
    let out = Command::new("python3")
        .arg(dir.join("dashboard.py"))
        .arg("--check")
        .arg(tmp.path())
        .output()
        .expect("python3");
    assert!(
        !out.status.success(),
        "an edited dashboard passed the check"
    );
}

#[test]
fn every_metric_the_assets_read_is_one_recheck_exports() {
    let exported = exported_names();
    let used: BTreeSet<String> = metric_names(&read("worker-grafana-dashboard.json"))
        .into_iter()
        .chain(metric_names(&read("worker-prometheus-rules.yaml")))
        .collect();
    assert!(used.len() >= 15, "{used:?}");
    let missing: Vec<&String> = used.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "operations/ reads metrics Recheck does not export: {missing:?}"
    );
}

/// GitHub's heading anchors: lower case, punctuation dropped, spaces to `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn every_runbook_url_names_a_section_of_the_runbook() {
    let runbook = read("worker.md");
    let anchors: BTreeSet<String> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect();
    let rules = read("worker-prometheus-rules.yaml");
    let urls: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("runbook_url: "))
        .map(|u| u.trim_matches('"'))
        .collect();
    let alerts = rules
        .lines()
        .filter(|l| l.trim().starts_with("- alert: "))
        .count();
    assert_eq!(urls.len(), alerts, "every alert needs a runbook_url");
    for url in urls {
        let (file, fragment) = url.split_once('#').expect("runbook_url has an anchor");
        assert_eq!(file, "operations/worker.md");
        assert!(
            anchors.contains(fragment),
            "{url}: no such section in worker.md"
        );
    }
}
