//! A watched directory (e.g. a checkout of an advisory database that a cron
//! job pulls) as an input stream. Each scan compares the directory with the
//! state the last appended scan left and turns the difference into records:
//! a new or changed file becomes its document's record, a document that no
//! file holds any more becomes a withdrawal (`AdvisoryRemoved`, `VexRemoved`,
//! `ArtifactRemoved`).
//!
//! The source's offset is that state itself: every file's sha256 and the
//! documents it held (advisory id, SBOM artifact, VEX document). So a
//! deletion knows what the deleted file held, and because the state is
//! written in the same transaction as the scan's records, a crash leaves
//! either the whole scan in the log or none of it.
//!
//! What a file is, is decided by its content (see [`formats::sniff`]); a
//! CycloneDX document with vulnerabilities and no components is VEX, any
//! other one an SBOM. Hidden files and folders (`.git`) are not read; only
//! `*.json` files are. A file that stops parsing keeps what it held in force
//! (it is reported, and read again when it changes).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::record::InputRecord;
use crate::formats::{self, ErrorKind, FormatError, Sniffed};
use crate::model::Scope;
use crate::store::{SourceOffset, Store};

use super::{Ack, Batch, Result, Source, SourceError};

/// A document a file held, named as its withdrawal record names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Held {
    Advisory { id: String },
    Sbom { tenant: String, artifact: String },
    Vex { scope: Scope, document: String },
}

impl Held {
    fn removal(self) -> InputRecord {
        match self {
            Held::Advisory { id } => InputRecord::AdvisoryRemoved { id },
            Held::Sbom { tenant, artifact } => InputRecord::ArtifactRemoved { tenant, artifact },
            Held::Vex { scope, document } => InputRecord::VexRemoved { scope, document },
        }
    }
}

/// One file as the last appended scan saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileState {
    pub sha256: String,
    /// Empty for a file that could not be used.
    pub held: Vec<Held>,
}

/// The directory as of the last appended scan, by path relative to the
/// directory (`/`-separated).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirState {
    pub files: BTreeMap<String, FileState>,
}

impl DirState {
    fn held(&self) -> BTreeSet<&Held> {
        self.files.values().flat_map(|f| f.held.iter()).collect()
    }
}

/// How the documents of a directory are scoped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirOptions {
    /// Owner of the SBOMs (and of the VEX documents unless `global_vex`).
    pub tenant: String,
    /// VEX documents are the feed's (visible to every tenant).
    pub global_vex: bool,
}

impl Default for DirOptions {
    fn default() -> Self {
        DirOptions {
            tenant: crate::model::DEFAULT_TENANT.to_string(),
            global_vex: false,
        }
    }
}

/// The directory source.
pub struct DirSource {
    root: PathBuf,
    name: String,
    options: DirOptions,
    state: DirState,
}

impl DirSource {
    /// Watch `root`, resuming from the state the store holds for it. The
    /// source is named after the canonical path, so the same directory
    /// resumes whatever path spelling it is given.
    pub async fn open(root: &Path, options: DirOptions, store: &dyn Store) -> Result<DirSource> {
        let root = std::fs::canonicalize(root).map_err(|source| SourceError::Io {
            path: root.display().to_string(),
            source,
        })?;
        let name = format!("dir:{}", root.display());
        let state = match store.source_offset(&name).await? {
            None => DirState::default(),
            Some(json) => serde_json::from_str(&json).map_err(|e| SourceError::Offset {
                source_name: name.clone(),
                message: e.to_string(),
            })?,
        };
        Ok(DirSource {
            root,
            name,
            options,
            state,
        })
    }

    /// The state of the last appended scan.
    pub fn state(&self) -> &DirState {
        &self.state
    }

    /// Compare the directory with the last appended state.
    pub fn scan(&self) -> Result<Option<Batch>> {
        let mut paths = Vec::new();
        walk(&self.root, &self.root, &mut paths)?;
        paths.sort();
        let mut next = DirState::default();
        let mut upserts = Vec::new();
        let mut rejected = Vec::new();
        for (rel, path) in paths {
            let bytes = std::fs::read(&path).map_err(|source| SourceError::Io {
                path: path.display().to_string(),
                source,
            })?;
            let sha256 = hex::encode(Sha256::digest(&bytes));
            if let Some(old) = self.state.files.get(&rel).filter(|f| f.sha256 == sha256) {
                next.files.insert(rel, old.clone());
                continue;
            }
            let document = path.display().to_string();
            let held = match self.parse(&document, &bytes) {
                Ok(records) => {
                    let held = records.iter().filter_map(held_by).collect();
                    upserts.extend(records);
                    held
                }
                // A file caught half-written by the pull that updates the
                // checkout must not withdraw what it held: its last good
                // version stays in force until it reads again.
                Err(e) => {
                    tracing::warn!(error = %e, "skipping a file of the watched directory");
                    rejected.push(e);
                    self.state
                        .files
                        .get(&rel)
                        .map(|f| f.held.clone())
                        .unwrap_or_default()
                }
            };
            next.files.insert(rel, FileState { sha256, held });
        }
        if next == self.state {
            return Ok(None);
        }
        let still = next.held();
        let mut records: Vec<InputRecord> = self
            .state
            .held()
            .into_iter()
            .filter(|h| !still.contains(h))
            .cloned()
            .map(Held::removal)
            .collect();
        records.extend(upserts);
        let offset = serde_json::to_string(&next).map_err(|e| SourceError::Offset {
            source_name: self.name.clone(),
            message: e.to_string(),
        })?;
        Ok(Some(Batch {
            records,
            offset: SourceOffset {
                source: self.name.clone(),
                offset,
            },
            rejected,
            ack: Ack::None,
        }))
    }

    fn parse(&self, document: &str, bytes: &[u8]) -> Result<Vec<InputRecord>, FormatError> {
        let tenant = Scope::Tenant(self.options.tenant.clone());
        let vex_scope = if self.options.global_vex {
            Scope::Global
        } else {
            tenant.clone()
        };
        let vex = |statements| {
            vec![InputRecord::Vex {
                scope: vex_scope.clone(),
                document: document.to_string(),
                statements,
            }]
        };
        let sbom = |sbom: crate::model::Sbom| {
            vec![InputRecord::Sbom {
                tenant: self.options.tenant.clone(),
                sbom,
            }]
        };
        match formats::sniff(document, bytes)? {
            Sniffed::Osv => Ok(vec![InputRecord::Advisory {
                advisory: formats::osv::parse_advisory(document, bytes)?,
            }]),
            Sniffed::Spdx => Ok(sbom(formats::parse_sbom(document, bytes, tenant)?)),
            Sniffed::OpenVex | Sniffed::Csaf => {
                Ok(vex(formats::parse_vex(document, bytes, vex_scope.clone())?))
            }
            Sniffed::CycloneDx if is_cyclonedx_vex(bytes) => {
                Ok(vex(formats::parse_vex(document, bytes, vex_scope.clone())?))
            }
            Sniffed::CycloneDx => Ok(sbom(formats::parse_sbom(document, bytes, tenant)?)),
            Sniffed::Unknown => Err(FormatError::new(
                document,
                ".",
                ErrorKind::UnknownFormat,
                "not an OSV advisory, SBOM or VEX document",
            )),
        }
    }
}

/// A CycloneDX BOM that lists vulnerabilities and no components is a VEX
/// document; one with components is an SBOM (a vulnerability list beside
/// components is a report about that SBOM, not statements about others).
fn is_cyclonedx_vex(bytes: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return false;
    };
    let non_empty = |key: &str| {
        value
            .get(key)
            .and_then(|v| v.as_array())
            .is_some_and(|a| !a.is_empty())
    };
    non_empty("vulnerabilities") && !non_empty("components")
}

fn held_by(record: &InputRecord) -> Option<Held> {
    match record {
        InputRecord::Advisory { advisory } => Some(Held::Advisory {
            id: advisory.id.clone(),
        }),
        InputRecord::Sbom { tenant, sbom } => Some(Held::Sbom {
            tenant: tenant.clone(),
            artifact: sbom.artifact.id.clone(),
        }),
        InputRecord::Vex {
            scope, document, ..
        } => Some(Held::Vex {
            scope: scope.clone(),
            document: document.clone(),
        }),
        _ => None,
    }
}

/// Every `*.json` file under `dir` that is not hidden, as (relative path,
/// path), sorted by relative path.
fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    let io = |source| SourceError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        entries.push(entry.map_err(io)?);
    }
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push((rel, path));
        }
    }
    Ok(())
}

#[async_trait]
impl Source for DirSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn poll(&mut self) -> Result<Option<Batch>> {
        self.scan()
    }

    async fn committed(&mut self, batch: Batch) -> Result<()> {
        self.state =
            serde_json::from_str(&batch.offset.offset).map_err(|e| SourceError::Offset {
                source_name: self.name.clone(),
                message: e.to_string(),
            })?;
        Ok(())
    }
}
