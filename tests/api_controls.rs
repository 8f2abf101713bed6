//! Orchestration controls against a real `recheck serve` (embedded store,
//! in-process queue, `--workers 2`) over HTTP: pausing one tenant's queue
//! holds its jobs (they stay queued) while the other tenant's complete;
//! limits set at run time (1 at a time, 2 per second) hold once it is
//! resumed, measured from the stored transitions of its jobs; a cancelled
//! job's window replays and the job completes.
//!
//! Data: the shared OSV corpus and the bundled advisories, and the bundled
//! SBOMs uploaded as several images each (distinct digests), for two tenants.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use common::serve::{Server, ACME, ACME_ADMIN, GLOBEX, GLOBEX_ADMIN};
use recheck::model::JobState;

/// Every job of the key's tenant.
fn jobs(server: &Server, key: &str) -> Vec<Value> {
    let r = server.get("/api/v1/jobs?limit=1000", key);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["items"].as_array().expect("items").clone()
}

/// Wait until every job of the key's tenant has succeeded.
fn settle(server: &Server, key: &str) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let jobs = jobs(server, key);
        if !jobs.is_empty() && jobs.iter().all(|j| j["state"] == "succeeded") {
            return jobs;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "jobs did not complete: {:?}",
            states(&jobs)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start(extra: &[&str]) -> Server {
    Server::start_with(4 * 1024 * 1024, |_| {}, extra)
}

fn states(jobs: &[Value]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for j in jobs {
        *out.entry(j["state"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
    }
    out
}

/// Every advisory: the shared OSV corpus (when present) and the bundled ones.
fn advisories() -> Vec<Value> {
    let mut dirs = vec![recheck::samples::bundled_dir().join("advisories")];
    match common::shared_data() {
        Some(data) => dirs.push(data.join("osv")),
        None => common::skip("the shared OSV corpus is absent: set RECHECK_SHARED_DIR"),
    }
    dirs.iter()
        .flat_map(|d| common::json_files(d))
        .filter_map(|p| {
            let bytes = common::read(&p);
            recheck::formats::osv::parse_advisory("a", &bytes).ok()?;
            serde_json::from_slice(&bytes).ok()
        })
        .collect()
}

/// The bundled CycloneDX SBOMs, each as `copies` images with digests of
/// their own.
fn images(copies: usize) -> Vec<Value> {
    let mut out = Vec::new();
    for name in ["payments-api.cdx.json", "billing-worker.cdx.json"] {
        let path = recheck::samples::bundled_dir().join("sboms").join(name);
        let sbom: Value = serde_json::from_slice(&common::read(&path)).expect("JSON");
        for i in 0..copies {
            let digest = hex::encode(Sha256::digest(format!("{name}-{i}")));
            let mut copy = sbom.clone();
            let component = &mut copy["metadata"]["component"];
            component["hashes"] = json!([{"alg": "SHA-256", "content": digest}]);
            let image = name.split('.').next().unwrap_or(name);
            component["purl"] = json!(format!("pkg:oci/{image}@sha256%3A{digest}"));
            let d = &digest;
            let uuid = format!(
                "{}-{}-4{}-8{}-{}",
                &d[..8],
                &d[8..12],
                &d[13..16],
                &d[17..20],
                &d[20..32]
            );
            copy["serialNumber"] = json!(format!("urn:uuid:{uuid}"));
            out.push(copy);
        }
    }
    out
}

fn ingest(server: &Server, key: &str, advisories: &[Value], images: &[Value]) {
    for chunk in advisories.chunks(200) {
        let r = server.post(
            "/api/v1/advisories",
            key,
            &serde_json::to_vec(chunk).expect("encode"),
        );
        assert_eq!(r.status, 202, "{}", r.body);
    }
    for (i, image) in images.iter().enumerate() {
        let wait = if i + 1 == images.len() {
            "?wait=true"
        } else {
            ""
        };
        let r = server.post(
            &format!("/api/v1/sboms{wait}"),
            key,
            &serde_json::to_vec(image).expect("encode"),
        );
        assert!(r.status == 200 || r.status == 202, "{}", r.body);
    }
}

fn at(t: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(t)
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

#[test]
fn pause_holds_one_tenant_resume_and_runtime_limits_take_effect_window_replays() {
    let server = start(&["--workers", "2"]);
    // Acme pauses its own queue; globex's stays as it was.
    let r = server.post(&format!("/api/v1/tenants/{ACME}/pause"), ACME_ADMIN, b"");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["paused"], true);
    let r = server.get(&format!("/api/v1/tenants/{GLOBEX}/limits"), GLOBEX_ADMIN);
    assert_eq!(r.json()["paused"], false, "{}", r.body);

    let advisories = advisories();
    let images = images(4);
    ingest(&server, ACME_ADMIN, &advisories, &images);
    ingest(&server, GLOBEX_ADMIN, &[], &images);

    // Globex's jobs complete while every one of acme's stays queued.
    let globex = settle(&server, GLOBEX_ADMIN);
    std::thread::sleep(Duration::from_secs(1));
    let acme = jobs(&server, ACME_ADMIN);
    assert!(acme.len() >= 6, "acme's jobs: {}", acme.len());
    assert_eq!(acme.len(), globex.len(), "the same images for both");
    assert_eq!(
        states(&acme),
        BTreeMap::from([("queued".to_string(), acme.len())]),
        "paused: nothing of acme's started"
    );

    // One of acme's jobs is cancelled while paused, to be replayed later.
    let cancelled = acme[0]["id"].as_str().expect("id").to_string();
    let window = acme[0]["window"].as_u64().expect("window");
    let r = server.post(&format!("/api/v1/jobs/{cancelled}/cancel"), ACME_ADMIN, b"");
    assert_eq!(r.status, 200, "{}", r.body);

    // Limits at run time: one at a time, two starts a second; then resume.
    let limits = format!("/api/v1/tenants/{ACME}/limits");
    let r = server.call(
        "PUT",
        &limits,
        Some(ACME_ADMIN),
        Some(br#"{"concurrency": 1, "per_second": 2}"#),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = server.get(&limits, ACME_ADMIN);
    assert_eq!(
        r.json(),
        json!({"tenant": ACME, "paused": true, "limits": {"concurrency": 1, "per_second": 2}})
    );
    let r = server.post(&format!("/api/v1/tenants/{ACME}/resume"), ACME_ADMIN, b"");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["paused"], false);

    // Every acme job but the cancelled one completes.
    let started = Instant::now();
    loop {
        let jobs = jobs(&server, ACME_ADMIN);
        let done = jobs.iter().filter(|j| j["state"] == "succeeded").count();
        if done == jobs.len() - 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "{:?}",
            states(&jobs)
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Replay the cancelled job's window: it is requeued (a new attempt of
    // the same id), the finished ones are left alone, and it completes.
    let r = server.post(
        &format!("/api/v1/tenants/{ACME}/windows/{window}/replay"),
        ACME_ADMIN,
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let replay = r.json();
    assert_eq!(replay["requeued"], json!([cancelled]), "{replay}");
    assert!(
        replay["skipped"]
            .as_array()
            .expect("skipped")
            .iter()
            .all(|s| s["state"] == "succeeded"),
        "{replay}"
    );
    // Globex cannot replay acme's window; its own is empty.
    let r = server.post(
        &format!("/api/v1/tenants/{ACME}/windows/{window}/replay"),
        GLOBEX_ADMIN,
        b"",
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = server.post(
        &format!("/api/v1/tenants/{GLOBEX}/windows/{window}/replay"),
        GLOBEX_ADMIN,
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"window": window, "requeued": [], "redispatched": [], "skipped": []})
    );
    let acme = settle(&server, ACME_ADMIN);

    // The transitions the workers stored say when each acme job started and
    // ended: never two at once, never more than two starts in a second.
    let store_path = server.dir.path().join("store.redb");
    let mut server = server;
    let _ = server.child.kill();
    let _ = server.child.wait();
    let mut runs = runs(&store_path.display().to_string(), &acme);
    // The replayed job ran alone, after the others: measure the others.
    let replayed = runs.pop().expect("runs");
    assert!(replayed.0 >= runs.last().expect("runs").1);
    one_at_a_time_two_a_second("acme", &runs);
}

/// When each job last started and succeeded, from the store's transitions,
/// ordered by start.
fn runs(store: &str, jobs: &[Value]) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut runs: Vec<(DateTime<Utc>, DateTime<Utc>)> = runtime.block_on(async {
        let store = recheck::store::open(store).await.expect("open store");
        let mut runs = Vec::new();
        for job in jobs {
            let id = job["id"].as_str().expect("id");
            let history = store.job_history(id).await.expect("history");
            let start = history
                .iter()
                .rev()
                .find(|t| t.to == JobState::Running)
                .unwrap_or_else(|| panic!("{id} never ran: {history:?}"));
            let end = history
                .iter()
                .rev()
                .find(|t| t.to == JobState::Succeeded)
                .unwrap_or_else(|| panic!("{id} never succeeded: {history:?}"));
            runs.push((at(&start.at), at(&end.at)));
        }
        runs
    });
    runs.sort();
    runs
}

/// Never two at once, never more than two starts in a second.
fn one_at_a_time_two_a_second(what: &str, runs: &[(DateTime<Utc>, DateTime<Utc>)]) {
    for w in runs.windows(2) {
        assert!(
            w[1].0 >= w[0].1,
            "two acme jobs ran at once: {:?} and {:?}",
            w[0],
            w[1]
        );
    }
    let starts: Vec<DateTime<Utc>> = runs.iter().map(|r| r.0).collect();
    for (i, t) in starts.iter().enumerate() {
        // Stored times trail the lease by a little: count within 0.9 s.
        let in_a_second = starts[i..]
            .iter()
            .filter(|u| (**u - *t).num_milliseconds() < 900)
            .count();
        assert!(
            in_a_second <= 2,
            "more than 2 starts in a second: {starts:?}"
        );
    }
    let n = starts.len() as i64;
    let span = (starts[starts.len() - 1] - starts[0]).num_milliseconds();
    let least = ((n + 1) / 2 - 1) * 1000 - 150;
    assert!(
        span >= least,
        "{n} starts at 2/s took {span} ms (at least {least})"
    );
    eprintln!("{what}: {n} jobs at 1 at a time, 2/s: starts spread over {span} ms");
}
