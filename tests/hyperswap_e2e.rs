//! HyperSwap on real storage, end to end over loopback (zos-hyperswap.md §3.7,
//! §3.11, ds8k.md §3.5): the simulated DS8000 complex of two images (H1 75FA120, H2
//! 75FA121, Metro Mirror between them), the emulated z/OS with links to both and its
//! applications writing to the production volumes, and a client on the z/OS
//! protocol as CSM is. A planned swap holds the applications' I/O once, freezes,
//! fails over and redirects I/O to H2: every write the applications were told is
//! done is on H2. Losing H1 while HyperSwap is enabled swaps unplanned
//! (EVT_UNPLANNED_SWAP), and again no acknowledged write is missing. One paused clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use zgate::client::{ds8k, zos};
use zgate::clock::Clock;
use zgate::codec::fields::Ebcdic;
use zgate::ds8k::{Fence, Lss, PairKey, VolumeId};
use zgate::passticket::{EnhancedGenerator, EnhancedKey, TicketType};
use zgate::peer::ds8k::Ds8kService;
use zgate::peer::hyperswap::HyperSwapIo;
use zgate::peer::zos::ZosPeer;
use zgate::proto::ds8k::Ds8kBody;
use zgate::proto::zos::{HyperSwapState, ZosBody};
use zgate::proto::{ReturnCode, VolumePair, VolumeRef};

const VOLUMES: [u16; 4] = [0x3000, 0x3001, 0x3002, 0x3003];

async fn hmc(addr: std::net::SocketAddr, clock: Clock) -> ds8k::Ds8kHandle {
    let mut c = ds8k::Ds8kConnectorConfig::new(addr);
    c.clock = clock;
    c.user = "CSMADMIN".into();
    c.appl = "HMC".into();
    c.backoff_initial = Duration::from_millis(20);
    let mut h = ds8k::spawn(
        c,
        ds8k::Authentication::Password(zgate::proto::logon::Credential::new("HMCPASS1").unwrap()),
    )
    .unwrap();
    loop {
        if let ds8k::ConnectorEvent::Connected { .. } =
            tokio::time::timeout(Duration::from_secs(30), h.next_event())
                .await
                .unwrap()
                .unwrap()
        {
            return h;
        }
    }
}

fn text8(s: &str) -> Ebcdic<8> {
    Ebcdic::new(s).unwrap()
}

/// Paths and full-duplex pairs 3000–3003 from H1 to H2, made as CSM's Start does.
async fn mirror(h1: &mut ds8k::Ds8kHandle) {
    let ok = |r: Ds8kBody| assert_eq!(r.status().map(|s| s.rc), Some(ReturnCode::OK), "{r:?}");
    ok(h1
        .request(Ds8kBody::PathRequest {
            fence: Fence::NONE,
            remove: false,
            remote: text8("75FA121"),
            options: zgate::proto::ds8k::messages::PATH_CONSISTENCY_GROUP,
            lss_pairs: vec![(Lss(0x30), Lss(0x30))],
        })
        .await
        .unwrap());
    ok(h1
        .request(Ds8kBody::PprcPairsRequest {
            fence: Fence::NONE,
            failback: false,
            options: 0,
            remote: text8("75FA121"),
            pairs: VOLUMES
                .iter()
                .map(|&v| PairKey {
                    source: VolumeId(v),
                    target: VolumeId(v),
                })
                .collect(),
        })
        .await
        .unwrap());
    let mut duplex = 0;
    while duplex < VOLUMES.len() {
        if let ds8k::ConnectorEvent::Event(Ds8kBody::PprcDuplexEvent { .. }) =
            tokio::time::timeout(Duration::from_secs(60), h1.next_event())
                .await
                .unwrap()
                .unwrap()
        {
            duplex += 1;
        }
    }
}

async fn zos_host(
    service: &Ds8kService,
    h1: std::net::SocketAddr,
    clock: Clock,
) -> (ZosPeer, std::sync::Arc<HyperSwapIo>) {
    common::zos_on_complex(service, h1, clock).await
}

async fn csm_on_zos(addr: std::net::SocketAddr, clock: Clock) -> zos::ZosHandle {
    let mut c = zos::ZosConnectorConfig::new(addr);
    c.clock = clock;
    c.request_timeout = Duration::from_secs(30);
    let mut h = zos::spawn(
        c,
        zos::Authentication::EnhancedPassTicket(EnhancedGenerator::new(
            &EnhancedKey::from_hex(common::HOST_KEY).unwrap(),
            TicketType::Upper,
        )),
    )
    .unwrap();
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

fn config_pairs() -> Vec<VolumePair> {
    let v = |serial: &str, volume: u16| VolumeRef {
        storage: Ebcdic::new(serial).unwrap(),
        volume,
        device: 0,
    };
    VOLUMES
        .iter()
        .map(|&id| VolumePair {
            first: v("75FA120", id),
            second: v("75FA121", id),
        })
        .collect()
}

fn hs_rc(r: &ZosBody) -> ReturnCode {
    match r {
        ZosBody::HyperSwapReply { status, .. } => status.rc,
        other => panic!("{other:?}"),
    }
}

/// Loads the configuration and enables HyperSwap, as CSM's Start H1->H2 does.
async fn load_and_enable(h: &zos::ZosHandle) {
    let session = Ebcdic::new("MMSESS").unwrap();
    for body in [
        ZosBody::LoadConfigRequest {
            session: session.clone(),
            pairs: config_pairs(),
        },
        ZosBody::EnableRequest {
            session: session.clone(),
        },
    ] {
        let r = h.request(body).await.unwrap();
        assert_eq!(hs_rc(&r), ReturnCode::OK, "{r:?}");
    }
}

/// Every write acknowledged to the applications reads back from image `site`.
fn all_acknowledged_on(service: &Ds8kService, io: &HyperSwapIo, site: usize) {
    common::all_acknowledged_on(service, io, site, &VOLUMES);
}

#[tokio::test(start_paused = true)]
async fn a_planned_hyperswap_loses_no_acknowledged_write_and_holds_io_for_the_swap_only() {
    let clock = common::test_clock();
    let service = common::metro_mirror_complex(clock).await;
    let mut h1 = hmc(service.addr(), clock).await;
    mirror(&mut h1).await;
    let (host, io) = zos_host(&service, service.addr(), clock).await;
    let csm = csm_on_zos(host.addr(), clock).await;
    load_and_enable(&csm).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    all_acknowledged_on(&service, &io, 1);

    let swap = csm
        .request(ZosBody::PlannedSwapRequest {
            session: Ebcdic::new("MMSESS").unwrap(),
        })
        .await
        .unwrap();
    let ZosBody::HyperSwapReply {
        status, hyperswap, ..
    } = swap
    else {
        panic!("{swap:?}")
    };
    assert_eq!(status.rc, ReturnCode::OK, "{status:?}");
    assert_eq!(
        (hyperswap.state, hyperswap.active_site),
        (HyperSwapState::DISABLED, 2)
    );
    let holds = io.io_holds();
    assert_eq!(holds.lock().unwrap().len(), 1, "one hold, for the swap");
    // The applications go on, on H2; H2 holds every acknowledged write, H1 refuses
    // nothing and is no longer written.
    let before = io.acknowledged();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = io.acknowledged();
    assert!(after.values().max() > before.values().max(), "I/O resumed");
    all_acknowledged_on(&service, &io, 1);
    let pair = h1
        .request(Ds8kBody::ListPprcRequest {
            volume: VolumeId(0x3000),
        })
        .await
        .unwrap();
    let Ds8kBody::ListPprcReply { entries, .. } = pair else {
        panic!("{pair:?}")
    };
    assert!(entries[0].failed_over, "{entries:?}");
    // Swapping again needs HyperSwap enabled again (after a resynchronisation).
    let again = csm
        .request(ZosBody::PlannedSwapRequest {
            session: Ebcdic::new("MMSESS").unwrap(),
        })
        .await
        .unwrap();
    assert_eq!(hs_rc(&again), ReturnCode::REFUSED);
    csm.shutdown().await;
    h1.shutdown().await;
    host.shutdown().await;
    service.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn losing_the_primary_box_while_enabled_swaps_unplanned_and_loses_no_acknowledged_write() {
    let clock = common::test_clock();
    let service = common::metro_mirror_complex(clock).await;
    let mut h1 = hmc(service.addr(), clock).await;
    mirror(&mut h1).await;
    // z/OS reaches H1's HMC through a relay: cutting it is H1 failing for this host.
    let to_h1 = common::Relay::start().await;
    to_h1.to(service.addr());
    let (host, io) = zos_host(&service, to_h1.addr, clock).await;
    let mut csm = csm_on_zos(host.addr(), clock).await;
    load_and_enable(&csm).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = io.acknowledged();
    to_h1.set_cut(true);
    let event = loop {
        match tokio::time::timeout(Duration::from_secs(60), csm.next_event())
            .await
            .expect("an event within 60 s")
            .unwrap()
        {
            zos::ConnectorEvent::Event(e @ ZosBody::UnplannedSwapEvent { .. }) => break e,
            zos::ConnectorEvent::Event(other) => panic!("{other:?}"),
            _ => {}
        }
    };
    let ZosBody::UnplannedSwapEvent {
        reason,
        swapped_pairs,
        ..
    } = event
    else {
        unreachable!()
    };
    assert_eq!(
        (reason, swapped_pairs),
        (zgate::proto::zos::ZosReason::PRIMARY_IO_ERROR.0, 4)
    );
    let status = host.control().system().hyperswap_status();
    assert_eq!(
        (status.state, status.active_site),
        (HyperSwapState::DISABLED, 2)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = io.acknowledged();
    assert!(
        after.values().max() > before.values().max(),
        "I/O goes on, on H2"
    );
    all_acknowledged_on(&service, &io, 1);
    csm.shutdown().await;
    h1.shutdown().await;
    host.shutdown().await;
    service.shutdown().await;
}

/// zos-hyperswap.md §3.12: the link between the images fails; H1 suspends its pairs
/// and holds their LSS; z/OS freezes the whole configuration, lets its applications
/// go on at H1 (run), disables HyperSwap and tells the manager (EVT_FREEZE, then
/// EVT_HS_DISABLED). From then on H2 no longer changes while H1 does.
#[tokio::test(start_paused = true)]
async fn a_failed_link_between_the_images_fires_the_freeze_trigger() {
    let clock = common::test_clock();
    let service = common::metro_mirror_complex(clock).await;
    let mut h1 = hmc(service.addr(), clock).await;
    mirror(&mut h1).await;
    let (host, io) = zos_host(&service, service.addr(), clock).await;
    let mut csm = csm_on_zos(host.addr(), clock).await;
    load_and_enable(&csm).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    {
        let system = service.control().system();
        let now = system.clock_ms();
        system.complex().cut_link(now, 0, 1);
    }
    let mut seen = Vec::new();
    while seen.len() < 2 {
        if let zos::ConnectorEvent::Event(e) =
            tokio::time::timeout(Duration::from_secs(60), csm.next_event())
                .await
                .expect("events within 60 s")
                .unwrap()
        {
            seen.push(e);
        }
    }
    assert!(
        matches!(&seen[0], ZosBody::FreezeEvent { kind, .. } if *kind == zgate::proto::zos::FreezeKind::FREEZE),
        "{seen:?}"
    );
    assert!(
        matches!(&seen[1], ZosBody::HyperSwapDisabledEvent { .. }),
        "{seen:?}"
    );
    let status = host.control().system().hyperswap_status();
    assert_eq!(
        (status.state, status.active_site),
        (HyperSwapState::DISABLED, 1)
    );
    assert!(
        service
            .control()
            .system()
            .complex()
            .long_busy_lsss()
            .next()
            .is_none(),
        "the freeze was run"
    );
    let h2_before: Vec<u64> = {
        let remote = service.remote_control(0).unwrap().system();
        let image = remote.image();
        (0..15)
            .map(|t| image.read_track(VolumeId(0x3000), t).unwrap())
            .collect()
    };
    let before = io.acknowledged();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        io.acknowledged().values().max() > before.values().max(),
        "I/O goes on at H1"
    );
    all_acknowledged_on(&service, &io, 0);
    let h2_after: Vec<u64> = {
        let remote = service.remote_control(0).unwrap().system();
        let image = remote.image();
        (0..15)
            .map(|t| image.read_track(VolumeId(0x3000), t).unwrap())
            .collect()
    };
    assert_eq!(h2_before, h2_after, "H2 holds the freeze's instant");
    csm.shutdown().await;
    h1.shutdown().await;
    host.shutdown().await;
    service.shutdown().await;
}
