//! `recheck version-order`: sort versions in an ecosystem's order — the
//! quickest way to check how Recheck compares two versions.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use recheck::versions::{sort_versions, Scheme};

#[derive(Debug, Args)]
pub struct VersionOrderArgs {
    /// OSV ecosystem name, e.g. `PyPI`, `npm`, `Debian:12`, `Alpine:v3.18`, `Maven`.
    #[arg(long, short = 'e')]
    pub ecosystem: String,
}

/// Reads versions one per line on stdin, prints them ascending (stable for
/// equal versions). Exit 2 if some lines do not parse (they are named on
/// stderr; the parseable ones are still printed).
pub fn run(args: VersionOrderArgs) -> anyhow::Result<ExitCode> {
    let scheme = Scheme::for_ecosystem(&args.ecosystem).with_context(|| {
        format!(
            "ecosystem {:?} has no known version order (try PyPI, npm, crates.io, Go, Maven, \
             RubyGems, NuGet, Packagist, Pub, Hex, Debian, Ubuntu, Red Hat, SUSE, Alpine, ...)",
            args.ecosystem
        )
    })?;
    let lines: Vec<String> = io::stdin()
        .lock()
        .lines()
        .collect::<Result<Vec<_>, _>>()
        .context("reading versions from stdin")?
        .into_iter()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    let (sorted, errors) = sort_versions(scheme, &lines);
    let mut out = io::stdout().lock();
    for v in &sorted {
        writeln!(out, "{v}").context("writing to stdout")?;
    }
    out.flush().context("writing to stdout")?;
    for e in &errors {
        eprintln!("not a valid {} version: {e}", args.ecosystem);
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
