//! Maven versions, per the POM reference "Version Order Specification" and
//! the details Maven's `ComparableVersion` adds (case-insensitive
//! qualifiers, `release` as a synonym of `ga`, unknown qualifiers after
//! known ones, numbers after qualifiers), as OSV applies them.

use std::cmp::Ordering;

use super::num::Num;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sep {
    Dot,
    Hyphen,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Num(Num),
    /// Lower-cased; `""` stands for `ga` / `final` / `release`.
    Qual(Box<str>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    sep: Sep,
    value: Value,
}

#[derive(Debug, Clone)]
pub(super) struct MavenVersion {
    tokens: Vec<Token>,
}

/// A token or the "null" padding that stands in for a missing one.
#[derive(Clone, Copy)]
enum View<'a> {
    Num(&'a Num),
    Qual(&'a str),
    /// Padding against a `.`-token: zero, except against `.sp`.
    NullZero,
    /// Padding against a `-`-token, or against `.sp`.
    NullEmpty,
}

impl<'a> View<'a> {
    fn is_numeric(self) -> bool {
        matches!(self, View::Num(_) | View::NullZero)
    }

    fn is_null(self) -> bool {
        matches!(self, View::NullZero | View::NullEmpty)
    }

    fn text(self) -> &'a str {
        match self {
            View::Qual(q) => q,
            View::NullZero => "0",
            View::Num(_) | View::NullEmpty => "",
        }
    }

    fn num(self) -> Option<&'a Num> {
        match self {
            View::Num(n) => Some(n),
            View::NullZero => Some(&Num::ZERO),
            View::Qual(_) | View::NullEmpty => None,
        }
    }
}

const KEYWORDS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];

fn keyword_rank(q: &str) -> usize {
    KEYWORDS
        .iter()
        .position(|k| *k == q)
        .unwrap_or(KEYWORDS.len())
}

fn same(a: View<'_>, b: View<'_>) -> bool {
    match (a, b) {
        (View::Num(x), View::Num(y)) => x == y,
        (View::Num(x), View::NullZero) | (View::NullZero, View::Num(x)) => x.is_zero(),
        (View::Qual(x), View::Qual(y)) => x == y,
        (View::Qual(x), View::NullEmpty) | (View::NullEmpty, View::Qual(x)) => x.is_empty(),
        (View::NullZero, View::NullZero) | (View::NullEmpty, View::NullEmpty) => true,
        _ => false,
    }
}

/// Order of two tokens that are not the same.
fn cmp_tokens(sa: Sep, a: View<'_>, sb: Sep, b: View<'_>) -> Ordering {
    if sa != sb {
        // ".qualifier" < "-qualifier" < "-number" < ".number"
        let rank = |s: Sep, v: View<'_>| match (s, v.is_numeric()) {
            (Sep::Dot, false) => 0,
            (Sep::Hyphen, false) => 1,
            (Sep::Hyphen, true) => 2,
            (Sep::Dot, true) => 3,
        };
        return rank(sa, a).cmp(&rank(sb, b));
    }
    if let (Some(x), Some(y)) = (a.num(), b.num()) {
        return x.cmp(y);
    }
    if a.is_numeric() && !a.is_null() {
        return Ordering::Greater;
    }
    if b.is_numeric() && !b.is_null() {
        return Ordering::Less;
    }
    let (ta, tb) = (a.text(), b.text());
    let (ra, rb) = (keyword_rank(ta), keyword_rank(tb));
    if ra == KEYWORDS.len() && rb == KEYWORDS.len() {
        return ta.cmp(tb);
    }
    if ra < rb {
        Ordering::Less
    } else {
        Ordering::Greater
    }
}

fn view(t: &Token) -> View<'_> {
    match &t.value {
        Value::Num(n) => View::Num(n),
        Value::Qual(q) => View::Qual(q),
    }
}

fn padding(other: &Token) -> View<'static> {
    match (other.sep, &other.value) {
        (Sep::Dot, Value::Qual(q)) if &**q == "sp" => View::NullEmpty,
        (Sep::Dot, _) => View::NullZero,
        (Sep::Hyphen, _) => View::NullEmpty,
    }
}

impl Ord for MavenVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let len = self.tokens.len().max(other.tokens.len());
        for i in 0..len {
            let (sa, a, sb, b) = match (self.tokens.get(i), other.tokens.get(i)) {
                (Some(x), Some(y)) => (x.sep, view(x), y.sep, view(y)),
                (Some(x), None) => (x.sep, view(x), x.sep, padding(x)),
                (None, Some(y)) => (y.sep, padding(y), y.sep, view(y)),
                (None, None) => return Ordering::Equal,
            };
            if sa == sb && same(a, b) {
                continue;
            }
            return cmp_tokens(sa, a, sb, b);
        }
        Ordering::Equal
    }
}

super::order_from_ord!(MavenVersion);

/// Splits one `.`/`-`-delimited piece at digit/non-digit transitions.
fn pieces(raw: &str) -> Vec<(&str, bool)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev: Option<bool> = None;
    for (i, ch) in raw.char_indices() {
        let digit = ch.is_ascii_digit();
        if prev.is_some_and(|p| p != digit) {
            out.push((raw.get(start..i).unwrap_or(""), true));
            start = i;
        }
        prev = Some(digit);
    }
    out.push((raw.get(start..).unwrap_or(""), false));
    // The flag says whether the piece is followed by another piece.
    out
}

pub(super) fn parse(v: &str) -> Result<MavenVersion, String> {
    if v.is_empty() {
        return Err("empty version".into());
    }
    let lower = v.to_lowercase();
    let mut tokens = Vec::new();
    let mut sep = Sep::Dot;
    let mut rest = lower.as_str();
    loop {
        let end = rest.find(['.', '-']).unwrap_or(rest.len());
        let raw = rest.get(..end).unwrap_or("");
        for (j, (piece, followed)) in pieces(raw).into_iter().enumerate() {
            let piece_sep = if j == 0 { sep } else { Sep::Hyphen };
            let value = match piece {
                "" => Value::Num(Num::ZERO),
                p if p.bytes().all(|b| b.is_ascii_digit()) => Value::Num(Num::from_digits(p)),
                "cr" => Value::Qual("rc".into()),
                "ga" | "final" | "release" => Value::Qual("".into()),
                "a" if followed => Value::Qual("alpha".into()),
                "b" if followed => Value::Qual("beta".into()),
                "m" if followed => Value::Qual("milestone".into()),
                p => Value::Qual(p.into()),
            };
            tokens.push(Token {
                sep: piece_sep,
                value,
            });
        }
        match rest.get(end..end + 1) {
            Some(".") => sep = Sep::Dot,
            Some("-") => sep = Sep::Hyphen,
            _ => break,
        }
        rest = rest.get(end + 1..).unwrap_or("");
    }
    trim_nulls(&mut tokens);
    Ok(MavenVersion { tokens })
}

fn is_null(t: &Token) -> bool {
    match &t.value {
        Value::Num(n) => n.is_zero(),
        Value::Qual(q) => q.is_empty(),
    }
}

/// Drops trailing null tokens, then repeats before each remaining hyphen,
/// from the end to the start. The first token always stays.
fn trim_nulls(tokens: &mut Vec<Token>) {
    let mut i = tokens.len().saturating_sub(1);
    while i > 0 {
        if tokens.get(i).is_some_and(is_null) {
            tokens.remove(i);
            i -= 1;
            continue;
        }
        loop {
            match tokens.get(i) {
                Some(t) if t.sep == Sep::Hyphen => break,
                _ if i == 0 => return,
                _ => i -= 1,
            }
        }
        if i == 0 {
            return;
        }
        i -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &str) -> MavenVersion {
        parse(v).unwrap_or_else(|e| panic!("{v}: {e}"))
    }

    #[test]
    fn spec_examples() {
        assert_eq!(p("1"), p("1.0.0"));
        assert_eq!(p("1-ga"), p("1"));
        assert_eq!(p("1.0-final"), p("1"));
        assert_eq!(p("1-cr1"), p("1-rc1"));
        assert_eq!(p("1a1"), p("1-alpha-1"));
        assert!(p("1-alpha") < p("1-beta"));
        assert!(p("1-snapshot") < p("1"));
        assert!(p("1") < p("1-sp"));
        assert!(p("1-sp") < p("1.1"));
        assert!(p("1-foo") > p("1-sp"));
        assert!(p("1.foo") < p("1-foo"));
        assert!(p("1-foo") < p("1-1"));
        assert!(p("1-1") < p("1.1"));
        assert!(p("1.0.0-M1") < p("1.0.0-RC1"));
    }
}
