//! The delta ledger's entries: one per committed window, each committing to
//! the previous entry's hash, so a consumer holding any entry's hash can prove
//! that nothing before it was altered or dropped.
//!
//! `hash = sha256(prev_hash ‖ sha256(payload))` over raw 32-byte digests,
//! starting from [`GENESIS`]; the payload is the JSON of [`LedgerPayload`]
//! (fixed field order, sorted deltas), stored and hashed as those exact bytes.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ImpactDelta;

/// The `prev_hash` of the first entry: 32 zero bytes, hex.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What one entry commits to: the window, the input-log position of its
/// `WindowClosed` record, and its deltas (one batch per window).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerPayload {
    pub window: u64,
    pub seq: u64,
    pub deltas: Vec<ImpactDelta>,
}

impl LedgerPayload {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// One link of the chain (hashes are lower-case hex).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// 0, 1, 2, … with no gaps.
    pub index: u64,
    pub window: u64,
    /// Input-log sequence number of the window's `WindowClosed` record.
    pub seq: u64,
    pub prev_hash: String,
    pub payload_hash: String,
    pub hash: String,
}

impl LedgerEntry {
    /// The entry that follows `prev` (or starts the chain) for `payload`.
    pub fn next(prev: Option<&LedgerEntry>, window: u64, seq: u64, payload: &[u8]) -> LedgerEntry {
        let (index, prev_hash) = match prev {
            Some(p) => (p.index + 1, p.hash.clone()),
            None => (0, GENESIS.to_string()),
        };
        let payload_hash = hex::encode(Sha256::digest(payload));
        let hash = link_hash(&prev_hash, &payload_hash).unwrap_or_default();
        LedgerEntry {
            index,
            window,
            seq,
            prev_hash,
            payload_hash,
            hash,
        }
    }
}

/// `sha256(prev ‖ payload_hash)` over the decoded digests; `None` when either
/// is not 32 bytes of hex.
pub fn link_hash(prev_hash: &str, payload_hash: &str) -> Option<String> {
    let prev = decode_digest(prev_hash)?;
    let payload = decode_digest(payload_hash)?;
    let mut h = Sha256::new();
    h.update(prev);
    h.update(payload);
    Some(hex::encode(h.finalize()))
}

fn decode_digest(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// An entry with the payload bytes it was hashed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRecord {
    pub entry: LedgerEntry,
    pub payload: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_links_to_genesis_and_previous() {
        let first = LedgerEntry::next(None, 1, 5, b"{}");
        assert_eq!(first.index, 0);
        assert_eq!(first.prev_hash, GENESIS);
        // python3: hashlib.sha256(b"{}").hexdigest()
        assert_eq!(
            first.payload_hash,
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        // python3: hashlib.sha256(bytes(32) + hashlib.sha256(b"{}").digest()).hexdigest()
        assert_eq!(
            first.hash,
            "961af672d320bfb80e482edf9e092930b12b6f10f28ac4913d1d64c49219da68"
        );
        let second = LedgerEntry::next(Some(&first), 3, 9, b"{}");
        assert_eq!(second.index, 1);
        assert_eq!(second.prev_hash, first.hash);
        assert_ne!(second.hash, first.hash);
        assert_eq!(link_hash("zz", &first.payload_hash), None);
    }
}
