//! Alpine (apk) versions, also used by Wolfi, Chainguard and other apk
//! distributions: `number{.number}[letter]{_suffix[number]}[~hash][-rN]`.
//! Suffixes rank `alpha < beta < pre < rc < (none) < cvs < svn < git < hg
//! < p`; number parts after the first that start with `0` compare as
//! strings (apk's "fractional" parts); the commit hash is ignored.
//!
//! apk also orders strings that do not follow that grammar, and OSV's
//! fixtures pin down how: a version with unparsable trailing text is
//! "invalid"; two invalid versions compare as plain strings, otherwise the
//! parsed prefix decides and trailing text after `-r` makes a version older.

use std::cmp::Ordering;

use super::num::Num;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    value: Num,
    digits: Box<str>,
}

#[derive(Debug, Clone)]
pub(super) struct ApkVersion {
    original: Box<str>,
    invalid: bool,
    parts: Vec<Part>,
    letter: Option<u8>,
    /// (rank, number); rank 4 is "no suffix".
    suffixes: Vec<(u8, Num)>,
    build: Num,
    /// Text left after `-rN`.
    has_remainder: bool,
}

const SUFFIXES: [(&str, u8); 10] = [
    ("alpha", 0),
    ("beta", 1),
    ("pre", 2),
    ("rc", 3),
    ("cvs", 5),
    ("svn", 6),
    ("git", 7),
    ("hg", 8),
    ("p", 9),
    ("", 4),
];
const NO_SUFFIX: u8 = 4;

fn digits_len(s: &str) -> usize {
    s.bytes().take_while(u8::is_ascii_digit).count()
}

/// A suffix (`_name[digits]`) at the start of `s`: (rank, number, length).
fn suffix_at(s: &str) -> Option<(u8, Num, usize)> {
    let body = s.strip_prefix('_')?;
    // The alternatives are tried in grammar order, so `pre` wins over `p`.
    let (name, rank) = SUFFIXES
        .iter()
        .take(9)
        .find(|(name, _)| body.starts_with(name))?;
    let after = body.get(name.len()..).unwrap_or("");
    let n = digits_len(after);
    Some((
        *rank,
        Num::from_digits(after.get(..n).unwrap_or("")),
        1 + name.len() + n,
    ))
}

pub(super) fn parse(v: &str) -> Result<ApkVersion, String> {
    if v.is_empty() {
        return Err("empty version".into());
    }
    let mut rest = v;

    // Number parts: digits, each optionally followed by one dot.
    let mut parts = Vec::new();
    loop {
        let n = digits_len(rest);
        if n == 0 {
            break;
        }
        let digits = rest.get(..n).unwrap_or("");
        parts.push(Part {
            value: Num::from_digits(digits),
            digits: digits.into(),
        });
        rest = rest.get(n..).unwrap_or("");
        match rest.strip_prefix('.') {
            Some(r) => rest = r,
            None => break,
        }
    }

    let letter = rest.bytes().next().filter(u8::is_ascii_lowercase);
    if letter.is_some() {
        rest = rest.get(1..).unwrap_or("");
    }

    // Every suffix-looking match is recorded, but only a run of them at the
    // start is consumed; anything else leaves the version invalid below.
    let mut suffixes = Vec::new();
    let mut consuming = true;
    let mut k = 0;
    while k < rest.len() {
        match rest.get(k..).and_then(suffix_at) {
            Some((rank, num, len)) => {
                suffixes.push((rank, num));
                if consuming && k == 0 {
                    rest = rest.get(len..).unwrap_or("");
                } else {
                    consuming = false;
                    k += len;
                }
            }
            None => {
                consuming = false;
                k += rest
                    .get(k..)
                    .and_then(|s| s.chars().next())
                    .map_or(1, char::len_utf8);
            }
        }
    }

    if let Some(hash) = rest.strip_prefix('~') {
        let n = hash
            .bytes()
            .take_while(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
            .count();
        if n > 0 {
            rest = hash.get(n..).unwrap_or("");
        }
    }

    let mut invalid = false;
    let mut build = Num::ZERO;
    if !rest.is_empty() {
        match rest.strip_prefix("-r") {
            Some(r) => {
                let n = digits_len(r);
                build = Num::from_digits(r.get(..n).unwrap_or(""));
                rest = r.get(n..).unwrap_or("");
            }
            None => invalid = true,
        }
    }

    Ok(ApkVersion {
        original: v.into(),
        invalid,
        parts,
        letter,
        suffixes,
        build,
        has_remainder: !rest.is_empty(),
    })
}

/// Part `index` of two versions; a missing part is zero. Past the first
/// part, a part with a leading zero makes the comparison a string one.
fn cmp_part(index: usize, a: Option<&Part>, b: Option<&Part>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => {
            if index > 0 && (a.digits.starts_with('0') || b.digits.starts_with('0')) {
                a.digits.cmp(&b.digits)
            } else {
                a.value.cmp(&b.value)
            }
        }
        (Some(a), None) => a.value.cmp(&Num::ZERO),
        (None, Some(b)) => Num::ZERO.cmp(&b.value),
        (None, None) => Ordering::Equal,
    }
}

impl Ord for ApkVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        if self.invalid && other.invalid {
            return self.original.cmp(&other.original);
        }
        let parts = self.parts.len().max(other.parts.len());
        for i in 0..parts {
            match cmp_part(i, self.parts.get(i), other.parts.get(i)) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        match (self.letter, other.letter) {
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (a, b) => match a.cmp(&b) {
                Ordering::Equal => {}
                o => return o,
            },
        }
        let none = (NO_SUFFIX, Num::ZERO);
        let suffixes = self.suffixes.len().max(other.suffixes.len());
        for i in 0..suffixes {
            let a = self.suffixes.get(i).unwrap_or(&none);
            let b = other.suffixes.get(i).unwrap_or(&none);
            match a.cmp(b) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        self.build
            .cmp(&other.build)
            .then(other.has_remainder.cmp(&self.has_remainder))
    }
}

super::order_from_ord!(ApkVersion);

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &str) -> ApkVersion {
        parse(v).unwrap_or_else(|e| panic!("{v}: {e}"))
    }

    #[test]
    fn apk_grammar() {
        assert!(p("1.2_rc1") < p("1.2"));
        assert!(p("1.2") < p("1.2_cvs"));
        assert!(p("1.2_p1") > p("1.2_hg5"));
        assert!(p("1.2.3-r1") < p("1.2.3-r10"));
        assert!(p("1.2.3a") > p("1.2.3"));
        assert!(p("1.02") < p("1.1"));
        assert_eq!(p("1.0~abc123-r2"), p("1.0-r2"));
        assert!(p("2.10") > p("2.9"));
        assert!(parse("").is_err());
    }
}
