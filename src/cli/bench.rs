//! `recheck bench`: run a benchmark suite and print one JSON document
//! (machine, data, measurements with their baselines) on stdout; progress
//! goes to stderr.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};

use recheck::bench::api::ApiBenchConfig;
use recheck::bench::{run_engine_suite, run_queue_suite, run_store_suite, BenchConfig};
use recheck::queue::bench::QueueBenchConfig;

use super::engine_args::EngineArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Suite {
    /// Backfill throughput, incremental latency per change kind, memory;
    /// against the reference matcher (and DuckDB with --sql).
    Engine,
    /// Enqueue, lease + ack and end-to-end jobs/s through each `--queue`,
    /// against the in-process queue.
    Queue,
    /// Window commit throughput (deltas/s, jobs/s) and ledger verification
    /// on the embedded store and each `--store`.
    Store,
    /// A bounded loopback load test of a real `recheck serve`: SBOM ingest
    /// and impact-query throughput and latency, and the time from an
    /// advisory POST to its recheck job being planned and queued.
    Api,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Which measurements to run.
    #[arg(long, value_enum, default_value_t = Suite::Engine)]
    pub suite: Suite,
    /// Component instances in the synthetic fleet.
    #[arg(long, default_value_t = 1_000_000)]
    pub instances: usize,
    /// Components per artifact (one SBOM per artifact).
    #[arg(long, default_value_t = 100)]
    pub components_per_artifact: usize,
    /// Seed of the fleet generator.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Single changes to time (cycled over the change kinds).
    #[arg(long, default_value_t = 500)]
    pub changes: usize,
    /// Small and fast: 50k instances and 50 changes (overrides the two).
    #[arg(long)]
    pub quick: bool,
    /// Also run the DuckDB baseline (python3 with the duckdb package).
    #[arg(long)]
    pub sql: bool,
    /// Queues for `--suite queue` (repeatable; the in-process queue always
    /// runs as the baseline).
    #[arg(
        long = "queue",
        value_name = "URL",
        default_values_t = ["nats://127.0.0.1:4222".to_string(), "redis://127.0.0.1:6379".to_string()]
    )]
    pub queues: Vec<String>,
    /// Stores for `--suite store` besides the embedded one (repeatable;
    /// default: a fresh schema in the local PostgreSQL, dropped afterwards).
    #[arg(long = "store", value_name = "URL")]
    pub stores: Vec<String>,
    /// Jobs per queue for `--suite queue`.
    #[arg(long, default_value_t = 10_000)]
    pub jobs: usize,
    /// SBOM uploads (one artifact each) for `--suite api`.
    #[arg(long, default_value_t = 2_000)]
    pub api_artifacts: usize,
    /// Query requests for `--suite api`.
    #[arg(long, default_value_t = 20_000)]
    pub api_queries: usize,
    /// Advisory POST → job samples (one at a time) for `--suite api`.
    #[arg(long, default_value_t = 100)]
    pub api_advisories: usize,
    /// Concurrent HTTP clients for `--suite api`.
    #[arg(long, default_value_t = 8)]
    pub api_clients: usize,
    /// Jobs per queue for the worker's end-to-end run in `--suite queue`
    /// (policy evaluator, signing, stored events).
    #[arg(long, default_value_t = 1_000)]
    pub worker_jobs: usize,
    #[command(flatten)]
    pub engine: EngineArgs,
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let (instances, changes) = if args.quick {
        (50_000, 50)
    } else {
        (args.instances, args.changes)
    };
    let config = BenchConfig {
        instances,
        components_per_artifact: args.components_per_artifact,
        seed: args.seed,
        changes,
        engine: args.engine.config(),
        sql: args.sql,
        scratch: std::env::temp_dir().join(format!("recheck-bench-{}", std::process::id())),
    };
    let report = match args.suite {
        Suite::Engine => run_engine_suite(&config, &mut |step| eprintln!("bench: {step}"))
            .context("engine benchmark")?,
        Suite::Store => {
            let stores = if args.stores.is_empty() {
                vec![format!(
                    "postgres://postgres@127.0.0.1:5432/test?schema=recheck_bench_{}",
                    std::process::id()
                )]
            } else {
                args.stores.clone()
            };
            run_store_suite(&config, &stores, &mut |step| eprintln!("bench: {step}"))
                .context("store benchmark")?
        }
        Suite::Queue => {
            let queue_config = QueueBenchConfig {
                jobs: if args.quick { 1_000 } else { args.jobs },
                worker_jobs: if args.quick { 200 } else { args.worker_jobs },
                ..QueueBenchConfig::default()
            };
            run_queue_suite(&args.queues, &queue_config, &mut |step| {
                eprintln!("bench: {step}")
            })
            .context("queue benchmark")?
        }
        Suite::Api => {
            let api_config = if args.quick {
                ApiBenchConfig {
                    artifacts: 200,
                    queries: 2_000,
                    advisories: 20,
                    concurrency: args.api_clients,
                }
            } else {
                ApiBenchConfig {
                    artifacts: args.api_artifacts,
                    queries: args.api_queries,
                    advisories: args.api_advisories,
                    concurrency: args.api_clients,
                }
            };
            let exe = std::env::current_exe().context("locating the recheck binary")?;
            recheck::bench::api::run(&exe, &api_config, &mut |step| eprintln!("bench: {step}"))
                .context("API benchmark")?
        }
    };
    std::fs::remove_dir_all(&config.scratch).ok();
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &report).context("writing the report")?;
    writeln!(out).context("writing the report")?;
    Ok(ExitCode::SUCCESS)
}
