//! Verifying the delta ledger's hash chain over any store: every entry must
//! follow the previous one (consecutive index, `prev_hash` = previous hash,
//! increasing windows and input positions), hash its stored payload bytes to
//! `payload_hash`, link to `hash`, and carry a payload that names the same
//! window and seq as the entry. The first entry that fails is reported with
//! why; a valid chain reports its length and head.
//!
//! The chain proves nothing before the head was altered or dropped. Dropping
//! entries at the tail is only visible against a head hash kept elsewhere
//! (a consumer's cursor, a published event).

use crate::model::{link_hash, LedgerEntry, LedgerPayload, GENESIS};
use crate::store::{Store, StoreError};

/// Entries read per store call (a backfill window's entry can be large).
const PAGE: usize = 64;

/// Why an entry does not belong to the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreak {
    /// The index is not the one after the previous entry's.
    Index { expected: u64, found: u64 },
    /// `prev_hash` is not the previous entry's hash (or the genesis).
    PrevHash { expected: String, found: String },
    /// The stored payload does not hash to `payload_hash`.
    PayloadHash { computed: String, recorded: String },
    /// `hash` is not `sha256(prev_hash ‖ payload_hash)`.
    Hash { computed: String, recorded: String },
    /// The payload does not decode as a ledger payload.
    Payload(String),
    /// The payload names another window or seq than the entry, or the window
    /// or seq does not increase.
    Position(String),
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainBreak::Index { expected, found } => {
                write!(f, "index {found} where {expected} was expected")
            }
            ChainBreak::PrevHash { expected, found } => {
                write!(
                    f,
                    "prev_hash {found} is not the previous entry's hash {expected}"
                )
            }
            ChainBreak::PayloadHash { computed, recorded } => write!(
                f,
                "payload hashes to {computed}, the entry records {recorded} (payload altered)"
            ),
            ChainBreak::Hash { computed, recorded } => {
                write!(f, "entry hash {recorded} should be {computed}")
            }
            ChainBreak::Payload(e) => write!(f, "payload does not decode: {e}"),
            ChainBreak::Position(e) => f.write_str(e),
        }
    }
}

/// The result of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Valid {
        entries: u64,
        head: Option<LedgerEntry>,
    },
    Broken {
        /// Index of the first entry that fails (or the position where one
        /// was expected).
        index: u64,
        reason: ChainBreak,
        /// Entries before it that verified.
        verified: u64,
    },
}

/// Check one entry against its predecessor.
pub fn check_entry(
    prev: Option<&LedgerEntry>,
    entry: &LedgerEntry,
    payload: &[u8],
) -> Result<(), ChainBreak> {
    let expected_index = prev.map_or(0, |p| p.index + 1);
    if entry.index != expected_index {
        return Err(ChainBreak::Index {
            expected: expected_index,
            found: entry.index,
        });
    }
    let expected_prev = prev.map_or(GENESIS, |p| p.hash.as_str());
    if entry.prev_hash != expected_prev {
        return Err(ChainBreak::PrevHash {
            expected: expected_prev.to_string(),
            found: entry.prev_hash.clone(),
        });
    }
    let computed = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(payload));
    if computed != entry.payload_hash {
        return Err(ChainBreak::PayloadHash {
            computed,
            recorded: entry.payload_hash.clone(),
        });
    }
    let computed = link_hash(&entry.prev_hash, &entry.payload_hash).unwrap_or_default();
    if computed != entry.hash {
        return Err(ChainBreak::Hash {
            computed,
            recorded: entry.hash.clone(),
        });
    }
    let decoded: LedgerPayload =
        serde_json::from_slice(payload).map_err(|e| ChainBreak::Payload(e.to_string()))?;
    if decoded.window != entry.window || decoded.seq != entry.seq {
        return Err(ChainBreak::Position(format!(
            "payload is window {} seq {}, the entry says window {} seq {}",
            decoded.window, decoded.seq, entry.window, entry.seq
        )));
    }
    if let Some(d) = decoded.deltas.iter().find(|d| d.window != entry.window) {
        return Err(ChainBreak::Position(format!(
            "payload of window {} holds a delta of window {}",
            entry.window, d.window
        )));
    }
    if let Some(p) = prev {
        if entry.window <= p.window || entry.seq <= p.seq {
            return Err(ChainBreak::Position(format!(
                "window {} seq {} does not follow window {} seq {}",
                entry.window, entry.seq, p.window, p.seq
            )));
        }
    }
    Ok(())
}

/// Walk the whole chain of `store`.
pub async fn verify(store: &dyn Store) -> Result<Verdict, StoreError> {
    let mut prev: Option<LedgerEntry> = None;
    let mut verified = 0u64;
    loop {
        let page = store.read_ledger(verified, PAGE).await?;
        if page.is_empty() {
            break;
        }
        for record in page {
            if let Err(reason) = check_entry(prev.as_ref(), &record.entry, &record.payload) {
                return Ok(Verdict::Broken {
                    index: verified,
                    reason,
                    verified,
                });
            }
            verified += 1;
            prev = Some(record.entry);
        }
    }
    Ok(Verdict::Valid {
        entries: verified,
        head: prev,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three linked entries over real payload bytes.
    fn chain() -> Vec<(LedgerEntry, Vec<u8>)> {
        let mut out: Vec<(LedgerEntry, Vec<u8>)> = Vec::new();
        for (window, seq) in [(1, 10), (2, 12), (5, 20)] {
            let payload = LedgerPayload {
                window,
                seq,
                deltas: Vec::new(),
            }
            .to_bytes();
            let entry = LedgerEntry::next(out.last().map(|(e, _)| e), window, seq, &payload);
            out.push((entry, payload));
        }
        out
    }

    fn first_break(chain: &[(LedgerEntry, Vec<u8>)]) -> Option<(usize, ChainBreak)> {
        let mut prev = None;
        for (i, (entry, payload)) in chain.iter().enumerate() {
            if let Err(reason) = check_entry(prev, entry, payload) {
                return Some((i, reason));
            }
            prev = Some(entry);
        }
        None
    }

    #[test]
    fn each_kind_of_break_is_named() {
        assert_eq!(first_break(&chain()), None);

        let mut c = chain();
        c.remove(1);
        assert!(matches!(
            first_break(&c),
            Some((
                1,
                ChainBreak::Index {
                    expected: 1,
                    found: 2
                }
            ))
        ));

        let mut c = chain();
        c[1].0.prev_hash = c[0].0.payload_hash.clone();
        assert!(matches!(
            first_break(&c),
            Some((1, ChainBreak::PrevHash { .. }))
        ));

        let mut c = chain();
        c[2].1 = b"{\"window\":5,\"seq\":20,\"deltas\":[ ]}".to_vec();
        assert!(matches!(
            first_break(&c),
            Some((2, ChainBreak::PayloadHash { .. }))
        ));

        // A new payload with its true hash, but not relinked: the link breaks.
        let mut c = chain();
        c[0].1 = b"{\"window\":1,\"seq\":10,\"deltas\":[]} ".to_vec();
        c[0].0.payload_hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&c[0].1));
        assert!(matches!(
            first_break(&c),
            Some((0, ChainBreak::Hash { .. }))
        ));

        // A fully relinked forgery that moves a window is still caught.
        let mut c = chain();
        let forged = LedgerPayload {
            window: 1,
            seq: 10,
            deltas: Vec::new(),
        }
        .to_bytes();
        c[2] = (LedgerEntry::next(Some(&c[1].0), 1, 10, &forged), forged);
        assert!(matches!(
            first_break(&c),
            Some((2, ChainBreak::Position(_)))
        ));

        let mut c = chain();
        c[1].0.hash = c[1].0.payload_hash.clone();
        assert!(matches!(
            first_break(&c),
            Some((1, ChainBreak::Hash { .. }))
        ));

        let mut c = chain();
        c[0] = (LedgerEntry::next(None, 1, 10, b"[]"), b"[]".to_vec());
        c[1].0 = LedgerEntry::next(Some(&c[0].0), 2, 12, &c[1].1);
        assert!(matches!(first_break(&c), Some((0, ChainBreak::Payload(_)))));
    }
}
