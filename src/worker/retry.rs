//! SLA-aware retry: when a job is due (from its worst severity and the
//! artifact's runtime state), how long to wait before the next attempt, and
//! when to give up. Everything here is a pure function of the job and the
//! times passed in, so two workers (or a replay) decide alike.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};

use crate::model::{Rating, RuntimeState};

/// Time from a window's close to the job's deadline, by (severity, runtime).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaTable {
    pub entries: BTreeMap<(Rating, RuntimeState), TimeDelta>,
    /// For a pair the table does not name.
    pub fallback: TimeDelta,
}

impl Default for SlaTable {
    /// Critical in a running artifact: 1 h; the seed's tiers below it, and
    /// a week for anything without a severity or not deployed anywhere.
    fn default() -> Self {
        use RuntimeState::*;
        let h = TimeDelta::hours;
        let mut entries = BTreeMap::new();
        for (rating, running, deployed, other) in [
            (Rating::Critical, h(1), h(4), h(24)),
            (Rating::High, h(4), h(24), h(72)),
            (Rating::Medium, h(24), h(72), h(168)),
            (Rating::Low, h(72), h(168), h(168)),
        ] {
            entries.insert((rating, Running), running);
            entries.insert((rating, Deployed), deployed);
            entries.insert((rating, Stopped), other);
            entries.insert((rating, Unknown), other);
        }
        SlaTable {
            entries,
            fallback: h(168),
        }
    }
}

impl SlaTable {
    /// Parse `critical:running=1h,high:*=4h,*=7d` (later entries override
    /// earlier ones; `*` in either place means every value; units s, m, h, d).
    pub fn parse(spec: &str) -> Result<SlaTable, String> {
        let mut table = SlaTable::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("SLA entry {item:?}: expected KEY=DURATION"))?;
            let d = parse_duration(value.trim())?;
            let key = key.trim();
            if key == "*" {
                table.fallback = d;
                for v in table.entries.values_mut() {
                    *v = d;
                }
                continue;
            }
            let (sev, run) = key.split_once(':').unwrap_or((key, "*"));
            let ratings = expand(sev, &RATINGS, |r| format!("{r:?}").to_lowercase())?;
            let states = expand(run, &STATES, |s| s.as_str().to_string())?;
            for r in &ratings {
                for s in &states {
                    table.entries.insert((*r, *s), d);
                }
            }
        }
        Ok(table)
    }

    pub fn sla(&self, severity: Option<Rating>, runtime: RuntimeState) -> TimeDelta {
        severity
            .and_then(|s| self.entries.get(&(s, runtime)))
            .copied()
            .unwrap_or(self.fallback)
    }

    /// The job's deadline: window close + the SLA of its worst severity in
    /// its artifact's runtime state.
    pub fn deadline(
        &self,
        closed_at: DateTime<Utc>,
        severity: Option<Rating>,
        runtime: RuntimeState,
    ) -> DateTime<Utc> {
        closed_at
            .checked_add_signed(self.sla(severity, runtime))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

const RATINGS: [Rating; 5] = [
    Rating::None,
    Rating::Low,
    Rating::Medium,
    Rating::High,
    Rating::Critical,
];
const STATES: [RuntimeState; 4] = [
    RuntimeState::Unknown,
    RuntimeState::Deployed,
    RuntimeState::Running,
    RuntimeState::Stopped,
];

fn expand<T: Copy>(name: &str, all: &[T], show: impl Fn(&T) -> String) -> Result<Vec<T>, String> {
    if name == "*" {
        return Ok(all.to_vec());
    }
    all.iter()
        .find(|v| show(v) == name)
        .map(|v| vec![*v])
        .ok_or_else(|| format!("unknown severity or runtime state {name:?}"))
}

/// `90s`, `15m`, `1h`, `7d`.
pub fn parse_duration(s: &str) -> Result<TimeDelta, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: i64 = n
        .parse()
        .map_err(|_| format!("duration {s:?}: expected a number and a unit (s, m, h, d)"))?;
    match unit {
        "s" => Ok(TimeDelta::seconds(n)),
        "m" => Ok(TimeDelta::minutes(n)),
        "h" => Ok(TimeDelta::hours(n)),
        "d" => Ok(TimeDelta::days(n)),
        _ => Err(format!("duration {s:?}: unit must be s, m, h or d")),
    }
}

/// Exponential backoff with deterministic jitter and a cap on attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (the first run included).
    pub max_attempts: u32,
    /// Delay after the first failure, before jitter.
    pub base: Duration,
    /// No delay is longer than this.
    pub max_delay: Duration,
    /// Expected time for one attempt: a retry that could not finish before
    /// the deadline is not scheduled.
    pub attempt_budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base: Duration::from_secs(2),
            max_delay: Duration::from_secs(300),
            attempt_budget: Duration::from_secs(30),
        }
    }
}

/// What to do after attempt `attempt` failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryDecision {
    RetryAfter(Duration),
    GiveUp(String),
}

impl RetryPolicy {
    /// `base · 2^(attempt−1)`, capped, times a jitter factor in [0.5, 1)
    /// taken from sha256(job id, attempt): the same job and attempt always
    /// wait the same, different jobs spread out.
    pub fn backoff(&self, job_id: &str, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(
                1u32.checked_shl(attempt.saturating_sub(1))
                    .unwrap_or(u32::MAX),
            )
            .min(self.max_delay);
        let digest = Sha256::digest(format!("{job_id}:{attempt}").as_bytes());
        let mut word = [0u8; 8];
        word.copy_from_slice(&digest[..8]);
        let unit = (u64::from_be_bytes(word) >> 11) as f64 / (1u64 << 53) as f64;
        exp.mul_f64(0.5 + unit / 2.0)
    }

    /// After attempt `attempt` failed at `now`: retry later, or give up
    /// (attempts exhausted, or the retry could not finish by `deadline`).
    pub fn decide(
        &self,
        job_id: &str,
        attempt: u32,
        now: DateTime<Utc>,
        deadline: DateTime<Utc>,
    ) -> RetryDecision {
        if attempt >= self.max_attempts {
            return RetryDecision::GiveUp(format!(
                "attempt {attempt} of {} failed: attempts exhausted",
                self.max_attempts
            ));
        }
        let delay = self.backoff(job_id, attempt);
        let done_by = TimeDelta::from_std(delay + self.attempt_budget)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        if done_by > deadline {
            return RetryDecision::GiveUp(format!(
                "attempt {attempt} failed and a retry after {delay:?} could not finish before the SLA deadline {}",
                deadline.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
        }
        RetryDecision::RetryAfter(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_deterministic_and_capped() {
        let p = RetryPolicy::default();
        let d: Vec<Duration> = (1..=10).map(|a| p.backoff("job", a)).collect();
        assert_eq!(d, (1..=10).map(|a| p.backoff("job", a)).collect::<Vec<_>>());
        for (i, w) in d.iter().enumerate() {
            let exp = (p.base * 2u32.pow(i as u32)).min(p.max_delay);
            assert!(*w >= exp / 2 && *w < exp, "attempt {}: {w:?}", i + 1);
        }
        assert_ne!(p.backoff("job", 3), p.backoff("other", 3));
    }

    #[test]
    fn gives_up_on_attempts_and_deadline() {
        let p = RetryPolicy::default();
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let far = now + TimeDelta::hours(1);
        assert!(matches!(
            p.decide("j", 1, now, far),
            RetryDecision::RetryAfter(_)
        ));
        assert!(matches!(
            p.decide("j", 5, now, far),
            RetryDecision::GiveUp(_)
        ));
        let near = now + TimeDelta::seconds(10);
        assert!(
            matches!(p.decide("j", 1, now, near), RetryDecision::GiveUp(m) if m.contains("deadline"))
        );
    }

    #[test]
    fn sla_table_parse() {
        let t = SlaTable::parse("critical:running=30m, high:*=2h").unwrap();
        assert_eq!(
            t.sla(Some(Rating::Critical), RuntimeState::Running),
            TimeDelta::minutes(30)
        );
        assert_eq!(
            t.sla(Some(Rating::High), RuntimeState::Stopped),
            TimeDelta::hours(2)
        );
        assert_eq!(
            t.sla(Some(Rating::Critical), RuntimeState::Deployed),
            TimeDelta::hours(4)
        );
        assert_eq!(t.sla(None, RuntimeState::Running), TimeDelta::hours(168));
        assert!(SlaTable::parse("urgent=1h").is_err());
        assert!(SlaTable::parse("critical=1y").is_err());
    }
}
