//! Command-line surface of Recheck. Each subcommand lives in its own module
//! and only wires library pieces together.

mod backfill;
mod bench;
mod demo;
mod engine_args;
mod ingest;
mod inputs;
mod keygen;
mod ledger;
mod replay;
mod scan;
mod serve;
mod verify;
mod version_order;
mod worker;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Recheck keeps a fleet's vulnerability verdicts current: it matches OSV
/// advisories against SBOM components, applies VEX statements, and reports
/// which artifacts are affected.
#[derive(Debug, Parser)]
#[command(name = "recheck", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load the bundled sample advisories, SBOMs and VEX documents, match them
    /// and print a readable summary (what was loaded, findings, suppressions).
    Demo(demo::DemoArgs),
    /// One-shot match of advisories against SBOMs (with optional VEX): prints
    /// one finding per line (JSON, sorted) or a table.
    Scan(scan::ScanArgs),
    /// Load advisories, SBOMs and VEX through the incremental engine as one
    /// window; prints the same findings, byte for byte, as `scan`.
    Backfill(backfill::BackfillArgs),
    /// Measure the engine against its baselines; prints one JSON document.
    Bench(bench::BenchArgs),
    /// Feed a watched directory or a NATS JetStream subject into a store, one
    /// window per scan or batch, and dispatch the jobs to a queue.
    ///
    /// Every scan of the directory (or batch of messages) becomes one window:
    /// its records, the window's close and the source's offset are appended to
    /// the store's input log in one transaction, then the window is planned and
    /// committed (ledger entry, impact snapshots, recheck jobs). A restart
    /// resumes after the stored offset: nothing is read twice or skipped.
    ///
    /// Directory: new and changed `*.json` files are appended (OSV advisories,
    /// CycloneDX/SPDX SBOMs, OpenVEX/CSAF/CycloneDX VEX, told apart by content);
    /// a document whose file is gone is withdrawn. Hidden files and folders
    /// (`.git`) are ignored.
    ///
    /// NATS: each message is a JSON envelope
    /// `{"kind": "advisory"|"vex"|"sbom", "tenant": T, "name": N, "document": {...},
    /// "artifact": {"labels": {...}, "runtime": "running"}}` (only `kind` and
    /// `document` are required); messages are acknowledged once in the log.
    ///
    /// With `--queue`, the window's jobs are then moved from the store's outbox
    /// to the queue; a queue that lost jobs the store still has as queued is
    /// refilled first (see `--refill`).
    Ingest(ingest::IngestArgs),
    /// Inspect a store's delta ledger (`verify`: check its hash chain).
    Ledger(ledger::LedgerArgs),
    /// Recompute a store's windows from its input log and compare deltas and
    /// jobs with what was recorded: exit 0 identical, 1 different.
    Replay(replay::ReplayArgs),
    /// Run the HTTP control plane (ingest, impact queries, jobs, events) on a
    /// store; `--print-openapi` prints its OpenAPI document.
    Serve(serve::ServeArgs),
    /// Sort versions read from stdin (one per line) in an ecosystem's order.
    VersionOrder(version_order::VersionOrderArgs),
    /// Make the ed25519 key pair that signs completion events (private key
    /// PKCS#8 PEM, mode 0600; public key SPKI PEM); prints the key id.
    Keygen(keygen::KeygenArgs),
    /// Check a DSSE envelope against a public key (ed25519 or ECDSA P-256, PEM
    /// or X.509 certificate): exit 0 valid, 1 invalid with the reason.
    Verify(verify::VerifyArgs),
    /// Run recheck jobs from a shared queue (NATS or Redis) against a shared
    /// store (PostgreSQL or MongoDB): policy verdict, optional HTTP executor,
    /// SLA-aware retries, signed completion events. Stops on SIGTERM/ctrl-c
    /// after finishing the jobs in hand.
    Worker(worker::WorkerArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Scan(args) => scan::run(args),
        Command::Backfill(args) => backfill::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Ingest(args) => ingest::run(args),
        Command::Ledger(args) => ledger::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Serve(args) => serve::run(args),
        Command::VersionOrder(args) => version_order::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Worker(args) => worker::run(args),
    }
}
