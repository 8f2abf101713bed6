//! The PostgreSQL store, for deployments with several processes (`recheck
//! worker` needs a shared store).
//!
//! Everything lives in one schema (the URL's `schema=` parameter, default
//! `recheck`; tests use a fresh one each and drop it), created and migrated
//! on connect from the versioned SQL in `migrations/postgres/`. Each window
//! commit and each append is one transaction that first takes an exclusive
//! table lock, so the hash chain and the input log have one writer even with
//! several processes; readers are not blocked. Bulk rows go in as `UNNEST`
//! arrays, a few thousand per statement, so a backfill window is a handful
//! of round trips rather than one per row.

use async_trait::async_trait;
use tokio::sync::Mutex;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, GenericClient, NoTls, Row};

use super::{
    check_pending, check_transition, decide, decode, encode, to_i64, CommitOutcome, CursorMove,
    Decision, ImpactQuery, InputEntry, JobFilter, NewInput, Result, RunCommit, RunOutcome,
    SnapshotHead, SnapshotUpdate, SourceOffset, Store, StoreError, StoreErrorKind, WindowCommit,
};
use crate::model::{
    Escalation, ImpactFinding, JobState, JobTransition, LedgerEntry, LedgerRecord, RecheckJob, Run,
    Schedule, StoredEvent,
};

/// Versioned migrations, applied in order, each once.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/postgres/0002_input_snapshot.sql"),
    ),
];

/// Rows per bulk statement.
const CHUNK: usize = 5000;

fn be(e: tokio_postgres::Error) -> StoreError {
    let kind = if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        StoreErrorKind::Conflict
    } else {
        StoreErrorKind::Backend
    };
    StoreError::with_source(kind, "postgres", e)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or_default()
}

/// Split our `schema=` parameter off a PostgreSQL URL; the rest goes to the driver.
fn split_schema(url: &str) -> Result<(String, String)> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut schema = "recheck".to_string();
    let mut rest = Vec::new();
    for param in query.split('&').filter(|p| !p.is_empty()) {
        match param.strip_prefix("schema=") {
            Some(s) => schema = s.to_string(),
            None => rest.push(param),
        }
    }
    let valid = !schema.is_empty()
        && schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(StoreError::new(
            StoreErrorKind::Url,
            format!("schema {schema:?}: use lower-case letters, digits and _"),
        ));
    }
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, schema))
}

pub struct PostgresStore {
    /// One connection: statements of a transaction must share it, and the
    /// core's writes are serial anyway.
    client: Mutex<Client>,
    schema: String,
}

impl PostgresStore {
    pub async fn connect(url: &str) -> Result<PostgresStore> {
        let (url, schema) = split_schema(url)?;
        let (client, connection) = tokio_postgres::connect(&url, NoTls).await.map_err(|e| {
            StoreError::with_source(StoreErrorKind::Connect, "connecting to PostgreSQL", e)
        })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::error!(error = %e, "PostgreSQL connection ended");
            }
        });
        let mut client = client;
        migrate(&mut client, &schema).await?;
        Ok(PostgresStore {
            client: Mutex::new(client),
            schema,
        })
    }

    /// The schema this store lives in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    async fn doc_by_id<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        id: &str,
    ) -> Result<Option<T>> {
        let c = self.client.lock().await;
        let row = c
            .query_opt(&format!("SELECT doc FROM {table} WHERE id = $1"), &[&id])
            .await
            .map_err(be)?;
        row.map(|r| decode(format_args!("{table} {id}"), r.get::<_, &[u8]>(0)))
            .transpose()
    }

    async fn docs_by_tenant<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        tenant: Option<&str>,
    ) -> Result<Vec<T>> {
        let c = self.client.lock().await;
        let rows = c
            .query(
                &format!(
                    "SELECT id, doc FROM {table} WHERE $1::text IS NULL OR tenant = $1 ORDER BY id"
                ),
                &[&tenant],
            )
            .await
            .map_err(be)?;
        rows.iter()
            .map(|r| {
                decode(
                    format_args!("{table} {}", r.get::<_, &str>(0)),
                    r.get::<_, &[u8]>(1),
                )
            })
            .collect()
    }

    async fn upsert_doc(&self, table: &str, id: &str, tenant: &str, doc: Vec<u8>) -> Result<()> {
        let c = self.client.lock().await;
        c.execute(
            &format!(
                "INSERT INTO {table} (id, tenant, doc) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET tenant = EXCLUDED.tenant, doc = EXCLUDED.doc"
            ),
            &[&id, &tenant, &doc],
        )
        .await
        .map_err(be)?;
        Ok(())
    }
}

async fn migrate(client: &mut Client, schema: &str) -> Result<()> {
    // The schema name was validated to [a-z0-9_], so quoting is enough.
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; SET search_path TO \"{schema}\""
        ))
        .await
        .map_err(be)?;
    let tx = client.transaction().await.map_err(be)?;
    tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&schema])
        .await
        .map_err(be)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (\
             version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .map_err(be)?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await
        .map_err(be)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await.map_err(be)?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(be)?;
        tracing::info!(schema, version, "applied PostgreSQL migration");
    }
    tx.commit().await.map_err(be)
}

const LEDGER_COLUMNS: &str = "idx, win, seq, prev_hash, payload_hash, hash";

fn ledger_entry(r: &Row) -> LedgerEntry {
    LedgerEntry {
        index: to_u64(r.get(0)),
        window: to_u64(r.get(1)),
        seq: to_u64(r.get(2)),
        prev_hash: r.get(3),
        payload_hash: r.get(4),
        hash: r.get(5),
    }
}

async fn head(c: &impl GenericClient) -> Result<Option<LedgerEntry>> {
    let row = c
        .query_opt(
            &format!("SELECT {LEDGER_COLUMNS} FROM ledger ORDER BY idx DESC LIMIT 1"),
            &[],
        )
        .await
        .map_err(be)?;
    Ok(row.as_ref().map(ledger_entry))
}

/// A job row: the planned document with state and attempt from their columns.
fn job_row(r: &Row) -> Result<RecheckJob> {
    let id: &str = r.get(0);
    let mut job: RecheckJob = decode(format_args!("job {id}"), r.get::<_, &[u8]>(1))?;
    let state: &str = r.get(2);
    job.state = JobState::parse(state).ok_or_else(|| {
        StoreError::new(
            StoreErrorKind::Corrupt,
            format!("job {id}: state {state:?}"),
        )
    })?;
    job.attempt = u32::try_from(r.get::<_, i32>(3)).unwrap_or_default();
    Ok(job)
}

async fn apply_commit(
    tx: &tokio_postgres::Transaction<'_>,
    commit: &WindowCommit,
) -> Result<CommitOutcome> {
    tx.batch_execute("LOCK TABLE ledger IN EXCLUSIVE MODE")
        .await
        .map_err(be)?;
    let existing = tx
        .query_opt(
            &format!("SELECT {LEDGER_COLUMNS} FROM ledger WHERE win = $1"),
            &[&to_i64(commit.window)?],
        )
        .await
        .map_err(be)?
        .as_ref()
        .map(ledger_entry);
    let head = head(tx).await?;
    let (entry, payload) = match decide(commit, existing, head.as_ref())? {
        Decision::Already(entry) => return Ok(CommitOutcome::AlreadyCommitted { entry }),
        Decision::Append { entry, payload } => (entry, payload),
    };
    tx.execute(
        "INSERT INTO ledger (idx, win, seq, prev_hash, payload_hash, hash, payload) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &to_i64(entry.index)?,
            &to_i64(entry.window)?,
            &to_i64(entry.seq)?,
            &entry.prev_hash,
            &entry.payload_hash,
            &entry.hash,
            &payload,
        ],
    )
    .await
    .map_err(be)?;

    let changes = commit.snapshot_changes();
    for chunk in changes.chunks(CHUNK) {
        let mut cols: [Vec<Option<&str>>; 7] = Default::default();
        let mut counts = Vec::with_capacity(chunk.len());
        let mut findings = Vec::with_capacity(chunk.len());
        for ch in chunk {
            let f = &ch.finding;
            cols[0].push(Some(&f.tenant));
            cols[1].push(Some(&f.artifact));
            cols[2].push(Some(&ch.key));
            cols[3].push(Some(&f.advisory));
            cols[4].push(Some(&f.vulnerability));
            cols[5].push(f.purl.as_deref());
            cols[6].push(f.purl_base());
            counts.push(ch.diff);
            findings.push(encode(f)?);
        }
        let [t, a, k, adv, vuln, purl, base] = &cols;
        let params: [&(dyn ToSql + Sync); 9] = [t, a, k, adv, vuln, purl, base, &counts, &findings];
        tx.execute(
            "INSERT INTO impact (tenant, artifact, row_key, advisory, vulnerability, purl, purl_base, count, finding) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                                  $6::text[], $7::text[], $8::bigint[], $9::bytea[]) \
             ON CONFLICT (tenant, artifact, row_key) DO UPDATE SET count = impact.count + EXCLUDED.count",
            &params,
        )
        .await
        .map_err(be)?;
        tx.execute(
            "DELETE FROM impact i USING UNNEST($1::text[], $2::text[], $3::text[]) AS d(t, a, k) \
             WHERE i.tenant = d.t AND i.artifact = d.a AND i.row_key = d.k AND i.count <= 0",
            &params[..3],
        )
        .await
        .map_err(be)?;
    }

    let new_jobs = insert_jobs(tx, &commit.jobs).await?;
    set_cursors(tx, &commit.cursors).await?;
    Ok(CommitOutcome::Committed { entry, new_jobs })
}

/// Insert planned jobs that do not exist yet; returns how many were new.
async fn insert_jobs(tx: &tokio_postgres::Transaction<'_>, jobs: &[RecheckJob]) -> Result<usize> {
    let mut new_jobs = 0;
    for chunk in jobs.chunks(CHUNK) {
        let ids: Vec<&str> = chunk.iter().map(|j| j.id.as_str()).collect();
        let tenants: Vec<&str> = chunk.iter().map(|j| j.tenant.as_str()).collect();
        let artifacts: Vec<&str> = chunk.iter().map(|j| j.artifact.as_str()).collect();
        let windows = chunk
            .iter()
            .map(|j| to_i64(j.window))
            .collect::<Result<Vec<_>>>()?;
        let docs = chunk.iter().map(encode).collect::<Result<Vec<_>>>()?;
        new_jobs += tx
            .execute(
                "INSERT INTO jobs (id, tenant, artifact, win, state, attempt, doc) \
                 SELECT id, tenant, artifact, win, 'planned', 0, doc \
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bytea[]) \
                      AS j(id, tenant, artifact, win, doc) \
                 ON CONFLICT (id) DO NOTHING",
                &[&ids, &tenants, &artifacts, &windows, &docs],
            )
            .await
            .map_err(be)? as usize;
    }
    Ok(new_jobs)
}

async fn set_cursors(tx: &tokio_postgres::Transaction<'_>, cursors: &[CursorMove]) -> Result<()> {
    for c in cursors {
        tx.execute(
            "INSERT INTO cursors (name, position) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position",
            &[&c.name, &to_i64(c.position)?],
        )
        .await
        .map_err(be)?;
    }
    Ok(())
}

/// The head row is locked first, so concurrent compactions serialize and the
/// loser sees the winner's seq.
async fn apply_snapshot(
    tx: &tokio_postgres::Transaction<'_>,
    update: &SnapshotUpdate,
) -> Result<bool> {
    update.check()?;
    tx.batch_execute("LOCK TABLE input_snapshot_head IN EXCLUSIVE MODE")
        .await
        .map_err(be)?;
    let current = tx
        .query_opt("SELECT seq FROM input_snapshot_head", &[])
        .await
        .map_err(be)?
        .map(|r| to_u64(r.get(0)));
    if current != update.base {
        return Ok(false);
    }
    let replaced: Vec<&str> = update
        .delete
        .iter()
        .map(String::as_str)
        .chain(update.put.iter().map(|r| r.key.as_str()))
        .collect();
    for chunk in replaced.chunks(CHUNK) {
        tx.execute(
            "DELETE FROM input_snapshot WHERE doc_key = ANY($1)",
            &[&chunk],
        )
        .await
        .map_err(be)?;
    }
    for chunk in update.put.chunks(CHUNK) {
        let keys: Vec<&str> = chunk.iter().map(|r| r.key.as_str()).collect();
        let seqs = chunk
            .iter()
            .map(|r| to_i64(r.entry.seq))
            .collect::<Result<Vec<_>>>()?;
        let tenants: Vec<Option<&str>> = chunk.iter().map(|r| r.entry.tenant.as_deref()).collect();
        let kinds: Vec<&str> = chunk.iter().map(|r| r.entry.kind.as_str()).collect();
        let hashes: Vec<&str> = chunk.iter().map(|r| r.entry.sha256.as_str()).collect();
        let bodies: Vec<&[u8]> = chunk.iter().map(|r| r.entry.json.as_slice()).collect();
        tx.execute(
            "INSERT INTO input_snapshot (doc_key, seq, tenant, kind, sha256, body) \
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], \
                                  $6::bytea[])",
            &[&keys, &seqs, &tenants, &kinds, &hashes, &bodies],
        )
        .await
        .map_err(be)?;
    }
    tx.execute(
        "INSERT INTO input_snapshot_head (one, seq, win) VALUES (TRUE, $1, $2) \
         ON CONFLICT (one) DO UPDATE SET seq = EXCLUDED.seq, win = EXCLUDED.win",
        &[&to_i64(update.seq)?, &to_i64(update.window)?],
    )
    .await
    .map_err(be)?;
    Ok(true)
}

/// The run is inserted first: a concurrent commit of the same run waits on
/// its key and then finds it, so only one of them writes jobs.
async fn apply_run(tx: &tokio_postgres::Transaction<'_>, commit: &RunCommit) -> Result<RunOutcome> {
    commit.check()?;
    let run = &commit.run;
    let inserted = tx
        .execute(
            "INSERT INTO runs (id, tenant, doc) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
            &[&run.id, &run.tenant, &encode(run)?],
        )
        .await
        .map_err(be)?;
    if inserted == 0 {
        let row = tx
            .query_one("SELECT doc FROM runs WHERE id = $1", &[&run.id])
            .await
            .map_err(be)?;
        let run = decode(format_args!("run {}", run.id), row.get::<_, &[u8]>(0))?;
        return Ok(RunOutcome::AlreadyExists { run: Box::new(run) });
    }
    let new_jobs = insert_jobs(tx, &commit.jobs).await?;
    set_cursors(tx, &commit.cursors).await?;
    Ok(RunOutcome::Committed { new_jobs })
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn storage_bytes(&self) -> Result<Option<u64>> {
        let c = self.client.lock().await;
        // Tables with their indexes and TOAST, of our schema only.
        let row = c
            .query_one(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relkind = 'r'",
                &[&self.schema],
            )
            .await
            .map_err(be)?;
        let bytes: i64 = row.get(0);
        Ok(u64::try_from(bytes).ok())
    }

    async fn append_inputs(
        &self,
        records: &[NewInput],
        offsets: &[SourceOffset],
    ) -> Result<Vec<u64>> {
        let mut c = self.client.lock().await;
        let tx = c.transaction().await.map_err(be)?;
        tx.batch_execute("LOCK TABLE input_log IN EXCLUSIVE MODE")
            .await
            .map_err(be)?;
        let last: i64 = tx
            .query_one("SELECT COALESCE(MAX(seq), 0) FROM input_log", &[])
            .await
            .map_err(be)?
            .get(0);
        let last = to_u64(last);
        let seqs: Vec<u64> = (last + 1..).take(records.len()).collect();
        for (chunk, seq_chunk) in records.chunks(CHUNK).zip(seqs.chunks(CHUNK)) {
            let seq_col = seq_chunk
                .iter()
                .map(|s| to_i64(*s))
                .collect::<Result<Vec<_>>>()?;
            let tenants: Vec<Option<&str>> = chunk.iter().map(|r| r.tenant.as_deref()).collect();
            let kinds: Vec<&str> = chunk.iter().map(|r| r.kind).collect();
            let shas: Vec<&str> = chunk.iter().map(|r| r.sha256.as_str()).collect();
            let bodies: Vec<&[u8]> = chunk.iter().map(|r| r.json.as_slice()).collect();
            tx.execute(
                "INSERT INTO input_log (seq, tenant, kind, sha256, body) \
                 SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bytea[])",
                &[&seq_col, &tenants, &kinds, &shas, &bodies],
            )
            .await
            .map_err(be)?;
        }
        for o in offsets {
            o.check()?;
            tx.execute(
                "INSERT INTO source_offsets (source, position) VALUES ($1, $2) \
                 ON CONFLICT (source) DO UPDATE SET position = EXCLUDED.position",
                &[&o.source, &o.offset],
            )
            .await
            .map_err(be)?;
        }
        tx.commit().await.map_err(be)?;
        Ok(seqs)
    }

    async fn read_inputs(&self, from: u64, limit: usize) -> Result<Vec<InputEntry>> {
        let c = self.client.lock().await;
        let rows = c
            .query(
                "SELECT seq, tenant, kind, sha256, body FROM input_log \
                 WHERE seq >= $1 ORDER BY seq LIMIT $2",
                &[&to_i64(from)?, &to_i64(limit as u64)?],
            )
            .await
            .map_err(be)?;
        Ok(rows
            .iter()
            .map(|r| InputEntry {
                seq: to_u64(r.get(0)),
                tenant: r.get(1),
                kind: r.get(2),
                sha256: r.get(3),
                json: r.get(4),
            })
            .collect())
    }

    async fn last_seq(&self) -> Result<u64> {
        let c = self.client.lock().await;
        let last: i64 = c
            .query_one("SELECT COALESCE(MAX(seq), 0) FROM input_log", &[])
            .await
            .map_err(be)?
            .get(0);
        Ok(to_u64(last))
    }

    async fn source_offset(&self, source: &str) -> Result<Option<String>> {
        let c = self.client.lock().await;
        let row = c
            .query_opt(
                "SELECT position FROM source_offsets WHERE source = $1",
                &[&source],
            )
            .await
            .map_err(be)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn commit_window(&self, commit: &WindowCommit) -> Result<CommitOutcome> {
        let mut c = self.client.lock().await;
        let tx = c.transaction().await.map_err(be)?;
        let outcome = apply_commit(&tx, commit).await?;
        match outcome {
            CommitOutcome::AlreadyCommitted { .. } => tx.rollback().await.map_err(be)?,
            CommitOutcome::Committed { .. } => tx.commit().await.map_err(be)?,
        }
        Ok(outcome)
    }

    async fn read_ledger(&self, from: u64, limit: usize) -> Result<Vec<LedgerRecord>> {
        let c = self.client.lock().await;
        let rows = c
            .query(
                &format!(
                    "SELECT {LEDGER_COLUMNS}, payload FROM ledger WHERE idx >= $1 ORDER BY idx LIMIT $2"
                ),
                &[&to_i64(from)?, &to_i64(limit as u64)?],
            )
            .await
            .map_err(be)?;
        Ok(rows
            .iter()
            .map(|r| LedgerRecord {
                entry: ledger_entry(r),
                payload: r.get(6),
            })
            .collect())
    }

    async fn ledger_head(&self) -> Result<Option<LedgerEntry>> {
        let c = self.client.lock().await;
        head(&*c).await
    }

    async fn cursor(&self, name: &str) -> Result<Option<u64>> {
        let c = self.client.lock().await;
        let row = c
            .query_opt("SELECT position FROM cursors WHERE name = $1", &[&name])
            .await
            .map_err(be)?;
        Ok(row.map(|r| to_u64(r.get(0))))
    }

    async fn set_cursor(&self, name: &str, expected: Option<u64>, position: u64) -> Result<bool> {
        let c = self.client.lock().await;
        let position = to_i64(position)?;
        let moved = match expected {
            None => c
                .execute(
                    "INSERT INTO cursors (name, position) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                    &[&name, &position],
                )
                .await
                .map_err(be)?,
            Some(expected) => c
                .execute(
                    "UPDATE cursors SET position = $2 WHERE name = $1 AND position = $3",
                    &[&name, &position, &to_i64(expected)?],
                )
                .await
                .map_err(be)?,
        };
        Ok(moved == 1)
    }

    async fn job(&self, id: &str) -> Result<Option<RecheckJob>> {
        let c = self.client.lock().await;
        let row = c
            .query_opt(
                "SELECT id, doc, state, attempt FROM jobs WHERE id = $1",
                &[&id],
            )
            .await
            .map_err(be)?;
        row.as_ref().map(job_row).transpose()
    }

    async fn jobs(&self, filter: &JobFilter) -> Result<Vec<RecheckJob>> {
        let c = self.client.lock().await;
        let limit = filter.limit.map(|l| to_i64(l as u64)).transpose()?;
        let rows = c
            .query(
                "SELECT id, doc, state, attempt FROM jobs \
                 WHERE ($1::text IS NULL OR tenant = $1) AND ($2::text IS NULL OR state = $2) \
                   AND ($3::text IS NULL OR artifact = $3) \
                 ORDER BY win, id LIMIT $4",
                &[
                    &filter.tenant,
                    &filter.state.map(JobState::as_str),
                    &filter.artifact,
                    &limit,
                ],
            )
            .await
            .map_err(be)?;
        let jobs = rows.iter().map(job_row).collect::<Result<Vec<_>>>()?;
        Ok(jobs)
    }

    async fn transition_job(&self, id: &str, t: &JobTransition) -> Result<bool> {
        check_transition(t)?;
        let mut c = self.client.lock().await;
        let tx = c.transaction().await.map_err(be)?;
        let attempt = i32::try_from(t.attempt)
            .map_err(|_| StoreError::new(StoreErrorKind::Invalid, "attempt out of range"))?;
        let moved = tx
            .execute(
                "UPDATE jobs SET state = $3, attempt = $4 WHERE id = $1 AND state = $2",
                &[&id, &t.from.as_str(), &t.to.as_str(), &attempt],
            )
            .await
            .map_err(be)?;
        if moved == 0 {
            let exists = tx
                .query_opt("SELECT 1 FROM jobs WHERE id = $1", &[&id])
                .await
                .map_err(be)?
                .is_some();
            tx.rollback().await.map_err(be)?;
            if exists {
                return Ok(false);
            }
            return Err(StoreError::new(
                StoreErrorKind::NotFound,
                format!("job {id}"),
            ));
        }
        tx.execute(
            "INSERT INTO job_transitions (job_id, n, from_state, to_state, at, attempt) \
             SELECT $1, COALESCE(MAX(n), 0) + 1, $2, $3, $4, $5 FROM job_transitions WHERE job_id = $1",
            &[&id, &t.from.as_str(), &t.to.as_str(), &t.at, &attempt],
        )
        .await
        .map_err(be)?;
        tx.commit().await.map_err(be)?;
        Ok(true)
    }

    async fn escalate_job(
        &self,
        id: &str,
        from: JobState,
        escalation: &Escalation,
    ) -> Result<bool> {
        check_pending(from)?;
        let mut c = self.client.lock().await;
        let tx = c.transaction().await.map_err(be)?;
        let row = tx
            .query_opt(
                "SELECT id, doc, state, attempt FROM jobs WHERE id = $1 FOR UPDATE",
                &[&id],
            )
            .await
            .map_err(be)?;
        let Some(row) = row else {
            tx.rollback().await.map_err(be)?;
            return Err(StoreError::new(
                StoreErrorKind::NotFound,
                format!("job {id}"),
            ));
        };
        let mut job = job_row(&row)?;
        if job.state != from {
            tx.rollback().await.map_err(be)?;
            return Ok(false);
        }
        job.escalation = Some(escalation.clone());
        tx.execute(
            "UPDATE jobs SET doc = $2 WHERE id = $1",
            &[&id, &encode(&job)?],
        )
        .await
        .map_err(be)?;
        tx.commit().await.map_err(be)?;
        Ok(true)
    }

    async fn job_history(&self, id: &str) -> Result<Vec<JobTransition>> {
        let c = self.client.lock().await;
        let rows = c
            .query(
                "SELECT from_state, to_state, at, attempt FROM job_transitions \
                 WHERE job_id = $1 ORDER BY n",
                &[&id],
            )
            .await
            .map_err(be)?;
        rows.iter()
            .map(|r| {
                let state = |i: usize| {
                    let s: &str = r.get(i);
                    JobState::parse(s).ok_or_else(|| {
                        StoreError::new(StoreErrorKind::Corrupt, format!("job {id}: state {s:?}"))
                    })
                };
                Ok(JobTransition {
                    from: state(0)?,
                    to: state(1)?,
                    at: r.get(2),
                    attempt: u32::try_from(r.get::<_, i32>(3)).unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn impact(&self, query: &ImpactQuery) -> Result<Vec<ImpactFinding>> {
        let c = self.client.lock().await;
        let (condition, value) = match query {
            ImpactQuery::Artifact { artifact, .. } => ("artifact = $2", artifact),
            ImpactQuery::Advisory { advisory, .. } => ("advisory = $2", advisory),
            ImpactQuery::Vulnerability { vulnerability, .. } => {
                ("vulnerability = $2", vulnerability)
            }
            ImpactQuery::Purl { purl, .. } => ("(purl = $2 OR purl_base = $2)", purl),
        };
        let rows = c
            .query(
                &format!("SELECT artifact, row_key, finding FROM impact WHERE tenant = $1 AND {condition}"),
                &[&query.tenant(), value],
            )
            .await
            .map_err(be)?;
        let mut out = rows
            .iter()
            .map(|r| {
                decode(
                    format_args!("impact row {}/{}", r.get::<_, &str>(0), r.get::<_, &str>(1)),
                    r.get::<_, &[u8]>(2),
                )
            })
            .collect::<Result<Vec<ImpactFinding>>>()?;
        out.sort();
        Ok(out)
    }

    async fn put_event(&self, event: &StoredEvent) -> Result<bool> {
        let c = self.client.lock().await;
        let inserted = c
            .execute(
                "INSERT INTO events (id, tenant, job_id, kind, occurred_at, body) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
                &[
                    &event.id,
                    &event.tenant,
                    &event.job,
                    &event.kind,
                    &event.occurred_at,
                    &event.body,
                ],
            )
            .await
            .map_err(be)?;
        Ok(inserted == 1)
    }

    async fn event(&self, id: &str) -> Result<Option<StoredEvent>> {
        let c = self.client.lock().await;
        let row = c
            .query_opt(
                "SELECT id, tenant, job_id, kind, occurred_at, body FROM events WHERE id = $1",
                &[&id],
            )
            .await
            .map_err(be)?;
        Ok(row.map(|r| StoredEvent {
            id: r.get(0),
            tenant: r.get(1),
            job: r.get(2),
            kind: r.get(3),
            occurred_at: r.get(4),
            body: r.get(5),
        }))
    }

    async fn put_schedule(&self, schedule: &Schedule) -> Result<()> {
        self.upsert_doc(
            "schedules",
            &schedule.id,
            &schedule.tenant,
            encode(schedule)?,
        )
        .await
    }

    async fn schedule(&self, id: &str) -> Result<Option<Schedule>> {
        self.doc_by_id("schedules", id).await
    }

    async fn schedules(&self, tenant: Option<&str>) -> Result<Vec<Schedule>> {
        self.docs_by_tenant("schedules", tenant).await
    }

    async fn delete_schedule(&self, id: &str) -> Result<bool> {
        let c = self.client.lock().await;
        let n = c
            .execute("DELETE FROM schedules WHERE id = $1", &[&id])
            .await
            .map_err(be)?;
        Ok(n == 1)
    }

    async fn put_run(&self, run: &Run) -> Result<()> {
        self.upsert_doc("runs", &run.id, &run.tenant, encode(run)?)
            .await
    }

    async fn run(&self, id: &str) -> Result<Option<Run>> {
        self.doc_by_id("runs", id).await
    }

    async fn runs(&self, tenant: Option<&str>) -> Result<Vec<Run>> {
        self.docs_by_tenant("runs", tenant).await
    }

    async fn compact_inputs(&self, update: &SnapshotUpdate) -> Result<bool> {
        let mut c = self.client.lock().await;
        let tx = c.transaction().await.map_err(be)?;
        if apply_snapshot(&tx, update).await? {
            tx.commit().await.map_err(be)?;
            Ok(true)
        } else {
            tx.rollback().await.map_err(be)?;
            Ok(false)
        }
    }

    async fn input_snapshot(&self) -> Result<Option<SnapshotHead>> {
        let c = self.client.lock().await;
        let row = c
            .query_opt(
                "SELECT seq, win, (SELECT count(*) FROM input_snapshot) FROM input_snapshot_head",
                &[],
            )
            .await
            .map_err(be)?;
        Ok(row.map(|r| SnapshotHead {
            seq: to_u64(r.get(0)),
            window: to_u64(r.get(1)),
            records: to_u64(r.get(2)),
        }))
    }

    async fn read_input_snapshot(&self, from: u64, limit: usize) -> Result<Vec<InputEntry>> {
        let c = self.client.lock().await;
        let rows = c
            .query(
                "SELECT seq, tenant, kind, sha256, body FROM input_snapshot \
                 WHERE seq >= $1 ORDER BY seq LIMIT $2",
                &[&to_i64(from)?, &to_i64(limit as u64)?],
            )
            .await
            .map_err(be)?;
        Ok(rows
            .iter()
            .map(|r| InputEntry {
                seq: to_u64(r.get(0)),
                tenant: r.get(1),
                kind: r.get(2),
                sha256: r.get(3),
                json: r.get(4),
            })
            .collect())
    }

    async fn commit_run(&self, commit: &RunCommit) -> Result<RunOutcome> {
        let mut c = self.client.lock().await;
        let tx = c.transaction().await.map_err(be)?;
        let outcome = apply_run(&tx, commit).await?;
        match outcome {
            RunOutcome::AlreadyExists { .. } => tx.rollback().await.map_err(be)?,
            RunOutcome::Committed { .. } => tx.commit().await.map_err(be)?,
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::split_schema;

    #[test]
    fn schema_parameter_is_ours() {
        assert_eq!(
            split_schema("postgres://postgres@127.0.0.1:5432/test?schema=t_1&connect_timeout=5")
                .unwrap(),
            (
                "postgres://postgres@127.0.0.1:5432/test?connect_timeout=5".to_string(),
                "t_1".to_string()
            )
        );
        assert_eq!(
            split_schema("postgres://h/db").unwrap().1,
            "recheck".to_string()
        );
        assert!(split_schema("postgres://h/db?schema=a;drop").is_err());
        assert!(split_schema("postgres://h/db?schema=Upper").is_err());
    }
}
