//! `recheck demo`: a one-shot tour on the bundled sample set. It loads the
//! samples, matches them with the reference matcher and explains the result
//! in words, then exits; with `--serve` it then runs `recheck serve` with the
//! samples loaded (tenant `default`, a generated admin key) and prints the
//! requests to try.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use recheck::model::{Finding, FindingStatus, MatchReason, Scope, DEFAULT_TENANT};
use recheck::scan::scan;

use super::inputs::{load, report_errors};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Sample directory with `advisories/`, `sboms/` and `vex/` inside
    /// (defaults to the set bundled with the repository).
    #[arg(long, value_name = "DIR")]
    pub samples: Option<PathBuf>,
    /// After the tour, serve the HTTP API with the samples loaded (until
    /// Ctrl-C).
    #[arg(long)]
    pub serve: bool,
    /// With --serve: the address to listen on.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8440",
        requires = "serve"
    )]
    pub listen: std::net::SocketAddr,
    /// With --serve: the store (default: a fresh embedded store, with the
    /// server's signing key beside it, in a temporary directory removed on
    /// exit).
    #[arg(long, value_name = "URL", requires = "serve")]
    pub store: Option<String>,
}

fn reason_text(reason: &MatchReason) -> String {
    match reason {
        MatchReason::Range {
            introduced, until, ..
        } => match until {
            Some(u) => format!("in range introduced {introduced}, {u}"),
            None => format!("in range introduced {introduced}, no fix yet"),
        },
        MatchReason::Listed { .. } => "listed in the advisory's versions".to_string(),
    }
}

fn finding_line(f: &Finding) -> String {
    let alias = if f.vulnerability != f.advisory {
        format!(" ({})", f.vulnerability)
    } else {
        String::new()
    };
    let severity = f.severity.map(|s| s.as_str()).unwrap_or("unrated");
    let mut line = format!(
        "{} {}{alias}: {}/{} {} [{severity}], {}",
        match f.status {
            FindingStatus::Affected => "AFFECTED  ",
            FindingStatus::Suppressed => "SUPPRESSED",
        },
        f.advisory,
        f.ecosystem,
        f.package,
        f.version,
        reason_text(&f.reason)
    );
    if let Some(status) = f.vex_status {
        line.push_str(&format!(
            "\n               VEX {}{} from {}",
            status.as_str(),
            f.justification
                .as_deref()
                .map(|j| format!(" ({j})"))
                .unwrap_or_default(),
            f.vex_source.as_deref().unwrap_or("?")
        ));
    }
    line
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = args.samples.unwrap_or_else(recheck::samples::bundled_dir);
    if !dir.is_dir() {
        anyhow::bail!(
            "sample directory {} not found (pass --samples DIR)",
            dir.display()
        );
    }
    let loaded = load(
        &[dir.join("advisories")],
        &[dir.join("sboms")],
        &[dir.join("vex")],
        Scope::Tenant(DEFAULT_TENANT.to_string()),
    );
    report_errors(&loaded.errors, false)?;
    let sboms: Vec<_> = loaded.sboms.iter().map(|(_, s)| s.clone()).collect();
    let report = scan(&loaded.advisories, &sboms, &loaded.vex_statements());
    let st = &report.stats;

    println!("Recheck demo: bundled samples in {}\n", dir.display());
    println!("Loaded");
    println!(
        "  {} advisories ({} withdrawn), forming {} distinct vulnerabilities once aliases are merged",
        st.advisories, st.withdrawn, st.vulnerabilities
    );
    println!("  {} SBOMs:", loaded.sboms.len());
    for (name, sbom) in &loaded.sboms {
        println!(
            "    {} {} ({:?} {}, {} components) from {}",
            sbom.artifact.name.as_deref().unwrap_or("?"),
            sbom.artifact.version.as_deref().unwrap_or(""),
            sbom.format,
            sbom.spec_version,
            sbom.components.len(),
            name
        );
        println!("      artifact id {}", sbom.artifact.id);
    }
    println!(
        "  {} VEX statements from {} document(s)",
        st.vex_statements,
        loaded.vex_documents.len()
    );

    println!(
        "\nFindings: {} affected, {} suppressed by VEX ({} matchable components checked)",
        st.affected, st.suppressed, st.matchable_components
    );
    let mut by_artifact: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for f in &report.findings {
        by_artifact.entry(&f.artifact).or_default().push(f);
    }
    for (name, sbom) in &loaded.sboms {
        let findings = by_artifact
            .get(sbom.artifact.id.as_str())
            .cloned()
            .unwrap_or_default();
        println!(
            "\n  {} {} ({name})",
            sbom.artifact.name.as_deref().unwrap_or(&sbom.artifact.id),
            sbom.artifact.version.as_deref().unwrap_or("")
        );
        if findings.is_empty() {
            println!("    no findings");
        }
        for f in findings {
            println!("    {}", finding_line(f));
        }
    }
    println!(
        "\nTry: recheck scan --advisories {0}/advisories --sbom {0}/sboms --vex {0}/vex --format table",
        dir.display()
    );
    if !args.serve {
        return Ok(ExitCode::SUCCESS);
    }
    let example = report
        .findings
        .iter()
        .find(|f| f.status == FindingStatus::Affected)
        .map(|f| (f.vulnerability.clone(), f.artifact.clone()));
    serve_samples(loaded, args.listen, args.store, example)
}

fn serve_samples(
    loaded: super::inputs::Loaded,
    listen: std::net::SocketAddr,
    store: Option<String>,
    example: Option<(String, String)>,
) -> anyhow::Result<ExitCode> {
    let (store, temp) = match store {
        Some(url) => (url, None),
        None => {
            // A directory, since the server keeps its signing key beside the store.
            let dir = std::env::temp_dir().join(format!("recheck-demo-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            (dir.join("demo.redb").display().to_string(), Some(dir))
        }
    };
    let (config, key) = super::serve::load_config(None)?;
    let key = key.unwrap_or_default();
    let args = super::serve::ServeArgs::defaults(listen, store);
    let records = loaded.into_records(DEFAULT_TENANT);
    let outcome = super::serve::serve(&args, config, records, |addr, signing| {
        let base = format!("http://{addr}");
        println!("\nServing the samples (tenant {DEFAULT_TENANT}) on {base} until Ctrl-C;");
        println!("their recheck jobs run in-process and emit signed completion events.");
        println!("  API key (all scopes): {key}");
        println!("  OpenAPI document:     {base}/api/v1/openapi.json");
        super::serve::print_key(signing, "  ");
        let auth = format!("-H 'Authorization: Bearer {key}'");
        if let Some((vulnerability, artifact)) = &example {
            println!("  impact of {vulnerability}:\n    curl {auth} {base}/api/v1/impact/advisories/{vulnerability}");
            println!("  findings of {artifact}:\n    curl {auth} '{base}/api/v1/impact/artifacts?artifact={artifact}'");
        }
        println!("  recheck jobs (state succeeded once run):\n    curl {auth} '{base}/api/v1/jobs?state=succeeded'");
        println!("  why a job's verdict is what it is:\n    curl {auth} {base}/api/v1/jobs/JOB_ID/explain");
        println!("  signed completion events, live (Server-Sent Events):\n    curl -N {auth} {base}/api/v1/events/stream");
        println!("  one event's DSSE envelope, to check with `recheck verify`:\n    curl {auth} {base}/api/v1/events/EVENT_ID");
        println!("  what changed:\n    curl {auth} '{base}/api/v1/impact/changes?since_window=0'");
    });
    if let Some(dir) = temp {
        let _ = std::fs::remove_dir_all(dir);
    }
    outcome
}
