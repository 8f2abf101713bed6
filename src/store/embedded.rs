//! The embedded store: one redb file, no server, the default for
//! `recheck demo` and `recheck serve`.
//!
//! redb gives serializable write transactions (one writer at a time) with
//! durable commits, which is exactly the single-writer input log and the
//! one-transaction window commit. Calls run inline on the caller's thread:
//! they are short (a write is one fsync), the core has one writer, and a hop
//! to a blocking pool would need every argument cloned.
//!
//! Impact snapshot rows are keyed by (tenant, artifact, row key); one
//! multimap indexes them by (tenant, field, value) for the advisory,
//! vulnerability and purl queries. Job listings scan the jobs table (fine at
//! embedded sizes; the server backends have indexes).

use std::collections::BTreeSet;
use std::path::Path;

use async_trait::async_trait;
use redb::{
    Database, MultimapTableDefinition, ReadTransaction, ReadableTable, ReadableTableMetadata,
    TableDefinition, TableHandle, WriteTransaction,
};

use super::{
    check_pending, check_transition, decide, decode, encode, order_jobs, to_i64, CommitOutcome,
    CursorMove, Decision, ImpactQuery, InputEntry, JobFilter, NewInput, Result, RunCommit,
    RunOutcome, SnapshotHead, SnapshotUpdate, SourceOffset, Store, StoreError, StoreErrorKind,
    WindowCommit,
};
use crate::model::{
    Escalation, ImpactFinding, JobState, JobTransition, LedgerEntry, LedgerRecord, RecheckJob, Run,
    Schedule, StoredEvent,
};

/// (tenant, kind, sha256, canonical JSON) of one input record.
type InputRow<'a> = (Option<&'a str>, &'a str, &'a str, &'a [u8]);
/// seq → the record.
const INPUTS: TableDefinition<u64, InputRow> = TableDefinition::new("inputs");
const OFFSETS: TableDefinition<&str, &str> = TableDefinition::new("source_offsets");
/// index → JSON of the `LedgerEntry`.
const LEDGER: TableDefinition<u64, &[u8]> = TableDefinition::new("ledger");
/// index → payload bytes (the tamper test in the conformance suite writes here).
const LEDGER_PAYLOADS: TableDefinition<u64, &[u8]> = TableDefinition::new("ledger_payloads");
/// window → index.
const LEDGER_WINDOWS: TableDefinition<u64, u64> = TableDefinition::new("ledger_windows");
const CURSORS: TableDefinition<&str, u64> = TableDefinition::new("cursors");
const JOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("jobs");
const JOB_HISTORY: TableDefinition<&str, &[u8]> = TableDefinition::new("job_history");
/// (tenant, artifact, row key) → (count, JSON of the `ImpactFinding`).
const IMPACT: TableDefinition<(&str, &str, &str), (i64, &[u8])> = TableDefinition::new("impact");
/// (tenant, field, value) → (artifact, row key).
const IMPACT_INDEX: MultimapTableDefinition<(&str, u8, &str), (&str, &str)> =
    MultimapTableDefinition::new("impact_index");
/// id → (tenant, job, kind, occurred_at, body).
const EVENTS: TableDefinition<&str, (&str, &str, &str, &str, &[u8])> =
    TableDefinition::new("events");
const SCHEDULES: TableDefinition<&str, &[u8]> = TableDefinition::new("schedules");
const RUNS: TableDefinition<&str, &[u8]> = TableDefinition::new("runs");
/// Compacted input snapshot: document key → seq of its latest record.
const SNAPSHOT_KEYS: TableDefinition<&str, u64> = TableDefinition::new("input_snapshot_keys");
/// seq → (document key, the record), for reads in log order.
const SNAPSHOT_ROWS: TableDefinition<u64, (&str, InputRow)> =
    TableDefinition::new("input_snapshot_rows");
/// `head` → (seq, window) the snapshot reflects.
const SNAPSHOT_HEAD: TableDefinition<&str, (u64, u64)> = TableDefinition::new("input_snapshot");

const FIELD_ADVISORY: u8 = 0;
const FIELD_VULNERABILITY: u8 = 1;
const FIELD_PURL: u8 = 2;
const FIELD_PURL_BASE: u8 = 3;

fn be(e: impl Into<redb::Error>) -> StoreError {
    let e: redb::Error = e.into();
    StoreError::with_source(StoreErrorKind::Backend, "redb", e)
}

pub struct EmbeddedStore {
    db: Database,
    path: std::path::PathBuf,
}

impl EmbeddedStore {
    /// Open (or create) the store file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<EmbeddedStore> {
        let path = path.as_ref();
        let db = Database::create(path).map_err(|e| {
            StoreError::with_source(
                StoreErrorKind::Connect,
                format!("opening {}", path.display()),
                e,
            )
        })?;
        let store = EmbeddedStore {
            db,
            path: path.to_path_buf(),
        };
        // Create every table once, so readers never meet a missing one.
        store.write(|tx| {
            tx.open_table(INPUTS).map_err(be)?;
            tx.open_table(OFFSETS).map_err(be)?;
            tx.open_table(LEDGER).map_err(be)?;
            tx.open_table(LEDGER_PAYLOADS).map_err(be)?;
            tx.open_table(LEDGER_WINDOWS).map_err(be)?;
            tx.open_table(CURSORS).map_err(be)?;
            tx.open_table(JOBS).map_err(be)?;
            tx.open_table(JOB_HISTORY).map_err(be)?;
            tx.open_table(IMPACT).map_err(be)?;
            tx.open_multimap_table(IMPACT_INDEX).map_err(be)?;
            tx.open_table(EVENTS).map_err(be)?;
            tx.open_table(SCHEDULES).map_err(be)?;
            tx.open_table(RUNS).map_err(be)?;
            tx.open_table(SNAPSHOT_KEYS).map_err(be)?;
            tx.open_table(SNAPSHOT_ROWS).map_err(be)?;
            tx.open_table(SNAPSHOT_HEAD).map_err(be)?;
            Ok(())
        })?;
        Ok(store)
    }

    /// Run `f` in one write transaction; commit if it returns `Ok`, else
    /// abort (dropping an uncommitted redb transaction rolls it back).
    fn write<T>(&self, f: impl FnOnce(&WriteTransaction) -> Result<T>) -> Result<T> {
        let tx = self.db.begin_write().map_err(be)?;
        let out = f(&tx)?;
        tx.commit().map_err(be)?;
        Ok(out)
    }

    fn read(&self) -> Result<ReadTransaction> {
        self.db.begin_read().map_err(be)
    }

    fn get_doc<T: serde::de::DeserializeOwned>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        id: &str,
    ) -> Result<Option<T>> {
        let tx = self.read()?;
        let t = tx.open_table(table).map_err(be)?;
        let Some(v) = t.get(id).map_err(be)? else {
            return Ok(None);
        };
        decode(format_args!("{} {id}", table.name()), v.value()).map(Some)
    }

    fn put_doc<T: serde::Serialize>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        id: &str,
        doc: &T,
    ) -> Result<()> {
        let bytes = encode(doc)?;
        self.write(|tx| {
            tx.open_table(table)
                .map_err(be)?
                .insert(id, bytes.as_slice())
                .map_err(be)?;
            Ok(())
        })
    }

    /// All documents of `table` (in id order) that `keep` accepts.
    fn scan_docs<T: serde::de::DeserializeOwned>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        keep: impl Fn(&T) -> bool,
    ) -> Result<Vec<T>> {
        let tx = self.read()?;
        let t = tx.open_table(table).map_err(be)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(be)? {
            let (k, v) = row.map_err(be)?;
            let doc: T = decode(format_args!("{} {}", table.name(), k.value()), v.value())?;
            if keep(&doc) {
                out.push(doc);
            }
        }
        Ok(out)
    }
}

fn ledger_entry(t: &impl ReadableTable<u64, &'static [u8]>, index: u64) -> Result<LedgerEntry> {
    let v = t.get(index).map_err(be)?.ok_or_else(|| {
        StoreError::new(
            StoreErrorKind::Corrupt,
            format!("ledger entry {index} missing"),
        )
    })?;
    decode(format_args!("ledger entry {index}"), v.value())
}

fn index_keys(f: &ImpactFinding) -> Vec<(u8, &str)> {
    let mut keys = vec![
        (FIELD_ADVISORY, f.advisory.as_str()),
        (FIELD_VULNERABILITY, f.vulnerability.as_str()),
    ];
    if let Some(purl) = f.purl.as_deref() {
        keys.push((FIELD_PURL, purl));
    }
    if let Some(base) = f.purl_base() {
        keys.push((FIELD_PURL_BASE, base));
    }
    keys
}

fn apply_commit(tx: &WriteTransaction, commit: &WindowCommit) -> Result<CommitOutcome> {
    let mut ledger = tx.open_table(LEDGER).map_err(be)?;
    let mut windows = tx.open_table(LEDGER_WINDOWS).map_err(be)?;
    let existing = match windows.get(commit.window).map_err(be)? {
        Some(index) => Some(ledger_entry(&ledger, index.value())?),
        None => None,
    };
    let head = match ledger.last().map_err(be)? {
        Some((k, _)) => Some(ledger_entry(&ledger, k.value())?),
        None => None,
    };
    let (entry, payload) = match decide(commit, existing, head.as_ref())? {
        Decision::Already(entry) => return Ok(CommitOutcome::AlreadyCommitted { entry }),
        Decision::Append { entry, payload } => (entry, payload),
    };
    ledger
        .insert(entry.index, encode(&entry)?.as_slice())
        .map_err(be)?;
    tx.open_table(LEDGER_PAYLOADS)
        .map_err(be)?
        .insert(entry.index, payload.as_slice())
        .map_err(be)?;
    windows.insert(entry.window, entry.index).map_err(be)?;

    let mut impact = tx.open_table(IMPACT).map_err(be)?;
    let mut index = tx.open_multimap_table(IMPACT_INDEX).map_err(be)?;
    for change in commit.snapshot_changes() {
        let f = &change.finding;
        let key = (f.tenant.as_str(), f.artifact.as_str(), change.key.as_str());
        let before = impact.get(key).map_err(be)?.map_or(0, |v| v.value().0);
        let after = before + change.diff;
        if after > 0 {
            impact
                .insert(key, (after, encode(f)?.as_slice()))
                .map_err(be)?;
            if before <= 0 {
                for (field, value) in index_keys(f) {
                    index
                        .insert((key.0, field, value), (key.1, key.2))
                        .map_err(be)?;
                }
            }
        } else if before > 0 {
            impact.remove(key).map_err(be)?;
            for (field, value) in index_keys(f) {
                index
                    .remove((key.0, field, value), (key.1, key.2))
                    .map_err(be)?;
            }
        }
    }

    let new_jobs = insert_jobs(tx, &commit.jobs)?;
    set_cursors(tx, &commit.cursors)?;
    Ok(CommitOutcome::Committed { entry, new_jobs })
}

/// Insert planned jobs that do not exist yet; returns how many were new.
fn insert_jobs(tx: &WriteTransaction, new: &[RecheckJob]) -> Result<usize> {
    let mut jobs = tx.open_table(JOBS).map_err(be)?;
    let mut new_jobs = 0;
    for job in new {
        if jobs.get(job.id.as_str()).map_err(be)?.is_none() {
            jobs.insert(job.id.as_str(), encode(job)?.as_slice())
                .map_err(be)?;
            new_jobs += 1;
        }
    }
    Ok(new_jobs)
}

fn set_cursors(tx: &WriteTransaction, moves: &[CursorMove]) -> Result<()> {
    let mut cursors = tx.open_table(CURSORS).map_err(be)?;
    for c in moves {
        // Positions are int64 in every backend; checked here, last, like the
        // server backends' writes.
        to_i64(c.position)?;
        cursors.insert(c.name.as_str(), c.position).map_err(be)?;
    }
    Ok(())
}

fn apply_snapshot(tx: &WriteTransaction, update: &SnapshotUpdate) -> Result<bool> {
    update.check()?;
    let mut head = tx.open_table(SNAPSHOT_HEAD).map_err(be)?;
    let current = head.get("head").map_err(be)?.map(|v| v.value().0);
    if current != update.base {
        return Ok(false);
    }
    let mut keys = tx.open_table(SNAPSHOT_KEYS).map_err(be)?;
    let mut rows = tx.open_table(SNAPSHOT_ROWS).map_err(be)?;
    let replaced = update.delete.iter().map(String::as_str);
    for key in replaced.chain(update.put.iter().map(|r| r.key.as_str())) {
        if let Some(old) = keys.remove(key).map_err(be)? {
            rows.remove(old.value()).map_err(be)?;
        }
    }
    for row in &update.put {
        let e = &row.entry;
        keys.insert(row.key.as_str(), e.seq).map_err(be)?;
        rows.insert(
            e.seq,
            (
                row.key.as_str(),
                (
                    e.tenant.as_deref(),
                    e.kind.as_str(),
                    e.sha256.as_str(),
                    e.json.as_slice(),
                ),
            ),
        )
        .map_err(be)?;
    }
    head.insert("head", (update.seq, update.window))
        .map_err(be)?;
    Ok(true)
}

fn apply_run(tx: &WriteTransaction, commit: &RunCommit) -> Result<RunOutcome> {
    commit.check()?;
    let mut runs = tx.open_table(RUNS).map_err(be)?;
    let id = commit.run.id.as_str();
    if let Some(v) = runs.get(id).map_err(be)? {
        let run = decode(format_args!("run {id}"), v.value())?;
        return Ok(RunOutcome::AlreadyExists { run: Box::new(run) });
    }
    runs.insert(id, encode(&commit.run)?.as_slice())
        .map_err(be)?;
    let new_jobs = insert_jobs(tx, &commit.jobs)?;
    set_cursors(tx, &commit.cursors)?;
    Ok(RunOutcome::Committed { new_jobs })
}

#[async_trait]
impl Store for EmbeddedStore {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    async fn storage_bytes(&self) -> Result<Option<u64>> {
        let meta = std::fs::metadata(&self.path).map_err(|e| {
            StoreError::with_source(
                StoreErrorKind::Backend,
                format!("reading the size of {}", self.path.display()),
                e,
            )
        })?;
        Ok(Some(meta.len()))
    }

    async fn append_inputs(
        &self,
        records: &[NewInput],
        offsets: &[SourceOffset],
    ) -> Result<Vec<u64>> {
        self.write(|tx| {
            let mut inputs = tx.open_table(INPUTS).map_err(be)?;
            let last = inputs.last().map_err(be)?.map_or(0, |(k, _)| k.value());
            let mut seqs = Vec::with_capacity(records.len());
            for (seq, r) in (last + 1..).zip(records) {
                inputs
                    .insert(
                        seq,
                        (
                            r.tenant.as_deref(),
                            r.kind,
                            r.sha256.as_str(),
                            r.json.as_slice(),
                        ),
                    )
                    .map_err(be)?;
                seqs.push(seq);
            }
            let mut table = tx.open_table(OFFSETS).map_err(be)?;
            for o in offsets {
                o.check()?;
                table
                    .insert(o.source.as_str(), o.offset.as_str())
                    .map_err(be)?;
            }
            Ok(seqs)
        })
    }

    async fn read_inputs(&self, from: u64, limit: usize) -> Result<Vec<InputEntry>> {
        let tx = self.read()?;
        let t = tx.open_table(INPUTS).map_err(be)?;
        let mut out = Vec::new();
        for row in t.range(from..).map_err(be)?.take(limit) {
            let (k, v) = row.map_err(be)?;
            let (tenant, kind, sha256, json) = v.value();
            out.push(InputEntry {
                seq: k.value(),
                tenant: tenant.map(str::to_string),
                kind: kind.to_string(),
                sha256: sha256.to_string(),
                json: json.to_vec(),
            });
        }
        Ok(out)
    }

    async fn last_seq(&self) -> Result<u64> {
        let tx = self.read()?;
        let t = tx.open_table(INPUTS).map_err(be)?;
        let last = t.last().map_err(be)?.map_or(0, |(k, _)| k.value());
        Ok(last)
    }

    async fn source_offset(&self, source: &str) -> Result<Option<String>> {
        let tx = self.read()?;
        let t = tx.open_table(OFFSETS).map_err(be)?;
        Ok(t.get(source).map_err(be)?.map(|v| v.value().to_string()))
    }

    async fn commit_window(&self, commit: &WindowCommit) -> Result<CommitOutcome> {
        let tx = self.db.begin_write().map_err(be)?;
        let outcome = apply_commit(&tx, commit)?;
        match outcome {
            // Nothing was written: leave the file untouched.
            CommitOutcome::AlreadyCommitted { .. } => tx.abort().map_err(be)?,
            CommitOutcome::Committed { .. } => tx.commit().map_err(be)?,
        }
        Ok(outcome)
    }

    async fn read_ledger(&self, from: u64, limit: usize) -> Result<Vec<LedgerRecord>> {
        let tx = self.read()?;
        let ledger = tx.open_table(LEDGER).map_err(be)?;
        let payloads = tx.open_table(LEDGER_PAYLOADS).map_err(be)?;
        let mut out = Vec::new();
        for row in ledger.range(from..).map_err(be)?.take(limit) {
            let (k, v) = row.map_err(be)?;
            let index = k.value();
            let entry: LedgerEntry = decode(format_args!("ledger entry {index}"), v.value())?;
            let payload = payloads
                .get(index)
                .map_err(be)?
                .map(|p| p.value().to_vec())
                .unwrap_or_default();
            out.push(LedgerRecord { entry, payload });
        }
        Ok(out)
    }

    async fn ledger_head(&self) -> Result<Option<LedgerEntry>> {
        let tx = self.read()?;
        let ledger = tx.open_table(LEDGER).map_err(be)?;
        let Some((k, v)) = ledger.last().map_err(be)? else {
            return Ok(None);
        };
        let entry = decode(format_args!("ledger entry {}", k.value()), v.value())?;
        Ok(Some(entry))
    }

    async fn cursor(&self, name: &str) -> Result<Option<u64>> {
        let tx = self.read()?;
        let t = tx.open_table(CURSORS).map_err(be)?;
        Ok(t.get(name).map_err(be)?.map(|v| v.value()))
    }

    async fn set_cursor(&self, name: &str, expected: Option<u64>, position: u64) -> Result<bool> {
        self.write(|tx| {
            let mut t = tx.open_table(CURSORS).map_err(be)?;
            let current = t.get(name).map_err(be)?.map(|v| v.value());
            if current != expected {
                return Ok(false);
            }
            to_i64(position)?;
            t.insert(name, position).map_err(be)?;
            Ok(true)
        })
    }

    async fn job(&self, id: &str) -> Result<Option<RecheckJob>> {
        self.get_doc(JOBS, id)
    }

    async fn jobs(&self, filter: &JobFilter) -> Result<Vec<RecheckJob>> {
        let jobs = self.scan_docs(JOBS, |j| filter.matches(j))?;
        Ok(order_jobs(jobs, filter.limit))
    }

    async fn transition_job(&self, id: &str, t: &JobTransition) -> Result<bool> {
        check_transition(t)?;
        self.write(|tx| {
            let mut jobs = tx.open_table(JOBS).map_err(be)?;
            let mut job: RecheckJob = match jobs.get(id).map_err(be)? {
                Some(v) => decode(format_args!("job {id}"), v.value())?,
                None => {
                    return Err(StoreError::new(
                        StoreErrorKind::NotFound,
                        format!("job {id}"),
                    ))
                }
            };
            if job.state != t.from {
                return Ok(false);
            }
            job.state = t.to;
            job.attempt = t.attempt;
            jobs.insert(id, encode(&job)?.as_slice()).map_err(be)?;
            let mut history = tx.open_table(JOB_HISTORY).map_err(be)?;
            let mut past: Vec<JobTransition> = match history.get(id).map_err(be)? {
                Some(v) => decode(format_args!("history of job {id}"), v.value())?,
                None => Vec::new(),
            };
            past.push(t.clone());
            history.insert(id, encode(&past)?.as_slice()).map_err(be)?;
            Ok(true)
        })
    }

    async fn job_history(&self, id: &str) -> Result<Vec<JobTransition>> {
        Ok(self.get_doc(JOB_HISTORY, id)?.unwrap_or_default())
    }

    async fn escalate_job(
        &self,
        id: &str,
        from: JobState,
        escalation: &Escalation,
    ) -> Result<bool> {
        check_pending(from)?;
        self.write(|tx| {
            let mut jobs = tx.open_table(JOBS).map_err(be)?;
            let mut job: RecheckJob = match jobs.get(id).map_err(be)? {
                Some(v) => decode(format_args!("job {id}"), v.value())?,
                None => {
                    return Err(StoreError::new(
                        StoreErrorKind::NotFound,
                        format!("job {id}"),
                    ))
                }
            };
            if job.state != from {
                return Ok(false);
            }
            job.escalation = Some(escalation.clone());
            jobs.insert(id, encode(&job)?.as_slice()).map_err(be)?;
            Ok(true)
        })
    }

    async fn impact(&self, query: &ImpactQuery) -> Result<Vec<ImpactFinding>> {
        let tx = self.read()?;
        let impact = tx.open_table(IMPACT).map_err(be)?;
        let tenant = query.tenant();
        let decode_row = |key: (&str, &str, &str), bytes: &[u8]| -> Result<ImpactFinding> {
            decode(
                format_args!("impact row {}/{}/{}", key.0, key.1, key.2),
                bytes,
            )
        };
        let mut out = Vec::new();
        if let ImpactQuery::Artifact { artifact, .. } = query {
            let range = (tenant, artifact.as_str(), "")..;
            for row in impact.range(range).map_err(be)? {
                let (k, v) = row.map_err(be)?;
                let key = k.value();
                if key.0 != tenant || key.1 != artifact {
                    break;
                }
                out.push(decode_row(key, v.value().1)?);
            }
        } else {
            let lookups: Vec<(u8, &str)> = match query {
                ImpactQuery::Advisory { advisory, .. } => vec![(FIELD_ADVISORY, advisory)],
                ImpactQuery::Vulnerability { vulnerability, .. } => {
                    vec![(FIELD_VULNERABILITY, vulnerability)]
                }
                ImpactQuery::Purl { purl, .. } => vec![(FIELD_PURL, purl), (FIELD_PURL_BASE, purl)],
                ImpactQuery::Artifact { .. } => Vec::new(),
            };
            let index = tx.open_multimap_table(IMPACT_INDEX).map_err(be)?;
            let mut rows: BTreeSet<(String, String)> = BTreeSet::new();
            for (field, value) in lookups {
                for v in index.get((tenant, field, value)).map_err(be)? {
                    let v = v.map_err(be)?;
                    let (artifact, key) = v.value();
                    rows.insert((artifact.to_string(), key.to_string()));
                }
            }
            for (artifact, key) in &rows {
                let k = (tenant, artifact.as_str(), key.as_str());
                if let Some(v) = impact.get(k).map_err(be)? {
                    out.push(decode_row(k, v.value().1)?);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    async fn put_event(&self, event: &StoredEvent) -> Result<bool> {
        self.write(|tx| {
            let mut t = tx.open_table(EVENTS).map_err(be)?;
            if t.get(event.id.as_str()).map_err(be)?.is_some() {
                return Ok(false);
            }
            t.insert(
                event.id.as_str(),
                (
                    event.tenant.as_str(),
                    event.job.as_str(),
                    event.kind.as_str(),
                    event.occurred_at.as_str(),
                    event.body.as_slice(),
                ),
            )
            .map_err(be)?;
            Ok(true)
        })
    }

    async fn event(&self, id: &str) -> Result<Option<StoredEvent>> {
        let tx = self.read()?;
        let t = tx.open_table(EVENTS).map_err(be)?;
        Ok(t.get(id).map_err(be)?.map(|v| {
            let (tenant, job, kind, occurred_at, body) = v.value();
            StoredEvent {
                id: id.to_string(),
                tenant: tenant.to_string(),
                job: job.to_string(),
                kind: kind.to_string(),
                occurred_at: occurred_at.to_string(),
                body: body.to_vec(),
            }
        }))
    }

    async fn put_schedule(&self, schedule: &Schedule) -> Result<()> {
        self.put_doc(SCHEDULES, &schedule.id, schedule)
    }

    async fn schedule(&self, id: &str) -> Result<Option<Schedule>> {
        self.get_doc(SCHEDULES, id)
    }

    async fn schedules(&self, tenant: Option<&str>) -> Result<Vec<Schedule>> {
        self.scan_docs(SCHEDULES, |s: &Schedule| {
            tenant.is_none_or(|t| t == s.tenant)
        })
    }

    async fn delete_schedule(&self, id: &str) -> Result<bool> {
        self.write(|tx| {
            let mut t = tx.open_table(SCHEDULES).map_err(be)?;
            let removed = t.remove(id).map_err(be)?.is_some();
            Ok(removed)
        })
    }

    async fn put_run(&self, run: &Run) -> Result<()> {
        self.put_doc(RUNS, &run.id, run)
    }

    async fn run(&self, id: &str) -> Result<Option<Run>> {
        self.get_doc(RUNS, id)
    }

    async fn runs(&self, tenant: Option<&str>) -> Result<Vec<Run>> {
        self.scan_docs(RUNS, |r: &Run| tenant.is_none_or(|t| t == r.tenant))
    }

    async fn compact_inputs(&self, update: &SnapshotUpdate) -> Result<bool> {
        let tx = self.db.begin_write().map_err(be)?;
        if apply_snapshot(&tx, update)? {
            tx.commit().map_err(be)?;
            Ok(true)
        } else {
            tx.abort().map_err(be)?;
            Ok(false)
        }
    }

    async fn input_snapshot(&self) -> Result<Option<SnapshotHead>> {
        let tx = self.read()?;
        let head = tx.open_table(SNAPSHOT_HEAD).map_err(be)?;
        let Some(v) = head.get("head").map_err(be)? else {
            return Ok(None);
        };
        let (seq, window) = v.value();
        let records = tx
            .open_table(SNAPSHOT_KEYS)
            .map_err(be)?
            .len()
            .map_err(be)?;
        Ok(Some(SnapshotHead {
            seq,
            window,
            records,
        }))
    }

    async fn read_input_snapshot(&self, from: u64, limit: usize) -> Result<Vec<InputEntry>> {
        let tx = self.read()?;
        let t = tx.open_table(SNAPSHOT_ROWS).map_err(be)?;
        let mut out = Vec::new();
        for row in t.range(from..).map_err(be)?.take(limit) {
            let (k, v) = row.map_err(be)?;
            let (_, (tenant, kind, sha256, json)) = v.value();
            out.push(InputEntry {
                seq: k.value(),
                tenant: tenant.map(str::to_string),
                kind: kind.to_string(),
                sha256: sha256.to_string(),
                json: json.to_vec(),
            });
        }
        Ok(out)
    }

    async fn commit_run(&self, commit: &RunCommit) -> Result<RunOutcome> {
        let tx = self.db.begin_write().map_err(be)?;
        let outcome = apply_run(&tx, commit)?;
        match outcome {
            RunOutcome::AlreadyExists { .. } => tx.abort().map_err(be)?,
            RunOutcome::Committed { .. } => tx.commit().map_err(be)?,
        }
        Ok(outcome)
    }
}
