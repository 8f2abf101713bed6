//! The one conformance suite every `Store` backend passes: embedded (redb in
//! a temp dir), PostgreSQL (a fresh schema per check, dropped afterwards) and
//! MongoDB (`RECHECK_MONGODB_URI`, else a SecantusDB server this test starts;
//! a fresh database per check, dropped afterwards).
//!
//! The data is real: the bundled sample advisories, SBOMs and VEX document,
//! run through the real engine to get each window's impact deltas (see
//! `common/store_fixture.rs`).

mod common;
#[path = "common/store_fixture.rs"]
mod store_fixture;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::skip;
use recheck::core::compaction::compact;
use recheck::core::ledger::{verify, ChainBreak, Verdict};
use recheck::engine::record::InputRecord;
use recheck::model::{
    Escalation, ImpactFinding, JobKind, JobState, JobTransition, LedgerPayload, Priority,
    RecheckJob, Run, RunState, RunTrigger, Schedule, Selector, StoredEvent,
};
use recheck::store::{
    self, append_records, CommitOutcome, CursorMove, ImpactQuery, JobFilter, NewInput, RunCommit,
    RunOutcome, SnapshotRow, SnapshotUpdate, SourceOffset, Store, StoreErrorKind, WindowCommit,
};
use store_fixture::{
    closing_seq, commit_of, commit_windows, expected_snapshot, fixture, start_secantus,
    tamper_bytes, tamper_postgres, tamper_redb, Fixture, ACME, GLOBEX, WITHDRAWN,
};

// ----------------------------------------------------------------- checks

async fn input_log(store: Arc<dyn Store>, url: &str, fx: &Fixture) {
    assert_eq!(store.last_seq().await.unwrap(), 0);
    assert!(store.read_inputs(1, 10).await.unwrap().is_empty());
    let w1 = &fx.windows[0];
    let seqs = append_records(store.as_ref(), &w1[..3], &[]).await.unwrap();
    assert_eq!(seqs, vec![1, 2, 3]);
    let seqs = append_records(store.as_ref(), &w1[3..], &[]).await.unwrap();
    assert_eq!(seqs, (4..=w1.len() as u64).collect::<Vec<_>>());
    assert_eq!(store.last_seq().await.unwrap(), w1.len() as u64);

    let all = store.read_inputs(1, 1000).await.unwrap();
    assert_eq!(all.len(), w1.len());
    for (entry, record) in all.iter().zip(w1) {
        let expected = NewInput::encode(record).unwrap();
        assert_eq!(entry.json, expected.json, "seq {}: stored bytes", entry.seq);
        assert_eq!(entry.sha256, expected.sha256);
        assert_eq!(entry.kind, expected.kind);
        assert_eq!(entry.tenant, expected.tenant);
        assert_eq!(&entry.log_entry().unwrap().record, record);
    }
    assert_eq!(all[0].kind, "advisory");
    assert_eq!(all[0].tenant, None);
    assert!(all.iter().any(|e| e.tenant.as_deref() == Some(GLOBEX)));
    assert_eq!(all.last().unwrap().kind, "window_closed");

    // Reads from a position, with a limit, in order.
    let page = store.read_inputs(3, 2).await.unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 4]);
    assert_eq!(page[0], all[2]);
    assert!(store
        .read_inputs(w1.len() as u64 + 1, 5)
        .await
        .unwrap()
        .is_empty());

    // A reopened store continues the sequence.
    drop(store);
    let store = store::open(url).await.unwrap();
    assert_eq!(store.last_seq().await.unwrap(), w1.len() as u64);
    let seqs = append_records(store.as_ref(), &fx.windows[1], &[])
        .await
        .unwrap();
    assert_eq!(seqs[0], w1.len() as u64 + 1);
}

fn offset(source: &str, offset: &str) -> SourceOffset {
    SourceOffset {
        source: source.into(),
        offset: offset.into(),
    }
}

async fn offset_of(store: &dyn Store, source: &str) -> Option<String> {
    store.source_offset(source).await.unwrap()
}

async fn offsets_with_append(store: Arc<dyn Store>, url: &str, fx: &Fixture) {
    const NATS: &str = "nats:ingest";
    const DIR: &str = "dir:/srv/osv";
    assert_eq!(offset_of(store.as_ref(), NATS).await, None);
    let w1 = &fx.windows[0];
    let both = [offset(NATS, "17"), offset(DIR, "sha256:aa")];
    append_records(store.as_ref(), &w1[..2], &both)
        .await
        .unwrap();
    assert_eq!(offset_of(store.as_ref(), NATS).await.as_deref(), Some("17"));
    // The next append moves one source on and leaves the other.
    append_records(store.as_ref(), &w1[2..3], &[offset(NATS, "18")])
        .await
        .unwrap();

    // An append whose offset is refused (checked after the records are
    // written, inside the transaction) leaves neither records nor offsets.
    let refused = [offset(NATS, "19"), offset("", "x")];
    let err = append_records(store.as_ref(), &w1[3..], &refused)
        .await
        .unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Invalid);
    assert_eq!(store.last_seq().await.unwrap(), 3);
    assert_eq!(offset_of(store.as_ref(), NATS).await.as_deref(), Some("18"));

    // After a restart the offsets and the log agree.
    drop(store);
    let store = store::open(url).await.unwrap();
    assert_eq!(store.last_seq().await.unwrap(), 3);
    assert_eq!(offset_of(store.as_ref(), NATS).await.as_deref(), Some("18"));
    assert_eq!(
        offset_of(store.as_ref(), DIR).await.as_deref(),
        Some("sha256:aa")
    );
    // Offsets may move without records (a source that only skipped).
    store
        .append_inputs(&[], &[offset(DIR, "sha256:bb")])
        .await
        .unwrap();
    assert_eq!(
        offset_of(store.as_ref(), DIR).await.as_deref(),
        Some("sha256:bb")
    );
    assert_eq!(store.last_seq().await.unwrap(), 3);
}

async fn window_commit(store: Arc<dyn Store>, url: &str, fx: &Fixture) {
    assert_eq!(store.ledger_head().await.unwrap(), None);

    // A commit that fails inside its transaction (the last write, the
    // cursor, is refused) leaves nothing: no entry, rows, jobs or cursor.
    let mut failing = commit_of(fx, 1);
    failing.cursors[0].position = u64::MAX;
    let err = store.commit_window(&failing).await.unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Invalid);
    assert_eq!(store.ledger_head().await.unwrap(), None);
    assert!(store.jobs(&JobFilter::default()).await.unwrap().is_empty());
    assert_eq!(store.cursor("planner").await.unwrap(), None);
    let artifact = fx.deltas[0][0].finding.artifact.clone();
    let by_artifact = ImpactQuery::Artifact {
        tenant: ACME.into(),
        artifact,
    };
    assert!(store.impact(&by_artifact).await.unwrap().is_empty());

    // The real commit.
    let c1 = commit_of(fx, 1);
    let outcome = store.commit_window(&c1).await.unwrap();
    let CommitOutcome::Committed { entry, new_jobs } = outcome.clone() else {
        panic!("{outcome:?}");
    };
    assert_eq!(new_jobs, c1.jobs.len());
    assert_eq!((entry.index, entry.window, entry.seq), (0, 1, c1.seq));
    assert_eq!(store.ledger_head().await.unwrap(), Some(entry.clone()));
    assert_eq!(store.cursor("planner").await.unwrap(), Some(1));
    let records = store.read_ledger(0, 10).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].payload, c1.payload());
    let payload: LedgerPayload = serde_json::from_slice(&records[0].payload).unwrap();
    assert_eq!(payload.deltas, fx.deltas[0]);
    let jobs = store.jobs(&JobFilter::default()).await.unwrap();
    let mut planned = c1.jobs.clone();
    planned.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(jobs, planned);

    // The same window again: reported, nothing new.
    let again = store.commit_window(&c1).await.unwrap();
    assert_eq!(
        again,
        CommitOutcome::AlreadyCommitted {
            entry: entry.clone()
        }
    );
    // Even with a different body (a replanned window is still window 1).
    let mut replanned = commit_of(fx, 1);
    replanned.jobs.clear();
    replanned.cursors[0].position = 99;
    assert!(matches!(
        store.commit_window(&replanned).await.unwrap(),
        CommitOutcome::AlreadyCommitted { .. }
    ));
    assert_eq!(store.cursor("planner").await.unwrap(), Some(1));
    assert_eq!(store.jobs(&JobFilter::default()).await.unwrap(), planned);
    assert_eq!(store.read_ledger(0, 10).await.unwrap().len(), 1);

    // Windows must move forward.
    let mut stale = commit_of(fx, 2);
    stale.window = 0;
    for d in &mut stale.deltas {
        d.window = 0;
    }
    stale.jobs.clear();
    let err = store.commit_window(&stale).await.unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Invalid);
    // An inconsistent commit is refused before anything is written.
    let mut mixed = commit_of(fx, 2);
    mixed.deltas[0].window = 7;
    assert_eq!(
        store.commit_window(&mixed).await.unwrap_err().kind,
        StoreErrorKind::Invalid
    );
    let mut forged = commit_of(fx, 2);
    forged.jobs[0].artifact = "sha256:other".into();
    assert_eq!(
        store.commit_window(&forged).await.unwrap_err().kind,
        StoreErrorKind::Invalid
    );

    // Windows 2 and 3 retract rows; the snapshot follows, across a restart.
    commit_windows_from(store.as_ref(), fx, 2).await;
    drop(store);
    let store = store::open(url).await.unwrap();
    let head = store.ledger_head().await.unwrap().unwrap();
    assert_eq!(
        (head.index, head.window, head.seq),
        (2, 3, closing_seq(fx, 3))
    );
    assert_eq!(store.cursor("planner").await.unwrap(), Some(3));
    for tenant in [ACME, GLOBEX] {
        let expected: Vec<ImpactFinding> = expected_snapshot(fx, 3)
            .into_iter()
            .filter(|f| f.tenant == tenant)
            .collect();
        let mut got = Vec::new();
        let mut artifacts: Vec<&str> = expected.iter().map(|f| f.artifact.as_str()).collect();
        artifacts.dedup();
        for artifact in artifacts {
            got.extend(
                store
                    .impact(&ImpactQuery::Artifact {
                        tenant: tenant.into(),
                        artifact: artifact.into(),
                    })
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(got, expected, "tenant {tenant}");
        assert!(got.iter().all(|f| f.advisory != WITHDRAWN));
    }
}

async fn commit_windows_from(store: &dyn Store, fx: &Fixture, from: usize) {
    for w in from..=fx.deltas.len() {
        let outcome = store.commit_window(&commit_of(fx, w)).await.unwrap();
        assert!(
            matches!(outcome, CommitOutcome::Committed { .. }),
            "{outcome:?}"
        );
    }
}

async fn job_ids(store: Arc<dyn Store>, _url: &str, fx: &Fixture) {
    commit_windows(store.as_ref(), fx, 3).await;
    for w in 1..=3 {
        let _ = store.commit_window(&commit_of(fx, w)).await.unwrap();
    }
    let jobs = store.jobs(&JobFilter::default()).await.unwrap();
    let expected: usize = (1..=3).map(|w| commit_of(fx, w).jobs.len()).sum();
    assert_eq!(jobs.len(), expected);
    let mut ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), jobs.len(), "a job id appears twice");
    // (window, id) order, and each job's id is the hash of its content.
    assert!(jobs.is_sorted_by_key(|j| (j.window, j.id.clone())));
    for job in &jobs {
        assert_eq!(
            job.id,
            RecheckJob::compute_id(&job.tenant, &job.artifact, job.window, &job.reasons)
        );
        assert_eq!(store.job(&job.id).await.unwrap().as_ref(), Some(job));
    }
    assert_eq!(store.job("no-such-job").await.unwrap(), None);
}

async fn job_transitions(store: Arc<dyn Store>, _url: &str, fx: &Fixture) {
    commit_windows(store.as_ref(), fx, 1).await;
    let job = store.outbox(1).await.unwrap().remove(0);
    let t = |from, to, attempt| JobTransition {
        from,
        to,
        at: "2026-12-01T10:00:01Z".into(),
        attempt,
    };
    use JobState::*;
    assert_eq!(
        store
            .mark_dispatched(std::slice::from_ref(&job.id), "2026-12-01T10:00:00Z")
            .await
            .unwrap(),
        1
    );
    // One job's life with a retry; a second dispatcher's move and a second
    // worker's take are stale and refused.
    let steps = [
        (Planned, Queued, 0, false),
        (Queued, Running, 1, true),
        (Queued, Running, 1, false),
        (Running, Failed, 1, true),
        (Failed, Retrying, 1, true),
        (Retrying, Running, 2, true),
    ];
    for (from, to, attempt, applies) in steps {
        let applied = store
            .transition_job(&job.id, &t(from, to, attempt))
            .await
            .unwrap();
        assert_eq!(applied, applies, "{from:?} → {to:?}");
    }
    // No such edge in the state machine.
    let err = store
        .transition_job(&job.id, &t(Running, Superseded, 2))
        .await
        .unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Invalid);
    assert!(store
        .transition_job(&job.id, &t(Running, Succeeded, 2))
        .await
        .unwrap());
    let err = store
        .transition_job("no-such-job", &t(Queued, Running, 1))
        .await
        .unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::NotFound);

    let now = store.job(&job.id).await.unwrap().unwrap();
    assert_eq!((now.state, now.attempt), (Succeeded, 2));
    // Nothing but state and attempt changed.
    assert_eq!(
        RecheckJob {
            state: Planned,
            attempt: 0,
            ..now.clone()
        },
        job
    );
    let history = store.job_history(&job.id).await.unwrap();
    let steps: Vec<(JobState, JobState, u32)> =
        history.iter().map(|h| (h.from, h.to, h.attempt)).collect();
    assert_eq!(
        steps,
        vec![
            (Planned, Queued, 0),
            (Queued, Running, 1),
            (Running, Failed, 1),
            (Failed, Retrying, 1),
            (Retrying, Running, 2),
            (Running, Succeeded, 2),
        ]
    );
    assert_eq!(history[0].at, "2026-12-01T10:00:00Z");

    // Superseding a queued job (a newer one for the artifact is queued).
    let other = store.outbox(1).await.unwrap().remove(0);
    store
        .mark_dispatched(std::slice::from_ref(&other.id), "2026-12-01T10:00:02Z")
        .await
        .unwrap();
    assert!(store
        .transition_job(&other.id, &t(Queued, Superseded, 0))
        .await
        .unwrap());
    assert_eq!(store.job(&other.id).await.unwrap().unwrap().id, other.id);
    let superseded = store
        .jobs(&JobFilter {
            state: Some(Superseded),
            ..JobFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(superseded.len(), 1);
    assert_eq!(superseded[0].id, other.id);
}

/// A pending job is escalated in place (id, planned content, state kept);
/// one that moved on, or has started, is not.
async fn job_escalation(store: Arc<dyn Store>, _url: &str, fx: &Fixture) {
    commit_windows(store.as_ref(), fx, 1).await;
    let mut jobs = store.outbox(2).await.unwrap();
    assert_eq!(
        jobs.len(),
        2,
        "the fixture's first window plans two jobs or more"
    );
    let (job, other) = (jobs.remove(0), jobs.remove(0));
    let e = Escalation {
        priority: Priority::Emergency,
        sla_deadline: "2026-12-01T10:01:00Z".into(),
        at: "2026-12-01T10:00:00.000Z".into(),
        reason: "artifact started running".into(),
    };
    use JobState::*;
    assert!(store.escalate_job(&job.id, Planned, &e).await.unwrap());
    let held = store.job(&job.id).await.unwrap().unwrap();
    assert_eq!(held.escalation.as_ref(), Some(&e));
    assert_eq!(held.effective_priority(), Priority::Emergency);
    assert_eq!(
        RecheckJob {
            escalation: None,
            ..held.clone()
        },
        job
    );
    assert_eq!(store.outbox(10).await.unwrap()[0], held);
    // Stale (it is planned, not queued), started, or absent.
    assert!(!store.escalate_job(&other.id, Queued, &e).await.unwrap());
    assert_eq!(store.job(&other.id).await.unwrap().unwrap(), other);
    let err = store
        .escalate_job(&other.id, Running, &e)
        .await
        .unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Invalid);
    let err = store
        .escalate_job("no-such-job", Planned, &e)
        .await
        .unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::NotFound);
    // A state change keeps the escalation.
    let t = JobTransition {
        from: Planned,
        to: Queued,
        at: "2026-12-01T10:00:02Z".into(),
        attempt: 0,
    };
    assert!(store.transition_job(&job.id, &t).await.unwrap());
    assert_eq!(
        store.job(&job.id).await.unwrap().unwrap().escalation,
        Some(e)
    );
}

async fn outbox(store: Arc<dyn Store>, _url: &str, fx: &Fixture) {
    assert!(store.outbox(10).await.unwrap().is_empty());
    commit_windows(store.as_ref(), fx, 2).await;
    let all = store.outbox(1000).await.unwrap();
    let n1 = commit_of(fx, 1).jobs.len();
    let n2 = commit_of(fx, 2).jobs.len();
    assert_eq!(all.len(), n1 + n2);
    assert!(all.iter().all(|j| j.state == JobState::Planned));
    assert!(all.is_sorted_by_key(|j| (j.window, j.id.clone())));
    assert_eq!(all[0].window, 1);
    assert_eq!(all.last().unwrap().window, 2);
    // A limited page is a prefix.
    let page = store.outbox(2).await.unwrap();
    assert_eq!(page, all[..2]);
    // Dispatched jobs leave the outbox; doing it twice moves nothing.
    let ids: Vec<String> = page.iter().map(|j| j.id.clone()).collect();
    let at = "2026-12-01T10:00:00Z";
    assert_eq!(store.mark_dispatched(&ids, at).await.unwrap(), 2);
    assert_eq!(store.mark_dispatched(&ids, at).await.unwrap(), 0);
    assert_eq!(store.outbox(1000).await.unwrap(), all[2..]);
    let queued = store
        .jobs(&JobFilter {
            state: Some(JobState::Queued),
            ..JobFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(queued.iter().map(|j| j.id.clone()).collect::<Vec<_>>(), ids);
    // Filters combine.
    let globex = store
        .jobs(&JobFilter {
            tenant: Some(GLOBEX.into()),
            ..JobFilter::default()
        })
        .await
        .unwrap();
    assert!(!globex.is_empty() && globex.iter().all(|j| j.tenant == GLOBEX));
    let artifact = globex[0].artifact.clone();
    let acme_same_artifact = store
        .jobs(&JobFilter {
            tenant: Some(ACME.into()),
            artifact: Some(artifact.clone()),
            state: Some(JobState::Planned),
            limit: None,
        })
        .await
        .unwrap();
    assert!(acme_same_artifact
        .iter()
        .all(|j| j.tenant == ACME && j.artifact == artifact && j.state == JobState::Planned));
    let expected = all
        .iter()
        .filter(|j| j.tenant == ACME && j.artifact == artifact && !ids.contains(&j.id))
        .count();
    assert_eq!(acme_same_artifact.len(), expected);
}

async fn cursors(store: Arc<dyn Store>, _url: &str, _fx: &Fixture) {
    assert_eq!(store.cursor("subscriber-a").await.unwrap(), None);
    assert!(store.set_cursor("subscriber-a", None, 5).await.unwrap());
    // Created once only.
    assert!(!store.set_cursor("subscriber-a", None, 6).await.unwrap());
    // A stale expectation does not move it.
    assert!(!store.set_cursor("subscriber-a", Some(4), 6).await.unwrap());
    assert_eq!(store.cursor("subscriber-a").await.unwrap(), Some(5));
    assert!(store.set_cursor("subscriber-a", Some(5), 6).await.unwrap());
    assert_eq!(store.cursor("subscriber-a").await.unwrap(), Some(6));
    assert!(!store.set_cursor("subscriber-b", Some(0), 1).await.unwrap());
    assert_eq!(store.cursor("subscriber-b").await.unwrap(), None);
}

async fn ledger_chain(store: Arc<dyn Store>, _url: &str, fx: &Fixture) {
    assert_eq!(
        verify(store.as_ref()).await.unwrap(),
        Verdict::Valid {
            entries: 0,
            head: None
        }
    );
    commit_windows(store.as_ref(), fx, 3).await;
    let records = store.read_ledger(0, 10).await.unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].entry.prev_hash, recheck::model::GENESIS);
    for pair in records.windows(2) {
        assert_eq!(pair[1].entry.prev_hash, pair[0].entry.hash);
    }
    assert_eq!(store.read_ledger(1, 1).await.unwrap(), records[1..2]);
    // The chain is a function of the payloads alone: every backend derives
    // the same hashes from the same windows.
    let mut prev = None;
    for (w, record) in records.iter().enumerate() {
        let c = commit_of(fx, w + 1);
        let expected =
            recheck::model::LedgerEntry::next(prev.as_ref(), c.window, c.seq, &c.payload());
        assert_eq!(record.entry, expected);
        prev = Some(expected);
    }
    assert_eq!(
        verify(store.as_ref()).await.unwrap(),
        Verdict::Valid {
            entries: 3,
            head: Some(records[2].entry.clone())
        }
    );
}

async fn impact_queries(store: Arc<dyn Store>, _url: &str, fx: &Fixture) {
    commit_windows(store.as_ref(), fx, 2).await;
    let snapshot = expected_snapshot(fx, 2);
    let sample = snapshot
        .iter()
        .find(|f| f.tenant == GLOBEX && f.purl.is_some())
        .unwrap()
        .clone();
    let purl = sample.purl.clone().unwrap();
    let base = sample.purl_base().unwrap().to_string();
    let mut queries = Vec::new();
    for tenant in [ACME, GLOBEX, "initech"] {
        let t = tenant.to_string();
        queries.extend([
            ImpactQuery::Artifact {
                tenant: t.clone(),
                artifact: sample.artifact.clone(),
            },
            ImpactQuery::Advisory {
                tenant: t.clone(),
                advisory: sample.advisory.clone(),
            },
            ImpactQuery::Vulnerability {
                tenant: t.clone(),
                vulnerability: sample.vulnerability.clone(),
            },
            ImpactQuery::Purl {
                tenant: t.clone(),
                purl: purl.clone(),
            },
            ImpactQuery::Purl {
                tenant: t.clone(),
                purl: base.clone(),
            },
        ]);
    }
    for f in &snapshot {
        queries.push(ImpactQuery::Advisory {
            tenant: f.tenant.clone(),
            advisory: f.advisory.clone(),
        });
    }
    let mut nonempty = 0;
    for q in &queries {
        let got = store.impact(q).await.unwrap();
        let expected: Vec<ImpactFinding> =
            snapshot.iter().filter(|f| q.matches(f)).cloned().collect();
        assert_eq!(got, expected, "{q:?}");
        assert!(
            got.iter().all(|f| f.tenant == q.tenant()),
            "{q:?} leaks tenants"
        );
        nonempty += usize::from(!got.is_empty());
    }
    assert!(
        nonempty > queries.len() / 2,
        "the queries must find something"
    );
    // The same artifact in two tenants: each sees only its own rows.
    let by_artifact = |tenant: &str| ImpactQuery::Artifact {
        tenant: tenant.into(),
        artifact: sample.artifact.clone(),
    };
    let acme_rows = store.impact(&by_artifact(ACME)).await.unwrap();
    let globex_rows = store.impact(&by_artifact(GLOBEX)).await.unwrap();
    assert!(!acme_rows.is_empty() && !globex_rows.is_empty());
    assert!(acme_rows.iter().all(|f| f.tenant == ACME));
    // acme's VEX suppressed a row that stays affected for globex.
    assert!(acme_rows
        .iter()
        .any(|f| f.status == recheck::model::FindingStatus::Suppressed));
    assert!(globex_rows
        .iter()
        .all(|f| f.status == recheck::model::FindingStatus::Affected));
    // A purl without version finds every row the exact purl finds.
    let by_purl = |purl: &str| ImpactQuery::Purl {
        tenant: GLOBEX.into(),
        purl: purl.into(),
    };
    let exact = store.impact(&by_purl(&purl)).await.unwrap();
    assert!(!exact.is_empty());
    let any_version = store.impact(&by_purl(&base)).await.unwrap();
    assert!(exact.iter().all(|f| any_version.contains(f)));
}

async fn events(store: Arc<dyn Store>, _url: &str, _fx: &Fixture) {
    let event = StoredEvent {
        id: "evt-1".into(),
        tenant: ACME.into(),
        job: "job-1".into(),
        kind: "recheck.job.completed@1".into(),
        occurred_at: "2026-12-01T10:01:00Z".into(),
        body: b"{\"payloadType\":\"application/vnd.in-toto+json\",\"sig\":\"\x00\xff\"}".to_vec(),
    };
    assert_eq!(store.event("evt-1").await.unwrap(), None);
    assert!(store.put_event(&event).await.unwrap());
    let mut changed = event.clone();
    changed.body = b"other".to_vec();
    assert!(!store.put_event(&changed).await.unwrap());
    assert_eq!(store.event("evt-1").await.unwrap(), Some(event));
}

async fn schedules_and_runs(store: Arc<dyn Store>, _url: &str, _fx: &Fixture) {
    let schedule = |id: &str, tenant: &str| Schedule {
        id: id.into(),
        tenant: tenant.into(),
        cron: "0 3 * * *".into(),
        timezone: "Europe/Berlin".into(),
        mode: JobKind::Reevaluate,
        selector: serde_json::from_value(
            serde_json::json!({"labels": {"env": "prod"}, "namespaces": ["shop"]}),
        )
        .unwrap(),
        enabled: true,
        created_at: "2026-12-01T00:00:00Z".into(),
    };
    assert_eq!(store.schedule("s-1").await.unwrap(), None);
    for (id, tenant) in [("s-2", ACME), ("s-1", ACME), ("s-3", GLOBEX)] {
        store.put_schedule(&schedule(id, tenant)).await.unwrap();
    }
    let mut edited = schedule("s-1", ACME);
    edited.enabled = false;
    edited.mode = JobKind::Rescan;
    store.put_schedule(&edited).await.unwrap();
    assert_eq!(store.schedule("s-1").await.unwrap(), Some(edited.clone()));
    let ids = |v: Vec<Schedule>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.schedules(Some(ACME)).await.unwrap()),
        ["s-1", "s-2"]
    );
    assert_eq!(
        ids(store.schedules(None).await.unwrap()),
        ["s-1", "s-2", "s-3"]
    );
    assert!(store.delete_schedule("s-2").await.unwrap());
    assert!(!store.delete_schedule("s-2").await.unwrap());
    assert_eq!(ids(store.schedules(Some(ACME)).await.unwrap()), ["s-1"]);

    let mut run = Run {
        id: "r-1".into(),
        tenant: GLOBEX.into(),
        schedule: Some("s-3".into()),
        trigger: RunTrigger::Cron,
        mode: JobKind::Reevaluate,
        selector: Selector::all(),
        reason: None,
        window: Some(3),
        state: RunState::Planning,
        created_at: "2026-12-01T03:00:00Z".into(),
        counters: BTreeMap::new(),
        jobs: Vec::new(),
    };
    store.put_run(&run).await.unwrap();
    run.state = RunState::Completed;
    run.counters.insert("artifacts".into(), 3);
    run.counters.insert("jobs".into(), 2);
    run.jobs = vec!["a".repeat(64), "b".repeat(64)];
    store.put_run(&run).await.unwrap();
    assert_eq!(store.run("r-1").await.unwrap(), Some(run.clone()));
    assert_eq!(store.runs(Some(GLOBEX)).await.unwrap(), vec![run]);
    assert!(store.runs(Some(ACME)).await.unwrap().is_empty());
    assert_eq!(store.run("r-2").await.unwrap(), None);
}

/// A run of `id` over `artifacts` (tenant, artifact) as of window 1.
fn run_commit(id: &str, artifacts: &[(String, String)], cursor: u64) -> RunCommit {
    let mut jobs: Vec<RecheckJob> = artifacts
        .iter()
        .map(|(t, a)| {
            RecheckJob::for_run(
                id,
                t,
                a,
                1,
                JobKind::Rescan,
                Priority::Normal,
                "2026-12-01T04:00:00Z".into(),
            )
        })
        .collect();
    jobs.sort_by(|a, b| a.id.cmp(&b.id));
    RunCommit {
        run: Run {
            id: id.into(),
            tenant: ACME.into(),
            schedule: Some("nightly".into()),
            trigger: RunTrigger::Cron,
            mode: JobKind::Rescan,
            selector: Selector {
                tenant: Some(ACME.into()),
                ..Selector::default()
            },
            reason: Some("nightly".into()),
            window: Some(1),
            state: RunState::Queued,
            created_at: "2026-12-01T03:00:00Z".into(),
            counters: [("jobs".to_string(), jobs.len() as u64)].into(),
            jobs: jobs.iter().map(|j| j.id.clone()).collect(),
        },
        jobs,
        cursors: vec![CursorMove {
            name: "schedule:nightly".into(),
            position: cursor,
        }],
    }
}

async fn run_commits(store: Arc<dyn Store>, _url: &str, fx: &Fixture) {
    commit_windows(store.as_ref(), fx, 1).await;
    let window_jobs = store.outbox(1000).await.unwrap();
    let artifacts: Vec<(String, String)> = window_jobs
        .iter()
        .filter(|j| j.tenant == ACME)
        .map(|j| (j.tenant.clone(), j.artifact.clone()))
        .collect();
    assert!(artifacts.len() >= 2, "{artifacts:?}");
    let commit = run_commit("run-1", &artifacts, 1_796_094_000);
    assert_eq!(
        store.commit_run(&commit).await.unwrap(),
        RunOutcome::Committed {
            new_jobs: artifacts.len()
        }
    );
    assert_eq!(store.run("run-1").await.unwrap(), Some(commit.run.clone()));
    assert_eq!(
        store.cursor("schedule:nightly").await.unwrap(),
        Some(1_796_094_000)
    );
    // The run's jobs are in the outbox beside the window's, with other ids.
    let outbox = store.outbox(1000).await.unwrap();
    assert_eq!(outbox.len(), window_jobs.len() + artifacts.len());
    for job in &commit.jobs {
        let stored = store.job(&job.id).await.unwrap().unwrap();
        assert_eq!(&stored, job);
        assert_eq!(stored.run.as_deref(), Some("run-1"));
        assert!(window_jobs.iter().all(|w| w.id != job.id));
    }
    // The same run again (a second scheduler, a restart) writes nothing, not
    // even other jobs or a cursor move.
    let mut again = run_commit("run-1", &artifacts[..1], 1_796_097_600);
    again.run.reason = Some("again".into());
    assert_eq!(
        store.commit_run(&again).await.unwrap(),
        RunOutcome::AlreadyExists {
            run: Box::new(commit.run.clone())
        }
    );
    assert_eq!(store.outbox(1000).await.unwrap(), outbox);
    assert_eq!(
        store.cursor("schedule:nightly").await.unwrap(),
        Some(1_796_094_000)
    );
    // An inconsistent commit is refused whole.
    let mut bad = run_commit("run-2", &artifacts, 1_796_097_600);
    bad.jobs[0].run = Some("run-1".into());
    let err = store.commit_run(&bad).await.unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Invalid, "{err}");
    let mut unsorted = run_commit("run-2", &artifacts, 1_796_097_600);
    unsorted.run.jobs.reverse();
    let err = store.commit_run(&unsorted).await.unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Invalid, "{err}");
    assert_eq!(store.run("run-2").await.unwrap(), None);
    assert_eq!(store.outbox(1000).await.unwrap(), outbox);
    // A run's jobs are not a window's: a window commit refuses them.
    let mut window = commit_of(fx, 2);
    window.jobs.push(RecheckJob {
        window: 2,
        ..commit.jobs[0].clone()
    });
    let err = store.commit_window(&window).await.unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Invalid, "{err}");
    // A run with no jobs is still recorded.
    let empty = run_commit("run-3", &[], 1_796_101_200);
    assert_eq!(
        store.commit_run(&empty).await.unwrap(),
        RunOutcome::Committed { new_jobs: 0 }
    );
    assert_eq!(store.runs(Some(ACME)).await.unwrap().len(), 2);
}

/// Every snapshot record is the log's record at its seq, and none is a
/// removed or withdrawn document; returns the records by kind.
async fn snapshot_kinds(store: &dyn Store) -> BTreeMap<String, usize> {
    let head = store.input_snapshot().await.unwrap().unwrap();
    let rows = store.read_input_snapshot(0, 100_000).await.unwrap();
    assert_eq!(rows.len() as u64, head.records);
    assert!(rows.is_sorted_by(|a, b| a.seq < b.seq));
    let mut kinds = BTreeMap::new();
    for row in &rows {
        assert!(row.seq <= head.seq);
        let logged = store.read_inputs(row.seq, 1).await.unwrap();
        assert_eq!(
            &logged[0], row,
            "snapshot row {} is the log's record",
            row.seq
        );
        if let InputRecord::Advisory { advisory } = row.log_entry().unwrap().record {
            assert!(advisory.withdrawn.is_none(), "{} is withdrawn", advisory.id);
            assert_ne!(advisory.id, WITHDRAWN, "removed in window 3");
        }
        *kinds.entry(row.kind.clone()).or_default() += 1;
    }
    kinds
}

async fn input_snapshot(store: Arc<dyn Store>, _url: &str, fx: &Fixture) {
    assert_eq!(store.input_snapshot().await.unwrap(), None);
    assert!(store.read_input_snapshot(0, 10).await.unwrap().is_empty());
    // Nothing committed yet: nothing to compact.
    for records in &fx.windows {
        append_records(store.as_ref(), records, &[]).await.unwrap();
    }
    assert_eq!(compact(store.as_ref()).await.unwrap(), None);
    commit_windows(store.as_ref(), fx, 3).await;
    let head = compact(store.as_ref()).await.unwrap().unwrap();
    assert_eq!((head.seq, head.window), (closing_seq(fx, 3), 3));
    let advisories = fx.windows[0]
        .iter()
        .filter(|r| matches!(r, InputRecord::Advisory { advisory } if advisory.withdrawn.is_none()))
        .count();
    let sboms = fx.windows[0]
        .iter()
        .filter(|r| matches!(r, InputRecord::Sbom { .. }))
        .count();
    let kinds = snapshot_kinds(store.as_ref()).await;
    assert_eq!(kinds.get("advisory"), Some(&(advisories - 1)));
    assert_eq!(kinds.get("sbom"), Some(&sboms));
    assert_eq!(kinds.get("vex"), Some(&(fx.windows[1].len() - 1)));
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    // Compacting again with nothing new changes nothing.
    assert_eq!(compact(store.as_ref()).await.unwrap(), Some(head));

    // Window 4 removes the VEX document, re-sends an SBOM and removes the
    // globex artifact; compaction folds just that tail in.
    let (vex_scope, vex_doc) = fx.windows[1]
        .iter()
        .find_map(|r| match r {
            InputRecord::Vex {
                scope, document, ..
            } => Some((scope.clone(), document.clone())),
            _ => None,
        })
        .unwrap();
    let resent = fx.windows[0]
        .iter()
        .find(|r| matches!(r, InputRecord::Sbom { tenant, .. } if tenant == ACME))
        .unwrap()
        .clone();
    let globex_artifact = fx.windows[0]
        .iter()
        .find_map(|r| match r {
            InputRecord::Sbom { tenant, sbom } if tenant == GLOBEX => {
                Some(sbom.artifact.id.clone())
            }
            _ => None,
        })
        .unwrap();
    let w4 = vec![
        InputRecord::VexRemoved {
            scope: vex_scope,
            document: vex_doc,
        },
        resent,
        InputRecord::ArtifactRemoved {
            tenant: GLOBEX.into(),
            artifact: globex_artifact,
        },
        InputRecord::WindowClosed {
            window: 4,
            closed_at: None,
        },
    ];
    let seqs = append_records(store.as_ref(), &w4, &[]).await.unwrap();
    store
        .commit_window(&WindowCommit::new(
            4,
            seqs[3],
            Vec::new(),
            Vec::new(),
            Vec::new(),
        ))
        .await
        .unwrap();
    let moved = compact(store.as_ref()).await.unwrap().unwrap();
    assert_eq!((moved.seq, moved.window), (seqs[3], 4));
    let kinds = snapshot_kinds(store.as_ref()).await;
    assert_eq!(kinds.get("vex"), None);
    assert_eq!(kinds.get("sbom"), Some(&(sboms - 1)));
    let rows = store.read_input_snapshot(0, 1000).await.unwrap();
    assert!(
        rows.iter().any(|r| r.seq == seqs[1]),
        "the re-sent SBOM at its new seq"
    );
    // Paging by seq.
    let page = store.read_input_snapshot(rows[2].seq, 2).await.unwrap();
    assert_eq!(page, rows[2..4]);

    // A compaction from a stale base moves nothing; a bad one is refused.
    let stale = SnapshotUpdate {
        base: Some(head.seq),
        seq: seqs[3],
        window: 4,
        put: Vec::new(),
        delete: vec![r#"["advisory","X"]"#.into()],
    };
    assert!(!store.compact_inputs(&stale).await.unwrap());
    let outside = SnapshotUpdate {
        base: Some(moved.seq),
        seq: moved.seq + 1,
        window: 5,
        put: vec![SnapshotRow {
            key: r#"["advisory","Y"]"#.into(),
            entry: rows[0].clone(),
        }],
        delete: Vec::new(),
    };
    let err = store.compact_inputs(&outside).await.unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Invalid, "{err}");
    assert_eq!(store.input_snapshot().await.unwrap(), Some(moved));
}

// --------------------------------------------------------------- backends

/// One backend under test: fresh, isolated stores by URL, and a way to
/// rewrite a stored ledger payload behind the store's back.
trait Backend {
    fn name(&self) -> &'static str;
    /// A URL for a new, empty store named after `check`.
    fn fresh_url(&self, check: &str) -> String;
    /// Replace the payload bytes of ledger entry `index` (store closed).
    async fn tamper(&self, url: &str, index: u64);
    async fn cleanup(&self, url: &str);
}

/// Capacity reporting: a store that holds committed windows says how many
/// bytes it occupies (MongoDB-wire servers without `dbStats` may not know).
async fn storage_size(store: Arc<dyn Store>, _url: &str, fx: &Fixture) {
    let before = store.storage_bytes().await.unwrap();
    commit_windows(store.as_ref(), fx, 3).await;
    let after = store.storage_bytes().await.unwrap();
    match (store.backend(), before, after) {
        ("mongodb", _, None) => eprintln!("note: this MongoDB-wire server reports no dbStats size"),
        (_, Some(before), Some(after)) => {
            assert!(
                after > 0,
                "{} reports 0 bytes after 3 windows",
                store.backend()
            );
            assert!(
                after >= before,
                "{} shrank from {before} to {after}",
                store.backend()
            );
        }
        (backend, before, after) => panic!("{backend}: storage size {before:?} -> {after:?}"),
    }
}

macro_rules! run_checks {
    ($backend:expr, $($check:ident),+ $(,)?) => {{
        let fx = fixture();
        let mut passed = 0;
        $(
            let url = $backend.fresh_url(stringify!($check));
            let store = store::open(&url).await.unwrap();
            assert_eq!(store.backend(), $backend.name());
            $check(store, &url, fx).await;
            $backend.cleanup(&url).await;
            eprintln!("ok {}/{}", $backend.name(), stringify!($check));
            passed += 1;
        )+
        passed
    }};
}

async fn suite(backend: &impl Backend) {
    let passed = run_checks!(
        backend,
        input_log,
        offsets_with_append,
        window_commit,
        job_ids,
        job_transitions,
        job_escalation,
        outbox,
        cursors,
        ledger_chain,
        impact_queries,
        events,
        schedules_and_runs,
        storage_size,
        run_commits,
        input_snapshot,
    );
    // The tamper check goes around the store, so it is driven here.
    let fx = fixture();
    let url = backend.fresh_url("tamper");
    let store = store::open(&url).await.unwrap();
    commit_windows(store.as_ref(), fx, 3).await;
    assert!(matches!(
        verify(store.as_ref()).await.unwrap(),
        Verdict::Valid { entries: 3, .. }
    ));
    drop(store);
    backend.tamper(&url, 1).await;
    let store = store::open(&url).await.unwrap();
    let verdict = verify(store.as_ref()).await.unwrap();
    let Verdict::Broken {
        index,
        reason,
        verified,
    } = verdict
    else {
        panic!("tampered ledger verified: {verdict:?}");
    };
    assert_eq!((index, verified), (1, 1));
    assert!(matches!(reason, ChainBreak::PayloadHash { .. }), "{reason}");
    drop(store);
    backend.cleanup(&url).await;
    eprintln!(
        "ok {}/tamper ({} checks + tamper passed)",
        backend.name(),
        passed
    );
}

fn unique(check: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "rc_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        check
    )
}

struct Embedded {
    dir: tempfile::TempDir,
}

impl Backend for Embedded {
    fn name(&self) -> &'static str {
        "embedded"
    }

    fn fresh_url(&self, check: &str) -> String {
        let path: PathBuf = self.dir.path().join(format!("{check}.redb"));
        // Both spellings open the embedded store.
        if check.len().is_multiple_of(2) {
            format!("redb://{}", path.display())
        } else {
            path.display().to_string()
        }
    }

    async fn tamper(&self, url: &str, index: u64) {
        tamper_redb(Path::new(url.strip_prefix("redb://").unwrap_or(url)), index);
    }

    async fn cleanup(&self, url: &str) {
        let path = url.strip_prefix("redb://").unwrap_or(url);
        std::fs::remove_file(path).unwrap();
    }
}

#[tokio::test]
async fn embedded_store_conforms() {
    let backend = Embedded {
        dir: tempfile::tempdir().unwrap(),
    };
    suite(&backend).await;
    // A URL of another scheme is refused, not opened as a file.
    let err = store::open("sqlite:///tmp/x").await.err().unwrap();
    assert_eq!(err.kind, StoreErrorKind::Url);
}

struct Postgres {
    base: String,
}

impl Postgres {
    async fn admin(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.base, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    }
}

fn schema_of(url: &str) -> &str {
    url.rsplit_once("schema=").unwrap().1
}

impl Backend for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn fresh_url(&self, check: &str) -> String {
        format!("{}?schema={}", self.base, unique(check))
    }

    async fn tamper(&self, url: &str, index: u64) {
        tamper_postgres(&self.admin().await, schema_of(url), index).await;
    }

    async fn cleanup(&self, url: &str) {
        let client = self.admin().await;
        client
            .batch_execute(&format!("DROP SCHEMA {} CASCADE", schema_of(url)))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn postgres_store_conforms() {
    let base = std::env::var("RECHECK_POSTGRES_URI")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    if let Err(e) = tokio_postgres::connect(&base, tokio_postgres::NoTls).await {
        skip(&format!(
            "PostgreSQL not reachable at {base} ({e}): set RECHECK_POSTGRES_URI"
        ));
        return;
    }
    let backend = Postgres { base };
    suite(&backend).await;
    // Migrations are recorded once; reopening applies nothing twice.
    let url = backend.fresh_url("migrations");
    drop(store::open(&url).await.unwrap());
    drop(store::open(&url).await.unwrap());
    let versions: Vec<i32> = backend
        .admin()
        .await
        .query(
            &format!("SELECT version FROM {}.schema_migrations", schema_of(&url)),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, vec![1, 2]);
    backend.cleanup(&url).await;
}

struct Mongo {
    base: String,
}

/// `base` with its database path replaced by `db`.
fn with_database(base: &str, db: &str) -> String {
    let (head, query) = base.split_once('?').unwrap_or((base, ""));
    let scheme_end = head.find("://").unwrap() + 3;
    let hosts_end = head[scheme_end..]
        .find('/')
        .map_or(head.len(), |i| scheme_end + i);
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{}/{db}{query}", &head[..hosts_end])
}

impl Mongo {
    async fn database(&self, url: &str) -> mongodb::Database {
        let client = mongodb::Client::with_uri_str(url).await.unwrap();
        client.default_database().unwrap()
    }
}

impl Backend for Mongo {
    fn name(&self) -> &'static str {
        "mongodb"
    }

    fn fresh_url(&self, check: &str) -> String {
        with_database(&self.base, &unique(check))
    }

    async fn tamper(&self, url: &str, index: u64) {
        use mongodb::bson::{doc, Document};
        let chunks = self
            .database(url)
            .await
            .collection::<Document>("ledger_chunks");
        let id = format!("{index:020}-{:06}", 0);
        let d = chunks.find_one(doc! {"_id": &id}).await.unwrap().unwrap();
        let tampered = tamper_bytes(&d.get_binary_generic("data").unwrap().clone());
        let bytes = mongodb::bson::Binary {
            subtype: mongodb::bson::spec::BinarySubtype::Generic,
            bytes: tampered,
        };
        let r = chunks
            .update_one(doc! {"_id": &id}, doc! {"$set": {"data": bytes}})
            .await
            .unwrap();
        assert_eq!(r.modified_count, 1);
    }

    async fn cleanup(&self, url: &str) {
        self.database(url).await.drop().await.unwrap();
    }
}

#[tokio::test]
async fn mongodb_store_conforms() {
    let (_server, base) = match std::env::var("RECHECK_MONGODB_URI") {
        Ok(uri) => (None, uri),
        Err(_) => match start_secantus() {
            Ok((server, uri)) => (Some(server), uri),
            Err(e) => {
                skip(&format!(
                    "no MongoDB: {e}; set RECHECK_MONGODB_URI or install secantusdb"
                ));
                return;
            }
        },
    };
    assert_eq!(
        with_database("mongodb://h:1/?directConnection=true", "d"),
        "mongodb://h:1/d?directConnection=true"
    );
    assert_eq!(with_database("mongodb://h:1/old", "d"), "mongodb://h:1/d");
    suite(&Mongo { base }).await;
}
