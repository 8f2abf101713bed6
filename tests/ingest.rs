//! Input streams end to end on real data: a watched directory (new, changed,
//! broken and deleted files, a restart of the pipeline between every change)
//! and a NATS JetStream ingest subject (batches, a restart between
//! publications, a crash between append and ack, a bad message), both into
//! the embedded store through the production pipeline. After every window
//! the ledger's deltas must add up to what the reference matcher finds over
//! the documents then present, each change must reach the input log exactly
//! once, every delta is covered by exactly one job, and `recheck replay`
//! finds the recorded windows identical. `recheck ingest` is driven once as
//! a binary too.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use common::skip;
use common::stream::{self, Op, ADVISORIES, SBOMS, VEX};
use recheck::core::ingest::{self, IngestOptions, IngestReport};
use recheck::core::pipeline::Pipeline;
use recheck::core::planner::Planner;
use recheck::engine::record::InputRecord;
use recheck::engine::EngineConfig;
use recheck::source::dir::{DirOptions, DirSource};
use recheck::source::nats::{Envelope, EnvelopeKind, NatsOptions, NatsSource};
use recheck::source::Source;
use recheck::store::{JobFilter, Store};

const TENANT: &str = "acme";

fn open(url: &str) -> Pipeline {
    Pipeline::open(
        url,
        &EngineConfig::default(),
        Planner::default(),
        Box::new(chrono::Utc::now),
    )
    .unwrap()
}

const ONCE: IngestOptions = IngestOptions {
    once: true,
    interval: Duration::ZERO,
};

/// A fresh pipeline on `url` (a restart) drains the directory once.
fn scan_dir(url: &str, dir: &Path) -> (IngestReport, Vec<usize>) {
    let mut pipeline = open(url);
    let options = DirOptions {
        tenant: TENANT.into(),
        global_vex: false,
    };
    let mut source = pipeline
        .block_on(DirSource::open(dir, options, pipeline.store().as_ref()))
        .unwrap();
    let mut rejected = Vec::new();
    let report = ingest::run(
        &mut pipeline,
        &mut source,
        None,
        ONCE,
        &AtomicBool::new(false),
        |done| rejected.push(done.rejected.len()),
    )
    .unwrap();
    pipeline.shutdown();
    (report, rejected)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The input records of window `window` (its `WindowClosed` excluded).
async fn window_records(store: &dyn Store, window: u64) -> Vec<InputRecord> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    for e in store.read_inputs(1, 1_000_000).await.unwrap() {
        match e.log_entry().unwrap().record {
            InputRecord::WindowClosed { window: w, .. } => {
                if w == window {
                    out = std::mem::take(&mut current);
                }
                current.clear();
            }
            r => current.push(r),
        }
    }
    out
}

/// The ledger adds up to what `scan` finds over the directory, every delta
/// has its one job, and a replay of the log reproduces every window.
async fn check_store(store: &dyn Store, dir: &Path) {
    let payloads = stream::ledger_payloads(store).await;
    assert_eq!(
        stream::net_impact(&payloads),
        stream::expected_impact(dir, TENANT),
        "the ledger's deltas add up to the reference matcher's findings"
    );
    let jobs = store.jobs(&JobFilter::default()).await.unwrap();
    stream::check_coverage(&payloads, &jobs);
    let replay =
        recheck::core::replay::replay(store, &EngineConfig::default(), &Planner::default(), 0)
            .await
            .unwrap();
    assert!(replay.mismatches.is_empty(), "{:?}", replay.mismatches);
}

fn kinds(records: &[InputRecord]) -> Vec<&'static str> {
    records
        .iter()
        .map(|r| recheck::store::NewInput::encode(r).unwrap().kind)
        .collect()
}

#[test]
fn watched_directory_appends_changes_and_withdraws_deleted_documents_across_restarts() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let pool = stream::pool(&data, 25);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("checkout");
    let url = tmp.path().join("store.redb").display().to_string();
    let rt = runtime();
    let store = || rt.block_on(recheck::store::open(&url)).unwrap();

    // The first pull: every sample document and some of the corpus.
    let mut ops: Vec<Op> = pool
        .advisories
        .iter()
        .map(|(n, b)| Op::Put(format!("{ADVISORIES}/{n}"), b.clone()))
        .collect();
    ops.extend(
        pool.sboms
            .iter()
            .take(5)
            .map(|(n, b)| Op::Put(format!("{SBOMS}/{n}"), b.clone())),
    );
    ops.push(Op::Put(
        format!("{VEX}/{}", pool.vex[0].0),
        pool.vex[0].1.clone(),
    ));
    // Not documents: hidden files (a checkout's .git) and other extensions.
    ops.push(Op::Put(".git/HEAD.json".into(), b"{}".to_vec()));
    ops.push(Op::Put("README.md".into(), b"# advisories".to_vec()));
    for op in &ops {
        op.apply(&dir);
    }
    let (report, _) = scan_dir(&url, &dir);
    assert_eq!((report.batches, report.windows), (1, 1));
    assert_eq!(report.records, pool.advisories.len() + 5 + 1 + 1);
    assert!(report.deltas > 0 && report.jobs > 0, "{report:?}");
    rt.block_on(check_store(store().as_ref(), &dir));

    // A restart with nothing changed appends nothing.
    let before = rt.block_on(store().last_seq()).unwrap();
    let (report, _) = scan_dir(&url, &dir);
    assert_eq!(report.batches, 0);
    assert_eq!(rt.block_on(store().last_seq()).unwrap(), before);

    // Edit: an advisory with findings is withdrawn.
    let payloads = rt.block_on(stream::ledger_payloads(store().as_ref()));
    let impact = stream::net_impact(&payloads);
    let hit = impact.keys().next().expect("the samples match").clone();
    let (adv_file, adv_bytes) = pool
        .advisories
        .iter()
        .find(|(_, b)| {
            recheck::formats::osv::parse_advisory("x", b).is_ok_and(|a| a.id == hit.advisory)
        })
        .unwrap();
    let adv_rel = format!("{ADVISORIES}/{adv_file}");
    Op::Put(
        adv_rel.clone(),
        stream::with_withdrawn(adv_bytes, Some("2026-11-30T00:00:00Z")),
    )
    .apply(&dir);
    let (report, _) = scan_dir(&url, &dir);
    assert_eq!((report.windows, report.records), (1, 2));
    let s = store();
    let w2 = rt.block_on(stream::ledger_payloads(s.as_ref()));
    let last = w2.last().unwrap();
    // Withdrawing may regroup aliases (other rows change too); its own rows
    // only go away.
    let own: Vec<_> = last
        .deltas
        .iter()
        .filter(|d| d.finding.advisory == hit.advisory)
        .collect();
    assert!(
        !own.is_empty() && own.iter().all(|d| d.diff == -1),
        "{own:?}"
    );
    assert_eq!(
        kinds(&rt.block_on(window_records(s.as_ref(), last.window))),
        ["advisory"]
    );
    rt.block_on(check_store(s.as_ref(), &dir));
    drop(s);

    // Delete: an SBOM with findings (not the one the VEX document is about)
    // becomes ArtifactRemoved of exactly its artifact.
    let sbom_rel = pool
        .sboms
        .iter()
        .take(5)
        .map(|(n, _)| format!("{SBOMS}/{n}"))
        .find(|rel| {
            let bytes = std::fs::read(dir.join(rel)).unwrap();
            let sbom = recheck::formats::parse_sbom(
                rel,
                &bytes,
                recheck::model::Scope::Tenant(TENANT.into()),
            )
            .unwrap();
            !rel.contains("payments") && impact.keys().any(|f| f.artifact == sbom.artifact.id)
        })
        .expect("a sample SBOM with findings");
    Op::Delete(sbom_rel).apply(&dir);
    let (report, _) = scan_dir(&url, &dir);
    assert_eq!((report.windows, report.records), (1, 2));
    let s = store();
    let w3 = rt.block_on(stream::ledger_payloads(s.as_ref()));
    let last = w3.last().unwrap();
    let records = rt.block_on(window_records(s.as_ref(), last.window));
    let InputRecord::ArtifactRemoved { tenant, artifact } = &records[0] else {
        panic!("{records:?}");
    };
    assert_eq!(tenant, TENANT);
    assert!(!last.deltas.is_empty());
    assert!(last
        .deltas
        .iter()
        .all(|d| d.diff == -1 && d.finding.artifact == *artifact));
    rt.block_on(check_store(s.as_ref(), &dir));
    drop(s);

    // Delete the withdrawn advisory's file and the VEX document, add a
    // broken file: two withdrawals in one window; the broken file is
    // reported once, appends nothing, and is not offered again.
    Op::Delete(adv_rel).apply(&dir);
    Op::Delete(format!("{VEX}/{}", pool.vex[0].0)).apply(&dir);
    Op::Put(format!("{ADVISORIES}/broken.json"), b"{\"id\": ".to_vec()).apply(&dir);
    let (report, rejected) = scan_dir(&url, &dir);
    assert_eq!((report.windows, report.records), (1, 3));
    assert_eq!(rejected, [1]);
    let s = store();
    let head = rt.block_on(s.ledger_head()).unwrap().unwrap();
    let records = rt.block_on(window_records(s.as_ref(), head.window));
    assert_eq!(kinds(&records), ["advisory_removed", "vex_removed"]);
    assert_eq!(
        records[0],
        InputRecord::AdvisoryRemoved {
            id: hit.advisory.clone()
        }
    );
    rt.block_on(check_store(s.as_ref(), &dir));
    drop(s);
    let (report, _) = scan_dir(&url, &dir);
    assert_eq!(report.batches, 0, "the broken file is not offered again");

    // The advisory comes back (a file reinstating it): its findings return.
    Op::Put(format!("{ADVISORIES}/again.json"), adv_bytes.clone()).apply(&dir);
    let (report, _) = scan_dir(&url, &dir);
    assert_eq!((report.windows, report.records), (1, 2));
    assert!(report.deltas > 0);
    rt.block_on(check_store(store().as_ref(), &dir));
}

#[test]
fn ingest_cli_drains_a_directory_once_and_resumes_after_its_offset() {
    let samples = recheck::samples::bundled_dir();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("checkout");
    for kind in ["advisories", "sboms", "vex"] {
        for p in common::json_files(&samples.join(kind)) {
            Op::Put(
                format!("{kind}/{}", p.file_name().unwrap().to_string_lossy()),
                common::read(&p),
            )
            .apply(&dir);
        }
    }
    let store = tmp.path().join("s.redb");
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_recheck"))
            .args(["ingest", "--store"])
            .arg(&store)
            .arg("--dir")
            .arg(&dir)
            .args(["--tenant", TENANT, "--once", "--queue", "memory://"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{stdout}{stderr}");
        stdout
    };
    let first = run();
    assert!(first.contains("1 batches, 1 windows"), "{first}");
    assert!(!first.contains(" 0 jobs"), "{first}");
    let second = run();
    assert!(second.contains("0 batches, 0 windows"), "{second}");

    let help = Command::new(env!("CARGO_BIN_EXE_recheck"))
        .args(["ingest", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--store",
        "--queue",
        "--dir",
        "--nats",
        "--subject",
        "--once",
    ] {
        assert!(help.contains(flag), "--help names {flag}: {help}");
    }
    let no_source = Command::new(env!("CARGO_BIN_EXE_recheck"))
        .args(["ingest", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert_eq!(no_source.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_source.stderr).contains("--dir"));
}

fn nats_url() -> Option<String> {
    let url = std::env::var("RECHECK_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    match runtime().block_on(async_nats::connect(&url)) {
        Ok(_) => Some(url),
        Err(e) => {
            skip(&format!(
                "NATS not reachable at {url} ({e}): set RECHECK_NATS_URL"
            ));
            None
        }
    }
}

fn envelope(kind: EnvelopeKind, tenant: Option<&str>, bytes: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&Envelope {
        kind,
        tenant: tenant.map(str::to_string),
        name: None,
        document: serde_json::from_slice(bytes).unwrap(),
        artifact: None,
    })
    .unwrap()
}

/// Drain the subject once with a fresh pipeline and source (a restart).
fn drain_nats(url: &str, options: &NatsOptions) -> IngestReport {
    let mut pipeline = open(url);
    let mut source = pipeline
        .block_on(NatsSource::open(options, pipeline.store().as_ref()))
        .unwrap();
    let report = ingest::run(
        &mut pipeline,
        &mut source,
        None,
        ONCE,
        &AtomicBool::new(false),
        |_| {},
    )
    .unwrap();
    pipeline.shutdown();
    report
}

#[test]
fn nats_subject_is_appended_once_in_order_across_restarts_and_a_lost_ack() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let Some(nats) = nats_url() else {
        return;
    };
    let pool = stream::pool(&data, 40);
    let rt = runtime();
    let tag = format!(
        "{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_millis()
    );
    let options = NatsOptions {
        url: nats.clone(),
        subject: format!("rctest.ingest.{tag}"),
        stream: format!("RCTEST_INGEST_{tag}"),
        batch: 7,
    };
    let client = rt.block_on(async_nats::connect(&nats)).unwrap();
    // The JetStream context spawns its acker on the current runtime.
    let js = rt.block_on(async { async_nats::jetstream::new(client) });
    let publish = |payloads: Vec<Vec<u8>>| {
        rt.block_on(async {
            for p in payloads {
                js.publish(options.subject.clone(), p.into())
                    .await
                    .unwrap()
                    .await
                    .unwrap();
            }
        })
    };
    let tmp = tempfile::tempdir().unwrap();
    let url = tmp.path().join("store.redb").display().to_string();
    // The stream exists before anything is published (the source creates it).
    drain_nats(&url, &options);

    // First publication: SBOMs (one with artifact metadata), advisories, a
    // tenant VEX document and a message that is not an envelope.
    let mut first: Vec<Vec<u8>> = pool
        .sboms
        .iter()
        .take(3)
        .map(|(_, b)| envelope(EnvelopeKind::Sbom, Some(TENANT), b))
        .collect();
    let mut with_meta: Envelope = serde_json::from_slice(&first[0]).unwrap();
    with_meta.artifact = Some(recheck::source::nats::ArtifactMeta {
        labels: [("team".to_string(), "payments".to_string())].into(),
        runtime: recheck::model::RuntimeState::Running,
    });
    first[0] = serde_json::to_vec(&with_meta).unwrap();
    first.extend(
        pool.advisories
            .iter()
            .map(|(_, b)| envelope(EnvelopeKind::Advisory, None, b)),
    );
    first.push(b"not an envelope".to_vec());
    first.push(envelope(EnvelopeKind::Vex, Some(TENANT), &pool.vex[0].1));
    let n_first = first.len();
    let mut published = first.clone();
    publish(first);
    let report = drain_nats(&url, &options);
    // A batch is at most 7 messages.
    assert!(report.batches >= n_first.div_ceil(7), "{report:?}");
    assert_eq!(report.rejected, 1);
    assert!(report.deltas > 0 && report.jobs > 0, "{report:?}");
    let s = rt.block_on(recheck::store::open(&url)).unwrap();
    let log = rt.block_on(s.read_inputs(1, 1_000_000)).unwrap();
    // Every usable message once (the SBOM with metadata is two records),
    // plus one close per batch.
    assert_eq!(log.len(), (n_first - 1) + 1 + report.windows);
    let source_name = format!("nats:{}/{}", options.stream, options.subject);
    assert_eq!(
        rt.block_on(s.source_offset(&source_name)).unwrap(),
        Some(n_first.to_string())
    );
    drop(s);

    // A restart with nothing new appends nothing.
    let report = drain_nats(&url, &options);
    assert_eq!(report.batches, 0);

    // Second publication; the first batch is appended but the process dies
    // before acking it (the source is dropped without `committed`): the
    // restarted source neither rereads it nor skips the rest.
    let second: Vec<Vec<u8>> = pool
        .advisories
        .iter()
        .take(4)
        .map(|(_, b)| {
            let v = stream::with_withdrawn(b, Some("2026-11-30T00:00:00Z"));
            envelope(EnvelopeKind::Advisory, None, &v)
        })
        .chain(
            pool.sboms
                .iter()
                .skip(3)
                .take(5)
                .map(|(_, b)| envelope(EnvelopeKind::Sbom, Some(TENANT), b)),
        )
        .collect();
    let n_second = second.len();
    published.extend(second.iter().cloned());
    publish(second);
    let appended_unacked;
    {
        let mut pipeline = open(&url);
        let mut source = pipeline
            .block_on(NatsSource::open(&options, pipeline.store().as_ref()))
            .unwrap();
        let batch = pipeline.block_on(source.poll()).unwrap().unwrap();
        appended_unacked = batch.records.len();
        assert!((1..=7).contains(&appended_unacked));
        let mut records = batch.records.clone();
        records.push(InputRecord::WindowClosed {
            window: pipeline.next_window(),
            closed_at: None,
        });
        pipeline
            .push_from(&records, std::slice::from_ref(&batch.offset))
            .unwrap();
        pipeline.shutdown();
    }
    let report = drain_nats(&url, &options);
    assert_eq!(
        report.records - report.windows,
        n_second - appended_unacked,
        "{report:?}"
    );
    let s = rt.block_on(recheck::store::open(&url)).unwrap();
    let log = rt.block_on(s.read_inputs(1, 1_000_000)).unwrap();
    // Every usable message's records exactly once, in publication order:
    // nothing read twice, nothing skipped.
    let expected: Vec<InputRecord> = published
        .iter()
        .filter_map(|p| serde_json::from_slice::<Envelope>(p).ok())
        .flat_map(|e| e.records("unnamed").unwrap())
        .collect();
    let appended: Vec<InputRecord> = log
        .iter()
        .map(|e| e.log_entry().unwrap().record)
        .filter(|r| !matches!(r, InputRecord::WindowClosed { .. }))
        .collect();
    assert_eq!(appended.len(), expected.len());
    assert!(
        appended == expected,
        "the log holds each message once, in order"
    );
    assert_eq!(
        rt.block_on(s.source_offset(&source_name)).unwrap(),
        Some((n_first + n_second).to_string())
    );
    let payloads = rt.block_on(stream::ledger_payloads(s.as_ref()));
    let jobs = rt.block_on(s.jobs(&JobFilter::default())).unwrap();
    stream::check_coverage(&payloads, &jobs);
    let replay = rt
        .block_on(recheck::core::replay::replay(
            s.as_ref(),
            &EngineConfig::default(),
            &Planner::default(),
            0,
        ))
        .unwrap();
    assert!(replay.mismatches.is_empty(), "{:?}", replay.mismatches);
    let _ = rt.block_on(js.delete_stream(&options.stream));
}
