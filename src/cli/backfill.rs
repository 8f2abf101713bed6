//! `recheck backfill`: load a whole fleet through the incremental engine as
//! one window and print the findings exactly as `recheck scan` does, so the
//! two can be diffed byte for byte. With `--into` the same window also goes
//! through the scheduler core's pipeline into a store (input log, ledger
//! entry, impact snapshots, recheck jobs), as a running system would take a
//! bulk load.

use std::io::{self, IsTerminal};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use recheck::core::pipeline::Pipeline;
use recheck::core::planner::Planner;
use recheck::engine::record::{InputRecord, LogEntry};
use recheck::engine::{run_follower, ClosedWindow, Engine, EngineConfig};
use recheck::model::Finding;
use recheck::store::CommitOutcome;

use super::engine_args::EngineArgs;
use super::inputs::{report_errors, InputArgs};
use super::scan::Format;

#[derive(Debug, Args)]
pub struct BackfillArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Output format (the same as `recheck scan`'s).
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Also commit the window into this store through the pipeline (input
    /// log, ledger, impact snapshots, recheck jobs): a file path or
    /// `redb:///path` (embedded), `postgres://…[?schema=NAME]` or
    /// `mongodb://…/DB`. The store's input log must be empty. Prints the time
    /// taken and the deltas and jobs committed on stderr; stdout is unchanged.
    #[arg(long, value_name = "URL")]
    pub into: Option<String>,
}

/// Records appended to the input log per store call.
const APPEND_BATCH: usize = 10_000;

/// Progress on stderr: a bar on a terminal, a plain line every 10% otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    done: u64,
    next_line: u64,
}

impl Progress {
    fn new(total: u64) -> Progress {
        let bar = io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} backfill [{bar:40}] {pos}/{len} records ({per_sec}, eta {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        Progress {
            bar,
            total,
            done: 0,
            next_line: 0,
        }
    }

    fn inc(&mut self, n: u64) {
        self.done += n;
        match &self.bar {
            Some(bar) => bar.inc(n),
            None if self.done >= self.next_line => {
                eprintln!("backfill: {}/{} records", self.done, self.total);
                self.next_line = self.done + (self.total / 10).max(1);
            }
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

pub fn run(args: BackfillArgs) -> anyhow::Result<ExitCode> {
    let config = args.engine.config();
    if config.process_index != 0 {
        run_follower(&config).context("running as a cluster follower")?;
        return Ok(ExitCode::SUCCESS);
    }
    let loaded = args.inputs.load();
    report_errors(&loaded.errors, args.inputs.strict)?;
    let tenant = args.inputs.tenant.clone();
    let mut records = loaded.into_records(&tenant);
    records.push(InputRecord::WindowClosed {
        window: 1,
        closed_at: None,
    });

    let start = Instant::now();
    let mut progress = Progress::new(records.len() as u64);
    let mut findings: Vec<Finding> = Vec::new();
    match &args.into {
        None => {
            let mut engine = Engine::start(&config).context("starting the engine")?;
            for (seq, record) in records.into_iter().enumerate() {
                let entry = LogEntry {
                    seq: seq as u64,
                    record,
                };
                if let Some(closed) = engine.apply(&entry).context("applying a record")? {
                    keep_added(closed, &mut findings);
                }
                progress.inc(1);
            }
            engine.shutdown();
        }
        Some(url) => into_store(url, &config, &records, &mut progress, &mut findings)?,
    }
    progress.finish();
    findings.sort();
    findings.dedup();
    args.format.write_stdout(&findings)?;
    eprintln!(
        "backfill: {} findings in {:.2?} with {} worker(s) x {} process(es)",
        findings.len(),
        start.elapsed(),
        config.workers,
        config.processes
    );
    Ok(ExitCode::SUCCESS)
}

/// The findings a window added (a fresh engine's only window adds them all).
fn keep_added(closed: ClosedWindow, findings: &mut Vec<Finding>) {
    findings.extend(
        closed
            .findings
            .into_iter()
            .filter(|(_, diff)| *diff > 0)
            .map(|(f, _)| f),
    );
}

fn into_store(
    url: &str,
    config: &EngineConfig,
    records: &[InputRecord],
    progress: &mut Progress,
    findings: &mut Vec<Finding>,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut pipeline = Pipeline::open(url, config, Planner::default(), Box::new(chrono::Utc::now))
        .with_context(|| format!("opening the pipeline into {url}"))?;
    let mut committed = Vec::new();
    for batch in records.chunks(APPEND_BATCH) {
        committed.extend(pipeline.push(batch).context("committing the backfill")?);
        progress.inc(batch.len() as u64);
    }
    let backend = pipeline.backend();
    let storage = pipeline
        .storage_bytes()
        .context("reading the store's size")?;
    pipeline.shutdown();
    for c in committed {
        let new_jobs = match c.outcome {
            CommitOutcome::Committed { new_jobs, .. } => new_jobs,
            CommitOutcome::AlreadyCommitted { .. } => 0,
        };
        eprintln!(
            "backfill: committed window {} into the {backend} store in {:.2?}: {} deltas, {} jobs ({new_jobs} new), ledger head {}",
            c.closed.deltas.window,
            start.elapsed(),
            c.deltas,
            c.jobs,
            c.outcome.entry().hash
        );
        keep_added(c.closed, findings);
    }
    match storage {
        Some(bytes) => eprintln!(
            "backfill: the {backend} store occupies {bytes} bytes ({:.1} MiB) after {} input records",
            bytes as f64 / 1048576.0,
            records.len()
        ),
        None => eprintln!("backfill: the {backend} store does not report its size"),
    }
    Ok(())
}
