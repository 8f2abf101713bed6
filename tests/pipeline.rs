//! The write path end to end: the bundled samples (window 1), acme's VEX
//! document (window 2) and an advisory withdrawal (window 3) go through the
//! production pipeline (input log → engine → planner → window commit) into
//! the embedded store and into PostgreSQL (a fresh schema, dropped after).
//! Both must hold the same ledger (same payload bytes, same head hash) and the
//! same jobs; every delta of every window is covered by exactly one job (its
//! artifact's job of that window) and every job by its deltas; committing a
//! window again creates nothing; `recheck ledger verify` passes on both; and
//! `recheck backfill --into` commits what it prints.

mod common;
#[path = "common/store_fixture.rs"]
mod store_fixture;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

use common::skip;
use recheck::core::pipeline::{Pipeline, Recovered};
use recheck::core::planner::{Planner, CURSOR};
use recheck::engine::record::InputRecord;
use recheck::engine::EngineConfig;
use recheck::model::{
    Direction, JobKind, JobReason, JobState, LedgerPayload, LedgerRecord, RecheckJob,
};
use recheck::store::{self, CommitOutcome, JobFilter, Store};
use store_fixture::{closed_at, fixture, Fixture};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn postgres_base() -> Option<String> {
    let base = std::env::var("RECHECK_POSTGRES_URI")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    match runtime().block_on(tokio_postgres::connect(&base, tokio_postgres::NoTls)) {
        Ok(_) => Some(base),
        Err(e) => {
            skip(&format!(
                "PostgreSQL not reachable at {base} ({e}): set RECHECK_POSTGRES_URI"
            ));
            None
        }
    }
}

/// A fresh PostgreSQL schema, dropped when the test ends (also on failure).
struct Schema {
    base: String,
    name: String,
}

impl Schema {
    fn new(base: &str, check: &str) -> Schema {
        Schema {
            base: base.to_string(),
            name: format!("rc_{}_pipeline_{check}", std::process::id()),
        }
    }

    fn url(&self) -> String {
        format!("{}?schema={}", self.base, self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        runtime().block_on(async {
            if let Ok((client, conn)) =
                tokio_postgres::connect(&self.base, tokio_postgres::NoTls).await
            {
                tokio::spawn(conn);
                let _ = client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
                    .await;
            }
        });
    }
}

/// The fixture's windows through a fresh pipeline into `url`.
fn run_pipeline(url: &str, fx: &Fixture) {
    let mut pipeline = Pipeline::open(
        url,
        &EngineConfig::default(),
        Planner::default(),
        Box::new(closed_at),
    )
    .unwrap();
    for (w, records) in fx.windows.iter().enumerate() {
        let committed = pipeline.push(records).unwrap();
        assert_eq!(committed.len(), 1, "window {} closes once", w + 1);
        let c = &committed[0];
        assert_eq!(c.closed.deltas.window, w as u64 + 1);
        assert!(
            matches!(c.outcome, CommitOutcome::Committed { new_jobs, .. } if new_jobs == c.jobs)
        );
        assert_eq!(c.deltas, fx.deltas[w].len());
    }
    assert_eq!(pipeline.head().map(|h| h.index), Some(2));
    pipeline.shutdown();
}

/// What a store holds after the pipeline ran.
#[derive(Debug, PartialEq)]
struct Stored {
    ledger: Vec<LedgerRecord>,
    jobs: Vec<RecheckJob>,
    cursor: Option<u64>,
}

async fn stored(store: &dyn Store) -> Stored {
    Stored {
        ledger: store.read_ledger(0, 100).await.unwrap(),
        jobs: store.jobs(&JobFilter::default()).await.unwrap(),
        cursor: store.cursor(CURSOR).await.unwrap(),
    }
}

fn payload(record: &LedgerRecord) -> LedgerPayload {
    serde_json::from_slice(&record.payload).unwrap()
}

/// The writer stamped every `WindowClosed` it appended, and each job's SLA
/// deadline is its window's stamp plus the planner's SLA: a replay of the
/// stored log plans the same deadlines.
async fn check_deadlines_replay(store: &dyn Store, s: &Stored) {
    let log = store.read_inputs(1, 10_000).await.unwrap();
    let stamps: Vec<(u64, String)> = log
        .iter()
        .filter_map(|e| match e.log_entry().unwrap().record {
            InputRecord::WindowClosed { window, closed_at } => Some((window, closed_at.unwrap())),
            _ => None,
        })
        .collect();
    assert_eq!(stamps.len(), 3, "every window close is in the log, stamped");
    let sla = Planner::default().sla;
    for job in &s.jobs {
        let (_, stamp) = stamps.iter().find(|(w, _)| *w == job.window).unwrap();
        let closed = chrono::DateTime::parse_from_rfc3339(stamp).unwrap();
        let deadline = chrono::DateTime::parse_from_rfc3339(&job.sla_deadline).unwrap();
        assert_eq!(deadline - closed, sla, "job {} deadline", job.id);
    }
}

/// Every delta is covered by exactly one job (its artifact's job of its
/// window, whose reasons name it), and every job's reasons are exactly those
/// of its artifact's deltas in that window.
fn check_coverage(s: &Stored, fx: &Fixture) {
    assert_eq!(s.ledger.len(), fx.windows.len());
    for (w, record) in s.ledger.iter().enumerate() {
        let p = payload(record);
        assert_eq!(p.window, w as u64 + 1);
        assert_eq!(
            p.deltas, fx.deltas[w],
            "window {}: the engine's deltas",
            p.window
        );
        let jobs: Vec<&RecheckJob> = s.jobs.iter().filter(|j| j.window == p.window).collect();
        let mut expected: BTreeMap<(&str, &str), BTreeSet<JobReason>> = BTreeMap::new();
        for d in &p.deltas {
            let f = &d.finding;
            let covering: Vec<&&RecheckJob> = jobs
                .iter()
                .filter(|j| j.tenant == f.tenant && j.artifact == f.artifact)
                .collect();
            assert_eq!(covering.len(), 1, "window {}: delta {d:?}", p.window);
            let reason = JobReason {
                advisory: f.advisory.clone(),
                vulnerability: f.vulnerability.clone(),
                status: f.status,
                direction: Direction::of_diff(d.diff),
            };
            assert!(covering[0].reasons.contains(&reason), "{reason:?}");
            expected
                .entry((&f.tenant, &f.artifact))
                .or_default()
                .insert(reason);
        }
        assert_eq!(
            jobs.len(),
            expected.len(),
            "window {}: one job per artifact",
            p.window
        );
        for job in jobs {
            let reasons = &expected[&(job.tenant.as_str(), job.artifact.as_str())];
            assert_eq!(job.reasons, reasons.iter().cloned().collect::<Vec<_>>());
            assert_eq!(job.kind, JobKind::Reevaluate);
            assert_eq!(job.state, JobState::Planned);
            assert_eq!(job.sla_deadline, "2026-12-01T10:05:00Z");
            assert_eq!(
                job.id,
                RecheckJob::compute_id(&job.tenant, &job.artifact, job.window, &job.reasons)
            );
        }
    }
    let ids: BTreeSet<&str> = s.jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids.len(), s.jobs.len(), "a job id appears twice");
    // The planner has read all three entries.
    assert_eq!(s.cursor, Some(3));
}

/// Planning and committing every window again finds it committed and writes
/// nothing.
async fn recommit(store: &dyn Store, before: &Stored) {
    for record in &before.ledger {
        let p = payload(record);
        let commit = Planner::default().commit(p.window, p.seq, p.deltas, closed_at(), Some(9));
        let outcome = store.commit_window(&commit).await.unwrap();
        assert_eq!(
            outcome,
            CommitOutcome::AlreadyCommitted {
                entry: record.entry.clone()
            }
        );
    }
    assert_eq!(&stored(store).await, before);
}

fn recheck() -> Command {
    Command::new(env!("CARGO_BIN_EXE_recheck"))
}

/// `recheck ledger verify` passes and names `head`.
fn ledger_verify(url: &str, entries: usize, head: &str) {
    let out = recheck()
        .args(["ledger", "verify", "--store", url])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("{entries} entries")), "{stdout}");
    assert!(stdout.contains(head), "{stdout}");
}

/// Run the pipeline into `url` and check everything one store can show.
fn pipeline_into(url: &str, fx: &Fixture) -> Stored {
    run_pipeline(url, fx);
    let rt = runtime();
    let s = rt.block_on(async {
        let store = store::open(url).await.unwrap();
        let s = stored(store.as_ref()).await;
        check_coverage(&s, fx);
        check_deadlines_replay(store.as_ref(), &s).await;
        recommit(store.as_ref(), &s).await;
        s
    });
    // A second pipeline rebuilds its engine from the stored log and commits
    // nothing again: every window is already in the ledger.
    let reopened = Pipeline::open(
        url,
        &EngineConfig::default(),
        Planner::default(),
        Box::new(closed_at),
    )
    .unwrap();
    let records: usize = fx.windows.iter().map(Vec::len).sum();
    assert_eq!(
        reopened.recovered(),
        Recovered {
            records: records as u64,
            windows_skipped: 3,
            windows_committed: 0,
            ..Recovered::default()
        }
    );
    reopened.shutdown();
    rt.block_on(async {
        let store = store::open(url).await.unwrap();
        assert_eq!(&stored(store.as_ref()).await, &s, "reopening wrote nothing");
    });
    let head = &s.ledger.last().unwrap().entry.hash;
    ledger_verify(url, fx.windows.len(), head);
    let out = replay(url, None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "replay on {url}: {stdout}");
    assert!(stdout.contains("identical"), "{stdout}");
    s
}

#[test]
fn embedded_and_postgres_hold_the_same_ledger_and_jobs() {
    let fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    let embedded_url = format!("redb://{}", dir.path().join("pipeline.redb").display());
    let embedded = pipeline_into(&embedded_url, fx);
    eprintln!(
        "embedded: {} entries, {} jobs, head {}",
        embedded.ledger.len(),
        embedded.jobs.len(),
        embedded.ledger[2].entry.hash
    );
    let Some(base) = postgres_base() else { return };
    let schema = Schema::new(&base, "agree");
    let postgres = pipeline_into(&schema.url(), fx);
    assert_eq!(
        postgres, embedded,
        "the same ledger bytes, head hash and jobs"
    );
}

fn samples_args(cmd: &mut Command) {
    let s = recheck::samples::bundled_dir();
    cmd.arg("--advisories")
        .arg(s.join("advisories"))
        .arg("--sbom")
        .arg(s.join("sboms"))
        .arg("--vex")
        .arg(s.join("vex"));
}

fn backfill(into: Option<&str>) -> Output {
    let mut cmd = recheck();
    cmd.arg("backfill");
    samples_args(&mut cmd);
    if let Some(url) = into {
        cmd.args(["--into", url]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `backfill --into`: stdout is unchanged, the store holds one verified
/// window whose deltas are the printed findings and whose jobs cover them,
/// and stderr reports what was committed.
fn backfill_into(url: &str, plain: &Output) -> Stored {
    let out = backfill(Some(url));
    assert_eq!(out.stdout, plain.stdout, "stdout unchanged");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let s = runtime().block_on(async { stored(store::open(url).await.unwrap().as_ref()).await });
    assert_eq!(s.ledger.len(), 1);
    let p = payload(&s.ledger[0]);
    let printed = plain.stdout.iter().filter(|b| **b == b'\n').count();
    assert_eq!(p.deltas.len(), printed, "one +1 delta per printed finding");
    assert!(p.deltas.iter().all(|d| d.diff == 1));
    let artifacts: BTreeSet<(&str, &str)> = p
        .deltas
        .iter()
        .map(|d| (d.finding.tenant.as_str(), d.finding.artifact.as_str()))
        .collect();
    assert_eq!(s.jobs.len(), artifacts.len());
    let line = format!(
        "committed window 1 into the {} store in",
        if url.starts_with("postgres") {
            "postgres"
        } else {
            "embedded"
        }
    );
    assert!(stderr.contains(&line), "{stderr}");
    let counts = format!(
        "{} deltas, {} jobs ({} new)",
        printed,
        s.jobs.len(),
        s.jobs.len()
    );
    assert!(stderr.contains(&counts), "{stderr}");
    ledger_verify(url, 1, &s.ledger[0].entry.hash);
    // The same load into a store that already holds it is refused.
    let again = {
        let mut cmd = recheck();
        cmd.arg("backfill");
        samples_args(&mut cmd);
        cmd.args(["--into", url]).output().unwrap()
    };
    assert!(!again.status.success());
    s
}

#[test]
fn backfill_into_embedded_and_postgres() {
    let plain = backfill(None);
    assert!(!plain.stdout.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backfill.redb");
    let embedded = backfill_into(&path.display().to_string(), &plain);
    assert!(Path::new(&path).is_file());
    let Some(base) = postgres_base() else { return };
    let schema = Schema::new(&base, "backfill");
    let postgres = backfill_into(&schema.url(), &plain);
    // Same ledger bytes; job deadlines follow the wall clock, ids do not.
    assert_eq!(postgres.ledger, embedded.ledger);
    let ids = |s: &Stored| s.jobs.iter().map(|j| j.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&postgres), ids(&embedded));
}

fn replay(url: &str, from: Option<u64>) -> Output {
    let mut cmd = recheck();
    cmd.args(["replay", "--store", url]);
    if let Some(w) = from {
        cmd.args(["--from", &w.to_string()]);
    }
    cmd.output().unwrap()
}

/// `recheck replay` recomputes the three windows from the stored log and
/// finds deltas and jobs identical; after one stored payload is altered it
/// names that window and exits 1, and `--from` past it compares only the rest.
#[test]
fn replay_reproduces_recorded_deltas_and_jobs() {
    let fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replay.redb");
    let url = format!("redb://{}", path.display());
    run_pipeline(&url, fx);

    let out = replay(&url, None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("3 windows compared"), "{stdout}");
    assert!(stdout.contains("identical"), "{stdout}");

    store_fixture::tamper_redb(&path, 1);
    let out = replay(&url, None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("differs: window 2: deltas differ"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("differs:").count(), 1, "{stdout}");

    let out = replay(&url, Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("1 windows compared"), "{stdout}");

    let missing = format!("redb://{}", dir.path().join("missing.redb").display());
    assert_eq!(replay(&missing, None).status.code(), Some(2));
}

/// `recheck bench --suite store --quick` commits one real-shaped window into
/// the embedded store and PostgreSQL, verifies both ledgers and reports
/// throughput for each; its own schema is gone afterwards.
#[test]
fn store_benchmark_commits_a_window_on_each_backend() {
    let Some(base) = postgres_base() else { return };
    let schema = format!("recheck_bench_{}", std::process::id());
    let url = format!("{base}?schema={schema}");
    let out = recheck()
        .args(["bench", "--suite", "store", "--quick", "--store", &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["data"]["window_deltas"].as_u64().unwrap() > 1_000);
    assert!(report["data"]["window_jobs"].as_u64().unwrap() > 100);
    let names: Vec<&str> = report["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for backend in ["embedded", "postgres"] {
        for what in [
            "commit.time",
            "commit.deltas_per_second",
            "ledger_verify.time",
        ] {
            let name = format!("store.{backend}.{what}");
            assert!(names.contains(&name.as_str()), "{name} in {names:?}");
        }
    }
    let left = runtime().block_on(async {
        let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
            .query_one(
                "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
                &[&schema],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    });
    assert_eq!(left, 0, "the benchmark drops its schema");
}

/// A pipeline stopped after window 2 and reopened continues where it was:
/// window 3 comes out exactly as in an uninterrupted run. And when window 3's
/// records reached the input log but its commit did not (a crash between the
/// two), opening the store commits it.
#[test]
fn reopened_pipeline_resumes_and_recovers_a_lost_commit() {
    let fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    let open = |url: &str| {
        Pipeline::open(
            url,
            &EngineConfig::default(),
            Planner::default(),
            Box::new(closed_at),
        )
        .unwrap()
    };
    let reference = format!("redb://{}", dir.path().join("reference.redb").display());
    run_pipeline(&reference, fx);

    let resumed = format!("redb://{}", dir.path().join("resumed.redb").display());
    let mut first = open(&resumed);
    for records in &fx.windows[..2] {
        first.push(records).unwrap();
    }
    first.shutdown();
    let mut second = open(&resumed);
    assert_eq!(second.recovered().windows_skipped, 2);
    let committed = second.push(&fx.windows[2]).unwrap();
    assert_eq!(committed.len(), 1);
    assert_eq!(
        committed[0].deltas,
        fx.deltas[2].len(),
        "only window 3's deltas"
    );
    second.shutdown();

    let crashed = format!("redb://{}", dir.path().join("crashed.redb").display());
    let mut first = open(&crashed);
    for records in &fx.windows[..2] {
        first.push(records).unwrap();
    }
    first.shutdown();
    let rt = runtime();
    rt.block_on(async {
        let store = store::open(&crashed).await.unwrap();
        let stamped: Vec<InputRecord> = fx.windows[2]
            .iter()
            .cloned()
            .map(|r| match r {
                InputRecord::WindowClosed { window, .. } => InputRecord::WindowClosed {
                    window,
                    closed_at: Some(
                        closed_at().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    ),
                },
                other => other,
            })
            .collect();
        store::append_records(store.as_ref(), &stamped, &[])
            .await
            .unwrap();
    });
    let recovered = open(&crashed);
    assert_eq!(recovered.recovered().windows_skipped, 2);
    assert_eq!(recovered.recovered().windows_committed, 1);
    recovered.shutdown();

    let [reference, resumed, crashed] = [&reference, &resumed, &crashed].map(|url| {
        rt.block_on(async {
            let store = store::open(url).await.unwrap();
            stored(store.as_ref()).await
        })
    });
    assert_eq!(
        resumed.ledger, reference.ledger,
        "resumed: same ledger bytes"
    );
    assert_eq!(resumed.jobs, reference.jobs, "resumed: same jobs");
    assert_eq!(
        crashed.ledger, reference.ledger,
        "recovered: same ledger bytes"
    );
    assert_eq!(crashed.jobs, reference.jobs, "recovered: same jobs");
}
