//! What the storage image keeps beside its volumes: FlashCopy relationships and
//! each volume's safeguarded capacity and backups. A leaf: the image holds these,
//! and `flash.rs` and `sgc.rs` carry out the operations on the image that change
//! them, so nothing here points back up.

use std::collections::{BTreeMap, VecDeque};

use super::tracks::TrackSet;
use crate::ds8k::copy::{FlashOptions, PairKey};

/// One FlashCopy relationship.
#[derive(Debug, Clone)]
pub struct FlashRelationship {
    pub(super) key: PairKey,
    pub(super) options: FlashOptions,
    pub(super) sequence: u32,
    pub(super) created_ms: u64,
    pub(super) synced_ms: u64,
    /// Tracks in the relationship: the source's size (a target may be larger).
    pub(super) extent: u32,
    /// Target tracks not yet copied.
    pub(super) oos: TrackSet,
    /// Tracks written on either side since the last flash (with `RECORD`).
    pub(super) changes: Option<TrackSet>,
    /// `rmflash -cp`: withdraw when the copy completes.
    pub(super) withdraw_when_copied: bool,
}

/// A volume's safeguarded capacity and backups.
#[derive(Debug, Clone, Default)]
pub struct Safeguarded {
    /// Capacity, tracks.
    pub(super) capacity: u64,
    /// Tracks held by deltas.
    pub(super) used: u64,
    /// Oldest first.
    pub(super) backups: VecDeque<VolumeBackup>,
}

#[derive(Debug, Clone)]
pub(super) struct VolumeBackup {
    pub(super) id: u64,
    pub(super) time_ms: u64,
    /// The client's tag for the request that took it (0: none).
    pub(super) tag: u32,
    /// track -> contents at this backup's time (0 included: "was never written").
    pub(super) delta: BTreeMap<u32, u64>,
}
