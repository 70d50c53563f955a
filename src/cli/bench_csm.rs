//! `zgate bench csm`: the CSM protocol under load, against a baseline, in one run.
//!
//! `--clients` TLS connections (64 by default) log on to each server: zgate, and a
//! minimal TLS echo server built from the same crates (rustls, tokio, the frame
//! codec), which answers every frame with a reply frame of the same body: the cost
//! of TLS and framing alone. Each of `--rounds` rounds gives zgate's clients, then
//! the echo server's, `--seconds` of a cheap read (`server.status`) flat out, then
//! paces both sets at `--rate` requests a second each, at the same time, and reads
//! each server's CPU time meanwhile (`bench_cpu.rs`). Printed: each round's
//! throughputs, CPU per request and ratios, then the median round's figures.
//! Figures only; nothing is asserted.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::Decoder;
use zgate::codec::fields::Ebcdic;
use zgate::codec::frame::FrameCodec;
use zgate::gateway::service::ServeConfig;
use zgate::proto::Control;
use zgate::proto::csm::{CsmBody, CsmMessage};
use zgate::proto::logon::{Credential, CredentialKind, LogonRequest};
use zgate::tls::{ClientTls, ServerTls, ThrowawayPki};

use super::bench_cpu::{ClientRun, Phases, ServerRuntime, start_zgate};

#[derive(Debug, Clone, Args)]
pub struct CsmBenchArgs {
    /// Concurrent TLS clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Seconds of load for each server in each round.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Rounds (the median round's ratios are the figures).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Requests a second to each server, all its clients together, in the paced
    /// window that measures CPU per request (both servers paced at once).
    #[arg(long, default_value_t = 6_000)]
    rate: u64,
}

impl CsmBenchArgs {
    /// The short run of `zgate bench all`.
    pub(super) fn short(rounds: usize) -> CsmBenchArgs {
        CsmBenchArgs {
            clients: 64,
            seconds: 2,
            rounds,
            rate: 6_000,
        }
    }
}

const PASSWORD: &str = "bench-password-1";

pub fn csm(args: CsmBenchArgs) -> ExitCode {
    super::block_on("bench", async move { run(args).await.map(|_| ()) })
}

/// Requests done, their latency quantiles, and the server's CPU time meanwhile.
pub(super) struct Figures {
    pub(super) requests: u64,
    pub(super) seconds: f64,
    pub(super) p50_us: f64,
    pub(super) p99_us: f64,
    /// Nanoseconds the server's threads ran during the paced window.
    pub(super) server_cpu_ns: u64,
    /// Requests answered in the paced window.
    pub(super) paced: u64,
}

impl Figures {
    /// Server CPU time per request at the fixed rate, microseconds.
    pub(super) fn cpu_us_per_request(&self) -> f64 {
        self.server_cpu_ns as f64 / 1e3 / self.paced.max(1) as f64
    }
}

/// The figures of a load from its clients' runs, `seconds` long windows.
pub(super) fn figures(runs: Vec<ClientRun>, seconds: f64, server_cpu_ns: u64) -> Figures {
    let paced = runs.iter().map(|r| r.paced).sum();
    let mut latencies: Vec<Duration> = runs.into_iter().flat_map(|r| r.latencies).collect();
    latencies.sort_unstable();
    let at = |q: f64| {
        let i = ((latencies.len().saturating_sub(1)) as f64 * q).round() as usize;
        latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    Figures {
        requests: latencies.len() as u64,
        seconds,
        p50_us: at(0.5),
        p99_us: at(0.99),
        server_cpu_ns,
        paced,
    }
}

/// The two ratios of a round: throughput (zgate / baseline, higher is better) and
/// server CPU per request (zgate / baseline, lower is better).
pub(super) struct Ratios {
    pub(super) throughput: f64,
    pub(super) cpu: f64,
}

/// Prints every round's throughputs and CPU per request with their ratios, then the
/// median round's figures; returns the median ratios.
pub(super) fn report(names: (&str, &str), rounds: &[(Figures, Figures)]) -> Option<Ratios> {
    let rate = |f: &Figures| f.requests as f64 / f.seconds;
    let ratio = |(a, b): &(Figures, Figures)| rate(a) / rate(b).max(1.0);
    let cpu_ratio =
        |(a, b): &(Figures, Figures)| a.cpu_us_per_request() / b.cpu_us_per_request().max(1e-9);
    for (i, round) in rounds.iter().enumerate() {
        println!(
            "round {}: {:9.0} vs {:9.0} requests/s, ratio {:.2}; server CPU {:6.1} vs {:6.1} us/request, ratio {:.2}",
            i + 1,
            rate(&round.0),
            rate(&round.1),
            ratio(round),
            round.0.cpu_us_per_request(),
            round.1.cpu_us_per_request(),
            cpu_ratio(round)
        );
    }
    let median_of = |key: &dyn Fn(&(Figures, Figures)) -> f64| {
        let mut values: Vec<f64> = rounds.iter().map(key).collect();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied()
    };
    let mut order: Vec<usize> = (0..rounds.len()).collect();
    order.sort_by(|&a, &b| ratio(&rounds[a]).total_cmp(&ratio(&rounds[b])));
    let median = order.get(order.len() / 2).map(|&i| &rounds[i])?;
    for (name, f) in [(names.0, &median.0), (names.1, &median.1)] {
        println!(
            "{name}: {:9.0} requests/s   p50 {:7.0} us   p99 {:7.0} us   server CPU {:6.1} us/request",
            rate(f),
            f.p50_us,
            f.p99_us,
            f.cpu_us_per_request()
        );
    }
    let ratios = Ratios {
        throughput: median_of(&ratio)?,
        cpu: median_of(&cpu_ratio)?,
    };
    println!(
        "ratio (median round): {:.2}x the baseline's throughput; {:.2}x its server CPU per request (the figure to compare)",
        ratios.throughput, ratios.cpu
    );
    Some(ratios)
}

/// The run; the median ratios (for `zgate bench all`).
pub(super) async fn run(args: CsmBenchArgs) -> Result<Ratios, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut config = ServeConfig::default();
    config.csm.listen = "127.0.0.1:0".parse().map_err(|_| "address")?;
    config.ha.listen = "127.0.0.1:0".parse().map_err(|_| "address")?;
    config.rest.enabled = false;
    config.csm.max_connections = args.clients + 16;
    config.csm.limits.max_connections_per_address = args.clients + 16;
    config.store.dir = dir.path().to_owned();
    // Each server on runtimes of its own, so that its CPU time can be read apart
    // from the clients' (bench_cpu.rs).
    let (zgate_rt, base_rt, service) = start_zgate(config, PASSWORD).await?;
    let ca = std::fs::read(service.ca_file.as_ref().ok_or("no CA")?).map_err(|e| e.to_string())?;
    let tls = Arc::new(ClientTls::from_pem(&ca, "localhost", None).map_err(|e| e.to_string())?);
    println!(
        "{} TLS clients; {} s flat out, then {} s at {} requests/s (server CPU); request: {{\"op\":\"server.status\"}}",
        args.clients, args.seconds, args.seconds, args.rate
    );
    let pki = ThrowawayPki::new("bench echo CA").map_err(|e| e.to_string())?;
    let id = pki.issue(&["localhost"]).map_err(|e| e.to_string())?;
    let server = ServerTls::from_pem(id.cert_pem.as_bytes(), id.key_pem.as_bytes(), None)
        .map_err(|e| e.to_string())?;
    let echo_addr = base_rt
        .run(echo_server(server))
        .await?
        .map_err(|e| e.to_string())?;
    let echo_tls = Arc::new(
        ClientTls::from_pem(pki.ca_pem.as_bytes(), "localhost", None).map_err(|e| e.to_string())?,
    );
    let mut rounds = Vec::new();
    for _ in 0..args.rounds.max(1) {
        // Every client has 5 s to connect and log on (argon2).
        let (zgate_phases, base_phases) = Phases::pair(
            Duration::from_secs(5),
            args.seconds,
            args.rate,
            args.clients,
        );
        let (gateway, echo) = tokio::join!(
            load(
                service.addr(),
                tls.clone(),
                &args,
                (&zgate_rt, zgate_phases)
            ),
            load(echo_addr, echo_tls.clone(), &args, (&base_rt, base_phases)),
        );
        rounds.push((gateway?, echo?));
    }
    zgate_rt.run(service.shutdown()).await?;
    report(("zgate CSM protocol", "TLS echo baseline "), &rounds).ok_or_else(|| "no rounds".into())
}

/// Runs `clients` connections against `addr` (see [`Phases`]); returns the figures,
/// with the CPU time of `server`'s threads over the paced window.
async fn load(
    addr: SocketAddr,
    tls: Arc<ClientTls>,
    args: &CsmBenchArgs,
    (server, phases): (&ServerRuntime, Phases),
) -> Result<Figures, String> {
    let mut tasks = Vec::new();
    for index in 0..args.clients {
        let tls = tls.clone();
        let first_paced = phases.first_paced(index, args.clients);
        tasks.push(tokio::spawn(async move {
            client(addr, tls, phases, first_paced).await
        }));
    }
    let cpu = phases.paced_cpu_ns(server).await;
    let mut runs = Vec::new();
    for t in tasks {
        runs.push(t.await.map_err(|e| e.to_string())??);
    }
    Ok(figures(runs, args.seconds as f64, cpu))
}

/// One client: logs on, then request/reply flat out, then paced (see [`Phases`]).
async fn client(
    addr: SocketAddr,
    tls: Arc<ClientTls>,
    phases: Phases,
    first_paced: Instant,
) -> Result<ClientRun, String> {
    let mut stream = logging_on(addr, &tls, PASSWORD, Duration::from_secs(10)).await?;
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::with_capacity(8192);
    let mut out = BytesMut::new();
    next_frame(&mut stream, &mut codec, &mut buf).await?;
    tokio::time::sleep_until(phases.start.into()).await;
    let mut run = ClientRun::default();
    let mut correlation = 2u32;
    let mut next_paced = first_paced;
    loop {
        let now = Instant::now();
        let paced = now >= phases.saturated_until;
        if paced {
            if next_paced >= phases.paced_until {
                break;
            }
            tokio::time::sleep_until(next_paced.into()).await;
            next_paced += phases.interval;
        }
        out.clear();
        CsmMessage::own(
            correlation,
            CsmBody::Request {
                json: r#"{"op":"server.status"}"#.into(),
            },
        )
        .encode(&mut out);
        let t = Instant::now();
        stream.write_all(&out).await.map_err(|e| e.to_string())?;
        next_frame(&mut stream, &mut codec, &mut buf).await?;
        if paced {
            run.paced += 1;
        } else {
            run.latencies.push(t.elapsed());
        }
        correlation = correlation.wrapping_add(1).max(2);
    }
    Ok(run)
}

/// A TLS connection to the CSM listener at `addr` (Nagle off) on which the logon of
/// ADMIN with `password` has been sent; its reply is the next frame to read.
pub(super) async fn logging_on(
    addr: SocketAddr,
    tls: &ClientTls,
    password: &str,
    handshake: Duration,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut stream = tls
        .connect(tcp, handshake)
        .await
        .map_err(|e| e.to_string())?;
    let logon = LogonRequest {
        user: Ebcdic::new("ADMIN").map_err(|e| e.to_string())?,
        appl: Ebcdic::new("CSM").map_err(|e| e.to_string())?,
        kind: CredentialKind::PASSPHRASE,
        heartbeat_secs: 0,
        credential: Credential::new(password).ok_or("credential")?,
    };
    let mut out = BytesMut::new();
    CsmMessage::control(1, Control::LogonRequest(logon)).encode(&mut out);
    stream.write_all(&out).await.map_err(|e| e.to_string())?;
    Ok(stream)
}

pub(super) async fn next_frame<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    codec: &mut FrameCodec,
    buf: &mut BytesMut,
) -> Result<zgate::codec::frame::Frame, String> {
    loop {
        if let Some(frame) = codec.decode(buf).map_err(|e| e.to_string())? {
            return Ok(frame);
        }
        if stream.read_buf(buf).await.map_err(|e| e.to_string())? == 0 {
            return Err("the server closed the connection".into());
        }
    }
}

/// The baseline: every frame answered with a reply frame (RC 0, the same body).
async fn echo_server(tls: ServerTls) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let tls = Arc::new(tls);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let tls = tls.clone();
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let Ok(mut stream) = tls.accept(tcp, Duration::from_secs(10)).await else {
                    return;
                };
                let mut codec = FrameCodec::default();
                let mut buf = BytesMut::with_capacity(8192);
                let mut out = BytesMut::new();
                while let Ok(frame) = next_frame(&mut stream, &mut codec, &mut buf).await {
                    out.clear();
                    let h = frame.header;
                    out.put_slice(&[0xE9, 0xC7, h.version, h.protocol.0]);
                    out.put_u16(h.message_type);
                    out.put_u16(0x8000);
                    out.put_u32(h.correlation);
                    out.put_u32(frame.body.len() as u32 + 4);
                    out.put_u32(0);
                    out.put_slice(&frame.body);
                    if stream.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(addr)
}
