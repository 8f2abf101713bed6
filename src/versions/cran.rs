//! CRAN (and R's `package_version`): non-negative integers separated by `.`
//! or `-`, compared part by part; with equal common parts the longer
//! version is newer (`1.8 < 1.8.0`).

use std::cmp::Ordering;

use super::num::{cmp_padded, Num};

#[derive(Debug, Clone)]
pub(super) struct CranVersion {
    parts: Vec<Num>,
}

pub(super) fn parse(v: &str) -> Result<CranVersion, String> {
    if v.is_empty() {
        return Err("empty version".into());
    }
    let parts = v
        .split(['.', '-'])
        .map(|p| Num::parse(p).ok_or_else(|| format!("part {p:?} is not a number")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CranVersion { parts })
}

impl Ord for CranVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_padded(&self.parts, &other.parts).then(self.parts.len().cmp(&other.parts.len()))
    }
}

super::order_from_ord!(CranVersion);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dash_is_a_separator_and_length_breaks_ties() {
        let p = |v: &str| parse(v).unwrap_or_else(|e| panic!("{v}: {e}"));
        assert!(p("0.1-1") < p("0.1-4"));
        assert_eq!(p("0.3-2"), p("0.3.2"));
        assert!(p("1.8") < p("1.8.0"));
        assert!(parse("1.0a").is_err());
        assert!(parse("1..0").is_err());
    }
}
