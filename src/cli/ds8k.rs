//! `zgate ds8k --config F`: run the simulated DS8000 until Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use zgate::peer::ds8k::{Ds8kService, Ds8kServiceConfig};

use super::exit;

#[derive(Debug, Args)]
pub struct Ds8kArgs {
    /// TOML configuration (see testdata/peers/ds8k.toml).
    #[arg(long)]
    config: PathBuf,
}

pub fn run(args: Ds8kArgs) -> ExitCode {
    let text = match std::fs::read_to_string(&args.config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("zgate: {}: {e}", args.config.display());
            return ExitCode::from(exit::BAD_INPUT);
        }
    };
    let cfg: Ds8kServiceConfig = match toml::from_str(&text) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("zgate: {}: {}", args.config.display(), e.message());
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
        match Ds8kService::from_config(cfg).await {
            Ok(service) => {
                let volumes = service.control().system().image().volume_count();
                println!(
                    "DS8000 {} ({volumes} volumes) listening on {}",
                    service.control().system().image().id(),
                    service.addr()
                );
                for (i, addr) in service.remote_addrs().into_iter().enumerate() {
                    if let Some(remote) = service.remote_control(i) {
                        let system = remote.system();
                        let image = system.image();
                        println!(
                            "DS8000 {} ({} volumes, Metro Mirror partner) listening on {addr}",
                            image.id(),
                            image.volume_count()
                        );
                    }
                }
                let control = service.control().clone();
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = super::operator_console(|u| control.system().resume(u)) => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
                service.shutdown().await;
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("zgate: {e}");
                ExitCode::from(exit::BAD_INPUT)
            }
        }
    })
}
