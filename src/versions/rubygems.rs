//! RubyGems versions, as `Gem::Version` orders them: `-` means `.pre.`,
//! the version is runs of digits and runs of letters, trailing zeros of the
//! numeric head and of the rest are dropped, a letter run makes a
//! pre-release (it sorts before any number in the same place).

use std::cmp::Ordering;

use super::num::Num;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Segment {
    // Declared first: a string segment sorts before a numeric one.
    Text(Box<str>),
    Num(Num),
}

#[derive(Debug, Clone)]
pub(super) struct GemVersion {
    segments: Vec<Segment>,
}

pub(super) fn parse(v: &str) -> Result<GemVersion, String> {
    let v = v.trim();
    if !v.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("must start with a digit".into());
    }
    if let Some(bad) = v
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '-'))
    {
        return Err(format!("unexpected character {bad:?}"));
    }
    let expanded = v.replace('-', ".pre.");
    let mut segments = Vec::new();
    let bytes = expanded.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let run = if b.is_ascii_digit() {
            bytes
                .iter()
                .skip(i)
                .take_while(|b| b.is_ascii_digit())
                .count()
        } else if b.is_ascii_alphabetic() {
            bytes
                .iter()
                .skip(i)
                .take_while(|b| b.is_ascii_alphabetic())
                .count()
        } else {
            i += 1;
            continue;
        };
        let text = expanded.get(i..i + run).unwrap_or("");
        segments.push(if b.is_ascii_digit() {
            Segment::Num(Num::from_digits(text))
        } else {
            Segment::Text(text.into())
        });
        i += run;
    }
    // Canonical form: trailing zeros go from the numeric head and from the
    // rest (the part from the first letter run on), separately.
    let split = segments
        .iter()
        .position(|s| matches!(s, Segment::Text(_)))
        .unwrap_or(segments.len());
    let mut rest = segments.split_off(split);
    let is_zero = |s: &Segment| matches!(s, Segment::Num(n) if n.is_zero());
    while segments.last().is_some_and(is_zero) {
        segments.pop();
    }
    while rest.last().is_some_and(is_zero) {
        rest.pop();
    }
    segments.append(&mut rest);
    Ok(GemVersion { segments })
}

impl Ord for GemVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let zero = Segment::Num(Num::ZERO);
        let len = self.segments.len().max(other.segments.len());
        for i in 0..len {
            let a = self.segments.get(i).unwrap_or(&zero);
            let b = other.segments.get(i).unwrap_or(&zero);
            match a.cmp(b) {
                Ordering::Equal => {}
                other => return other,
            }
        }
        Ordering::Equal
    }
}

super::order_from_ord!(GemVersion);

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &str) -> GemVersion {
        parse(v).unwrap_or_else(|e| panic!("{v}: {e}"))
    }

    #[test]
    fn gem_version_rules() {
        assert_eq!(p("1.0.0"), p("1"));
        assert_eq!(p("1.0-beta"), p("1.0.pre.beta"));
        assert!(p("1.0.a") < p("1.0"));
        assert!(p("1.0.b1") < p("1.0"));
        assert!(p("1.0.a10") > p("1.0.a9"));
        assert_eq!(p("1.0.a.0"), p("1.0.a"));
        assert!(parse("v1.0").is_err());
        assert!(parse("1.0 beta").is_err());
    }
}
