//! Property tests of the simulated DS8000 against a naive oracle that keeps every
//! volume's logical contents and every backup as full copies.
//!
//! Random sequences of host writes, flashes (every option), resyncs, withdraws,
//! background copy, backups, expiries, recoveries and restores; after every step:
//! - every track of every volume reads what the oracle says (point-in-time);
//! - every backup reads exactly its volume at the backup's instant;
//! - out-of-sync counts never grow except by an establish or resync;
//! - safeguarded capacity balances: used = sum of what the backups hold <= capacity.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use zgate::ds8k::{
    Ds8kReason, FlashOptions, ImageConfig, PairKey, StorageEvent, StorageImage, StorageImageId,
    VolumeId, VolumeKind,
};

/// Volume ids: six 2-cylinder CKD volumes (30 tracks) and one 3-cylinder one.
const VOLS: [u16; 7] = [0x0000, 0x0001, 0x0002, 0x0003, 0x0004, 0x0100, 0x0101];
const TRACKS: u32 = 45;

fn kind(i: usize) -> VolumeKind {
    VolumeKind::ckd(if i == 6 { 3 } else { 2 })
}

#[derive(Debug, Clone)]
enum Op {
    Write(usize, u32, u64),
    Establish(Vec<(usize, usize)>, u16),
    Resync(usize, usize, u16),
    Withdraw(usize, usize, bool),
    Advance(u64),
    Capacity(usize, u64),
    Backup(Vec<usize>),
    Expire(usize),
    Recover(usize, usize, usize),
    Restore(usize, usize),
    Unfreeze,
}

fn op() -> impl Strategy<Value = Op> {
    let v = 0..VOLS.len();
    prop_oneof![
        6 => (v.clone(), 0..TRACKS, 0u64..6).prop_map(|(a, t, x)| Op::Write(a, t, x)),
        2 => (proptest::collection::vec((v.clone(), v.clone()), 1..3), 0u16..32)
            .prop_map(|(p, o)| Op::Establish(p, o)),
        1 => (v.clone(), v.clone(), 0u16..32).prop_map(|(a, b, o)| Op::Resync(a, b, o)),
        1 => (v.clone(), v.clone(), any::<bool>()).prop_map(|(a, b, c)| Op::Withdraw(a, b, c)),
        2 => (0u64..30_000).prop_map(Op::Advance),
        1 => (v.clone(), 0u64..20).prop_map(|(a, c)| Op::Capacity(a, c)),
        2 => proptest::collection::vec(v.clone(), 1..3).prop_map(Op::Backup),
        1 => (0usize..8).prop_map(Op::Expire),
        1 => (0usize..8, v.clone(), v.clone()).prop_map(|(b, s, r)| Op::Recover(b, s, r)),
        1 => (0usize..8, v.clone()).prop_map(|(b, s)| Op::Restore(b, s)),
        1 => Just(Op::Unfreeze),
    ]
}

/// The oracle: what every volume and backup must read.
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

fn vid(i: usize) -> VolumeId {
    VolumeId(VOLS[i])
}

fn new_image() -> StorageImage {
    let mut img = StorageImage::new(
        StorageImageId::parse("75FA120").unwrap(),
        ImageConfig {
            copy_tracks_per_sec: 3,
            freeze_timeout_ms: 20_000,
            max_backups_per_volume: 4,
        },
    );
    for (i, &v) in VOLS.iter().enumerate() {
        img.create_volume(VolumeId(v), kind(i), "T").unwrap();
    }
    img
}

fn oos_counts(img: &StorageImage) -> BTreeMap<PairKey, u64> {
    let mut out = BTreeMap::new();
    for v in VOLS {
        for r in img.list_flash(VolumeId(v)).unwrap() {
            out.insert(r.key, r.out_of_sync_tracks);
        }
    }
    out
}

fn check(img: &StorageImage, o: &Oracle) -> Result<(), TestCaseError> {
    for (i, &v) in VOLS.iter().enumerate() {
        let v = VolumeId(v);
        for t in 0..kind(i).tracks() {
            prop_assert_eq!(
                img.read_track(v, t).unwrap(),
                o.read(v, t),
                "volume {} track {}",
                v,
                t
            );
        }
        // Backups held by the image are exactly those the oracle still expects.
        let held: Vec<u64> = img.list_backups(v).unwrap().iter().map(|b| b.id).collect();
        let expected: Vec<u64> = o
            .backups
            .range((v, 0)..=(v, u64::MAX))
            .map(|((_, id), _)| *id)
            .collect();
        prop_assert_eq!(&held, &expected, "backups of {}", v);
        for id in held {
            let snap = &o.backups[&(v, id)];
            for t in 0..kind(i).tracks() {
                let want = snap.get(&t).copied().unwrap_or(0);
                prop_assert_eq!(
                    img.read_backup(v, id, t).unwrap(),
                    want,
                    "backup {} of {} track {}",
                    id,
                    v,
                    t
                );
            }
        }
        let info = img.query_volume(v).unwrap();
        let saved: u64 = img
            .list_backups(v)
            .unwrap()
            .iter()
            .map(|b| b.saved_tracks)
            .sum();
        prop_assert_eq!(info.sgc_used, saved);
        prop_assert!(info.sgc_used <= info.sgc_capacity);
    }
    Ok(())
}

fn apply_events(img: &mut StorageImage, o: &mut Oracle) {
    while let Some(e) = img.poll_event() {
        if let StorageEvent::BackupRolledOff { volume, backup_id } = e {
            assert!(
                o.backups.remove(&(volume, backup_id)).is_some(),
                "rolled off unknown backup"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn point_in_time_copies_always_read_their_instant(ops in proptest::collection::vec(op(), 1..60)) {
        let mut img = new_image();
        let mut o = Oracle::default();
        let mut now: u64 = 1_700_000_000_000;
        img.tick(now);
        for op in ops {
            let before = oos_counts(&img);
            let mut may_grow = false;
            match op {
                Op::Write(v, t, tag) => {
                    let v = vid(v);
                    let t = t % img.query_volume(v).unwrap().kind.tracks();
                    let inhibited = img.query_volume(v).unwrap().flash_source.is_some_and(|s| {
                        img.flash_info(PairKey { source: s, target: v }).unwrap().options.inhibit_target_writes()
                    });
                    match img.write_track(now, v, t, tag) {
                        Ok(()) => {
                            prop_assert!(!inhibited, "write to an inhibited target accepted");
                            o.write(v, t, tag);
                        }
                        Err(e) => prop_assert!(
                            e.reason == Ds8kReason::TARGET_WRITE_INHIBITED || e.reason == Ds8kReason::LONG_BUSY,
                            "{e}"
                        ),
                    }
                }
                Op::Establish(pairs, opts) => {
                    let keys: Vec<PairKey> = pairs.iter().map(|&(s, t)| PairKey { source: vid(s), target: vid(t) }).collect();
                    if img.establish_flash(now, &keys, FlashOptions(opts)).is_ok() {
                        may_grow = true;
                        for k in &keys {
                            let tracks = img.query_volume(k.source).unwrap().kind.tracks();
                            o.flash(k.source, k.target, tracks);
                        }
                    }
                }
                Op::Resync(s, t, opts) => {
                    let k = PairKey { source: vid(s), target: vid(t) };
                    if img.resync_flash(now, &[k], FlashOptions(opts)).is_ok() {
                        may_grow = true;
                        let tracks = img.query_volume(k.source).unwrap().kind.tracks();
                        o.flash(k.source, k.target, tracks);
                    }
                }
                Op::Withdraw(s, t, cp) => {
                    let k = PairKey { source: vid(s), target: vid(t) };
                    let pending = img.flash_info(k).is_some_and(|i| i.out_of_sync_tracks > 0);
                    if img.withdraw_flash(&[k], cp).is_ok() && pending && !cp {
                        // The DS8000 leaves the uncopied tracks "unpredictable": from
                        // now on whatever the target reads is its contents.
                        let tracks = img.query_volume(k.target).unwrap().kind.tracks();
                        for t in 0..tracks {
                            let x = img.read_track(k.target, t).unwrap();
                            o.write(k.target, t, x);
                        }
                    }
                }
                Op::Advance(ms) => {
                    now += ms;
                    img.tick(now);
                }
                Op::Capacity(v, c) => {
                    let _ = img.set_safeguarded_capacity(vid(v), c);
                }
                Op::Backup(vs) => {
                    let vs: Vec<VolumeId> = vs.into_iter().map(vid).collect();
                    if let Ok(b) = img.take_backup(now, &vs) {
                        for &v in &vs {
                            o.backups.insert((v, b.id), o.content.get(&v).cloned().unwrap_or_default());
                        }
                        o.ids.push(b.id);
                    }
                }
                Op::Expire(i) => {
                    if let Some(&id) = o.ids.get(i) && img.expire_backup(id).is_ok() {
                        let holders: Vec<VolumeId> = o.backups.keys().filter(|(_, b)| *b == id).map(|(v, _)| *v).collect();
                        for v in holders {
                            o.backups.retain(|(w, b), _| !(*w == v && *b <= id));
                        }
                    }
                }
                Op::Recover(i, s, r) => {
                    if let Some(&id) = o.ids.get(i) && img.recover_backup(id, &[(vid(s), vid(r))]).is_ok() {
                        let snap = o.backups[&(vid(s), id)].clone();
                        o.content.insert(vid(r), snap);
                    }
                }
                Op::Restore(i, v) => {
                    if let Some(&id) = o.ids.get(i) && img.restore_backup(now, id, &[vid(v)]).is_ok() {
                        let snap = o.backups[&(vid(v), id)].clone();
                        o.content.insert(vid(v), snap);
                    }
                }
                Op::Unfreeze => {
                    let frozen = img.frozen_lsss();
                    img.unfreeze(&frozen);
                }
            }
            apply_events(&mut img, &mut o);
            if !may_grow {
                let after = oos_counts(&img);
                for (k, n) in after {
                    if let Some(&b) = before.get(&k) {
                        prop_assert!(n <= b, "out-of-sync of {:?} grew from {} to {}", k, b, n);
                    }
                }
            }
            check(&img, &o)?;
        }
    }
}

#[test]
fn background_copy_completes_and_a_copy_relationship_ends() {
    let mut img = new_image();
    let now = 1_000_000;
    img.tick(now);
    let k = PairKey {
        source: vid(0),
        target: vid(1),
    };
    img.write_track(now, k.source, 3, 77).unwrap();
    let r = img.establish_flash(now, &[k], FlashOptions(0)).unwrap();
    assert_eq!(r.out_of_sync_tracks, 30);
    img.tick(now + 5_000); // 3 tracks/s -> 15 tracks
    assert_eq!(img.flash_info(k).unwrap().out_of_sync_tracks, 15);
    img.tick(now + 10_000);
    assert!(img.flash_info(k).is_none(), "non-persistent copy ends");
    assert_eq!(
        img.poll_event(),
        Some(StorageEvent::CopyComplete {
            source: k.source,
            target: k.target,
            ended: true
        })
    );
    assert_eq!(img.read_track(k.target, 3).unwrap(), 77);
}

fn reason<T: std::fmt::Debug>(r: Result<T, zgate::ds8k::Ds8kError>) -> Ds8kReason {
    r.unwrap_err().reason
}

#[test]
fn limits_and_refusals_have_reasons() {
    let mut img = new_image();
    let now = 1_000_000;
    let pair = |s: usize, t: usize| PairKey {
        source: vid(s),
        target: vid(t),
    };
    assert_eq!(
        reason(img.establish_flash(now, &[pair(6, 0)], FlashOptions(0))),
        Ds8kReason::SIZE_MISMATCH
    );
    assert_eq!(
        reason(img.establish_flash(now, &[pair(0, 0)], FlashOptions(0))),
        Ds8kReason::SAME_VOLUME
    );
    img.establish_flash(now, &[pair(0, 1)], FlashOptions(FlashOptions::RECORD))
        .unwrap();
    assert_eq!(
        reason(img.establish_flash(now, &[pair(0, 2)], FlashOptions(FlashOptions::RECORD))),
        Ds8kReason::INCREMENTAL_EXISTS
    );
    assert_eq!(
        reason(img.establish_flash(now, &[pair(2, 1)], FlashOptions(0))),
        Ds8kReason::ALREADY_A_TARGET
    );
    assert_eq!(
        reason(img.establish_flash(now, &[pair(1, 2)], FlashOptions(0))),
        Ds8kReason::CASCADE_NOT_SUPPORTED
    );
    assert_eq!(
        reason(img.resync_flash(now, &[pair(0, 2)], FlashOptions(0))),
        Ds8kReason::NO_RELATIONSHIP
    );
    assert_eq!(reason(img.delete_volume(vid(0))), Ds8kReason::VOLUME_IN_USE);
    assert_eq!(
        reason(img.write_track(now, VolumeId(0x0500), 0, 1)),
        Ds8kReason::UNKNOWN_VOLUME
    );
    assert_eq!(
        reason(img.write_track(now, vid(0), 30, 1)),
        Ds8kReason::TRACK_OUT_OF_RANGE
    );
    assert_eq!(
        reason(img.create_volume(VolumeId(0x0010), VolumeKind::fb_gib(1), "FB")),
        Ds8kReason::ADDRESS_GROUP_TYPE
    );
    assert_eq!(
        reason(img.take_backup(now, &[vid(2)])),
        Ds8kReason::NO_SAFEGUARDED_CAPACITY
    );
    // Twelve targets per source at most.
    let mut img = StorageImage::new(
        StorageImageId::parse("75FA120").unwrap(),
        ImageConfig::default(),
    );
    for v in 0..14u16 {
        img.create_volume(VolumeId(v), VolumeKind::ckd(1), "V")
            .unwrap();
    }
    let twelve: Vec<PairKey> = (1..13)
        .map(|t| PairKey {
            source: VolumeId(0),
            target: VolumeId(t),
        })
        .collect();
    img.establish_flash(now, &twelve, FlashOptions(0)).unwrap();
    let thirteenth = PairKey {
        source: VolumeId(0),
        target: VolumeId(13),
    };
    assert_eq!(
        reason(img.establish_flash(now, &[thirteenth], FlashOptions(0))),
        Ds8kReason::TOO_MANY_TARGETS
    );
}

#[test]
fn freeze_holds_source_writes_until_thaw_or_timeout() {
    let mut img = new_image();
    let now = 1_000_000;
    let k = PairKey {
        source: vid(0),
        target: vid(5),
    };
    img.establish_flash(
        now,
        &[k],
        FlashOptions(FlashOptions::FREEZE | FlashOptions::NO_COPY),
    )
    .unwrap();
    assert_eq!(
        img.write_track(now + 1, k.source, 0, 5).unwrap_err().reason,
        Ds8kReason::LONG_BUSY
    );
    // Thaw: writes flow.
    assert_eq!(img.unfreeze(&[k.source.lss()]), 1);
    img.write_track(now + 2, k.source, 0, 5).unwrap();
    // Freeze again, then let it time out (20 s here).
    let k2 = PairKey {
        source: vid(1),
        target: vid(6),
    };
    img.establish_flash(now + 3, &[k2], FlashOptions(FlashOptions::FREEZE))
        .unwrap();
    assert!(img.write_track(now + 4, k2.source, 0, 5).is_err());
    img.write_track(now + 3 + 20_000, k2.source, 0, 5).unwrap();
}

#[test]
fn capacity_pressure_rolls_off_the_oldest_backup() {
    let mut img = new_image();
    let v = vid(0);
    img.set_safeguarded_capacity(v, 2).unwrap();
    let b1 = img.take_backup(1_000_000, &[v]).unwrap().id;
    img.write_track(1_000_001, v, 0, 1).unwrap();
    img.write_track(1_000_002, v, 1, 1).unwrap();
    let b2 = img.take_backup(1_000_003, &[v]).unwrap().id;
    img.write_track(1_000_004, v, 2, 1).unwrap(); // capacity full: b1 rolls off
    assert_eq!(
        img.poll_event(),
        Some(StorageEvent::BackupRolledOff {
            volume: v,
            backup_id: b1
        })
    );
    let held: Vec<u64> = img.list_backups(v).unwrap().iter().map(|b| b.id).collect();
    assert_eq!(held, vec![b2]);
    assert_eq!(img.read_backup(v, b2, 2).unwrap(), 0);
    assert_eq!(img.read_backup(v, b2, 0).unwrap(), 1);
}
