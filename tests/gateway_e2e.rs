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
use zgate::gateway::{Gateway, GatewayHandle};
use zgate::harness::TEST_PASSWORD_HASH;
use zgate::peer::ds8k::Ds8kService;
use zgate::policy::SessionType;
use zgate::policy::console::ConsoleMessage;
use zgate::policy::engine::{Command, Outcome, Reply};
use zgate::policy::inventory::{StorageSystem, VolumeRef};
use zgate::policy::session::{CopySet, SessionCommand, SessionState};
use zgate::store::sealing::SealingKey;

const SERIAL: &str = "75FA120";

async fn ds8k() -> Ds8kService {
    common::ds8k_service(common::test_clock(), |c| c.tick_ms = 1000).await
}

fn gateway(store: &std::path::Path, key: &Arc<SealingKey>) -> Gateway {
    gateway_with_grace(store, key, Duration::from_secs(10))
}

fn gateway_with_grace(store: &std::path::Path, key: &Arc<SealingKey>, grace: Duration) -> Gateway {
    common::start_gateway(store, key, TEST_PASSWORD_HASH, grace)
}

fn vol(v: u16) -> VolumeRef {
    VolumeRef {
        serial: SERIAL.into(),
        volume: VolumeId(v),
    }
}

/// Defines the sample DS8000 (its HMC password sealed with `key`).
async fn define_box(g: &GatewayHandle, key: &SealingKey, service: &Ds8kService) {
    let system = StorageSystem {
        serial: SERIAL.into(),
        address: service.addr().to_string(),
        user: "CSMADMIN".into(),
        password: key
            .seal(&format!("DS8000:BOX:2107.{SERIAL} password"), b"HMCPASS1")
            .unwrap(),
    };
    assert_eq!(
        run(g, Command::DefineStorageSystem(system)).await.outcome,
        Outcome::Done
    );
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

    define_box(&g, &key, &service).await;
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
                partner: Some(vol(p)),
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
    // A snapshot here: the restart below loads it and replays only what follows.
    let at = g.snapshot().await.unwrap();
    assert!(at > 0);

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
        .read(|e| e.state().sessions["SGC1"].backups()[0].id)
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
    assert_eq!(before.sessions["SGC1"].recovered(), Some(first));
    gw.shutdown().await;
    let gw = gateway(&store, &key);
    let after = gw.handle().read(|e| e.state().clone()).await.unwrap();
    assert_eq!(after, before);
    // And from a snapshot with nothing after it.
    gw.handle().snapshot().await.unwrap();
    gw.shutdown().await;
    let gw = gateway(&store, &key);
    let again = gw.handle().read(|e| e.state().clone()).await.unwrap();
    assert_eq!(again, before);
    gw.shutdown().await;
    service.shutdown().await;
}

/// Graceful shutdown (configuration.md §7): a flash under way when the gateway is
/// told to stop is finished and its result stored, so the next start has nothing to
/// resume; with a grace shorter than the box's answer, the action is left in the
/// store and resumes (once) at the next start.
#[tokio::test(start_paused = true)]
async fn shutdown_finishes_the_work_under_way_within_its_grace() {
    let service = ds8k().await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("zgate.redb");
    let key = Arc::new(SealingKey::generate().unwrap());
    let gw = gateway(&store, &key);
    let g = gw.handle();
    let mut console = g.console();
    define_box(&g, &key, &service).await;
    for name in ["FC1", "FC2"] {
        run(
            &g,
            Command::CreateSession {
                name: name.into(),
                kind: SessionType::Fc,
                description: String::new(),
            },
        )
        .await;
    }
    for (name, h1, t1) in [("FC1", 0x3000, 0x3100), ("FC2", 0x3001, 0x3101)] {
        run(
            &g,
            Command::AddCopySets {
                session: name.into(),
                copy_sets: vec![CopySet {
                    h1: vol(h1),
                    partner: Some(vol(t1)),
                }],
            },
        )
        .await;
        wait_for(&mut console, "IWNR8001I", &format!("session {name}")).await;
    }
    let flash = |session: &str| Command::Run {
        session: session.into(),
        command: SessionCommand::Flash,
    };
    let in_flight =
        |g: GatewayHandle| async move { g.read(|e| e.state().in_flight.len()).await.unwrap() };

    // The box answers 3 s late; the grace is 10 s: the flash finishes before the stop.
    service
        .control()
        .misbehave(|m| m.delay = Some(Duration::from_secs(3)));
    let r = run(&g, flash("FC1")).await;
    assert!(matches!(r.outcome, Outcome::Started(_)), "{r:?}");
    assert_eq!(in_flight(g.clone()).await, 1);
    gw.shutdown().await;
    assert!(
        g.command("admin", flash("FC2")).await.is_err(),
        "a stopped gateway took a command"
    );
    let gw = gateway_with_grace(&store, &key, Duration::from_secs(1));
    let g = gw.handle();
    assert_eq!(
        in_flight(g.clone()).await,
        0,
        "the flash was left unfinished"
    );
    let state = g.read(|e| e.state().sessions["FC1"].state).await.unwrap();
    assert_eq!(state, SessionState::TargetAvailable);

    // Now the box answers 5 s late and the grace is 1 s: the flash is left under
    // way. The next start does not send it again (policy.md §8.4): it asks the box,
    // and either adopts the flash the box made or, if the box never took the
    // request (it was still writing an earlier late reply when the connection
    // closed), reports it not carried out once its deadline has passed; then a new
    // Flash runs. Either way the box holds one relationship and nothing stays busy.
    service
        .control()
        .misbehave(|m| m.delay = Some(Duration::from_secs(5)));
    let r = run(&g, flash("FC2")).await;
    assert!(matches!(r.outcome, Outcome::Started(_)), "{r:?}");
    gw.shutdown().await;
    service.control().misbehave(|m| m.delay = None);
    let gw = gateway(&store, &key);
    let g = gw.handle();
    let mut console = g.console();
    let end = tokio::time::timeout(Duration::from_secs(3600), async {
        loop {
            let m = console.recv().await.unwrap();
            let about_fc2 = m.session.as_deref() == Some("FC2");
            if about_fc2 && (m.id.to_string() == "IWNR1026I" || m.id.to_string() == "IWNR8013E") {
                return m;
            }
        }
    })
    .await
    .unwrap();
    assert!(
        end.id.to_string() == "IWNR1026I" || end.text.contains("0x0d28"),
        "{end:?}"
    );
    if end.id.to_string() == "IWNR8013E" {
        run(&g, flash("FC2")).await;
        wait_for(&mut console, "IWNR1026I", "Flash command in the FC2").await;
    }
    assert_eq!(in_flight(g.clone()).await, 0);
    let state = g.read(|e| e.state().sessions["FC2"].state).await.unwrap();
    assert_eq!(state, SessionState::TargetAvailable);
    let made = service
        .control()
        .system()
        .image()
        .list_flash(VolumeId(0x3001))
        .unwrap()
        .len();
    assert_eq!(made, 1, "one relationship on the box");
    gw.shutdown().await;
    service.shutdown().await;
}

async fn zos_peer(storage: std::net::SocketAddr) -> zgate::peer::zos::ZosPeer {
    // The box's answers may take a few seconds of the test clock here.
    let text = common::peer_config_text("zos.toml", Some(storage))
        .replace("request_timeout_secs = 2", "request_timeout_secs = 5");
    let cfg: zgate::peer::zos::ZosPeerConfig = toml::from_str(&text).unwrap();
    zgate::peer::zos::ZosPeer::from_config_with(cfg, common::host_env, common::test_clock())
        .await
        .unwrap()
}

/// The host path: a session whose system is SYSA flashes and backs up through the
/// emulated z/OS (a fresh enhanced PassTicket at logon), which drives the DS8000;
/// the HMC path gives the same storage result.
#[tokio::test(start_paused = true)]
async fn flash_and_backup_through_zos_land_on_the_box() {
    use zgate::policy::inventory::{HostConnection, HostCredential, HostKind};
    use zgate::policy::session::{FcProperties, Properties, SgcProperties};
    let service = ds8k().await;
    let zos = zos_peer(service.addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SealingKey::generate().unwrap());
    let gw = gateway(&dir.path().join("zgate.redb"), &key);
    let g = gw.handle();
    let mut console = g.console();
    define_box(&g, &key, &service).await;
    let host = HostConnection {
        system: "SYSA".into(),
        kind: HostKind::Zos,
        address: "127.0.0.1".into(),
        port: zos.addr().port(),
        user: "HOSTUSR".into(),
        credential: HostCredential::PassTicket {
            key: key
                .seal("SYSA PassTicket key", common::HOST_KEY.as_bytes())
                .unwrap(),
            application: "IOSHMCSM".into(),
        },
    };
    assert_eq!(
        run(&g, Command::DefineHostConnection(host)).await.outcome,
        Outcome::Done
    );
    for (name, kind, sets) in [
        ("FCH", SessionType::Fc, vec![(0x3010, 0x3110)]),
        ("FCM", SessionType::Fc, vec![(0x3011, 0x3111)]),
        ("SGCH", SessionType::Sgc, vec![(0x3012, 0x3201)]),
    ] {
        run(
            &g,
            Command::CreateSession {
                name: name.into(),
                kind,
                description: String::new(),
            },
        )
        .await;
        let copy_sets = sets
            .into_iter()
            .map(|(h, p)| CopySet {
                h1: vol(h),
                partner: Some(vol(p)),
            })
            .collect();
        run(
            &g,
            Command::AddCopySets {
                session: name.into(),
                copy_sets,
            },
        )
        .await;
        wait_for(
            &mut console,
            "IWNR8001I",
            &format!("added to session {name}"),
        )
        .await;
    }
    let through_sysa = |p: Properties| Command::SetProperties {
        session: match &p {
            Properties::Fc(_) => "FCH".into(),
            _ => "SGCH".into(),
        },
        properties: p,
    };
    let fc = FcProperties {
        inhibit_target_writes: true,
        host_system: Some("SYSA".into()),
        ..FcProperties::default()
    };
    run(&g, through_sysa(Properties::Fc(fc.clone()))).await;
    run(
        &g,
        Command::SetProperties {
            session: "FCM".into(),
            properties: Properties::Fc(FcProperties {
                host_system: None,
                ..fc
            }),
        },
    )
    .await;
    run(
        &g,
        through_sysa(Properties::Sgc(SgcProperties {
            host_system: Some("SYSA".into()),
            ..SgcProperties::default()
        })),
    )
    .await;
    for name in ["FCH", "FCM"] {
        run(
            &g,
            Command::Run {
                session: name.into(),
                command: SessionCommand::Flash,
            },
        )
        .await;
        wait_for(
            &mut console,
            "IWNR1026I",
            &format!("Flash command in the {name}"),
        )
        .await;
    }
    run(
        &g,
        Command::Run {
            session: "SGCH".into(),
            command: SessionCommand::Backup,
        },
    )
    .await;
    wait_for(&mut console, "IWNR1026I", "Backup command in the SGCH").await;
    // The box holds the host path's results, the same as the HMC path's.
    let (fch, fcm, sgch) = g
        .read(|e| {
            let s = &e.state().sessions;
            (s["FCH"].clone(), s["FCM"].clone(), s["SGCH"].clone())
        })
        .await
        .unwrap();
    assert_eq!(fch.state, SessionState::TargetAvailable);
    assert_eq!(fch.state, fcm.state);
    assert_eq!(
        (fch.copying, fch.relationships),
        (fcm.copying, fcm.relationships)
    );
    assert_eq!(sgch.backups().len(), 1);
    // The flash really goes through SYSA: with SYSA silent it fails, naming the path,
    // and the session says why; the HMC session is unaffected.
    zos.control().misbehave(|m| m.silent = true);
    zos.control().drop_connections();
    run(
        &g,
        Command::Run {
            session: "FCH".into(),
            command: SessionCommand::Flash,
        },
    )
    .await;
    let m = wait_for(&mut console, "IWNR8013E", "FCH").await;
    assert!(m.text.contains("SYSA"), "{m:?}");
    let fch = g.read(|e| e.state().sessions["FCH"].clone()).await.unwrap();
    assert_eq!(fch.status, zgate::policy::session::SessionStatus::Severe);
    assert!(fch.busy.is_none());
    // The withdraw went through the HMC before the host failed: nothing is left.
    assert_eq!(
        (fch.state, fch.relationships),
        (SessionState::Defined, false)
    );
    gw.shutdown().await;
    zos.shutdown().await;
    service.shutdown().await;
}

/// policy.md §8.4 "Links never give up": the HMC link of a box that went away for
/// five minutes or more is back within 10 s (tokio's clock) of the box listening again, with
/// no command needed to bring it back.
#[tokio::test(start_paused = true)]
async fn the_hmc_link_returns_within_seconds_of_the_box() {
    let service = ds8k().await;
    let addr = service.addr();
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SealingKey::generate().unwrap());
    let gw = gateway(&dir.path().join("zgate.redb"), &key);
    let g = gw.handle();
    let mut console = g.console();
    define_box(&g, &key, &service).await;
    run(
        &g,
        Command::CreateSession {
            name: "FC1".into(),
            kind: SessionType::Fc,
            description: String::new(),
        },
    )
    .await;
    // Reading the volumes opens the link.
    run(
        &g,
        Command::AddCopySets {
            session: "FC1".into(),
            copy_sets: vec![CopySet {
                h1: vol(0x3000),
                partner: Some(vol(0x3100)),
            }],
        },
    )
    .await;
    wait_for(&mut console, "IWNR8001I", "session FC1").await;
    let link = format!("DS8000:BOX:2107.{SERIAL}");
    let connected = |g: &GatewayHandle| g.links().get(&link).is_some_and(|l| l.connected);
    assert!(connected(&g));
    let logons = g.links()[&link].logons;

    // Five outages of different lengths, so that the jitter draws differ.
    let mut service = service;
    for round in 0..5u64 {
        service.shutdown().await;
        tokio::time::sleep(Duration::from_millis(300_000 + 37_300 * round)).await;
        assert!(!connected(&g), "the link outlived its box");
        service = common::ds8k_service(common::test_clock(), |c| {
            c.tick_ms = 1000;
            c.listen = addr;
        })
        .await;
        let back = tokio::time::Instant::now();
        while !connected(&g) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(
                back.elapsed() <= Duration::from_secs(10),
                "round {round}: the link was not back 10 s after the box"
            );
        }
        eprintln!("round {round}: link back after {:?}", back.elapsed());
        assert_eq!(g.links()[&link].logons, logons + 1 + round);
    }
    gw.shutdown().await;
    service.shutdown().await;
}

/// store.md §6.2: with `snapshot_every` set, the gateway writes a snapshot by itself
/// as the journal grows, and a restart from it (with few records after) rebuilds the
/// same state. (Compaction itself is tested in tests/store.rs.)
#[tokio::test(start_paused = true)]
async fn snapshots_come_every_so_many_records_and_a_restart_starts_from_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("zgate.redb");
    let key = Arc::new(SealingKey::generate().unwrap());
    let config = |every| zgate::gateway::GatewayConfig {
        store: store.clone(),
        engine: zgate::policy::engine::EngineConfig::default(),
        clock: common::test_clock(),
        sealing_key: key.clone(),
        storage_timeout: Duration::from_secs(30),
        bootstrap_admin: Some(("admin".into(), TEST_PASSWORD_HASH.into())),
        shutdown_grace: Duration::from_secs(1),
        snapshot_every: every,
        standby_of: None,
        fence_domain: 0,
    };
    let gw = Gateway::start(config(10)).unwrap();
    let g = gw.handle();
    for i in 0..40 {
        let r = run(
            &g,
            Command::CreateSession {
                name: format!("S{i}"),
                kind: SessionType::Fc,
                description: String::new(),
            },
        )
        .await;
        assert_eq!(r.outcome, Outcome::Done, "{r:?}");
    }
    // Small changes after: several snapshot intervals of records.
    for i in 0..1000 {
        let r = run(
            &g,
            Command::SetDescription {
                session: format!("S{}", i % 40),
                description: format!("change {i}"),
            },
        )
        .await;
        assert_eq!(r.outcome, Outcome::Done, "{r:?}");
    }
    let before = g.read(|e| e.state().clone()).await.unwrap();
    gw.shutdown().await;

    let opened = zgate::store::Store::open(&store).unwrap();
    let recovered = opened.recover().unwrap();
    let (at, _) = recovered.snapshot.as_ref().expect("a snapshot was written");
    // store.md §6.2: every 10 records here, or one record per 64 bytes of the last
    // snapshot when that is more.
    let (_, sealed) = opened.reader().snapshot_sealed().unwrap().unwrap();
    let interval = 10.max(sealed.len() / 64);
    // Each change writes two records (the session or its change, the audit entry):
    // 2,080 and more, so the interval came round more than once.
    assert!(interval < 1000, "interval {interval}");
    assert!(
        *at + interval as u64 >= 2080,
        "snapshot at {at}, interval {interval}"
    );
    assert!(
        recovered.tail.len() < interval,
        "{} records after it, interval {interval}",
        recovered.tail.len()
    );

    assert!(
        !recovered.tail.is_empty(),
        "records after the snapshot, for the next run's first snapshot to take up"
    );
    drop(opened);

    // The state a gateway started with snapshots off (so it writes none) rebuilds.
    let restarted = async || {
        let gw = Gateway::start(config(0)).unwrap();
        let state = gw.handle().read(|e| e.state().clone()).await.unwrap();
        gw.shutdown().await;
        state
    };
    // Started with snapshots off, it still starts from the one on disk.
    assert_eq!(restarted().await, before);

    // A snapshot writes only the parts changed since the one before (store.md
    // §6.2); the first one of a run also takes up what the records after the last
    // run's snapshot changed. Here the next run changes one session only, and
    // removes one: a restart after its snapshots still rebuilds the whole state.
    let gw = Gateway::start(config(10)).unwrap();
    let g = gw.handle();
    for i in 0..100 {
        let r = run(
            &g,
            Command::SetDescription {
                session: "S0".into(),
                description: format!("again {i}"),
            },
        )
        .await;
        assert_eq!(r.outcome, Outcome::Done, "{r:?}");
    }
    let r = run(&g, Command::RemoveSession { name: "S1".into() }).await;
    assert_eq!(r.outcome, Outcome::Done, "{r:?}");
    g.snapshot().await.unwrap();
    let before = g.read(|e| e.state().clone()).await.unwrap();
    gw.shutdown().await;
    let opened = zgate::store::Store::open(&store).unwrap();
    let (_, held) = opened.reader().snapshot().unwrap().unwrap();
    assert_eq!(
        held, before,
        "the snapshot of changes holds the whole state"
    );
    drop(opened);
    assert_eq!(restarted().await, before);
}

/// `storage.volumes` (LSVOL, ds8k.md §4.3): the gateway reads a box of more than one
/// page of volumes (1,000 a page) into its inventory, every volume once.
#[tokio::test(start_paused = true)]
async fn a_storage_systems_volume_list_is_read_page_by_page() {
    let service = common::ds8k_service(common::test_clock(), |c| {
        c.system.volumes.push(zgate::sim::hmc::VolumeRangeConfig {
            ids: "4000-47FF".into(),
            ckd_cylinders: Some(10),
            fb_gib: None,
            name: "BULK".into(),
            safeguarded_percent: 0,
        });
    })
    .await;
    let on_the_box = service.control().system().image().volume_count();
    assert!(on_the_box > 2_000, "{on_the_box}");
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SealingKey::generate().unwrap());
    let gw = gateway(&dir.path().join("zgate.redb"), &key);
    let g = gw.handle();
    let mut console = g.console();
    define_box(&g, &key, &service).await;
    let r = run(
        &g,
        Command::ReadVolumes {
            serial: SERIAL.into(),
        },
    )
    .await;
    assert_eq!(r.outcome, Outcome::Done, "{r:?}");
    let read = wait_for(&mut console, "IWNR8001I", "volumes of storage system").await;
    assert!(
        read.text.starts_with(&format!("{on_the_box} volumes")),
        "{read:?}"
    );
    let known = g
        .read(|e| e.state().inventory.get(SERIAL).map_or(0, |i| i.len()))
        .await
        .unwrap();
    assert_eq!(known, on_the_box);
    gw.shutdown().await;
    service.shutdown().await;
}
