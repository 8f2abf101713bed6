//! `recheck ingest`: feed an input stream (a watched directory or a NATS
//! JetStream subject) through the pipeline into a store, one window per scan
//! or batch, and optionally dispatch the resulting jobs to a queue.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use clap::{ArgGroup, Args, ValueEnum};

use recheck::core::dispatcher;
use recheck::core::ingest::{self, BatchDone, IngestOptions};
use recheck::core::pipeline::Pipeline;
use recheck::core::planner::Planner;
use recheck::engine::EngineConfig;
use recheck::queue::{self, Queue, QueueOptions};
use recheck::source::dir::{DirOptions, DirSource};
use recheck::source::nats::{NatsOptions, NatsSource};
use recheck::source::Source;

/// Flags of `recheck ingest` (its help text is on the subcommand in `cli`).
#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("source").required(true).args(["dir", "nats"])),
    after_help = "Examples:\n  \
        recheck ingest --store state.redb --dir ./advisory-db --once\n  \
        recheck ingest --store 'postgres://postgres@127.0.0.1/test?schema=recheck' \\\n      \
        --queue redis://127.0.0.1:6379 --nats nats://127.0.0.1:4222 --subject recheck.ingest"
)]
pub struct IngestArgs {
    /// The store: a file path or `redb:///path` (embedded, created if
    /// missing), `postgres://…[?schema=NAME]`, or `mongodb://…/DB`.
    #[arg(long, value_name = "URL")]
    store: String,
    /// Dispatch jobs to this queue: `memory://` (this process only),
    /// `nats://host:port` or `redis://host:port[/db]`.
    #[arg(long, value_name = "URL")]
    queue: Option<String>,
    /// Namespace of the queue's streams/keys on its server.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "recheck",
        requires = "queue"
    )]
    queue_prefix: String,
    /// How long the queue remembers a job id against duplicates, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120, requires = "queue")]
    dedup_window: u64,
    /// When to enqueue again the jobs the store holds as queued: `auto` when
    /// the queue holds fewer of a tenant's jobs than the store (it lost
    /// them), `always`, or `never`. Done once, at start.
    #[arg(long, value_enum, default_value_t = Refill::Auto, requires = "queue")]
    refill: Refill,
    /// Watch this directory.
    #[arg(long, value_name = "PATH")]
    dir: Option<std::path::PathBuf>,
    /// Tenant that owns the directory's SBOMs and VEX documents.
    #[arg(long, default_value = recheck::model::DEFAULT_TENANT, requires = "dir")]
    tenant: String,
    /// The directory's VEX documents are the feed's (visible to all tenants).
    #[arg(long, requires = "dir")]
    global_vex: bool,
    /// Read the ingest subject of this NATS server.
    #[arg(long, value_name = "URL", requires = "subject")]
    nats: Option<String>,
    /// The JetStream subject producers publish envelopes on.
    #[arg(long, value_name = "SUBJECT", requires = "nats")]
    subject: Option<String>,
    /// Stream to create when no stream captures the subject yet.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "RECHECK_INGEST",
        requires = "nats"
    )]
    stream: String,
    /// Messages per window.
    #[arg(long, value_name = "N", default_value_t = 500, requires = "nats")]
    batch: usize,
    /// Drain what is there now (one window per scan or batch) and exit,
    /// instead of watching.
    #[arg(long)]
    once: bool,
    /// Seconds between polls that found nothing new.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    interval: f64,
    /// Timely worker threads of the engine.
    #[arg(long, short = 'w', default_value_t = 1, value_name = "N")]
    workers: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Refill {
    Auto,
    Always,
    Never,
}

pub fn run(args: IngestArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.interval.is_finite() && args.interval >= 0.0,
        "--interval must be a non-negative number of seconds"
    );
    anyhow::ensure!(args.workers >= 1, "--workers must be at least 1");
    let engine = EngineConfig {
        workers: args.workers,
        ..EngineConfig::default()
    };
    let mut pipeline = Pipeline::open(
        &args.store,
        &engine,
        Planner::default(),
        Box::new(chrono::Utc::now),
    )
    .with_context(|| format!("opening store {}", args.store))?;
    let recovered = pipeline.recovered();
    if recovered.windows_committed > 0 {
        eprintln!(
            "ingest: recovered {} window(s) the log had closed but the ledger lacked",
            recovered.windows_committed
        );
    }
    let queue = match &args.queue {
        None => None,
        Some(url) => {
            let options = QueueOptions {
                prefix: args.queue_prefix.clone(),
                dedup_window: Duration::from_secs(args.dedup_window),
                ..QueueOptions::default()
            };
            let queue = pipeline
                .block_on(queue::open(url, options))
                .with_context(|| format!("opening queue {url}"))?;
            refill(&pipeline, queue.as_ref(), args.refill)?;
            Some(queue)
        }
    };
    let mut source: Box<dyn Source> = match (&args.dir, &args.nats, &args.subject) {
        (Some(dir), _, _) => {
            let options = DirOptions {
                tenant: args.tenant.clone(),
                global_vex: args.global_vex,
            };
            let source = pipeline
                .block_on(DirSource::open(dir, options, pipeline.store().as_ref()))
                .with_context(|| format!("watching {}", dir.display()))?;
            Box::new(source)
        }
        (None, Some(url), Some(subject)) => {
            let options = NatsOptions {
                url: url.clone(),
                subject: subject.clone(),
                stream: args.stream.clone(),
                batch: args.batch,
            };
            let source = pipeline
                .block_on(NatsSource::open(&options, pipeline.store().as_ref()))
                .with_context(|| format!("reading {subject} on {url}"))?;
            Box::new(source)
        }
        _ => anyhow::bail!("give --dir PATH or --nats URL --subject SUBJECT"),
    };
    let options = IngestOptions {
        once: args.once,
        interval: Duration::from_secs_f64(args.interval),
    };
    let stop = AtomicBool::new(false);
    let name = source.name().to_string();
    let report = ingest::run(
        &mut pipeline,
        source.as_mut(),
        queue.as_deref(),
        options,
        &stop,
        print_batch,
    )
    .with_context(|| format!("ingesting {name}"))?;
    let backend = pipeline.backend();
    pipeline.shutdown();
    println!(
        "ingested {name} into the {backend} store: {} batches, {} windows, {} records, {} deltas, {} jobs, {} rejected; dispatched {} ({} duplicates)",
        report.batches,
        report.windows,
        report.records,
        report.deltas,
        report.jobs,
        report.rejected,
        report.dispatched.marked,
        report.dispatched.duplicates
    );
    Ok(ExitCode::SUCCESS)
}

fn refill(pipeline: &Pipeline, queue: &dyn Queue, mode: Refill) -> anyhow::Result<()> {
    let store = pipeline.store().as_ref();
    let due = match mode {
        Refill::Never => false,
        Refill::Always => true,
        Refill::Auto => pipeline
            .block_on(dispatcher::queue_lost_jobs(store, queue))
            .context("comparing the queue with the store")?,
    };
    if due {
        let done = pipeline
            .block_on(dispatcher::refill(store, queue))
            .context("refilling the queue")?;
        eprintln!(
            "ingest: refilled the queue with {} queued job(s) ({} it still had)",
            done.enqueued, done.duplicates
        );
    }
    Ok(())
}

fn print_batch(done: &BatchDone) {
    for e in &done.rejected {
        eprintln!("skipped: {e}");
    }
    match done.window {
        Some(window) => eprintln!(
            "ingest: window {window}: {} records, {} deltas, {} jobs; dispatched {}",
            done.records, done.deltas, done.jobs, done.dispatched.marked
        ),
        None => eprintln!("ingest: nothing usable in this batch; offset moved"),
    }
}
