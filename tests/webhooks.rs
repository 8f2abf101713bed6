//! Feed webhooks and orchestration controls against a real `recheck serve`
//! (issue 6): advisory-export and VEX-export events signed with a tenant's
//! HMAC secret land in the input log and change impact sets like the ingest
//! API does; a wrong signature, an unknown tenant or a secret without feed
//! rights writes nothing; a tenant past its rate limit gets 429 with
//! `Retry-After`; an `Idempotency-Key` replays the first answer. A paused
//! tenant's jobs wait in the queue while another tenant's run, and run once
//! it is resumed; its limits are set by its own admin only (what they do to
//! leases is checked per backend in tests/queue_conformance.rs).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use recheck::api::config::ServeConfig;
use recheck::api::webhooks::signature;
use serde_json::{json, Value};

const ADMIN: &str = "hooks-acme-admin-9a31";
const GLOBEX_ADMIN: &str = "hooks-globex-admin-04be";
const ACME_SECRET: &str = "acme-feed-secret-31f0c2d9";
const GLOBEX_SECRET: &str = "globex-vex-secret-7be44a10";
/// Calls per tenant per minute in this test's config.
const LIMIT: usize = 8;

struct Server {
    child: Child,
    base: String,
    agent: ureq::Agent,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("serve.toml");
        std::fs::write(
            &config,
            format!(
                r#"tenants = ["acme", "globex"]

[[api_keys]]
name = "acme-admin"
tenant = "acme"
sha256 = "{}"
scopes = ["scheduler.admin"]

[[api_keys]]
name = "globex-admin"
tenant = "globex"
sha256 = "{}"
scopes = ["scheduler.admin"]

[webhooks]
max_requests = {LIMIT}
window_secs = 60

[[webhooks.secrets]]
tenant = "acme"
secret = "{ACME_SECRET}"
feed = true

[[webhooks.secrets]]
tenant = "globex"
secret = "{GLOBEX_SECRET}"
"#,
                ServeConfig::hash_key(ADMIN),
                ServeConfig::hash_key(GLOBEX_ADMIN),
            ),
        )
        .expect("config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_recheck"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .arg("--store")
            .arg(dir.path().join("store.redb"))
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start recheck serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("recheck serve never said where it listens");
        Server {
            child,
            base,
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(60)))
                .build()
                .into(),
            _dir: dir,
        }
    }

    fn post(&self, path: &str, body: &[u8], headers: &[(&str, &str)]) -> Answer {
        self.send("POST", path, body, headers)
    }

    fn send(&self, method: &str, path: &str, body: &[u8], headers: &[(&str, &str)]) -> Answer {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "PUT" => self.agent.put(url),
            _ => self.agent.post(url),
        };
        let mut request = request.header("Content-Type", "application/json");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let mut response = request.send(body).expect("POST");
        Answer {
            status: response.status().as_u16(),
            retry_after: response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: response.body_mut().read_json().unwrap_or(Value::Null),
        }
    }

    /// A webhook call signed with `secret` as `tenant`.
    fn hook(&self, path: &str, tenant: &str, secret: &str, body: &[u8]) -> Answer {
        let sig = signature(secret, body);
        self.post(
            path,
            body,
            &[("X-Recheck-Tenant", tenant), ("X-Recheck-Signature", &sig)],
        )
    }

    /// The JSON answer, `None` for a 404.
    fn get(&self, path: &str) -> Option<Value> {
        self.get_as(ADMIN, path)
    }

    fn get_as(&self, key: &str, path: &str) -> Option<Value> {
        let mut response = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", &format!("Bearer {key}"))
            .call()
            .expect("GET");
        match response.status().as_u16() {
            404 => None,
            200 => Some(response.body_mut().read_json().expect("JSON")),
            other => panic!("GET {path}: {other}"),
        }
    }
}

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

fn json_file(path: &Path) -> Value {
    serde_json::from_slice(&common::read(path)).expect("JSON")
}

/// Statuses of acme's findings of `advisory` on the payments-api image.
fn statuses(server: &Server, advisory: &str) -> Vec<String> {
    let Some(page) = server.get(&format!("/api/v1/impact/advisories/{advisory}")) else {
        return Vec::new();
    };
    page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| {
            a["artifact"]
                .as_str()
                .is_some_and(|a| a.contains("c4050c2e"))
        })
        .flat_map(|a| a["findings"].as_array().cloned().unwrap_or_default())
        .map(|f| f["status"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn signed_exports_are_ingested_and_everything_else_is_refused() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let server = Server::start();
    let sbom = common::read(&samples().join("sboms/payments-api.cdx.json"));
    let r = server.post(
        "/api/v1/sboms?wait=true",
        &sbom,
        &[("Authorization", &format!("Bearer {ADMIN}"))],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let mut calls = 0;

    // An advisory export: the corpus's PyPI advisories of the packages in
    // the image, and the bundled requests advisory.
    let mut advisories: Vec<Value> = common::json_files(&data.join("osv/pypi"))
        .iter()
        .map(|p| json_file(p))
        .filter(|a| {
            a["affected"][0]["package"]["name"]
                .as_str()
                .is_some_and(|n| ["django", "urllib3", "jinja2"].contains(&n))
        })
        .collect();
    advisories.push(json_file(&samples().join("advisories/PYSEC-2023-74.json")));
    let django = advisories
        .iter()
        .filter_map(|a| a["id"].as_str())
        .find(|id| *id == "PYSEC-2022-213")
        .map(str::to_string)
        .expect("the corpus holds PYSEC-2022-213 (Django 3.2.13)");
    let export = serde_json::to_vec(&json!({
        "exportId": "concelier-1",
        "advisories": advisories,
        "removed": [],
    }))
    .expect("encode");
    // Before: nothing known about requests.
    assert!(statuses(&server, "PYSEC-2023-74").is_empty());

    // Refused: no signature, a wrong one, another tenant's secret, an
    // unknown tenant, a secret without feed rights. Nothing is written.
    let r = server.post("/api/v1/webhooks/advisories", &export, &[]);
    assert_eq!(r.status, 401, "{}", r.body);
    let mut tampered = export.clone();
    tampered.push(b' ');
    let sig = signature(ACME_SECRET, &export);
    let r = server.post(
        "/api/v1/webhooks/advisories",
        &tampered,
        &[("X-Recheck-Tenant", "acme"), ("X-Recheck-Signature", &sig)],
    );
    assert_eq!(r.status, 401, "{}", r.body);
    let r = server.hook(
        "/api/v1/webhooks/advisories",
        "acme",
        GLOBEX_SECRET,
        &export,
    );
    assert_eq!(r.status, 401, "{}", r.body);
    let r = server.hook(
        "/api/v1/webhooks/advisories",
        "initech",
        ACME_SECRET,
        &export,
    );
    assert_eq!(r.status, 401, "{}", r.body);
    let r = server.hook(
        "/api/v1/webhooks/advisories",
        "globex",
        GLOBEX_SECRET,
        &export,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(statuses(&server, "PYSEC-2023-74").is_empty());

    // Accepted, applied, and replayed for the same Idempotency-Key.
    let sig = signature(ACME_SECRET, &export);
    let signed = [
        ("X-Recheck-Tenant", "acme"),
        ("X-Recheck-Signature", sig.as_str()),
        ("Idempotency-Key", "concelier-1"),
    ];
    let first = server.post("/api/v1/webhooks/advisories?wait=true", &export, &signed);
    calls += 1;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["exportId"], "concelier-1");
    assert_eq!(
        first.body["seqs"].as_array().map(Vec::len),
        Some(advisories.len())
    );
    assert_eq!(statuses(&server, "PYSEC-2023-74"), ["affected"]);
    assert_eq!(statuses(&server, &django), ["affected"]);
    let again = server.post("/api/v1/webhooks/advisories?wait=true", &export, &signed);
    calls += 1;
    assert_eq!((again.status, &again.body), (first.status, &first.body));

    // A VEX export for acme's own scope suppresses requests in the image.
    let vex = serde_json::to_vec(&json!({
        "exportId": "excititor-1",
        "documents": [{"document": json_file(&samples().join("vex/payments-api.openvex.json"))}],
    }))
    .expect("encode");
    let r = server.hook("/api/v1/webhooks/vex?wait=true", "acme", ACME_SECRET, &vex);
    calls += 1;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(statuses(&server, "PYSEC-2023-74"), ["suppressed"]);
    // globex may send its own VEX, but not global VEX.
    let global = serde_json::to_vec(&json!({
        "exportId": "excititor-2",
        "scope": "global",
        "documents": [{"document": json_file(&samples().join("vex/payments-api.openvex.json"))}],
    }))
    .expect("encode");
    let r = server.hook("/api/v1/webhooks/vex", "globex", GLOBEX_SECRET, &global);
    assert_eq!(r.status, 403, "{}", r.body);
    // A broken document is named and writes nothing.
    let broken = serde_json::to_vec(&json!({
        "exportId": "concelier-2",
        "advisories": [{"id": "BROKEN-1", "affected": "not a list"}],
    }))
    .expect("encode");
    let r = server.hook("/api/v1/webhooks/advisories", "acme", ACME_SECRET, &broken);
    calls += 1;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["errors"][0]["location"], "body.advisories[0]");

    // The rest of acme's budget, then 429 with Retry-After; globex's own
    // budget is untouched.
    let removal =
        serde_json::to_vec(&json!({"exportId": "x", "removed": ["NO-SUCH-ID"]})).expect("encode");
    while calls < LIMIT {
        let r = server.hook("/api/v1/webhooks/advisories", "acme", ACME_SECRET, &removal);
        assert_eq!(r.status, 202, "{}", r.body);
        calls += 1;
    }
    let r = server.hook("/api/v1/webhooks/advisories", "acme", ACME_SECRET, &removal);
    assert_eq!(r.status, 429, "{}", r.body);
    let after: u64 = r
        .retry_after
        .as_deref()
        .and_then(|s| s.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&after), "{after}");
    let own = serde_json::to_vec(&json!({
        "exportId": "globex-1",
        "documents": [{"name": "globex-doc", "document": json_file(&samples().join("vex/payments-api.openvex.json"))}],
    }))
    .expect("encode");
    let r = server.hook("/api/v1/webhooks/vex", "globex", GLOBEX_SECRET, &own);
    assert_eq!(r.status, 202, "{}", r.body);
}

/// The states of `key`'s tenant's jobs.
fn job_states(server: &Server, key: &str) -> Vec<String> {
    let page = server.get_as(key, "/api/v1/jobs?limit=1000").expect("jobs");
    page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|j| j["state"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_paused_tenants_jobs_wait_until_it_is_resumed() {
    let server = Server::start();
    let auth = |key: &str| format!("Bearer {key}");
    let empty: &[u8] = b"";
    // Only a tenant's own admin controls it.
    let r = server.post(
        "/api/v1/tenants/acme/pause",
        empty,
        &[("Authorization", &auth(GLOBEX_ADMIN))],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = server.post(
        "/api/v1/tenants/acme/pause",
        empty,
        &[("Authorization", &auth(ADMIN))],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, json!({"tenant": "acme", "paused": true}));

    // The same image and advisories for both tenants.
    let advisories: Vec<Value> = common::json_files(&samples().join("advisories"))
        .iter()
        .map(|p| json_file(p))
        .collect();
    let body = serde_json::to_vec(&advisories).expect("encode");
    let r = server.post(
        "/api/v1/advisories?wait=true",
        &body,
        &[("Authorization", &auth(ADMIN))],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let sbom = common::read(&samples().join("sboms/payments-api.cdx.json"));
    for key in [ADMIN, GLOBEX_ADMIN] {
        let r = server.post(
            "/api/v1/sboms?wait=true",
            &sbom,
            &[("Authorization", &auth(key))],
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // globex's job runs; acme's waits in the queue.
    wait_until("globex's jobs succeed", || {
        let s = job_states(&server, GLOBEX_ADMIN);
        !s.is_empty() && s.iter().all(|s| s == "succeeded")
    });
    let acme = job_states(&server, ADMIN);
    assert!(
        !acme.is_empty() && acme.iter().all(|s| s == "queued"),
        "{acme:?}"
    );
    let metrics = server
        .agent
        .get(format!("{}/metrics", server.base))
        .call()
        .expect("GET /metrics")
        .body_mut()
        .read_to_string()
        .expect("text");
    assert!(
        metrics.contains(r#"recheck_queue_tenant_paused{tenant="acme"} 1"#),
        "{metrics}"
    );

    // Throughput limits: only for the own tenant, typed, answered with
    // what is in force.
    let limits = br#"{"concurrency": 2, "per_second": null}"#;
    let put = |body: &[u8], key: &str| {
        let a = auth(key);
        server.send(
            "PUT",
            "/api/v1/tenants/acme/limits",
            body,
            &[("Authorization", a.as_str())],
        )
    };
    let r = put(limits, GLOBEX_ADMIN);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = put(br#"{"concurrency": "two"}"#, ADMIN);
    assert_eq!(r.status, 400, "{}", r.body);
    let r = put(limits, ADMIN);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"tenant": "acme", "limits": {"concurrency": 2, "per_second": null}})
    );

    let r = server.post(
        "/api/v1/tenants/acme/resume",
        empty,
        &[("Authorization", &auth(ADMIN))],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["paused"], false);
    wait_until("acme's jobs succeed after the resume", || {
        job_states(&server, ADMIN).iter().all(|s| s == "succeeded")
    });
}
