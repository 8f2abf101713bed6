//! Recheck keeps a fleet's vulnerability verdicts current.
//!
//! The library is layered one way (see README "Architecture"): `model` is
//! the shared vocabulary, `versions` gives each ecosystem its version order
//! and evaluates OSV ranges, `formats` turns documents into the model, and
//! `scan` is the straightforward reference matcher that the incremental
//! engine is tested and benchmarked against.

pub mod api;
pub mod attest;
pub mod bench;
pub mod core;
pub mod engine;
pub mod fleet;
pub mod formats;
pub mod metrics;
pub mod model;
pub mod queue;
pub mod samples;
pub mod scan;
pub mod source;
pub mod store;
pub mod versions;
pub mod worker;
