//! `zgate bench logons`: memory under a burst of password checks. `--csm` CSM
//! protocol logons and `--rest` REST token requests, all at once, against the real
//! service (argon2id at its default cost, ~19 MiB a check). Printed: the process's
//! resident memory before, its peak (VmHWM) and after, and how long the burst took.
//! Every check runs on the shared pool (`gateway/passwords.rs`), so the peak should
//! stay near the pool's size × 19 MiB above the start. Figures only.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use clap::Args;
use zgate::clock::Clock;
use zgate::codec::frame::FrameCodec;
use zgate::gateway::service::{ServeConfig, Service};
use zgate::proto::Control;
use zgate::proto::csm::CsmMessage;
use zgate::tls::ClientTls;

#[derive(Debug, Args)]
pub struct LogonsBenchArgs {
    /// CSM protocol logons at once.
    #[arg(long, default_value_t = 64)]
    csm: usize,
    /// REST token requests at once.
    #[arg(long, default_value_t = 32)]
    rest: usize,
}

const PASSWORD: &str = "bench-password-1";

pub fn logons(args: LogonsBenchArgs) -> ExitCode {
    super::block_on("bench", run(args))
}

/// A line of /proc/self/status, in KiB.
fn status_kib(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn run(args: LogonsBenchArgs) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut config = ServeConfig::default();
    config.csm.listen = "127.0.0.1:0".parse().map_err(|_| "address")?;
    config.ha.listen = "127.0.0.1:0".parse().map_err(|_| "address")?;
    config.rest.listen = "127.0.0.1:0".parse().map_err(|_| "address")?;
    config.csm.max_connections = args.csm + 16;
    config.csm.limits.max_connections_per_address = args.csm + 16;
    config.rest.max_connections = args.rest + 16;
    config.rest.max_connections_per_address = args.rest + 16;
    config.store.dir = dir.path().to_owned();
    let env = |v: &str| (v == "ZGATE_ADMIN_PASSWORD").then(|| PASSWORD.to_owned());
    let service = Service::start(&config, &env, Clock::system())
        .await
        .map_err(|e| e.to_string())?;
    let rest_addr = service.rest_addr().ok_or("REST is off")?;
    let ca = std::fs::read(service.ca_file.as_ref().ok_or("no CA")?).map_err(|e| e.to_string())?;
    let tls = Arc::new(ClientTls::from_pem(&ca, "localhost", None).map_err(|e| e.to_string())?);
    let before = status_kib("VmRSS:").unwrap_or(0);
    println!(
        "{} CSM logons and {} REST token requests at once; {} password threads",
        args.csm,
        args.rest,
        zgate::gateway::passwords::threads()
    );
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.csm {
        let (tls, addr) = (tls.clone(), service.addr());
        tasks.spawn(async move { csm_logon(addr, &tls).await.map(|()| "csm") });
    }
    for _ in 0..args.rest {
        let tls = tls.clone();
        tasks.spawn(async move {
            let mut h = super::bench_rest::connect(rest_addr, &tls).await?;
            let (status, _) = super::bench_rest::send(
                &mut h,
                "POST",
                "/CSM/web/system/v1/tokens",
                "",
                format!("username=admin&password={PASSWORD}"),
            )
            .await?;
            if status == 200 {
                Ok("rest")
            } else {
                Err(format!("token: HTTP {status}"))
            }
        });
    }
    let (mut ok, mut failed) = (0, Vec::new());
    while let Some(done) = tasks.join_next().await {
        match done.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(_) => ok += 1,
            Err(e) => failed.push(e),
        }
    }
    let took = started.elapsed();
    let peak = status_kib("VmHWM:").unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = status_kib("VmRSS:").unwrap_or(0);
    service.shutdown().await;
    println!("logons accepted: {ok}, failed: {}", failed.len());
    if let Some(e) = failed.first() {
        println!("first failure: {e}");
    }
    println!(
        "resident memory: {:.1} MiB before, peak {:.1} MiB, {:.1} MiB after; burst took {:.1} s",
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
        after as f64 / 1024.0,
        took.as_secs_f64()
    );
    Ok(())
}

/// One CSM protocol logon, answered.
async fn csm_logon(addr: std::net::SocketAddr, tls: &ClientTls) -> Result<(), String> {
    let mut stream =
        super::bench_csm::logging_on(addr, tls, PASSWORD, Duration::from_secs(60)).await?;
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::new();
    let frame = super::bench_csm::next_frame(&mut stream, &mut codec, &mut buf).await?;
    match CsmMessage::decode(&frame).map_err(|e| e.to_string())?.body {
        zgate::proto::Payload::Control(Control::LogonReply(r)) if r.status.rc.0 == 0 => Ok(()),
        zgate::proto::Payload::Control(Control::LogonReply(r)) => Err(format!(
            "logon refused: rc {}, reason {:#06x}",
            r.status.rc.0, r.status.reason
        )),
        _ => Err("the logon was answered with something else".into()),
    }
}
