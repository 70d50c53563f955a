//! `zgate bench metro-mirror`: the Metro Mirror model at scale (ds8k.md §3.5).
//!
//! Two images of 10,000 3390-54 volumes each (40 LSSs), one consistency-group path
//! per LSS pair, 10,000 pairs. Times: establishing them, a host write mirrored to
//! the secondary against the same write to an image without Metro Mirror (the
//! ratio), a freeze of all 10,000 pairs in one consistency group with its run, a
//! failover and a failback of all of them, and one tick of the first pass with
//! 10,000 pairs copying. Figures only; nothing is asserted.

use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use zgate::ds8k::{Lss, StorageImageId, VolumeId, VolumeKind};
use zgate::sim::ds8k::{
    Complex, ImageConfig, LssRef, MirrorConfig, MirrorVolume, PathKey, StorageImage,
};

#[derive(Debug, Args)]
pub struct MirrorBenchArgs {
    /// Pairs (at most 65,280).
    #[arg(long, default_value_t = 10_000)]
    pairs: u32,
    /// Host writes timed, mirrored and not.
    #[arg(long, default_value_t = 1_000_000)]
    writes: u32,
}

pub fn metro_mirror(args: MirrorBenchArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zgate bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn image(serial: &str, n: u32) -> Result<StorageImage, String> {
    let id = StorageImageId::parse(&format!("IBM.2107-{serial}")).map_err(|e| e.to_string())?;
    let mut img = StorageImage::new(id, ImageConfig::default());
    let kind = VolumeKind::ckd(zgate::ds8k::ids::CYLINDERS_3390_54);
    for i in 0..n {
        img.create_volume(VolumeId(i as u16), kind, "MM")
            .map_err(|e| e.to_string())?;
    }
    Ok(img)
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn run(args: MirrorBenchArgs) -> Result<(), String> {
    let n = args.pairs.clamp(1, 65_280);
    let lsss = n.div_ceil(256);
    let e = |e: zgate::ds8k::Ds8kError| e.to_string();
    let mut complex = Complex::new(
        vec![image("75FA120", n)?, image("75FA121", n)?],
        MirrorConfig::default(),
    );
    let mut plain = image("75FA122", n)?;
    let now = 1_700_000_000_000u64;
    complex.tick(now);
    let paths: Vec<PathKey> = (0..lsss)
        .map(|l| PathKey {
            from: LssRef {
                site: 0,
                lss: Lss(l as u8),
            },
            to: LssRef {
                site: 1,
                lss: Lss(l as u8),
            },
        })
        .collect();
    for p in &paths {
        complex.make_path(p.from, p.to, true).map_err(e)?;
    }
    let vol = |site: u8, i: u32| MirrorVolume {
        site,
        volume: VolumeId(i as u16),
    };
    let pairs: Vec<(MirrorVolume, MirrorVolume)> = (0..n).map(|i| (vol(0, i), vol(1, i))).collect();
    let t = Instant::now();
    complex.establish(&pairs, true).map_err(e)?;
    println!(
        "metro-mirror: {n} pairs in {lsss} LSSs established (no copy) in {:.1} ms",
        ms(t)
    );

    // Mirrored against unmirrored writes: the same volumes, tracks and tags.
    let w = args.writes.max(1);
    let target = |k: u32| (k % n, (k / n) % 982_800);
    let t = Instant::now();
    for k in 0..w {
        let (v, track) = target(k);
        plain
            .write_track(now, VolumeId(v as u16), track, u64::from(k) + 1)
            .map_err(e)?;
    }
    let plain_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for k in 0..w {
        let (v, track) = target(k);
        complex
            .write_track(now, vol(0, v), track, u64::from(k) + 1)
            .map_err(e)?;
    }
    let mirrored_s = t.elapsed().as_secs_f64();
    println!(
        "metro-mirror: host writes {:.0}/s unmirrored, {:.0}/s mirrored (full duplex): the mirror costs {:.2}x ({:.2} µs vs {:.2} µs a write)",
        f64::from(w) / plain_s,
        f64::from(w) / mirrored_s,
        mirrored_s / plain_s,
        plain_s * 1e6 / f64::from(w),
        mirrored_s * 1e6 / f64::from(w),
    );

    let t = Instant::now();
    let suspended = complex.freeze(now, &paths).map_err(e)?;
    let freeze_ms = ms(t);
    let lsss_held: Vec<LssRef> = complex.long_busy_lsss().collect();
    let t = Instant::now();
    complex.unfreeze(&lsss_held).map_err(e)?;
    println!(
        "metro-mirror: freeze of {suspended} pairs in one consistency group ({} paths) {freeze_ms:.1} ms; run (unfreeze {} LSSs) {:.2} ms",
        paths.len(),
        lsss_held.len(),
        ms(t)
    );
    let events = std::iter::from_fn(|| complex.poll_event()).count();
    let secondaries: Vec<MirrorVolume> = (0..n).map(|i| vol(1, i)).collect();
    let t = Instant::now();
    complex.failover(&secondaries).map_err(e)?;
    println!(
        "metro-mirror: failover of {n} pairs {:.1} ms ({events} events reported)",
        ms(t)
    );
    for p in &paths {
        complex.make_path(p.to, p.from, true).map_err(e)?;
    }
    let back: Vec<(MirrorVolume, MirrorVolume)> = (0..n).map(|i| (vol(1, i), vol(0, i))).collect();
    let t = Instant::now();
    complex.failback(&back).map_err(e)?;
    println!(
        "metro-mirror: failback of {n} pairs (H2 to H1) {:.1} ms",
        ms(t)
    );
    let t = Instant::now();
    complex.tick(now + 1_000);
    println!(
        "metro-mirror: one 1 s tick with {n} pairs resynchronising {:.1} ms",
        ms(t)
    );
    Ok(())
}
