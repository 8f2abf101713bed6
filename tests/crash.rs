//! The crash test: the real `recheck ingest --once` binary over a watched
//! directory that changes step by step (real advisories, SBOMs and VEX
//! documents added, edited and deleted; see `common/stream.rs`), killed at
//! seeded failpoints on the write path (after an input append, mid-window,
//! after a ledger commit, after the job write before dispatch, mid-dispatch)
//! and by `kill -9` after seeded delays, each step rerun until it completes.
//! At the end the ledger's payload bytes must equal those of an
//! uninterrupted run over the same steps, the jobs must be the same, every
//! delta is covered by exactly one job, every job reached the queue exactly
//! once (drained and counted), and every failpoint fired at least once. The
//! counts per failpoint are printed.
//!
//! Runs on the embedded store with a Redis queue, and on PostgreSQL (a fresh
//! schema) with a NATS queue. `RECHECK_CRASH_SEED` picks another seed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::stream::{self, Rng};
use recheck::core::failpoint;
use recheck::model::{JobState, LedgerRecord, RecheckJob};
use recheck::queue::{self, Queue, QueueOptions};
use recheck::store::{JobFilter, Store};

/// Steps of directory changes; each is one iteration of the loop.
const STEPS: usize = 22;
/// Reruns of a step with crashes before it must complete.
const MAX_CRASHES_PER_STEP: usize = 4;
const KILL: &str = "kill -9";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn seed() -> u64 {
    std::env::var("RECHECK_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026)
}

/// How one run of a step is to end.
#[derive(Debug, Clone)]
enum Fate {
    Clean,
    Failpoint(&'static str, u64),
    Kill(Duration),
}

/// How it did end.
enum Ended {
    Completed,
    Failpoint(String),
    Killed,
}

struct Target<'a> {
    store: &'a str,
    queue: Option<(&'a str, &'a str)>,
}

fn ingest(target: &Target, dir: &Path, fate: &Fate) -> Ended {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_recheck"));
    cmd.args([
        "ingest",
        "--store",
        target.store,
        "--once",
        "--tenant",
        "acme",
    ])
    .arg("--dir")
    .arg(dir)
    .env_remove(failpoint::ENV)
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    if let Some((url, prefix)) = target.queue {
        cmd.args([
            "--queue",
            url,
            "--queue-prefix",
            prefix,
            "--dedup-window",
            "3600",
        ]);
    }
    if let Fate::Failpoint(name, n) = fate {
        cmd.env(failpoint::ENV, format!("{name}={n}"));
    }
    let mut child = cmd.spawn().unwrap();
    if let Fate::Kill(after) = fate {
        std::thread::sleep(*after);
        // Gone already is fine: the kill came too late to matter.
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        return Ended::Completed;
    }
    if let Some(line) = stderr.lines().find(|l| l.starts_with("failpoint ")) {
        let name = line.split_whitespace().nth(1).unwrap_or("?").to_string();
        return Ended::Failpoint(name);
    }
    use std::os::unix::process::ExitStatusExt;
    if matches!(fate, Fate::Kill(_)) && out.status.signal() == Some(9) {
        return Ended::Killed;
    }
    panic!(
        "recheck ingest failed ({:?}) for {fate:?}:\n{stderr}",
        out.status
    );
}

/// The uninterrupted run: every step once, no queue. Returns how long each
/// step's process ran, so kills can be aimed inside a run rather than after
/// it (a fixed delay lands after the exit on a fast machine and never fires).
fn reference(dir: &Path, store: &str, steps: &[Vec<stream::Op>]) -> Vec<Duration> {
    let target = Target { store, queue: None };
    let mut took = Vec::with_capacity(steps.len());
    for ops in steps {
        for op in ops {
            op.apply(dir);
        }
        let start = Instant::now();
        assert!(matches!(
            ingest(&target, dir, &Fate::Clean),
            Ended::Completed
        ));
        took.push(start.elapsed());
    }
    took
}

/// The same steps with crashes; returns the counts per failpoint (and kill)
/// and the number of process runs.
fn crashing(
    dir: &Path,
    target: &Target,
    steps: &[Vec<stream::Op>],
    took: &[Duration],
    rng: &mut Rng,
) -> (BTreeMap<String, u32>, usize) {
    let mut counts: BTreeMap<String, u32> = failpoint::NAMES
        .iter()
        .chain([&KILL])
        .map(|n| (n.to_string(), 0))
        .collect();
    let mut runs = 0;
    for (ops, took) in steps.iter().zip(took) {
        for op in ops {
            op.apply(dir);
        }
        let mut crashes = 0;
        loop {
            let fate = if crashes >= MAX_CRASHES_PER_STEP {
                Fate::Clean
            } else {
                // A kill lands at a random point of the run: between 5 % and
                // 95 % of the step's uninterrupted time (the crashing run also
                // dispatches to a queue, so it runs at least as long).
                let kill = |rng: &mut Rng| {
                    let permille = 50 + rng.below(900) as u32;
                    Fate::Kill(*took * permille / 1000)
                };
                // Crashes not seen yet are favoured, at their first pass, so
                // each one fires within the loop whatever the seed.
                let unhit: Vec<&'static str> = failpoint::NAMES
                    .iter()
                    .chain([&KILL])
                    .copied()
                    .filter(|n| counts[*n] == 0)
                    .collect();
                if !unhit.is_empty() && rng.below(3) > 0 {
                    match *rng.pick(&unhit) {
                        KILL => kill(rng),
                        name => Fate::Failpoint(name, 1),
                    }
                } else {
                    match rng.below(10) {
                        0..=5 => {
                            let name = failpoint::NAMES[rng.below(failpoint::NAMES.len())];
                            Fate::Failpoint(name, 1 + rng.below(3) as u64)
                        }
                        6..=8 => kill(rng),
                        _ => Fate::Clean,
                    }
                }
            };
            runs += 1;
            match ingest(target, dir, &fate) {
                Ended::Completed => break,
                Ended::Failpoint(name) => *counts.entry(name).or_default() += 1,
                Ended::Killed => *counts.entry(KILL.into()).or_default() += 1,
            }
            crashes += 1;
        }
    }
    (counts, runs)
}

async fn ledger(store: &dyn Store) -> Vec<LedgerRecord> {
    store.read_ledger(0, 1_000_000).await.unwrap()
}

/// Lease and ack everything until the queue has nothing for a while.
async fn drain(q: &dyn Queue) -> Vec<String> {
    let mut ids = Vec::new();
    let mut idle = 0;
    while idle < 3 {
        let got = q.lease("crash-test", 200).await.unwrap();
        if got.is_empty() {
            idle += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        idle = 0;
        for d in got {
            q.ack(&d.token).await.unwrap();
            ids.push(d.job.job_id);
        }
    }
    ids
}

fn print_counts(label: &str, counts: &BTreeMap<String, u32>, runs: usize, secs: f64) {
    let mut text = format!(
        "\ncrash test ({label}): {STEPS} steps, {runs} runs of `recheck ingest --once` in {secs:.1} s, seed {}\n",
        seed()
    );
    for (name, n) in counts {
        text.push_str(&format!("  {name:<22} {n}\n"));
    }
    // Straight to the handle: the harness captures a passing test's output.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
    println!("{text}");
}

/// The whole test on one store and queue.
fn crash_loop(label: &str, crash_store: &str, ref_store: &str, queue_url: &str, prefix: &str) {
    let Some(data) = common::shared_data() else {
        return;
    };
    let start = Instant::now();
    let pool = stream::pool(&data, 12);
    let mut rng = Rng::new(seed());
    let steps = stream::steps(&pool, rng.next(), STEPS);
    let tmp = tempfile::tempdir().unwrap();
    // Both runs watch the same path (document names are paths).
    let dir = tmp.path().join("checkout");
    std::fs::create_dir_all(&dir).unwrap();
    let took = reference(&dir, ref_store, &steps);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&dir).unwrap();

    let rt = runtime();
    let options = QueueOptions {
        prefix: prefix.to_string(),
        dedup_window: Duration::from_secs(3600),
        ..QueueOptions::default()
    };
    let q = rt.block_on(queue::open(queue_url, options)).unwrap();
    rt.block_on(q.purge()).unwrap();
    let target = Target {
        store: crash_store,
        queue: Some((queue_url, prefix)),
    };
    let (counts, runs) = crashing(&dir, &target, &steps, &took, &mut rng);
    print_counts(label, &counts, runs, start.elapsed().as_secs_f64());

    let (expected, got, ref_jobs, jobs) = rt.block_on(async {
        let r = recheck::store::open(ref_store).await.unwrap();
        let c = recheck::store::open(crash_store).await.unwrap();
        (
            ledger(r.as_ref()).await,
            ledger(c.as_ref()).await,
            r.jobs(&JobFilter::default()).await.unwrap(),
            c.jobs(&JobFilter::default()).await.unwrap(),
        )
    });
    assert!(expected.len() >= STEPS - 2, "{} windows", expected.len());
    assert_eq!(got.len(), expected.len(), "windows in the ledger");
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(
            g.payload, e.payload,
            "ledger entry {} differs from the uninterrupted run's",
            e.entry.index
        );
    }
    let ids = |jobs: &[RecheckJob]| -> Vec<String> { jobs.iter().map(|j| j.id.clone()).collect() };
    assert_eq!(
        ids(&jobs),
        ids(&ref_jobs),
        "the same jobs as the uninterrupted run"
    );
    assert!(
        jobs.iter().all(|j| j.state == JobState::Queued),
        "every job dispatched"
    );
    let payloads: Vec<_> = got
        .iter()
        .map(|r| serde_json::from_slice(&r.payload).unwrap())
        .collect();
    stream::check_coverage(&payloads, &jobs);
    assert!(!jobs.is_empty());

    let delivered = rt.block_on(drain(q.as_ref()));
    let unique: BTreeSet<&String> = delivered.iter().collect();
    assert_eq!(
        unique.len(),
        delivered.len(),
        "a job id reached the queue twice"
    );
    let stored: BTreeSet<&String> = jobs.iter().map(|j| &j.id).collect();
    assert_eq!(unique, stored, "every job reached the queue");
    rt.block_on(q.purge()).unwrap();

    assert!(runs >= 20, "{runs} runs");
    for (name, n) in &counts {
        assert!(*n >= 1, "{name} never fired (seed {})", seed());
    }
}

fn reachable(url: &str, var: &str) -> bool {
    let ok = runtime()
        .block_on(queue::open(url, QueueOptions::default()))
        .is_ok();
    if !ok {
        common::skip(&format!("queue at {url} unreachable: set {var}"));
    }
    ok
}

#[test]
fn crash_loop_on_embedded_store_and_redis() {
    let redis =
        std::env::var("RECHECK_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    if !reachable(&redis, "RECHECK_REDIS_URL") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let crash = tmp.path().join("crash.redb").display().to_string();
    let reference = tmp.path().join("ref.redb").display().to_string();
    let prefix = format!("rccrash_{}", std::process::id());
    crash_loop("embedded + redis", &crash, &reference, &redis, &prefix);
}

/// A fresh PostgreSQL schema, dropped when the test ends.
struct Schema {
    base: String,
    name: String,
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

#[test]
fn crash_loop_on_postgres_and_nats() {
    let base = std::env::var("RECHECK_POSTGRES_URI")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    if let Err(e) = runtime().block_on(tokio_postgres::connect(&base, tokio_postgres::NoTls)) {
        common::skip(&format!(
            "PostgreSQL not reachable at {base} ({e}): set RECHECK_POSTGRES_URI"
        ));
        return;
    }
    let nats = std::env::var("RECHECK_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    if !reachable(&nats, "RECHECK_NATS_URL") {
        return;
    }
    let crash = Schema {
        base: base.clone(),
        name: format!("rc_{}_crash", std::process::id()),
    };
    let reference = Schema {
        base: base.clone(),
        name: format!("rc_{}_crash_ref", std::process::id()),
    };
    let url = |s: &Schema| format!("{base}?schema={}", s.name);
    let prefix = format!("rccrash_{}", std::process::id());
    crash_loop(
        "postgres + nats",
        &url(&crash),
        &url(&reference),
        &nats,
        &prefix,
    );
}
