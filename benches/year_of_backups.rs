//! A year of Safeguarded Copy backups every 30 minutes (17,520) on one whole-box
//! session with retention on, and the store they leave (issue: whole-box sessions;
//! store.md §6.2–§6.3). The policy engine runs against the simulated DS8000 in one
//! process with time advanced by hand (the test harness), and every record it writes
//! goes to a real redb store with the gateway's snapshot and compaction rule
//! (a snapshot of the parts changed every 50,000 records, the journal keeping 50,000
//! behind it).
//!
//! `cargo bench --bench year_of_backups [-- COPY_SETS [BACKUPS]]` (defaults 32,640 and
//! 17,520). Prints the store's size as the year goes by. Figures only.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use zgate::ds8k::ids::{VolumeId, VolumeKind};
use zgate::harness::Harness;
use zgate::policy::SessionType;
use zgate::policy::engine::{Command, EngineConfig, Outcome};
use zgate::policy::inventory::VolumeRef;
use zgate::policy::session::{CopySet, PropertiesPatch, SessionCommand};
use zgate::sim::ds8k::ImageConfig;
use zgate::store::{SnapshotDelta, Store};

const SERIAL: &str = "75FA120";
const MIN: u64 = 60_000;
const SNAPSHOT_EVERY: u64 = 50_000;

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| a.parse::<u64>().ok());
    let copy_sets = args.next().unwrap_or(32_640).clamp(1, 32_640) as u16;
    let backups = args.next().unwrap_or(17_520);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zgate.redb");
    let mut store = Store::open(&path).unwrap();
    store.begin_epoch().unwrap();

    // The gateway's settings, periodic reconciliation every 15 minutes included.
    let mut h = Harness::with_admin(EngineConfig::default(), "admin");
    let volumes: Vec<_> = (0..copy_sets)
        .flat_map(|i| {
            [
                (VolumeId(i), VolumeKind::ckd(1), 15),
                (VolumeId(0x7F80 + i), VolumeKind::ckd(1), 0),
            ]
        })
        .collect();
    let image = ImageConfig {
        max_backups_per_volume: 500,
        ..ImageConfig::default()
    };
    h.add_box("admin", SERIAL, image, &volumes).unwrap();
    let vol = |v: u16| VolumeRef::parse(&format!("DS8000:2107.{SERIAL}:VOL:{v:04X}")).unwrap();
    h.command(
        "admin",
        Command::CreateSession {
            name: "WHOLE".into(),
            kind: SessionType::Sgc,
            description: "a year of backups".into(),
        },
    );
    let reply = h.command(
        "admin",
        Command::AddCopySets {
            session: "WHOLE".into(),
            copy_sets: (0..copy_sets)
                .map(|i| CopySet {
                    h1: vol(i),
                    partner: Some(vol(0x7F80 + i)),
                })
                .collect(),
        },
    );
    assert!(matches!(reply.outcome, Outcome::Started(_)), "{reply:?}");
    // Retention a week: about 336 backups kept, the older expired as time passes.
    h.command(
        "admin",
        Command::PatchProperties {
            session: "WHOLE".into(),
            patch: PropertiesPatch {
                retention_ms: Some(7 * 24 * 60 * MIN),
                ..Default::default()
            },
        },
    );
    let mut written = 0usize;
    let mut last_snapshot = 0u64;
    // As the gateway writes them: the parts the records since the last snapshot
    // touched, and the counters.
    let mut dirty = std::collections::BTreeSet::new();
    let mut flush = |h: &mut Harness, store: &mut Store| {
        let records = std::mem::take(&mut h.journal);
        if records.is_empty() {
            return;
        }
        let last = store.append(&records).unwrap();
        written += records.len();
        zgate::store::parts::note_touched(&records, &mut dirty);
        if last - last_snapshot >= SNAPSHOT_EVERY {
            let delta = SnapshotDelta::of(h.engine.state(), &std::mem::take(&mut dirty));
            store
                .snapshot_delta(last, &delta.seal(), SNAPSHOT_EVERY)
                .unwrap();
            last_snapshot = last;
        }
    };
    flush(&mut h, &mut store);
    println!(
        "{copy_sets} copy sets, a Backup every 30 minutes with a week's retention; store {}",
        path.display()
    );
    let started = Instant::now();
    let report = |n: u64, store: &Store, h: &Harness| {
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        println!(
            "after {n:6} backups ({:5.1} days): store {:7.1} MB, journal records {}..{}, backups kept {}, {:.0} s",
            n as f64 / 48.0,
            size as f64 / 1e6,
            store.first_seq().unwrap(),
            store.last_seq(),
            h.engine.state().sessions["WHOLE"].backups().len(),
            started.elapsed().as_secs_f64()
        );
    };
    for n in 1..=backups {
        let reply = h.command(
            "admin",
            Command::Run {
                session: "WHOLE".into(),
                command: SessionCommand::Backup,
            },
        );
        assert!(matches!(reply.outcome, Outcome::Started(_)), "{reply:?}");
        h.advance(30 * MIN);
        flush(&mut h, &mut store);
        if n % (backups / 10).max(1) == 0 || n == backups {
            report(n, &store, &h);
        }
    }
    println!("records written in all: {written}");
}
