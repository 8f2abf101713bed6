//! Schedules (cron-style triggers of full re-evaluation runs), the runs they,
//! a person or a policy start, and the selector that says which artifacts a
//! run covers. Shaped after the seed's `schedules` and `runs` so its users
//! recognise them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::JobKind;

/// Which artifacts a run covers. Every criterion given must hold; a list
/// criterion holds when any of its values does. A selector with no criterion
/// must say `all: true`, so that an empty or misspelt request never selects a
/// whole fleet by accident.
///
/// - `tenant`: artifacts of that tenant;
/// - `labels`: artifacts carrying every `key=value` (keys case-insensitive,
///   as in artifact metadata);
/// - `namespaces`: the artifact's `namespace` label (where runtime hooks
///   record the Kubernetes namespace) is one of these;
/// - `repositories`: one of the artifact's repository names: its name, and
///   for an image purl `<repository_url>/<name>` and `<namespace>/<name>`;
/// - `digests`: the artifact's digest or id (case-insensitive);
/// - `packages`: the artifact's SBOM lists a component of one of these
///   (ecosystem, package) pairs (any version; names normalized as OSV's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    #[serde(default, skip_serializing_if = "is_false")]
    pub all: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub digests: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<PackageSelector>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// An OSV `(ecosystem, package name)`, e.g. `("PyPI", "django")`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageSelector {
    pub ecosystem: String,
    pub name: String,
}

/// Why a selector cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("the selector names no criterion; say \"all\": true to select every artifact")]
    Empty,
    #[error("\"all\": true cannot be combined with {0}")]
    AllWithCriteria(&'static str),
    #[error("{0}: empty value")]
    EmptyValue(&'static str),
}

impl Selector {
    /// Every artifact in the run's reach.
    pub fn all() -> Selector {
        Selector {
            all: true,
            ..Selector::default()
        }
    }

    /// The first criterion that is set, by its JSON name.
    fn first_criterion(&self) -> Option<&'static str> {
        [
            ("tenant", self.tenant.is_some()),
            ("labels", !self.labels.is_empty()),
            ("namespaces", !self.namespaces.is_empty()),
            ("repositories", !self.repositories.is_empty()),
            ("digests", !self.digests.is_empty()),
            ("packages", !self.packages.is_empty()),
        ]
        .into_iter()
        .find(|(_, set)| *set)
        .map(|(name, _)| name)
    }

    /// Refuse a selector that would select by accident or never match: no
    /// criterion without `all`, `all` with criteria, empty strings.
    pub fn validate(&self) -> Result<(), SelectorError> {
        match (self.all, self.first_criterion()) {
            (false, None) => return Err(SelectorError::Empty),
            (true, Some(c)) => return Err(SelectorError::AllWithCriteria(c)),
            _ => {}
        }
        fn filled<'a>(
            field: &'static str,
            mut values: impl Iterator<Item = &'a String>,
        ) -> Result<(), SelectorError> {
            match values.any(|v| v.trim().is_empty()) {
                true => Err(SelectorError::EmptyValue(field)),
                false => Ok(()),
            }
        }
        filled("tenant", self.tenant.iter())?;
        filled("labels", self.labels.keys())?;
        filled("namespaces", self.namespaces.iter())?;
        filled("repositories", self.repositories.iter())?;
        filled("digests", self.digests.iter())?;
        filled(
            "packages",
            self.packages.iter().flat_map(|p| [&p.ecosystem, &p.name]),
        )
    }
}

/// A cron schedule of full runs over a tenant's artifacts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub id: String,
    pub tenant: String,
    /// Five-field cron expression (minute hour day-of-month month day-of-week).
    pub cron: String,
    /// IANA time zone the cron expression is read in (`Europe/Berlin`, `UTC`).
    pub timezone: String,
    /// What each job of a run does.
    pub mode: JobKind,
    /// Which of the tenant's artifacts a run covers.
    pub selector: Selector,
    pub enabled: bool,
    /// UTC RFC 3339. The schedule fires at its fire times after this one
    /// until it has fired once.
    pub created_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunTrigger {
    Cron,
    Manual,
    Advisory,
    Vex,
    Policy,
    ContentRefresh,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Planning,
    Queued,
    Running,
    Completed,
    Cancelled,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub id: String,
    /// Who started the run (a schedule's tenant, the caller's).
    pub tenant: String,
    pub schedule: Option<String>,
    pub trigger: RunTrigger,
    pub mode: JobKind,
    pub selector: Selector,
    /// Why the run was started, as the caller put it.
    pub reason: Option<String>,
    /// The last closed window when the run was planned: its jobs evaluate
    /// the state as of that window (`None`: nothing had closed yet).
    pub window: Option<u64>,
    pub state: RunState,
    /// UTC RFC 3339 (a cron run's fire time).
    pub created_at: String,
    /// Named counters (`artifacts`, `jobs`, `tenants`, …).
    pub counters: BTreeMap<String, u64>,
    /// Sorted.
    pub jobs: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_validate_and_refuse_unknown_fields() {
        assert_eq!(Selector::all().validate(), Ok(()));
        assert_eq!(Selector::default().validate(), Err(SelectorError::Empty));
        let by_label: Selector = serde_json::from_str(r#"{"labels":{"env":"prod"}}"#).unwrap();
        assert_eq!(by_label.validate(), Ok(()));
        let both = Selector {
            labels: by_label.labels.clone(),
            ..Selector::all()
        };
        assert_eq!(
            both.validate(),
            Err(SelectorError::AllWithCriteria("labels"))
        );
        let blank = Selector {
            digests: vec![" ".into()],
            ..Selector::default()
        };
        assert_eq!(blank.validate(), Err(SelectorError::EmptyValue("digests")));
        assert!(serde_json::from_str::<Selector>(r#"{"label":{"env":"prod"}}"#).is_err());
        // Only what is set is written.
        assert_eq!(
            serde_json::to_string(&Selector::all()).unwrap(),
            r#"{"all":true}"#
        );
    }
}
