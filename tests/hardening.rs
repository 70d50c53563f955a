//! The attacks of the hardening issue, each reproduced against a running emulated
//! z/OS on loopback (paused clock): lock-out by bad tickets, idle connections,
//! oversized and unfinished frames, clear-text passwords, and what the wire tells.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::codec::Framed;
use zgate::codec::fields::Ebcdic;
use zgate::codec::frame::FrameCodec;
use zgate::passticket::{LegacyGenerator, LegacyKey, RacfName};
use zgate::peer::server::LimitsConfig;
use zgate::peer::zos::{ZosPeer, ZosPeerConfig};
use zgate::proto::logon::{Credential, CredentialKind, LogonRequest};
use zgate::proto::zos::ZosMessage;
use zgate::proto::{Control, Payload};
use zgate::sim::zos::ZosSystem;

const LEGACY: &str = "0123456789ABCDEF";

async fn start(limits: LimitsConfig, max_connections: usize) -> ZosPeer {
    let text = format!(
        "listen = \"127.0.0.1:0\"\nmax_connections = {max_connections}\n{}",
        r#"
[[users]]
user = "HOSTUSR"
[[ptktdata]]
name = "IOSHMCSM"
legacy_key_env = "LEGACY"
"#
    );
    let mut cfg: ZosPeerConfig = toml::from_str(&text).unwrap();
    cfg.limits = limits;
    let system = ZosSystem::with_keys(&cfg.system, |_| Some(LEGACY.into())).unwrap();
    let mut listen = cfg.listen_config().unwrap();
    listen.clock = common::test_clock();
    ZosPeer::start(&listen, system).await.unwrap()
}

/// A connection from a chosen loopback source address.
async fn connect_from(source: [u8; 4], peer: &ZosPeer) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    socket.connect(peer.addr()).await.unwrap()
}

fn ticket(peer: &ZosPeer, offset: i64) -> String {
    LegacyGenerator::new(&LegacyKey::from_hex(LEGACY).unwrap())
        .generate(
            &RacfName::parse("u", "HOSTUSR").unwrap(),
            &RacfName::parse("a", "IOSHMCSM").unwrap(),
            peer.control()
                .clock()
                .unix_secs()
                .saturating_add_signed(offset),
        )
        .to_string()
}

/// Sends one LOGON on `stream` and returns (rc, reason), or None if the connection closed.
async fn logon(stream: TcpStream, kind: CredentialKind, credential: &str) -> Option<(u16, u16)> {
    let mut framed = Framed::new(stream, FrameCodec::default());
    let msg = ZosMessage::control(
        1,
        Control::LogonRequest(LogonRequest {
            user: Ebcdic::new("HOSTUSR").unwrap(),
            appl: Ebcdic::new("IOSHMCSM").unwrap(),
            kind,
            heartbeat_secs: 30,
            credential: Credential::new(credential).unwrap(),
        }),
    );
    framed.send(msg.to_frame()).await.ok()?;
    let frame = framed.next().await?.ok()?;
    match ZosMessage::decode(&frame).ok()?.body {
        Payload::Control(Control::LogonReply(r)) => Some((r.status.rc.0, r.status.reason)),
        _ => None,
    }
}

fn hostusr() -> RacfName {
    RacfName::parse("u", "HOSTUSR").unwrap()
}

/// Attack 1: three bad tickets from one address no longer revoke CSM's user: the
/// third is refused unevaluated; a good client elsewhere logs on; the attacker may
/// try again only after the throttle window.
#[tokio::test(start_paused = true)]
async fn bad_tickets_from_one_address_are_throttled_before_they_revoke() {
    let peer = start(LimitsConfig::default(), 64).await;
    for _ in 0..3 {
        let s = connect_from([127, 0, 0, 1], &peer).await;
        assert_eq!(
            logon(s, CredentialKind::PASSTICKET, "AAAAAAAA").await,
            Some((8, 0x0100))
        );
    }
    {
        let mut system = peer.control().system();
        assert_eq!(
            system.racf().failures(&hostusr()),
            Some(2),
            "third not evaluated"
        );
        assert!(!system.racf().is_revoked(&hostusr()));
    }
    // The gateway, from another address, logs on.
    let good = connect_from([127, 0, 0, 2], &peer).await;
    assert_eq!(
        logon(good, CredentialKind::PASSTICKET, &ticket(&peer, 0)).await,
        Some((0, 0))
    );
    // Still throttled from the attacker's address, even with a valid ticket...
    let s = connect_from([127, 0, 0, 1], &peer).await;
    assert_eq!(
        logon(s, CredentialKind::PASSTICKET, &ticket(&peer, 1)).await,
        Some((8, 0x0100))
    );
    // ...until the window has passed.
    tokio::time::sleep(Duration::from_secs(61)).await;
    let s = connect_from([127, 0, 0, 1], &peer).await;
    assert_eq!(
        logon(s, CredentialKind::PASSTICKET, &ticket(&peer, 2)).await,
        Some((0, 0))
    );
    peer.shutdown().await;
}

/// Attack 2: idle connections. A full listener still accepts and closes at once; idle
/// connections are closed at the logon deadline, and the listener serves again.
#[tokio::test(start_paused = true)]
async fn idle_connections_are_closed_and_the_listener_never_stalls() {
    let limits = LimitsConfig {
        max_connections_per_address: 0,
        ..LimitsConfig::default()
    };
    let peer = start(limits, 8).await;
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(TcpStream::connect(peer.addr()).await.unwrap());
    }
    tokio::task::yield_now().await;
    // The ninth is accepted and closed at once, not left waiting.
    let mut ninth = TcpStream::connect(peer.addr()).await.unwrap();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(1), ninth.read(&mut buf))
        .await
        .expect("closed, not hanging")
        .unwrap_or(0);
    assert_eq!(n, 0);
    // At the logon deadline (10 s) the idle ones are closed...
    tokio::time::sleep(Duration::from_secs(11)).await;
    for s in &mut idle {
        let n = tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf))
            .await
            .expect("closed by the server")
            .unwrap_or(0);
        assert_eq!(n, 0);
    }
    drop(idle);
    tokio::task::yield_now().await;
    // ...and a client logs on.
    let s = TcpStream::connect(peer.addr()).await.unwrap();
    assert_eq!(
        logon(s, CredentialKind::PASSTICKET, &ticket(&peer, 0)).await,
        Some((0, 0))
    );
    peer.shutdown().await;
}

/// Attack 2b: one address may hold only `max_connections_per_address`.
#[tokio::test(start_paused = true)]
async fn connections_per_address_are_capped() {
    let limits = LimitsConfig {
        max_connections_per_address: 2,
        ..LimitsConfig::default()
    };
    let peer = start(limits, 64).await;
    let _a = connect_from([127, 0, 0, 5], &peer).await;
    let _b = connect_from([127, 0, 0, 5], &peer).await;
    tokio::task::yield_now().await;
    let mut c = connect_from([127, 0, 0, 5], &peer).await;
    let mut buf = [0u8; 1];
    assert_eq!(c.read(&mut buf).await.unwrap_or(0), 0, "third closed");
    let other = connect_from([127, 0, 0, 6], &peer).await;
    assert_eq!(
        logon(other, CredentialKind::PASSTICKET, &ticket(&peer, 0)).await,
        Some((0, 0))
    );
    peer.shutdown().await;
}

/// Attack 3: before logon only logon-sized bodies are taken (a 256 KiB announcement
/// is refused before its body is read), and a frame that never finishes closes the
/// connection at the frame deadline.
#[tokio::test(start_paused = true)]
async fn large_and_unfinished_frames_before_logon_are_refused() {
    let peer = start(LimitsConfig::default(), 64).await;
    let mut s = TcpStream::connect(peer.addr()).await.unwrap();
    let mut header = vec![0xE9, 0xC7, 1, 1, 0, 1, 0, 0, 0, 0, 0, 9];
    header.extend((256u32 * 1024).to_be_bytes());
    s.write_all(&header).await.unwrap();
    let mut reply = [0u8; 22];
    s.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply[16..20], &[0x00, 0x10, 0x00, 0x07], "FRAME_TOO_LARGE");
    let mut rest = [0u8; 1];
    assert_eq!(s.read(&mut rest).await.unwrap_or(0), 0, "then closed");

    // A small frame, all but its last byte, then silence.
    let mut s = TcpStream::connect(peer.addr()).await.unwrap();
    let mut partial = vec![
        0xE9, 0xC7, 1, 1, 0, 2, 0, 0, 0, 0, 0, 9, 0, 0, 0, 4, 0, 0, 0,
    ];
    s.write_all(&partial).await.unwrap();
    partial.clear();
    tokio::time::sleep(Duration::from_secs(9)).await;
    let n = tokio::time::timeout(Duration::from_secs(40), s.read(&mut rest))
        .await
        .expect("closed by the frame deadline")
        .unwrap_or(0);
    assert_eq!(n, 0);
    peer.shutdown().await;
}

/// Attack 6: a password on a listener without TLS is refused unless allowed.
#[tokio::test(start_paused = true)]
async fn clear_text_passwords_are_refused_without_tls() {
    let peer = start(LimitsConfig::default(), 64).await;
    let s = TcpStream::connect(peer.addr()).await.unwrap();
    assert_eq!(
        logon(s, CredentialKind::PASSWORD, "SECRET1").await,
        Some((8, 0x0111)),
        "CREDENTIAL_KIND_UNSUPPORTED"
    );
    assert_eq!(peer.control().system().racf().failures(&hostusr()), Some(0));
    peer.shutdown().await;
}

/// A log sink for one test.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Attack 1, what the operator sees: every refused logon at WARN with the client's
/// address and the precise reason, the revocation on its own line, and never the
/// credential.
#[tokio::test(start_paused = true)]
async fn refused_logons_and_revocations_are_logged_at_warn_without_the_credential() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let limits = LimitsConfig {
        failed_logons_before_throttle: 0,
        ..LimitsConfig::default()
    };
    let peer = start(limits, 64).await;
    for bad in ["AAAAAAAA", "BBBBBBBB", "CCCCCCCC"] {
        let s = connect_from([127, 0, 0, 1], &peer).await;
        assert_eq!(
            logon(s, CredentialKind::PASSTICKET, bad).await,
            Some((8, 0x0100))
        );
    }
    // A credential of a kind the server does not take (refused by the session
    // itself, before the system sees it) is logged too.
    let s = connect_from([127, 0, 0, 2], &peer).await;
    assert!(matches!(
        logon(s, CredentialKind::PASSTICKET, "TOOLONGTICKET").await,
        Some((8, _))
    ));
    peer.shutdown().await;
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("logon refused"))
        .collect();
    assert_eq!(refused.len(), 4, "{log}");
    assert!(refused[..3].iter().all(|l| l.contains("WARN")
        && l.contains("peer=127.0.0.1:")
        && l.contains("user=HOSTUSR")
        && l.contains("reason=0x0101")));
    assert!(
        refused[3].contains("WARN") && refused[3].contains("peer=127.0.0.2:"),
        "{log}"
    );
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("user revoked after repeated failed logons"))
            .count(),
        1,
        "{log}"
    );
    for bad in ["AAAAAAAA", "BBBBBBBB", "CCCCCCCC", "TOOLONGTICKET"] {
        assert!(!log.contains(bad), "a credential reached the log");
    }
}

/// The key may come from an owner-only file instead of the environment: a z/OS
/// started that way (no variable set) validates tickets made with that key.
#[tokio::test(start_paused = true)]
async fn a_key_read_from_an_owner_only_file_validates_tickets() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ioshmcsm.key");
    std::fs::write(&path, format!("{LEGACY}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = format!(
        "listen = \"127.0.0.1:0\"\n[[users]]\nuser = \"HOSTUSR\"\n[[ptktdata]]\nname = \"IOSHMCSM\"\nlegacy_key_file = \"{}\"\n",
        path.display()
    );
    let cfg: ZosPeerConfig = toml::from_str(&text).unwrap();
    let peer = ZosPeer::from_config_with(cfg.clone(), |_| None, common::test_clock())
        .await
        .unwrap();
    let good = ticket(&peer, 0);
    let stream = connect_from([127, 0, 0, 1], &peer).await;
    assert_eq!(
        logon(stream, CredentialKind::PASSTICKET, &good).await,
        Some((0, 0))
    );

    // The same file made group-readable stops the start, naming the file.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = ZosPeer::from_config_with(cfg, |_| None, common::test_clock())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("ioshmcsm.key") && err.contains("readable by others"),
        "{err}"
    );
}

/// framing.md §9, after logon: a client that sends part of a frame and then stops
/// (or trickles) is closed at the frame deadline, however long its heartbeat
/// interval.
#[tokio::test(start_paused = true)]
async fn an_unfinished_frame_after_logon_closes_at_the_frame_deadline() {
    let limits = LimitsConfig {
        frame_timeout_secs: 3,
        ..LimitsConfig::default()
    };
    let peer = start(limits, 8).await;
    let stream = TcpStream::connect(peer.addr()).await.unwrap();
    let mut framed = Framed::new(stream, FrameCodec::default());
    let msg = ZosMessage::control(
        1,
        Control::LogonRequest(LogonRequest {
            user: Ebcdic::new("HOSTUSR").unwrap(),
            appl: Ebcdic::new("IOSHMCSM").unwrap(),
            kind: CredentialKind::PASSTICKET,
            heartbeat_secs: 60,
            credential: Credential::new(&ticket(&peer, 0)).unwrap(),
        }),
    );
    framed.send(msg.to_frame()).await.unwrap();
    let reply = framed.next().await.unwrap().unwrap();
    assert!(matches!(
        ZosMessage::decode(&reply).unwrap().body,
        Payload::Control(Control::LogonReply(r)) if r.status.rc.0 == 0
    ));
    let mut s = framed.into_inner();
    // Five bytes of a header, then one more byte a second, then nothing.
    s.write_all(&[0xE9, 0xC7, 1, 1, 0]).await.unwrap();
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        s.write_all(&[0x02]).await.unwrap();
    }
    let mut rest = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut rest))
        .await
        .expect("closed by the frame deadline, not left open")
        .unwrap_or(0);
    assert_eq!(n, 0);
    peer.shutdown().await;
}
