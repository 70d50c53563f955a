//! DS8000 names and geometry (spec: protocol-specs/ds8k.md §2).
//!
//! A storage image is `IBM.2107-75FA120`; a volume is `XYZZ`, where `X` is the
//! address group, `XY` the logical subsystem (LSS, `00`–`FE`) and `ZZ` the volume in
//! it. One address group (16 LSSs) holds only CKD or only FB volumes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Tracks per 3390 cylinder.
pub const TRACKS_PER_CYLINDER: u64 = 15;
/// Bytes per 3390 track.
pub const BYTES_PER_CKD_TRACK: u64 = 56_664;
/// Cylinders in one CKD extent (a 3390 model 1).
pub const CYLINDERS_PER_CKD_EXTENT: u64 = 1_113;
/// Largest CKD volume (extended address volume), cylinders.
pub const MAX_CKD_CYLINDERS: u32 = 1_182_006;
/// FB block size.
pub const FB_BLOCK_BYTES: u64 = 512;
/// Blocks in one FB extent (1 GiB).
pub const BLOCKS_PER_FB_EXTENT: u64 = 2_097_152;
/// Blocks per FB track: the DS8000 tracks FB data for copy services in 64 KiB tracks.
pub const BLOCKS_PER_FB_TRACK: u64 = 128;
/// Largest FB volume zgate models (16 TiB), blocks.
pub const MAX_FB_BLOCKS: u64 = 16 * 1024 * BLOCKS_PER_FB_EXTENT;
/// Cylinders of a 3390 model 54 (the largest non-EAV size).
pub const CYLINDERS_3390_54: u32 = 65_520;

/// A storage image id: `IBM.2107-` and a 7-character serial (`75FA120`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StorageImageId {
    serial: String,
}

/// A name that is not a storage image id, volume id or LSS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {text:?}: {why}")]
pub struct IdError {
    what: &'static str,
    text: String,
    why: &'static str,
}

impl StorageImageId {
    /// From the serial alone (`75FA120`) or the full id (`IBM.2107-75FA120`).
    pub fn parse(text: &str) -> Result<StorageImageId, IdError> {
        let serial = text.strip_prefix("IBM.2107-").unwrap_or(text);
        let bad = |why| IdError {
            what: "storage image id",
            text: text.to_string(),
            why,
        };
        if serial.len() != 7 {
            return Err(bad("the serial has 7 characters"));
        }
        if !serial
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        {
            return Err(bad("the serial is digits and upper-case letters"));
        }
        Ok(StorageImageId {
            serial: serial.to_string(),
        })
    }

    /// The 7-character serial, as carried in VOLREF fields.
    pub fn serial(&self) -> &str {
        &self.serial
    }
}

impl fmt::Display for StorageImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IBM.2107-{}", self.serial)
    }
}

impl fmt::Debug for StorageImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl TryFrom<String> for StorageImageId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        StorageImageId::parse(&s)
    }
}

impl From<StorageImageId> for String {
    fn from(id: StorageImageId) -> String {
        id.to_string()
    }
}

/// A logical subsystem, `00`–`FE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Lss(pub u8);

impl Lss {
    /// The address group (`X`): 16 LSSs that share one volume type.
    pub fn address_group(self) -> u8 {
        self.0 >> 4
    }
}

impl fmt::Display for Lss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}", self.0)
    }
}

/// A volume id `XYZZ`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VolumeId(pub u16);

impl VolumeId {
    /// The volume's LSS (`XY`).
    pub fn lss(self) -> Lss {
        Lss((self.0 >> 8) as u8)
    }

    /// True when the id can name a volume (LSS `FF` cannot).
    pub fn is_valid(self) -> bool {
        self.lss().0 != 0xFF
    }

    /// From four hex digits.
    pub fn parse(text: &str) -> Result<VolumeId, IdError> {
        let bad = |why| IdError {
            what: "volume id",
            text: text.to_string(),
            why,
        };
        if text.len() != 4 {
            return Err(bad("a volume id has 4 hex digits"));
        }
        let v = u16::from_str_radix(text, 16).map_err(|_| bad("not hex"))?;
        let id = VolumeId(v);
        if !id.is_valid() {
            return Err(bad("LSS FF holds no volumes"));
        }
        Ok(id)
    }
}

impl fmt::Display for VolumeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

impl fmt::Debug for VolumeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VolumeId({:04X})", self.0)
    }
}

impl TryFrom<String> for VolumeId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        VolumeId::parse(&s)
    }
}

impl From<VolumeId> for String {
    fn from(id: VolumeId) -> String {
        id.to_string()
    }
}

/// A volume's type and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "type")]
pub enum VolumeKind {
    /// Count-key-data (3390), sized in cylinders.
    Ckd {
        /// Cylinders, 1 to [`MAX_CKD_CYLINDERS`].
        cylinders: u32,
    },
    /// Fixed block, sized in 512-byte blocks.
    Fb {
        /// Blocks, 1 to [`MAX_FB_BLOCKS`].
        blocks: u64,
    },
}

/// The two volume types an address group can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VolumeType {
    /// CKD.
    Ckd,
    /// FB.
    Fb,
}

impl VolumeKind {
    /// A 3390 of `cylinders`.
    pub fn ckd(cylinders: u32) -> VolumeKind {
        VolumeKind::Ckd { cylinders }
    }

    /// An FB volume of `gib` GiB.
    pub fn fb_gib(gib: u64) -> VolumeKind {
        VolumeKind::Fb {
            blocks: gib * BLOCKS_PER_FB_EXTENT,
        }
    }

    /// CKD or FB.
    pub fn volume_type(self) -> VolumeType {
        match self {
            VolumeKind::Ckd { .. } => VolumeType::Ckd,
            VolumeKind::Fb { .. } => VolumeType::Fb,
        }
    }

    /// True when the size is within the box's limits.
    pub fn is_valid(self) -> bool {
        match self {
            VolumeKind::Ckd { cylinders } => (1..=MAX_CKD_CYLINDERS).contains(&cylinders),
            VolumeKind::Fb { blocks } => (1..=MAX_FB_BLOCKS).contains(&blocks),
        }
    }

    /// Tracks: the unit of copy services (CKD: 15 per cylinder; FB: 64 KiB).
    pub fn tracks(self) -> u32 {
        let t = match self {
            VolumeKind::Ckd { cylinders } => u64::from(cylinders) * TRACKS_PER_CYLINDER,
            VolumeKind::Fb { blocks } => blocks.div_ceil(BLOCKS_PER_FB_TRACK),
        };
        u32::try_from(t).unwrap_or(u32::MAX)
    }

    /// Extents the volume occupies (CKD: 1,113 cylinders; FB: 1 GiB).
    pub fn extents(self) -> u64 {
        match self {
            VolumeKind::Ckd { cylinders } => {
                u64::from(cylinders).div_ceil(CYLINDERS_PER_CKD_EXTENT)
            }
            VolumeKind::Fb { blocks } => blocks.div_ceil(BLOCKS_PER_FB_EXTENT),
        }
    }

    /// Capacity in bytes.
    pub fn bytes(self) -> u64 {
        match self {
            VolumeKind::Ckd { cylinders } => {
                u64::from(cylinders) * TRACKS_PER_CYLINDER * BYTES_PER_CKD_TRACK
            }
            VolumeKind::Fb { blocks } => blocks * FB_BLOCK_BYTES,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print() {
        let id = StorageImageId::parse("IBM.2107-75FA120").unwrap();
        assert_eq!(id, StorageImageId::parse("75FA120").unwrap());
        assert_eq!(id.to_string(), "IBM.2107-75FA120");
        assert!(StorageImageId::parse("IBM.2107-75fa120").is_err());
        assert!(StorageImageId::parse("75FA12").is_err());
        let v = VolumeId::parse("1E07").unwrap();
        assert_eq!((v.lss(), v.lss().address_group()), (Lss(0x1E), 1));
        assert_eq!(v.to_string(), "1E07");
        assert!(VolumeId::parse("FF00").is_err());
        assert!(VolumeId::parse("12G4").is_err());
    }

    #[test]
    fn geometry() {
        let mod54 = VolumeKind::ckd(CYLINDERS_3390_54);
        assert_eq!(mod54.tracks(), 982_800);
        assert_eq!(mod54.extents(), 59); // 65,520 / 1,113 rounded up
        assert_eq!(VolumeKind::ckd(1_113).bytes(), 1_113 * 849_960);
        let fb = VolumeKind::fb_gib(1);
        assert_eq!(
            (fb.tracks(), fb.extents(), fb.bytes()),
            (16_384, 1, 1 << 30)
        );
        assert!(!VolumeKind::ckd(0).is_valid());
        assert!(!VolumeKind::ckd(MAX_CKD_CYLINDERS + 1).is_valid());
    }
}
