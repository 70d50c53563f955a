//! Safeguarded Copy backup policy (`protocol-specs/policy.md` §3): when a backup
//! may be taken, which backups retention expires, and whether a manual
//! `Expire Backup` is allowed. Pure: the session's backups and the time are inputs.

use serde::{Deserialize, Serialize};

/// One backup as the session knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    /// Backup id (the DS8000's; increasing with time).
    pub id: u64,
    /// Point in time, ms since the epoch.
    pub time_ms: u64,
}

/// The SGC session properties that govern backups; the default is CSM's (all off).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SgcPolicy {
    /// "Retention period since last recoverable backup", ms; 0 = keep until rolled off.
    pub retention_ms: u64,
    /// "Minimum time frame per backup", ms; 0 = none.
    pub min_interval_ms: u64,
    /// "Allow Backups to be Manually Expired" (CSM's default: off).
    pub allow_manual_expiry: bool,
    /// "Minimum Number of Backups Retention Should Always Maintain"; 0 = none.
    pub min_kept: usize,
}

/// Why a backup or an expiry is refused (policy.md §3.4).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetentionRefusal {
    /// Inside the minimum time between backups.
    #[error(
        "the last backup was taken less than the minimum time between backups ago; the next is allowed at {}", crate::policy::console::utc_text(*next_allowed_ms)
    )]
    TooSoon {
        /// When the next backup is allowed, ms since the epoch.
        next_allowed_ms: u64,
    },
    /// The session does not allow manual expiry.
    #[error(
        "the session does not allow backups to be manually expired (Allow Backups to be Manually Expired is off)"
    )]
    ManualExpiryNotAllowed,
    /// No backup with this id.
    #[error("the session has no backup {0}")]
    UnknownBackup(u64),
    /// The expiry would leave fewer backups than the minimum kept.
    #[error(
        "expiring backup {id} and the {older} older would leave {left} backups; the session keeps at least {min_kept}"
    )]
    BelowMinimum {
        /// The backup asked for.
        id: u64,
        /// How many older ones it would take with it.
        older: usize,
        /// How many would be left.
        left: usize,
        /// The minimum.
        min_kept: usize,
    },
}

impl RetentionRefusal {
    /// The reason code (policy.md §3.4).
    pub fn code(&self) -> u16 {
        match self {
            RetentionRefusal::TooSoon { .. } => 0x1301,
            RetentionRefusal::ManualExpiryNotAllowed => 0x1302,
            RetentionRefusal::UnknownBackup(_) => 0x1303,
            RetentionRefusal::BelowMinimum { .. } => 0x1304,
        }
    }
}

impl SgcPolicy {
    /// May a backup be taken at `now_ms`? (§3.1) `backups` in any order.
    pub fn may_back_up(&self, backups: &[Backup], now_ms: u64) -> Result<(), RetentionRefusal> {
        let Some(newest) = backups.iter().map(|b| b.time_ms).max() else {
            return Ok(());
        };
        let next_allowed_ms = newest.saturating_add(self.min_interval_ms);
        if self.min_interval_ms > 0 && now_ms < next_allowed_ms {
            return Err(RetentionRefusal::TooSoon { next_allowed_ms });
        }
        Ok(())
    }

    /// The backups retention expires now (§3.2), oldest first. `backups` in any order.
    pub fn due_for_expiry(&self, backups: &[Backup]) -> Vec<Backup> {
        if self.retention_ms == 0 {
            return Vec::new();
        }
        let mut sorted = backups.to_vec();
        sorted.sort_by_key(|b| (b.time_ms, b.id));
        // The newest backup is not yet recoverable; retention counts back from the
        // newest recoverable one, the second newest.
        let Some(last_recoverable) = sorted.len().checked_sub(2).map(|i| sorted[i]) else {
            return Vec::new();
        };
        let cutoff = last_recoverable.time_ms.saturating_sub(self.retention_ms);
        let expendable = sorted.len().saturating_sub(self.min_kept);
        sorted
            .into_iter()
            .take(expendable)
            .take_while(|b| b.time_ms < cutoff)
            .collect()
    }

    /// What a manual `Expire Backup` of `id` removes (§3.3): that backup and every
    /// older one, oldest first; or why it is refused.
    pub fn manual_expiry(
        &self,
        backups: &[Backup],
        id: u64,
    ) -> Result<Vec<Backup>, RetentionRefusal> {
        if !self.allow_manual_expiry {
            return Err(RetentionRefusal::ManualExpiryNotAllowed);
        }
        let mut sorted = backups.to_vec();
        sorted.sort_by_key(|b| (b.time_ms, b.id));
        let Some(position) = sorted.iter().position(|b| b.id == id) else {
            return Err(RetentionRefusal::UnknownBackup(id));
        };
        let left = sorted.len() - position - 1;
        if left < self.min_kept {
            return Err(RetentionRefusal::BelowMinimum {
                id,
                older: position,
                left,
                min_kept: self.min_kept,
            });
        }
        sorted.truncate(position + 1);
        Ok(sorted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;
    const HOUR: u64 = 60 * MIN;

    /// Backups every hour from t = 0.
    fn hourly(n: u64) -> Vec<Backup> {
        (0..n)
            .map(|i| Backup {
                id: 1000 + i,
                time_ms: i * HOUR,
            })
            .collect()
    }

    #[test]
    fn a_backup_inside_the_minimum_time_is_refused_with_the_next_allowed_time() {
        let policy = SgcPolicy {
            min_interval_ms: 30 * MIN,
            ..SgcPolicy::default()
        };
        let backups = hourly(3); // newest at 2 h
        assert_eq!(policy.may_back_up(&[], 0), Ok(()));
        let refusal = policy
            .may_back_up(&backups, 2 * HOUR + 29 * MIN)
            .unwrap_err();
        assert_eq!(
            refusal,
            RetentionRefusal::TooSoon {
                next_allowed_ms: 2 * HOUR + 30 * MIN
            }
        );
        assert_eq!(refusal.code(), 0x1301);
        assert_eq!(policy.may_back_up(&backups, 2 * HOUR + 30 * MIN), Ok(()));
    }

    #[test]
    fn retention_counts_back_from_the_last_recoverable_backup() {
        let policy = SgcPolicy {
            retention_ms: 3 * HOUR,
            ..SgcPolicy::default()
        };
        // Ten hourly backups: newest at 9 h (not recoverable), last recoverable at
        // 8 h, so everything before 5 h expires: 0..=4 h.
        let due = policy.due_for_expiry(&hourly(10));
        assert_eq!(
            due.iter().map(|b| b.id).collect::<Vec<_>>(),
            [1000, 1001, 1002, 1003, 1004]
        );
        // With no new backups, nothing more ever expires: the last recoverable stays.
        assert!(policy.due_for_expiry(&hourly(10)[5..]).is_empty());
        assert!(policy.due_for_expiry(&hourly(1)).is_empty());
    }

    #[test]
    fn retention_never_leaves_fewer_than_the_minimum() {
        let policy = SgcPolicy {
            retention_ms: HOUR,
            min_kept: 7,
            ..SgcPolicy::default()
        };
        let due = policy.due_for_expiry(&hourly(10));
        assert_eq!(due.len(), 3, "10 backups, 7 kept");
        for n in 0..12 {
            let due = policy.due_for_expiry(&hourly(n)).len();
            assert!(n as usize - due >= policy.min_kept.min(n as usize));
        }
    }

    #[test]
    fn manual_expiry_is_off_by_default_and_takes_older_backups_with_it() {
        let backups = hourly(6);
        assert_eq!(
            SgcPolicy::default()
                .manual_expiry(&backups, 1002)
                .unwrap_err()
                .code(),
            0x1302
        );
        let policy = SgcPolicy {
            allow_manual_expiry: true,
            min_kept: 2,
            ..SgcPolicy::default()
        };
        let gone = policy.manual_expiry(&backups, 1002).unwrap();
        assert_eq!(
            gone.iter().map(|b| b.id).collect::<Vec<_>>(),
            [1000, 1001, 1002]
        );
        assert_eq!(
            policy.manual_expiry(&backups, 9).unwrap_err().code(),
            0x1303
        );
        let refusal = policy.manual_expiry(&backups, 1004).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "expiring backup 1004 and the 4 older would leave 1 backups; the session keeps at least 2"
        );
        assert_eq!(refusal.code(), 0x1304);
        assert_eq!(policy.manual_expiry(&backups, 1003).unwrap().len(), 4);
    }
}
