//! The gateway's core end to end over loopback: the policy engine with its redb
//! store on a temp dir, carrying out storage actions over the HMC protocol against
//! the simulated DS8000 service (`zgate ds8k`, sample configuration), on tokio's
//! paused clock. A restart rebuilds the same engine from the store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use zgate::ds8k::VolumeId;
use zgate::gateway::{Gateway, GatewayConfig, GatewayHandle};
use zgate::harness::TEST_PASSWORD_HASH;
use zgate::peer::ds8k::{Ds8kService, Ds8kServiceConfig};
use zgate::policy::SessionType;
use zgate::policy::console::ConsoleMessage;
use zgate::policy::engine::{Command, EngineConfig, Outcome, Reply};
use zgate::policy::inventory::{StorageSystem, VolumeRef};
use zgate::policy::session::{CopySet, SessionCommand, SessionState};
use zgate::sim::hmc::Ds8kSystem;
use zgate::store::sealing::SealingKey;

const SERIAL: &str = "75FA120";

async fn ds8k() -> Ds8kService {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/peers/ds8k.toml"
    ))
    .unwrap();
    let mut cfg: Ds8kServiceConfig = toml::from_str(&text).unwrap();
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.tick_ms = 1000;
    let system = Ds8kSystem::with_keys(&cfg.system, |_| None).unwrap();
    let mut listen = cfg.listen_config().unwrap();
    listen.clock = common::test_clock();
    Ds8kService::start_on(listen, &cfg, system).await.unwrap()
}

fn gateway(store: &std::path::Path, key: &Arc<SealingKey>) -> Gateway {
    Gateway::start(GatewayConfig {
        store: store.to_owned(),
        engine: EngineConfig::default(),
        clock: common::test_clock(),
        sealing_key: key.clone(),
        storage_timeout: Duration::from_secs(30),
        bootstrap_admin: Some(("admin".into(), TEST_PASSWORD_HASH.into())),
    })
    .unwrap()
}

fn vol(v: u16) -> VolumeRef {
    VolumeRef {
        serial: SERIAL.into(),
        volume: VolumeId(v),
    }
}

async fn run(g: &GatewayHandle, command: Command) -> Reply {
    g.command("admin", command).await.unwrap()
}

/// Waits (paused clock: no real time) for the console message `id` whose text holds
/// `text`; any other error on the way fails the test.
async fn wait_for(
    rx: &mut broadcast::Receiver<ConsoleMessage>,
    id: &str,
    text: &str,
) -> ConsoleMessage {
    tokio::time::timeout(Duration::from_secs(3600), async {
        loop {
            let m = rx.recv().await.unwrap();
            if m.id.to_string() == id && m.text.contains(text) {
                return m;
            }
            assert!(!m.is_error(), "unexpected error: {m:?}");
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {id} in time"))
}

#[tokio::test(start_paused = true)]
async fn flash_and_backups_through_the_hmc_survive_a_restart() {
    let service = ds8k().await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("zgate.redb");
    let key = Arc::new(SealingKey::generate().unwrap());
    let gw = gateway(&store, &key);
    let g = gw.handle();
    let mut console = g.console();

    let system = StorageSystem {
        serial: SERIAL.into(),
        address: service.addr().to_string(),
        user: "CSMADMIN".into(),
        password: key
            .seal(&format!("DS8000:BOX:2107.{SERIAL} password"), b"HMCPASS1")
            .unwrap(),
    };
    assert_eq!(
        run(&g, Command::DefineStorageSystem(system)).await.outcome,
        Outcome::Done
    );
    for (name, kind) in [("FC1", SessionType::Fc), ("SGC1", SessionType::Sgc)] {
        let r = run(
            &g,
            Command::CreateSession {
                name: name.into(),
                kind,
                description: String::new(),
            },
        )
        .await;
        assert_eq!(r.outcome, Outcome::Done, "{r:?}");
    }
    // Copy sets: the volumes are read from the box.
    let add = |session: &str, sets: Vec<(u16, u16)>| Command::AddCopySets {
        session: session.into(),
        copy_sets: sets
            .into_iter()
            .map(|(h, p)| CopySet {
                h1: vol(h),
                partner: vol(p),
            })
            .collect(),
    };
    let r = run(&g, add("FC1", vec![(0x3000, 0x3100), (0x3001, 0x3101)])).await;
    assert!(matches!(r.outcome, Outcome::Started(_)), "{r:?}");
    wait_for(
        &mut console,
        "IWNR8001I",
        "2 copy sets were added to session FC1",
    )
    .await;
    run(&g, add("SGC1", vec![(0x3002, 0x3200)])).await;
    wait_for(
        &mut console,
        "IWNR8001I",
        "1 copy sets were added to session SGC1",
    )
    .await;
    // A volume the box does not have.
    run(&g, add("SGC1", vec![(0x3003, 0x3FFF)])).await;
    wait_for(&mut console, "IWNR8012E", "has no volume").await;

    // Flash: background copy of 2 x 50,085 tracks at 2,000 tracks/s, polled every 30 s.
    let r = run(
        &g,
        Command::Run {
            session: "FC1".into(),
            command: SessionCommand::Flash,
        },
    )
    .await;
    assert!(matches!(r.outcome, Outcome::Started(_)), "{r:?}");
    wait_for(&mut console, "IWNR1026I", "Flash command in the FC1").await;
    let m = wait_for(&mut console, "IWNR2772I", "FC1").await;
    assert_eq!(m.session.as_deref(), Some("FC1"));

    // Two backups a minute apart: the first becomes recoverable.
    for _ in 0..2 {
        run(
            &g,
            Command::Run {
                session: "SGC1".into(),
                command: SessionCommand::Backup,
            },
        )
        .await;
        wait_for(&mut console, "IWNR1026I", "Backup command in the SGC1").await;
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    let first = g
        .read(|e| e.state().sessions["SGC1"].backups[0].id)
        .await
        .unwrap();
    run(
        &g,
        Command::Run {
            session: "SGC1".into(),
            command: SessionCommand::RecoverBackup(first),
        },
    )
    .await;
    wait_for(&mut console, "IWNR1026I", "Recover Backup").await;

    // Restart: the same engine comes back from the store.
    let before = g.read(|e| e.state().clone()).await.unwrap();
    assert_eq!(before.sessions["FC1"].state, SessionState::TargetAvailable);
    assert_eq!(before.sessions["SGC1"].recovered, Some(first));
    gw.shutdown().await;
    let gw = gateway(&store, &key);
    let after = gw.handle().read(|e| e.state().clone()).await.unwrap();
    assert_eq!(after, before);
    gw.shutdown().await;
    service.shutdown().await;
}
