//! The MongoDB store (the seed system keeps its impact models in MongoDB),
//! through the official driver, using only what MongoDB 6+ offers.
//!
//! Appends and window commits are multi-document transactions, which MongoDB
//! runs on a replica set (a single-node one is enough). SecantusDB, the
//! MongoDB-wire server the test suite runs against here, advertises itself
//! as a single-node replica set and implements the transaction protocol
//! (`startTransaction` / `commitTransaction` / `abortTransaction` with
//! `lsid` + `txnNumber`); the conformance suite checks that an aborted
//! commit leaves nothing behind. A standalone `mongod` refuses transactions,
//! so this store does too (the first commit fails with the server's error).
//!
//! Layout (database from the URL path, default `recheck`; tests use a fresh
//! one each and drop it): `inputs` (`_id` = seq), `source_offsets`, `ledger`
//! (`_id` = index, unique `window`) with the payload split into
//! `ledger_chunks` of at most [`CHUNK_BYTES`] (a document is at most 16 MiB
//! and a backfill window's deltas can be larger), `cursors`, `jobs` (the job
//! document plus its `history`), `impact` (one document per snapshot row,
//! `_id` = the row key, indexed for the impact queries), `events`,
//! `schedules`, `runs`.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use mongodb::bson::{self, doc, spec::BinarySubtype, Binary, Bson, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::IndexOptions;
use mongodb::{Client, ClientSession, Collection, Database, IndexModel};

use super::{
    check_pending, check_transition, decide, to_i64, CommitOutcome, CursorMove, Decision,
    ImpactQuery, InputEntry, JobFilter, NewInput, Result, RunCommit, RunOutcome, SnapshotHead,
    SnapshotUpdate, SourceOffset, Store, StoreError, StoreErrorKind, WindowCommit,
};
use crate::model::{
    Escalation, ImpactFinding, JobState, JobTransition, LedgerEntry, LedgerRecord, RecheckJob, Run,
    Schedule, StoredEvent,
};

/// Largest piece of a ledger payload in one document.
pub const CHUNK_BYTES: usize = 4 << 20;
/// Documents per bulk insert.
const BATCH: usize = 5000;
/// Ids per `$in` lookup. SecantusDB's `$in` costs grow with the square of
/// the list (5000 ids: 12 s, 100 ids: 13 ms); MongoDB does not mind either way.
const LOOKUP: usize = 100;

fn is_duplicate(e: &mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == 11000,
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .is_some_and(|ws| ws.iter().any(|w| w.code == 11000)),
        _ => false,
    }
}

fn be(e: mongodb::error::Error) -> StoreError {
    let kind = if is_duplicate(&e) {
        StoreErrorKind::Conflict
    } else {
        StoreErrorKind::Backend
    };
    StoreError::with_source(kind, "mongodb", e)
}

fn to_doc<T: serde::Serialize>(value: &T) -> Result<Document> {
    bson::to_document(value)
        .map_err(|e| StoreError::with_source(StoreErrorKind::Invalid, "encoding a document", e))
}

fn from_doc<T: serde::de::DeserializeOwned>(
    what: impl std::fmt::Display,
    d: Document,
) -> Result<T> {
    bson::from_document(d).map_err(|e| {
        StoreError::with_source(StoreErrorKind::Corrupt, format!("decoding {what}"), e)
    })
}

fn field<'a>(d: &'a Document, key: &str) -> Result<&'a Bson> {
    d.get(key).ok_or_else(|| {
        StoreError::new(
            StoreErrorKind::Corrupt,
            format!("document without {key}: {d}"),
        )
    })
}

fn get_u64(d: &Document, key: &str) -> Result<u64> {
    match field(d, key)? {
        Bson::Int64(v) => Ok(u64::try_from(*v).unwrap_or_default()),
        Bson::Int32(v) => Ok(u64::try_from(*v).unwrap_or_default()),
        other => Err(StoreError::new(
            StoreErrorKind::Corrupt,
            format!("{key} is {other}, not an integer"),
        )),
    }
}

fn get_str(d: &Document, key: &str) -> Result<String> {
    d.get_str(key)
        .map(str::to_string)
        .map_err(|e| StoreError::with_source(StoreErrorKind::Corrupt, format!("field {key}"), e))
}

fn get_bytes(d: &Document, key: &str) -> Result<Vec<u8>> {
    d.get_binary_generic(key)
        .cloned()
        .map_err(|e| StoreError::with_source(StoreErrorKind::Corrupt, format!("field {key}"), e))
}

fn binary(bytes: &[u8]) -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes: bytes.to_vec(),
    }
}

fn chunk_id(index: u64, n: usize) -> String {
    format!("{index:020}-{n:06}")
}

fn ledger_doc(e: &LedgerEntry) -> Result<Document> {
    Ok(doc! {
        "_id": to_i64(e.index)?,
        "window": to_i64(e.window)?,
        "seq": to_i64(e.seq)?,
        "prev_hash": &e.prev_hash,
        "payload_hash": &e.payload_hash,
        "hash": &e.hash,
    })
}

fn ledger_entry(d: &Document) -> Result<LedgerEntry> {
    Ok(LedgerEntry {
        index: get_u64(d, "_id")?,
        window: get_u64(d, "window")?,
        seq: get_u64(d, "seq")?,
        prev_hash: get_str(d, "prev_hash")?,
        payload_hash: get_str(d, "payload_hash")?,
        hash: get_str(d, "hash")?,
    })
}

/// Commit the session's transaction when `out` is a success that `keep`
/// accepts, else abort it; either way hand `out` back.
async fn finish<T>(
    session: &mut ClientSession,
    out: Result<T>,
    keep: impl Fn(&T) -> bool,
) -> Result<T> {
    match out {
        Ok(value) if keep(&value) => {
            session.commit_transaction().await.map_err(be)?;
            Ok(value)
        }
        other => {
            // The outcome (or the first error) matters more than a failed abort,
            // and the server drops an unfinished transaction on its own.
            if let Err(e) = session.abort_transaction().await {
                tracing::warn!(error = %e, "aborting a MongoDB transaction");
            }
            other
        }
    }
}

pub struct MongoStore {
    client: Client,
    db: Database,
}

impl MongoStore {
    pub async fn connect(url: &str) -> Result<MongoStore> {
        let client = Client::with_uri_str(url).await.map_err(|e| {
            StoreError::with_source(StoreErrorKind::Connect, "connecting to MongoDB", e)
        })?;
        let db = client
            .default_database()
            .unwrap_or_else(|| client.database("recheck"));
        let store = MongoStore { client, db };
        store.create_indexes().await?;
        Ok(store)
    }

    /// The database this store lives in.
    pub fn database(&self) -> &Database {
        &self.db
    }

    fn coll(&self, name: &str) -> Collection<Document> {
        self.db.collection(name)
    }

    async fn create_indexes(&self) -> Result<()> {
        let unique = IndexOptions::builder().unique(true).build();
        let indexes: [(&str, Document, bool); 10] = [
            ("ledger", doc! {"window": 1}, true),
            ("input_snapshot", doc! {"key": 1}, true),
            ("jobs", doc! {"state": 1, "window": 1, "_id": 1}, false),
            ("jobs", doc! {"tenant": 1, "state": 1, "window": 1}, false),
            (
                "jobs",
                doc! {"tenant": 1, "artifact": 1, "window": 1},
                false,
            ),
            ("impact", doc! {"tenant": 1, "artifact": 1}, false),
            ("impact", doc! {"tenant": 1, "advisory": 1}, false),
            ("impact", doc! {"tenant": 1, "vulnerability": 1}, false),
            ("impact", doc! {"tenant": 1, "purl": 1}, false),
            ("impact", doc! {"tenant": 1, "purl_base": 1}, false),
        ];
        for (coll, keys, is_unique) in indexes {
            let model = if is_unique {
                IndexModel::builder()
                    .keys(keys)
                    .options(unique.clone())
                    .build()
            } else {
                IndexModel::builder().keys(keys).build()
            };
            self.coll(coll).create_index(model).await.map_err(be)?;
        }
        Ok(())
    }

    async fn begin(&self) -> Result<ClientSession> {
        let mut session = self.client.start_session().await.map_err(be)?;
        session.start_transaction().await.map_err(be)?;
        Ok(session)
    }

    /// Every document of `coll` matching `filter`, in `sort` order.
    async fn find_all(
        &self,
        coll: &str,
        filter: Document,
        sort: Document,
        limit: Option<i64>,
    ) -> Result<Vec<Document>> {
        let coll = self.coll(coll);
        let mut find = coll.find(filter).sort(sort);
        if let Some(limit) = limit {
            find = find.limit(limit);
        }
        let mut cursor = find.await.map_err(be)?;
        let mut out = Vec::new();
        while cursor.advance().await.map_err(be)? {
            out.push(cursor.deserialize_current().map_err(be)?);
        }
        Ok(out)
    }

    async fn get_doc<T: serde::de::DeserializeOwned>(
        &self,
        coll: &str,
        id: &str,
    ) -> Result<Option<T>> {
        match self
            .coll(coll)
            .find_one(doc! {"_id": id})
            .await
            .map_err(be)?
        {
            Some(d) => from_doc(format_args!("{coll} {id}"), d).map(Some),
            None => Ok(None),
        }
    }

    async fn put_doc<T: serde::Serialize>(&self, coll: &str, id: &str, value: &T) -> Result<()> {
        let mut d = to_doc(value)?;
        d.insert("_id", id);
        self.coll(coll)
            .replace_one(doc! {"_id": id}, d)
            .upsert(true)
            .await
            .map_err(be)?;
        Ok(())
    }

    async fn docs_by_tenant<T: serde::de::DeserializeOwned>(
        &self,
        coll: &str,
        tenant: Option<&str>,
    ) -> Result<Vec<T>> {
        let filter = tenant.map_or_else(Document::new, |t| doc! {"tenant": t});
        self.find_all(coll, filter, doc! {"_id": 1}, None)
            .await?
            .into_iter()
            .map(|d| from_doc(coll, d))
            .collect()
    }

    async fn append_in(
        &self,
        s: &mut ClientSession,
        records: &[NewInput],
        offsets: &[SourceOffset],
    ) -> Result<Vec<u64>> {
        let inputs = self.coll("inputs");
        let last = inputs
            .find_one(doc! {})
            .sort(doc! {"_id": -1})
            .session(&mut *s)
            .await
            .map_err(be)?
            .map(|d| get_u64(&d, "_id"))
            .transpose()?
            .unwrap_or(0);
        let seqs: Vec<u64> = (last + 1..).take(records.len()).collect();
        for (chunk, seq_chunk) in records.chunks(BATCH).zip(seqs.chunks(BATCH)) {
            let docs = chunk
                .iter()
                .zip(seq_chunk)
                .map(|(r, seq)| {
                    Ok(doc! {
                        "_id": to_i64(*seq)?,
                        "tenant": r.tenant.as_deref().map_or(Bson::Null, |t| Bson::String(t.into())),
                        "kind": r.kind,
                        "sha256": &r.sha256,
                        "json": binary(&r.json),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            inputs
                .insert_many(docs)
                .session(&mut *s)
                .await
                .map_err(be)?;
        }
        let table = self.coll("source_offsets");
        for o in offsets {
            o.check()?;
            table
                .update_one(
                    doc! {"_id": &o.source},
                    doc! {"$set": {"offset": &o.offset}},
                )
                .upsert(true)
                .session(&mut *s)
                .await
                .map_err(be)?;
        }
        Ok(seqs)
    }

    async fn commit_in(
        &self,
        s: &mut ClientSession,
        commit: &WindowCommit,
    ) -> Result<CommitOutcome> {
        let ledger = self.coll("ledger");
        let existing = ledger
            .find_one(doc! {"window": to_i64(commit.window)?})
            .session(&mut *s)
            .await
            .map_err(be)?
            .map(|d| ledger_entry(&d))
            .transpose()?;
        let head = ledger
            .find_one(doc! {})
            .sort(doc! {"_id": -1})
            .session(&mut *s)
            .await
            .map_err(be)?
            .map(|d| ledger_entry(&d))
            .transpose()?;
        let (entry, payload) = match decide(commit, existing, head.as_ref())? {
            Decision::Already(entry) => return Ok(CommitOutcome::AlreadyCommitted { entry }),
            Decision::Append { entry, payload } => (entry, payload),
        };
        ledger
            .insert_one(ledger_doc(&entry)?)
            .session(&mut *s)
            .await
            .map_err(be)?;
        let chunks: Vec<Document> = payload
            .chunks(CHUNK_BYTES)
            .enumerate()
            .map(|(n, bytes)| doc! {"_id": chunk_id(entry.index, n), "data": binary(bytes)})
            .collect();
        if !chunks.is_empty() {
            self.coll("ledger_chunks")
                .insert_many(chunks)
                .session(&mut *s)
                .await
                .map_err(be)?;
        }

        let impact = self.coll("impact");
        // A row's key hashes the whole row, tenant and artifact included, so
        // it is the document id.
        for batch in commit.snapshot_changes().chunks(LOOKUP) {
            let ids: Vec<&str> = batch.iter().map(|c| c.key.as_str()).collect();
            let mut present: BTreeMap<String, i64> = BTreeMap::new();
            let mut cursor = impact
                .find(doc! {"_id": {"$in": ids.clone()}})
                .projection(doc! {"count": 1})
                .session(&mut *s)
                .await
                .map_err(be)?;
            while cursor.advance(&mut *s).await.map_err(be)? {
                let d = cursor.deserialize_current().map_err(be)?;
                present.insert(get_str(&d, "_id")?, d.get_i64("count").unwrap_or(0));
            }
            let mut inserts = Vec::new();
            let mut removals = Vec::new();
            for change in batch {
                let f = &change.finding;
                let id = change.key.as_str();
                match present.get(id) {
                    Some(count) if count + change.diff <= 0 => removals.push(id),
                    Some(_) => {
                        impact
                            .update_one(doc! {"_id": id}, doc! {"$inc": {"count": change.diff}})
                            .session(&mut *s)
                            .await
                            .map_err(be)?;
                    }
                    None if change.diff > 0 => inserts.push(doc! {
                        "_id": id,
                        "tenant": &f.tenant,
                        "artifact": &f.artifact,
                        "advisory": &f.advisory,
                        "vulnerability": &f.vulnerability,
                        "purl": f.purl.as_deref().map_or(Bson::Null, |p| Bson::String(p.into())),
                        "purl_base": f.purl_base().map_or(Bson::Null, |p| Bson::String(p.into())),
                        "count": change.diff,
                        "finding": to_doc(f)?,
                    }),
                    None => {}
                }
            }
            if !inserts.is_empty() {
                impact
                    .insert_many(inserts)
                    .session(&mut *s)
                    .await
                    .map_err(be)?;
            }
            if !removals.is_empty() {
                impact
                    .delete_many(doc! {"_id": {"$in": removals}})
                    .session(&mut *s)
                    .await
                    .map_err(be)?;
            }
        }

        let new_jobs = self.insert_jobs(s, &commit.jobs).await?;
        self.set_cursors(s, &commit.cursors).await?;
        Ok(CommitOutcome::Committed { entry, new_jobs })
    }

    /// Insert planned jobs that do not exist yet; returns how many were new.
    async fn insert_jobs(&self, s: &mut ClientSession, new: &[RecheckJob]) -> Result<usize> {
        let jobs = self.coll("jobs");
        let mut new_jobs = 0;
        for batch in new.chunks(LOOKUP) {
            let ids: Vec<&str> = batch.iter().map(|j| j.id.as_str()).collect();
            let mut known = BTreeSet::new();
            let mut cursor = jobs
                .find(doc! {"_id": {"$in": ids}})
                .projection(doc! {"_id": 1})
                .session(&mut *s)
                .await
                .map_err(be)?;
            while cursor.advance(&mut *s).await.map_err(be)? {
                let d = cursor.deserialize_current().map_err(be)?;
                known.insert(get_str(&d, "_id")?);
            }
            let docs = batch
                .iter()
                .filter(|j| !known.contains(&j.id))
                .map(|j| {
                    let mut d = to_doc(j)?;
                    d.insert("_id", &j.id);
                    d.insert("history", Bson::Array(Vec::new()));
                    Ok(d)
                })
                .collect::<Result<Vec<_>>>()?;
            new_jobs += docs.len();
            if !docs.is_empty() {
                jobs.insert_many(docs).session(&mut *s).await.map_err(be)?;
            }
        }
        Ok(new_jobs)
    }

    async fn set_cursors(&self, s: &mut ClientSession, moves: &[CursorMove]) -> Result<()> {
        let cursors = self.coll("cursors");
        for c in moves {
            cursors
                .update_one(
                    doc! {"_id": &c.name},
                    doc! {"$set": {"position": to_i64(c.position)?}},
                )
                .upsert(true)
                .session(&mut *s)
                .await
                .map_err(be)?;
        }
        Ok(())
    }

    /// The head moves first, on the condition that it is still at `base`,
    /// so a concurrent compaction either finds it moved or conflicts.
    async fn snapshot_in(&self, s: &mut ClientSession, update: &SnapshotUpdate) -> Result<bool> {
        update.check()?;
        let head = self.coll("input_snapshot_head");
        let moved = doc! {"$set": {"seq": to_i64(update.seq)?, "window": to_i64(update.window)?}};
        match update.base {
            Some(base) => {
                let r = head
                    .update_one(doc! {"_id": "head", "seq": to_i64(base)?}, moved)
                    .session(&mut *s)
                    .await
                    .map_err(be)?;
                if r.matched_count == 0 {
                    return Ok(false);
                }
            }
            None => {
                let exists = head
                    .find_one(doc! {"_id": "head"})
                    .session(&mut *s)
                    .await
                    .map_err(be)?;
                if exists.is_some() {
                    return Ok(false);
                }
                head.insert_one(doc! {
                    "_id": "head",
                    "seq": to_i64(update.seq)?,
                    "window": to_i64(update.window)?,
                })
                .session(&mut *s)
                .await
                .map_err(be)?;
            }
        }
        let rows = self.coll("input_snapshot");
        let replaced: Vec<&str> = update
            .delete
            .iter()
            .map(String::as_str)
            .chain(update.put.iter().map(|r| r.key.as_str()))
            .collect();
        for batch in replaced.chunks(LOOKUP) {
            rows.delete_many(doc! {"key": {"$in": batch.to_vec()}})
                .session(&mut *s)
                .await
                .map_err(be)?;
        }
        for batch in update.put.chunks(BATCH) {
            let docs = batch
                .iter()
                .map(|r| {
                    let e = &r.entry;
                    Ok(doc! {
                        "_id": to_i64(e.seq)?,
                        "key": &r.key,
                        "tenant": e.tenant.as_deref().map_or(Bson::Null, |t| Bson::String(t.into())),
                        "kind": &e.kind,
                        "sha256": &e.sha256,
                        "json": binary(&e.json),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            if !docs.is_empty() {
                rows.insert_many(docs).session(&mut *s).await.map_err(be)?;
            }
        }
        Ok(true)
    }

    /// The run document is inserted first: a concurrent commit of the same
    /// run conflicts on its id and aborts, so only one writes jobs.
    async fn run_in(&self, s: &mut ClientSession, commit: &RunCommit) -> Result<RunOutcome> {
        commit.check()?;
        let runs = self.coll("runs");
        let id = commit.run.id.as_str();
        if let Some(d) = runs
            .find_one(doc! {"_id": id})
            .session(&mut *s)
            .await
            .map_err(be)?
        {
            let run = from_doc(format_args!("run {id}"), d)?;
            return Ok(RunOutcome::AlreadyExists { run: Box::new(run) });
        }
        let mut d = to_doc(&commit.run)?;
        d.insert("_id", id);
        runs.insert_one(d).session(&mut *s).await.map_err(be)?;
        let new_jobs = self.insert_jobs(s, &commit.jobs).await?;
        self.set_cursors(s, &commit.cursors).await?;
        Ok(RunOutcome::Committed { new_jobs })
    }
}

#[async_trait]
impl Store for MongoStore {
    fn backend(&self) -> &'static str {
        "mongodb"
    }

    async fn storage_bytes(&self) -> Result<Option<u64>> {
        // dbStats is MongoDB's own accounting; a wire-compatible server that
        // lacks it (or its fields) leaves the size unknown rather than failing.
        let Ok(stats) = self.db.run_command(doc! {"dbStats": 1}).await else {
            return Ok(None);
        };
        let field = |name: &str| -> Option<u64> {
            match stats.get(name)? {
                mongodb::bson::Bson::Int32(v) => u64::try_from(*v).ok(),
                mongodb::bson::Bson::Int64(v) => u64::try_from(*v).ok(),
                mongodb::bson::Bson::Double(v) if *v >= 0.0 => Some(*v as u64),
                _ => None,
            }
        };
        Ok(match (field("storageSize"), field("indexSize")) {
            (Some(data), index) => Some(data + index.unwrap_or(0)),
            (None, _) => None,
        })
    }

    async fn append_inputs(
        &self,
        records: &[NewInput],
        offsets: &[SourceOffset],
    ) -> Result<Vec<u64>> {
        let mut s = self.begin().await?;
        let out = self.append_in(&mut s, records, offsets).await;
        finish(&mut s, out, |_| true).await
    }

    async fn read_inputs(&self, from: u64, limit: usize) -> Result<Vec<InputEntry>> {
        let docs = self
            .find_all(
                "inputs",
                doc! {"_id": {"$gte": to_i64(from)?}},
                doc! {"_id": 1},
                Some(to_i64(limit as u64)?),
            )
            .await?;
        docs.iter()
            .map(|d| {
                Ok(InputEntry {
                    seq: get_u64(d, "_id")?,
                    tenant: d.get_str("tenant").ok().map(str::to_string),
                    kind: get_str(d, "kind")?,
                    sha256: get_str(d, "sha256")?,
                    json: get_bytes(d, "json")?,
                })
            })
            .collect()
    }

    async fn last_seq(&self) -> Result<u64> {
        let last = self
            .coll("inputs")
            .find_one(doc! {})
            .sort(doc! {"_id": -1})
            .await
            .map_err(be)?;
        Ok(last.map(|d| get_u64(&d, "_id")).transpose()?.unwrap_or(0))
    }

    async fn source_offset(&self, source: &str) -> Result<Option<String>> {
        let d = self
            .coll("source_offsets")
            .find_one(doc! {"_id": source})
            .await
            .map_err(be)?;
        d.map(|d| get_str(&d, "offset")).transpose()
    }

    async fn commit_window(&self, commit: &WindowCommit) -> Result<CommitOutcome> {
        let mut s = self.begin().await?;
        let out = self.commit_in(&mut s, commit).await;
        finish(&mut s, out, |o| {
            matches!(o, CommitOutcome::Committed { .. })
        })
        .await
    }

    async fn read_ledger(&self, from: u64, limit: usize) -> Result<Vec<LedgerRecord>> {
        let docs = self
            .find_all(
                "ledger",
                doc! {"_id": {"$gte": to_i64(from)?}},
                doc! {"_id": 1},
                Some(to_i64(limit as u64)?),
            )
            .await?;
        let mut out = Vec::with_capacity(docs.len());
        for d in &docs {
            let entry = ledger_entry(d)?;
            let chunks = self
                .find_all(
                    "ledger_chunks",
                    doc! {"_id": {"$gte": chunk_id(entry.index, 0), "$lt": chunk_id(entry.index + 1, 0)}},
                    doc! {"_id": 1},
                    None,
                )
                .await?;
            let mut payload = Vec::new();
            for c in &chunks {
                payload.extend(get_bytes(c, "data")?);
            }
            out.push(LedgerRecord { entry, payload });
        }
        Ok(out)
    }

    async fn ledger_head(&self) -> Result<Option<LedgerEntry>> {
        let d = self
            .coll("ledger")
            .find_one(doc! {})
            .sort(doc! {"_id": -1})
            .await
            .map_err(be)?;
        d.map(|d| ledger_entry(&d)).transpose()
    }

    async fn cursor(&self, name: &str) -> Result<Option<u64>> {
        let d = self
            .coll("cursors")
            .find_one(doc! {"_id": name})
            .await
            .map_err(be)?;
        d.map(|d| get_u64(&d, "position")).transpose()
    }

    async fn set_cursor(&self, name: &str, expected: Option<u64>, position: u64) -> Result<bool> {
        let cursors = self.coll("cursors");
        let position = to_i64(position)?;
        match expected {
            None => match cursors
                .insert_one(doc! {"_id": name, "position": position})
                .await
            {
                Ok(_) => Ok(true),
                Err(e) if is_duplicate(&e) => Ok(false),
                Err(e) => Err(be(e)),
            },
            Some(expected) => {
                let r = cursors
                    .update_one(
                        doc! {"_id": name, "position": to_i64(expected)?},
                        doc! {"$set": {"position": position}},
                    )
                    .await
                    .map_err(be)?;
                Ok(r.matched_count == 1)
            }
        }
    }

    async fn job(&self, id: &str) -> Result<Option<RecheckJob>> {
        self.get_doc("jobs", id).await
    }

    async fn jobs(&self, filter: &JobFilter) -> Result<Vec<RecheckJob>> {
        let mut f = Document::new();
        if let Some(t) = &filter.tenant {
            f.insert("tenant", t);
        }
        if let Some(s) = filter.state {
            f.insert("state", s.as_str());
        }
        if let Some(a) = &filter.artifact {
            f.insert("artifact", a);
        }
        let limit = filter.limit.map(|l| to_i64(l as u64)).transpose()?;
        let jobs = self
            .find_all("jobs", f, doc! {"window": 1, "_id": 1}, limit)
            .await?
            .into_iter()
            .map(|d| from_doc("job", d))
            .collect::<Result<Vec<RecheckJob>>>()?;
        Ok(jobs)
    }

    async fn transition_job(&self, id: &str, t: &JobTransition) -> Result<bool> {
        check_transition(t)?;
        let record = to_doc(t)?;
        let r = self
            .coll("jobs")
            .update_one(
                doc! {"_id": id, "state": t.from.as_str()},
                doc! {
                    "$set": {"state": t.to.as_str(), "attempt": i64::from(t.attempt)},
                    "$push": {"history": record},
                },
            )
            .await
            .map_err(be)?;
        if r.matched_count == 1 {
            return Ok(true);
        }
        let exists = self
            .coll("jobs")
            .find_one(doc! {"_id": id})
            .projection(doc! {"_id": 1})
            .await
            .map_err(be)?
            .is_some();
        if exists {
            Ok(false)
        } else {
            Err(StoreError::new(
                StoreErrorKind::NotFound,
                format!("job {id}"),
            ))
        }
    }

    async fn escalate_job(
        &self,
        id: &str,
        from: JobState,
        escalation: &Escalation,
    ) -> Result<bool> {
        check_pending(from)?;
        let escalation = to_doc(escalation)?;
        let r = self
            .coll("jobs")
            .update_one(
                doc! {"_id": id, "state": from.as_str()},
                doc! {"$set": {"escalation": escalation}},
            )
            .await
            .map_err(be)?;
        if r.matched_count == 1 {
            return Ok(true);
        }
        let exists = self
            .coll("jobs")
            .find_one(doc! {"_id": id})
            .projection(doc! {"_id": 1})
            .await
            .map_err(be)?
            .is_some();
        if exists {
            Ok(false)
        } else {
            Err(StoreError::new(
                StoreErrorKind::NotFound,
                format!("job {id}"),
            ))
        }
    }

    async fn job_history(&self, id: &str) -> Result<Vec<JobTransition>> {
        let d = self
            .coll("jobs")
            .find_one(doc! {"_id": id})
            .projection(doc! {"history": 1})
            .await
            .map_err(be)?;
        let Some(d) = d else {
            return Ok(Vec::new());
        };
        let history = d.get_array("history").cloned().unwrap_or_default();
        history
            .into_iter()
            .map(|b| {
                bson::from_bson(b).map_err(|e| {
                    StoreError::with_source(
                        StoreErrorKind::Corrupt,
                        format!("history of job {id}"),
                        e,
                    )
                })
            })
            .collect()
    }

    async fn impact(&self, query: &ImpactQuery) -> Result<Vec<ImpactFinding>> {
        let tenant = query.tenant();
        let filter = match query {
            ImpactQuery::Artifact { artifact, .. } => doc! {"tenant": tenant, "artifact": artifact},
            ImpactQuery::Advisory { advisory, .. } => doc! {"tenant": tenant, "advisory": advisory},
            ImpactQuery::Vulnerability { vulnerability, .. } => {
                doc! {"tenant": tenant, "vulnerability": vulnerability}
            }
            ImpactQuery::Purl { purl, .. } => {
                doc! {"tenant": tenant, "$or": [{"purl": purl}, {"purl_base": purl}]}
            }
        };
        let mut out = self
            .find_all("impact", filter, doc! {"_id": 1}, None)
            .await?
            .into_iter()
            .map(|d| {
                let f = d.get_document("finding").cloned().unwrap_or_default();
                from_doc("impact row", f)
            })
            .collect::<Result<Vec<ImpactFinding>>>()?;
        out.sort();
        Ok(out)
    }

    async fn put_event(&self, event: &StoredEvent) -> Result<bool> {
        let d = doc! {
            "_id": &event.id,
            "tenant": &event.tenant,
            "job": &event.job,
            "kind": &event.kind,
            "occurred_at": &event.occurred_at,
            "body": binary(&event.body),
        };
        match self.coll("events").insert_one(d).await {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate(&e) => Ok(false),
            Err(e) => Err(be(e)),
        }
    }

    async fn event(&self, id: &str) -> Result<Option<StoredEvent>> {
        let d = self
            .coll("events")
            .find_one(doc! {"_id": id})
            .await
            .map_err(be)?;
        d.map(|d| {
            Ok(StoredEvent {
                id: get_str(&d, "_id")?,
                tenant: get_str(&d, "tenant")?,
                job: get_str(&d, "job")?,
                kind: get_str(&d, "kind")?,
                occurred_at: get_str(&d, "occurred_at")?,
                body: get_bytes(&d, "body")?,
            })
        })
        .transpose()
    }

    async fn put_schedule(&self, schedule: &Schedule) -> Result<()> {
        self.put_doc("schedules", &schedule.id, schedule).await
    }

    async fn schedule(&self, id: &str) -> Result<Option<Schedule>> {
        self.get_doc("schedules", id).await
    }

    async fn schedules(&self, tenant: Option<&str>) -> Result<Vec<Schedule>> {
        self.docs_by_tenant("schedules", tenant).await
    }

    async fn delete_schedule(&self, id: &str) -> Result<bool> {
        let r = self
            .coll("schedules")
            .delete_one(doc! {"_id": id})
            .await
            .map_err(be)?;
        Ok(r.deleted_count == 1)
    }

    async fn put_run(&self, run: &Run) -> Result<()> {
        self.put_doc("runs", &run.id, run).await
    }

    async fn run(&self, id: &str) -> Result<Option<Run>> {
        self.get_doc("runs", id).await
    }

    async fn runs(&self, tenant: Option<&str>) -> Result<Vec<Run>> {
        self.docs_by_tenant("runs", tenant).await
    }

    async fn compact_inputs(&self, update: &SnapshotUpdate) -> Result<bool> {
        let mut s = self.begin().await?;
        let out = self.snapshot_in(&mut s, update).await;
        finish(&mut s, out, |moved| *moved).await
    }

    async fn input_snapshot(&self) -> Result<Option<SnapshotHead>> {
        let Some(d) = self
            .coll("input_snapshot_head")
            .find_one(doc! {"_id": "head"})
            .await
            .map_err(be)?
        else {
            return Ok(None);
        };
        let records = self
            .coll("input_snapshot")
            .count_documents(doc! {})
            .await
            .map_err(be)?;
        Ok(Some(SnapshotHead {
            seq: get_u64(&d, "seq")?,
            window: get_u64(&d, "window")?,
            records,
        }))
    }

    async fn read_input_snapshot(&self, from: u64, limit: usize) -> Result<Vec<InputEntry>> {
        let docs = self
            .find_all(
                "input_snapshot",
                doc! {"_id": {"$gte": to_i64(from)?}},
                doc! {"_id": 1},
                Some(to_i64(limit as u64)?),
            )
            .await?;
        docs.iter()
            .map(|d| {
                Ok(InputEntry {
                    seq: get_u64(d, "_id")?,
                    tenant: d.get_str("tenant").ok().map(str::to_string),
                    kind: get_str(d, "kind")?,
                    sha256: get_str(d, "sha256")?,
                    json: get_bytes(d, "json")?,
                })
            })
            .collect()
    }

    async fn commit_run(&self, commit: &RunCommit) -> Result<RunOutcome> {
        let mut s = self.begin().await?;
        let out = self.run_in(&mut s, commit).await;
        match finish(&mut s, out, |o| matches!(o, RunOutcome::Committed { .. })).await {
            // The other writer of the same run won: report its run.
            Err(e) if e.kind == StoreErrorKind::Conflict => match self.run(&commit.run.id).await? {
                Some(run) => Ok(RunOutcome::AlreadyExists { run: Box::new(run) }),
                None => Err(e),
            },
            other => other,
        }
    }
}
