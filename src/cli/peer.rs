//! `zgate peer zos --config F`: run an emulated z/OS system until Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use zgate::peer::zos::{ZosPeer, ZosPeerConfig};

use super::exit;

#[derive(Debug, Subcommand)]
pub enum PeerCommand {
    /// Emulated z/OS HyperSwap address space (RACF PassTicket checks, HyperSwap, IOS flash/backup).
    Zos {
        /// TOML configuration (see testdata/peers/zos.toml). Keys come from the
        /// environment variables it names.
        #[arg(long)]
        config: PathBuf,
    },
}

pub fn run(cmd: PeerCommand) -> ExitCode {
    let PeerCommand::Zos { config } = cmd;
    let text = match std::fs::read_to_string(&config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("zgate: {}: {e}", config.display());
            return ExitCode::from(exit::BAD_INPUT);
        }
    };
    let cfg: ZosPeerConfig = match toml::from_str(&text) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("zgate: {}: {}", config.display(), e.message());
            return ExitCode::from(exit::BAD_INPUT);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("zgate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let peer = match ZosPeer::from_config(cfg).await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("zgate: {e}");
                return ExitCode::from(exit::BAD_INPUT);
            }
        };
        println!("z/OS peer listening on {}", peer.addr());
        let _ = tokio::signal::ctrl_c().await;
        peer.shutdown().await;
        ExitCode::SUCCESS
    })
}
