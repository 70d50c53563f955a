//! `zgate bench writes`: durable changes through the gateway beside the store's raw
//! group-commit rate, in one run, on the same disk.
//!
//! 1. `zgate serve` in this process (its own runtime, a temp store), `--clients` TLS
//!    clients (64 by default), each logged on over the CSM protocol and changing its
//!    own session's description as fast as the answers come, for `--seconds`. Every
//!    answer is a durable change (the gateway replies once its records are stored).
//!    With `--then-sessions`, a second gateway holding that many more sessions, the
//!    two measured in alternating windows (three rounds by default, each gateway
//!    first in every other round), so that the machine's changing load falls on
//!    both alike.
//! 2. The store alone: as many writer threads committing the records one such change
//!    produces (the session and its audit entry) through the committer, as long, in
//!    a window of its own after each round of the gateways' windows (the same
//!    store file reopened), so that the ratio of the two is taken under the same
//!    load of the (shared) machine; with several rounds, each round's ratio is
//!    printed too.
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
use tokio::sync::watch;
use zgate::codec::frame::FrameCodec;
use zgate::gateway::service::ServeConfig;
use zgate::policy::SessionType;
use zgate::policy::engine::{Command, Engine, EngineConfig, Record};
use zgate::proto::csm::{CsmBody, CsmMessage};
use zgate::proto::{Control, Message, Payload, ReplyStatus};
use zgate::store::{Committer, Store};
use zgate::tls::ClientTls;

use super::bench_cpu::{ServerRuntime, start_zgate_on, threads_cpu_ns};
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
    /// Then make this many more sessions and measure again with the same clients:
    /// the two rates side by side (issue: the cost of a change must not grow with
    /// the number of sessions).
    #[arg(long, default_value_t = 0)]
    then_sessions: usize,
    /// The servers' `store.snapshot_every` (0: no snapshots; default the server's).
    #[arg(long)]
    snapshot_every: Option<u64>,
    /// Rounds of windows (each gateway's, then the store alone's); default 3 with
    /// `--then-sessions`, else 1. More, shorter rounds follow a machine whose load
    /// moves from second to second; the median of the rounds' ratios is printed.
    #[arg(long)]
    rounds: Option<usize>,
}

impl WritesBenchArgs {
    /// The short run of `zgate bench all`.
    pub(super) fn short() -> WritesBenchArgs {
        WritesBenchArgs {
            clients: 64,
            seconds: 3,
            dir: None,
            sessions: 0,
            then_sessions: 0,
            snapshot_every: None,
            rounds: None,
        }
    }
}

pub fn writes(args: WritesBenchArgs) -> ExitCode {
    super::block_on("bench", async move { run(args).await.map(|_| ()) })
}

/// Changes done and their latency quantiles (microseconds).
struct Rate {
    /// Each change's latency, sorted.
    latencies: Vec<Duration>,
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
        let (p50_us, p99_us) = (at(0.5), at(0.99));
        Rate {
            latencies,
            seconds,
            p50_us,
            p99_us,
        }
    }

    /// The windows taken as one run.
    fn merged(windows: &[Rate]) -> Rate {
        let latencies = windows.iter().flat_map(|w| w.latencies.iter().copied());
        Rate::of(latencies.collect(), windows.iter().map(|w| w.seconds).sum())
    }

    /// Changes done.
    fn changes(&self) -> u64 {
        self.latencies.len() as u64
    }

    fn per_sec(&self) -> f64 {
        self.changes() as f64 / self.seconds.max(1e-9)
    }

    fn line(&self, name: &str) -> String {
        format!(
            "{name}: {:9.0} changes/s  p50 {:8.0} us  p99 {:8.0} us  ({} in {:.1} s)",
            self.per_sec(),
            self.p50_us,
            self.p99_us,
            self.changes(),
            self.seconds
        )
    }
}

/// The gateway's and the store's rates, as `bench all` reports them.
pub(super) struct WriteFigures {
    pub(super) gateway_per_sec: f64,
    pub(super) store_per_sec: f64,
}

/// One `zgate serve` under load: its clients and the windows they measure in.
struct Gateway {
    runtime: ServerRuntime,
    service: zgate::gateway::service::Service,
    tls: Arc<ClientTls>,
    sessions: usize,
    windows: watch::Sender<Vec<(Instant, Instant)>>,
    clients: Vec<tokio::task::JoinHandle<Result<Vec<Vec<Duration>>, String>>>,
    cpu_ns: u64,
}

/// Starts a gateway holding `sessions` sessions in all (its clients' own included),
/// the fillers made before its clients log on.
async fn start_gateway(
    dir: &std::path::Path,
    clients: usize,
    sessions: usize,
    windows: usize,
    snapshot_every: Option<u64>,
) -> Result<Gateway, String> {
    let mut config = ServeConfig::default();
    config.csm.listen = "127.0.0.1:0".parse().map_err(|_| "address")?;
    config.ha.listen = "127.0.0.1:0".parse().map_err(|_| "address")?;
    config.rest.enabled = false;
    config.csm.max_connections = clients + 16;
    config.csm.limits.max_connections_per_address = clients + 16;
    config.store.dir = dir.to_owned();
    if let Some(every) = snapshot_every {
        config.store.snapshot_every = every;
    }
    // Every core for the server, as `zgate serve` has (the clients share them).
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (runtime, _baseline, service) = start_zgate_on(config, PASSWORD, workers).await?;
    let ca = std::fs::read(service.ca_file.as_ref().ok_or("no CA")?).map_err(|e| e.to_string())?;
    let tls = Arc::new(ClientTls::from_pem(&ca, "localhost", None).map_err(|e| e.to_string())?);
    let addr = service.addr();
    let fillers = sessions.saturating_sub(clients);
    if fillers > 0 {
        let t = Instant::now();
        fill(addr, &tls, 0, fillers).await?;
        println!(
            "{fillers} other sessions made ({:.0} sessions/s)",
            fillers as f64 / t.elapsed().as_secs_f64()
        );
    }
    let (windows_tx, watching) = watch::channel(Vec::new());
    let handles = (0..clients)
        .map(|index| {
            let tls = tls.clone();
            let watching = watching.clone();
            tokio::spawn(async move { client(addr, tls, index, watching, windows).await })
        })
        .collect();
    Ok(Gateway {
        runtime,
        service,
        tls,
        sessions: fillers + clients,
        windows: windows_tx,
        clients: handles,
        cpu_ns: 0,
    })
}

pub(super) async fn run(args: WritesBenchArgs) -> Result<WriteFigures, String> {
    let dir = match &args.dir {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .map_err(|e| format!("temp dir: {e}"))?;
    let clients = args.clients.max(1);
    let seconds = args.seconds.max(1);
    // With --then-sessions, two gateways (few sessions, many) measured in alternating
    // windows, three each: the machine's load drifts alike over both.
    let sizes: Vec<usize> = if args.then_sessions > 0 {
        vec![
            args.sessions + clients,
            args.sessions + args.then_sessions + clients,
        ]
    } else {
        vec![args.sessions + clients]
    };
    let rounds = args
        .rounds
        .unwrap_or(if sizes.len() > 1 { 3 } else { 1 })
        .max(1);
    println!(
        "{clients} TLS clients per gateway, each changing its own session's description ({{\"op\":\"session.description\"}}); {rounds} window(s) of {seconds} s per gateway; disk: {}",
        dir.path().display()
    );
    let mut gateways = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        gateways.push(
            start_gateway(
                &dir.path().join(format!("gateway{i}")),
                clients,
                size,
                rounds,
                args.snapshot_every,
            )
            .await?,
        );
    }
    // Every client logged on and its session made.
    tokio::time::sleep(Duration::from_secs(5)).await;
    // A snapshot of the state as made, before the windows: the state is written
    // whole once (store.md §6.2), and the windows see the snapshots of the changes
    // alone, as a server that has run a while does.
    for g in &gateways {
        let handle = g.service.gateway();
        let t = Instant::now();
        g.runtime
            .run(async move { handle.snapshot().await })
            .await?
            .map_err(|e| e.to_string())?;
        println!(
            "gateway with {} sessions: a snapshot of its state as made took {:.0} ms",
            g.sessions,
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    // The server's CPU (its runtime and the store's committer) over each window: the
    // idle gateway's threads take next to nothing.
    let server_cpu = || threads_cpu_ns("zgate-server") + threads_cpu_ns("zgate-store");
    // The store alone gets a window of its own in every round, after the gateways':
    // the machine's load (shared, it moves by a factor of three within the hour)
    // falls on both sides of the ratio alike.
    let records = Arc::new(change_records());
    let raw_path = dir.path().join("raw.redb");
    let mut raw_windows = Vec::new();
    for round in 0..rounds {
        // Each gateway goes first in every other round: neither always follows the
        // other's writes (the disk's write-back of a window spills into the next).
        let mut order: Vec<&mut Gateway> = gateways.iter_mut().collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for g in order {
            let start = Instant::now() + Duration::from_millis(300);
            let until = start + Duration::from_secs(seconds);
            g.windows.send_modify(|w| w.push((start, until)));
            tokio::time::sleep_until(start.into()).await;
            let before = server_cpu();
            tokio::time::sleep_until(until.into()).await;
            g.cpu_ns += server_cpu().saturating_sub(before);
            // Every client's last change of the window is answered before the next.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let raw = tokio::task::spawn_blocking({
            let (path, records) = (raw_path.clone(), records.clone());
            move || raw_group_commit(&path, &records, clients, seconds)
        })
        .await
        .map_err(|e| e.to_string())??;
        raw_windows.push(raw);
    }
    let mut rates = Vec::new();
    let mut by_round: Vec<Vec<f64>> = vec![Vec::new(); rounds];
    for g in &mut gateways {
        let mut latencies = Vec::new();
        let mut per_round = vec![0u64; rounds];
        for c in g.clients.drain(..) {
            for (round, window) in c.await.map_err(|e| e.to_string())??.into_iter().enumerate() {
                if let Some(count) = per_round.get_mut(round) {
                    *count += window.len() as u64;
                }
                latencies.extend(window);
            }
        }
        for (round, count) in per_round.into_iter().enumerate() {
            by_round[round].push(count as f64 / seconds as f64);
        }
        let rate = Rate::of(latencies, (rounds as u64 * seconds) as f64);
        let per_change = g.cpu_ns as f64 / 1e3 / rate.changes().max(1) as f64;
        println!(
            "{}; server CPU {per_change:.1} us/change",
            rate.line(&format!("gateway, {:>6} sessions (durable)", g.sessions))
        );
        rates.push(rate);
    }
    if let Some(g) = gateways.last().filter(|g| g.sessions > clients) {
        let times = time_list(g.service.addr(), &g.tls).await?;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "session.list of {} sessions ({:.1} MB): first {:.1} ms; after one change, median of 7 {:.1} ms; unchanged, median of 7 {:.1} ms",
            g.sessions,
            times.bytes as f64 / 1e6,
            ms(times.first),
            ms(times.after_change),
            ms(times.unchanged),
        );
    }
    let counts: Vec<usize> = gateways.iter().map(|g| g.sessions).collect();
    for g in gateways {
        g.runtime.run(g.service.shutdown()).await?;
    }

    let store = Rate::merged(&raw_windows);
    println!("{}", store.line("store alone (group commit)              "));
    for (rate, sessions) in rates.iter().zip(&counts) {
        let ratio = rate.per_sec() / store.per_sec().max(1e-9);
        println!("gateway with {sessions} sessions / store: {ratio:.2}");
    }
    if rounds > 1 {
        // Each round's ratio of each gateway to the store alone in that round.
        let ratios: Vec<Vec<f64>> = by_round
            .iter()
            .zip(&raw_windows)
            .map(|(gateway_rates, raw)| {
                let raw = raw.per_sec().max(1e-9);
                gateway_rates.iter().map(|g| g / raw).collect()
            })
            .collect();
        for (round, (of_round, raw)) in ratios.iter().zip(&raw_windows).enumerate() {
            let shown: Vec<String> = of_round.iter().map(|r| format!("{r:.2}")).collect();
            println!(
                "round {}: store alone {:.0} changes/s; gateway / store {}",
                round + 1,
                raw.per_sec(),
                shown.join(", ")
            );
        }
        for (i, sessions) in counts.iter().enumerate() {
            let mut of_gateway: Vec<f64> =
                ratios.iter().filter_map(|r| r.get(i).copied()).collect();
            of_gateway.sort_by(f64::total_cmp);
            let median = of_gateway.get(of_gateway.len() / 2).copied().unwrap_or(0.0);
            println!("gateway with {sessions} sessions / store, median of the rounds: {median:.2}");
        }
    }
    if rounds > 1 && counts.len() == 2 {
        // The two gateways' ratio round by round: the nearest pairs of windows.
        let mut of_rounds: Vec<f64> = by_round
            .iter()
            .filter_map(|r| match r.as_slice() {
                [few, many] => Some(many / few.max(1e-9)),
                _ => None,
            })
            .collect();
        let shown: Vec<String> = of_rounds.iter().map(|r| format!("{r:.2}")).collect();
        of_rounds.sort_by(f64::total_cmp);
        let median = of_rounds.get(of_rounds.len() / 2).copied().unwrap_or(0.0);
        println!(
            "gateway with {} sessions / with {}, round by round: {}; median {median:.2}",
            counts[1],
            counts[0],
            shown.join(", ")
        );
    }
    if let [few, many] = rates.as_slice() {
        println!(
            "gateway with {} sessions / with {}: {:.2}",
            counts[1],
            counts[0],
            many.per_sec() / few.per_sec().max(1e-9)
        );
    }
    Ok(WriteFigures {
        gateway_per_sec: rates.first().map_or(0.0, Rate::per_sec),
        store_per_sec: store.per_sec(),
    })
}

/// One client: logs on, creates its session, then changes its description flat out
/// between `start` and `until`; returns each change's latency.
async fn client(
    addr: SocketAddr,
    tls: Arc<ClientTls>,
    index: usize,
    mut windows: watch::Receiver<Vec<(Instant, Instant)>>,
    phases: usize,
) -> Result<Vec<Vec<Duration>>, String> {
    let mut stream = logging_on(addr, &tls, PASSWORD, Duration::from_secs(10)).await?;
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::with_capacity(8192);
    let mut out = BytesMut::new();
    next_frame(&mut stream, &mut codec, &mut buf).await?;
    let name = format!("W{index}");
    let mut correlation = 2u32;
    // The reply to each request; a heartbeat the server sends while this client
    // waits for its window (framing.md §8) is answered on the way.
    let mut ask = async |json: String| -> Result<String, String> {
        out.clear();
        let sent = correlation;
        CsmMessage::own(sent, CsmBody::Request { json }).encode(&mut out);
        correlation = correlation.wrapping_add(1).max(2);
        stream.write_all(&out).await.map_err(|e| e.to_string())?;
        loop {
            let frame = next_frame(&mut stream, &mut codec, &mut buf).await?;
            if frame.header.correlation == sent {
                return Ok(String::from_utf8_lossy(&frame.body).into_owned());
            }
            if let Ok(Message {
                correlation,
                body: Payload::Control(Control::HeartbeatRequest { seq }),
            }) = CsmMessage::decode(&frame)
            {
                out.clear();
                let status = ReplyStatus::OK;
                CsmMessage::control(correlation, Control::HeartbeatReply { status, seq })
                    .encode(&mut out);
                stream.write_all(&out).await.map_err(|e| e.to_string())?;
            }
        }
    };
    let created = ask(format!(
        r#"{{"op":"session.create","name":"{name}","type":"FC","description":"bench"}}"#
    ))
    .await?;
    if !accepted(&created) {
        return Err(format!("session {name} was not created: {created}"));
    }
    let mut n = 0u64;
    let mut phases_latencies = Vec::new();
    for phase in 0..phases {
        let window = windows
            .wait_for(|w| w.len() > phase)
            .await
            .map_err(|_| "the bench stopped".to_owned())?[phase];
        let (start, until) = window;
        tokio::time::sleep_until(start.into()).await;
        let mut latencies = Vec::new();
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
        phases_latencies.push(latencies);
    }
    Ok(phases_latencies)
}

/// Makes `n` sessions, many requests in flight at once.
async fn fill(addr: SocketAddr, tls: &ClientTls, first: usize, n: usize) -> Result<(), String> {
    let mut stream = logging_on(addr, tls, PASSWORD, Duration::from_secs(10)).await?;
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::with_capacity(8192);
    next_frame(&mut stream, &mut codec, &mut buf).await?;
    let mut out = BytesMut::new();
    for chunk in (first..first + n).collect::<Vec<_>>().chunks(32) {
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

/// `session.list` timed from request to its whole answer: the first read (nothing
/// rendered yet), then seven reads each after one change to one session (the rows
/// are kept: one is rendered again), then seven reads with no change between them
/// (the text is kept). Answers the first, the medians of the two kinds and the
/// list's size.
async fn time_list(addr: SocketAddr, tls: &ClientTls) -> Result<ListTimes, String> {
    let mut stream = logging_on(addr, tls, PASSWORD, Duration::from_secs(10)).await?;
    let mut codec = FrameCodec::new(zgate::codec::frame::MAX_MAX_BODY);
    let mut buf = BytesMut::with_capacity(1 << 20);
    next_frame(&mut stream, &mut codec, &mut buf).await?;
    let mut out = BytesMut::new();
    let mut correlation = 1u32;
    let mut ask = async |json: String, timed: bool| -> Result<(Duration, Vec<u8>), String> {
        correlation += 1;
        let mine = correlation;
        out.clear();
        CsmMessage::own(mine, CsmBody::Request { json }).encode(&mut out);
        let t = Instant::now();
        stream.write_all(&out).await.map_err(|e| e.to_string())?;
        // The reply to this request (a heartbeat the server sends meanwhile is not it).
        let frame = loop {
            let frame = next_frame(&mut stream, &mut codec, &mut buf).await?;
            if frame.header.correlation == mine {
                break frame;
            }
        };
        let took = t.elapsed();
        let body = frame.body.to_vec();
        if timed {
            // csm.md §3.2: a list is answered as `{"result":[...`; anything else (a
            // refusal, a timeout) would be timed as if it were one.
            let head = String::from_utf8_lossy(&body[..body.len().min(64)]);
            if !head.contains(r#"{"result":["#) {
                return Err(format!(
                    "session.list did not answer a list: {}",
                    String::from_utf8_lossy(&body)
                ));
            }
        } else if !accepted(&String::from_utf8_lossy(&body)) {
            return Err(format!(
                "the change before a read was refused: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        Ok((took, body))
    };
    let list = || r#"{"op":"session.list"}"#.to_owned();
    let (first, body) = ask(list(), true).await?;
    let mut after_change = Vec::new();
    for i in 0..7 {
        let change =
            format!(r#"{{"op":"session.description","name":"F000000","description":"read {i}"}}"#);
        ask(change, false).await?;
        after_change.push(ask(list(), true).await?.0);
    }
    let mut unchanged = Vec::new();
    for _ in 0..7 {
        unchanged.push(ask(list(), true).await?.0);
    }
    let median = |mut times: Vec<Duration>| {
        times.sort_unstable();
        times[times.len() / 2]
    };
    Ok(ListTimes {
        first,
        after_change: median(after_change),
        unchanged: median(unchanged),
        bytes: body.len(),
    })
}

/// What [`time_list`] measured.
struct ListTimes {
    first: Duration,
    after_change: Duration,
    unchanged: Duration,
    bytes: usize,
}

/// Whether a reply's message is informational (the change was made). Only `msg` is
/// taken out of the reply, borrowed where it can be: the clients share the
/// gateway's two cores, so what they spend is not spent serving.
fn accepted(reply: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Msg<'a> {
        #[serde(borrow)]
        msg: std::borrow::Cow<'a, str>,
    }
    let json = reply.find('{').map_or("", |at| &reply[at..]);
    serde_json::from_str::<Msg>(json).is_ok_and(|m| m.msg.ends_with('I'))
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
