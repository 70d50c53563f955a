//! Metro Mirror in the simulated DS8000 (`zgate::sim::ds8k::mirror`, ds8k.md §3.5)
//! against the oracle of `zgate::sim::ds8k::mirror_oracle`: after any sequence of
//! host writes, path and link failures, freezes, suspends, resumes, failovers and
//! failbacks, nothing acknowledged is lost on the production copy, full-duplex
//! secondaries equal their primaries, a frozen group's secondaries hold one instant,
//! and a swap finds what it should. Plus targeted tests of the refusals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use zgate::ds8k::{Ds8kReason, Lss, StorageImageId, VolumeId, VolumeKind};
use zgate::sim::ds8k::mirror_oracle::{MirrorOp, run};
use zgate::sim::ds8k::{
    Complex, ImageConfig, LssRef, MirrorConfig, MirrorEvent, MirrorVolume, PairState, PathKey,
    StorageImage, SuspendReason,
};

fn op() -> impl Strategy<Value = MirrorOp> {
    prop_oneof![
        12 => (0u8..4, 0u8..15).prop_map(|(volume, track)| MirrorOp::Write { volume, track }),
        2 => (0u8..4, 0u8..15).prop_map(|(volume, track)| MirrorOp::WriteOther { volume, track }),
        3 => (0u16..3000).prop_map(|ms| MirrorOp::Tick { ms }),
        1 => (0u8..2).prop_map(|lss| MirrorOp::FailPath { lss }),
        1 => Just(MirrorOp::CutLink),
        2 => Just(MirrorOp::Mend),
        2 => Just(MirrorOp::ManagerActs),
        1 => any::<bool>().prop_map(|run| MirrorOp::Suspend { run }),
        2 => Just(MirrorOp::Resume),
        1 => Just(MirrorOp::Failover),
        2 => Just(MirrorOp::Failback),
    ]
}

proptest! {
    // 1,000 cases in CI; `ZGATE_MODEL_CASES=50000` for a deeper local run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("ZGATE_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn mirrors_keep_every_acknowledged_write_and_freezes_keep_one_instant(
        ops in proptest::collection::vec(op(), 1..80)
    ) {
        if let Err(e) = run(&ops) {
            return Err(TestCaseError::fail(e));
        }
    }
}

fn complex() -> Complex {
    let image = |serial: &str| {
        let mut img = StorageImage::new(
            StorageImageId::parse(&format!("IBM.2107-{serial}")).unwrap(),
            ImageConfig::default(),
        );
        for v in [0x3000u16, 0x3001, 0x3100, 0x1000] {
            let kind = if v == 0x1000 {
                VolumeKind::fb_gib(1)
            } else {
                VolumeKind::ckd(1)
            };
            img.create_volume(VolumeId(v), kind, "V").unwrap();
        }
        img
    };
    Complex::new(
        vec![image("75FA120"), image("75FA121")],
        MirrorConfig {
            copy_tracks_per_sec: 1_000,
            long_busy_timeout_ms: 60_000,
        },
    )
}

fn v(site: u8, id: u16) -> MirrorVolume {
    MirrorVolume {
        site,
        volume: VolumeId(id),
    }
}

fn lss(site: u8, l: u8) -> LssRef {
    LssRef { site, lss: Lss(l) }
}

#[test]
fn pairs_need_a_path_two_images_and_a_matching_secondary() {
    let mut c = complex();
    let refused = |r: Result<usize, zgate::ds8k::Ds8kError>| r.unwrap_err().reason;
    assert_eq!(
        refused(c.establish(&[(v(0, 0x3000), v(1, 0x3000))], false)),
        Ds8kReason::NO_PATH
    );
    assert_eq!(
        c.make_path(lss(0, 0x30), lss(0, 0x31), true)
            .unwrap_err()
            .reason,
        Ds8kReason::SAME_IMAGE
    );
    c.make_path(lss(0, 0x30), lss(1, 0x30), true).unwrap();
    c.make_path(lss(0, 0x30), lss(1, 0x10), true).unwrap();
    assert_eq!(
        refused(c.establish(&[(v(0, 0x3000), v(1, 0x1000))], false)),
        Ds8kReason::SIZE_MISMATCH
    );
    assert_eq!(
        refused(c.establish(
            &[(v(0, 0x3000), v(1, 0x3000)), (v(0, 0x3000), v(1, 0x3001))],
            false
        )),
        Ds8kReason::DUPLICATE_VOLUME
    );
    assert_eq!(c.establish(&[(v(0, 0x3000), v(1, 0x3000))], false), Ok(1));
    assert_eq!(
        refused(c.establish(&[(v(0, 0x3001), v(1, 0x3000))], false)),
        Ds8kReason::PPRC_PAIR_EXISTS
    );
    // Nothing half made: the refused requests left one pair.
    assert_eq!(c.pairs().count(), 1);
    assert_eq!(
        c.remove_path(PathKey {
            from: lss(0, 0x30),
            to: lss(1, 0x30)
        })
        .unwrap_err()
        .reason,
        Ds8kReason::PATH_IN_USE
    );
    // Still copying: a failover would swap to an incomplete copy.
    assert_eq!(refused(c.failover(&[v(1, 0x3000)])), Ds8kReason::PPRC_STATE);
}

#[test]
fn a_write_is_on_both_copies_before_it_completes_and_the_secondary_is_read_only() {
    let mut c = complex();
    let now = 1_700_000_000_000;
    c.tick(now);
    c.make_path(lss(0, 0x30), lss(1, 0x30), true).unwrap();
    c.write_track(now, v(0, 0x3000), 3, 7).unwrap();
    c.establish(&[(v(0, 0x3000), v(1, 0x3000))], false).unwrap();
    assert_eq!(
        c.pair_of(v(0, 0x3000)).unwrap().state,
        PairState::CopyPending
    );
    c.tick(now + 1_000);
    let pair = c.pair_of(v(1, 0x3000)).unwrap();
    assert_eq!(pair.state, PairState::FullDuplex);
    assert_eq!(
        c.poll_event(),
        Some(MirrorEvent::Duplex {
            primary: v(0, 0x3000),
            secondary: v(1, 0x3000)
        })
    );
    assert_eq!(c.read_track(v(1, 0x3000), 3), Ok(7));
    c.write_track(now, v(0, 0x3000), 4, 8).unwrap();
    assert_eq!(c.read_track(v(1, 0x3000), 4), Ok(8));
    assert_eq!(
        c.write_track(now, v(1, 0x3000), 4, 9).unwrap_err().reason,
        Ds8kReason::SECONDARY_READ_ONLY
    );
}

#[test]
fn a_path_failure_holds_the_lss_until_the_freeze_is_run() {
    let mut c = complex();
    let now = 1_700_000_000_000;
    c.tick(now);
    let path = PathKey {
        from: lss(0, 0x30),
        to: lss(1, 0x30),
    };
    c.make_path(path.from, path.to, true).unwrap();
    c.establish(&[(v(0, 0x3000), v(1, 0x3000))], true).unwrap();
    c.fail_path(now, path);
    assert_eq!(
        c.poll_event(),
        Some(MirrorEvent::Suspended {
            primary: v(0, 0x3000),
            secondary: v(1, 0x3000),
            reason: SuspendReason::PathFailed
        })
    );
    assert_eq!(
        c.write_track(now, v(0, 0x3000), 1, 5).unwrap_err().reason,
        Ds8kReason::LONG_BUSY
    );
    // FreezeAll and Run.
    c.freeze(now, &[path]).unwrap();
    assert_eq!(c.unfreeze(&[path.from]), Ok(1));
    c.write_track(now, v(0, 0x3000), 1, 5).unwrap();
    assert_eq!(
        c.read_track(v(1, 0x3000), 1),
        Ok(0),
        "not mirrored after the freeze"
    );
    assert_eq!(c.pair_of(v(0, 0x3000)).unwrap().out_of_sync_tracks, 1);
    // The timeout ends a hold nobody ran.
    c.mend_link(0, 1);
    c.make_path(path.from, path.to, true).unwrap();
    c.resume(&[v(0, 0x3000)]).unwrap();
    c.tick(now + 1_000);
    assert_eq!(c.read_track(v(1, 0x3000), 1), Ok(5), "resynchronised");
    c.freeze(now + 2_000, &[path]).unwrap();
    c.tick(now + 2_000 + 60_000);
    assert!(c.long_busy_lsss().next().is_none());
    assert!(
        std::iter::from_fn(|| c.poll_event())
            .any(|e| matches!(e, MirrorEvent::LongBusyTimedOut { .. }))
    );
}
