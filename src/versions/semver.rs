//! The SemVer family: SemVer 2.0 precedence as OSV applies it (crates.io, npm,
//! Go, Hex, SwiftURL, Bitnami, ...), plus its relatives Pub (build metadata
//! breaks ties), NuGet (four numeric parts, case-insensitive labels) and
//! Hackage (any number of numeric parts, nothing else).
//!
//! OSV's comparator is deliberately lenient, and so is this one: an optional
//! leading `v`, any number of numeric parts (`1.2` is `1.2.0`), and whatever
//! follows the numeric parts is the pre-release/build tail. Numeric parts
//! beyond the scheme's limit join the tail as `.N`, which is how OSV treats
//! `1.0.0.1` for SemVer. Go versions need nothing extra: `v` is optional,
//! `+incompatible` is build metadata, and pseudo-versions
//! (`v0.0.0-20191109021931-daa7c04131f5`) order correctly as pre-releases.

use std::cmp::Ordering;

use super::num::{cmp_padded, Num};

/// How the tail after the numeric parts takes part in the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flavor {
    /// Build metadata is ignored.
    SemVer,
    /// Build metadata compares as a string after everything else.
    Pub,
    /// Four numeric parts; labels compare case-insensitively.
    NuGet,
}

impl Flavor {
    fn max_parts(self) -> usize {
        match self {
            Flavor::SemVer | Flavor::Pub => 3,
            Flavor::NuGet => 4,
        }
    }
}

/// A pre-release identifier. Numeric ones sort before alphanumeric ones.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Ident {
    Num(Num),
    Text(Box<str>),
}

#[derive(Debug, Clone)]
pub(super) struct SemverVersion {
    parts: Vec<Num>,
    /// Empty for a release (which sorts after all of its pre-releases).
    pre: Vec<Ident>,
    /// Text after the first `+`; only Pub compares it.
    build: Box<str>,
    flavor: Flavor,
}

/// The numeric parts and the raw tail of a SemVer-like string.
struct Split<'a> {
    parts: Vec<Num>,
    tail: &'a str,
}

fn split(v: &str) -> Result<Split<'_>, String> {
    let v = v.strip_prefix('v').unwrap_or(v);
    if !v.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("must start with a digit (after an optional `v`)".into());
    }
    let mut parts = Vec::new();
    let mut start = 0;
    let bytes = v.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes.get(i) {
            Some(b) if b.is_ascii_digit() => i += 1,
            Some(b'.') => {
                if start < i {
                    parts.push(Num::from_digits(v.get(start..i).unwrap_or("")));
                }
                i += 1;
                start = i;
            }
            _ => break,
        }
    }
    if start < i {
        parts.push(Num::from_digits(v.get(start..i).unwrap_or("")));
    }
    Ok(Split {
        parts,
        tail: v.get(i..).unwrap_or(""),
    })
}

pub(super) fn parse(v: &str, flavor: Flavor) -> Result<SemverVersion, String> {
    let Split { mut parts, tail } = split(v)?;
    let mut tail = tail.to_owned();
    if parts.len() > flavor.max_parts() {
        for extra in parts.drain(flavor.max_parts()..) {
            tail.push('.');
            match extra {
                Num::Small(n) => tail.push_str(&n.to_string()),
                Num::Big(digits) => tail.push_str(&digits),
            }
        }
    }
    if flavor == Flavor::NuGet {
        tail.make_ascii_lowercase();
    }
    let (pre, build) = match tail.split_once('+') {
        Some((pre, build)) => (pre, build),
        None => (tail.as_str(), ""),
    };
    let pre = pre.strip_prefix('-').unwrap_or(pre);
    let pre = if pre.is_empty() {
        Vec::new()
    } else {
        pre.split('.')
            .map(|id| match Num::parse(id) {
                Some(n) => Ident::Num(n),
                None => Ident::Text(id.into()),
            })
            .collect()
    };
    Ok(SemverVersion {
        parts,
        pre,
        build: build.into(),
        flavor,
    })
}

fn cmp_pre(a: &[Ident], b: &[Ident]) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.cmp(b),
    }
}

impl Ord for SemverVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_padded(&self.parts, &other.parts)
            .then_with(|| cmp_pre(&self.pre, &other.pre))
            .then_with(|| match self.flavor {
                Flavor::Pub => self.build.cmp(&other.build),
                Flavor::SemVer | Flavor::NuGet => Ordering::Equal,
            })
    }
}

super::order_from_ord!(SemverVersion);

/// Hackage (Haskell PVP): only numeric parts; `1.0 < 1.0.0`.
#[derive(Debug, Clone)]
pub(super) struct HackageVersion {
    parts: Vec<Num>,
}

pub(super) fn parse_hackage(v: &str) -> Result<HackageVersion, String> {
    let Split { parts, tail } = split(v)?;
    if !tail.is_empty() {
        return Err(format!("unexpected {tail:?} after the numeric parts"));
    }
    Ok(HackageVersion { parts })
}

impl Ord for HackageVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_padded(&self.parts, &other.parts).then(self.parts.len().cmp(&other.parts.len()))
    }
}

super::order_from_ord!(HackageVersion);

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str, flavor: Flavor) -> Ordering {
        parse(a, flavor)
            .and_then(|x| parse(b, flavor).map(|y| x.cmp(&y)))
            .unwrap_or_else(|e| panic!("{a} / {b}: {e}"))
    }

    #[test]
    fn go_pseudo_versions_and_incompatible() {
        let f = Flavor::SemVer;
        assert_eq!(
            cmp("v0.0.0-20191109021931-daa7c04131f5", "v0.0.1", f),
            Ordering::Less
        );
        assert_eq!(
            cmp(
                "v0.0.0-20191109021931-daa7c04131f5",
                "v0.0.0-20200101000000-aaaaaaaaaaaa",
                f
            ),
            Ordering::Less
        );
        assert_eq!(
            cmp("v1.2.4-0.20191109021931-daa7c04131f5", "v1.2.3", f),
            Ordering::Greater
        );
        assert_eq!(
            cmp("v1.2.4-0.20191109021931-daa7c04131f5", "1.2.4", f),
            Ordering::Less
        );
        assert_eq!(cmp("v2.0.0+incompatible", "2.0.0", f), Ordering::Equal);
        assert_eq!(cmp("v2.0.0+incompatible", "v2.0.1", f), Ordering::Less);
    }

    #[test]
    fn rejects_non_versions() {
        assert!(parse("", Flavor::SemVer).is_err());
        assert!(parse("v", Flavor::SemVer).is_err());
        assert!(parse("latest", Flavor::SemVer).is_err());
        assert!(parse_hackage("1.0-beta").is_err());
    }

    #[test]
    fn nuget_fourth_part_and_case() {
        assert_eq!(cmp("1.0.0.1", "1.0.0", Flavor::NuGet), Ordering::Greater);
        assert_eq!(
            cmp("1.0.0-BETA", "1.0.0-beta", Flavor::NuGet),
            Ordering::Equal
        );
    }
}
