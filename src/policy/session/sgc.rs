//! Safeguarded Copy sessions (`protocol-specs/policy.md` §3, §5.3): their options
//! and what a session of this type remembers between commands, its backups above
//! all. Its commands and storage steps are `policy/engine/kinds/sgc.rs`.

use serde::{Deserialize, Serialize};

use crate::policy::retention::{Backup, SgcPolicy};

/// Safeguarded Copy session options (policy.md §3, §5.3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SgcProperties {
    /// Retention, minimum time between backups, manual expiry, minimum kept.
    pub policy: SgcPolicy,
    /// The z/OS or z/TPF system to take backups through; none = the HMC.
    pub host_system: Option<String>,
}

/// What an SGC session remembers between commands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SgcRuntime {
    /// Its backups, oldest first.
    pub backups: Vec<Backup>,
    /// The backup recovered to R1, while the H1-R1 relationship stands.
    pub recovered: Option<u64>,
    /// The newest backup id when copy sets were last added (0: none since the
    /// first backup). Backups up to it do not hold the added volumes, so they
    /// cannot be recovered or restored as the session's image (policy.md §3.5).
    pub backups_before_copy_sets: u64,
}
