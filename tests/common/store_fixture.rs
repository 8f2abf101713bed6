//! The real-data fixture the store tests share: the bundled samples as an
//! input log of three windows, run through the real engine for each window's
//! impact deltas, planned into jobs by the production planner (one per
//! artifact and window); the direct-to-backend tampering of a ledger
//! payload that `recheck ledger verify` must catch; and a SecantusDB server
//! for the MongoDB-wire tests.

// Each test binary that includes this uses only some of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use recheck::core::planner::Planner;
use recheck::engine::record::{InputRecord, LogEntry};
use recheck::engine::{Engine, EngineConfig};
use recheck::formats;
use recheck::model::{ImpactDelta, ImpactFinding, Scope};
use recheck::store::{CommitOutcome, Store, WindowCommit};

/// The sample set as an input log of three windows, and the deltas the
/// engine emitted for each.
pub struct Fixture {
    /// Records of each window, its `WindowClosed` last.
    pub windows: Vec<Vec<InputRecord>>,
    pub deltas: Vec<Vec<ImpactDelta>>,
}

pub const ACME: &str = "acme";
pub const GLOBEX: &str = "globex";
pub const WITHDRAWN: &str = "PYSEC-2022-213";

fn parse_dir<T>(
    dir: &Path,
    parse: impl FnMut(&str, &[u8]) -> Result<T, formats::FormatError>,
) -> Vec<T> {
    let report = formats::load::load(&[dir.to_path_buf()], parse);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    report.items.into_iter().map(|(_, t)| t).collect()
}

fn build_fixture() -> Fixture {
    let samples = recheck::samples::bundled_dir();
    let advisories = parse_dir(&samples.join("advisories"), formats::osv::parse_advisory);
    let sboms_for = |tenant: &str| {
        let scope = Scope::Tenant(tenant.to_string());
        parse_dir(&samples.join("sboms"), |name, bytes| {
            formats::parse_sbom(name, bytes, scope.clone())
        })
    };
    // acme runs all three images; globex runs only payments-api (the same
    // artifact id in another tenant, for the isolation checks).
    let mut w1: Vec<InputRecord> = advisories
        .into_iter()
        .map(|advisory| InputRecord::Advisory { advisory })
        .collect();
    for sbom in sboms_for(ACME) {
        w1.push(InputRecord::Sbom {
            tenant: ACME.into(),
            sbom,
        });
    }
    for sbom in sboms_for(GLOBEX) {
        if sbom.artifact.name.as_deref() == Some("payments-api") {
            w1.push(InputRecord::Sbom {
                tenant: GLOBEX.into(),
                sbom,
            });
        }
    }
    w1.push(InputRecord::WindowClosed {
        window: 1,
        closed_at: None,
    });
    // Window 2: acme's VEX document suppresses requests in payments-api.
    let scope = Scope::Tenant(ACME.into());
    let mut w2: Vec<InputRecord> = formats::load::load(&[samples.join("vex")], |name, bytes| {
        formats::parse_vex(name, bytes, scope.clone())
    })
    .items
    .into_iter()
    .map(|(document, statements)| InputRecord::Vex {
        scope: scope.clone(),
        document,
        statements,
    })
    .collect();
    w2.push(InputRecord::WindowClosed {
        window: 2,
        closed_at: None,
    });
    // Window 3: the Django advisory's source goes away.
    let w3 = vec![
        InputRecord::AdvisoryRemoved {
            id: WITHDRAWN.into(),
        },
        InputRecord::WindowClosed {
            window: 3,
            closed_at: None,
        },
    ];
    let windows = vec![w1, w2, w3];

    let mut engine = Engine::start(&EngineConfig::default()).unwrap();
    let mut deltas = Vec::new();
    let mut seq = 0;
    for records in &windows {
        for record in records {
            seq += 1;
            let closed = engine
                .apply(&LogEntry {
                    seq,
                    record: record.clone(),
                })
                .unwrap();
            if let Some(closed) = closed {
                deltas.push(Planner::deltas(&closed));
            }
        }
    }
    engine.shutdown();
    Fixture { windows, deltas }
}

pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let fx = build_fixture();
        // The checks below rely on what the samples produce; fail loudly if
        // the engine or the samples change under them.
        assert!(fx.deltas[0].len() >= 4, "window 1: {:?}", fx.deltas[0]);
        assert!(fx.deltas[0].iter().all(|d| d.diff == 1));
        assert!(fx.deltas[0].iter().any(|d| d.finding.tenant == GLOBEX));
        assert!(
            fx.deltas[1]
                .iter()
                .any(|d| d.diff == -1 && d.finding.tenant == ACME),
            "window 2 (VEX) must retract an affected row: {:?}",
            fx.deltas[1]
        );
        assert!(fx.deltas[1].iter().all(|d| d.finding.tenant == ACME));
        assert!(
            !fx.deltas[2].is_empty()
                && fx.deltas[2]
                    .iter()
                    .all(|d| d.diff == -1 && d.finding.advisory == WITHDRAWN),
            "window 3: {:?}",
            fx.deltas[2]
        );
        fx
    })
}

/// Seq of window `w`'s `WindowClosed` record when windows are appended in order.
pub fn closing_seq(fx: &Fixture, w: usize) -> u64 {
    fx.windows[..w].iter().map(|r| r.len() as u64).sum()
}

/// When the fixture's windows close (the planner's SLA deadlines start here).
pub fn closed_at() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
        .unwrap()
        .to_utc()
}

/// The commit of window `w` (1-based) as the production planner makes it,
/// with its jobs and the planner's cursor.
pub fn commit_of(fx: &Fixture, w: usize) -> WindowCommit {
    Planner::default().commit(
        w as u64,
        closing_seq(fx, w),
        fx.deltas[w - 1].clone(),
        closed_at(),
        Some(w as u64),
    )
}

/// The snapshot after windows `1..=w`, computed from the deltas alone.
pub fn expected_snapshot(fx: &Fixture, w: usize) -> Vec<ImpactFinding> {
    let mut counts: BTreeMap<ImpactFinding, i64> = BTreeMap::new();
    for d in fx.deltas[..w].iter().flatten() {
        *counts.entry(d.finding.clone()).or_default() += d.diff;
    }
    counts
        .into_iter()
        .filter(|(_, c)| *c > 0)
        .map(|(f, _)| f)
        .collect()
}

pub async fn commit_windows(store: &dyn Store, fx: &Fixture, upto: usize) {
    for w in 1..=upto {
        let outcome = store.commit_window(&commit_of(fx, w)).await.unwrap();
        assert!(
            matches!(outcome, CommitOutcome::Committed { .. }),
            "{outcome:?}"
        );
    }
}

/// A consumer-visible tamper: the first `"diff":1` of an entry's payload
/// becomes `"diff":-1` (a finding silently turned into a retraction).
pub fn tamper_bytes(payload: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(payload.to_vec()).unwrap();
    let tampered = text.replacen("\"diff\":1", "\"diff\":-1", 1);
    assert_ne!(tampered, text, "nothing to tamper with");
    tampered.into_bytes()
}

/// Rewrite ledger entry `index`'s payload in an embedded store file (closed).
pub fn tamper_redb(path: &Path, index: u64) {
    use redb::ReadableTable;
    // The embedded backend's payload table.
    const LEDGER_PAYLOADS: redb::TableDefinition<u64, &[u8]> =
        redb::TableDefinition::new("ledger_payloads");
    let db = redb::Database::create(path).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let mut t = tx.open_table(LEDGER_PAYLOADS).unwrap();
        let original = t.get(index).unwrap().unwrap().value().to_vec();
        t.insert(index, tamper_bytes(&original).as_slice()).unwrap();
    }
    tx.commit().unwrap();
}

/// Rewrite ledger entry `index`'s payload in a PostgreSQL store's schema.
pub async fn tamper_postgres(client: &tokio_postgres::Client, schema: &str, index: u64) {
    let row = client
        .query_one(
            &format!("SELECT payload FROM {schema}.ledger WHERE idx = $1"),
            &[&(index as i64)],
        )
        .await
        .unwrap();
    let tampered = tamper_bytes(row.get::<_, &[u8]>(0));
    let n = client
        .execute(
            &format!("UPDATE {schema}.ledger SET payload = $2 WHERE idx = $1"),
            &[&(index as i64), &tampered],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
}

/// A SecantusDB server started for a test, stopped on drop.
pub struct Secantus {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for Secantus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_secantus() -> Result<(Secantus, String), String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let child = std::process::Command::new("secantusd-py")
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--storage-path",
        ])
        .arg(dir.path().join("data"))
        .args(["--log-level", "WARNING"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("starting secantusd-py (pip install secantusdb): {e}"))?;
    let mut server = Secantus { child, _dir: dir };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!("secantusd-py exited: {status}"));
        }
        if std::time::Instant::now() > deadline {
            return Err("secantusd-py did not listen within 60 s".into());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let uri = format!("mongodb://127.0.0.1:{port}/?directConnection=true");
    Ok((server, uri))
}
