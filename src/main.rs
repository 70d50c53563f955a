//! The `zgate` command line: one binary, one subcommand per role.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc in place of glibc's malloc: the gateway allocates and frees small
/// buffers on one thread and drops them on another, and glibc's arenas spent a
/// fifth of the server's CPU on it (`zgate bench writes`, README "Speed").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging();
    cli::run(args)
}
