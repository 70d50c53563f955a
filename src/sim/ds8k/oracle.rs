//! An oracle for the storage model: runs a sequence of operations on a small
//! [`StorageImage`] and, after every step, compares it with a naive model that keeps
//! every volume's contents and every backup as full copies. Used by the property
//! tests (`tests/ds8k_model.rs`) and the `ds8k_model` fuzz target.
//!
//! Invariants checked after every operation:
//! - every track of every volume reads what the oracle says (point in time);
//! - every backup reads exactly its volume at the backup's instant, and the image
//!   holds exactly the backups the oracle expects (expiry and roll-off included);
//! - out-of-sync counts never grow except by an establish or a resync;
//! - safeguarded capacity balances: used = what the backups hold <= capacity;
//! - a write to an inhibited target is refused, and any refused write names why.

use std::collections::{BTreeMap, HashMap};

use super::image::{ImageConfig, StorageEvent, StorageImage};
use crate::ds8k::{Ds8kReason, FlashOptions, PairKey, StorageImageId, VolumeId, VolumeKind};

/// Volumes of the test image: six 2-cylinder CKD volumes (30 tracks) in LSSs 00
/// and 01, and one 3-cylinder volume (45 tracks).
pub const VOLUMES: [u16; 7] = [0x0000, 0x0001, 0x0002, 0x0003, 0x0004, 0x0100, 0x0101];

fn kind(i: usize) -> VolumeKind {
    VolumeKind::ckd(if i == 6 { 3 } else { 2 })
}

fn vid(i: usize) -> VolumeId {
    VolumeId(VOLUMES[i % VOLUMES.len()])
}

/// One operation; volume arguments index [`VOLUMES`], backup arguments index the
/// backups taken so far.
#[derive(Debug, Clone)]
pub enum ModelOp {
    /// Host write (track reduced modulo the volume's size).
    Write(usize, u32, u64),
    /// `mkflash` of the pairs with the option bits.
    Establish(Vec<(usize, usize)>, u16),
    /// `resyncflash`.
    Resync(usize, usize, u16),
    /// `rmflash`, with `-cp` or not.
    Withdraw(usize, usize, bool),
    /// Advance the clock by ms and tick.
    Advance(u64),
    /// Set safeguarded capacity, tracks.
    Capacity(usize, u64),
    /// Take a backup of the volumes.
    Backup(Vec<usize>),
    /// Expire the n-th backup taken.
    Expire(usize),
    /// Recover the n-th backup of a volume to another.
    Recover(usize, usize, usize),
    /// Restore the n-th backup to a volume.
    Restore(usize, usize),
    /// Thaw every frozen LSS.
    Unfreeze,
}

impl ModelOp {
    /// Decodes operations from arbitrary bytes (for the fuzzer): 4 bytes each.
    pub fn decode_all(data: &[u8]) -> Vec<ModelOp> {
        data.chunks_exact(4)
            .take(200)
            .map(|c| {
                let (a, b, x) = (usize::from(c[1] % 7), usize::from(c[2] % 7), c[3]);
                match c[0] % 16 {
                    0..=4 => ModelOp::Write(a, u32::from(c[2]), u64::from(x % 6)),
                    5 | 6 => ModelOp::Establish(vec![(a, b)], u16::from(x & 0x1F)),
                    7 => ModelOp::Establish(vec![(a, b), (b, usize::from(x % 7))], 0),
                    8 => ModelOp::Resync(a, b, u16::from(x & 0x1F)),
                    9 => ModelOp::Withdraw(a, b, x & 1 == 1),
                    10 => ModelOp::Advance(u64::from(x) * 200),
                    11 => ModelOp::Capacity(a, u64::from(x % 20)),
                    12 => ModelOp::Backup(vec![a, b]),
                    13 => ModelOp::Expire(usize::from(x % 8)),
                    14 => ModelOp::Recover(usize::from(x % 8), a, b),
                    _ => {
                        if x & 1 == 0 {
                            ModelOp::Restore(usize::from(x % 8), a)
                        } else {
                            ModelOp::Unfreeze
                        }
                    }
                }
            })
            .collect()
    }
}

#[derive(Default)]
struct Oracle {
    /// volume -> track -> tag (absent = 0).
    content: HashMap<VolumeId, BTreeMap<u32, u64>>,
    /// (volume, backup id) -> contents at the backup.
    backups: BTreeMap<(VolumeId, u64), BTreeMap<u32, u64>>,
    /// Backup ids taken, in order.
    ids: Vec<u64>,
}

impl Oracle {
    fn read(&self, v: VolumeId, t: u32) -> u64 {
        self.content
            .get(&v)
            .and_then(|m| m.get(&t))
            .copied()
            .unwrap_or(0)
    }

    fn write(&mut self, v: VolumeId, t: u32, tag: u64) {
        let m = self.content.entry(v).or_default();
        if tag == 0 {
            m.remove(&t);
        } else {
            m.insert(t, tag);
        }
    }

    /// The target becomes the source's image on the source's tracks.
    fn flash(&mut self, s: VolumeId, t: VolumeId, tracks: u32) {
        for tr in 0..tracks {
            let x = self.read(s, tr);
            self.write(t, tr, x);
        }
    }
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

fn tracks_of(img: &StorageImage, v: VolumeId) -> Result<u32, String> {
    img.query_volume(v)
        .map(|i| i.kind.tracks())
        .map_err(|e| e.to_string())
}

fn new_image() -> Result<StorageImage, String> {
    let id = StorageImageId::parse("75FA120").map_err(|e| e.to_string())?;
    let mut img = StorageImage::new(
        id,
        ImageConfig {
            copy_tracks_per_sec: 3,
            freeze_timeout_ms: 20_000,
            max_backups_per_volume: 4,
        },
    );
    for (i, &v) in VOLUMES.iter().enumerate() {
        img.create_volume(VolumeId(v), kind(i), "T")
            .map_err(|e| e.to_string())?;
    }
    Ok(img)
}

fn oos_counts(img: &StorageImage) -> BTreeMap<PairKey, u64> {
    let mut out = BTreeMap::new();
    for v in VOLUMES {
        for r in img.list_flash(VolumeId(v)).unwrap_or_default() {
            out.insert(r.key, r.out_of_sync_tracks);
        }
    }
    out
}

fn compare(img: &StorageImage, o: &Oracle) -> Result<(), String> {
    for (i, &v) in VOLUMES.iter().enumerate() {
        let v = VolumeId(v);
        for t in 0..kind(i).tracks() {
            let got = img.read_track(v, t).map_err(|e| e.to_string())?;
            ensure!(
                got == o.read(v, t),
                "volume {v} track {t}: read {got}, expected {}",
                o.read(v, t)
            );
        }
        let listed = img.list_backups(v).map_err(|e| e.to_string())?;
        let held: Vec<u64> = listed.iter().map(|b| b.id).collect();
        let expected: Vec<u64> = o
            .backups
            .range((v, 0)..=(v, u64::MAX))
            .map(|((_, id), _)| *id)
            .collect();
        ensure!(
            held == expected,
            "backups of {v}: {held:?}, expected {expected:?}"
        );
        for id in held {
            let snap = o
                .backups
                .get(&(v, id))
                .ok_or("backup vanished from the oracle")?;
            for t in 0..kind(i).tracks() {
                let want = snap.get(&t).copied().unwrap_or(0);
                let got = img.read_backup(v, id, t).map_err(|e| e.to_string())?;
                ensure!(
                    got == want,
                    "backup {id} of {v} track {t}: {got}, expected {want}"
                );
            }
        }
        let info = img.query_volume(v).map_err(|e| e.to_string())?;
        let saved: u64 = listed.iter().map(|b| b.saved_tracks).sum();
        ensure!(
            info.sgc_used == saved,
            "{v}: used {} but backups hold {saved}",
            info.sgc_used
        );
        ensure!(
            info.sgc_used <= info.sgc_capacity,
            "{v}: used over capacity"
        );
    }
    Ok(())
}

/// Runs `ops` and checks every invariant after each; the first violation is the error.
pub fn check_sequence(ops: &[ModelOp]) -> Result<(), String> {
    let mut img = new_image()?;
    let mut o = Oracle::default();
    let mut now: u64 = 1_700_000_000_000;
    img.tick(now);
    for (step, op) in ops.iter().enumerate() {
        let before = oos_counts(&img);
        let mut may_grow = false;
        match op {
            ModelOp::Write(v, t, tag) => {
                let v = vid(*v);
                let t = t % tracks_of(&img, v)?;
                let inhibited = img
                    .query_volume(v)
                    .ok()
                    .and_then(|i| i.flash_source)
                    .and_then(|s| {
                        img.flash_info(PairKey {
                            source: s,
                            target: v,
                        })
                    })
                    .is_some_and(|i| i.options.inhibit_target_writes());
                match img.write_track(now, v, t, *tag) {
                    Ok(()) => {
                        ensure!(
                            !inhibited,
                            "step {step}: write to an inhibited target accepted"
                        );
                        o.write(v, t, *tag);
                    }
                    Err(e) => ensure!(
                        e.reason == Ds8kReason::TARGET_WRITE_INHIBITED
                            || e.reason == Ds8kReason::LONG_BUSY,
                        "step {step}: write refused for {e}"
                    ),
                }
            }
            ModelOp::Establish(pairs, opts) => {
                let keys: Vec<PairKey> = pairs
                    .iter()
                    .map(|&(s, t)| PairKey {
                        source: vid(s),
                        target: vid(t),
                    })
                    .collect();
                if img.establish_flash(now, &keys, FlashOptions(*opts)).is_ok() {
                    may_grow = true;
                    for k in &keys {
                        o.flash(k.source, k.target, tracks_of(&img, k.source)?);
                    }
                }
            }
            ModelOp::Resync(s, t, opts) => {
                let k = PairKey {
                    source: vid(*s),
                    target: vid(*t),
                };
                if img.resync_flash(now, &[k], FlashOptions(*opts)).is_ok() {
                    may_grow = true;
                    o.flash(k.source, k.target, tracks_of(&img, k.source)?);
                }
            }
            ModelOp::Withdraw(s, t, cp) => {
                let k = PairKey {
                    source: vid(*s),
                    target: vid(*t),
                };
                let pending = img.flash_info(k).is_some_and(|i| i.out_of_sync_tracks > 0);
                if img.withdraw_flash(&[k], *cp).is_ok() && pending && !cp {
                    // The DS8000 leaves uncopied tracks "unpredictable": from now on
                    // whatever the target reads is its contents.
                    for t in 0..tracks_of(&img, k.target)? {
                        let x = img.read_track(k.target, t).map_err(|e| e.to_string())?;
                        o.write(k.target, t, x);
                    }
                }
            }
            ModelOp::Advance(ms) => {
                now += ms;
                img.tick(now);
            }
            ModelOp::Capacity(v, c) => {
                let _ = img.set_safeguarded_capacity(vid(*v), *c);
            }
            ModelOp::Backup(vs) => {
                let vs: Vec<VolumeId> = vs.iter().map(|&v| vid(v)).collect();
                if let Ok(b) = img.take_backup(now, &vs) {
                    for &v in &vs {
                        let snap = o.content.get(&v).cloned().unwrap_or_default();
                        o.backups.insert((v, b.id), snap);
                    }
                    o.ids.push(b.id);
                }
            }
            ModelOp::Expire(i) => {
                if let Some(&id) = o.ids.get(*i)
                    && img.expire_backup(id).is_ok()
                {
                    let holders: Vec<VolumeId> = o
                        .backups
                        .keys()
                        .filter(|(_, b)| *b == id)
                        .map(|(v, _)| *v)
                        .collect();
                    for v in holders {
                        o.backups.retain(|(w, b), _| !(*w == v && *b <= id));
                    }
                }
            }
            ModelOp::Recover(i, s, r) => {
                if let Some(&id) = o.ids.get(*i)
                    && img.recover_backup(id, &[(vid(*s), vid(*r))]).is_ok()
                {
                    let snap = o.backups.get(&(vid(*s), id)).cloned().unwrap_or_default();
                    o.content.insert(vid(*r), snap);
                }
            }
            ModelOp::Restore(i, v) => {
                if let Some(&id) = o.ids.get(*i)
                    && img.restore_backup(now, id, &[vid(*v)]).is_ok()
                {
                    let snap = o.backups.get(&(vid(*v), id)).cloned().unwrap_or_default();
                    o.content.insert(vid(*v), snap);
                }
            }
            ModelOp::Unfreeze => {
                let frozen = img.frozen_lsss();
                img.unfreeze(&frozen);
            }
        }
        while let Some(e) = img.poll_event() {
            if let StorageEvent::BackupRolledOff { volume, backup_id } = e {
                ensure!(
                    o.backups.remove(&(volume, backup_id)).is_some(),
                    "step {step}: rolled off unknown backup {backup_id} of {volume}"
                );
            }
        }
        if !may_grow {
            for (k, n) in oos_counts(&img) {
                if let Some(&b) = before.get(&k) {
                    ensure!(
                        n <= b,
                        "step {step}: out-of-sync of {k:?} grew from {b} to {n}"
                    );
                }
            }
        }
        compare(&img, &o).map_err(|e| format!("step {step} ({op:?}): {e}"))?;
    }
    Ok(())
}
