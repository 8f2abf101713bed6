//! Runs, schedules, what-if and runtime hooks over HTTP, each test against a
//! real `recheck serve` (see `common::serve`) loaded with real data:
//!
//! - a dry run returns exactly the jobs the real run then commits (same
//!   artifacts, window, kind, priority) and writes nothing; the real run's
//!   jobs are in the store's outbox; cancelling cancels every unfinished one;
//!   bad requests are problems naming the field and write nothing;
//! - an every-minute cron schedule created over the API fires a run inside
//!   serve (the writer ticks the scheduler); refused schedules name the
//!   field; replace and delete;
//! - a what-if of a real VEX document and a real advisory (added, then
//!   withdrawn) predicts exactly the deltas and jobs of the window that then
//!   applies it, and the what-if itself changes nothing in the store;
//! - runtime hooks: deployed keeps the labels and adds cluster/namespace;
//!   running escalates the pending jobs (and later windows' jobs) one
//!   priority step, due within a minute, ids unchanged; an artifact that
//!   starts running with findings and no verdict gets a recheck run, one
//!   with a verdict does not.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use common::serve::*;
use recheck::model::JobState;

/// What a planned job is about, without its id (which commits to the run,
/// and so to the run's start time).
fn job_shape(j: &Value) -> String {
    json!({
        "tenant": j["tenant"],
        "artifact": j["artifact"],
        "window": j["window"],
        "kind": j["kind"],
        "priority": j["priority"],
        "reasons": j["reasons"],
    })
    .to_string()
}

fn shapes(jobs: &Value) -> BTreeSet<String> {
    jobs.as_array()
        .expect("jobs")
        .iter()
        .map(job_shape)
        .collect()
}

/// Run, job and log counts: what a request must leave alone to have written
/// nothing.
fn written(server: &Server) -> (u64, usize, usize) {
    (
        server.log_seq(),
        server.all_pages("/api/v1/runs", ACME_READER).len(),
        server.all_pages("/api/v1/jobs", ACME_READER).len(),
    )
}

#[test]
fn a_dry_run_plans_the_jobs_the_real_run_commits_and_writes_nothing() {
    let Some(data) = real_data() else { return };
    // No in-process worker, so the run's jobs are still pending when it is
    // cancelled.
    let server = Server::start_with(4 * 1024 * 1024, |_| {}, &["--workers", "0"]);
    let artifacts: BTreeSet<String> = ingest(&server, &data, ACME_ADMIN).into_iter().collect();
    assert!(artifacts.len() >= 6, "{artifacts:?}");
    let before = written(&server);

    // Dry run over every artifact: one job each, with the impact set.
    let body = json!({"selector": {"all": true}, "reason": "policy change", "mode": "reevaluate", "dryRun": true});
    let dry = server.post_json("/api/v1/runs", ACME_ADMIN, &body);
    assert_eq!(dry.status, 200, "{}", dry.body);
    let dry = dry.json();
    assert_eq!(dry["dryRun"], true);
    assert_eq!(dry["created"], false);
    let jobs = dry["jobs"].as_array().expect("jobs");
    let job_artifacts: BTreeSet<String> = jobs
        .iter()
        .map(|j| j["artifact"].as_str().expect("artifact").to_string())
        .collect();
    assert_eq!(job_artifacts, artifacts);
    assert_eq!(jobs.len(), artifacts.len());
    assert!(jobs
        .iter()
        .all(|j| j["run"] == dry["run"]["id"] && j["state"] == "planned"));
    // The impact set is each artifact's findings as the impact query has them.
    let impact = dry["impact"].as_array().expect("impact");
    assert_eq!(impact.len(), artifacts.len());
    let mut any_affected = false;
    for item in impact {
        let artifact = item["artifact"].as_str().expect("artifact");
        let findings = server.all_pages(
            &format!("/api/v1/impact/artifacts?artifact={}", enc(artifact)),
            ACME_READER,
        );
        let suppressed = findings
            .iter()
            .filter(|f| f["status"] == "suppressed")
            .count();
        assert_eq!(item["suppressed"], suppressed, "{artifact}");
        assert_eq!(item["affected"], findings.len() - suppressed, "{artifact}");
        any_affected |= findings.len() > suppressed;
    }
    assert!(any_affected, "the real data must affect some artifact");
    assert_eq!(written(&server), before, "the dry run wrote");
    let dry_id = dry["run"]["id"].as_str().expect("run id");
    server
        .get(&format!("/api/v1/runs/{dry_id}"), ACME_READER)
        .problem(404);

    // The real run: the same jobs, committed as planned jobs of the run.
    let mut real_body = body.clone();
    real_body["dryRun"] = json!(false);
    let key = [("Idempotency-Key", "run-1")];
    let bytes = serde_json::to_vec(&real_body).expect("encode");
    let real = server.call("POST", "/api/v1/runs", Some(ACME_ADMIN), Some(&bytes), &key);
    assert_eq!(real.status, 201, "{}", real.body);
    let real = real.json();
    assert_eq!(real["created"], true);
    assert_eq!(shapes(&real["jobs"]), shapes(&dry["jobs"]));
    assert_eq!(real["run"]["trigger"], "manual");
    assert_eq!(real["run"]["reason"], "policy change");
    let run_id = real["run"]["id"].as_str().expect("run id").to_string();
    assert_ne!(run_id, dry_id);
    let stored: BTreeMap<String, Value> = server
        .all_pages("/api/v1/jobs", ACME_READER)
        .into_iter()
        .map(|j| (j["id"].as_str().expect("id").to_string(), j))
        .collect();
    for job in real["jobs"].as_array().expect("jobs") {
        let id = job["id"].as_str().expect("id");
        let held = &stored[id];
        assert_eq!(held["run"], run_id.as_str());
        assert_eq!(job_shape(held), job_shape(job));
    }
    let (seq, runs, jobs_before) = before;
    assert_eq!(server.log_seq(), seq, "a run is not an input record");
    assert_eq!(
        server.all_pages("/api/v1/runs", ACME_READER).len(),
        runs + 1
    );
    assert_eq!(stored.len(), jobs_before + artifacts.len());
    let view = server.get(&format!("/api/v1/runs/{run_id}"), ACME_READER);
    assert_eq!(view.status, 200, "{}", view.body);
    let view = view.json();
    assert_eq!(
        view["run"]["jobs"].as_array().map(Vec::len),
        Some(artifacts.len())
    );
    let counted: u64 = view["job_states"]
        .as_object()
        .expect("job_states")
        .values()
        .map(|n| n.as_u64().expect("count"))
        .sum();
    assert_eq!(counted, artifacts.len() as u64);
    // The same Idempotency-Key returns the same run and writes nothing.
    let again = server.call("POST", "/api/v1/runs", Some(ACME_ADMIN), Some(&bytes), &key);
    assert_eq!(again.status, 201);
    assert_eq!(again.json(), real);
    assert_eq!(
        server.all_pages("/api/v1/runs", ACME_READER).len(),
        runs + 1
    );

    // A selector of two digests covers those two only.
    let two: Vec<&String> = artifacts.iter().take(2).collect();
    let r = server.post_json(
        "/api/v1/runs",
        ACME_ADMIN,
        &json!({"selector": {"digests": two}, "reason": "two", "mode": "rescan", "dryRun": true}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let picked: BTreeSet<String> = r.json()["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["artifact"].as_str().expect("artifact").to_string())
        .collect();
    assert_eq!(picked, two.into_iter().cloned().collect::<BTreeSet<_>>());

    // Cancel: every job not yet finished is cancelled; a second cancel is a conflict.
    let cancel = server.post(&format!("/api/v1/runs/{run_id}/cancel"), ACME_ADMIN, b"");
    assert_eq!(cancel.status, 200, "{}", cancel.body);
    let cancel = cancel.json();
    assert_eq!(cancel["run"]["state"], "cancelled");
    let cancelled = cancel["cancelled"].as_array().expect("cancelled").len();
    assert_eq!(
        cancelled + cancel["finished"].as_u64().expect("finished") as usize,
        artifacts.len()
    );
    // Nothing runs the jobs in this server, so every one was still pending;
    // with a worker, those it finished first would count as finished.
    let finished_now = ["succeeded", "dead_lettered", "superseded"];
    let listed: BTreeSet<&str> = cancel["cancelled"]
        .as_array()
        .expect("cancelled")
        .iter()
        .map(|id| id.as_str().expect("id"))
        .collect();
    assert!(cancelled > 0, "{cancel}");
    for id in real["jobs"].as_array().expect("jobs") {
        let id = id["id"].as_str().expect("id");
        let job = server
            .get(&format!("/api/v1/jobs/{id}"), ACME_READER)
            .json();
        if listed.contains(id) {
            assert_eq!(job["state"], "cancelled", "{job}");
        } else {
            assert!(
                finished_now.contains(&job["state"].as_str().expect("state")),
                "{job}"
            );
        }
    }
    server
        .post(&format!("/api/v1/runs/{run_id}/cancel"), ACME_ADMIN, b"")
        .problem(409);
    server
        .post("/api/v1/runs/no-such-run/cancel", ACME_ADMIN, b"")
        .problem(404);

    // Bad requests name the field and write nothing.
    let before = written(&server);
    for (body, field) in [
        (
            json!({"selector": {}, "reason": "r", "mode": "reevaluate"}),
            "selector",
        ),
        (
            json!({"selector": {"all": true, "digests": ["x"]}, "reason": "r", "mode": "reevaluate"}),
            "selector",
        ),
        (
            json!({"selector": {"tenant": GLOBEX}, "reason": "r", "mode": "reevaluate"}),
            "selector.tenant",
        ),
        (
            json!({"selector": {"all": true}, "reason": " ", "mode": "reevaluate"}),
            "reason",
        ),
        (
            json!({"selector": {"all": true}, "reason": "r", "mode": "rebuild"}),
            "mode",
        ),
        (
            json!({"selector": {"labels": {"env": 1}}, "reason": "r", "mode": "rescan"}),
            "selector.labels.env",
        ),
        (json!({"selector": {"all": true}, "mode": "rescan"}), "."),
        (
            json!({"selector": {"all": true}, "reason": "r", "mode": "rescan", "trigger": "cron"}),
            "trigger",
        ),
    ] {
        let p = server
            .post_json("/api/v1/runs", ACME_ADMIN, &body)
            .problem(422);
        assert_eq!(p["errors"][0]["field"], field, "{body}: {p}");
    }
    server
        .post("/api/v1/runs", ACME_ADMIN, b"{\"selector\": ")
        .problem(400);
    server
        .post_json(
            "/api/v1/runs",
            ACME_READER,
            &json!({"selector": {"all": true}, "reason": "r", "mode": "rescan"}),
        )
        .problem(403);
    assert_eq!(written(&server), before, "a rejected run wrote");
}

/// The bundled sample SBOMs for acme, with labels; returns the artifact ids.
fn load_samples(server: &Server) -> Vec<String> {
    let samples = recheck::samples::bundled_dir();
    let advisories: Vec<Value> = common::json_files(&samples.join("advisories"))
        .iter()
        .map(|p| serde_json::from_slice(&common::read(p)).expect("JSON"))
        .collect();
    let r = server.post_json("/api/v1/advisories", ACME_ADMIN, &json!(advisories));
    assert_eq!(r.status, 202, "{}", r.body);
    let mut artifacts = Vec::new();
    for (i, p) in common::json_files(&samples.join("sboms"))
        .iter()
        .enumerate()
    {
        let sbom: Value = serde_json::from_slice(&common::read(p)).expect("JSON");
        let env = if i == 0 { "prod" } else { "staging" };
        let r = server.post_json(
            "/api/v1/sboms?wait=true",
            ACME_ADMIN,
            &json!({"sbom": sbom, "labels": {"env": env}}),
        );
        assert_eq!(r.status, 200, "{}: {}", p.display(), r.body);
        artifacts.push(r.json()["artifact"].as_str().expect("artifact").to_string());
    }
    artifacts
}

#[test]
fn a_cron_schedule_fires_a_run_inside_serve() {
    let server = Server::start();
    let artifacts = load_samples(&server);
    let before = written(&server);

    // Refused schedules name the field and store nothing.
    for (body, field) in [
        (
            json!({"cron": "61 * * * *", "selector": {"all": true}}),
            "cron",
        ),
        (
            json!({"cron": "0 0 3 * * *", "selector": {"all": true}}),
            "cron",
        ),
        (
            json!({"cron": "* * * * *", "timezone": "Mars/Olympus", "selector": {"all": true}}),
            "timezone",
        ),
        (json!({"cron": "* * * * *", "selector": {}}), "selector"),
        (
            json!({"cron": "* * * * *", "selector": {"tenant": GLOBEX}}),
            "selector.tenant",
        ),
        (
            json!({"cron": "* * * * *", "selector": {"all": true}, "mode": "x"}),
            "mode",
        ),
        (json!({"cron": 5, "selector": {"all": true}}), "cron"),
    ] {
        let p = server
            .post_json("/api/v1/schedules", ACME_ADMIN, &body)
            .problem(422);
        assert_eq!(p["errors"][0]["field"], field, "{body}: {p}");
    }
    assert!(server
        .all_pages("/api/v1/schedules", ACME_READER)
        .is_empty());

    // Every minute, over the prod artifact; and a disabled one over all.
    let r = server.post_json(
        "/api/v1/schedules",
        ACME_ADMIN,
        &json!({"cron": "* * * * *", "timezone": "Europe/Berlin", "selector": {"labels": {"env": "prod"}}, "mode": "rescan"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let created = r.json();
    let id = created["schedule"]["id"].as_str().expect("id").to_string();
    assert!(created["next_fire"].is_string(), "{created}");
    let r = server.post_json(
        "/api/v1/schedules",
        ACME_ADMIN,
        &json!({"cron": "* * * * *", "selector": {"all": true}, "enabled": false}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let disabled = r.json()["schedule"]["id"].as_str().expect("id").to_string();
    assert_eq!(server.all_pages("/api/v1/schedules", ACME_READER).len(), 2);

    // Wait for the next minute's fire (and the writer's one-second tick).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let run = loop {
        let runs = server.all_pages("/api/v1/runs", ACME_READER);
        if let Some(run) = runs.iter().find(|r| r["schedule"] == id.as_str()) {
            break run.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "schedule {id} did not fire within 90 s: {runs:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    assert_eq!(run["trigger"], "cron");
    assert_eq!(run["mode"], "rescan");
    assert_eq!(run["tenant"], ACME);
    // Its fire time is a whole minute after the schedule was created.
    let fired = run["created_at"].as_str().expect("created_at");
    assert!(fired.ends_with(":00.000Z"), "{fired}");
    assert!(
        *fired
            > *created["schedule"]["created_at"]
                .as_str()
                .expect("created_at"),
        "{fired}"
    );
    // One job, on the prod artifact, in the store as a job of the run.
    let jobs = run["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 1, "{run}");
    let job = server
        .get(
            &format!("/api/v1/jobs/{}", jobs[0].as_str().expect("id")),
            ACME_READER,
        )
        .json();
    assert_eq!(job["artifact"], artifacts[0].as_str());
    assert_eq!(job["run"], run["id"]);
    assert_eq!(job["kind"], "rescan");
    let view = server
        .get(&format!("/api/v1/schedules/{id}"), ACME_READER)
        .json();
    assert_eq!(
        view["last_fire"].as_str().map(|s| &s[..16]),
        Some(&fired[..16])
    );
    assert_eq!(
        server.log_seq(),
        before.0,
        "firing appends nothing to the input log"
    );
    assert!(
        !server
            .all_pages("/api/v1/runs", ACME_READER)
            .iter()
            .any(|r| r["schedule"] == disabled.as_str()),
        "the disabled schedule fired"
    );

    // Replace: disable it; delete the other; another tenant sees neither.
    let r = server.call(
        "PUT",
        &format!("/api/v1/schedules/{id}"),
        Some(ACME_ADMIN),
        Some(br#"{"cron": "*/5 * * * *", "selector": {"all": true}, "enabled": false}"#),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let replaced = r.json();
    assert_eq!(replaced["schedule"]["cron"], "*/5 * * * *");
    assert_eq!(
        replaced["schedule"]["created_at"],
        created["schedule"]["created_at"]
    );
    assert!(replaced.get("next_fire").is_none(), "{replaced}");
    let r = server.call(
        "PUT",
        &format!("/api/v1/schedules/{id}"),
        Some(ACME_ADMIN),
        Some(br#"{"cron": "every minute", "selector": {"all": true}}"#),
        &[],
    );
    assert_eq!(r.problem(422)["errors"][0]["field"], "cron");
    assert_eq!(
        server
            .get(&format!("/api/v1/schedules/{id}"), ACME_READER)
            .json()["schedule"],
        replaced["schedule"]
    );
    server
        .get(&format!("/api/v1/schedules/{id}"), GLOBEX_ADMIN)
        .problem(404);
    let r = server.call(
        "DELETE",
        &format!("/api/v1/schedules/{disabled}"),
        Some(ACME_ADMIN),
        None,
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    server
        .get(&format!("/api/v1/schedules/{disabled}"), ACME_READER)
        .problem(404);
    assert_eq!(server.all_pages("/api/v1/schedules", ACME_READER).len(), 1);
}

/// What the store holds, as the API shows it: any write moves one of these.
fn state_of(server: &Server) -> Value {
    let ready = server.call("GET", "/readyz", None, None, &[]).json();
    json!({
        "log_seq": ready["log_seq"],
        "last_window": ready["last_window"],
        "jobs": server.all_pages("/api/v1/jobs", ACME_READER).len(),
        "runs": server.all_pages("/api/v1/runs", ACME_READER).len(),
        "changes": server.all_pages("/api/v1/impact/changes?since_window=0", ACME_READER).len(),
    })
}

/// Net impact change per finding (the ledger may record a change and its
/// undoing in one window; what-if reports the net).
fn net(deltas: &[Value]) -> BTreeMap<String, i64> {
    let mut net: BTreeMap<String, i64> = BTreeMap::new();
    for d in deltas {
        *net.entry(d["finding"].to_string()).or_default() += d["diff"].as_i64().expect("diff");
    }
    net.retain(|_, d| *d != 0);
    net
}

/// What-if `body`, check it wrote nothing, then apply the document with
/// `apply` (waiting for its window) and check the window changed exactly
/// what the what-if said, and planned the jobs it said. Returns the what-if.
fn what_if_then_apply(server: &Server, body: &Value, apply: impl FnOnce() -> Reply) -> Value {
    let before = state_of(server);
    let r = server.post_json("/api/v1/whatif", ACME_ADMIN, body);
    assert_eq!(r.status, 200, "{}", r.body);
    let whatif = r.json();
    assert_eq!(state_of(server), before, "the what-if wrote");
    let predicted = whatif["deltas"].as_array().expect("deltas").clone();
    assert!(
        !predicted.is_empty(),
        "the document must change something: {whatif}"
    );
    // Per artifact, the same changes.
    let mut per_artifact = 0;
    for a in whatif["artifacts"].as_array().expect("artifacts") {
        per_artifact += a["added"].as_array().expect("added").len()
            + a["removed"].as_array().expect("removed").len();
        for f in a["added"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(a["removed"].as_array().into_iter().flatten())
        {
            assert_eq!(f["artifact"], a["artifact"]);
        }
    }
    assert_eq!(per_artifact, predicted.len());

    let applied = apply();
    assert_eq!(applied.status, 200, "{}", applied.body);
    let window = applied.json()["window"].as_u64().expect("window");
    assert_eq!(Some(window), whatif["window"].as_u64(), "{whatif}");
    let since = window - 1;
    let actual: Vec<Value> = server
        .all_pages(
            &format!("/api/v1/impact/changes?since_window={since}"),
            ACME_READER,
        )
        .into_iter()
        .filter(|d| d["window"] == window)
        .collect();
    assert_eq!(
        net(&predicted),
        net(&actual),
        "what-if vs the applied window"
    );
    // The jobs the window planned are the ones predicted (ids commit to
    // tenant, artifact, window and reasons).
    let planned: BTreeMap<String, Value> = server
        .all_pages("/api/v1/jobs", ACME_READER)
        .into_iter()
        .filter(|j| j["window"] == window && j.get("run").is_none())
        .map(|j| (j["id"].as_str().expect("id").to_string(), j))
        .collect();
    let predicted_jobs: BTreeMap<String, Value> = whatif["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| (j["id"].as_str().expect("id").to_string(), j.clone()))
        .collect();
    assert_eq!(
        planned.keys().collect::<Vec<_>>(),
        predicted_jobs.keys().collect::<Vec<_>>()
    );
    for (id, job) in &planned {
        let p = &predicted_jobs[id];
        for field in ["artifact", "reasons", "priority", "kind", "window"] {
            assert_eq!(job[field], p[field], "job {id}: {field}");
        }
    }
    whatif
}

#[test]
fn a_what_if_equals_the_change_once_applied_and_writes_nothing() {
    let Some(data) = real_data() else { return };
    let server = Server::start();
    let artifacts = ingest(&server, &data, ACME_ADMIN);
    let mut findings = Vec::new();
    for a in &artifacts {
        findings.extend(server.all_pages(
            &format!("/api/v1/impact/artifacts?artifact={}", enc(a)),
            ACME_READER,
        ));
    }

    // A VEX document that suppresses findings: removed, then simulated and
    // put back under its name.
    let suppressed = findings
        .iter()
        .find(|f| f["status"] == "suppressed")
        .expect("the real data has suppressed findings");
    // Its source is the document's own id, else the name it was ingested under.
    let source = suppressed["vex_source"].as_str().expect("vex_source");
    let path = data
        .vex
        .iter()
        .find(|p| {
            p.display().to_string() == source
                || serde_json::from_slice::<Value>(&common::read(p))
                    .is_ok_and(|v| v["@id"] == source)
        })
        .expect("the suppressing document");
    let document = path.display().to_string();
    let r = server.call(
        "DELETE",
        &format!("/api/v1/vex?document={}&wait=true", enc(&document)),
        Some(ACME_ADMIN),
        None,
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let vex: Value = serde_json::from_slice(&common::read(path)).expect("JSON");
    let whatif = what_if_then_apply(&server, &json!({"vex": vex, "document": document}), || {
        server.post(
            &format!("/api/v1/vex?document={}&wait=true", enc(&document)),
            ACME_ADMIN,
            &common::read(path),
        )
    });
    assert_eq!(whatif["document"], document.as_str());
    let deltas = whatif["deltas"].as_array().expect("deltas");
    assert!(
        deltas
            .iter()
            .any(|d| d["diff"] == 1 && d["finding"]["status"] == "suppressed"),
        "{whatif}"
    );

    // An advisory with affected findings: removed, then simulated and re-added.
    let affected = findings
        .iter()
        .find(|f| f["status"] == "affected")
        .expect("affected findings");
    let id = affected["advisory"].as_str().expect("advisory").to_string();
    let file = data
        .advisories
        .iter()
        .find(|p| {
            serde_json::from_slice::<Value>(&common::read(p)).is_ok_and(|a| a["id"] == id.as_str())
        })
        .expect("the advisory's file");
    let advisory: Value = serde_json::from_slice(&common::read(file)).expect("JSON");
    let r = server.call(
        "DELETE",
        &format!("/api/v1/advisories/{id}?wait=true"),
        Some(ACME_ADMIN),
        None,
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let whatif = what_if_then_apply(&server, &json!({"advisory": advisory}), || {
        server.post_json("/api/v1/advisories?wait=true", ACME_ADMIN, &advisory)
    });
    assert!(whatif["deltas"]
        .as_array()
        .expect("deltas")
        .iter()
        .any(|d| d["diff"] == 1 && d["finding"]["advisory"] == id.as_str()));

    // The same advisory withdrawn: every finding of it goes away.
    let mut withdrawn = advisory.clone();
    withdrawn["withdrawn"] = json!("2026-12-01T00:00:00Z");
    let held = server.all_pages(&format!("/api/v1/impact/advisories/{id}"), ACME_READER);
    let whatif = what_if_then_apply(&server, &json!({"advisory": withdrawn}), || {
        server.post_json("/api/v1/advisories?wait=true", ACME_ADMIN, &withdrawn)
    });
    let removed: usize = held
        .iter()
        .map(|i| {
            i["findings"]
                .as_array()
                .expect("findings")
                .iter()
                .filter(|f| f["advisory"] == id.as_str())
                .count()
        })
        .sum();
    let deltas = whatif["deltas"].as_array().expect("deltas");
    let gone = deltas
        .iter()
        .filter(|d| d["diff"] == -1 && d["finding"]["advisory"] == id.as_str())
        .count();
    assert_eq!(gone, removed, "{whatif}");

    // Refusals name the field and write nothing; another tenant sees only its own.
    let before = state_of(&server);
    let mut broken = advisory.clone();
    broken["affected"][0]["ranges"][0]["events"] = json!("not a list");
    let p = server
        .post_json("/api/v1/whatif", ACME_ADMIN, &json!({"advisory": broken}))
        .problem(422);
    assert_eq!(p["errors"][0]["location"], "body.advisory");
    assert!(
        p["errors"][0]["field"]
            .as_str()
            .expect("field")
            .starts_with("affected[0].ranges[0]"),
        "{p}"
    );
    let p = server
        .post_json("/api/v1/whatif", ACME_ADMIN, &json!({}))
        .problem(422);
    assert_eq!(p["errors"][0]["field"], "advisory");
    let p = server
        .post_json(
            "/api/v1/whatif",
            ACME_ADMIN,
            &json!({"advisory": advisory, "vex": {}}),
        )
        .problem(422);
    assert_eq!(p["errors"][0]["field"], "advisory");
    let r = server.post_json(
        "/api/v1/whatif",
        GLOBEX_ADMIN,
        &json!({"advisory": withdrawn}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["deltas"], json!([]));
    assert_eq!(r.json()["scanned"], 0);
    assert_eq!(state_of(&server), before);
}

/// Move each job along `path` (state by state) in the store file, as the
/// dispatcher and a worker would; the server must be stopped.
fn move_jobs(store: &std::path::Path, jobs: &[String], path: &[JobState]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let s = recheck::store::open(&store.display().to_string())
            .await
            .expect("open store");
        for id in jobs {
            let mut job = s.job(id).await.expect("read job").expect("job exists");
            // A step the dispatcher already took is skipped.
            let held = job.state;
            for next in path.iter().skip_while(|next| **next == held) {
                // Each run of a job is a new attempt.
                let attempt = job.attempt + u32::from(*next == JobState::Running);
                let t = recheck::model::JobTransition {
                    from: job.state,
                    to: *next,
                    at: "2026-12-01T00:00:00Z".into(),
                    attempt,
                };
                assert!(s.transition_job(id, &t).await.expect("transition"), "{id}");
                job.state = *next;
                job.attempt = attempt;
            }
        }
    });
}

/// The caller's jobs of one artifact.
fn jobs_of(server: &Server, artifact: &str) -> Vec<Value> {
    server.all_pages(
        &format!("/api/v1/jobs?artifact={}", enc(artifact)),
        ACME_READER,
    )
}

fn runtime_event(server: &Server, artifact: &str, body: Value) -> Value {
    let r = server.post_json(
        &format!("/api/v1/artifacts/{}/runtime", enc(artifact)),
        ACME_INGEST,
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn utc(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .to_utc()
}

fn raised(p: &Value) -> &'static str {
    match p.as_str() {
        Some("normal") => "high",
        _ => "emergency",
    }
}

#[test]
fn runtime_hooks_escalate_a_running_artifacts_jobs_and_recheck_it() {
    // No in-process worker: the jobs stay pending (planned, or queued by the
    // dispatcher) for the hooks to escalate.
    const NO_WORKERS: &[&str] = &["--workers", "0"];
    let mut server = Server::start_with(4 * 1024 * 1024, |_| {}, NO_WORKERS);
    let pending_state = |j: &Value| j["state"] == "planned" || j["state"] == "queued";
    let artifacts = load_samples(&server);
    let affected = |server: &Server, a: &str| {
        server
            .all_pages(
                &format!("/api/v1/impact/artifacts?artifact={}", enc(a)),
                ACME_READER,
            )
            .iter()
            .filter(|f| f["status"] == "affected")
            .count()
    };
    let (index, artifact) = artifacts
        .iter()
        .enumerate()
        .find(|(_, a)| affected(&server, a) > 0)
        .expect("a sample artifact with affected findings");
    let artifact = artifact.clone();
    let env = if index == 0 { "prod" } else { "staging" };
    let pending = jobs_of(&server, &artifact);
    assert!(
        !pending.is_empty() && pending.iter().all(pending_state),
        "{pending:?}"
    );

    // Deployed: recorded with cluster and namespace beside the labels held;
    // nothing escalated.
    let before = server.log_seq();
    let r = runtime_event(
        &server,
        &artifact,
        json!({"event": "deployed", "cluster": "eu-1", "namespace": "payments"}),
    );
    assert_eq!(
        (r["previous"].as_str(), r["state"].as_str()),
        (Some("unknown"), Some("deployed"))
    );
    assert_eq!(r["escalated"], json!([]));
    assert!(r.get("recheck").is_none());
    assert!(r["seq"].as_u64().expect("seq") > before);
    let covers = |selector: Value| -> Vec<String> {
        let r = server.post_json(
            "/api/v1/runs",
            ACME_ADMIN,
            &json!({"selector": selector, "reason": "r", "mode": "reevaluate", "dryRun": true}),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .map(|j| j["artifact"].as_str().expect("artifact").to_string())
            .collect()
    };
    assert_eq!(
        covers(json!({"namespaces": ["payments"]})),
        std::slice::from_ref(&artifact)
    );
    assert!(covers(json!({"labels": {"env": env, "cluster": "eu-1"}})).contains(&artifact));
    assert_eq!(
        jobs_of(&server, &artifact),
        pending,
        "deployed changes no job"
    );

    // Running: each pending job escalated one step, due within a minute;
    // ids, planned priority and deadline unchanged. It has pending work, so
    // no recheck.
    let seen = chrono::Utc::now();
    let r = runtime_event(&server, &artifact, json!({"event": "running"}));
    assert_eq!(r["previous"], "deployed");
    assert!(r.get("recheck").is_none(), "{r}");
    let escalated = r["escalated"].as_array().expect("escalated");
    assert_eq!(escalated.len(), pending.len(), "{r}");
    for job in jobs_of(&server, &artifact) {
        let planned = pending
            .iter()
            .find(|p| p["id"] == job["id"])
            .expect("same ids");
        assert_eq!(job["priority"], planned["priority"]);
        assert_eq!(job["sla_deadline"], planned["sla_deadline"]);
        assert!(pending_state(&job), "{job}");
        let e = &job["escalation"];
        assert_eq!(e["priority"], raised(&planned["priority"]), "{job}");
        let due = utc(e["sla_deadline"].as_str().expect("deadline"));
        assert!(due <= utc(planned["sla_deadline"].as_str().expect("deadline")));
        assert!(due <= seen + chrono::TimeDelta::seconds(62), "{job}");
        assert!(e["reason"].as_str().expect("reason").contains("running"));
    }
    // A window that changes a running artifact's findings plans its job escalated.
    let advisory = server
        .all_pages(
            &format!("/api/v1/impact/artifacts?artifact={}", enc(&artifact)),
            ACME_READER,
        )
        .into_iter()
        .find(|f| f["status"] == "affected")
        .expect("affected")["advisory"]
        .as_str()
        .expect("advisory")
        .to_string();
    let r = server.call(
        "DELETE",
        &format!("/api/v1/advisories/{advisory}?wait=true"),
        Some(ACME_ADMIN),
        None,
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let window = r.json()["window"].clone();
    let new_job = jobs_of(&server, &artifact)
        .into_iter()
        .find(|j| j["window"] == window)
        .expect("the window's job of the running artifact");
    assert_eq!(
        new_job["escalation"]["priority"],
        raised(&new_job["priority"]),
        "{new_job}"
    );
    let file = recheck::samples::bundled_dir()
        .join("advisories")
        .join(format!("{advisory}.json"));
    let back: Value = serde_json::from_slice(&common::read(&file)).expect("JSON");
    let r = server.post_json("/api/v1/advisories?wait=true", ACME_ADMIN, &back);
    assert_eq!(r.status, 200, "{}", r.body);
    // Stopped: recorded, nothing else.
    let r = runtime_event(&server, &artifact, json!({"event": "stopped"}));
    assert_eq!(
        (
            r["previous"].as_str(),
            r["escalated"].as_array().map(Vec::len)
        ),
        (Some("running"), Some(0))
    );

    // Its pending jobs are cancelled meanwhile: running again, with
    // findings and no verdict, it gets a recheck due within a minute.
    let ids: Vec<String> = jobs_of(&server, &artifact)
        .iter()
        .map(|j| j["id"].as_str().expect("id").to_string())
        .collect();
    server.restart(NO_WORKERS, |store| {
        move_jobs(store, &ids, &[JobState::Cancelled])
    });
    assert!(
        affected(&server, &artifact) > 0,
        "the restarted engine lost findings"
    );
    let seen = chrono::Utc::now();
    let r = runtime_event(
        &server,
        &artifact,
        json!({"event": "running", "cluster": "eu-2"}),
    );
    assert_eq!(r["previous"], "stopped");
    let recheck = &r["recheck"];
    assert_eq!(recheck["run"]["trigger"], "policy", "{r}");
    let jobs = recheck["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["artifact"], artifact.as_str());
    assert_ne!(jobs[0]["priority"], "normal");
    let due = utc(jobs[0]["sla_deadline"].as_str().expect("deadline"));
    assert!(due <= seen + chrono::TimeDelta::seconds(62), "{r}");
    let run = recheck["run"]["id"].as_str().expect("run");
    assert_eq!(
        server
            .get(&format!("/api/v1/runs/{run}"), ACME_READER)
            .status,
        200
    );

    // With that recheck done (a verdict for the latest window), starting
    // to run again rechecks nothing.
    let recheck_job = jobs[0]["id"].as_str().expect("id").to_string();
    runtime_event(&server, &artifact, json!({"event": "stopped"}));
    server.restart(NO_WORKERS, |store| {
        move_jobs(
            store,
            &[recheck_job],
            &[JobState::Queued, JobState::Running, JobState::Succeeded],
        )
    });
    let r = runtime_event(&server, &artifact, json!({"event": "running"}));
    assert!(r.get("recheck").is_none(), "{r}");
    assert_eq!(r["escalated"], json!([]));

    // Refusals: unknown artifact, another tenant's, a bad event, a reader.
    let before = server.log_seq();
    let path = format!("/api/v1/artifacts/{}/runtime", enc(&artifact));
    server
        .post_json(
            "/api/v1/artifacts/nothing/runtime",
            ACME_INGEST,
            &json!({"event": "running"}),
        )
        .problem(404);
    server
        .post_json(&path, GLOBEX_ADMIN, &json!({"event": "running"}))
        .problem(404);
    let p = server
        .post_json(&path, ACME_INGEST, &json!({"event": "exploded"}))
        .problem(422);
    assert_eq!(p["errors"][0]["field"], "event");
    let p = server
        .post_json(
            &path,
            ACME_INGEST,
            &json!({"event": "running", "namespace": ""}),
        )
        .problem(422);
    assert_eq!(p["errors"][0]["field"], "namespace");
    server
        .post_json(&path, ACME_READER, &json!({"event": "running"}))
        .problem(403);
    assert_eq!(server.log_seq(), before, "a refused runtime event wrote");

    // Escalations and the runs beside the windows leave the plan replayable.
    server.restart(NO_WORKERS, |store| {
        let replay = std::process::Command::new(env!("CARGO_BIN_EXE_recheck"))
            .args(["replay", "--store"])
            .arg(store)
            .output()
            .expect("run recheck replay");
        assert!(
            replay.status.success(),
            "{}{}",
            String::from_utf8_lossy(&replay.stdout),
            String::from_utf8_lossy(&replay.stderr)
        );
    });
}
