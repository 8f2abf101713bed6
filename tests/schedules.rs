//! Cron schedules firing runs, on a real store (embedded, PostgreSQL in a
//! fresh schema, MongoDB-wire via SecantusDB), through the production
//! pipeline loaded with real SBOMs (the bundled samples for two tenants and
//! the shared corpus' CycloneDX examples) and artifact metadata:
//!
//! - selectors pick exactly the artifacts a naive filter over the parsed
//!   SBOMs and metadata picks, within the run's tenant, as of the last closed
//!   window; a dry run writes nothing;
//! - over two simulated days across Berlin's spring-forward change, ticking
//!   every ten minutes, each schedule fires at exactly its fire times (02:30
//!   local on the DST day fires at 03:00, the hourly schedule fires 23 times
//!   that day), disabled schedules never fire, a restart in the middle (new
//!   pipeline, new scheduler on the same store) refires nothing, and a
//!   scheduler that read a stale last-fire time fires nothing twice;
//! - every run's jobs are in the outbox (`planned`, one per selected
//!   artifact, ids unique across runs and windows).

mod common;
#[path = "common/store_fixture.rs"]
mod store_fixture;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use common::skip;
use recheck::core::pipeline::Pipeline;
use recheck::core::planner::Planner;
use recheck::core::runs::{RunError, RunPlanner, RunRequest};
use recheck::core::schedule::{cursor_name, Scheduler};
use recheck::engine::record::InputRecord;
use recheck::engine::EngineConfig;
use recheck::formats;
use recheck::model::{
    JobKind, JobState, PackageSelector, Priority, RecheckJob, Run, RunState, RunTrigger,
    RuntimeState, Sbom, Schedule, Scope, Selector,
};
use recheck::store::{JobFilter, RunOutcome};

const ACME: &str = "acme";
const GLOBEX: &str = "globex";

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The simulated clock the log writer stamps window closes with.
#[derive(Clone)]
struct SimClock(Arc<Mutex<DateTime<Utc>>>);

impl SimClock {
    fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap() = t;
    }
    fn boxed(&self) -> recheck::core::pipeline::Clock {
        let c = self.0.clone();
        Box::new(move || *c.lock().unwrap())
    }
}

/// Real SBOMs: the bundled samples for acme (all) and globex (payments-api),
/// the shared corpus' CycloneDX examples for acme.
fn sboms() -> Vec<(String, Sbom)> {
    let parse = |dir: std::path::PathBuf, tenant: &str| {
        let scope = Scope::Tenant(tenant.to_string());
        let report = formats::load::load(&[dir], |name, bytes| {
            formats::parse_sbom(name, bytes, scope.clone())
        });
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        report
            .items
            .into_iter()
            .map(|(_, s)| (tenant.to_string(), s))
            .collect::<Vec<_>>()
    };
    let samples = recheck::samples::bundled_dir().join("sboms");
    let mut out = parse(samples.clone(), ACME);
    out.extend(
        parse(samples, GLOBEX)
            .into_iter()
            .filter(|(_, s)| s.artifact.name.as_deref() == Some("payments-api")),
    );
    if let Some(data) = common::shared_data() {
        out.extend(parse(data.join("sbom/cyclonedx/bom-examples"), ACME));
    }
    out
}

/// Labels per (tenant, artifact name): a team label on everything, `env`
/// and `namespace` on some.
fn labels_for(tenant: &str, sbom: &Sbom) -> BTreeMap<String, String> {
    let name = sbom.artifact.name.clone().unwrap_or_default();
    let mut labels = BTreeMap::from([("Team".to_string(), format!("{tenant}-platform"))]);
    if name == "payments-api" || name.contains("juice") {
        labels.insert("env".into(), "prod".into());
        labels.insert("namespace".into(), "shop".into());
    }
    if name == "billing-worker" {
        labels.insert("env".into(), "staging".into());
        labels.insert("namespace".into(), "billing".into());
    }
    labels
}

fn load_records(sboms: &[(String, Sbom)]) -> Vec<InputRecord> {
    let mut records: Vec<InputRecord> = sboms
        .iter()
        .map(|(tenant, sbom)| InputRecord::Sbom {
            tenant: tenant.clone(),
            sbom: sbom.clone(),
        })
        .collect();
    for (tenant, sbom) in sboms {
        records.push(InputRecord::ArtifactMetadata {
            tenant: tenant.clone(),
            artifact: sbom.artifact.id.clone(),
            labels: labels_for(tenant, sbom),
            runtime: RuntimeState::Running,
        });
    }
    records
}

fn close(window: u64) -> InputRecord {
    InputRecord::WindowClosed {
        window,
        closed_at: None,
    }
}

fn request(tenant: &str, selector: Selector, at: &str) -> RunRequest {
    RunRequest {
        tenant: tenant.into(),
        all_tenants: false,
        schedule: None,
        trigger: RunTrigger::Policy,
        mode: JobKind::Reevaluate,
        selector,
        reason: Some("policy change".into()),
        priority: Priority::High,
        at: utc(at),
    }
}

/// What `selector` should pick for `tenant`, by a naive filter over the
/// parsed SBOMs and the labels given to them.
fn naive(sboms: &[(String, Sbom)], tenant: &str, keep: impl Fn(&Sbom) -> bool) -> Vec<String> {
    let mut out: Vec<String> = sboms
        .iter()
        .filter(|(t, s)| t == tenant && keep(s))
        .map(|(_, s)| s.artifact.id.clone())
        .collect();
    out.sort();
    out
}

fn selected(pipeline: &Pipeline, tenant: &str, selector: Selector) -> Vec<String> {
    let plan = pipeline
        .plan_run(
            &RunPlanner::default(),
            &request(tenant, selector, "2026-12-01T12:00:00Z"),
        )
        .unwrap();
    assert!(plan.jobs.iter().all(|j| j.tenant == tenant));
    let mut arts: Vec<String> = plan.jobs.iter().map(|j| j.artifact.clone()).collect();
    arts.sort();
    assert_eq!(plan.run.counters["artifacts"], arts.len() as u64);
    arts
}

fn selectors_pick_the_right_artifacts(pipeline: &mut Pipeline, sboms: &[(String, Sbom)]) {
    let has = |eco: &str, pkg: &str| {
        let (eco, pkg) = (eco.to_string(), pkg.to_string());
        move |s: &Sbom| {
            s.components
                .iter()
                .any(|c| c.ecosystem.as_ref() == Some(&eco) && c.package.as_ref() == Some(&pkg))
        }
    };
    let name_is = |n: &'static str| move |s: &Sbom| s.artifact.name.as_deref() == Some(n);
    let all_acme = naive(sboms, ACME, |_| true);
    assert!(all_acme.len() >= 3, "{all_acme:?}");
    assert_eq!(selected(pipeline, ACME, Selector::all()), all_acme);
    assert_eq!(
        selected(
            pipeline,
            ACME,
            Selector {
                tenant: Some(ACME.into()),
                ..Selector::default()
            }
        ),
        all_acme
    );
    let prod = |s: &Sbom| labels_for(ACME, s).get("env").map(String::as_str) == Some("prod");
    let by_label = Selector {
        // Label keys are case-insensitive.
        labels: [("ENV".to_string(), "prod".to_string())].into(),
        ..Selector::default()
    };
    assert_eq!(selected(pipeline, ACME, by_label), naive(sboms, ACME, prod));
    assert!(!naive(sboms, ACME, prod).is_empty());
    let shop = Selector {
        namespaces: vec!["shop".into()],
        ..Selector::default()
    };
    assert_eq!(selected(pipeline, ACME, shop), naive(sboms, ACME, prod));
    // The image purl's repository_url names the repository.
    let repo = Selector {
        repositories: vec!["registry.example.com/shop/payments-api".into()],
        ..Selector::default()
    };
    let payments = naive(sboms, ACME, name_is("payments-api"));
    assert_eq!(payments.len(), 1);
    assert_eq!(selected(pipeline, ACME, repo), payments);
    let payments_sbom = &sboms
        .iter()
        .find(|(t, s)| t == ACME && s.artifact.name.as_deref() == Some("payments-api"))
        .unwrap()
        .1;
    let digest = payments_sbom.artifact.digest.clone().unwrap();
    let by_digest = Selector {
        digests: vec![digest.to_uppercase().replace("SHA256:", "sha256:")],
        ..Selector::default()
    };
    assert_eq!(selected(pipeline, ACME, by_digest), payments);
    // Packages: OSV names, normalized (PEP 503 for PyPI).
    let django = Selector {
        packages: vec![PackageSelector {
            ecosystem: "PyPI".into(),
            name: "Django".into(),
        }],
        ..Selector::default()
    };
    let with_django = naive(sboms, ACME, has("PyPI", "django"));
    assert!(with_django.len() >= 2, "{with_django:?}");
    assert_eq!(selected(pipeline, ACME, django), with_django);
    if sboms.iter().any(|(_, s)| s.components.len() > 1000) {
        let npm = Selector {
            packages: vec![PackageSelector {
                ecosystem: "npm".into(),
                name: "express".into(),
            }],
            ..Selector::default()
        };
        let with_express = naive(sboms, ACME, has("npm", "express"));
        assert_eq!(with_express.len(), 1, "juice-shop lists express");
        assert_eq!(selected(pipeline, ACME, npm), with_express);
    }
    // Criteria combine: prod and containing Django is payments-api only.
    let both = Selector {
        labels: [("env".to_string(), "prod".to_string())].into(),
        packages: vec![PackageSelector {
            ecosystem: "PyPI".into(),
            name: "django".into(),
        }],
        ..Selector::default()
    };
    assert_eq!(selected(pipeline, ACME, both), payments);

    // Tenancy: globex sees its own payments-api only; acme cannot name
    // globex; an admin run reaches both tenants.
    let globex = selected(pipeline, GLOBEX, Selector::all());
    assert_eq!(globex, naive(sboms, GLOBEX, |_| true));
    assert_eq!(globex, payments, "the same image, in another tenant");
    let err = pipeline
        .plan_run(
            &RunPlanner::default(),
            &request(
                ACME,
                Selector {
                    tenant: Some(GLOBEX.into()),
                    ..Selector::default()
                },
                "2026-12-01T12:00:00Z",
            ),
        )
        .unwrap_err();
    assert!(matches!(err, RunError::OtherTenant { .. }), "{err}");
    let mut admin = request(ACME, Selector::all(), "2026-12-01T12:00:00Z");
    admin.all_tenants = true;
    let plan = pipeline.plan_run(&RunPlanner::default(), &admin).unwrap();
    assert_eq!(plan.jobs.len(), all_acme.len() + globex.len());
    assert_eq!(plan.run.counters["tenants"], 2);
    assert!(matches!(
        pipeline.plan_run(
            &RunPlanner::default(),
            &request(ACME, Selector::default(), "2026-12-01T12:00:00Z")
        ),
        Err(RunError::Selector(_))
    ));

    // Changes in the open window are not seen until it closes.
    let billing = naive(sboms, ACME, name_is("billing-worker"));
    let (tenant, billing_sbom) = sboms
        .iter()
        .find(|(t, s)| t == ACME && s.artifact.name.as_deref() == Some("billing-worker"))
        .unwrap();
    let mut relabel = labels_for(tenant, billing_sbom);
    relabel.insert("env".into(), "prod".into());
    let window = pipeline.last_window().unwrap();
    pipeline
        .push(&[InputRecord::ArtifactMetadata {
            tenant: tenant.clone(),
            artifact: billing[0].clone(),
            labels: relabel,
            runtime: RuntimeState::Running,
        }])
        .unwrap();
    let prod_selector = Selector {
        labels: [("env".to_string(), "prod".to_string())].into(),
        ..Selector::default()
    };
    assert_eq!(
        selected(pipeline, ACME, prod_selector.clone()),
        naive(sboms, ACME, prod)
    );
    pipeline.push(&[close(window + 1)]).unwrap();
    let mut now_prod = naive(sboms, ACME, prod);
    now_prod.extend(billing.clone());
    now_prod.sort();
    assert_eq!(selected(pipeline, ACME, prod_selector), now_prod);
}

fn schedule(id: &str, tenant: &str, cron: &str, selector: Selector, enabled: bool) -> Schedule {
    Schedule {
        id: id.into(),
        tenant: tenant.into(),
        cron: cron.into(),
        timezone: "Europe/Berlin".into(),
        mode: JobKind::Reevaluate,
        selector,
        enabled,
        created_at: "2026-03-27T23:00:00Z".into(),
    }
}

/// Tick every ten minutes through `(from, to]`; runs fired, by schedule.
fn simulate(
    pipeline: &Pipeline,
    clock: &SimClock,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    fired: &mut BTreeMap<String, Vec<Run>>,
) {
    let scheduler = Scheduler::default();
    let mut now = from;
    while now < to {
        now += TimeDelta::minutes(10);
        clock.set(now);
        let tick = scheduler.tick(pipeline, now).unwrap();
        assert!(tick.failed.is_empty(), "{:?}", tick.failed);
        assert!(tick.already.is_empty(), "{:?}", tick.already);
        for f in tick.fired {
            assert_eq!(f.missed, 0, "ticks are closer than fire times");
            fired.entry(f.schedule).or_default().push(f.run);
        }
    }
}

fn scenario(url: &str) {
    let sboms = sboms();
    let clock = SimClock(Arc::new(Mutex::new(utc("2026-03-27T22:00:00Z"))));
    let open = || {
        Pipeline::open(
            url,
            &EngineConfig::default(),
            Planner::default(),
            clock.boxed(),
        )
        .unwrap()
    };
    let mut pipeline = open();
    let mut records = load_records(&sboms);
    records.push(close(1));
    pipeline.push(&records).unwrap();
    selectors_pick_the_right_artifacts(&mut pipeline, &sboms);

    // A dry run writes nothing; starting the same request twice commits once.
    let store = pipeline.store().clone();
    let jobs_before = pipeline
        .block_on(store.jobs(&JobFilter::default()))
        .unwrap();
    let manual = request(ACME, Selector::all(), "2026-03-27T22:30:00Z");
    let dry = pipeline.plan_run(&RunPlanner::default(), &manual).unwrap();
    assert_eq!(pipeline.block_on(store.run(&dry.run.id)).unwrap(), None);
    assert_eq!(
        pipeline
            .block_on(store.jobs(&JobFilter::default()))
            .unwrap(),
        jobs_before
    );
    let (plan, outcome) = pipeline.start_run(&RunPlanner::default(), &manual).unwrap();
    assert_eq!(plan, dry, "the dry run is what a real run commits");
    assert_eq!(
        outcome,
        RunOutcome::Committed {
            new_jobs: plan.jobs.len()
        }
    );
    assert_eq!(plan.run.state, RunState::Queued);
    assert!(plan.jobs.iter().all(|j| j.priority == Priority::High
        && j.sla_deadline == "2026-03-27T23:30:00Z"
        && j.window == pipeline.last_window().unwrap()));
    let (_, again) = pipeline.start_run(&RunPlanner::default(), &manual).unwrap();
    assert!(matches!(again, RunOutcome::AlreadyExists { run } if *run == plan.run));

    let prod = Selector {
        labels: [("env".to_string(), "prod".to_string())].into(),
        ..Selector::default()
    };
    for s in [
        schedule("nightly", ACME, "30 2 * * *", Selector::all(), true),
        schedule("hourly-prod", ACME, "0 * * * *", prod, true),
        schedule(
            "globex-nightly",
            GLOBEX,
            "30 2 * * *",
            Selector::all(),
            true,
        ),
        schedule("paused", ACME, "*/10 * * * *", Selector::all(), false),
    ] {
        pipeline.block_on(store.put_schedule(&s)).unwrap();
    }

    // Day one, then a restart, then the DST day and the day after; an SBOM
    // arrives on the DST day at 12:05 UTC.
    let mut fired: BTreeMap<String, Vec<Run>> = BTreeMap::new();
    simulate(
        &pipeline,
        &clock,
        utc("2026-03-27T23:00:00Z"),
        utc("2026-03-28T18:00:00Z"),
        &mut fired,
    );
    // The embedded store's file is locked while any handle is open.
    drop(store);
    pipeline.shutdown();
    let mut pipeline = open();
    let store = pipeline.store().clone();
    assert!(pipeline.recovered().windows_skipped >= 1);
    simulate(
        &pipeline,
        &clock,
        utc("2026-03-28T18:00:00Z"),
        utc("2026-03-29T12:00:00Z"),
        &mut fired,
    );
    let (tenant, late) = {
        let (_, s) = sboms
            .iter()
            .find(|(t, s)| t == ACME && s.artifact.name.as_deref() == Some("payments-api"))
            .unwrap();
        let mut s = s.clone();
        s.artifact.id = "sha256:late-arrival".into();
        s.artifact.digest = Some("sha256:late-arrival".into());
        (ACME.to_string(), s)
    };
    clock.set(utc("2026-03-29T12:05:00Z"));
    let window = pipeline.last_window().unwrap();
    pipeline
        .push(&[InputRecord::Sbom { tenant, sbom: late }, close(window + 1)])
        .unwrap();
    simulate(
        &pipeline,
        &clock,
        utc("2026-03-29T12:00:00Z"),
        utc("2026-03-30T06:00:00Z"),
        &mut fired,
    );

    let times = |id: &str| -> Vec<String> {
        fired
            .get(id)
            .map(|runs| runs.iter().map(|r| r.created_at.clone()).collect())
            .unwrap_or_default()
    };
    // 02:30 Berlin: CET (UTC+1), on the DST day 02:30 does not exist and the
    // run fires at 03:00 CEST (01:00 UTC), then CEST (UTC+2).
    let nightly = [
        "2026-03-28T01:30:00.000Z",
        "2026-03-29T01:00:00.000Z",
        "2026-03-30T00:30:00.000Z",
    ];
    assert_eq!(times("nightly"), nightly);
    assert_eq!(times("globex-nightly"), nightly);
    assert!(
        times("paused").is_empty(),
        "a disabled schedule never fires"
    );
    let hourly = times("hourly-prod");
    // Every hour on the hour from 00:00 UTC 03-28 to 06:00 UTC 03-30: DST
    // does not change an hourly rhythm in absolute time.
    assert_eq!(hourly.len(), 24 + 24 + 6 + 1, "{hourly:?}");
    let on_dst_day = hourly
        .iter()
        .filter(|t| (*t).as_str() >= "2026-03-28T23:00:00" && (*t).as_str() < "2026-03-29T22:00:00")
        .count();
    assert_eq!(on_dst_day, 23, "the local day of the change has 23 hours");

    // Runs: acme's cover acme's artifacts, globex's globex's; the late
    // arrival is in the runs after its window closed only.
    let all_acme = naive(&sboms, ACME, |_| true).len() as u64;
    let nightly_runs = &fired["nightly"];
    assert_eq!(nightly_runs[0].counters["artifacts"], all_acme);
    assert_eq!(nightly_runs[1].counters["artifacts"], all_acme);
    assert_eq!(nightly_runs[2].counters["artifacts"], all_acme + 1);
    assert!(fired["globex-nightly"]
        .iter()
        .all(|r| r.counters["artifacts"] == 1 && r.tenant == GLOBEX));
    let late_runs = fired["hourly-prod"]
        .iter()
        .filter(|r| r.created_at.as_str() > "2026-03-29T12:05")
        .count();
    assert!(late_runs > 0);

    // Every run's jobs are in the outbox, planned, once.
    let outbox = pipeline.block_on(store.outbox(100_000)).unwrap();
    let by_id: BTreeMap<&str, &RecheckJob> = outbox.iter().map(|j| (j.id.as_str(), j)).collect();
    assert_eq!(by_id.len(), outbox.len(), "job ids are unique");
    let mut run_jobs = BTreeSet::new();
    for run in fired.values().flatten() {
        assert_eq!(run.counters["jobs"], run.jobs.len() as u64);
        for id in &run.jobs {
            let job = by_id[id.as_str()];
            assert_eq!(job.state, JobState::Planned);
            assert_eq!(job.run.as_deref(), Some(run.id.as_str()));
            assert_eq!(job.tenant, run.tenant);
            assert!(run_jobs.insert(id.clone()), "job {id} in two runs");
        }
        let stored = pipeline.block_on(store.run(&run.id)).unwrap();
        assert_eq!(stored.as_ref(), Some(run));
    }

    // A scheduler that read a stale last fire (a second scheduler racing,
    // a restart before the cursor moved) fires nothing twice.
    let name = cursor_name("nightly");
    let last = pipeline.block_on(store.cursor(&name)).unwrap();
    assert_eq!(last, Some(utc("2026-03-30T00:30:00Z").timestamp() as u64));
    let stale = utc("2026-03-29T01:00:00Z").timestamp() as u64;
    assert!(pipeline
        .block_on(store.set_cursor(&name, last, stale))
        .unwrap());
    let tick = Scheduler::default()
        .tick(&pipeline, utc("2026-03-30T06:00:00Z"))
        .unwrap();
    assert!(tick.fired.is_empty(), "{:?}", tick.fired);
    assert_eq!(
        tick.already,
        [("nightly".to_string(), fired["nightly"][2].id.clone())]
    );
    assert_eq!(pipeline.block_on(store.cursor(&name)).unwrap(), last);
    assert_eq!(pipeline.block_on(store.outbox(100_000)).unwrap(), outbox);
    drop(store);
    pipeline.shutdown();
}

#[test]
fn cron_schedules_fire_runs_on_embedded() {
    let dir = tempfile::tempdir().unwrap();
    scenario(&format!("redb://{}", dir.path().join("s.redb").display()));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn cron_schedules_fire_runs_on_postgres() {
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
    let schema = format!("rc_{}_schedules", std::process::id());
    let result = std::panic::catch_unwind(|| scenario(&format!("{base}?schema={schema}")));
    rt.block_on(admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
        .unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn cron_schedules_fire_runs_on_mongodb() {
    let (_server, base) = match std::env::var("RECHECK_MONGODB_URI") {
        Ok(uri) => (None, uri),
        Err(_) => match store_fixture::start_secantus() {
            Ok((server, uri)) => (Some(server), uri),
            Err(e) => {
                skip(&format!(
                    "no MongoDB: {e}; set RECHECK_MONGODB_URI or install secantusdb"
                ));
                return;
            }
        },
    };
    let db = format!("rc_{}_schedules", std::process::id());
    let (head, query) = base.split_once('?').unwrap_or((&base, ""));
    let url = format!("{}/{db}?{query}", head.trim_end_matches('/'));
    let result = std::panic::catch_unwind(|| scenario(&url));
    let rt = runtime();
    rt.block_on(async {
        let client = mongodb::Client::with_uri_str(&url).await.unwrap();
        client.database(&db).drop().await.unwrap();
    });
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
