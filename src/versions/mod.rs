//! Ecosystem version order and OSV range evaluation.
//!
//! An advisory says "affected from 1.2 until 1.4" in the words of one
//! package ecosystem, and only that ecosystem's rules say whether 1.3.0rc1
//! or 1.3-r2 lies in between. Each family of rules lives in its own file;
//! `Scheme` picks one for an OSV ecosystem name, `Version` is a parsed
//! version that compares cheaply, and `range` evaluates OSV `affected[]`
//! entries with them. The rules follow the ecosystems' own specifications
//! as OSV applies them (its published comparison fixtures are the tests).

/// Equality and `PartialOrd` derived from a type's `Ord`, so that "equal"
/// always means "same position in the ecosystem's order" (`1.0 == 1.0.0`).
macro_rules! order_from_ord {
    ($t:ty) => {
        impl PartialOrd for $t {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl PartialEq for $t {
            fn eq(&self, other: &Self) -> bool {
                self.cmp(other) == std::cmp::Ordering::Equal
            }
        }

        impl Eq for $t {}
    };
}
use order_from_ord;

mod apk;
mod cran;
mod dpkg;
mod maven;
mod num;
mod packagist;
mod pep440;
mod range;
mod rpm;
mod rubygems;
mod semver;

use std::cmp::Ordering;

pub use range::{CompiledAffected, RangeMatch};

/// A version ordering scheme shared by one or more OSV ecosystems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scheme {
    SemVer,
    Go,
    Pep440,
    Maven,
    RubyGems,
    NuGet,
    Packagist,
    Pub,
    Hex,
    Dpkg,
    Rpm,
    Apk,
    Cran,
    Hackage,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{scheme:?} version {version:?} is not valid: {reason}")]
pub struct VersionError {
    pub scheme: Scheme,
    pub version: String,
    pub reason: String,
}

/// A version parsed under one scheme. Comparisons are meaningful only
/// between versions of the same scheme (versions of different schemes order
/// by scheme).
///
/// Some ecosystems' own orders are not transitive for unusual strings
/// (Maven's `ComparableVersion`, e.g. `1 > 1.0.0.alpha10 > 1-incubating > 1`;
/// apk's fractional parts and invalid versions), and `Version` reproduces
/// them. Sort with [`stable_sort_by`], which never panics, rather than
/// `slice::sort`, which may panic on such input.
#[derive(Debug, Clone)]
pub struct Version {
    scheme: Scheme,
    repr: Repr,
}

#[derive(Debug, Clone)]
enum Repr {
    Semver(semver::SemverVersion),
    Hackage(semver::HackageVersion),
    Pep440(pep440::Pep440Version),
    Maven(maven::MavenVersion),
    RubyGems(rubygems::GemVersion),
    Packagist(packagist::PackagistVersion),
    Dpkg(dpkg::DpkgVersion),
    Rpm(rpm::RpmVersion),
    Apk(apk::ApkVersion),
    Cran(cran::CranVersion),
}

impl Version {
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        use Repr as R;
        match (&self.repr, &other.repr) {
            (R::Semver(a), R::Semver(b)) if self.scheme == other.scheme => a.cmp(b),
            (R::Hackage(a), R::Hackage(b)) => a.cmp(b),
            (R::Pep440(a), R::Pep440(b)) => a.cmp(b),
            (R::Maven(a), R::Maven(b)) => a.cmp(b),
            (R::RubyGems(a), R::RubyGems(b)) => a.cmp(b),
            (R::Packagist(a), R::Packagist(b)) => a.cmp(b),
            (R::Dpkg(a), R::Dpkg(b)) => a.cmp(b),
            (R::Rpm(a), R::Rpm(b)) => a.cmp(b),
            (R::Apk(a), R::Apk(b)) => a.cmp(b),
            (R::Cran(a), R::Cran(b)) => a.cmp(b),
            _ => self.scheme.cmp(&other.scheme),
        }
    }
}

order_from_ord!(Version);

impl Scheme {
    /// Scheme of an OSV ecosystem (its base name before `:`); `None` if unknown.
    ///
    /// `Root:<distro>:<release>` and `Root:<package manager>` (Root's patched
    /// images) use the scheme of the ecosystem they name.
    pub fn for_ecosystem(ecosystem: &str) -> Option<Scheme> {
        let (base, rest) = match ecosystem.split_once(':') {
            Some((base, rest)) => (base, Some(rest)),
            None => (ecosystem, None),
        };
        Some(match base {
            "crates.io"
            | "npm"
            | "Bitnami"
            | "SwiftURL"
            | "Bioconductor"
            | "ConanCenter"
            | "Docker Hardened Images"
            | "GHC"
            | "Julia" => Scheme::SemVer,
            "Go" => Scheme::Go,
            "Hex" => Scheme::Hex,
            "Pub" => Scheme::Pub,
            "PyPI" => Scheme::Pep440,
            "Maven" => Scheme::Maven,
            "RubyGems" => Scheme::RubyGems,
            "NuGet" => Scheme::NuGet,
            "Packagist" => Scheme::Packagist,
            "Debian" | "Ubuntu" => Scheme::Dpkg,
            "Red Hat" | "AlmaLinux" | "Rocky Linux" | "SUSE" | "openSUSE" | "Mageia"
            | "openEuler" | "Photon OS" | "Azure Linux" | "Mariner" => Scheme::Rpm,
            "Alpine"
            | "Wolfi"
            | "Chainguard"
            | "Alpaquita"
            | "BellSoft Hardened Containers"
            | "MinimOS" => Scheme::Apk,
            "CRAN" => Scheme::Cran,
            "Hackage" => Scheme::Hackage,
            "Root" => return rest.and_then(Scheme::for_ecosystem),
            _ => return None,
        })
    }

    pub fn parse(&self, v: &str) -> Result<Version, VersionError> {
        let repr = match self {
            Scheme::SemVer | Scheme::Go | Scheme::Hex => {
                semver::parse(v, semver::Flavor::SemVer).map(Repr::Semver)
            }
            Scheme::Pub => semver::parse(v, semver::Flavor::Pub).map(Repr::Semver),
            Scheme::NuGet => semver::parse(v, semver::Flavor::NuGet).map(Repr::Semver),
            Scheme::Hackage => semver::parse_hackage(v).map(Repr::Hackage),
            Scheme::Pep440 => pep440::parse(v).map(Repr::Pep440),
            Scheme::Maven => maven::parse(v).map(Repr::Maven),
            Scheme::RubyGems => rubygems::parse(v).map(Repr::RubyGems),
            Scheme::Packagist => packagist::parse(v).map(Repr::Packagist),
            Scheme::Dpkg => dpkg::parse(v).map(Repr::Dpkg),
            Scheme::Rpm => rpm::parse(v).map(Repr::Rpm),
            Scheme::Apk => apk::parse(v).map(Repr::Apk),
            Scheme::Cran => cran::parse(v).map(Repr::Cran),
        };
        repr.map(|repr| Version {
            scheme: *self,
            repr,
        })
        .map_err(|reason| VersionError {
            scheme: *self,
            version: v.to_owned(),
            reason,
        })
    }

    pub fn compare(&self, a: &str, b: &str) -> Result<Ordering, VersionError> {
        Ok(self.parse(a)?.cmp(&self.parse(b)?))
    }
}

/// Stable merge sort that tolerates comparators which are not a total order
/// (it then yields some permutation instead of panicking).
pub fn stable_sort_by<T>(items: &mut Vec<T>, mut cmp: impl FnMut(&T, &T) -> Ordering) {
    let n = items.len();
    let mut order: Vec<usize> = (0..n).collect();
    let mut merged: Vec<usize> = Vec::with_capacity(n);
    let mut width = 1;
    while width < n {
        merged.clear();
        for run in order.chunks(2 * width) {
            let (left, right) = run.split_at(width.min(run.len()));
            let (mut l, mut r) = (left.iter().peekable(), right.iter().peekable());
            while let (Some(&&a), Some(&&b)) = (l.peek(), r.peek()) {
                // Taking from the right only when strictly less keeps it stable.
                let right_first = match (items.get(a), items.get(b)) {
                    (Some(x), Some(y)) => cmp(y, x) == Ordering::Less,
                    _ => false,
                };
                if right_first {
                    merged.push(b);
                    r.next();
                } else {
                    merged.push(a);
                    l.next();
                }
            }
            merged.extend(l);
            merged.extend(r);
        }
        std::mem::swap(&mut order, &mut merged);
        width *= 2;
    }
    let mut slots: Vec<Option<T>> = items.drain(..).map(Some).collect();
    items.extend(
        order
            .iter()
            .filter_map(|&i| slots.get_mut(i).and_then(Option::take)),
    );
}

/// Stable ascending sort of the versions that parse (equal versions keep
/// their input order), and the errors of those that do not, in input order.
pub fn sort_versions(scheme: Scheme, lines: &[String]) -> (Vec<String>, Vec<VersionError>) {
    let mut parsed = Vec::with_capacity(lines.len());
    let mut errors = Vec::new();
    for line in lines {
        match scheme.parse(line) {
            Ok(v) => parsed.push((v, line)),
            Err(e) => errors.push(e),
        }
    }
    stable_sort_by(&mut parsed, |a, b| a.0.cmp(&b.0));
    (
        parsed.into_iter().map(|(_, line)| line.clone()).collect(),
        errors,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecosystems_map_by_base_name() {
        assert_eq!(Scheme::for_ecosystem("Debian:11"), Some(Scheme::Dpkg));
        assert_eq!(
            Scheme::for_ecosystem("Ubuntu:22.04:LTS"),
            Some(Scheme::Dpkg)
        );
        assert_eq!(Scheme::for_ecosystem("Alpine:v3.18"), Some(Scheme::Apk));
        assert_eq!(
            Scheme::for_ecosystem("Red Hat:rhel_aus:8.4::appstream"),
            Some(Scheme::Rpm)
        );
        assert_eq!(
            Scheme::for_ecosystem("SUSE:Linux Enterprise Server 15 SP5"),
            Some(Scheme::Rpm)
        );
        assert_eq!(Scheme::for_ecosystem("Azure Linux:3"), Some(Scheme::Rpm));
        assert_eq!(
            Scheme::for_ecosystem("Maven:https://maven.google.com"),
            Some(Scheme::Maven)
        );
        assert_eq!(Scheme::for_ecosystem("Root:Alpine:3.18"), Some(Scheme::Apk));
        assert_eq!(Scheme::for_ecosystem("Root:PyPI"), Some(Scheme::Pep440));
        assert_eq!(Scheme::for_ecosystem("crates.io"), Some(Scheme::SemVer));
        assert_eq!(Scheme::for_ecosystem("Go"), Some(Scheme::Go));
        assert_eq!(Scheme::for_ecosystem("pypi"), None);
        assert_eq!(Scheme::for_ecosystem("OSS-Fuzz"), None);
        assert_eq!(Scheme::for_ecosystem("Root"), None);
        assert_eq!(Scheme::for_ecosystem(""), None);
    }

    #[test]
    fn sort_is_stable_and_reports_errors_in_order() {
        let lines: Vec<String> = ["1.10.0", "v1.2", "nope", "1.2.0", "1.0.0-rc.1", "", "1.0.0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (sorted, errors) = sort_versions(Scheme::Go, &lines);
        assert_eq!(sorted, ["1.0.0-rc.1", "1.0.0", "v1.2", "1.2.0", "1.10.0"]);
        let bad: Vec<&str> = errors.iter().map(|e| e.version.as_str()).collect();
        assert_eq!(bad, ["nope", ""]);
    }

    #[test]
    fn stable_sort_survives_maven_cycles() {
        let lines: Vec<String> = ["1.0.0.Alpha10", "1-incubating", "1", "1.0.0.Alpha10", "0.9"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let m = |v: &str| Scheme::Maven.parse(v).ok();
        // The cycle is Maven's own: 1 > 1.0.0.alpha10 > 1-incubating > 1.
        assert!(m("1") > m("1.0.0.Alpha10"));
        assert!(m("1.0.0.Alpha10") > m("1-incubating"));
        assert!(m("1-incubating") > m("1"));
        let (sorted, errors) = sort_versions(Scheme::Maven, &lines);
        assert!(errors.is_empty());
        assert_eq!(sorted.len(), lines.len());
        assert_eq!(sorted.first().map(String::as_str), Some("0.9"));

        let mut numbers = vec![5, 3, 9, 1, 3, 7, 2, 8, 3, 0, 6];
        stable_sort_by(&mut numbers, |a: &i32, b: &i32| a.cmp(b));
        assert_eq!(numbers, [0, 1, 2, 3, 3, 3, 5, 6, 7, 8, 9]);
        let mut pairs = vec![(1, 'a'), (0, 'b'), (1, 'c'), (0, 'd')];
        stable_sort_by(&mut pairs, |a, b| a.0.cmp(&b.0));
        assert_eq!(pairs, [(0, 'b'), (0, 'd'), (1, 'a'), (1, 'c')]);
    }

    const ALL: [Scheme; 14] = [
        Scheme::SemVer,
        Scheme::Go,
        Scheme::Pep440,
        Scheme::Maven,
        Scheme::RubyGems,
        Scheme::NuGet,
        Scheme::Packagist,
        Scheme::Pub,
        Scheme::Hex,
        Scheme::Dpkg,
        Scheme::Rpm,
        Scheme::Apk,
        Scheme::Cran,
        Scheme::Hackage,
    ];

    proptest::proptest! {
        #[test]
        fn parsing_and_comparing_never_panic(
            a in "[0-9a-zA-Z.~^:+_!*# -]{0,12}|\\PC{0,8}",
            b in "[0-9a-zA-Z.~^:+_!*# -]{0,12}|\\PC{0,8}",
        ) {
            for scheme in ALL {
                let pa = scheme.parse(&a);
                let pb = scheme.parse(&b);
                if let (Ok(x), Ok(y)) = (&pa, &pb) {
                    proptest::prop_assert_eq!(x.cmp(y), y.cmp(x).reverse());
                    proptest::prop_assert_eq!(x.cmp(x), Ordering::Equal);
                }
                let lines = vec![a.clone(), b.clone(), a.clone()];
                let (sorted, errors) = sort_versions(scheme, &lines);
                proptest::prop_assert_eq!(sorted.len() + errors.len(), 3);
            }
        }
    }

    #[test]
    fn compare_reports_which_side_failed() {
        let err = Scheme::Cran.compare("1.0", "1.0a");
        assert!(matches!(err, Err(VersionError { ref version, .. }) if version == "1.0a"));
        assert_eq!(Scheme::Cran.compare("1.0", "1.0-1"), Ok(Ordering::Less));
    }
}
