//! The FlashCopy option bits of a host FLASH request, one set for every host
//! protocol (z/OS §3.8, z/TPF §3.4), and their one mapping to the DS8000's options.

use crate::codec::fields::{DecodeError, FieldReader};
use crate::ds8k::FlashOptions;

/// FlashCopy options of a host `FLASH` request (spec: zos-hyperswap.md §3.8,
/// ztpf.md §3.4): a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct HostFlashOptions(pub u16);

impl HostFlashOptions {
    /// DS CLI `-tgtinhibit`: host writes to the targets are refused.
    pub const INHIBIT_TARGET_WRITES: u16 = 0x0001;
    /// DS CLI `-nocp`: no background copy.
    pub const NO_COPY: u16 = 0x0002;
    /// DS CLI `-record -persist`: change recording, for a later incremental resync.
    pub const INCREMENTAL: u16 = 0x0004;
    /// DS CLI `-persist`: the relationship stays after the copy completes.
    pub const PERSISTENT: u16 = 0x0008;
    /// Bits this version defines; any other is `MALFORMED_BODY`.
    pub const KNOWN: u16 = 0x000F;

    /// Reads the `options` field; bits outside [`Self::KNOWN`] are MALFORMED_BODY
    /// (spec: zos-hyperswap.md §3.8, ztpf.md §3.4).
    pub(crate) fn read(r: &mut FieldReader<'_>) -> Result<Self, DecodeError> {
        r.flags_u16("options", Self::KNOWN).map(HostFlashOptions)
    }

    /// True if `bit` is set.
    pub fn has(self, bit: u16) -> bool {
        self.0 & bit == bit
    }

    /// The DS8000 options a host issues for these bits: the same bits, with
    /// incremental becoming `-record` plus `-persist`.
    ///
    /// spec: zos-hyperswap.md §3.8 ("`0004` becomes record + persist"); ds8k.md §3.1.
    pub fn to_storage(self) -> FlashOptions {
        const MAP: [(u16, u16); 4] = [
            (
                HostFlashOptions::INHIBIT_TARGET_WRITES,
                FlashOptions::INHIBIT_TARGET_WRITES,
            ),
            (HostFlashOptions::NO_COPY, FlashOptions::NO_COPY),
            (
                HostFlashOptions::INCREMENTAL,
                FlashOptions::RECORD | FlashOptions::PERSIST,
            ),
            (HostFlashOptions::PERSISTENT, FlashOptions::PERSIST),
        ];
        FlashOptions(
            MAP.iter()
                .filter(|(host, _)| self.has(*host))
                .fold(0, |bits, (_, storage)| bits | storage),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_host_bit_maps_to_its_ds_cli_flags() {
        let o = |b| HostFlashOptions(b).to_storage().0;
        assert_eq!(o(0), 0);
        assert_eq!(o(0x0001), FlashOptions::INHIBIT_TARGET_WRITES);
        assert_eq!(o(0x0002), FlashOptions::NO_COPY);
        assert_eq!(o(0x0004), FlashOptions::RECORD | FlashOptions::PERSIST);
        assert_eq!(o(0x0008), FlashOptions::PERSIST);
        assert_eq!(o(0x000F), 0x000F);
    }
}
