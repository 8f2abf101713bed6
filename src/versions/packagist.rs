//! Packagist (Composer) versions, ordered like PHP's `version_compare`
//! after Composer's removal of a leading `v`: `-`, `_`, `+` are dots, a dot
//! goes between digits and non-digits, and words rank
//! `dev < alpha = a < beta = b < RC = rc < (number) < pl = p`, any other
//! word below `dev`.

use std::cmp::Ordering;

use super::num::Num;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Num(Num),
    Word(Box<str>),
}

#[derive(Debug, Clone)]
pub(super) struct PackagistVersion {
    parts: Vec<Part>,
}

/// Rank of a word part, by prefix as PHP matches it; numbers rank as `#`.
fn special_rank(word: &str) -> i8 {
    const FORMS: [(&str, i8); 10] = [
        ("dev", 0),
        ("alpha", 1),
        ("a", 1),
        ("beta", 2),
        ("b", 2),
        ("RC", 3),
        ("rc", 3),
        ("#", 4),
        ("pl", 5),
        ("p", 5),
    ];
    FORMS
        .iter()
        .find(|(form, _)| word.starts_with(form))
        .map_or(-6, |(_, rank)| *rank)
}

fn rank(p: &Part) -> i8 {
    match p {
        Part::Num(_) => special_rank("#"),
        Part::Word(w) => special_rank(w),
    }
}

fn cmp_part(a: &Part, b: &Part) -> Ordering {
    match (a, b) {
        (Part::Num(x), Part::Num(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

const HASH: Part = Part::Num(Num::ZERO);

fn cmp_parts(a: &[Part], b: &[Part]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        match cmp_part(x, y) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    // A longer version wins if it goes on with a number; otherwise its rest
    // is weighed against a bare number.
    match a.len().cmp(&b.len()) {
        Ordering::Equal => Ordering::Equal,
        Ordering::Greater => match a.get(b.len()) {
            Some(Part::Num(_)) => Ordering::Greater,
            _ => cmp_parts(a.get(b.len()..).unwrap_or(&[]), &[HASH]),
        },
        Ordering::Less => match b.get(a.len()) {
            Some(Part::Num(_)) => Ordering::Less,
            _ => cmp_parts(&[HASH], b.get(a.len()..).unwrap_or(&[])),
        },
    }
}

pub(super) fn parse(v: &str) -> Result<PackagistVersion, String> {
    let v = v.strip_prefix('v').unwrap_or(v);
    let v = v.strip_prefix('V').unwrap_or(v);
    if v.is_empty() {
        return Err("empty version".into());
    }
    let mut canon = String::with_capacity(v.len() * 2);
    let mut prev: Option<char> = None;
    for ch in v.chars() {
        let ch = if matches!(ch, '-' | '_' | '+') {
            '.'
        } else {
            ch
        };
        if let Some(p) = prev {
            let boundary = (p.is_ascii_digit() && ch != '.' && !ch.is_ascii_digit())
                || (ch.is_ascii_digit() && p != '.' && !p.is_ascii_digit());
            if boundary {
                canon.push('.');
            }
        }
        canon.push(ch);
        prev = Some(ch);
    }
    let parts = canon
        .split('.')
        .map(|p| match Num::parse(p) {
            Some(n) => Part::Num(n),
            None => Part::Word(p.into()),
        })
        .collect();
    Ok(PackagistVersion { parts })
}

impl Ord for PackagistVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_parts(&self.parts, &other.parts)
    }
}

super::order_from_ord!(PackagistVersion);

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &str) -> PackagistVersion {
        parse(v).unwrap_or_else(|e| panic!("{v}: {e}"))
    }

    #[test]
    fn php_version_compare_rules() {
        assert!(p("1.0-dev") < p("1.0a1"));
        assert!(p("1.0a1") < p("1.0b1"));
        assert!(p("1.0RC1") < p("1.0"));
        assert!(p("1.0") < p("1.0pl1"));
        assert!(p("1.0.0-stable") < p("1.0.0-dev"));
        assert_eq!(p("v1.0.0"), p("V1.0.0"));
        assert!(p("1.5") < p("1.5.1.dev100"));
        assert!(parse("").is_err());
    }
}
