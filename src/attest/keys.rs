//! Signing and verification keys, in the encodings other tools exchange:
//! PKCS#8 PEM for the (ed25519) private key Recheck signs with, SPKI PEM or an
//! X.509 certificate for the public keys it verifies with (ed25519 and
//! ECDSA P-256, the latter being what Sigstore and the DSSE test vector use).
//!
//! A key's id is the lower-case hex sha256 of its SPKI DER encoding, so anyone
//! holding the public key derives the same id without asking Recheck.

use ed25519_dalek::Signer as _;
use p256::ecdsa::signature::Verifier as _;
use p256::pkcs8::der::zeroize::Zeroizing;
use p256::pkcs8::der::{Decode, Encode};
use p256::pkcs8::spki::{EncodePublicKey, ObjectIdentifier, SubjectPublicKeyInfoRef};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use sha2::{Digest, Sha256};

use super::AttestError;

const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// The id of a public key: hex sha256 of its SPKI DER.
pub fn key_id(spki_der: &[u8]) -> String {
    hex::encode(Sha256::digest(spki_der))
}

/// Recheck's ed25519 signing key. Its signatures are deterministic (RFC 8032),
/// which is what makes re-signed completion events byte-identical.
pub struct SigningKey {
    key: ed25519_dalek::SigningKey,
    public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("SigningKey")
            .field("keyid", &self.public.keyid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<SigningKey, AttestError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut())
            .map_err(|e| AttestError::Key(format!("no randomness for a new key: {e}")))?;
        SigningKey::from_seed(&seed)
    }

    /// The key whose 32-byte ed25519 secret is `seed` (fixtures, tests).
    pub fn from_seed(seed: &[u8; 32]) -> Result<SigningKey, AttestError> {
        SigningKey::new(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// Reads a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`) ed25519 key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<SigningKey, AttestError> {
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| AttestError::Key(format!("not a PKCS#8 PEM ed25519 private key: {e}")))?;
        SigningKey::new(key)
    }

    fn new(key: ed25519_dalek::SigningKey) -> Result<SigningKey, AttestError> {
        let public = PublicKey::from_ed25519(key.verifying_key())?;
        Ok(SigningKey { key, public })
    }

    /// PKCS#8 v1 PEM (the secret only). The v2 form that also embeds the
    /// public key is what ed25519-dalek writes by default, but OpenSSL 3.0 and
    /// Python `cryptography` refuse it ("extra data"); v1 everyone reads.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, AttestError> {
        ed25519_dalek::pkcs8::KeypairBytes {
            secret_key: self.key.to_bytes(),
            public_key: None,
        }
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| AttestError::Key(format!("encoding the private key: {e}")))
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    pub fn keyid(&self) -> &str {
        &self.public.keyid
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key.sign(message).to_bytes().to_vec()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Verifier {
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
}

/// A key signatures are checked against, with the id envelopes name it by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    verifier: Verifier,
    spki_der: Vec<u8>,
    keyid: String,
}

/// Why one signature did not verify with one key.
#[derive(Debug)]
pub(crate) enum SignatureFailure {
    /// Not a signature of this algorithm at all (wrong length, bad DER).
    Malformed(String),
    /// Well-formed, but not by this key over these bytes.
    Mismatch,
}

impl PublicKey {
    /// The first PEM block of `text`: a `PUBLIC KEY` (SPKI) or a
    /// `CERTIFICATE` whose subject key is used. Text around the block (as
    /// `openssl x509 -text` prints) is ignored.
    pub fn from_pem(text: &str) -> Result<PublicKey, AttestError> {
        let (label, der) = first_pem_block(text)?;
        match label.as_str() {
            "PUBLIC KEY" => PublicKey::from_spki_der(&der),
            "CERTIFICATE" => PublicKey::from_certificate_der(&der),
            "PRIVATE KEY" | "EC PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => Err(AttestError::Key(
                "this is a private key; give the public key (SPKI PEM) or a certificate".into(),
            )),
            other => Err(AttestError::Key(format!(
                "PEM block {other:?} is neither PUBLIC KEY nor CERTIFICATE"
            ))),
        }
    }

    /// A DER `SubjectPublicKeyInfo` holding an ed25519 or P-256 key.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, AttestError> {
        let spki = SubjectPublicKeyInfoRef::try_from(der)
            .map_err(|e| AttestError::Key(format!("not a SubjectPublicKeyInfo: {e}")))?;
        let verifier = if spki.algorithm.oid == ED25519 {
            Verifier::Ed25519(
                ed25519_dalek::VerifyingKey::try_from(spki)
                    .map_err(|e| AttestError::Key(format!("bad ed25519 public key: {e}")))?,
            )
        } else if spki.algorithm.oid == EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters_oid()
                .map_err(|e| AttestError::Key(format!("EC key without a named curve: {e}")))?;
            if curve != SECP256R1 {
                return Err(AttestError::UnsupportedKey(format!(
                    "ECDSA on curve {curve}"
                )));
            }
            Verifier::P256(
                p256::ecdsa::VerifyingKey::try_from(spki)
                    .map_err(|e| AttestError::Key(format!("bad P-256 public key: {e}")))?,
            )
        } else {
            return Err(AttestError::UnsupportedKey(spki.algorithm.oid.to_string()));
        };
        Ok(PublicKey {
            verifier,
            spki_der: der.to_vec(),
            keyid: key_id(der),
        })
    }

    /// The subject public key of a DER X.509 certificate. Only the key is
    /// used: validity, chain and extensions are the caller's business (as
    /// for a bare public key, trust is decided out of band).
    pub fn from_certificate_der(der: &[u8]) -> Result<PublicKey, AttestError> {
        let cert = x509_cert::Certificate::from_der(der)
            .map_err(|e| AttestError::Key(format!("not an X.509 certificate: {e}")))?;
        let spki = cert
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(|e| AttestError::Key(format!("re-encoding the certificate's key: {e}")))?;
        PublicKey::from_spki_der(&spki)
    }

    fn from_ed25519(key: ed25519_dalek::VerifyingKey) -> Result<PublicKey, AttestError> {
        let der = key
            .to_public_key_der()
            .map_err(|e| AttestError::Key(format!("encoding the public key: {e}")))?;
        PublicKey::from_spki_der(der.as_bytes())
    }

    /// Names this key by an id agreed out of band (DSSE key ids are only
    /// hints), for envelopes whose signer used another key-id scheme.
    pub fn with_keyid(mut self, keyid: impl Into<String>) -> PublicKey {
        self.keyid = keyid.into();
        self
    }

    pub fn keyid(&self) -> &str {
        &self.keyid
    }

    /// `ed25519` or `ecdsa-p256`.
    pub fn algorithm(&self) -> &'static str {
        match self.verifier {
            Verifier::Ed25519(_) => "ed25519",
            Verifier::P256(_) => "ecdsa-p256",
        }
    }

    /// SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn to_pem(&self) -> String {
        pem_block("PUBLIC KEY", &self.spki_der)
    }

    /// Checks `signature` over `message`. ed25519 signatures are checked
    /// strictly (no malleable or small-order forms); P-256 signatures may be
    /// raw `r||s` (64 bytes, as in the DSSE test vector) or ASN.1 DER (as
    /// Sigstore and OpenSSL write them), both over SHA-256 of the message.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureFailure> {
        match &self.verifier {
            Verifier::Ed25519(key) => {
                let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|_| {
                    SignatureFailure::Malformed(format!(
                        "an ed25519 signature is 64 bytes, this one is {}",
                        signature.len()
                    ))
                })?;
                key.verify_strict(message, &sig)
                    .map_err(|_| SignatureFailure::Mismatch)
            }
            Verifier::P256(key) => {
                let sig = if signature.len() == 64 {
                    p256::ecdsa::Signature::from_slice(signature)
                } else {
                    p256::ecdsa::Signature::from_der(signature)
                }
                .map_err(|_| {
                    SignatureFailure::Malformed(format!(
                        "not a P-256 signature (neither 64-byte r||s nor DER; {} bytes)",
                        signature.len()
                    ))
                })?;
                key.verify(message, &sig)
                    .map_err(|_| SignatureFailure::Mismatch)
            }
        }
    }
}

/// Label and decoded body of the first `-----BEGIN X-----` block in `text`.
fn first_pem_block(text: &str) -> Result<(String, Vec<u8>), AttestError> {
    let no_pem = || AttestError::Key("no PEM block (-----BEGIN ...-----) found".into());
    let start = text.find("-----BEGIN ").ok_or_else(no_pem)?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----").ok_or_else(no_pem)?;
    let label = &rest[..label_end];
    let end_marker = format!("-----END {label}-----");
    let body_and_end = &rest[label_end + "-----".len()..];
    let body_end = body_and_end
        .find(&end_marker)
        .ok_or_else(|| AttestError::Key(format!("PEM block {label:?} has no END line")))?;
    let body: String = body_and_end[..body_end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if body.contains(':') {
        return Err(AttestError::Key(format!(
            "PEM block {label:?} has headers (an encrypted key?); give an unencrypted one"
        )));
    }
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| AttestError::Key(format!("PEM block {label:?} is not base64: {e}")))?;
    Ok((label.to_string(), der))
}

/// A PEM block with 64-character lines.
pub fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkcs8_round_trip_keeps_the_key_and_its_id() {
        let key = SigningKey::from_seed(&[7; 32]).unwrap();
        let pem = key.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let again = SigningKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(again.keyid(), key.keyid());
        assert_eq!(again.sign(b"m"), key.sign(b"m"));
        let public = PublicKey::from_pem(&key.public_key().to_pem()).unwrap();
        assert_eq!(public, *key.public_key());
        assert_eq!(public.algorithm(), "ed25519");
        assert_eq!(public.keyid().len(), 64);
        assert!(format!("{key:?}").contains(key.keyid()));
    }

    #[test]
    fn private_keys_and_junk_are_not_public_keys() {
        let key = SigningKey::from_seed(&[7; 32]).unwrap();
        let err = PublicKey::from_pem(&key.to_pkcs8_pem().unwrap()).unwrap_err();
        assert!(err.to_string().contains("private key"), "{err}");
        assert!(PublicKey::from_pem("hello").is_err());
        let junk = pem_block("PUBLIC KEY", b"not der");
        assert!(matches!(
            PublicKey::from_pem(&junk),
            Err(AttestError::Key(_))
        ));
    }

    #[test]
    fn wrong_signatures_are_told_apart_from_malformed_ones() {
        let key = SigningKey::from_seed(&[1; 32]).unwrap();
        let sig = key.sign(b"message");
        let public = key.public_key();
        assert!(public.verify(b"message", &sig).is_ok());
        assert!(matches!(
            public.verify(b"massage", &sig),
            Err(SignatureFailure::Mismatch)
        ));
        assert!(matches!(
            public.verify(b"message", &sig[..10]),
            Err(SignatureFailure::Malformed(_))
        ));
    }
}
