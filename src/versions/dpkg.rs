//! Debian and Ubuntu versions, ordered as dpkg does (Debian Policy 5.6.12):
//! `[epoch:]upstream[-revision]`, the revision after the last `-`; strings
//! alternate non-digit runs (compared by a modified ASCII order in which `~`
//! sorts before everything, even the end of the string, and letters before
//! other characters) and digit runs (compared numerically).

use std::cmp::Ordering;

use super::num::Num;

#[derive(Debug, Clone)]
pub(super) struct DpkgVersion {
    epoch: Num,
    upstream: Box<str>,
    revision: Box<str>,
}

pub(super) fn parse(v: &str) -> Result<DpkgVersion, String> {
    let v = v.trim();
    if v.is_empty() {
        return Err("empty version".into());
    }
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) => (
            Num::parse(e).ok_or_else(|| format!("epoch {e:?} is not a number"))?,
            rest,
        ),
        None => (Num::ZERO, v),
    };
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((u, r)) => (u, r),
        None => (rest, ""),
    };
    if upstream.is_empty() {
        return Err("empty upstream version".into());
    }
    Ok(DpkgVersion {
        epoch,
        upstream: upstream.into(),
        revision: revision.into(),
    })
}

/// Weight of a byte in a non-digit run; `None` is the end of the run.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let digit_at = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit_at(a, i)) || (j < b.len() && !digit_at(b, j)) {
            let (ac, bc) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit_at(a, i) && digit_at(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a.get(i).cmp(&b.get(j));
            }
            i += 1;
            j += 1;
        }
        if digit_at(a, i) {
            return Ordering::Greater;
        }
        if digit_at(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

impl Ord for DpkgVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(&self.upstream, &other.upstream))
            .then_with(|| verrevcmp(&self.revision, &other.revision))
    }
}

super::order_from_ord!(DpkgVersion);

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &str) -> DpkgVersion {
        parse(v).unwrap_or_else(|e| panic!("{v}: {e}"))
    }

    #[test]
    fn policy_examples() {
        assert!(p("1.0~rc1") < p("1.0"));
        assert!(p("1.0~~") < p("1.0~"));
        assert!(p("1.0~") < p("1.0"));
        assert!(p("1.0") < p("1.0a"));
        assert!(p("1.0a") < p("1.0+"));
        assert!(p("1:0.1") > p("9.9"));
        assert!(p("2.30-1ubuntu1") > p("2.30-1"));
        assert_eq!(p("1.0-0"), p("1.0"));
        assert_eq!(p("1.001"), p("1.1"));
        assert!(p("1.2-3-4") > p("1.2-3"));
        assert!(parse("x:1.0").is_err());
        assert!(parse("-1").is_err());
    }
}
