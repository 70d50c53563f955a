//! The storage image: volumes, simulated host I/O, and the state FlashCopy and
//! Safeguarded Copy share (spec: protocol-specs/ds8k.md §2–§3).
//!
//! Pure: every operation takes the time (`now_ms`, milliseconds since the epoch) as
//! an input. Track contents are modelled as a version tag per track (`0` = never
//! written), stored sparsely, so a full box fits in memory and tests can prove
//! point-in-time semantics track by track.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde::Deserialize;

use super::state::{FlashRelationship, Safeguarded};
use crate::ds8k::PairKey;
pub(crate) use crate::ds8k::reason::refuse;
pub use crate::ds8k::reason::{Ds8kError, Ds8kReason};
use crate::ds8k::{Lss, StorageImageId, VolumeId, VolumeKind, VolumeType};

/// Settings of a storage image.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageConfig {
    /// Background copy rate of one relationship, tracks per second.
    #[serde(default = "default_copy_rate")]
    pub copy_tracks_per_sec: u64,
    /// How long a freeze holds writes if nobody thaws it (extended long busy), ms.
    #[serde(default = "default_freeze_timeout")]
    pub freeze_timeout_ms: u64,
    /// Most Safeguarded Copy backups kept per volume.
    #[serde(default = "default_max_backups")]
    pub max_backups_per_volume: usize,
    /// Memory the Safeguarded Copy backups' bookkeeping may take at its worst, MiB:
    /// safeguarded capacity on one more volume is refused beyond it (ds8k.md §3.2;
    /// [`SGC_BYTES_PER_BACKUP`] per backup per volume).
    #[serde(default = "default_memory_budget")]
    pub memory_budget_mib: u64,
}

/// Bytes one saved track of a backup's delta takes (a tree entry), an upper estimate;
/// bounded by the volume's capacity and grown only by host writes.
pub const SGC_BYTES_PER_TRACK: u64 = 48;
/// Bytes one backup takes on one volume without its tracks, an upper estimate.
pub const SGC_BYTES_PER_BACKUP: u64 = 64;

fn default_memory_budget() -> u64 {
    1024
}

fn default_copy_rate() -> u64 {
    // About 100 MiB/s of 3390 tracks per relationship.
    2_000
}
fn default_freeze_timeout() -> u64 {
    120_000
}
fn default_max_backups() -> usize {
    500
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            copy_tracks_per_sec: default_copy_rate(),
            freeze_timeout_ms: default_freeze_timeout(),
            max_backups_per_volume: default_max_backups(),
            memory_budget_mib: default_memory_budget(),
        }
    }
}

/// Something the image did on its own, for the owner to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageEvent {
    /// A relationship's background copy finished (no out-of-sync tracks left).
    CopyComplete {
        /// Source.
        source: VolumeId,
        /// Target.
        target: VolumeId,
        /// The relationship ended with it (not persistent).
        ended: bool,
    },
    /// Safeguarded capacity filled and the oldest backup of a volume was removed.
    BackupRolledOff {
        /// The volume.
        volume: VolumeId,
        /// The backup removed.
        backup_id: u64,
    },
    /// A freeze timed out and writes flow again.
    FreezeTimedOut {
        /// The LSS.
        lss: Lss,
    },
}

/// One volume.
#[derive(Debug, Clone)]
pub struct Volume {
    /// Type and size.
    pub kind: VolumeKind,
    /// Nickname.
    pub name: String,
    /// Written tracks: track -> version tag (absent = 0, never written).
    pub(super) data: BTreeMap<u32, u64>,
    /// Safeguarded capacity and backups, if any.
    pub(super) sgc: Option<Box<Safeguarded>>,
}

impl Volume {
    pub(super) fn read(&self, track: u32) -> u64 {
        self.data.get(&track).copied().unwrap_or(0)
    }

    pub(super) fn store(&mut self, track: u32, tag: u64) {
        if tag == 0 {
            self.data.remove(&track);
        } else {
            self.data.insert(track, tag);
        }
    }

    /// Tracks that have ever been written (the sparse data's size).
    pub fn written_tracks(&self) -> usize {
        self.data.len()
    }
}

/// A DS8000 storage image.
#[derive(Debug, Clone)]
pub struct StorageImage {
    pub(super) id: StorageImageId,
    pub(super) config: ImageConfig,
    pub(super) volumes: BTreeMap<VolumeId, Volume>,
    /// Volumes per address group, and the group's type while it has any.
    pub(super) groups: [(Option<VolumeType>, u32); 16],
    pub(super) relationships: BTreeMap<PairKey, FlashRelationship>,
    /// target -> source.
    pub(super) target_of: HashMap<VolumeId, VolumeId>,
    /// Relationships with a background copy to run.
    pub(super) copying: BTreeSet<PairKey>,
    /// Frozen LSSs and when the freeze times out.
    pub(super) frozen: BTreeMap<Lss, u64>,
    pub(super) next_sequence: u32,
    /// Backups of the image: id -> (time, volumes that still hold it).
    pub(super) backups: BTreeMap<u64, (u64, BTreeSet<VolumeId>)>,
    pub(super) last_backup_id: u64,
    pub(super) last_tick_ms: Option<u64>,
    /// Copy budget carried between ticks, in track-milliseconds.
    pub(super) copy_carry: u64,
    pub(super) events: VecDeque<StorageEvent>,
    /// How many volumes have safeguarded capacity (for the memory budget, kept as
    /// capacities change). Capacities themselves are not summed: a peer sets them
    /// up to `u64::MAX`, and the budget depends on the count only.
    pub(super) sgc_volumes: u64,
}

/// What a volume query shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    /// Id.
    pub id: VolumeId,
    /// Type and size.
    pub kind: VolumeKind,
    /// Nickname.
    pub name: String,
    /// Relationships where the volume is the source.
    pub flash_targets: u16,
    /// The source, when the volume is a FlashCopy target.
    pub flash_source: Option<VolumeId>,
    /// Safeguarded capacity, tracks (0 = none).
    pub sgc_capacity: u64,
    /// Safeguarded capacity in use, tracks.
    pub sgc_used: u64,
    /// Backups held.
    pub backups: u32,
}

impl StorageImage {
    /// An empty storage image.
    pub fn new(id: StorageImageId, config: ImageConfig) -> StorageImage {
        StorageImage {
            id,
            config,
            volumes: BTreeMap::new(),
            groups: [(None, 0); 16],
            relationships: BTreeMap::new(),
            target_of: HashMap::new(),
            copying: BTreeSet::new(),
            frozen: BTreeMap::new(),
            next_sequence: 1,
            backups: BTreeMap::new(),
            last_backup_id: 0,
            last_tick_ms: None,
            copy_carry: 0,
            events: VecDeque::new(),
            sgc_volumes: 0,
        }
    }

    /// The image's id.
    pub fn id(&self) -> &StorageImageId {
        &self.id
    }

    /// Its settings.
    pub fn config(&self) -> &ImageConfig {
        &self.config
    }

    /// Number of volumes.
    pub fn volume_count(&self) -> usize {
        self.volumes.len()
    }

    /// Volume ids, in order.
    pub fn volume_ids(&self) -> impl Iterator<Item = VolumeId> + '_ {
        self.volumes.keys().copied()
    }

    /// Volume ids from `first` on, in order (LSVOL).
    pub fn volume_ids_from(&self, first: VolumeId) -> impl Iterator<Item = VolumeId> + '_ {
        self.volumes.range(first..).map(|(v, _)| *v)
    }

    /// Takes the next event, if any.
    pub fn poll_event(&mut self) -> Option<StorageEvent> {
        self.events.pop_front()
    }

    pub(super) fn volume(&self, id: VolumeId) -> Result<&Volume, Ds8kError> {
        match self.volumes.get(&id) {
            Some(v) => Ok(v),
            // spec: ds8k.md §2.1
            None => refuse(
                Ds8kReason::UNKNOWN_VOLUME,
                format!("volume {id} does not exist"),
            ),
        }
    }

    pub(super) fn volume_mut(&mut self, id: VolumeId) -> Result<&mut Volume, Ds8kError> {
        match self.volumes.get_mut(&id) {
            Some(v) => Ok(v),
            // spec: ds8k.md §2.1
            None => refuse(
                Ds8kReason::UNKNOWN_VOLUME,
                format!("volume {id} does not exist"),
            ),
        }
    }

    /// Creates a volume (DS CLI `mkckdvol` / `mkfbvol`).
    pub fn create_volume(
        &mut self,
        id: VolumeId,
        kind: VolumeKind,
        name: &str,
    ) -> Result<(), Ds8kError> {
        if !id.is_valid() {
            // spec: ds8k.md §2.1 (ids, address groups, geometry)
            return refuse(
                Ds8kReason::INVALID_VOLUME_ID,
                format!("{id}: LSS FF holds no volumes"),
            );
        }
        if !kind.is_valid() {
            // spec: ds8k.md §2.1 (ids, address groups, geometry)
            return refuse(
                Ds8kReason::INVALID_SIZE,
                format!("{id}: size {kind:?} out of range"),
            );
        }
        if self.volumes.contains_key(&id) {
            // spec: ds8k.md §2.1 (ids, address groups, geometry)
            return refuse(Ds8kReason::VOLUME_EXISTS, format!("volume {id} exists"));
        }
        let group = &mut self.groups[usize::from(id.lss().address_group())];
        match group.0 {
            Some(t) if t != kind.volume_type() => {
                // spec: ds8k.md §2.1 (ids, address groups, geometry)
                return refuse(
                    Ds8kReason::ADDRESS_GROUP_TYPE,
                    format!(
                        "{id}: address group {:X} holds {t:?} volumes",
                        id.lss().address_group()
                    ),
                );
            }
            _ => *group = (Some(kind.volume_type()), group.1 + 1),
        }
        self.volumes.insert(
            id,
            Volume {
                kind,
                name: name.chars().take(16).collect(),
                data: BTreeMap::new(),
                sgc: None,
            },
        );
        Ok(())
    }

    /// Deletes a volume that is in no relationship and holds no backups.
    pub fn delete_volume(&mut self, id: VolumeId) -> Result<(), Ds8kError> {
        let v = self.volume(id)?;
        if self.in_flash(id) || v.sgc.as_ref().is_some_and(|s| s.backup_count() > 0) {
            // spec: ds8k.md §2.1
            return refuse(
                Ds8kReason::VOLUME_IN_USE,
                format!("volume {id} is in a FlashCopy relationship or holds backups"),
            );
        }
        if self
            .volumes
            .remove(&id)
            .and_then(|v| v.sgc)
            .is_some_and(|s| s.capacity > 0)
        {
            self.sgc_volumes -= 1;
        }
        let group = &mut self.groups[usize::from(id.lss().address_group())];
        group.1 -= 1;
        if group.1 == 0 {
            group.0 = None;
        }
        Ok(())
    }

    /// True when the volume is the source or target of a relationship.
    pub(super) fn in_flash(&self, id: VolumeId) -> bool {
        self.target_of.contains_key(&id) || self.targets_of(id).next().is_some()
    }

    /// The volume's state.
    pub fn query_volume(&self, id: VolumeId) -> Result<VolumeInfo, Ds8kError> {
        let v = self.volume(id)?;
        let (sgc_capacity, sgc_used, backups) = v
            .sgc
            .as_ref()
            .map_or((0, 0, 0), |s| (s.capacity, s.used, s.backup_count() as u32));
        Ok(VolumeInfo {
            id,
            kind: v.kind,
            name: v.name.clone(),
            flash_targets: self.targets_of(id).count() as u16,
            flash_source: self.target_of.get(&id).copied(),
            sgc_capacity,
            sgc_used,
            backups,
        })
    }

    fn check_track(&self, id: VolumeId, track: u32) -> Result<&Volume, Ds8kError> {
        let v = self.volume(id)?;
        if track >= v.kind.tracks() {
            // spec: ds8k.md §2.2 (tracks of the volume only)
            return refuse(
                Ds8kReason::TRACK_OUT_OF_RANGE,
                format!(
                    "{id} has {} tracks; track {track} does not exist",
                    v.kind.tracks()
                ),
            );
        }
        Ok(v)
    }

    /// A host read of one track: the version tag the host sees.
    pub fn read_track(&self, id: VolumeId, track: u32) -> Result<u64, Ds8kError> {
        let v = self.check_track(id, track)?;
        // A target track not yet copied shows the source's point-in-time data, which
        // is the source's current data: a source write copies the old track first.
        if let Some(&source) = self.target_of.get(&id)
            && let Some(rel) = self.relationships.get(&PairKey { source, target: id })
            && rel.oos.contains(track)
        {
            return Ok(self.volume(source)?.read(track));
        }
        Ok(v.read(track))
    }

    /// A host write of one track (version tag `tag`, `0` = zeroes).
    ///
    /// Order, as the DS8000 does it: a frozen source is long busy; an inhibited
    /// target refuses; then every FlashCopy target that still needs the old track
    /// gets it (copy-on-write) and the newest Safeguarded Copy backup saves it; then
    /// the write lands.
    pub fn write_track(
        &mut self,
        now_ms: u64,
        id: VolumeId,
        track: u32,
        tag: u64,
    ) -> Result<(), Ds8kError> {
        self.expire_freezes(now_ms);
        self.check_track(id, track)?;
        self.check_writable(id)?;
        self.write_unchecked(id, track, tag);
        Ok(())
    }

    /// Refuses writes to a frozen source or an inhibited target.
    pub(super) fn check_writable(&self, id: VolumeId) -> Result<(), Ds8kError> {
        if self.frozen.contains_key(&id.lss())
            && self.targets_of(id).any(|rel| rel.options.freeze())
        {
            // spec: ds8k.md §3.1.2 (inhibited targets) and §3.1.4 (frozen LSSs)
            return refuse(
                Ds8kReason::LONG_BUSY,
                format!("{id}: LSS {} is frozen (extended long busy)", id.lss()),
            );
        }
        if let Some(&source) = self.target_of.get(&id)
            && self
                .relationships
                .get(&PairKey { source, target: id })
                .is_some_and(|r| r.options.inhibit_target_writes())
        {
            // spec: ds8k.md §3.1.2 (inhibited targets) and §3.1.4 (frozen LSSs)
            return refuse(
                Ds8kReason::TARGET_WRITE_INHIBITED,
                format!(
                    "{id} is the target of {source}:{id}, established with inhibit target writes"
                ),
            );
        }
        Ok(())
    }

    /// The write after its checks (also used by restore).
    pub(super) fn write_unchecked(&mut self, id: VolumeId, track: u32, tag: u64) {
        let Some(old) = self.volumes.get(&id).map(|v| v.read(track)) else {
            return;
        };
        // As a source: copy-on-write to every target still needing the track.
        let keys: Vec<PairKey> = self.targets_of(id).map(|r| r.key).collect();
        for key in keys {
            let mut copied = false;
            if let Some(rel) = self.relationships.get_mut(&key) {
                copied = rel.oos.remove(track);
                if let Some(changes) = &mut rel.changes {
                    changes.insert(track);
                }
            }
            if copied && let Some(t) = self.volumes.get_mut(&key.target) {
                t.store(track, old);
            }
            self.finish_if_copied(key);
        }
        // As a target: the track leaves the relationship. Tracks past the source's
        // end (a larger target) were never in it and are not recorded either.
        if let Some(&source) = self.target_of.get(&id) {
            let key = PairKey { source, target: id };
            if let Some(rel) = self.relationships.get_mut(&key)
                && track < rel.extent
            {
                rel.oos.remove(track);
                if let Some(changes) = &mut rel.changes {
                    changes.insert(track);
                }
            }
            self.finish_if_copied(key);
        }
        self.save_for_backups(id, track, old);
        if let Some(v) = self.volumes.get_mut(&id) {
            v.store(track, tag);
        }
    }

    /// The tracks of `id` in `ranges` that hold data (tag not 0), as a host reads
    /// them: from the sparse data, or track by track for a FlashCopy target whose
    /// uncopied tracks read through to its source.
    pub(super) fn written_in(
        &self,
        id: VolumeId,
        ranges: &[std::ops::Range<u32>],
    ) -> Vec<(u32, u64)> {
        let Some(v) = self.volumes.get(&id) else {
            return Vec::new();
        };
        if self.target_of.contains_key(&id) {
            return ranges
                .iter()
                .flat_map(|r| r.clone())
                .filter_map(|t| {
                    self.read_track(id, t)
                        .ok()
                        .filter(|&tag| tag != 0)
                        .map(|tag| (t, tag))
                })
                .collect();
        }
        ranges
            .iter()
            .flat_map(|r| v.data.range(r.clone()).map(|(&t, &tag)| (t, tag)))
            .collect()
    }

    /// Sets the tracks of `id` in `ranges` to zeroes, as writes (a mirror's copy
    /// replaces them next).
    pub(super) fn clear_tracks(&mut self, id: VolumeId, ranges: &[std::ops::Range<u32>]) {
        let Some(v) = self.volumes.get(&id) else {
            return;
        };
        let written: Vec<u32> = ranges
            .iter()
            .flat_map(|r| v.data.range(r.clone()).map(|(&t, _)| t))
            .collect();
        for t in written {
            self.write_unchecked(id, t, 0);
        }
    }

    pub(super) fn expire_freezes(&mut self, now_ms: u64) {
        let thawed: Vec<Lss> = self
            .frozen
            .iter()
            .filter(|(_, until)| **until <= now_ms)
            .map(|(lss, _)| *lss)
            .collect();
        for lss in thawed {
            self.frozen.remove(&lss);
            self.events.push_back(StorageEvent::FreezeTimedOut { lss });
        }
    }

    /// Advances background copy to `now_ms`: each copying relationship copies up to
    /// `copy_tracks_per_sec` × elapsed tracks. Costs in proportion to the copying
    /// relationships and the written tracks copied, never to the volume size.
    pub fn tick(&mut self, now_ms: u64) {
        self.expire_freezes(now_ms);
        let Some(last) = self.last_tick_ms.replace(now_ms) else {
            return;
        };
        let elapsed = now_ms.saturating_sub(last);
        let budget_ms = self
            .config
            .copy_tracks_per_sec
            .saturating_mul(elapsed)
            .saturating_add(self.copy_carry);
        let budget = budget_ms / 1000;
        self.copy_carry = budget_ms % 1000;
        if budget == 0 {
            return;
        }
        let keys: Vec<PairKey> = self.copying.iter().copied().collect();
        for key in keys {
            self.copy_front(key, budget);
            self.finish_if_copied(key);
        }
    }

    /// Copies up to `budget` out-of-sync tracks of one relationship, front first.
    pub(super) fn copy_front(&mut self, key: PairKey, budget: u64) {
        let Some(rel) = self.relationships.get_mut(&key) else {
            return;
        };
        let ranges = rel.oos.take_front(budget);
        let Some(source) = self.volumes.get(&key.source) else {
            return;
        };
        let mut copies: Vec<(u32, u64)> = Vec::new();
        for r in &ranges {
            copies.extend(source.data.range(r.clone()).map(|(&t, &v)| (t, v)));
        }
        if let Some(target) = self.volumes.get_mut(&key.target) {
            for r in &ranges {
                let stale: Vec<u32> = target.data.range(r.clone()).map(|(&t, _)| t).collect();
                for t in stale {
                    target.data.remove(&t);
                }
            }
            target.data.extend(copies);
        }
    }
}
