//! `zgate bench rest`: CSM's REST API under load, against a baseline, in one run.
//!
//! `--clients` HTTPS keep-alive connections (64 by default) to each server send an
//! authenticated `GET /CSM/web/sessions/short`: zgate holding a few sessions, and a
//! minimal HTTPS server built from the same crates and the same listener code
//! (rustls, hyper, axum: `RestServer::start_router`) whose one route answers the same
//! bytes without the gateway: the cost of TLS and HTTP alone. Each of `--rounds`
//! rounds gives zgate's clients, then the baseline's, `--seconds` flat out, then
//! paces both sets at `--rate` requests a second each, at the same time, and reads
//! each server's CPU time meanwhile (`bench_cpu.rs`). Printed: each round's
//! throughputs, CPU per request and ratios, then the median round's figures.
//! Figures only; nothing is asserted.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use clap::Args;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use zgate::gateway::rest::RestServer;
use zgate::gateway::service::ServeConfig;
use zgate::tls::{ClientTls, ServerTls, ThrowawayPki};

use super::bench_cpu::{ClientRun, Phases, ServerRuntime, start_zgate};
use super::bench_csm::{Figures, Ratios, figures, report};

#[derive(Debug, Clone, Args)]
pub struct RestBenchArgs {
    /// Concurrent HTTPS keep-alive clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Seconds of load for each server.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Rounds (the median round's ratios are the figures).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Sessions in the gateway (the reply lists them all).
    #[arg(long, default_value_t = 4)]
    sessions: usize,
    /// Requests a second to each server, all its clients together, in the paced
    /// window that measures CPU per request (both servers paced at once).
    #[arg(long, default_value_t = 3_000)]
    rate: u64,
}

impl RestBenchArgs {
    /// The short run of `zgate bench all`.
    pub(super) fn short(rounds: usize) -> RestBenchArgs {
        RestBenchArgs {
            clients: 64,
            seconds: 2,
            rounds,
            sessions: 4,
            rate: 3_000,
        }
    }
}

const PASSWORD: &str = "bench-password-1";
const PATH: &str = "/CSM/web/sessions/short";

pub fn rest(args: RestBenchArgs) -> ExitCode {
    super::block_on("bench", async move { run(args).await.map(|_| ()) })
}

/// The run; the median ratios (for `zgate bench all`).
pub(super) async fn run(args: RestBenchArgs) -> Result<Ratios, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut config = ServeConfig::default();
    config.csm.listen = "127.0.0.1:0".parse().map_err(|_| "address")?;
    config.ha.listen = "127.0.0.1:0".parse().map_err(|_| "address")?;
    config.rest.listen = "127.0.0.1:0".parse().map_err(|_| "address")?;
    config.rest.max_connections = args.clients + 16;
    config.rest.max_connections_per_address = args.clients + 16;
    config.store.dir = dir.path().to_owned();
    // Each server on runtimes of its own, so that its CPU time can be read apart
    // from the clients' (bench_cpu.rs).
    let (zgate_rt, base_rt, service) = start_zgate(config, PASSWORD).await?;
    let rest_addr = service.rest_addr().ok_or("REST is off")?;
    let ca = std::fs::read(service.ca_file.as_ref().ok_or("no CA")?).map_err(|e| e.to_string())?;
    let tls = Arc::new(ClientTls::from_pem(&ca, "localhost", None).map_err(|e| e.to_string())?);

    // A token, and a few sessions for the reply to list.
    let mut admin = connect(rest_addr, &tls).await?;
    let (_, body) = send(
        &mut admin,
        "POST",
        "/CSM/web/system/v1/tokens",
        "",
        format!("username=admin&password={PASSWORD}"),
    )
    .await?;
    let token = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["token"].as_str().map(str::to_owned))
        .ok_or("no token")?;
    for i in 0..args.sessions {
        let kind = if i % 2 == 0 { "FC" } else { "SGC" };
        let (status, _) = send(
            &mut admin,
            "PUT",
            &format!("/CSM/web/sessions/S{i}"),
            &token,
            format!("type={kind}"),
        )
        .await?;
        if status != 200 {
            return Err(format!("creating session S{i}: HTTP {status}"));
        }
    }
    let (_, reply) = send(&mut admin, "GET", PATH, &token, String::new()).await?;
    println!(
        "{} HTTPS keep-alive clients; {} s flat out, then {} s at {} requests/s (server CPU); GET {PATH} ({} sessions, {} bytes)",
        args.clients,
        args.seconds,
        args.seconds,
        args.rate,
        args.sessions,
        reply.len()
    );

    // The baseline: the same listener code, one route, the same bytes.
    let pki = ThrowawayPki::new("bench REST CA").map_err(|e| e.to_string())?;
    let id = pki.issue(&["localhost"]).map_err(|e| e.to_string())?;
    let server = ServerTls::from_pem(id.cert_pem.as_bytes(), id.key_pem.as_bytes(), None)
        .map_err(|e| e.to_string())?;
    let fixed = reply.clone();
    let router = axum::Router::new().route(
        PATH,
        axum::routing::get(move || {
            let body = fixed.clone();
            async move { ([("content-type", "application/json")], body) }
        }),
    );
    let listen = "127.0.0.1:0".parse().map_err(|_| "address")?;
    let max_connections = args.clients + 16;
    let baseline = base_rt
        .run(async move {
            RestServer::start_router(listen, router, server, max_connections)
                .await
                .map_err(|e| e.to_string())
        })
        .await??;
    let base_tls = Arc::new(
        ClientTls::from_pem(pki.ca_pem.as_bytes(), "localhost", None).map_err(|e| e.to_string())?,
    );
    let mut rounds = Vec::new();
    for _ in 0..args.rounds.max(1) {
        // Every client connects first.
        let (zgate_phases, base_phases) = Phases::pair(
            Duration::from_secs(3),
            args.seconds,
            args.rate,
            args.clients,
        );
        let (gateway, base) = tokio::join!(
            load(
                rest_addr,
                tls.clone(),
                &token,
                &args,
                (&zgate_rt, zgate_phases)
            ),
            load(
                baseline.addr(),
                base_tls.clone(),
                &token,
                &args,
                (&base_rt, base_phases)
            ),
        );
        rounds.push((gateway?, base?));
    }
    base_rt.run(baseline.shutdown()).await?;
    zgate_rt.run(service.shutdown()).await?;
    report(("zgate REST API      ", "HTTPS baseline      "), &rounds)
        .ok_or_else(|| "no rounds".into())
}

pub(super) type Sender = hyper::client::conn::http1::SendRequest<String>;

/// One HTTPS keep-alive connection.
pub(super) async fn connect(addr: SocketAddr, tls: &ClientTls) -> Result<Sender, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let stream = tls
        .connect(tcp, Duration::from_secs(10))
        .await
        .map_err(|e| e.to_string())?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok(sender)
}

/// One request; the status and the whole body.
pub(super) async fn send(
    sender: &mut Sender,
    method: &str,
    path: &str,
    token: &str,
    form: String,
) -> Result<(u16, Bytes), String> {
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("x-auth-token", token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .map_err(|e| e.to_string())?;
    sender.ready().await.map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}

/// Runs `clients` connections against `addr` (see [`Phases`]); returns the figures,
/// with the CPU time of `server`'s threads over the paced window.
async fn load(
    addr: SocketAddr,
    tls: Arc<ClientTls>,
    token: &str,
    args: &RestBenchArgs,
    (server, phases): (&ServerRuntime, Phases),
) -> Result<Figures, String> {
    let mut tasks = Vec::new();
    for index in 0..args.clients {
        let (tls, token) = (tls.clone(), token.to_owned());
        let first_paced = phases.first_paced(index, args.clients);
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(addr, &tls).await?;
            tokio::time::sleep_until(phases.start.into()).await;
            let mut run = ClientRun::default();
            let mut next_paced = first_paced;
            loop {
                let paced = Instant::now() >= phases.saturated_until;
                if paced {
                    if next_paced >= phases.paced_until {
                        break;
                    }
                    tokio::time::sleep_until(next_paced.into()).await;
                    next_paced += phases.interval;
                }
                let t = Instant::now();
                let (status, _) = send(&mut sender, "GET", PATH, &token, String::new()).await?;
                if status != 200 {
                    return Err(format!("HTTP {status}"));
                }
                if paced {
                    run.paced += 1;
                } else {
                    run.latencies.push(t.elapsed());
                }
            }
            Ok::<_, String>(run)
        }));
    }
    let cpu = phases.paced_cpu_ns(server).await;
    let mut runs = Vec::new();
    for t in tasks {
        runs.push(t.await.map_err(|e| e.to_string())??);
    }
    Ok(figures(runs, args.seconds as f64, cpu))
}
