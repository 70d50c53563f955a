//! The `zgate` command line: one binary, one subcommand per role.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging();
    cli::run(args)
}
