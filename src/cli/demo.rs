//! `zgate demo`: the whole mission in one process on loopback, narrated
//! (`zgate::demo` says what it runs). Exits 0, or 1 naming the step that failed;
//! `--keep` leaves the gateway up for `zgate csm`.

use std::process::ExitCode;

use clap::Args;
use zgate::demo::{self, DemoOptions};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Leave the gateway up afterwards (for `zgate csm`), until Ctrl-C; needs
    /// ZGATE_ADMIN_PASSWORD, the admin's password, and keeps state in ./zgate-demo.
    #[arg(long)]
    keep: bool,
}

pub fn run(args: DemoArgs) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("zgate demo: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match run_demo(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("\nzgate demo: FAILED at {e}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn run_demo(args: DemoArgs) -> Result<(), String> {
    println!("zgate demo: a DS8000, z/OS SYSA, z/TPF TPFPROD and the gateway, all on loopback");
    let w = demo::start(DemoOptions {
        keep: args.keep,
        ..DemoOptions::default()
    })
    .await?;
    demo::steps(&w).await?;
    if args.keep {
        println!(
            "\nThe gateway stays up on {} (CA: {}). Ctrl-C to stop.",
            w.service().addr(),
            w.service()
                .ca_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
        super::serve::wait_for_stop().await;
    }
    w.finish().await?;
    println!("\nzgate demo: every step passed");
    Ok(())
}
