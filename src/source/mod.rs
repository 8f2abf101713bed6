//! Input streams: where advisories, VEX documents and SBOMs come from besides
//! a direct push (a watched directory, a NATS JetStream subject). Every
//! source goes through the same input log: a source hands over one
//! [`Batch`] of records together with the offset it will have reached once
//! they are in, the log writer appends both in one transaction (records, the
//! window's close and the offset), and only then is the batch acknowledged
//! upstream. A restarted source reads its offset back from the store, so
//! nothing is read twice or skipped.
//!
//! Sources are async and keep nothing but their position between calls; a
//! long-running process polls them from any task and may drop a poll to
//! cancel it.

pub mod dir;
pub mod nats;

use async_trait::async_trait;

use crate::engine::record::InputRecord;
use crate::formats::FormatError;
use crate::store::{SourceOffset, StoreError};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("stored offset of source {source_name} does not decode: {message}")]
    Offset {
        source_name: String,
        message: String,
    },
    #[error("nats: {0}")]
    Nats(String),
}

pub type Result<T, E = SourceError> = std::result::Result<T, E>;

/// Records of one source to append as one window, with the source's offset
/// after them.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Without the closing `WindowClosed` (the log writer adds it).
    pub records: Vec<InputRecord>,
    pub offset: SourceOffset,
    /// Documents the source could not use (reported, never appended, and
    /// not offered again unless they change).
    pub rejected: Vec<FormatError>,
    /// What the source needs to acknowledge the batch upstream.
    pub(crate) ack: Ack,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) enum Ack {
    /// Nothing to acknowledge (a directory's state is the offset itself).
    #[default]
    None,
    /// The reply subject of the batch's last JetStream message (the
    /// consumer acks all up to it at once).
    Nats(String),
}

/// One input stream.
#[async_trait]
pub trait Source: Send {
    /// The name its offset is stored under (`dir:/srv/advisories`,
    /// `nats:STREAM/subject`).
    fn name(&self) -> &str;

    /// The next batch of changes, or `None` when there is nothing new right
    /// now. A batch with no records still moves the offset (e.g. a scan that
    /// only found unusable files) and is appended without a window.
    async fn poll(&mut self) -> Result<Option<Batch>>;

    /// The batch is in the input log: adopt its offset and acknowledge it
    /// upstream.
    async fn committed(&mut self, batch: Batch) -> Result<()>;
}
