//! The simulated DS8000 (spec: protocol-specs/ds8k.md §2–§3).
//!
//! A pure model of storage images: volumes (CKD 3390 and FB) in LSSs and
//! address groups, simulated host I/O at track granularity, FlashCopy with the
//! DS8000's options and limits, Safeguarded Copy, and Metro Mirror between images
//! (`mirror.rs`). Time is always an input.
//! Its vocabulary (ids, option bits, reason codes) is `crate::ds8k`; the HMC
//! protocol that drives it is `crate::proto::ds8k`; the service that listens is
//! `crate::peer::ds8k`.

pub mod flash;
pub mod image;
pub mod mirror;
#[cfg(any(test, feature = "testkit"))]
pub mod mirror_oracle;
#[cfg(any(test, feature = "testkit"))]
pub mod oracle;
pub mod sgc;
mod state;
pub mod tracks;

pub use flash::{FlashInfo, FlashResult};
pub use image::{ImageConfig, StorageEvent, StorageImage, VolumeInfo};
pub use mirror::{
    Complex, LssRef, MirrorConfig, MirrorEvent, MirrorVolume, PairInfo, PairState, PathInfo,
    PathKey, SuspendReason,
};
pub use sgc::{BackupInfo, BackupResult};
pub use tracks::TrackSet;
