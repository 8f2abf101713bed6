//! PyPI versions: PEP 440 (epoch, release, pre/post/dev, local), with the
//! pre-PEP 440 "legacy" order (setuptools' `parse_version`) for strings PEP
//! 440 rejects. Legacy versions sort before every PEP 440 version, which is
//! what pip did while it still accepted them and what OSV does.

use std::cmp::Ordering;

use super::num::{cmp_padded, Num};

#[derive(Debug, Clone)]
pub(super) enum Pep440Version {
    Legacy(Vec<Box<str>>),
    Modern(Modern),
}

#[derive(Debug, Clone)]
pub(super) struct Modern {
    epoch: Num,
    release: Vec<Num>,
    /// (phase, number) with phase a=0, b=1, rc=2.
    pre: Option<(u8, Num)>,
    post: Option<Num>,
    dev: Option<Num>,
    local: Vec<LocalPart>,
}

/// Local version label segments: numbers sort after words.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum LocalPart {
    Text(Box<str>),
    Num(Num),
}

/// A cursor over the lower-cased input.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<u8> {
        self.rest().bytes().next()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.rest().as_bytes().get(offset).copied()
    }

    fn digits(&mut self) -> Option<Num> {
        let n = self.rest().bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let num = Num::from_digits(self.rest().get(..n).unwrap_or(""));
        self.pos += n;
        Some(num)
    }

    /// Consumes the longest of `words` at the cursor, after an optional
    /// separator; on failure nothing is consumed.
    fn word(&mut self, words: &[&'static str]) -> Option<&'static str> {
        let skip = usize::from(matches!(self.peek(), Some(b'-' | b'_' | b'.')));
        let rest = self.rest().get(skip..).unwrap_or("");
        let best = words
            .iter()
            .filter(|w| rest.starts_with(**w))
            .max_by_key(|w| w.len())?;
        self.pos += skip + best.len();
        Some(best)
    }

    /// The optional number after a pre/post/dev label, with its optional
    /// separator; a separator not followed by a digit is left in place.
    fn label_number(&mut self) -> Option<Num> {
        match self.peek() {
            Some(b'-' | b'_' | b'.') if self.peek_at(1).is_some_and(|b| b.is_ascii_digit()) => {
                self.pos += 1;
                self.digits()
            }
            _ => self.digits(),
        }
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

fn parse_modern(s: &str) -> Option<Modern> {
    let s = s.trim_matches(|c: char| c.is_ascii() && is_space(c as u8));
    let s = s.strip_prefix('v').unwrap_or(s);
    let mut c = Cursor { s, pos: 0 };

    let mut epoch = Num::ZERO;
    let first = c.digits()?;
    let first = if c.peek() == Some(b'!') {
        c.pos += 1;
        epoch = first;
        c.digits()?
    } else {
        first
    };
    let mut release = vec![first];
    while c.peek() == Some(b'.') && c.peek_at(1).is_some_and(|b| b.is_ascii_digit()) {
        c.pos += 1;
        release.push(c.digits()?);
    }

    let pre = c
        .word(&["a", "b", "c", "rc", "alpha", "beta", "pre", "preview"])
        .map(|label| {
            let phase = match label {
                "a" | "alpha" => 0,
                "b" | "beta" => 1,
                _ => 2,
            };
            (phase, c.label_number().unwrap_or(Num::ZERO))
        });

    let post = if c.peek() == Some(b'-') && c.peek_at(1).is_some_and(|b| b.is_ascii_digit()) {
        c.pos += 1;
        c.digits()
    } else {
        c.word(&["post", "rev", "r"])
            .map(|_| c.label_number().unwrap_or(Num::ZERO))
    };

    let dev = c
        .word(&["dev"])
        .map(|_| c.label_number().unwrap_or(Num::ZERO));

    let mut local = Vec::new();
    if c.peek() == Some(b'+') {
        c.pos += 1;
        let label = c.rest();
        for part in label.split(['-', '_', '.']) {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return None;
            }
            local.push(match Num::parse(part) {
                Some(n) => LocalPart::Num(n),
                None => LocalPart::Text(part.into()),
            });
        }
        c.pos = c.s.len();
    }

    c.rest().is_empty().then_some(Modern {
        epoch,
        release,
        pre,
        post,
        dev,
        local,
    })
}

/// setuptools' legacy key: runs of digits (zero-padded to 8), runs of
/// letters, and `-`, with a few spellings folded together.
fn parse_legacy(s: &str) -> Vec<Box<str>> {
    let mut parts: Vec<Box<str>> = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    let push = |part: String, parts: &mut Vec<Box<str>>| {
        if part.starts_with('*') {
            if part.as_str() < "*final" {
                while parts.last().is_some_and(|p| &**p == "*final-") {
                    parts.pop();
                }
            }
            while parts.last().is_some_and(|p| &**p == "00000000") {
                parts.pop();
            }
        }
        parts.push(part.into());
    };
    while i < bytes.len() {
        let b = bytes.get(i).copied().unwrap_or(0);
        let len = if b.is_ascii_digit() {
            bytes
                .iter()
                .skip(i)
                .take_while(|b| b.is_ascii_digit())
                .count()
        } else if b.is_ascii_lowercase() {
            bytes
                .iter()
                .skip(i)
                .take_while(|b| b.is_ascii_lowercase())
                .count()
        } else {
            1
        };
        let raw = s.get(i..i + len).unwrap_or("");
        i += len;
        if b.is_ascii_digit() {
            push(format!("{raw:0>8}"), &mut parts);
        } else if b.is_ascii_lowercase() || b == b'-' {
            let folded = match raw {
                "pre" | "preview" | "rc" => "c",
                "-" => "final-",
                "dev" => "@",
                other => other,
            };
            push(format!("*{folded}"), &mut parts);
        }
    }
    push("*final".to_owned(), &mut parts);
    parts
}

pub(super) fn parse(v: &str) -> Result<Pep440Version, String> {
    if v.trim().is_empty() {
        return Err("empty version".into());
    }
    let lower = v.to_ascii_lowercase();
    Ok(match parse_modern(&lower) {
        Some(m) => Pep440Version::Modern(m),
        None => Pep440Version::Legacy(parse_legacy(&lower)),
    })
}

/// Sort key pieces where "absent" sorts below or above every present value.
fn cmp_opt_low(a: &Option<Num>, b: &Option<Num>) -> Ordering {
    a.cmp(b)
}

fn cmp_opt_high(a: &Option<Num>, b: &Option<Num>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => x.cmp(y),
    }
}

impl Modern {
    /// A dev release of a final version (`1.0.dev1`) sorts before its
    /// pre-releases; otherwise a missing pre-release sorts last.
    fn pre_key(&self) -> (u8, Option<&(u8, Num)>) {
        match &self.pre {
            None if self.post.is_none() && self.dev.is_some() => (0, None),
            None => (2, None),
            Some(p) => (1, Some(p)),
        }
    }
}

impl Ord for Modern {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| cmp_padded(&self.release, &other.release))
            .then_with(|| self.pre_key().cmp(&other.pre_key()))
            .then_with(|| cmp_opt_low(&self.post, &other.post))
            .then_with(|| cmp_opt_high(&self.dev, &other.dev))
            .then_with(|| self.local.cmp(&other.local))
    }
}

super::order_from_ord!(Modern);

impl Ord for Pep440Version {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Pep440Version::Legacy(a), Pep440Version::Legacy(b)) => a.cmp(b),
            (Pep440Version::Legacy(_), Pep440Version::Modern(_)) => Ordering::Less,
            (Pep440Version::Modern(_), Pep440Version::Legacy(_)) => Ordering::Greater,
            (Pep440Version::Modern(a), Pep440Version::Modern(b)) => a.cmp(b),
        }
    }
}

super::order_from_ord!(Pep440Version);

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &str) -> Pep440Version {
        parse(v).unwrap_or_else(|e| panic!("{v}: {e}"))
    }

    #[test]
    fn pep440_spec_order() {
        let ordered = [
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.0.15",
            "1.1.dev1",
        ];
        for pair in ordered.windows(2) {
            if let [a, b] = pair {
                assert!(p(a) < p(b), "{a} < {b}");
            }
        }
    }

    #[test]
    fn spellings_normalize() {
        assert_eq!(p("1.0-ALPHA.1"), p("1.0a1"));
        assert_eq!(p("1.0.preview2"), p("1.0rc2"));
        assert_eq!(p("1.0-1"), p("1.0.post1"));
        assert_eq!(p("v1.0"), p("1.0.0"));
        assert_eq!(p("1!1.0"), p("1!1.0.0"));
        assert_eq!(p(" 1.0.dev "), p("1.0.dev0"));
        assert!(p("1!0.1") > p("2.0"));
    }

    #[test]
    fn legacy_sorts_first() {
        assert!(matches!(p("1.0-foo_bar"), Pep440Version::Legacy(_)));
        assert!(p("2013-01-01 foo") < p("0.0.1"));
        assert!(parse("  ").is_err());
    }
}
