//! One real `recheck serve` process per test, driven over HTTP: a config
//! with two tenants, API keys of each scope and JWT keys, an embedded store
//! in a temporary directory, port 0. Shared by the API test suites
//! (`tests/api.rs`, `tests/api_runs.rs`) so they start and call the server
//! the same way.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use recheck::api::config::ServeConfig;
use recheck::formats;
use recheck::model::Scope;

pub const ACME: &str = "acme-corp";
pub const GLOBEX: &str = "globex-inc";
pub const ACME_ADMIN: &str = "test-acme-admin-6d1f";
pub const ACME_READER: &str = "test-acme-reader-22c9";
pub const ACME_INGEST: &str = "test-acme-ingest-91ab";
pub const GLOBEX_ADMIN: &str = "test-globex-admin-4e07";
pub const HS256_SECRET: &[u8] = b"recheck api test secret, 32 bytes+";
/// Acme's feed-webhook key (it may write the global feed).
pub const ACME_WEBHOOK_SECRET: &str = "test-acme-webhook-secret-5a1d";

/// One `recheck serve` process and its files; killed on drop.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub dir: tempfile::TempDir,
    /// The public key of the server's generated event signing key, as it
    /// printed it.
    pub public_key: Option<PathBuf>,
    pub key_id: Option<String>,
    agent: ureq::Agent,
}

pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.body))
    }

    /// Asserts an RFC 9457 problem with this status.
    pub fn problem(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.content_type, "application/problem+json",
            "{}",
            self.body
        );
        let p = self.json();
        assert_eq!(p["status"], status, "{p}");
        assert!(p["type"].is_string() && p["title"].is_string() && p["detail"].is_string());
        p
    }
}

pub fn config_text(dir: &Path, max_body: usize) -> String {
    let hash = ServeConfig::hash_key;
    let ed_pub = dir.join("idp.pub.pem");
    format!(
        r#"tenants = ["{ACME}", "{GLOBEX}"]

[[api_keys]]
name = "acme-admin"
tenant = "{ACME}"
sha256 = "{}"
scopes = ["scheduler.admin"]

[[api_keys]]
name = "acme-reader"
tenant = "{ACME}"
sha256 = "{}"
scopes = ["scheduler.runs.read"]

[[api_keys]]
name = "acme-ingest"
tenant = "{ACME}"
sha256 = "{}"
scopes = ["scheduler.ingest"]

[[api_keys]]
name = "globex-admin"
tenant = "{GLOBEX}"
sha256 = "{}"
scopes = ["scheduler.admin"]

[[jwt_keys]]
algorithm = "HS256"
secret_base64 = "{}"
audience = "recheck"

[[jwt_keys]]
kid = "idp-ed"
algorithm = "EdDSA"
public_key_file = "{}"
issuer = "https://idp.test"

[limits]
max_body_bytes = {max_body}

[webhooks]
max_requests = 100000
window_secs = 60

[[webhooks.secrets]]
tenant = "{ACME}"
secret = "{ACME_WEBHOOK_SECRET}"
feed = true
"#,
        hash(ACME_ADMIN),
        hash(ACME_READER),
        hash(ACME_INGEST),
        hash(GLOBEX_ADMIN),
        base64_encode(HS256_SECRET),
        ed_pub.display(),
    )
}

pub fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(4 * 1024 * 1024, |_| {}, &[])
    }

    /// `prepare` may write into the store file before the server opens it;
    /// `extra` are more `recheck serve` flags.
    pub fn start_with(max_body: usize, prepare: impl FnOnce(&Path), extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let keygen = Command::new(env!("CARGO_BIN_EXE_recheck"))
            .args(["keygen", "--out"])
            .arg(dir.path().join("idp"))
            .output()
            .expect("run recheck keygen");
        assert!(keygen.status.success(), "{keygen:?}");
        let config = dir.path().join("serve.toml");
        std::fs::write(&config, config_text(dir.path(), max_body)).expect("write config");
        let store = dir.path().join("store.redb");
        prepare(&store);
        let (child, base, public_key, key_id) = Server::spawn(dir.path(), extra);
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        Server {
            child,
            base,
            dir,
            agent,
            public_key,
            key_id,
        }
    }

    /// `recheck serve` on the store and config in `dir`: the process, its
    /// base URL, and the public key file and key id it printed.
    pub fn spawn(dir: &Path, extra: &[&str]) -> (Child, String, Option<PathBuf>, Option<String>) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_recheck"));
        command.args(["serve", "--listen", "127.0.0.1:0"]);
        if !extra.contains(&"--store") {
            command.arg("--store").arg(dir.join("store.redb"));
        }
        let mut child = command
            .arg("--config")
            .arg(dir.join("serve.toml"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start recheck serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let (mut public_key, mut key_id) = (None, None);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(path) = line.strip_prefix("public key: ") {
                    public_key = Some(PathBuf::from(path));
                }
                if let Some(id) = line.strip_prefix("signing key id: ") {
                    key_id = Some(id.to_string());
                }
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send((addr.to_string(), public_key.take(), key_id.take()));
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok((base, public_key, key_id)) => (child, base, public_key, key_id),
            Err(e) => {
                let _ = child.kill();
                panic!("recheck serve did not announce its address: {e}");
            }
        }
    }

    /// Stop the process (SIGKILL: the store is crash-safe, nothing is shut
    /// down in order), let `between` change the store file, and serve it
    /// again from a new process with `extra` flags.
    pub fn restart(&mut self, extra: &[&str], between: impl FnOnce(&Path)) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        between(&self.dir.path().join("store.redb"));
        let (child, base, public_key, key_id) = Server::spawn(self.dir.path(), extra);
        self.child = child;
        self.base = base;
        self.public_key = public_key;
        self.key_id = key_id;
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = match body {
            Some(b) => self.agent.run(
                request
                    .header("Content-Type", "application/json")
                    .body(b.to_vec())
                    .expect("request"),
            ),
            None => self.agent.run(request.body(()).expect("request")),
        };
        let mut response = response.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .unwrap_or_else(|e| panic!("{method} {path}: reading the body: {e}"));
        Reply {
            status,
            content_type,
            body,
        }
    }

    pub fn get(&self, path: &str, key: &str) -> Reply {
        self.call("GET", path, Some(key), None, &[])
    }

    pub fn post(&self, path: &str, key: &str, body: &[u8]) -> Reply {
        self.call("POST", path, Some(key), Some(body), &[])
    }

    pub fn post_json(&self, path: &str, key: &str, body: &Value) -> Reply {
        let bytes = serde_json::to_vec(body).expect("encode");
        self.call("POST", path, Some(key), Some(&bytes), &[])
    }

    /// Every item of a paged list.
    pub fn all_pages(&self, path: &str, key: &str) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut offset = 0;
        loop {
            let r = self.get(&format!("{path}{sep}limit=1000&offset={offset}"), key);
            assert_eq!(r.status, 200, "{path}: {}", r.body);
            let page = r.json();
            items.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next_offset"].as_u64() {
                Some(next) => offset = next,
                None => return items,
            }
        }
    }

    /// POST `size` bytes over a raw connection: the server answers 413 and
    /// may close before the body is sent, which an HTTP client reports as a
    /// broken pipe instead of the answer.
    pub fn post_oversized(&self, path: &str, key: &str, size: usize) -> (u16, String) {
        use std::io::{Read, Write};
        let addr = self.base.trim_start_matches("http://").to_string();
        let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).expect("write head");
        let mut writer = stream.try_clone().expect("clone");
        let sender = std::thread::spawn(move || {
            let chunk = vec![b' '; 64 * 1024];
            let mut sent = 0;
            while sent < size {
                if writer.write_all(&chunk).is_err() {
                    break;
                }
                sent += chunk.len();
            }
        });
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let _ = sender.join();
        let text = String::from_utf8_lossy(&response).to_string();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, text)
    }

    pub fn log_seq(&self) -> u64 {
        let r = self.call("GET", "/readyz", None, None, &[]);
        r.json()["log_seq"].as_u64().expect("log_seq")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.dir.path();
    }
}

pub fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

// --- real data over the API ------------------------------------------------

/// The real documents of one kind under `paths` that parse (the API would
/// refuse the others, and `scan` skips them), one per identity (`key`: the
/// advisory or artifact id; a later one would replace it in the engine but
/// not in `scan`).
pub fn parseable(paths: &[PathBuf], key: impl Fn(&str, &[u8]) -> Option<String>) -> Vec<PathBuf> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for p in paths {
        let files = if p.is_dir() {
            super::json_files_skipping(p, &["schema", "invalid"])
        } else {
            vec![p.clone()]
        };
        for f in files {
            let name = f.display().to_string();
            if let Some(k) = key(&name, &super::read(&f)) {
                if seen.insert(k) {
                    out.push(f);
                }
            }
        }
    }
    out
}

pub struct RealData {
    pub advisories: Vec<PathBuf>,
    pub sboms: Vec<PathBuf>,
    pub vex: Vec<PathBuf>,
}

pub fn real_data() -> Option<RealData> {
    let data = super::shared_data()?;
    let samples = recheck::samples::bundled_dir();
    let advisories = parseable(&[data.join("osv"), samples.join("advisories")], |n, b| {
        formats::osv::parse_advisory(n, b).ok().map(|a| a.id)
    });
    let sboms = parseable(
        &[
            data.join("sbom/cyclonedx/in-the-wild"),
            data.join("sbom/cyclonedx/bom-examples"),
            data.join("sbom/spdx/in-the-wild"),
            samples.join("sboms"),
        ],
        |n, b| {
            formats::parse_sbom(n, b, Scope::Global)
                .ok()
                .map(|s| s.artifact.id)
        },
    );
    let vex = parseable(&[data.join("vex/openvex"), samples.join("vex")], |n, b| {
        formats::parse_vex(n, b, Scope::Global)
            .ok()
            .map(|_| n.to_string())
    });
    Some(RealData {
        advisories,
        sboms,
        vex,
    })
}

/// Ingests the real data for `tenant` over the API; returns the artifact ids.
pub fn ingest(server: &Server, data: &RealData, key: &str) -> Vec<String> {
    for chunk in data.advisories.chunks(200) {
        let docs: Vec<Value> = chunk
            .iter()
            .map(|p| serde_json::from_slice(&super::read(p)).expect("JSON"))
            .collect();
        let body = serde_json::to_vec(&docs).expect("encode");
        let r = server.post("/api/v1/advisories", key, &body);
        assert_eq!(r.status, 202, "{}", r.body);
        let results = r.json()["results"].as_array().expect("results").clone();
        assert_eq!(results.len(), chunk.len());
        let seqs: Vec<u64> = results
            .iter()
            .map(|r| r["seq"].as_u64().expect("seq"))
            .collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    }
    for p in &data.vex {
        let path = format!("/api/v1/vex?document={}", enc(&p.display().to_string()));
        let r = server.post(&path, key, &super::read(p));
        assert_eq!(r.status, 202, "{}: {}", p.display(), r.body);
    }
    let mut artifacts = Vec::new();
    for (i, p) in data.sboms.iter().enumerate() {
        // The last write waits for its window: everything before is applied too.
        let wait = if i + 1 == data.sboms.len() {
            "?wait=true"
        } else {
            ""
        };
        let r = server.post(&format!("/api/v1/sboms{wait}"), key, &super::read(p));
        let expected = if wait.is_empty() { 202 } else { 200 };
        assert_eq!(r.status, expected, "{}: {}", p.display(), r.body);
        let v = r.json();
        if !wait.is_empty() {
            assert!(v["window"].as_u64().is_some(), "{v}");
        }
        artifacts.push(v["artifact"].as_str().expect("artifact").to_string());
    }
    artifacts
}

pub fn sorted(mut v: Vec<Value>) -> Vec<String> {
    let mut out: Vec<String> = v.drain(..).map(|v| v.to_string()).collect();
    out.sort();
    out
}

/// A real advisory from the bundled samples.
pub fn sample_advisory(name: &str) -> Value {
    let path = recheck::samples::bundled_dir()
        .join("advisories")
        .join(name);
    serde_json::from_slice(&super::read(&path)).expect("JSON")
}
