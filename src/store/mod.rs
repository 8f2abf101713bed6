//! Durable state of the scheduler core behind one small trait, so the same
//! core runs on an embedded file (redb, the default), PostgreSQL or MongoDB,
//! and one conformance suite (`tests/store_conformance.rs`) holds every
//! backend to the same behaviour.
//!
//! What every backend guarantees:
//! - the input log has one writer; the store assigns consecutive sequence
//!   numbers from 1, and the per-source offsets given with an append are
//!   written in the same transaction, so a restarted source neither rereads
//!   nor skips;
//! - a window commit (ledger entry, impact snapshot changes, new jobs, cursor
//!   moves) is one transaction, the outbox: either all of it is visible or
//!   none, and committing a window that is already committed writes nothing
//!   and says so;
//! - job state changes are compare-and-set on the current state, checked
//!   against [`JobState::allows`], and recorded with time and attempt;
//! - a run commit (the run, its jobs, cursor moves) is one transaction that
//!   writes nothing when the run id exists, so a fire time commits once;
//! - a compaction step of the input snapshot is one transaction,
//!   conditional on the seq the snapshot stood at.
//!
//! Everything that must be identical across backends (encodings, ledger
//! hashing, commit validation, snapshot arithmetic) is computed here, once;
//! the backends only persist.

pub mod embedded;
pub mod mongo;
pub mod postgres;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::engine::record::{InputRecord, LogEntry};
use crate::model::{
    Escalation, ImpactDelta, ImpactFinding, JobState, JobTransition, LedgerEntry, LedgerPayload,
    LedgerRecord, RecheckJob, Run, Schedule, Scope, StoredEvent,
};

/// What went wrong, for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store URL is not one we can open.
    Url,
    /// The backend could not be reached or refused the connection.
    Connect,
    /// The backend failed an operation.
    Backend,
    /// Stored data does not decode.
    Corrupt,
    /// Another writer got there first (e.g. two input-log writers).
    Conflict,
    /// The caller asked for something the model forbids (a job transition the
    /// state machine has no edge for, a window out of order, an inconsistent
    /// commit).
    Invalid,
    NotFound,
}

impl fmt::Display for StoreErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreErrorKind::Url => "bad store URL",
            StoreErrorKind::Connect => "cannot connect",
            StoreErrorKind::Backend => "backend error",
            StoreErrorKind::Corrupt => "corrupt data",
            StoreErrorKind::Conflict => "conflict",
            StoreErrorKind::Invalid => "invalid request",
            StoreErrorKind::NotFound => "not found",
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct StoreError {
    pub kind: StoreErrorKind,
    pub message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> StoreError {
        StoreError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    pub fn with_source(
        kind: StoreErrorKind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreError {
        StoreError {
            kind,
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    pub(crate) fn corrupt(what: impl fmt::Display, source: serde_json::Error) -> StoreError {
        StoreError::with_source(StoreErrorKind::Corrupt, format!("decoding {what}"), source)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An input record ready to append: its canonical JSON bytes and the
/// metadata the log is indexed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInput {
    /// `None` for global records (advisories, feed VEX, window marks).
    pub tenant: Option<String>,
    pub kind: &'static str,
    /// sha256 hex of `json`.
    pub sha256: String,
    pub json: Vec<u8>,
}

impl NewInput {
    pub fn encode(record: &InputRecord) -> Result<NewInput> {
        let json = serde_json::to_vec(record).map_err(|e| {
            StoreError::with_source(StoreErrorKind::Invalid, "encoding an input record", e)
        })?;
        let (kind, tenant) = match record {
            InputRecord::Advisory { .. } => ("advisory", None),
            InputRecord::AdvisoryRemoved { .. } => ("advisory_removed", None),
            InputRecord::Sbom { tenant, .. } => ("sbom", Some(tenant)),
            InputRecord::ArtifactRemoved { tenant, .. } => ("artifact_removed", Some(tenant)),
            InputRecord::Vex { scope, .. } => ("vex", scope_tenant(scope)),
            InputRecord::VexRemoved { scope, .. } => ("vex_removed", scope_tenant(scope)),
            InputRecord::ArtifactMetadata { tenant, .. } => ("artifact_metadata", Some(tenant)),
            InputRecord::WindowClosed { .. } => ("window_closed", None),
        };
        Ok(NewInput {
            tenant: tenant.cloned(),
            kind,
            sha256: hex::encode(Sha256::digest(&json)),
            json,
        })
    }
}

fn scope_tenant(scope: &Scope) -> Option<&String> {
    match scope {
        Scope::Global => None,
        Scope::Tenant(t) => Some(t),
    }
}

/// One stored input-log entry, with the exact bytes that were appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputEntry {
    pub seq: u64,
    pub tenant: Option<String>,
    pub kind: String,
    pub sha256: String,
    pub json: Vec<u8>,
}

impl InputEntry {
    pub fn log_entry(&self) -> Result<LogEntry> {
        let record = serde_json::from_slice(&self.json)
            .map_err(|e| StoreError::corrupt(format_args!("input record {}", self.seq), e))?;
        Ok(LogEntry {
            seq: self.seq,
            record,
        })
    }
}

/// Where a source (`nats:ingest`, `dir:/srv/advisories`, …) has got to; the
/// value is the source's own (a stream sequence, a file-state digest, …).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SourceOffset {
    pub source: String,
    pub offset: String,
}

impl SourceOffset {
    /// Every backend checks this where it writes the offset, inside the
    /// append's transaction (after the records), so a refused offset also
    /// undoes the records.
    pub(crate) fn check(&self) -> Result<()> {
        if self.source.is_empty() {
            return Err(StoreError::new(
                StoreErrorKind::Invalid,
                "a source offset needs a source name",
            ));
        }
        Ok(())
    }
}

/// A named consumer's new position in the delta ledger (the index of the next
/// entry it will read).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CursorMove {
    pub name: String,
    pub position: u64,
}

/// Everything one closed window writes, as one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowCommit {
    pub window: u64,
    /// Sequence number of the window's `WindowClosed` record.
    pub seq: u64,
    /// Sorted (see [`WindowCommit::new`]).
    pub deltas: Vec<ImpactDelta>,
    /// Planned jobs of this window, sorted by id.
    pub jobs: Vec<RecheckJob>,
    pub cursors: Vec<CursorMove>,
}

impl WindowCommit {
    /// A commit with its deltas and jobs in canonical order.
    pub fn new(
        window: u64,
        seq: u64,
        mut deltas: Vec<ImpactDelta>,
        mut jobs: Vec<RecheckJob>,
        mut cursors: Vec<CursorMove>,
    ) -> WindowCommit {
        deltas.sort();
        jobs.sort_by(|a, b| a.id.cmp(&b.id));
        cursors.sort();
        WindowCommit {
            window,
            seq,
            deltas,
            jobs,
            cursors,
        }
    }

    fn check(&self) -> Result<()> {
        let invalid = |m: String| Err(StoreError::new(StoreErrorKind::Invalid, m));
        if let Some(d) = self.deltas.iter().find(|d| d.window != self.window) {
            return invalid(format!(
                "delta of window {} in the commit of window {}",
                d.window, self.window
            ));
        }
        if !self.deltas.is_sorted() {
            return invalid("deltas are not sorted (build commits with WindowCommit::new)".into());
        }
        for job in &self.jobs {
            if job.window != self.window || job.state != JobState::Planned || job.run.is_some() {
                return invalid(format!(
                    "job {} (window {}, {}) is not a planned job of window {}",
                    job.id,
                    job.window,
                    job.state.as_str(),
                    self.window
                ));
            }
            if job.derived_id() != job.id {
                return invalid(format!("job id {} does not match its content", job.id));
            }
        }
        Ok(())
    }

    /// The ledger payload bytes this commit hashes and stores.
    pub fn payload(&self) -> Vec<u8> {
        LedgerPayload {
            window: self.window,
            seq: self.seq,
            deltas: self.deltas.clone(),
        }
        .to_bytes()
    }

    /// Net snapshot changes: each distinct row with its key and summed diff.
    pub fn snapshot_changes(&self) -> Vec<SnapshotChange> {
        let mut net: BTreeMap<(String, String, String), (ImpactFinding, i64)> = BTreeMap::new();
        for d in &self.deltas {
            let key = (
                d.finding.tenant.clone(),
                d.finding.artifact.clone(),
                d.finding.key(),
            );
            net.entry(key).or_insert_with(|| (d.finding.clone(), 0)).1 += d.diff;
        }
        net.into_iter()
            .filter(|(_, (_, diff))| *diff != 0)
            .map(|((_, _, key), (finding, diff))| SnapshotChange { key, finding, diff })
            .collect()
    }
}

/// One snapshot row's net change within a window: its count moves by `diff`
/// and the row goes away when the count reaches zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotChange {
    pub key: String,
    pub finding: ImpactFinding,
    pub diff: i64,
}

/// A run and its jobs as one transaction (the run's outbox), with cursor
/// moves (a schedule's last fire time) in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCommit {
    pub run: Run,
    /// Planned jobs of the run, sorted by id.
    pub jobs: Vec<RecheckJob>,
    pub cursors: Vec<CursorMove>,
}

impl RunCommit {
    /// Every backend checks this before it writes anything.
    pub(crate) fn check(&self) -> Result<()> {
        let invalid = |m: String| Err(StoreError::new(StoreErrorKind::Invalid, m));
        for job in &self.jobs {
            if job.state != JobState::Planned || job.run.as_deref() != Some(self.run.id.as_str()) {
                return invalid(format!(
                    "job {} ({}) is not a planned job of run {}",
                    job.id,
                    job.state.as_str(),
                    self.run.id
                ));
            }
            if job.derived_id() != job.id {
                return invalid(format!("job id {} does not match its content", job.id));
            }
        }
        if !self.jobs.is_sorted_by(|a, b| a.id < b.id)
            || !self.jobs.iter().map(|j| &j.id).eq(self.run.jobs.iter())
        {
            return invalid(format!(
                "run {}: its job list is not its jobs' ids in order",
                self.run.id
            ));
        }
        for c in &self.cursors {
            to_i64(c.position)?;
        }
        Ok(())
    }
}

/// What a run commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Committed {
        new_jobs: usize,
    },
    /// A run with this id exists (another scheduler, an earlier attempt);
    /// nothing was written.
    AlreadyExists {
        run: Box<Run>,
    },
}

/// Where the compacted snapshot of current inputs stands: it holds the
/// latest record of every live document as of the input-log record `seq`,
/// the `WindowClosed` of `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotHead {
    pub seq: u64,
    pub window: u64,
    /// Records the snapshot holds.
    pub records: u64,
}

/// One snapshot row: a live document's latest input record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRow {
    /// The document the record is the latest of (`["advisory","<id>"]`, …).
    pub key: String,
    pub entry: InputEntry,
}

/// One compaction step: moves the snapshot from `base` (the seq it
/// reflected; `None`: no snapshot yet) to `seq` / `window`, replacing the
/// rows of `put` and removing the rows of `delete`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotUpdate {
    pub base: Option<u64>,
    pub seq: u64,
    pub window: u64,
    pub put: Vec<SnapshotRow>,
    pub delete: Vec<String>,
}

impl SnapshotUpdate {
    /// Every backend checks this before it writes anything.
    pub(crate) fn check(&self) -> Result<()> {
        let invalid = |m: String| Err(StoreError::new(StoreErrorKind::Invalid, m));
        let base = self.base.unwrap_or(0);
        if self.base.is_some() && self.seq <= base {
            return invalid(format!(
                "snapshot update to seq {} does not follow seq {base}",
                self.seq
            ));
        }
        let mut keys = std::collections::BTreeSet::new();
        for row in &self.put {
            if row.entry.seq > self.seq || (self.base.is_some() && row.entry.seq <= base) {
                return invalid(format!(
                    "snapshot row {} (seq {}) is outside ({base}, {}]",
                    row.key, row.entry.seq, self.seq
                ));
            }
            if !keys.insert(row.key.as_str()) {
                return invalid(format!("snapshot row {} given twice", row.key));
            }
            to_i64(row.entry.seq)?;
        }
        if let Some(k) = self.delete.iter().find(|k| keys.contains(k.as_str())) {
            return invalid(format!("snapshot row {k} both put and deleted"));
        }
        to_i64(self.seq)?;
        to_i64(self.window)?;
        Ok(())
    }
}

/// What a window commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    Committed {
        entry: LedgerEntry,
        new_jobs: usize,
    },
    /// The window was committed before; nothing was written.
    AlreadyCommitted {
        entry: LedgerEntry,
    },
}

impl CommitOutcome {
    pub fn entry(&self) -> &LedgerEntry {
        match self {
            CommitOutcome::Committed { entry, .. } | CommitOutcome::AlreadyCommitted { entry } => {
                entry
            }
        }
    }
}

/// The decision a backend takes inside its commit transaction, from what it
/// read there: the entry already stored for this window (if any) and the
/// chain's head.
pub(crate) enum Decision {
    Already(LedgerEntry),
    Append {
        entry: LedgerEntry,
        payload: Vec<u8>,
    },
}

pub(crate) fn decide(
    commit: &WindowCommit,
    existing: Option<LedgerEntry>,
    head: Option<&LedgerEntry>,
) -> Result<Decision> {
    if let Some(entry) = existing {
        return Ok(Decision::Already(entry));
    }
    commit.check()?;
    if let Some(head) = head {
        if commit.window <= head.window || commit.seq <= head.seq {
            return Err(StoreError::new(
                StoreErrorKind::Invalid,
                format!(
                    "window {} (seq {}) does not follow the last committed window {} (seq {})",
                    commit.window, commit.seq, head.window, head.seq
                ),
            ));
        }
    }
    let payload = commit.payload();
    let entry = LedgerEntry::next(head, commit.window, commit.seq, &payload);
    Ok(Decision::Append { entry, payload })
}

/// Only work not yet started is escalated.
pub(crate) fn check_pending(from: JobState) -> Result<()> {
    match from {
        JobState::Planned | JobState::Queued | JobState::Retrying => Ok(()),
        other => Err(StoreError::new(
            StoreErrorKind::Invalid,
            format!("a {} job cannot be escalated", other.as_str()),
        )),
    }
}

/// Refuse a transition the state machine has no edge for.
pub(crate) fn check_transition(t: &JobTransition) -> Result<()> {
    if t.from.allows(t.to) {
        Ok(())
    } else {
        Err(StoreError::new(
            StoreErrorKind::Invalid,
            format!("no job transition {} → {}", t.from.as_str(), t.to.as_str()),
        ))
    }
}

/// Which jobs to list; `None` matches everything. Results are ordered by
/// (window, id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub tenant: Option<String>,
    pub state: Option<JobState>,
    pub artifact: Option<String>,
    pub limit: Option<usize>,
}

impl JobFilter {
    pub fn matches(&self, job: &RecheckJob) -> bool {
        self.tenant.as_ref().is_none_or(|t| *t == job.tenant)
            && self.state.is_none_or(|s| s == job.state)
            && self.artifact.as_ref().is_none_or(|a| *a == job.artifact)
    }
}

/// An impact query, always within one tenant. Results are sorted
/// ([`ImpactFinding`]'s order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImpactQuery {
    Artifact {
        tenant: String,
        artifact: String,
    },
    Advisory {
        tenant: String,
        advisory: String,
    },
    Vulnerability {
        tenant: String,
        vulnerability: String,
    },
    /// A purl with version (exact) or without (any version of the package).
    Purl {
        tenant: String,
        purl: String,
    },
}

impl ImpactQuery {
    pub fn tenant(&self) -> &str {
        match self {
            ImpactQuery::Artifact { tenant, .. }
            | ImpactQuery::Advisory { tenant, .. }
            | ImpactQuery::Vulnerability { tenant, .. }
            | ImpactQuery::Purl { tenant, .. } => tenant,
        }
    }

    pub fn matches(&self, f: &ImpactFinding) -> bool {
        f.tenant == self.tenant()
            && match self {
                ImpactQuery::Artifact { artifact, .. } => f.artifact == *artifact,
                ImpactQuery::Advisory { advisory, .. } => f.advisory == *advisory,
                ImpactQuery::Vulnerability { vulnerability, .. } => {
                    f.vulnerability == *vulnerability
                }
                ImpactQuery::Purl { purl, .. } => {
                    f.purl.as_deref() == Some(purl) || f.purl_base() == Some(purl)
                }
            }
    }
}

/// The store the scheduler core runs on. Object safe: the core holds an
/// `Arc<dyn Store>` opened from a URL by [`open`].
#[async_trait]
pub trait Store: Send + Sync {
    /// `embedded`, `postgres` or `mongodb`.
    fn backend(&self) -> &'static str;

    /// Bytes the store occupies on disk (data and indexes), for capacity
    /// planning and the backfill report; `None` where the backend cannot say.
    async fn storage_bytes(&self) -> Result<Option<u64>>;

    // --- input log -------------------------------------------------------

    /// Append records (single writer), assigning the next sequence numbers,
    /// and store `offsets` in the same transaction. Returns the assigned
    /// sequence numbers.
    async fn append_inputs(
        &self,
        records: &[NewInput],
        offsets: &[SourceOffset],
    ) -> Result<Vec<u64>>;
    /// Up to `limit` entries with `seq >= from`, in order.
    async fn read_inputs(&self, from: u64, limit: usize) -> Result<Vec<InputEntry>>;
    /// The last assigned sequence number (0 for an empty log).
    async fn last_seq(&self) -> Result<u64>;
    async fn source_offset(&self, source: &str) -> Result<Option<String>>;

    // --- window commit and ledger ---------------------------------------

    async fn commit_window(&self, commit: &WindowCommit) -> Result<CommitOutcome>;
    /// Up to `limit` ledger entries with `index >= from`, in order.
    async fn read_ledger(&self, from: u64, limit: usize) -> Result<Vec<LedgerRecord>>;
    /// The last committed entry: the window (and input seq) to resume after.
    async fn ledger_head(&self) -> Result<Option<LedgerEntry>>;

    // --- cursors ---------------------------------------------------------

    async fn cursor(&self, name: &str) -> Result<Option<u64>>;
    /// Move `name` to `position` if it is still at `expected` (`None`: the
    /// cursor must not exist yet). Returns whether it moved.
    async fn set_cursor(&self, name: &str, expected: Option<u64>, position: u64) -> Result<bool>;

    // --- jobs --------------------------------------------------------------

    async fn job(&self, id: &str) -> Result<Option<RecheckJob>>;
    async fn jobs(&self, filter: &JobFilter) -> Result<Vec<RecheckJob>>;
    /// Apply `t` if the job is still in `t.from` (and record it); `Ok(false)`
    /// when it is not (a stale transition), an error when the job does not
    /// exist or the state machine has no such edge.
    async fn transition_job(&self, id: &str, t: &JobTransition) -> Result<bool>;
    /// The job's recorded transitions, oldest first.
    async fn job_history(&self, id: &str) -> Result<Vec<JobTransition>>;
    /// Record `escalation` on a job that has not started (planned, queued or
    /// retrying, as `from` says) if it is still in `from`; its id, planned
    /// content and state stay. `Ok(false)` when it has moved on, an error
    /// when it does not exist. (Runtime hooks escalate the pending jobs of an
    /// artifact that starts running.)
    async fn escalate_job(&self, id: &str, from: JobState, escalation: &Escalation)
        -> Result<bool>;

    /// The outbox: up to `limit` planned jobs not yet dispatched, by (window, id).
    async fn outbox(&self, limit: usize) -> Result<Vec<RecheckJob>> {
        self.jobs(&JobFilter {
            state: Some(JobState::Planned),
            limit: Some(limit),
            ..JobFilter::default()
        })
        .await
    }

    /// Mark jobs dispatched (planned → queued) once the queue has them;
    /// returns how many moved (a job already moved is skipped).
    async fn mark_dispatched(&self, ids: &[String], at: &str) -> Result<usize> {
        let t = JobTransition {
            from: JobState::Planned,
            to: JobState::Queued,
            at: at.to_string(),
            attempt: 0,
        };
        let mut moved = 0;
        for id in ids {
            if self.transition_job(id, &t).await? {
                moved += 1;
            }
        }
        Ok(moved)
    }

    // --- impact snapshots -------------------------------------------------

    /// Current snapshot rows matching `query`, sorted.
    async fn impact(&self, query: &ImpactQuery) -> Result<Vec<ImpactFinding>>;

    // --- completion events ------------------------------------------------

    /// Store `event` unless one with its id exists; returns whether it was new.
    async fn put_event(&self, event: &StoredEvent) -> Result<bool>;
    async fn event(&self, id: &str) -> Result<Option<StoredEvent>>;

    // --- schedules and runs -----------------------------------------------

    /// Insert or replace.
    async fn put_schedule(&self, schedule: &Schedule) -> Result<()>;
    async fn schedule(&self, id: &str) -> Result<Option<Schedule>>;
    /// By id; `None`: all tenants.
    async fn schedules(&self, tenant: Option<&str>) -> Result<Vec<Schedule>>;
    async fn delete_schedule(&self, id: &str) -> Result<bool>;
    /// Insert or replace.
    async fn put_run(&self, run: &Run) -> Result<()>;
    async fn run(&self, id: &str) -> Result<Option<Run>>;
    /// By id; `None`: all tenants.
    async fn runs(&self, tenant: Option<&str>) -> Result<Vec<Run>>;

    // --- run planning (added with the schedule slice) --------------------

    /// Insert the run, its jobs (`planned`: the outbox) and the cursor moves
    /// in one transaction, unless a run with its id exists, in which case
    /// nothing is written.
    async fn commit_run(&self, commit: &RunCommit) -> Result<RunOutcome>;

    // --- compacted input snapshot (added with the schedule slice) --------

    /// Apply one compaction step if the snapshot is still at `update.base`
    /// (one transaction); `Ok(false)` when another compaction moved it.
    async fn compact_inputs(&self, update: &SnapshotUpdate) -> Result<bool>;
    /// Where the snapshot stands (`None`: never compacted).
    async fn input_snapshot(&self) -> Result<Option<SnapshotHead>>;
    /// Up to `limit` snapshot records with `seq >= from`, in seq order.
    async fn read_input_snapshot(&self, from: u64, limit: usize) -> Result<Vec<InputEntry>>;
}

/// Append input records, encoding each once (see [`NewInput::encode`]).
pub async fn append_records(
    store: &dyn Store,
    records: &[InputRecord],
    offsets: &[SourceOffset],
) -> Result<Vec<u64>> {
    let encoded = records
        .iter()
        .map(NewInput::encode)
        .collect::<Result<Vec<_>>>()?;
    store.append_inputs(&encoded, offsets).await
}

/// Open a store from a URL: `redb:///path/to/file` or a plain path (the
/// embedded store), `postgres://…` / `postgresql://…` (optional `schema=`
/// query parameter, default `recheck`), `mongodb://…` (database from the
/// path, default `recheck`).
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(postgres::PostgresStore::connect(url).await?));
    }
    if url.starts_with("mongodb://") || url.starts_with("mongodb+srv://") {
        return Ok(Arc::new(mongo::MongoStore::connect(url).await?));
    }
    let path = embedded_path(url).ok_or_else(|| {
        StoreError::new(
            StoreErrorKind::Url,
            format!("{url}: expected redb://, postgres://, mongodb:// or a file path"),
        )
    })?;
    Ok(Arc::new(embedded::EmbeddedStore::open(path)?))
}

/// The file an embedded-store URL names (`redb:///path` or a plain path);
/// `None` for any other scheme.
pub fn embedded_path(url: &str) -> Option<&str> {
    match url.strip_prefix("redb://") {
        Some(rest) => Some(rest),
        None if url.contains("://") => None,
        None => Some(url),
    }
}

/// Decode one JSON document of a store, naming it on failure.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    what: impl fmt::Display,
    bytes: &[u8],
) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::corrupt(what, e))
}

/// Encode a document for a store.
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value)
        .map_err(|e| StoreError::with_source(StoreErrorKind::Invalid, "encoding a document", e))
}

/// A sequence number, index or window as the signed 64-bit integer SQL and
/// BSON store.
pub(crate) fn to_i64(v: u64) -> Result<i64> {
    i64::try_from(v)
        .map_err(|_| StoreError::new(StoreErrorKind::Invalid, format!("{v} exceeds int64")))
}

/// Apply a filter's limit after ordering by (window, id).
pub(crate) fn order_jobs(mut jobs: Vec<RecheckJob>, limit: Option<usize>) -> Vec<RecheckJob> {
    jobs.sort_by(|a, b| (a.window, &a.id).cmp(&(b.window, &b.id)));
    if let Some(limit) = limit {
        jobs.truncate(limit);
    }
    jobs
}
