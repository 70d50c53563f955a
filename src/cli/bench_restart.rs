//! `zgate bench restart`: how long a restart takes with a long journal, with and
//! without a snapshot (`protocol-specs/store.md` §6).
//!
//! Writes `--records` journal records (by default 1,000,000: `--sessions` sessions,
//! each changed over and over, every change a session record and its audit entry, as
//! the gateway writes them) into a store in batches of 1,000, then times the gateway's
//! start: open, read, rebuild the engine. Once with the whole journal to replay, once
//! after a snapshot at the end, once after a snapshot `--tail` records before the end.
//! Also printed: what writing the snapshot (and compacting) took. Figures only.

use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use zgate::policy::SessionType;
use zgate::policy::engine::{Command, Engine, EngineConfig, Record, State};
use zgate::store::Store;

const HASH: &str = "$argon2id$v=19$m=256,t=1,p=1$dPSvPsnwvszeWFQcHoNUtQ$VkHyf3shwuBN9RYKSA5exsDDhoO9YAOy2Lqxr89Cn1o";

#[derive(Debug, Clone, Args)]
pub struct RestartBenchArgs {
    /// Journal records to write.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Sessions the changes go to.
    #[arg(long, default_value_t = 1_000)]
    sessions: usize,
    /// Records after the snapshot in the third measurement.
    #[arg(long, default_value_t = 50_000)]
    tail: u64,
    /// Directory of the store (on the disk to measure; default the temp dir).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

pub fn restart(args: RestartBenchArgs) -> ExitCode {
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zgate bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What a restart does before it serves: open, recover, rebuild the engine.
fn start(path: &std::path::Path) -> Result<(f64, usize, Engine), String> {
    let t = Instant::now();
    let store = Store::open(path).map_err(|e| e.to_string())?;
    let recovered = store.recover().map_err(|e| e.to_string())?;
    let config = EngineConfig::default();
    let mut state = match recovered.snapshot {
        Some((_, state)) => state,
        None => State::new(config.request_lifetime_ms),
    };
    for r in &recovered.tail {
        state.apply(r);
    }
    let engine = Engine::from_state(state, config);
    Ok((t.elapsed().as_secs_f64(), recovered.tail.len(), engine))
}

fn run(args: &RestartBenchArgs) -> Result<(), String> {
    let dir = match &args.dir {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .map_err(|e| format!("temp dir: {e}"))?;
    let path = dir.path().join("zgate.redb");
    let sessions = args.sessions.max(1);
    let mut engine = Engine::new(EngineConfig::default());
    engine.bootstrap_admin("admin", HASH.into(), 0);
    for i in 0..sessions {
        let create = Command::CreateSession {
            name: format!("S{i:05}"),
            kind: if i % 2 == 0 {
                SessionType::Fc
            } else {
                SessionType::Sgc
            },
            description: "bench".into(),
        };
        engine.handle_command("admin", create, 1);
    }
    let mut store = Store::open(&path).map_err(|e| e.to_string())?;
    store.begin_epoch().map_err(|e| e.to_string())?;
    let t = Instant::now();
    let mut batch: Vec<Record> = Vec::with_capacity(1_100);
    let mut written = 0u64;
    let mut n = 0u64;
    let mut snapshot_state = None;
    // Whole commands per batch, so that what is written is a state the engine was in.
    while written < args.records {
        let change = Command::SetDescription {
            session: format!("S{:05}", n as usize % sessions),
            description: format!("change {n}"),
        };
        engine.handle_command("admin", change, 2 + n);
        n += 1;
        batch.extend(std::iter::from_fn(|| engine.poll_record()));
        while engine.poll_console().is_some() {}
        while engine.poll_finished().is_some() {}
        if batch.len() >= 1_000 {
            store.append(&batch).map_err(|e| e.to_string())?;
            written += batch.len() as u64;
            batch.clear();
            if snapshot_state.is_none() && written + args.tail >= args.records {
                snapshot_state = Some((written, engine.state().clone()));
            }
        }
    }
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "journal: {written} records ({sessions} sessions, {n} changes) written in {:.1} s; file {:.0} MB",
        t.elapsed().as_secs_f64(),
        size as f64 / 1e6
    );
    let final_state = engine.state().clone();
    drop(store);

    let (secs, replayed, rebuilt) = start(&path)?;
    let same = rebuilt.state() == &final_state;
    println!(
        "restart, no snapshot:             {secs:7.3} s  ({replayed} records replayed; state as written: {same})"
    );

    if let Some((at, state)) = snapshot_state {
        let mut store = Store::open(&path).map_err(|e| e.to_string())?;
        let t = Instant::now();
        store
            .snapshot(at, &state, args.tail)
            .map_err(|e| e.to_string())?;
        println!(
            "snapshot at {at} ({} records before the end), compacting the journal before it: {:.3} s",
            written - at,
            t.elapsed().as_secs_f64()
        );
        drop(store);
        let (secs, replayed, rebuilt) = start(&path)?;
        let same = rebuilt.state() == &final_state;
        println!(
            "restart, snapshot + {replayed:6} records: {secs:7.3} s  (state as written: {same})"
        );
    }
    let mut store = Store::open(&path).map_err(|e| e.to_string())?;
    let t = Instant::now();
    store
        .snapshot(written, &final_state, args.tail)
        .map_err(|e| e.to_string())?;
    println!(
        "snapshot at the end, compacting:  {:7.3} s",
        t.elapsed().as_secs_f64()
    );
    drop(store);
    let (secs, replayed, rebuilt) = start(&path)?;
    let same = rebuilt.state() == &final_state;
    println!(
        "restart, snapshot at the end:     {secs:7.3} s  ({replayed} records replayed; state as written: {same})"
    );
    Ok(())
}
