//! An oracle for Metro Mirror (test-only): a small complex of two images with one
//! consistency group of four pairs in two LSSs, driven by a sequence of host writes,
//! link and path failures, freezes, failovers and failbacks, with a manager that
//! acts as CSM or HyperSwap does (it freezes the whole group when a pair suspends,
//! before time moves on). After every step it checks, against its own record of
//! every write the hosts were told was done:
//!
//! - the production copy reads every acknowledged write (nothing acknowledged is lost);
//! - a full-duplex pair's secondary is its primary, track by track;
//! - once the group is suspended after mirroring, every secondary holds the
//!   production copy of one instant (the freeze), whatever was written since: no
//!   dependent write reaches a secondary out of order;
//! - a failover of a full-duplex group finds every acknowledged write on the
//!   secondaries, and a failover of a frozen group finds exactly the frozen instant;
//! - a host write to a secondary is refused; a refused write changes nothing.
//!
//! Used by `tests/ds8k_mirror.rs` (proptest) and the `ds8k_mirror` fuzz target.

use super::image::{ImageConfig, StorageImage};
use super::mirror::{Complex, LssRef, MirrorConfig, MirrorEvent, MirrorVolume, PairState, PathKey};
use crate::ds8k::{Ds8kReason, Lss, StorageImageId, VolumeId, VolumeKind};

/// Tracks of each test volume (a one-cylinder 3390).
pub const TRACKS: u32 = 15;
/// The group's volumes, the same ids on both images: two per LSS.
pub const VOLUMES: [u16; 4] = [0x0000, 0x0001, 0x0100, 0x0101];
/// Long busy timeout of the test complex, ms.
pub const LONG_BUSY_MS: u64 = 30_000;

/// One step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorOp {
    /// A host write to the production copy of a volume.
    Write {
        /// Index into [`VOLUMES`].
        volume: u8,
        /// Track.
        track: u8,
    },
    /// A host write to the other copy.
    WriteOther {
        /// Index into [`VOLUMES`].
        volume: u8,
        /// Track.
        track: u8,
    },
    /// Time passes (the manager acts first on what it has seen).
    Tick {
        /// Milliseconds.
        ms: u16,
    },
    /// One LSS's path fails.
    FailPath {
        /// 0 or 1.
        lss: u8,
    },
    /// The link between the images fails.
    CutLink,
    /// The link and every path are repaired.
    Mend,
    /// The manager acts on suspensions it has seen.
    ManagerActs,
    /// CSM's Suspend: freeze the group; `run` ends the long busy at once.
    Suspend {
        /// FreezeAll and Run (true) or FreezeAll and Stop.
        run: bool,
    },
    /// CSM's Start again after a suspend: paths, then resume.
    Resume,
    /// Swap production to the other copy (failover).
    Failover,
    /// Mirror from the production copy to the other (failback).
    Failback,
}

impl MirrorOp {
    /// Operations from fuzz bytes: one byte picks the operation, the next bytes its
    /// arguments (missing bytes read as 0).
    pub fn decode_all(data: &[u8]) -> Vec<MirrorOp> {
        let mut bytes = data.iter().copied();
        let mut next = || bytes.next();
        let mut ops = Vec::new();
        while let Some(b) = next() {
            let mut arg = || next().unwrap_or(0);
            ops.push(match b % 11 {
                0 | 1 => MirrorOp::Write {
                    volume: arg(),
                    track: arg(),
                },
                2 => MirrorOp::WriteOther {
                    volume: arg(),
                    track: arg(),
                },
                3 => MirrorOp::Tick {
                    ms: u16::from(arg()) * 40,
                },
                4 => MirrorOp::FailPath { lss: arg() % 2 },
                5 => MirrorOp::CutLink,
                6 => MirrorOp::Mend,
                7 => MirrorOp::ManagerActs,
                8 => MirrorOp::Suspend {
                    run: arg() % 2 == 0,
                },
                9 => match arg() % 3 {
                    0 => MirrorOp::Resume,
                    1 => MirrorOp::Failover,
                    _ => MirrorOp::Failback,
                },
                _ => MirrorOp::Resume,
            });
            if ops.len() >= 400 {
                break;
            }
        }
        ops
    }
}

type Content = [[u64; TRACKS as usize]; VOLUMES.len()];

/// The oracle's run.
pub struct MirrorRun {
    complex: Complex,
    now: u64,
    next_tag: u64,
    /// Site holding production.
    production: u8,
    /// What the hosts were told is written, on the production copy.
    shadow: Content,
    /// A pair suspended that the manager has not acted on.
    pending: bool,
    /// The group was full duplex when its first pair suspended.
    clean: bool,
    /// The production copy at the instant the group finished suspending, when clean.
    frozen: Option<Content>,
}

fn vol(site: u8, i: usize) -> MirrorVolume {
    MirrorVolume {
        site,
        volume: VolumeId(VOLUMES[i % VOLUMES.len()]),
    }
}

fn lss_of(site: u8, i: u8) -> LssRef {
    LssRef {
        site,
        lss: Lss(i % 2),
    }
}

impl MirrorRun {
    /// Two images, four full-duplex pairs from site 0 to site 1 on consistency-group
    /// paths.
    pub fn new() -> Result<MirrorRun, String> {
        let image = |serial: &str| -> Result<StorageImage, String> {
            let id =
                StorageImageId::parse(&format!("IBM.2107-{serial}")).map_err(|e| e.to_string())?;
            let mut img = StorageImage::new(id, ImageConfig::default());
            for v in VOLUMES {
                img.create_volume(VolumeId(v), VolumeKind::ckd(1), "MM")
                    .map_err(|e| e.to_string())?;
            }
            Ok(img)
        };
        let complex = Complex::new(
            vec![image("75FA120")?, image("75FA121")?],
            MirrorConfig {
                copy_tracks_per_sec: 10,
                long_busy_timeout_ms: LONG_BUSY_MS,
            },
        );
        let mut run = MirrorRun {
            complex,
            now: 1_700_000_000_000,
            next_tag: 1,
            production: 0,
            shadow: [[0; TRACKS as usize]; VOLUMES.len()],
            pending: false,
            clean: true,
            frozen: None,
        };
        run.complex.tick(run.now);
        run.start_mirroring().map_err(|e| e.to_string())?;
        run.settle_copy()?;
        Ok(run)
    }

    fn other(&self) -> u8 {
        1 - self.production
    }

    fn group_paths(&self, from: u8) -> Vec<PathKey> {
        (0..2)
            .map(|l| PathKey {
                from: lss_of(from, l),
                to: lss_of(1 - from, l),
            })
            .collect()
    }

    fn make_paths(&mut self) -> Result<(), crate::ds8k::Ds8kError> {
        for key in self.group_paths(self.production) {
            self.complex.make_path(key.from, key.to, true)?;
        }
        Ok(())
    }

    fn start_mirroring(&mut self) -> Result<(), crate::ds8k::Ds8kError> {
        self.make_paths()?;
        let pairs: Vec<_> = (0..VOLUMES.len()).map(|i| (vol(0, i), vol(1, i))).collect();
        self.complex.establish(&pairs, false).map(|_| ())
    }

    fn settle_copy(&mut self) -> Result<(), String> {
        for _ in 0..10 {
            self.now += 1_000;
            self.complex.tick(self.now);
        }
        self.check()
    }

    fn states(&self) -> Vec<PairState> {
        self.complex.pairs().map(|p| p.state).collect()
    }

    fn all_suspended(&self) -> bool {
        self.states().iter().all(|s| !s.mirroring())
    }

    fn all_duplex(&self) -> bool {
        self.states().iter().all(|s| *s == PairState::FullDuplex)
    }

    fn failed_over(&self) -> bool {
        self.complex.pairs().any(|p| p.failed_over)
    }

    fn read(&self, site: u8, i: usize) -> Result<Vec<u64>, String> {
        (0..TRACKS)
            .map(|t| {
                self.complex
                    .read_track(vol(site, i), t)
                    .map_err(|e| e.to_string())
            })
            .collect()
    }

    fn content(&self, site: u8) -> Result<Content, String> {
        let mut c = [[0; TRACKS as usize]; VOLUMES.len()];
        for (i, row) in c.iter_mut().enumerate() {
            for (t, slot) in row.iter_mut().enumerate() {
                *slot = self
                    .complex
                    .read_track(vol(site, i), t as u32)
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(c)
    }

    /// The manager: freeze every path of the group (FreezeAll), then Run or Stop.
    fn freeze_group(&mut self, run: bool) {
        let paths: Vec<PathKey> = self
            .complex
            .paths()
            .map(|p| p.key)
            .filter(|k| k.from.site == self.production)
            .collect();
        if !paths.is_empty() {
            let _ = self.complex.freeze(self.now, &paths);
        }
        if run {
            let lsss: Vec<LssRef> = (0..2).map(|l| lss_of(self.production, l)).collect();
            let _ = self.complex.unfreeze(&lsss);
        }
        self.pending = false;
    }

    /// Runs one step and checks the invariants.
    pub fn step(&mut self, op: MirrorOp) -> Result<(), String> {
        let was_mirroring_all = !self.failed_over() && self.states().iter().all(|s| s.mirroring());
        let was_duplex = self.all_duplex();
        match op {
            MirrorOp::Write { volume, track } => {
                let i = usize::from(volume) % VOLUMES.len();
                let track = u32::from(track) % TRACKS;
                let tag = self.next_tag;
                self.next_tag += 1;
                match self
                    .complex
                    .write_track(self.now, vol(self.production, i), track, tag)
                {
                    Ok(()) => self.shadow[i][track as usize] = tag,
                    Err(e) if e.reason == Ds8kReason::LONG_BUSY => {}
                    Err(e) => return Err(format!("a production write was refused: {e}")),
                }
            }
            MirrorOp::WriteOther { volume, track } => {
                let i = usize::from(volume) % VOLUMES.len();
                let track = u32::from(track) % TRACKS;
                let tag = self.next_tag;
                self.next_tag += 1;
                let other = vol(self.other(), i);
                let is_secondary = self
                    .complex
                    .pair_of(other)
                    .is_some_and(|p| p.secondary == other && !p.failed_over);
                let before = self.content(self.other())?;
                match self.complex.write_track(self.now, other, track, tag) {
                    Ok(()) if is_secondary => {
                        return Err(format!("a write to the secondary {other} was taken"));
                    }
                    Ok(()) => {}
                    Err(e) => {
                        if is_secondary && e.reason != Ds8kReason::SECONDARY_READ_ONLY {
                            return Err(format!("a write to the secondary {other}: {e}"));
                        }
                        if self.content(self.other())? != before {
                            return Err(format!("a refused write changed {other}"));
                        }
                    }
                }
            }
            MirrorOp::Tick { ms } => {
                if self.pending {
                    self.freeze_group(true);
                }
                self.now += u64::from(ms);
                self.complex.tick(self.now);
            }
            MirrorOp::FailPath { lss } => {
                let key = PathKey {
                    from: lss_of(self.production, lss),
                    to: lss_of(self.other(), lss),
                };
                self.complex.fail_path(self.now, key);
            }
            MirrorOp::CutLink => self.complex.cut_link(self.now, 0, 1),
            MirrorOp::Mend => self.complex.mend_link(0, 1),
            MirrorOp::ManagerActs => {
                if self.pending {
                    self.freeze_group(true);
                }
            }
            MirrorOp::Suspend { run } => {
                if !self.failed_over() {
                    self.freeze_group(run);
                }
            }
            MirrorOp::Resume => {
                if self.all_suspended() && !self.failed_over() && self.make_paths().is_ok() {
                    let primaries: Vec<_> = (0..VOLUMES.len())
                        .map(|i| vol(self.production, i))
                        .collect();
                    self.complex
                        .resume(&primaries)
                        .map_err(|e| format!("resume refused: {e}"))?;
                    self.after_resync();
                }
            }
            MirrorOp::Failover => self.failover()?,
            MirrorOp::Failback => {
                if self.failed_over() && self.make_paths().is_ok() {
                    let pairs: Vec<_> = (0..VOLUMES.len())
                        .map(|i| (vol(self.production, i), vol(self.other(), i)))
                        .collect();
                    self.complex
                        .failback(&pairs)
                        .map_err(|e| format!("failback refused: {e}"))?;
                    self.after_resync();
                }
            }
        }
        // The manager hears of suspensions.
        while let Some(event) = self.complex.poll_event() {
            if let MirrorEvent::Suspended { .. } = event
                && !self.failed_over()
            {
                self.pending = true;
            }
        }
        if was_mirroring_all && !self.states().iter().all(|s| s.mirroring()) {
            // The first suspension of the group.
            self.clean = was_duplex;
        }
        if self.all_suspended() && !self.failed_over() && self.frozen.is_none() && self.clean {
            self.frozen = Some(self.shadow);
        }
        self.check()
    }

    fn after_resync(&mut self) {
        self.frozen = None;
        self.clean = false;
        self.pending = false;
    }

    fn failover(&mut self) -> Result<(), String> {
        if self.failed_over() {
            return Ok(());
        }
        let states = self.states();
        if states.contains(&PairState::CopyPending) {
            let secondaries: Vec<_> = (0..VOLUMES.len()).map(|i| vol(self.other(), i)).collect();
            return match self.complex.failover(&secondaries) {
                Err(e) if e.reason == Ds8kReason::PPRC_STATE => Ok(()),
                other => Err(format!("failover of a copying group: {other:?}")),
            };
        }
        if !self.all_suspended() && !self.all_duplex() {
            // A HyperSwap freezes what still mirrors first.
            self.freeze_group(true);
            if self.frozen.is_none() && self.clean && self.all_suspended() {
                self.frozen = Some(self.shadow);
            }
        }
        let expected = if self.all_duplex() {
            Some(self.shadow)
        } else {
            self.frozen
        };
        let secondaries: Vec<_> = (0..VOLUMES.len()).map(|i| vol(self.other(), i)).collect();
        self.complex
            .failover(&secondaries)
            .map_err(|e| format!("failover refused: {e}"))?;
        let swapped = self.content(self.other())?;
        if let Some(expected) = expected
            && swapped != expected
        {
            return Err(format!(
                "after failover the secondaries hold {swapped:?}, not {expected:?}"
            ));
        }
        self.shadow = swapped;
        self.production = self.other();
        self.pending = false;
        self.frozen = None;
        self.clean = false;
        Ok(())
    }

    fn check(&self) -> Result<(), String> {
        for i in 0..VOLUMES.len() {
            let got = self.read(self.production, i)?;
            if got[..] != self.shadow[i][..] {
                return Err(format!(
                    "production {} reads {got:?}, not the acknowledged {:?}",
                    vol(self.production, i),
                    self.shadow[i]
                ));
            }
        }
        for p in self.complex.pairs() {
            if p.state == PairState::FullDuplex {
                let i = VOLUMES
                    .iter()
                    .position(|v| *v == p.primary.volume.0)
                    .unwrap_or(0);
                let (a, b) = (
                    self.read(p.primary.site, i)?,
                    self.read(p.secondary.site, i)?,
                );
                if a != b {
                    return Err(format!(
                        "full duplex {}:{} differ: {a:?} vs {b:?}",
                        p.primary, p.secondary
                    ));
                }
            }
        }
        if let Some(frozen) = &self.frozen
            && self.all_suspended()
            && !self.failed_over()
        {
            let secondaries = self.content(self.other())?;
            if &secondaries != frozen {
                return Err(format!(
                    "the frozen secondaries hold {secondaries:?}, not the freeze's instant {frozen:?}"
                ));
            }
        }
        Ok(())
    }
}

/// Runs `ops` from a fresh complex; the first broken invariant, if any.
pub fn run(ops: &[MirrorOp]) -> Result<(), String> {
    run_reach(ops).map(|_| ())
}

/// [`run`], returning which situations the run reached (for the fuzz seeds' test).
pub fn run_reach(ops: &[MirrorOp]) -> Result<std::collections::BTreeSet<&'static str>, String> {
    let mut reached = std::collections::BTreeSet::new();
    let mut r = MirrorRun::new()?;
    for (n, op) in ops.iter().enumerate() {
        r.step(*op).map_err(|e| format!("step {n} {op:?}: {e}"))?;
        if r.frozen.is_some() {
            reached.insert("frozen_consistent");
        }
        if r.failed_over() {
            reached.insert("failed_over");
        }
        if r.production == 1 && r.all_duplex() {
            reached.insert("mirroring_back");
        }
        if r.complex.long_busy_lsss().next().is_some() {
            reached.insert("long_busy");
        }
    }
    Ok(reached)
}
