//! `recheck scan`: the one-shot reference matcher on files.

use std::io::{self, BufWriter};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};

use recheck::scan::{render, scan};

use super::inputs::{report_errors, InputArgs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object per finding per line, sorted (stable, diffable).
    Json,
    /// Aligned columns for people.
    Table,
}

impl Format {
    /// Write findings to stdout in this format.
    pub fn write_stdout(self, findings: &[recheck::model::Finding]) -> anyhow::Result<()> {
        let out = BufWriter::new(io::stdout().lock());
        match self {
            Format::Json => render::write_json_lines(findings, out),
            Format::Table => render::write_table(findings, out),
        }
        .context("writing findings to stdout")
    }
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
}

pub fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let loaded = args.inputs.load();
    report_errors(&loaded.errors, args.inputs.strict)?;
    let vex = loaded.vex_statements();
    let sboms: Vec<_> = loaded.sboms.into_iter().map(|(_, s)| s).collect();
    let report = scan(&loaded.advisories, &sboms, &vex);
    args.format.write_stdout(&report.findings)?;
    eprintln!(
        "scanned {} artifacts ({} components, {} matchable) against {} advisories: {} affected, {} suppressed by VEX",
        report.stats.artifacts,
        report.stats.components,
        report.stats.matchable_components,
        report.stats.advisories,
        report.stats.affected,
        report.stats.suppressed
    );
    for (eco, n) in &report.stats.unordered_entries {
        eprintln!("note: {n} affected entries in ecosystem {eco:?} have no known version order; matched by their versions[] lists only");
    }
    Ok(ExitCode::SUCCESS)
}
