//! FlashCopy vocabulary shared by the HMC protocol and the storage model: the option
//! bits of `mkflash` (DS CLI flags), a relationship's key, the per-source limit
//! (spec: protocol-specs/ds8k.md §3.1).

use super::ids::VolumeId;

/// Targets one source may have.
pub const MAX_TARGETS_PER_SOURCE: usize = 12;

/// FlashCopy options, with the DS CLI flag each one stands for (spec: ds8k.md §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlashOptions(pub u16);

impl FlashOptions {
    /// `-tgtinhibit`: host writes to the target are refused while the relationship exists.
    pub const INHIBIT_TARGET_WRITES: u16 = 0x0001;
    /// `-nocp`: no background copy.
    pub const NO_COPY: u16 = 0x0002;
    /// `-record`: change recording (implies persistent).
    pub const RECORD: u16 = 0x0004;
    /// `-persist`: the relationship stays after the copy completes, until withdrawn.
    pub const PERSIST: u16 = 0x0008;
    /// `-freeze`: hold writes on the source LSSs (consistency group) until thawed.
    pub const FREEZE: u16 = 0x0010;
    /// Every defined bit.
    pub const KNOWN: u16 = 0x001F;

    /// With `RECORD`, `PERSIST` is implied.
    pub fn normalized(self) -> FlashOptions {
        if self.0 & Self::RECORD != 0 {
            FlashOptions(self.0 | Self::PERSIST)
        } else {
            self
        }
    }

    /// True if `bit` is set.
    pub fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
    /// `-tgtinhibit`.
    pub fn inhibit_target_writes(self) -> bool {
        self.has(Self::INHIBIT_TARGET_WRITES)
    }
    /// `-nocp`.
    pub fn no_copy(self) -> bool {
        self.has(Self::NO_COPY)
    }
    /// `-record`.
    pub fn record(self) -> bool {
        self.has(Self::RECORD)
    }
    /// `-persist`.
    pub fn persist(self) -> bool {
        self.has(Self::PERSIST)
    }
    /// `-freeze`.
    pub fn freeze(self) -> bool {
        self.has(Self::FREEZE)
    }
}

/// A relationship's key: `source:target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PairKey {
    /// Source volume.
    pub source: VolumeId,
    /// Target volume.
    pub target: VolumeId,
}
