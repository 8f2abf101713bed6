//! purl-spec version range specifiers (`vers:npm/>=1.0.0|<2.0.0`), the range
//! notation of CycloneDX `affects[].versions[].range`. A range is parsed into
//! constraints sorted under the versioning scheme's own order, validated the
//! way the specification asks (unique versions, alternating bounds), and then
//! answers "is this version in the range" with the ecosystem comparators of
//! [`crate::versions`].
//!
//! Choices the specification leaves open or gets wrong:
//! - A list with a single `<`/`<=`/`>`/`>=` bound is an open interval; the
//!   specification's pairwise walk has no pair for it and would leave it empty.
//! - A list of only `!=` constraints is "every version but these".
//! - `=` followed by `<`/`<=` is rejected as the specification says, even
//!   though CycloneDX's own example writes `2.7.0|<2.8.11.1` meaning "from
//!   2.7.0": read as specified it would mean "anything below 2.8.11.1", and
//!   guessing the intent is not our call.
//! - `generic` and the semver-like types compare as SemVer (OSV's lenient
//!   flavour: any number of numeric parts); `all/*` and `none/*` are the full
//!   and the empty range.

use std::fmt;

use crate::versions::{stable_sort_by, Scheme, Version};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Comparator {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Comparator {
    pub fn as_str(self) -> &'static str {
        match self {
            Comparator::Eq => "",
            Comparator::Ne => "!=",
            Comparator::Lt => "<",
            Comparator::Le => "<=",
            Comparator::Gt => ">",
            Comparator::Ge => ">=",
        }
    }

    fn is_lower_bound(self) -> bool {
        matches!(self, Comparator::Gt | Comparator::Ge)
    }

    fn is_upper_bound(self) -> bool {
        matches!(self, Comparator::Lt | Comparator::Le)
    }
}

/// One `<comparator><version>` of a range, with the version as written
/// (percent-decoded) and as parsed under the range's scheme.
#[derive(Debug, Clone)]
pub struct Constraint {
    pub comparator: Comparator,
    pub version: String,
    parsed: Version,
}

#[derive(Debug, Clone)]
enum Set {
    All,
    Nothing,
    /// Sorted by version, versions unique.
    Constraints(Scheme, Vec<Constraint>),
}

/// A parsed, validated `vers:` range.
#[derive(Debug, Clone)]
pub struct VersRange {
    versioning_scheme: String,
    set: Set,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid version range {input:?}: {reason}")]
pub struct VersError {
    pub input: String,
    pub reason: String,
}

/// Version order of a `vers` versioning scheme, which by convention is the
/// purl type of the ecosystem.
pub fn scheme_for(versioning_scheme: &str) -> Option<Scheme> {
    Some(match versioning_scheme {
        "generic" | "semver" | "npm" | "cargo" | "swift" | "conan" | "bitnami" | "github" => {
            Scheme::SemVer
        }
        "golang" => Scheme::Go,
        "pypi" => Scheme::Pep440,
        "maven" => Scheme::Maven,
        "gem" => Scheme::RubyGems,
        "nuget" => Scheme::NuGet,
        "composer" => Scheme::Packagist,
        "pub" => Scheme::Pub,
        "hex" => Scheme::Hex,
        "deb" => Scheme::Dpkg,
        "rpm" => Scheme::Rpm,
        "apk" | "alpine" => Scheme::Apk,
        "cran" => Scheme::Cran,
        "hackage" => Scheme::Hackage,
        _ => return None,
    })
}

impl VersRange {
    pub fn parse(input: &str) -> Result<VersRange, VersError> {
        let err = |reason: String| VersError {
            input: input.to_string(),
            reason,
        };
        let s: String = input.chars().filter(|c| !matches!(c, ' ' | '\t')).collect();
        if let Some(c) = s.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(err(format!("{c:?} is not a printable ASCII character")));
        }
        let Some((uri_scheme, rest)) = s.split_once(':') else {
            return Err(err("missing `vers:` prefix".into()));
        };
        if uri_scheme != "vers" {
            return Err(err(format!(
                "URI scheme must be `vers`, found {uri_scheme:?}"
            )));
        }
        let Some((versioning_scheme, constraints)) = rest.split_once('/') else {
            return Err(err("missing `/` after the versioning scheme".into()));
        };
        if versioning_scheme.is_empty() {
            return Err(err("empty versioning scheme".into()));
        }
        if versioning_scheme.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(err("the versioning scheme must be lower-case".into()));
        }
        if constraints.is_empty() {
            return Err(err("no constraints".into()));
        }
        let set = if constraints == "*" {
            match versioning_scheme {
                "none" => Set::Nothing,
                _ => Set::All,
            }
        } else if constraints.contains('*') {
            return Err(err("`*` must stand alone".into()));
        } else if matches!(versioning_scheme, "all" | "none") {
            return Err(err(format!(
                "`{versioning_scheme}` takes only the `*` constraint"
            )));
        } else {
            let Some(scheme) = scheme_for(versioning_scheme) else {
                return Err(err(format!(
                    "unknown versioning scheme {versioning_scheme:?}"
                )));
            };
            Set::Constraints(scheme, parse_constraints(scheme, constraints).map_err(err)?)
        };
        Ok(VersRange {
            versioning_scheme: versioning_scheme.to_string(),
            set,
        })
    }

    pub fn versioning_scheme(&self) -> &str {
        &self.versioning_scheme
    }

    /// The comparison scheme, `None` for `all/*` and `none/*`.
    pub fn scheme(&self) -> Option<Scheme> {
        match &self.set {
            Set::Constraints(scheme, _) => Some(*scheme),
            Set::All | Set::Nothing => None,
        }
    }

    /// The constraints in version order (empty for `*`).
    pub fn constraints(&self) -> &[Constraint] {
        match &self.set {
            Set::Constraints(_, list) => list,
            Set::All | Set::Nothing => &[],
        }
    }

    /// Whether the range is a finite list of versions (only `=` constraints),
    /// so that naming those versions states all of it.
    pub fn is_enumeration(&self) -> bool {
        match &self.set {
            Set::Constraints(_, list) => list.iter().all(|c| c.comparator == Comparator::Eq),
            Set::All => false,
            Set::Nothing => true,
        }
    }

    /// Whether `version` is in the range; an error when it is not a version
    /// of the range's scheme.
    pub fn contains(&self, version: &str) -> Result<bool, VersError> {
        let (scheme, list) = match &self.set {
            Set::All => return Ok(true),
            Set::Nothing => return Ok(false),
            Set::Constraints(scheme, list) => (*scheme, list),
        };
        let tested = scheme.parse(version).map_err(|e| VersError {
            input: self.to_string(),
            reason: e.to_string(),
        })?;
        Ok(contains_parsed(list, &tested))
    }
}

fn contains_parsed(list: &[Constraint], tested: &Version) -> bool {
    for c in list {
        if c.parsed == *tested {
            match c.comparator {
                Comparator::Eq | Comparator::Le | Comparator::Ge => return true,
                Comparator::Ne => return false,
                Comparator::Lt | Comparator::Gt => {}
            }
        }
    }
    let bounds: Vec<&Constraint> = list
        .iter()
        .filter(|c| !matches!(c.comparator, Comparator::Eq | Comparator::Ne))
        .collect();
    if bounds.is_empty() {
        return list.iter().all(|c| c.comparator == Comparator::Ne) && !list.is_empty();
    }
    if let Some(first) = bounds.first() {
        if first.comparator.is_upper_bound() && *tested < first.parsed {
            return true;
        }
    }
    if let Some(last) = bounds.last() {
        if last.comparator.is_lower_bound() && *tested > last.parsed {
            return true;
        }
    }
    bounds.windows(2).any(|pair| match pair {
        [low, high] => {
            low.comparator.is_lower_bound()
                && high.comparator.is_upper_bound()
                && *tested > low.parsed
                && *tested < high.parsed
        }
        _ => false,
    })
}

fn parse_constraints(scheme: Scheme, text: &str) -> Result<Vec<Constraint>, String> {
    let mut list = Vec::new();
    for raw in text.split('|').filter(|c| !c.is_empty()) {
        let (comparator, version) = [
            (">=", Comparator::Ge),
            ("<=", Comparator::Le),
            ("!=", Comparator::Ne),
            ("<", Comparator::Lt),
            (">", Comparator::Gt),
            ("=", Comparator::Eq),
        ]
        .iter()
        .find_map(|(prefix, cmp)| raw.strip_prefix(prefix).map(|v| (*cmp, v)))
        .unwrap_or((Comparator::Eq, raw));
        if version.is_empty() {
            return Err(format!("constraint {raw:?} has no version"));
        }
        let version = percent_decode(version)?;
        if version.contains(['<', '>', '=', '!']) {
            return Err(format!("constraint {raw:?} has more than one comparator"));
        }
        let parsed = scheme.parse(&version).map_err(|e| e.to_string())?;
        list.push(Constraint {
            comparator,
            version,
            parsed,
        });
    }
    if list.is_empty() {
        return Err("no constraints".into());
    }
    stable_sort_by(&mut list, |a, b| a.parsed.cmp(&b.parsed));
    for pair in list.windows(2) {
        if let [a, b] = pair {
            if a.parsed == b.parsed {
                return Err(format!(
                    "version {:?} occurs more than once ({:?} and {:?})",
                    b.version, a.version, b.version
                ));
            }
        }
    }
    let without_ne: Vec<&Constraint> = list
        .iter()
        .filter(|c| c.comparator != Comparator::Ne)
        .collect();
    for pair in without_ne.windows(2) {
        if let [a, b] = pair {
            if a.comparator == Comparator::Eq && b.comparator.is_upper_bound() {
                return Err(format!(
                    "{} is followed by the upper bound {}{} (an `=` must be followed by `=`, `>` \
                     or `>=`)",
                    a.version,
                    b.comparator.as_str(),
                    b.version
                ));
            }
        }
    }
    let bounds: Vec<&Constraint> = without_ne
        .into_iter()
        .filter(|c| c.comparator != Comparator::Eq)
        .collect();
    for pair in bounds.windows(2) {
        if let [a, b] = pair {
            if a.comparator.is_lower_bound() == b.comparator.is_lower_bound() {
                return Err(format!(
                    "bounds must alternate between lower and upper: {}{} is followed by {}{}",
                    a.comparator.as_str(),
                    a.version,
                    b.comparator.as_str(),
                    b.version
                ));
            }
        }
    }
    Ok(list)
}

fn percent_decode(s: &str) -> Result<String, String> {
    if !s.contains('%') {
        return Ok(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-encoding in {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} does not decode to UTF-8"))
}

/// The canonical form: constraints in version order, `|`-joined, with
/// separator and comparator characters, spaces, control and non-ASCII
/// characters in versions percent-encoded.
impl fmt::Display for VersRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vers:{}/", self.versioning_scheme)?;
        match &self.set {
            Set::All | Set::Nothing => f.write_str("*"),
            Set::Constraints(_, list) => {
                for (i, c) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str("|")?;
                    }
                    f.write_str(c.comparator.as_str())?;
                    for &b in c.version.as_bytes() {
                        // What parsing would strip or reject must stay encoded.
                        if b.is_ascii_graphic() && !b"%<>=!*|".contains(&b) {
                            write!(f, "{}", char::from(b))?;
                        } else {
                            write!(f, "%{b:02X}")?;
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(s: &str) -> VersRange {
        VersRange::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn members(s: &str, versions: &[&str]) -> Vec<bool> {
        let r = range(s);
        versions
            .iter()
            .map(|v| r.contains(v).unwrap_or_else(|e| panic!("{e}")))
            .collect()
    }

    #[test]
    fn intervals_bounds_and_exclusions() {
        let probe = [
            "1.0.0", "1.5.0", "2.0.0", "3.0.0", "6.9.9", "7.0.0", "8.0.0",
        ];
        assert_eq!(
            members("vers:semver/<7.0.0|>=1.5.0", &probe),
            [false, true, true, true, true, false, false]
        );
        assert_eq!(
            members("vers:semver/<1.5.0|>=7.0.0", &probe),
            [true, false, false, false, false, true, true]
        );
        assert_eq!(
            members(
                "vers:npm/1.0.0|>=2.0.0|<3.0.0|!=2.5.0",
                &["1.0.0", "1.5.0", "2.5.0", "2.6.0", "3.0.0"]
            ),
            [true, false, false, true, false]
        );
        assert_eq!(
            members("vers:npm/<2.0.0", &["1.0.0", "2.0.0"]),
            [true, false]
        );
        assert_eq!(
            members("vers:npm/>2.0.0", &["2.0.0", "2.0.1"]),
            [false, true]
        );
        assert_eq!(
            members("vers:npm/!=2.0.0", &["2.0.0", "2.0.1"]),
            [false, true]
        );
        assert_eq!(members("vers:deb/*", &["1:2.3-4"]), [true]);
        assert_eq!(members("vers:all/*", &["anything"]), [true]);
        assert_eq!(members("vers:none/*", &["anything"]), [false]);
        assert_eq!(
            members(
                "vers:generic/>=2.9|<=4.1",
                &["2.8", "2.9", "3.10", "4.1", "4.2"]
            ),
            [false, true, true, true, false]
        );
    }

    #[test]
    fn each_scheme_uses_its_ecosystem_order() {
        assert_eq!(
            members("vers:pypi/>=1.0|<2.0", &["1.0rc1", "1.0.post1", "2.0a1"]),
            [false, true, true]
        );
        assert_eq!(
            members(
                "vers:maven/>=1.0|<2.0",
                &["1.0-SNAPSHOT", "1.0-sp1", "2.0-alpha"]
            ),
            [false, true, true]
        );
        assert_eq!(
            members("vers:deb/>=1:1.0|<1:2.0", &["1.5", "1:1.5", "1:2.0~rc1"]),
            [false, true, true]
        );
        assert_eq!(range("vers:golang/>=v1.2.0").scheme(), Some(Scheme::Go));
        assert!(range("vers:pypi/1.0|2.0pre1").is_enumeration());
        assert!(!range("vers:pypi/1.0|>2.0").is_enumeration());
    }

    #[test]
    fn normalizes_to_the_canonical_form() {
        let r = range(" vers:npm/ <  5.0.0 | >= 2.0.0 ||1.2.3| ");
        assert_eq!(r.to_string(), "vers:npm/1.2.3|>=2.0.0|<5.0.0");
        assert_eq!(
            range("vers:maven/1.0%7Cx").to_string(),
            "vers:maven/1.0%7Cx"
        );
        assert_eq!(
            range("vers:maven/1.0%7Cx").constraints()[0].version,
            "1.0|x"
        );
        assert_eq!(range(&r.to_string()).to_string(), r.to_string());
    }

    #[test]
    fn rejects_what_the_specification_rejects() {
        for bad in [
            "",
            "npm/1.0",
            "VERS:npm/1.0",
            "vers:NPM/1.0",
            "vers:npm",
            "vers:/1.0",
            "vers:npm/",
            "vers:npm/||",
            "vers:npm/*|1.0",
            "vers:npm/>=",
            "vers:npm/>=1.0|>=2.0",
            "vers:npm/<1.0|<2.0",
            "vers:semver/2.7.0|<2.8.11.1",
            "vers:npm/1.0|!=1.5|<=2.0",
            "vers:npm/1.0|=1.0.0",
            "vers:npm/>>1.0",
            "vers:npm/1.0%zz",
            "vers:npm/%ff",
            "vers:npm/not-a-version",
            "vers:unknown/1.0",
            "vers:all/1.0",
            "vers:npm/1.0\u{7f}",
        ] {
            assert!(VersRange::parse(bad).is_err(), "{bad:?} must be rejected");
        }
        let r = range("vers:npm/>=1.0.0");
        assert!(r.contains("x").is_err());
    }
}
