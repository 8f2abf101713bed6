//! OSV advisories (schema 1.6) → [`Advisory`]. The advisory feed is the one
//! input every tenant shares, so this parser is strict about what matching
//! relies on (ids, range types, one key per range event) and names the exact
//! JSON path of anything it rejects, while ignoring fields it does not use.
//! Affected package purls are stored in canonical form, and fill in the
//! ecosystem and name of entries that give only a purl.

use std::path::Path;

use serde::Deserialize;

use super::load::LoadReport;
use super::purl::{normalize_package_name, Purl};
use super::{cvss, ErrorKind, FormatError};
use crate::model::{Advisory, AffectedPackage, AffectedRange, RangeEvent, RangeKind, Severity};

#[derive(Deserialize)]
struct RawAdvisory {
    id: String,
    modified: Option<String>,
    published: Option<String>,
    withdrawn: Option<String>,
    aliases: Option<Vec<String>>,
    related: Option<Vec<String>>,
    summary: Option<String>,
    severity: Option<Vec<RawSeverity>>,
    affected: Option<Vec<RawAffected>>,
    database_specific: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawSeverity {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

#[derive(Deserialize)]
struct RawAffected {
    package: Option<RawPackage>,
    severity: Option<Vec<RawSeverity>>,
    ranges: Option<Vec<RawRange>>,
    versions: Option<Vec<String>>,
    ecosystem_specific: Option<serde_json::Value>,
    database_specific: Option<serde_json::Value>,
}

/// `ecosystem` and `name` are optional here, not in the schema, because an
/// entry that names its package only by purl is still usable.
#[derive(Deserialize)]
struct RawPackage {
    ecosystem: Option<String>,
    name: Option<String>,
    purl: Option<String>,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(rename = "type")]
    kind: String,
    repo: Option<String>,
    /// Kept as key → string maps so that "exactly one key per event" can be
    /// checked and reported with the event's path.
    #[serde(default)]
    events: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// Parse one OSV JSON document.
pub fn parse_advisory(document: &str, bytes: &[u8]) -> Result<Advisory, FormatError> {
    let raw: RawAdvisory = FormatError::deserialize(document, bytes)?;
    let invalid = |path: String, message: String| {
        FormatError::new(document, path, ErrorKind::Invalid, message)
    };
    if raw.id.trim().is_empty() {
        return Err(invalid("id".into(), "advisory id is empty".into()));
    }
    let affected = raw
        .affected
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, a)| affected_package(document, &format!("affected[{i}]"), a))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Advisory {
        severity: severities(document, "severity", raw.severity),
        id: raw.id,
        modified: raw.modified,
        published: raw.published,
        withdrawn: raw.withdrawn,
        aliases: sorted(raw.aliases),
        related: sorted(raw.related),
        summary: raw.summary,
        affected,
        database_specific: raw.database_specific,
    })
}

/// Read and parse every OSV document under `paths` (files, directory trees,
/// osv.dev `all.zip` exports), reporting bad documents instead of stopping.
pub fn load(paths: &[impl AsRef<Path>]) -> LoadReport<Advisory> {
    super::load::load(paths, parse_advisory)
}

fn sorted(list: Option<Vec<String>>) -> Vec<String> {
    let mut list = list.unwrap_or_default();
    list.sort();
    list.dedup();
    list
}

/// Severity entries with their computed score. An unscorable vector is not
/// fatal (the advisory still matches); it is logged with its path.
fn severities(document: &str, path: &str, raw: Option<Vec<RawSeverity>>) -> Vec<Severity> {
    raw.unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let computed = match cvss::evaluate(&s.kind, &s.score) {
                Ok(score) => score,
                Err(e) => {
                    tracing::warn!(document, path = %format!("{path}[{i}]"), "{e}");
                    None
                }
            };
            Severity {
                kind: s.kind,
                vector: s.score,
                computed,
            }
        })
        .collect()
}

fn affected_package(
    document: &str,
    path: &str,
    raw: RawAffected,
) -> Result<AffectedPackage, FormatError> {
    // OSV allows a package-less entry (GIT ranges only); it then joins with
    // no component, which is the correct outcome for ecosystem matching.
    let (ecosystem, name, purl) = match raw.package {
        Some(p) => package(document, &format!("{path}.package"), p)?,
        None => (String::new(), String::new(), None),
    };
    let ranges = raw
        .ranges
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(j, r)| range(document, &format!("{path}.ranges[{j}]"), r))
        .collect::<Result<Vec<_>, _>>()?;
    let mut versions = raw.versions.unwrap_or_default();
    versions.sort();
    versions.dedup();
    Ok(AffectedPackage {
        severity: severities(document, &format!("{path}.severity"), raw.severity),
        ecosystem,
        name,
        purl,
        ranges,
        versions,
        ecosystem_specific: raw.ecosystem_specific,
        database_specific: raw.database_specific,
    })
}

/// `(ecosystem, normalized name, canonical purl)` of an affected package.
/// The purl is normalized, and fills in an ecosystem or name the entry does
/// not give; an unparsable purl is logged and dropped, since matching keys on
/// ecosystem and name and the rest of the advisory is still good.
fn package(
    document: &str,
    path: &str,
    raw: RawPackage,
) -> Result<(String, String, Option<String>), FormatError> {
    let purl = match raw.purl.as_deref().filter(|p| !p.is_empty()) {
        None => None,
        Some(text) => match Purl::parse(text) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(document, path = %format!("{path}.purl"), "{e}; purl dropped");
                None
            }
        },
    };
    let given = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    let ecosystem = given(raw.ecosystem).or_else(|| purl.as_ref().and_then(Purl::ecosystem));
    let Some(ecosystem) = ecosystem else {
        return Err(FormatError::new(
            document,
            path,
            ErrorKind::Schema,
            "package has no ecosystem and no purl of a known ecosystem",
        ));
    };
    let name = match given(raw.name) {
        Some(name) => normalize_package_name(&ecosystem, &name),
        None => match &purl {
            Some(p) => p.package_name(),
            None => {
                return Err(FormatError::new(
                    document,
                    path,
                    ErrorKind::Schema,
                    "package has no name and no purl to derive it from",
                ))
            }
        },
    };
    Ok((ecosystem, name, purl.as_ref().map(Purl::canonical)))
}

fn range(document: &str, path: &str, raw: RawRange) -> Result<AffectedRange, FormatError> {
    let invalid =
        |at: String, message: String| FormatError::new(document, at, ErrorKind::Invalid, message);
    let kind = match raw.kind.as_str() {
        "SEMVER" => RangeKind::Semver,
        "ECOSYSTEM" => RangeKind::Ecosystem,
        "GIT" => RangeKind::Git,
        other => {
            return Err(invalid(
                format!("{path}.type"),
                format!("unknown range type {other:?} (expected SEMVER, ECOSYSTEM or GIT)"),
            ))
        }
    };
    if kind == RangeKind::Git && raw.repo.as_deref().is_none_or(str::is_empty) {
        return Err(invalid(
            format!("{path}.repo"),
            "GIT range without repo".into(),
        ));
    }
    if raw.events.is_empty() {
        return Err(invalid(
            format!("{path}.events"),
            format!("{} range without events", raw.kind),
        ));
    }
    let events = raw
        .events
        .into_iter()
        .enumerate()
        .map(|(k, e)| event(&format!("{path}.events[{k}]"), e).map_err(|m| invalid(m.0, m.1)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AffectedRange {
        kind,
        repo: raw.repo,
        events,
    })
}

/// One range event: exactly one of introduced / fixed / last_affected /
/// limit, with a string value. Errors are `(path, message)`.
fn event(
    path: &str,
    raw: serde_json::Map<String, serde_json::Value>,
) -> Result<RangeEvent, (String, String)> {
    let mut entries = raw.into_iter();
    let (key, value) = match (entries.next(), entries.next()) {
        (Some(only), None) => only,
        (None, _) => return Err((path.to_string(), "empty range event".into())),
        (Some((a, _)), Some((b, _))) => {
            return Err((
                path.to_string(),
                format!("range event has more than one key ({a:?}, {b:?}); expected exactly one"),
            ))
        }
    };
    let serde_json::Value::String(version) = value else {
        return Err((
            format!("{path}.{key}"),
            format!("range event {key:?} must be a string"),
        ));
    };
    match key.as_str() {
        "introduced" => Ok(RangeEvent::Introduced(version)),
        "fixed" => Ok(RangeEvent::Fixed(version)),
        "last_affected" => Ok(RangeEvent::LastAffected(version)),
        "limit" => Ok(RangeEvent::Limit(version)),
        other => Err((
            path.to_string(),
            format!(
                "unknown range event {other:?} (expected introduced, fixed, last_affected or limit)"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(doc: &str) -> FormatError {
        match parse_advisory("t.json", doc.as_bytes()) {
            Err(e) => e,
            Ok(a) => panic!("expected an error, parsed {a:?}"),
        }
    }

    const GOOD: &str = r#"{
        "id": "TEST-1", "modified": "2024-01-01T00:00:00Z",
        "aliases": ["CVE-2", "CVE-1", "CVE-2"], "unknown_top_level": {"x": 1},
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"}],
        "affected": [{
            "package": {"ecosystem": "PyPI", "name": "Django_Rest.Framework"},
            "ranges": [
                {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2"}]},
                {"type": "GIT", "repo": "https://example.org/r.git",
                 "events": [{"introduced": "abc"}, {"last_affected": "def"}, {"limit": "f00"}]}
            ],
            "versions": ["1.1", "1.0", "1.1"],
            "ecosystem_specific": {"k": [1, 2]},
            "severity": [{"type": "Ubuntu", "score": "high"}]
        }]
    }"#;

    #[test]
    fn parses_and_normalizes() {
        let a = parse_advisory("t.json", GOOD.as_bytes()).unwrap();
        assert_eq!(a.aliases, ["CVE-1", "CVE-2"]);
        let p = &a.affected[0];
        assert_eq!(p.name, "django-rest-framework");
        assert_eq!(p.versions, ["1.0", "1.1"]);
        assert_eq!(p.ranges[1].kind, RangeKind::Git);
        assert_eq!(
            p.ranges[1].events,
            [
                RangeEvent::Introduced("abc".into()),
                RangeEvent::LastAffected("def".into()),
                RangeEvent::Limit("f00".into())
            ]
        );
        assert_eq!(p.ecosystem_specific, Some(serde_json::json!({"k": [1, 2]})));
        assert_eq!(a.severity[0].computed.map(|s| s.score), Some(6.1));
        assert_eq!(p.severity[0].computed, None);
        assert_eq!(a.max_severity().map(|s| s.score), Some(6.1));
    }

    #[test]
    fn purls_are_canonical_and_fill_in_missing_names() {
        let doc = r#"{"id": "X", "affected": [
            {"package": {"ecosystem": "npm", "name": "@Scope/Pkg", "purl": "pkg:NPM/%40Scope/Pkg"}},
            {"package": {"purl": "pkg:pypi/Django_Rest.Framework@1.0"}},
            {"package": {"ecosystem": "Maven", "name": "", "purl": "pkg:maven/org.a/b"}},
            {"package": {"ecosystem": "PyPI", "name": "x", "purl": "pkg:"}}
        ]}"#;
        let a = parse_advisory("t.json", doc.as_bytes()).unwrap();
        let got: Vec<(&str, &str, Option<&str>)> = a
            .affected
            .iter()
            .map(|p| (p.ecosystem.as_str(), p.name.as_str(), p.purl.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("npm", "@scope/pkg", Some("pkg:npm/%40scope/pkg")),
                (
                    "PyPI",
                    "django-rest-framework",
                    Some("pkg:pypi/django-rest.framework@1.0")
                ),
                ("Maven", "org.a:b", Some("pkg:maven/org.a/b")),
                ("PyPI", "x", None),
            ]
        );
    }

    #[test]
    fn reports_semantic_errors_with_paths() {
        let cases = [
            (r#"{"id": ""}"#, "id", ErrorKind::Invalid),
            (
                r#"{"id": "X", "affected": {}}"#,
                "affected",
                ErrorKind::Schema,
            ),
            (
                r#"{"id": "X", "affected": [{"package": {"ecosystem": "npm"}}]}"#,
                "affected[0].package",
                ErrorKind::Schema,
            ),
            (
                r#"{"id": "X", "affected": [{"ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}, {"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1"}, {"introduced": "2", "fixed": "3"}]}]}]}"#,
                "affected[0].ranges[1].events[2]",
                ErrorKind::Invalid,
            ),
            (
                r#"{"id": "X", "affected": [{"ranges": [{"type": "RANGE", "events": [{"introduced": "0"}]}]}]}"#,
                "affected[0].ranges[0].type",
                ErrorKind::Invalid,
            ),
            (
                r#"{"id": "X", "affected": [{"ranges": [{"type": "SEMVER"}]}]}"#,
                "affected[0].ranges[0].events",
                ErrorKind::Invalid,
            ),
            (
                r#"{"id": "X", "affected": [{"ranges": [{"type": "GIT", "events": [{"introduced": "0"}]}]}]}"#,
                "affected[0].ranges[0].repo",
                ErrorKind::Invalid,
            ),
            (
                r#"{"id": "X", "affected": [{"ranges": [{"type": "SEMVER", "events": [{}]}]}]}"#,
                "affected[0].ranges[0].events[0]",
                ErrorKind::Invalid,
            ),
            (
                r#"{"id": "X", "affected": [{"ranges": [{"type": "SEMVER", "events": [{"fixd": "1"}]}]}]}"#,
                "affected[0].ranges[0].events[0]",
                ErrorKind::Invalid,
            ),
            (
                r#"{"id": "X", "affected": [{"ranges": [{"type": "SEMVER", "events": [{"fixed": 1}]}]}]}"#,
                "affected[0].ranges[0].events[0].fixed",
                ErrorKind::Invalid,
            ),
            (
                r#"{"id": "X", "affected": [{"package": {"name": "x", "purl": "pkg:generic/x"}}]}"#,
                "affected[0].package",
                ErrorKind::Schema,
            ),
            (
                r#"{"id": "X", "affected": [{"package": {"ecosystem": "npm", "purl": "pkg:"}}]}"#,
                "affected[0].package",
                ErrorKind::Schema,
            ),
            (
                r#"{"id": "X", "aliases": "CVE-1"}"#,
                "aliases",
                ErrorKind::Schema,
            ),
            (
                r#"{"id": "X", "affected": [{"ranges": ["#,
                "affected[0].ranges",
                ErrorKind::Syntax,
            ),
            (r#"42"#, ".", ErrorKind::Schema),
            (r#"{"modified": "x"}"#, ".", ErrorKind::Schema),
        ];
        for (doc, path, kind) in cases {
            let e = err(doc);
            assert_eq!((e.path.as_str(), e.kind), (path, kind), "{doc}: {e}");
            assert_eq!(e.document, "t.json");
        }
    }
}
