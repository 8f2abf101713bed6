//! The one canonical JSON serializer of the project: RFC 8785 (JCS).
//!
//! Hashes and signatures are taken over bytes, so everything Recheck hashes,
//! signs, stores or publishes goes through here: object keys sorted by their
//! UTF-16 code units, no whitespace, strings escaped as ECMAScript's
//! `JSON.stringify` does, numbers formatted as ECMAScript's `Number.toString`.
//! Values that JCS cannot express exactly are refused instead of being
//! altered: NaN/±Infinity, integers beyond ±2^53, duplicate keys, non-string
//! keys.
//!
//! The serializer is a serde `Serializer` of its own (not a pass through
//! `serde_json::Value`, which turns NaN into `null` without a word).

use std::cmp::Ordering;
use std::fmt::{self, Write as _};

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, Serialize};
use sha2::{Digest, Sha256};

use super::AttestError;

/// Largest magnitude an integer may have to survive a trip through an IEEE
/// double unchanged (RFC 8785 §3.2.2.3, I-JSON).
const MAX_EXACT_INTEGER: u64 = 1 << 53;

/// The canonical bytes of `value`.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, AttestError> {
    let node = value.serialize(NodeSerializer)?;
    let mut out = String::new();
    node.write(&mut out);
    Ok(out.into_bytes())
}

/// The canonical form of a JSON text (any whitespace, key order, number
/// spelling, escapes).
pub fn canonicalize(json: &[u8]) -> Result<Vec<u8>, AttestError> {
    let node: Node = serde_json::from_slice(json).map_err(|e| AttestError::Json(e.to_string()))?;
    let mut out = String::new();
    node.write(&mut out);
    Ok(out.into_bytes())
}

/// Lower-case hex sha256 of the canonical bytes of `value`: the digest used for
/// findings, explain traces and anything else a statement refers to.
pub fn sha256_hex<T: Serialize + ?Sized>(value: &T) -> Result<String, AttestError> {
    Ok(hex::encode(Sha256::digest(to_vec(value)?)))
}

/// ECMAScript `Number.prototype.toString` of a finite double (RFC 8785
/// §3.2.2.3): the shortest digits that round-trip, plain notation for
/// 1e-7 < |v| < 1e21, exponent notation (`1e+21`, `5e-324`) outside.
pub fn format_number(v: f64) -> Result<String, AttestError> {
    if !v.is_finite() {
        return Err(AttestError::NonFiniteNumber(v.to_string()));
    }
    if v == 0.0 {
        // Also -0: ECMAScript prints it as "0".
        return Ok("0".to_string());
    }
    let (digits, exp) = shortest_digits(v.abs())?;
    let k = digits.len() as i32;
    // ECMAScript's n: the value is 0.digits × 10^n.
    let n = exp + 1;
    let mut out = String::with_capacity(k as usize + 8);
    if v < 0.0 {
        out.push('-');
    }
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push(if n - 1 < 0 { '-' } else { '+' });
        out.push_str(&(n - 1).abs().to_string());
    }
    Ok(out)
}

/// The significant digits and decimal exponent ECMAScript picks for a finite
/// positive double: as few digits as round-trip and, of those, the closest to
/// the value, ties going to the even digit string.
fn shortest_digits(v: f64) -> Result<(String, i32), AttestError> {
    // `{:e}` gives Rust's shortest round-trip digits as `d.ddde<exp>`; on an
    // exact tie between two candidates it may take the odd one (1424953923781206.25
    // prints as ...06.3, ECMAScript wants ...06.2). Exact formatting at the
    // same precision rounds half to even, so it settles ties, and is kept
    // whenever it also round-trips (it may not just below a power of two,
    // where the rounding interval is lopsided).
    let split = |sci: &str| -> Result<(String, i32), AttestError> {
        let (mantissa, exp) = sci
            .split_once('e')
            .ok_or_else(|| AttestError::Json(format!("unexpected float rendering {sci}")))?;
        let exp = exp
            .parse()
            .map_err(|_| AttestError::Json(format!("unexpected float rendering {sci}")))?;
        Ok((mantissa.chars().filter(|c| *c != '.').collect(), exp))
    };
    let shortest = split(&format!("{v:e}"))?;
    let exact = format!("{:.*e}", shortest.0.len() - 1, v);
    if exact.parse::<f64>() == Ok(v) {
        split(&exact)
    } else {
        Ok(shortest)
    }
}

/// Orders object keys as RFC 8785 §3.2.3 requires: by UTF-16 code units,
/// which differs from byte (UTF-8) order above U+FFFF.
pub fn key_order(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// A JSON value already checked for JCS: numbers are pre-formatted, object
/// keys are unique.
enum Node {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl Node {
    fn object(mut entries: Vec<(String, Node)>) -> Result<Node, AttestError> {
        entries.sort_by(|a, b| key_order(&a.0, &b.0));
        if let Some(w) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(AttestError::DuplicateKey(w[0].0.clone()));
        }
        Ok(Node::Object(entries))
    }

    fn integer(v: i128) -> Result<Node, AttestError> {
        if v.unsigned_abs() > u128::from(MAX_EXACT_INTEGER) {
            return Err(AttestError::IntegerOutOfRange(v.to_string()));
        }
        Ok(Node::Number(v.to_string()))
    }

    fn write(&self, out: &mut String) {
        match self {
            Node::Null => out.push_str("null"),
            Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Node::Number(n) => out.push_str(n),
            Node::String(s) => write_string(s, out),
            Node::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Node::Object(entries) => {
                out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(key, out);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

/// ECMAScript `JSON.stringify` string escaping (RFC 8785 §3.2.2.2): only `"`,
/// `\` and C0 controls are escaped, with the short forms where they exist;
/// everything else, including U+007F and non-ASCII, is written as is.
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if c < '\u{20}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Builds a [`Node`] from any `Serialize` type, with serde_json's data model
/// (unit → null, enums externally tagged, bytes as an array of numbers).
struct NodeSerializer;

struct SeqBuilder {
    items: Vec<Node>,
    /// Set for tuple variants: `{variant: [items]}`.
    variant: Option<&'static str>,
}

struct MapBuilder {
    entries: Vec<(String, Node)>,
    pending_key: Option<String>,
    /// Set for struct variants: `{variant: {fields}}`.
    variant: Option<&'static str>,
}

fn wrap_variant(variant: Option<&'static str>, node: Node) -> Result<Node, AttestError> {
    match variant {
        Some(v) => Ok(Node::Object(vec![(v.to_string(), node)])),
        None => Ok(node),
    }
}

impl ser::Serializer for NodeSerializer {
    type Ok = Node;
    type Error = AttestError;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = SeqBuilder;
    type SerializeMap = MapBuilder;
    type SerializeStruct = MapBuilder;
    type SerializeStructVariant = MapBuilder;

    fn serialize_bool(self, v: bool) -> Result<Node, AttestError> {
        Ok(Node::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Node, AttestError> {
        Node::integer(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<Node, AttestError> {
        Node::integer(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<Node, AttestError> {
        Node::integer(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<Node, AttestError> {
        Node::integer(v.into())
    }
    fn serialize_i128(self, v: i128) -> Result<Node, AttestError> {
        Node::integer(v)
    }
    fn serialize_u8(self, v: u8) -> Result<Node, AttestError> {
        Node::integer(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<Node, AttestError> {
        Node::integer(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<Node, AttestError> {
        Node::integer(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<Node, AttestError> {
        Node::integer(v.into())
    }
    fn serialize_u128(self, v: u128) -> Result<Node, AttestError> {
        i128::try_from(v)
            .map_err(|_| AttestError::IntegerOutOfRange(v.to_string()))
            .and_then(Node::integer)
    }
    fn serialize_f32(self, v: f32) -> Result<Node, AttestError> {
        format_number(v.into()).map(Node::Number)
    }
    fn serialize_f64(self, v: f64) -> Result<Node, AttestError> {
        format_number(v).map(Node::Number)
    }
    fn serialize_char(self, v: char) -> Result<Node, AttestError> {
        Ok(Node::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Node, AttestError> {
        Ok(Node::String(v.to_string()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Node, AttestError> {
        Ok(Node::Array(
            v.iter().map(|b| Node::Number(b.to_string())).collect(),
        ))
    }
    fn serialize_none(self) -> Result<Node, AttestError> {
        Ok(Node::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Node, AttestError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Node, AttestError> {
        Ok(Node::Null)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Node, AttestError> {
        Ok(Node::Null)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Node, AttestError> {
        Ok(Node::String(variant.to_string()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Node, AttestError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Node, AttestError> {
        wrap_variant(Some(variant), value.serialize(self)?)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, AttestError> {
        Ok(SeqBuilder {
            items: Vec::with_capacity(len.unwrap_or(0)),
            variant: None,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, AttestError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, AttestError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, AttestError> {
        Ok(SeqBuilder {
            items: Vec::with_capacity(len),
            variant: Some(variant),
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapBuilder, AttestError> {
        Ok(MapBuilder {
            entries: Vec::with_capacity(len.unwrap_or(0)),
            pending_key: None,
            variant: None,
        })
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<MapBuilder, AttestError> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<MapBuilder, AttestError> {
        Ok(MapBuilder {
            entries: Vec::with_capacity(len),
            pending_key: None,
            variant: Some(variant),
        })
    }
}

impl SeqBuilder {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), AttestError> {
        self.items.push(value.serialize(NodeSerializer)?);
        Ok(())
    }
    fn finish(self) -> Result<Node, AttestError> {
        wrap_variant(self.variant, Node::Array(self.items))
    }
}

/// serde's four sequence-like traits differ only in the method name.
macro_rules! seq_builder {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for SeqBuilder {
            type Ok = Node;
            type Error = AttestError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), AttestError> {
                self.push(value)
            }
            fn end(self) -> Result<Node, AttestError> {
                self.finish()
            }
        }
    )*};
}

seq_builder!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl MapBuilder {
    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), AttestError> {
        self.entries
            .push((key.to_string(), value.serialize(NodeSerializer)?));
        Ok(())
    }
    fn finish(self) -> Result<Node, AttestError> {
        wrap_variant(self.variant, Node::object(self.entries)?)
    }
}

impl ser::SerializeMap for MapBuilder {
    type Ok = Node;
    type Error = AttestError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), AttestError> {
        self.pending_key = Some(key.serialize(KeySerializer)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), AttestError> {
        let key = self
            .pending_key
            .take()
            .ok_or_else(|| AttestError::Json("map value without a key".to_string()))?;
        self.field(&key, value)
    }
    fn end(self) -> Result<Node, AttestError> {
        self.finish()
    }
}

/// Structs and struct variants are maps with `&'static str` keys.
macro_rules! struct_builder {
    ($($trait:ident),*) => {$(
        impl ser::$trait for MapBuilder {
            type Ok = Node;
            type Error = AttestError;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), AttestError> {
                self.field(key, value)
            }
            fn end(self) -> Result<Node, AttestError> {
                self.finish()
            }
        }
    )*};
}

struct_builder!(SerializeStruct, SerializeStructVariant);

/// Map keys: strings as they are; chars and integers as their text (as
/// serde_json does, so `BTreeMap<u64, _>` works); anything else is refused.
struct KeySerializer;

fn refuse_key<T>(what: &'static str) -> Result<T, AttestError> {
    Err(AttestError::NonStringKey(what))
}

impl ser::Serializer for KeySerializer {
    type Ok = String;
    type Error = AttestError;
    type SerializeSeq = ser::Impossible<String, AttestError>;
    type SerializeTuple = ser::Impossible<String, AttestError>;
    type SerializeTupleStruct = ser::Impossible<String, AttestError>;
    type SerializeTupleVariant = ser::Impossible<String, AttestError>;
    type SerializeMap = ser::Impossible<String, AttestError>;
    type SerializeStruct = ser::Impossible<String, AttestError>;
    type SerializeStructVariant = ser::Impossible<String, AttestError>;

    fn serialize_str(self, v: &str) -> Result<String, AttestError> {
        Ok(v.to_string())
    }
    fn serialize_char(self, v: char) -> Result<String, AttestError> {
        Ok(v.to_string())
    }
    fn serialize_i8(self, v: i8) -> Result<String, AttestError> {
        Ok(v.to_string())
    }
    fn serialize_i16(self, v: i16) -> Result<String, AttestError> {
        Ok(v.to_string())
    }
    fn serialize_i32(self, v: i32) -> Result<String, AttestError> {
        Ok(v.to_string())
    }
    fn serialize_i64(self, v: i64) -> Result<String, AttestError> {
        Ok(v.to_string())
    }
    fn serialize_u8(self, v: u8) -> Result<String, AttestError> {
        Ok(v.to_string())
    }
    fn serialize_u16(self, v: u16) -> Result<String, AttestError> {
        Ok(v.to_string())
    }
    fn serialize_u32(self, v: u32) -> Result<String, AttestError> {
        Ok(v.to_string())
    }
    fn serialize_u64(self, v: u64) -> Result<String, AttestError> {
        Ok(v.to_string())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<String, AttestError> {
        Ok(variant.to_string())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<String, AttestError> {
        value.serialize(self)
    }
    fn serialize_bool(self, _v: bool) -> Result<String, AttestError> {
        refuse_key("a boolean")
    }
    fn serialize_f32(self, _v: f32) -> Result<String, AttestError> {
        refuse_key("a float")
    }
    fn serialize_f64(self, _v: f64) -> Result<String, AttestError> {
        refuse_key("a float")
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<String, AttestError> {
        refuse_key("bytes")
    }
    fn serialize_none(self) -> Result<String, AttestError> {
        refuse_key("null")
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<String, AttestError> {
        refuse_key("an option")
    }
    fn serialize_unit(self) -> Result<String, AttestError> {
        refuse_key("null")
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<String, AttestError> {
        refuse_key("a unit struct")
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<String, AttestError> {
        refuse_key("an enum variant with data")
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, AttestError> {
        refuse_key("an array")
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, AttestError> {
        refuse_key("a tuple")
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, AttestError> {
        refuse_key("a tuple struct")
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, AttestError> {
        refuse_key("an enum variant with data")
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, AttestError> {
        refuse_key("an object")
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, AttestError> {
        refuse_key("a struct")
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, AttestError> {
        refuse_key("an enum variant with data")
    }
}

/// Reading JSON text straight into a [`Node`] (rather than through
/// `serde_json::Value`) lets duplicate keys be refused, as I-JSON requires,
/// instead of the last one silently winning.
impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    // JSON text is read as RFC 8785 says: every number is an IEEE double, so
    // a long integer literal is rounded like any JCS implementation rounds it
    // (a typed Rust integer, in contrast, is refused, see `Node::integer`).
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Node::integer(v.into()).or_else(|_| self.visit_f64(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Node::integer(v.into()).or_else(|_| self.visit_f64(v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        format_number(v).map(Node::Number).map_err(E::custom)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::String(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, Node>()? {
            entries.push(entry);
        }
        Node::object(entries).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn rfc8785_appendix_b_numbers() {
        let cases: &[(u64, &str)] = &[
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
            // From the JCS reference test data's README.
            (0x4340000000000001, "9007199254740994"),
            (0x4340000000000002, "9007199254740996"),
        ];
        for &(bits, want) in cases {
            let got = format_number(f64::from_bits(bits)).unwrap();
            assert_eq!(got, want, "{bits:016x}");
        }
    }

    #[test]
    fn non_finite_numbers_are_refused() {
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(matches!(
                format_number(v),
                Err(AttestError::NonFiniteNumber(_))
            ));
            assert!(matches!(
                to_vec(&vec![1.0, v]),
                Err(AttestError::NonFiniteNumber(_))
            ));
        }
        #[derive(serde::Serialize)]
        struct Score {
            cvss: f32,
        }
        assert!(to_vec(&Score { cvss: f32::NAN }).is_err());
    }

    #[test]
    fn integers_beyond_2_pow_53_are_refused() {
        assert_eq!(to_vec(&(1u64 << 53)).unwrap(), b"9007199254740992");
        assert_eq!(to_vec(&-(1i64 << 53)).unwrap(), b"-9007199254740992");
        assert!(matches!(
            to_vec(&((1u64 << 53) + 1)),
            Err(AttestError::IntegerOutOfRange(_))
        ));
        assert!(matches!(
            to_vec(&u128::MAX),
            Err(AttestError::IntegerOutOfRange(_))
        ));
        // JSON text is read as doubles, as every JCS implementation reads it:
        // 2^53 + 1 is a tie and rounds to even.
        assert_eq!(
            canonicalize(b"[9007199254740993, 9007199254740993.0, 1e22]").unwrap(),
            b"[9007199254740992,9007199254740992,1e+22]"
        );
    }

    #[test]
    fn duplicate_and_non_string_keys_are_refused() {
        assert!(matches!(
            canonicalize(br#"{"a":1,"b":2,"a":3}"#),
            Err(AttestError::Json(m)) if m.contains("duplicate object key")
        ));
        let mut m = BTreeMap::new();
        m.insert(vec![1], 1);
        assert_eq!(to_vec(&m), Err(AttestError::NonStringKey("an array")));
        let ints: BTreeMap<u32, bool> = [(10, true), (9, false)].into_iter().collect();
        assert_eq!(to_vec(&ints).unwrap(), br#"{"10":true,"9":false}"#);
    }

    #[test]
    fn keys_sort_by_utf16_not_utf8() {
        // U+1F602 is the surrogate pair D83D DE02 in UTF-16, which sorts
        // before U+FB33; in UTF-8 (F0 ...) it sorts after (EF ...).
        let smiley = "\u{1F602}";
        let dalet = "\u{FB33}";
        assert_eq!(smiley.cmp(dalet), Ordering::Greater);
        assert_eq!(key_order(smiley, dalet), Ordering::Less);
        let m: BTreeMap<&str, u8> = [(dalet, 1), (smiley, 2)].into_iter().collect();
        assert_eq!(
            String::from_utf8(to_vec(&m).unwrap()).unwrap(),
            format!("{{\"{smiley}\":2,\"{dalet}\":1}}")
        );
    }

    #[test]
    fn strings_escape_like_json_stringify() {
        let s = "\u{0}\u{8}\t\n\u{b}\u{c}\r\u{1f} \"\\/\u{7f}\u{2028}é";
        assert_eq!(
            String::from_utf8(to_vec(s).unwrap()).unwrap(),
            "\"\\u0000\\b\\t\\n\\u000b\\f\\r\\u001f \\\"\\\\/\u{7f}\u{2028}é\""
        );
    }

    #[test]
    fn serde_data_model_matches_serde_json() {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "snake_case")]
        enum E {
            Unit,
            New(u8),
            Tuple(u8, bool),
            Struct { z: u8, a: Option<u8> },
        }
        #[derive(serde::Serialize)]
        struct S<'a> {
            b: Vec<E>,
            a: (),
            bytes: &'a [u8],
        }
        let value = S {
            b: vec![
                E::Unit,
                E::New(1),
                E::Tuple(2, true),
                E::Struct { z: 3, a: None },
            ],
            a: (),
            bytes: &[0, 255],
        };
        let ours = to_vec(&value).unwrap();
        // serde_json with sorted keys and no whitespace gives the same bytes
        // when no floats or non-ASCII are involved.
        let theirs = serde_json::to_vec(&value).unwrap();
        assert_eq!(ours, canonicalize(&theirs).unwrap());
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            r#"{"a":null,"b":["unit",{"new":1},{"tuple":[2,true]},{"struct":{"a":null,"z":3}}],"bytes":[0,255]}"#
        );
    }
}
