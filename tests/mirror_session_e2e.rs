//! Metro Mirror sessions with HyperSwap, end to end over loopback (policy.md §5.8):
//! the gateway with its store, the simulated DS8000 complex (H1 75FA120, H2 75FA121,
//! each behind its own HMC listener), and the emulated z/OS SYSA with HyperSwap on
//! that storage and its applications writing. Every command of the session type
//! runs through the real processes and is checked on the box and on z/OS; z/OS's
//! own swap and freeze move the session. One paused clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use zgate::ds8k::VolumeId;
use zgate::gateway::{Gateway, GatewayHandle};
use zgate::harness::TEST_PASSWORD_HASH;
use zgate::peer::ds8k::Ds8kService;
use zgate::peer::hyperswap::HyperSwapIo;
use zgate::peer::zos::ZosPeer;
use zgate::policy::SessionType;
use zgate::policy::console::ConsoleMessage;
use zgate::policy::engine::{Command, Outcome, Reply};
use zgate::policy::inventory::{
    HostConnection, HostCredential, HostKind, StorageSystem, VolumeRef,
};
use zgate::policy::session::{
    CopySet, HyperSwapStatus, MmProperties, Properties, Session, SessionCommand, SessionState,
    SessionStatus, Site,
};
use zgate::proto::zos::HyperSwapState;
use zgate::sim::ds8k::mirror::{PairState, SuspendReason};
use zgate::store::sealing::SealingKey;

const H1: &str = "75FA120";
const H2: &str = "75FA121";
const VOLUMES: [u16; 4] = [0x3000, 0x3001, 0x3002, 0x3003];

async fn run(g: &GatewayHandle, command: Command) -> Reply {
    g.command("admin", command).await.unwrap()
}

fn mm(command: SessionCommand) -> Command {
    Command::Run {
        session: "MM1".into(),
        command,
    }
}

/// Waits (paused clock) for console message `id` whose text holds `text`; an
/// error on the way fails the test unless `id` is itself an error.
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
    .unwrap_or_else(|_| panic!("no {id} with {text:?} in time"))
}

/// Runs `command` on MM1 and waits for its completion message.
async fn command(
    g: &GatewayHandle,
    console: &mut broadcast::Receiver<ConsoleMessage>,
    command: SessionCommand,
) -> ConsoleMessage {
    let r = run(g, mm(command)).await;
    assert!(matches!(r.outcome, Outcome::Started(_)), "{r:?}");
    wait_for(
        console,
        "IWNR1026I",
        &format!(
            "The {} command in the MM1 session completed",
            command_name(command)
        ),
    )
    .await
}

fn command_name(c: SessionCommand) -> &'static str {
    c.name()
}

async fn session(g: &GatewayHandle) -> Session {
    g.read(|e| e.state().sessions["MM1"].clone()).await.unwrap()
}

/// The pair of primary `v` as the complex holds it.
fn pair_state(service: &Ds8kService, site: u8, v: u16) -> Option<(PairState, bool)> {
    let control = service.control();
    let system = control.system();
    let complex = system.complex();
    complex
        .pair_of(zgate::sim::ds8k::mirror::MirrorVolume {
            site,
            volume: VolumeId(v),
        })
        .map(|p| (p.state, p.failed_over))
}

struct World {
    service: Ds8kService,
    zos: ZosPeer,
    io: Arc<HyperSwapIo>,
    gw: Gateway,
    key: Arc<SealingKey>,
    dir: tempfile::TempDir,
}

/// Defines z/OS host connection `system` (HOSTUSR, an enhanced PassTicket key
/// sealed with `key`) at loopback `port`.
async fn define_zos(g: &GatewayHandle, key: &SealingKey, system: &str, port: u16) {
    let host = HostConnection {
        system: system.into(),
        kind: HostKind::Zos,
        address: "127.0.0.1".into(),
        port,
        user: "HOSTUSR".into(),
        credential: HostCredential::PassTicket {
            key: key
                .seal(
                    &format!("{system} PassTicket key"),
                    common::HOST_KEY.as_bytes(),
                )
                .unwrap(),
            application: "IOSHMCSM".into(),
        },
    };
    assert_eq!(
        run(g, Command::DefineHostConnection(host)).await.outcome,
        Outcome::Done
    );
}

/// HyperSwap through SYSA, Release I/O after Suspend.
fn through_sysa() -> MmProperties {
    MmProperties {
        hyperswap: true,
        hardened_freeze: false,
        hold_io_after_suspend: false,
        host_system: Some("SYSA".into()),
        members: Vec::new(),
    }
}

/// The complex, SYSA on it with its applications, the gateway with both boxes and
/// SYSA defined, and session MM1 (`kind`, properties `p`) with copy sets 3000–3003
/// H1 → 3000–3003 H2.
async fn world(kind: SessionType, p: MmProperties) -> World {
    world_via(kind, p, None).await
}

/// As [`world`], the gateway reaching H1's HMC through `relay` when given.
async fn world_via(kind: SessionType, p: MmProperties, relay: Option<&common::Relay>) -> World {
    let clock = common::test_clock();
    let service = common::metro_mirror_complex(clock).await;
    let (zos, io) = common::zos_on_complex(&service, service.addr(), clock).await;
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SealingKey::generate().unwrap());
    let gw = common::start_gateway(
        &dir.path().join("zgate.redb"),
        &key,
        TEST_PASSWORD_HASH,
        Duration::from_secs(10),
    );
    let g = gw.handle();
    let mut console = g.console();
    let h1 = match relay {
        Some(relay) => {
            relay.to(service.addr());
            relay.addr
        }
        None => service.addr(),
    };
    for (serial, addr) in [(H1, h1), (H2, service.remote_addrs()[0])] {
        let system = StorageSystem {
            serial: serial.into(),
            address: addr.to_string(),
            user: "CSMADMIN".into(),
            password: key
                .seal(&format!("DS8000:BOX:2107.{serial} password"), b"HMCPASS1")
                .unwrap(),
        };
        let r = run(&g, Command::DefineStorageSystem(system)).await;
        assert_eq!(r.outcome, Outcome::Done, "{r:?}");
    }
    define_zos(&g, &key, "SYSA", zos.addr().port()).await;
    let r = run(
        &g,
        Command::CreateSession {
            name: "MM1".into(),
            kind,
            description: "payroll".into(),
        },
    )
    .await;
    assert_eq!(r.outcome, Outcome::Done, "{r:?}");
    let properties = if kind == SessionType::Hs {
        Properties::Hs(p)
    } else {
        Properties::Mm(p)
    };
    let r = run(
        &g,
        Command::SetProperties {
            session: "MM1".into(),
            properties,
        },
    )
    .await;
    assert_eq!(r.outcome, Outcome::Done, "{r:?}");
    let copy_sets = VOLUMES
        .iter()
        .map(|&v| CopySet {
            h1: VolumeRef {
                serial: H1.into(),
                volume: VolumeId(v),
            },
            partner: Some(VolumeRef {
                serial: H2.into(),
                volume: VolumeId(v),
            }),
        })
        .collect();
    let r = run(
        &g,
        Command::AddCopySets {
            session: "MM1".into(),
            copy_sets,
        },
    )
    .await;
    assert!(matches!(r.outcome, Outcome::Started(_)), "{r:?}");
    wait_for(
        &mut console,
        "IWNR8001I",
        "4 copy sets were added to session MM1",
    )
    .await;
    World {
        service,
        zos,
        io,
        gw,
        key,
        dir,
    }
}

/// Start H1->H2 and wait for Prepared.
async fn start_and_prepare(
    g: &GatewayHandle,
    console: &mut broadcast::Receiver<ConsoleMessage>,
    c: SessionCommand,
) {
    command(g, console, c).await;
    wait_for(console, "IWNR8017I", "the session is Prepared").await;
}

impl World {
    async fn stop(self) {
        self.gw.shutdown().await;
        self.zos.shutdown().await;
        self.service.shutdown().await;
    }
}

/// Every command of the session type, each checked on the box and on z/OS:
/// Start H1->H2, HyperSwap (planned, the applications writing), Start H2->H1,
/// Suspend (FreezeAll and Run), Recover, Start H1->H2 (failback), Stop, Terminate.
#[tokio::test(start_paused = true)]
async fn every_metro_mirror_command_runs_on_the_box_and_on_zos() {
    let w = world(SessionType::Mm, through_sysa()).await;
    let g = w.gw.handle();
    let mut console = g.console();

    // Start H1->H2: paths, pairs, the configuration loaded and enabled on SYSA.
    start_and_prepare(&g, &mut console, SessionCommand::StartH1H2).await;
    let s = session(&g).await;
    assert_eq!(
        (s.state, s.status),
        (SessionState::Prepared, SessionStatus::Normal)
    );
    assert_eq!(s.mirror().hyperswap, HyperSwapStatus::Enabled);
    for v in VOLUMES {
        assert_eq!(
            pair_state(&w.service, 0, v),
            Some((PairState::FullDuplex, false))
        );
    }
    let hs = w.zos.control().system().hyperswap_status();
    assert_eq!(
        (hs.state, hs.active_site, hs.pair_count),
        (HyperSwapState::ENABLED, 1, 4)
    );
    assert_eq!(hs.session.as_str().trim_end(), "MM1");

    // HyperSwap: z/OS swaps with its applications writing; nothing acknowledged is
    // lost and production is H2.
    tokio::time::sleep(Duration::from_secs(2)).await;
    command(&g, &mut console, SessionCommand::HyperSwap).await;
    let s = session(&g).await;
    assert_eq!(s.state, SessionState::TargetAvailable);
    assert_eq!(s.mirror().production, Site::H2);
    assert_eq!(s.mirror().hyperswap, HyperSwapStatus::Disabled);
    tokio::time::sleep(Duration::from_secs(1)).await;
    common::all_acknowledged_on(&w.service, &w.io, 1, &VOLUMES);
    assert_eq!(
        w.io.io_holds().lock().unwrap().len(),
        1,
        "I/O held for the swap only"
    );

    // Start H2->H1: failback from H2; the configuration reloaded with H2 primary.
    start_and_prepare(&g, &mut console, SessionCommand::StartH2H1).await;
    let s = session(&g).await;
    assert_eq!(
        (s.mirror().source, s.mirror().production),
        (Site::H2, Site::H2)
    );
    for v in VOLUMES {
        assert_eq!(
            pair_state(&w.service, 1, v),
            Some((PairState::FullDuplex, false))
        );
    }
    let hs = w.zos.control().system().hyperswap_status();
    assert_eq!((hs.state, hs.active_site), (HyperSwapState::ENABLED, 1));

    // Suspend: HyperSwap disabled, the group frozen on H2 (the primaries' image),
    // then run: the pairs are suspended by the freeze, writes go on.
    let done = command(&g, &mut console, SessionCommand::Suspend).await;
    assert!(
        done.text.contains("I/O to the primaries goes on"),
        "{done:?}"
    );
    let s = session(&g).await;
    assert_eq!(
        (s.state, s.status),
        (SessionState::Suspended, SessionStatus::Severe)
    );
    for v in VOLUMES {
        assert_eq!(
            pair_state(&w.service, 1, v),
            Some((PairState::Suspended(SuspendReason::Freeze), false))
        );
    }
    let hs = w.zos.control().system().hyperswap_status();
    assert_eq!(hs.state, HyperSwapState::DISABLED);
    let before = w.io.acknowledged();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        w.io.acknowledged().values().max() > before.values().max(),
        "released after the freeze: the applications write"
    );

    // Recover: H1's volumes (the secondaries) failed over; production H1.
    command(&g, &mut console, SessionCommand::Recover).await;
    let s = session(&g).await;
    assert_eq!(s.state, SessionState::TargetAvailable);
    assert_eq!(s.mirror().production, Site::H1);
    assert!(pair_state(&w.service, 1, 0x3000).is_some_and(|(_, over)| over));

    // Start H1->H2 after the recover: failback from H1, the pairs reversed.
    start_and_prepare(&g, &mut console, SessionCommand::StartH1H2).await;
    let s = session(&g).await;
    assert_eq!(
        (s.mirror().source, s.mirror().production),
        (Site::H1, Site::H1)
    );
    assert_eq!(
        pair_state(&w.service, 0, 0x3000),
        Some((PairState::FullDuplex, false))
    );

    // Stop: suspended by pausepprc, no freeze.
    command(&g, &mut console, SessionCommand::Stop).await;
    assert_eq!(
        pair_state(&w.service, 0, 0x3001),
        Some((PairState::Suspended(SuspendReason::Host), false))
    );
    assert_eq!(session(&g).await.state, SessionState::Suspended);

    // Terminate: the configuration purged on SYSA, the pairs removed.
    command(&g, &mut console, SessionCommand::Terminate).await;
    let s = session(&g).await;
    assert_eq!(
        (s.state, s.status),
        (SessionState::Defined, SessionStatus::Inactive)
    );
    assert_eq!(s.mirror().hyperswap, HyperSwapStatus::NotLoaded);
    for v in VOLUMES {
        assert_eq!(pair_state(&w.service, 0, v), None);
    }
    let hs = w.zos.control().system().hyperswap_status();
    assert_eq!(hs.state, HyperSwapState::NO_CONFIG);
    w.stop().await;
}

/// z/OS's own events move the session: a failed link between the images fires
/// its freeze trigger (EVT_FREEZE, EVT_HS_DISABLED): the session is Suspended,
/// Severe, HyperSwap disabled, with console messages.
#[tokio::test(start_paused = true)]
async fn a_freeze_trigger_on_zos_suspends_the_session() {
    let w = world(SessionType::Mm, through_sysa()).await;
    let g = w.gw.handle();
    let mut console = g.console();
    start_and_prepare(&g, &mut console, SessionCommand::StartH1H2).await;
    {
        let system = w.service.control().system();
        let now = system.clock_ms();
        system.complex().cut_link(now, 0, 1);
    }
    // The box's own suspension, z/OS's freeze and its disabling all arrive; the
    // session ends Suspended whichever comes first.
    let mut seen = std::collections::BTreeSet::new();
    tokio::time::timeout(Duration::from_secs(600), async {
        while seen.len() < 2 {
            let m = console.recv().await.unwrap();
            let id = m.id.to_string();
            if id == "IWNR8033W" || id == "IWNR8032W" {
                seen.insert(id);
            }
        }
    })
    .await
    .expect("z/OS's freeze and disable reach the session");
    let s = session(&g).await;
    assert_eq!(
        (s.state, s.status),
        (SessionState::Suspended, SessionStatus::Severe)
    );
    assert_eq!(s.mirror().hyperswap, HyperSwapStatus::Disabled);
    w.stop().await;
}

/// Basic HyperSwap manages CKD volumes only: FB copy sets are refused once the
/// volumes are read, as CSM's CLI refuses them; a Metro Mirror session takes them.
#[tokio::test(start_paused = true)]
async fn basic_hyperswap_refuses_fixed_block_copy_sets() {
    let w = world(SessionType::Hs, through_sysa()).await;
    let g = w.gw.handle();
    let mut console = g.console();
    let fb = |session: &str| Command::AddCopySets {
        session: session.into(),
        copy_sets: vec![CopySet {
            h1: VolumeRef {
                serial: H1.into(),
                volume: VolumeId(0x1000),
            },
            partner: Some(VolumeRef {
                serial: H2.into(),
                volume: VolumeId(0x1000),
            }),
        }],
    };
    // MM1 already holds CKD copy sets: a new HS session takes the FB one alone.
    run(
        &g,
        Command::CreateSession {
            name: "HS2".into(),
            kind: SessionType::Hs,
            description: String::new(),
        },
    )
    .await;
    run(&g, fb("HS2")).await;
    let refused = wait_for(&mut console, "IWNR8023E", "CKD volumes only").await;
    assert!(refused.text.contains("VOL:1000"), "{refused:?}");
    assert!(session_named(&g, "HS2").await.copy_sets.is_empty());
    run(
        &g,
        Command::CreateSession {
            name: "MM2".into(),
            kind: SessionType::Mm,
            description: String::new(),
        },
    )
    .await;
    run(&g, fb("MM2")).await;
    wait_for(
        &mut console,
        "IWNR8001I",
        "1 copy sets were added to session MM2",
    )
    .await;
    // H1 and H2 on one image is not Metro Mirror.
    let same = run(
        &g,
        Command::AddCopySets {
            session: "MM2".into(),
            copy_sets: vec![CopySet {
                h1: VolumeRef {
                    serial: H1.into(),
                    volume: VolumeId(0x1001),
                },
                partner: Some(VolumeRef {
                    serial: H1.into(),
                    volume: VolumeId(0x1002),
                }),
            }],
        },
    )
    .await;
    assert!(matches!(same.outcome, Outcome::Refused(_)), "{same:?}");
    w.stop().await;
}

async fn session_named(g: &GatewayHandle, name: &'static str) -> Session {
    g.read(move |e| e.state().sessions[name].clone())
        .await
        .unwrap()
}

/// H1 stops answering while a command (Refresh States, sent to H1) is in flight:
/// z/OS swaps to H2 on its own (EVT_UNPLANNED_SWAP) and the session says so at
/// once; when the command then fails, the session stays where the swap left it
/// (Target Available, production H2), and no acknowledged write is missing on H2.
#[tokio::test(start_paused = true)]
async fn an_unplanned_swap_while_a_command_is_in_flight_moves_the_session() {
    let w = world(SessionType::Mm, through_sysa()).await;
    let g = w.gw.handle();
    let mut console = g.console();
    start_and_prepare(&g, &mut console, SessionCommand::StartH1H2).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    w.service.control().misbehave(|m| m.silent = true);
    let r = run(&g, mm(SessionCommand::RefreshStates)).await;
    assert!(matches!(r.outcome, Outcome::Started(_)), "{r:?}");
    let swapped = wait_for(&mut console, "IWNR8031W", "unplanned HyperSwap").await;
    assert!(swapped.text.contains("production is H2"), "{swapped:?}");
    let s = session(&g).await;
    assert!(s.busy.is_some(), "the command is still under way");
    assert_eq!(s.mirror().production, Site::H2);
    // The read of H1 gets no answer: it fails, and the session keeps the swap.
    tokio::time::timeout(Duration::from_secs(3600), async {
        loop {
            let m = console.recv().await.unwrap();
            if m.id.to_string() == "IWNR8013E" && m.text.contains("Refresh States") {
                return;
            }
        }
    })
    .await
    .expect("the command in flight ends");
    let s = session(&g).await;
    assert_eq!(
        (s.state, s.status, s.mirror().production),
        (
            SessionState::TargetAvailable,
            SessionStatus::Severe,
            Site::H2
        )
    );
    assert_eq!(s.mirror().hyperswap, HyperSwapStatus::Disabled);
    common::all_acknowledged_on(&w.service, &w.io, 1, &VOLUMES);
    w.service.control().misbehave(|m| m.silent = false);
    w.stop().await;
}

/// The connection to z/OS drops in the middle of a planned HyperSwap: the gateway
/// never hears the answer, so it does not guess and does not send the swap again;
/// it asks z/OS (QUERY_SYSTEM) once the connection is back, finds the swap done,
/// and completes the command with it (policy.md §8.4, §5.8). z/OS swapped once.
#[tokio::test(start_paused = true)]
async fn a_hyperswap_whose_answer_is_lost_is_found_out_on_zos() {
    let w = world(SessionType::Mm, through_sysa()).await;
    let g = w.gw.handle();
    let mut console = g.console();
    start_and_prepare(&g, &mut console, SessionCommand::StartH1H2).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // z/OS carries the swap out but its answer never leaves; then the connection drops.
    w.zos.control().misbehave(|m| m.silent = true);
    let r = run(&g, mm(SessionCommand::HyperSwap)).await;
    assert!(matches!(r.outcome, Outcome::Started(_)), "{r:?}");
    tokio::time::timeout(Duration::from_secs(60), async {
        while w.zos.control().system().hyperswap_status().active_site != 2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("z/OS swaps");
    w.zos.control().drop_connections();
    w.zos.control().misbehave(|m| m.silent = false);
    wait_for(&mut console, "IWNR8019W", "planned HyperSwap").await;
    wait_for(&mut console, "IWNR8020I", "planned HyperSwap").await;
    wait_for(
        &mut console,
        "IWNR1026I",
        "The HyperSwap command in the MM1 session completed",
    )
    .await;
    let s = session(&g).await;
    assert_eq!(
        (s.state, s.mirror().production),
        (SessionState::TargetAvailable, Site::H2)
    );
    assert_eq!(
        w.io.io_holds().lock().unwrap().len(),
        1,
        "z/OS swapped once"
    );
    let hs = w.zos.control().system().hyperswap_status();
    assert_eq!((hs.state, hs.active_site), (HyperSwapState::DISABLED, 2));
    common::all_acknowledged_on(&w.service, &w.io, 1, &VOLUMES);
    w.stop().await;
}

/// Hardened Freeze without HyperSwap: Start arms z/OS's freeze (no swap is
/// offered); a failed link between the images makes z/OS freeze the whole session
/// and tell a hardened freeze (EVT_FREEZE kind 2): the session is Suspended.
#[tokio::test(start_paused = true)]
async fn hardened_freeze_arms_zos_and_its_freeze_suspends_the_session() {
    let p = MmProperties {
        hyperswap: false,
        hardened_freeze: true,
        ..through_sysa()
    };
    let w = world(SessionType::Mm, p).await;
    let g = w.gw.handle();
    let mut console = g.console();
    let started = command(&g, &mut console, SessionCommand::StartH1H2).await;
    assert!(
        started.text.contains("Hardened Freeze is armed"),
        "{started:?}"
    );
    wait_for(&mut console, "IWNR8017I", "the session is Prepared").await;
    let hs = w.zos.control().system().hyperswap_status();
    assert_eq!(hs.state, HyperSwapState::FREEZE_ENABLED);
    let available = g
        .read(|e| e.available_commands("MM1").unwrap_or_default())
        .await
        .unwrap();
    assert!(!available.contains(&"HyperSwap"), "{available:?}");
    {
        let system = w.service.control().system();
        let now = system.clock_ms();
        system.complex().cut_link(now, 0, 1);
    }
    let frozen = tokio::time::timeout(Duration::from_secs(600), async {
        loop {
            let m = console.recv().await.unwrap();
            if m.id.to_string() == "IWNR8033W" {
                return m;
            }
        }
    })
    .await
    .expect("z/OS's hardened freeze reaches the session");
    assert!(frozen.text.contains("hardened freeze"), "{frozen:?}");
    let s = session(&g).await;
    assert_eq!(
        (s.state, s.status),
        (SessionState::Suspended, SessionStatus::Severe)
    );
    assert_eq!(
        w.zos.control().system().hyperswap_status().state,
        HyperSwapState::DISABLED
    );
    // Every pair is frozen, not only those on the failed path.
    for v in VOLUMES {
        assert!(matches!(
            pair_state(&w.service, 0, v),
            Some((PairState::Suspended(_), false))
        ));
    }
    w.stop().await;
}

/// A pair of the session suspended by someone else (a DS CLI pausepprc on H1):
/// z/OS can no longer swap every pair and disables HyperSwap (EVT_HS_DISABLED), the
/// box tells the suspension: the session is Suspended, Severe, HyperSwap disabled.
#[tokio::test(start_paused = true)]
async fn a_pair_suspended_outside_the_session_disables_hyperswap() {
    let w = world(SessionType::Mm, through_sysa()).await;
    let g = w.gw.handle();
    let mut console = g.console();
    start_and_prepare(&g, &mut console, SessionCommand::StartH1H2).await;
    {
        let control = w.service.control();
        let system = control.system();
        system
            .complex()
            .suspend(&[zgate::sim::ds8k::mirror::MirrorVolume {
                site: 0,
                volume: VolumeId(0x3002),
            }])
            .unwrap();
    }
    let mut seen = std::collections::BTreeSet::new();
    tokio::time::timeout(Duration::from_secs(600), async {
        while seen.len() < 2 {
            let m = console.recv().await.unwrap();
            let id = m.id.to_string();
            if id == "IWNR8030E" || id == "IWNR8032W" {
                seen.insert(id);
            }
        }
    })
    .await
    .expect("the box's suspension and z/OS's disabling reach the session");
    let s = session(&g).await;
    assert_eq!(
        (s.state, s.status),
        (SessionState::Suspended, SessionStatus::Severe)
    );
    assert_eq!(s.mirror().hyperswap, HyperSwapStatus::Disabled);
    assert_eq!(
        w.zos.control().system().hyperswap_status().state,
        HyperSwapState::DISABLED
    );
    w.stop().await;
}

/// After a restart the gateway connects at once to the z/OS system holding a
/// session's HyperSwap configuration: an unplanned swap with no command sent since
/// still reaches the session.
#[tokio::test(start_paused = true)]
async fn after_a_restart_an_unplanned_swap_still_reaches_the_session() {
    let mut w = world(SessionType::Mm, through_sysa()).await;
    let g = w.gw.handle();
    let mut console = g.console();
    start_and_prepare(&g, &mut console, SessionCommand::StartH1H2).await;
    w.gw.shutdown().await;
    w.gw = common::start_gateway(
        &w.dir.path().join("zgate.redb"),
        &w.key,
        TEST_PASSWORD_HASH,
        Duration::from_secs(10),
    );
    let g = w.gw.handle();
    let mut console = g.console();
    tokio::time::sleep(Duration::from_secs(1)).await;
    w.service.control().misbehave(|m| m.silent = true);
    let swapped = wait_for(&mut console, "IWNR8031W", "unplanned HyperSwap").await;
    assert!(swapped.text.contains("production is H2"), "{swapped:?}");
    let s = session(&g).await;
    assert_eq!(
        (s.state, s.mirror().production),
        (SessionState::TargetAvailable, Site::H2)
    );
    w.service.control().misbehave(|m| m.silent = false);
    w.stop().await;
}

/// A suspension told after the pairs mirror again (a swap's own freeze, told
/// late) changes nothing: z/OS and the gateway both read the pair's state before
/// acting on the event (zos-hyperswap.md §3.11, policy.md §5.8).
#[tokio::test(start_paused = true)]
async fn a_stale_suspension_event_changes_nothing() {
    let w = world(SessionType::Mm, through_sysa()).await;
    let g = w.gw.handle();
    let mut console = g.console();
    start_and_prepare(&g, &mut console, SessionCommand::StartH1H2).await;
    let now = w.service.control().clock().unix_millis();
    w.service
        .control()
        .inject_event(zgate::proto::ds8k::Ds8kBody::PprcSuspendedEvent {
            primary: VolumeId(0x3001),
            remote: zgate::codec::fields::Ebcdic::new(H2).unwrap(),
            secondary: VolumeId(0x3001),
            reason: 2,
            time_ms: now,
        });
    tokio::time::sleep(Duration::from_secs(5)).await;
    let s = session(&g).await;
    assert_eq!(
        (s.state, s.status),
        (SessionState::Prepared, SessionStatus::Normal)
    );
    assert_eq!(s.mirror().hyperswap, HyperSwapStatus::Enabled);
    assert_eq!(
        w.zos.control().system().hyperswap_status().state,
        HyperSwapState::ENABLED
    );
    while let Ok(m) = console.try_recv() {
        assert!(
            !matches!(m.id.to_string().as_str(), "IWNR8030E" | "IWNR8032W"),
            "{m:?}"
        );
    }
    w.stop().await;
}

/// z/OS's freeze trigger fires while a command is in flight (Refresh States, whose
/// read of H1 gets no answer: the gateway's link to H1 is cut): the session says
/// so at once, and when the command then fails it stays Suspended instead of
/// going back to the state it had before the command.
#[tokio::test(start_paused = true)]
async fn a_freeze_while_a_command_is_in_flight_leaves_the_session_suspended() {
    let relay = common::Relay::start().await;
    let w = world_via(SessionType::Mm, through_sysa(), Some(&relay)).await;
    let g = w.gw.handle();
    let mut console = g.console();
    start_and_prepare(&g, &mut console, SessionCommand::StartH1H2).await;
    relay.set_cut(true);
    let r = run(&g, mm(SessionCommand::RefreshStates)).await;
    assert!(matches!(r.outcome, Outcome::Started(_)), "{r:?}");
    {
        let system = w.service.control().system();
        let now = system.clock_ms();
        system.complex().cut_link(now, 0, 1);
    }
    // The freeze is told, and the command in flight fails on its cut path, in either
    // order: both come over real sockets, and the relay closes the command's
    // connection when it gets to it. While the command is still under way at the
    // freeze, the session says so.
    let mut frozen = None;
    let mut ended = false;
    tokio::time::timeout(Duration::from_secs(3600), async {
        while frozen.is_none() || !ended {
            let m = console.recv().await.unwrap();
            if m.id.to_string() == "IWNR8033W" && m.text.contains("froze the pairs of session MM1")
            {
                if !ended {
                    assert!(session(&g).await.busy.is_some(), "the command is under way");
                }
                frozen = Some(m);
            } else if m.id.to_string() == "IWNR8013E" && m.text.contains("Refresh States") {
                ended = true;
            } else {
                assert!(!m.is_error(), "unexpected error: {m:?}");
            }
        }
    })
    .await
    .expect("the freeze is told and the command in flight ends");
    let frozen = frozen.expect("told");
    assert!(frozen.text.contains("freeze"), "{frozen:?}");
    let s = session(&g).await;
    assert_eq!(
        (s.state, s.status),
        (SessionState::Suspended, SessionStatus::Severe)
    );
    assert_eq!(s.mirror().hyperswap, HyperSwapStatus::Disabled);
    relay.set_cut(false);
    w.stop().await;
}

/// A sysplex of two members: SYSA (with the storage) and SYSB hold the
/// configuration. When SYSB disables HyperSwap while SYSA has it enabled, HyperSwap
/// is *degraded*: the session is Warning, `hyperswapstatus` says so, and no
/// HyperSwap is offered until it is enabled everywhere again (policy.md §5.8).
#[tokio::test(start_paused = true)]
async fn hyperswap_is_degraded_when_one_sysplex_member_disables_it() {
    let w = world(SessionType::Mm, through_sysa()).await;
    let g = w.gw.handle();
    let mut console = g.console();
    let sysb = common::start_zos_peer(None, common::test_clock()).await;
    define_zos(&g, &w.key, "SYSB", sysb.addr().port()).await;
    let r = run(
        &g,
        Command::SetProperties {
            session: "MM1".into(),
            properties: Properties::Mm(MmProperties {
                members: vec!["SYSB".into()],
                ..through_sysa()
            }),
        },
    )
    .await;
    assert_eq!(r.outcome, Outcome::Done, "{r:?}");
    start_and_prepare(&g, &mut console, SessionCommand::StartH1H2).await;
    for peer in [&w.zos, &sysb] {
        assert_eq!(
            peer.control().system().hyperswap_status().state,
            HyperSwapState::ENABLED
        );
    }
    let offered = |g: GatewayHandle| async move {
        g.read(|e| e.available_commands("MM1").unwrap_or_default())
            .await
            .unwrap()
    };
    assert!(offered(g.clone()).await.contains(&"HyperSwap"));
    // SYSB cannot swap any more (a device it lost, say): it disables and says so.
    sysb.control().system().hyperswap_lost();
    sysb.control()
        .inject_event(zgate::proto::zos::ZosBody::HyperSwapDisabledEvent {
            session: zgate::codec::fields::Ebcdic::new("MM1").unwrap(),
            time: sysb.control().unix_now(),
            reason: zgate::proto::zos::ZosReason::PPRC_SUSPENDED.0,
        });
    let told = wait_for(&mut console, "IWNR8032W", "HyperSwap is degraded").await;
    assert!(told.text.contains("SYSB"), "{told:?}");
    let s = session(&g).await;
    assert_eq!(s.status, SessionStatus::Warning);
    assert_eq!(s.hyperswap_status(), "hs degraded");
    assert!(!offered(g.clone()).await.contains(&"HyperSwap"));
    // Suspend disables it on both members: no longer degraded, only disabled.
    command(&g, &mut console, SessionCommand::Suspend).await;
    let s = session(&g).await;
    assert_eq!(s.hyperswap_status(), "hs disabled");
    for peer in [&w.zos, &sysb] {
        assert_eq!(
            peer.control().system().hyperswap_status().state,
            HyperSwapState::DISABLED
        );
    }
    sysb.shutdown().await;
    w.stop().await;
}
