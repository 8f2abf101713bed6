//! Unbounded non-negative integers for version components.
//!
//! Version strings in the wild carry numbers far beyond `u64` (date stamps
//! glued together, fuzzing fixtures with 30 digits), and every ecosystem
//! compares them by value. Small values stay inline so the common case needs
//! no allocation and compares with one integer comparison.

use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Num {
    Small(u64),
    /// Decimal digits without leading zeros, too long for `u64`.
    Big(Box<str>),
}

/// 19 decimal digits always fit in a `u64`.
const MAX_SMALL_DIGITS: usize = 19;

impl Num {
    pub(crate) const ZERO: Num = Num::Small(0);

    /// `digits` must be ASCII digits only (possibly empty, meaning zero).
    pub(crate) fn from_digits(digits: &str) -> Num {
        let trimmed = digits.trim_start_matches('0');
        if trimmed.len() <= MAX_SMALL_DIGITS {
            let mut value: u64 = 0;
            for b in trimmed.bytes() {
                value = value * 10 + u64::from(b - b'0');
            }
            Num::Small(value)
        } else {
            Num::Big(trimmed.into())
        }
    }

    /// Parses a non-empty all-ASCII-digit string.
    pub(crate) fn parse(s: &str) -> Option<Num> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| Num::from_digits(s))
    }

    pub(crate) fn is_zero(&self) -> bool {
        matches!(self, Num::Small(0))
    }
}

impl Ord for Num {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Num::Small(a), Num::Small(b)) => a.cmp(b),
            (Num::Small(_), Num::Big(_)) => Ordering::Less,
            (Num::Big(_), Num::Small(_)) => Ordering::Greater,
            (Num::Big(a), Num::Big(b)) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
        }
    }
}

impl PartialOrd for Num {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares two numeric sequences, treating missing trailing items as zero.
pub(crate) fn cmp_padded(a: &[Num], b: &[Num]) -> Ordering {
    let len = a.len().max(b.len());
    for i in 0..len {
        let x = a.get(i).unwrap_or(&Num::ZERO);
        let y = b.get(i).unwrap_or(&Num::ZERO);
        match x.cmp(y) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_numbers_compare_by_value() {
        let a = Num::from_digits("999999999999999999999999999991");
        let b = Num::from_digits("999999999999999999999999999999");
        assert!(a < b);
        assert!(Num::from_digits("18446744073709551615") > Num::from_digits("9"));
        assert_eq!(Num::from_digits("0007"), Num::Small(7));
        assert_eq!(Num::from_digits(""), Num::ZERO);
        assert_eq!(
            Num::from_digits("00000000000000000000000000001"),
            Num::Small(1)
        );
        assert!(Num::parse("").is_none());
        assert!(Num::parse("1a").is_none());
    }
}
