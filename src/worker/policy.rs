//! The built-in policy evaluator: an artifact's current findings (its stored
//! impact snapshot) against a declarative policy file, giving a verdict and an
//! explain trace that says, finding by finding, why.
//!
//! The policy is TOML (parsed with the `toml` crate):
//!
//! ```toml
//! default = "pass"            # verdict of an active finding no rule matches
//!
//! [[rule]]                    # first matching rule decides; all fields optional
//! name = "critical-in-prod"
//! verdict = "fail"            # pass | warn | fail
//! min_severity = "high"       # none | low | medium | high | critical
//! min_cvss = 7.0              # highest CVSS base score of the advisory
//! fix_available = true        # the matched range ends in a `fixed` event
//! vex_status = ["affected", "under_investigation", "none"]   # none = no VEX
//! runtime = ["running", "deployed"]                         # artifact runtime state
//!
//! [[allow]]                   # allow-list: the finding does not count
//! vulnerability = "CVE-2024-1234"   # or advisory = "GHSA-…"; at least one
//! purl = "pkg:pypi/jinja2"          # optional: with or without version
//! artifact = "sha256:…"             # optional
//! expires = "2027-01-01T00:00:00Z"  # RFC 3339, required
//! reason = "mitigated by WAF"
//! ```
//!
//! Suppressed findings (a VEX `not_affected`/`fixed` applies) never count.
//! Allow-list expiry is compared with the job's window close time, not the
//! wall clock, so evaluating the same window again gives the same verdict.
//! The policy version is the sha256 of the parsed policy's canonical JSON:
//! reformatting the file or reordering keys does not change it, changing a
//! threshold does.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::attest::canonical;
use crate::model::{
    FindingStatus, ImpactFinding, MatchReason, Rating, RuntimeState, Verdict, VexStatus,
};

/// The policy `recheck serve` uses without `--policy`: fail an artifact on a
/// critical or high finding that has a fix to take, warn on any other
/// finding still affected; VEX-suppressed findings pass (as in every policy).
pub const DEFAULT_POLICY: &str = r#"default = "warn"

[[rule]]
name = "high-or-critical-with-fix"
verdict = "fail"
min_severity = "high"
fix_available = true
"#;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policy file: {0}")]
    Parse(String),
    #[error("policy: {0}")]
    Invalid(String),
}

/// A VEX status condition: one of the VEX statuses, or `none` (no statement
/// applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VexCondition {
    None,
    NotAffected,
    Affected,
    Fixed,
    UnderInvestigation,
}

impl VexCondition {
    fn of(status: Option<VexStatus>) -> VexCondition {
        match status {
            None => VexCondition::None,
            Some(VexStatus::NotAffected) => VexCondition::NotAffected,
            Some(VexStatus::Affected) => VexCondition::Affected,
            Some(VexStatus::Fixed) => VexCondition::Fixed,
            Some(VexStatus::UnderInvestigation) => VexCondition::UnderInvestigation,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<Rating>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_cvss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix_available: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vex_status: Option<Vec<VexCondition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Vec<RuntimeState>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advisory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vulnerability: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    /// RFC 3339 (kept as written; parsed on load).
    pub expires: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default = "default_verdict")]
    pub default: Verdict,
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
    #[serde(default, rename = "allow")]
    pub allow: Vec<AllowEntry>,
}

fn default_verdict() -> Verdict {
    Verdict::Pass
}

/// What the evaluator knows about the artifact besides its findings.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalContext {
    pub runtime: RuntimeState,
    /// The job's window close time: "now" for allow-list expiry.
    pub as_of: DateTime<Utc>,
    /// Highest CVSS base score per advisory id (absent: not scored).
    pub cvss: BTreeMap<String, f64>,
}

/// One finding's line of the explain trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceEntry {
    pub advisory: String,
    pub vulnerability: String,
    /// `package@version` in its ecosystem.
    pub component: String,
    pub ecosystem: String,
    pub purl: Option<String>,
    /// The range event that matched, e.g. `range 0 of entry 1: introduced 0, fixed: 2.3`.
    pub matched: String,
    pub severity: Option<Rating>,
    pub cvss: Option<f64>,
    pub fix_available: bool,
    /// The VEX statement that applies, if any.
    pub vex: Option<VexTrace>,
    /// `suppressed by VEX`, `allowed until …`, `rule <name>` or `default`.
    pub decided_by: String,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VexTrace {
    pub status: VexStatus,
    pub justification: Option<String>,
    pub source: Option<String>,
    pub suppressed: bool,
}

/// The evaluator's result. `trace` is sorted like the findings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub verdict: Verdict,
    pub runtime: RuntimeState,
    pub trace: Vec<TraceEntry>,
}

impl Evaluation {
    /// The digest the completion statement carries.
    pub fn trace_sha256(&self) -> Result<String, crate::attest::AttestError> {
        canonical::sha256_hex(self)
    }
}

/// A loaded policy with its version.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedPolicy {
    pub policy: Policy,
    /// sha256 hex of the canonical JSON of `policy`.
    pub version: String,
    expiries: Vec<DateTime<Utc>>,
}

impl LoadedPolicy {
    pub fn parse(text: &str) -> Result<LoadedPolicy, PolicyError> {
        let policy: Policy = toml::from_str(text).map_err(|e| PolicyError::Parse(e.to_string()))?;
        LoadedPolicy::new(policy)
    }

    pub fn new(policy: Policy) -> Result<LoadedPolicy, PolicyError> {
        let mut expiries = Vec::new();
        for (i, a) in policy.allow.iter().enumerate() {
            if a.advisory.is_none() && a.vulnerability.is_none() {
                return Err(PolicyError::Invalid(format!(
                    "allow entry {} names neither an advisory nor a vulnerability",
                    i + 1
                )));
            }
            let at = DateTime::parse_from_rfc3339(&a.expires).map_err(|e| {
                PolicyError::Invalid(format!(
                    "allow entry {}: expires {:?}: {e}",
                    i + 1,
                    a.expires
                ))
            })?;
            expiries.push(at.to_utc());
        }
        for r in &policy.rules {
            if r.min_cvss.is_some_and(|s| !(0.0..=10.0).contains(&s)) {
                return Err(PolicyError::Invalid(format!(
                    "rule {:?}: min_cvss must be within 0..=10",
                    r.name
                )));
            }
        }
        let version =
            canonical::sha256_hex(&policy).map_err(|e| PolicyError::Invalid(e.to_string()))?;
        Ok(LoadedPolicy {
            policy,
            version,
            expiries,
        })
    }

    /// Verdict and trace for `findings` (any order; the trace is sorted).
    pub fn evaluate(&self, findings: &[ImpactFinding], ctx: &EvalContext) -> Evaluation {
        let mut sorted: Vec<&ImpactFinding> = findings.iter().collect();
        sorted.sort();
        let trace: Vec<TraceEntry> = sorted.into_iter().map(|f| self.judge(f, ctx)).collect();
        let verdict = trace
            .iter()
            .map(|t| t.verdict)
            .max()
            .unwrap_or(Verdict::Pass);
        Evaluation {
            verdict,
            runtime: ctx.runtime,
            trace,
        }
    }

    fn judge(&self, f: &ImpactFinding, ctx: &EvalContext) -> TraceEntry {
        let cvss = ctx.cvss.get(&f.advisory).copied();
        let fix_available = fix_available(&f.reason);
        let vex = f.vex_status.map(|status| VexTrace {
            status,
            justification: f.justification.clone(),
            source: f.vex_source.clone(),
            suppressed: f.status == FindingStatus::Suppressed,
        });
        let (decided_by, verdict) = if f.status == FindingStatus::Suppressed {
            (
                format!(
                    "suppressed by VEX {}",
                    f.vex_source.as_deref().unwrap_or("statement")
                ),
                Verdict::Pass,
            )
        } else if let Some((entry, until)) = self.allowed(f, ctx.as_of) {
            let why = entry.reason.as_deref().unwrap_or("allow-listed");
            (format!("allowed until {until}: {why}"), Verdict::Pass)
        } else if let Some(rule) = self
            .policy
            .rules
            .iter()
            .find(|r| matches_rule(r, f, cvss, fix_available, ctx.runtime))
        {
            (format!("rule {}", rule.name), rule.verdict)
        } else {
            ("default".to_string(), self.policy.default)
        };
        TraceEntry {
            advisory: f.advisory.clone(),
            vulnerability: f.vulnerability.clone(),
            component: format!("{}@{}", f.package, f.version),
            ecosystem: f.ecosystem.clone(),
            purl: f.purl.clone(),
            matched: describe(&f.reason),
            severity: f.severity,
            cvss,
            fix_available,
            vex,
            decided_by,
            verdict,
        }
    }

    /// The first unexpired allow entry for `f` and its expiry as written.
    fn allowed(&self, f: &ImpactFinding, as_of: DateTime<Utc>) -> Option<(&AllowEntry, &str)> {
        self.policy
            .allow
            .iter()
            .zip(&self.expiries)
            .find(|(a, expires)| {
                **expires > as_of
                    && a.advisory.as_ref().is_none_or(|x| *x == f.advisory)
                    && a.vulnerability
                        .as_ref()
                        .is_none_or(|x| *x == f.vulnerability)
                    && a.artifact.as_ref().is_none_or(|x| *x == f.artifact)
                    && a.purl.as_ref().is_none_or(|p| {
                        f.purl.as_deref() == Some(p.as_str()) || f.purl_base() == Some(p.as_str())
                    })
            })
            .map(|(a, _)| (a, a.expires.as_str()))
    }
}

fn matches_rule(
    r: &Rule,
    f: &ImpactFinding,
    cvss: Option<f64>,
    fix: bool,
    runtime: RuntimeState,
) -> bool {
    r.min_severity
        .is_none_or(|min| f.severity.is_some_and(|s| s >= min))
        && r.min_cvss.is_none_or(|min| cvss.is_some_and(|s| s >= min))
        && r.fix_available.is_none_or(|want| want == fix)
        && r.vex_status
            .as_ref()
            .is_none_or(|v| v.contains(&VexCondition::of(f.vex_status)))
        && r.runtime.as_ref().is_none_or(|v| v.contains(&runtime))
}

/// A fix exists when the matched affected interval is closed by a `fixed`
/// event (the planner's match reasons write it as `fixed: <version>`).
fn fix_available(reason: &MatchReason) -> bool {
    matches!(reason, MatchReason::Range { until: Some(u), .. } if u.starts_with("fixed:"))
}

fn describe(reason: &MatchReason) -> String {
    match reason {
        MatchReason::Range {
            entry,
            range,
            introduced,
            until,
        } => match until {
            Some(u) => format!("range {range} of entry {entry}: introduced {introduced}, {u}"),
            None => format!("range {range} of entry {entry}: introduced {introduced}"),
        },
        MatchReason::Listed { entry } => format!("versions[] of entry {entry}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_fails_fixable_high_findings_and_warns_on_the_rest() {
        let policy = LoadedPolicy::parse(DEFAULT_POLICY).unwrap();
        let at = ctx(RuntimeState::Unknown, "2026-01-01T00:00:00Z");
        let fixable = finding("A-1", Rating::High, Some("fixed: 2.5"));
        let low = finding("A-2", Rating::Low, Some("fixed: 2.5"));
        let unfixed = finding("A-3", Rating::Critical, None);
        assert_eq!(
            policy.evaluate(std::slice::from_ref(&fixable), &at).verdict,
            Verdict::Fail
        );
        assert_eq!(policy.evaluate(&[low, unfixed], &at).verdict, Verdict::Warn);
        let mut suppressed = fixable;
        suppressed.status = FindingStatus::Suppressed;
        assert_eq!(policy.evaluate(&[suppressed], &at).verdict, Verdict::Pass);
    }

    fn finding(advisory: &str, severity: Rating, until: Option<&str>) -> ImpactFinding {
        ImpactFinding {
            tenant: "acme".into(),
            artifact: "sha256:a".into(),
            advisory: advisory.into(),
            vulnerability: format!("CVE-{advisory}"),
            purl: Some("pkg:pypi/jinja2@2.4.1".into()),
            ecosystem: "PyPI".into(),
            package: "jinja2".into(),
            version: "2.4.1".into(),
            severity: Some(severity),
            status: FindingStatus::Affected,
            reason: MatchReason::Range {
                entry: 0,
                range: 0,
                introduced: "0".into(),
                until: until.map(String::from),
            },
            vex_status: None,
            justification: None,
            vex_source: None,
        }
    }

    fn ctx(runtime: RuntimeState, as_of: &str) -> EvalContext {
        EvalContext {
            runtime,
            as_of: DateTime::parse_from_rfc3339(as_of).unwrap().to_utc(),
            cvss: BTreeMap::from([("A".to_string(), 9.8), ("B".to_string(), 5.0)]),
        }
    }

    const POLICY: &str = r#"
        default = "warn"
        [[rule]]
        name = "fixable-critical-running"
        verdict = "fail"
        min_cvss = 9.0
        fix_available = true
        runtime = ["running"]
        [[rule]]
        name = "low"
        verdict = "pass"
        min_severity = "none"
        vex_status = ["none"]
        [[allow]]
        vulnerability = "CVE-C"
        purl = "pkg:pypi/jinja2"
        expires = "2026-06-01T00:00:00Z"
        reason = "mitigated"
    "#;

    #[test]
    fn rules_allow_list_expiry_and_runtime() {
        let p = LoadedPolicy::parse(POLICY).unwrap();
        let findings = vec![
            finding("A", Rating::Critical, Some("fixed: 2.5")),
            finding("B", Rating::Medium, None),
            finding("C", Rating::High, None),
        ];
        let running = p.evaluate(
            &findings,
            &ctx(RuntimeState::Running, "2026-05-01T00:00:00Z"),
        );
        assert_eq!(running.verdict, Verdict::Fail);
        let by: BTreeMap<&str, &TraceEntry> = running
            .trace
            .iter()
            .map(|t| (t.advisory.as_str(), t))
            .collect();
        assert_eq!(by["A"].decided_by, "rule fixable-critical-running");
        assert_eq!(
            by["A"].matched,
            "range 0 of entry 0: introduced 0, fixed: 2.5"
        );
        assert!(by["C"].decided_by.starts_with("allowed until 2026-06-01"));
        assert_eq!(by["B"].decided_by, "rule low");
        // Stopped: the first rule no longer applies; A falls to rule "low".
        let stopped = p.evaluate(
            &findings,
            &ctx(RuntimeState::Stopped, "2026-05-01T00:00:00Z"),
        );
        assert_eq!(stopped.verdict, Verdict::Pass);
        // After expiry (as of the window, not the wall clock) C counts again.
        let later = p.evaluate(
            &findings,
            &ctx(RuntimeState::Stopped, "2026-07-01T00:00:00Z"),
        );
        assert_eq!(later.trace[2].decided_by, "rule low");
    }

    #[test]
    fn version_ignores_formatting_but_not_content() {
        let a = LoadedPolicy::parse(POLICY).unwrap();
        let reformatted = POLICY.replace("default = \"warn\"", "default   =   'warn' # x");
        assert_eq!(
            a.version,
            LoadedPolicy::parse(&reformatted).unwrap().version
        );
        let changed = POLICY.replace("min_cvss = 9.0", "min_cvss = 8.0");
        assert_ne!(a.version, LoadedPolicy::parse(&changed).unwrap().version);
        assert!(LoadedPolicy::parse("[[allow]]\nexpires = \"2026-01-01T00:00:00Z\"").is_err());
        assert!(LoadedPolicy::parse("bogus = 1").is_err());
    }
}
