//! Restarting from the compacted input snapshot: the bundled samples'
//! three windows plus four more that remove, restore and replace documents
//! (a VEX document withdrawn and re-sent, a removed advisory restored, an
//! artifact removed, an SBOM re-sent, artifact metadata) go through the
//! production pipeline. A pipeline that compacts after window 3, restarts,
//! compacts after window 6 and restarts again must commit exactly the
//! ledger entries (payload bytes, hashes) and jobs of one that ran all seven
//! windows without a break, while reading fewer records on each restart
//! than the log holds, and report ready only once it has caught up. On the
//! embedded store and on PostgreSQL (a fresh schema, dropped after).

mod common;
#[path = "common/store_fixture.rs"]
mod store_fixture;

use std::collections::BTreeMap;

use common::skip;
use recheck::core::pipeline::{Pipeline, Readiness, Recovered};
use recheck::core::planner::Planner;
use recheck::engine::record::InputRecord;
use recheck::engine::EngineConfig;
use recheck::model::{LedgerRecord, RecheckJob, RuntimeState};
use recheck::store::{self, JobFilter};
use store_fixture::{closed_at, fixture, ACME, GLOBEX, WITHDRAWN};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The fixture's windows and four more.
fn windows() -> Vec<Vec<InputRecord>> {
    let fx = fixture();
    let mut windows = fx.windows.clone();
    let find = |w: usize, f: &dyn Fn(&InputRecord) -> bool| -> InputRecord {
        fx.windows[w].iter().find(|r| f(r)).unwrap().clone()
    };
    let vex = find(1, &|r| matches!(r, InputRecord::Vex { .. }));
    let InputRecord::Vex {
        scope, document, ..
    } = vex.clone()
    else {
        unreachable!()
    };
    let withdrawn = find(
        0,
        &|r| matches!(r, InputRecord::Advisory { advisory } if advisory.id == WITHDRAWN),
    );
    let sbom_of = |tenant: &str, name: &str| {
        let (tenant, name) = (tenant.to_string(), name.to_string());
        find(0, &move |r| {
            matches!(r, InputRecord::Sbom { tenant: t, sbom }
                if *t == tenant && sbom.artifact.name.as_deref() == Some(name.as_str()))
        })
    };
    let InputRecord::Sbom { sbom: globex, .. } = sbom_of(GLOBEX, "payments-api") else {
        unreachable!()
    };
    let InputRecord::Sbom { sbom: payments, .. } = sbom_of(ACME, "payments-api") else {
        unreachable!()
    };
    let close = |window| InputRecord::WindowClosed {
        window,
        closed_at: None,
    };
    windows.push(vec![
        InputRecord::VexRemoved {
            scope: scope.clone(),
            document: document.clone(),
        },
        InputRecord::ArtifactMetadata {
            tenant: ACME.into(),
            artifact: payments.artifact.id.clone(),
            labels: BTreeMap::from([("env".to_string(), "prod".to_string())]),
            runtime: RuntimeState::Running,
        },
        close(4),
    ]);
    windows.push(vec![withdrawn, vex, close(5)]);
    windows.push(vec![
        InputRecord::ArtifactRemoved {
            tenant: GLOBEX.into(),
            artifact: globex.artifact.id.clone(),
        },
        sbom_of(ACME, "billing-worker"),
        close(6),
    ]);
    windows.push(vec![
        InputRecord::VexRemoved { scope, document },
        InputRecord::Sbom {
            tenant: GLOBEX.into(),
            sbom: globex,
        },
        close(7),
    ]);
    windows
}

fn open(url: &str, readiness: Readiness) -> Pipeline {
    Pipeline::open_with(
        url,
        &EngineConfig::default(),
        Planner::default(),
        Box::new(closed_at),
        readiness,
    )
    .unwrap()
}

fn push(pipeline: &mut Pipeline, records: &[InputRecord]) -> usize {
    let committed = pipeline.push(records).unwrap();
    assert_eq!(committed.len(), 1);
    committed[0].deltas
}

/// What a store holds: its ledger and jobs.
fn stored(url: &str) -> (Vec<LedgerRecord>, Vec<RecheckJob>) {
    runtime().block_on(async {
        let store = store::open(url).await.unwrap();
        (
            store.read_ledger(0, 100).await.unwrap(),
            store.jobs(&JobFilter::default()).await.unwrap(),
        )
    })
}

/// Reopen, check what was read and that readiness followed, and return the
/// pipeline with what it recovered.
fn reopen(url: &str, log_records: u64) -> (Pipeline, Recovered) {
    let readiness = Readiness::default();
    assert!(!readiness.is_ready());
    let pipeline = open(url, readiness.clone());
    let recovered = pipeline.recovered();
    let progress = readiness.progress();
    assert!(progress.ready);
    let read = recovered.snapshot_records + recovered.records;
    assert_eq!((progress.applied, progress.total), (read, read));
    assert!(
        read < log_records,
        "read {read} records of a log of {log_records}"
    );
    assert_eq!(recovered.windows_committed, 0);
    (pipeline, recovered)
}

fn scenario(reference: &str, url: &str) {
    let windows = windows();
    let len = |ws: &[Vec<InputRecord>]| ws.iter().map(Vec::len).sum::<usize>() as u64;

    let mut full = open(reference, Readiness::default());
    let deltas: Vec<usize> = windows.iter().map(|w| push(&mut full, w)).collect();
    full.shutdown();
    assert!(
        deltas[3..].iter().all(|d| *d > 0),
        "every added window changes something: {deltas:?}"
    );

    let mut p = open(url, Readiness::default());
    for w in &windows[..3] {
        push(&mut p, w);
    }
    let head = p.compact().unwrap().unwrap();
    assert_eq!(head.window, 3);
    push(&mut p, &windows[3]);
    p.shutdown();

    // Snapshot of windows 1-3, tail = window 4 (already committed).
    let (mut p, recovered) = reopen(url, len(&windows[..4]));
    assert_eq!(recovered.snapshot_window, Some(3));
    assert_eq!(recovered.snapshot_records, head.records);
    assert_eq!(recovered.records, windows[3].len() as u64);
    assert_eq!(
        recovered.windows_skipped, 1,
        "window 4 is not emitted again"
    );
    for (w, records) in windows.iter().enumerate().take(6).skip(4) {
        assert_eq!(push(&mut p, records), deltas[w], "window {}", w + 1);
    }
    let head = p.compact().unwrap().unwrap();
    assert_eq!(head.window, 6);
    p.shutdown();

    // Snapshot of windows 1-6 (the withdrawn advisory restored, the removed
    // artifact gone), no tail.
    let (mut p, recovered) = reopen(url, len(&windows[..6]));
    assert_eq!(recovered.snapshot_window, Some(6));
    assert_eq!((recovered.records, recovered.windows_skipped), (0, 0));
    assert_eq!(push(&mut p, &windows[6]), deltas[6], "window 7");
    p.shutdown();

    let (ledger, jobs) = stored(url);
    let (ref_ledger, ref_jobs) = stored(reference);
    assert_eq!(ledger.len(), 7);
    assert_eq!(ledger, ref_ledger, "same ledger entries and payload bytes");
    assert_eq!(jobs, ref_jobs, "same jobs");
}

#[test]
fn restart_from_snapshot_and_tail_commits_what_an_uninterrupted_run_does() {
    let dir = tempfile::tempdir().unwrap();
    let url = |name: &str| format!("redb://{}", dir.path().join(name).display());
    scenario(&url("reference.redb"), &url("compacted.redb"));

    let base = std::env::var("RECHECK_POSTGRES_URI")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let rt = runtime();
    let admin = match rt.block_on(tokio_postgres::connect(&base, tokio_postgres::NoTls)) {
        Ok((client, conn)) => {
            rt.spawn(conn);
            client
        }
        Err(e) => {
            skip(&format!(
                "PostgreSQL not reachable at {base} ({e}): set RECHECK_POSTGRES_URI"
            ));
            return;
        }
    };
    let schema = format!("rc_{}_compaction", std::process::id());
    let result = std::panic::catch_unwind(|| {
        scenario(
            &url("reference-pg.redb"),
            &format!("{base}?schema={schema}"),
        )
    });
    rt.block_on(admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
        .unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
