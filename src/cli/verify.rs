//! `recheck verify`: checks a DSSE envelope (a completion event or any other)
//! against a public key and says why when it does not hold.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use recheck::attest::dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE};
use recheck::attest::keys::PublicKey;
use recheck::attest::statement::{self, COMPLETION_PREDICATE_TYPE};
use recheck::attest::AttestError;

#[derive(Debug, Args)]
#[command(after_help = "\
Exit status: 0 valid (prints `valid: keyid ...`), 1 invalid (prints `invalid: <reason>` on stderr: bad base64, \
unknown key id, signature mismatch, wrong payload type, bad payload, ...), 2 unreadable file or bad key.
In-toto payloads must parse as a Statement v1; completion events (predicate https://recheck.dev/completion/v1) \
must also be exactly what Recheck writes (canonical JSON).
Example: recheck verify event.json --key recheck.pub.pem")]
pub struct VerifyArgs {
    /// The DSSE JSON envelope to check.
    pub envelope: PathBuf,
    /// The public key: SPKI PEM (`BEGIN PUBLIC KEY`, ed25519 or ECDSA P-256)
    /// or an X.509 certificate PEM (`BEGIN CERTIFICATE`) whose key is used.
    #[arg(long, short = 'k', value_name = "PEM")]
    pub key: PathBuf,
    /// The id the envelope names this key by, when its signer used another
    /// key-id scheme. Default: Recheck's, the hex sha256 of the key's SPKI DER.
    #[arg(long, value_name = "ID")]
    pub keyid: Option<String>,
    /// The payload type to accept.
    #[arg(long, value_name = "TYPE", default_value = IN_TOTO_PAYLOAD_TYPE)]
    pub payload_type: String,
}

pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let (envelope_bytes, key) = match read_inputs(&args) {
        Ok(inputs) => inputs,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    match check(&envelope_bytes, &key, &args.payload_type) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(reason) => {
            eprintln!("invalid: {reason}");
            Ok(ExitCode::from(1))
        }
    }
}

fn read_inputs(args: &VerifyArgs) -> anyhow::Result<(Vec<u8>, PublicKey)> {
    let envelope = std::fs::read(&args.envelope)
        .with_context(|| format!("reading {}", args.envelope.display()))?;
    let pem = std::fs::read_to_string(&args.key)
        .with_context(|| format!("reading {}", args.key.display()))?;
    let mut key = PublicKey::from_pem(&pem).with_context(|| args.key.display().to_string())?;
    if let Some(id) = &args.keyid {
        key = key.with_keyid(id.clone());
    }
    Ok((envelope, key))
}

/// The lines to print for a valid envelope, or the reason it is not.
fn check(envelope: &[u8], key: &PublicKey, payload_type: &str) -> Result<Vec<String>, AttestError> {
    let envelope = Envelope::from_json(envelope)?;
    let keys = std::slice::from_ref(key);
    let verified = envelope.verify(keys, payload_type)?;
    let mut lines = vec![format!(
        "valid: keyid {} ({}), payloadType {}",
        verified.keyid,
        key.algorithm(),
        verified.payload_type
    )];
    if verified.payload_type == IN_TOTO_PAYLOAD_TYPE {
        let statement = statement::parse_statement(verified.payload)?;
        lines.push(format!("predicateType: {}", statement.predicate_type));
        for subject in &statement.subject {
            let digests: Vec<String> = subject
                .digest
                .iter()
                .map(|(alg, hex)| format!("{alg}:{hex}"))
                .collect();
            let name = subject.name.as_deref().unwrap_or("(unnamed)");
            lines.push(format!("subject: {name} {}", digests.join(" ")));
        }
        if statement.predicate_type == COMPLETION_PREDICATE_TYPE {
            let event = statement::verify_completion(&envelope, keys)?;
            lines.push(format!(
                "completion: job {} tenant {} window {} verdict {:?} policy {}",
                event.job_id, event.tenant, event.window, event.verdict, event.policy_version
            ));
        }
    }
    Ok(lines)
}
