//! FlashCopy sessions (policy.md §5.2, §5.4): Flash (incremental or whole, with
//! Minimum Time Frame per Flash), Initiate Background Copy, Terminate, Refresh States.

use super::{After, Completed, Plan};
use crate::policy::engine::state::InFlight;
use crate::policy::engine::{Refusal, codes};
use crate::policy::session::{FcProperties, Session, SessionCommand, SessionState, SessionStatus};
use crate::policy::storage::StorageOp;
use crate::policy::storage::StorageOutcome;

/// The plan of `command` on FC session `s`.
pub(in crate::policy::engine) fn plan(
    s: &Session,
    p: &FcProperties,
    command: SessionCommand,
    now_ms: u64,
) -> Result<Plan, Refusal> {
    let session = &s.name;
    let pairs = s.pairs();
    Ok(match command {
        SessionCommand::Flash => {
            if let Some(last) = s.last_flash_ms() {
                let next = last.saturating_add(u64::from(p.min_flash_interval_mins) * 60_000);
                if p.min_flash_interval_mins > 0 && now_ms < next {
                    return Err(Refusal::policy(
                        codes::FLASH_TOO_SOON,
                        format!(
                            "The Flash command in the {session} session is refused: the Minimum Time Frame per Flash is {} minutes; the last flash was at {}, the next is allowed at {}.",
                            p.min_flash_interval_mins,
                            crate::policy::engine::commands::ms_text(last),
                            crate::policy::engine::commands::ms_text(next)
                        ),
                    ));
                }
            }
            let bits = p.flash_bits();
            Plan::Steps(match (s.relationships, p.incremental) {
                (true, true) => vec![StorageOp::Resync {
                    pairs,
                    options: bits,
                }],
                (true, false) => vec![
                    StorageOp::Withdraw {
                        pairs: pairs.clone(),
                        copy_first: false,
                    },
                    StorageOp::Establish {
                        pairs,
                        options: bits,
                    },
                ],
                _ => vec![StorageOp::Establish {
                    pairs,
                    options: bits,
                }],
            })
        }
        SessionCommand::InitiateBackgroundCopy => Plan::Steps(vec![StorageOp::Withdraw {
            pairs,
            copy_first: true,
        }]),
        SessionCommand::Terminate if s.relationships => Plan::Steps(vec![StorageOp::Withdraw {
            pairs,
            copy_first: false,
        }]),
        SessionCommand::Terminate => {
            let mut next = s.clone();
            next.state = SessionState::Defined;
            next.status = SessionStatus::Inactive;
            next.copying = false;
            Plan::Done {
                next: Some(Box::new(next)),
                text: format!(
                    "The Terminate command in the {session} session completed: no relationship was left on the storage system."
                ),
            }
        }
        SessionCommand::RefreshStates => Plan::Steps(vec![StorageOp::QueryFlash { pairs }]),
        _ => Plan::NotValid,
    })
}

/// FC session `s` after `command`'s storage work answered `outcome`; the outcome
/// back when it is not one this command expects.
pub(in crate::policy::engine) fn complete(
    s: &mut Session,
    flight: &InFlight,
    command: SessionCommand,
    outcome: StorageOutcome,
) -> Result<Completed, StorageOutcome> {
    let mut done = Completed::default();
    match (command, outcome) {
        (SessionCommand::Flash, StorageOutcome::Flashed { out_of_sync_tracks }) => {
            s.state = SessionState::TargetAvailable;
            s.status = SessionStatus::Normal;
            if let Some(fc) = s.fc_mut() {
                fc.last_flash_ms = Some(flight.started_ms);
            }
            let no_copy =
                matches!(&s.properties, crate::policy::session::Properties::Fc(p) if p.no_copy);
            s.copying = !no_copy && out_of_sync_tracks > 0;
            s.relationships = s.copying || !s.ends_when_copied() || no_copy;
            done.after.push(After::Progress(out_of_sync_tracks));
            done.extra = format!(" {out_of_sync_tracks} tracks to copy in the background.");
            if s.copying {
                done.after.push(After::PollCopy);
            }
        }
        (SessionCommand::InitiateBackgroundCopy, StorageOutcome::Withdrawn) => {
            // `rmflash -cp`: the relationships copy, then end.
            s.state = flight.prior_state;
            s.copying = true;
            s.relationships = true;
            done.after.push(After::PollCopy);
        }
        (SessionCommand::Terminate, StorageOutcome::Withdrawn) => {
            s.state = SessionState::Defined;
            s.status = SessionStatus::Inactive;
            s.copying = false;
            s.relationships = false;
            done.after.push(After::ForgetProgress);
        }
        (SessionCommand::RefreshStates, StorageOutcome::FlashStates(pairs)) => {
            s.state = if pairs.is_empty() {
                SessionState::Defined
            } else {
                SessionState::TargetAvailable
            };
            let oos: u64 = pairs.iter().map(|p| p.out_of_sync_tracks).sum();
            done.after.push(After::Progress(oos));
            s.relationships = !pairs.is_empty();
            s.status = if pairs.is_empty() {
                SessionStatus::Inactive
            } else {
                SessionStatus::Normal
            };
            if s.copying && oos == 0 {
                s.copying = false;
                done.after.push(After::CopyComplete);
            }
        }
        (_, outcome) => return Err(outcome),
    }
    Ok(done)
}
