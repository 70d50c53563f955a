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
                    _ = super::operator_console_with(
                        |u| control.system().resume(u),
                        |words| link_command(&control, words),
                        "RESUME userid | LINK CUT serial | LINK MEND serial | HELP",
                    ) => {
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

/// `LINK CUT serial` / `LINK MEND serial`: the link between the first image and
/// the image `serial` of the complex fails or works again (ds8k.md §3.5), as a
/// fibre would; `None` for any other command.
fn link_command(control: &zgate::peer::ds8k::Ds8kControl, words: &[&str]) -> Option<String> {
    let (verb, serial) = match words {
        [link, verb, serial] if link.eq_ignore_ascii_case("LINK") => {
            (verb.to_ascii_uppercase(), *serial)
        }
        _ => return None,
    };
    let system = control.system();
    let now = system.clock_ms();
    let mut complex = system.complex();
    let first = complex
        .image(0)
        .map(|i| i.id().serial().to_string())
        .unwrap_or_default();
    let Some(site) = complex.site_of(serial).filter(|s| *s != 0) else {
        return Some(format!(
            "LINK: {serial} is not another image of this complex"
        ));
    };
    Some(match verb.as_str() {
        "CUT" => {
            complex.cut_link(now, 0, site);
            tracing::warn!(first = %first, other = serial, "operator LINK CUT");
            format!("LINK {first}-{serial}: down")
        }
        "MEND" => {
            complex.mend_link(0, site);
            tracing::warn!(first = %first, other = serial, "operator LINK MEND");
            format!("LINK {first}-{serial}: up")
        }
        _ => return None,
    })
}
