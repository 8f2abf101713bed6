//! What a job needs to know besides its artifact's findings, read from the
//! store's input log: when its window closed, the artifact's digest (the
//! completion statement's subject) and runtime state, and the advisories'
//! CVSS scores. Every fact is taken as of the job's window (the log up to its
//! `WindowClosed` record), so re-running a job later sees what the first run
//! saw and signs the same statement.
//!
//! The log is read incrementally: each worker keeps one index and reads only
//! the records appended since its last look.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::engine::record::InputRecord;
use crate::model::{RecheckJob, RuntimeState};
use crate::store::{Store, StoreError, StoreErrorKind};

/// A value's history: (seq it was set at, value), seq ascending.
type History<T> = Vec<(u64, T)>;

fn as_of<T>(history: Option<&History<T>>, seq: u64) -> Option<&T> {
    let h = history?;
    let n = h.partition_point(|(s, _)| *s <= seq);
    n.checked_sub(1).map(|i| &h[i].1)
}

#[derive(Default)]
struct Index {
    /// Next input seq to read.
    next: u64,
    windows: HashMap<u64, (u64, Option<DateTime<Utc>>)>,
    digests: HashMap<(String, String), History<Option<String>>>,
    runtime: HashMap<(String, String), History<RuntimeState>>,
    cvss: HashMap<String, History<Option<f64>>>,
}

/// The facts of one job's window.
#[derive(Debug, Clone, PartialEq)]
pub struct JobContext {
    /// The window's close stamp (`None`: the log writer recorded none).
    pub closed_at: Option<DateTime<Utc>>,
    /// sha256 hex of the artifact: its image/file digest when the SBOM
    /// states one, else the sha256 of the artifact id.
    pub artifact_sha256: String,
    pub runtime: RuntimeState,
    /// Highest CVSS base score per advisory (scored advisories only).
    pub cvss: BTreeMap<String, f64>,
}

pub struct InputIndex {
    index: Mutex<Index>,
}

impl Default for InputIndex {
    fn default() -> Self {
        InputIndex {
            index: Mutex::new(Index {
                next: 1,
                ..Index::default()
            }),
        }
    }
}

const PAGE: usize = 2_000;

impl InputIndex {
    /// The context of `job` as of its window, reading the log as far as
    /// needed.
    pub async fn context(
        &self,
        store: &dyn Store,
        job: &RecheckJob,
        advisories: &[&str],
    ) -> Result<JobContext, StoreError> {
        let mut ix = self.index.lock().await;
        if !ix.windows.contains_key(&job.window) {
            ix.catch_up(store).await?;
        }
        let Some(&(seq, closed_at)) = ix.windows.get(&job.window) else {
            return Err(StoreError::new(
                StoreErrorKind::NotFound,
                format!(
                    "window {} of job {} is not closed in the input log",
                    job.window, job.id
                ),
            ));
        };
        let key = (job.tenant.clone(), job.artifact.clone());
        let digest = as_of(ix.digests.get(&key), seq).cloned().flatten();
        let artifact_sha256 = digest
            .as_deref()
            .and_then(|d| d.strip_prefix("sha256:"))
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_ascii_lowercase)
            .unwrap_or_else(|| hex::encode(Sha256::digest(job.artifact.as_bytes())));
        let runtime = as_of(ix.runtime.get(&key), seq)
            .copied()
            .unwrap_or(RuntimeState::Unknown);
        let cvss = advisories
            .iter()
            .filter_map(|a| {
                let score = as_of(ix.cvss.get(*a), seq).copied().flatten()?;
                Some((a.to_string(), score))
            })
            .collect();
        Ok(JobContext {
            closed_at,
            artifact_sha256,
            runtime,
            cvss,
        })
    }
}

impl Index {
    async fn catch_up(&mut self, store: &dyn Store) -> Result<(), StoreError> {
        loop {
            let page = store.read_inputs(self.next, PAGE).await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            self.next = last.seq + 1;
            for input in &page {
                if !matches!(
                    input.kind.as_str(),
                    "sbom"
                        | "artifact_removed"
                        | "artifact_metadata"
                        | "advisory"
                        | "advisory_removed"
                        | "window_closed"
                ) {
                    continue;
                }
                let seq = input.seq;
                let record = input.log_entry()?.record;
                if let Some(at) = record.close_stamp() {
                    if let InputRecord::WindowClosed { window, .. } = record {
                        self.windows.insert(window, (seq, Some(at)));
                    }
                    continue;
                }
                match record {
                    InputRecord::WindowClosed { window, .. } => {
                        self.windows.insert(window, (seq, None));
                    }
                    InputRecord::Sbom { tenant, sbom } => {
                        let key = (tenant, sbom.artifact.id.clone());
                        self.digests
                            .entry(key)
                            .or_default()
                            .push((seq, sbom.artifact.digest));
                    }
                    InputRecord::ArtifactRemoved { tenant, artifact } => {
                        self.digests
                            .entry((tenant, artifact))
                            .or_default()
                            .push((seq, None));
                    }
                    InputRecord::ArtifactMetadata {
                        tenant,
                        artifact,
                        runtime,
                        ..
                    } => {
                        self.runtime
                            .entry((tenant, artifact))
                            .or_default()
                            .push((seq, runtime));
                    }
                    InputRecord::Advisory { advisory } => {
                        let score = advisory.max_severity().map(|s| s.score);
                        self.cvss
                            .entry(advisory.id.clone())
                            .or_default()
                            .push((seq, score));
                    }
                    InputRecord::AdvisoryRemoved { id } => {
                        self.cvss.entry(id).or_default().push((seq, None));
                    }
                    InputRecord::Vex { .. } | InputRecord::VexRemoved { .. } => {}
                }
            }
        }
    }
}
