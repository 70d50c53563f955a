//! The session and policy engine (pure): CSM's sessions, roles, grants, dual control,
//! schedules and retention behind every flash and backup zgate forwards. It takes
//! time as an input and touches no socket, clock or store.
//!
//! Built so far: roles and operator grants, dual control, Safeguarded Copy backup
//! policy, and the hash-chained audit trail.

pub mod access;
pub mod audit;
pub mod console;
pub mod dual_control;
pub mod engine;
pub mod inventory;
pub mod retention;
pub mod schedule;
pub mod session;
pub mod storage;

use serde::{Deserialize, Serialize};

/// CSM's session types that zgate runs (their REST `type` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SessionType {
    /// `FC`: DS8000 FlashCopy, role pair H1-T1.
    Fc,
    /// `SGC`: DS8000 Safeguarded Copy, role pairs H1-B1 and H1-R1.
    Sgc,
}

impl SessionType {
    /// The REST `type` value.
    pub fn code(self) -> &'static str {
        match self {
            SessionType::Fc => "FC",
            SessionType::Sgc => "SGC",
        }
    }
}
