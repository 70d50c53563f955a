//! Safeguarded Copy: safeguarded capacity, consistent backups across volumes,
//! recover, restore, expire and automatic roll-off (spec: ds8k.md §3.2).
//!
//! Each backup of a volume keeps a delta: the old contents of the tracks written
//! after it was taken and before the next backup (copy-on-write into the newest
//! backup only). To read backup *k*, walk the backups from *k* towards the newest
//! and take the first delta that holds the track; if none does, the track has not
//! changed since and the volume's current data is the answer. The deltas are what
//! consumes safeguarded capacity; when it fills, the oldest backup rolls off.

use std::collections::{BTreeMap, BTreeSet};

use super::image::{StorageEvent, StorageImage};
use super::state::{Safeguarded, VolumeBackup};
use crate::ds8k::VolumeId;
use crate::ds8k::reason::{Ds8kError, Ds8kReason, refuse};

impl Safeguarded {
    pub(super) fn backup_count(&self) -> usize {
        self.backups.len()
    }

    fn position(&self, id: u64) -> Option<usize> {
        self.backups.binary_search_by_key(&id, |b| b.id).ok()
    }
}

/// What a backup did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupResult {
    /// Backup id (seconds since the epoch, unique and increasing per image).
    pub id: u64,
    /// Point in time, ms since the epoch.
    pub time_ms: u64,
    /// Volumes in the backup.
    pub volumes: usize,
}

/// One backup of one volume, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupInfo {
    /// Backup id.
    pub id: u64,
    /// Point in time, ms.
    pub time_ms: u64,
    /// Safeguarded capacity this backup holds, tracks.
    pub saved_tracks: u64,
    /// The client's tag for the request that took it (0: none; ds8k.md §3.2).
    pub tag: u32,
}

impl StorageImage {
    /// `mksafeguardedcap` / `expandsafeguardedcap`: sets a volume's safeguarded
    /// capacity in tracks. It may not drop below what the backups use.
    pub fn set_safeguarded_capacity(&mut self, id: VolumeId, tracks: u64) -> Result<(), Ds8kError> {
        // spec: ds8k.md §3.2 (capacity): the backups' bookkeeping at its worst (every
        // volume with safeguarded capacity at its most backups) stays within budget.
        self.volume(id)?;
        let old = self
            .volumes
            .get(&id)
            .and_then(|v| v.sgc.as_ref())
            .map_or(0, |s| s.capacity);
        let volumes = self.sgc_volumes - u64::from(old > 0);
        let per_volume =
            self.config.max_backups_per_volume as u64 * super::image::SGC_BYTES_PER_BACKUP;
        let worst = (volumes + 1).saturating_mul(per_volume);
        let budget = self.config.memory_budget_mib.saturating_mul(1 << 20);
        if tracks > 0 && worst > budget {
            return refuse(
                Ds8kReason::MEMORY_BUDGET,
                format!(
                    "{id}: safeguarded capacity on {} volumes at {} backups each would take {} MiB of bookkeeping, over the budget of {} MiB",
                    volumes + 1,
                    self.config.max_backups_per_volume,
                    worst >> 20,
                    self.config.memory_budget_mib
                ),
            );
        }
        let v = self.volume_mut(id)?;
        let sgc = v.sgc.get_or_insert_with(Box::default);
        if tracks < sgc.used {
            // spec: ds8k.md §3.2 (capacity)
            return refuse(
                Ds8kReason::CAPACITY_TOO_SMALL,
                format!(
                    "{id}: backups use {} tracks; {tracks} is too small",
                    sgc.used
                ),
            );
        }
        sgc.capacity = tracks;
        self.sgc_volumes = volumes + u64::from(tracks > 0);
        Ok(())
    }

    /// Takes one backup consistent across `volumes`, at one instant.
    pub fn take_backup(
        &mut self,
        now_ms: u64,
        volumes: &[VolumeId],
    ) -> Result<BackupResult, Ds8kError> {
        self.take_backup_tagged(now_ms, volumes, 0)
    }

    /// As [`StorageImage::take_backup`], remembering the client's `tag` with the
    /// backup so that `lsbackup` shows which request took it (ds8k.md §3.2).
    pub fn take_backup_tagged(
        &mut self,
        now_ms: u64,
        volumes: &[VolumeId],
        tag: u32,
    ) -> Result<BackupResult, Ds8kError> {
        if volumes.is_empty() {
            // spec: ds8k.md §3.2 (backup)
            return refuse(Ds8kReason::NOTHING_TO_DO, "no volumes");
        }
        let mut seen = BTreeSet::new();
        for &id in volumes {
            if !seen.insert(id) {
                // spec: ds8k.md §3.2 (backup)
                return refuse(Ds8kReason::DUPLICATE_VOLUME, format!("{id} appears twice"));
            }
            let v = self.volume(id)?;
            let Some(sgc) = v.sgc.as_ref().filter(|s| s.capacity > 0) else {
                // spec: ds8k.md §3.2 (backup)
                return refuse(
                    Ds8kReason::NO_SAFEGUARDED_CAPACITY,
                    format!("{id} has no safeguarded capacity"),
                );
            };
            if sgc.backups.len() >= self.config.max_backups_per_volume {
                // spec: ds8k.md §3.2 (backup)
                return refuse(
                    Ds8kReason::BACKUP_LIMIT,
                    format!(
                        "{id} holds {} backups, the most the box keeps",
                        sgc.backups.len()
                    ),
                );
            }
            if let Some(source) = self.target_of.get(&id) {
                // spec: ds8k.md §3.2 (backup)
                return refuse(
                    Ds8kReason::VOLUME_IN_USE,
                    format!("{id} is the FlashCopy target of {source}:{id}"),
                );
            }
        }
        let id = (now_ms / 1000).max(self.last_backup_id + 1);
        self.last_backup_id = id;
        for &vol in volumes {
            if let Some(sgc) = self.volumes.get_mut(&vol).and_then(|v| v.sgc.as_mut()) {
                sgc.backups.push_back(VolumeBackup {
                    id,
                    time_ms: now_ms,
                    tag,
                    delta: BTreeMap::new(),
                });
            }
        }
        self.backups
            .insert(id, (now_ms, volumes.iter().copied().collect()));
        Ok(BackupResult {
            id,
            time_ms: now_ms,
            volumes: volumes.len(),
        })
    }

    /// A volume's backups, oldest first.
    pub fn list_backups(&self, id: VolumeId) -> Result<Vec<BackupInfo>, Ds8kError> {
        let v = self.volume(id)?;
        Ok(v.sgc.as_ref().map_or_else(Vec::new, |s| {
            s.backups
                .iter()
                .map(|b| BackupInfo {
                    id: b.id,
                    time_ms: b.time_ms,
                    saved_tracks: b.delta.len() as u64,
                    tag: b.tag,
                })
                .collect()
        }))
    }

    /// Backups of the image: id, time, volumes still holding it.
    pub fn image_backups(&self) -> impl Iterator<Item = (u64, u64, usize)> + '_ {
        self.backups.iter().map(|(&id, (t, v))| (id, *t, v.len()))
    }

    fn backup_position(&self, volume: VolumeId, backup: u64) -> Result<usize, Ds8kError> {
        let v = self.volume(volume)?;
        match v.sgc.as_ref().and_then(|s| s.position(backup)) {
            Some(p) => Ok(p),
            // spec: ds8k.md §3.2
            None => refuse(
                Ds8kReason::UNKNOWN_BACKUP,
                format!("{volume} holds no backup {backup}"),
            ),
        }
    }

    /// The contents of `track` in backup `backup` of `volume`.
    pub fn read_backup(&self, volume: VolumeId, backup: u64, track: u32) -> Result<u64, Ds8kError> {
        let pos = self.backup_position(volume, backup)?;
        let v = self.volume(volume)?;
        if track >= v.kind.tracks() {
            // spec: ds8k.md §3.2
            return refuse(
                Ds8kReason::TRACK_OUT_OF_RANGE,
                format!("{volume} has no track {track}"),
            );
        }
        Ok(self.backup_image_track(volume, pos, track))
    }

    fn backup_image_track(&self, volume: VolumeId, pos: usize, track: u32) -> u64 {
        let Some(v) = self.volumes.get(&volume) else {
            return 0;
        };
        v.sgc
            .as_ref()
            .and_then(|s| {
                s.backups
                    .iter()
                    .skip(pos)
                    .find_map(|b| b.delta.get(&track).copied())
            })
            .unwrap_or_else(|| v.read(track))
    }

    /// Tracks where backup `pos` may differ from the volume's current data.
    fn backup_delta_tracks(&self, volume: VolumeId, pos: usize) -> BTreeSet<u32> {
        self.volumes
            .get(&volume)
            .and_then(|v| v.sgc.as_ref())
            .map(|s| {
                s.backups
                    .iter()
                    .skip(pos)
                    .flat_map(|b| b.delta.keys().copied())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Expires backup `backup` and every older one on the volumes that hold it.
    /// Returns how many volume backups were removed.
    pub fn expire_backup(&mut self, backup: u64) -> Result<usize, Ds8kError> {
        let Some((_, volumes)) = self.backups.get(&backup) else {
            // spec: ds8k.md §3.2 (expire)
            return refuse(Ds8kReason::UNKNOWN_BACKUP, format!("no backup {backup}"));
        };
        let volumes: Vec<VolumeId> = volumes.iter().copied().collect();
        let mut removed = 0;
        for vol in volumes {
            while self
                .volumes
                .get(&vol)
                .and_then(|v| v.sgc.as_ref())
                .and_then(|s| s.backups.front())
                .is_some_and(|b| b.id <= backup)
            {
                self.drop_oldest_backup(vol);
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes a volume's oldest backup and frees its capacity.
    fn drop_oldest_backup(&mut self, vol: VolumeId) -> Option<u64> {
        let sgc = self.volumes.get_mut(&vol)?.sgc.as_mut()?;
        let b = sgc.backups.pop_front()?;
        sgc.used -= b.delta.len() as u64;
        if let Some((_, holders)) = self.backups.get_mut(&b.id) {
            holders.remove(&vol);
            if holders.is_empty() {
                self.backups.remove(&b.id);
            }
        }
        Some(b.id)
    }

    /// Before a write of `track`: the newest backup keeps the old contents, rolling
    /// off the oldest backups when safeguarded capacity is full.
    pub(super) fn save_for_backups(&mut self, vol: VolumeId, track: u32, old: u64) {
        loop {
            let Some(sgc) = self.volumes.get_mut(&vol).and_then(|v| v.sgc.as_mut()) else {
                return;
            };
            let Some(newest) = sgc.backups.back() else {
                return;
            };
            if newest.delta.contains_key(&track) {
                return;
            }
            if sgc.used < sgc.capacity {
                sgc.used += 1;
                if let Some(newest) = sgc.backups.back_mut() {
                    newest.delta.insert(track, old);
                }
                return;
            }
            if let Some(backup_id) = self.drop_oldest_backup(vol) {
                self.events.push_back(StorageEvent::BackupRolledOff {
                    volume: vol,
                    backup_id,
                });
            }
        }
    }

    /// Recovers backup `backup` of each source to its recovery volume: afterwards
    /// the recovery volume reads exactly the source as it was at the backup.
    pub fn recover_backup(
        &mut self,
        backup: u64,
        pairs: &[(VolumeId, VolumeId)],
    ) -> Result<usize, Ds8kError> {
        if pairs.is_empty() {
            // spec: ds8k.md §3.2 (recover)
            return refuse(Ds8kReason::NOTHING_TO_DO, "no pairs");
        }
        let mut used = BTreeSet::new();
        for &(source, recovery) in pairs {
            self.backup_position(source, backup)?;
            let (s, r) = (self.volume(source)?, self.volume(recovery)?);
            if source == recovery {
                // spec: ds8k.md §3.2 (recover)
                return refuse(
                    Ds8kReason::SAME_VOLUME,
                    format!("{source}: recover to another volume, or restore"),
                );
            }
            if !used.insert(recovery) || pairs.iter().any(|p| p.0 == recovery) {
                // spec: ds8k.md §3.2 (recover)
                return refuse(
                    Ds8kReason::DUPLICATE_VOLUME,
                    format!("{recovery} appears twice"),
                );
            }
            if s.kind.volume_type() != r.kind.volume_type() || r.kind.tracks() < s.kind.tracks() {
                // spec: ds8k.md §3.2 (recover)
                return refuse(
                    Ds8kReason::SIZE_MISMATCH,
                    format!(
                        "{source} ({:?}) does not fit {recovery} ({:?})",
                        s.kind, r.kind
                    ),
                );
            }
            if self.in_flash(recovery) || r.sgc.as_ref().is_some_and(|g| g.backup_count() > 0) {
                // spec: ds8k.md §3.2 (recover)
                return refuse(
                    Ds8kReason::VOLUME_IN_USE,
                    format!("{recovery} is in a FlashCopy relationship or holds backups"),
                );
            }
        }
        for &(source, recovery) in pairs {
            let pos = self.backup_position(source, backup)?;
            let mut tracks = self.backup_delta_tracks(source, pos);
            tracks.extend(self.volume(source)?.data.keys().copied());
            let image: BTreeMap<u32, u64> = tracks
                .into_iter()
                .map(|t| (t, self.backup_image_track(source, pos, t)))
                .filter(|&(_, v)| v != 0)
                .collect();
            self.volume_mut(recovery)?.data = image;
        }
        Ok(pairs.len())
    }

    /// Restores backup `backup` to its production volumes. The restore is a write
    /// of every track that differs, so FlashCopy targets and newer backups keep
    /// their own point-in-time contents. Returns the tracks written.
    pub fn restore_backup(
        &mut self,
        now_ms: u64,
        backup: u64,
        volumes: &[VolumeId],
    ) -> Result<u64, Ds8kError> {
        self.expire_freezes(now_ms);
        if volumes.is_empty() {
            // spec: ds8k.md §3.2 (restore)
            return refuse(Ds8kReason::NOTHING_TO_DO, "no volumes");
        }
        for &vol in volumes {
            self.backup_position(vol, backup)?;
            self.check_writable(vol)?;
        }
        let mut written = 0;
        for &vol in volumes {
            let pos = self.backup_position(vol, backup)?;
            let changes: Vec<(u32, u64)> = self
                .backup_delta_tracks(vol, pos)
                .into_iter()
                .map(|t| (t, self.backup_image_track(vol, pos, t)))
                .filter(|&(t, img)| self.volumes.get(&vol).is_some_and(|v| v.read(t) != img))
                .collect();
            for (t, img) in changes {
                self.write_unchecked(vol, t, img);
                written += 1;
            }
        }
        Ok(written)
    }
}
