//! TLS end to end over loopback: the host connectors against the emulated peers with
//! rustls on both sides, certificates generated in the test (rcgen).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Identity, TestPki};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zgate::client::{zos, ztpf};
use zgate::passticket::{EnhancedGenerator, EnhancedKey, TicketType};
use zgate::peer::zos::{ZosPeer, ZosPeerConfig};
use zgate::peer::ztpf::{ZtpfPeer, ZtpfPeerConfig};
use zgate::proto::ReturnCode;
use zgate::proto::zos::ZosBody;
use zgate::proto::ztpf::ZtpfBody;
use zgate::sim::zos::ZosSystem;
use zgate::sim::ztpf::ZtpfSystem;
use zgate::tls::{ClientTls, ServerTls, TlsError};

const KEY: &str = "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF";

fn auth() -> ztpf::Authentication {
    ztpf::Authentication::EnhancedPassTicket(EnhancedGenerator::new(
        &EnhancedKey::from_hex(KEY).unwrap(),
        TicketType::Upper,
    ))
}

async fn ztpf_peer(tls: ServerTls) -> ZtpfPeer {
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
    listen.tls = Some(tls);
    listen.clock = common::test_clock();
    ZtpfPeer::start(&listen, system).await.unwrap()
}

fn ztpf_config(peer: &ZtpfPeer, tls: ClientTls) -> ztpf::ZtpfConnectorConfig {
    let mut c = ztpf::ZtpfConnectorConfig::new(peer.addr());
    c.clock = peer.control().clock();
    c.user = "CSMTPF".into();
    c.appl = "ZTPFCSM".into();
    c.backoff_initial = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(100);
    c.connect_timeout = Duration::from_secs(2);
    c.request_timeout = Duration::from_secs(2);
    c.tls = Some(tls);
    c
}

/// Waits for the connector's first logon; `None` if none happens within `wait`.
async fn first_logon(h: &mut ztpf::ZtpfHandle, wait: Duration) -> Option<String> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, h.next_event()).await {
            Err(_) | Ok(None) => return None,
            Ok(Some(ztpf::ConnectorEvent::Connected { system, .. })) => return Some(system),
            Ok(Some(_)) => {}
        }
    }
}

fn server(id: &Identity, client_ca: Option<&TestPki>) -> ServerTls {
    ServerTls::from_pem(
        id.cert_pem.as_bytes(),
        id.key_pem.as_bytes(),
        client_ca.map(|ca| ca.ca_pem().as_bytes()),
    )
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn ztpf_signon_and_query_over_tls() {
    let pki = TestPki::new("zgate test CA");
    let host = pki.issue(&["ztpf.test", "127.0.0.1"]);
    let peer = ztpf_peer(server(&host, None)).await;
    let tls = ClientTls::from_pem(pki.ca_pem().as_bytes(), "ztpf.test", None).unwrap();
    let mut h = ztpf::spawn(ztpf_config(&peer, tls), auth()).unwrap();
    assert_eq!(
        first_logon(&mut h, Duration::from_secs(10))
            .await
            .as_deref(),
        Some("CPUA")
    );
    match h.request(ZtpfBody::QueryRequest).await.unwrap() {
        ZtpfBody::QueryReply(info) => assert_eq!(info.status.rc, ReturnCode::OK),
        other => panic!("{other:?}"),
    }
    h.shutdown().await;
    peer.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn mutual_tls_admits_only_certified_clients() {
    let pki = TestPki::new("zgate host CA");
    let clients = TestPki::new("zgate client CA");
    let host = pki.issue(&["ztpf.test"]);
    let peer = ztpf_peer(server(&host, Some(&clients))).await;

    // With a certificate from the client CA: admitted.
    let gateway = clients.issue(&["zgate.test"]);
    let tls = ClientTls::from_pem(
        pki.ca_pem().as_bytes(),
        "ztpf.test",
        Some((gateway.cert_pem.as_bytes(), gateway.key_pem.as_bytes())),
    )
    .unwrap();
    let mut good = ztpf::spawn(ztpf_config(&peer, tls), auth()).unwrap();
    assert!(
        first_logon(&mut good, Duration::from_secs(10))
            .await
            .is_some()
    );

    // Without a certificate, or with one from another CA: never signed on.
    let stranger = TestPki::new("someone else").issue(&["zgate.test"]);
    for identity in [
        None,
        Some((stranger.cert_pem.as_bytes(), stranger.key_pem.as_bytes())),
    ] {
        let tls = ClientTls::from_pem(pki.ca_pem().as_bytes(), "ztpf.test", identity).unwrap();
        let mut bad = ztpf::spawn(ztpf_config(&peer, tls), auth()).unwrap();
        assert_eq!(first_logon(&mut bad, Duration::from_secs(2)).await, None);
        assert!(matches!(
            bad.request(ZtpfBody::QueryRequest).await,
            Err(ztpf::RequestError::NotConnected)
        ));
        bad.shutdown().await;
    }
    // The admitted connection was not disturbed by the refused ones.
    assert!(matches!(
        good.request(ZtpfBody::QueryRequest).await.unwrap(),
        ZtpfBody::QueryReply(_)
    ));
    good.shutdown().await;
    peer.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn connector_refuses_a_host_it_cannot_verify() {
    let pki = TestPki::new("zgate test CA");
    let host = pki.issue(&["ztpf.test"]);
    let peer = ztpf_peer(server(&host, None)).await;
    // Wrong name, then a CA that did not sign the host's certificate.
    let other = TestPki::new("other CA");
    for tls in [
        ClientTls::from_pem(pki.ca_pem().as_bytes(), "elsewhere.test", None).unwrap(),
        ClientTls::from_pem(other.ca_pem().as_bytes(), "ztpf.test", None).unwrap(),
    ] {
        let mut h = ztpf::spawn(ztpf_config(&peer, tls), auth()).unwrap();
        assert_eq!(first_logon(&mut h, Duration::from_secs(2)).await, None);
        h.shutdown().await;
    }
    // Nothing reached the emulated system.
    assert!(peer.control().system().recorded().is_empty());
    peer.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn plain_tcp_client_on_a_tls_listener_is_dropped_and_the_listener_lives() {
    let pki = TestPki::new("zgate test CA");
    let host = pki.issue(&["ztpf.test"]);
    let peer = ztpf_peer(server(&host, None)).await;
    // A plain frame (heartbeat-sized) instead of a ClientHello.
    let mut raw = tokio::net::TcpStream::connect(peer.addr()).await.unwrap();
    raw.write_all(&[
        0xE9, 0xC7, 1, 2, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 1,
    ])
    .await
    .unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), raw.read(&mut buf))
        .await
        .expect("the listener answers or closes")
        .unwrap_or(0);
    // Whatever came back is a TLS alert record (type 21) or nothing, never a frame.
    assert!(n == 0 || buf[0] == 21, "got {:02X?}", &buf[..n]);
    // A TLS client still gets in.
    let tls = ClientTls::from_pem(pki.ca_pem().as_bytes(), "ztpf.test", None).unwrap();
    let mut h = ztpf::spawn(ztpf_config(&peer, tls), auth()).unwrap();
    assert!(first_logon(&mut h, Duration::from_secs(10)).await.is_some());
    h.shutdown().await;
    peer.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn zos_peer_with_tls_from_its_toml_configuration() {
    let pki = TestPki::new("zgate test CA");
    let host = pki.issue(&["zos.test"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("host.pem"), &host.cert_pem).unwrap();
    std::fs::write(dir.path().join("host.key"), &host.key_pem).unwrap();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/peers/zos.toml"
    ))
    .unwrap()
    .replace("listen = \"127.0.0.1:5858\"", "listen = \"127.0.0.1:0\"");
    let text = format!(
        "{text}\n[tls]\ncert = {:?}\nkey = {:?}\n",
        dir.path().join("host.pem"),
        dir.path().join("host.key")
    );
    let cfg: ZosPeerConfig = toml::from_str(&text).unwrap();
    let system = ZosSystem::with_keys(&cfg.system, |v| match v {
        "ZGATE_ZOS_ENHANCED_KEY" => Some(KEY.to_string()),
        "ZGATE_ZOS_LEGACY_KEY" => Some("0123456789ABCDEF".to_string()),
        _ => None,
    })
    .unwrap();
    let mut listen = cfg.listen_config().unwrap();
    listen.clock = common::test_clock();
    let peer = ZosPeer::start(&listen, system).await.unwrap();

    let mut c = zos::ZosConnectorConfig::new(peer.addr());
    c.clock = peer.control().clock();
    c.tls = Some(ClientTls::from_pem(pki.ca_pem().as_bytes(), "zos.test", None).unwrap());
    let auth = zos::Authentication::EnhancedPassTicket(EnhancedGenerator::new(
        &EnhancedKey::from_hex(KEY).unwrap(),
        TicketType::Upper,
    ));
    let mut h = zos::spawn(c, auth).unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), h.next_event())
            .await
            .unwrap()
            .unwrap()
        {
            zos::ConnectorEvent::Connected { domain, .. } => {
                assert_eq!(domain, "PLEX1");
                break;
            }
            zos::ConnectorEvent::GaveUp { status, .. } => panic!("{status:?}"),
            _ => {}
        }
    }
    assert!(matches!(
        h.request(ZosBody::QuerySystemRequest).await.unwrap(),
        ZosBody::QuerySystemReply(_)
    ));
    h.shutdown().await;
    peer.shutdown().await;
}

#[test]
fn bad_tls_material_is_a_typed_error() {
    let pki = TestPki::new("zgate test CA");
    let a = pki.issue(&["a.test"]);
    let b = pki.issue(&["b.test"]);
    assert!(matches!(
        ServerTls::from_pem(b"not pem", a.key_pem.as_bytes(), None),
        Err(TlsError::Missing { .. })
    ));
    assert!(matches!(
        ServerTls::from_pem(a.cert_pem.as_bytes(), b"", None),
        Err(TlsError::Missing { .. })
    ));
    // The key of another certificate.
    assert!(matches!(
        ServerTls::from_pem(a.cert_pem.as_bytes(), b.key_pem.as_bytes(), None),
        Err(TlsError::Rustls(_))
    ));
    assert!(matches!(
        ClientTls::from_pem(pki.ca_pem().as_bytes(), "not a name!", None),
        Err(TlsError::ServerName(_))
    ));
    // A missing file names the file; the error never carries key material.
    let files = zgate::tls::ClientTlsFiles {
        ca: "/nonexistent/ca.pem".into(),
        server_name: "x.test".into(),
        cert: Some("/nonexistent/c.pem".into()),
        key: None,
    };
    assert!(matches!(
        ClientTls::from_files(&files),
        Err(TlsError::HalfIdentity)
    ));
    let files = zgate::tls::ClientTlsFiles {
        cert: None,
        ..files
    };
    let e = ClientTls::from_files(&files).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    let e = ServerTls::from_pem(
        a.cert_pem.as_bytes(),
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        None,
    )
    .unwrap_err();
    assert!(!e.to_string().contains("AAAA"), "{e}");
}
