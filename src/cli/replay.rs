//! `recheck replay`: recompute a store's windows from its input log and show
//! that deltas and jobs are identical to what was recorded (exit 0), or which
//! windows differ (exit 1); exit 2 when the store cannot be read. Nothing is
//! written. (Re-running a job is something else: a new attempt of the same
//! job id.)

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use recheck::core::planner::Planner;
use recheck::core::replay::replay;

use super::engine_args::EngineArgs;
use super::ledger::on_existing_store;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The store: a file path or `redb:///path` (embedded),
    /// `postgres://…[?schema=NAME]`, or `mongodb://…/DB`.
    #[arg(long, value_name = "URL")]
    store: String,
    /// Compare windows from this one on (the engine still reads the whole
    /// log: a window's deltas depend on everything before it).
    #[arg(long, value_name = "WINDOW", default_value_t = 0)]
    from: u64,
    #[command(flatten)]
    engine: EngineArgs,
}

pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let engine = args.engine.config();
    Ok(on_existing_store(&args.store, |store| async move {
        let report = replay(store.as_ref(), &engine, &Planner::default(), args.from)
            .await
            .context("replaying the input log")?;
        println!(
            "replayed {} input records: {} windows compared, {} deltas, {} jobs",
            report.records, report.windows, report.deltas, report.jobs
        );
        if report.mismatches.is_empty() {
            println!(
                "identical: every compared window's deltas and jobs match the store byte for byte"
            );
            return Ok(ExitCode::SUCCESS);
        }
        for m in &report.mismatches {
            println!("differs: {m}");
        }
        Ok(ExitCode::FAILURE)
    }))
}
