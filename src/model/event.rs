//! A completion event as the store keeps it: opaque signed bytes plus the
//! metadata it is looked up by. The worker/attest layer defines the envelope
//! inside `body`; the store never parses it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Deterministic event id (the envelope's idempotency key).
    pub id: String,
    pub tenant: String,
    pub job: String,
    /// Event kind with version, e.g. `recheck.job.completed@1`.
    pub kind: String,
    /// UTC RFC 3339.
    pub occurred_at: String,
    pub body: Vec<u8>,
}
