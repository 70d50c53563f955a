//! Safeguarded Copy sessions (policy.md §5.3–§5.5): Backup (with the minimum time
//! between backups), Expire Backup (manual expiry, the minimum kept), Recover Backup,
//! Restore Backup to Production, Initiate Background Copy, TerminateH1R1, Terminate,
//! Refresh States.

use super::{Completed, Plan};
use crate::ds8k::ids::VolumeId;
use crate::policy::engine::commands::retention_refusal;
use crate::policy::engine::state::InFlight;
use crate::policy::engine::{Refusal, codes};
use crate::policy::retention::Backup;
use crate::policy::retention::RetentionRefusal;
use crate::policy::session::{Session, SessionCommand, SessionState, SessionStatus, SgcProperties};
use crate::policy::storage::StorageOp;
use crate::policy::storage::StorageOutcome;

/// The plan of `command` on SGC session `s`.
pub(in crate::policy::engine) fn plan(
    s: &Session,
    p: &SgcProperties,
    command: SessionCommand,
    now_ms: u64,
) -> Result<Plan, Refusal> {
    let session = &s.name;
    // Backups are of every H1; Recover writes to the copy sets that have an R1.
    let h1: Vec<VolumeId> = s.h1_volumes();
    Ok(match command {
        SessionCommand::Backup => {
            p.policy
                .may_back_up(s.backups(), now_ms)
                .map_err(retention_refusal)?;
            Plan::Steps(vec![StorageOp::Backup { volumes: h1 }])
        }
        SessionCommand::ExpireBackup(id) => {
            p.policy
                .manual_expiry(s.backups(), id)
                .map_err(retention_refusal)?;
            Plan::Steps(vec![StorageOp::Expire { backup: id }])
        }
        SessionCommand::RecoverBackup(id) => {
            let pairs = s.pairs();
            if pairs.is_empty() {
                return Ok(Plan::NotValid);
            }
            check_recoverable(s, id)?;
            Plan::Steps(vec![StorageOp::Recover { backup: id, pairs }])
        }
        SessionCommand::RestoreBackupToProduction(id) => {
            check_recoverable(s, id)?;
            Plan::Steps(vec![StorageOp::Restore {
                backup: id,
                volumes: h1,
            }])
        }
        // The simulated box writes a recovered image in full at `Recover`, so R1
        // holds every track already: there is nothing left to copy.
        SessionCommand::InitiateBackgroundCopy => Plan::Done {
            next: None,
            text: format!(
                "The Initiate Background Copy command in the {session} session completed: the recovery volumes hold every track of backup {} already.",
                s.recovered().unwrap_or_default()
            ),
        },
        SessionCommand::TerminateH1R1 => {
            let mut next = s.clone();
            if let Some(sgc) = next.sgc_mut() {
                sgc.recovered = None;
            }
            Plan::Done {
                next: Some(Box::new(next)),
                text: format!("The TerminateH1R1 command in the {session} session completed."),
            }
        }
        SessionCommand::Terminate => match s.backups().iter().map(|b| b.id).max() {
            Some(newest) => Plan::Steps(vec![StorageOp::Expire { backup: newest }]),
            None => {
                let mut next = s.clone();
                next.state = SessionState::Defined;
                next.status = SessionStatus::Inactive;
                if let Some(sgc) = next.sgc_mut() {
                    sgc.recovered = None;
                }
                Plan::Done {
                    next: Some(Box::new(next)),
                    text: format!("The Terminate command in the {session} session completed."),
                }
            }
        },
        SessionCommand::RefreshStates => Plan::Steps(vec![StorageOp::ListBackups { volumes: h1 }]),
        _ => Plan::NotValid,
    })
}

/// Recover and Restore take only a recoverable backup (policy.md §5.3).
fn check_recoverable(s: &Session, id: u64) -> Result<(), Refusal> {
    use crate::policy::session::Unrecoverable;
    let why = match s.unrecoverable_because(id) {
        None => return Ok(()),
        Some(Unrecoverable::Unknown) => {
            return Err(retention_refusal(RetentionRefusal::UnknownBackup(id)));
        }
        Some(Unrecoverable::Newest) => format!(
            "backup {id} of session {} is the newest and not yet recoverable: the DS8000 cannot recover from the last backup taken",
            s.name
        ),
        Some(Unrecoverable::MissingCopySets) => format!(
            "backup {id} of session {} was taken before copy sets were added and does not hold their volumes; recover or restore a backup newer than {}",
            s.name,
            s.sgc().map_or(0, |g| g.backups_before_copy_sets)
        ),
    };
    Err(Refusal::policy(codes::BACKUP_NOT_RECOVERABLE, why))
}

/// SGC session `s` after `command`'s storage work answered `outcome`; the outcome
/// back when it is not one this command expects.
pub(in crate::policy::engine) fn complete(
    s: &mut Session,
    flight: &InFlight,
    command: SessionCommand,
    outcome: StorageOutcome,
) -> Result<Completed, StorageOutcome> {
    let mut done = Completed::default();
    match (command, outcome) {
        (SessionCommand::Terminate, StorageOutcome::Expired) => {
            if let Some(sgc) = s.sgc_mut() {
                sgc.backups.clear();
                sgc.recovered = None;
            }
            s.state = SessionState::Defined;
            s.status = SessionStatus::Inactive;
        }
        (SessionCommand::RefreshStates, StorageOutcome::Backups(found)) => {
            let mut backups: Vec<Backup> = found
                .iter()
                .map(|b| Backup {
                    id: b.id,
                    time_ms: b.time_ms,
                })
                .collect();
            backups.sort_by_key(|b| (b.time_ms, b.id));
            backups.dedup_by_key(|b| b.id);
            if let Some(sgc) = s.sgc_mut() {
                sgc.backups = backups;
            }
            state_from_backups(s);
            done.extra = format!(" {} backups found.", s.backups().len());
        }
        (SessionCommand::Backup, StorageOutcome::BackedUp { id, time_ms }) => {
            if let Some(sgc) = s.sgc_mut() {
                sgc.backups.push(Backup { id, time_ms });
                sgc.backups.sort_by_key(|b| (b.time_ms, b.id));
            }
            state_from_backups(s);
            done.extra = format!(" Backup {id} was taken.");
        }
        (SessionCommand::ExpireBackup(id), StorageOutcome::Expired) => {
            if let Some(sgc) = s.sgc_mut() {
                sgc.backups.retain(|b| b.id > id);
            }
            state_from_backups(s);
        }
        (SessionCommand::RecoverBackup(id), StorageOutcome::Recovered) => {
            if let Some(sgc) = s.sgc_mut() {
                sgc.recovered = Some(id);
            }
            s.state = flight.prior_state;
        }
        (SessionCommand::RestoreBackupToProduction(_), StorageOutcome::Restored { tracks }) => {
            s.state = flight.prior_state;
            done.extra = format!(" {tracks} tracks were written back.");
        }
        (_, outcome) => return Err(outcome),
    }
    Ok(done)
}

/// An SGC session's state and status from its backups (policy.md §5.3).
pub(in crate::policy::engine) fn state_from_backups(s: &mut Session) {
    match s.backups().len() {
        0 => {
            s.state = SessionState::Defined;
            s.status = SessionStatus::Inactive;
        }
        1 => {
            s.state = SessionState::Protected;
            s.status = SessionStatus::Warning;
        }
        _ => {
            s.state = SessionState::Protected;
            s.status = SessionStatus::Normal;
        }
    }
}
