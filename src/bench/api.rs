//! `recheck bench --suite api`: a bounded loopback load test of a real
//! `recheck serve` process, the way clients meet it: HTTP/1.1 with keep-alive
//! from a fixed number of concurrent clients on this machine (so the load
//! generator shares the cores with the server; the report says so).
//!
//! Three phases, each bounded by a request count:
//! 1. ingest: distinct SBOM uploads (the bundled payments-api SBOM's real
//!    components plus one package of the artifact's own), accepted (`202`)
//!    requests per second and their latency, then the time until all of them
//!    are applied;
//! 2. queries: impact by advisory, by artifact, by purl and job listings,
//!    round-robin, requests per second and latency;
//! 3. end to end: one new OSV advisory at a time against one artifact's own
//!    package, the time from sending the POST until the artifact's recheck job
//!    is visible planned (its window committed) and until it has left
//!    `planned` (dispatched to the queue), found by polling the job list
//!    every millisecond.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{machine, measurement, ms, percentile, BenchError};

#[derive(Debug, Clone)]
pub struct ApiBenchConfig {
    /// SBOM uploads in the ingest phase (one artifact each).
    pub artifacts: usize,
    /// Requests in the query phase.
    pub queries: usize,
    /// New advisories in the end-to-end phase (one at a time).
    pub advisories: usize,
    /// Concurrent clients in the ingest and query phases.
    pub concurrency: usize,
}

impl Default for ApiBenchConfig {
    fn default() -> Self {
        ApiBenchConfig {
            artifacts: 2_000,
            queries: 20_000,
            advisories: 100,
            concurrency: 8,
        }
    }
}

const TENANT: &str = "bench";
const PAYMENTS_SBOM: &str = include_str!("../../samples/sboms/payments-api.cdx.json");
/// An advisory of the payments-api components (urllib3 1.25.7).
const SHARED_ADVISORY: &str = "CVE-2020-7212";
/// The query mix, round-robin by request index.
const QUERY_KINDS: [&str; 4] = ["by_advisory", "by_artifact", "by_purl", "jobs_of_artifact"];
/// No answer may take longer than this; the run fails instead of hanging.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the end-to-end phase waits for one job to be planned.
const JOB_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a planned job may stay planned before the server is taken to
/// have no dispatcher (then only planned times are reported).
const DISPATCH_TIMEOUT: Duration = Duration::from_secs(2);

fn fail(message: impl Into<String>) -> BenchError {
    BenchError::Api(message.into())
}

/// One `recheck serve` process on a fresh embedded store; killed on drop.
struct Server {
    child: Child,
    base: String,
    key: String,
    agent: ureq::Agent,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(exe: &Path, dir: &Path) -> Result<Server, BenchError> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| fail(format!("no randomness: {e}")))?;
        let key = format!("rk_{}", hex::encode(raw));
        let config = dir.join("serve.toml");
        std::fs::write(
            &config,
            format!(
                "tenants = [\"{TENANT}\"]\n\n[[api_keys]]\nname = \"bench\"\ntenant = \"{TENANT}\"\n\
                 sha256 = \"{}\"\nscopes = [\"scheduler.admin\"]\n",
                crate::api::config::ServeConfig::hash_key(&key)
            ),
        )?;
        let mut child = Command::new(exe)
            .args(["serve", "--listen", "127.0.0.1:0", "--store"])
            .arg(dir.join("store.redb"))
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| fail("serve has no stdout"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                return Err(fail("recheck serve did not announce its address"));
            }
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .max_idle_connections_per_host(64)
            .build()
            .into();
        Ok(Server {
            child,
            base,
            key,
            agent,
        })
    }

    /// One request; the status and body.
    fn call(&self, method: &str, path: &str, body: Option<&[u8]>) -> Result<(u16, String), String> {
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.key));
        let response = match body {
            Some(b) => self.agent.run(
                request
                    .header("Content-Type", "application/json")
                    .body(b.to_vec())
                    .map_err(|e| e.to_string())?,
            ),
            None => self.agent.run(request.body(()).map_err(|e| e.to_string())?),
        };
        let mut response = response.map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| format!("{method} {path}: {e}"))?;
        Ok((status, text))
    }
}

fn digest_of(i: usize) -> String {
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(format!("recheck-bench-artifact-{i}")))
    )
}

fn own_package(i: usize) -> String {
    format!("recheck-bench-pkg-{i}")
}

/// Artifact `i`'s upload: the sample's real components plus its own package.
fn sbom_upload(template: &Value, i: usize) -> Vec<u8> {
    let mut sbom = template.clone();
    sbom["serialNumber"] = json!(format!(
        "urn:uuid:{}",
        uuid_like(&Sha256::digest(format!("serial-{i}")))
    ));
    sbom["metadata"]["component"] = json!({
        "type": "container",
        "bom-ref": "image",
        "name": format!("bench-service-{i}"),
        "version": "1.0.0",
    });
    if let Some(components) = sbom["components"].as_array_mut() {
        let name = own_package(i);
        components.push(json!({
            "type": "library",
            "bom-ref": name,
            "name": name,
            "version": "1.0.0",
            "purl": format!("pkg:pypi/{name}@1.0.0"),
        }));
    }
    let upload = json!({
        "sbom": sbom,
        "labels": {"team": format!("team-{}", i % 10)},
        "digest": digest_of(i),
    });
    serde_json::to_vec(&upload).unwrap_or_default()
}

fn uuid_like(bytes: &[u8]) -> String {
    let h = hex::encode(&bytes[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A new OSV advisory affecting only artifact `i`'s own package.
fn advisory(k: usize, i: usize) -> (String, Vec<u8>) {
    let id = format!("RECHECK-BENCH-{k:05}");
    let doc = json!({
        "schema_version": "1.6.0",
        "id": id,
        "modified": "2026-12-04T00:00:00Z",
        "summary": "benchmark advisory",
        "affected": [{
            "package": {"ecosystem": "PyPI", "name": own_package(i)},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0.0"}]}],
        }],
    });
    (id, serde_json::to_vec(&doc).unwrap_or_default())
}

/// Latency and throughput of one phase.
struct Phase {
    /// Sorted.
    latencies: Vec<Duration>,
    /// Each successful request's index and latency, in index order.
    by_request: Vec<(usize, Duration)>,
    elapsed: Duration,
    errors: usize,
    first_error: Option<String>,
}

impl Phase {
    fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The i-th request of a phase: method, path and query, body.
type MakeRequest = dyn Fn(usize) -> (&'static str, String, Option<Vec<u8>>) + Send + Sync;

/// `count` requests from `concurrency` clients; `request(i)` makes the i-th.
fn load(
    server: &Arc<Server>,
    count: usize,
    concurrency: usize,
    expect: &'static [u16],
    request: Arc<MakeRequest>,
) -> Phase {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (server, next, request) = (server.clone(), next.clone(), request.clone());
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                let (mut errors, mut first_error) = (0, None);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let (method, path, body) = request(i);
                    let t = Instant::now();
                    match server.call(method, &path, body.as_deref()) {
                        Ok((status, _)) if expect.contains(&status) => {
                            latencies.push((i, t.elapsed()))
                        }
                        Ok((status, text)) => {
                            errors += 1;
                            first_error.get_or_insert(format!("{method} {path}: {status} {text}"));
                        }
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert(e);
                        }
                    }
                }
                (latencies, errors, first_error)
            })
        })
        .collect();
    let mut phase = Phase {
        latencies: Vec::with_capacity(count),
        by_request: Vec::with_capacity(count),
        elapsed: Duration::ZERO,
        errors: 0,
        first_error: None,
    };
    for h in handles {
        if let Ok((latencies, errors, first)) = h.join() {
            phase.by_request.extend(latencies);
            phase.errors += errors;
            if phase.first_error.is_none() {
                phase.first_error = first;
            }
        } else {
            phase.errors += 1;
        }
    }
    phase.elapsed = start.elapsed();
    phase.by_request.sort();
    phase.latencies = phase.by_request.iter().map(|(_, d)| *d).collect();
    phase.latencies.sort();
    phase
}

fn check(name: &str, phase: &Phase) -> Result<(), BenchError> {
    // A benchmark of failing requests measures nothing.
    if phase.errors > 0 {
        return Err(fail(format!(
            "{name}: {} requests failed, first: {}",
            phase.errors,
            phase.first_error.as_deref().unwrap_or("?")
        )));
    }
    Ok(())
}

fn latency_measurements(name: &str, phase: &Phase, out: &mut Vec<Value>) {
    out.push(measurement(
        &format!("{name}.throughput"),
        phase.per_second(),
        "requests/s",
        None,
        true,
    ));
    for (label, p) in [("p50", 0.5), ("p99", 0.99)] {
        out.push(measurement(
            &format!("{name}.latency.{label}"),
            ms(percentile(&phase.latencies, p)),
            "ms",
            None,
            false,
        ));
    }
}

/// The artifact's job caused by `advisory`, if listed: its state.
fn job_state(
    server: &Server,
    artifact: &str,
    advisory: &str,
) -> Result<Option<String>, BenchError> {
    let path = format!("/api/v1/jobs?artifact={}", enc(artifact));
    let (status, body) = server.call("GET", &path, None).map_err(fail)?;
    if status != 200 {
        return Err(fail(format!("GET {path}: {status} {body}")));
    }
    let page: Value = serde_json::from_str(&body).map_err(|e| fail(e.to_string()))?;
    let items = page["items"].as_array().cloned().unwrap_or_default();
    Ok(items
        .iter()
        .find(|job| {
            job["reasons"]
                .as_array()
                .is_some_and(|rs| rs.iter().any(|r| r["advisory"] == advisory))
        })
        .and_then(|job| job["state"].as_str().map(str::to_string)))
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Runs the suite against `exe serve` (the running `recheck` binary).
pub fn run(
    exe: &Path,
    config: &ApiBenchConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<Value, BenchError> {
    let scratch: PathBuf =
        std::env::temp_dir().join(format!("recheck-bench-api-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let result = run_in(exe, &scratch, config, progress);
    std::fs::remove_dir_all(&scratch).ok();
    result
}

fn run_in(
    exe: &Path,
    scratch: &Path,
    config: &ApiBenchConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<Value, BenchError> {
    progress("starting recheck serve (embedded store)");
    let server = Arc::new(Server::start(exe, scratch)?);
    let template: Value =
        serde_json::from_str(PAYMENTS_SBOM).map_err(|e| fail(format!("sample SBOM: {e}")))?;
    let mut measurements = Vec::new();

    // The sample advisories, so the fleet has findings to query.
    let mut advisories: Vec<PathBuf> =
        std::fs::read_dir(crate::samples::bundled_dir().join("advisories"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
    advisories.sort();
    for path in advisories {
        let body = std::fs::read(&path)?;
        let (status, text) = server
            .call("POST", "/api/v1/advisories", Some(&body))
            .map_err(fail)?;
        if !(200..300).contains(&status) {
            return Err(fail(format!("{}: {status} {text}", path.display())));
        }
    }

    progress(&format!(
        "ingest: {} SBOM uploads from {} clients",
        config.artifacts, config.concurrency
    ));
    let uploads: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..config.artifacts)
            .map(|i| sbom_upload(&template, i))
            .collect(),
    );
    let bodies = uploads.clone();
    let ingest = load(
        &server,
        config.artifacts,
        config.concurrency,
        &[202],
        Arc::new(move |i| ("POST", "/api/v1/sboms".to_string(), Some(bodies[i].clone()))),
    );
    check("ingest", &ingest)?;
    // The last upload again with ?wait=true: answered once everything before
    // it is applied and committed.
    let t = Instant::now();
    let last = config.artifacts.saturating_sub(1);
    let (status, text) = server
        .call("POST", "/api/v1/sboms?wait=true", Some(&uploads[last]))
        .map_err(fail)?;
    if status != 200 {
        return Err(fail(format!(
            "POST /api/v1/sboms?wait=true: {status} {text}"
        )));
    }
    let applied = ingest.elapsed + t.elapsed();
    latency_measurements("api.ingest.sbom", &ingest, &mut measurements);
    measurements.push(measurement(
        "api.ingest.sbom.applied.time",
        applied.as_secs_f64(),
        "s",
        None,
        false,
    ));

    progress(&format!(
        "queries: {} requests from {} clients",
        config.queries, config.concurrency
    ));
    let artifacts = config.artifacts.max(1);
    let query = load(
        &server,
        config.queries,
        config.concurrency,
        &[200],
        Arc::new(move |i| {
            let a = (i * 7919) % artifacts;
            let path = match i % QUERY_KINDS.len() {
                0 => format!("/api/v1/impact/advisories/{SHARED_ADVISORY}?limit=100"),
                1 => format!("/api/v1/impact/artifacts?artifact={}", enc(&digest_of(a))),
                2 => format!(
                    "/api/v1/impact/purls?purl={}",
                    enc(&format!("pkg:pypi/{}@1.0.0", own_package(a)))
                ),
                _ => format!("/api/v1/jobs?artifact={}", enc(&digest_of(a))),
            };
            ("GET", path, None)
        }),
    );
    check("query", &query)?;
    latency_measurements("api.query", &query, &mut measurements);
    for (k, kind) in QUERY_KINDS.iter().enumerate() {
        let mut of_kind: Vec<Duration> = query
            .by_request
            .iter()
            .filter(|(i, _)| i % QUERY_KINDS.len() == k)
            .map(|(_, d)| *d)
            .collect();
        of_kind.sort();
        for (label, p) in [("p50", 0.5), ("p99", 0.99)] {
            measurements.push(measurement(
                &format!("api.query.{kind}.latency.{label}"),
                ms(percentile(&of_kind, p)),
                "ms",
                None,
                false,
            ));
        }
    }

    progress(&format!(
        "end to end: {} new advisories, one at a time",
        config.advisories
    ));
    let mut planned = Vec::with_capacity(config.advisories);
    let mut dispatched = Vec::with_capacity(config.advisories);
    for k in 0..config.advisories {
        let i = (k * 104_729) % artifacts;
        let (id, body) = advisory(k, i);
        let artifact = digest_of(i);
        let t = Instant::now();
        let (status, text) = server
            .call("POST", "/api/v1/advisories", Some(&body))
            .map_err(fail)?;
        if status != 202 {
            return Err(fail(format!("POST {id}: {status} {text}")));
        }
        let mut seen_planned = None;
        loop {
            match job_state(&server, &artifact, &id)?.as_deref() {
                Some("planned") => {
                    seen_planned.get_or_insert(t.elapsed());
                }
                Some(_) => {
                    let now = t.elapsed();
                    planned.push(seen_planned.unwrap_or(now));
                    dispatched.push(now);
                    break;
                }
                None => {}
            }
            if let Some(p) = seen_planned {
                // Planned but not dispatched: a serve without a dispatcher;
                // the planned time still stands.
                if t.elapsed() > p + DISPATCH_TIMEOUT {
                    planned.push(p);
                    break;
                }
            } else if t.elapsed() > JOB_TIMEOUT {
                return Err(fail(format!("no job for {id} after {JOB_TIMEOUT:?}")));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    planned.sort();
    dispatched.sort();
    for (name, times) in [("planned", &planned), ("queued", &dispatched)] {
        if times.is_empty() {
            continue;
        }
        for (label, p) in [("p50", 0.5), ("p99", 0.99)] {
            let baseline =
                (label == "p99").then_some(("seed SLA for incremental runs (5 min)", 300_000.0));
            measurements.push(measurement(
                &format!("api.end_to_end.advisory_to_job_{name}.{label}"),
                ms(percentile(times, p)),
                "ms",
                baseline,
                false,
            ));
        }
    }

    Ok(json!({
        "suite": "api",
        "machine": machine(),
        "data": {
            "server": "recheck serve, embedded store, default window policy, same machine",
            "clients": config.concurrency,
            "client": "ureq (HTTP/1.1 keep-alive), threads in the bench process, sharing the cores with the server",
            "artifacts": config.artifacts,
            "artifacts_are": "synthetic: the bundled payments-api CycloneDX SBOM's real components plus one package of each artifact's own, distinct digests and serials",
            "advisories": "the 11 bundled OSV advisories, then one new synthetic advisory per end-to-end sample against one artifact's own package",
            "queries": config.queries,
            "query_mix": "round-robin: impact by advisory (first 100), by artifact, by purl, job list of an artifact",
            "end_to_end_samples": config.advisories,
            "end_to_end_is": "from sending the advisory POST until the job list shows the artifact's job planned / past planned, polled every 1 ms",
            "dispatched_samples": dispatched.len(),
        },
        "measurements": measurements,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_are_distinct_real_sboms_with_an_own_package() {
        let template: Value = serde_json::from_str(PAYMENTS_SBOM).unwrap();
        let a: Value = serde_json::from_slice(&sbom_upload(&template, 1)).unwrap();
        let b: Value = serde_json::from_slice(&sbom_upload(&template, 2)).unwrap();
        assert_ne!(a["digest"], b["digest"]);
        assert_ne!(a["sbom"]["serialNumber"], b["sbom"]["serialNumber"]);
        let sbom = crate::formats::cyclonedx::parse_sbom(
            "bench",
            &serde_json::to_vec(&a["sbom"]).unwrap(),
            crate::model::Scope::Tenant(TENANT.into()),
        )
        .expect("the upload's SBOM parses");
        let purls: Vec<String> = sbom
            .components
            .iter()
            .filter_map(|c| c.purl.clone())
            .collect();
        assert!(
            purls
                .iter()
                .any(|p| p == "pkg:pypi/recheck-bench-pkg-1@1.0.0"),
            "{purls:?}"
        );
        assert!(
            purls.iter().any(|p| p.starts_with("pkg:pypi/urllib3@")),
            "{purls:?}"
        );
    }
}
