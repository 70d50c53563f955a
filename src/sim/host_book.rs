//! What an emulated host keeps of its users and of the requests it carried out: its
//! RACF-like security and a bounded record. Shared by the emulated z/OS and z/TPF,
//! which reach it by `Deref` (`system.racf()`, `system.recorded()`, ...).

use std::collections::VecDeque;

use super::security::{RefusedLogon, Security};
use crate::passticket::RacfName;
use crate::passticket::evaluator::Evaluator;
use crate::proto::host_flash::HostFlashOptions;
use crate::proto::{VolumePair, VolumeRef};

/// Requests a system keeps in its record: the most recent only, so that a client
/// cannot grow it without bound (a 4,096-volume backup is about 50 KB).
pub const RECORDED_KEPT: usize = 256;

/// A FlashCopy or backup request the system received (until the DS8000 is attached).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// A FLASH.
    Flash {
        /// Options.
        options: HostFlashOptions,
        /// Pairs.
        pairs: Vec<VolumePair>,
        /// Point-in-time given in the reply.
        time: u64,
    },
    /// An SGC_BACKUP.
    Backup {
        /// Volumes.
        volumes: Vec<VolumeRef>,
        /// Backup id given in the reply.
        backup_id: u64,
    },
}

/// Security and the record of one emulated host.
pub struct HostBook {
    pub(super) security: Security,
    recorded: VecDeque<Recorded>,
}

impl HostBook {
    /// A book around `security`, with an empty record.
    pub fn new(security: Security) -> Self {
        HostBook {
            security,
            recorded: VecDeque::new(),
        }
    }

    /// An operator's RESUME of a revoked user (RACF `ALTUSER userid RESUME`); true if
    /// the user was revoked.
    pub fn resume(&mut self, user: &RacfName) -> bool {
        self.security.resume(user)
    }

    /// The last refused logons with their precise reasons (the client got
    /// NOT_AUTHORIZED; passticket.md §4.7).
    pub fn refusals(&self) -> &VecDeque<RefusedLogon> {
        self.security.refusals()
    }

    /// The RACF-like evaluator.
    pub fn racf(&mut self) -> &mut Evaluator {
        self.security.racf()
    }

    /// FlashCopy and backup requests received so far (the last [`RECORDED_KEPT`]).
    pub fn recorded(&self) -> Vec<Recorded> {
        self.recorded.iter().cloned().collect()
    }

    /// Keeps a request in the bounded record (the oldest go first).
    pub(super) fn record(&mut self, r: Recorded) {
        if self.recorded.len() == RECORDED_KEPT {
            self.recorded.pop_front();
        }
        self.recorded.push_back(r);
    }
}
