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
//!   probe fails the test, so a new route must say how it isolates.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use common::serve::*;
use recheck::model::purl_base;

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

    // One planned job per artifact with findings, all of this tenant.
    let jobs = server.all_pages("/api/v1/jobs", ACME_READER);
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
    let planned = server.all_pages("/api/v1/jobs?state=planned", ACME_READER);
    assert_eq!(planned.len(), jobs.len());
    server
        .get("/api/v1/jobs?state=bogus", ACME_READER)
        .problem(400);

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
        let concrete = path.replace("{id}", "x");
        if !secured {
            assert!(
                ["healthz", "readyz"].contains(&id.as_str()),
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
    let server = Server::start_with(4 * 1024 * 1024, |store| event = seed_event(store));
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
    let jobs = server.all_pages("/api/v1/jobs", ACME_READER);
    let job = jobs[0]["id"].as_str().expect("job id").to_string();
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
            "get_job" => secrets.job.clone(),
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
                    _ => return None,
                };
                Some(format!("{name}={}", enc(&value)))
            })
            .collect();
        let mut path = template.replace("{id}", &enc(&path_id));
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
            | "healthz" | "readyz" | "list_runs" | "get_run" | "cancel_run" | "list_schedules"
            | "get_schedule" | "delete_schedule" => None,
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
            | "get_run" | "cancel_run" | "get_schedule" | "put_schedule" | "delete_schedule"
            | "post_runtime" => {
                r.problem(404);
            }
            "by_advisory" | "by_purl" | "list_jobs" | "changes" | "list_runs"
            | "list_schedules" | "post_whatif" => {
                assert_eq!(r.status, 200, "{}", r.body);
            }
            _ => {}
        }
        probed.insert(id);
    }
    assert!(probed.len() >= 14, "{probed:?}");

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
