//! FlashCopy sessions (`protocol-specs/policy.md` §5.2): their options and what a
//! session of this type remembers between commands. Its commands and storage steps
//! are `policy/engine/kinds/fc.rs`.

use serde::{Deserialize, Serialize};

/// FlashCopy session options (policy.md §5.2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FcProperties {
    /// Incremental: record changes; a later `Flash` copies only what changed.
    pub incremental: bool,
    /// No Copy: no background copy after `Flash`.
    pub no_copy: bool,
    /// Persistent: relationships stay after the copy completes.
    pub persistent: bool,
    /// Inhibit Target Writes: host writes to T1 are refused while flashed.
    pub inhibit_target_writes: bool,
    /// Minimum Time Frame per Flash (mins); 0 = none.
    pub min_flash_interval_mins: u32,
    /// The z/OS or z/TPF system to flash through; none = the HMC.
    pub host_system: Option<String>,
}

impl FcProperties {
    /// The DS8000 option bits a `Flash` uses (consistency group: always frozen).
    pub fn flash_bits(&self) -> u16 {
        use crate::ds8k::copy::FlashOptions as O;
        let mut bits = O::FREEZE;
        if self.incremental {
            bits |= O::RECORD | O::PERSIST;
        }
        if self.persistent {
            bits |= O::PERSIST;
        }
        if self.no_copy {
            bits |= O::NO_COPY;
        }
        if self.inhibit_target_writes {
            bits |= O::INHIBIT_TARGET_WRITES;
        }
        bits
    }
}

/// What an FC session remembers between commands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FcRuntime {
    /// When the last `Flash` through zgate was taken, ms since the epoch (the
    /// minimum time frame per flash counts from it).
    pub last_flash_ms: Option<u64>,
}
