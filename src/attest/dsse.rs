//! DSSE v1 envelopes (github.com/secure-systems-lab/dsse, protocol 1.0.2):
//! the signature covers the payload type and the payload bytes through the
//! pre-authentication encoding, so neither can be swapped without breaking it.
//!
//! Recheck writes envelopes as canonical JSON (sorted keys, standard padded
//! base64) so that signing the same payload twice gives the same bytes. It
//! reads what the spec allows: standard or URL-safe base64, with or without
//! padding, unknown fields ignored, an absent key id treated as empty.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::canonical;
use super::keys::{PublicKey, SignatureFailure, SigningKey};
use super::AttestError;

/// The payload type of in-toto statements (in-toto attestation framework).
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// `PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`,
/// lengths in ASCII decimal bytes.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload_type.len() + payload.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// A decoded envelope: payload and signatures as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub payload_type: String,
    pub payload: Vec<u8>,
    pub signatures: Vec<Signature>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Empty when the envelope names no key.
    pub keyid: String,
    pub sig: Vec<u8>,
}

/// What a successful verification vouches for. The payload is the exact
/// bytes that were verified: callers parse these, never the envelope again
/// (DSSE's warning against re-parsing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified<'a> {
    /// The id of the key that verified (the given key's, not the hint).
    pub keyid: &'a str,
    pub payload_type: &'a str,
    pub payload: &'a [u8],
}

/// The JSON envelope as written on the wire.
#[derive(Serialize, Deserialize)]
struct WireEnvelope {
    payload: String,
    #[serde(rename = "payloadType")]
    payload_type: String,
    signatures: Vec<WireSignature>,
}

#[derive(Serialize, Deserialize)]
struct WireSignature {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    keyid: String,
    sig: String,
}

impl Envelope {
    /// Signs `payload` as `payload_type` with `key`, naming the key by its id.
    pub fn sign(payload_type: &str, payload: Vec<u8>, key: &SigningKey) -> Envelope {
        let sig = key.sign(&pae(payload_type, &payload));
        Envelope {
            payload_type: payload_type.to_string(),
            payload,
            signatures: vec![Signature {
                keyid: key.keyid().to_string(),
                sig,
            }],
        }
    }

    /// Reads a JSON envelope. Bad base64 is reported with the field it is in.
    pub fn from_json(json: &[u8]) -> Result<Envelope, AttestError> {
        let wire: WireEnvelope =
            serde_json::from_slice(json).map_err(|e| AttestError::Envelope(e.to_string()))?;
        let payload = decode_base64("payload", &wire.payload)?;
        let signatures = wire
            .signatures
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                Ok(Signature {
                    sig: decode_base64(&format!("signatures[{i}].sig"), &s.sig)?,
                    keyid: s.keyid,
                })
            })
            .collect::<Result<Vec<_>, AttestError>>()?;
        Ok(Envelope {
            payload_type: wire.payload_type,
            payload,
            signatures,
        })
    }

    /// Canonical JSON bytes of the envelope.
    pub fn to_json(&self) -> Result<Vec<u8>, AttestError> {
        canonical::to_vec(&WireEnvelope {
            payload: STANDARD.encode(&self.payload),
            payload_type: self.payload_type.clone(),
            signatures: self
                .signatures
                .iter()
                .map(|s| WireSignature {
                    keyid: s.keyid.clone(),
                    sig: STANDARD.encode(&s.sig),
                })
                .collect(),
        })
    }

    /// Accepts the envelope when one of its signatures verifies with one of
    /// `keys` and its payload type is `payload_type` (checked after the
    /// signature, as the protocol orders it). A signature is tried with the
    /// keys whose id it names, or with every key when it names none.
    pub fn verify<'a>(
        &'a self,
        keys: &'a [PublicKey],
        payload_type: &str,
    ) -> Result<Verified<'a>, AttestError> {
        if self.signatures.is_empty() {
            return Err(AttestError::NoSignatures);
        }
        let message = pae(&self.payload_type, &self.payload);
        let mut first_failure = None;
        for signature in &self.signatures {
            let candidates = keys
                .iter()
                .filter(|k| signature.keyid.is_empty() || signature.keyid == k.keyid());
            for key in candidates {
                match key.verify(&message, &signature.sig) {
                    Ok(()) => {
                        if self.payload_type != payload_type {
                            return Err(AttestError::WrongPayloadType {
                                expected: payload_type.to_string(),
                                found: self.payload_type.clone(),
                            });
                        }
                        return Ok(Verified {
                            keyid: key.keyid(),
                            payload_type: &self.payload_type,
                            payload: &self.payload,
                        });
                    }
                    Err(failure) => {
                        let keyid = key.keyid().to_string();
                        first_failure.get_or_insert(match failure {
                            SignatureFailure::Mismatch => AttestError::SignatureMismatch { keyid },
                            SignatureFailure::Malformed(reason) => {
                                AttestError::MalformedSignature { keyid, reason }
                            }
                        });
                    }
                }
            }
        }
        Err(first_failure.unwrap_or_else(|| AttestError::UnknownKeyId {
            found: self.signatures.iter().map(|s| s.keyid.clone()).collect(),
            known: keys.iter().map(|k| k.keyid().to_string()).collect(),
        }))
    }
}

/// Standard or URL-safe alphabet (told apart by `-`/`_`), padding optional.
fn decode_base64(field: &str, text: &str) -> Result<Vec<u8>, AttestError> {
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let alphabet = if text.contains(['-', '_']) {
        &alphabet::URL_SAFE
    } else {
        &alphabet::STANDARD
    };
    GeneralPurpose::new(alphabet, config)
        .decode(text)
        .map_err(|e| AttestError::BadBase64 {
            field: field.to_string(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_spec_test_vector() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
        // Lengths count bytes, not characters.
        assert_eq!(pae("é", "ü".as_bytes()), "DSSEv1 2 é 2 ü".as_bytes());
    }

    #[test]
    fn both_base64_alphabets_with_and_without_padding() {
        for text in ["+/8=", "+/8", "-_8=", "-_8"] {
            assert_eq!(decode_base64("f", text).unwrap(), [0xfb, 0xff], "{text}");
        }
        let err = decode_base64("signatures[0].sig", "not base64!").unwrap_err();
        assert!(
            matches!(&err, AttestError::BadBase64 { field, .. } if field == "signatures[0].sig")
        );
    }

    #[test]
    fn sign_then_verify_and_the_reasons_it_fails() {
        let key = SigningKey::from_seed(&[3; 32]).unwrap();
        let other = SigningKey::from_seed(&[4; 32]).unwrap();
        let envelope = Envelope::sign("t/v1", b"{}".to_vec(), &key);
        let keys = [key.public_key().clone()];
        let ok = envelope.verify(&keys, "t/v1").unwrap();
        assert_eq!((ok.keyid, ok.payload), (key.keyid(), &b"{}"[..]));

        let back = Envelope::from_json(&envelope.to_json().unwrap()).unwrap();
        assert_eq!(back, envelope);

        assert!(matches!(
            envelope.verify(&keys, "t/v2"),
            Err(AttestError::WrongPayloadType { .. })
        ));
        assert!(matches!(
            envelope.verify(&[other.public_key().clone()], "t/v1"),
            Err(AttestError::UnknownKeyId { .. })
        ));
        // The other key under our key's id: tried, and the signature fails.
        let impostor = other.public_key().clone().with_keyid(key.keyid());
        assert!(matches!(
            envelope.verify(&[impostor], "t/v1"),
            Err(AttestError::SignatureMismatch { .. })
        ));
        let mut retyped = envelope.clone();
        retyped.payload_type = "t/v2".into();
        assert!(matches!(
            retyped.verify(&keys, "t/v2"),
            Err(AttestError::SignatureMismatch { .. })
        ));
        let mut unsigned = envelope.clone();
        unsigned.signatures.clear();
        assert_eq!(
            unsigned.verify(&keys, "t/v1"),
            Err(AttestError::NoSignatures)
        );
    }
}
