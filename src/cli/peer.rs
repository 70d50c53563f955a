//! `zgate peer zos|ztpf --config F`: run an emulated mainframe system until Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use serde::de::DeserializeOwned;
use zgate::peer::zos::{ZosPeer, ZosPeerConfig};
use zgate::peer::ztpf::{ZtpfPeer, ZtpfPeerConfig};

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
    /// Emulated z/TPF system (PassTicket sign-on, attached DASD, flash/backup).
    Ztpf {
        /// TOML configuration (see testdata/peers/ztpf.toml).
        #[arg(long)]
        config: PathBuf,
    },
}

fn load<T: DeserializeOwned>(path: &PathBuf) -> Result<T, ExitCode> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        eprintln!("zgate: {}: {e}", path.display());
        ExitCode::from(exit::BAD_INPUT)
    })?;
    toml::from_str(&text).map_err(|e| {
        eprintln!("zgate: {}: {}", path.display(), e.message());
        ExitCode::from(exit::BAD_INPUT)
    })
}

pub fn run(cmd: PeerCommand) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("zgate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cmd {
        PeerCommand::Zos { config } => match load::<ZosPeerConfig>(&config) {
            Ok(cfg) => runtime.block_on(async {
                match ZosPeer::from_config(cfg).await {
                    Ok(peer) => {
                        println!("z/OS peer listening on {}", peer.addr());
                        let control = peer.control().clone();
                        tokio::select! {
                            _ = tokio::signal::ctrl_c() => {}
                            _ = super::operator_console(|u| control.system().resume(u)) => {
                                let _ = tokio::signal::ctrl_c().await;
                            }
                        }
                        peer.shutdown().await;
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("zgate: {e}");
                        ExitCode::from(exit::BAD_INPUT)
                    }
                }
            }),
            Err(code) => code,
        },
        PeerCommand::Ztpf { config } => match load::<ZtpfPeerConfig>(&config) {
            Ok(cfg) => runtime.block_on(async {
                match ZtpfPeer::from_config(cfg).await {
                    Ok(peer) => {
                        println!("z/TPF peer listening on {}", peer.addr());
                        let control = peer.control().clone();
                        tokio::select! {
                            _ = tokio::signal::ctrl_c() => {}
                            _ = super::operator_console(|u| control.system().resume(u)) => {
                                let _ = tokio::signal::ctrl_c().await;
                            }
                        }
                        peer.shutdown().await;
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("zgate: {e}");
                        ExitCode::from(exit::BAD_INPUT)
                    }
                }
            }),
            Err(code) => code,
        },
    }
}
