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
pub const VOLUMES: [u16; 19] = [
    // Created at the start (CKD, address group 0).
    0x0000, 0x0001, 0x0002, 0x0003, 0x0004, 0x0100, 0x0101,
    // Free CKD ids of LSS 00, for `Create` and the 12-targets-per-source limit.
    0x0005, 0x0006, 0x0007, 0x0008, 0x0009, 0x000A, 0x000B, 0x000C, 0x000D, 0x000E,
    // Free ids of LSS 10 (address group 1), whose first volume sets CKD or FB.
    0x1000, 0x1001,
];

/// Volumes created before the first operation.
pub const INITIAL_VOLUMES: usize = 7;

fn kind(i: usize) -> VolumeKind {
    VolumeKind::ckd(if i == 6 { 3 } else { 2 })
}

fn vid(i: usize) -> VolumeId {
    VolumeId(VOLUMES[i % VOLUMES.len()])
}

/// A small CKD (1 to 3 cylinders) or FB (1 to 3 tracks) size from one byte, so that
/// the oracle's full copies stay cheap.
pub fn small_kind(code: u8) -> VolumeKind {
    if code & 0x80 != 0 {
        VolumeKind::Fb {
            blocks: u64::from(code & 0x7F) * 3 + 1,
        }
    } else {
        VolumeKind::ckd(u32::from(code % 3) + 1)
    }
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
    /// `mkckdvol` / `mkfbvol` of a small volume ([`small_kind`] code).
    Create(usize, u8),
    /// `rmvol`.
    Delete(usize),
    /// One `mkflash` from a source to `n` consecutive slots (the 12-target limit).
    FanOut(usize, usize, usize),
}

impl ModelOp {
    /// Most operations one input runs (libFuzzer's `-max_len` bounds it first).
    pub const MAX_OPS: usize = 4096;

    /// Bytes that [`ModelOp::decode_all`] reads back as this operation (for writing
    /// seeds): `None` for arguments the byte form cannot carry.
    pub fn encode(&self) -> Option<[u8; 4]> {
        let idx = |i: usize| {
            u8::try_from(i)
                .ok()
                .filter(|&b| usize::from(b) < VOLUMES.len())
        };
        Some(match self {
            ModelOp::Write(a, t, x) if *x < 6 => {
                [0, idx(*a)?, u8::try_from(*t).ok()?, u8::try_from(*x).ok()?]
            }
            ModelOp::Establish(p, o) if p.len() == 1 && *o < 32 => {
                [5, idx(p[0].0)?, idx(p[0].1)?, u8::try_from(*o).ok()?]
            }
            ModelOp::Resync(a, b, o) if *o < 32 => [8, idx(*a)?, idx(*b)?, u8::try_from(*o).ok()?],
            ModelOp::Withdraw(a, b, cp) => [9, idx(*a)?, idx(*b)?, u8::from(*cp)],
            ModelOp::Advance(ms) if ms % 200 == 0 => [10, 0, 0, u8::try_from(ms / 200).ok()?],
            ModelOp::Capacity(a, c) if *c < 20 => [11, idx(*a)?, 0, u8::try_from(*c).ok()?],
            ModelOp::Backup(v) if v.len() == 2 => [12, idx(v[0])?, idx(v[1])?, 0],
            ModelOp::Expire(i) if *i < 8 => [13, 0, 0, u8::try_from(*i).ok()?],
            ModelOp::Recover(i, s, r) if *i < 8 => [14, idx(*s)?, idx(*r)?, u8::try_from(*i).ok()?],
            ModelOp::Restore(i, v) if *i < 8 && i % 2 == 0 => {
                [15, idx(*v)?, 0, u8::try_from(*i).ok()?]
            }
            ModelOp::Unfreeze => [15, 0, 0, 1],
            ModelOp::Create(a, code) => [16, idx(*a)?, 0, *code],
            ModelOp::Delete(a) => [18, idx(*a)?, 0, 0],
            ModelOp::FanOut(a, b, n) if *n < 16 => [19, idx(*a)?, idx(*b)?, u8::try_from(*n).ok()?],
            _ => return None,
        })
    }

    /// Decodes operations from arbitrary bytes (for the fuzzer): 4 bytes each.
    pub fn decode_all(data: &[u8]) -> Vec<ModelOp> {
        let n = VOLUMES.len();
        data.chunks_exact(4)
            .take(Self::MAX_OPS)
            .map(|c| {
                let (a, b, x) = (usize::from(c[1]) % n, usize::from(c[2]) % n, c[3]);
                match c[0] % 20 {
                    0..=4 => ModelOp::Write(a, u32::from(c[2]), u64::from(x % 6)),
                    5 | 6 => ModelOp::Establish(vec![(a, b)], u16::from(x & 0x1F)),
                    7 => ModelOp::Establish(vec![(a, b), (b, usize::from(x) % n)], 0),
                    8 => ModelOp::Resync(a, b, u16::from(x & 0x1F)),
                    9 => ModelOp::Withdraw(a, b, x & 1 == 1),
                    10 => ModelOp::Advance(u64::from(x) * 200),
                    11 => ModelOp::Capacity(a, u64::from(x % 20)),
                    12 => ModelOp::Backup(vec![a, b]),
                    13 => ModelOp::Expire(usize::from(x % 8)),
                    14 => ModelOp::Recover(usize::from(x % 8), a, b),
                    15 if x & 1 == 0 => ModelOp::Restore(usize::from(x % 8), a),
                    15 => ModelOp::Unfreeze,
                    16 | 17 => ModelOp::Create(a, x),
                    18 => ModelOp::Delete(a),
                    _ => ModelOp::FanOut(a, b, usize::from(x % 16)),
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
    /// The volumes that exist, with their geometry.
    volumes: BTreeMap<VolumeId, VolumeKind>,
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

/// Sources that hold more than the 12 targets a DS8000 allows (ds8k.md §3.1.1).
fn over_target_limit(img: &StorageImage, o: &Oracle) -> Option<(VolumeId, usize)> {
    o.volumes.keys().find_map(|&v| {
        let n = img
            .list_flash(v)
            .unwrap_or_default()
            .iter()
            .filter(|r| r.key.source == v)
            .count();
        (n > crate::ds8k::MAX_TARGETS_PER_SOURCE).then_some((v, n))
    })
}

fn new_image() -> Result<StorageImage, String> {
    let id = StorageImageId::parse("75FA120").map_err(|e| e.to_string())?;
    let mut img = StorageImage::new(
        id,
        ImageConfig {
            copy_tracks_per_sec: 3,
            freeze_timeout_ms: 20_000,
            max_backups_per_volume: 4,
            memory_budget_mib: 1024,
        },
    );
    for (i, &v) in VOLUMES.iter().enumerate().take(INITIAL_VOLUMES) {
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
    for &v in &VOLUMES {
        let v = VolumeId(v);
        let Some(kind) = o.volumes.get(&v).copied() else {
            ensure!(
                img.query_volume(v)
                    .is_err_and(|e| e.reason == Ds8kReason::UNKNOWN_VOLUME),
                "{v} exists but was never created, or was deleted"
            );
            continue;
        };
        ensure!(tracks_of(img, v)? == kind.tracks(), "{v}: geometry changed");
        for t in 0..kind.tracks() {
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
            for t in 0..kind.tracks() {
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
    check_sequence_reach(ops).map(|_| ())
}

/// [`check_sequence`], returning which operations succeeded at least once (for the
/// fuzz seeds' tests).
pub fn check_sequence_reach(
    ops: &[ModelOp],
) -> Result<std::collections::BTreeSet<&'static str>, String> {
    let mut reached = std::collections::BTreeSet::new();
    let mut img = new_image()?;
    let mut o = Oracle::default();
    for (i, &v) in VOLUMES.iter().enumerate().take(INITIAL_VOLUMES) {
        o.volumes.insert(VolumeId(v), kind(i));
    }
    let mut now: u64 = 1_700_000_000_000;
    img.tick(now);
    for (step, op) in ops.iter().enumerate() {
        let before = oos_counts(&img);
        let mut may_grow = false;
        match op {
            ModelOp::Write(v, _, _) if !o.volumes.contains_key(&vid(*v)) => {
                let v = vid(*v);
                ensure!(
                    img.write_track(now, v, 0, 1)
                        .is_err_and(|e| e.reason == Ds8kReason::UNKNOWN_VOLUME),
                    "step {step}: write to missing volume {v} not refused as unknown"
                );
            }
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
                        reached.insert("written");
                        ensure!(
                            !inhibited,
                            "step {step}: write to an inhibited target accepted"
                        );
                        o.write(v, t, *tag);
                    }
                    Err(e) => {
                        ensure!(
                            e.reason == Ds8kReason::TARGET_WRITE_INHIBITED
                                || e.reason == Ds8kReason::LONG_BUSY,
                            "step {step}: write refused for {e}"
                        );
                        reached.insert(if e.reason == Ds8kReason::LONG_BUSY {
                            "write_held_by_freeze"
                        } else {
                            "write_inhibited"
                        });
                    }
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
                    reached.insert(if opts & FlashOptions::FREEZE != 0 {
                        "established_frozen"
                    } else {
                        "established"
                    });
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
                    reached.insert("resynced");
                    o.flash(k.source, k.target, tracks_of(&img, k.source)?);
                }
            }
            ModelOp::Withdraw(s, t, cp) => {
                let k = PairKey {
                    source: vid(*s),
                    target: vid(*t),
                };
                let pending = img.flash_info(k).is_some_and(|i| i.out_of_sync_tracks > 0);
                let withdrawn = img.withdraw_flash(&[k], *cp).is_ok();
                if withdrawn {
                    reached.insert("withdrawn");
                }
                if withdrawn && pending && !cp {
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
                    reached.insert("backup");
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
                    reached.insert("expired");
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
                    reached.insert("recovered");
                    let snap = o.backups.get(&(vid(*s), id)).cloned().unwrap_or_default();
                    o.content.insert(vid(*r), snap);
                }
            }
            ModelOp::Restore(i, v) => {
                if let Some(&id) = o.ids.get(*i)
                    && img.restore_backup(now, id, &[vid(*v)]).is_ok()
                {
                    reached.insert("restored");
                    let snap = o.backups.get(&(vid(*v), id)).cloned().unwrap_or_default();
                    o.content.insert(vid(*v), snap);
                }
            }
            ModelOp::Unfreeze => {
                let frozen = img.frozen_lsss();
                img.unfreeze(&frozen);
            }
            ModelOp::Create(v, code) => {
                let (v, kind) = (vid(*v), small_kind(*code));
                match img.create_volume(v, kind, "NEW") {
                    Ok(()) => {
                        reached.insert("created");
                        ensure!(
                            o.volumes.insert(v, kind).is_none(),
                            "step {step}: created {v}, which exists"
                        );
                        o.content.remove(&v);
                    }
                    Err(e) => ensure!(
                        (e.reason == Ds8kReason::VOLUME_EXISTS) == o.volumes.contains_key(&v),
                        "step {step}: create {v} refused for {e}"
                    ),
                }
            }
            ModelOp::Delete(v) => {
                let v = vid(*v);
                if img.delete_volume(v).is_ok() {
                    reached.insert("deleted");
                    ensure!(
                        o.volumes.remove(&v).is_some(),
                        "step {step}: deleted {v}, which did not exist"
                    );
                    ensure!(
                        o.backups.range((v, 0)..=(v, u64::MAX)).next().is_none(),
                        "step {step}: deleted {v}, which held backups"
                    );
                    o.content.remove(&v);
                }
            }
            ModelOp::FanOut(s, first, n) => {
                let keys: Vec<PairKey> = (0..*n)
                    .map(|i| PairKey {
                        source: vid(*s),
                        target: vid(first + i),
                    })
                    .collect();
                let result = img.establish_flash(now, &keys, FlashOptions(0));
                if result
                    .as_ref()
                    .is_err_and(|e| e.reason == Ds8kReason::TOO_MANY_TARGETS)
                {
                    reached.insert("target_limit_refused");
                }
                if result.is_ok() {
                    reached.insert("established");
                    may_grow = true;
                    for k in &keys {
                        o.flash(k.source, k.target, tracks_of(&img, k.source)?);
                    }
                }
            }
        }
        if let Some((v, n)) = over_target_limit(&img, &o) {
            return Err(format!(
                "step {step} ({op:?}): {v} is the source of {n} targets"
            ));
        }
        while let Some(e) = img.poll_event() {
            if let StorageEvent::BackupRolledOff { volume, backup_id } = e {
                reached.insert("rolled_off");
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
    Ok(reached)
}
