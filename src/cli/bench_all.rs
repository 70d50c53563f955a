//! `zgate bench all`: every benchmark, short, in a few minutes; one table of the
//! figures that have a baseline (each with its ratio), then the other benchmarks'
//! own reports.
//!
//! The figures to compare between versions are the instruction counts (the same on
//! every run) and the server CPU per request (moves little with the machine's load);
//! throughput is printed for context: on a shared machine it moves more from round
//! to round than the differences it would show.

use std::process::{Command, ExitCode};

use clap::Args;

#[derive(Debug, Args)]
pub struct AllArgs {
    /// Rounds of the CSM and REST load benchmarks (the median is reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

/// One line of the table.
struct Line {
    figure: String,
    zgate: String,
    baseline: String,
    ratio: f64,
    note: &'static str,
}

pub fn all(args: AllArgs) -> ExitCode {
    let mut lines = Vec::new();
    println!("== instruction counts (callgrind) ==");
    match super::bench_instr::measure_all(2_000) {
        Ok(rows) => {
            for r in rows {
                lines.push(Line {
                    figure: format!("{} (Ir/op)", r.name),
                    zgate: format!("{:.0}", r.zgate),
                    baseline: format!("{:.0}", r.base),
                    ratio: r.ratio(),
                    note: "same on every run",
                });
            }
        }
        Err(e) => println!("skipped: {e}"),
    }
    for (name, load) in [("csm", LoadBench::Csm), ("rest", LoadBench::Rest)] {
        println!("\n== bench {name} ==");
        match load.run(args.rounds) {
            Ok(r) => {
                lines.push(Line {
                    figure: format!("{name}: server CPU per request (x baseline)"),
                    zgate: "-".into(),
                    baseline: "-".into(),
                    ratio: r.cpu,
                    note: "median round; the figure to compare",
                });
                lines.push(Line {
                    figure: format!("{name}: throughput (x baseline)"),
                    zgate: "-".into(),
                    baseline: "-".into(),
                    ratio: r.throughput,
                    note: "median round; noisy on a shared machine",
                });
            }
            Err(e) => println!("failed: {e}"),
        }
    }
    println!("\n== bench writes ==");
    let writes = tokio::runtime::Runtime::new()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            rt.block_on(super::bench_writes::run(
                super::bench_writes::WritesBenchArgs::short(),
            ))
        });
    match writes {
        Ok(w) => lines.push(Line {
            figure: "writes: durable changes/s (x store alone)".into(),
            zgate: format!("{:.0}", w.gateway_per_sec),
            baseline: format!("{:.0}", w.store_per_sec),
            ratio: w.gateway_per_sec / w.store_per_sec.max(1e-9),
            note: "64 CSM clients vs raw group commit",
        }),
        Err(e) => println!("failed: {e}"),
    }
    // The benchmarks without a baseline to divide by: their own reports.
    for (name, extra) in [
        ("policy-store", &["--seconds", "2"][..]),
        ("flash-paths", &["--rounds", "2"][..]),
        ("logons", &[][..]),
        ("ds8k-box", &[][..]),
        (
            "zos-connections",
            &["--count", "1000", "--hold-secs", "5"][..],
        ),
    ] {
        println!("\n== bench {name} ==");
        if let Err(e) = child(name, extra) {
            println!("failed: {e}");
        }
    }
    println!("\n== summary ==");
    println!(
        "{:<46} {:>10} {:>10} {:>7}  note",
        "figure", "zgate", "baseline", "ratio"
    );
    for l in &lines {
        println!(
            "{:<46} {:>10} {:>10} {:>7.2}  {}",
            l.figure, l.zgate, l.baseline, l.ratio, l.note
        );
    }
    ExitCode::SUCCESS
}

enum LoadBench {
    Csm,
    Rest,
}

impl LoadBench {
    fn run(&self, rounds: usize) -> Result<super::bench_csm::Ratios, String> {
        let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
        match self {
            LoadBench::Csm => runtime.block_on(super::bench_csm::run(
                super::bench_csm::CsmBenchArgs::short(rounds),
            )),
            LoadBench::Rest => runtime.block_on(super::bench_rest::run(
                super::bench_rest::RestBenchArgs::short(rounds),
            )),
        }
    }
}

/// Runs `zgate bench <name> <extra>` as a child, its report on our stdout.
fn child(name: &str, extra: &[&str]) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let status = Command::new(exe)
        .args(["bench", name])
        .args(extra)
        .env("RUST_LOG", "warn")
        .status()
        .map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("exit {status}"))
    }
}
