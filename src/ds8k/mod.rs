//! The simulated DS8000 (spec: protocol-specs/ds8k.md).
//!
//! A pure model of one storage image: volumes (CKD 3390 and FB) in LSSs and
//! address groups, simulated host I/O at track granularity, FlashCopy with the
//! DS8000's options and limits, and Safeguarded Copy. Time is always an input.
//! The HMC protocol that drives it over the network is in `crate::proto::ds8k`;
//! the service that listens is `crate::peer::ds8k`.

pub mod flash;
pub mod ids;
pub mod image;
pub mod oracle;
pub mod sgc;
pub mod tracks;

pub use flash::{FlashInfo, FlashOptions, FlashResult, MAX_TARGETS_PER_SOURCE, PairKey};
pub use ids::{Lss, StorageImageId, VolumeId, VolumeKind, VolumeType};
pub use image::{Ds8kError, Ds8kReason, ImageConfig, StorageEvent, StorageImage, VolumeInfo};
pub use sgc::{BackupInfo, BackupResult};
pub use tracks::TrackSet;
