//! The single log writer behind the API: one thread owns the [`Pipeline`]
//! (input log → engine → planner → window commit) and takes writes and live
//! queries from the HTTP handlers over a channel, in arrival order. The
//! engine is synchronous and runs its own timely threads, so nothing of it
//! runs on a tokio thread.
//!
//! Windows: the writer closes the open window as soon as its inbox is empty
//! (a lone write is visible at once), or earlier when `max_records` records
//! or `max_delay_ms` have accumulated under a steady stream of writes. That
//! choice is appended to the log as a `WindowClosed` record with its close
//! stamp, so a replay of the log never depends on timing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::core::pipeline::Pipeline;
use crate::engine::record::InputRecord;
use crate::engine::{ImpactAnswer, ImpactQuery};
use crate::model::Scope;

use super::config::WindowPolicy;

/// Something that must exist before a removal is written (a removal of
/// something absent is a 404, not a log record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    Advisory(String),
    Artifact { tenant: String, artifact: String },
    Vex { scope: Scope, document: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("{0} not found")]
    NotFound(String),
    /// The store or engine failed; the writer refuses writes from then on.
    #[error("the log writer failed: {0}")]
    Failed(String),
    #[error("the log writer has stopped")]
    Stopped,
}

/// Where one accepted write went.
#[derive(Debug)]
pub struct Appended {
    /// Input-log sequence numbers, one per record, in order.
    pub seqs: Vec<u64>,
    /// Resolves with the window that made the records visible.
    pub applied: Option<oneshot::Receiver<u64>>,
}

/// A live query's answer and whether the thing asked about is known at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryAnswer {
    pub answer: ImpactAnswer,
    pub known: bool,
}

enum Command {
    Append {
        records: Vec<InputRecord>,
        expect: Option<Expect>,
        wait: bool,
        reply: oneshot::Sender<Result<Appended, WriteError>>,
    },
    Query {
        query: ImpactQuery,
        reply: oneshot::Sender<Result<QueryAnswer, WriteError>>,
    },
}

/// What `/readyz` reads: how far the writer has got.
#[derive(Debug, Default)]
pub struct WriterStatus {
    /// Last input-log seq applied to the engine.
    pub applied_seq: AtomicU64,
    /// Seq of the last committed window's `WindowClosed` (0: none yet).
    pub closed_seq: AtomicU64,
    pub last_window: AtomicU64,
    pub failed: AtomicBool,
    /// Woken when a window commits (its jobs are in the outbox): what the
    /// dispatcher of `recheck serve` waits on.
    pub committed: tokio::sync::Notify,
}

impl WriterStatus {
    fn update(&self, pipeline: &Pipeline) {
        self.applied_seq
            .store(pipeline.last_seq(), Ordering::SeqCst);
        if let Some(head) = pipeline.head() {
            self.closed_seq.store(head.seq, Ordering::SeqCst);
            if self.last_window.swap(head.window, Ordering::SeqCst) != head.window {
                self.committed.notify_one();
            }
        }
    }

    /// Every applied record is in a committed window and nothing failed.
    pub fn caught_up(&self) -> bool {
        !self.failed.load(Ordering::SeqCst)
            && self.applied_seq.load(Ordering::SeqCst) == self.closed_seq.load(Ordering::SeqCst)
    }
}

/// The handlers' handle on the writer thread.
#[derive(Clone)]
pub struct LogWriter {
    commands: mpsc::Sender<Command>,
    pub status: Arc<WriterStatus>,
}

impl LogWriter {
    /// Start the writer thread on `pipeline`. The thread ends (and shuts the
    /// engine down) when every handle is dropped.
    pub fn spawn(
        pipeline: Pipeline,
        policy: WindowPolicy,
    ) -> std::io::Result<(LogWriter, std::thread::JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(1024);
        let status = Arc::new(WriterStatus::default());
        status.update(&pipeline);
        let thread_status = status.clone();
        let handle = std::thread::Builder::new()
            .name("recheck-log-writer".into())
            .spawn(move || Writer::new(pipeline, policy, thread_status).run(rx))?;
        Ok((
            LogWriter {
                commands: tx,
                status,
            },
            handle,
        ))
    }

    /// Append `records` (after checking `expect`); with `wait`, the answer
    /// carries a receiver for the window that applies them.
    pub async fn append(
        &self,
        records: Vec<InputRecord>,
        expect: Option<Expect>,
        wait: bool,
    ) -> Result<Appended, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Append {
                records,
                expect,
                wait,
                reply,
            })
            .await
            .map_err(|_| WriteError::Stopped)?;
        answer.await.map_err(|_| WriteError::Stopped)?
    }

    /// A live impact query, answered as of the last closed window.
    pub async fn query(&self, query: ImpactQuery) -> Result<QueryAnswer, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Query { query, reply })
            .await
            .map_err(|_| WriteError::Stopped)?;
        answer.await.map_err(|_| WriteError::Stopped)?
    }
}

struct Writer {
    pipeline: Pipeline,
    policy: WindowPolicy,
    status: Arc<WriterStatus>,
    /// Records appended since the last close, and when the first came.
    open_records: usize,
    opened_at: Option<Instant>,
    waiting: Vec<oneshot::Sender<u64>>,
    failure: Option<String>,
}

impl Writer {
    fn new(pipeline: Pipeline, policy: WindowPolicy, status: Arc<WriterStatus>) -> Writer {
        Writer {
            pipeline,
            policy,
            status,
            open_records: 0,
            opened_at: None,
            waiting: Vec::new(),
            failure: None,
        }
    }

    fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        // Records a previous process appended but never closed.
        if self.pipeline.has_open_window() {
            self.close();
        }
        loop {
            let due = self.open_records >= self.policy.max_records.max(1)
                || self.opened_at.is_some_and(|t| {
                    t.elapsed() >= Duration::from_millis(self.policy.max_delay_ms)
                });
            if self.open_records > 0 && due {
                self.close();
                continue;
            }
            let command = if self.open_records == 0 {
                match rx.blocking_recv() {
                    Some(c) => c,
                    None => break,
                }
            } else {
                match rx.try_recv() {
                    Ok(c) => c,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        self.close();
                        continue;
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        self.close();
                        break;
                    }
                }
            };
            self.handle(command);
        }
        self.pipeline.shutdown();
    }

    fn fail(&mut self, what: String) {
        tracing::error!(error = %what, "log writer failed; refusing writes");
        self.status.failed.store(true, Ordering::SeqCst);
        self.failure = Some(what);
        self.waiting.clear();
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Append {
                records,
                expect,
                wait,
                reply,
            } => {
                let _ = reply.send(self.append(records, expect, wait));
            }
            Command::Query { query, reply } => {
                let _ = reply.send(self.query(&query));
            }
        }
    }

    fn append(
        &mut self,
        records: Vec<InputRecord>,
        expect: Option<Expect>,
        wait: bool,
    ) -> Result<Appended, WriteError> {
        if let Some(failure) = &self.failure {
            return Err(WriteError::Failed(failure.clone()));
        }
        if let Some(expect) = expect {
            let catalog = self.pipeline.engine().catalog();
            let (held, what) = match &expect {
                Expect::Advisory(id) => (catalog.holds_advisory(id), format!("advisory {id}")),
                Expect::Artifact { tenant, artifact } => (
                    catalog.holds_artifact(tenant, artifact),
                    format!("artifact {artifact}"),
                ),
                Expect::Vex { scope, document } => (
                    catalog.holds_vex(scope, document),
                    format!("VEX document {document}"),
                ),
            };
            if !held {
                return Err(WriteError::NotFound(what));
            }
        }
        let before = self.pipeline.last_seq();
        if let Err(e) = self.pipeline.push(&records) {
            let what = e.to_string();
            self.fail(what.clone());
            return Err(WriteError::Failed(what));
        }
        self.status.update(&self.pipeline);
        let after = self.pipeline.last_seq();
        if after > before {
            self.open_records += (after - before) as usize;
            self.opened_at.get_or_insert_with(Instant::now);
        }
        let applied = wait.then(|| {
            let (tx, rx) = oneshot::channel();
            self.waiting.push(tx);
            rx
        });
        Ok(Appended {
            seqs: (before + 1..=after).collect(),
            applied,
        })
    }

    fn close(&mut self) {
        let window = self.pipeline.next_window();
        let record = InputRecord::WindowClosed {
            window,
            closed_at: None,
        };
        match self.pipeline.push(&[record]) {
            Ok(_) => {
                self.status.update(&self.pipeline);
                for w in self.waiting.drain(..) {
                    let _ = w.send(window);
                }
            }
            Err(e) => self.fail(e.to_string()),
        }
        self.open_records = 0;
        self.opened_at = None;
    }

    fn query(&self, query: &ImpactQuery) -> Result<QueryAnswer, WriteError> {
        let engine = self.pipeline.engine();
        let known = match query {
            ImpactQuery::Advisory(name) => !engine.catalog().advisories_named(name).is_empty(),
            ImpactQuery::Artifact { tenant, artifact } => {
                engine.catalog().holds_artifact(tenant, artifact)
            }
            _ => true,
        };
        let answer = engine
            .query(query)
            .map_err(|e| WriteError::Failed(e.to_string()))?;
        Ok(QueryAnswer { answer, known })
    }
}
