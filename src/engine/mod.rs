//! Runs the impact dataflow (`recheck-dataflows`) on its own threads and
//! feeds it from input-log records.
//!
//! Timely workers run on threads timely spawns (never on an async runtime:
//! they would busy-wait a runtime thread). Worker 0 of process 0 is the only
//! one that reads commands; the others join the exchange. Idle workers park in
//! `step_or_park`; a command wakes worker 0 by unparking its thread, and
//! timely's channels wake the rest. Every window's impact deltas are routed to
//! worker 0, consolidated and sorted, so the delta stream is the same whatever
//! the number of workers or processes.

pub mod catalog;
mod cluster;
pub mod directory;
pub mod evaluator;
pub mod ids;
pub mod record;

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::Thread;

use timely::dataflow::operators::{Exchange, Inspect, Probe};
use timely::dataflow::ProbeHandle;
use timely::{CommunicationConfig, WorkerConfig};

use recheck_dataflows as df;

use crate::model::Finding;
use catalog::{Catalog, Updates};
use evaluator::VersionEvaluator;
use record::{InputRecord, LogEntry};

/// An impact delta as the dataflow emits it.
pub type Row = df::ImpactRow<()>;

/// How to run timely: threads in this process, and optionally a cluster of
/// processes (timely's own cluster mode; process 0 reads the input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    pub workers: usize,
    pub processes: usize,
    pub process_index: usize,
    /// One `host:port` per line, one line per process; default: loopback
    /// ports from 2101.
    pub hostfile: Option<PathBuf>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            workers: 1,
            processes: 1,
            process_index: 0,
            hostfile: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error("bad engine configuration: {0}")]
    Config(String),
    #[error("reading hostfile {path}: {source}")]
    Hostfile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("starting timely: {0}")]
    Start(String),
    #[error("the dataflow workers stopped unexpectedly")]
    Stopped,
    #[error("window {got} closed out of order (expected a window after {after})")]
    WindowOrder { got: u64, after: u64 },
    #[error("window {0} is out of range (windows are numbered below 2^32)")]
    WindowRange(u64),
}

/// Worker allocators for a configuration.
type Allocators = (
    Vec<timely::communication::AllocatorBuilder>,
    Box<dyn std::any::Any + Send>,
);

impl EngineConfig {
    fn allocators(&self) -> Result<Allocators, EngineError> {
        if self.workers == 0 || self.processes == 0 || self.process_index >= self.processes {
            return Err(EngineError::Config(format!(
                "need workers >= 1, processes >= 1 and process index < processes (got {}, {}, {})",
                self.workers, self.processes, self.process_index
            )));
        }
        if self.processes == 1 {
            let communication = if self.workers == 1 {
                CommunicationConfig::Thread
            } else {
                CommunicationConfig::Process(self.workers)
            };
            return communication.try_build().map_err(EngineError::Start);
        }
        let addresses = match &self.hostfile {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|source| EngineError::Hostfile {
                    path: path.clone(),
                    source,
                })?
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string)
                .collect::<Vec<_>>(),
            None => (0..self.processes)
                .map(|i| format!("127.0.0.1:{}", 2101 + i))
                .collect(),
        };
        if addresses.len() != self.processes {
            return Err(EngineError::Config(format!(
                "hostfile lists {} addresses for {} processes",
                addresses.len(),
                self.processes
            )));
        }
        cluster::allocators(&addresses, self.process_index, self.workers)
    }
}

fn execute<F>(
    config: &EngineConfig,
    func: F,
) -> Result<timely::communication::WorkerGuards<()>, EngineError>
where
    F: Fn(&mut timely::worker::Worker) + Send + Sync + 'static,
{
    let (builders, others) = config.allocators()?;
    timely::execute::execute_from(builders, others, WorkerConfig::default(), func)
        .map_err(EngineError::Start)
}

enum Command {
    Apply(Box<Updates>),
    Close(u64),
    Query(Vec<df::Query>, mpsc::Sender<Answers>),
}

/// The deltas of one closed window, consolidated and sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowDeltas {
    pub window: u64,
    pub rows: Vec<(Row, df::Diff)>,
}

/// Raw answers to one query: the impact rows and the artifacts it selects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answers {
    pub rows: Vec<Row>,
    pub artifacts: Vec<df::ArtifactId>,
}

type Shared<T> = Arc<Mutex<Option<T>>>;

fn take<T>(slot: &Shared<T>) -> Option<T> {
    slot.lock().ok().and_then(|mut s| s.take())
}

/// Dataflow times: window `w`'s data lies below `(w + 1) << 32`, and the
/// times `(w << 32) + k` (k >= 1) belong to queries asked while `w` is the
/// last closed window. Queries so see exactly the closed windows, never the
/// open one, and are answered at once instead of waiting for the next close.
const WINDOW_SHIFT: u32 = 32;

fn window_time(window: u64) -> u64 {
    window << WINDOW_SHIFT
}

/// A running engine. Only process 0 has one; other processes of a cluster
/// call [`run_follower`].
pub struct Engine {
    commands: mpsc::Sender<Command>,
    worker0: Thread,
    deltas: mpsc::Receiver<WindowDeltas>,
    guards: Option<timely::communication::WorkerGuards<()>>,
    catalog: Catalog,
    pending: Updates,
    last_window: Option<u64>,
    render: bool,
    /// Net records sent into each input collection, and impact rows out:
    /// what the arrangements over them hold (for the metrics).
    held: Held,
}

/// Records the dataflow's arrangements hold, counted at its edges.
#[derive(Default)]
struct Held {
    inputs: [i64; 8],
    rows: i64,
}

impl Held {
    const NAMES: [&'static str; 9] = [
        "instances",
        "versions",
        "entries",
        "severities",
        "names",
        "statements",
        "artifact_keys",
        "component_keys",
        "impact_rows",
    ];

    fn add(&mut self, u: &Updates) {
        fn net<D>(rows: &[(D, df::Diff)]) -> i64 {
            rows.iter().map(|(_, d)| *d as i64).sum()
        }
        let nets = [
            net(&u.instances),
            net(&u.versions),
            net(&u.entries),
            net(&u.severities),
            net(&u.names),
            net(&u.statements),
            net(&u.artifact_keys),
            net(&u.component_keys),
        ];
        for (held, n) in self.inputs.iter_mut().zip(nets) {
            *held += n;
        }
    }

    fn record(&self) {
        let values = self.inputs.iter().chain(std::iter::once(&self.rows));
        for (name, n) in Self::NAMES.iter().zip(values) {
            crate::metrics::get().arrangement(name, *n);
        }
    }
}

fn feed<D: differential_dataflow::ExchangeData>(
    session: &mut differential_dataflow::input::InputSession<u64, D, df::Diff>,
    rows: Vec<(D, df::Diff)>,
) {
    for (r, d) in rows {
        session.update(r, d);
    }
}

/// Push `updates` into worker 0's input sessions.
fn push(inputs: &mut Inputs, updates: Updates) {
    feed(&mut inputs.instances, updates.instances);
    feed(&mut inputs.versions, updates.versions);
    feed(&mut inputs.entries, updates.entries);
    feed(&mut inputs.severities, updates.severities);
    feed(&mut inputs.names, updates.names);
    feed(&mut inputs.statements, updates.statements);
    feed(&mut inputs.artifact_keys, updates.artifact_keys);
    feed(&mut inputs.component_keys, updates.component_keys);
}

type Inputs = df::Inputs<catalog::EntrySpec>;
type Buffer<D> = std::rc::Rc<std::cell::RefCell<Vec<(D, u64, df::Diff)>>>;

/// Everything a worker's copy of the dataflow sends to worker 0.
struct Sinks {
    rows: Buffer<Row>,
    row_answers: Buffer<(df::QueryId, Row)>,
    artifact_answers: Buffer<(df::QueryId, df::ArtifactId)>,
    probe: ProbeHandle<u64>,
}

fn build(worker: &mut timely::worker::Worker) -> (Inputs, Sinks) {
    fn to_leader<D: differential_dataflow::ExchangeData>(
        collection: differential_dataflow::VecCollection<'_, u64, D, df::Diff>,
        probe: &ProbeHandle<u64>,
    ) -> Buffer<D> {
        let buffer: Buffer<D> = Default::default();
        let sink = buffer.clone();
        collection
            .inner
            .exchange(|_| 0)
            .inspect(move |update| sink.borrow_mut().push(update.clone()))
            .probe_with(probe);
        buffer
    }
    let probe = ProbeHandle::new();
    worker.dataflow::<u64, _, _>(|scope| {
        let (inputs, outputs) = df::build(scope, VersionEvaluator::default());
        let sinks = Sinks {
            rows: to_leader(outputs.rows, &probe),
            row_answers: to_leader(outputs.row_answers, &probe),
            artifact_answers: to_leader(outputs.artifact_answers, &probe),
            probe: probe.clone(),
        };
        (inputs, sinks)
    })
}

/// Removes and returns the updates of `buffer` that `keep` selects (by datum
/// and time), consolidated.
fn drain<D: differential_dataflow::ExchangeData>(
    buffer: &Buffer<D>,
    keep: impl Fn(&D, u64) -> bool,
) -> Vec<(D, df::Diff)> {
    let mut out = Vec::new();
    buffer.borrow_mut().retain(|(d, t, diff)| {
        if keep(d, *t) {
            out.push((d.clone(), *diff));
            false
        } else {
            true
        }
    });
    differential_dataflow::consolidation::consolidate(&mut out);
    out
}

/// Worker 0's state while it serves commands.
struct Leader {
    inputs: Inputs,
    sinks: Sinks,
    /// Time the next query is placed at; always above the last closed
    /// window's data and below the open window's.
    query_time: u64,
    next_query: df::QueryId,
    closed: Option<u64>,
}

impl Leader {
    fn close(&mut self, worker: &mut timely::worker::Worker, window: u64) -> WindowDeltas {
        self.inputs.advance_data_to(window_time(window + 1));
        self.query_time = self.query_time.max(window_time(window) + 1);
        self.inputs.queries.advance_to(self.query_time);
        self.inputs.flush();
        self.closed = Some(window);
        let done = window_time(window);
        while self.sinks.probe.less_equal(&done) {
            worker.step_or_park(None);
        }
        let rows = drain(&self.sinks.rows, |_, t| t <= done);
        // Answers of queries already answered (their retractions) are noise.
        drop(drain(&self.sinks.row_answers, |_, t| t <= done));
        drop(drain(&self.sinks.artifact_answers, |_, t| t <= done));
        WindowDeltas { window, rows }
    }

    fn query(&mut self, worker: &mut timely::worker::Worker, queries: Vec<df::Query>) -> Answers {
        if self.closed.is_none() || queries.is_empty() {
            return Answers::default();
        }
        let at = self.query_time;
        let first = self.next_query;
        let ids: Vec<(df::QueryId, df::Query)> = queries
            .into_iter()
            .enumerate()
            .map(|(i, q)| (first + i as u64, q))
            .collect();
        self.next_query += ids.len() as u64;
        for q in &ids {
            self.inputs.queries.insert(q.clone());
        }
        self.query_time = at + 1;
        self.inputs.queries.advance_to(self.query_time);
        for q in ids.iter().cloned() {
            self.inputs.queries.remove(q);
        }
        self.inputs.queries.flush();
        while self.sinks.probe.less_equal(&at) {
            worker.step_or_park(None);
        }
        // The retractions of earlier queries' answers (each query leaves at
        // its time + 1) are noise. Dropped here, not only when a window
        // closes, so that a stream of queries between windows does not make
        // every drain scan (and keep in memory) all earlier answers.
        self.sinks
            .row_answers
            .borrow_mut()
            .retain(|((q, _), _, _)| *q >= first);
        self.sinks
            .artifact_answers
            .borrow_mut()
            .retain(|((q, _), _, _)| *q >= first);
        let ours = |q: df::QueryId| q >= first && q < self.next_query;
        let mut rows: Vec<Row> = drain(&self.sinks.row_answers, |(q, _), t| t <= at && ours(*q))
            .into_iter()
            .filter(|(_, diff)| *diff > 0)
            .map(|((_, row), _)| row)
            .collect();
        rows.sort();
        rows.dedup();
        let mut artifacts: Vec<df::ArtifactId> =
            drain(&self.sinks.artifact_answers, |(q, _), t| {
                t <= at && ours(*q)
            })
            .into_iter()
            .filter(|(_, diff)| *diff > 0)
            .map(|((_, artifact), _)| artifact)
            .collect();
        artifacts.sort();
        artifacts.dedup();
        Answers { rows, artifacts }
    }
}

/// The per-worker body shared by the leader and followers.
fn worker_main(
    worker: &mut timely::worker::Worker,
    commands: Shared<mpsc::Receiver<Command>>,
    deltas: Shared<mpsc::Sender<WindowDeltas>>,
    thread: Shared<mpsc::Sender<Thread>>,
) {
    let (inputs, sinks) = build(worker);
    let leader = worker.index() == 0;
    if !leader {
        // Followers never feed input; dropping their sessions lets the
        // frontier follow the leader's.
        drop(inputs);
        while !sinks.probe.done() {
            worker.step_or_park(None);
        }
        return;
    }
    let (Some(rx), Some(tx), Some(thread_tx)) = (take(&commands), take(&deltas), take(&thread))
    else {
        return;
    };
    let _ = thread_tx.send(std::thread::current());
    let mut leader = Leader {
        inputs,
        sinks,
        query_time: 0,
        next_query: 0,
        closed: None,
    };
    loop {
        match rx.try_recv() {
            Ok(Command::Apply(updates)) => push(&mut leader.inputs, *updates),
            Ok(Command::Close(window)) => {
                if tx.send(leader.close(worker, window)).is_err() {
                    break;
                }
            }
            Ok(Command::Query(queries, reply)) => {
                let _ = reply.send(leader.query(worker, queries));
            }
            Err(mpsc::TryRecvError::Empty) => {
                worker.step_or_park(None);
            }
            Err(mpsc::TryRecvError::Disconnected) => break,
        }
    }
    let Leader { inputs, sinks, .. } = leader;
    drop(inputs);
    while !sinks.probe.done() {
        worker.step_or_park(None);
    }
}

impl Engine {
    /// Start the engine's workers (process 0 of a cluster, or the only process).
    pub fn start(config: &EngineConfig) -> Result<Engine, EngineError> {
        if config.process_index != 0 {
            return Err(EngineError::Config(
                "only process 0 reads the input; use run_follower for the others".into(),
            ));
        }
        let (cmd_tx, cmd_rx) = mpsc::channel();
        let (delta_tx, delta_rx) = mpsc::channel();
        let (thread_tx, thread_rx) = mpsc::channel();
        let commands: Shared<_> = Arc::new(Mutex::new(Some(cmd_rx)));
        let deltas: Shared<_> = Arc::new(Mutex::new(Some(delta_tx)));
        let thread: Shared<_> = Arc::new(Mutex::new(Some(thread_tx)));
        let guards = execute(config, move |worker| {
            worker_main(worker, commands.clone(), deltas.clone(), thread.clone())
        })?;
        let worker0 = thread_rx.recv().map_err(|_| EngineError::Stopped)?;
        Ok(Engine {
            commands: cmd_tx,
            worker0,
            deltas: delta_rx,
            guards: Some(guards),
            catalog: Catalog::new(),
            pending: Updates::default(),
            last_window: None,
            render: true,
            held: Held::default(),
        })
    }

    fn send(&self, command: Command) -> Result<(), EngineError> {
        self.commands
            .send(command)
            .map_err(|_| EngineError::Stopped)?;
        self.worker0.unpark();
        Ok(())
    }

    /// Updates are handed to the workers in batches of this many rows, so a
    /// large backfill streams instead of materialising twice.
    const BATCH: usize = 64 * 1024;

    /// Apply one log entry. On `WindowClosed` this waits until the window's
    /// deltas are complete and returns them (rows as the dataflow emits them
    /// and rendered as findings, with their diffs).
    pub fn apply(&mut self, entry: &LogEntry) -> Result<Option<ClosedWindow>, EngineError> {
        match &entry.record {
            InputRecord::WindowClosed { window, .. } => {
                if *window >= 1 << WINDOW_SHIFT {
                    return Err(EngineError::WindowRange(*window));
                }
                if self.last_window.is_some_and(|last| *window <= last) {
                    return Err(EngineError::WindowOrder {
                        got: *window,
                        after: self.last_window.unwrap_or_default(),
                    });
                }
                let updates = std::mem::take(&mut self.pending);
                self.held.add(&updates);
                self.send(Command::Apply(Box::new(updates)))?;
                self.send(Command::Close(*window))?;
                self.last_window = Some(*window);
                let deltas = self.deltas.recv().map_err(|_| EngineError::Stopped)?;
                self.held.rows += deltas.rows.iter().map(|(_, d)| *d as i64).sum::<i64>();
                self.held.record();
                let findings = deltas
                    .rows
                    .iter()
                    .filter(|_| self.render)
                    .filter_map(|(row, diff)| {
                        let f = self.catalog.finding(row, *diff);
                        if f.is_none() {
                            tracing::error!(?row, "impact row names an unknown id");
                        }
                        f.map(|f| (f, *diff))
                    })
                    .collect();
                self.catalog.end_window();
                Ok(Some(ClosedWindow { deltas, findings }))
            }
            record => {
                self.catalog.apply(entry.seq, record, &mut self.pending);
                if self.pending.len() >= Self::BATCH {
                    let updates = std::mem::take(&mut self.pending);
                    self.held.add(&updates);
                    self.send(Command::Apply(Box::new(updates)))?;
                }
                Ok(None)
            }
        }
    }

    /// Answers a live impact-set query from the state as of the last closed
    /// window (records applied since are not visible until their window
    /// closes). Findings come in `scan`'s order, artifacts sorted.
    pub fn query(&self, query: &ImpactQuery) -> Result<ImpactAnswer, EngineError> {
        let queries: Vec<df::Query> = match query {
            ImpactQuery::Advisory(name) => self
                .catalog
                .advisories_named(name)
                .into_iter()
                .map(df::Query::Advisory)
                .collect(),
            ImpactQuery::Artifact { tenant, artifact } => {
                vec![df::Query::Artifact(ids::artifact_id(tenant, artifact))]
            }
            ImpactQuery::Purl(purl) => crate::formats::purl::Purl::parse(purl)
                .ok()
                .and_then(|p| Some(ids::package_key(&p.ecosystem()?, &p.package_name())))
                .map(df::Query::Package)
                .into_iter()
                .collect(),
            ImpactQuery::Label { tenant, key, value } => vec![df::Query::ArtifactsWithKey(
                ids::product_key(&crate::scan::product::label_key(tenant, key, value)),
            )],
            ImpactQuery::Runtime { tenant, state } => vec![df::Query::ArtifactsWithKey(
                ids::product_key(&crate::scan::product::runtime_key(tenant, *state)),
            )],
        };
        let (reply, answer) = mpsc::channel();
        self.send(Command::Query(queries, reply))?;
        let answers = answer.recv().map_err(|_| EngineError::Stopped)?;
        let mut findings: Vec<Finding> = answers
            .rows
            .iter()
            .filter_map(|row| self.catalog.finding_as_of_last_close(row))
            .collect();
        findings.sort();
        findings.dedup();
        let artifacts = answers
            .artifacts
            .iter()
            .filter_map(|a| self.catalog.artifact_name(*a).cloned())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        Ok(ImpactAnswer {
            findings,
            artifacts,
        })
    }

    /// Whether closed windows also come back rendered as findings (on by
    /// default; benchmarks that only count rows turn it off).
    pub fn set_render(&mut self, render: bool) {
        self.render = render;
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The last window closed (`None` before the first).
    pub fn last_window(&self) -> Option<u64> {
        self.last_window
    }

    /// Stop the workers and wait for them.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Engine {
    /// Closing the command channel ends worker 0's loop, but only once it
    /// wakes: unpark it, then join every worker. (Dropping the guards without
    /// the wake-up would wait forever on a parked worker.)
    fn drop(&mut self) {
        let (dead_tx, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.commands, dead_tx));
        self.worker0.unpark();
        if let Some(guards) = self.guards.take() {
            drop(guards);
        }
    }
}

/// A live impact-set query (see [`Engine::query`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImpactQuery {
    /// Findings of the advisories having this id or alias.
    Advisory(String),
    /// Findings of one artifact.
    Artifact { tenant: String, artifact: String },
    /// Artifacts affected through the purl's package (any version).
    Purl(String),
    /// Affected artifacts of a tenant carrying a label.
    Label {
        tenant: String,
        key: String,
        value: String,
    },
    /// Affected artifacts of a tenant in a runtime state.
    Runtime {
        tenant: String,
        state: crate::model::RuntimeState,
    },
}

/// What a query selects: findings (advisory and artifact queries) or
/// `(tenant, artifact)` names (the others).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImpactAnswer {
    pub findings: Vec<Finding>,
    pub artifacts: Vec<(String, String)>,
}

/// One closed window: the raw rows and the same deltas rendered as findings.
#[derive(Debug, Clone)]
pub struct ClosedWindow {
    pub deltas: WindowDeltas,
    pub findings: Vec<(Finding, df::Diff)>,
}

/// Join a cluster as process `config.process_index > 0` and run until
/// process 0 shuts down.
pub fn run_follower(config: &EngineConfig) -> Result<(), EngineError> {
    let guards = execute(config, move |worker| {
        worker_main(
            worker,
            Arc::new(Mutex::new(None)),
            Arc::new(Mutex::new(None)),
            Arc::new(Mutex::new(None)),
        )
    })?;
    drop(guards);
    Ok(())
}
