//! `zgate bench policy-store`: what durability costs, and how fast the engine decides.
//!
//! In one run, on the same disk (`--dir`, default the system temp dir):
//! 1. a raw fsync: 64 bytes appended to a file, then `fdatasync`; and the same bytes
//!    overwritten in place (no size change to flush, the cheaper of the two);
//! 2. a durable acknowledged change: one engine record appended to the store in its own
//!    transaction (what a lone command costs);
//! 3. group commit: 50 writer threads, each committing one record at a time through the
//!    committer, for `--seconds`;
//! 4. engine decisions on one core, no store: a refused command (principal, gate,
//!    validity check, refusal message, audit entry) and an authorisation decision alone.
//!
//! Figures only; nothing is asserted.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use zgate::policy::SessionType;
use zgate::policy::access::SessionAction;
use zgate::policy::dual_control::Change;
use zgate::policy::engine::{Command, Engine, EngineConfig, Record};
use zgate::policy::session::SessionCommand;
use zgate::store::{Committer, Store};

/// A well-formed argon2id hash (nobody logs on in the benchmark).
const BENCH_HASH: &str = "$argon2id$v=19$m=256,t=1,p=1$dPSvPsnwvszeWFQcHoNUtQ$VkHyf3shwuBN9RYKSA5exsDDhoO9YAOy2Lqxr89Cn1o";

#[derive(Debug, Args)]
pub struct PolicyStoreArgs {
    /// Directory for the files (on the disk to measure).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Samples of the single-writer measurements.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// How long the group-commit run lasts, seconds.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Writers in the group-commit run.
    #[arg(long, default_value_t = 50)]
    writers: usize,
}

pub fn policy_store(args: PolicyStoreArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zgate bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Median and 99th percentile, microseconds.
fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    (at(0.5), at(0.99))
}

/// A typical record: a session as a command leaves it.
fn sample_records() -> Vec<Record> {
    let mut engine = Engine::new(EngineConfig::default());
    engine.bootstrap_admin("admin", BENCH_HASH.into(), 0);
    engine.handle_command(
        "admin",
        Command::CreateSession {
            name: "SGC1".into(),
            kind: SessionType::Sgc,
            description: "bench".into(),
        },
        1,
    );
    std::iter::from_fn(|| engine.poll_record()).collect()
}

fn run(args: PolicyStoreArgs) -> Result<(), String> {
    let dir = match &args.dir {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .map_err(|e| format!("temp dir: {e}"))?;
    let samples = args.samples.max(10);
    let records = sample_records();
    let record = records
        .iter()
        .find(|r| matches!(r, Record::Session(_)))
        .cloned()
        .ok_or("no session record")?;
    println!(
        "record: {} bytes sealed; disk: {}",
        zgate::store::seal(&record).len(),
        dir.path().display()
    );

    // 1. Raw fsync of a small write.
    let mut file = std::fs::File::create(dir.path().join("raw")).map_err(|e| e.to_string())?;
    let mut raw = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        file.write_all(&[0x5A; 64]).map_err(|e| e.to_string())?;
        file.sync_data().map_err(|e| e.to_string())?;
        raw.push(t.elapsed());
    }
    let (append_p50, append_p99) = percentiles(raw);
    println!(
        "raw fsync (64 B appended):          p50 {append_p50:8.1} us   p99 {append_p99:8.1} us"
    );
    // The same in place: no size change for fdatasync to flush, the cheaper baseline.
    let mut raw = Vec::with_capacity(samples);
    for _ in 0..samples {
        use std::os::unix::fs::FileExt;
        let t = Instant::now();
        file.write_all_at(&[0xA5; 64], 0)
            .map_err(|e| e.to_string())?;
        file.sync_data().map_err(|e| e.to_string())?;
        raw.push(t.elapsed());
    }
    let (inplace_p50, inplace_p99) = percentiles(raw);
    println!(
        "raw fsync (64 B overwritten):       p50 {inplace_p50:8.1} us   p99 {inplace_p99:8.1} us"
    );

    // 2. One durable change per transaction.
    let mut store = Store::open(&dir.path().join("single.redb")).map_err(|e| e.to_string())?;
    let mut one = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        store
            .append(std::slice::from_ref(&record))
            .map_err(|e| e.to_string())?;
        one.push(t.elapsed());
    }
    let (one_p50, one_p99) = percentiles(one);
    println!(
        "durable change (1 record, 1 commit): p50 {one_p50:8.1} us   p99 {one_p99:8.1} us   = {:.2}x an appended raw fsync, {:.2}x an in-place one (p50)",
        one_p50 / append_p50.max(0.001),
        one_p50 / inplace_p50.max(0.001)
    );
    drop(store);

    // 3. Group commit from many writers.
    let store = Store::open(&dir.path().join("group.redb")).map_err(|e| e.to_string())?;
    let (committer, handle) = Committer::spawn(store).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(args.seconds.max(1));
    let started = Instant::now();
    let threads: Vec<_> = (0..args.writers.max(1))
        .map(|_| {
            let handle = handle.clone();
            let record = record.clone();
            std::thread::spawn(move || {
                let mut done = 0u64;
                while Instant::now() < deadline {
                    if handle.commit(std::slice::from_ref(&record)).is_err() {
                        break;
                    }
                    done += 1;
                }
                done
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    let elapsed = started.elapsed().as_secs_f64();
    drop(handle);
    let stored = committer
        .finish()
        .map(|s| s.last_seq())
        .ok_or("the committer failed")?;
    println!(
        "group commit ({} writers):           {:8.0} acknowledged changes/s ({total} in {elapsed:.1} s; {stored} stored)",
        args.writers,
        total as f64 / elapsed
    );

    // 4. Engine decisions, one core, no store.
    let mut engine = Engine::new(EngineConfig::default());
    engine.bootstrap_admin("admin", BENCH_HASH.into(), 0);
    engine.handle_command(
        "admin",
        Command::CreateSession {
            name: "FC1".into(),
            kind: SessionType::Fc,
            description: String::new(),
        },
        1,
    );
    let n = 1_000_000u64;
    let t = Instant::now();
    for i in 0..n {
        // Refused: an FC session without copy sets has no valid command.
        let reply = engine.handle_command(
            "admin",
            Command::Run {
                session: "FC1".into(),
                command: SessionCommand::Flash,
            },
            2 + i,
        );
        std::hint::black_box(reply);
        while engine.poll_record().is_some() {}
        while engine.poll_console().is_some() {}
        while engine.poll_finished().is_some() {}
    }
    let refused = n as f64 / t.elapsed().as_secs_f64();
    println!("engine: refused command (audited):  {refused:10.0} decisions/s");
    let principal = engine.principal("admin").ok_or("no admin")?;
    let mode = engine.state().dual.mode();
    let t = Instant::now();
    let mut allowed = 0u64;
    for _ in 0..n {
        let change = Change::Session {
            session: "FC1".into(),
            kind: SessionType::Fc,
            action: SessionAction::Flash,
        };
        if change.authorized(&principal).is_ok() && !change.is_gated(mode) {
            allowed += 1;
        }
    }
    std::hint::black_box(allowed);
    let decided = n as f64 / t.elapsed().as_secs_f64();
    println!("engine: authorisation + gate:       {decided:10.0} decisions/s");
    Ok(())
}
