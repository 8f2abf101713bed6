//! The scheduler core: what turns the engine's windows into durable state
//! (input log, ledger, cursors, planner, schedules, replay), on top of a
//! [`crate::store::Store`].

pub mod compaction;
pub mod dispatcher;
pub mod failpoint;
pub mod ingest;
pub mod ledger;
pub mod pipeline;
pub mod planner;
pub mod replay;
pub mod runs;
pub mod runtime;
pub mod schedule;
pub mod whatif;
