//! The HTTP control plane end to end: each test starts a real `recheck
//! serve` process (embedded store in a temporary directory, a config with two
//! tenants, API keys and JWT keys, port 0) and talks to it over HTTP.
//!
//! - real data (the shared OSV corpus, real SBOMs and VEX, the bundled
//!   samples) ingested over the API gives the same impact as `recheck scan`
//!   on the same files: by artifact, by advisory, by purl, the ledger's
//!   changes and one job per affected artifact;
//! - bad input is a problem-details document naming the field, and nothing
//!   is written; size limits; `Idempotency-Key`;
//! - authentication (401) and scopes (403) on every operation the OpenAPI
//!   document lists, API keys and JWTs (HS256, EdDSA);
//! - tenant isolation, generated from `openapi.json`: every operation is
//!   called with another tenant's key and the first tenant's ids, and must
//!   neither show nor change that tenant's data. An operation without a
//!   probe fails the test, so a new route must say how it isolates;
//! - a policy-triggered recheck (dry run, then for real) of the real data:
//!   the run's jobs complete and their signed events arrive on the stream;
//! - the jobs run inside `recheck serve`: they complete, their signed events
//!   arrive on the SSE stream (live and resumed) and verify with `recheck
//!   verify` and the key the server printed; `/explain` names the matched
//!   range event and the suppressing VEX statement; dead-lettered jobs (an
//!   executor answering 500) are listed, replayed and retried; cancel;
//!   restarts refill the queue and take over jobs a killed server held;
//!   SIGTERM ends open streams; `--workers 0` leaves the jobs to a `recheck
//!   worker` process on a shared PostgreSQL store and Redis queue;
//! - schemathesis fuzzes every operation of the OpenAPI document (admin key,
//!   a bounded number of examples, real ids for the parameters that name
//!   stored things): no 5xx anywhere, and at least one 2xx per operation.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

use common::serve::*;
use recheck::model::purl_base;

/// One Server-Sent Event: id, event name (the kind) and JSON data.
#[derive(Debug, Clone)]
struct SseEvent {
    id: String,
    kind: String,
    data: Value,
}

/// Parses SSE lines; `on` gets each event; false from it stops reading.
fn read_sse(lines: impl Iterator<Item = String>, mut on: impl FnMut(SseEvent) -> bool) {
    let (mut id, mut kind, mut data) = (String::new(), String::new(), String::new());
    for line in lines {
        if line.is_empty() {
            if !data.is_empty() {
                let event = SseEvent {
                    id: std::mem::take(&mut id),
                    kind: std::mem::take(&mut kind),
                    data: serde_json::from_str(&data).expect("SSE data is JSON"),
                };
                data.clear();
                if !on(event) {
                    return;
                }
            }
        } else if let Some(v) = line.strip_prefix("id:") {
            id = v.trim_start().to_string();
        } else if let Some(v) = line.strip_prefix("event:") {
            kind = v.trim_start().to_string();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.trim_start());
        }
    }
}

impl Server {
    /// The stored events of `/events/stream?{query}&follow=false`.
    fn stream_once(&self, query: &str, key: &str, headers: &[(&str, &str)]) -> Vec<SseEvent> {
        let r = self.call(
            "GET",
            &format!("/api/v1/events/stream?follow=false&{query}"),
            Some(key),
            None,
            headers,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            r.content_type.starts_with("text/event-stream"),
            "{}",
            r.content_type
        );
        let mut out = Vec::new();
        read_sse(r.body.lines().map(String::from), |e| {
            out.push(e);
            true
        });
        out
    }

    /// A live `/events/stream` read on a thread: its events arrive on the
    /// receiver as they come.
    fn stream_live(&self, key: &str) -> mpsc::Receiver<SseEvent> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let url = format!("{}/api/v1/events/stream", self.base);
        let auth = format!("Bearer {key}");
        let (tx, rx) = mpsc::channel();
        let (opened, open) = mpsc::channel();
        std::thread::spawn(move || {
            let response = agent.get(&url).header("Authorization", &auth).call();
            let response = match response {
                Ok(r) if r.status() == 200 => {
                    let _ = opened.send(true);
                    r
                }
                _ => {
                    let _ = opened.send(false);
                    return;
                }
            };
            let lines = BufReader::new(response.into_body().into_reader())
                .lines()
                .map_while(Result::ok);
            read_sse(lines, |e| tx.send(e).is_ok());
        });
        assert_eq!(
            open.recv_timeout(Duration::from_secs(60)),
            Ok(true),
            "the event stream did not open"
        );
        rx
    }

    /// Waits until no job of the caller is waiting or running; returns them.
    fn settle(&self, key: &str) -> Vec<Value> {
        let started = std::time::Instant::now();
        loop {
            let jobs = self.all_pages("/api/v1/jobs", key);
            let open: Vec<&Value> = jobs
                .iter()
                .filter(|j| {
                    !["succeeded", "dead_lettered", "cancelled", "superseded"]
                        .contains(&j["state"].as_str().unwrap_or(""))
                })
                .collect();
            if open.is_empty() {
                return jobs;
            }
            assert!(
                started.elapsed() < Duration::from_secs(180),
                "jobs still open after 180 s: {open:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The explain trace's words for a finding's match reason (as `recheck
/// scan` prints it in JSON).
fn matched_text(reason: &Value) -> String {
    match reason["via"].as_str() {
        Some("range") => {
            let head = format!(
                "range {} of entry {}: introduced {}",
                reason["range"],
                reason["entry"],
                reason["introduced"].as_str().expect("introduced")
            );
            match reason["until"].as_str() {
                Some(until) => format!("{head}, {until}"),
                None => head,
            }
        }
        _ => format!("versions[] of entry {}", reason["entry"]),
    }
}

/// `recheck scan` on the same files, for `tenant`: one JSON finding a line.
fn scan(data: &RealData, tenant: &str) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_recheck"))
        .arg("scan")
        .arg("--advisories")
        .args(&data.advisories)
        .arg("--sbom")
        .args(&data.sboms)
        .arg("--vex")
        .args(&data.vex)
        .args(["--tenant", tenant, "--format", "json", "--strict"])
        .output()
        .expect("run recheck scan");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("finding JSON"))
        .collect()
}

/// The projection the ledger keeps of a finding (`ImpactFinding`).
fn projected(f: &Value) -> String {
    let keys = [
        "tenant",
        "artifact",
        "advisory",
        "vulnerability",
        "purl",
        "ecosystem",
        "package",
        "version",
        "severity",
        "status",
        "vex_status",
    ];
    let m: BTreeMap<&str, Value> = keys.iter().map(|k| (*k, f[*k].clone())).collect();
    serde_json::to_string(&m).expect("encode")
}

#[test]
fn real_data_ingested_over_http_has_the_impact_scan_computes() {
    let Some(data) = real_data() else { return };
    assert!(data.advisories.len() > 600 && data.sboms.len() >= 6 && data.vex.len() >= 5);
    let expected = scan(&data, ACME);
    assert!(
        expected.iter().any(|f| f["status"] == "affected")
            && expected.iter().any(|f| f["status"] == "suppressed"),
        "the data must produce affected and suppressed findings"
    );
    let server = Server::start();
    // Opened before anything is ingested: what arrives on it is live.
    let live = server.stream_live(ACME_READER);
    let artifacts = ingest(&server, &data, ACME_ADMIN);

    // By artifact: every finding, exactly.
    let mut got = Vec::new();
    for a in &artifacts {
        got.extend(server.all_pages(
            &format!("/api/v1/impact/artifacts?artifact={}", enc(a)),
            ACME_READER,
        ));
    }
    assert_eq!(sorted(got), sorted(expected.clone()));

    // By advisory: each advisory's findings, grouped by artifact.
    let advisories: BTreeSet<&str> = expected
        .iter()
        .map(|f| f["advisory"].as_str().expect("advisory"))
        .collect();
    for id in &advisories {
        let items = server.all_pages(&format!("/api/v1/impact/advisories/{id}"), ACME_READER);
        let mut got = Vec::new();
        for item in &items {
            for f in item["findings"].as_array().expect("findings") {
                assert_eq!(f["artifact"], item["artifact"]);
                if f["advisory"] == *id {
                    got.push(f.clone());
                }
            }
        }
        let want: Vec<Value> = expected
            .iter()
            .filter(|f| f["advisory"] == *id)
            .cloned()
            .collect();
        assert_eq!(sorted(got), sorted(want), "advisory {id}");
    }
    let unknown = server.get("/api/v1/impact/advisories/CVE-1900-0001", ACME_READER);
    unknown.problem(404);

    // By purl: the artifacts affected through each package.
    let mut by_package: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in expected.iter().filter(|f| f["status"] == "affected") {
        if let Some(purl) = f["purl"].as_str() {
            by_package
                .entry(purl_base(purl).to_string())
                .or_default()
                .insert(f["artifact"].as_str().expect("artifact").to_string());
        }
    }
    assert!(!by_package.is_empty());
    for (purl, want) in &by_package {
        let items = server.all_pages(
            &format!("/api/v1/impact/purls?purl={}", enc(purl)),
            ACME_READER,
        );
        let got: BTreeSet<String> = items
            .iter()
            .map(|i| i["artifact"].as_str().expect("artifact").to_string())
            .collect();
        assert_eq!(&got, want, "purl {purl}");
    }

    // The ledger's changes since the beginning net out to the findings.
    let mut net: BTreeMap<String, i64> = BTreeMap::new();
    let mut offset = 0;
    loop {
        let r = server.get(
            &format!("/api/v1/impact/changes?since_window=0&limit=1000&offset={offset}"),
            ACME_READER,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let page = r.json();
        for d in page["items"].as_array().expect("items") {
            *net.entry(projected(&d["finding"])).or_default() += d["diff"].as_i64().expect("diff");
        }
        match page["next_offset"].as_u64() {
            Some(n) => offset = n,
            None => {
                assert!(page["through_window"].as_u64().expect("through_window") >= 1);
                break;
            }
        }
    }
    net.retain(|_, d| *d != 0);
    assert!(net.values().all(|d| *d == 1), "{net:?}");
    let want: BTreeSet<String> = expected.iter().map(projected).collect();
    assert_eq!(net.into_keys().collect::<BTreeSet<_>>(), want);
    let last = server
        .get("/api/v1/impact/changes?since_window=1000000", ACME_READER)
        .json();
    assert_eq!(last["items"], json!([]));

    // One job per artifact with findings, all of this tenant, run by the
    // server's own workers: the latest job of each artifact succeeds, older
    // ones succeed too or are superseded.
    let jobs = server.settle(ACME_READER);
    let job_artifacts: BTreeSet<&str> = jobs
        .iter()
        .map(|j| j["artifact"].as_str().expect("artifact"))
        .collect();
    let finding_artifacts: BTreeSet<&str> = expected
        .iter()
        .map(|f| f["artifact"].as_str().expect("artifact"))
        .collect();
    assert_eq!(job_artifacts, finding_artifacts);
    assert!(jobs.iter().all(|j| j["tenant"] == ACME));
    let one = &jobs[0];
    let id = one["id"].as_str().expect("id");
    assert_eq!(
        server
            .get(&format!("/api/v1/jobs/{id}"), ACME_READER)
            .json(),
        *one
    );
    let mut latest: BTreeMap<&str, &Value> = BTreeMap::new();
    for j in &jobs {
        let artifact = j["artifact"].as_str().expect("artifact");
        if latest
            .get(artifact)
            .is_none_or(|l| l["window"].as_u64() < j["window"].as_u64())
        {
            latest.insert(artifact, j);
        }
    }
    for j in latest.values() {
        assert_eq!(j["state"], "succeeded", "{j}");
    }
    assert!(
        jobs.iter()
            .all(|j| j["state"] == "succeeded" || j["state"] == "superseded"),
        "{jobs:?}"
    );
    let succeeded: BTreeSet<String> = jobs
        .iter()
        .filter(|j| j["state"] == "succeeded")
        .map(|j| j["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(
        server
            .all_pages("/api/v1/jobs?state=succeeded", ACME_READER)
            .len(),
        succeeded.len()
    );
    server
        .get("/api/v1/jobs?state=bogus", ACME_READER)
        .problem(400);

    // Each completion event arrived on the stream opened before the ingest.
    let mut streamed: BTreeMap<String, SseEvent> = BTreeMap::new();
    while streamed.len() < succeeded.len() {
        let e = live
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "{} of {} completion events streamed",
                    streamed.len(),
                    succeeded.len()
                )
            });
        assert_eq!(e.kind, "recheck.job.completed@1");
        assert_eq!(e.data["id"].as_str(), Some(e.id.as_str()));
        let job = e.data["job"].as_str().expect("job").to_string();
        assert!(streamed.insert(job, e).is_none(), "an event streamed twice");
    }
    assert_eq!(streamed.keys().cloned().collect::<BTreeSet<_>>(), succeeded);
    // A client that connects now gets the same events from the store, and
    // one that resumes (Last-Event-ID or ?after=) only those after its last.
    let stored = server.stream_once("", ACME_READER, &[]);
    let ids = |events: &[SseEvent]| events.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(&stored).into_iter().collect::<BTreeSet<_>>(),
        streamed
            .values()
            .map(|e| e.id.clone())
            .collect::<BTreeSet<_>>()
    );
    let k = stored.len() / 2;
    let resumed = server.stream_once("", ACME_READER, &[("Last-Event-ID", &stored[k].id)]);
    assert_eq!(ids(&resumed), ids(&stored[k + 1..]));
    let resumed = server.stream_once(&format!("after={}", stored[k].id), ACME_READER, &[]);
    assert_eq!(ids(&resumed), ids(&stored[k + 1..]));
    let execution = server.stream_once("kind=execution", ACME_READER, &[]);
    assert_eq!(execution.len(), succeeded.len());
    assert!(execution
        .iter()
        .all(|e| e.kind == "recheck.job.execution@1"));
    server
        .get("/api/v1/events/stream?kind=bogus", ACME_READER)
        .problem(400);

    // A streamed envelope is the stored one, and `recheck verify` accepts it
    // with the public key the server printed; it signs this job's result.
    let (job, event) = streamed.iter().next().expect("an event");
    let served = server.get(&format!("/api/v1/events/{}", event.id), ACME_READER);
    assert_eq!(served.status, 200, "{}", served.body);
    assert_eq!(served.json()["envelope"], event.data["envelope"]);
    let public_key = server
        .public_key
        .clone()
        .expect("the server printed its public key");
    let envelope_file = server.dir.path().join("streamed-event.json");
    std::fs::write(&envelope_file, event.data["envelope"].to_string()).expect("write");
    let verify = Command::new(env!("CARGO_BIN_EXE_recheck"))
        .arg("verify")
        .arg(&envelope_file)
        .arg("--key")
        .arg(&public_key)
        .output()
        .expect("run recheck verify");
    assert!(verify.status.success(), "{verify:?}");
    let key_id = server.key_id.clone().expect("key id printed");
    assert!(
        String::from_utf8_lossy(&verify.stdout).contains(&key_id),
        "{verify:?}"
    );
    let envelope =
        recheck::attest::dsse::Envelope::from_json(event.data["envelope"].to_string().as_bytes())
            .expect("an envelope");
    let key = recheck::attest::keys::PublicKey::from_pem(
        &std::fs::read_to_string(&public_key).expect("public key"),
    )
    .expect("PEM");
    let signed = recheck::attest::statement::verify_completion(&envelope, &[key]).expect("valid");
    assert_eq!(&signed.job_id, job);
    assert_eq!(signed.tenant, ACME);

    // `/explain` of an artifact's job names, for a finding a VEX statement
    // suppresses, the range event that matched and that statement. (No VEX
    // document of the shared corpus names a product its SBOMs contain; the
    // suppression is the bundled sample's statement on the real advisory
    // PYSEC-2023-74, through its CVE alias, for the real requests 2.28.1.)
    let suppressed = expected
        .iter()
        .find(|f| f["status"] == "suppressed" && f["vex_source"].is_string())
        .expect("a finding suppressed by a VEX statement");
    let artifact = suppressed["artifact"].as_str().expect("artifact");
    let job = latest[artifact]["id"].as_str().expect("id");
    let explained = server.get(&format!("/api/v1/jobs/{job}/explain"), ACME_READER);
    assert_eq!(explained.status, 200, "{}", explained.body);
    let explained = explained.json();
    assert_eq!(explained["job"], job);
    assert_eq!(
        explained["completion_event"].as_str(),
        Some(streamed[job].id.as_str())
    );
    let entry = explained["trace"]
        .as_array()
        .expect("trace")
        .iter()
        .find(|t| t["advisory"] == suppressed["advisory"] && t["purl"] == suppressed["purl"])
        .unwrap_or_else(|| panic!("no trace entry for {suppressed}: {explained}"));
    assert_eq!(
        entry["matched"],
        matched_text(&suppressed["reason"]),
        "{entry}"
    );
    assert_eq!(entry["vex"]["status"], suppressed["vex_status"], "{entry}");
    assert_eq!(entry["vex"]["source"], suppressed["vex_source"], "{entry}");
    assert_eq!(entry["vex"]["suppressed"], true, "{entry}");
    assert_eq!(
        entry["decided_by"],
        format!(
            "suppressed by VEX {}",
            suppressed["vex_source"].as_str().expect("source")
        )
    );
    assert_eq!(entry["verdict"], "pass");
    // Every finding of the artifact is in the trace, each with its match.
    let of_artifact = expected
        .iter()
        .filter(|f| f["artifact"] == artifact)
        .count();
    assert_eq!(
        explained["trace"].as_array().map(Vec::len),
        Some(of_artifact)
    );

    // A policy-triggered recheck of every artifact, as a dry run and then for
    // real: the real run's jobs are for the dry run's artifacts, they run to
    // completion in the server, and their signed events (each naming its
    // job) arrive on the stream opened before the ingest.
    let body = json!({"selector": {"all": true}, "reason": "policy change", "mode": "reevaluate", "dryRun": true});
    let dry = server.post("/api/v1/runs", ACME_ADMIN, body.to_string().as_bytes());
    assert_eq!(dry.status, 200, "{}", dry.body);
    let field_of_jobs = |run: &Value, field: &str| -> BTreeSet<String> {
        run["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .map(|j| j[field].as_str().expect("a string").to_string())
            .collect()
    };
    let dry_artifacts = field_of_jobs(&dry.json(), "artifact");
    assert_eq!(
        dry_artifacts,
        artifacts.iter().cloned().collect::<BTreeSet<_>>()
    );
    let mut real_body = body.clone();
    real_body["dryRun"] = json!(false);
    let real = server.post("/api/v1/runs", ACME_ADMIN, real_body.to_string().as_bytes());
    assert_eq!(real.status, 201, "{}", real.body);
    let real = real.json();
    assert_eq!(field_of_jobs(&real, "artifact"), dry_artifacts);
    let run_jobs = field_of_jobs(&real, "id");
    let mut run_events = BTreeMap::new();
    while run_events.len() < run_jobs.len() {
        let e = live
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "{} of the run's {} completion events streamed",
                    run_events.len(),
                    run_jobs.len()
                )
            });
        let job = e.data["job"].as_str().expect("job").to_string();
        if run_jobs.contains(&job) {
            assert!(
                run_events.insert(job, e).is_none(),
                "an event streamed twice"
            );
        }
    }
    for (job, e) in &run_events {
        let stored = server
            .get(&format!("/api/v1/jobs/{job}"), ACME_READER)
            .json();
        assert_eq!(stored["state"], "succeeded", "{stored}");
        assert_eq!(stored["run"], real["run"]["id"], "{stored}");
        let envelope =
            recheck::attest::dsse::Envelope::from_json(e.data["envelope"].to_string().as_bytes())
                .expect("an envelope");
        let key = recheck::attest::keys::PublicKey::from_pem(
            &std::fs::read_to_string(&public_key).expect("public key"),
        )
        .expect("PEM");
        let signed =
            recheck::attest::statement::verify_completion(&envelope, &[key]).expect("valid");
        assert_eq!(&signed.job_id, job);
    }

    let ready = server.call("GET", "/readyz", None, None, &[]);
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.json()["engine_caught_up"], true);
}

#[test]
fn bad_input_is_a_problem_naming_the_field_and_writes_nothing() {
    let server = Server::start();
    let before = server.log_seq();

    // One bad document in a batch: 422 naming it and its field; nothing written.
    let good = sample_advisory("PYSEC-2018-49.json");
    let mut bad = sample_advisory("PYSEC-2019-217.json");
    bad["affected"][0]["ranges"][0]["events"] = json!("not a list");
    let body = serde_json::to_vec(&json!([good, bad])).expect("encode");
    let p = server
        .post("/api/v1/advisories", ACME_ADMIN, &body)
        .problem(422);
    let errors = p["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{p}");
    assert_eq!(errors[0]["location"], "body[1]");
    let field = errors[0]["field"].as_str().expect("field");
    assert!(field.starts_with("affected[0].ranges[0]"), "{field}");
    assert_eq!(server.log_seq(), before);
    let id = good["id"].as_str().expect("id");
    server
        .get(&format!("/api/v1/impact/advisories/{id}"), ACME_READER)
        .problem(404);

    // Not JSON: 400. An SBOM that is neither CycloneDX nor SPDX: 422.
    server
        .post("/api/v1/advisories", ACME_ADMIN, b"{\"id\": ")
        .problem(400);
    let p = server
        .post("/api/v1/sboms", ACME_ADMIN, br#"{"sbom": {"hello": 1}}"#)
        .problem(422);
    assert_eq!(p["errors"][0]["location"], "body.sbom");
    let p = server
        .post(
            "/api/v1/sboms",
            ACME_ADMIN,
            br#"{"sbom": {}, "colour": "red"}"#,
        )
        .problem(422);
    assert!(
        p["detail"].as_str().expect("detail").contains("colour"),
        "{p}"
    );
    // A digest that contradicts the SBOM's names the field.
    let sbom: Value = serde_json::from_slice(&common::read(
        &recheck::samples::bundled_dir().join("sboms/payments-api.cdx.json"),
    ))
    .expect("JSON");
    let upload = json!({"sbom": sbom, "digest": "not-a-digest"});
    let p = server
        .post(
            "/api/v1/sboms",
            ACME_ADMIN,
            &serde_json::to_vec(&upload).expect("encode"),
        )
        .problem(422);
    assert_eq!(p["errors"][0]["field"], "digest");
    // A VEX document with a bad status.
    let p = server
        .post(
            "/api/v1/vex",
            ACME_ADMIN,
            br#"{"@context": "https://openvex.dev/ns/v0.2.0", "@id": "x", "author": "a", "timestamp": "2024-01-01T00:00:00Z", "version": 1, "statements": [{"vulnerability": {"name": "CVE-2024-1"}, "products": [{"@id": "pkg:pypi/x"}], "status": "maybe"}]}"#,
        )
        .problem(422);
    assert!(
        p["errors"][0]["field"]
            .as_str()
            .expect("field")
            .contains("statements[0]"),
        "{p}"
    );
    // Bad parameters name the parameter.
    let p = server
        .get("/api/v1/jobs?limit=many", ACME_READER)
        .problem(400);
    assert_eq!(p["errors"][0]["location"], "query.limit");
    server.get("/api/v1/jobs?limit=0", ACME_READER).problem(400);
    server
        .get("/api/v1/impact/purls?purl=not-a-purl", ACME_READER)
        .problem(400);
    server
        .get("/api/v1/impact/artifacts", ACME_READER)
        .problem(400);
    server
        .post("/api/v1/vex?scope=everyone", ACME_ADMIN, b"{}")
        .problem(400);
    // Too large: 413 before anything is parsed.
    let (status, body) = server.post_oversized("/api/v1/advisories", ACME_ADMIN, 5 * 1024 * 1024);
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("\"status\":413"), "{body}");
    // Removing what is not there: 404.
    let r = server.call(
        "DELETE",
        "/api/v1/advisories/PYSEC-0000-0",
        Some(ACME_ADMIN),
        None,
        &[],
    );
    r.problem(404);
    let r = server.call(
        "DELETE",
        "/api/v1/artifacts?artifact=nothing",
        Some(ACME_ADMIN),
        None,
        &[],
    );
    r.problem(404);
    let r = server.call(
        "DELETE",
        "/api/v1/vex?document=nothing",
        Some(ACME_ADMIN),
        None,
        &[],
    );
    r.problem(404);
    // Unknown routes and methods are problems too.
    server.get("/api/v1/nothing-here", ACME_READER).problem(404);
    server
        .call("PUT", "/api/v1/jobs", Some(ACME_ADMIN), None, &[])
        .problem(405);

    assert_eq!(
        server.log_seq(),
        before,
        "a rejected request wrote to the log"
    );
}

#[test]
fn idempotency_key_returns_the_original_result_and_wait_applies() {
    let server = Server::start();
    let body = serde_json::to_vec(&sample_advisory("PYSEC-2018-49.json")).expect("encode");
    let key = [("Idempotency-Key", "ingest-1")];
    let first = server.call(
        "POST",
        "/api/v1/advisories?wait=true",
        Some(ACME_ADMIN),
        Some(&body),
        &key,
    );
    assert_eq!(first.status, 200, "{}", first.body);
    let seq = server.log_seq();
    let again = server.call(
        "POST",
        "/api/v1/advisories?wait=true",
        Some(ACME_ADMIN),
        Some(&body),
        &key,
    );
    assert_eq!(again.status, 200);
    assert_eq!(again.json(), first.json());
    assert_eq!(server.log_seq(), seq, "the retry wrote again");
    // The same key for another request is refused; another tenant's key space is its own.
    let other = serde_json::to_vec(&sample_advisory("PYSEC-2019-217.json")).expect("encode");
    server
        .call(
            "POST",
            "/api/v1/advisories",
            Some(ACME_ADMIN),
            Some(&other),
            &key,
        )
        .problem(422);
    let globex = server.call(
        "POST",
        "/api/v1/advisories",
        Some(GLOBEX_ADMIN),
        Some(&other),
        &key,
    );
    assert_eq!(globex.status, 202, "{}", globex.body);
    assert!(server.log_seq() > seq);

    // The first write waited for its window: the advisory is queryable.
    let window = first.json()["window"].as_u64().expect("window");
    assert!(window >= 1);
    let id = "PYSEC-2018-49";
    let r = server.get(&format!("/api/v1/impact/advisories/{id}"), ACME_READER);
    assert_eq!(r.status, 200, "{}", r.body);
    // Deleting it (waiting) makes it unknown again.
    let r = server.call(
        "DELETE",
        &format!("/api/v1/advisories/{id}?wait=true"),
        Some(ACME_ADMIN),
        None,
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["window"].as_u64().expect("window") > window);
    server
        .get(&format!("/api/v1/impact/advisories/{id}"), ACME_READER)
        .problem(404);
}

/// Every operation of the OpenAPI document: (method, path template, operationId, needs a credential).
fn operations(doc: &Value) -> Vec<(String, String, String, bool)> {
    let global_security = doc["security"].as_array().is_some_and(|s| !s.is_empty());
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let secured = match op.get("security") {
                // `security: [{}]` (or `[]`) opts out.
                Some(s) => s.as_array().is_some_and(|s| {
                    s.iter()
                        .any(|r| r.as_object().is_some_and(|o| !o.is_empty()))
                }),
                None => global_security,
            };
            let id = op["operationId"].as_str().expect("operationId").to_string();
            out.push((method.to_uppercase(), path.clone(), id, secured));
        }
    }
    out
}

fn jwt(claims: Value, key: &jsonwebtoken::EncodingKey, header: jsonwebtoken::Header) -> String {
    jsonwebtoken::encode(&header, &claims, key).expect("sign JWT")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[test]
fn every_operation_authenticates_and_checks_scopes() {
    let server = Server::start();
    let doc = server
        .call("GET", "/api/v1/openapi.json", None, None, &[])
        .json();
    let ops = operations(&doc);
    assert!(ops.len() >= 14, "{ops:?}");
    for (method, path, id, secured) in &ops {
        let concrete = path
            .replace("{id}", "x")
            .replace("{tenant}", ACME)
            .replace("{window}", "1");
        if !secured {
            assert!(
                // Webhooks are signed (HMAC) instead: tests/webhooks.rs.
                ["healthz", "readyz", "advisory_export", "vex_export"].contains(&id.as_str()),
                "{id} needs no credential"
            );
            continue;
        }
        server.call(method, &concrete, None, None, &[]).problem(401);
        server
            .call(method, &concrete, Some("not-a-key"), None, &[])
            .problem(401);
        let wrong = server.call(
            method,
            &concrete,
            None,
            None,
            &[("Authorization", "Basic eDp5")],
        );
        wrong.problem(401);
        // Writes need ingest (or admin); reads need runs.read.
        let writes = method != "GET";
        let lacking = if writes { ACME_READER } else { ACME_INGEST };
        let body = writes.then_some(&b"{}"[..]);
        server
            .call(method, &concrete, Some(lacking), body, &[])
            .problem(403);
    }
    // The global feed needs admin; tenant data only ingest.
    let advisory = serde_json::to_vec(&sample_advisory("PYSEC-2018-49.json")).expect("encode");
    server
        .post("/api/v1/advisories", ACME_INGEST, &advisory)
        .problem(403);
    server
        .post("/api/v1/vex?scope=global", ACME_INGEST, b"{}")
        .problem(403);
    let sbom = common::read(&recheck::samples::bundled_dir().join("sboms/payments-api.cdx.json"));
    assert_eq!(server.post("/api/v1/sboms", ACME_INGEST, &sbom).status, 202);

    // JWTs: HS256 with audience, EdDSA with issuer and key id.
    let hs = jsonwebtoken::EncodingKey::from_secret(HS256_SECRET).expect("HS256 key");
    let hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let claims = |tenant: &str, scope: &str, exp: u64| json!({"tenant": tenant, "scope": scope, "exp": exp, "aud": "recheck", "iss": "https://idp.test", "sub": "ci"});
    let good = jwt(
        claims(ACME, "scheduler.runs.read", now() + 600),
        &hs,
        hs_header.clone(),
    );
    assert_eq!(server.get("/api/v1/jobs", &good).status, 200);
    let ingest_only = jwt(
        claims(ACME, "scheduler.ingest", now() + 600),
        &hs,
        hs_header.clone(),
    );
    server.get("/api/v1/jobs", &ingest_only).problem(403);
    let expired = jwt(
        claims(ACME, "scheduler.runs.read", now() - 3600),
        &hs,
        hs_header.clone(),
    );
    server.get("/api/v1/jobs", &expired).problem(401);
    let stranger = jwt(
        claims("initech", "scheduler.admin", now() + 600),
        &hs,
        hs_header.clone(),
    );
    server.get("/api/v1/jobs", &stranger).problem(401);
    let forged = jwt(
        claims(ACME, "scheduler.admin", now() + 600),
        &jsonwebtoken::EncodingKey::from_secret(b"some other secret, 32 bytes long").expect("key"),
        hs_header.clone(),
    );
    server.get("/api/v1/jobs", &forged).problem(401);
    let wrong_audience = jwt(
        json!({"tenant": ACME, "scope": "scheduler.runs.read", "exp": now() + 600, "aud": "other"}),
        &hs,
        hs_header,
    );
    server.get("/api/v1/jobs", &wrong_audience).problem(401);

    let pem = std::fs::read(server.dir.path().join("idp.key.pem")).expect("private key");
    let ed = jsonwebtoken::EncodingKey::from_ed_pem(&pem).expect("ed25519 key");
    let mut ed_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    ed_header.kid = Some("idp-ed".into());
    let token = jwt(
        claims(GLOBEX, "scheduler.runs.read", now() + 600),
        &ed,
        ed_header.clone(),
    );
    let r = server.get("/api/v1/jobs", &token);
    assert_eq!(r.status, 200, "{}", r.body);
    let wrong_issuer = jwt(
        json!({"tenant": GLOBEX, "scope": "scheduler.runs.read", "exp": now() + 600, "iss": "https://evil.test"}),
        &ed,
        ed_header,
    );
    server.get("/api/v1/jobs", &wrong_issuer).problem(401);
}

/// What tenant A holds that tenant B must never see.
struct Secrets {
    artifact: String,
    job: String,
    event: String,
    vex_document: String,
    purl: String,
    run: String,
    schedule: String,
}

/// A signed DSSE envelope stored as an event of `ACME` before the server
/// starts (no worker emits events yet); its public key goes beside the store.
fn seed_event(store: &Path) -> String {
    let key = recheck::attest::keys::SigningKey::from_seed(&[7; 32]).expect("key");
    std::fs::write(
        store.with_file_name("events.pub.pem"),
        key.public_key().to_pem(),
    )
    .expect("write public key");
    let statement = serde_json::to_vec(&json!({"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": "job-acme", "digest": {"sha256": "56588455d2d5edadc3590ccb6f26823dd5ac2e778bed35cf6cf1fb0a13311ef4"}}], "predicateType": "https://recheck.dev/test", "predicate": {}})).expect("encode");
    let envelope =
        recheck::attest::dsse::Envelope::sign("application/vnd.in-toto+json", statement, &key)
            .to_json()
            .expect("envelope");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let id = "evt-acme-isolation-probe".to_string();
    runtime.block_on(async {
        let s = recheck::store::open(&store.display().to_string())
            .await
            .expect("open store");
        let event = recheck::model::StoredEvent {
            id: id.clone(),
            tenant: ACME.into(),
            job: "job-acme".into(),
            kind: "recheck.job.completed@1".into(),
            occurred_at: "2026-12-04T00:00:00Z".into(),
            body: envelope,
        };
        assert!(s.put_event(&event).await.expect("put event"));
    });
    id
}

#[test]
fn tenant_isolation_on_every_operation_of_the_openapi_document() {
    let mut event = String::new();
    let server = Server::start_with(4 * 1024 * 1024, |store| event = seed_event(store), &[]);
    let samples = recheck::samples::bundled_dir();

    // Acme's data: the samples (advisories global, SBOMs and VEX acme's).
    let advisories: Vec<Value> = common::json_files(&samples.join("advisories"))
        .iter()
        .map(|p| serde_json::from_slice(&common::read(p)).expect("JSON"))
        .collect();
    let r = server.post(
        "/api/v1/advisories",
        ACME_ADMIN,
        &serde_json::to_vec(&advisories).expect("encode"),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let vex_path = samples.join("vex/payments-api.openvex.json");
    let vex_document = "acme-private-vex";
    let r = server.post(
        &format!("/api/v1/vex?document={vex_document}"),
        ACME_ADMIN,
        &common::read(&vex_path),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let sbom = serde_json::from_slice::<Value>(&common::read(
        &samples.join("sboms/payments-api.cdx.json"),
    ))
    .expect("JSON");
    let upload = json!({"sbom": sbom, "labels": {"team": "acme-payments"}, "repository": "git.acme.test/payments"});
    let r = server.post(
        "/api/v1/sboms?wait=true",
        ACME_ADMIN,
        &serde_json::to_vec(&upload).expect("encode"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let artifact = r.json()["artifact"].as_str().expect("artifact").to_string();
    let findings = server.all_pages(
        &format!("/api/v1/impact/artifacts?artifact={}", enc(&artifact)),
        ACME_READER,
    );
    assert!(!findings.is_empty());
    let purl = findings[0]["purl"].as_str().expect("purl").to_string();
    let advisory = findings[0]["advisory"]
        .as_str()
        .expect("advisory")
        .to_string();
    // Acme's jobs run (the server's own workers): its events exist, and its
    // own stream shows them.
    let jobs = server.settle(ACME_READER);
    let job = jobs[0]["id"].as_str().expect("job id").to_string();
    let job_window = jobs[0]["window"].as_u64().expect("job window").to_string();
    let acme_stream = server.stream_once("", ACME_READER, &[]);
    assert!(!acme_stream.is_empty(), "acme's completion events");
    let acme_advisory_doc: Value = {
        let file = samples.join("advisories").join(format!("{advisory}.json"));
        serde_json::from_slice(&common::read(&file)).expect("JSON")
    };
    let run = {
        let body = json!({"selector": {"all": true}, "reason": "acme's own", "mode": "reevaluate"});
        let r = server.post(
            "/api/v1/runs",
            ACME_ADMIN,
            &serde_json::to_vec(&body).expect("encode"),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        r.json()["run"]["id"].as_str().expect("run id").to_string()
    };
    // A schedule that will not fire during the test (1 January, 00:00).
    let yearly = json!({"cron": "0 0 1 1 *", "timezone": "Europe/Berlin", "selector": {"labels": {"team": "acme-payments"}}});
    let r = server.post(
        "/api/v1/schedules",
        ACME_ADMIN,
        &serde_json::to_vec(&yearly).expect("encode"),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let acme_schedule = r.json()["schedule"].clone();
    let secrets = Secrets {
        artifact: artifact.clone(),
        job: job.clone(),
        event: event.clone(),
        vex_document: vex_document.into(),
        purl: purl.clone(),
        run: run.clone(),
        schedule: acme_schedule["id"].as_str().expect("schedule id").into(),
    };
    let acme_event = server.get(&format!("/api/v1/events/{event}"), ACME_READER);
    assert_eq!(acme_event.status, 200, "{}", acme_event.body);
    // The envelope served is the signed one: `recheck verify` accepts it.
    let envelope_file = server.dir.path().join("event.json");
    std::fs::write(&envelope_file, acme_event.json()["envelope"].to_string()).expect("write");
    let verify = Command::new(env!("CARGO_BIN_EXE_recheck"))
        .arg("verify")
        .arg(&envelope_file)
        .arg("--key")
        .arg(server.dir.path().join("events.pub.pem"))
        .output()
        .expect("run recheck verify");
    assert!(verify.status.success(), "{verify:?}");

    // Every operation, with globex's admin key and acme's ids in every
    // parameter. Bodies come from this table; an operation missing from it
    // fails here, so a new route must be given a probe.
    let doc = server
        .call("GET", "/api/v1/openapi.json", None, None, &[])
        .json();
    let globex_sbom = common::read(&samples.join("sboms/billing-worker.cdx.json"));
    let harmless_advisory = {
        let mut a = sample_advisory("PYSEC-2018-49.json");
        a["id"] = json!("PYSEC-9999-isolation");
        a["aliases"] = json!([]);
        a["affected"][0]["package"]["name"] = json!("no-such-package-isolation");
        serde_json::to_vec(&a).expect("encode")
    };
    let mut probed = BTreeSet::new();
    for (method, template, id, _) in operations(&doc) {
        let path_id = match id.as_str() {
            "get_job" | "retry_job" | "cancel_job" | "explain_job" | "replay_dead_letter" => {
                secrets.job.clone()
            }
            "get_event" => secrets.event.clone(),
            "get_run" | "cancel_run" => secrets.run.clone(),
            "get_schedule" | "put_schedule" | "delete_schedule" => secrets.schedule.clone(),
            "post_runtime" => secrets.artifact.clone(),
            "by_advisory" | "delete_advisory" => advisory.clone(),
            _ => String::new(),
        };
        let op = &doc["paths"][&template][method.to_lowercase()];
        let query: Vec<String> = op["parameters"]
            .as_array()
            .map(|ps| ps.iter().filter(|p| p["in"] == "query").collect::<Vec<_>>())
            .unwrap_or_default()
            .iter()
            .filter_map(|p| {
                let name = p["name"].as_str()?;
                let value = match name {
                    "artifact" => secrets.artifact.clone(),
                    "purl" => secrets.purl.clone(),
                    // Globex's own document must not be acme's name: the
                    // delete probe must find nothing of globex's there.
                    "document" if id == "post_vex" => "globex-vex".into(),
                    "document" => secrets.vex_document.clone(),
                    "since_window" => "0".into(),
                    "wait" => "true".into(),
                    // The stream ends after what is stored (else the probe
                    // would wait forever).
                    "follow" => "false".into(),
                    _ => return None,
                };
                Some(format!("{name}={}", enc(&value)))
            })
            .collect();
        // Controls name their tenant in the path: probe with acme's.
        let mut path = template
            .replace("{id}", &enc(&path_id))
            .replace("{tenant}", ACME)
            .replace("{window}", &job_window);
        if !query.is_empty() {
            path = format!("{path}?{}", query.join("&"));
        }
        let body: Option<Vec<u8>> = match id.as_str() {
            "post_advisories" => Some(harmless_advisory.clone()),
            "post_sbom" => Some(globex_sbom.clone()),
            "post_vex" => Some(common::read(&vex_path)),
            // Globex's own run: it must cover none of acme's artifacts.
            "post_runtime" => Some(br#"{"event": "running", "namespace": "probe"}"#.to_vec()),
            // A simulation of an advisory acme's artifact has findings of.
            "post_whatif" => {
                Some(serde_json::to_vec(&json!({"advisory": acme_advisory_doc})).expect("encode"))
            }
            "post_schedule" | "put_schedule" => Some(
                serde_json::to_vec(
                    &json!({"cron": "* * * * *", "selector": {"all": true}, "enabled": false}),
                )
                .expect("encode"),
            ),
            "post_run" => Some(
                serde_json::to_vec(
                    &json!({"selector": {"all": true}, "reason": "probe", "mode": "rescan"}),
                )
                .expect("encode"),
            ),
            "delete_advisory" | "delete_vex" | "delete_artifact" | "by_advisory"
            | "by_artifact" | "by_purl" | "changes" | "list_jobs" | "get_job" | "get_event"
            | "healthz" | "readyz" | "retry_job" | "cancel_job" | "explain_job"
            | "list_dead_letters" | "replay_dead_letter" | "stream_events" | "list_runs"
            | "get_run" | "cancel_run" | "list_schedules" | "get_schedule" | "delete_schedule" => {
                None
            }
            // Signed with no tenant's secret: refused (tests/webhooks.rs
            // covers what each secret may write).
            "advisory_export" | "vex_export" => Some(harmless_advisory.clone()),
            "pause_tenant" | "resume_tenant" | "get_limits" | "replay_window" => None,
            "put_limits" => Some(br#"{"concurrency": 1}"#.to_vec()),
            other => {
                panic!("operation {other} ({method} {template}) has no tenant-isolation probe")
            }
        };
        // Removing a global advisory is a feed operation: globex's admin may,
        // and it does not reveal acme's data; skip it so acme's data stays.
        if id == "delete_advisory" {
            probed.insert(id);
            continue;
        }
        let r = server.call(&method, &path, Some(GLOBEX_ADMIN), body.as_deref(), &[]);
        assert!(r.status < 500, "{method} {path}: {}", r.body);
        for secret in [
            ACME,
            &secrets.artifact,
            &secrets.job,
            &secrets.event,
            &secrets.run,
            &secrets.schedule,
            "acme-payments",
        ] {
            // Echoing back an id globex itself sent reveals nothing.
            let asked = path.contains(secret) || path.contains(&enc(secret));
            assert!(
                secret.is_empty() || asked || !r.body.contains(secret),
                "{method} {path} shows acme's {secret} to globex: {}",
                r.body
            );
        }
        match id.as_str() {
            "get_job" | "get_event" | "delete_artifact" | "delete_vex" | "by_artifact"
            | "retry_job" | "cancel_job" | "explain_job" | "replay_dead_letter" | "get_run"
            | "cancel_run" | "get_schedule" | "put_schedule" | "delete_schedule"
            | "post_runtime" => {
                r.problem(404);
            }
            // Acme's controls, with globex's admin key.
            "get_limits" | "replay_window" => {
                r.problem(403);
            }
            "by_advisory" | "by_purl" | "list_jobs" | "changes" | "list_dead_letters"
            | "stream_events" | "list_runs" | "list_schedules" | "post_whatif" => {
                assert_eq!(r.status, 200, "{}", r.body);
            }
            _ => {}
        }
        probed.insert(id);
    }
    assert!(probed.len() >= 20, "{probed:?}");
    // Resuming globex's stream after one of acme's events: unknown to it.
    let r = server.get(
        &format!(
            "/api/v1/events/stream?follow=false&after={}",
            acme_stream[0].id
        ),
        GLOBEX_ADMIN,
    );
    r.problem(400);
    assert!(!r.body.contains(ACME) && !r.body.contains(&job));

    // Acme's data is as it was (globex's own VEX document and SBOM aside).
    let after = server.all_pages(
        &format!("/api/v1/impact/artifacts?artifact={}", enc(&artifact)),
        ACME_READER,
    );
    assert_eq!(sorted(after), sorted(findings));
    assert_eq!(
        server
            .get(&format!("/api/v1/jobs/{job}"), ACME_READER)
            .status,
        200
    );
    let acme_run = server.get(&format!("/api/v1/runs/{run}"), ACME_READER);
    assert_eq!(acme_run.status, 200, "{}", acme_run.body);
    assert_eq!(acme_run.json()["run"]["state"], "queued");
    let held = server.get(
        &format!("/api/v1/schedules/{}", secrets.schedule),
        ACME_READER,
    );
    assert_eq!(held.status, 200, "{}", held.body);
    assert_eq!(held.json()["schedule"], acme_schedule);
    let r = server.call(
        "DELETE",
        &format!("/api/v1/vex?document={vex_document}&wait=true"),
        Some(ACME_ADMIN),
        None,
        &[],
    );
    assert_eq!(
        r.status, 200,
        "acme's VEX document is still there: {}",
        r.body
    );
}

/// A local executor endpoint that answers 500 until `healthy` is set, then
/// 200 (and while `hang` is set, never); it counts the requests.
struct FlakyExecutor {
    url: String,
    healthy: std::sync::Arc<std::sync::atomic::AtomicBool>,
    hang: std::sync::Arc<std::sync::atomic::AtomicBool>,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

fn flaky_executor() -> FlakyExecutor {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/run", listener.local_addr().expect("addr"));
    let healthy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hang = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (h, n, g) = (healthy.clone(), hits.clone(), hang.clone());
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(mut sock) = sock else { return };
            let (h, n, g) = (h.clone(), n.clone(), g.clone());
            std::thread::spawn(move || {
                let _ = sock.set_read_timeout(Some(Duration::from_secs(10)));
                // The head, then the body by Content-Length.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let (end, length) = loop {
                    let got = sock.read(&mut chunk).unwrap_or(0);
                    if got == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..got]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (i + 4, length);
                    }
                };
                while buf.len() < end + length {
                    match sock.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(got) => buf.extend_from_slice(&chunk[..got]),
                    }
                }
                n.fetch_add(1, Ordering::SeqCst);
                if g.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_secs(3600));
                    return;
                }
                let (status, body) = if h.load(Ordering::SeqCst) {
                    ("200 OK", r#"{"scanner":"test","result":"ok"}"#)
                } else {
                    ("500 Internal Server Error", r#"{"error":"scanner down"}"#)
                };
                let _ = write!(
                    sock,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    FlakyExecutor {
        url,
        healthy,
        hang,
        hits,
    }
}

/// The bundled samples into `server` as acme's: advisories, VEX, every SBOM
/// (the last write waits for its window).
fn ingest_samples(server: &Server) {
    let samples = recheck::samples::bundled_dir();
    let advisories: Vec<Value> = common::json_files(&samples.join("advisories"))
        .iter()
        .map(|p| serde_json::from_slice(&common::read(p)).expect("JSON"))
        .collect();
    let r = server.post(
        "/api/v1/advisories",
        ACME_ADMIN,
        &serde_json::to_vec(&advisories).expect("encode"),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    for p in common::json_files(&samples.join("vex")) {
        let path = format!("/api/v1/vex?document={}", enc(&p.display().to_string()));
        let r = server.post(&path, ACME_ADMIN, &common::read(&p));
        assert_eq!(r.status, 202, "{}: {}", p.display(), r.body);
    }
    let sboms = common::json_files(&samples.join("sboms"));
    for (i, p) in sboms.iter().enumerate() {
        let wait = if i + 1 == sboms.len() {
            "?wait=true"
        } else {
            ""
        };
        let r = server.post(
            &format!("/api/v1/sboms{wait}"),
            ACME_ADMIN,
            &common::read(p),
        );
        assert!(
            r.status == 200 || r.status == 202,
            "{}: {}",
            p.display(),
            r.body
        );
    }
}

fn wait_for_state(server: &Server, job: &str, state: &str) -> Value {
    let started = std::time::Instant::now();
    loop {
        let j = server
            .get(&format!("/api/v1/jobs/{job}"), ACME_READER)
            .json();
        if j["state"] == state {
            return j;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "job {job} is still {} (waiting for {state})",
            j["state"]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_dead_lettered_job_is_listed_replayed_over_the_api_and_completes() {
    use std::sync::atomic::Ordering;
    let executor = flaky_executor();
    let server = Server::start_with(
        4 * 1024 * 1024,
        |_| {},
        &[
            "--executor-url",
            &executor.url,
            "--max-attempts",
            "2",
            "--backoff-ms",
            "50",
            "--max-backoff-ms",
            "100",
            "--attempt-budget",
            "1",
        ],
    );
    ingest_samples(&server);
    // The executor fails every attempt: each job that runs is dead-lettered
    // after its second attempt.
    let jobs = server.settle(ACME_READER);
    let dead: Vec<&Value> = jobs
        .iter()
        .filter(|j| j["state"] == "dead_lettered")
        .collect();
    assert!(dead.len() >= 2, "{jobs:?}");
    assert!(dead.iter().all(|j| j["attempt"] == 2), "{dead:?}");
    assert!(executor.hits.load(Ordering::SeqCst) >= 2 * dead.len());

    let letters = server.all_pages("/api/v1/dead-letters", ACME_READER);
    let listed: BTreeSet<&str> = letters
        .iter()
        .map(|d| d["id"].as_str().expect("id"))
        .collect();
    let want: BTreeSet<&str> = dead.iter().map(|j| j["id"].as_str().expect("id")).collect();
    assert_eq!(listed, want);
    for d in &letters {
        assert_eq!(d["state"], "dead_lettered", "{d}");
        let reason = d["reason"].as_str().expect("reason");
        assert!(reason.contains("500"), "{d}");
        assert!(reason.contains("attempts exhausted"), "{d}");
    }
    assert!(server
        .all_pages("/api/v1/dead-letters", GLOBEX_ADMIN)
        .is_empty());

    let (first, second) = (
        dead[0]["id"].as_str().expect("id"),
        dead[1]["id"].as_str().expect("id"),
    );
    // Not completed: nothing to explain; finished: nothing to cancel.
    server
        .get(&format!("/api/v1/jobs/{first}/explain"), ACME_READER)
        .problem(409);
    server
        .post(&format!("/api/v1/jobs/{first}/cancel"), ACME_ADMIN, b"")
        .problem(409);
    // Reads cannot replay.
    server
        .post(
            &format!("/api/v1/dead-letters/{first}/replay"),
            ACME_READER,
            b"",
        )
        .problem(403);

    // The scanner is back: replay one dead letter (twice with one
    // Idempotency-Key: one replay) and retry the other.
    executor.healthy.store(true, Ordering::SeqCst);
    let replay = |key: &str| {
        server.call(
            "POST",
            &format!("/api/v1/dead-letters/{first}/replay"),
            Some(ACME_ADMIN),
            None,
            &[("Idempotency-Key", key)],
        )
    };
    let r = replay("replay-1");
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.json()["id"], first);
    let again = replay("replay-1");
    assert_eq!(
        (again.status, again.body.clone()),
        (r.status, r.body.clone())
    );
    let done = wait_for_state(&server, first, "succeeded");
    assert_eq!(done["attempt"], 3, "{done}");
    let r = server.post(&format!("/api/v1/jobs/{second}/retry"), ACME_ADMIN, b"");
    assert_eq!(r.status, 202, "{}", r.body);
    wait_for_state(&server, second, "succeeded");
    // A succeeded job is neither retried nor replayed again.
    server
        .post(&format!("/api/v1/jobs/{first}/retry"), ACME_ADMIN, b"")
        .problem(409);
    server
        .post(
            &format!("/api/v1/dead-letters/{first}/replay"),
            ACME_ADMIN,
            b"",
        )
        .problem(404);

    let left: BTreeSet<String> = server
        .all_pages("/api/v1/dead-letters", ACME_READER)
        .iter()
        .map(|d| d["id"].as_str().expect("id").to_string())
        .collect();
    assert!(!left.contains(first) && !left.contains(second), "{left:?}");
    assert_eq!(left.len(), dead.len() - 2);
    // The replayed job completed for real: a signed event and an explain
    // trace of its completion.
    let explained = server.get(&format!("/api/v1/jobs/{first}/explain"), ACME_READER);
    assert_eq!(explained.status, 200, "{}", explained.body);
    let event = explained.json()["completion_event"]
        .as_str()
        .expect("completion event")
        .to_string();
    let stored = server.get(&format!("/api/v1/events/{event}"), ACME_READER);
    assert_eq!(stored.status, 200, "{}", stored.body);
    assert_eq!(stored.json()["job"], first);
}

#[test]
fn jobs_are_cancelled_and_retried_a_restart_refills_the_queue_and_sigterm_ends_streams() {
    // No in-process worker: the jobs wait in the queue, where they can be
    // cancelled before they run.
    let mut server = Server::start_with(4 * 1024 * 1024, |_| {}, &["--workers", "0"]);
    ingest_samples(&server);
    let started = std::time::Instant::now();
    let jobs = loop {
        let jobs = server.all_pages("/api/v1/jobs", ACME_READER);
        if !jobs.is_empty() && jobs.iter().all(|j| j["state"] == "queued") {
            break jobs;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the dispatcher did not queue the jobs: {jobs:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let id = jobs[0]["id"].as_str().expect("id");
    let cancel = format!("/api/v1/jobs/{id}/cancel");
    server.post(&cancel, ACME_READER, b"").problem(403);
    let r = server.post(&cancel, ACME_ADMIN, b"");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["state"], "cancelled");
    server.post(&cancel, ACME_ADMIN, b"").problem(409);
    // Only dead-lettered or cancelled jobs are retried.
    let other = jobs[1..]
        .first()
        .map(|j| j["id"].as_str().expect("id"))
        .unwrap_or(id);
    if other != id {
        server
            .post(&format!("/api/v1/jobs/{other}/retry"), ACME_ADMIN, b"")
            .problem(409);
    }
    let r = server.post(&format!("/api/v1/jobs/{id}/retry"), ACME_ADMIN, b"");
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.json()["state"], "queued");
    // Acme's job is not globex's to cancel; nothing ran yet.
    server
        .post(&format!("/api/v1/jobs/{id}/cancel"), GLOBEX_ADMIN, b"")
        .problem(404);
    assert!(server.stream_once("", ACME_READER, &[]).is_empty());
    let key_id = server.key_id.clone().expect("key id");

    // The server dies with its in-process queue; the next one, with
    // workers, refills the queue from the store and runs every job, the
    // retried one included, signing with the same key.
    server.restart(&[], |_| {});
    assert_eq!(server.key_id.as_deref(), Some(key_id.as_str()));
    let settled = server.settle(ACME_READER);
    assert_eq!(settled.len(), jobs.len());
    assert!(
        settled
            .iter()
            .all(|j| j["state"] == "succeeded" || j["state"] == "superseded"),
        "{settled:?}"
    );
    assert_eq!(wait_for_state(&server, id, "succeeded")["attempt"], 1);
    let streamed: BTreeSet<String> = server
        .stream_once("", ACME_READER, &[])
        .iter()
        .map(|e| e.data["job"].as_str().expect("job").to_string())
        .collect();
    assert!(streamed.contains(id), "{streamed:?}");

    // SIGTERM with a stream open: the stream ends and the server exits 0
    // (an open stream must not hold the graceful shutdown up).
    let live = server.stream_live(ACME_READER);
    server.terminate_and_wait();
    // What it sent before (the stored events) and then its end.
    let ended = std::time::Instant::now();
    loop {
        match live.recv_timeout(Duration::from_secs(30)) {
            Ok(e) => assert_eq!(e.kind, "recheck.job.completed@1"),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("the event stream outlived the server"),
        }
        assert!(ended.elapsed() < Duration::from_secs(30));
    }
}

impl Server {
    /// SIGTERM, then the exit status within 60 s (must be success).
    fn terminate_and_wait(&mut self) {
        let kill = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(kill.success());
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "recheck serve exited with {status}");
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "recheck serve did not stop within 60 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A child process killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A PostgreSQL schema of its own, dropped on drop; `None` after a SKIP.
struct PgSchema {
    base: String,
    schema: String,
    runtime: tokio::runtime::Runtime,
}

impl PgSchema {
    fn new(name: &str) -> Option<PgSchema> {
        let base = std::env::var("RECHECK_POSTGRES_URI")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        if let Err(e) = runtime.block_on(tokio_postgres::connect(&base, tokio_postgres::NoTls)) {
            common::skip(&format!(
                "PostgreSQL not reachable at {base} ({e}): set RECHECK_POSTGRES_URI"
            ));
            return None;
        }
        Some(PgSchema {
            base,
            schema: format!("api_{name}_{}", std::process::id()),
            runtime,
        })
    }

    fn url(&self) -> String {
        format!("{}?schema={}", self.base, self.schema)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let drop_schema = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema);
        self.runtime.block_on(async {
            if let Ok((client, conn)) =
                tokio_postgres::connect(&self.base, tokio_postgres::NoTls).await
            {
                tokio::spawn(conn);
                let _ = client.batch_execute(&drop_schema).await;
            }
        });
    }
}

#[test]
fn serve_without_workers_leaves_jobs_to_recheck_worker_on_a_shared_store_and_queue() {
    let Some(pg) = PgSchema::new("shared") else {
        return;
    };
    let redis =
        std::env::var("RECHECK_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("api_shared_{}", std::process::id());
    let store = pg.url();
    let server = Server::start_with(
        4 * 1024 * 1024,
        |_| {},
        &[
            "--store",
            &store,
            "--queue",
            &redis,
            "--queue-prefix",
            &prefix,
            "--workers",
            "0",
        ],
    );
    // The stream is open before anything runs; with no worker in the
    // server it learns of events by reading the store.
    let live = server.stream_live(ACME_READER);
    let dir = server.dir.path();
    let keygen = Command::new(env!("CARGO_BIN_EXE_recheck"))
        .args(["keygen", "--out"])
        .arg(dir.join("worker"))
        .output()
        .expect("run recheck keygen");
    assert!(keygen.status.success(), "{keygen:?}");
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        "default = \"warn\"\n\n[[rule]]\nname = \"fixable\"\nverdict = \"fail\"\nmin_severity = \"high\"\nfix_available = true\n",
    )
    .expect("write policy");
    let worker = Killed(
        Command::new(env!("CARGO_BIN_EXE_recheck"))
            .args(["worker", "--store", &store, "--queue", &redis])
            .args(["--queue-prefix", &prefix, "--concurrency", "2"])
            .arg("--policy")
            .arg(&policy)
            .arg("--signing-key")
            .arg(dir.join("worker.key.pem"))
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start recheck worker"),
    );
    ingest_samples(&server);
    let jobs = server.settle(ACME_READER);
    let succeeded: BTreeSet<String> = jobs
        .iter()
        .filter(|j| j["state"] == "succeeded")
        .map(|j| j["id"].as_str().expect("id").to_string())
        .collect();
    assert!(!succeeded.is_empty(), "{jobs:?}");
    let mut streamed = BTreeMap::new();
    while streamed.len() < succeeded.len() {
        let e = live
            .recv_timeout(Duration::from_secs(30))
            .expect("completion events on the stream");
        streamed.insert(e.data["job"].as_str().expect("job").to_string(), e);
    }
    assert_eq!(streamed.keys().cloned().collect::<BTreeSet<_>>(), succeeded);
    // Signed by the worker process's key.
    let event = streamed.values().next().expect("an event");
    let file = dir.join("shared-event.json");
    std::fs::write(&file, event.data["envelope"].to_string()).expect("write");
    let verify = Command::new(env!("CARGO_BIN_EXE_recheck"))
        .arg("verify")
        .arg(&file)
        .arg("--key")
        .arg(dir.join("worker.pub.pem"))
        .output()
        .expect("run recheck verify");
    assert!(verify.status.success(), "{verify:?}");
    drop(worker);
    drop(server);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let options = recheck::queue::QueueOptions {
            prefix: prefix.clone(),
            ..recheck::queue::QueueOptions::default()
        };
        let queue = recheck::queue::open(&redis, options).await.expect("queue");
        queue.purge().await.expect("purge");
    });
}

#[test]
fn a_job_running_when_the_server_is_killed_is_taken_over_after_the_restart() {
    use std::sync::atomic::Ordering;
    let executor = flaky_executor();
    executor.hang.store(true, Ordering::SeqCst);
    let flags = ["--executor-url", &executor.url, "--executor-timeout", "600"];
    let mut server = Server::start_with(4 * 1024 * 1024, |_| {}, &flags);
    ingest_samples(&server);
    // The executor never answers: the jobs stay running.
    let started = std::time::Instant::now();
    let running = loop {
        let jobs = server.all_pages("/api/v1/jobs?state=running", ACME_READER);
        if let Some(j) = jobs.first() {
            break j["id"].as_str().expect("id").to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no job runs");
        std::thread::sleep(Duration::from_millis(50));
    };
    // kill -9 mid-job; the next server (executor answering again) finds the
    // job running with no process holding it, queues it again, and a worker
    // takes it over as a lost lease.
    executor.hang.store(false, Ordering::SeqCst);
    executor.healthy.store(true, Ordering::SeqCst);
    server.restart(&flags, |_| {});
    let done = wait_for_state(&server, &running, "succeeded");
    assert_eq!(done["attempt"], 2, "{done}");
    let attempts: Vec<Value> = server
        .stream_once("kind=attempt", ACME_READER, &[])
        .into_iter()
        .filter(|e| e.data["job"] == running.as_str())
        .map(|e| e.data["envelope"].clone())
        .collect();
    let outcomes: Vec<(u64, String)> = attempts
        .iter()
        .map(|a| {
            (
                a["attempt"].as_u64().expect("attempt"),
                a["outcome"].as_str().expect("outcome").to_string(),
            )
        })
        .collect();
    assert!(outcomes.contains(&(1, "lost".to_string())), "{outcomes:?}");
    assert!(
        outcomes.contains(&(2, "succeeded".to_string())),
        "{outcomes:?}"
    );
    let jobs = server.settle(ACME_READER);
    assert!(jobs.iter().all(|j| j["state"] == "succeeded"), "{jobs:?}");
}

// OpenAPI-driven fuzzing with schemathesis (an independent generator reading
// `/api/v1/openapi.json`).

/// Examples per operation and phase; the whole run stays well under a minute.
const FUZZ_MAX_EXAMPLES: &str = "12";

/// The schemathesis command, or `None` after a SKIP (a failure under CI).
fn schemathesis() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("schemathesis"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        common::skip(
            "schemathesis not found on PATH: pip install -r tests/requirements.txt \
             (scripts/test.sh does)",
        );
    }
    found
}

fn toml_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string encodes")
}

fn schemathesis_config(params: &BTreeMap<&'static str, Vec<(&'static str, String)>>) -> String {
    let mut text = String::new();
    for (operation, values) in params {
        text.push_str(&format!(
            "[[operations]]\ninclude-name = {}\nparameters = {{ {} }}\n\n",
            toml_string(operation),
            values
                .iter()
                .map(|(k, v)| format!("{} = {}", toml_string(k), toml_string(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    text
}

/// Status codes per operation label from a schemathesis NDJSON report.
fn statuses(report: &Path) -> BTreeMap<String, BTreeMap<u16, usize>> {
    let text = std::fs::read_to_string(report).expect("read the report");
    let mut out: BTreeMap<String, BTreeMap<u16, usize>> = BTreeMap::new();
    for line in text.lines() {
        let event: Value = serde_json::from_str(line).expect("an NDJSON line");
        let Some(recorder) = event.get("ScenarioFinished").map(|s| &s["recorder"]) else {
            continue;
        };
        let label = recorder["label"].as_str().unwrap_or_default().to_string();
        let Some(interactions) = recorder["interactions"].as_object() else {
            continue;
        };
        for interaction in interactions.values() {
            if let Some(status) = interaction["response"]["status_code"].as_u64() {
                *out.entry(label.clone())
                    .or_default()
                    .entry(status as u16)
                    .or_default() += 1;
            }
        }
    }
    out
}

/// What one schemathesis run saw.
struct FuzzRun {
    /// Status codes and how often, per `METHOD PATH`.
    statuses: BTreeMap<String, BTreeMap<u16, usize>>,
    summary: String,
    passed: bool,
}

/// A schemathesis run with the admin key and a bounded number of examples
/// per operation.
fn fuzz(
    server: &Server,
    params: &BTreeMap<&'static str, Vec<(&'static str, String)>>,
) -> Option<FuzzRun> {
    let schemathesis = schemathesis()?;
    let config = server.dir.path().join("schemathesis.toml");
    std::fs::write(&config, schemathesis_config(params)).expect("write config");
    let reports = server.dir.path().join("schemathesis-reports");
    let out = Command::new(&schemathesis)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", server.base))
        .args(["--header", &format!("Authorization: Bearer {ACME_ADMIN}")])
        .args(["--checks", "not_a_server_error"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", FUZZ_MAX_EXAMPLES])
        .args(["--workers", "1", "--seed", "20261204"])
        .args(["--request-timeout", "30", "--no-color"])
        .args(["--report", "ndjson", "--report-dir"])
        .arg(&reports)
        .current_dir(server.dir.path())
        // Signs the feed webhooks' bodies (tests/interop/schemathesis_hooks.py).
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .env(
            "PYTHONPATH",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop"),
        )
        .env("RECHECK_FUZZ_WEBHOOK_TENANT", ACME)
        .env("RECHECK_FUZZ_WEBHOOK_SECRET", ACME_WEBHOOK_SECRET)
        .stdin(Stdio::null())
        .output()
        .expect("run schemathesis");
    let summary = String::from_utf8_lossy(&out.stdout).to_string();
    let report = std::fs::read_dir(&reports)
        .unwrap_or_else(|e| panic!("no report directory ({e}):\n{summary}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "ndjson"))
        .unwrap_or_else(|| panic!("no NDJSON report:\n{summary}"));
    Some(FuzzRun {
        statuses: statuses(&report),
        summary,
        passed: out.status.success(),
    })
}

#[test]
fn schemathesis_finds_no_server_error_and_a_2xx_for_every_operation() {
    use std::sync::atomic::Ordering;
    let executor = flaky_executor();
    let server = Server::start_with(
        4 * 1024 * 1024,
        |_| {},
        &[
            "--executor-url",
            &executor.url,
            "--executor-timeout",
            "600",
            "--max-attempts",
            "1",
        ],
    );
    // Four dead-lettered jobs (the samples' three artifacts with findings
    // and the SPDX sample again under a digest of its own), so that retry,
    // cancel, replay and a completed job each have one of their own.
    ingest_samples(&server);
    let spdx = common::read(&recheck::samples::bundled_dir().join("sboms/hello-server.spdx.json"));
    let upload = json!({
        "sbom": serde_json::from_slice::<Value>(&spdx).expect("JSON"),
        "digest": format!("sha256:{}", "f".repeat(64)),
    });
    let r = server.post(
        "/api/v1/sboms?wait=true",
        ACME_ADMIN,
        upload.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let dead: Vec<String> = server
        .settle(ACME_READER)
        .iter()
        .filter(|j| j["state"] == "dead_lettered")
        .map(|j| j["id"].as_str().expect("id").to_string())
        .collect();
    assert!(dead.len() >= 4, "{dead:?}");
    let (done, running, retry, replay) = (&dead[0], &dead[1], &dead[2], &dead[3]);
    executor.healthy.store(true, Ordering::SeqCst);
    let r = server.post(&format!("/api/v1/jobs/{done}/retry"), ACME_ADMIN, b"");
    assert!(r.status < 300, "{}", r.body);
    wait_for_state(&server, done, "succeeded");
    // From here every executor call hangs: this job stays running (something
    // to cancel), and so do the ones the fuzzer retries and replays.
    executor.hang.store(true, Ordering::SeqCst);
    let r = server.post(&format!("/api/v1/jobs/{running}/retry"), ACME_ADMIN, b"");
    assert!(r.status < 300, "{}", r.body);
    wait_for_state(&server, running, "running");
    let event = server
        .stream_once("", ACME_READER, &[])
        .into_iter()
        .find(|e| e.data["job"] == done.as_str())
        .expect("the completed job's event")
        .id;
    let vex_document = common::json_files(&recheck::samples::bundled_dir().join("vex"))[0]
        .display()
        .to_string();
    let payments = "sha256:c4050c2e56adf0cf54413fb6894419e8e3ca72077cd307244526abf7474e5353";
    let yearly = json!({"cron": "0 0 1 1 *", "timezone": "UTC", "selector": {"all": true}});
    let r = server.post(
        "/api/v1/schedules",
        ACME_ADMIN,
        yearly.to_string().as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let schedule = r.json()["schedule"]["id"]
        .as_str()
        .expect("schedule id")
        .to_string();
    let params = BTreeMap::from([
        ("GET /api/v1/jobs/{id}", vec![("path.id", done.clone())]),
        (
            "GET /api/v1/jobs/{id}/explain",
            vec![("path.id", done.clone())],
        ),
        (
            "POST /api/v1/jobs/{id}/retry",
            vec![("path.id", retry.clone())],
        ),
        (
            "POST /api/v1/jobs/{id}/cancel",
            vec![("path.id", running.clone())],
        ),
        (
            "POST /api/v1/dead-letters/{id}/replay",
            vec![("path.id", replay.clone())],
        ),
        ("GET /api/v1/events/{id}", vec![("path.id", event)]),
        ("DELETE /api/v1/schedules/{id}", vec![("path.id", schedule)]),
        (
            "POST /api/v1/tenants/{tenant}/pause",
            vec![("path.tenant", ACME.to_string())],
        ),
        (
            "POST /api/v1/tenants/{tenant}/resume",
            vec![("path.tenant", ACME.to_string())],
        ),
        (
            "PUT /api/v1/tenants/{tenant}/limits",
            vec![("path.tenant", ACME.to_string())],
        ),
        (
            "GET /api/v1/tenants/{tenant}/limits",
            vec![("path.tenant", ACME.to_string())],
        ),
        (
            "POST /api/v1/tenants/{tenant}/windows/{window}/replay",
            vec![
                ("path.tenant", ACME.to_string()),
                ("path.window", "1".to_string()),
            ],
        ),
        (
            "POST /api/v1/artifacts/{id}/runtime",
            vec![("path.id", payments.to_string())],
        ),
        (
            "GET /api/v1/events/stream",
            vec![("query.follow", "false".to_string())],
        ),
        (
            "GET /api/v1/jobs",
            vec![("query.artifact", payments.to_string())],
        ),
        (
            "GET /api/v1/impact/advisories/{id}",
            vec![("path.id", "CVE-2023-22466".to_string())],
        ),
        (
            "GET /api/v1/impact/artifacts",
            vec![("query.artifact", payments.to_string())],
        ),
        (
            "GET /api/v1/impact/purls",
            vec![("query.purl", "pkg:pypi/requests@2.28.1".to_string())],
        ),
        // Removals take what the reads above do not use.
        (
            "DELETE /api/v1/advisories/{id}",
            vec![("path.id", "PYSEC-2018-49".to_string())],
        ),
        (
            "DELETE /api/v1/artifacts",
            vec![("query.artifact", "hello-server-src@0.1.0".to_string())],
        ),
        ("DELETE /api/v1/vex", vec![("query.document", vex_document)]),
    ]);

    let started = std::time::Instant::now();
    let Some(FuzzRun {
        statuses,
        summary,
        passed,
    }) = fuzz(&server, &params)
    else {
        return;
    };
    let doc = server.get("/api/v1/openapi.json", ACME_READER).json();
    let operations: Vec<String> = operations(&doc)
        .into_iter()
        .map(|(method, path, _, _)| format!("{method} {path}"))
        .collect();
    println!(
        "schemathesis over {} operations in {:.1} s (at most {FUZZ_MAX_EXAMPLES} examples per phase):",
        operations.len(),
        started.elapsed().as_secs_f64()
    );
    for op in &operations {
        println!(
            "  {op:45} {:?}",
            statuses.get(op).cloned().unwrap_or_default()
        );
    }
    let server_errors: Vec<String> = statuses
        .iter()
        .flat_map(|(op, codes)| {
            codes
                .iter()
                .filter(|(code, _)| **code >= 500)
                .map(move |(code, n)| format!("{op}: {n} x {code}"))
        })
        .collect();
    assert!(
        server_errors.is_empty(),
        "server errors: {server_errors:?}\n{summary}"
    );
    let unreached: Vec<&String> = operations
        .iter()
        .filter(|op| {
            !statuses
                .get(*op)
                .is_some_and(|codes| codes.keys().any(|c| (200..300).contains(c)))
        })
        .collect();
    assert!(
        unreached.is_empty(),
        "operations without a 2xx answer (give their parameters real values): {unreached:?}\n{summary}"
    );
    assert!(passed, "schemathesis failed:\n{summary}");
}
