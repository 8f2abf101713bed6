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
pub type Row = df::ImpactRow<evaluator::WireReason>;

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
}

/// The deltas of one closed window, consolidated and sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowDeltas {
    pub window: u64,
    pub rows: Vec<(Row, df::Diff)>,
}

type Shared<T> = Arc<Mutex<Option<T>>>;

fn take<T>(slot: &Shared<T>) -> Option<T> {
    slot.lock().ok().and_then(|mut s| s.take())
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

/// The per-worker body shared by the leader and followers.
fn worker_main(
    worker: &mut timely::worker::Worker,
    commands: Shared<mpsc::Receiver<Command>>,
    deltas: Shared<mpsc::Sender<WindowDeltas>>,
    thread: Shared<mpsc::Sender<Thread>>,
) {
    let leader = worker.index() == 0;
    let buffer: std::rc::Rc<std::cell::RefCell<Vec<(Row, u64, df::Diff)>>> = Default::default();
    let sink = buffer.clone();
    let probe = ProbeHandle::new();
    let inputs: Inputs = worker.dataflow::<u64, _, _>(|scope| {
        let (inputs, outputs) = df::build(scope, VersionEvaluator::default());
        outputs
            .rows
            .inner
            .exchange(|_| 0)
            .inspect(move |update| sink.borrow_mut().push(update.clone()))
            .probe_with(&probe);
        inputs
    });
    if !leader {
        // Followers never feed input; dropping their sessions lets the
        // frontier follow the leader's.
        drop(inputs);
        while !probe.done() {
            worker.step_or_park(None);
        }
        return;
    }
    let (Some(rx), Some(tx), Some(thread_tx)) = (take(&commands), take(&deltas), take(&thread))
    else {
        return;
    };
    let _ = thread_tx.send(std::thread::current());
    let mut inputs = Some(inputs);
    let mut open: std::collections::VecDeque<u64> = Default::default();
    'run: loop {
        loop {
            match rx.try_recv() {
                Ok(Command::Apply(updates)) => {
                    if let Some(inputs) = inputs.as_mut() {
                        push(inputs, *updates);
                    }
                }
                Ok(Command::Close(window)) => {
                    if let Some(inputs) = inputs.as_mut() {
                        inputs.advance_to(window + 1);
                        inputs.flush();
                    }
                    open.push_back(window);
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => break 'run,
            }
        }
        worker.step_or_park(None);
        while let Some(&w) = open.front() {
            if probe.less_equal(&w) {
                break;
            }
            open.pop_front();
            let mut rows = Vec::new();
            buffer.borrow_mut().retain(|(r, t, d)| {
                if *t <= w {
                    rows.push((r.clone(), *d));
                    false
                } else {
                    true
                }
            });
            if tx
                .send(WindowDeltas {
                    window: w,
                    rows: {
                        differential_dataflow::consolidation::consolidate(&mut rows);
                        rows
                    },
                })
                .is_err()
            {
                break 'run;
            }
        }
    }
    drop(inputs);
    while !probe.done() {
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
            InputRecord::WindowClosed { window } => {
                if self.last_window.is_some_and(|last| *window <= last) {
                    return Err(EngineError::WindowOrder {
                        got: *window,
                        after: self.last_window.unwrap_or_default(),
                    });
                }
                let updates = std::mem::take(&mut self.pending);
                self.send(Command::Apply(Box::new(updates)))?;
                self.send(Command::Close(*window))?;
                self.last_window = Some(*window);
                let deltas = self.deltas.recv().map_err(|_| EngineError::Stopped)?;
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
                    self.send(Command::Apply(Box::new(updates)))?;
                }
                Ok(None)
            }
        }
    }

    /// Whether closed windows also come back rendered as findings (on by
    /// default; benchmarks that only count rows turn it off).
    pub fn set_render(&mut self, render: bool) {
        self.render = render;
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
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
