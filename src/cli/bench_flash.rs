//! `zgate bench flash-paths`: a 1,000-pair consistency-group flash carried out through
//! the HMC path and through the host path (an emulated z/OS system driving the same
//! simulated DS8000), on loopback, `--rounds` times each.
//!
//! HMC path: zgate sends `mkflash -freeze` of every pair, then, once it is answered,
//! `unfreezeflash` of the source LSSs; the sources are held (extended long busy) from
//! the moment the flash is sent until the thaw is answered, measured at zgate.
//! Host path: zgate sends one z/OS FLASH of every pair; the host forms the consistency
//! group by holding its applications' I/O to the sources itself while its one
//! `mkflash` (no freeze) is at the box, measured at the host (`StorageLink::io_holds`);
//! the box never freezes. The FLASH's round trip at zgate is printed too (zgate's wait,
//! not the applications'). Figures only; nothing is asserted.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use zgate::client::connector::{Authentication, ConnectorConfig};
use zgate::client::{ds8k, zos};
use zgate::clock::Clock;
use zgate::codec::fields::Ebcdic;
use zgate::ds8k::{FlashOptions, Lss, PairKey, VolumeId};
use zgate::passticket::{EnhancedGenerator, EnhancedKey, TicketType};
use zgate::peer::ds8k::{Ds8kService, Ds8kServiceConfig};
use zgate::peer::storage_link::{StorageLink, ZosStorage};
use zgate::peer::zos::{ZosPeer, ZosPeerConfig};
use zgate::proto::ds8k::Ds8kBody;
use zgate::proto::logon::Credential;
use zgate::proto::zos::ZosBody;
use zgate::proto::{HostFlashOptions, VolumePair, VolumeRef};
use zgate::sim::zos::ZosSystem;

#[derive(Debug, Args)]
pub struct FlashPathsArgs {
    /// Pairs in the consistency group (at most 2,048: a host FLASH's limit).
    #[arg(long, default_value_t = 1000)]
    pairs: u16,
    /// Flashes through each path.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
}

const KEY: &str = "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF";

pub fn flash_paths(args: FlashPathsArgs) -> ExitCode {
    super::block_on("bench", run(args))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn summary(mut v: Vec<Duration>) -> String {
    v.sort_unstable();
    let (min, med, max) = (v[0], v[v.len() / 2], v[v.len() - 1]);
    format!(
        "min {:7.2} ms   median {:7.2} ms   max {:7.2} ms",
        ms(min),
        ms(med),
        ms(max)
    )
}

async fn run(args: FlashPathsArgs) -> Result<(), String> {
    let n = args.pairs.clamp(1, 2048);
    let rounds = args.rounds.max(1);
    // Sources 1000-17FF (LSS 10-17), targets 2000-27FF (LSS 20-27): small CKD volumes.
    let config = format!(
        "listen = \"127.0.0.1:0\"\nimage = \"IBM.2107-75FA120\"\nhmc = \"HMC1\"\nmax_body = 1048576\n[limits]\nallow_plaintext_passwords = true\n[storage]\ncopy_tracks_per_sec = 1\n[[volumes]]\nids = \"1000-{:04X}\"\nckd_cylinders = 10\n[[volumes]]\nids = \"2000-{:04X}\"\nckd_cylinders = 10\n[[users]]\nuser = \"CSMADMIN\"\npassword_hash = \"$argon2id$v=19$m=256,t=1,p=1$kRd/U8sgFOmPpaBmHHTNrg$OjZACu3IWHR/84qOt5kl5rNbS+7vVxiX/y5BD1kBmNY\"\n",
        0x1000 + n - 1,
        0x2000 + n - 1
    );
    let cfg: Ds8kServiceConfig = toml::from_str(&config).map_err(|e| e.to_string())?;
    let service = Ds8kService::from_config(cfg)
        .await
        .map_err(|e| e.to_string())?;
    let env = |v: &str| match v {
        "BENCH_KEY" => Some(KEY.to_owned()),
        "BENCH_HMC" => Some("HMCPASS1".to_owned()),
        _ => None,
    };
    let zos_cfg = format!(
        "listen = \"127.0.0.1:0\"\nsysplex = \"PLEX1\"\nsystem = \"SYSA\"\nmax_body = 1048576\n[[users]]\nuser = \"HOSTUSR\"\npermits = [\"FLASH\"]\n[[ptktdata]]\nname = \"IOSHMCSM\"\nenhanced_key_env = \"BENCH_KEY\"\n[storage]\naddr = \"{}\"\nimage = \"IBM.2107-75FA120\"\nuser = \"CSMADMIN\"\npassword_env = \"BENCH_HMC\"\nrequest_timeout_secs = 60\n",
        service.addr()
    );
    let zcfg: ZosPeerConfig = toml::from_str(&zos_cfg).map_err(|e| e.to_string())?;
    // Built by hand (not `ZosPeer::from_config_with`) to keep the link's I/O holds.
    let storage = zcfg.storage.as_ref().ok_or("no [storage]")?;
    let link = StorageLink::start(storage, env, Clock::system()).map_err(|e| e.to_string())?;
    let io_holds = link.io_holds();
    let mut system = ZosSystem::with_keys(&zcfg.system, env).map_err(|e| e.to_string())?;
    system.forward_to_storage(true);
    let listen = zcfg.listen_config().map_err(|e| e.to_string())?;
    let host = ZosPeer::start_with(&listen, system, Some(Arc::new(ZosStorage(link))))
        .await
        .map_err(|e| e.to_string())?;

    let mut hmc_cfg = ConnectorConfig::new(service.addr());
    hmc_cfg.user = "CSMADMIN".into();
    hmc_cfg.appl = "HMC".into();
    hmc_cfg.max_body = 1 << 20;
    hmc_cfg.request_timeout = Duration::from_secs(60);
    let hmc = ds8k::spawn(
        hmc_cfg,
        Authentication::Password(Credential::new("HMCPASS1").ok_or("pw")?),
    )
    .map_err(|e| e.to_string())?;
    let mut zos_cfg = ConnectorConfig::new(host.addr());
    zos_cfg.max_body = 1 << 20;
    zos_cfg.request_timeout = Duration::from_secs(60);
    let generator = EnhancedGenerator::new(
        &EnhancedKey::from_hex(KEY).map_err(|e| e.to_string())?,
        TicketType::Upper,
    );
    let zos = zos::spawn(zos_cfg, Authentication::EnhancedPassTicket(generator))
        .map_err(|e| e.to_string())?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let keys: Vec<PairKey> = (0..n)
        .map(|i| PairKey {
            source: VolumeId(0x1000 + i),
            target: VolumeId(0x2000 + i),
        })
        .collect();
    let lsss: Vec<Lss> = {
        let mut l: Vec<Lss> = keys.iter().map(|k| k.source.lss()).collect();
        l.dedup();
        l
    };
    let serial = Ebcdic::new("75FA120").map_err(|e| e.to_string())?;
    let pairs: Vec<VolumePair> = keys
        .iter()
        .map(|k| VolumePair {
            first: VolumeRef {
                storage: serial.clone(),
                volume: k.source.0,
                device: 0,
            },
            second: VolumeRef {
                storage: serial.clone(),
                volume: k.target.0,
                device: 0,
            },
        })
        .collect();
    let withdraw = || Ds8kBody::WithdrawRequest {
        fence: zgate::ds8k::Fence::NONE,
        copy_first: false,
        pairs: keys.clone(),
    };

    let (mut held, mut host_rt, mut host_held) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        let r = hmc
            .request(Ds8kBody::FlashRequest {
                fence: zgate::ds8k::Fence::NONE,
                resync: false,
                options: FlashOptions(FlashOptions::FREEZE | FlashOptions::NO_COPY),
                sequence: 0,
                not_after_ms: 0,
                pairs: keys.clone(),
            })
            .await
            .map_err(|e| e.to_string())?;
        hmc.request(Ds8kBody::UnfreezeRequest {
            fence: zgate::ds8k::Fence::NONE,
            lsss: lsss.clone(),
        })
        .await
        .map_err(|e| e.to_string())?;
        held.push(t.elapsed());
        if r.status().is_none_or(|s| s.rc.0 != 0) {
            return Err(format!("HMC flash refused: {r:?}"));
        }
        hmc.request(withdraw()).await.map_err(|e| e.to_string())?;

        let t = Instant::now();
        let r = zos
            .request(ZosBody::FlashRequest {
                options: HostFlashOptions(HostFlashOptions::NO_COPY),
                pairs: pairs.clone(),
            })
            .await
            .map_err(|e| e.to_string())?;
        host_rt.push(t.elapsed());
        let hold = io_holds.lock().ok().and_then(|h| h.back().copied());
        host_held.push(hold.ok_or("the host recorded no I/O hold")?);
        if !matches!(&r, ZosBody::FlashReply { status, .. } if status.rc.0 == 0) {
            return Err(format!("host flash refused: {r:?}"));
        }
        hmc.request(withdraw()).await.map_err(|e| e.to_string())?;
    }
    println!("{n}-pair consistency-group flash, {rounds} rounds, loopback:");
    let (hmc_median, host_median) = (median(&held), median(&host_held));
    println!("  sources held (application I/O waits):");
    println!(
        "    HMC path  (mkflash -freeze .. unfreezeflash, at zgate):  {}",
        summary(held)
    );
    println!(
        "    host path (host-held I/O during its one mkflash):        {}",
        summary(host_held)
    );
    println!(
        "  host path, zgate's FLASH round trip (not an I/O hold):     {}",
        summary(host_rt)
    );
    println!(
        "  median hold, host path / HMC path: {:.2}",
        host_median.as_secs_f64() / hmc_median.as_secs_f64().max(1e-9)
    );
    zos.shutdown().await;
    hmc.shutdown().await;
    host.shutdown().await;
    service.shutdown().await;
    Ok(())
}
