//! FlashCopy sessions (policy.md §5.2, §5.4): Flash (incremental or whole, with
//! Minimum Time Frame per Flash), Initiate Background Copy, Terminate, Refresh States.

use super::Plan;
use crate::policy::engine::{Refusal, codes};
use crate::policy::session::{FcProperties, Session, SessionCommand, SessionState, SessionStatus};
use crate::policy::storage::StorageOp;

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
            if let Some(last) = s.last_flash_ms {
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
