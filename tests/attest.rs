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
