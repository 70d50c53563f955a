//! `zgate bench hyperswap`: a planned HyperSwap of 1,000 Metro Mirror pairs on
//! loopback, `--rounds` times (zos-hyperswap.md §3.7, ds8k.md §3.5).
//!
//! A simulated DS8000 complex of two images (H1, H2) with 1,000 full-duplex pairs;
//! an emulated z/OS with links to both and its applications writing; a client on
//! the z/OS protocol (as CSM) loads the configuration, enables HyperSwap and asks for
//! a planned swap. Measured: the applications' I/O hold, at the host
//! (`HyperSwapIo::io_holds`), and the command's round trip at the client. Between
//! rounds the pairs are failed back to the other direction and HyperSwap is loaded
//! and enabled again, so each round swaps the other way.
//!
//! Then the same through the product: the gateway (engine, store on a temp dir)
//! with a Metro Mirror session of those pairs managed with HyperSwap through the
//! emulated z/OS; CSM's `HyperSwap` command from the engine's command to its
//! completion (IWNR1026I), and `Start` back to Prepared between rounds
//! (policy.md §5.8). Figures only.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use zgate::client::connector::{Authentication, ConnectorConfig};
use zgate::client::{ds8k, zos};
use zgate::clock::Clock;
use zgate::codec::fields::Ebcdic;
use zgate::ds8k::{Fence, Lss, PairKey, VolumeId};
use zgate::passticket::{EnhancedGenerator, EnhancedKey, TicketType};
use zgate::peer::ds8k::{Ds8kService, Ds8kServiceConfig};
use zgate::peer::zos::{ZosPeer, ZosPeerConfig};
use zgate::proto::ds8k::Ds8kBody;
use zgate::proto::logon::Credential;
use zgate::proto::zos::ZosBody;
use zgate::proto::{ReturnCode, VolumePair, VolumeRef};

#[derive(Debug, Args)]
pub struct HyperSwapBenchArgs {
    /// Pairs in the HyperSwap configuration (at most 2,048: HS_LOAD_CONFIG's limit).
    #[arg(long, default_value_t = 1000)]
    pairs: u16,
    /// Planned swaps (alternating directions).
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// The applications' writes a second.
    #[arg(long, default_value_t = 2000)]
    writes_per_sec: u32,
    /// Skip the rounds through the gateway.
    #[arg(long)]
    no_gateway: bool,
}

const KEY: &str = "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF";
const HMC_HASH: &str = "$argon2id$v=19$m=256,t=1,p=1$kRd/U8sgFOmPpaBmHHTNrg$OjZACu3IWHR/84qOt5kl5rNbS+7vVxiX/y5BD1kBmNY";

pub fn hyperswap(args: HyperSwapBenchArgs) -> ExitCode {
    super::block_on("bench", run(args))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(mut v: Vec<Duration>) -> String {
    v.sort_unstable();
    match (v.first(), v.get(v.len() / 2), v.last()) {
        (Some(min), Some(med), Some(max)) => format!(
            "min {:7.2} ms   median {:7.2} ms   max {:7.2} ms",
            ms(*min),
            ms(*med),
            ms(*max)
        ),
        _ => "no figures".into(),
    }
}

async fn hmc(addr: std::net::SocketAddr) -> Result<ds8k::Ds8kHandle, String> {
    let mut c = ConnectorConfig::new(addr);
    c.user = "CSMADMIN".into();
    c.appl = "HMC".into();
    c.max_body = 1 << 20;
    c.request_timeout = Duration::from_secs(60);
    let mut h = ds8k::spawn(
        c,
        Authentication::Password(Credential::new("HMCPASS1").ok_or("pw")?),
    )
    .map_err(|e| e.to_string())?;
    // Every pair's suspension and return to full duplex is an event: read them, or
    // the connector stops reading replies too.
    let mut events = h.take_events();
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    Ok(h)
}

async fn ok(h: &ds8k::Ds8kHandle, body: Ds8kBody) -> Result<Ds8kBody, String> {
    let reply = h.request(body).await.map_err(|e| e.to_string())?;
    match reply.status() {
        Some(s) if s.rc == ReturnCode::OK => Ok(reply),
        _ => Err(format!("the DS8000 answered {}", reply.name())),
    }
}

fn hs_ok(r: &ZosBody) -> Result<(), String> {
    match r {
        ZosBody::HyperSwapReply { status, .. } if status.rc == ReturnCode::OK => Ok(()),
        ZosBody::HyperSwapReply { status, .. } => Err(format!(
            "z/OS refused: rc {} reason {:#06x}",
            status.rc.0, status.reason
        )),
        other => Err(format!("z/OS answered {}", other.name())),
    }
}

async fn run(args: HyperSwapBenchArgs) -> Result<(), String> {
    let n = args.pairs.clamp(1, 2048);
    let last = 0x1000 + n - 1;
    let volumes = |prefix: &str| {
        format!(
            "[[{prefix}volumes]]\nids = \"1000-{last:04X}\"\nckd_cylinders = 10\n[[{prefix}users]]\nuser = \"CSMADMIN\"\npassword_hash = \"{HMC_HASH}\"\n"
        )
    };
    let config = format!(
        "listen = \"127.0.0.1:0\"\nmax_body = 1048576\ntick_ms = 50\nimage = \"IBM.2107-75FA120\"\nhmc = \"HMC1\"\n[limits]\nallow_plaintext_passwords = true\n[mirror]\ncopy_tracks_per_sec = 1000000\n{}[[remote]]\nlisten = \"127.0.0.1:0\"\nimage = \"IBM.2107-75FA121\"\nhmc = \"HMC2\"\n{}",
        volumes(""),
        volumes("remote.")
    );
    let cfg: Ds8kServiceConfig = toml::from_str(&config).map_err(|e| e.to_string())?;
    let service = Ds8kService::from_config(cfg)
        .await
        .map_err(|e| e.to_string())?;
    let h2_addr = *service.remote_addrs().first().ok_or("no H2")?;
    let h1 = hmc(service.addr()).await?;
    let h2 = hmc(h2_addr).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lsss: Vec<(Lss, Lss)> = {
        let mut l: Vec<(Lss, Lss)> = (0..n)
            .map(|i| (VolumeId(0x1000 + i).lss(), VolumeId(0x1000 + i).lss()))
            .collect();
        l.dedup();
        l
    };
    let keys: Vec<PairKey> = (0..n)
        .map(|i| PairKey {
            source: VolumeId(0x1000 + i),
            target: VolumeId(0x1000 + i),
        })
        .collect();
    let text8 = |s: &str| Ebcdic::<8>::new(s).map_err(|e| e.to_string());
    let path = |remote: Ebcdic<8>| Ds8kBody::PathRequest {
        fence: Fence::NONE,
        remove: false,
        remote,
        options: zgate::proto::ds8k::messages::PATH_CONSISTENCY_GROUP,
        lss_pairs: lsss.clone(),
    };
    ok(&h1, path(text8("75FA121")?)).await?;
    ok(&h2, path(text8("75FA120")?)).await?;
    ok(
        &h1,
        Ds8kBody::PprcPairsRequest {
            fence: Fence::NONE,
            failback: false,
            options: zgate::proto::ds8k::messages::PPRC_NO_COPY,
            remote: text8("75FA121")?,
            pairs: keys.clone(),
        },
    )
    .await?;

    let env = |v: &str| match v {
        "BENCH_KEY" => Some(KEY.to_owned()),
        "BENCH_HMC" => Some("HMCPASS1".to_owned()),
        _ => None,
    };
    let link = |addr: std::net::SocketAddr, serial: &str| {
        format!(
            "addr = \"{addr}\"\nimage = \"IBM.2107-{serial}\"\nuser = \"CSMADMIN\"\npassword_env = \"BENCH_HMC\"\nrequest_timeout_secs = 60\n"
        )
    };
    let zos_cfg = format!(
        "listen = \"127.0.0.1:0\"\nsysplex = \"PLEX1\"\nsystem = \"SYSA\"\nmax_body = 1048576\n[[users]]\nuser = \"HOSTUSR\"\npermits = [\"HYPERSWAP\"]\n[[ptktdata]]\nname = \"IOSHMCSM\"\nenhanced_key_env = \"BENCH_KEY\"\n[storage]\n{}[[hyperswap_storage]]\n{}[workload]\nwrites_per_sec = {}\ntracks = 150\n",
        link(service.addr(), "75FA120"),
        link(h2_addr, "75FA121"),
        args.writes_per_sec.max(1)
    );
    let zcfg: ZosPeerConfig = toml::from_str(&zos_cfg).map_err(|e| e.to_string())?;
    let (host, io) = ZosPeer::with_hyperswap_io(zcfg, env, Clock::system())
        .await
        .map_err(|e| e.to_string())?;
    let io = io.ok_or("no HyperSwap I/O")?;
    let mut zos_cfg = ConnectorConfig::new(host.addr());
    zos_cfg.max_body = 1 << 20;
    zos_cfg.request_timeout = Duration::from_secs(60);
    let generator = EnhancedGenerator::new(
        &EnhancedKey::from_hex(KEY).map_err(|e| e.to_string())?,
        TicketType::Upper,
    );
    let csm = zos::spawn(zos_cfg, Authentication::EnhancedPassTicket(generator))
        .map_err(|e| e.to_string())?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let vref = |serial: &Ebcdic<8>, v: u16| VolumeRef {
        storage: serial.clone(),
        volume: v,
        device: 0,
    };
    let (a, b) = (text8("75FA120")?, text8("75FA121")?);
    let session = Ebcdic::<16>::new("MMBENCH").map_err(|e| e.to_string())?;
    let (mut holds, mut trips) = (Vec::new(), Vec::new());
    for round in 0..args.rounds.max(1) {
        // Production is on H1 in even rounds, on H2 in odd ones.
        let (prod, other) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let pairs: Vec<VolumePair> = keys
            .iter()
            .map(|k| VolumePair {
                first: vref(prod, k.source.0),
                second: vref(other, k.target.0),
            })
            .collect();
        for body in [
            ZosBody::LoadConfigRequest {
                session: session.clone(),
                pairs,
            },
            ZosBody::EnableRequest {
                session: session.clone(),
            },
        ] {
            hs_ok(&csm.request(body).await.map_err(|e| e.to_string())?)?;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = io.io_holds().lock().map(|h| h.len()).unwrap_or(0);
        let t = Instant::now();
        let reply = csm
            .request(ZosBody::PlannedSwapRequest {
                session: session.clone(),
            })
            .await
            .map_err(|e| e.to_string())?;
        trips.push(t.elapsed());
        hs_ok(&reply)?;
        if let Ok(h) = io.io_holds().lock()
            && h.len() > before
            && let Some(held) = h.back()
        {
            holds.push(*held);
        }
        // Mirror back the other way for the next round: failback from the new
        // production side, wait for full duplex.
        let new_prod = if round % 2 == 0 { &h2 } else { &h1 };
        // The freeze removed the old direction's paths; the new one needs its own.
        ok(new_prod, path(prod.clone())).await?;
        ok(
            new_prod,
            Ds8kBody::PprcPairsRequest {
                fence: Fence::NONE,
                failback: true,
                options: 0,
                remote: prod.clone(),
                pairs: keys.clone(),
            },
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let acked = io.acknowledged().len();
    println!(
        "hyperswap: {n} pairs, applications at {} writes/s ({acked} tracks written)",
        args.writes_per_sec
    );
    println!("hyperswap: applications' I/O held  {}", summary(holds));
    println!("hyperswap: HS_PLANNED_SWAP at CSM   {}", summary(trips));
    csm.shutdown().await;
    h1.shutdown().await;
    h2.shutdown().await;
    host.shutdown().await;
    service.shutdown().await;
    if !args.no_gateway {
        through_gateway(n, args.rounds.max(1), args.writes_per_sec.max(1)).await?;
    }
    Ok(())
}

/// The complex's configuration: H1 and H2 with volumes 1000 to 1000 + n - 1.
fn complex_config(n: u16) -> String {
    let last = 0x1000 + n - 1;
    let volumes = |prefix: &str| {
        format!(
            "[[{prefix}volumes]]\nids = \"1000-{last:04X}\"\nckd_cylinders = 10\n[[{prefix}users]]\nuser = \"CSMADMIN\"\npassword_hash = \"{HMC_HASH}\"\n"
        )
    };
    format!(
        "listen = \"127.0.0.1:0\"\nmax_body = 1048576\ntick_ms = 50\nimage = \"IBM.2107-75FA120\"\nhmc = \"HMC1\"\n[limits]\nallow_plaintext_passwords = true\n[mirror]\ncopy_tracks_per_sec = 1000000\n{}[[remote]]\nlisten = \"127.0.0.1:0\"\nimage = \"IBM.2107-75FA121\"\nhmc = \"HMC2\"\n{}",
        volumes(""),
        volumes("remote.")
    )
}

/// Waits for console message `id` about MM1 whose text holds `holds`.
async fn console(
    rx: &mut tokio::sync::broadcast::Receiver<zgate::policy::console::ConsoleMessage>,
    id: &str,
    holds: &str,
) -> Result<(), String> {
    tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            match rx.recv().await {
                Ok(m) if m.id.to_string() == id && m.text.contains(holds) => return Ok(()),
                Ok(m) if m.is_error() && m.session.as_deref() == Some("MM1") => {
                    return Err(m.text);
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    })
    .await
    .map_err(|_| format!("no {id} in time"))?
}

/// The HyperSwap command of a Metro Mirror session through the gateway.
async fn through_gateway(n: u16, rounds: u32, writes_per_sec: u32) -> Result<(), String> {
    use zgate::policy::SessionType;
    use zgate::policy::engine::{Command, EngineConfig, Outcome};
    use zgate::policy::inventory::{
        HostConnection, HostCredential, HostKind, StorageSystem, VolumeRef as Ref,
    };
    use zgate::policy::session::{CopySet, MmProperties, Properties, SessionCommand};
    let cfg: Ds8kServiceConfig = toml::from_str(&complex_config(n)).map_err(|e| e.to_string())?;
    let service = Ds8kService::from_config(cfg)
        .await
        .map_err(|e| e.to_string())?;
    let h2_addr = *service.remote_addrs().first().ok_or("no H2")?;
    let env = |v: &str| (v == "BENCH_HMC").then(|| "HMCPASS1".to_owned());
    let link = |addr: std::net::SocketAddr, serial: &str| {
        format!(
            "addr = \"{addr}\"\nimage = \"IBM.2107-{serial}\"\nuser = \"CSMADMIN\"\npassword_env = \"BENCH_HMC\"\nrequest_timeout_secs = 60\n"
        )
    };
    let zos_cfg = format!(
        "listen = \"127.0.0.1:0\"\nsysplex = \"PLEX1\"\nsystem = \"SYSA\"\nmax_body = 1048576\n[[users]]\nuser = \"HOSTUSR\"\npermits = [\"HYPERSWAP\"]\n[[ptktdata]]\nname = \"IOSHMCSM\"\nenhanced_key_env = \"BENCH_KEY\"\n[storage]\n{}[[hyperswap_storage]]\n{}[workload]\nwrites_per_sec = {writes_per_sec}\ntracks = 150\n",
        link(service.addr(), "75FA120"),
        link(h2_addr, "75FA121"),
    );
    let zcfg: ZosPeerConfig = toml::from_str(&zos_cfg).map_err(|e| e.to_string())?;
    let zenv = |v: &str| match v {
        "BENCH_KEY" => Some(KEY.to_owned()),
        other => env(other),
    };
    let (host, io) = ZosPeer::with_hyperswap_io(zcfg, zenv, Clock::system())
        .await
        .map_err(|e| e.to_string())?;
    let io = io.ok_or("no HyperSwap I/O")?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let key = std::sync::Arc::new(
        zgate::store::sealing::SealingKey::generate().map_err(|e| e.to_string())?,
    );
    let gateway = zgate::gateway::Gateway::start(zgate::gateway::GatewayConfig {
        store: dir.path().join("zgate.redb"),
        engine: EngineConfig {
            copy_poll_interval_ms: 100,
            ..EngineConfig::default()
        },
        clock: Clock::system(),
        sealing_key: key.clone(),
        storage_timeout: Duration::from_secs(60),
        bootstrap_admin: Some(("admin".into(), HMC_HASH.into())),
        shutdown_grace: Duration::from_secs(10),
        snapshot_every: zgate::gateway::DEFAULT_SNAPSHOT_EVERY,
        standby_of: None,
        fence_domain: 0,
    })
    .map_err(|e| e.to_string())?;
    let g = gateway.handle();
    let mut rx = g.console();
    let run = |command: Command| {
        let g = g.clone();
        async move {
            let r = g
                .command("admin", command)
                .await
                .map_err(|e| e.to_string())?;
            match r.outcome {
                Outcome::Refused(code) => Err(format!("refused {code:#06x}: {}", r.message.text)),
                _ => Ok(r),
            }
        }
    };
    for (serial, addr) in [("75FA120", service.addr()), ("75FA121", h2_addr)] {
        let password = key
            .seal(&format!("DS8000:BOX:2107.{serial} password"), b"HMCPASS1")
            .map_err(|e| e.to_string())?;
        run(Command::DefineStorageSystem(StorageSystem {
            serial: serial.into(),
            address: addr.to_string(),
            user: "CSMADMIN".into(),
            password,
        }))
        .await?;
    }
    let ticket_key = key
        .seal("SYSA PassTicket key", KEY.as_bytes())
        .map_err(|e| e.to_string())?;
    run(Command::DefineHostConnection(HostConnection {
        system: "SYSA".into(),
        kind: HostKind::Zos,
        address: "127.0.0.1".into(),
        port: host.addr().port(),
        user: "HOSTUSR".into(),
        credential: HostCredential::PassTicket {
            key: ticket_key,
            application: "IOSHMCSM".into(),
        },
    }))
    .await?;
    run(Command::CreateSession {
        name: "MM1".into(),
        kind: SessionType::Mm,
        description: String::new(),
    })
    .await?;
    run(Command::SetProperties {
        session: "MM1".into(),
        properties: Properties::Mm(MmProperties {
            hyperswap: true,
            host_system: Some("SYSA".into()),
            ..MmProperties::default()
        }),
    })
    .await?;
    let vol = |serial: &str, i: u16| Ref {
        serial: serial.into(),
        volume: VolumeId(0x1000 + i),
    };
    let copy_sets = (0..n)
        .map(|i| CopySet {
            h1: vol("75FA120", i),
            partner: Some(vol("75FA121", i)),
        })
        .collect();
    run(Command::AddCopySets {
        session: "MM1".into(),
        copy_sets,
    })
    .await?;
    console(&mut rx, "IWNR8001I", "copy sets were added").await?;
    let mm = |command| Command::Run {
        session: "MM1".into(),
        command,
    };
    run(mm(SessionCommand::StartH1H2)).await?;
    console(&mut rx, "IWNR8017I", "Prepared").await?;
    let (mut holds, mut commands, mut starts) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = io.io_holds().lock().map(|h| h.len()).unwrap_or(0);
        let t = Instant::now();
        run(mm(SessionCommand::HyperSwap)).await?;
        console(
            &mut rx,
            "IWNR1026I",
            "HyperSwap command in the MM1 session completed",
        )
        .await?;
        commands.push(t.elapsed());
        if let Ok(h) = io.io_holds().lock()
            && h.len() > before
            && let Some(held) = h.back()
        {
            holds.push(*held);
        }
        // Production is on the other side now: mirror back from it.
        let back = if round % 2 == 0 {
            SessionCommand::StartH2H1
        } else {
            SessionCommand::StartH1H2
        };
        let t = Instant::now();
        run(mm(back)).await?;
        console(&mut rx, "IWNR8017I", "Prepared").await?;
        starts.push(t.elapsed());
    }
    println!(
        "hyperswap via the gateway: {n}-pair Metro Mirror session with HyperSwap through SYSA"
    );
    println!(
        "hyperswap via the gateway: applications' I/O held   {}",
        summary(holds)
    );
    println!(
        "hyperswap via the gateway: HyperSwap command         {}",
        summary(commands)
    );
    println!(
        "hyperswap via the gateway: Start back to Prepared    {}",
        summary(starts)
    );
    gateway.shutdown().await;
    host.shutdown().await;
    service.shutdown().await;
    Ok(())
}
