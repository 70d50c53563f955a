//! End to end over loopback: the DS8000 connector against the simulated DS8000
//! service (`zgate ds8k`), with the sample configuration, on tokio's paused clock
//! (background copy and ticks take no real time).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zgate::client::ds8k::{self, Authentication, ConnectorEvent, Ds8kConnectorConfig, Ds8kHandle};
use zgate::ds8k::{Ds8kReason, Fence, FlashOptions, PairKey, VolumeId};
use zgate::peer::ds8k::{Ds8kService, Ds8kServiceConfig};
use zgate::proto::ds8k::{Ds8kBody, Ds8kMessageType};
use zgate::proto::logon::Credential;
use zgate::proto::{ReplyStatus, ReturnCode};
use zgate::sim::hmc::Ds8kSystem;

async fn start(acceleration: f64) -> Ds8kService {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/peers/ds8k.toml"
    ))
    .unwrap();
    let mut cfg: Ds8kServiceConfig = toml::from_str(&text).unwrap();
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.time_acceleration = acceleration;
    cfg.tick_ms = 20;
    let system = Ds8kSystem::with_keys(&cfg.system, |_| None).unwrap();
    let mut listen = cfg.listen_config().unwrap();
    listen.clock = common::test_clock();
    Ds8kService::start_on(listen, &cfg, system).await.unwrap()
}

async fn connect(service: &Ds8kService, password: &str) -> Ds8kHandle {
    let mut c = Ds8kConnectorConfig::new(service.addr());
    c.clock = service.control().clock();
    c.user = "CSMADMIN".into();
    c.appl = "HMC".into();
    c.backoff_initial = Duration::from_millis(20);
    c.request_timeout = Duration::from_secs(5);
    ds8k::spawn(
        c,
        Authentication::Password(Credential::new(password).unwrap()),
    )
    .unwrap()
}

async fn next(h: &mut Ds8kHandle) -> ConnectorEvent {
    // Paused clock: a generous deadline costs no real time.
    tokio::time::timeout(Duration::from_secs(120), h.next_event())
        .await
        .expect("event in time")
        .expect("running")
}

async fn logged_on(h: &mut Ds8kHandle) {
    loop {
        match next(h).await {
            ConnectorEvent::Connected { domain, system, .. } => {
                assert_eq!((domain.as_str(), system.as_str()), ("75FA120", "HMC1"));
                return;
            }
            ConnectorEvent::GaveUp { status, .. } => panic!("gave up: {status:?}"),
            _ => {}
        }
    }
}

fn v(id: u16) -> VolumeId {
    VolumeId(id)
}

fn pair(s: u16, t: u16) -> PairKey {
    PairKey {
        source: v(s),
        target: v(t),
    }
}

async fn ok(h: &Ds8kHandle, body: Ds8kBody) -> Ds8kBody {
    let reply = h.request(body).await.unwrap();
    assert_eq!(
        reply.status().map(|s| s.rc),
        Some(ReturnCode::OK),
        "{reply:?}"
    );
    reply
}

async fn refused(h: &Ds8kHandle, body: Ds8kBody) -> u16 {
    let reply = h.request(body).await.unwrap();
    let status = reply.status().unwrap();
    assert_eq!(status.rc, ReturnCode::REFUSED, "{reply:?}");
    status.reason
}

async fn read(h: &Ds8kHandle, volume: u16, track: u32) -> u64 {
    match ok(
        h,
        Ds8kBody::ReadTrackRequest {
            volume: v(volume),
            track,
        },
    )
    .await
    {
        Ds8kBody::TrackReply { tag, .. } => tag,
        other => panic!("{other:?}"),
    }
}

async fn write(h: &Ds8kHandle, volume: u16, track: u32, tag: u64) -> Ds8kBody {
    h.request(Ds8kBody::WriteTrackRequest {
        volume: v(volume),
        track,
        tag,
    })
    .await
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn flashcopy_point_in_time_inhibit_and_copy_complete_event() {
    let service = start(1.0).await;
    let mut h = connect(&service, "HMCPASS1").await;
    logged_on(&mut h).await;

    match ok(&h, Ds8kBody::QueryImageRequest).await {
        Ds8kBody::ImageReply {
            serial, volumes, ..
        } => assert_eq!((serial.as_str(), volumes), ("75FA120", 544)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(write(&h, 0x3000, 10, 1).await.status(), Some(s) if s == ReplyStatus::OK));

    // Establish with inhibit target writes; the target reads the source's instant.
    let r = ok(
        &h,
        Ds8kBody::FlashRequest {
            fence: Fence::NONE,
            resync: false,
            options: FlashOptions(FlashOptions::INHIBIT_TARGET_WRITES),
            sequence: 0,
            not_after_ms: 0,
            pairs: vec![pair(0x3000, 0x3100)],
        },
    )
    .await;
    assert!(
        matches!(
            r,
            Ds8kBody::FlashReply {
                pair_count: 1,
                out_of_sync_tracks: 50_085,
                ..
            }
        ),
        "{r:?}"
    );
    write(&h, 0x3000, 10, 2).await;
    assert_eq!(
        read(&h, 0x3100, 10).await,
        1,
        "target keeps the point in time"
    );
    assert_eq!(read(&h, 0x3000, 10).await, 2);
    assert_eq!(
        refused(
            &h,
            Ds8kBody::WriteTrackRequest {
                volume: v(0x3100),
                track: 0,
                tag: 9
            }
        )
        .await,
        Ds8kReason::TARGET_WRITE_INHIBITED.0
    );
    match ok(&h, Ds8kBody::ListFlashRequest { volume: v(0x3000) }).await {
        Ds8kBody::ListFlashReply { entries, .. } => {
            assert_eq!(entries.len(), 1);
            assert_eq!(entries[0].key, pair(0x3000, 0x3100));
        }
        other => panic!("{other:?}"),
    }
    // 50,085 tracks at 2,000 tracks/s: 25 s on the paused clock, no real time.
    loop {
        match next(&mut h).await {
            ConnectorEvent::Event(Ds8kBody::CopyCompleteEvent { key, ended, .. }) => {
                assert_eq!(key, pair(0x3000, 0x3100));
                assert!(ended, "a non-persistent copy ends");
                break;
            }
            ConnectorEvent::Event(_) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(read(&h, 0x3100, 10).await, 1);
    // The relationship ended: the target takes writes again.
    assert_eq!(
        write(&h, 0x3100, 0, 9).await.status(),
        Some(ReplyStatus::OK)
    );
    h.shutdown().await;
    service.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn safeguarded_copy_backup_recover_expire_restore() {
    let service = start(1.0).await;
    let mut h = connect(&service, "HMCPASS1").await;
    logged_on(&mut h).await;
    write(&h, 0x3000, 5, 100).await;
    write(&h, 0x3001, 5, 200).await;
    let backup = |volumes: Vec<VolumeId>| Ds8kBody::BackupRequest {
        fence: Fence::NONE,
        tag: 0,
        not_after_ms: 0,
        volumes,
    };
    let first = match ok(&h, backup(vec![v(0x3000), v(0x3001)])).await {
        Ds8kBody::BackupReply {
            backup_id,
            volume_count: 2,
            ..
        } => backup_id,
        other => panic!("{other:?}"),
    };
    write(&h, 0x3000, 5, 101).await;
    let second = match ok(&h, backup(vec![v(0x3000)])).await {
        Ds8kBody::BackupReply { backup_id, .. } => backup_id,
        other => panic!("{other:?}"),
    };
    assert!(second > first);
    write(&h, 0x3000, 5, 102).await;

    // Recover the first backup: the recovery volume reads that instant.
    ok(
        &h,
        Ds8kBody::RecoverRequest {
            fence: Fence::NONE,
            backup_id: first,
            pairs: vec![pair(0x3000, 0x3200)],
        },
    )
    .await;
    assert_eq!(read(&h, 0x3200, 5).await, 100);
    // Restore the second to production.
    match ok(
        &h,
        Ds8kBody::RestoreRequest {
            fence: Fence::NONE,
            backup_id: second,
            volumes: vec![v(0x3000)],
        },
    )
    .await
    {
        Ds8kBody::CountReply { count: 1, .. } => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(read(&h, 0x3000, 5).await, 101);
    // Expiring the second expires the first too, on the volumes holding the
    // second (3000 only): two backups go; 3001 keeps the first.
    match ok(
        &h,
        Ds8kBody::ExpireRequest {
            fence: Fence::NONE,
            backup_id: second,
        },
    )
    .await
    {
        Ds8kBody::CountReply {
            message_type: Ds8kMessageType::EXPIRE_BACKUP,
            count: 2,
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    match ok(&h, Ds8kBody::ListBackupsRequest { volume: v(0x3001) }).await {
        Ds8kBody::ListBackupsReply { entries, .. } => {
            assert_eq!(
                entries.iter().map(|e| e.backup_id).collect::<Vec<_>>(),
                vec![first]
            );
        }
        other => panic!("{other:?}"),
    }
    match ok(&h, Ds8kBody::ListBackupsRequest { volume: v(0x3000) }).await {
        Ds8kBody::ListBackupsReply { entries, .. } => assert!(entries.is_empty()),
        other => panic!("{other:?}"),
    }
    // Refusals carry the storage reason codes.
    assert_eq!(
        refused(
            &h,
            Ds8kBody::ExpireRequest {
                fence: Fence::NONE,
                backup_id: second,
            }
        )
        .await,
        Ds8kReason::UNKNOWN_BACKUP.0
    );
    assert_eq!(
        refused(&h, backup(vec![v(0x3100)])).await,
        Ds8kReason::NO_SAFEGUARDED_CAPACITY.0
    );
    assert_eq!(
        refused(&h, Ds8kBody::ShowVolumeRequest { volume: v(0x7777) }).await,
        Ds8kReason::UNKNOWN_VOLUME.0
    );
    h.shutdown().await;
    service.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn wrong_password_is_refused_and_malformed_frames_get_protocol_errors() {
    let service = start(1.0).await;
    let mut h = connect(&service, "WRONG1").await;
    loop {
        match next(&mut h).await {
            ConnectorEvent::GaveUp { status, .. } => {
                assert_eq!(status.reason, 0x0100, "NOT_AUTHORIZED on the wire");
                let precise = service.control().system().refusals().back().unwrap().reason;
                assert_eq!(precise, 0x0110, "PASSWORD_INVALID in the HMC's records");
                break;
            }
            ConnectorEvent::Connected { .. } => panic!("logged on with a wrong password"),
            _ => {}
        }
    }
    h.shutdown().await;

    // A MKFLASH with undefined option bits, before logon, from a raw socket:
    // PROTOCOL_ERROR / MALFORMED_BODY, and the connection stays usable.
    let mut raw = tokio::net::TcpStream::connect(service.addr())
        .await
        .unwrap();
    let mut frame = vec![0xE9, 0xC7, 1, 4, 0x04, 0x30, 0, 0, 0, 0, 0, 7, 0, 0, 0, 8];
    frame.extend_from_slice(&[0x80, 0x00, 0x00, 0x01, 0x30, 0x00, 0x31, 0x00]);
    raw.write_all(&frame).await.unwrap();
    let mut reply = [0u8; 22];
    tokio::time::timeout(Duration::from_secs(5), raw.read_exact(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        &reply[4..8],
        &[0x7F, 0xFF, 0x80, 0x00],
        "PROTOCOL_ERROR reply"
    );
    assert_eq!(
        &reply[16..20],
        &[0x00, 0x10, 0x00, 0x03],
        "RC 16, MALFORMED_BODY"
    );
    // Then a heartbeat is still answered.
    raw.write_all(&[
        0xE9, 0xC7, 1, 4, 0x04, 0x01, 0, 0, 0, 0, 0, 8, 0, 0, 0, 4, 0, 0, 0, 1,
    ])
    .await
    .unwrap();
    let mut hb = [0u8; 24];
    tokio::time::timeout(Duration::from_secs(5), raw.read_exact(&mut hb))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&hb[4..8], &[0x04, 0x01, 0x80, 0x00]);
    service.shutdown().await;
}

/// ds8k.md §3.1.5 and §3.3: a request past its deadline is refused and changes
/// nothing; the client's sequence number and tag are listed; LSFROZEN answers the
/// clock and the frozen LSSs.
#[tokio::test(start_paused = true)]
async fn requests_carry_their_identity_and_expire_at_their_deadline() {
    let service = start(1.0).await;
    let mut h = connect(&service, "HMCPASS1").await;
    logged_on(&mut h).await;
    let clock = match ok(&h, Ds8kBody::FrozenRequest).await {
        Ds8kBody::FrozenReply { clock_ms, lsss, .. } => {
            assert!(lsss.is_empty());
            clock_ms
        }
        other => panic!("{other:?}"),
    };
    let flash = |not_after_ms| Ds8kBody::FlashRequest {
        fence: Fence::NONE,
        resync: false,
        options: FlashOptions(FlashOptions::FREEZE | FlashOptions::PERSIST),
        sequence: 0x4711,
        not_after_ms,
        pairs: vec![pair(0x3000, 0x3100)],
    };
    // Expired: refused, no relationship, nothing frozen.
    assert_eq!(
        refused(&h, flash(clock - 1)).await,
        Ds8kReason::REQUEST_EXPIRED.0
    );
    match ok(&h, Ds8kBody::ListFlashRequest { volume: v(0x3000) }).await {
        Ds8kBody::ListFlashReply { entries, .. } => assert!(entries.is_empty()),
        other => panic!("{other:?}"),
    }
    // In time: made with the client's sequence number, its LSS frozen.
    ok(&h, flash(clock + 60_000)).await;
    match ok(&h, Ds8kBody::ListFlashRequest { volume: v(0x3000) }).await {
        Ds8kBody::ListFlashReply { entries, .. } => assert_eq!(entries[0].sequence, 0x4711),
        other => panic!("{other:?}"),
    }
    match ok(&h, Ds8kBody::FrozenRequest).await {
        Ds8kBody::FrozenReply { lsss, .. } => assert_eq!(lsss, vec![zgate::ds8k::Lss(0x30)]),
        other => panic!("{other:?}"),
    }
    // A tagged backup is listed with its tag; an expired one is not taken.
    let backup = |tag, not_after_ms| Ds8kBody::BackupRequest {
        fence: Fence::NONE,
        tag,
        not_after_ms,
        volumes: vec![v(0x3001)],
    };
    assert_eq!(
        refused(&h, backup(9, clock - 1)).await,
        Ds8kReason::REQUEST_EXPIRED.0
    );
    ok(&h, backup(41, clock + 60_000)).await;
    match ok(&h, Ds8kBody::ListBackupsRequest { volume: v(0x3001) }).await {
        Ds8kBody::ListBackupsReply { entries, .. } => {
            assert_eq!(entries.len(), 1);
            assert_eq!(entries[0].tag, 41);
        }
        other => panic!("{other:?}"),
    }
    h.shutdown().await;
    service.shutdown().await;
}

/// ds8k.md §3.5, §4.8–§4.9: two images of one complex, each behind its own HMC
/// listener (the Metro Mirror sample configuration). Paths and pairs are made on
/// H1's HMC, the first pass completes (EVT_PPRC_DUPLEX), a host write on H1 is on
/// H2 when it is answered, H2 refuses host writes, a freeze suspends the pair
/// (EVT_PPRC_SUSPENDED) and holds H1's LSS until UNFREEZEPPRC, and a failover on
/// H2's HMC makes H2 writable; LSPPRC shows each step.
#[tokio::test(start_paused = true)]
async fn metro_mirror_between_two_images_over_their_hmcs() {
    let service = common::metro_mirror_complex(common::test_clock()).await;
    let mut h1 = connect(&service, "HMCPASS1").await;
    logged_on(&mut h1).await;
    let mut c = Ds8kConnectorConfig::new(service.remote_addrs()[0]);
    c.clock = service.control().clock();
    c.user = "CSMADMIN".into();
    c.appl = "HMC".into();
    c.backoff_initial = Duration::from_millis(20);
    let mut h2 = ds8k::spawn(
        c,
        Authentication::Password(Credential::new("HMCPASS1").unwrap()),
    )
    .unwrap();
    loop {
        if let ConnectorEvent::Connected { domain, .. } = next(&mut h2).await {
            assert_eq!(domain.as_str(), "75FA121");
            break;
        }
    }
    let serial = |s: &str| zgate::codec::fields::Ebcdic::new(s).unwrap();
    let fence = Fence {
        domain: 7,
        epoch: 1,
    };
    // A volume is refused before a path exists.
    assert_eq!(
        refused(
            &h1,
            Ds8kBody::PprcPairsRequest {
                fence,
                failback: false,
                options: 0,
                remote: serial("75FA121"),
                pairs: vec![pair(0x3000, 0x3000)],
            }
        )
        .await,
        Ds8kReason::NO_PATH.0
    );
    ok(
        &h1,
        Ds8kBody::PathRequest {
            fence,
            remove: false,
            remote: serial("75FA121"),
            options: zgate::proto::ds8k::messages::PATH_CONSISTENCY_GROUP,
            lss_pairs: vec![(zgate::ds8k::Lss(0x30), zgate::ds8k::Lss(0x30))],
        },
    )
    .await;
    ok(&h1, wt(0x3000, 5, 55)).await;
    ok(
        &h1,
        Ds8kBody::PprcPairsRequest {
            fence,
            failback: false,
            options: 0,
            remote: serial("75FA121"),
            pairs: vec![pair(0x3000, 0x3000)],
        },
    )
    .await;
    // The first pass copies the 50,085 tracks at 20,000 a second.
    loop {
        if let ConnectorEvent::Event(Ds8kBody::PprcDuplexEvent {
            primary, remote, ..
        }) = next(&mut h1).await
        {
            assert_eq!((primary, remote.as_str()), (v(0x3000), "75FA121"));
            break;
        }
    }
    assert_eq!(read(&h2, 0x3000, 5).await, 55);
    ok(&h1, wt(0x3000, 6, 66)).await;
    assert_eq!(read(&h2, 0x3000, 6).await, 66, "mirrored before the answer");
    assert_eq!(
        refused(&h2, wt(0x3000, 6, 1)).await,
        Ds8kReason::SECONDARY_READ_ONLY.0
    );
    let listed = ok(&h2, Ds8kBody::ListPprcRequest { volume: v(0x3000) }).await;
    let Ds8kBody::ListPprcReply { entries, .. } = listed else {
        panic!("{listed:?}")
    };
    assert_eq!(
        (entries[0].state, entries[0].primary_serial.as_str()),
        (2, "75FA120")
    );

    // Freeze: suspended, H1's LSS holds writes until it is run.
    let frozen = ok(
        &h1,
        Ds8kBody::FreezePprcRequest {
            fence,
            remote: serial("75FA121"),
            lss_pairs: vec![(zgate::ds8k::Lss(0x30), zgate::ds8k::Lss(0x30))],
        },
    )
    .await;
    assert!(
        matches!(frozen, Ds8kBody::CountReply { count: 1, .. }),
        "{frozen:?}"
    );
    loop {
        if let ConnectorEvent::Event(Ds8kBody::PprcSuspendedEvent { reason, .. }) =
            next(&mut h1).await
        {
            assert_eq!(reason, 2, "freeze");
            break;
        }
    }
    assert_eq!(
        refused(&h1, wt(0x3000, 7, 77)).await,
        Ds8kReason::LONG_BUSY.0
    );
    ok(
        &h1,
        Ds8kBody::UnfreezePprcRequest {
            fence,
            lsss: vec![zgate::ds8k::Lss(0x30)],
        },
    )
    .await;
    ok(&h1, wt(0x3000, 7, 77)).await;
    assert_eq!(
        read(&h2, 0x3000, 7).await,
        0,
        "not mirrored after the freeze"
    );

    // Failover on H2's HMC: H2 is writable, the pair says so.
    ok(
        &h2,
        Ds8kBody::PprcVolumesRequest {
            fence,
            message_type: Ds8kMessageType::FAILOVERPPRC,
            volumes: vec![v(0x3000)],
        },
    )
    .await;
    ok(&h2, wt(0x3000, 8, 88)).await;
    let listed = ok(&h1, Ds8kBody::ListPprcRequest { volume: v(0x3000) }).await;
    let Ds8kBody::ListPprcReply { entries, .. } = listed else {
        panic!("{listed:?}")
    };
    assert!(
        entries[0].failed_over && entries[0].state == 3,
        "{entries:?}"
    );
    // The fence holds on Metro Mirror requests too.
    ok(
        &h1,
        Ds8kBody::FenceRequest {
            fence: Fence {
                domain: 7,
                epoch: 2,
            },
        },
    )
    .await;
    assert_eq!(
        refused(
            &h1,
            Ds8kBody::PprcVolumesRequest {
                fence,
                message_type: Ds8kMessageType::RMPPRC,
                volumes: vec![v(0x3000)],
            }
        )
        .await,
        Ds8kReason::FENCED.0
    );
    h1.shutdown().await;
    h2.shutdown().await;
    service.shutdown().await;
}

fn wt(volume: u16, track: u32, tag: u64) -> Ds8kBody {
    Ds8kBody::WriteTrackRequest {
        volume: v(volume),
        track,
        tag,
    }
}
