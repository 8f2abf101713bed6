//! `recheck ledger`: inspect the delta ledger of a store. `verify` walks the
//! hash chain and exits 0 when it holds, 1 at the first bad entry, and 2
//! when the store cannot be read (so a script tells tampering from an outage).

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use recheck::core::ledger::{verify, Verdict};

#[derive(Debug, Args)]
pub struct LedgerArgs {
    #[command(subcommand)]
    command: LedgerCommand,
}

#[derive(Debug, Subcommand)]
enum LedgerCommand {
    /// Check the hash chain end to end: every entry links to the previous
    /// one and its stored deltas hash to what the entry records. Prints the
    /// entry count and head hash (exit 0), or the first bad entry's index
    /// and why (exit 1); exit 2 if the store cannot be opened or read.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// The store: a file path or `redb:///path` (embedded),
    /// `postgres://…[?schema=NAME]`, or `mongodb://…/DB`.
    #[arg(long, value_name = "URL")]
    store: String,
}

pub fn run(args: LedgerArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        LedgerCommand::Verify(args) => run_verify(args),
    }
}

fn run_verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    match verify_store(&args) {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            Ok(ExitCode::from(2))
        }
    }
}

fn verify_store(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let store = open_existing(&args.store).await?;
        let verdict = verify(store.as_ref())
            .await
            .context("reading the ledger")?;
        Ok(match verdict {
            Verdict::Valid { entries, head } => {
                match head {
                    Some(h) => println!(
                        "ledger valid: {entries} entries, head index {} window {} hash {}",
                        h.index, h.window, h.hash
                    ),
                    None => println!("ledger valid: 0 entries"),
                }
                ExitCode::SUCCESS
            }
            Verdict::Broken {
                index,
                reason,
                verified,
            } => {
                println!(
                    "ledger broken at index {index}: {reason} ({verified} entries before it verified)"
                );
                ExitCode::FAILURE
            }
        })
    })
}

/// Opens a store that must already exist: opening an embedded store creates
/// its file, and a mistyped path must not read as an empty ledger.
pub(super) async fn open_existing(
    url: &str,
) -> anyhow::Result<std::sync::Arc<dyn recheck::store::Store>> {
    if let Some(path) = recheck::store::embedded_path(url) {
        anyhow::ensure!(
            std::path::Path::new(path).is_file(),
            "opening store {url}: no such file"
        );
    }
    recheck::store::open(url)
        .await
        .with_context(|| format!("opening store {url}"))
}
