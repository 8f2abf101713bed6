//! in-toto Statement v1 (github.com/in-toto/attestation), and the one Recheck
//! makes: a [`CompletionEvent`] as the predicate
//! `https://recheck.dev/completion/v1` about the artifact's digest.
//!
//! The statement holds only facts that follow from the input log (no
//! timestamps, attempts or executor answers), is serialized canonically and
//! signed with a deterministic scheme, so the same window always yields the
//! same envelope bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE};
use super::keys::{PublicKey, SigningKey};
use super::{canonical, AttestError};
use crate::model::{CompletionEvent, Finding, JobReason, Verdict};

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const COMPLETION_PREDICATE_TYPE: &str = "https://recheck.dev/completion/v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement<P> {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: P,
}

/// A subject ResourceDescriptor: name and digest set, plus whatever other
/// descriptor fields (`uri`, `annotations`, ...) a statement carries, kept
/// so that reading and re-writing a statement loses nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    /// Optional in in-toto v1 (a descriptor may identify its resource by digest alone);
    /// Recheck's own statements always name the artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Algorithm (`sha256`, `sha512`, ...) → lower-case hex.
    pub digest: BTreeMap<String, String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// Reads any in-toto v1 statement (the predicate left as JSON).
pub fn parse_statement(payload: &[u8]) -> Result<Statement<Value>, AttestError> {
    let statement: Statement<Value> = serde_json::from_slice(payload)
        .map_err(|e| AttestError::Payload(format!("not an in-toto statement: {e}")))?;
    if statement.statement_type != STATEMENT_TYPE {
        return Err(AttestError::Payload(format!(
            "statement _type is {:?}, expected {STATEMENT_TYPE:?}",
            statement.statement_type
        )));
    }
    if statement.subject.is_empty() || statement.subject.iter().any(|s| s.digest.is_empty()) {
        return Err(AttestError::Payload(
            "every statement needs a subject, and every subject a digest".into(),
        ));
    }
    Ok(statement)
}

/// The predicate of a completion statement: the event without the subject
/// digest, digests written as in-toto digest sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompletionPredicate {
    pub job_id: String,
    pub tenant: String,
    pub artifact: String,
    pub window: u64,
    pub reasons: Vec<JobReason>,
    pub policy_version: String,
    pub verdict: Verdict,
    pub findings: DigestSet,
    pub explain_trace: DigestSet,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestSet {
    pub sha256: String,
}

fn sha256_digest(what: &str, hex: &str) -> Result<DigestSet, AttestError> {
    let ok = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !ok {
        return Err(AttestError::Payload(format!(
            "{what} must be 64 lower-case hex digits (a sha256), got {hex:?}"
        )));
    }
    Ok(DigestSet {
        sha256: hex.to_string(),
    })
}

/// The statement for `event`. Reasons are sorted and de-duplicated, so the
/// order the planner found them in does not show.
pub fn completion_statement(
    event: &CompletionEvent,
) -> Result<Statement<CompletionPredicate>, AttestError> {
    let mut reasons = event.reasons.clone();
    reasons.sort();
    reasons.dedup();
    let subject_digest = sha256_digest("artifact_sha256", &event.artifact_sha256)?;
    Ok(Statement {
        statement_type: STATEMENT_TYPE.to_string(),
        subject: vec![Subject {
            name: Some(event.artifact.clone()),
            digest: BTreeMap::from([("sha256".to_string(), subject_digest.sha256)]),
            other: BTreeMap::new(),
        }],
        predicate_type: COMPLETION_PREDICATE_TYPE.to_string(),
        predicate: CompletionPredicate {
            job_id: event.job_id.clone(),
            tenant: event.tenant.clone(),
            artifact: event.artifact.clone(),
            window: event.window,
            reasons,
            policy_version: event.policy_version.clone(),
            verdict: event.verdict,
            findings: sha256_digest("findings_sha256", &event.findings_sha256)?,
            explain_trace: sha256_digest("explain_trace_sha256", &event.explain_trace_sha256)?,
        },
    })
}

/// The signed envelope of `event`: canonical statement bytes, in-toto
/// payload type, signed by `key`.
pub fn sign_completion(event: &CompletionEvent, key: &SigningKey) -> Result<Envelope, AttestError> {
    let payload = canonical::to_vec(&completion_statement(event)?)?;
    Ok(Envelope::sign(IN_TOTO_PAYLOAD_TYPE, payload, key))
}

/// Verifies a completion envelope and reads the event back from the verified
/// bytes. Besides the signature it insists on what Recheck itself writes:
/// in-toto payload type, the completion predicate, one subject, and a
/// payload in canonical form (so the event replays to the same bytes).
pub fn verify_completion(
    envelope: &Envelope,
    keys: &[PublicKey],
) -> Result<CompletionEvent, AttestError> {
    let verified = envelope.verify(keys, IN_TOTO_PAYLOAD_TYPE)?;
    let statement = parse_statement(verified.payload)?;
    if statement.predicate_type != COMPLETION_PREDICATE_TYPE {
        return Err(AttestError::Payload(format!(
            "predicateType is {:?}, expected {COMPLETION_PREDICATE_TYPE:?}",
            statement.predicate_type
        )));
    }
    let [subject] = statement.subject.as_slice() else {
        return Err(AttestError::Payload(
            "a completion statement has exactly one subject".into(),
        ));
    };
    let Some(artifact) = subject.name.clone() else {
        return Err(AttestError::Payload(
            "a completion statement's subject names its artifact".into(),
        ));
    };
    let predicate: CompletionPredicate = serde_json::from_value(statement.predicate.clone())
        .map_err(|e| AttestError::Payload(format!("completion predicate: {e}")))?;
    let event = CompletionEvent {
        job_id: predicate.job_id,
        tenant: predicate.tenant,
        artifact,
        artifact_sha256: subject.digest.get("sha256").cloned().unwrap_or_default(),
        window: predicate.window,
        reasons: predicate.reasons,
        policy_version: predicate.policy_version,
        verdict: predicate.verdict,
        findings_sha256: predicate.findings.sha256,
        explain_trace_sha256: predicate.explain_trace.sha256,
    };
    if predicate.artifact != event.artifact {
        return Err(AttestError::Payload(format!(
            "subject {:?} and predicate artifact {:?} differ",
            event.artifact, predicate.artifact
        )));
    }
    let canonical = canonical::to_vec(&completion_statement(&event)?)?;
    if canonical != verified.payload {
        return Err(AttestError::Payload(
            "the statement is not in Recheck's canonical form".into(),
        ));
    }
    Ok(event)
}

/// The digest of an artifact's findings for a completion event: sha256 of
/// their canonical JSON in sorted order, whatever order they came in.
pub fn findings_sha256(findings: &[Finding]) -> Result<String, AttestError> {
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort();
    canonical::sha256_hex(&sorted)
}
