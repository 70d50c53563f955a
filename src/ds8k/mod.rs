//! The DS8000's vocabulary, pure and a leaf: storage image, LSS and volume ids, CKD
//! and FB geometry, FlashCopy option bits and relationship keys, fencing by epoch, reason codes
//! (spec: protocol-specs/ds8k.md §2, §3.1, §3.4, §5).
//!
//! The HMC protocol (`crate::proto::ds8k`), the gateway's connector, and the
//! simulated DS8000 (`crate::sim::ds8k`) all speak it; it depends on none of them.

pub mod copy;
pub mod fence;
pub mod ids;
pub mod reason;

pub use copy::{FlashOptions, MAX_TARGETS_PER_SOURCE, PairKey};
pub use fence::{Fence, FenceTable, MAX_FENCE_DOMAINS};
pub use ids::{Lss, StorageImageId, VolumeId, VolumeKind, VolumeType};
pub use reason::{Ds8kError, Ds8kReason};
