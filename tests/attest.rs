//! Attestation: canonical JSON against the RFC 8785 vectors and as a
//! property, DSSE against the shared real-world examples and an independent
//! implementation (Python `securesystemslib`), the completion statement's
//! determinism, and the `keygen` / `verify` commands.

mod common;

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::Value;

use recheck::attest::canonical;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

// ---------------------------------------------------------------- canonical

/// The RFC's own examples (§3.2.2 `values`, §3.2.3 `weird`) and the other
/// vectors of the JCS reference test data, byte for byte.
#[test]
fn canonical_json_matches_rfc8785_vectors() {
    let names = [
        "arrays",
        "french",
        "structures",
        "unicode",
        "values",
        "weird",
    ];
    for name in names {
        let input = common::read(&fixture(&format!("jcs/{name}.input.json")));
        let want = common::read(&fixture(&format!("jcs/{name}.output.json")));
        let got = canonical::canonicalize(&input).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{name}"
        );
        // Canonical bytes are a fixed point.
        assert_eq!(canonical::canonicalize(&got).unwrap(), got, "{name}");
    }
}

/// JSON values JCS can carry exactly: integers within ±2^53, finite doubles,
/// any Unicode text (keys too, including characters outside the BMP).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-(1i64 << 53)..=(1i64 << 53)).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Same value, numbers compared as doubles (canonical form writes 1.0 as 1,
/// which reads back as an integer).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Every object's keys, in document order, must already be in UTF-16 order.
fn keys_sorted(v: &Value) -> bool {
    match v {
        Value::Array(items) => items.iter().all(keys_sorted),
        Value::Object(m) => {
            let keys: Vec<&String> = m.keys().collect();
            keys.windows(2)
                .all(|w| canonical::key_order(w[0], w[1]).is_lt())
                && m.values().all(keys_sorted)
        }
        _ => true,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Serialize → parse → canonicalize is stable, the parsed value is the
    /// original, keys come out sorted, and any re-indentation canonicalizes
    /// back to the same bytes.
    #[test]
    fn canonical_round_trip_is_stable(v in json_value()) {
        let bytes = canonical::to_vec(&v).unwrap();
        let parsed: Value = serde_json::from_slice(&bytes).unwrap();
        prop_assert!(same(&v, &parsed), "{v} != {parsed}");
        prop_assert_eq!(canonical::canonicalize(&bytes).unwrap(), bytes.clone());
        prop_assert!(keys_sorted(&parsed));
        // Re-indented by serde_json, it canonicalizes back to the same bytes.
        let pretty = serde_json::to_vec_pretty(&v).unwrap();
        prop_assert_eq!(canonical::canonicalize(&pretty).unwrap(), bytes);
    }

    /// Insertion order of object members never shows in the output.
    #[test]
    fn canonical_ignores_member_order(
        members in prop::collection::btree_map(any::<String>(), any::<i32>(), 0..10)
    ) {
        let forward: serde_json::Map<String, Value> =
            members.iter().map(|(k, v)| (k.clone(), Value::from(*v))).collect();
        let backward: serde_json::Map<String, Value> =
            members.iter().rev().map(|(k, v)| (k.clone(), Value::from(*v))).collect();
        prop_assert_eq!(
            canonical::to_vec(&forward).unwrap(),
            canonical::to_vec(&backward).unwrap()
        );
    }

    /// Every finite double prints as an ECMAScript number literal that reads
    /// back as the same double; integers below 1e21 print without fraction or
    /// exponent.
    #[test]
    fn canonical_numbers_round_trip(bits in any::<u64>()) {
        let v = f64::from_bits(bits);
        prop_assume!(v.is_finite());
        let text = canonical::format_number(v).unwrap();
        prop_assert_eq!(text.parse::<f64>().unwrap(), if v == 0.0 { 0.0 } else { v });
        let grammar = regex_lite_number(&text);
        prop_assert!(grammar, "{text}");
        if v.fract() == 0.0 && v.abs() < 1e21 {
            prop_assert!(!text.contains(['.', 'e']), "{text}");
        }
    }
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?(e[+-][1-9][0-9]*)?` without a regex crate:
/// no leading zeros, no trailing fraction zeros, signed exponent.
fn regex_lite_number(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (mantissa, exp) = match s.split_once('e') {
        Some((m, e)) => (m, Some(e)),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let int_ok = int == "0" || (digits(int) && !int.starts_with('0'));
    let frac_ok = frac.is_none_or(|f| digits(f) && !f.ends_with('0'));
    let exp_ok = exp.is_none_or(|e| {
        let body = e.strip_prefix(['+', '-']);
        body.is_some_and(|b| digits(b) && !b.starts_with('0'))
    });
    int_ok && frac_ok && exp_ok
}

// ------------------------------------------------------ DSSE, shared examples

use recheck::attest::dsse::{self, Envelope, IN_TOTO_PAYLOAD_TYPE};
use recheck::attest::keys::{self, PublicKey};
use recheck::attest::AttestError;

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&common::read(path))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn envelope_of(v: &Value) -> Envelope {
    Envelope::from_json(&serde_json::to_vec(v).unwrap()).unwrap()
}

/// Big-endian bytes of a decimal number (the vector gives the key in decimal).
fn decimal_to_be32(dec: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for d in dec.bytes() {
        let mut carry = u32::from(d - b'0');
        for byte in out.iter_mut().rev() {
            let v = u32::from(*byte) * 10 + carry;
            *byte = v as u8;
            carry = v >> 8;
        }
        assert_eq!(carry, 0, "{dec} does not fit 32 bytes");
    }
    out
}

/// The DSSE specification's test vector: its key is ECDSA P-256 given as
/// decimal coordinates; the envelope's signature is raw r||s.
struct HelloWorld {
    vector: Value,
    key: PublicKey,
}

fn hello_world(data: &Path) -> HelloWorld {
    let vector = read_json(&data.join("dsse/dsse-hello-world-vector.json"));
    let key =
        PublicKey::from_pem(vector["derived"]["public_key_spki_pem"].as_str().unwrap()).unwrap();
    assert_eq!(key.algorithm(), "ecdsa-p256");
    HelloWorld { vector, key }
}

#[test]
fn dsse_hello_world_vector_verifies() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let HelloWorld { vector, key } = hello_world(&data);
    let source = &vector["source"];

    // The PEM the vector derived is the key of the spec's decimal x, y: the
    // SPKI ends with the uncompressed SEC1 point 04 || x || y.
    let pem = vector["derived"]["public_key_spki_pem"].as_str().unwrap();
    let spki_pem_body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    use base64::Engine as _;
    let spki = base64::engine::general_purpose::STANDARD
        .decode(spki_pem_body)
        .unwrap();
    let mut point = vec![4u8];
    point.extend(decimal_to_be32(source["key"]["x_dec"].as_str().unwrap()));
    point.extend(decimal_to_be32(source["key"]["y_dec"].as_str().unwrap()));
    assert!(spki.ends_with(&point), "derived PEM is not the spec's key");
    assert_eq!(key.keyid(), keys::key_id(&spki));

    let payload_type = source["payloadType"].as_str().unwrap();
    assert_eq!(
        dsse::pae(
            payload_type,
            source["payload_utf8"].as_str().unwrap().as_bytes()
        ),
        source["pae_utf8"].as_str().unwrap().as_bytes()
    );

    let plain = envelope_of(&source["envelope_protocol_md"]);
    let ok = plain
        .verify(std::slice::from_ref(&key), payload_type)
        .unwrap();
    assert_eq!(ok.payload, b"hello world");
    assert_eq!(ok.keyid, key.keyid());

    // The reference implementation's envelope names the key "66301bbf": a
    // hint in another key-id scheme. Unknown to us until agreed out of band.
    let hinted = envelope_of(&source["envelope_signing_spec_py"]);
    match hinted.verify(std::slice::from_ref(&key), payload_type) {
        Err(AttestError::UnknownKeyId { found, .. }) => assert_eq!(found, ["66301bbf"]),
        other => panic!("expected unknown key id, got {other:?}"),
    }
    let aliased = key.clone().with_keyid("66301bbf");
    assert_eq!(
        hinted.verify(&[aliased], payload_type).unwrap().payload,
        b"hello world"
    );

    // Right signature, but not the type the caller accepts.
    assert!(matches!(
        plain.verify(std::slice::from_ref(&key), IN_TOTO_PAYLOAD_TYPE),
        Err(AttestError::WrongPayloadType { .. })
    ));
}

#[test]
fn dsse_hello_world_tampering_fails_with_the_reason() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let HelloWorld { vector, key } = hello_world(&data);
    let payload_type = vector["source"]["payloadType"].as_str().unwrap();
    let original = &vector["source"]["envelope_protocol_md"];
    let keys = std::slice::from_ref(&key);

    let mut payload = original.clone();
    payload["payload"] = "aGVsbG8gd29ybGU=".into(); // "hello worle"
    assert!(matches!(
        envelope_of(&payload).verify(keys, payload_type),
        Err(AttestError::SignatureMismatch { .. })
    ));

    let mut retyped = original.clone();
    retyped["payloadType"] = "http://example.com/HelloWorle".into();
    assert!(matches!(
        envelope_of(&retyped).verify(keys, "http://example.com/HelloWorle"),
        Err(AttestError::SignatureMismatch { .. })
    ));

    let mut flipped = envelope_of(original);
    flipped.signatures[0].sig[10] ^= 1;
    assert!(matches!(
        flipped.verify(keys, payload_type),
        Err(AttestError::SignatureMismatch { .. })
    ));

    let mut truncated = envelope_of(original);
    truncated.signatures[0].sig.truncate(40);
    assert!(matches!(
        truncated.verify(keys, payload_type),
        Err(AttestError::MalformedSignature { .. })
    ));

    let mut bad = original.clone();
    bad["signatures"][0]["sig"] = "A3Jqs*QGt".into();
    let json = serde_json::to_vec(&bad).unwrap();
    assert!(matches!(
        Envelope::from_json(&json),
        Err(AttestError::BadBase64 { field, .. }) if field == "signatures[0].sig"
    ));
}

/// A Sigstore bundle: the envelope's ECDSA P-256 signature (DER) is by the
/// key of the bundle's X.509 certificate.
#[test]
fn dsse_sigstore_bundle_verifies_with_its_certificate() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let bundle = read_json(&data.join("dsse/sigstore/a.dsse.staging-rekor-v2.txt.sigstore.json"));
    let cert = sigstore_certificate(&bundle);
    let from_der = PublicKey::from_certificate_der(&cert).unwrap();
    let from_pem = PublicKey::from_pem(&keys::pem_block("CERTIFICATE", &cert)).unwrap();
    assert_eq!(from_der, from_pem);
    assert_eq!(from_der.algorithm(), "ecdsa-p256");

    let envelope = envelope_of(&bundle["dsseEnvelope"]);
    let keys = [from_der];
    let ok = envelope.verify(&keys, IN_TOTO_PAYLOAD_TYPE).unwrap();
    let statement: Value = serde_json::from_slice(ok.payload).unwrap();
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["subject"][0]["name"], "a.txt");

    // One byte of the statement changed: the signature no longer covers it.
    let mut tampered = envelope.clone();
    let at = tampered.payload.iter().position(|b| *b == b'a').unwrap();
    tampered.payload[at] = b'b';
    assert!(matches!(
        tampered.verify(&keys, IN_TOTO_PAYLOAD_TYPE),
        Err(AttestError::SignatureMismatch { .. })
    ));
    // Another P-256 key: tried (no key id in the envelope) and rejected.
    let HelloWorld { key: stranger, .. } = hello_world(&data);
    assert!(matches!(
        envelope.verify(&[stranger], IN_TOTO_PAYLOAD_TYPE),
        Err(AttestError::SignatureMismatch { .. })
    ));
}

fn sigstore_certificate(bundle: &Value) -> Vec<u8> {
    use base64::Engine as _;
    let raw = bundle["verificationMaterial"]["certificate"]["rawBytes"]
        .as_str()
        .unwrap();
    base64::engine::general_purpose::STANDARD
        .decode(raw)
        .unwrap()
}

/// Every DSSE example in the shared data is covered: the two that come with
/// a key are verified above, the rest are bare in-toto statements (no
/// envelope, no key). A new keyed example fails here until it gets a test.
#[test]
fn dsse_every_shared_example_is_accounted_for() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let dir = data.join("dsse");
    let keyed = [
        dir.join("dsse-hello-world-vector.json"),
        dir.join("sigstore/a.dsse.staging-rekor-v2.txt.sigstore.json"),
    ];
    let files = common::json_files(&dir);
    assert!(files.len() >= 11, "{} files", files.len());
    for file in files {
        if keyed.contains(&file) {
            continue;
        }
        let v = read_json(&file);
        assert_eq!(
            v["_type"],
            "https://in-toto.io/Statement/v1",
            "{}",
            file.display()
        );
        assert!(
            v.get("payload").is_none() && v.get("dsseEnvelope").is_none(),
            "{} is an envelope without a test",
            file.display()
        );
    }
}

// ------------------------------------------------- completion statements

use recheck::attest::keys::SigningKey;
use recheck::attest::statement::{self, COMPLETION_PREDICATE_TYPE};
use recheck::model::{
    CompletionEvent, Direction, Finding, FindingStatus, JobReason, Scope, Verdict,
};

/// The findings of the bundled sample fleet (real advisories and SBOMs),
/// through the reference matcher.
fn sample_findings() -> Vec<Finding> {
    let samples = recheck::samples::bundled_dir();
    let advisories = recheck::formats::osv::load(&[samples.join("advisories")]);
    assert!(advisories.errors.is_empty(), "{:?}", advisories.errors);
    let advisories: Vec<_> = advisories.items.into_iter().map(|(_, a)| a).collect();
    let sboms: Vec<_> = common::json_files(&samples.join("sboms"))
        .iter()
        .map(|p| {
            recheck::formats::parse_sbom(
                &p.display().to_string(),
                &common::read(p),
                Scope::Tenant("acme".into()),
            )
            .unwrap()
        })
        .collect();
    let findings = recheck::scan::scan(&advisories, &sboms, &[]).findings;
    assert!(findings.len() >= 5, "{} findings", findings.len());
    findings
}

fn sample_event(findings: &[Finding]) -> CompletionEvent {
    CompletionEvent {
        job_id: "4b1f0a6c9e".repeat(6) + "0123",
        tenant: "acme".into(),
        artifact: "registry.example.com/payments-api@sha256:".to_string() + &"ab".repeat(32),
        artifact_sha256: "ab".repeat(32),
        window: 42,
        reasons: vec![
            JobReason {
                advisory: "PYSEC-2023-74".into(),
                vulnerability: "CVE-2023-32681".into(),
                status: FindingStatus::Affected,
                direction: Direction::Removed,
            },
            JobReason {
                advisory: "PYSEC-2022-203".into(),
                vulnerability: "CVE-2022-36087".into(),
                status: FindingStatus::Affected,
                direction: Direction::Added,
            },
        ],
        policy_version: "default@1".into(),
        verdict: Verdict::Fail,
        findings_sha256: statement::findings_sha256(findings).unwrap(),
        explain_trace_sha256: canonical::sha256_hex(&["trace"]).unwrap(),
    }
}

fn fixed_key() -> SigningKey {
    SigningKey::from_seed(&[42; 32]).unwrap()
}

#[test]
fn completion_envelopes_replay_byte_for_byte() {
    let findings = sample_findings();
    let event = sample_event(&findings);
    let key = fixed_key();
    let first = statement::sign_completion(&event, &key)
        .unwrap()
        .to_json()
        .unwrap();

    // Same facts, found in another order, signed by the same key re-read
    // from its PEM: the same bytes.
    let mut shuffled = findings.clone();
    shuffled.reverse();
    let mut again = sample_event(&shuffled);
    again.reasons.reverse();
    again.reasons.push(again.reasons[0].clone());
    let reread = SigningKey::from_pkcs8_pem(&key.to_pkcs8_pem().unwrap()).unwrap();
    let second = statement::sign_completion(&again, &reread)
        .unwrap()
        .to_json()
        .unwrap();
    assert_eq!(first, second);

    // A different fact gives different bytes.
    let mut passed = event.clone();
    passed.verdict = Verdict::Pass;
    assert_ne!(
        statement::sign_completion(&passed, &key)
            .unwrap()
            .to_json()
            .unwrap(),
        first
    );

    // The envelope itself is canonical JSON.
    assert_eq!(canonical::canonicalize(&first).unwrap(), first);

    // Reading it back gives the event (reasons sorted).
    let envelope = Envelope::from_json(&first).unwrap();
    let back = statement::verify_completion(&envelope, &[key.public_key().clone()]).unwrap();
    let mut want = event.clone();
    want.reasons.sort();
    assert_eq!(back, want);
}

/// The exact statement bytes: a change of field names, order or number
/// format would change every signed event, so it is pinned here.
#[test]
fn completion_statement_bytes_are_pinned() {
    let mut event = sample_event(&[]);
    event.findings_sha256 = "11".repeat(32);
    event.explain_trace_sha256 = "22".repeat(32);
    let payload = canonical::to_vec(&statement::completion_statement(&event).unwrap()).unwrap();
    let want = concat!(
        r#"{"_type":"https://in-toto.io/Statement/v1","predicate":{"artifact":"registry.example.com/payments-api@sha256:"#,
        "abababababababababababababababababababababababababababababababab",
        r#"","explainTrace":{"sha256":"2222222222222222222222222222222222222222222222222222222222222222"},"#,
        r#""findings":{"sha256":"1111111111111111111111111111111111111111111111111111111111111111"},"#,
        r#""jobId":"4b1f0a6c9e4b1f0a6c9e4b1f0a6c9e4b1f0a6c9e4b1f0a6c9e4b1f0a6c9e0123","policyVersion":"default@1","#,
        r#""reasons":[{"advisory":"PYSEC-2022-203","direction":"added","status":"affected","vulnerability":"CVE-2022-36087"},"#,
        r#"{"advisory":"PYSEC-2023-74","direction":"removed","status":"affected","vulnerability":"CVE-2023-32681"}],"#,
        r#""tenant":"acme","verdict":"fail","window":42},"#,
        r#""predicateType":"https://recheck.dev/completion/v1","subject":[{"digest":{"sha256":""#,
        "abababababababababababababababababababababababababababababababab",
        r#""},"name":"registry.example.com/payments-api@sha256:"#,
        "abababababababababababababababababababababababababababababababab",
        r#""}]}"#
    );
    assert_eq!(String::from_utf8(payload).unwrap(), want);
}

#[test]
fn completion_tampering_and_foreign_statements_are_rejected() {
    let event = sample_event(&sample_findings());
    let key = fixed_key();
    let keys = [key.public_key().clone()];
    let envelope = statement::sign_completion(&event, &key).unwrap();

    let flipped = tampered(&envelope, r#""verdict":"fail""#, r#""verdict":"pass""#);
    assert!(matches!(
        statement::verify_completion(&flipped, &keys),
        Err(AttestError::SignatureMismatch { .. })
    ));

    // A valid in-toto envelope, but not a completion statement.
    let Some(data) = common::shared_data() else {
        return;
    };
    let bundle = read_json(&data.join("dsse/sigstore/a.dsse.staging-rekor-v2.txt.sigstore.json"));
    let cert = PublicKey::from_certificate_der(&sigstore_certificate(&bundle)).unwrap();
    match statement::verify_completion(&envelope_of(&bundle["dsseEnvelope"]), &[cert]) {
        Err(AttestError::Payload(m)) => assert!(m.contains(COMPLETION_PREDICATE_TYPE), "{m}"),
        other => panic!("expected a payload error, got {other:?}"),
    }

    // Signed correctly, but not in canonical form: not what Recheck writes.
    let pretty =
        serde_json::to_vec_pretty(&statement::completion_statement(&event).unwrap()).unwrap();
    let resigned = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, pretty, &key);
    assert!(matches!(
        statement::verify_completion(&resigned, &keys),
        Err(AttestError::Payload(m)) if m.contains("canonical")
    ));
}

#[test]
fn findings_digest_ignores_order_but_not_content() {
    let findings = sample_findings();
    let mut reversed = findings.clone();
    reversed.reverse();
    let digest = statement::findings_sha256(&findings).unwrap();
    assert_eq!(statement::findings_sha256(&reversed).unwrap(), digest);
    assert_eq!(
        statement::findings_sha256(&findings[1..]).unwrap().len(),
        64
    );
    assert_ne!(statement::findings_sha256(&findings[1..]).unwrap(), digest);
}

/// The in-toto specification's statements (shared data) are read by our
/// Statement type without losing a field: re-serialized, they have the same
/// canonical bytes as the original document.
#[test]
fn in_toto_spec_statements_parse_without_loss() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let files = common::json_files(&data.join("dsse/in-toto"));
    assert_eq!(files.len(), 9);
    for file in files {
        let bytes = common::read(&file);
        let parsed = statement::parse_statement(&bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(
            canonical::to_vec(&parsed).unwrap(),
            canonical::canonicalize(&bytes).unwrap(),
            "{}",
            file.display()
        );
    }
}

/// Every OSV advisory of the corpus (CVSS scores are floats) survives
/// model → canonical JSON → model → canonical JSON unchanged.
#[test]
fn canonical_json_round_trips_the_osv_corpus() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let report = recheck::formats::osv::load(&[data.join("osv")]);
    assert!(report.items.len() > 600, "{}", report.items.len());
    let mut scores = 0;
    for (name, advisory) in &report.items {
        let bytes = canonical::to_vec(advisory).unwrap();
        let back: recheck::model::Advisory = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(&back, advisory, "{name}");
        assert_eq!(canonical::to_vec(&back).unwrap(), bytes, "{name}");
        scores += advisory
            .severity
            .iter()
            .filter(|s| s.computed.is_some())
            .count();
    }
    assert!(scores > 100, "{scores} computed scores");
}

// ------------------------------------------------------ keygen and verify

use std::process::{Command, Output};

/// A scratch directory removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("recheck-attest-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn recheck<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_recheck"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `envelope` with `from` replaced by `to` in its payload, signature kept.
fn tampered(envelope: &Envelope, from: &str, to: &str) -> Envelope {
    let payload = text(&envelope.payload);
    assert!(payload.contains(from), "{from} not in {payload}");
    let mut changed = envelope.clone();
    changed.payload = payload.replace(from, to).into_bytes();
    changed
}

/// `recheck keygen --out DIR/`: the key id it prints is the sha256 of the
/// public key's SPKI DER, the private key is mode 0600 and reads back to the
/// same key.
fn keygen(out: &Path) -> (String, SigningKey) {
    let run = recheck(&[Path::new("keygen"), Path::new("--out"), out]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let stdout = text(&run.stdout);
    let keyid = stdout
        .lines()
        .find_map(|l| l.strip_prefix("keyid: "))
        .unwrap_or_else(|| panic!("no keyid in {stdout}"))
        .to_string();
    let (private, public) = if out.is_dir() {
        (out.join("recheck.key.pem"), out.join("recheck.pub.pem"))
    } else {
        let p = out.display();
        (
            PathBuf::from(format!("{p}.key.pem")),
            PathBuf::from(format!("{p}.pub.pem")),
        )
    };
    let key = SigningKey::from_pkcs8_pem(&text(&common::read(&private))).unwrap();
    assert_eq!(key.keyid(), keyid);
    let public = PublicKey::from_pem(&text(&common::read(&public))).unwrap();
    assert_eq!(public.keyid(), keyid);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&private).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "private key mode {mode:o}");
    }
    (keyid, key)
}

#[test]
fn keygen_writes_a_private_key_only_we_can_read() {
    let scratch = Scratch::new("keygen");
    let (first, _) = keygen(&scratch.0);
    // An existing key is never overwritten silently.
    let again = recheck(&[Path::new("keygen"), Path::new("--out"), &scratch.0]);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("exists"),
        "{}",
        text(&again.stderr)
    );
    let (_, reread) = keygen(&scratch.0.join("ci"));
    assert_ne!(reread.keyid(), first);
    let forced = recheck(&[
        Path::new("keygen"),
        Path::new("--force"),
        Path::new("--out"),
        &scratch.0,
    ]);
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    assert!(!text(&forced.stdout).contains(&first));
}

#[test]
fn verify_cli_says_why_an_envelope_is_invalid() {
    let scratch = Scratch::new("verify");
    std::fs::create_dir(scratch.0.join("a")).unwrap();
    std::fs::create_dir(scratch.0.join("b")).unwrap();
    let (keyid, key) = keygen(&scratch.0.join("a"));
    keygen(&scratch.0.join("b"));
    let public = scratch.0.join("a/recheck.pub.pem");
    let stranger = scratch.0.join("b/recheck.pub.pem");

    let event = sample_event(&sample_findings());
    let envelope = statement::sign_completion(&event, &key).unwrap();
    let good = scratch.write("event.json", envelope.to_json().unwrap());
    let verify = |envelope: &Path, key: &Path| {
        recheck(&[Path::new("verify"), envelope, Path::new("--key"), key])
    };

    let ok = verify(&good, &public);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    let stdout = text(&ok.stdout);
    assert!(
        stdout.starts_with(&format!("valid: keyid {keyid} (ed25519)")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "subject: {} sha256:{}",
            event.artifact, event.artifact_sha256
        )),
        "{stdout}"
    );
    assert!(stdout.contains("verdict Fail"), "{stdout}");

    let tampered = tampered(&envelope, "\"window\":42", "\"window\":43");
    let cases = [
        (
            scratch.write("tampered.json", tampered.to_json().unwrap()),
            &public,
            "signature mismatch",
        ),
        (good.clone(), &stranger, "unknown key id"),
        (
            scratch.write(
                "bad64.json",
                text(&envelope.to_json().unwrap()).replace("\"payload\":\"", "\"payload\":\"%"),
            ),
            &public,
            "bad base64 in payload",
        ),
        (
            scratch.write("notjson.json", "{\"payload\": 1}"),
            &public,
            "not a DSSE envelope",
        ),
    ];
    for (file, key, reason) in cases {
        let run = verify(&file, key);
        assert_eq!(
            run.status.code(),
            Some(1),
            "{}: {}",
            file.display(),
            text(&run.stdout)
        );
        let stderr = text(&run.stderr);
        assert!(
            stderr.starts_with(&format!("invalid: {reason}")),
            "{}: {stderr}",
            file.display()
        );
    }

    // Unreadable inputs are not "invalid": exit 2.
    let missing = verify(&scratch.0.join("nope.json"), &public);
    assert_eq!(missing.status.code(), Some(2));
    let private_as_public = verify(&good, &scratch.0.join("a/recheck.key.pem"));
    assert_eq!(private_as_public.status.code(), Some(2));
    assert!(text(&private_as_public.stderr).contains("private key"));
}

#[test]
fn verify_cli_accepts_the_shared_p256_examples() {
    let Some(data) = common::shared_data() else {
        return;
    };
    let scratch = Scratch::new("verify-shared");
    let HelloWorld { vector, key } = hello_world(&data);
    let source = &vector["source"];
    let pem = scratch.write("hello.pub.pem", key.to_pem());
    let plain = scratch.write(
        "plain.json",
        serde_json::to_vec(&source["envelope_protocol_md"]).unwrap(),
    );
    let hinted = scratch.write(
        "hinted.json",
        serde_json::to_vec(&source["envelope_signing_spec_py"]).unwrap(),
    );
    let hello_type = source["payloadType"].as_str().unwrap();
    let p = |path: &Path| path.display().to_string();
    // `recheck verify ENVELOPE --key PEM [extra...]`
    let verify = |envelope: &Path, key: &Path, extra: &[&str]| {
        let mut args = vec!["verify".to_string(), p(envelope), "--key".into(), p(key)];
        args.extend(extra.iter().map(|a| a.to_string()));
        recheck(&args)
    };
    let as_hello = ["--payload-type", hello_type];

    let ok = verify(&plain, &pem, &as_hello);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains("(ecdsa-p256), payloadType http://example.com/HelloWorld"));

    let wrong_type = verify(&plain, &pem, &[]);
    assert_eq!(wrong_type.status.code(), Some(1));
    assert!(text(&wrong_type.stderr).starts_with("invalid: wrong payload type"));

    let unknown = verify(&hinted, &pem, &as_hello);
    assert_eq!(unknown.status.code(), Some(1));
    let stderr = text(&unknown.stderr);
    assert!(
        stderr.starts_with("invalid: unknown key id") && stderr.contains("66301bbf"),
        "{stderr}"
    );
    let aliased = verify(
        &hinted,
        &pem,
        &[as_hello[0], as_hello[1], "--keyid", "66301bbf"],
    );
    assert_eq!(aliased.status.code(), Some(0), "{}", text(&aliased.stderr));
    assert!(text(&aliased.stdout).starts_with("valid: keyid 66301bbf"));

    let bundle = read_json(&data.join("dsse/sigstore/a.dsse.staging-rekor-v2.txt.sigstore.json"));
    let cert = scratch.write(
        "cert.pem",
        keys::pem_block("CERTIFICATE", &sigstore_certificate(&bundle)),
    );
    let sigstore = scratch.write(
        "sigstore.json",
        serde_json::to_vec(&bundle["dsseEnvelope"]).unwrap(),
    );
    let ok = verify(&sigstore, &cert, &[]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    let stdout = text(&ok.stdout);
    assert!(
        stdout.contains("predicateType: https://slsa.dev/provenance/v1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("subject: a.txt sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"),
        "{stdout}"
    );
}

// ------------------------------------- interop with Python securesystemslib

/// The independent DSSE implementation (`tests/interop/dsse_interop.py`) as a
/// command, or `None` after a loud SKIP naming what to install (a failure
/// under CI=true). `RECHECK_PYTHON` picks the interpreter (default python3).
fn python_dsse() -> Option<Command> {
    let python = std::env::var("RECHECK_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = fixture("../interop/dsse_interop.py");
    let command = || {
        let mut c = Command::new(&python);
        c.arg(&script);
        c
    };
    let install = "pip install 'securesystemslib[crypto]'";
    match command().arg("check-deps").output() {
        Ok(out) if out.status.success() => Some(command()),
        Ok(out) => {
            common::skip(&format!(
                "DSSE interop needs Python securesystemslib + cryptography: {install} ({})",
                text(&out.stderr).trim()
            ));
            None
        }
        Err(e) => {
            common::skip(&format!(
                "DSSE interop needs {python} with securesystemslib ({install}): {e}"
            ));
            None
        }
    }
}

#[test]
fn interop_securesystemslib_verifies_recheck_envelopes() {
    let Some(mut python) = python_dsse() else {
        return;
    };
    let scratch = Scratch::new("interop-verify");
    let key = SigningKey::generate().unwrap();
    let pem = scratch.write("recheck.pub.pem", key.public_key().to_pem());
    let envelope = statement::sign_completion(&sample_event(&sample_findings()), &key).unwrap();
    let good = scratch.write("good.json", envelope.to_json().unwrap());

    let run = python
        .args([Path::new("verify"), &good, &pem])
        .output()
        .unwrap();
    let stdout = text(&run.stdout);
    assert!(run.status.success(), "{stdout}{}", text(&run.stderr));
    // Python computed the same key id from the PEM on its own.
    assert!(
        stdout.contains(&format!(
            "verified keyid {} payloadType {IN_TOTO_PAYLOAD_TYPE}",
            key.keyid()
        )),
        "{stdout}"
    );
    // And its own sorted, whitespace-free serialization is our payload.
    assert!(stdout.contains("canonical: true"), "{stdout}");

    // It is not just saying yes: a changed payload is rejected there too.
    let tampered = tampered(&envelope, "\"verdict\":\"fail\"", "\"verdict\":\"pass\"");
    let bad = scratch.write("tampered.json", tampered.to_json().unwrap());
    let run = python_dsse()
        .unwrap()
        .args([Path::new("verify"), &bad, &pem])
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(1),
        "{}{}",
        text(&run.stdout),
        text(&run.stderr)
    );
    assert!(
        text(&run.stdout).starts_with("rejected:"),
        "{}",
        text(&run.stdout)
    );
}

#[test]
fn interop_recheck_verifies_securesystemslib_envelopes() {
    let Some(mut python) = python_dsse() else {
        return;
    };
    let scratch = Scratch::new("interop-sign");
    let event = sample_event(&sample_findings());
    // Python gets the statement pretty-printed and serializes it itself.
    let statement_json = scratch.write(
        "statement.json",
        serde_json::to_vec_pretty(&statement::completion_statement(&event).unwrap()).unwrap(),
    );
    let run = python
        .arg("sign")
        .arg(&statement_json)
        .arg(&scratch.0)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}{}",
        text(&run.stdout),
        text(&run.stderr)
    );
    let python_keyid = text(&run.stdout)
        .trim()
        .strip_prefix("signed keyid ")
        .unwrap()
        .to_string();

    let envelope_path = scratch.0.join("python.envelope.json");
    let pem_path = scratch.0.join("python.pub.pem");
    let public = PublicKey::from_pem(&text(&common::read(&pem_path))).unwrap();
    assert_eq!(public.keyid(), python_keyid, "key-id schemes agree");
    let envelope = Envelope::from_json(&common::read(&envelope_path)).unwrap();
    assert_eq!(envelope.signatures[0].keyid, python_keyid);

    // Signature, key id, payload type, predicate and canonical form all hold:
    // the event Python signed is ours.
    let back = statement::verify_completion(&envelope, std::slice::from_ref(&public)).unwrap();
    let mut want = event.clone();
    want.reasons.sort();
    assert_eq!(back, want);

    let cli = recheck(&[
        Path::new("verify"),
        &envelope_path,
        Path::new("--key"),
        &pem_path,
    ]);
    assert_eq!(cli.status.code(), Some(0), "{}", text(&cli.stderr));
    assert!(text(&cli.stdout).starts_with(&format!("valid: keyid {python_keyid} (ed25519)")));

    let tampered = tampered(&envelope, "\"window\":42", "\"window\":41");
    assert!(matches!(
        statement::verify_completion(&tampered, &[public]),
        Err(AttestError::SignatureMismatch { .. })
    ));
}
