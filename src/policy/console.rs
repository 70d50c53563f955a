//! Console messages (`protocol-specs/policy.md` §6): every command result, refusal,
//! request, approval, schedule run, retention expiry and state change is told as a
//! message with a CSM-style id (`IWNR2772I`) whose last letter is its severity.

use serde::{Deserialize, Serialize};

/// A message's severity: the id's last letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Severity {
    /// `I`: information.
    Info,
    /// `W`: warning.
    Warning,
    /// `E`: error (a client treats it as a failure).
    Error,
}

impl Severity {
    /// The id's last letter.
    pub fn letter(self) -> char {
        match self {
            Severity::Info => 'I',
            Severity::Warning => 'W',
            Severity::Error => 'E',
        }
    }
}

/// A message id: `IWNR` + number + severity letter (policy.md §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageId {
    /// The number, printed with at least four digits.
    pub number: u16,
    /// The severity.
    pub severity: Severity,
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IWNR{:04}{}", self.number, self.severity.letter())
    }
}

const fn id(number: u16, severity: Severity) -> MessageId {
    MessageId { number, severity }
}

/// The catalogue (policy.md §6.2). Numbers that CSM is seen to use keep CSM's meaning;
/// zgate's own are in 8000–8999.
pub mod ids {
    use super::{MessageId, Severity::*, id};
    /// The command in the session completed.
    pub const COMMAND_COMPLETED: MessageId = id(1026, Info);
    /// A session by that name exists already.
    pub const SESSION_EXISTS: MessageId = id(1019, Error);
    /// No session by that name.
    pub const SESSION_NOT_FOUND: MessageId = id(1502, Error);
    /// The command is not valid in the session's state; the valid ones are listed.
    pub const COMMAND_NOT_VALID: MessageId = id(1302, Error);
    /// A dual-control request was rejected.
    pub const REQUEST_REJECTED: MessageId = id(2605, Info);
    /// A scheduled task will run at a time.
    pub const TASK_SCHEDULED: MessageId = id(2207, Info);
    /// A scheduled task has finished running.
    pub const TASK_FINISHED: MessageId = id(2212, Info);
    /// Background copy of a FlashCopy session is complete.
    pub const BACKGROUND_COPY_COMPLETE: MessageId = id(2772, Info);
    /// A change to the server's configuration (session, copy sets, properties, user,
    /// storage system, host connection, task) was made.
    pub const CHANGED: MessageId = id(8001, Info);
    /// The command was handed to the storage system; its result follows.
    pub const COMMAND_STARTED: MessageId = id(8002, Info);
    /// A dual-control request was created.
    pub const REQUEST_CREATED: MessageId = id(8003, Warning);
    /// A dual-control request was approved; the request's own result follows.
    pub const REQUEST_APPROVED: MessageId = id(8004, Info);
    /// A dual-control request was cancelled by its requester.
    pub const REQUEST_CANCELLED: MessageId = id(8005, Info);
    /// A dual-control request expired unanswered.
    pub const REQUEST_EXPIRED: MessageId = id(8006, Warning);
    /// The dual-control mode changed.
    pub const MODE_CHANGED: MessageId = id(8007, Info);
    /// Refused: role, grant or dual-control authority missing.
    pub const NOT_AUTHORIZED: MessageId = id(8010, Error);
    /// Refused: a rule of the session's properties (minimum time frame, manual expiry,
    /// minimum backups kept).
    pub const POLICY_REFUSED: MessageId = id(8011, Error);
    /// Refused: the request is malformed or names something that does not exist.
    pub const BAD_REQUEST: MessageId = id(8012, Error);
    /// The storage system (or the host path to it) failed the command.
    pub const STORAGE_FAILED: MessageId = id(8013, Error);
    /// Retention expired backups.
    pub const RETENTION_EXPIRED: MessageId = id(8014, Info);
    /// The box rolled a backup off (safeguarded capacity full).
    pub const BACKUP_ROLLED_OFF: MessageId = id(8015, Warning);
    /// A scheduled task's runs were missed while the server was down.
    pub const TASK_MISSED: MessageId = id(8016, Warning);
    /// A session's state changed.
    pub const STATE_CHANGED: MessageId = id(8017, Info);
    /// A scheduled task failed.
    pub const TASK_FAILED: MessageId = id(8018, Error);
    /// A storage action's answer was lost; the box is asked what it did (policy.md §8.4).
    pub const OUTCOME_UNKNOWN: MessageId = id(8019, Warning);
    /// The box was found to have carried out an action whose answer was lost.
    pub const OUTCOME_FOUND: MessageId = id(8020, Info);
    /// An LSS was found frozen with no Flash under way, and is thawed.
    pub const LEFT_FROZEN: MessageId = id(8021, Warning);
    /// A session's backups were brought in line with the box's (policy.md §8.4).
    pub const RECONCILED: MessageId = id(8022, Warning);
    /// Refused: the change breaks a rule (copy set, schedule, user, in use, last
    /// Administrator).
    pub const RULE_BROKEN: MessageId = id(8023, Error);
    /// Metro Mirror pairs of a session were suspended by the storage system (a
    /// path failure, a freeze not asked by the session).
    pub const PAIRS_SUSPENDED: MessageId = id(8030, Error);
    /// z/OS swapped a session's pairs on its own (unplanned HyperSwap).
    pub const UNPLANNED_SWAP: MessageId = id(8031, Warning);
    /// z/OS disabled HyperSwap for a session.
    pub const HYPERSWAP_DISABLED: MessageId = id(8032, Warning);
    /// A freeze trigger fired on z/OS for a session (freeze or hardened freeze).
    pub const FREEZE_TRIGGERED: MessageId = id(8033, Warning);
    /// The high-availability status was read (CSM's `GET /system/ha`).
    pub const HA_STATUS: MessageId = id(3048, Info);
    /// An HA operation was carried out (pairing, takeover, reconnect, removal).
    pub const HA_STATUS_CHANGED: MessageId = id(8100, Info);
    /// The active/standby link is up (ha.md §9).
    pub const HA_CONNECTED: MessageId = id(8101, Info);
    /// The active/standby link is down.
    pub const HA_DISCONNECTED: MessageId = id(8102, Warning);
    /// The standby holds everything the active has stored.
    pub const HA_SYNCHRONIZED: MessageId = id(8103, Info);
    /// This server took over as the active.
    pub const HA_TAKEOVER: MessageId = id(8104, Info);
    /// This server saw a higher epoch and stopped acting as the active.
    pub const HA_FENCED: MessageId = id(8105, Warning);
    /// A relationship was made (a server became another's standby).
    pub const HA_PAIRED: MessageId = id(8106, Info);
    /// A relationship was removed.
    pub const HA_REMOVED: MessageId = id(8107, Info);
    /// Refused: this server is the standby; changes go to the active.
    pub const SERVER_IS_STANDBY: MessageId = id(8108, Error);
    /// Refused: an HA operation that cannot be done now (ha.md §8).
    pub const HA_REFUSED: MessageId = id(8109, Error);
}

/// One console message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleMessage {
    /// Its id.
    pub id: MessageId,
    /// When, ms since the epoch (the engine's input time).
    pub at_ms: u64,
    /// The session it concerns, if any.
    pub session: Option<String>,
    /// The text, inserts substituted.
    pub text: String,
    /// The substituted values, in order.
    pub inserts: Vec<String>,
}

impl ConsoleMessage {
    /// A message about `session` (or the server) at `at_ms`.
    pub fn new(
        id: MessageId,
        at_ms: u64,
        session: Option<&str>,
        text: String,
        inserts: Vec<String>,
    ) -> ConsoleMessage {
        ConsoleMessage {
            id,
            at_ms,
            session: session.map(str::to_owned),
            text,
            inserts,
        }
    }

    /// `IWNR2772I The …`: id and text, as a console line.
    pub fn line(&self) -> String {
        format!("{} {}", self.id, self.text)
    }

    /// Whether a client treats it as a failure.
    pub fn is_error(&self) -> bool {
        self.id.severity == Severity::Error
    }
}

/// The UTC calendar date and time of `ms` since the epoch: (year, month 1–12, day,
/// hour, minute, second). Howard Hinnant's days-to-civil algorithm.
pub fn civil(ms: u64) -> (i64, u32, u32, u32, u32, u32) {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let small = |v: i64| u32::try_from(v).unwrap_or(0);
    let rem = small(i64::try_from(rem).unwrap_or(0));
    (
        year,
        small(month),
        small(day),
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
    )
}

/// `2026-11-28 07:21:22 UTC (1795850482587)`: a time for people, with the exact ms
/// since the epoch for programs.
pub fn utc_text(ms: u64) -> String {
    format!("{} ({ms})", utc_date(ms))
}

/// `yyyy-MM-dd HH:mm:ss UTC` alone (REST's time fields, rest.md §2).
pub fn utc_date(ms: u64) -> String {
    let (year, month, day, h, m, s) = civil(ms);
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02} UTC")
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_text_is_a_calendar_date() {
        assert_eq!(super::utc_text(0), "1970-01-01 00:00:00 UTC (0)");
        assert_eq!(super::utc_date(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            super::utc_text(1_795_564_800_000 + 3_723_000),
            "2026-11-25 01:02:03 UTC (1795568523000)"
        );
        assert_eq!(
            super::utc_text(951_782_400_000),
            "2000-02-29 00:00:00 UTC (951782400000)"
        );
    }
}
