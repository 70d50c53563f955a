//! Active/standby on loopback (protocol-specs/ha.md): two `zgate serve` services in
//! one process, each with its own store, paired over the HA port with mutual TLS.
//! Every kind of state changed on the active is on the standby (the two `State`s
//! compared) after the full copy, after live changes, and after a break; a
//! takeover makes the standby the active in a higher epoch, and the old active is
//! fenced and then follows it. Waits are on the gateways' own signals (the stream's
//! head, console messages), never on sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use zgate::clock::Clock;
use zgate::gateway::ha::AckMode;
use zgate::gateway::service::{ServeConfig, Service};
use zgate::gateway::{GatewayHandle, ServerRole};
use zgate::policy::SessionType;
use zgate::policy::access::Role;
use zgate::policy::console::ids;
use zgate::policy::engine::{Command, State};

const KEY: &str = "8899aabbccddeeff00112233445566778899aabbccddeeff0011223344556677";
const ADMIN_PASSWORD: &str = "a-long-passphrase";

fn config(dir: &Path, ha_listen: SocketAddr, ack: AckMode) -> ServeConfig {
    config_named(dir, ha_listen, ack, None)
}

fn config_named(
    dir: &Path,
    ha_listen: SocketAddr,
    ack: AckMode,
    advertise: Option<String>,
) -> ServeConfig {
    let mut c = ServeConfig::default();
    c.csm.listen = "127.0.0.1:0".parse().unwrap();
    c.rest.listen = "127.0.0.1:0".parse().unwrap();
    c.ha.listen = ha_listen;
    c.ha.heartbeat_ms = 100;
    c.ha.dead_after_ms = 2000;
    c.ha.ack = ack;
    c.ha.advertise = advertise;
    c.store.dir = dir.to_owned();
    c.store.key_env = Some("HA_TEST_KEY".into());
    c
}

async fn start(dir: &Path, ha_listen: SocketAddr) -> Service {
    start_in(dir, ha_listen, AckMode::Sync).await
}

async fn start_in(dir: &Path, ha_listen: SocketAddr, ack: AckMode) -> Service {
    start_config(&config(dir, ha_listen, ack)).await
}

async fn start_config(config: &ServeConfig) -> Service {
    let env = |v: &str| match v {
        "ZGATE_ADMIN_PASSWORD" => Some(ADMIN_PASSWORD.to_owned()),
        "HA_TEST_KEY" => Some(KEY.to_owned()),
        _ => None,
    };
    Service::start(config, &env, Clock::system()).await.unwrap()
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn state(g: &GatewayHandle) -> State {
    g.read(|e| e.state().clone()).await.unwrap()
}

async fn last_seq(g: &GatewayHandle) -> u64 {
    g.stream().unwrap().last_seq().unwrap()
}

/// Waits until the standby has stored everything the active has.
async fn caught_up(active: &GatewayHandle, standby: &GatewayHandle) {
    let target = last_seq(active).await;
    let mut head = standby.ha_gate().durable.subscribe();
    tokio::time::timeout(Duration::from_secs(30), head.wait_for(|s| *s >= target))
        .await
        .expect("the standby did not catch up within 30 s")
        .unwrap();
}

/// Waits for a console message with `id` on `g` (subscribed before the cause).
async fn message(
    console: &mut tokio::sync::broadcast::Receiver<zgate::policy::console::ConsoleMessage>,
    id: zgate::policy::console::MessageId,
) -> String {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match console.recv().await {
                Ok(m) if m.id == id => return m.text,
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("console closed: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {id} within 30 s"))
}

async fn role_becomes(g: &GatewayHandle, standby: bool) {
    let mut roles = g.role_changes();
    tokio::time::timeout(
        Duration::from_secs(30),
        roles.wait_for(|r| matches!(r, ServerRole::Standby { .. }) == standby),
    )
    .await
    .expect("the role did not change within 30 s")
    .unwrap();
}

fn hash(password: &str) -> String {
    zgate::password::hash_password(
        password,
        &[7u8; 16],
        argon2::Params::new(1024, 1, 1, None).unwrap(),
    )
    .unwrap()
}

/// Changes of the kinds the engine stores: users, sessions and their descriptions,
/// a scheduled task, a server property, a storage system and a host connection with
/// their sealed secrets.
async fn change_everything(g: &GatewayHandle, round: u32) {
    let key = zgate::store::sealing::SealingKey::from_hex(KEY).unwrap();
    let admin = "admin";
    let ok = |r: zgate::policy::engine::Reply| {
        assert!(
            !matches!(r.outcome, zgate::policy::engine::Outcome::Refused(_)),
            "{}",
            r.message.text
        );
    };
    ok(g.command(
        admin,
        Command::CreateUser {
            name: format!("op{round}"),
            role: Role::Operator,
            grant: None,
            password_hash: hash("op-password"),
        },
    )
    .await
    .unwrap());
    for (kind, prefix) in [(SessionType::Fc, "FC"), (SessionType::Sgc, "SGC")] {
        let name = format!("{prefix}{round}");
        ok(g.command(
            admin,
            Command::CreateSession {
                name: name.clone(),
                kind,
                description: format!("round {round}"),
            },
        )
        .await
        .unwrap());
        ok(g.command(
            admin,
            Command::SetDescription {
                session: name,
                description: format!("changed in round {round}"),
            },
        )
        .await
        .unwrap());
    }
    ok(g.command(
        admin,
        Command::SetServerProperty {
            name: "zgate.copy.poll.secs".into(),
            value: format!("{}", 10 + round),
        },
    )
    .await
    .unwrap());
    ok(g.command(
        admin,
        Command::CreateTask {
            name: format!("nightly{round}"),
            session: format!("SGC{round}"),
            command: zgate::policy::session::SessionCommand::Backup,
            schedule: zgate::policy::schedule::Schedule::Once {
                at_ms: Some(4_000_000_000_000),
            },
            enabled: round.is_multiple_of(2),
            description: format!("task of round {round}"),
        },
    )
    .await
    .unwrap());
    let system = format!("SYS{round}");
    let sealed = key.seal(&format!("{system} password"), b"HOSTPW1").unwrap();
    ok(g.command(
        admin,
        Command::DefineHostConnection(zgate::policy::inventory::HostConnection {
            system,
            kind: zgate::policy::inventory::HostKind::Zos,
            address: "127.0.0.1".into(),
            port: 1,
            user: "HOSTUSR".into(),
            credential: zgate::policy::inventory::HostCredential::Password(sealed),
        }),
    )
    .await
    .unwrap());
    let serial = format!("75HA{round:03}");
    let password = key
        .seal(&format!("DS8000:BOX:2107.{serial} password"), b"HMCPASS1")
        .unwrap();
    ok(g.command(
        admin,
        Command::DefineStorageSystem(zgate::policy::inventory::StorageSystem {
            serial,
            address: "127.0.0.1:1".into(),
            user: "CSMADMIN".into(),
            password,
        }),
    )
    .await
    .unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_holds_what_the_active_holds_then_takes_over_and_fences_the_old_active() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("zgate=info")
        .with_test_writer()
        .try_init();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start(a_dir.path(), any_port()).await;
    let b = start(b_dir.path(), any_port()).await;
    let (ga, gb) = (a.gateway(), b.gateway());
    let (a_ha, b_ha) = (a.ha_addr().unwrap(), b.ha_addr().unwrap());
    change_everything(&ga, 1).await;
    // The standby-to-be has a history of its own, which the full copy replaces.
    change_everything(&gb, 9).await;

    // A wrong password is refused and changes nothing.
    let refused = a
        .ha()
        .unwrap()
        .set_standby(&b_ha.to_string(), "admin", "not-the-password")
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("refused the user or password"),
        "{refused}"
    );
    assert_eq!(gb.role(), ServerRole::Active);

    let mut console_a = ga.console();
    let text = a
        .ha()
        .unwrap()
        .set_standby(&b_ha.to_string(), "admin", ADMIN_PASSWORD)
        .await
        .unwrap();
    assert!(text.contains("is now the standby"), "{text}");
    message(&mut console_a, ids::HA_SYNCHRONIZED).await;
    caught_up(&ga, &gb).await;
    assert_eq!(state(&ga).await, state(&gb).await, "after the full copy");
    assert!(matches!(gb.role(), ServerRole::Standby { .. }));

    // A standby refuses changes and names the active.
    let err = gb
        .command(
            "admin",
            Command::SetDescription {
                session: "FC1".into(),
                description: "on the standby".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&a_ha.to_string()), "{err}");

    // Live changes.
    change_everything(&ga, 2).await;
    caught_up(&ga, &gb).await;
    assert_eq!(state(&ga).await, state(&gb).await, "after live changes");
    // The standby's snapshots are written as the active's are, as the parts the
    // records since the last one touched (store.md §6.2): its snapshot after the
    // full copy and the live changes holds its whole state.
    let at = gb.snapshot().await.unwrap();
    let (snapshot_at, held) = gb.stream().unwrap().snapshot().unwrap().unwrap();
    assert_eq!(snapshot_at, at);
    assert_eq!(held, state(&gb).await, "the standby's snapshot");
    let status = a.ha().unwrap().status();
    assert_eq!(status.role, "ACTIVE");
    assert_eq!(status.lag_records, 0, "{status:?}");
    // A pending dual-control request is state too.
    let held = ga
        .command(
            "admin",
            Command::SetDualControlMode(
                zgate::policy::dual_control::DualControlMode::FullProtection,
            ),
        )
        .await
        .unwrap();
    assert!(
        matches!(held.outcome, zgate::policy::engine::Outcome::Requested(_)),
        "{held:?}"
    );
    caught_up(&ga, &gb).await;
    assert_eq!(state(&ga).await, state(&gb).await, "after a held request");
    assert_eq!(state(&gb).await.dual.pending().count(), 1);

    // A break: the standby stops, the active goes on alone, the standby comes back
    // on the same port and resumes from what it acknowledged.
    b.shutdown().await;
    change_everything(&ga, 3).await;
    let b = start(b_dir.path(), b_ha).await;
    let gb = b.gateway();
    assert!(matches!(gb.role(), ServerRole::Standby { .. }));
    caught_up(&ga, &gb).await;
    assert_eq!(
        state(&ga).await,
        state(&gb).await,
        "after a break and resume"
    );

    // Takeover: the standby becomes the active in a higher epoch and takes changes.
    let epoch_before = a.ha().unwrap().status().epoch;
    let mut console_a = ga.console();
    let text = b.ha().unwrap().takeover().await.unwrap();
    assert!(text.contains("took over"), "{text}");
    assert_eq!(gb.role(), ServerRole::Active);
    assert!(b.ha().unwrap().status().epoch > epoch_before);
    change_everything(&gb, 4).await;

    // The old active hears of the higher epoch and stops acting, then follows the
    // new active and holds what it holds.
    message(&mut console_a, ids::HA_FENCED).await;
    role_becomes(&ga, true).await;
    let err = ga
        .command(
            "admin",
            Command::SetDescription {
                session: "FC1".into(),
                description: "on the fenced server".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("standby"), "{err}");
    change_everything(&gb, 5).await;
    caught_up(&gb, &ga).await;
    assert_eq!(
        state(&gb).await,
        state(&ga).await,
        "the old active follows the new"
    );

    b.shutdown().await;
    a.shutdown().await;
}

/// ha.md §5.4: a standby refuses records that do not follow its journal, come from
/// an older epoch, or are damaged: nothing is stored or applied; records that follow
/// are stored and applied. An active refuses replicated records altogether.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_refuses_records_that_do_not_follow_or_are_damaged() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start(a_dir.path(), any_port()).await;
    let b = start(b_dir.path(), any_port()).await;
    let (ga, gb) = (a.gateway(), b.gateway());
    // An active takes no replicated records.
    assert!(gb.replicate(Vec::new()).await.is_err());
    change_everything(&ga, 1).await;
    // B becomes a standby of A by hand here, holding A's full copy.
    gb.follow("127.0.0.1:1").await.unwrap();
    let reader = ga.stream().unwrap();
    ga.snapshot().await.unwrap();
    let (seq, sealed) = reader.snapshot_sealed().unwrap().unwrap();
    gb.install(zgate::gateway::FullCopy {
        seq,
        epochs: reader.epochs().unwrap(),
        audit: reader.audit_sealed_upto(seq).unwrap(),
        state: sealed,
    })
    .await
    .unwrap();
    assert_eq!(state(&ga).await, state(&gb).await);
    change_everything(&ga, 2).await;
    let rest = reader.since_sealed(seq, usize::MAX, usize::MAX).unwrap();
    let before = state(&gb).await;
    // Out of order, an older epoch, damaged: refused, nothing applied.
    assert!(gb.replicate(rest[1..3].to_vec()).await.is_err());
    let mut older = rest[..2].to_vec();
    older[1].1 = 0;
    assert!(gb.replicate(older).await.is_err());
    let mut damaged = rest[..2].to_vec();
    let n = damaged[1].2.len();
    damaged[1].2[n - 2] ^= 0x01;
    assert!(gb.replicate(damaged).await.is_err());
    assert_eq!(
        state(&gb).await,
        before,
        "a refused batch changed the standby"
    );
    // What follows is taken.
    gb.replicate(rest).await.unwrap();
    assert_eq!(state(&ga).await, state(&gb).await);
    drop(reader);
    b.shutdown().await;
    a.shutdown().await;
}

/// ha.md §5.3: in asynchronous mode answers do not wait for the standby, which
/// follows all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_asynchronous_standby_follows_all_the_same() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start_in(a_dir.path(), any_port(), AckMode::Async).await;
    let b = start_in(b_dir.path(), any_port(), AckMode::Async).await;
    let (ga, gb) = (a.gateway(), b.gateway());
    let b_ha = b.ha_addr().unwrap().to_string();
    a.ha()
        .unwrap()
        .set_standby(&b_ha, "admin", ADMIN_PASSWORD)
        .await
        .unwrap();
    change_everything(&ga, 1).await;
    change_everything(&ga, 2).await;
    caught_up(&ga, &gb).await;
    assert_eq!(state(&ga).await, state(&gb).await);
    assert!(!*ga.ha_gate().sync.borrow(), "async answers never wait");
    b.shutdown().await;
    a.shutdown().await;
}

/// ds8k.md §3.4, ha.md §7: the old active, cut off from its partner but not from the
/// storage system, cannot change the box once the new active has taken over: the box
/// refuses its Flash as `FENCED`, having carried out nothing, and the old active stops
/// acting; when the partition heals it follows the new active.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_active_cut_off_from_its_partner_is_fenced_by_the_storage_system() {
    use zgate::policy::engine::Outcome;
    use zgate::policy::inventory::VolumeRef;
    use zgate::policy::session::{CopySet, SessionCommand};
    let _ = tracing_subscriber::fmt()
        .with_env_filter("zgate=info")
        .with_test_writer()
        .try_init();
    let box_ = common::ds8k_service(Clock::system(), |_| {}).await;
    // Every HA connection between the two goes through a relay the test can cut.
    let (to_a, to_b) = (common::Relay::start().await, common::Relay::start().await);
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start_config(&config_named(
        a_dir.path(),
        any_port(),
        AckMode::Sync,
        Some(to_a.addr.to_string()),
    ))
    .await;
    let b = start_config(&config_named(
        b_dir.path(),
        any_port(),
        AckMode::Sync,
        Some(to_b.addr.to_string()),
    ))
    .await;
    to_a.to(a.ha_addr().unwrap());
    to_b.to(b.ha_addr().unwrap());
    let (ga, gb) = (a.gateway(), b.gateway());

    // On A: the box and an FC session of one copy set.
    let key = zgate::store::sealing::SealingKey::from_hex(KEY).unwrap();
    let run = |g: GatewayHandle, command: Command| async move {
        let r = g.command("admin", command).await.unwrap();
        assert!(
            !matches!(r.outcome, Outcome::Refused(_)),
            "{}",
            r.message.text
        );
        r
    };
    run(
        ga.clone(),
        Command::DefineStorageSystem(zgate::policy::inventory::StorageSystem {
            serial: "75FA120".into(),
            address: box_.addr().to_string(),
            user: "CSMADMIN".into(),
            password: key
                .seal("DS8000:BOX:2107.75FA120 password", b"HMCPASS1")
                .unwrap(),
        }),
    )
    .await;
    run(
        ga.clone(),
        Command::CreateSession {
            name: "FC1".into(),
            kind: SessionType::Fc,
            description: String::new(),
        },
    )
    .await;
    let vol = |v: u16| VolumeRef {
        serial: "75FA120".into(),
        volume: zgate::ds8k::VolumeId(v),
    };
    run(
        ga.clone(),
        Command::AddCopySets {
            session: "FC1".into(),
            copy_sets: vec![CopySet {
                h1: vol(0x3000),
                partner: Some(vol(0x3100)),
            }],
        },
    )
    .await;
    let give_up = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let fc1 = ga
            .read(|e| e.state().sessions.get("FC1").cloned())
            .await
            .unwrap()
            .unwrap();
        if fc1.busy.is_none() && !fc1.copy_sets.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < give_up, "copy sets not added");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The pair, through the relays.
    let mut console_a = ga.console();
    a.ha()
        .unwrap()
        .set_standby(&to_b.addr.to_string(), "admin", ADMIN_PASSWORD)
        .await
        .unwrap();
    message(&mut console_a, ids::HA_SYNCHRONIZED).await;
    caught_up(&ga, &gb).await;
    let domain = ga.ha_gate().fence.borrow().domain;
    assert_ne!(domain, 0, "a pair has a fence domain");
    assert_eq!(
        gb.ha_gate().fence.borrow().domain,
        domain,
        "the same on both"
    );

    // The partition; B takes over and shows the box its epoch.
    to_a.set_cut(true);
    to_b.set_cut(true);
    b.ha().unwrap().takeover().await.unwrap();
    let new_epoch = gb.ha_gate().fence.borrow().epoch;
    assert!(new_epoch > ga.ha_gate().fence.borrow().epoch);
    let give_up = std::time::Instant::now() + Duration::from_secs(30);
    while box_.control().system().fences().epoch_of(domain) < new_epoch {
        assert!(
            std::time::Instant::now() < give_up,
            "the box never saw the new epoch"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        ga.role(),
        ServerRole::Active,
        "A has not heard of the takeover"
    );

    // A, still the active in its own eyes, flashes: the box refuses and changes
    // nothing, and A stops acting.
    let mut console_a = ga.console();
    let flash = ga
        .command(
            "admin",
            Command::Run {
                session: "FC1".into(),
                command: SessionCommand::Flash,
            },
        )
        .await
        .unwrap();
    assert!(matches!(flash.outcome, Outcome::Started(_)), "{flash:?}");
    let fenced = message(&mut console_a, ids::HA_FENCED).await;
    assert!(fenced.contains(&format!("epoch {new_epoch}")), "{fenced}");
    role_becomes(&ga, true).await;
    assert_eq!(
        box_.control().system().image().relationship_count(),
        0,
        "the old active's Flash was carried out"
    );
    assert!(box_.control().system().image().frozen_lsss().is_empty());

    // The partition heals: A follows B and holds what B holds.
    to_a.set_cut(false);
    to_b.set_cut(false);
    run(
        gb.clone(),
        Command::SetDescription {
            session: "FC1".into(),
            description: "after the partition".into(),
        },
    )
    .await;
    b.ha().unwrap().reconnect().await.ok();
    // A wrote records of its own after the takeover (the refused Flash), so it
    // follows with a full copy (ha.md §7).
    let give_up = std::time::Instant::now() + Duration::from_secs(30);
    while state(&gb).await != state(&ga).await {
        assert!(std::time::Instant::now() < give_up, "A does not follow B");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    b.shutdown().await;
    a.shutdown().await;
}
