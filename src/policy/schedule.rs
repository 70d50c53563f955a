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

/// The names of the weekdays set in `days` (bit 0 = Monday), Monday first.
pub fn weekday_names(days: u8) -> Vec<&'static str> {
    WEEKDAYS
        .iter()
        .enumerate()
        .filter(|(i, _)| days & (1 << i) != 0)
        .map(|(_, d)| *d)
        .collect()
}

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
    /// What it is for, in the user's words.
    #[serde(default)]
    pub description: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wednesday 2026-11-25 00:00:00 UTC.
    const WED: u64 = 1_795_564_800_000;

    #[test]
    fn weekly_runs_on_its_days_at_its_time() {
        // Mondays and Fridays at 02:30.
        let s = Schedule::Weekly {
            days: 0b0001_0001,
            minute_of_day: 150,
        };
        let fri = WED + 2 * DAY_MS + 150 * MINUTE_MS;
        assert_eq!(s.next_after(WED), Some(fri));
        assert_eq!(s.next_after(fri), Some(fri + 3 * DAY_MS), "then Monday");
        assert_eq!(s.next_after(fri - 1), Some(fri));
        // Wednesday itself, later the same day.
        let w = Schedule::Weekly {
            days: 0b0000_0100,
            minute_of_day: 60,
        };
        assert_eq!(w.next_after(WED), Some(WED + 60 * MINUTE_MS));
        assert_eq!(
            w.next_after(WED + 60 * MINUTE_MS),
            Some(WED + 7 * DAY_MS + 60 * MINUTE_MS)
        );
    }

    #[test]
    fn once_and_interval() {
        let once = Schedule::Once {
            at_ms: Some(WED + 5),
        };
        assert_eq!(once.next_after(WED), Some(WED + 5));
        assert_eq!(once.next_after(WED + 5), None);
        assert_eq!(Schedule::Once { at_ms: None }.next_after(0), None);
        let every = Schedule::Interval {
            start_ms: WED,
            interval_ms: 30 * MINUTE_MS,
        };
        assert_eq!(every.next_after(WED - 1), Some(WED));
        assert_eq!(every.next_after(WED), Some(WED + 30 * MINUTE_MS));
        assert_eq!(every.runs_between(WED, WED + 120 * MINUTE_MS), 4);
        // Near the end of time: no overflow, no run.
        let far = Schedule::Interval {
            start_ms: 0,
            interval_ms: u64::MAX / 2 + 1,
        };
        assert_eq!(far.next_after(u64::MAX - 1), None);
    }

    #[test]
    fn backups_are_thirty_minutes_apart_at_least() {
        let every = |m: u64| Schedule::Interval {
            start_ms: 0,
            interval_ms: m * MINUTE_MS,
        };
        assert!(every(29).check(SessionCommand::Backup).is_err());
        assert!(every(30).check(SessionCommand::Backup).is_ok());
        assert!(every(5).check(SessionCommand::Flash).is_ok());
        assert!(every(0).check(SessionCommand::Flash).is_err());
        let daily = Schedule::Weekly {
            days: 0x7F,
            minute_of_day: 0,
        };
        assert!(daily.check(SessionCommand::Backup).is_ok());
        let bad = Schedule::Weekly {
            days: 0,
            minute_of_day: 0,
        };
        assert!(bad.check(SessionCommand::Flash).is_err());
        let late = Schedule::Weekly {
            days: 1,
            minute_of_day: 1440,
        };
        assert!(late.check(SessionCommand::Flash).is_err());
    }
}
