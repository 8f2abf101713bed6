//! Verifiable output: what Recheck signs and how anyone checks it.
//!
//! A finished job's [`CompletionEvent`](crate::model::CompletionEvent) becomes
//! an in-toto Statement ([`statement`]) whose bytes are the one canonical JSON
//! form of the project ([`canonical`], RFC 8785), wrapped in a DSSE envelope
//! ([`dsse`]) signed with an ed25519 key ([`keys`]). Everything here is a pure
//! function of its inputs, so replaying a window reproduces the envelopes byte
//! for byte (ed25519 signatures are deterministic).

pub mod canonical;
pub mod dsse;
pub mod keys;
pub mod statement;

/// Everything that can go wrong while canonicalizing, signing or verifying.
/// Verification failures name the reason, so `recheck verify` can say why an
/// envelope was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// NaN and ±Infinity have no JSON form (RFC 8785 §3.2.2.3).
    #[error("canonical JSON: {0} is not a finite number")]
    NonFiniteNumber(String),
    /// Integers beyond ±2^53 cannot be held exactly by an IEEE double, which
    /// is what every JCS implementation reads numbers as; rounding them
    /// silently would sign a different value than the caller meant.
    #[error("canonical JSON: integer {0} is outside ±2^53 (serialize it as a string)")]
    IntegerOutOfRange(String),
    #[error("canonical JSON: object keys must be strings, got {0}")]
    NonStringKey(&'static str),
    #[error("canonical JSON: duplicate object key {0:?}")]
    DuplicateKey(String),
    /// The input bytes are not JSON (or a type refused to serialize).
    #[error("invalid JSON: {0}")]
    Json(String),
    /// The envelope is JSON but not a DSSE envelope (missing or mistyped field).
    #[error("not a DSSE envelope: {0}")]
    Envelope(String),
    #[error("bad base64 in {field}: {reason}")]
    BadBase64 { field: String, reason: String },
    #[error("the envelope has no signatures")]
    NoSignatures,
    /// No signature names a key id we were given (DSSE key ids only narrow
    /// the choice of key; an empty key id is tried against every key).
    #[error("unknown key id: the envelope is signed by {found:?}, the given key is {known:?}")]
    UnknownKeyId {
        found: Vec<String>,
        known: Vec<String>,
    },
    /// A signature for the key's id is there but is not a valid signature
    /// of this payload and payload type by that key.
    #[error("signature mismatch: the signature by key {keyid} does not verify over this payload")]
    SignatureMismatch { keyid: String },
    #[error("malformed signature by key {keyid}: {reason}")]
    MalformedSignature { keyid: String, reason: String },
    /// The signature is good but the payload is not what the caller accepts.
    #[error("wrong payload type: expected {expected:?}, found {found:?}")]
    WrongPayloadType { expected: String, found: String },
    /// The payload is signed correctly but does not parse as its type says.
    #[error("bad payload: {0}")]
    Payload(String),
    #[error("bad key: {0}")]
    Key(String),
    #[error("unsupported key algorithm {0} (expected ed25519 or ECDSA P-256)")]
    UnsupportedKey(String),
}

impl serde::ser::Error for AttestError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        AttestError::Json(msg.to_string())
    }
}
