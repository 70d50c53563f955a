//! Subcommand definitions and dispatch. Each role lives in its own file.

mod bench;
mod bench_all;
mod bench_cpu;
mod bench_csm;
mod bench_ds8k;
mod bench_flash;
mod bench_ha;
mod bench_hyperswap;
mod bench_instr;
mod bench_logons;
mod bench_mirror;
mod bench_rest;
mod bench_restart;
mod bench_store;
mod bench_wholebox;
mod bench_writes;
mod csm;
mod demo;
mod ds8k;
mod passticket;
mod passwd;
mod peer;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// zgate: mainframe host-connection protocol gateway.
#[derive(Debug, Parser)]
#[command(name = "zgate", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate or verify RACF PassTickets (legacy DES or enhanced HMAC-SHA-512).
    #[command(subcommand)]
    Passticket(passticket::PassticketCommand),
    /// Run an emulated mainframe peer.
    #[command(subcommand)]
    Peer(peer::PeerCommand),
    /// Run the simulated DS8000 (HMC protocol; FlashCopy, Safeguarded Copy).
    Ds8k(ds8k::Ds8kArgs),
    /// Print the argon2id hash of a password for a configuration's `password_hash`.
    Passwd(passwd::PasswdArgs),
    /// Run the gateway: the policy engine, its store, the CSM protocol listener (TLS).
    Serve(serve::ServeArgs),
    /// Talk to a running gateway over the CSM protocol.
    Csm(csm::CsmArgs),
    /// The whole mission in one process on loopback, narrated (exits 0 when every step passes).
    Demo(demo::DemoArgs),
    /// Measure the gateway (figures go to stdout; see README "Benchmarks").
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Hold many z/OS host connections with heartbeats and report memory per connection.
    ZosConnections(bench::ZosConnectionsArgs),
    /// A full-size simulated DS8000: memory, consistency-group flash, backup, copy ticks.
    Ds8kBox(bench_ds8k::Ds8kBoxArgs),
    /// The policy store: raw fsync vs a durable change, group commit, engine decisions/s.
    PolicyStore(bench_store::PolicyStoreArgs),
    /// The CSM protocol: concurrent TLS clients against the gateway and a TLS echo baseline.
    Csm(bench_csm::CsmBenchArgs),
    /// A 1,000-pair consistency-group flash through the HMC path and the host path.
    FlashPaths(bench_flash::FlashPathsArgs),
    /// Durable changes through the gateway (64 CSM clients) beside the store's raw group commit.
    Writes(bench_writes::WritesBenchArgs),
    /// One session over a whole DS8000: import, Flash, Backup, a small change's bytes, restart.
    Wholebox(bench_wholebox::WholeBoxBenchArgs),
    /// The active/standby pair: a change with and without a standby, replication lag, takeover.
    Ha(bench_ha::HaBenchArgs),
    /// Metro Mirror in the simulated DS8000: mirrored vs unmirrored writes, a 10,000-pair freeze, failover, failback.
    MetroMirror(bench_mirror::MirrorBenchArgs),
    /// A planned HyperSwap of 1,000 Metro Mirror pairs: the applications' I/O hold and the command's time.
    Hyperswap(bench_hyperswap::HyperSwapBenchArgs),
    /// Restart time with a long journal (1,000,000 records), with and without a snapshot.
    Restart(bench_restart::RestartBenchArgs),
    /// CSM's REST API: concurrent HTTPS clients against the gateway and an HTTPS baseline.
    Rest(bench_rest::RestBenchArgs),
    /// Memory under a burst of logons: 64 CSM and 32 REST at once, argon2id at full cost.
    Logons(bench_logons::LogonsBenchArgs),
    /// Instruction counts (callgrind) of the pure computations beside their baselines.
    Instructions(bench_instr::InstructionsArgs),
    /// One workload of `instructions`, run under callgrind (internal).
    #[command(hide = true)]
    InstrRun(bench_instr::InstrRunArgs),
    /// Every benchmark, short, then one table of figures, baselines and ratios.
    All(bench_all::AllArgs),
}

/// Logs go to stderr, filtered by `RUST_LOG` (default: `info`), in colour only when
/// stderr is a terminal (a file or a pipe gets plain text).
pub fn init_logging() {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// Services hold keys and passwords in memory: no core dump may write them to disk
/// (failing to set the limit is logged, not fatal).
pub fn no_core_dumps() {
    if let Err(e) = rlimit::setrlimit(rlimit::Resource::CORE, 0, 0) {
        tracing::warn!(error = %e, "could not disable core dumps");
    }
}

/// Exit codes shared by every subcommand.
pub mod exit {
    /// The input was wrong (a field failed validation); clap uses 2 for usage errors too.
    pub const BAD_INPUT: u8 = 2;
    /// The operation ran and said no (for example a PassTicket was refused).
    pub const REFUSED: u8 = 1;
}

/// Runs `work` on a new tokio runtime; an error is printed as `zgate <what>: …` and
/// is exit status 1.
pub fn block_on<F>(what: &str, work: F) -> ExitCode
where
    F: std::future::Future<Output = Result<(), String>>,
{
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("zgate {what}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zgate {what}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> ExitCode {
    if matches!(
        cli.command,
        Command::Peer(_)
            | Command::Ds8k(_)
            | Command::Passwd(_)
            | Command::Passticket(_)
            | Command::Serve(_)
            | Command::Csm(_)
            | Command::Demo(_)
    ) {
        no_core_dumps();
    }
    match cli.command {
        Command::Passticket(cmd) => passticket::run(cmd),
        Command::Peer(cmd) => peer::run(cmd),
        Command::Ds8k(args) => ds8k::run(args),
        Command::Passwd(args) => passwd::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Csm(args) => csm::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Bench(BenchCommand::ZosConnections(args)) => bench::zos_connections(args),
        Command::Bench(BenchCommand::Ds8kBox(args)) => bench_ds8k::ds8k_box(args),
        Command::Bench(BenchCommand::PolicyStore(args)) => bench_store::policy_store(args),
        Command::Bench(BenchCommand::Csm(args)) => bench_csm::csm(args),
        Command::Bench(BenchCommand::FlashPaths(args)) => bench_flash::flash_paths(args),
        Command::Bench(BenchCommand::Rest(args)) => bench_rest::rest(args),
        Command::Bench(BenchCommand::Writes(args)) => bench_writes::writes(args),
        Command::Bench(BenchCommand::Ha(args)) => bench_ha::ha(args),
        Command::Bench(BenchCommand::Wholebox(args)) => bench_wholebox::wholebox(args),
        Command::Bench(BenchCommand::Restart(args)) => bench_restart::restart(args),
        Command::Bench(BenchCommand::MetroMirror(args)) => bench_mirror::metro_mirror(args),
        Command::Bench(BenchCommand::Hyperswap(args)) => bench_hyperswap::hyperswap(args),
        Command::Bench(BenchCommand::Logons(args)) => bench_logons::logons(args),
        Command::Bench(BenchCommand::Instructions(args)) => bench_instr::instructions(args),
        Command::Bench(BenchCommand::InstrRun(args)) => bench_instr::instr_run(args),
        Command::Bench(BenchCommand::All(args)) => bench_all::all(args),
    }
}

/// The operator console of a running emulated system, on standard input: one command
/// per line. `RESUME userid` lifts a revocation (RACF's `ALTUSER userid RESUME`);
/// `HELP` lists the commands. Answers go to standard output. Ends quietly at EOF
/// (a service started without a terminal has no console).
pub async fn operator_console(resume: impl Fn(&zgate::passticket::RacfName) -> bool) {
    operator_console_with(resume, |_| None, "RESUME userid | HELP").await
}

/// [`operator_console`] with more commands: `more` answers the words of a line it
/// knows (`None`: not one of its commands); `help` lists every command.
pub async fn operator_console_with(
    resume: impl Fn(&zgate::passticket::RacfName) -> bool,
    more: impl Fn(&[&str]) -> Option<String>,
    help: &str,
) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut words = line.split_whitespace();
        match (
            words.next().map(str::to_ascii_uppercase).as_deref(),
            words.next(),
        ) {
            (Some("RESUME"), Some(user)) => {
                match zgate::passticket::RacfName::parse("user", user) {
                    Ok(name) if resume(&name) => {
                        tracing::warn!(user = %name, "operator RESUME");
                        println!("RESUME {name}: resumed");
                    }
                    Ok(name) => println!("RESUME {name}: not revoked"),
                    Err(e) => println!("RESUME: {e}"),
                }
            }
            (None, _) => {}
            _ => {
                let all: Vec<&str> = line.split_whitespace().collect();
                match more(&all) {
                    Some(answer) => println!("{answer}"),
                    None => println!("commands: {help}"),
                }
            }
        }
    }
}
