//! `recheck bench`: measurements of the engine against the baselines run
//! beside it, printed as one JSON document (machine, data, measurements).
//!
//! The fleet is synthetic but real-shaped (see `fleet`): seeded, with package
//! names and version strings drawn from the advisory and SBOM corpus, going
//! through the same version and range code as production. Baselines run in
//! the same process on the same data: the reference matcher (`scan`, a hash
//! join by package followed by range evaluation, recomputing everything) and,
//! with `--sql`, DuckDB doing the instance ⋈ affected-version join.

pub mod api;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::engine::record::{InputRecord, LogEntry};
use crate::engine::{Engine, EngineConfig, EngineError};
use crate::fleet::{self, Corpus, FleetShape};
use crate::model::{Advisory, RangeEvent, Sbom, Scope, VexProduct, VexStatement, VexStatus};
use crate::scan::{tenant_of, Matcher, ScanStats};
use crate::versions::{CompiledAffected, RangeMatch};

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub instances: usize,
    pub components_per_artifact: usize,
    pub seed: u64,
    /// Changes measured for incremental latency.
    pub changes: usize,
    pub engine: EngineConfig,
    /// Also run the DuckDB baseline (needs `python3 -m pip install duckdb`).
    pub sql: bool,
    /// Where the SQL baseline writes its CSV files.
    pub scratch: PathBuf,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("no advisories to benchmark with (looked in {0})")]
    NoData(String),
    #[error("SQL baseline: {0}")]
    Sql(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("store {url}: {message}")]
    Store { url: String, message: String },
    #[error("API: {0}")]
    Api(String),
    #[error("queue {url}: {source}")]
    Queue {
        url: String,
        source: crate::queue::QueueError,
    },
}

/// Resident set size of this process, in bytes (Linux `/proc`).
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: Option<u64> = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok());
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "cpu_model": model,
        "memory_bytes": mem_kb.map(|k| k * 1024),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn measurement(
    name: &str,
    value: f64,
    unit: &str,
    baseline: Option<(&str, f64)>,
    higher_is_better: bool,
) -> Value {
    let (bname, bvalue, ratio) = match baseline {
        Some((n, v)) if v > 0.0 && value > 0.0 => {
            let ratio = if higher_is_better {
                value / v
            } else {
                v / value
            };
            (Some(n), Some(v), Some(ratio))
        }
        Some((n, v)) => (Some(n), Some(v), None),
        None => (None, None, None),
    };
    json!({
        "name": name,
        "value": value,
        "unit": unit,
        "baseline": bname,
        "baseline_value": bvalue,
        "ratio": ratio,
        "ratio_meaning": baseline.map(|_| if higher_is_better { "value / baseline (higher is better)" } else { "baseline / value (speed-up)" }),
    })
}

/// The kinds of single change whose latency is measured.
const KINDS: [&str; 5] = [
    "new_advisory",
    "modified_range",
    "withdrawal",
    "vex_statement",
    "sbom_replacement",
];

struct Fleet<'a> {
    corpus: &'a Corpus,
    shape: FleetShape,
}

impl Fleet<'_> {
    fn artifact(&self, i: usize) -> Sbom {
        fleet::artifact(self.corpus, &self.shape, i)
    }
}

/// Load the corpus advisories: the shared data if present, else the samples.
pub fn load_advisories() -> Result<(Vec<Advisory>, Vec<Sbom>, String), BenchError> {
    let (adv_paths, sbom_paths, source) = match crate::samples::shared_data_dir() {
        Some(d) => (
            vec![d.join("osv")],
            vec![
                d.join("sbom/cyclonedx/bom-examples"),
                d.join("sbom/cyclonedx/in-the-wild"),
                d.join("sbom/spdx"),
            ],
            format!("{}", d.display()),
        ),
        None => {
            let s = crate::samples::bundled_dir();
            (
                vec![s.join("advisories")],
                vec![s.join("sboms")],
                format!("{}", s.display()),
            )
        }
    };
    let advisories: Vec<Advisory> =
        crate::formats::load::load(&adv_paths, crate::formats::osv::parse_advisory)
            .items
            .into_iter()
            .map(|(_, a)| a)
            .collect();
    if advisories.is_empty() {
        return Err(BenchError::NoData(source));
    }
    let sboms = crate::formats::load::load(&sbom_paths, |n, b| {
        crate::formats::parse_sbom(n, b, Scope::Tenant("bench".into()))
    })
    .items
    .into_iter()
    .map(|(_, s)| s)
    .collect();
    Ok((advisories, sboms, source))
}

/// Run the engine suite and return the JSON report.
pub fn run_engine_suite(
    config: &BenchConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<Value, BenchError> {
    let (all_advisories, corpus_sboms, source) = load_advisories()?;
    // Hold back every 10th advisory: those arrive later as "new advisory" changes.
    let (held, loaded): (Vec<_>, Vec<_>) = all_advisories
        .into_iter()
        .enumerate()
        .partition(|(i, _)| i % 10 == 9);
    let held: Vec<Advisory> = held.into_iter().map(|(_, a)| a).collect();
    let loaded: Vec<Advisory> = loaded.into_iter().map(|(_, a)| a).collect();
    let corpus = Corpus::from_documents(
        &loaded
            .iter()
            .chain(held.iter())
            .cloned()
            .collect::<Vec<_>>(),
        &corpus_sboms,
    );
    let shape = FleetShape {
        instances: config.instances,
        components_per_artifact: config.components_per_artifact,
        tenants: 4,
        seed: config.seed,
    };
    let fleet = Fleet {
        corpus: &corpus,
        shape,
    };
    let artifacts = shape.artifacts();
    let mut measurements = Vec::new();

    // Naive baseline: the reference matcher over the same fleet.
    progress("naive full recomputation");
    let no_vex: Vec<VexStatement> = Vec::new();
    let t = Instant::now();
    let matcher = Matcher::new(&loaded, &no_vex);
    let mut stats = ScanStats::default();
    let mut naive_findings = 0usize;
    for i in 0..artifacts {
        let mut findings = BTreeSet::new();
        matcher.scan_sbom(&fleet.artifact(i), &mut stats, &mut findings);
        naive_findings += findings.len();
    }
    let naive_time = t.elapsed();
    drop(matcher);

    // Generation alone, so readers can subtract it from both.
    let t = Instant::now();
    let mut generated = 0usize;
    for i in 0..artifacts {
        generated += fleet.artifact(i).components.len();
    }
    let generation_time = t.elapsed();

    // Engine backfill: everything in one window.
    progress("engine backfill");
    let rss_before = rss_bytes().unwrap_or(0);
    let mut engine = Engine::start(&config.engine)?;
    engine.set_render(false);
    let mut seq = 0u64;
    let mut next = |record: InputRecord| {
        seq += 1;
        LogEntry { seq, record }
    };
    // Two windows, so memory splits into what instances and what findings
    // cost: the fleet's SBOMs first, then the advisories that meet them.
    let t = Instant::now();
    for i in 0..artifacts {
        let sbom = fleet.artifact(i);
        engine.apply(&next(InputRecord::Sbom {
            tenant: tenant_of(&sbom).to_string(),
            sbom,
        }))?;
    }
    let mut window = 1u64;
    engine.apply(&next(InputRecord::WindowClosed {
        window,
        closed_at: None,
    }))?;
    let rss_instances = rss_bytes().unwrap_or(0);
    for a in &loaded {
        engine.apply(&next(InputRecord::Advisory {
            advisory: a.clone(),
        }))?;
    }
    window += 1;
    let closed = engine.apply(&next(InputRecord::WindowClosed {
        window,
        closed_at: None,
    }))?;
    let backfill_time = t.elapsed();
    let engine_rows = closed.map(|c| c.deltas.rows.len()).unwrap_or(0);
    // (`closed` is gone here: the window's output is not resident engine state.)
    let rss_after = rss_bytes().unwrap_or(0);
    let resident = rss_after.saturating_sub(rss_before);
    let per_instance = rss_instances.saturating_sub(rss_before) as f64 / generated.max(1) as f64;
    let per_finding = rss_after.saturating_sub(rss_instances) as f64 / engine_rows.max(1) as f64;

    measurements.push(measurement(
        "engine.backfill.throughput",
        generated as f64 / backfill_time.as_secs_f64(),
        "instances/s",
        Some((
            "naive.full_recompute.throughput",
            generated as f64 / naive_time.as_secs_f64(),
        )),
        true,
    ));
    measurements.push(measurement(
        "engine.backfill.time",
        backfill_time.as_secs_f64(),
        "s",
        Some(("naive.full_recompute.time", naive_time.as_secs_f64())),
        false,
    ));
    measurements.push(measurement(
        "fleet.generation.time",
        generation_time.as_secs_f64(),
        "s",
        None,
        false,
    ));
    measurements.push(measurement(
        "engine.findings",
        engine_rows as f64,
        "findings",
        Some(("naive.findings", naive_findings as f64)),
        true,
    ));
    measurements.push(measurement(
        "engine.resident.total",
        resident as f64,
        "bytes",
        None,
        false,
    ));
    measurements.push(measurement(
        "engine.resident.per_instance",
        per_instance,
        "bytes/instance",
        None,
        false,
    ));
    measurements.push(measurement(
        "engine.resident.per_finding",
        per_finding,
        "bytes/finding",
        None,
        false,
    ));

    // Incremental changes, each closed immediately.
    progress("incremental changes");
    let mut latencies: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    let mut deltas_out: BTreeMap<&str, usize> = BTreeMap::new();
    let versions_of: BTreeMap<(&str, &str), &Vec<String>> = corpus
        .packages
        .iter()
        .map(|p| ((p.ecosystem.as_str(), p.package.as_str()), &p.versions))
        .collect();
    for c in 0..config.changes {
        let kind = KINDS[c % KINDS.len()];
        let k = c / KINDS.len();
        let records: Vec<InputRecord> = match kind {
            "new_advisory" => vec![InputRecord::Advisory {
                advisory: held[k % held.len()].clone(),
            }],
            "modified_range" => {
                let mut a = loaded[(k * 7) % loaded.len()].clone();
                if let Some(entry) = a.affected.first_mut() {
                    let vs = versions_of.get(&(entry.ecosystem.as_str(), entry.name.as_str()));
                    if let (Some(vs), Some(ev)) = (
                        vs,
                        entry
                            .ranges
                            .iter_mut()
                            .flat_map(|r| r.events.iter_mut())
                            .find(|e| matches!(e, RangeEvent::Fixed(_))),
                    ) {
                        *ev = RangeEvent::Fixed(vs[k % vs.len()].clone());
                    }
                }
                vec![InputRecord::Advisory { advisory: a }]
            }
            "withdrawal" => {
                let mut a = loaded[(k * 13 + 3) % loaded.len()].clone();
                a.withdrawn = Some("2026-12-01T00:00:00Z".into());
                vec![InputRecord::Advisory { advisory: a }]
            }
            "vex_statement" => {
                let sbom = fleet.artifact((k * 31) % artifacts);
                let comp = &sbom.components[k % sbom.components.len().max(1)];
                // A statement about an advisory of that component's package, so
                // it meets the findings it is written for.
                let relevant: Vec<&Advisory> = loaded
                    .iter()
                    .filter(|a| {
                        a.affected.iter().any(|e| {
                            Some(&e.ecosystem) == comp.ecosystem.as_ref()
                                && Some(&e.name) == comp.package.as_ref()
                        })
                    })
                    .collect();
                let adv = relevant
                    .get(k % relevant.len().max(1))
                    .copied()
                    .unwrap_or(&loaded[(k * 17) % loaded.len()]);
                vec![InputRecord::Vex {
                    scope: sbom.scope.clone(),
                    document: format!("bench-vex-{k}"),
                    statements: vec![VexStatement {
                        vulnerability: adv.id.clone(),
                        aliases: vec![],
                        product: VexProduct::Purl(comp.purl.clone().unwrap_or_default()),
                        subcomponent: None,
                        status: VexStatus::NotAffected,
                        justification: Some("vulnerable_code_not_present".into()),
                        impact_statement: None,
                        timestamp: Some("2026-12-01T00:00:00Z".into()),
                        source: format!("bench-vex-{k}"),
                        scope: sbom.scope.clone(),
                    }],
                }]
            }
            _ => {
                let mut sbom = fleet.artifact((k * 101) % artifacts);
                fleet::bump_component(&corpus, &mut sbom, k, k + 1);
                vec![InputRecord::Sbom {
                    tenant: tenant_of(&sbom).to_string(),
                    sbom,
                }]
            }
        };
        window += 1;
        let t = Instant::now();
        for r in records {
            engine.apply(&next(r))?;
        }
        let closed = engine.apply(&next(InputRecord::WindowClosed {
            window,
            closed_at: None,
        }))?;
        let elapsed = t.elapsed();
        latencies.entry(kind).or_default().push(elapsed);
        *deltas_out.entry(kind).or_default() += closed.map(|c| c.deltas.rows.len()).unwrap_or(0);
    }

    // The hot package: the advised package most instances carry.
    progress("hot package change");
    let hot = corpus.packages.iter().find(|p| p.advised);
    let mut hot_latency = None;
    if let Some(hot) = hot {
        if let Some(a) = loaded.iter().find(|a| {
            a.affected
                .iter()
                .any(|e| e.ecosystem == hot.ecosystem && e.name == hot.package)
        }) {
            let mut a = a.clone();
            a.withdrawn = Some("2026-12-02T00:00:00Z".into());
            window += 1;
            let t = Instant::now();
            engine.apply(&next(InputRecord::Advisory {
                advisory: a.clone(),
            }))?;
            let closed = engine.apply(&next(InputRecord::WindowClosed {
                window,
                closed_at: None,
            }))?;
            let d = t.elapsed();
            let rows = closed.map(|c| c.deltas.rows.len()).unwrap_or(0);
            hot_latency = Some((
                d,
                rows,
                format!("{} ({}/{})", a.id, hot.ecosystem, hot.package),
            ));
        }
    }
    engine.shutdown();

    let mut all: Vec<Duration> = latencies.values().flatten().copied().collect();
    all.sort();
    let naive_ms = ms(naive_time);
    measurements.push(measurement(
        "engine.incremental.latency.p50",
        ms(percentile(&all, 0.5)),
        "ms",
        Some(("naive.full_recompute.time", naive_ms)),
        false,
    ));
    measurements.push(measurement(
        "engine.incremental.latency.p99",
        ms(percentile(&all, 0.99)),
        "ms",
        Some(("naive.full_recompute.time", naive_ms)),
        false,
    ));
    for (kind, mut ls) in latencies {
        ls.sort();
        measurements.push(measurement(
            &format!("engine.incremental.{kind}.p50"),
            ms(percentile(&ls, 0.5)),
            "ms",
            None,
            false,
        ));
        measurements.push(measurement(
            &format!("engine.incremental.{kind}.p99"),
            ms(percentile(&ls, 0.99)),
            "ms",
            None,
            false,
        ));
        measurements.push(measurement(
            &format!("engine.incremental.{kind}.deltas"),
            deltas_out.get(kind).copied().unwrap_or(0) as f64,
            "rows",
            None,
            true,
        ));
    }
    if let Some((d, rows, what)) = &hot_latency {
        let mut m = measurement(
            "engine.incremental.hot_package_withdrawal",
            ms(*d),
            "ms",
            Some(("naive.full_recompute.time", naive_ms)),
            false,
        );
        m["deltas"] = json!(rows);
        m["change"] = json!(what);
        measurements.push(m);
    }

    if config.sql {
        progress("SQL baseline (DuckDB)");
        let sql = sql_baseline(&fleet, &loaded, &config.scratch)?;
        measurements.push(measurement(
            "sql.duckdb.join.time",
            sql.join_seconds * 1e3,
            "ms",
            None,
            false,
        ));
        measurements.push(measurement(
            "engine.incremental.latency.p50_vs_sql_join",
            ms(percentile(&all, 0.5)),
            "ms",
            Some(("sql.duckdb.join.time", sql.join_seconds * 1e3)),
            false,
        ));
        measurements.push(measurement(
            "engine.backfill.time_vs_sql_load_and_join",
            backfill_time.as_secs_f64(),
            "s",
            Some((
                "sql.duckdb.load_and_join.time",
                sql.load_seconds + sql.join_seconds,
            )),
            false,
        ));
        measurements.push(measurement(
            "sql.duckdb.findings",
            sql.findings as f64,
            "findings",
            None,
            true,
        ));
    }

    Ok(json!({
        "suite": "engine",
        "machine": machine(),
        "data": {
            "advisories_loaded": loaded.len(),
            "advisories_held_back_as_changes": held.len(),
            "advisory_source": source,
            "corpus_packages": corpus.packages.len(),
            "corpus_versions": corpus.version_count(),
            "fleet": format!(
                "synthetic, seeded (seed {}), {} artifacts x {} components, real package names and version strings from the corpus",
                shape.seed, artifacts, shape.components_per_artifact
            ),
            "instances": generated,
            "workers": config.engine.workers,
            "changes_measured": config.changes,
        },
        "measurements": measurements,
    }))
}

struct SqlResult {
    load_seconds: f64,
    join_seconds: f64,
    findings: u64,
}

/// DuckDB doing the same join: instances ⋈ affected versions on (package,
/// version). Which versions are affected is computed by Recheck's range code
/// (SQL has no ecosystem version order), so the baseline is the join alone.
fn sql_baseline(
    fleet: &Fleet<'_>,
    advisories: &[Advisory],
    scratch: &Path,
) -> Result<SqlResult, BenchError> {
    std::fs::create_dir_all(scratch)?;
    let inst_path = scratch.join("instances.csv");
    let aff_path = scratch.join("affected.csv");
    let mut inst = std::io::BufWriter::new(std::fs::File::create(&inst_path)?);
    writeln!(inst, "artifact,package,version")?;
    let mut distinct: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for i in 0..fleet.shape.artifacts() {
        let sbom = fleet.artifact(i);
        for c in &sbom.components {
            if let (Some(e), Some(p), Some(v)) = (&c.ecosystem, &c.package, &c.version) {
                let pk = crate::engine::ids::package_key(e, p);
                let vk = crate::engine::ids::version_id(e, p, v);
                writeln!(inst, "{i},{pk},{vk}")?;
                distinct
                    .entry((e.clone(), p.clone()))
                    .or_default()
                    .insert(v.clone());
            }
        }
    }
    inst.flush()?;
    let mut aff = std::io::BufWriter::new(std::fs::File::create(&aff_path)?);
    writeln!(aff, "package,version,advisory")?;
    for a in advisories.iter().filter(|a| a.withdrawn.is_none()) {
        for (idx, e) in a.affected.iter().enumerate() {
            let Some(vs) = distinct.get(&(e.ecosystem.clone(), e.name.clone())) else {
                continue;
            };
            let compiled = CompiledAffected::new(e, idx);
            for v in vs {
                if let RangeMatch::Affected(_) = compiled.matches(v) {
                    let pk = crate::engine::ids::package_key(&e.ecosystem, &e.name);
                    let vk = crate::engine::ids::version_id(&e.ecosystem, &e.name, v);
                    writeln!(aff, "{pk},{vk},{}", a.id)?;
                }
            }
        }
    }
    aff.flush()?;
    let script = format!(
        r#"
import duckdb, time, json
con = duckdb.connect()
con.execute("SET threads TO 2")
t = time.perf_counter()
con.execute("CREATE TABLE instances AS SELECT * FROM read_csv('{inst}', header=true, columns={{'artifact':'UBIGINT','package':'UBIGINT','version':'UBIGINT'}})")
con.execute("CREATE TABLE affected AS SELECT DISTINCT * FROM read_csv('{aff}', header=true, columns={{'package':'UBIGINT','version':'UBIGINT','advisory':'VARCHAR'}})")
load = time.perf_counter() - t
t = time.perf_counter()
n = con.execute("SELECT count(*) FROM (SELECT DISTINCT i.artifact, i.package, i.version, a.advisory FROM instances i JOIN affected a ON i.package = a.package AND i.version = a.version)").fetchone()[0]
join = time.perf_counter() - t
print(json.dumps({{"load": load, "join": join, "findings": n}}))
"#,
        inst = inst_path.display(),
        aff = aff_path.display()
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .map_err(|e| BenchError::Sql(format!("running python3: {e}")))?;
    if !out.status.success() {
        return Err(BenchError::Sql(format!(
            "python3 duckdb failed (install with `python3 -m pip install duckdb`): {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let v: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| BenchError::Sql(e.to_string()))?;
    Ok(SqlResult {
        load_seconds: v["load"].as_f64().unwrap_or(0.0),
        join_seconds: v["join"].as_f64().unwrap_or(0.0),
        findings: v["findings"].as_u64().unwrap_or(0),
    })
}

/// `--suite queue`: enqueue, lease + ack and end-to-end jobs/s through each
/// queue URL, the in-process queue as the baseline. Each backend runs under
/// its own prefix and is purged before and after.
pub fn run_queue_suite(
    urls: &[String],
    config: &crate::queue::bench::QueueBenchConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<Value, BenchError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let baseline = "memory://".to_string();
    let mut results = Vec::new();
    for url in std::iter::once(&baseline).chain(urls.iter().filter(|u| **u != baseline)) {
        progress(&format!("queue {url}"));
        let result = runtime
            .block_on(crate::queue::bench::run(url, config))
            .map_err(|source| BenchError::Queue {
                url: url.clone(),
                source,
            })?;
        results.push(result);
    }
    let memory = results
        .first()
        .map(|r| r.end_to_end_jobs_per_second)
        .unwrap_or_default();
    let mut measurements = Vec::new();
    for r in &results {
        let b = r.backend;
        let vs_memory = (b != "memory").then_some(("queue.memory.end_to_end", memory));
        measurements.push(measurement(
            &format!("queue.{b}.enqueue"),
            r.enqueue_jobs_per_second,
            "jobs/s",
            None,
            true,
        ));
        measurements.push(measurement(
            &format!("queue.{b}.lease_ack"),
            r.drain_jobs_per_second,
            "jobs/s",
            None,
            true,
        ));
        measurements.push(measurement(
            &format!("queue.{b}.end_to_end"),
            r.end_to_end_jobs_per_second,
            "jobs/s",
            vs_memory,
            true,
        ));
        measurements.push(measurement(
            &format!("queue.{b}.redeliveries"),
            r.redeliveries as f64,
            "deliveries",
            None,
            false,
        ));
    }
    // End to end through the worker: dispatch, lease, policy evaluation,
    // signing, event + execution record, ack, on an embedded store.
    let mut worker_memory = 0.0;
    for url in std::iter::once(&baseline).chain(urls.iter().filter(|u| **u != baseline)) {
        progress(&format!("worker end to end through {url}"));
        let dir = config_scratch(url);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("worker-bench.redb");
        let _ = std::fs::remove_file(&path);
        let worker_error = |e: crate::worker::bench::WorkerBenchError| BenchError::Store {
            url: url.clone(),
            message: e.to_string(),
        };
        crate::worker::bench::fill_store(&path, config.worker_jobs).map_err(worker_error)?;
        let r = runtime
            .block_on(crate::worker::bench::run(
                &path,
                url,
                config.worker_concurrency,
            ))
            .map_err(worker_error)?;
        std::fs::remove_dir_all(&dir).ok();
        if r.backend == "memory" {
            worker_memory = r.jobs_per_second;
        }
        let vs_memory =
            (r.backend != "memory").then_some(("queue.memory.worker_end_to_end", worker_memory));
        measurements.push(measurement(
            &format!("queue.{}.worker_end_to_end", r.backend),
            r.jobs_per_second,
            "jobs/s",
            vs_memory,
            true,
        ));
    }
    Ok(json!({
        "suite": "queue",
        "machine": machine(),
        "data": {
            "worker_jobs": config.worker_jobs,
            "worker_concurrency": config.worker_concurrency,
            "worker_jobs_are": "the bundled sample SBOMs copied into one artifact each over 4 tenants, one window; policy evaluator, no external executor",
            "jobs": config.jobs,
            "batch": config.batch,
            "tenants": config.tenants,
            "concurrency": config.concurrency,
            "queues": results.iter().map(|r| r.backend).collect::<Vec<_>>(),
            "jobs_are": "synthetic: sha256 ids, round-robin over tenants, one worker pipelining",
        },
        "measurements": measurements,
    }))
}

/// A scratch directory of its own for one queue's worker benchmark.
fn config_scratch(url: &str) -> std::path::PathBuf {
    let tag: String = url.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    std::env::temp_dir().join(format!("recheck-bench-worker-{}-{tag}", std::process::id()))
}

/// `--suite store`: the time to commit one window (its ledger entry, impact
/// snapshot changes and jobs, in one transaction) on each store, as deltas/s
/// and jobs/s, the embedded store as the baseline; then the time to verify
/// the ledger. The window is the backfill of a real-shaped fleet through the
/// engine and the production planner.
pub fn run_store_suite(
    config: &BenchConfig,
    urls: &[String],
    progress: &mut dyn FnMut(&str),
) -> Result<Value, BenchError> {
    use crate::core::planner::Planner;

    let (advisories, corpus_sboms, source) = load_advisories()?;
    let corpus = Corpus::from_documents(&advisories, &corpus_sboms);
    let shape = FleetShape {
        instances: config.instances,
        components_per_artifact: config.components_per_artifact,
        tenants: 4,
        seed: config.seed,
    };
    progress("engine backfill (the window to commit)");
    let mut engine = Engine::start(&config.engine)?;
    let mut seq = 0u64;
    for a in &advisories {
        seq += 1;
        engine.apply(&LogEntry {
            seq,
            record: InputRecord::Advisory {
                advisory: a.clone(),
            },
        })?;
    }
    for i in 0..shape.artifacts() {
        let sbom = fleet::artifact(&corpus, &shape, i);
        seq += 1;
        engine.apply(&LogEntry {
            seq,
            record: InputRecord::Sbom {
                tenant: tenant_of(&sbom).to_string(),
                sbom,
            },
        })?;
    }
    seq += 1;
    let closed = engine.apply(&LogEntry {
        seq,
        record: InputRecord::WindowClosed {
            window: 1,
            closed_at: None,
        },
    })?;
    engine.shutdown();
    let Some(closed) = closed else {
        return Err(BenchError::NoData("the window did not close".into()));
    };
    let closed_at = chrono::DateTime::<chrono::Utc>::default();
    let commit = Planner::default().commit(1, seq, Planner::deltas(&closed), closed_at, None);
    drop(closed);
    let (deltas, jobs) = (commit.deltas.len(), commit.jobs.len());

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::fs::create_dir_all(&config.scratch)?;
    let embedded = format!("redb://{}", config.scratch.join("bench.redb").display());
    let mut rows = Vec::new();
    for url in std::iter::once(&embedded).chain(urls.iter()) {
        progress(&format!(
            "commit into {}",
            url.split('?').next().unwrap_or(url)
        ));
        let result: Result<(String, f64, f64, Option<u64>), String> = runtime.block_on(async {
            let store = crate::store::open(url).await.map_err(|e| e.to_string())?;
            let t = Instant::now();
            store
                .commit_window(&commit)
                .await
                .map_err(|e| e.to_string())?;
            let commit_time = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let verdict = crate::core::ledger::verify(store.as_ref())
                .await
                .map_err(|e| e.to_string())?;
            let verify_time = t.elapsed().as_secs_f64();
            if !matches!(verdict, crate::core::ledger::Verdict::Valid { .. }) {
                return Err(format!(
                    "ledger does not verify after the commit: {verdict:?}"
                ));
            }
            let bytes = store.storage_bytes().await.map_err(|e| e.to_string())?;
            Ok((store.backend().to_string(), commit_time, verify_time, bytes))
        });
        let row = result.map_err(|message| BenchError::Store {
            url: url.clone(),
            message,
        })?;
        rows.push(row);
        if let Some((base, schema)) = url.split_once("?schema=") {
            if url.starts_with("postgres") && schema.starts_with("recheck_bench_") {
                runtime.block_on(drop_schema(base, schema));
            }
        }
    }
    std::fs::remove_file(config.scratch.join("bench.redb")).ok();
    drop(commit);

    // The whole backfill into a running system, as `recheck backfill --into`
    // does it: every document appended to the input log and applied, then
    // the window closed and committed; the fleet is generated batch by batch
    // so its documents are never all in memory.
    let mut backfills = Vec::new();
    for url in std::iter::once(&embedded).chain(urls.iter()) {
        let url = fresh_store_url(url, "into");
        progress(&format!(
            "backfill --into {}",
            url.split('?').next().unwrap_or(&url)
        ));
        let row = backfill_into(&url, config, &advisories, &corpus, &shape).map_err(|message| {
            BenchError::Store {
                url: url.clone(),
                message,
            }
        })?;
        backfills.push(row);
        if let Some((base, schema)) = url.split_once("?schema=") {
            if url.starts_with("postgres") && schema.starts_with("recheck_bench_") {
                runtime.block_on(drop_schema(base, schema));
            }
        }
    }
    std::fs::remove_file(config.scratch.join("into.redb")).ok();
    let base = rows.first().map(|r| r.1).unwrap_or_default();
    let mut measurements = Vec::new();
    for (backend, commit_time, verify_time, bytes) in &rows {
        let vs = (backend != "embedded").then_some(("store.embedded.commit.time", base));
        measurements.push(measurement(
            &format!("store.{backend}.commit.time"),
            *commit_time,
            "s",
            vs,
            false,
        ));
        measurements.push(measurement(
            &format!("store.{backend}.commit.deltas_per_second"),
            deltas as f64 / commit_time.max(1e-9),
            "deltas/s",
            None,
            true,
        ));
        measurements.push(measurement(
            &format!("store.{backend}.commit.jobs_per_second"),
            jobs as f64 / commit_time.max(1e-9),
            "jobs/s",
            None,
            true,
        ));
        if let Some(bytes) = bytes {
            // The window only: ledger, impact snapshot and jobs (the input
            // log's documents are not part of this suite).
            measurements.push(measurement(
                &format!("store.{backend}.window.storage"),
                *bytes as f64,
                "bytes",
                None,
                false,
            ));
            measurements.push(measurement(
                &format!("store.{backend}.window.storage_per_delta"),
                *bytes as f64 / (deltas as f64).max(1.0),
                "bytes/delta",
                None,
                false,
            ));
        }
        measurements.push(measurement(
            &format!("store.{backend}.ledger_verify.time"),
            *verify_time,
            "s",
            None,
            false,
        ));
    }
    let into_base = backfills.first().map(|b| b.total).unwrap_or_default();
    for b in &backfills {
        let vs =
            (b.backend != "embedded").then_some(("store.embedded.backfill_into.time", into_base));
        measurements.push(measurement(
            &format!("store.{}.backfill_into.time", b.backend),
            b.total,
            "s",
            vs,
            false,
        ));
        measurements.push(measurement(
            &format!("store.{}.backfill_into.append_and_apply.time", b.backend),
            b.append,
            "s",
            None,
            false,
        ));
        measurements.push(measurement(
            &format!("store.{}.backfill_into.close_and_commit.time", b.backend),
            b.close,
            "s",
            None,
            false,
        ));
        if let Some(bytes) = b.bytes {
            measurements.push(measurement(
                &format!("store.{}.backfill_into.storage", b.backend),
                bytes as f64,
                "bytes",
                None,
                false,
            ));
            measurements.push(measurement(
                &format!("store.{}.backfill_into.storage_per_instance", b.backend),
                bytes as f64 / (shape.instances as f64).max(1.0),
                "bytes/instance",
                None,
                false,
            ));
        }
    }
    Ok(json!({
        "suite": "store",
        "machine": machine(),
        "data": {
            "advisory_source": source,
            "instances": shape.instances,
            "fleet": format!(
                "synthetic, seeded (seed {}), {} artifacts x {} components, real package names and versions",
                shape.seed,
                shape.artifacts(),
                shape.components_per_artifact
            ),
            "window_deltas": deltas,
            "window_jobs": jobs,
        },
        "measurements": measurements,
    }))
}

/// One store's `backfill --into` timings.
struct BackfillInto {
    backend: String,
    /// Appending and applying every document.
    append: f64,
    /// Closing the window: the engine's join, the planner and the commit.
    close: f64,
    total: f64,
    bytes: Option<u64>,
}

/// A second, empty store beside `url` (its own redb file or schema).
fn fresh_store_url(url: &str, suffix: &str) -> String {
    if let Some(path) = crate::store::embedded_path(url) {
        let path = std::path::Path::new(path).with_file_name(format!("{suffix}.redb"));
        return format!("redb://{}", path.display());
    }
    match url.split_once("?schema=") {
        Some((base, schema)) if url.starts_with("postgres") => {
            format!("{base}?schema={schema}_{suffix}")
        }
        _ if url.starts_with("mongodb") => {
            // mongodb://host/DB?options: the database is the path.
            let (head, query) = url
                .split_once('?')
                .map_or((url, None), |(h, q)| (h, Some(q)));
            let head = format!("{head}_{suffix}");
            query.map_or(head.clone(), |q| format!("{head}?{q}"))
        }
        _ => url.to_string(),
    }
}

fn backfill_into(
    url: &str,
    config: &BenchConfig,
    advisories: &[Advisory],
    corpus: &Corpus,
    shape: &FleetShape,
) -> Result<BackfillInto, String> {
    use crate::core::pipeline::Pipeline;
    use crate::core::planner::Planner;

    const BATCH: usize = 1_000;
    let start = Instant::now();
    let clock: crate::core::pipeline::Clock = Box::new(chrono::DateTime::<chrono::Utc>::default);
    let mut pipeline = Pipeline::open(url, &config.engine, Planner::default(), clock)
        .map_err(|e| e.to_string())?;
    let backend = pipeline.backend().to_string();
    let window = pipeline.next_window();
    let records: Vec<InputRecord> = advisories
        .iter()
        .map(|a| InputRecord::Advisory {
            advisory: a.clone(),
        })
        .collect();
    pipeline.push(&records).map_err(|e| e.to_string())?;
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..shape.artifacts() {
        let sbom = fleet::artifact(corpus, shape, i);
        batch.push(InputRecord::Sbom {
            tenant: tenant_of(&sbom).to_string(),
            sbom,
        });
        if batch.len() == BATCH {
            pipeline.push(&batch).map_err(|e| e.to_string())?;
            batch.clear();
        }
    }
    pipeline.push(&batch).map_err(|e| e.to_string())?;
    let append = start.elapsed().as_secs_f64();
    let closing = Instant::now();
    let committed = pipeline
        .push(&[InputRecord::WindowClosed {
            window,
            closed_at: None,
        }])
        .map_err(|e| e.to_string())?;
    let close = closing.elapsed().as_secs_f64();
    if committed.len() != 1 {
        return Err(format!(
            "expected one committed window, got {}",
            committed.len()
        ));
    }
    let total = start.elapsed().as_secs_f64();
    let bytes = pipeline.storage_bytes().map_err(|e| e.to_string())?;
    pipeline.shutdown();
    Ok(BackfillInto {
        backend,
        append,
        close,
        total,
        bytes,
    })
}

/// Drops a benchmark's own PostgreSQL schema; a failure only leaves it behind.
async fn drop_schema(base: &str, schema: &str) {
    let Ok((client, connection)) = tokio_postgres::connect(base, tokio_postgres::NoTls).await
    else {
        return;
    };
    let driver = tokio::spawn(connection);
    if let Err(e) = client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
    {
        tracing::warn!(%schema, error = %e, "could not drop the benchmark schema");
    }
    drop(client);
    let _ = driver.await;
}
