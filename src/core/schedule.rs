//! Cron schedules firing runs. A schedule's five-field cron expression is
//! read in its IANA time zone (croner's DST rules: a fire time inside a
//! spring-forward gap fires right after the gap, one inside a fall-back
//! overlap fires once); [`Scheduler::tick`] is handed the time, never reads a
//! clock, and fires each enabled schedule's latest due fire time.
//!
//! Firing commits the run, its jobs and the schedule's last fire time (the
//! cursor `schedule:<id>`, Unix seconds) in one store transaction, and the
//! run id is sha256 of (schedule, fire time): a restarted scheduler, or two
//! running side by side, fire nothing twice. When ticks are further apart
//! than fire times (the scheduler was down), the fire times missed in
//! between are folded into the latest one and counted, not run one after
//! another: each would re-evaluate the same artifacts against the same state.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

use super::pipeline::{Pipeline, PipelineError};
use super::runs::{RunError, RunPlanner, RunRequest};
use crate::model::{Priority, Run, RunTrigger, Schedule};
use crate::store::{CursorMove, RunOutcome};

/// The cursor holding a schedule's last fire time.
pub fn cursor_name(schedule: &str) -> String {
    format!("schedule:{schedule}")
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    #[error("cron expression {expr:?}: {reason}")]
    Cron { expr: String, reason: String },
    #[error("time zone {0:?} is not an IANA time zone name")]
    TimeZone(String),
    #[error("created_at {0:?} is not an RFC 3339 time")]
    CreatedAt(String),
    #[error(transparent)]
    Run(#[from] RunError),
}

/// A parsed cron expression in its time zone.
#[derive(Debug, Clone)]
pub struct CronSpec {
    cron: Cron,
    tz: Tz,
}

/// A fire time that is due, standing for `missed` earlier ones since the
/// last fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub at: DateTime<Utc>,
    pub missed: u64,
}

/// Fire times followed one by one before jumping to the latest.
const FOLLOW: u64 = 1000;

impl CronSpec {
    /// Exactly five fields (minute hour day-of-month month day-of-week, with
    /// names, ranges, steps, `L`, `W`, `#`); `timezone` an IANA name.
    pub fn parse(expr: &str, timezone: &str) -> Result<CronSpec, ScheduleError> {
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(expr)
            .map_err(|e| ScheduleError::Cron {
                expr: expr.to_string(),
                reason: e.to_string(),
            })?;
        let tz = Tz::from_str(timezone).map_err(|_| ScheduleError::TimeZone(timezone.into()))?;
        Ok(CronSpec { cron, tz })
    }

    /// The first fire time strictly after `t` (`None`: there is none, e.g.
    /// `0 0 30 2 *`).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(&self.tz);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|n| n.with_timezone(&Utc))
    }

    /// The latest fire time in `(after, now]`, if any.
    pub fn due(&self, after: DateTime<Utc>, now: DateTime<Utc>) -> Option<Due> {
        let mut at = self.next_after(after).filter(|t| *t <= now)?;
        let mut missed = 0;
        while let Some(next) = self.next_after(at).filter(|t| *t <= now) {
            missed += 1;
            at = next;
            if missed == FOLLOW {
                // Far behind: jump to the latest fire time instead of walking.
                let latest = self
                    .cron
                    .find_previous_occurrence(&now.with_timezone(&self.tz), true)
                    .ok()
                    .map(|p| p.with_timezone(&Utc))
                    .filter(|p| *p > at);
                if let Some(latest) = latest {
                    at = latest;
                }
                break;
            }
        }
        Some(Due { at, missed })
    }
}

/// Check what the scheduler needs of a schedule (the API refuses the rest).
pub fn validate(schedule: &Schedule) -> Result<CronSpec, ScheduleError> {
    schedule.selector.validate().map_err(RunError::from)?;
    created_at(schedule)?;
    CronSpec::parse(&schedule.cron, &schedule.timezone)
}

fn created_at(schedule: &Schedule) -> Result<DateTime<Utc>, ScheduleError> {
    DateTime::parse_from_rfc3339(&schedule.created_at)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ScheduleError::CreatedAt(schedule.created_at.clone()))
}

/// One schedule that fired in a tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub schedule: String,
    pub run: Run,
    /// Earlier fire times folded into this run.
    pub missed: u64,
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tick {
    pub fired: Vec<Fired>,
    /// (schedule, run id) whose run another scheduler (or an earlier tick)
    /// had already committed.
    pub already: Vec<(String, String)>,
    /// (schedule, why) that could not fire: a bad cron expression, time zone
    /// or selector. Other schedules still fire.
    pub failed: Vec<(String, String)>,
}

/// Fires due schedules into runs.
#[derive(Debug, Clone, Default)]
pub struct Scheduler {
    pub runs: RunPlanner,
}

fn unix(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp()).unwrap_or_default()
}

impl Scheduler {
    /// Fire every enabled schedule whose next fire time after its last fire
    /// (or its creation) is at or before `now`, in schedule id order.
    pub fn tick(&self, pipeline: &Pipeline, now: DateTime<Utc>) -> Result<Tick, PipelineError> {
        let store = pipeline.store().clone();
        let schedules = pipeline.block_on(store.schedules(None))?;
        let mut tick = Tick::default();
        for schedule in schedules.into_iter().filter(|s| s.enabled) {
            let spec = match validate(&schedule) {
                Ok(spec) => spec,
                Err(e) => {
                    tracing::warn!(schedule = schedule.id, error = %e, "schedule cannot fire");
                    tick.failed.push((schedule.id.clone(), e.to_string()));
                    continue;
                }
            };
            let name = cursor_name(&schedule.id);
            let last = pipeline.block_on(store.cursor(&name))?;
            let after = match last {
                Some(secs) => i64::try_from(secs)
                    .ok()
                    .and_then(|s| Utc.timestamp_opt(s, 0).single())
                    .unwrap_or(DateTime::<Utc>::MIN_UTC),
                None => created_at(&schedule).unwrap_or(now),
            };
            let Some(due) = spec.due(after, now) else {
                continue;
            };
            let request = RunRequest {
                tenant: schedule.tenant.clone(),
                all_tenants: false,
                schedule: Some(schedule.id.clone()),
                trigger: RunTrigger::Cron,
                mode: schedule.mode,
                selector: schedule.selector.clone(),
                reason: Some(format!(
                    "schedule {} ({} {})",
                    schedule.id, schedule.cron, schedule.timezone
                )),
                priority: Priority::Normal,
                at: due.at,
            };
            let plan = match pipeline.plan_run(&self.runs, &request) {
                Ok(plan) => plan,
                Err(e) => {
                    tick.failed.push((schedule.id.clone(), e.to_string()));
                    continue;
                }
            };
            let position = unix(due.at);
            let run = plan.run.clone();
            let commit = plan.commit(vec![CursorMove {
                name: name.clone(),
                position,
            }]);
            match pipeline.block_on(store.commit_run(&commit))? {
                RunOutcome::Committed { new_jobs } => {
                    tracing::info!(
                        schedule = schedule.id,
                        run = run.id,
                        fire_time = %due.at,
                        jobs = new_jobs,
                        missed = due.missed,
                        "schedule fired"
                    );
                    tick.fired.push(Fired {
                        schedule: schedule.id.clone(),
                        run,
                        missed: due.missed,
                    });
                }
                RunOutcome::AlreadyExists { run } => {
                    // Another scheduler fired it; follow its last fire time
                    // (a lost race just leaves the cursor for the next tick).
                    if last.is_none_or(|l| l < position) {
                        pipeline.block_on(store.set_cursor(&name, last, position))?;
                    }
                    tick.already.push((schedule.id.clone(), run.id));
                }
            }
        }
        Ok(tick)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// Every fire time in `(from, to]`.
    fn fires(spec: &CronSpec, from: &str, to: &str) -> Vec<String> {
        let (mut t, to) = (utc(from), utc(to));
        let mut out = Vec::new();
        while let Some(next) = spec.next_after(t).filter(|n| *n <= to) {
            out.push(next.to_rfc3339());
            t = next;
        }
        out
    }

    #[test]
    fn five_fields_and_iana_zones_only() {
        assert!(CronSpec::parse("0 3 * * *", "Europe/Berlin").is_ok());
        assert!(CronSpec::parse("*/15 9-17 * * MON-FRI", "UTC").is_ok());
        for bad in ["0 0 3 * * *", "0 3 * *", "61 * * * *", "", "0 3 * * * 2030"] {
            assert!(
                matches!(CronSpec::parse(bad, "UTC"), Err(ScheduleError::Cron { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            CronSpec::parse("0 3 * * *", "Mars/Olympus"),
            Err(ScheduleError::TimeZone(_))
        ));
    }

    #[test]
    fn fire_times_across_dst_changes() {
        // Berlin springs forward 2026-03-29 02:00 → 03:00 and falls back
        // 2026-10-25 03:00 → 02:00.
        let daily = CronSpec::parse("30 2 * * *", "Europe/Berlin").unwrap();
        assert_eq!(
            fires(&daily, "2026-03-27T12:00:00Z", "2026-03-30T12:00:00Z"),
            [
                "2026-03-28T01:30:00+00:00", // 02:30 CET
                "2026-03-29T01:00:00+00:00", // 02:30 does not exist: 03:00 CEST
                "2026-03-30T00:30:00+00:00", // 02:30 CEST
            ]
        );
        assert_eq!(
            fires(&daily, "2026-10-24T12:00:00Z", "2026-10-26T12:00:00Z"),
            [
                "2026-10-25T00:30:00+00:00", // the first 02:30 (CEST), once
                "2026-10-26T01:30:00+00:00", // 02:30 CET
            ]
        );
        // An hourly job gets 23 fire times on the short day, 25 on the long one.
        let hourly = CronSpec::parse("15 * * * *", "Europe/Berlin").unwrap();
        assert_eq!(
            fires(&hourly, "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z").len(),
            23
        );
        assert_eq!(
            fires(&hourly, "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z").len(),
            25
        );
    }

    #[test]
    fn due_takes_the_latest_fire_time_and_counts_the_missed() {
        let hourly = CronSpec::parse("0 * * * *", "UTC").unwrap();
        let t = utc("2026-12-01T10:00:00Z");
        assert_eq!(hourly.due(t, utc("2026-12-01T10:59:59Z")), None);
        assert_eq!(
            hourly.due(t, utc("2026-12-01T11:00:00Z")),
            Some(Due {
                at: utc("2026-12-01T11:00:00Z"),
                missed: 0
            })
        );
        assert_eq!(
            hourly.due(t, utc("2026-12-01T14:30:00Z")),
            Some(Due {
                at: utc("2026-12-01T14:00:00Z"),
                missed: 3
            })
        );
        // Far behind: still the latest fire time.
        let minutely = CronSpec::parse("* * * * *", "UTC").unwrap();
        let due = minutely.due(t, utc("2026-12-03T10:00:30Z")).unwrap();
        assert_eq!(due.at, utc("2026-12-03T10:00:00Z"));
        assert!(due.missed >= FOLLOW);
        // A pattern that never matches is never due.
        let never = CronSpec::parse("0 0 30 2 *", "UTC").unwrap();
        assert_eq!(never.due(t, utc("2030-01-01T00:00:00Z")), None);
    }
}
