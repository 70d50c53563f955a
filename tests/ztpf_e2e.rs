//! End to end over loopback: the gateway's z/TPF connector against the emulated z/TPF.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use zgate::client::ztpf::{
    self, Authentication, ConnectorEvent, RequestError, ZtpfConnectorConfig, ZtpfHandle,
};
use zgate::codec::fields::Ebcdic;
use zgate::passticket::{
    EnhancedGenerator, EnhancedKey, LegacyGenerator, LegacyKey, RacfName, TicketType,
};
use zgate::peer::ztpf::{ZtpfPeer, ZtpfPeerConfig};
use zgate::proto::HostFlashOptions;
use zgate::proto::session::CloseReason;
use zgate::proto::ztpf::{ZtpfBody, ZtpfReason};
use zgate::proto::{ReturnCode, VolumePair, VolumeRef};
use zgate::sim::zos::Recorded;
use zgate::sim::ztpf::ZtpfSystem;

const KEY: &str = "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF";

async fn start_peer() -> ZtpfPeer {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/peers/ztpf.toml"
    ))
    .unwrap();
    let mut cfg: ZtpfPeerConfig = toml::from_str(&text).unwrap();
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    let system = ZtpfSystem::with_keys(&cfg.system, |v| {
        (v == "ZGATE_ZTPF_ENHANCED_KEY").then(|| KEY.to_string())
    })
    .unwrap();
    let mut listen = cfg.listen_config().unwrap();
    listen.clock = common::test_clock();
    ZtpfPeer::start(&listen, system).await.unwrap()
}

fn config(peer: &ZtpfPeer) -> ZtpfConnectorConfig {
    let mut c = ZtpfConnectorConfig::new(peer.addr());
    c.clock = peer.control().clock();
    c.user = "CSMTPF".into();
    c.appl = "ZTPFCSM".into();
    c.backoff_initial = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(200);
    c.request_timeout = Duration::from_secs(2);
    c
}

fn auth() -> Authentication {
    Authentication::EnhancedPassTicket(EnhancedGenerator::new(
        &EnhancedKey::from_hex(KEY).unwrap(),
        TicketType::Upper,
    ))
}

async fn next(h: &mut ZtpfHandle) -> ConnectorEvent {
    tokio::time::timeout(Duration::from_secs(10), h.next_event())
        .await
        .expect("event in time")
        .expect("running")
}

async fn connected(h: &mut ZtpfHandle) -> Option<zgate::passticket::PassTicket> {
    loop {
        match next(h).await {
            ConnectorEvent::Connected {
                system,
                domain,
                ticket,
                ..
            } => {
                assert_eq!((system.as_str(), domain.as_str()), ("CPUA", "TPFPROD"));
                return ticket;
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
        device: 0,
    }
}

#[tokio::test(start_paused = true)]
async fn signon_query_flash_backup_signoff() {
    let peer = start_peer().await;
    let mut h = ztpf::spawn(config(&peer), auth()).unwrap();
    connected(&mut h).await;
    match h.request(ZtpfBody::QueryRequest).await.unwrap() {
        ZtpfBody::QueryReply(info) => {
            assert_eq!(
                (
                    info.level.as_str(),
                    info.subsystem.as_str(),
                    info.attached_volumes
                ),
                ("PUT23", "BSS", 512)
            );
        }
        other => panic!("{other:?}"),
    }
    let pairs = vec![VolumePair {
        first: vol(0x3000),
        second: vol(0x3100),
    }];
    let options = HostFlashOptions(HostFlashOptions::INHIBIT_TARGET_WRITES);
    let r = h
        .request(ZtpfBody::FlashRequest {
            options,
            pairs: pairs.clone(),
        })
        .await
        .unwrap();
    assert!(
        matches!(r, ZtpfBody::FlashReply { status, pair_count: 1, .. } if status.rc == ReturnCode::OK)
    );
    let r = h
        .request(ZtpfBody::BackupRequest {
            volumes: vec![vol(0x3000), vol(0x3001)],
        })
        .await
        .unwrap();
    assert!(
        matches!(r, ZtpfBody::BackupReply { status, backup_id, .. } if status.rc == ReturnCode::OK && backup_id > 0)
    );
    // A volume that is not attached to the complex is refused with z/TPF's own reason.
    let r = h
        .request(ZtpfBody::BackupRequest {
            volumes: vec![vol(0x4000)],
        })
        .await
        .unwrap();
    assert!(
        matches!(r, ZtpfBody::BackupReply { status, .. } if status.reason == ZtpfReason::VOLUME_NOT_ATTACHED.0)
    );
    let recorded = peer.control().system().recorded().to_vec();
    assert_eq!(recorded.len(), 2);
    assert!(
        matches!(&recorded[0], Recorded::Flash { pairs: p, options: o, .. } if *p == pairs && *o == options)
    );
    h.shutdown().await;
    peer.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn legacy_key_is_refused_where_only_an_enhanced_key_is_defined() {
    let peer = start_peer().await;
    let legacy = Authentication::LegacyPassTicket(LegacyGenerator::new(
        &LegacyKey::from_hex("0123456789ABCDEF").unwrap(),
    ));
    let mut h = ztpf::spawn(config(&peer), legacy).unwrap();
    match next(&mut h).await {
        ConnectorEvent::Disconnected {
            reason: CloseReason::LogonRefused { status, racf_rc },
        } => {
            assert_eq!((status.reason, racf_rc), (0x0100, 8));
            assert_eq!(
                peer.control().system().refusals().back().unwrap().reason,
                0x0101
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(next(&mut h).await, ConnectorEvent::GaveUp { .. }));
    assert_eq!(
        h.request(ZtpfBody::QueryRequest).await,
        Err(RequestError::NotConnected)
    );
    let user = RacfName::parse("u", "CSMTPF").unwrap();
    assert_eq!(peer.control().system().racf().failures(&user), Some(2));
    h.shutdown().await;
    peer.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn dropped_connection_reconnects_with_a_new_ticket() {
    let peer = start_peer().await;
    let mut h = ztpf::spawn(config(&peer), auth()).unwrap();
    let first = connected(&mut h).await;
    peer.control().drop_connections();
    assert!(matches!(
        next(&mut h).await,
        ConnectorEvent::Disconnected { .. }
    ));
    let second = connected(&mut h).await;
    assert_ne!(first, second);
    assert!(h.request(ZtpfBody::QueryRequest).await.is_ok());
    h.shutdown().await;
    peer.shutdown().await;
}
