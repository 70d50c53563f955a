//! `zgate bench ds8k-box`: a full-size simulated DS8000 in one process.
//!
//! Fills every LSS (00-FE, 256 volumes each: 65,280 volumes) with 3390-54 volumes
//! (982,800 tracks each), then times a consistency-group flash of 10,000 pairs, a
//! Safeguarded Copy backup of 10,000 volumes, and background-copy ticks with 1,000
//! and 10,000 copying relationships (and with 1,000 on volumes 18 times smaller) to
//! show that a tick costs in proportion to relationships, not to tracks. Memory is
//! this process's resident set growth. Figures only; nothing is asserted.

use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use zgate::ds8k::{FlashOptions, PairKey, StorageImageId, VolumeId, VolumeKind};
use zgate::sim::ds8k::{ImageConfig, StorageImage};

#[derive(Debug, Args)]
pub struct Ds8kBoxArgs {
    /// Pairs in the consistency-group flash, and volumes in the backup.
    #[arg(long, default_value_t = 10_000)]
    pairs: u16,
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn image(kind: VolumeKind, lsss: u16) -> Result<StorageImage, String> {
    let id = StorageImageId::parse("IBM.2107-75FA120").map_err(|e| e.to_string())?;
    let mut img = StorageImage::new(id, ImageConfig::default());
    for lss in 0..lsss {
        for v in 0..256u16 {
            img.create_volume(VolumeId(lss << 8 | v), kind, "BENCH")
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(img)
}

fn pairs(n: u16, from: u16) -> Vec<PairKey> {
    // Volume ids are dense: id i for i in 0..65,280.
    (0..n)
        .map(|i| PairKey {
            source: VolumeId(i),
            target: VolumeId(from + i),
        })
        .collect()
}

fn tick_cost(img: &mut StorageImage, t0: u64) -> f64 {
    // Ten one-second ticks; the mean cost of one.
    let start = Instant::now();
    for s in 1..=10 {
        img.tick(t0 + s * 1000);
    }
    start.elapsed().as_secs_f64() / 10.0
}

pub fn ds8k_box(args: Ds8kBoxArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zgate bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Ds8kBoxArgs) -> Result<(), String> {
    let n = args.pairs.min(20_000);
    let mod54 = VolumeKind::ckd(zgate::ds8k::ids::CYLINDERS_3390_54);
    let before = rss_kib();
    let start = Instant::now();
    let mut img = image(mod54, 255)?;
    let built = start.elapsed();
    let after = rss_kib();
    let grown = after.saturating_sub(before);
    println!(
        "box: {} volumes of 3390-54 ({} tracks each) created in {:.2} s; RSS +{:.1} MiB = {:.0} bytes per volume",
        img.volume_count(),
        mod54.tracks(),
        built.as_secs_f64(),
        grown as f64 / 1024.0,
        grown as f64 * 1024.0 / img.volume_count() as f64
    );

    let t0: u64 = 1_700_000_000_000;
    img.tick(t0);
    // Host writes on the sources, so copy has data to move.
    for i in 0..n {
        for t in [0u32, 1_000, 500_000] {
            img.write_track(t0, VolumeId(i), t, u64::from(i) + 1)
                .map_err(|e| e.to_string())?;
        }
    }
    let cg = pairs(n, 20_000);
    let start = Instant::now();
    let r = img
        .establish_flash(t0, &cg, FlashOptions(FlashOptions::FREEZE))
        .map_err(|e| e.to_string())?;
    let flash = start.elapsed();
    let frozen = img.frozen_lsss();
    img.unfreeze(&frozen);
    println!(
        "consistency-group flash: {} pairs (freeze, sequence {}, {} out-of-sync tracks) in {:.1} ms; thawed {} LSSs",
        r.pairs,
        r.sequence,
        r.out_of_sync_tracks,
        flash.as_secs_f64() * 1e3,
        frozen.len()
    );

    let sgc: Vec<VolumeId> = (0..n).map(|i| VolumeId(40_000 + i)).collect();
    for &v in &sgc {
        img.set_safeguarded_capacity(v, u64::from(mod54.tracks()) / 10)
            .map_err(|e| e.to_string())?;
    }
    let start = Instant::now();
    let b = img.take_backup(t0 + 1, &sgc).map_err(|e| e.to_string())?;
    let backup = start.elapsed();
    println!(
        "Safeguarded Copy backup: {} volumes, id {}, in {:.1} ms",
        b.volumes,
        b.id,
        backup.as_secs_f64() * 1e3
    );

    let tick_10k = tick_cost(&mut img, t0);
    println!(
        "background-copy tick, {} copying relationships on 3390-54: {:.2} ms ({:.2} us per relationship)",
        n,
        tick_10k * 1e3,
        tick_10k * 1e6 / f64::from(n)
    );
    println!(
        "RSS after flash, backup and ticks: {:.1} MiB",
        rss_kib() as f64 / 1024.0
    );
    drop(img);

    for (label, kind) in [("3390-54", mod54), ("3390-3", VolumeKind::ckd(3_339))] {
        let mut small = image(kind, 16)?;
        small.tick(t0);
        small
            .establish_flash(t0, &pairs(1_000, 2_048), FlashOptions(0))
            .map_err(|e| e.to_string())?;
        let cost = tick_cost(&mut small, t0);
        println!(
            "background-copy tick, 1000 copying relationships on {label} ({} tracks): {:.3} ms ({:.2} us per relationship)",
            kind.tracks(),
            cost * 1e3,
            cost * 1e6 / 1000.0
        );
    }
    Ok(())
}
