//! End to end over loopback, the whole host path: the gateway's z/OS and z/TPF
//! connectors → the emulated z/OS and z/TPF systems → the simulated DS8000.
//! A FLASH or SGC_BACKUP sent to a host really lands on the storage.
//! Every component shares one paused clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use zgate::client::{zos, ztpf};
use zgate::clock::Clock;
use zgate::codec::fields::Ebcdic;
use zgate::ds8k::{PairKey, VolumeId};
use zgate::passticket::{EnhancedGenerator, EnhancedKey, TicketType};
use zgate::peer::ds8k::{Ds8kService, Ds8kServiceConfig};
use zgate::peer::zos::ZosPeer;
use zgate::peer::ztpf::ZtpfPeer;
use zgate::proto::HostFlashOptions;
use zgate::proto::zos::{ZosBody, ZosReason};
use zgate::proto::ztpf::{ZtpfBody, ZtpfReason};
use zgate::proto::{ReturnCode, VolumePair, VolumeRef};
use zgate::sim::hmc::Ds8kSystem;

const KEY: &str = common::HOST_KEY;

fn sample(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/testdata/peers/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn ds8k(clock: Clock) -> Ds8kService {
    let mut cfg: Ds8kServiceConfig = toml::from_str(&sample("ds8k.toml")).unwrap();
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    let mut listen = cfg.listen_config().unwrap();
    listen.clock = clock;
    let system = Ds8kSystem::with_keys(&cfg.system, |_| None).unwrap();
    Ds8kService::start_on(listen, &cfg, system).await.unwrap()
}

async fn zos_peer(storage: std::net::SocketAddr, clock: Clock) -> ZosPeer {
    common::start_zos_peer(Some(storage), clock).await
}

async fn ztpf_peer(storage: std::net::SocketAddr, clock: Clock) -> ZtpfPeer {
    common::start_ztpf_peer(Some(storage), clock).await
}

fn auth() -> zos::Authentication {
    zos::Authentication::EnhancedPassTicket(EnhancedGenerator::new(
        &EnhancedKey::from_hex(KEY).unwrap(),
        TicketType::Upper,
    ))
}

fn vol(v: u16) -> VolumeRef {
    VolumeRef {
        storage: Ebcdic::new("75FA120").unwrap(),
        volume: v,
        device: 0,
    }
}

fn pairs(list: &[(u16, u16)]) -> Vec<VolumePair> {
    list.iter()
        .map(|&(s, t)| VolumePair {
            first: vol(s),
            second: vol(t),
        })
        .collect()
}

async fn zos_connected(addr: std::net::SocketAddr, clock: Clock) -> zos::ZosHandle {
    let mut c = zos::ZosConnectorConfig::new(addr);
    c.clock = clock;
    c.request_timeout = Duration::from_secs(5);
    let mut h = zos::spawn(c, auth()).unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), h.next_event())
            .await
            .unwrap()
            .unwrap()
        {
            zos::ConnectorEvent::Connected { .. } => return h,
            zos::ConnectorEvent::GaveUp { status, .. } => panic!("{status:?}"),
            _ => {}
        }
    }
}

#[tokio::test(start_paused = true)]
async fn zos_flash_and_backup_reach_the_ds8000() {
    let clock = common::test_clock();
    let storage = ds8k(clock).await;
    let host = zos_peer(storage.addr(), clock).await;
    let h = zos_connected(host.addr(), clock).await;

    // Write on the source through the HMC path's model, flash through z/OS.
    storage
        .control()
        .system()
        .image_mut()
        .write_track(1, VolumeId(0x3000), 7, 70)
        .unwrap();
    let r = h
        .request(ZosBody::FlashRequest {
            options: HostFlashOptions(
                HostFlashOptions::INHIBIT_TARGET_WRITES | HostFlashOptions::INCREMENTAL,
            ),
            pairs: pairs(&[(0x3000, 0x3100), (0x3001, 0x3101)]),
        })
        .await
        .unwrap();
    assert!(
        matches!(r, ZosBody::FlashReply { status, pair_count: 2, .. } if status.rc == ReturnCode::OK),
        "{r:?}"
    );
    {
        let sys = storage.control().system();
        let info = sys
            .image()
            .flash_info(PairKey {
                source: VolumeId(0x3000),
                target: VolumeId(0x3100),
            })
            .expect("relationship on the DS8000");
        assert!(info.options.inhibit_target_writes() && info.options.record());
        assert_eq!(sys.image().read_track(VolumeId(0x3100), 7).unwrap(), 70);
    }
    // A second incremental FLASH of the same pairs refreshes them (resyncflash).
    let again = h
        .request(ZosBody::FlashRequest {
            options: HostFlashOptions(HostFlashOptions::INCREMENTAL),
            pairs: pairs(&[(0x3000, 0x3100)]),
        })
        .await
        .unwrap();
    assert!(
        matches!(again, ZosBody::FlashReply { status, .. } if status.rc == ReturnCode::OK),
        "{again:?}"
    );

    // A backup through z/OS is a Safeguarded Copy backup on the box.
    let b = h
        .request(ZosBody::BackupRequest {
            volumes: vec![vol(0x3002), vol(0x3003)],
        })
        .await
        .unwrap();
    let backup_id = match b {
        ZosBody::BackupReply {
            status, backup_id, ..
        } if status.rc == ReturnCode::OK => backup_id,
        other => panic!("{other:?}"),
    };
    let listed = storage
        .control()
        .system()
        .image()
        .list_backups(VolumeId(0x3003))
        .unwrap();
    assert_eq!(
        listed.iter().map(|b| b.id).collect::<Vec<_>>(),
        vec![backup_id]
    );

    // Refusals from the box come back in z/OS reason codes.
    let unknown = h
        .request(ZosBody::FlashRequest {
            options: HostFlashOptions(0),
            pairs: pairs(&[(0x7000, 0x7001)]),
        })
        .await
        .unwrap();
    assert!(
        matches!(unknown, ZosBody::FlashReply { status, .. }
            if status.rc == ReturnCode::REFUSED && status.reason == ZosReason::UNKNOWN_VOLUME.0),
        "{unknown:?}"
    );
    let no_capacity = h
        .request(ZosBody::BackupRequest {
            volumes: vec![vol(0x3100)],
        })
        .await
        .unwrap();
    assert!(
        matches!(no_capacity, ZosBody::BackupReply { status, .. }
            if status.rc == ReturnCode::REFUSED && status.reason == ZosReason::STORAGE_REFUSED.0),
        "{no_capacity:?}"
    );

    // Hundreds of storage events nobody in the host asked for must not stall its link.
    for i in 0..400u64 {
        storage
            .control()
            .inject_event(zgate::proto::ds8k::Ds8kBody::BackupRolledOffEvent {
                volume: VolumeId(0x3000),
                backup_id: i,
                time_ms: i,
            });
        if i % 16 == 0 {
            // Lets the link's tasks run; on the paused clock this costs no real time.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let after_events = h
        .request(ZosBody::BackupRequest {
            volumes: vec![vol(0x3002)],
        })
        .await
        .unwrap();
    assert!(
        matches!(after_events, ZosBody::BackupReply { status, .. } if status.rc == ReturnCode::OK),
        "{after_events:?}"
    );

    // The box goes away: RC 12, storage unavailable; the host connection stays up.
    storage.shutdown().await;
    let down = h
        .request(ZosBody::BackupRequest {
            volumes: vec![vol(0x3002)],
        })
        .await
        .unwrap();
    assert!(
        matches!(down, ZosBody::BackupReply { status, .. }
            if status.rc == ReturnCode::FAILED && status.reason == ZosReason::STORAGE_UNAVAILABLE.0),
        "{down:?}"
    );
    assert!(matches!(
        h.request(ZosBody::QuerySystemRequest).await.unwrap(),
        ZosBody::QuerySystemReply(_)
    ));
    h.shutdown().await;
    host.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn ztpf_backup_reaches_the_ds8000_and_unattached_volumes_stay_on_ztpf() {
    let clock = common::test_clock();
    let storage = ds8k(clock).await;
    let host = ztpf_peer(storage.addr(), clock).await;
    let mut c = ztpf::ZtpfConnectorConfig::new(host.addr());
    c.clock = clock;
    c.user = "CSMTPF".into();
    c.appl = "ZTPFCSM".into();
    c.request_timeout = Duration::from_secs(5);
    let mut h = ztpf::spawn(c, auth()).unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), h.next_event())
            .await
            .unwrap()
            .unwrap()
        {
            ztpf::ConnectorEvent::Connected { .. } => break,
            ztpf::ConnectorEvent::GaveUp { status, .. } => panic!("{status:?}"),
            _ => {}
        }
    }
    let r = h
        .request(ZtpfBody::BackupRequest {
            volumes: vec![vol(0x3010)],
        })
        .await
        .unwrap();
    let id = match r {
        ZtpfBody::BackupReply {
            status, backup_id, ..
        } if status.rc == ReturnCode::OK => backup_id,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        storage
            .control()
            .system()
            .image()
            .list_backups(VolumeId(0x3010))
            .unwrap()[0]
            .id,
        id
    );
    // Not attached to the complex: refused by z/TPF itself, never sent to storage.
    let r = h
        .request(ZtpfBody::BackupRequest {
            volumes: vec![vol(0x3200)],
        })
        .await
        .unwrap();
    assert!(
        matches!(r, ZtpfBody::BackupReply { status, .. } if status.reason == ZtpfReason::VOLUME_NOT_ATTACHED.0),
        "{r:?}"
    );
    assert!(
        storage
            .control()
            .system()
            .image()
            .list_backups(VolumeId(0x3200))
            .unwrap()
            .is_empty()
    );
    h.shutdown().await;
    host.shutdown().await;
    storage.shutdown().await;
}

/// A host told to stop answers the requests it already took before it closes the
/// connection (the shared listener's graceful stop), and takes no new one.
#[tokio::test(start_paused = true)]
async fn a_stopping_host_answers_the_flash_it_already_took() {
    let clock = common::test_clock();
    let storage = ds8k(clock).await;
    let host = zos_peer(storage.addr(), clock).await;
    let h = zos_connected(host.addr(), clock).await;
    // The box answers slowly, so the FLASH is still at the box when the stop comes.
    storage
        .control()
        .misbehave(|m| m.delay = Some(Duration::from_millis(300)));
    let (r, ()) = tokio::join!(
        h.request(ZosBody::FlashRequest {
            options: HostFlashOptions(HostFlashOptions::INCREMENTAL),
            pairs: pairs(&[(0x3000, 0x3100)]),
        }),
        async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            host.shutdown().await;
        }
    );
    let r = r.unwrap();
    assert!(
        matches!(r, ZosBody::FlashReply { status, pair_count: 1, .. } if status.rc == ReturnCode::OK),
        "{r:?}"
    );
    assert!(
        storage
            .control()
            .system()
            .image()
            .flash_info(PairKey {
                source: VolumeId(0x3000),
                target: VolumeId(0x3100),
            })
            .is_some()
    );
    storage.shutdown().await;
}
