//! `zgate bench zos-connections`: how many z/OS host connections one gateway process
//! holds, with heartbeats flowing, and what each costs in memory.
//!
//! The emulated z/OS runs as a separate `zgate peer zos` process (so the measured
//! process holds only the gateway side); its PTKTDATA profile has replay protection
//! off, as RACF's `NO REPLAY PROTECTION` for applications that open many sessions in
//! the same second. The figure reported is the growth of this process's resident set
//! divided by the number of connections. `--tls` runs every connection inside TLS,
//! with a CA and host certificate made for the run.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use zgate::client::zos::{self, Authentication, ConnectorEvent, ZosConnectorConfig};
use zgate::passticket::{LegacyGenerator, LegacyKey};
use zgate::tls::{ClientTls, ThrowawayPki};

#[derive(Debug, Args)]
pub struct ZosConnectionsArgs {
    /// Connections to open.
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Heartbeat interval to propose, seconds (the emulated host grants 5 to 300).
    #[arg(long, default_value_t = 5)]
    heartbeat_secs: u16,
    /// How long to hold the connections once all are up, seconds.
    #[arg(long, default_value_t = 20)]
    hold_secs: u64,
    /// Run every connection inside TLS (throwaway certificates made for the run).
    #[arg(long)]
    tls: bool,
}

fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub fn zos_connections(args: ZosConnectionsArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zgate bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: ZosConnectionsArgs) -> Result<(), String> {
    // A throw-away key for this run only; it is passed to the child through its
    // environment and never printed.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_nanos() as u64;
    let key_hex = format!("{:016X}", nanos.rotate_left(17) ^ 0x5A5A_A5A5_0F0F_F0F0);
    // A private (0700), unpredictable directory: it holds a TLS private key.
    let tempdir = tempfile::Builder::new()
        .prefix("zgate-bench-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let dir = tempdir.path().to_path_buf();
    let config = dir.join("zos.toml");
    let mut text = format!(
        "listen = \"127.0.0.1:0\"\nmax_connections = {}\n[limits]\nmax_connections_per_address = 0\n[[users]]\nuser = \"HOSTUSR\"\n[[ptktdata]]\nname = \"IOSHMCSM\"\nlegacy_key_env = \"ZGATE_BENCH_KEY\"\nreplay_protection = false\n",
        args.count + 16
    );
    let client_tls = if args.tls {
        let err = |e: zgate::tls::TlsError| e.to_string();
        let pki = ThrowawayPki::new("zgate bench CA").map_err(err)?;
        let host = pki.issue(&["localhost"]).map_err(err)?;
        let (cert, key) = (dir.join("host.pem"), dir.join("host.key"));
        std::fs::write(&cert, &host.cert_pem).map_err(|e| e.to_string())?;
        std::fs::write(&key, host.key_pem.as_bytes()).map_err(|e| e.to_string())?;
        text.push_str(&format!("[tls]\ncert = {cert:?}\nkey = {key:?}\n"));
        Some(ClientTls::from_pem(pki.ca_pem.as_bytes(), "localhost", None).map_err(err)?)
    } else {
        None
    };
    std::fs::write(&config, text).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .args(["peer", "zos", "--config"])
        .arg(&config)
        .env("ZGATE_BENCH_KEY", &key_hex)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the peer: {e}"))?;
    let stdout = child.stdout.take().ok_or("peer has no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("unexpected peer output {line:?}"))?;
    let peer_pid = child.id().to_string();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let result = runtime.block_on(async {
        let before = rss_kib("self").unwrap_or(0);
        let connected = Arc::new(AtomicUsize::new(0));
        let disconnected = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let key = LegacyKey::from_hex(&key_hex).map_err(|e| e.to_string())?;
        let mut handles = Vec::with_capacity(args.count);
        for _ in 0..args.count {
            let mut cfg = ZosConnectorConfig::new(addr);
            cfg.heartbeat_secs = args.heartbeat_secs;
            cfg.connect_timeout = Duration::from_secs(30);
            cfg.logon_timeout = Duration::from_secs(30);
            cfg.tls = client_tls.clone();
            let mut h = zos::spawn(cfg, Authentication::LegacyPassTicket(LegacyGenerator::new(&key)))
                .map_err(|e| e.to_string())?;
            let (c, d) = (connected.clone(), disconnected.clone());
            // Drain the connector's events (it stops reading while they pile up).
            let drain = tokio::spawn(async move {
                while let Some(ev) = h.next_event().await {
                    match ev {
                        ConnectorEvent::Connected { .. } => {
                            c.fetch_add(1, Ordering::Relaxed);
                        }
                        ConnectorEvent::Disconnected { .. } => {
                            d.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {}
                    }
                }
                h
            });
            handles.push(drain);
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while connected.load(Ordering::Relaxed) < args.count && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let setup = start.elapsed();
        let up = connected.load(Ordering::Relaxed);
        println!(
            "connections up: {up}/{}{} in {:.1} s",
            args.count,
            if args.tls { " (TLS)" } else { "" },
            setup.as_secs_f64()
        );
        tokio::time::sleep(Duration::from_secs(args.hold_secs)).await;
        let after = rss_kib("self").unwrap_or(0);
        let peer_rss = rss_kib(&peer_pid).unwrap_or(0);
        let up_after = connected.load(Ordering::Relaxed);
        let drops = disconnected.load(Ordering::Relaxed);
        println!(
            "after holding {} s with {} s heartbeats: {} logons, {} disconnects",
            args.hold_secs, args.heartbeat_secs, up_after, drops
        );
        let per_conn = (after.saturating_sub(before)) as f64 / up.max(1) as f64;
        println!("gateway RSS: {before} KiB before, {after} KiB after = {per_conn:.1} KiB per connection (target < 50)");
        println!(
            "peer RSS: {peer_rss} KiB = {:.1} KiB per connection",
            peer_rss as f64 / up.max(1) as f64
        );
        for h in handles {
            h.abort();
        }
        Ok::<(), String>(())
    });
    let _ = child.kill();
    let _ = child.wait();
    drop(tempdir);
    result
}
