//! The one conformance suite every queue backend passes: the in-process queue
//! always, NATS JetStream and Redis Streams against the real servers
//! (`RECHECK_NATS_URL`, `RECHECK_REDIS_URL`, defaulting to the local ones).
//! An unreachable server is a loud SKIP, and a failure under `CI=true`.
//!
//! Each test uses its own prefix (stream names, subjects, keys), purges it
//! before it starts (leftovers of an aborted run) and after it ends.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use recheck::queue::bench::QueueBenchConfig;
use recheck::queue::{
    self, Delivery, Depth, Enqueued, ErrorKind, Priority, Queue, QueueOptions, QueuedJob,
    TenantLimit, TenantLimits,
};
use sha2::{Digest, Sha256};

/// Short leases keep the suite quick; long enough that a busy machine does
/// not expire a lease before the test acts on it.
const LEASE: Duration = Duration::from_millis(1500);

/// Each test is done in seconds; one still running after this is hung.
const TEST_TIMEOUT: Duration = Duration::from_secs(120);

/// For the tests in which no lease may expire, however slow the machine.
const LONG_LEASE: Duration = Duration::from_secs(30);

fn long_lease(o: &mut QueueOptions) {
    o.lease = LONG_LEASE;
}

fn url(backend: &str) -> Option<(String, &'static str)> {
    let (var, default) = match backend {
        "memory" => return Some(("memory://".into(), "")),
        "nats" => ("RECHECK_NATS_URL", "nats://127.0.0.1:4222"),
        "redis" => ("RECHECK_REDIS_URL", "redis://127.0.0.1:6379"),
        other => panic!("unknown backend {other}"),
    };
    Some((std::env::var(var).unwrap_or_else(|_| default.into()), var))
}

fn options(backend: &str, test: &str) -> QueueOptions {
    QueueOptions {
        prefix: format!("rqtest_{backend}_{test}"),
        lease: LEASE,
        max_deliver: 5,
        dedup_window: Duration::from_secs(60),
        tenant_limits: TenantLimits::default(),
    }
}

/// The backend's queue with a prefix of its own, purged; `None` after a loud
/// SKIP when the server is unreachable (a failure under CI=true).
async fn open(
    backend: &str,
    test: &str,
    tweak: impl FnOnce(&mut QueueOptions),
) -> Option<Arc<dyn Queue>> {
    let (url, var) = url(backend)?;
    let mut options = options(backend, test);
    tweak(&mut options);
    match queue::open(&url, options).await {
        Ok(q) => {
            q.purge().await.unwrap();
            Some(q)
        }
        Err(e) if e.kind == ErrorKind::Connect => {
            let msg = format!("{backend} queue at {url} unreachable ({e}): set {var}");
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{msg} (CI=true: an unreachable service is a failure)"
            );
            let line = format!("\n!!!!! SKIP {test} on {backend}: {msg} !!!!!\n");
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
            None
        }
        Err(e) => panic!("opening {backend} queue: {e}"),
    }
}

fn at(hours: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + hours * 3600, 0).unwrap()
}

fn job(n: u32, tenant: &str, priority: Priority, deadline: DateTime<Utc>) -> QueuedJob {
    // Ids shaped like the planner's (sha256 hex), payload like a job's JSON.
    let job_id = format!("{n:08x}{}", "ab".repeat(28));
    let payload = format!(r#"{{"job_id":"{job_id}","tenant":"{tenant}","n":{n}}}"#);
    QueuedJob {
        job_id,
        attempt: 1,
        tenant: tenant.into(),
        priority,
        deadline,
        payload: payload.into_bytes(),
    }
}

fn n_of(d: &Delivery) -> u32 {
    u32::from_str_radix(&d.job.job_id[..8], 16).unwrap()
}

/// Lease until `want` deliveries arrived or `timeout` passed.
async fn lease_until(
    q: &dyn Queue,
    consumer: &str,
    want: usize,
    timeout: Duration,
) -> Vec<Delivery> {
    let end = Instant::now() + timeout;
    let mut got = Vec::new();
    while got.len() < want && Instant::now() < end {
        let batch = q.lease(consumer, want - got.len()).await.unwrap();
        if batch.is_empty() {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        got.extend(batch);
    }
    got
}

async fn enqueue_all(q: &dyn Queue, jobs: impl IntoIterator<Item = QueuedJob>) {
    for j in jobs {
        assert_eq!(q.enqueue(j).await.unwrap(), Enqueued::Accepted);
    }
}

/// Normal-priority jobs `ns` of `tenant`, deadlines in the order of `ns`.
async fn enqueue_normal(q: &dyn Queue, tenant: &str, ns: std::ops::Range<u32>) {
    enqueue_all(
        q,
        ns.map(|n| job(n, tenant, Priority::Normal, at(n as i64))),
    )
    .await;
}

/// Jobs survive a consumer that takes them and disappears: every job is
/// eventually acked, the abandoned ones on their second delivery.
async fn at_least_once_delivery(backend: &str) {
    let Some(q) = open(backend, "alo", |_| {}).await else {
        return;
    };
    let tenants = ["acme", "globex"];
    enqueue_all(
        &*q,
        (0..20).map(|n| job(n, tenants[n as usize % 2], Priority::Normal, at(n as i64))),
    )
    .await;
    let first = lease_until(&*q, "crashy", 10, Duration::from_secs(5)).await;
    assert_eq!(first.len(), 10);
    let mut acked = BTreeMap::new();
    let mut abandoned = BTreeSet::new();
    for d in first {
        assert_eq!(d.deliveries, 1);
        if n_of(&d).is_multiple_of(2) {
            q.ack(&d.token).await.unwrap();
            acked.insert(n_of(&d), d.deliveries);
        } else {
            abandoned.insert(n_of(&d));
        }
    }
    // The other worker drains everything, including what "crashy" dropped.
    let end = Instant::now() + Duration::from_secs(15);
    while acked.len() < 20 && Instant::now() < end {
        for d in lease_until(&*q, "steady", 20, Duration::from_millis(200)).await {
            assert!(
                acked.insert(n_of(&d), d.deliveries).is_none(),
                "job {} acked twice",
                n_of(&d)
            );
            q.ack(&d.token).await.unwrap();
        }
    }
    assert_eq!(
        acked.keys().copied().collect::<Vec<_>>(),
        (0..20).collect::<Vec<_>>()
    );
    for (n, deliveries) in &acked {
        let expected = if abandoned.contains(n) { 2 } else { 1 };
        assert_eq!(*deliveries, expected, "deliveries of job {n}");
    }
    for t in tenants {
        assert_eq!(q.depth(t).await.unwrap(), Depth::default(), "depth of {t}");
    }
    q.purge().await.unwrap();
}

/// The same (job id, attempt) twice is one delivery; a new attempt is not a
/// duplicate; an acked job enqueued again within the window stays a duplicate.
async fn deduplication(backend: &str) {
    let Some(q) = open(backend, "dedup", long_lease).await else {
        return;
    };
    let j = job(1, "acme", Priority::High, at(1));
    assert_eq!(q.enqueue(j.clone()).await.unwrap(), Enqueued::Accepted);
    assert_eq!(q.enqueue(j.clone()).await.unwrap(), Enqueued::Duplicate);
    let retry = QueuedJob {
        attempt: 2,
        ..j.clone()
    };
    assert_eq!(q.enqueue(retry.clone()).await.unwrap(), Enqueued::Accepted);
    assert_eq!(q.depth("acme").await.unwrap().pending, 2);

    let got = lease_until(&*q, "w", 3, Duration::from_secs(1)).await;
    let mut attempts: Vec<u32> = got.iter().map(|d| d.job.attempt).collect();
    attempts.sort();
    assert_eq!(attempts, vec![1, 2]);
    let first = got.iter().find(|d| d.job.attempt == 1).unwrap();
    assert_eq!(first.job, j, "the job comes back unchanged");
    for d in &got {
        q.ack(&d.token).await.unwrap();
    }
    assert_eq!(q.enqueue(j).await.unwrap(), Enqueued::Duplicate);
    assert!(q.lease("w", 10).await.unwrap().is_empty());
    q.purge().await.unwrap();
}

/// An un-acked lease expires and the job comes back; `extend` holds it; an
/// acked job never comes back.
async fn lease_expiry_and_redelivery(backend: &str) {
    let Some(q) = open(backend, "lease", |_| {}).await else {
        return;
    };
    q.enqueue(job(7, "acme", Priority::Normal, at(3)))
        .await
        .unwrap();
    let started = Instant::now();
    let d1 = lease_until(&*q, "a", 1, Duration::from_secs(1))
        .await
        .remove(0);
    assert_eq!((n_of(&d1), d1.deliveries), (7, 1));
    assert!(
        q.lease("b", 1).await.unwrap().is_empty(),
        "leased job handed out twice"
    );
    assert_eq!(
        q.depth("acme").await.unwrap(),
        Depth {
            pending: 0,
            leased: 1,
            dead_lettered: 0
        }
    );

    // A heartbeat two thirds into the lease carries it past its first end.
    tokio::time::sleep(LEASE * 2 / 3).await;
    q.extend(&d1.token).await.unwrap();
    tokio::time::sleep(LEASE / 2).await;
    assert!(
        q.lease("b", 1).await.unwrap().is_empty(),
        "extended lease expired"
    );

    let d2 = lease_until(&*q, "b", 1, LEASE * 3).await.remove(0);
    assert!(
        started.elapsed() >= LEASE * 7 / 6,
        "redelivered before the extended lease ended"
    );
    assert_eq!((n_of(&d2), d2.deliveries), (7, 2));
    assert_eq!(d2.job, d1.job);
    q.ack(&d2.token).await.unwrap();
    assert!(lease_until(&*q, "b", 1, LEASE + Duration::from_millis(500))
        .await
        .is_empty());
    assert_eq!(q.depth("acme").await.unwrap(), Depth::default());
    q.purge().await.unwrap();
}

/// `nak` with a delay hides the job for that long; `nak` without one hands it
/// out again at once.
async fn nak_with_delay(backend: &str) {
    let Some(q) = open(backend, "nak", long_lease).await else {
        return;
    };
    q.enqueue(job(3, "acme", Priority::High, at(1)))
        .await
        .unwrap();
    let d1 = lease_until(&*q, "w", 1, Duration::from_secs(1))
        .await
        .remove(0);
    let delay = Duration::from_millis(1000);
    let nacked = Instant::now();
    q.nak(&d1.token, delay).await.unwrap();
    assert!(
        q.lease("w", 1).await.unwrap().is_empty(),
        "delayed job handed out early"
    );
    let d2 = lease_until(&*q, "w", 1, delay * 4).await.remove(0);
    assert!(
        nacked.elapsed() >= delay * 9 / 10,
        "delay not honoured: {:?}",
        nacked.elapsed()
    );
    assert_eq!((n_of(&d2), d2.deliveries), (3, 2));

    let nacked = Instant::now();
    q.nak(&d2.token, Duration::ZERO).await.unwrap();
    let at_once = Duration::from_millis(750);
    let d3 = lease_until(&*q, "w", 1, at_once).await.remove(0);
    assert!(nacked.elapsed() < at_once);
    assert_eq!(d3.deliveries, 3);
    q.ack(&d3.token).await.unwrap();
    q.purge().await.unwrap();
}

/// A dead-lettered job leaves circulation with its reason, is listed, and a
/// replay puts it back; a job that keeps failing is dead-lettered by the queue
/// itself after `max_deliver` deliveries.
async fn dead_letter_and_replay(backend: &str) {
    let Some(q) = open(backend, "dlq", |o| {
        long_lease(o);
        o.max_deliver = 2;
    })
    .await
    else {
        return;
    };
    let a = job(1, "acme", Priority::High, at(1));
    let b = job(2, "acme", Priority::Normal, at(9));
    enqueue_all(&*q, [a.clone(), b.clone()]).await;
    let d = lease_until(&*q, "w", 1, Duration::from_secs(1))
        .await
        .remove(0);
    assert_eq!(d.job, a);
    q.dead_letter(&d.token, "executor: HTTP 400 Bad Request")
        .await
        .unwrap();

    let dead = q.list_dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].job, a);
    assert_eq!(dead[0].reason, "executor: HTTP 400 Bad Request");
    assert_eq!(dead[0].deliveries, 1);
    assert!((Utc::now() - dead[0].dead_lettered_at).num_seconds().abs() < 60);
    assert_eq!(
        q.depth("acme").await.unwrap(),
        Depth {
            pending: 1,
            leased: 0,
            dead_lettered: 1
        }
    );

    let rest = lease_until(&*q, "w", 2, Duration::from_millis(500)).await;
    assert_eq!(
        rest.iter().map(|d| d.job.clone()).collect::<Vec<_>>(),
        vec![b.clone()]
    );
    q.ack(&rest[0].token).await.unwrap();

    q.replay_dead_letter(&dead[0].id).await.unwrap();
    assert!(q.list_dead_letters(10).await.unwrap().is_empty());
    let again = lease_until(&*q, "w", 1, Duration::from_secs(1))
        .await
        .remove(0);
    assert_eq!((again.job.clone(), again.deliveries), (a, 1));
    q.ack(&again.token).await.unwrap();
    let err = q.replay_dead_letter(&dead[0].id).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);

    // Poison job: two deliveries allowed, the third is a dead letter.
    let c = job(3, "acme", Priority::Normal, at(10));
    q.enqueue(c.clone()).await.unwrap();
    for round in 1..=2 {
        let d = lease_until(&*q, "w", 1, Duration::from_secs(1))
            .await
            .remove(0);
        assert_eq!((d.job.clone(), d.deliveries), (c.clone(), round));
        q.nak(&d.token, Duration::ZERO).await.unwrap();
    }
    assert!(lease_until(&*q, "w", 1, Duration::from_millis(500))
        .await
        .is_empty());
    let dead = q.list_dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].job, c);
    assert_eq!(dead[0].deliveries, 2);
    assert!(
        dead[0].reason.contains("max_deliver 2"),
        "{}",
        dead[0].reason
    );
    assert_eq!(
        q.depth("acme").await.unwrap(),
        Depth {
            pending: 0,
            leased: 0,
            dead_lettered: 1
        }
    );
    q.purge().await.unwrap();
}

/// Within a tenant the most urgent work goes first, whatever the enqueue
/// order across classes (within a class jobs arrive in deadline order, as the
/// planner produces them: see the `queue` module docs).
async fn edf_within_tenant(backend: &str) {
    let Some(q) = open(backend, "edf", long_lease).await else {
        return;
    };
    let plan = [
        (1, Priority::Normal, 24),
        (2, Priority::High, 4),
        (3, Priority::Emergency, 1),
        (4, Priority::Normal, 25),
        (5, Priority::High, 5),
        (6, Priority::Emergency, 2),
    ];
    enqueue_all(&*q, plan.map(|(n, p, h)| job(n, "acme", p, at(h)))).await;
    let mut order = Vec::new();
    // One at a time, then the rest in one batch: both orders agree.
    for _ in 0..3 {
        let d = lease_until(&*q, "w", 1, Duration::from_secs(1))
            .await
            .remove(0);
        order.push(n_of(&d));
        q.ack(&d.token).await.unwrap();
    }
    for d in lease_until(&*q, "w", 3, Duration::from_secs(1)).await {
        order.push(n_of(&d));
        q.ack(&d.token).await.unwrap();
    }
    assert_eq!(order, vec![3, 6, 2, 5, 1, 4]);
    q.purge().await.unwrap();
}

/// A tenant with a big backlog does not starve one with a small one: a batch
/// lease takes from both in turn, and single leases alternate.
async fn fairness_across_tenants(backend: &str) {
    let Some(q) = open(backend, "fair", long_lease).await else {
        return;
    };
    enqueue_normal(&*q, "big", 0..8).await;
    enqueue_normal(&*q, "small", 10..12).await;
    let batch = lease_until(&*q, "w", 4, Duration::from_secs(1)).await;
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    for d in &batch {
        *per.entry(d.job.tenant.clone()).or_default() += 1;
        q.ack(&d.token).await.unwrap();
    }
    assert_eq!(
        per,
        BTreeMap::from([("big".into(), 2), ("small".into(), 2)])
    );

    // "small" is empty now; two more of it arrive while "big" has 6 left.
    enqueue_normal(&*q, "small", 12..14).await;
    let mut tenants = Vec::new();
    for _ in 0..4 {
        let d = lease_until(&*q, "w", 1, Duration::from_secs(1))
            .await
            .remove(0);
        tenants.push(d.job.tenant.clone());
        q.ack(&d.token).await.unwrap();
    }
    assert!(
        tenants.windows(2).all(|w| w[0] != w[1]),
        "single leases did not alternate: {tenants:?}"
    );
    q.purge().await.unwrap();
}

/// A tenant at its concurrency limit is skipped (others are not held up) until
/// one of its leases ends.
async fn tenant_concurrency_limit(backend: &str) {
    let Some(q) = open(backend, "limit", |o| {
        let two = TenantLimit {
            concurrency: Some(2),
            per_second: None,
        };
        o.tenant_limits.per_tenant.insert("capped".into(), two);
    })
    .await
    else {
        return;
    };
    enqueue_normal(&*q, "capped", 0..5).await;
    enqueue_normal(&*q, "free", 10..13).await;
    let got = lease_until(&*q, "w", 5, Duration::from_secs(1)).await;
    let capped: Vec<&Delivery> = got.iter().filter(|d| d.job.tenant == "capped").collect();
    assert_eq!((capped.len(), got.len() - capped.len()), (2, 3));
    assert!(
        q.lease("w2", 10).await.unwrap().is_empty(),
        "limit not held"
    );
    assert_eq!(
        q.depth("capped").await.unwrap(),
        Depth {
            pending: 3,
            leased: 2,
            dead_lettered: 0
        }
    );

    q.ack(&capped[0].token).await.unwrap();
    let more = lease_until(&*q, "w2", 1, Duration::from_millis(500)).await;
    assert_eq!(more.len(), 1);
    assert_eq!(more[0].job.tenant, "capped");
    assert!(
        q.lease("w2", 10).await.unwrap().is_empty(),
        "limit not held after an ack"
    );

    // Both workers "crash": their expired leases stop counting, and the jobs
    // come back (most urgent first) without the limit being exceeded.
    tokio::time::sleep(LEASE).await;
    let back = lease_until(&*q, "w3", 5, LEASE * 2).await;
    let mut capped: Vec<(u32, u32)> = back
        .iter()
        .filter(|d| d.job.tenant == "capped")
        .map(|d| (n_of(d), d.deliveries))
        .collect();
    capped.sort();
    assert_eq!(
        capped,
        vec![(1, 2), (2, 2)],
        "redelivered jobs of the capped tenant"
    );
    assert_eq!(back.len(), 5, "3 jobs of the free tenant come back too");
    assert!(
        q.lease("w3", 10).await.unwrap().is_empty(),
        "limit not held after expiry"
    );
    q.purge().await.unwrap();
}

/// A tenant throttled to a number of deliveries per second gets no more in
/// any one-second window, however much it has queued, while an unthrottled
/// tenant is served at once.
async fn tenant_rate_limit(backend: &str) {
    let Some(q) = open(backend, "rate", |o| {
        long_lease(o);
        let three = TenantLimit {
            concurrency: None,
            per_second: Some(3),
        };
        o.tenant_limits.per_tenant.insert("throttled".into(), three);
    })
    .await
    else {
        return;
    };
    enqueue_normal(&*q, "throttled", 0..8).await;
    enqueue_normal(&*q, "free", 10..14).await;
    let started = Instant::now();
    let mut throttled = Vec::new();
    let mut free = 0;
    while throttled.len() < 8 && started.elapsed() < Duration::from_secs(6) {
        for d in q.lease("w", 10).await.unwrap() {
            if d.job.tenant == "throttled" {
                throttled.push(started.elapsed());
            } else {
                free += 1;
                assert!(
                    started.elapsed() < Duration::from_millis(500),
                    "free tenant held up"
                );
            }
            q.ack(&d.token).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!((throttled.len(), free), (8, 4));
    // Observed times trail the server's by a little: compare within 0.9 s.
    for (i, t) in throttled.iter().enumerate() {
        let window = throttled[i..]
            .iter()
            .filter(|u| **u - *t < Duration::from_millis(900));
        assert!(
            window.count() <= 3,
            "more than 3 in a second: {throttled:?}"
        );
    }
    // 8 jobs at 3 a second need three windows.
    assert!(throttled[7] >= Duration::from_millis(1900), "{throttled:?}");
    q.purge().await.unwrap();
}

/// The slots of one worker lease from one queue at the same time: a tenant
/// limited to one job at a time still gets exactly one.
async fn concurrent_leases_hold_a_limit(backend: &str) {
    let Some(q) = open(backend, "slots", |o| {
        long_lease(o);
        let one = TenantLimit {
            concurrency: Some(1),
            per_second: None,
        };
        o.tenant_limits.per_tenant.insert("capped".into(), one);
    })
    .await
    else {
        return;
    };
    enqueue_normal(&*q, "capped", 0..6).await;
    let slots: Vec<_> = (0..4)
        .map(|i| {
            let q = q.clone();
            tokio::spawn(async move { q.lease(&format!("slot-{i}"), 1).await.unwrap() })
        })
        .collect();
    let mut got = Vec::new();
    for slot in slots {
        got.extend(slot.await.unwrap());
    }
    let jobs: Vec<u32> = got.iter().map(n_of).collect();
    assert_eq!(jobs.len(), 1, "four slots at once, limit 1: {jobs:?}");
    q.purge().await.unwrap();
}

/// Two workers with connections of their own (as two processes would have)
/// drain one queue at the same time: each job is delivered exactly once.
async fn workers_share_one_queue(backend: &str) {
    let Some(first) = open(backend, "shared", long_lease).await else {
        return;
    };
    // The in-process queue is shared by handing out the same instance.
    let second = match url(backend) {
        Some((url, _)) if backend != "memory" => {
            let mut o = options(backend, "shared");
            long_lease(&mut o);
            queue::open(&url, o).await.unwrap()
        }
        _ => first.clone(),
    };
    let tenants = ["acme", "globex", "initech"];
    enqueue_all(
        &*first,
        (0..60).map(|n| {
            let priority = Priority::ALL[n as usize % 3];
            job(n, tenants[n as usize / 20], priority, at(n as i64))
        }),
    )
    .await;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let start = Arc::new(tokio::sync::Barrier::new(2));
    let workers = [("w1", first.clone()), ("w2", second)].map(|(name, q)| {
        let (seen, start) = (seen.clone(), start.clone());
        tokio::spawn(async move {
            start.wait().await;
            let end = Instant::now() + Duration::from_secs(10);
            while seen.lock().unwrap().len() < 60 && Instant::now() < end {
                let batch = q.lease(name, 4).await.unwrap();
                // Idle, or "working" on the batch: either way the other
                // worker gets its turn.
                tokio::time::sleep(Duration::from_millis(5)).await;
                for d in batch {
                    seen.lock().unwrap().push((n_of(&d), d.deliveries, name));
                    q.ack(&d.token).await.unwrap();
                }
            }
        })
    });
    for w in workers {
        w.await.unwrap();
    }
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    let ns: Vec<u32> = seen.iter().map(|s| s.0).collect();
    assert_eq!(
        ns,
        (0..60).collect::<Vec<_>>(),
        "each job exactly once: {seen:?}"
    );
    assert!(seen.iter().all(|s| s.1 == 1), "a job was redelivered");
    for w in ["w1", "w2"] {
        assert!(
            seen.iter().any(|s| s.2 == w),
            "{w} got nothing: not concurrent"
        );
    }
    first.purge().await.unwrap();
}

/// The benchmark pushes every job through exactly once and measures a rate.
async fn bench_drains_every_job(backend: &str) {
    let Some((url, _)) = url(backend) else { return };
    // Reachability (and the SKIP rule) as for the other tests.
    if open(backend, "bench", |_| {}).await.is_none() {
        return;
    }
    let config = QueueBenchConfig {
        jobs: 300,
        batch: 32,
        tenants: 3,
        concurrency: 8,
        ..QueueBenchConfig::default()
    };
    let m = queue::bench::run(&url, &config).await.unwrap();
    assert_eq!((m.backend, m.jobs, m.redeliveries), (backend, 300, 0));
    assert!(
        m.end_to_end_jobs_per_second > 0.0 && m.drain_seconds > 0.0,
        "{m:?}"
    );
}

/// The backlog the queue gauges sample: ready jobs per tenant and class
/// (leased ones not counted), and the oldest job's enqueue time.
async fn backlog_by_tenant_and_class(backend: &str) {
    let Some(q) = open(backend, "backlog", long_lease).await else {
        return;
    };
    assert!(q.backlog().await.unwrap().iter().all(|b| b.ready == [0; 3]));
    let before = Utc::now() - chrono::TimeDelta::seconds(2);
    enqueue_all(
        q.as_ref(),
        [
            job(1, "acme", Priority::Emergency, at(1)),
            job(2, "acme", Priority::Normal, at(2)),
            job(3, "acme", Priority::Normal, at(3)),
            job(4, "globex", Priority::High, at(4)),
        ],
    )
    .await;
    let after = Utc::now() + chrono::TimeDelta::seconds(2);
    let backlog = q.backlog().await.unwrap();
    let by: BTreeMap<&str, &queue::Backlog> =
        backlog.iter().map(|b| (b.tenant.as_str(), b)).collect();
    assert_eq!(by.len(), 2, "{backlog:?}");
    assert_eq!(by["acme"].ready, [1, 0, 2]);
    assert_eq!(by["globex"].ready, [0, 1, 0]);
    for b in &backlog {
        let oldest = b.oldest.expect("an enqueue time");
        assert!(before <= oldest && oldest <= after, "{b:?}");
    }
    // A leased job is no longer ready, but still the tenant's oldest.
    let leased = lease_until(q.as_ref(), "c", 1, Duration::from_secs(10)).await;
    assert_eq!(leased.len(), 1);
    let backlog = q.backlog().await.unwrap();
    let ready: u64 = backlog.iter().flat_map(|b| b.ready).sum();
    assert_eq!(ready, 3, "{backlog:?}");
    assert!(backlog.iter().all(|b| b.oldest.is_some()));
    q.purge().await.unwrap();
}

/// A paused tenant's jobs wait, for every handle on the queue (another
/// process's included), while other tenants' are handed out; resuming hands
/// them out again.
async fn pause_and_resume(backend: &str) {
    let Some(q) = open(backend, "pause", long_lease).await else {
        return;
    };
    // The same queue as another process opens it (memory: one process).
    let other = match backend {
        "memory" => q.clone(),
        _ => {
            let (url, _) = url(backend).unwrap();
            let mut o = options(backend, "pause");
            long_lease(&mut o);
            queue::open(&url, o).await.unwrap()
        }
    };
    enqueue_normal(q.as_ref(), "acme", 0..3).await;
    enqueue_normal(q.as_ref(), "globex", 10..12).await;
    q.set_paused("acme", true).await.unwrap();
    assert!(other.paused("acme").await.unwrap());
    assert!(!other.paused("globex").await.unwrap());
    let got = lease_until(other.as_ref(), "c", 5, Duration::from_secs(3)).await;
    let tenants: BTreeSet<&str> = got.iter().map(|d| d.job.tenant.as_str()).collect();
    assert_eq!(got.len(), 2, "{tenants:?}");
    assert_eq!(tenants, BTreeSet::from(["globex"]));
    for d in &got {
        other.ack(&d.token).await.unwrap();
    }
    assert_eq!(q.depth("acme").await.unwrap().pending, 3);
    other.set_paused("acme", false).await.unwrap();
    assert!(!q.paused("acme").await.unwrap());
    let got = lease_until(q.as_ref(), "c", 3, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|d| d.job.tenant == "acme"));
    q.purge().await.unwrap();
}

/// A concurrency limit set at run time through one handle holds for leases
/// through another, and lifting it (back to the configured, generous
/// default) hands out the rest.
async fn run_time_limits(backend: &str) {
    // NATS keeps in-flight records only when opened with a concurrency
    // limit of some kind: a generous default.
    let generous = |o: &mut QueueOptions| {
        long_lease(o);
        o.tenant_limits.default.concurrency = Some(100);
    };
    let Some(q) = open(backend, "limits", generous).await else {
        return;
    };
    let other = match backend {
        "memory" => q.clone(),
        _ => {
            let (url, _) = url(backend).unwrap();
            let mut o = options(backend, "limits");
            generous(&mut o);
            queue::open(&url, o).await.unwrap()
        }
    };
    enqueue_normal(q.as_ref(), "acme", 0..4).await;
    let one = TenantLimit {
        concurrency: Some(1),
        per_second: None,
    };
    q.set_limit("acme", one).await.unwrap();
    assert_eq!(other.limit("acme").await.unwrap(), one);
    assert_eq!(other.limit("globex").await.unwrap().concurrency, Some(100));
    let got = lease_until(other.as_ref(), "c", 4, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1, "a concurrency of 1 handed out {}", got.len());
    other.ack(&got[0].token).await.unwrap();
    let got = lease_until(other.as_ref(), "c", 4, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1);
    q.set_limit("acme", TenantLimit::default()).await.unwrap();
    assert_eq!(other.limit("acme").await.unwrap().concurrency, Some(100));
    let rest = lease_until(other.as_ref(), "c", 2, Duration::from_secs(10)).await;
    assert_eq!(rest.len(), 2);
    q.purge().await.unwrap();
}

macro_rules! conformance {
    ($backend:ident: $($test:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    // A backend call that never returns fails the test
                    // instead of hanging the run.
                    let test = super::$test(stringify!($backend));
                    tokio::time::timeout(super::TEST_TIMEOUT, test)
                        .await
                        .expect("test timed out");
                }
            )*
        }
    };
}

macro_rules! suite {
    ($($backend:ident),*) => {
        $(
            conformance!($backend:
                at_least_once_delivery,
                deduplication,
                lease_expiry_and_redelivery,
                nak_with_delay,
                dead_letter_and_replay,
                edf_within_tenant,
                fairness_across_tenants,
                tenant_concurrency_limit,
                tenant_rate_limit,
                concurrent_leases_hold_a_limit,
                workers_share_one_queue,
                bench_drains_every_job,
                backlog_by_tenant_and_class,
                pause_and_resume,
                run_time_limits,
            );
        )*
    };
}

suite!(memory, nats, redis);

/// JetStream only: a message under the queue's subjects that is not a job
/// (no job headers), ahead of a real one in the same tenant and class, never
/// surfaces, does not hold the real job up for long, and is dropped from the
/// stream rather than redelivered forever.
#[tokio::test]
async fn nats_drops_messages_that_are_not_jobs() {
    let Some(q) = open("nats", "foreign", |_| {}).await else {
        return;
    };
    let real = job(1, "acme", Priority::Normal, at(1));
    // Creates the streams first; the foreign message then sits in front.
    assert_eq!(q.depth("acme").await.unwrap(), Depth::default());
    let (url, _) = url("nats").unwrap();
    let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
    // The subject the queue uses for tenant "acme", class normal.
    let key = hex::encode(&Sha256::digest(b"acme")[..8]);
    js.publish(format!("rqtest_nats_foreign.job.{key}.normal"), "{}".into())
        .await
        .unwrap()
        .await
        .unwrap();
    q.enqueue(real.clone()).await.unwrap();
    let got = lease_until(&*q, "w", 2, Duration::from_millis(500)).await;
    assert_eq!(
        got.iter().map(|d| d.job.clone()).collect::<Vec<_>>(),
        vec![real]
    );
    q.ack(&got[0].token).await.unwrap();
    assert_eq!(
        q.depth("acme").await.unwrap(),
        Depth::default(),
        "the foreign message is still there"
    );
    q.purge().await.unwrap();
}
