//! End to end over loopback: the gateway's z/OS connector against the emulated z/OS peer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;
use zgate::client::zos::{
    self, Authentication, ConnectorEvent, RequestError, ZosConnectorConfig, ZosHandle,
};
use zgate::codec::fields::Ebcdic;
use zgate::codec::frame::FrameCodec;
use zgate::passticket::{
    EnhancedGenerator, EnhancedKey, LegacyGenerator, LegacyKey, RacfName, TicketType,
};
use zgate::peer::server::LimitsConfig;
use zgate::peer::zos::{ZosPeer, ZosPeerConfig};
use zgate::proto::zos::messages::Credential;
use zgate::proto::zos::session::CloseReason;
use zgate::proto::zos::{CredentialKind, HyperSwapState, LogonRequest, ZosBody, ZosMessage};
use zgate::proto::{Control, HostFlashOptions, Payload, ReturnCode, VolumePair, VolumeRef};
use zgate::sim::security::hash_password;
use zgate::sim::zos::{Recorded, ZosSystem, ZosSystemConfig};

const LEGACY: &str = "0123456789ABCDEF";
const ENHANCED: &str = "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF";

fn system_config() -> ZosSystemConfig {
    let toml = format!(
        r#"
        sysplex = "PLEX1"
        system = "SYSA"
        revoke_after = 3
        [[users]]
        user = "HOSTUSR"
        permits = ["FLASH", "SGC_BACKUP", "HYPERSWAP"]
        [[users]]
        user = "OPER1"
        password_hash = "{}"
        [[ptktdata]]
        name = "IOSHMCSM"
        legacy_key_env = "LEGACY"
        enhanced_key_env = "ENHANCED"
        ticket_type = "upper"
        "#,
        hash_password(
            "SECRET1",
            b"fixed-test-salt",
            argon2::Params::new(256, 1, 1, None).unwrap()
        )
        .unwrap()
    );
    let cfg: ZosPeerConfig = toml::from_str(&format!("listen = \"127.0.0.1:0\"\n{toml}")).unwrap();
    cfg.system
}

/// OPER1 logs on with a password over plain TCP here, and the RACF tests send bad
/// tickets in a row from one address: no throttle (it has its own test).
fn test_limits() -> LimitsConfig {
    LimitsConfig {
        allow_plaintext_passwords: true,
        failed_logons_before_throttle: 0,
        ..LimitsConfig::default()
    }
}

async fn start_peer() -> ZosPeer {
    let cfg: ZosPeerConfig = ZosPeerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        max_body: 65536,
        max_connections: 64,
        tls: None,
        limits: test_limits(),
        storage: None,
        hyperswap_storage: Vec::new(),
        workload: None,
        system: system_config(),
    };
    let system = ZosSystem::with_keys(&cfg.system, |v| match v {
        "LEGACY" => Some(LEGACY.into()),
        "ENHANCED" => Some(ENHANCED.into()),
        _ => None,
    })
    .unwrap();
    let mut listen = cfg.listen_config().unwrap();
    listen.clock = common::test_clock();
    ZosPeer::start(&listen, system).await.unwrap()
}

fn connector_config(peer: &ZosPeer) -> ZosConnectorConfig {
    let mut c = ZosConnectorConfig::new(peer.addr());
    c.clock = peer.control().clock();
    c.backoff_initial = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(200);
    c.request_timeout = Duration::from_secs(2);
    c
}

fn legacy_auth() -> Authentication {
    Authentication::LegacyPassTicket(LegacyGenerator::new(&LegacyKey::from_hex(LEGACY).unwrap()))
}

fn enhanced_auth() -> Authentication {
    Authentication::EnhancedPassTicket(EnhancedGenerator::new(
        &EnhancedKey::from_hex(ENHANCED).unwrap(),
        TicketType::Upper,
    ))
}

async fn next(h: &mut ZosHandle) -> ConnectorEvent {
    tokio::time::timeout(Duration::from_secs(10), h.next_event())
        .await
        .expect("event in time")
        .expect("connector running")
}

async fn connected(h: &mut ZosHandle) -> (u64, Option<zgate::passticket::PassTicket>) {
    loop {
        match next(h).await {
            ConnectorEvent::Connected {
                attempt,
                ticket,
                system,
                ..
            } => {
                assert_eq!(system, "SYSA");
                return (attempt, ticket);
            }
            ConnectorEvent::GaveUp { status, .. } => panic!("gave up: {status:?}"),
            _ => {}
        }
    }
}

fn vol(v: u16) -> VolumeRef {
    VolumeRef {
        storage: Ebcdic::new("75FA120").unwrap(),
        volume: v,
        device: 0x9000 + v,
    }
}

fn pairs() -> Vec<VolumePair> {
    vec![
        VolumePair {
            first: vol(0x1000),
            second: vol(0x2000),
        },
        VolumePair {
            first: vol(0x1001),
            second: vol(0x2001),
        },
    ]
}

#[tokio::test(start_paused = true)]
async fn logon_with_legacy_enhanced_and_password() {
    let peer = start_peer().await;
    for auth in [legacy_auth(), enhanced_auth()] {
        let mut h = zos::spawn(connector_config(&peer), auth).unwrap();
        let (_, ticket) = connected(&mut h).await;
        assert_eq!(ticket.unwrap().as_str().len(), 8);
        let reply = h.request(ZosBody::QuerySystemRequest).await.unwrap();
        assert!(matches!(reply, ZosBody::QuerySystemReply(i) if i.level.as_str() == "V2R5"));
        h.shutdown().await;
    }
    let mut cfg = connector_config(&peer);
    cfg.user = "OPER1".into();
    let mut h = zos::spawn(
        cfg,
        Authentication::Password(Credential::new("SECRET1").unwrap()),
    )
    .unwrap();
    connected(&mut h).await;
    // OPER1 holds no permits: logged on, but no FLASH, backup or HyperSwap command.
    let flash = h
        .request(ZosBody::FlashRequest {
            options: HostFlashOptions(0),
            pairs: pairs(),
        })
        .await
        .unwrap();
    assert!(
        matches!(flash, ZosBody::FlashReply { status, .. } if status.reason == 0x0120),
        "NOT_PERMITTED: {flash:?}"
    );
    let enable = h
        .request(ZosBody::EnableRequest {
            session: Ebcdic::new("HSPROD").unwrap(),
        })
        .await
        .unwrap();
    assert!(matches!(enable, ZosBody::HyperSwapReply { status, .. } if status.reason == 0x0120));
    assert!(
        peer.control().system().recorded().is_empty(),
        "nothing reached IOS"
    );
    h.shutdown().await;
    peer.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn wrong_key_is_refused_and_the_connector_gives_up_before_revocation() {
    let peer = start_peer().await;
    let bad = Authentication::LegacyPassTicket(LegacyGenerator::new(
        &LegacyKey::from_hex("FEDCBA9876543210").unwrap(),
    ));
    let mut h = zos::spawn(connector_config(&peer), bad).unwrap();
    let mut refusals = 0;
    loop {
        match next(&mut h).await {
            ConnectorEvent::Disconnected {
                reason: CloseReason::LogonRefused { status, racf_rc },
            } => {
                assert_eq!(
                    (status.rc, status.reason, racf_rc),
                    (ReturnCode::REFUSED, 0x0100, 8)
                );
                refusals += 1;
            }
            ConnectorEvent::GaveUp { status, .. } => {
                assert_eq!(status.reason, 0x0100);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(refusals, 1);
    assert_eq!(
        h.request(ZosBody::QuerySystemRequest).await,
        Err(RequestError::NotConnected)
    );
    // Two failures: the user is not revoked (RACF revokes at 3).
    let user = RacfName::parse("u", "HOSTUSR").unwrap();
    assert_eq!(peer.control().system().racf().failures(&user), Some(2));
    assert!(!peer.control().system().racf().is_revoked(&user));
    assert_eq!(
        peer.control().system().refusals().back().unwrap().reason,
        0x0101
    );
    h.shutdown().await;
    peer.shutdown().await;
}

/// Logs on once with a hand-made ticket over a raw socket and returns the reply status.
async fn raw_logon(peer: &ZosPeer, user: &str, ticket: &str) -> (u16, u16, u16) {
    let stream = TcpStream::connect(peer.addr()).await.unwrap();
    let mut framed = Framed::new(stream, FrameCodec::default());
    let logon = ZosMessage::control(
        1,
        Control::LogonRequest(LogonRequest {
            user: Ebcdic::new(user).unwrap(),
            appl: Ebcdic::new("IOSHMCSM").unwrap(),
            kind: CredentialKind::PASSTICKET,
            heartbeat_secs: 30,
            credential: Credential::new(ticket).unwrap(),
        }),
    );
    framed.send(logon.to_frame()).await.unwrap();
    let frame = framed.next().await.unwrap().unwrap();
    match ZosMessage::decode(&frame).unwrap().body {
        Payload::Control(Control::LogonReply(r)) => (r.status.rc.0, r.status.reason, r.racf_rc),
        other => panic!("{other:?}"),
    }
}

fn ticket_now(peer: &ZosPeer, offset: i64) -> String {
    let now = peer.control().clock().unix_secs();
    LegacyGenerator::new(&LegacyKey::from_hex(LEGACY).unwrap())
        .generate(
            &RacfName::parse("u", "HOSTUSR").unwrap(),
            &RacfName::parse("a", "IOSHMCSM").unwrap(),
            now.saturating_add_signed(offset),
        )
        .to_string()
}

/// Every credential refusal reaches the client as one NOT_AUTHORIZED (0x0100, RACF 8)
/// so that the wire does not tell which user ids exist; the host keeps the precise
/// reason (passticket.md §4.7).
#[tokio::test(start_paused = true)]
async fn replay_expired_future_and_revoked_refusals() {
    let peer = start_peer().await;
    const REFUSED: (u16, u16, u16) = (8, 0x0100, 8);
    let last = |peer: &ZosPeer| {
        let r = peer.control().system().refusals().back().cloned().unwrap();
        (r.reason, r.revoked_now)
    };
    let t = ticket_now(&peer, 0);
    assert_eq!(raw_logon(&peer, "HOSTUSR", &t).await, (0, 0, 0));
    assert_eq!(raw_logon(&peer, "HOSTUSR", &t).await, REFUSED, "replay");
    assert_eq!(last(&peer), (0x0104, false));
    assert_eq!(
        raw_logon(&peer, "HOSTUSR", &ticket_now(&peer, -3600)).await,
        REFUSED
    );
    assert_eq!(last(&peer), (0x0102, false), "expired");
    // A success in between resets the count, then three failures revoke.
    assert_eq!(
        raw_logon(&peer, "HOSTUSR", &ticket_now(&peer, -2)).await,
        (0, 0, 0)
    );
    assert_eq!(
        raw_logon(&peer, "HOSTUSR", &ticket_now(&peer, 3600)).await,
        REFUSED
    );
    assert_eq!(last(&peer), (0x0103, false), "future");
    assert_eq!(raw_logon(&peer, "HOSTUSR", "AAAAAAAA").await, REFUSED);
    assert_eq!(last(&peer), (0x0101, false));
    assert_eq!(raw_logon(&peer, "HOSTUSR", "BBBBBBBB").await, REFUSED);
    assert_eq!(last(&peer), (0x0101, true), "the third failure revokes");
    assert_eq!(
        raw_logon(&peer, "HOSTUSR", &ticket_now(&peer, 1)).await,
        REFUSED
    );
    assert_eq!(last(&peer), (0x0107, false), "revoked");
    // An unknown user gets exactly what a known one with a bad ticket gets.
    assert_eq!(
        raw_logon(&peer, "NOBODY", &ticket_now(&peer, 0)).await,
        REFUSED
    );
    assert_eq!(last(&peer), (0x0106, false), "unknown user");
    // The peer's clock runs an hour ahead: a current ticket has expired there.
    peer.control()
        .system()
        .racf()
        .resume(&RacfName::parse("u", "HOSTUSR").unwrap());
    peer.control().misbehave(|m| m.clock_offset_secs = 3600);
    assert_eq!(
        raw_logon(&peer, "HOSTUSR", &ticket_now(&peer, 3)).await,
        REFUSED
    );
    assert_eq!(last(&peer), (0x0102, false));
    peer.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn hyperswap_flow_with_unplanned_swap_event() {
    let peer = start_peer().await;
    let mut h = zos::spawn(connector_config(&peer), enhanced_auth()).unwrap();
    connected(&mut h).await;
    let session = Ebcdic::new("HSPROD").unwrap();
    let r = h
        .request(ZosBody::LoadConfigRequest {
            session: session.clone(),
            pairs: pairs(),
        })
        .await
        .unwrap();
    assert!(
        matches!(r, ZosBody::HyperSwapReply { status, hyperswap, .. } if status.rc == ReturnCode::OK && hyperswap.state == HyperSwapState::DISABLED)
    );
    let r = h
        .request(ZosBody::PlannedSwapRequest {
            session: session.clone(),
        })
        .await
        .unwrap();
    assert!(
        matches!(r, ZosBody::HyperSwapReply { status, .. } if status.reason == 0x0204),
        "swap needs enabled: {r:?}"
    );
    let r = h
        .request(ZosBody::EnableRequest {
            session: session.clone(),
        })
        .await
        .unwrap();
    assert!(
        matches!(r, ZosBody::HyperSwapReply { hyperswap, .. } if hyperswap.state == HyperSwapState::ENABLED)
    );
    let r = h
        .request(ZosBody::LoadConfigRequest {
            session: session.clone(),
            pairs: pairs(),
        })
        .await
        .unwrap();
    assert!(
        matches!(r, ZosBody::HyperSwapReply { status, .. } if status.reason == 0x0205),
        "no reload while enabled"
    );

    peer.control().primary_failure().unwrap();
    match next(&mut h).await {
        ConnectorEvent::Event(ZosBody::UnplannedSwapEvent {
            session: s,
            swapped_pairs: 2,
            reason: 0x0501,
            ..
        }) => assert_eq!(s, session),
        other => panic!("{other:?}"),
    }
    let r = h.request(ZosBody::QuerySystemRequest).await.unwrap();
    assert!(
        matches!(r, ZosBody::QuerySystemReply(i) if i.hyperswap.active_site == 2 && i.hyperswap.state == HyperSwapState::DISABLED)
    );
    h.shutdown().await;
    peer.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn flash_and_backup_reach_the_host() {
    let peer = start_peer().await;
    let mut h = zos::spawn(connector_config(&peer), legacy_auth()).unwrap();
    connected(&mut h).await;
    let options =
        HostFlashOptions(HostFlashOptions::INHIBIT_TARGET_WRITES | HostFlashOptions::NO_COPY);
    let r = h
        .request(ZosBody::FlashRequest {
            options,
            pairs: pairs(),
        })
        .await
        .unwrap();
    assert!(
        matches!(r, ZosBody::FlashReply { pair_count: 2, status, .. } if status.rc == ReturnCode::OK)
    );
    let r = h
        .request(ZosBody::BackupRequest {
            volumes: vec![vol(0x1000), vol(0x1001)],
        })
        .await
        .unwrap();
    let ZosBody::BackupReply { backup_id, .. } = r else {
        panic!("{r:?}")
    };
    let dup = h
        .request(ZosBody::BackupRequest {
            volumes: vec![vol(0x1000), vol(0x1000)],
        })
        .await
        .unwrap();
    assert!(matches!(dup, ZosBody::BackupReply { status, .. } if status.reason == 0x0206));
    let recorded = peer.control().system().recorded().to_vec();
    assert_eq!(recorded.len(), 2);
    assert!(
        matches!(&recorded[0], Recorded::Flash { options: o, pairs: p, .. } if *o == options && p.len() == 2)
    );
    assert!(matches!(&recorded[1], Recorded::Backup { backup_id: b, .. } if *b == backup_id));
    h.shutdown().await;
    peer.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn peer_restart_reconnects_with_a_new_ticket() {
    let peer = start_peer().await;
    let addr = peer.addr();
    let clock = peer.control().clock();
    let mut h = zos::spawn(connector_config(&peer), legacy_auth()).unwrap();
    let (_, first) = connected(&mut h).await;
    peer.shutdown().await;
    assert!(matches!(
        next(&mut h).await,
        ConnectorEvent::Disconnected { .. }
    ));
    // The same address again, a new process state (fresh replay cache) would accept a
    // reused ticket; the connector must still use a new one.
    let cfg = ZosPeerConfig {
        listen: addr,
        max_body: 65536,
        max_connections: 64,
        tls: None,
        limits: test_limits(),
        storage: None,
        hyperswap_storage: Vec::new(),
        workload: None,
        system: system_config(),
    };
    let system = ZosSystem::with_keys(&cfg.system, |v| {
        (v == "LEGACY")
            .then(|| LEGACY.into())
            .or_else(|| (v == "ENHANCED").then(|| ENHANCED.into()))
    })
    .unwrap();
    let mut listen = cfg.listen_config().unwrap();
    listen.clock = clock;
    let peer = ZosPeer::start(&listen, system).await.unwrap();
    let (attempt, second) = connected(&mut h).await;
    assert!(attempt >= 2);
    assert_ne!(first, second, "a reconnect must not reuse a PassTicket");
    h.shutdown().await;
    peer.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn hostile_peer_cases() {
    let peer = start_peer().await;
    let mut cfg = connector_config(&peer);
    cfg.request_timeout = Duration::from_millis(300);
    let mut h = zos::spawn(cfg, legacy_auth()).unwrap();
    connected(&mut h).await;

    // Out-of-order replies: pipelined requests still get their own replies.
    peer.control().misbehave(|m| m.swap_next_two = true);
    let session = Ebcdic::new("HSPROD").unwrap();
    let (a, b) = tokio::join!(
        h.request(ZosBody::QuerySystemRequest),
        h.request(ZosBody::LoadConfigRequest {
            session,
            pairs: pairs()
        })
    );
    assert!(matches!(a.unwrap(), ZosBody::QuerySystemReply(_)));
    assert!(matches!(b.unwrap(), ZosBody::HyperSwapReply { .. }));

    // Silence: the request times out; the connection stays.
    peer.control().misbehave(|m| m.silent = true);
    assert_eq!(
        h.request(ZosBody::QuerySystemRequest).await,
        Err(RequestError::Timeout)
    );
    peer.control().misbehave(|m| m.silent = false);
    assert!(h.request(ZosBody::QuerySystemRequest).await.is_ok());

    // Garbage, an oversized header, a truncated frame, a dropped connection: each ends
    // the connection, and the connector comes back with a fresh logon.
    for case in ["garbage", "oversize", "truncate", "drop"] {
        match case {
            "garbage" => peer.control().misbehave(|m| m.garbage_next = true),
            "oversize" => peer.control().misbehave(|m| m.oversize_next = true),
            "truncate" => peer.control().misbehave(|m| m.truncate_next = true),
            _ => {}
        }
        if case == "drop" {
            peer.control().drop_connections();
        } else {
            let r = h.request(ZosBody::QuerySystemRequest).await;
            assert_eq!(r, Err(RequestError::ConnectionLost), "{case}");
        }
        match next(&mut h).await {
            ConnectorEvent::Disconnected { .. } => {}
            other => panic!("{case}: {other:?}"),
        }
        connected(&mut h).await;
        assert!(
            h.request(ZosBody::QuerySystemRequest).await.is_ok(),
            "{case}"
        );
    }

    // Slow replies within the deadline are fine.
    peer.control()
        .misbehave(|m| m.delay = Some(Duration::from_millis(50)));
    assert!(h.request(ZosBody::QuerySystemRequest).await.is_ok());
    h.shutdown().await;
    peer.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn peer_answers_garbage_with_protocol_error_and_closes() {
    let peer = start_peer().await;
    let mut stream = Framed::new(
        TcpStream::connect(peer.addr()).await.unwrap(),
        FrameCodec::default(),
    );
    let mut raw = BytesMut::from(&b"GET / HTTP/1.1\r\n\r\n"[..]);
    tokio::io::AsyncWriteExt::write_all(stream.get_mut(), &raw.split())
        .await
        .unwrap();
    let frame = stream.next().await.unwrap().unwrap();
    match ZosMessage::decode(&frame).unwrap().body {
        Payload::Control(Control::ProtocolError { status, .. }) => {
            assert_eq!((status.rc.0, status.reason), (16, 0x0008))
        }
        other => panic!("{other:?}"),
    }
    assert!(stream.next().await.is_none(), "connection closed");
    peer.shutdown().await;
}
