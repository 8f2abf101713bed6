//! `recheck ledger`: inspect the delta ledger of a store. `verify` walks the
//! hash chain and exits 0 when it holds, 1 at the first bad entry, and 2
//! when the store cannot be read (so a script tells tampering from an outage).

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};

use recheck::core::ledger::{verify, Verdict};
use recheck::store::Store;

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
    Ok(on_existing_store(&args.store, |store| async move {
        let verdict = verify(store.as_ref()).await.context("reading the ledger")?;
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
    }))
}

/// Runs `check` against the existing store at `url` on a one-thread runtime
/// and returns its exit code; any error (no runtime, store missing or
/// unreadable) is printed and becomes exit 2, so a script tells a failed
/// check (1) from an outage.
pub(super) fn on_existing_store<F, Fut>(url: &str, check: F) -> ExitCode
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = anyhow::Result<ExitCode>>,
{
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|runtime| runtime.block_on(async { check(open_existing(url).await?).await }));
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::from(2)
    })
}

/// Opens a store that must already exist: opening an embedded store creates
/// its file, and a mistyped path must not read as an empty ledger.
async fn open_existing(url: &str) -> anyhow::Result<Arc<dyn Store>> {
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
