//! FlashCopy: establish (`mkflash`), incremental refresh (`resyncflash`), withdraw
//! (`rmflash`), thaw (`unfreezeflash`), query (`lsflash`) (spec: ds8k.md §3.1).
//!
//! A relationship keeps an out-of-sync set: the target tracks not yet physically
//! copied. A target read of such a track reads the source; a source write copies
//! the old track to the target first (copy-on-write); background copy empties the
//! set from the front. Change recording (incremental) keeps a second set of tracks
//! written on either volume since the last flash; `resyncflash` copies only those.

use super::image::{StorageEvent, StorageImage};
use super::state::FlashRelationship;
use super::tracks::TrackSet;
use crate::ds8k::copy::{FlashOptions, MAX_TARGETS_PER_SOURCE, PairKey};
use crate::ds8k::reason::{Ds8kError, Ds8kReason, refuse};
use crate::ds8k::{Lss, VolumeId};

/// What `lsflash` shows of a relationship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashInfo {
    /// Source and target.
    pub key: PairKey,
    /// Options in force.
    pub options: FlashOptions,
    /// Consistency group sequence number.
    pub sequence: u32,
    /// Tracks not yet copied.
    pub out_of_sync_tracks: u64,
    /// Tracks changed since the last flash (recording relationships).
    pub changed_tracks: u64,
    /// Established, ms since the epoch.
    pub created_ms: u64,
    /// Last flash or resync, ms since the epoch.
    pub synced_ms: u64,
    /// Background copy is running.
    pub copying: bool,
}

impl FlashRelationship {
    fn info(&self, copying: bool) -> FlashInfo {
        FlashInfo {
            key: self.key,
            options: self.options,
            sequence: self.sequence,
            out_of_sync_tracks: self.oos.len(),
            changed_tracks: self.changes.as_ref().map_or(0, TrackSet::len),
            created_ms: self.created_ms,
            synced_ms: self.synced_ms,
            copying,
        }
    }
}

/// What an establish or resync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashResult {
    /// Consistency group sequence number given to the pairs.
    pub sequence: u32,
    /// Pairs established or refreshed.
    pub pairs: usize,
    /// Out-of-sync tracks after the operation, summed over the pairs.
    pub out_of_sync_tracks: u64,
}

impl StorageImage {
    /// Relationships whose source is `source`.
    pub(super) fn targets_of(&self, source: VolumeId) -> impl Iterator<Item = &FlashRelationship> {
        let lo = PairKey {
            source,
            target: VolumeId(0),
        };
        let hi = PairKey {
            source,
            target: VolumeId(u16::MAX),
        };
        self.relationships.range(lo..=hi).map(|(_, r)| r)
    }

    /// `lsflash` for one volume: the relationships it is source or target of.
    pub fn list_flash(&self, volume: VolumeId) -> Result<Vec<FlashInfo>, Ds8kError> {
        self.volume(volume)?;
        let mut out: Vec<FlashInfo> = self
            .targets_of(volume)
            .map(|r| r.info(self.copying.contains(&r.key)))
            .collect();
        if let Some(&source) = self.target_of.get(&volume) {
            let key = PairKey {
                source,
                target: volume,
            };
            if let Some(r) = self.relationships.get(&key) {
                out.push(r.info(self.copying.contains(&key)));
            }
        }
        Ok(out)
    }

    /// One relationship's state.
    pub fn flash_info(&self, key: PairKey) -> Option<FlashInfo> {
        self.relationships
            .get(&key)
            .map(|r| r.info(self.copying.contains(&key)))
    }

    /// Relationships in the image.
    pub fn relationship_count(&self) -> usize {
        self.relationships.len()
    }

    /// Checks every pair of an establish before any is made (all or nothing).
    fn check_establish(&self, pairs: &[PairKey], options: FlashOptions) -> Result<(), Ds8kError> {
        if pairs.is_empty() {
            // spec: ds8k.md §3.1.1 (establish: volumes, sizes, targets, limits)
            return refuse(Ds8kReason::NOTHING_TO_DO, "no pairs");
        }
        let mut targets = std::collections::HashSet::new();
        let mut new_per_source: std::collections::HashMap<VolumeId, (usize, usize)> =
            std::collections::HashMap::new();
        let sources: std::collections::HashSet<VolumeId> = pairs.iter().map(|p| p.source).collect();
        for p in pairs {
            let (s, t) = (p.source, p.target);
            let src = self.volume(s)?;
            let tgt = self.volume(t)?;
            if s == t {
                // spec: ds8k.md §3.1.1 (establish: volumes, sizes, targets, limits)
                return refuse(
                    Ds8kReason::SAME_VOLUME,
                    format!("{s}:{t}: source is the target"),
                );
            }
            if !targets.insert(t) {
                // spec: ds8k.md §3.1.1 (establish: volumes, sizes, targets, limits)
                return refuse(
                    Ds8kReason::DUPLICATE_VOLUME,
                    format!("{t} is a target twice"),
                );
            }
            if src.kind.volume_type() != tgt.kind.volume_type()
                || tgt.kind.tracks() < src.kind.tracks()
            {
                // spec: ds8k.md §3.1.1 (establish: volumes, sizes, targets, limits)
                return refuse(
                    Ds8kReason::SIZE_MISMATCH,
                    format!(
                        "{s}:{t}: {:?} cannot be flashed to {:?}",
                        src.kind, tgt.kind
                    ),
                );
            }
            if self.relationships.contains_key(p) {
                // spec: ds8k.md §3.1.1 (establish: volumes, sizes, targets, limits)
                return refuse(
                    Ds8kReason::RELATIONSHIP_EXISTS,
                    format!("{s}:{t} exists; use resyncflash"),
                );
            }
            if let Some(other) = self.target_of.get(&t) {
                // spec: ds8k.md §3.1.1 (establish: volumes, sizes, targets, limits)
                return refuse(
                    Ds8kReason::ALREADY_A_TARGET,
                    format!("{t} is already the target of {other}:{t}"),
                );
            }
            if self.target_of.contains_key(&s)
                || self.targets_of(t).next().is_some()
                || sources.contains(&t)
            {
                // spec: ds8k.md §3.1.1 (establish: volumes, sizes, targets, limits)
                return refuse(
                    Ds8kReason::CASCADE_NOT_SUPPORTED,
                    format!("{s}:{t}: a FlashCopy target cannot be a source here"),
                );
            }
            if tgt.sgc.as_ref().is_some_and(|g| g.backup_count() > 0) {
                // spec: ds8k.md §3.1.1 (establish: volumes, sizes, targets, limits)
                return refuse(
                    Ds8kReason::VOLUME_IN_USE,
                    format!("{t} holds Safeguarded Copy backups and cannot be a target"),
                );
            }
            let n = new_per_source.entry(s).or_insert((0, 0));
            n.0 += 1;
            if options.record() {
                n.1 += 1;
            }
        }
        for (s, (count, incremental)) in new_per_source {
            let existing = self.targets_of(s).count();
            if existing + count > MAX_TARGETS_PER_SOURCE {
                // spec: ds8k.md §3.1.1 (establish: volumes, sizes, targets, limits)
                return refuse(
                    Ds8kReason::TOO_MANY_TARGETS,
                    format!(
                        "{s} has {existing} targets; {count} more exceed {MAX_TARGETS_PER_SOURCE}"
                    ),
                );
            }
            let existing_incremental = self.targets_of(s).filter(|r| r.options.record()).count();
            if existing_incremental + incremental > 1 {
                // spec: ds8k.md §3.1.1 (establish: volumes, sizes, targets, limits)
                return refuse(
                    Ds8kReason::INCREMENTAL_EXISTS,
                    format!("{s} may have one incremental relationship"),
                );
            }
        }
        Ok(())
    }

    /// `mkflash`: establishes every pair at one instant (a consistency group),
    /// or none. With `FREEZE`, the source LSSs hold writes until thawed or the
    /// freeze times out.
    pub fn establish_flash(
        &mut self,
        now_ms: u64,
        pairs: &[PairKey],
        options: FlashOptions,
    ) -> Result<FlashResult, Ds8kError> {
        self.establish_flash_numbered(now_ms, pairs, options, 0)
    }

    /// `mkflash -seqnum`: as [`StorageImage::establish_flash`], with the client's
    /// sequence number (0: the box picks one), which `lsflash` shows afterwards so
    /// that a client can find out whether its request was carried out (ds8k.md
    /// §3.1.5).
    pub fn establish_flash_numbered(
        &mut self,
        now_ms: u64,
        pairs: &[PairKey],
        options: FlashOptions,
        sequence: u32,
    ) -> Result<FlashResult, Ds8kError> {
        self.expire_freezes(now_ms);
        let options = options.normalized();
        if options.0 & !FlashOptions::KNOWN != 0 {
            // spec: ds8k.md §3.1.1
            return refuse(
                Ds8kReason::NOTHING_TO_DO,
                format!("undefined option bits {:#06x}", options.0),
            );
        }
        self.check_establish(pairs, options)?;
        let sequence = self.pick_sequence(sequence);
        let mut oos_total = 0;
        for &key in pairs {
            let tracks = self.volume(key.source)?.kind.tracks();
            let rel = FlashRelationship {
                key,
                options,
                sequence,
                created_ms: now_ms,
                synced_ms: now_ms,
                extent: tracks,
                oos: TrackSet::full(0..tracks),
                changes: options.record().then(TrackSet::new),
                withdraw_when_copied: false,
            };
            oos_total += rel.oos.len();
            self.relationships.insert(key, rel);
            self.target_of.insert(key.target, key.source);
            if !options.no_copy() {
                self.copying.insert(key);
            }
            if options.freeze() {
                self.freeze(now_ms, key.source.lss());
            }
        }
        Ok(FlashResult {
            sequence,
            pairs: pairs.len(),
            out_of_sync_tracks: oos_total,
        })
    }

    /// `resyncflash`: refreshes incremental relationships at one instant, copying
    /// only the tracks changed since the last flash. The new options replace the
    /// old; without `RECORD` the relationship stops being incremental.
    pub fn resync_flash(
        &mut self,
        now_ms: u64,
        pairs: &[PairKey],
        options: FlashOptions,
    ) -> Result<FlashResult, Ds8kError> {
        self.resync_flash_numbered(now_ms, pairs, options, 0)
    }

    /// `resyncflash -seqnum`: as [`StorageImage::resync_flash`], with the client's
    /// sequence number (0: the box picks one).
    pub fn resync_flash_numbered(
        &mut self,
        now_ms: u64,
        pairs: &[PairKey],
        options: FlashOptions,
        sequence: u32,
    ) -> Result<FlashResult, Ds8kError> {
        self.expire_freezes(now_ms);
        let options = options.normalized();
        if pairs.is_empty() {
            // spec: ds8k.md §3.1.3
            return refuse(Ds8kReason::NOTHING_TO_DO, "no pairs");
        }
        for p in pairs {
            match self.relationships.get(p) {
                None => {
                    // spec: ds8k.md §3.1.3
                    return refuse(
                        Ds8kReason::NO_RELATIONSHIP,
                        format!("{}:{} is not a relationship", p.source, p.target),
                    );
                }
                Some(r) if r.changes.is_none() => {
                    // spec: ds8k.md §3.1.3
                    return refuse(
                        Ds8kReason::NOT_INCREMENTAL,
                        format!(
                            "{}:{} was not made with -record -persist",
                            p.source, p.target
                        ),
                    );
                }
                Some(_) => {}
            }
        }
        let sequence = self.pick_sequence(sequence);
        let mut oos_total = 0;
        for &key in pairs {
            let Some(rel) = self.relationships.get_mut(&key) else {
                continue;
            };
            if let Some(changes) = rel.changes.take() {
                rel.oos.union_with(&changes);
            }
            rel.changes = options.record().then(TrackSet::new);
            rel.options = options;
            rel.sequence = sequence;
            rel.synced_ms = now_ms;
            rel.withdraw_when_copied = false;
            oos_total += rel.oos.len();
            if options.no_copy() || rel.oos.is_empty() {
                self.copying.remove(&key);
            } else {
                self.copying.insert(key);
            }
            if options.freeze() {
                self.freeze(now_ms, key.source.lss());
            }
        }
        Ok(FlashResult {
            sequence,
            pairs: pairs.len(),
            out_of_sync_tracks: oos_total,
        })
    }

    /// `rmflash`: withdraws relationships. With `copy_first` (`-cp`), a relationship
    /// with tracks still to copy copies them in the background and ends when done;
    /// without it, it ends now and a no-copy target's uncopied tracks are left as
    /// they were (the DS8000 calls them unpredictable).
    pub fn withdraw_flash(
        &mut self,
        pairs: &[PairKey],
        copy_first: bool,
    ) -> Result<usize, Ds8kError> {
        if pairs.is_empty() {
            // spec: ds8k.md §3.1.3
            return refuse(Ds8kReason::NOTHING_TO_DO, "no pairs");
        }
        for p in pairs {
            if !self.relationships.contains_key(p) {
                // spec: ds8k.md §3.1.3
                return refuse(
                    Ds8kReason::NO_RELATIONSHIP,
                    format!("{}:{} is not a relationship", p.source, p.target),
                );
            }
        }
        for &key in pairs {
            let pending = self
                .relationships
                .get(&key)
                .is_some_and(|r| !r.oos.is_empty());
            if copy_first && pending {
                if let Some(rel) = self.relationships.get_mut(&key) {
                    rel.withdraw_when_copied = true;
                    rel.options.0 &= !FlashOptions::NO_COPY;
                }
                self.copying.insert(key);
            } else {
                self.end_relationship(key);
            }
        }
        Ok(pairs.len())
    }

    /// `unfreezeflash`: thaws LSSs; writes flow again.
    pub fn unfreeze(&mut self, lsss: &[Lss]) -> usize {
        lsss.iter()
            .filter(|l| self.frozen.remove(l).is_some())
            .count()
    }

    /// Frozen LSSs.
    pub fn frozen_lsss(&self) -> Vec<Lss> {
        self.frozen.keys().copied().collect()
    }

    fn freeze(&mut self, now_ms: u64, lss: Lss) {
        let until = now_ms.saturating_add(self.config.freeze_timeout_ms);
        self.frozen.insert(lss, until);
    }

    /// The client's sequence number, or the box's next one when it gave none.
    fn pick_sequence(&mut self, requested: u32) -> u32 {
        if requested != 0 {
            return requested;
        }
        self.next_sequence()
    }

    fn next_sequence(&mut self) -> u32 {
        let s = self.next_sequence;
        self.next_sequence = self.next_sequence.wrapping_add(1).max(1);
        s
    }

    pub(super) fn end_relationship(&mut self, key: PairKey) {
        self.relationships.remove(&key);
        self.copying.remove(&key);
        if self.target_of.get(&key.target) == Some(&key.source) {
            self.target_of.remove(&key.target);
        }
    }

    /// After a copy step: a relationship with nothing left to copy stops copying,
    /// reports it, and ends unless persistent.
    pub(super) fn finish_if_copied(&mut self, key: PairKey) {
        let Some(rel) = self.relationships.get(&key) else {
            return;
        };
        if !rel.oos.is_empty() {
            return;
        }
        let was_copying = self.copying.remove(&key);
        let ends = rel.withdraw_when_copied || !rel.options.persist();
        if was_copying || ends {
            self.events.push_back(StorageEvent::CopyComplete {
                source: key.source,
                target: key.target,
                ended: ends,
            });
        }
        if ends {
            self.end_relationship(key);
        }
    }
}
