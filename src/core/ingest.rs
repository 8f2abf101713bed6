//! The loop that feeds an input stream through the pipeline: poll the
//! source, append its batch and the window's close with the source's offset
//! in one transaction ([`Pipeline::push_from`]), acknowledge the batch
//! upstream, and hand the window's jobs to the queue (the dispatcher).
//!
//! One batch is one window, so a crash anywhere leaves either the whole
//! batch in the log or none of it; the pipeline's recovery commits a window
//! the log closed but the ledger lacks, and the dispatch at the start of
//! each run sends what a crash left in the outbox.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::engine::record::InputRecord;
use crate::formats::FormatError;
use crate::queue::Queue;
use crate::source::{Source, SourceError};

use super::dispatcher::{self, DispatchError, Dispatched};
use super::pipeline::{Pipeline, PipelineError};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("source: {0}")]
    Source(#[from] SourceError),
    #[error("dispatch: {0}")]
    Dispatch(#[from] DispatchError),
}

/// When to stop and how often to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestOptions {
    /// Stop as soon as the source has nothing new (after draining it).
    pub once: bool,
    /// Pause between polls that found nothing.
    pub interval: Duration,
}

/// What one appended batch did.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchDone {
    /// The window it closed (`None`: nothing but unusable documents, so
    /// only the offset moved).
    pub window: Option<u64>,
    pub records: usize,
    pub deltas: usize,
    pub jobs: usize,
    pub rejected: Vec<FormatError>,
    pub dispatched: Dispatched,
}

/// Totals of one [`run`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestReport {
    pub batches: usize,
    pub windows: usize,
    pub records: usize,
    pub deltas: usize,
    pub jobs: usize,
    pub rejected: usize,
    pub dispatched: Dispatched,
}

/// Dispatch the outbox if there is a queue.
fn dispatch(pipeline: &Pipeline, queue: Option<&dyn Queue>) -> Result<Dispatched, IngestError> {
    let Some(queue) = queue else {
        return Ok(Dispatched::default());
    };
    Ok(pipeline.block_on(dispatcher::dispatch(pipeline.store().as_ref(), queue))?)
}

/// Feed `source` through `pipeline` until it has nothing new (`once`) or
/// `stop` is set, dispatching to `queue` after each window. The source and
/// queue must have been opened on the pipeline's runtime
/// ([`Pipeline::block_on`]). `on_batch` hears about every appended batch.
pub fn run(
    pipeline: &mut Pipeline,
    source: &mut dyn Source,
    queue: Option<&dyn Queue>,
    options: IngestOptions,
    stop: &AtomicBool,
    mut on_batch: impl FnMut(&BatchDone),
) -> Result<IngestReport, IngestError> {
    let mut report = IngestReport::default();
    // What a crash left between window commit and queue goes first.
    report.dispatched.add(dispatch(pipeline, queue)?);
    while !stop.load(Ordering::Relaxed) {
        let Some(batch) = pipeline.block_on(source.poll())? else {
            if options.once {
                break;
            }
            sleep(options.interval, stop);
            continue;
        };
        let mut records = batch.records.clone();
        let window = (!records.is_empty()).then(|| pipeline.next_window());
        if let Some(window) = window {
            records.push(InputRecord::WindowClosed {
                window,
                closed_at: None,
            });
        }
        let committed = pipeline.push_from(&records, std::slice::from_ref(&batch.offset))?;
        let rejected = batch.rejected.clone();
        pipeline.block_on(source.committed(batch))?;
        let dispatched = dispatch(pipeline, queue)?;
        let done = BatchDone {
            window,
            records: records.len(),
            deltas: committed.iter().map(|c| c.deltas).sum(),
            jobs: committed.iter().map(|c| c.jobs).sum(),
            rejected,
            dispatched,
        };
        report.batches += 1;
        report.windows += committed.len();
        report.records += done.records;
        report.deltas += done.deltas;
        report.jobs += done.jobs;
        report.rejected += done.rejected.len();
        report.dispatched.add(dispatched);
        on_batch(&done);
    }
    Ok(report)
}

/// Sleep up to `interval`, waking early when `stop` is set.
fn sleep(interval: Duration, stop: &AtomicBool) {
    let until = Instant::now() + interval;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= until {
            return;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(100)));
    }
}
