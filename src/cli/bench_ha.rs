//! `zgate bench ha`: the active/standby pair (protocol-specs/ha.md §10), two
//! `zgate serve` services in this process on loopback, each with its own store on
//! the same disk.
//!
//! 1. A change's latency without a standby, then with a synchronous standby, in one
//!    run: `--clients` writers each changing its own session's description through
//!    the gateway's handle for `--seconds`; p50 and p99 of each.
//! 2. Replication: 64 writers (or `--clients`, if more) paced at `--rate` changes/s in
//!    all for `--seconds` on the pair;
//!    the achieved rate, and the largest lag (records not yet on the standby, and how
//!    long the oldest waited) sampled every 50 ms from the HA status.
//! 3. Takeover with `--sessions` sessions' worth of state: the standby takes over;
//!    the time to its first answered change.
//!
//! Figures only; nothing is asserted.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use zgate::clock::Clock;
use zgate::gateway::service::{ServeConfig, Service};
use zgate::gateway::{GatewayHandle, ServerRole};
use zgate::policy::SessionType;
use zgate::policy::engine::{Command, Outcome};

const PASSWORD: &str = "bench-ha-password";
const KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

#[derive(Debug, Clone, Args)]
pub struct HaBenchArgs {
    /// Concurrent writers in the latency runs.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Seconds of each timed run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Changes per second offered in the replication run.
    #[arg(long, default_value_t = 5000)]
    rate: u64,
    /// Sessions on the pair before the takeover.
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// `sync` or `async` acknowledgement for the replication run.
    #[arg(long, default_value = "sync")]
    ack: String,
}

pub fn ha(args: HaBenchArgs) -> ExitCode {
    super::block_on("bench ha", run(args))
}

fn config(dir: &std::path::Path, ack: zgate::gateway::ha::AckMode) -> Result<ServeConfig, String> {
    let mut c = ServeConfig::default();
    let any = "127.0.0.1:0".parse().map_err(|_| "address")?;
    c.csm.listen = any;
    c.ha.listen = any;
    c.rest.enabled = false;
    c.ha.ack = ack;
    c.ha.heartbeat_ms = 200;
    c.store.dir = dir.to_owned();
    c.store.key_env = Some("ZGATE_BENCH_HA_KEY".into());
    Ok(c)
}

async fn start(dir: &std::path::Path, ack: zgate::gateway::ha::AckMode) -> Result<Service, String> {
    let env = |v: &str| match v {
        "ZGATE_ADMIN_PASSWORD" => Some(PASSWORD.to_owned()),
        "ZGATE_BENCH_HA_KEY" => Some(KEY.to_owned()),
        _ => None,
    };
    Service::start(&config(dir, ack)?, &env, Clock::system())
        .await
        .map_err(|e| e.to_string())
}

fn quantile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

async fn ok(g: &GatewayHandle, command: Command) -> Result<(), String> {
    let reply = g
        .command("admin", command)
        .await
        .map_err(|e| e.to_string())?;
    match reply.outcome {
        Outcome::Refused(_) => Err(reply.message.text),
        _ => Ok(()),
    }
}

/// `clients` writers changing their own sessions' descriptions until `until`; every
/// change's latency. With `per_sec`, each writer is paced to its share.
async fn writers(
    g: &GatewayHandle,
    clients: usize,
    until: Instant,
    per_sec: Option<u64>,
) -> Result<Vec<Duration>, String> {
    let mut tasks = Vec::new();
    for w in 0..clients {
        let g = g.clone();
        tasks.push(tokio::spawn(async move {
            let session = format!("W{w}");
            let gap = per_sec.map(|r| Duration::from_secs_f64(clients as f64 / r.max(1) as f64));
            let mut next = Instant::now();
            let mut out = Vec::new();
            let mut n = 0u64;
            while Instant::now() < until {
                if let Some(gap) = gap {
                    next += gap;
                    tokio::time::sleep_until(next.into()).await;
                }
                n += 1;
                let t = Instant::now();
                ok(
                    &g,
                    Command::SetDescription {
                        session: session.clone(),
                        description: format!("change {n}"),
                    },
                )
                .await?;
                out.push(t.elapsed());
            }
            Ok::<_, String>(out)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.map_err(|e| e.to_string())??);
    }
    all.sort_unstable();
    Ok(all)
}

fn line(name: &str, lat: &[Duration], seconds: f64) -> String {
    format!(
        "{name}: {:8.0} changes/s  p50 {:7.0} us  p99 {:7.0} us  ({} changes)",
        lat.len() as f64 / seconds,
        quantile(lat, 0.5),
        quantile(lat, 0.99),
        lat.len()
    )
}

async fn synchronized(active: &Service) -> Result<(), String> {
    let ha = active.ha().ok_or("no HA")?;
    let give_up = Instant::now() + Duration::from_secs(120);
    while ha.status().link != zgate::gateway::ha::LinkState::Synchronized {
        if Instant::now() > give_up {
            let s = ha.status();
            return Err(format!(
                "the standby did not synchronise (link {}, last error {})",
                serde_json::to_value(s.link).unwrap_or_default(),
                s.last_error.unwrap_or_default()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn caught_up(active: &GatewayHandle, standby: &GatewayHandle) -> Result<(), String> {
    let target = active.ha_gate().durable.borrow().to_owned();
    let mut head = standby.ha_gate().durable.subscribe();
    tokio::time::timeout(Duration::from_secs(300), head.wait_for(|s| *s >= target))
        .await
        .map_err(|_| "the standby did not catch up in 300 s".to_owned())?
        .map_err(|e| e.to_string())?;
    Ok(())
}

async fn run(args: HaBenchArgs) -> Result<(), String> {
    use zgate::gateway::ha::AckMode;
    let ack = match args.ack.as_str() {
        "sync" => AckMode::Sync,
        "async" => AckMode::Async,
        other => return Err(format!("--ack {other}: sync or async")),
    };
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let a = start(&dir.path().join("a"), ack).await?;
    let b = start(&dir.path().join("b"), ack).await?;
    let (ga, gb) = (a.gateway(), b.gateway());
    let clients = args.clients.max(1);
    let seconds = args.seconds.max(1);
    // The paced run uses more writers, so that a writer's wait never limits the rate.
    let paced_writers = clients.max(64);
    for w in 0..paced_writers {
        ok(
            &ga,
            Command::CreateSession {
                name: format!("W{w}"),
                kind: SessionType::Fc,
                description: String::new(),
            },
        )
        .await?;
    }
    println!(
        "two zgate serve in this process, stores on {}; {clients} writers, {seconds} s a run",
        dir.path().display()
    );

    // 1. Without a standby, then with one, in sync mode.
    let alone = writers(
        &ga,
        clients,
        Instant::now() + Duration::from_secs(seconds),
        None,
    )
    .await?;
    println!("{}", line("no standby         ", &alone, seconds as f64));
    let b_ha = b.ha_addr().ok_or("no HA listener")?.to_string();
    a.ha()
        .ok_or("no HA")?
        .set_standby(&b_ha, "admin", PASSWORD)
        .await
        .map_err(|e| e.to_string())?;
    synchronized(&a).await?;
    let paired = writers(
        &ga,
        clients,
        Instant::now() + Duration::from_secs(seconds),
        None,
    )
    .await?;
    println!(
        "{}",
        line(
            &format!("{:5} standby      ", ack.name()),
            &paired,
            seconds as f64
        )
    );
    println!(
        "the standby adds {:.0} us at p50 and {:.0} us at p99",
        quantile(&paired, 0.5) - quantile(&alone, 0.5),
        quantile(&paired, 0.99) - quantile(&alone, 0.99)
    );

    // 2. Replication at a paced rate, lag sampled.
    let ha = a.ha().ok_or("no HA")?;
    let until = Instant::now() + Duration::from_secs(seconds);
    let sampler = {
        let ha = ha.clone();
        tokio::spawn(async move {
            let (mut records, mut ms) = (0u64, 0u64);
            while Instant::now() < until + Duration::from_millis(200) {
                let s = ha.status();
                records = records.max(s.lag_records);
                ms = ms.max(s.lag_ms);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (records, ms)
        })
    };
    let paced = writers(&ga, paced_writers, until, Some(args.rate)).await?;
    let (lag_records, lag_ms) = sampler.await.map_err(|e| e.to_string())?;
    caught_up(&ga, &gb).await?;
    println!(
        "{}; largest lag {lag_records} records, {lag_ms} ms",
        line(
            &format!("offered {:5}/s    ", args.rate),
            &paced,
            seconds as f64
        )
    );

    // 3. Takeover with many sessions.
    let t = Instant::now();
    for s in 0..args.sessions {
        ok(
            &ga,
            Command::CreateSession {
                name: format!("T{s:05}"),
                kind: if s % 2 == 0 {
                    SessionType::Fc
                } else {
                    SessionType::Sgc
                },
                description: format!("session {s}"),
            },
        )
        .await?;
    }
    caught_up(&ga, &gb).await?;
    println!(
        "{} sessions made on the active and replicated in {:.1} s",
        args.sessions,
        t.elapsed().as_secs_f64()
    );
    drop(ha);
    a.shutdown().await;
    let t = Instant::now();
    b.ha()
        .ok_or("no HA")?
        .takeover()
        .await
        .map_err(|e| e.to_string())?;
    let took = t.elapsed();
    ok(
        &gb,
        Command::SetDescription {
            session: "T00000".into(),
            description: "after the takeover".into(),
        },
    )
    .await?;
    let serving = t.elapsed();
    if gb.role() != ServerRole::Active {
        return Err("the standby is not active after the takeover".into());
    }
    let sessions = gb
        .read(|e| e.state().sessions.len())
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "takeover with {sessions} sessions: active in {:.0} ms, first change answered at {:.0} ms",
        took.as_secs_f64() * 1e3,
        serving.as_secs_f64() * 1e3
    );
    b.shutdown().await;
    Ok(())
}
