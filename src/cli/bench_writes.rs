//! `zgate bench writes`: durable changes through the gateway beside the store's raw
//! group-commit rate, in one run, on the same disk.
//!
//! 1. `zgate serve` in this process (its own runtime, a temp store), `--clients` TLS
//!    clients (64 by default), each logged on over the CSM protocol and changing its
//!    own session's description as fast as the answers come, for `--seconds`. Every
//!    answer is a durable change (the gateway replies once its records are stored).
//! 2. The store alone: as many writer threads committing the records one such change
//!    produces (the session and its audit entry) through the committer, as long.
//!
//! Printed: changes/s and latency quantiles of each, their ratio, and the server's CPU
//! time per change (its runtime's threads and the store's committer, from schedstat).
//! Figures only; nothing is asserted.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use clap::Args;
use tokio::io::AsyncWriteExt;
use zgate::codec::frame::FrameCodec;
use zgate::gateway::service::ServeConfig;
use zgate::policy::SessionType;
use zgate::policy::engine::{Command, Engine, EngineConfig, Record};
use zgate::proto::csm::{CsmBody, CsmMessage};
use zgate::store::{Committer, Store};
use zgate::tls::ClientTls;

use super::bench_cpu::{start_zgate_on, threads_cpu_ns};
use super::bench_csm::{logging_on, next_frame};

const PASSWORD: &str = "bench-writes-pw";

#[derive(Debug, Clone, Args)]
pub struct WritesBenchArgs {
    /// Concurrent TLS clients (and writer threads in the store-only run).
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Seconds of each run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Directory of the store files (on the disk to measure; default the temp dir).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Other sessions on the server during the run (made before it); `session.list`
    /// is timed afterwards.
    #[arg(long, default_value_t = 0)]
    sessions: usize,
}

impl WritesBenchArgs {
    /// The short run of `zgate bench all`.
    pub(super) fn short() -> WritesBenchArgs {
        WritesBenchArgs {
            clients: 64,
            seconds: 3,
            dir: None,
            sessions: 0,
        }
    }
}

pub fn writes(args: WritesBenchArgs) -> ExitCode {
    super::block_on("bench", async move { run(args).await.map(|_| ()) })
}

/// Changes done and their latency quantiles (microseconds).
struct Rate {
    changes: u64,
    seconds: f64,
    p50_us: f64,
    p99_us: f64,
}

impl Rate {
    fn of(mut latencies: Vec<Duration>, seconds: f64) -> Rate {
        latencies.sort_unstable();
        let at = |q: f64| {
            let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
            latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
        };
        Rate {
            changes: latencies.len() as u64,
            seconds,
            p50_us: at(0.5),
            p99_us: at(0.99),
        }
    }

    fn per_sec(&self) -> f64 {
        self.changes as f64 / self.seconds.max(1e-9)
    }

    fn line(&self, name: &str) -> String {
        format!(
            "{name}: {:9.0} changes/s  p50 {:8.0} us  p99 {:8.0} us  ({} in {:.1} s)",
            self.per_sec(),
            self.p50_us,
            self.p99_us,
            self.changes,
            self.seconds
        )
    }
}

/// The gateway's and the store's rates, as `bench all` reports them.
pub(super) struct WriteFigures {
    pub(super) gateway_per_sec: f64,
    pub(super) store_per_sec: f64,
}

pub(super) async fn run(args: WritesBenchArgs) -> Result<WriteFigures, String> {
    let dir = match &args.dir {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .map_err(|e| format!("temp dir: {e}"))?;
    let clients = args.clients.max(1);
    let seconds = args.seconds.max(1);
    let mut config = ServeConfig::default();
    config.csm.listen = "127.0.0.1:0".parse().map_err(|_| "address")?;
    config.ha.listen = "127.0.0.1:0".parse().map_err(|_| "address")?;
    config.rest.enabled = false;
    config.csm.max_connections = clients + 16;
    config.csm.limits.max_connections_per_address = clients + 16;
    config.store.dir = dir.path().join("gateway");
    // Every core for the server, as `zgate serve` has (the clients share them).
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (zgate_rt, _base_rt, service) = start_zgate_on(config, PASSWORD, workers).await?;
    let ca = std::fs::read(service.ca_file.as_ref().ok_or("no CA")?).map_err(|e| e.to_string())?;
    let tls = Arc::new(ClientTls::from_pem(&ca, "localhost", None).map_err(|e| e.to_string())?);
    println!(
        "{clients} TLS clients, each changing its own session's description ({{\"op\":\"session.description\"}}) for {seconds} s; disk: {}",
        dir.path().display()
    );
    let addr = service.addr();
    if args.sessions > 0 {
        let t = Instant::now();
        fill(addr, &tls, args.sessions).await?;
        println!(
            "{} other sessions made first ({:.0} sessions/s)",
            args.sessions,
            args.sessions as f64 / t.elapsed().as_secs_f64()
        );
    }
    let start = Instant::now() + Duration::from_secs(5);
    let until = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for index in 0..clients {
        let tls = tls.clone();
        tasks.push(tokio::spawn(async move {
            client(addr, tls, index, start, until).await
        }));
    }
    // The server's CPU (its runtime and the store's committer) over the window.
    tokio::time::sleep_until(start.into()).await;
    let cpu_before = threads_cpu_ns("zgate-server") + threads_cpu_ns("zgate-store");
    tokio::time::sleep_until(until.into()).await;
    let cpu_after = threads_cpu_ns("zgate-server") + threads_cpu_ns("zgate-store");
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.map_err(|e| e.to_string())??);
    }
    let gateway = Rate::of(latencies, seconds as f64);
    let gateway_cpu_us =
        cpu_after.saturating_sub(cpu_before) as f64 / 1e3 / gateway.changes.max(1) as f64;
    println!(
        "{}; server CPU {gateway_cpu_us:.1} us/change",
        gateway.line("gateway (CSM protocol, durable)")
    );
    if args.sessions > 0 {
        let (first, median, bytes) = time_list(addr, &tls).await?;
        println!(
            "session.list of {} sessions: first {:.1} ms, median {:.1} ms of 7 ({:.1} MB)",
            args.sessions + clients,
            first.as_secs_f64() * 1e3,
            median.as_secs_f64() * 1e3,
            bytes as f64 / 1e6
        );
    }
    zgate_rt.run(service.shutdown()).await?;

    let records = change_records();
    let store = tokio::task::spawn_blocking({
        let path = dir.path().join("raw.redb");
        move || raw_group_commit(&path, &records, clients, seconds)
    })
    .await
    .map_err(|e| e.to_string())??;
    println!("{}", store.line("store alone (group commit)     "));
    let ratio = gateway.per_sec() / store.per_sec().max(1e-9);
    println!("gateway / store: {ratio:.2}");
    Ok(WriteFigures {
        gateway_per_sec: gateway.per_sec(),
        store_per_sec: store.per_sec(),
    })
}

/// One client: logs on, creates its session, then changes its description flat out
/// between `start` and `until`; returns each change's latency.
async fn client(
    addr: SocketAddr,
    tls: Arc<ClientTls>,
    index: usize,
    start: Instant,
    until: Instant,
) -> Result<Vec<Duration>, String> {
    let mut stream = logging_on(addr, &tls, PASSWORD, Duration::from_secs(10)).await?;
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::with_capacity(8192);
    let mut out = BytesMut::new();
    next_frame(&mut stream, &mut codec, &mut buf).await?;
    let name = format!("W{index}");
    let mut correlation = 2u32;
    let mut ask = async |json: String| -> Result<String, String> {
        out.clear();
        CsmMessage::own(correlation, CsmBody::Request { json }).encode(&mut out);
        correlation = correlation.wrapping_add(1).max(2);
        stream.write_all(&out).await.map_err(|e| e.to_string())?;
        let frame = next_frame(&mut stream, &mut codec, &mut buf).await?;
        Ok(String::from_utf8_lossy(&frame.body).into_owned())
    };
    let created = ask(format!(
        r#"{{"op":"session.create","name":"{name}","type":"FC","description":"bench"}}"#
    ))
    .await?;
    if !accepted(&created) {
        return Err(format!("session {name} was not created: {created}"));
    }
    tokio::time::sleep_until(start.into()).await;
    let mut latencies = Vec::new();
    let mut n = 0u64;
    while Instant::now() < until {
        let t = Instant::now();
        let answer = ask(format!(
            r#"{{"op":"session.description","name":"{name}","description":"change {n}"}}"#
        ))
        .await?;
        if !accepted(&answer) {
            return Err(format!("a change was refused: {answer}"));
        }
        latencies.push(t.elapsed());
        n += 1;
    }
    Ok(latencies)
}

/// Makes `n` sessions, many requests in flight at once.
async fn fill(addr: SocketAddr, tls: &ClientTls, n: usize) -> Result<(), String> {
    let mut stream = logging_on(addr, tls, PASSWORD, Duration::from_secs(10)).await?;
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::with_capacity(8192);
    next_frame(&mut stream, &mut codec, &mut buf).await?;
    let mut out = BytesMut::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(32) {
        out.clear();
        for &i in chunk {
            let json = format!(
                r#"{{"op":"session.create","name":"F{i:06}","type":"{}","description":"filler"}}"#,
                if i % 2 == 0 { "FC" } else { "SGC" }
            );
            CsmMessage::own(2 + i as u32, CsmBody::Request { json }).encode(&mut out);
        }
        stream.write_all(&out).await.map_err(|e| e.to_string())?;
        for _ in chunk {
            let frame = next_frame(&mut stream, &mut codec, &mut buf).await?;
            let reply = String::from_utf8_lossy(&frame.body).into_owned();
            if !accepted(&reply) {
                return Err(format!("a filler session was not made: {reply}"));
            }
        }
    }
    Ok(())
}

/// `session.list`, seven times: the first's time (computed on the engine's task),
/// the median (later ones are served from the read cache), and the reply's size.
async fn time_list(
    addr: SocketAddr,
    tls: &ClientTls,
) -> Result<(Duration, Duration, usize), String> {
    let mut stream = logging_on(addr, tls, PASSWORD, Duration::from_secs(10)).await?;
    let mut codec = FrameCodec::new(zgate::codec::frame::MAX_MAX_BODY);
    let mut buf = BytesMut::with_capacity(1 << 20);
    next_frame(&mut stream, &mut codec, &mut buf).await?;
    let mut out = BytesMut::new();
    let mut times = Vec::new();
    let mut bytes = 0;
    for i in 0..7u32 {
        out.clear();
        let json = r#"{"op":"session.list"}"#.to_owned();
        CsmMessage::own(2 + i, CsmBody::Request { json }).encode(&mut out);
        let t = Instant::now();
        stream.write_all(&out).await.map_err(|e| e.to_string())?;
        let frame = next_frame(&mut stream, &mut codec, &mut buf).await?;
        times.push(t.elapsed());
        bytes = frame.body.len();
    }
    let first = times[0];
    times.sort_unstable();
    Ok((first, times[times.len() / 2], bytes))
}

/// Whether a reply's message is informational (the change was made).
fn accepted(reply: &str) -> bool {
    let json = reply.find('{').map_or("", |at| &reply[at..]);
    serde_json::from_str::<serde_json::Value>(json)
        .ok()
        .and_then(|v| v["msg"].as_str().map(|m| m.ends_with('I')))
        .unwrap_or(false)
}

/// The records one description change leaves: the session, and its audit entry.
fn change_records() -> Vec<Record> {
    const HASH: &str = "$argon2id$v=19$m=256,t=1,p=1$dPSvPsnwvszeWFQcHoNUtQ$VkHyf3shwuBN9RYKSA5exsDDhoO9YAOy2Lqxr89Cn1o";
    let mut engine = Engine::new(EngineConfig::default());
    engine.bootstrap_admin("admin", HASH.into(), 0);
    let create = Command::CreateSession {
        name: "W0".into(),
        kind: SessionType::Fc,
        description: "bench".into(),
    };
    engine.handle_command("admin", create, 1);
    while engine.poll_record().is_some() {}
    let change = Command::SetDescription {
        session: "W0".into(),
        description: "change 0".into(),
    };
    engine.handle_command("admin", change, 2);
    std::iter::from_fn(|| engine.poll_record()).collect()
}

/// `writers` threads committing `records` through one committer for `seconds`.
fn raw_group_commit(
    path: &std::path::Path,
    records: &[Record],
    writers: usize,
    seconds: u64,
) -> Result<Rate, String> {
    let store = Store::open(path).map_err(|e| e.to_string())?;
    let (committer, handle) = Committer::spawn(store).map_err(|e| e.to_string())?;
    let until = Instant::now() + Duration::from_secs(seconds);
    let threads: Vec<_> = (0..writers)
        .map(|_| {
            let handle = handle.clone();
            let records = records.to_vec();
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                while Instant::now() < until {
                    let t = Instant::now();
                    if handle.commit(&records).is_err() {
                        break;
                    }
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in threads {
        latencies.extend(t.join().map_err(|_| "a writer panicked")?);
    }
    drop(handle);
    committer.finish().ok_or("the committer failed")?;
    Ok(Rate::of(latencies, seconds as f64))
}
