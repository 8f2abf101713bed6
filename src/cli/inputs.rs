//! Loading the documents named on the command line, reporting the bad ones
//! on stderr without stopping at them.

use std::path::PathBuf;

use clap::Args;

use recheck::engine::record::InputRecord;
use recheck::formats::{self, load::LoadReport, FormatError};
use recheck::model::{Advisory, Sbom, Scope, VexStatement};

/// Document inputs shared by `scan` and the commands built on the engine.
#[derive(Debug, Clone, Args)]
pub struct InputArgs {
    /// OSV advisories: JSON files, directories of them, or osv.dev `all.zip` exports.
    #[arg(long = "advisories", value_name = "PATH", num_args = 1.., required = true)]
    pub advisories: Vec<PathBuf>,
    /// SBOMs (CycloneDX JSON 1.2–1.6 or SPDX 2.2/2.3 JSON): files or directories.
    #[arg(long = "sbom", value_name = "PATH", num_args = 1.., required = true)]
    pub sboms: Vec<PathBuf>,
    /// VEX documents (OpenVEX, CSAF 2.0, CycloneDX VEX): files or directories.
    #[arg(long = "vex", value_name = "PATH", num_args = 1..)]
    pub vex: Vec<PathBuf>,
    /// Tenant that owns the SBOMs and VEX documents given here.
    #[arg(long, default_value = recheck::model::DEFAULT_TENANT)]
    pub tenant: String,
    /// Fail (exit 1) if any document cannot be read or parsed, instead of
    /// reporting and skipping it.
    #[arg(long)]
    pub strict: bool,
}

/// Everything loaded, in a stable order (documents sorted by name).
pub struct Loaded {
    pub advisories: Vec<Advisory>,
    pub sboms: Vec<(String, Sbom)>,
    /// VEX statements per document, documents sorted by name.
    pub vex_documents: Vec<(String, Vec<VexStatement>)>,
    pub errors: Vec<FormatError>,
}

impl Loaded {
    /// The input-log records of everything loaded (no `WindowClosed`):
    /// advisories, then VEX documents of `tenant`, then SBOMs.
    pub fn into_records(self, tenant: &str) -> Vec<InputRecord> {
        let mut records: Vec<InputRecord> = Vec::new();
        records.extend(
            self.advisories
                .into_iter()
                .map(|advisory| InputRecord::Advisory { advisory }),
        );
        records.extend(
            self.vex_documents
                .into_iter()
                .map(|(document, statements)| InputRecord::Vex {
                    scope: Scope::Tenant(tenant.to_string()),
                    document,
                    statements,
                }),
        );
        records.extend(self.sboms.into_iter().map(|(_, sbom)| InputRecord::Sbom {
            tenant: recheck::scan::tenant_of(&sbom).to_string(),
            sbom,
        }));
        records
    }

    /// All VEX statements in input order (documents by name, then as written).
    pub fn vex_statements(&self) -> Vec<VexStatement> {
        self.vex_documents
            .iter()
            .flat_map(|(_, v)| v.iter().cloned())
            .collect()
    }
}

impl InputArgs {
    pub fn load(&self) -> Loaded {
        load(
            &self.advisories,
            &self.sboms,
            &self.vex,
            Scope::Tenant(self.tenant.clone()),
        )
    }
}

pub fn load(advisories: &[PathBuf], sboms: &[PathBuf], vex: &[PathBuf], scope: Scope) -> Loaded {
    let adv: LoadReport<Advisory> = formats::load::load(advisories, formats::osv::parse_advisory);
    let sb = formats::load::load(sboms, |name, bytes| {
        formats::parse_sbom(name, bytes, scope.clone())
    });
    let vx = formats::load::load(vex, |name, bytes| {
        formats::parse_vex(name, bytes, scope.clone())
    });
    let mut errors = adv.errors;
    errors.extend(sb.errors);
    errors.extend(vx.errors);
    Loaded {
        advisories: adv.items.into_iter().map(|(_, a)| a).collect(),
        sboms: sb.items,
        vex_documents: vx.items,
        errors,
    }
}

/// Print load errors on stderr; with `strict`, turn them into a failure.
pub fn report_errors(errors: &[FormatError], strict: bool) -> anyhow::Result<()> {
    for e in errors {
        eprintln!("skipped: {e}");
    }
    if strict && !errors.is_empty() {
        anyhow::bail!(
            "{} document(s) could not be loaded (--strict)",
            errors.len()
        );
    }
    Ok(())
}
