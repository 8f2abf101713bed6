//! RPM versions (Red Hat, AlmaLinux, Rocky, SUSE, openSUSE, Mageia,
//! openEuler, Photon OS, Azure Linux): `[epoch:]version[-release]`, each
//! part compared with `rpmvercmp`: runs of digits and of ASCII letters,
//! everything else a separator, `~` sorting before anything (even the end)
//! and `^` after the end but before anything else.
//!
//! As in OSV, the release begins at the first `-` and keeps it, and a
//! missing part sorts before a present one, so `1 < 1-1`.

use std::cmp::Ordering;

#[derive(Debug, Clone)]
pub(super) struct RpmVersion {
    epoch: Box<str>,
    version: Box<str>,
    release: Box<str>,
}

pub(super) fn parse(v: &str) -> Result<RpmVersion, String> {
    if v.is_empty() {
        return Err("empty version".into());
    }
    let (epoch, vr) = match v.split_once(':') {
        Some((e, vr)) if e.bytes().all(|b| b.is_ascii_digit()) => (e, vr),
        _ => ("", v),
    };
    let (version, release) = match vr.find('-') {
        Some(i) => (vr.get(..i).unwrap_or(""), vr.get(i..).unwrap_or("")),
        None => (vr, ""),
    };
    Ok(RpmVersion {
        epoch: if epoch.is_empty() { "0" } else { epoch }.into(),
        version: version.into(),
        release: release.into(),
    })
}

fn is_separator(b: u8) -> bool {
    !b.is_ascii_alphanumeric() && b != b'~' && b != b'^'
}

fn rpmvercmp(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        _ => {}
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    loop {
        while a.get(i).is_some_and(|&c| is_separator(c)) {
            i += 1;
        }
        while b.get(j).is_some_and(|&c| is_separator(c)) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if ca == Some(b'^') || cb == Some(b'^') {
            if ca.is_none() {
                return Ordering::Less;
            }
            if cb.is_none() {
                return Ordering::Greater;
            }
            if ca != Some(b'^') {
                return Ordering::Greater;
            }
            if cb != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        let (Some(first), Some(_)) = (ca, cb) else {
            break;
        };
        let numeric = first.is_ascii_digit();
        let same_kind = |c: &u8| {
            if numeric {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        };
        let la = a.iter().skip(i).take_while(|c| same_kind(c)).count();
        let lb = b.iter().skip(j).take_while(|c| same_kind(c)).count();
        if lb == 0 {
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let mut sa = a.get(i..i + la).unwrap_or(&[]);
        let mut sb = b.get(j..j + lb).unwrap_or(&[]);
        i += la;
        j += lb;
        if numeric {
            while sa.first() == Some(&b'0') {
                sa = sa.get(1..).unwrap_or(&[]);
            }
            while sb.first() == Some(&b'0') {
                sb = sb.get(1..).unwrap_or(&[]);
            }
            match sa.len().cmp(&sb.len()) {
                Ordering::Equal => {}
                other => return other,
            }
        }
        match sa.cmp(sb) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    (a.len() - i.min(a.len())).cmp(&(b.len() - j.min(b.len())))
}

impl Ord for RpmVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        rpmvercmp(&self.epoch, &other.epoch)
            .then_with(|| rpmvercmp(&self.version, &other.version))
            .then_with(|| rpmvercmp(&self.release, &other.release))
    }
}

super::order_from_ord!(RpmVersion);

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &str) -> RpmVersion {
        parse(v).unwrap_or_else(|e| panic!("{v}: {e}"))
    }

    #[test]
    fn rpmvercmp_rules() {
        assert!(p("1.0~rc1") < p("1.0"));
        assert!(p("1.0") < p("1.0^git1"));
        assert!(p("1.0^git1") < p("1.0.1"));
        assert!(p("1:1.0") > p("2.0"));
        assert!(p("1.0-1.el8") < p("1.0-2.el8"));
        assert!(p("1.10") > p("1.9"));
        assert!(p("1.0a") > p("1.0"));
        assert!(p("1.0") > p("1.a"));
        assert_eq!(p("1_0"), p("1.0"));
        assert!(p("7.4.0-20.el8_10.1") > p("7.4.0-20.el8"));
        assert!(parse("").is_err());
    }
}
