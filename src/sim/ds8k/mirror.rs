//! Metro Mirror (synchronous PPRC) between storage images (spec:
//! protocol-specs/ds8k.md §3.5): a [`Complex`] of images joined by links, PPRC paths
//! between LSSs, pairs with their states, synchronous mirroring of host writes,
//! freeze of a consistency group with extended long busy, failover and failback.
//! Pure: time is an input, and the links' failures are the caller's to cause.
//!
//! The DS CLI commands it stands for: `mkpprcpath`, `rmpprcpath`, `mkpprc`,
//! `pausepprc`, `resumepprc`, `failoverpprc`, `failbackpprc`, `freezepprc`,
//! `unfreezepprc`, `rmpprc`, `lspprc`, `lspprcpath`.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde::Deserialize;

use super::image::StorageImage;
use super::tracks::TrackSet;
use crate::ds8k::reason::{Ds8kError, Ds8kReason, refuse};
use crate::ds8k::{Lss, VolumeId};

/// Metro Mirror settings of the complex (`[mirror]`, configuration.md §5).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    /// First-pass and resynchronisation copy rate per pair, tracks per second.
    #[serde(default = "default_copy_rate")]
    pub copy_tracks_per_sec: u64,
    /// How long a primary LSS stays extended long busy after a freeze or a path
    /// failure on a consistency-group path, unless `unfreezepprc` ends it, ms.
    #[serde(default = "default_long_busy")]
    pub long_busy_timeout_ms: u64,
}

fn default_copy_rate() -> u64 {
    20_000
}

fn default_long_busy() -> u64 {
    // zgate's choice: the DS8000's consistency-group timeout is set per LSS pair.
    120_000
}

impl Default for MirrorConfig {
    fn default() -> Self {
        MirrorConfig {
            copy_tracks_per_sec: default_copy_rate(),
            long_busy_timeout_ms: default_long_busy(),
        }
    }
}

/// A volume of the complex: its image (the index in the complex) and its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MirrorVolume {
    /// The image's index.
    pub site: u8,
    /// The volume.
    pub volume: VolumeId,
}

impl MirrorVolume {
    /// The LSS it is in.
    pub fn lss(self) -> LssRef {
        LssRef {
            site: self.site,
            lss: self.volume.lss(),
        }
    }
}

impl std::fmt::Display for MirrorVolume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.volume, self.site)
    }
}

/// An LSS of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LssRef {
    /// The image's index.
    pub site: u8,
    /// The LSS.
    pub lss: Lss,
}

/// A PPRC path: from a primary LSS to a secondary LSS on another image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PathKey {
    /// The primary side.
    pub from: LssRef,
    /// The secondary side.
    pub to: LssRef,
}

/// Why a pair is suspended (wire values, ds8k.md §4.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SuspendReason {
    /// `pausepprc`.
    Host = 1,
    /// `freezepprc`.
    Freeze = 2,
    /// The path failed (its link went down).
    PathFailed = 3,
    /// `failoverpprc` of a pair that was mirroring.
    Failover = 4,
}

/// A pair's state (wire values, ds8k.md §4.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PairState {
    /// Mirroring, and copying the tracks not yet on the secondary.
    CopyPending,
    /// Mirroring; the secondary holds every track.
    FullDuplex,
    /// Not mirroring: the primary records the tracks it changes.
    Suspended(SuspendReason),
}

impl PairState {
    /// Writes to the primary reach the secondary.
    pub fn mirroring(self) -> bool {
        !matches!(self, PairState::Suspended(_))
    }
}

#[derive(Debug, Clone, Copy)]
struct PathState {
    consistency_group: bool,
    /// The path itself failed (its link may be up).
    failed: bool,
}

#[derive(Debug, Clone)]
struct Pair {
    secondary: MirrorVolume,
    state: PairState,
    /// Tracks the secondary does not have: to copy in copy pending; recorded
    /// changes of the primary while suspended.
    oos: TrackSet,
    /// The primary's tracks.
    extent: u32,
    /// `failoverpprc` made the secondary a writable primary of its own.
    failed_over: bool,
    /// Tracks written on the secondary since the failover.
    secondary_changes: TrackSet,
}

/// What `lspprc` shows of a pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairInfo {
    /// The primary.
    pub primary: MirrorVolume,
    /// The secondary.
    pub secondary: MirrorVolume,
    /// Its state.
    pub state: PairState,
    /// The secondary was failed over.
    pub failed_over: bool,
    /// Tracks to copy (copy pending) or recorded (suspended).
    pub out_of_sync_tracks: u64,
}

/// What `lspprcpath` shows of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathInfo {
    /// The path.
    pub key: PathKey,
    /// Made with `-consistgrp`: a failure or a freeze holds the primary LSS's writes.
    pub consistency_group: bool,
    /// Its link is up.
    pub up: bool,
}

/// Something the complex did on its own or as a consequence, for its HMCs to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MirrorEvent {
    /// A pair stopped mirroring.
    Suspended {
        /// Primary.
        primary: MirrorVolume,
        /// Secondary.
        secondary: MirrorVolume,
        /// Why.
        reason: SuspendReason,
    },
    /// A pair's copy finished: full duplex.
    Duplex {
        /// Primary.
        primary: MirrorVolume,
        /// Secondary.
        secondary: MirrorVolume,
    },
    /// An LSS's extended long busy ended by its timeout.
    LongBusyTimedOut {
        /// The LSS.
        lss: LssRef,
    },
}

impl MirrorEvent {
    /// The image whose HMC reports it.
    pub fn site(&self) -> u8 {
        match self {
            MirrorEvent::Suspended { primary, .. } | MirrorEvent::Duplex { primary, .. } => {
                primary.site
            }
            MirrorEvent::LongBusyTimedOut { lss } => lss.site,
        }
    }
}

/// Storage images and the Metro Mirror between them.
#[derive(Debug, Clone)]
pub struct Complex {
    images: Vec<StorageImage>,
    config: MirrorConfig,
    paths: BTreeMap<PathKey, PathState>,
    /// primary -> pair.
    pairs: BTreeMap<MirrorVolume, Pair>,
    /// secondary -> primary.
    primary_of: HashMap<MirrorVolume, MirrorVolume>,
    /// Primary LSSs holding writes (extended long busy) until this time.
    long_busy: BTreeMap<LssRef, u64>,
    /// Links down, as (lower site, higher site).
    links_down: BTreeSet<(u8, u8)>,
    events: VecDeque<MirrorEvent>,
    last_tick_ms: Option<u64>,
    copy_carry: u64,
}

fn link(a: u8, b: u8) -> (u8, u8) {
    (a.min(b), a.max(b))
}

impl Complex {
    /// The images (at most 255), numbered by their order here.
    pub fn new(images: Vec<StorageImage>, config: MirrorConfig) -> Complex {
        let mut images = images;
        images.truncate(usize::from(u8::MAX));
        Complex {
            images,
            config,
            paths: BTreeMap::new(),
            pairs: BTreeMap::new(),
            primary_of: HashMap::new(),
            long_busy: BTreeMap::new(),
            links_down: BTreeSet::new(),
            events: VecDeque::new(),
            last_tick_ms: None,
            copy_carry: 0,
        }
    }

    /// The images.
    pub fn images(&self) -> &[StorageImage] {
        &self.images
    }

    /// Image `site`.
    pub fn image(&self, site: u8) -> Result<&StorageImage, Ds8kError> {
        match self.images.get(usize::from(site)) {
            Some(i) => Ok(i),
            None => refuse(Ds8kReason::UNKNOWN_IMAGE, format!("no image {site}")),
        }
    }

    /// Image `site`, to change.
    pub fn image_mut(&mut self, site: u8) -> Result<&mut StorageImage, Ds8kError> {
        match self.images.get_mut(usize::from(site)) {
            Some(i) => Ok(i),
            None => refuse(Ds8kReason::UNKNOWN_IMAGE, format!("no image {site}")),
        }
    }

    /// The index of the image with `serial`.
    pub fn site_of(&self, serial: &str) -> Option<u8> {
        self.images
            .iter()
            .position(|i| i.id().serial() == serial)
            .and_then(|p| u8::try_from(p).ok())
    }

    /// The images, to change (volumes, FlashCopy, backups: the caller keeps
    /// volumes in pairs out of what would change them behind the mirror, with
    /// [`Complex::in_pair`]).
    pub fn images_mut(&mut self) -> &mut [StorageImage] {
        &mut self.images
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<MirrorEvent> {
        self.events.pop_front()
    }

    /// The next event for image `site`'s HMC: a pair's events go to its primary's,
    /// a hold's to its LSS's.
    pub fn poll_event_for(&mut self, site: u8) -> Option<MirrorEvent> {
        let at = self.events.iter().position(|e| e.site() == site)?;
        self.events.remove(at)
    }

    /// The volume's pair, as primary or secondary.
    pub fn pair_of(&self, v: MirrorVolume) -> Option<PairInfo> {
        let primary = self.primary_of.get(&v).copied().unwrap_or(v);
        self.pairs.get(&primary).map(|p| PairInfo {
            primary,
            secondary: p.secondary,
            state: p.state,
            failed_over: p.failed_over,
            out_of_sync_tracks: p.oos.len(),
        })
    }

    /// Every pair, by primary.
    pub fn pairs(&self) -> impl Iterator<Item = PairInfo> + '_ {
        self.pairs.keys().filter_map(|&p| self.pair_of(p))
    }

    /// Every path, with its state.
    pub fn paths(&self) -> impl Iterator<Item = PathInfo> + '_ {
        self.paths.iter().map(|(&key, path)| PathInfo {
            key,
            consistency_group: path.consistency_group,
            up: !path.failed && self.link_up(key.from.site, key.to.site),
        })
    }

    /// True while the volume is in a pair (primary or secondary): operations that
    /// would change its data behind the mirror are refused.
    pub fn in_pair(&self, v: MirrorVolume) -> bool {
        self.pairs.contains_key(&v) || self.primary_of.contains_key(&v)
    }

    /// The LSSs holding writes now.
    pub fn long_busy_lsss(&self) -> impl Iterator<Item = LssRef> + '_ {
        self.long_busy.keys().copied()
    }

    fn link_up(&self, a: u8, b: u8) -> bool {
        !self.links_down.contains(&link(a, b))
    }

    fn path_up(&self, key: PathKey) -> bool {
        self.paths.get(&key).is_some_and(|p| !p.failed) && self.link_up(key.from.site, key.to.site)
    }

    fn volume_tracks(&self, v: MirrorVolume) -> Result<(crate::ds8k::VolumeKind, u32), Ds8kError> {
        let info = self.image(v.site)?.query_volume(v.volume)?;
        Ok((info.kind, info.kind.tracks()))
    }

    /// `mkpprcpath`: a path from `from` to `to` (another image), with or without
    /// consistency group. Making an existing path again sets its option.
    pub fn make_path(
        &mut self,
        from: LssRef,
        to: LssRef,
        consistency_group: bool,
    ) -> Result<(), Ds8kError> {
        self.image(from.site)?;
        self.image(to.site)?;
        if from.site == to.site {
            return refuse(
                Ds8kReason::SAME_IMAGE,
                "a PPRC path joins two storage images",
            );
        }
        if !self.link_up(from.site, to.site) {
            return refuse(
                Ds8kReason::LINK_DOWN,
                format!(
                    "the link between images {} and {} is down",
                    from.site, to.site
                ),
            );
        }
        self.paths.insert(
            PathKey { from, to },
            PathState {
                consistency_group,
                failed: false,
            },
        );
        Ok(())
    }

    /// `rmpprcpath`: refused while a pair uses the path.
    pub fn remove_path(&mut self, key: PathKey) -> Result<(), Ds8kError> {
        if !self.paths.contains_key(&key) {
            return refuse(Ds8kReason::NO_PATH, "no such PPRC path");
        }
        if self
            .pairs
            .iter()
            .any(|(p, pair)| p.lss() == key.from && pair.secondary.lss() == key.to)
        {
            return refuse(Ds8kReason::PATH_IN_USE, "PPRC pairs use the path");
        }
        self.paths.remove(&key);
        Ok(())
    }

    /// `mkpprc -type mmir`: pairs (primary, secondary), all or none. Each starts
    /// copy pending (every track of the primary to copy), or full duplex with
    /// `no_copy` (`-mode nocp`: the caller knows the volumes are the same).
    pub fn establish(
        &mut self,
        pairs: &[(MirrorVolume, MirrorVolume)],
        no_copy: bool,
    ) -> Result<usize, Ds8kError> {
        if pairs.is_empty() {
            return refuse(Ds8kReason::NOTHING_TO_DO, "no pairs");
        }
        let mut seen = BTreeSet::new();
        let mut made = Vec::with_capacity(pairs.len());
        for &(p, s) in pairs {
            if !seen.insert(p) || !seen.insert(s) {
                return refuse(
                    Ds8kReason::DUPLICATE_VOLUME,
                    format!("{p} or {s} is in the request twice"),
                );
            }
            if p.site == s.site {
                return refuse(
                    Ds8kReason::SAME_IMAGE,
                    format!("{p} and {s} are on the same storage image"),
                );
            }
            let (pk, extent) = self.volume_tracks(p)?;
            let (sk, s_tracks) = self.volume_tracks(s)?;
            if pk.volume_type() != sk.volume_type() || s_tracks < extent {
                return refuse(
                    Ds8kReason::SIZE_MISMATCH,
                    format!("{s} is not of {p}'s type or is smaller"),
                );
            }
            for v in [p, s] {
                if self.in_pair(v) {
                    return refuse(
                        Ds8kReason::PPRC_PAIR_EXISTS,
                        format!("{v} is already in a PPRC pair"),
                    );
                }
            }
            let path = PathKey {
                from: p.lss(),
                to: s.lss(),
            };
            if !self.path_up(path) {
                return refuse(
                    Ds8kReason::NO_PATH,
                    format!(
                        "no PPRC path up from LSS {} to LSS {}",
                        p.volume.lss(),
                        s.volume.lss()
                    ),
                );
            }
            made.push((p, s, extent));
        }
        for (p, s, extent) in made {
            let (state, oos) = if no_copy {
                (PairState::FullDuplex, TrackSet::new())
            } else {
                (PairState::CopyPending, TrackSet::full(0..extent))
            };
            self.pairs.insert(
                p,
                Pair {
                    secondary: s,
                    state,
                    oos,
                    extent,
                    failed_over: false,
                    secondary_changes: TrackSet::new(),
                },
            );
            self.primary_of.insert(s, p);
        }
        Ok(pairs.len())
    }

    /// Every primary given, checked to be one of a pair (all or none).
    fn pairs_named(&self, primaries: &[MirrorVolume]) -> Result<(), Ds8kError> {
        if primaries.is_empty() {
            return refuse(Ds8kReason::NOTHING_TO_DO, "no pairs");
        }
        match primaries.iter().find(|p| !self.pairs.contains_key(p)) {
            Some(p) => refuse(
                Ds8kReason::NOT_A_PPRC_PAIR,
                format!("{p} is not the primary of a PPRC pair"),
            ),
            None => Ok(()),
        }
    }

    fn suspend_pair(&mut self, primary: MirrorVolume, reason: SuspendReason) {
        if let Some(pair) = self.pairs.get_mut(&primary)
            && pair.state.mirroring()
        {
            pair.state = PairState::Suspended(reason);
            self.events.push_back(MirrorEvent::Suspended {
                primary,
                secondary: pair.secondary,
                reason,
            });
        }
    }

    /// `pausepprc`: the pairs stop mirroring; their primaries record changes.
    pub fn suspend(&mut self, primaries: &[MirrorVolume]) -> Result<usize, Ds8kError> {
        self.pairs_named(primaries)?;
        for &p in primaries {
            self.suspend_pair(p, SuspendReason::Host);
        }
        Ok(primaries.len())
    }

    /// `resumepprc`: suspended pairs (not failed over) copy what they recorded, then
    /// mirror again; their paths must be up.
    pub fn resume(&mut self, primaries: &[MirrorVolume]) -> Result<usize, Ds8kError> {
        self.pairs_named(primaries)?;
        for p in primaries {
            let pair = &self.pairs[p];
            if !matches!(pair.state, PairState::Suspended(_)) || pair.failed_over {
                return refuse(
                    Ds8kReason::PPRC_STATE,
                    format!("{p}: only a suspended pair that was not failed over resumes"),
                );
            }
            if !self.path_up(PathKey {
                from: p.lss(),
                to: pair.secondary.lss(),
            }) {
                return refuse(Ds8kReason::NO_PATH, format!("{p}: no PPRC path up"));
            }
        }
        for p in primaries {
            if let Some(pair) = self.pairs.get_mut(p) {
                pair.state = PairState::CopyPending;
            }
        }
        Ok(primaries.len())
    }

    /// `failoverpprc`, sent to the secondaries' image: each secondary becomes a
    /// writable volume of its own (recording its changes) and the pair is
    /// suspended; the old primary keeps recording its own. A pair still copying is
    /// refused: its secondary is not a usable copy.
    pub fn failover(&mut self, secondaries: &[MirrorVolume]) -> Result<usize, Ds8kError> {
        if secondaries.is_empty() {
            return refuse(Ds8kReason::NOTHING_TO_DO, "no pairs");
        }
        let mut primaries = Vec::with_capacity(secondaries.len());
        for s in secondaries {
            let Some(&p) = self.primary_of.get(s) else {
                return refuse(
                    Ds8kReason::NOT_A_PPRC_PAIR,
                    format!("{s} is not the secondary of a PPRC pair"),
                );
            };
            if self.pairs[&p].state == PairState::CopyPending {
                return refuse(
                    Ds8kReason::PPRC_STATE,
                    format!("{p}:{s} is still copying; its secondary is not consistent"),
                );
            }
            primaries.push(p);
        }
        for p in primaries {
            self.suspend_pair(p, SuspendReason::Failover);
            if let Some(pair) = self.pairs.get_mut(&p) {
                pair.failed_over = true;
            }
        }
        Ok(secondaries.len())
    }

    /// `failbackpprc` of failed-over pairs, each named (new primary, new secondary):
    /// the new primary's data goes to the other side, every track changed on either
    /// side since the pair stopped mirroring is copied, and the other side becomes
    /// the read-only secondary. Either direction: back to the original primary, or
    /// from the failed-over secondary (the pair is reversed).
    pub fn failback(&mut self, pairs: &[(MirrorVolume, MirrorVolume)]) -> Result<usize, Ds8kError> {
        if pairs.is_empty() {
            return refuse(Ds8kReason::NOTHING_TO_DO, "no pairs");
        }
        for &(p, s) in pairs {
            let original = if self.pairs.get(&p).is_some_and(|x| x.secondary == s) {
                p
            } else if self.pairs.get(&s).is_some_and(|x| x.secondary == p) {
                s
            } else {
                return refuse(
                    Ds8kReason::NOT_A_PPRC_PAIR,
                    format!("{p} and {s} are not a PPRC pair"),
                );
            };
            if !self.pairs[&original].failed_over {
                return refuse(
                    Ds8kReason::PPRC_STATE,
                    format!("{p}:{s} was not failed over"),
                );
            }
            let (_, p_tracks) = self.volume_tracks(p)?;
            let (_, s_tracks) = self.volume_tracks(s)?;
            if s_tracks < p_tracks {
                return refuse(
                    Ds8kReason::SIZE_MISMATCH,
                    format!("{s} is smaller than {p}"),
                );
            }
            if !self.path_up(PathKey {
                from: p.lss(),
                to: s.lss(),
            }) {
                return refuse(
                    Ds8kReason::NO_PATH,
                    format!(
                        "no PPRC path up from LSS {} to LSS {}",
                        p.volume.lss(),
                        s.volume.lss()
                    ),
                );
            }
        }
        for &(p, s) in pairs {
            let original = if self.pairs.get(&p).is_some_and(|x| x.secondary == s) {
                p
            } else {
                s
            };
            let Some(mut pair) = self.pairs.remove(&original) else {
                continue;
            };
            self.primary_of.remove(&pair.secondary);
            let changed = std::mem::take(&mut pair.secondary_changes);
            pair.oos.union_with(&changed);
            if original != p {
                // Reversed: the extent is the new primary's.
                pair.extent = self.volume_tracks(p).map(|(_, t)| t).unwrap_or(pair.extent);
            }
            pair.secondary = s;
            pair.state = PairState::CopyPending;
            pair.failed_over = false;
            self.primary_of.insert(s, p);
            self.pairs.insert(p, pair);
        }
        Ok(pairs.len())
    }

    /// `rmpprc`: the pairs end; both volumes keep their data.
    pub fn remove(&mut self, primaries: &[MirrorVolume]) -> Result<usize, Ds8kError> {
        self.pairs_named(primaries)?;
        for p in primaries {
            if let Some(pair) = self.pairs.remove(p) {
                self.primary_of.remove(&pair.secondary);
            }
        }
        Ok(primaries.len())
    }

    /// `freezepprc` of paths, at once: every pair on them is suspended, the paths
    /// are removed, and each primary LSS of a consistency-group path holds its
    /// writes (extended long busy) until `unfreezepprc` or the timeout. After it,
    /// no write reaches those secondaries: they hold one point in time.
    pub fn freeze(&mut self, now_ms: u64, paths: &[PathKey]) -> Result<usize, Ds8kError> {
        if paths.is_empty() {
            return refuse(Ds8kReason::NOTHING_TO_DO, "no paths");
        }
        if let Some(p) = paths.iter().find(|p| !self.paths.contains_key(p)) {
            return refuse(
                Ds8kReason::NO_PATH,
                format!("no PPRC path from LSS {} to LSS {}", p.from.lss, p.to.lss),
            );
        }
        let keys: BTreeSet<PathKey> = paths.iter().copied().collect();
        let on_them: Vec<MirrorVolume> = self
            .pairs
            .iter()
            .filter(|(p, pair)| {
                keys.contains(&PathKey {
                    from: p.lss(),
                    to: pair.secondary.lss(),
                })
            })
            .map(|(p, _)| *p)
            .collect();
        let mut suspended = 0;
        for p in on_them {
            if self.pairs[&p].state.mirroring() {
                suspended += 1;
            }
            self.suspend_pair(p, SuspendReason::Freeze);
        }
        for key in &keys {
            if self.paths.remove(key).is_some_and(|p| p.consistency_group) {
                self.hold(now_ms, key.from);
            }
        }
        Ok(suspended)
    }

    fn hold(&mut self, now_ms: u64, lss: LssRef) {
        let until = now_ms.saturating_add(self.config.long_busy_timeout_ms);
        let held = self.long_busy.entry(lss).or_insert(until);
        *held = (*held).max(until);
    }

    /// `unfreezepprc`: the LSSs take writes again (the "run" after a freeze).
    pub fn unfreeze(&mut self, lsss: &[LssRef]) -> Result<usize, Ds8kError> {
        if lsss.is_empty() {
            return refuse(Ds8kReason::NOTHING_TO_DO, "no LSSs");
        }
        Ok(lsss
            .iter()
            .filter(|l| self.long_busy.remove(l).is_some())
            .count())
    }

    /// The link between two images fails: every mirroring pair on a path between
    /// them is suspended, and each primary LSS of a consistency-group path holds
    /// its writes (the manager then freezes the rest of its group).
    pub fn cut_link(&mut self, now_ms: u64, a: u8, b: u8) {
        if !self.links_down.insert(link(a, b)) {
            return;
        }
        let crossing: Vec<PathKey> = self
            .paths
            .keys()
            .filter(|k| link(k.from.site, k.to.site) == link(a, b))
            .copied()
            .collect();
        for key in crossing {
            self.path_lost(now_ms, key);
        }
    }

    /// One path fails (the others, and the link, stay up): its pairs are suspended,
    /// and with consistency group its primary LSS holds writes.
    pub fn fail_path(&mut self, now_ms: u64, key: PathKey) {
        if let Some(path) = self.paths.get_mut(&key)
            && !path.failed
        {
            path.failed = true;
            self.path_lost(now_ms, key);
        }
    }

    fn path_lost(&mut self, now_ms: u64, key: PathKey) {
        let on_it: Vec<MirrorVolume> = self
            .pairs
            .iter()
            .filter(|(p, pair)| {
                p.lss() == key.from && pair.secondary.lss() == key.to && pair.state.mirroring()
            })
            .map(|(p, _)| *p)
            .collect();
        for p in &on_it {
            self.suspend_pair(*p, SuspendReason::PathFailed);
        }
        let cg = self.paths.get(&key).is_some_and(|p| p.consistency_group);
        if cg && !on_it.is_empty() {
            self.hold(now_ms, key.from);
        }
    }

    /// The link works again, and every failed path between the two images with it
    /// (suspended pairs stay suspended until `resumepprc`).
    pub fn mend_link(&mut self, a: u8, b: u8) {
        self.links_down.remove(&link(a, b));
        for (key, path) in self.paths.iter_mut() {
            if link(key.from.site, key.to.site) == link(a, b) {
                path.failed = false;
            }
        }
    }

    fn expire_long_busy(&mut self, now_ms: u64) {
        let over: Vec<LssRef> = self
            .long_busy
            .iter()
            .filter(|(_, until)| **until <= now_ms)
            .map(|(l, _)| *l)
            .collect();
        for lss in over {
            self.long_busy.remove(&lss);
            self.events.push_back(MirrorEvent::LongBusyTimedOut { lss });
        }
    }

    /// A host write to `v`: refused on a secondary that was not failed over and on
    /// an LSS holding writes; otherwise the primary's own rules apply, then the
    /// write reaches the secondary before it is complete (mirroring) or is recorded
    /// (suspended).
    pub fn write_track(
        &mut self,
        now_ms: u64,
        v: MirrorVolume,
        track: u32,
        tag: u64,
    ) -> Result<(), Ds8kError> {
        self.expire_long_busy(now_ms);
        if let Some(p) = self.primary_of.get(&v)
            && !self.pairs[p].failed_over
        {
            return refuse(
                Ds8kReason::SECONDARY_READ_ONLY,
                format!("{v} is the secondary of {p}"),
            );
        }
        if self.long_busy.contains_key(&v.lss()) {
            return refuse(
                Ds8kReason::LONG_BUSY,
                format!(
                    "{v}: LSS {} holds writes after a PPRC freeze or failure",
                    v.volume.lss()
                ),
            );
        }
        let site = usize::from(v.site);
        let Some(image) = self.images.get_mut(site) else {
            return refuse(Ds8kReason::UNKNOWN_IMAGE, format!("no image {}", v.site));
        };
        image.write_track(now_ms, v.volume, track, tag)?;
        if let Some(&p) = self.primary_of.get(&v)
            && let Some(pair) = self.pairs.get_mut(&p)
        {
            // A failed-over secondary records what failback must copy back.
            pair.secondary_changes.insert(track);
        }
        let Some(pair) = self.pairs.get_mut(&v) else {
            return Ok(());
        };
        if track >= pair.extent {
            return Ok(());
        }
        if pair.state.mirroring() {
            let s = pair.secondary;
            pair.oos.remove(track);
            if let Some(image) = self.images.get_mut(usize::from(s.site)) {
                image.write_unchecked(s.volume, track, tag);
            }
        } else {
            pair.oos.insert(track);
        }
        Ok(())
    }

    /// A host read.
    pub fn read_track(&self, v: MirrorVolume, track: u32) -> Result<u64, Ds8kError> {
        self.image(v.site)?.read_track(v.volume, track)
    }

    /// Advances every image's clock and the pairs' copies to `now_ms`.
    pub fn tick(&mut self, now_ms: u64) {
        // Time never goes back, whoever ticks.
        let now_ms = now_ms.max(self.last_tick_ms.unwrap_or(0));
        self.expire_long_busy(now_ms);
        for image in &mut self.images {
            image.tick(now_ms);
        }
        let Some(last) = self.last_tick_ms.replace(now_ms) else {
            return;
        };
        let budget_ms = self
            .config
            .copy_tracks_per_sec
            .saturating_mul(now_ms.saturating_sub(last))
            .saturating_add(self.copy_carry);
        self.copy_carry = budget_ms % 1000;
        let budget = budget_ms / 1000;
        if budget == 0 {
            return;
        }
        let copying: Vec<MirrorVolume> = self
            .pairs
            .iter()
            .filter(|(_, p)| p.state == PairState::CopyPending)
            .map(|(v, _)| *v)
            .collect();
        for p in copying {
            self.copy_front(p, budget);
        }
    }

    /// Copies up to `budget` out-of-sync tracks of a pair, front first; full duplex
    /// when none is left.
    fn copy_front(&mut self, primary: MirrorVolume, budget: u64) {
        let Some(pair) = self.pairs.get_mut(&primary) else {
            return;
        };
        let ranges = pair.oos.take_front(budget);
        let (secondary, done) = (pair.secondary, pair.oos.is_empty());
        if done {
            pair.state = PairState::FullDuplex;
        }
        let copies = self
            .images
            .get(usize::from(primary.site))
            .map(|img| img.written_in(primary.volume, &ranges))
            .unwrap_or_default();
        if let Some(img) = self.images.get_mut(usize::from(secondary.site)) {
            img.clear_tracks(secondary.volume, &ranges);
            for (t, tag) in copies {
                img.write_unchecked(secondary.volume, t, tag);
            }
        }
        if done {
            self.events
                .push_back(MirrorEvent::Duplex { primary, secondary });
        }
    }
}
