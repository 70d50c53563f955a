//! Metro Mirror Failover/Failback (`MM`) and Basic HyperSwap (`HS`) sessions
//! (`protocol-specs/policy.md` §5.8): their options and where their pairs and
//! production are between commands. Their commands and storage steps are
//! `policy/engine/kinds/mm.rs`.

use serde::{Deserialize, Serialize};

/// Metro Mirror Failover/Failback and Basic HyperSwap options (policy.md §5.8).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MmProperties {
    /// Manage H1-H2 with HyperSwap: `Start` loads and enables the configuration on
    /// the z/OS system, `HyperSwap` swaps through it (always on for Basic HyperSwap).
    pub hyperswap: bool,
    /// Manage H1-H2 with Hardened Freeze (MM): without HyperSwap, Start loads the
    /// configuration on the z/OS system and arms its freeze (HS_ENABLE_FREEZE), so
    /// that z/OS itself freezes the whole session when a pair's path fails.
    #[serde(default)]
    pub hardened_freeze: bool,
    /// The Suspend policy: off, "Release I/O after Suspend" (FreezeAll and Run: the
    /// frozen LSSs take writes again at once); on, "Hold I/O after Suspend"
    /// (FreezeAll and Stop: they stay long busy until the box's timeout).
    pub hold_io_after_suspend: bool,
    /// The z/OS system whose HyperSwap address space manages the pairs.
    pub host_system: Option<String>,
    /// The other members of its sysplex (host connections) that hold the
    /// configuration too: HyperSwap is enabled on each, and is *degraded* while it
    /// is enabled on some of them and not on others (policy.md §5.8).
    #[serde(default)]
    pub members: Vec<String>,
}

impl MmProperties {
    /// The other members, without the host system, in order.
    pub fn other_members(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| Some(*m) != self.host_system.as_ref())
            .cloned()
            .collect()
    }

    /// Whether the session's configuration lives on its z/OS system (HyperSwap or
    /// Hardened Freeze manages it).
    pub fn on_zos(&self) -> bool {
        self.hyperswap || self.hardened_freeze
    }
}

/// One site of a Metro Mirror session: the H1 or the H2 volumes' storage image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Site {
    /// H1.
    #[default]
    H1,
    /// H2.
    H2,
}

impl Site {
    /// CSM's name (`productionhost`).
    pub fn name(self) -> &'static str {
        match self {
            Site::H1 => "H1",
            Site::H2 => "H2",
        }
    }

    /// The other site.
    pub fn other(self) -> Site {
        match self {
            Site::H1 => Site::H2,
            Site::H2 => Site::H1,
        }
    }
}

/// The HyperSwap configuration of a session on its z/OS system.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum HyperSwapStatus {
    /// Not loaded (or the session does not use HyperSwap).
    #[default]
    NotLoaded,
    /// Loaded, HyperSwap disabled (after a swap, a freeze, Suspend or Stop).
    Disabled,
    /// Loaded and enabled: z/OS swaps on a planned command or a primary failure.
    Enabled,
}

/// Where a Metro Mirror session's pairs and production are (policy.md §5.8).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorState {
    /// The site of the pairs' primaries on the box (the last Start's direction).
    pub source: Site,
    /// The site the hosts use (the other one after Recover or HyperSwap).
    pub production: Site,
    /// The HyperSwap configuration on z/OS (on the host system).
    pub hyperswap: HyperSwapStatus,
    /// The other sysplex members (bit i: `members[i]`) on which HyperSwap is
    /// disabled while it is meant to be enabled.
    #[serde(default)]
    pub members_disabled: u32,
}

impl MirrorState {
    /// HyperSwap is enabled on some of the session's systems and not on others.
    pub fn degraded(&self, members: usize) -> bool {
        let all = if members >= 32 {
            u32::MAX
        } else {
            (1u32 << members) - 1
        };
        let enabled_here = self.hyperswap == HyperSwapStatus::Enabled;
        members > 0
            && ((enabled_here && self.members_disabled != 0)
                || (!enabled_here
                    && self.hyperswap != HyperSwapStatus::NotLoaded
                    && self.members_disabled & all != all))
    }
}
