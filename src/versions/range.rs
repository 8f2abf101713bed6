//! OSV `affected[]` evaluation: "is this package version covered by this
//! entry?", following the schema's evaluation algorithm.
//!
//! An entry is compiled once (event versions parsed and sorted, the
//! `versions[]` list sorted for binary search) because the engine asks the
//! same entry about many component versions. A range is evaluated as the
//! schema's timeline: events sorted by version (`introduced: "0"` first),
//! each `introduced <= v` opens, each `fixed <= v` or `last_affected < v`
//! closes, and `limit` events bound the whole range from above. The entry
//! matches if any range does, or if `versions[]` lists the version.
//!
//! What cannot be evaluated is not guessed: GIT ranges need the commit
//! graph and contribute nothing; a range whose event versions do not parse
//! under the ecosystem's scheme, an ECOSYSTEM range of an ecosystem without
//! a known order, or a range without any `introduced` event is skipped and
//! counted in `unusable_ranges()`. SEMVER ranges are ordered by the
//! ecosystem's scheme when it has one (OSV's own matcher does the same, and
//! it tolerates the `v` prefixes Go uses), else by SemVer as the schema
//! defines them.

use std::cmp::Ordering;

use super::{stable_sort_by, Scheme, Version};
use crate::model::{AffectedPackage, MatchReason, RangeEvent, RangeKind};

/// Result of evaluating one version against one affected entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeMatch {
    Affected(MatchReason),
    NotAffected,
}

/// Order of kinds among events with equal versions: an interval that opens
/// and closes at the same version is empty for `fixed`, and holds that one
/// version for `last_affected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Introduced,
    LastAffected,
    Fixed,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Introduced => "introduced",
            Kind::LastAffected => "last_affected",
            Kind::Fixed => "fixed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Bound {
    /// `introduced: "0"`, before every version.
    Zero,
    At(Version),
}

#[derive(Debug, Clone)]
struct Event {
    bound: Bound,
    kind: Kind,
    text: Box<str>,
}

#[derive(Debug, Clone)]
struct Limit {
    /// `None` for a limit containing `*` (infinity).
    bound: Option<Version>,
    text: Box<str>,
}

#[derive(Debug, Clone)]
struct CompiledRange {
    index: usize,
    events: Vec<Event>,
    /// Empty means no limit (an implicit `*`).
    limits: Vec<Limit>,
}

/// An affected entry with its range event versions parsed once, so that
/// evaluating many versions against it is cheap.
#[derive(Debug, Clone)]
pub struct CompiledAffected {
    entry: usize,
    ordered: bool,
    /// The scheme all usable ranges are evaluated with.
    range_scheme: Option<Scheme>,
    ranges: Vec<CompiledRange>,
    /// `versions[]`, sorted and de-duplicated, for exact matches.
    listed: Vec<Box<str>>,
    /// `versions[]` parsed, sorted (PyPI only: PEP 440-equal versions match).
    listed_parsed: Vec<Version>,
    unusable: usize,
}

fn compile_range(index: usize, scheme: Scheme, events: &[RangeEvent]) -> Option<CompiledRange> {
    let mut compiled = Vec::with_capacity(events.len());
    let mut limits = Vec::new();
    for event in events {
        let text: Box<str> = event.version().into();
        let kind = match event {
            RangeEvent::Introduced(v) if v == "0" => {
                compiled.push(Event {
                    bound: Bound::Zero,
                    kind: Kind::Introduced,
                    text,
                });
                continue;
            }
            RangeEvent::Limit(v) => {
                let bound = if v.contains('*') {
                    None
                } else {
                    Some(scheme.parse(v).ok()?)
                };
                limits.push(Limit { bound, text });
                continue;
            }
            RangeEvent::Introduced(_) => Kind::Introduced,
            RangeEvent::Fixed(_) => Kind::Fixed,
            RangeEvent::LastAffected(_) => Kind::LastAffected,
        };
        compiled.push(Event {
            bound: Bound::At(scheme.parse(event.version()).ok()?),
            kind,
            text,
        });
    }
    if !compiled.iter().any(|e| e.kind == Kind::Introduced) {
        return None;
    }
    stable_sort_by(&mut compiled, |a, b| {
        a.bound.cmp(&b.bound).then(a.kind.cmp(&b.kind))
    });
    Some(CompiledRange {
        index,
        events: compiled,
        limits,
    })
}

impl CompiledRange {
    /// The reason `v` lies in this range, if it does.
    fn evaluate(&self, entry: usize, v: &Version) -> Option<MatchReason> {
        let below_limit = |l: &Limit| l.bound.as_ref().is_none_or(|b| v < b);
        if !self.limits.is_empty() && !self.limits.iter().any(below_limit) {
            return None;
        }
        let mut open = None;
        for (k, e) in self.events.iter().enumerate() {
            let at_or_below = match &e.bound {
                Bound::Zero => Ordering::Less,
                Bound::At(b) => b.cmp(v),
            };
            if at_or_below == Ordering::Greater {
                break;
            }
            match e.kind {
                Kind::Introduced => open = Some(k),
                Kind::Fixed => open = None,
                Kind::LastAffected if at_or_below == Ordering::Less => open = None,
                Kind::LastAffected => {}
            }
        }
        let opened_by = self.events.get(open?)?;
        let closing = open
            .and_then(|k| self.events.get(k + 1..))
            .and_then(|rest| rest.iter().find(|e| e.kind != Kind::Introduced))
            .map(|e| format!("{}: {}", e.kind.name(), e.text));
        let until = closing.or_else(|| {
            self.limits
                .iter()
                .filter_map(|l| l.bound.as_ref().map(|b| (b, l)))
                .filter(|(b, _)| v < *b)
                .min_by(|x, y| x.0.cmp(y.0))
                .map(|(_, l)| format!("limit: {}", l.text))
        });
        Some(MatchReason::Range {
            entry,
            range: self.index,
            introduced: opened_by.text.to_string(),
            until,
        })
    }
}

impl CompiledAffected {
    pub fn new(entry: &AffectedPackage, entry_index: usize) -> CompiledAffected {
        let scheme = Scheme::for_ecosystem(&entry.ecosystem);
        let has_semver = entry.ranges.iter().any(|r| r.kind == RangeKind::Semver);
        let range_scheme = scheme.or(has_semver.then_some(Scheme::SemVer));
        let mut ranges = Vec::new();
        let mut unusable = 0;
        for (index, range) in entry.ranges.iter().enumerate() {
            let usable_scheme = match range.kind {
                RangeKind::Git => continue,
                RangeKind::Ecosystem => scheme,
                RangeKind::Semver => range_scheme,
            };
            match usable_scheme.and_then(|s| compile_range(index, s, &range.events)) {
                Some(compiled) => ranges.push(compiled),
                None => unusable += 1,
            }
        }
        let mut listed: Vec<Box<str>> = entry.versions.iter().map(|v| v.as_str().into()).collect();
        listed.sort();
        listed.dedup();
        let mut listed_parsed: Vec<Version> = match scheme {
            Some(Scheme::Pep440) => entry
                .versions
                .iter()
                .filter_map(|v| Scheme::Pep440.parse(v).ok())
                .collect(),
            _ => Vec::new(),
        };
        stable_sort_by(&mut listed_parsed, Version::cmp);
        listed_parsed.dedup();
        CompiledAffected {
            entry: entry_index,
            ordered: scheme.is_some(),
            range_scheme,
            ranges,
            listed,
            listed_parsed,
            unusable,
        }
    }

    /// Whether the ecosystem has a known order (else only `versions[]` counts).
    pub fn is_ordered(&self) -> bool {
        self.ordered
    }

    /// The scheme versions are parsed with for range evaluation, if any.
    pub fn range_scheme(&self) -> Option<Scheme> {
        self.range_scheme
    }

    /// Ranges that could have been evaluated but were skipped (see the
    /// module documentation); GIT ranges are not counted.
    pub fn unusable_ranges(&self) -> usize {
        self.unusable
    }

    pub fn matches(&self, version: &str) -> RangeMatch {
        let parsed = match self.range_scheme {
            Some(s) if !self.ranges.is_empty() || !self.listed_parsed.is_empty() => {
                s.parse(version).ok()
            }
            _ => None,
        };
        self.matches_parsed(version, parsed.as_ref())
    }

    /// Like `matches`, with `version` already parsed under `range_scheme()`
    /// (or `None` if it does not parse), so that a caller evaluating one
    /// version against many entries parses it once. Allocates only to build
    /// the reason of a match.
    pub fn matches_parsed(&self, version: &str, parsed: Option<&Version>) -> RangeMatch {
        let parsed = parsed.filter(|v| Some(v.scheme()) == self.range_scheme);
        if let Some(v) = parsed {
            for range in &self.ranges {
                if let Some(reason) = range.evaluate(self.entry, v) {
                    return RangeMatch::Affected(reason);
                }
            }
        }
        let listed = self.listed.binary_search_by(|l| (**l).cmp(version)).is_ok()
            || parsed.is_some_and(|v| self.listed_parsed.binary_search(v).is_ok());
        if listed {
            RangeMatch::Affected(MatchReason::Listed { entry: self.entry })
        } else {
            RangeMatch::NotAffected
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AffectedRange;

    fn entry(
        ecosystem: &str,
        ranges: Vec<(RangeKind, Vec<RangeEvent>)>,
        versions: &[&str],
    ) -> AffectedPackage {
        AffectedPackage {
            ecosystem: ecosystem.into(),
            name: "pkg".into(),
            purl: None,
            ranges: ranges
                .into_iter()
                .map(|(kind, events)| AffectedRange {
                    kind,
                    repo: None,
                    events,
                })
                .collect(),
            versions: versions.iter().map(|v| v.to_string()).collect(),
            severity: Vec::new(),
            ecosystem_specific: None,
            database_specific: None,
        }
    }

    fn intro(v: &str) -> RangeEvent {
        RangeEvent::Introduced(v.into())
    }
    fn fixed(v: &str) -> RangeEvent {
        RangeEvent::Fixed(v.into())
    }
    fn last(v: &str) -> RangeEvent {
        RangeEvent::LastAffected(v.into())
    }
    fn limit(v: &str) -> RangeEvent {
        RangeEvent::Limit(v.into())
    }

    fn range_reason(m: &RangeMatch) -> Option<(usize, String, Option<String>)> {
        match m {
            RangeMatch::Affected(MatchReason::Range {
                range,
                introduced,
                until,
                ..
            }) => Some((*range, introduced.clone(), until.clone())),
            _ => None,
        }
    }

    #[test]
    fn multiple_pairs_in_any_order() {
        let e = entry(
            "crates.io",
            vec![(
                RangeKind::Semver,
                vec![
                    fixed("3.2.5"),
                    intro("3.0.0"),
                    fixed("1.0.2"),
                    intro("1.0.0"),
                ],
            )],
            &[],
        );
        let c = CompiledAffected::new(&e, 4);
        assert!(c.is_ordered());
        assert_eq!(c.unusable_ranges(), 0);
        assert_eq!(c.matches("0.9.0"), RangeMatch::NotAffected);
        assert_eq!(
            range_reason(&c.matches("1.0.1")),
            Some((0, "1.0.0".into(), Some("fixed: 1.0.2".into())))
        );
        assert_eq!(c.matches("1.0.2"), RangeMatch::NotAffected);
        assert_eq!(c.matches("2.0.0"), RangeMatch::NotAffected);
        assert_eq!(
            range_reason(&c.matches("3.2.4")),
            Some((0, "3.0.0".into(), Some("fixed: 3.2.5".into())))
        );
        assert_eq!(c.matches("3.2.5"), RangeMatch::NotAffected);
        assert!(matches!(
            c.matches("3.0.0"),
            RangeMatch::Affected(MatchReason::Range { entry: 4, .. })
        ));
    }

    #[test]
    fn last_affected_is_inclusive_and_limit_is_exclusive() {
        let e = entry(
            "npm",
            vec![
                (RangeKind::Semver, vec![intro("0"), last("1.2.0")]),
                (RangeKind::Semver, vec![intro("2.0.0"), limit("2.5.0")]),
            ],
            &[],
        );
        let c = CompiledAffected::new(&e, 0);
        assert_eq!(
            range_reason(&c.matches("1.2.0")),
            Some((0, "0".into(), Some("last_affected: 1.2.0".into())))
        );
        assert_eq!(c.matches("1.2.1"), RangeMatch::NotAffected);
        assert_eq!(
            range_reason(&c.matches("2.4.9")),
            Some((1, "2.0.0".into(), Some("limit: 2.5.0".into())))
        );
        assert_eq!(c.matches("2.5.0"), RangeMatch::NotAffected);
    }

    #[test]
    fn open_ended_and_star_limit() {
        let e = entry(
            "Go",
            vec![(RangeKind::Semver, vec![intro("1.2.0"), limit("*")])],
            &[],
        );
        let c = CompiledAffected::new(&e, 0);
        assert_eq!(
            range_reason(&c.matches("v99.0.0")),
            Some((0, "1.2.0".into(), None))
        );
        assert_eq!(c.matches("v1.1.9"), RangeMatch::NotAffected);
    }

    #[test]
    fn unusable_and_unordered_fall_back_to_the_list() {
        let e = entry(
            "PyPI",
            vec![
                (RangeKind::Git, vec![intro("0"), fixed("abc123")]),
                (RangeKind::Ecosystem, vec![intro("0"), fixed("")]),
                (RangeKind::Ecosystem, vec![fixed("1.0")]),
            ],
            &["0.5", "1.0.0rc1"],
        );
        let c = CompiledAffected::new(&e, 2);
        assert_eq!(c.unusable_ranges(), 2);
        assert_eq!(c.matches("0.6"), RangeMatch::NotAffected);
        assert_eq!(
            c.matches("0.5"),
            RangeMatch::Affected(MatchReason::Listed { entry: 2 })
        );
        // PEP 440-equal spelling of a listed version.
        assert_eq!(
            c.matches("1.0rc1"),
            RangeMatch::Affected(MatchReason::Listed { entry: 2 })
        );

        let unknown = entry(
            "GitHub Actions",
            vec![(RangeKind::Ecosystem, vec![intro("0"), fixed("2.0")])],
            &["1.0"],
        );
        let c = CompiledAffected::new(&unknown, 0);
        assert!(!c.is_ordered());
        assert_eq!(c.unusable_ranges(), 1);
        assert_eq!(c.matches("1.5"), RangeMatch::NotAffected);
        assert_eq!(
            c.matches("1.0"),
            RangeMatch::Affected(MatchReason::Listed { entry: 0 })
        );
    }

    #[test]
    fn unparsable_component_version_uses_only_the_list() {
        let e = entry(
            "CRAN",
            vec![(RangeKind::Ecosystem, vec![intro("0"), fixed("2.0")])],
            &["1.0beta"],
        );
        let c = CompiledAffected::new(&e, 0);
        assert_eq!(
            c.matches("1.0beta"),
            RangeMatch::Affected(MatchReason::Listed { entry: 0 })
        );
        assert_eq!(c.matches("1.1beta"), RangeMatch::NotAffected);
        assert!(matches!(
            c.matches("1.1"),
            RangeMatch::Affected(MatchReason::Range { .. })
        ));
    }

    #[test]
    fn parsed_version_of_another_scheme_is_ignored() {
        let e = entry(
            "Debian:12",
            vec![(RangeKind::Ecosystem, vec![intro("0"), fixed("1:2.0-1")])],
            &[],
        );
        let c = CompiledAffected::new(&e, 0);
        let semver = Scheme::SemVer.parse("1.0.0").ok();
        assert_eq!(
            c.matches_parsed("9.9", semver.as_ref()),
            RangeMatch::NotAffected
        );
        let dpkg = Scheme::Dpkg.parse("3.0-1").ok();
        assert!(matches!(
            c.matches_parsed("3.0-1", dpkg.as_ref()),
            RangeMatch::Affected(_)
        ));
    }

    /// `affected[]` of a real advisory in the shared corpus, read with the
    /// OSV parser, or `None` with a loud SKIP when the corpus is absent (a
    /// failure when `CI=true`).
    fn real_affected(rel: &str) -> Option<Vec<AffectedPackage>> {
        let Some(dir) = crate::samples::shared_data_dir() else {
            let msg = format!("SKIP {rel}: shared corpus not found; set RECHECK_SHARED_DIR");
            assert!(std::env::var("CI").map_or(true, |v| v != "true"), "{msg}");
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "!!!! {msg}");
            return None;
        };
        let bytes = std::fs::read(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let advisory =
            crate::formats::osv::parse_advisory(rel, &bytes).unwrap_or_else(|e| panic!("{e}"));
        Some(advisory.affected)
    }

    #[test]
    fn real_pypi_advisory_django() {
        // PYSEC-2019-16: django, ECOSYSTEM [0, 1.11.27) and [2.2, 2.2.9), plus versions[].
        let Some(affected) = real_affected("osv/pypi/PYSEC-2019-16.json") else {
            return;
        };
        let [django] = affected.as_slice() else {
            panic!("expected one affected entry, got {}", affected.len());
        };
        assert_eq!(django.name, "django");
        let mut ranges_only = django.clone();
        ranges_only.versions.clear();
        let c = CompiledAffected::new(&ranges_only, 0);
        assert!(c.is_ordered());
        assert_eq!(c.unusable_ranges(), 0);
        assert_eq!(
            range_reason(&c.matches("2.2.8")),
            Some((0, "2.2".into(), Some("fixed: 2.2.9".into())))
        );
        assert_eq!(
            range_reason(&c.matches("1.11.26")),
            Some((0, "0".into(), Some("fixed: 1.11.27".into())))
        );
        for not_affected in ["2.2.9", "1.11.27", "2.0", "2.2rc1", "3.0", "2.2.10"] {
            assert_eq!(
                c.matches(not_affected),
                RangeMatch::NotAffected,
                "{not_affected}"
            );
        }
        // Same version, other PEP 440 spellings.
        assert!(matches!(c.matches("2.2.8.0"), RangeMatch::Affected(_)));
        assert_eq!(c.matches("2.2.9.0"), RangeMatch::NotAffected);

        // The list alone (as for an unordered ecosystem) still finds listed versions.
        let c = CompiledAffected::new(django, 0);
        let listed_only = AffectedPackage {
            ranges: Vec::new(),
            ..django.clone()
        };
        let l = CompiledAffected::new(&listed_only, 7);
        assert_eq!(
            l.matches("1.8b2"),
            RangeMatch::Affected(MatchReason::Listed { entry: 7 })
        );
        assert_eq!(l.matches("2.2.9"), RangeMatch::NotAffected);
        // Every listed version is also inside the ranges.
        for v in &django.versions {
            assert!(
                matches!(
                    c.matches(v),
                    RangeMatch::Affected(MatchReason::Range { .. })
                ),
                "{v}"
            );
        }

        // The same advisory with `last_affected` in place of `fixed` (the
        // corpus has none): the named version is included, the next is not.
        let mut last_affected = ranges_only.clone();
        for range in &mut last_affected.ranges {
            for event in &mut range.events {
                if *event == RangeEvent::Fixed("2.2.9".into()) {
                    *event = RangeEvent::LastAffected("2.2.8".into());
                }
            }
        }
        let c = CompiledAffected::new(&last_affected, 0);
        assert_eq!(
            range_reason(&c.matches("2.2.8")),
            Some((0, "2.2".into(), Some("last_affected: 2.2.8".into())))
        );
        assert_eq!(c.matches("2.2.8.post1"), RangeMatch::NotAffected);
        assert_eq!(c.matches("2.2.9"), RangeMatch::NotAffected);
    }

    #[test]
    fn real_crates_advisory_with_several_pairs() {
        // RUSTSEC-2023-0001 (tokio): [1.7.0, 1.18.4), [1.19.0, 1.20.3), [1.21.0, 1.23.1).
        let Some(affected) = real_affected("osv/crates/RUSTSEC-2023-0001.json") else {
            return;
        };
        let Some(tokio) = affected.first() else {
            panic!("no affected entry");
        };
        assert_eq!(tokio.ecosystem, "crates.io");
        let c = CompiledAffected::new(tokio, 0);
        assert_eq!(c.unusable_ranges(), 0);
        for v in [
            "1.7.0",
            "1.18.3",
            "1.19.0",
            "1.20.2",
            "1.21.0",
            "1.23.0",
            "1.23.1-alpha.1",
        ] {
            assert!(matches!(c.matches(v), RangeMatch::Affected(_)), "{v}");
        }
        for v in [
            "1.6.9",
            "1.18.4",
            "1.18.5",
            "1.20.3",
            "1.23.1",
            "1.24.0",
            "1.7.0-rc.1",
        ] {
            assert_eq!(c.matches(v), RangeMatch::NotAffected, "{v}");
        }
        assert_eq!(
            range_reason(&c.matches("1.20.0")),
            Some((0, "1.19.0".into(), Some("fixed: 1.20.3".into())))
        );
    }

    #[test]
    fn real_pypi_advisory_with_empty_interval() {
        // PYSEC-2022-42972 writes [0.13.0, 0.14.0rc1) and [0.12.2, 0.13.0) in
        // one range; sorted, `introduced: 0.13.0` meets `fixed: 0.13.0`, an
        // empty interval. OSV's own versions[] stops at 0.12.6, and so do we.
        let Some(affected) = real_affected("osv/pypi/PYSEC-2022-42972.json") else {
            return;
        };
        let Some(entry) = affected.first() else {
            panic!("no affected entry");
        };
        let mut ranges_only = entry.clone();
        ranges_only.versions.clear();
        let c = CompiledAffected::new(&ranges_only, 0);
        assert_eq!(
            range_reason(&c.matches("0.12.6")),
            Some((0, "0.12.2".into(), Some("fixed: 0.13.0".into())))
        );
        for v in ["0.13.0", "0.13.5", "0.14.0rc1", "0.12.1"] {
            assert_eq!(c.matches(v), RangeMatch::NotAffected, "{v}");
        }
        assert!(!entry.versions.iter().any(|v| v.starts_with("0.13")));
    }
}
