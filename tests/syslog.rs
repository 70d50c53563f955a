//! Remote syslog of the console: what zgate sends over UDP, TCP and TLS, parsed by an
//! independent RFC 5424 parser (the `syslog_loose` crate).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::sync::broadcast;
use zgate::gateway::syslog::{self, SyslogConfig, SyslogTransport};
use zgate::policy::console::{ConsoleMessage, ids};
use zgate::tls::ServerTls;

fn message(at_ms: u64) -> ConsoleMessage {
    ConsoleMessage::new(
        ids::BACKGROUND_COPY_COMPLETE,
        at_ms,
        Some("FC\"1]"),
        "The background copy for session FC\"1] role pair H1-T1 is complete.".into(),
        Vec::new(),
    )
}

fn check(line: &str) {
    let m = syslog_loose::parse_message(line, syslog_loose::Variant::RFC5424);
    assert_eq!(m.protocol, syslog_loose::Protocol::RFC5424(1), "{line}");
    assert_eq!(
        m.facility,
        Some(syslog_loose::SyslogFacility::LOG_LOCAL0),
        "{line}"
    );
    assert_eq!(
        m.severity,
        Some(syslog_loose::SyslogSeverity::SEV_INFO),
        "{line}"
    );
    assert_eq!(m.hostname, Some("gw1"));
    assert_eq!(m.appname, Some("zgate"));
    assert_eq!(m.msgid, Some("IWNR2772I"));
    let ts = m.timestamp.unwrap();
    assert_eq!(ts.timestamp_millis(), 1_795_564_800_123);
    let sd = &m.structured_data[0];
    assert_eq!(sd.id, "zgate@32473");
    let params: Vec<(String, String)> = sd
        .params()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(
        params,
        vec![("session".to_string(), "FC\"1]".to_string())],
        "{line}"
    );
    assert_eq!(
        m.msg,
        "The background copy for session FC\"1] role pair H1-T1 is complete."
    );
}

fn config(transport: SyslogTransport, addr: std::net::SocketAddr) -> SyslogConfig {
    SyslogConfig {
        transport,
        addr,
        facility: 16,
        hostname: "gw1".into(),
        tls: None,
    }
}

#[tokio::test]
async fn udp_one_datagram_per_message() {
    let server = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (tx, rx) = broadcast::channel(16);
    let task = syslog::spawn(
        config(SyslogTransport::Udp, server.local_addr().unwrap()),
        rx,
        common::test_clock(),
    )
    .unwrap();
    tx.send(message(1_795_564_800_123)).unwrap();
    let mut buf = vec![0u8; 2048];
    let n = tokio::time::timeout(Duration::from_secs(10), server.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    check(std::str::from_utf8(&buf[..n]).unwrap());
    drop(tx);
    task.await.unwrap();
}

/// Reads RFC 6587 octet-counted frames: `LEN SP MSG`.
async fn octet_counted(mut stream: impl tokio::io::AsyncRead + Unpin, count: usize) -> Vec<String> {
    let mut data = Vec::new();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < count {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed early");
        data.extend_from_slice(&buf[..n]);
        while let Some(sp) = data.iter().position(|&b| b == b' ') {
            let len: usize = std::str::from_utf8(&data[..sp]).unwrap().parse().unwrap();
            if data.len() < sp + 1 + len {
                break;
            }
            out.push(String::from_utf8(data[sp + 1..sp + 1 + len].to_vec()).unwrap());
            data.drain(..sp + 1 + len);
        }
    }
    out
}

#[tokio::test]
async fn tcp_octet_counting_and_reconnect() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (tx, rx) = broadcast::channel(16);
    let task = syslog::spawn(
        config(SyslogTransport::Tcp, listener.local_addr().unwrap()),
        rx,
        common::test_clock(),
    )
    .unwrap();
    tx.send(message(1_795_564_800_123)).unwrap();
    tx.send(message(1_795_564_800_123)).unwrap();
    let (stream, _) = listener.accept().await.unwrap();
    let lines = tokio::time::timeout(Duration::from_secs(10), octet_counted(stream, 2))
        .await
        .unwrap();
    for l in &lines {
        check(l);
    }
    drop(tx);
    task.await.unwrap();
}

#[tokio::test]
async fn tls_octet_counting() {
    let pki = common::TestPki::new("syslog CA");
    let id = pki.issue(&["syslog.test"]);
    let server_tls =
        ServerTls::from_pem(id.cert_pem.as_bytes(), id.key_pem.as_bytes(), None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut cfg = config(SyslogTransport::Tls, listener.local_addr().unwrap());
    cfg.tls = Some(zgate::tls::ClientTlsFiles {
        ca,
        server_name: "syslog.test".into(),
        cert: None,
        key: None,
    });
    let (tx, rx) = broadcast::channel(16);
    let task = syslog::spawn(cfg, rx, common::test_clock()).unwrap();
    tx.send(message(1_795_564_800_123)).unwrap();
    let (tcp, _) = listener.accept().await.unwrap();
    let stream = server_tls
        .accept(tcp, Duration::from_secs(10))
        .await
        .unwrap();
    let lines = tokio::time::timeout(Duration::from_secs(10), octet_counted(stream, 1))
        .await
        .unwrap();
    check(&lines[0]);
    drop(tx);
    task.await.unwrap();
}

#[test]
fn severities_and_an_empty_session() {
    let mut m = message(0);
    m.session = None;
    m.id = ids::STORAGE_FAILED;
    let line = syslog::format(&m, 16, "gw1", 7);
    assert!(
        line.starts_with("<131>1 1970-01-01T00:00:00.000Z gw1 zgate 7 IWNR8013E - "),
        "{line}"
    );
    let parsed = syslog_loose::parse_message(&line, syslog_loose::Variant::RFC5424);
    assert_eq!(parsed.severity, Some(syslog_loose::SyslogSeverity::SEV_ERR));
    assert!(parsed.structured_data.is_empty());
}

/// configuration.md §7, syslog.md §1: settings out of range are refused at start,
/// never quietly changed.
#[test]
fn out_of_range_settings_are_refused() {
    let addr = "127.0.0.1:514".parse().unwrap();
    let mut c = config(SyslogTransport::Udp, addr);
    assert!(c.check().is_ok());
    c.facility = 24;
    assert!(c.check().unwrap_err().contains("facility 24"));
    c.facility = 23;
    for bad in ["my host", "hôte", ""] {
        c.hostname = bad.into();
        assert!(c.check().unwrap_err().contains("hostname"), "{bad}");
    }
}
