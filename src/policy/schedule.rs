//! Scheduled tasks (`protocol-specs/policy.md` §7): CSM's three schedule kinds, each
//! task tied to one session and one command. Times are ms since the epoch, UTC.

use serde::{Deserialize, Serialize};

use super::session::SessionCommand;

/// A task's number.
pub type TaskId = u64;

/// The shortest interval between scheduled SGC backups (CSM: 30 minutes).
pub const MIN_SGC_BACKUP_INTERVAL_MS: u64 = 30 * 60 * 1000;

const MINUTE_MS: u64 = 60_000;
const DAY_MS: u64 = 24 * 60 * MINUTE_MS;

/// When a task runs (CSM's `NoTaskSchedule`, `WeeklyTaskSchedule`, `IntervalTaskSchedule`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Schedule {
    /// Once, at a time (or only when run by hand, with `None`).
    Once {
        /// When.
        at_ms: Option<u64>,
    },
    /// On some weekdays at a time of day (UTC).
    Weekly {
        /// Bit 0 = Monday … bit 6 = Sunday.
        days: u8,
        /// Minutes after midnight, 0–1439.
        minute_of_day: u16,
    },
    /// Every `interval_ms`, counted from `start_ms`.
    Interval {
        /// The first run.
        start_ms: u64,
        /// The interval.
        interval_ms: u64,
    },
}

/// The weekday names CSM uses, bit 0 first.
pub const WEEKDAYS: [&str; 7] = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];

impl Schedule {
    /// Whether the schedule is well formed (policy.md §7.1); the reason if not.
    pub fn check(&self, command: SessionCommand) -> Result<(), String> {
        match *self {
            Schedule::Once { .. } => {}
            Schedule::Weekly {
                days,
                minute_of_day,
            } => {
                if days == 0 || days > 0x7F {
                    return Err("a weekly schedule needs at least one day".into());
                }
                if minute_of_day >= 1440 {
                    return Err(format!("time of day {minute_of_day} is past 23:59"));
                }
            }
            Schedule::Interval { interval_ms, .. } => {
                if interval_ms < MINUTE_MS {
                    return Err("an interval is at least one minute".into());
                }
            }
        }
        if command == SessionCommand::Backup && self.shortest_gap_ms() < MIN_SGC_BACKUP_INTERVAL_MS
        {
            return Err(format!(
                "scheduled Safeguarded Copy backups must be at least 30 minutes apart; this schedule runs every {} minutes",
                self.shortest_gap_ms() / MINUTE_MS
            ));
        }
        Ok(())
    }

    /// The shortest time between two runs (`u64::MAX` for a one-off).
    fn shortest_gap_ms(&self) -> u64 {
        match *self {
            Schedule::Once { .. } => u64::MAX,
            Schedule::Interval { interval_ms, .. } => interval_ms,
            Schedule::Weekly { days, .. } => {
                if days.count_ones() == 1 {
                    7 * DAY_MS
                } else {
                    DAY_MS
                }
            }
        }
    }

    /// The first run strictly after `after_ms`, if any.
    pub fn next_after(&self, after_ms: u64) -> Option<u64> {
        match *self {
            Schedule::Once { at_ms } => at_ms.filter(|&t| t > after_ms),
            Schedule::Interval {
                start_ms,
                interval_ms,
            } => {
                if after_ms < start_ms {
                    return Some(start_ms);
                }
                let n = (after_ms - start_ms) / interval_ms.max(1) + 1;
                start_ms.checked_add(n.checked_mul(interval_ms)?)
            }
            Schedule::Weekly {
                days,
                minute_of_day,
            } => {
                let today = after_ms / DAY_MS;
                (0..=7).find_map(|d| {
                    let day = today + d;
                    // 1970-01-01 was a Thursday (bit 3).
                    let weekday = (day + 3) % 7;
                    let at = day * DAY_MS + u64::from(minute_of_day) * MINUTE_MS;
                    (days & (1 << weekday) != 0 && at > after_ms).then_some(at)
                })
            }
        }
    }

    /// How many runs fell in (`from_ms`, `to_ms`] (capped: only the count is reported).
    pub fn runs_between(&self, from_ms: u64, to_ms: u64) -> u64 {
        let mut count = 0;
        let mut t = from_ms;
        while let Some(next) = self.next_after(t) {
            if next > to_ms || count >= 10_000 {
                break;
            }
            count += 1;
            t = next;
        }
        count
    }
}

/// A scheduled task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Its number.
    pub id: TaskId,
    /// Its name.
    pub name: String,
    /// The session it is tied to.
    pub session: String,
    /// The command it runs.
    pub command: SessionCommand,
    /// When.
    pub schedule: Schedule,
    /// Whether it runs on its schedule.
    pub enabled: bool,
    /// The next run, when enabled.
    pub next_run_ms: Option<u64>,
    /// The last run.
    pub last_run_ms: Option<u64>,
    /// The last run's message line.
    pub last_result: Option<String>,
    /// Who created it.
    pub owner: String,
}
