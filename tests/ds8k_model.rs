//! Property tests of the simulated DS8000 against a naive oracle that keeps every
//! volume's logical contents and every backup as full copies
//! (`zgate::sim::ds8k::oracle`, also driven by the `ds8k_model` fuzz target), and
//! targeted tests of the DS8000's limits, freeze and roll-off.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use zgate::ds8k::{Ds8kReason, FlashOptions, PairKey, StorageImageId, VolumeId, VolumeKind};
use zgate::sim::ds8k::oracle::{ModelOp, VOLUMES, check_sequence};
use zgate::sim::ds8k::{ImageConfig, StorageEvent, StorageImage};

const TRACKS: u32 = 45;

fn op() -> impl Strategy<Value = ModelOp> {
    let v = 0..VOLUMES.len();
    prop_oneof![
        6 => (v.clone(), 0..TRACKS, 0u64..6).prop_map(|(a, t, x)| ModelOp::Write(a, t, x)),
        2 => (proptest::collection::vec((v.clone(), v.clone()), 1..3), 0u16..32)
            .prop_map(|(p, o)| ModelOp::Establish(p, o)),
        1 => (v.clone(), v.clone(), 0u16..32).prop_map(|(a, b, o)| ModelOp::Resync(a, b, o)),
        1 => (v.clone(), v.clone(), any::<bool>()).prop_map(|(a, b, c)| ModelOp::Withdraw(a, b, c)),
        2 => (0u64..30_000).prop_map(ModelOp::Advance),
        1 => (v.clone(), 0u64..20).prop_map(|(a, c)| ModelOp::Capacity(a, c)),
        2 => proptest::collection::vec(v.clone(), 1..3).prop_map(ModelOp::Backup),
        1 => (0usize..8).prop_map(ModelOp::Expire),
        1 => (0usize..8, v.clone(), v.clone()).prop_map(|(b, s, r)| ModelOp::Recover(b, s, r)),
        1 => (0usize..8, v.clone()).prop_map(|(b, s)| ModelOp::Restore(b, s)),
        1 => Just(ModelOp::Unfreeze),
        1 => (v.clone(), any::<u8>()).prop_map(|(a, k)| ModelOp::Create(a, k)),
        1 => v.clone().prop_map(ModelOp::Delete),
        1 => (v.clone(), v.clone(), 0usize..16).prop_map(|(a, b, n)| ModelOp::FanOut(a, b, n)),
    ]
}

proptest! {
    // 1,000 cases in CI; `ZGATE_MODEL_CASES=50000` for a deeper local run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("ZGATE_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn point_in_time_copies_always_read_their_instant(ops in proptest::collection::vec(op(), 1..60)) {
        if let Err(e) = check_sequence(&ops) {
            return Err(TestCaseError::fail(e));
        }
    }
}

/// Found by the property test: a write past the source's end on a larger target
/// was recorded as a change, and the resync then read that track from the source.
#[test]
fn a_larger_targets_own_tracks_stay_out_of_the_relationship() {
    let ops = [
        ModelOp::Establish(vec![(1, 6)], u16::from(0x14u8)),
        ModelOp::Write(6, 30, 1),
        ModelOp::Resync(1, 6, 0),
    ];
    check_sequence(&ops).unwrap();
}

fn vid(i: usize) -> VolumeId {
    VolumeId(VOLUMES[i])
}

fn new_image() -> StorageImage {
    let mut img = StorageImage::new(
        StorageImageId::parse("75FA120").unwrap(),
        ImageConfig {
            copy_tracks_per_sec: 3,
            freeze_timeout_ms: 20_000,
            max_backups_per_volume: 4,
            memory_budget_mib: 1024,
        },
    );
    for (i, &v) in VOLUMES.iter().enumerate() {
        img.create_volume(
            VolumeId(v),
            VolumeKind::ckd(if i == 6 { 3 } else { 2 }),
            "T",
        )
        .unwrap();
    }
    img
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

/// The Safeguarded Copy bookkeeping has a memory budget: capacity on one more volume
/// is refused when every such volume at its most backups would exceed it, and a
/// service configuration that asks for that is refused at start.
#[test]
fn safeguarded_capacity_stays_within_the_memory_budget() {
    let mut img = StorageImage::new(
        StorageImageId::parse("75FA120").unwrap(),
        ImageConfig {
            max_backups_per_volume: 8192,
            memory_budget_mib: 1,
            ..ImageConfig::default()
        },
    );
    for v in 0..3u16 {
        img.create_volume(VolumeId(v), VolumeKind::ckd(1), "T")
            .unwrap();
    }
    // 8,192 backups x 64 bytes = 0.5 MiB per volume: two fit in 1 MiB, a third not.
    img.set_safeguarded_capacity(VolumeId(0), 5).unwrap();
    img.set_safeguarded_capacity(VolumeId(1), 5).unwrap();
    img.set_safeguarded_capacity(VolumeId(1), 7).unwrap();
    assert_eq!(
        img.set_safeguarded_capacity(VolumeId(2), 5)
            .unwrap_err()
            .reason,
        Ds8kReason::MEMORY_BUDGET
    );
    img.set_safeguarded_capacity(VolumeId(1), 0).unwrap();
    img.set_safeguarded_capacity(VolumeId(2), 5).unwrap();

    let text = r#"
image = "IBM.2107-75FA120"
[storage]
max_backups_per_volume = 500
memory_budget_mib = 1
[[volumes]]
ids = "3000-30FF"
ckd_cylinders = 1
safeguarded_percent = 10
"#;
    let cfg: zgate::sim::hmc::Ds8kSystemConfig = toml::from_str(text).unwrap();
    let err = zgate::sim::hmc::Ds8kSystem::with_keys(&cfg, |_| None)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("budget"), "{err}");
}
