//! `zgate serve [--config zgate.toml]`: the gateway: the policy engine with its
//! store, the CSM protocol listener (TLS), storage actions over the HMC or through
//! z/OS and z/TPF, until SIGINT or SIGTERM (then: stop accepting, answer what was
//! taken, finish the storage work under way up to a grace, flush, close:
//! configuration.md §7).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use zgate::clock::Clock;
use zgate::gateway::service::{ServeConfig, Service};

use super::exit;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration (protocol-specs/configuration.md §5); without it, the
    /// embedded default: loopback port 9560, state in ./zgate-data.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Reads `path` as a `ServeConfig`; unknown keys are errors that name the key.
pub fn load(path: &std::path::Path) -> Result<ServeConfig, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))
}

pub fn run(args: ServeArgs) -> ExitCode {
    let config = match &args.config {
        Some(path) => match load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("zgate: {e}");
                return ExitCode::from(exit::BAD_INPUT);
            }
        },
        None => ServeConfig::default(),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("zgate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let env = |name: &str| std::env::var(name).ok();
        let service = match Service::start(&config, &env, Clock::system()).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("zgate: {e}");
                return ExitCode::from(exit::BAD_INPUT);
            }
        };
        println!("zgate gateway: CSM protocol on {} (TLS)", service.addr());
        if let Some(rest) = service.rest_addr() {
            println!("zgate gateway: CSM REST API on https://{rest}/CSM/web");
        }
        if let Some(ha) = service.ha_addr() {
            println!("zgate gateway: HA (active/standby) on {ha}");
        }
        if let Some(ca) = &service.ca_file {
            println!(
                "  throwaway CA for clients: {} (zgate csm --ca {0})",
                ca.display()
            );
        }
        wait_for_stop().await;
        println!("zgate gateway: stopping");
        service.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// SIGINT or SIGTERM.
pub async fn wait_for_stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
