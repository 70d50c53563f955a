//! The session and policy engine (pure): CSM's sessions, roles, grants, dual control,
//! schedules and retention behind every flash and backup zgate forwards. It takes
//! time as an input and touches no socket, clock or store.
//!
//! | module | what it holds |
//! |---|---|
//! | `engine` | the engine: commands in (each prepared — `commands.rs` for sessions, `prepare_users.rs`, `prepare_inventory.rs`, `prepare_tasks.rs` — then carried out), storage outcomes, discoveries and timeouts in, records, console messages, storage actions, discovery logons and finished commands out; `kinds/` plans each session type's commands (`fc.rs`, `sgc.rs`, `mm.rs`); `state.rs` is the one record type and `State::apply`, `delta.rs` what a change to a session writes; `results.rs`, `reconcile.rs`, `timers.rs` the rest (policy.md §5–§8) |
//! | `session` | sessions, copy sets, states and commands; each type's options and what it remembers between commands (`Runtime`) in its own module (`fc.rs`, `sgc.rs`, `mirror.rs`) |
//! | `copy_set_file` | copy sets as a CSV file, CSM's export shape (§5.7) |
//! | `access` | roles, operator grants, authorisation (§1) |
//! | `dual_control` | the modes and pending requests (§2) |
//! | `retention` | Safeguarded Copy backup policy: retention, minimum kept, manual expiry (§3) |
//! | `inventory` | storage systems, host connections, volumes (§4) |
//! | `console` | message ids and texts (§6) |
//! | `schedule` | scheduled tasks (§7) |
//! | `storage` | what the engine asks of the storage world and what it hears back |
//! | `volume_runs` | volume and pair lists in records as runs (a whole box is one) |
//! | `audit` | the hash-chained audit trail (audit.md) |

pub mod access;
pub mod audit;
pub mod console;
pub mod copy_set_file;
pub mod dual_control;
pub mod engine;
pub mod inventory;
pub mod retention;
pub mod schedule;
pub mod server_properties;
pub mod session;
pub mod storage;
pub mod volume_runs;

use serde::{Deserialize, Serialize};

/// CSM's session types that zgate runs (their REST `type` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SessionType {
    /// `FC`: DS8000 FlashCopy, role pair H1-T1.
    Fc,
    /// `SGC`: DS8000 Safeguarded Copy, role pairs H1-B1 and H1-R1.
    Sgc,
    /// `MM`: DS8000 Metro Mirror Failover/Failback, role pair H1-H2, with the
    /// HyperSwap option bound to a z/OS system.
    Mm,
    /// `HS`: Basic HyperSwap, role pair H1-H2, CKD volumes only, always managed by
    /// z/OS HyperSwap.
    Hs,
}

impl SessionType {
    /// The REST `type` value.
    pub fn code(self) -> &'static str {
        match self {
            SessionType::Fc => "FC",
            SessionType::Sgc => "SGC",
            SessionType::Mm => "MM",
            SessionType::Hs => "HS",
        }
    }

    /// Every type, in the order lists show them.
    pub const ALL: [SessionType; 4] = [
        SessionType::Fc,
        SessionType::Sgc,
        SessionType::Mm,
        SessionType::Hs,
    ];

    /// Parses the REST `type` value (any case).
    pub fn parse(code: &str) -> Option<SessionType> {
        SessionType::ALL
            .into_iter()
            .find(|k| k.code().eq_ignore_ascii_case(code))
    }

    /// CSM's display name (REST `rulesname`).
    pub fn display_name(self) -> &'static str {
        match self {
            SessionType::Fc => "FlashCopy",
            SessionType::Sgc => "Safeguarded Copy",
            SessionType::Mm => "Metro Mirror Failover/Failback",
            SessionType::Hs => "Basic HyperSwap",
        }
    }

    /// Whether its copy sets are Metro Mirror pairs (H1 on one image, H2 on another).
    pub fn mirrored(self) -> bool {
        matches!(self, SessionType::Mm | SessionType::Hs)
    }
}
