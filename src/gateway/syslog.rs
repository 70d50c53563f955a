//! Remote syslog of the console (`protocol-specs/syslog.md`): every console message
//! as one RFC 5424 message, over UDP (one datagram each), TCP or TLS (RFC 6587 /
//! RFC 5425 octet counting). A sender never holds the gateway up: messages wait in a
//! bounded queue (the oldest go first when it is full, and the loss is counted), and a
//! TCP or TLS target is reconnected with backoff.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::broadcast;
use tracing::warn;

use crate::clock::Clock;
use crate::policy::console::{ConsoleMessage, Severity};
use crate::tls::{ClientTls, ClientTlsFiles};

/// Messages waiting for a slow or absent syslog server before the oldest are dropped.
const QUEUE: usize = 4096;

/// `[syslog]` of `zgate serve` (configuration.md §7).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// `udp`, `tcp` or `tls`.
    pub transport: SyslogTransport,
    /// The server.
    pub addr: SocketAddr,
    /// Facility number (RFC 5424 §6.2.1); default 16, local0.
    #[serde(default = "local0")]
    pub facility: u8,
    /// HOSTNAME field; default `zgate`.
    #[serde(default = "default_host")]
    pub hostname: String,
    /// TLS to the server (`transport = "tls"`).
    #[serde(default)]
    pub tls: Option<ClientTlsFiles>,
}

impl SyslogConfig {
    /// Settings out of range are refused, never quietly changed (syslog.md §1):
    /// a facility is 0–23 (RFC 5424 §6.2.1); a HOSTNAME is 1–255 printable
    /// US-ASCII characters without spaces (§6.2.4).
    pub fn check(&self) -> Result<(), String> {
        if self.facility > 23 {
            return Err(format!(
                "facility {} is out of range: RFC 5424 facilities are 0 to 23",
                self.facility
            ));
        }
        let h = &self.hostname;
        if h.is_empty() || h.len() > 255 || !h.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "hostname must be 1 to 255 printable US-ASCII characters without spaces (RFC 5424 HOSTNAME)"
                    .into(),
            );
        }
        Ok(())
    }
}

fn local0() -> u8 {
    16
}
fn default_host() -> String {
    "zgate".into()
}

/// How messages travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogTransport {
    /// One datagram per message (RFC 5426).
    Udp,
    /// Octet counting over TCP (RFC 6587).
    Tcp,
    /// Octet counting over TLS (RFC 5425).
    Tls,
}

/// RFC 5424 severity of a console message: I → 6 informational, W → 4 warning,
/// E → 3 error.
pub fn severity(s: Severity) -> u8 {
    match s {
        Severity::Info => 6,
        Severity::Warning => 4,
        Severity::Error => 3,
    }
}

fn sd_escape(v: &str) -> String {
    v.chars()
        .flat_map(|c| match c {
            '"' | '\\' | ']' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

fn header_field(v: &str, max: usize) -> String {
    let clean: String = v
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if clean.is_empty() { "-".into() } else { clean }
}

/// One console message as RFC 5424:
/// `<PRI>1 TIMESTAMP HOSTNAME zgate PROCID MSGID [zgate@32473 session="S"] TEXT`.
/// MSGID is the message id (`IWNR2772I`); the text is the message's, in UTF-8.
pub fn format(m: &ConsoleMessage, facility: u8, hostname: &str, procid: u32) -> String {
    let pri = u16::from(facility.min(23)) * 8 + u16::from(severity(m.id.severity));
    let ts = crate::policy::console::utc_text(m.at_ms);
    // utc_text: "YYYY-MM-DD hh:mm:ss UTC (ms)" -> RFC 3339 with milliseconds.
    let date_time = ts
        .get(..19)
        .unwrap_or("1970-01-01 00:00:00")
        .replace(' ', "T");
    let sd = match &m.session {
        Some(s) => format!("[zgate@32473 session=\"{}\"]", sd_escape(s)),
        None => "-".into(),
    };
    format!(
        "<{pri}>1 {date_time}.{:03}Z {} zgate {procid} {} {sd} {}",
        m.at_ms % 1000,
        header_field(hostname, 255),
        m.id,
        m.text
    )
}

/// Sends the console to `config`'s server until the console closes.
pub fn spawn(
    config: SyslogConfig,
    mut console: broadcast::Receiver<ConsoleMessage>,
    clock: Clock,
) -> Result<tokio::task::JoinHandle<()>, String> {
    config.check()?;
    let tls = match (&config.transport, &config.tls) {
        (SyslogTransport::Tls, Some(files)) => {
            Some(ClientTls::from_files(files).map_err(|e| e.to_string())?)
        }
        (SyslogTransport::Tls, None) => return Err("syslog over TLS needs [syslog.tls]".into()),
        _ => None,
    };
    let procid = std::process::id();
    Ok(tokio::spawn(async move {
        let mut queue: VecDeque<String> = VecDeque::new();
        let mut dropped = 0u64;
        let mut link: Option<Link> = None;
        let mut backoff = Duration::from_millis(200);
        loop {
            // Take what the console has; wait when there is nothing to send.
            if queue.is_empty() {
                match console.recv().await {
                    Ok(m) => queue.push_back(format(&m, config.facility, &config.hostname, procid)),
                    Err(broadcast::error::RecvError::Lagged(n)) => dropped += n,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
            loop {
                match console.try_recv() {
                    Ok(m) => {
                        if queue.len() == QUEUE {
                            queue.pop_front();
                            dropped += 1;
                        }
                        queue.push_back(format(&m, config.facility, &config.hostname, procid));
                    }
                    Err(broadcast::error::TryRecvError::Lagged(n)) => dropped += n,
                    Err(broadcast::error::TryRecvError::Closed) if queue.is_empty() => return,
                    Err(_) => break,
                }
            }
            if dropped > 0 {
                warn!(
                    dropped,
                    "syslog: messages dropped (server slow or unreachable)"
                );
                dropped = 0;
            }
            if link.is_none() {
                match Link::open(&config, tls.as_ref()).await {
                    Ok(l) => {
                        link = Some(l);
                        backoff = Duration::from_millis(200);
                    }
                    Err(e) => {
                        warn!(addr = %config.addr, error = %e, "syslog: cannot reach the server");
                        tokio::time::sleep_until(clock.tokio_now() + backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                        continue;
                    }
                }
            }
            while let Some(line) = queue.front() {
                let sent = match link.as_mut() {
                    Some(l) => l.send(line).await,
                    None => break,
                };
                match sent {
                    Ok(()) => {
                        queue.pop_front();
                    }
                    Err(e) => {
                        warn!(addr = %config.addr, error = %e, "syslog: connection lost; reconnecting");
                        link = None;
                        break;
                    }
                }
            }
        }
    }))
}

enum Link {
    Udp(tokio::net::UdpSocket),
    Tcp(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

impl Link {
    async fn open(config: &SyslogConfig, tls: Option<&ClientTls>) -> std::io::Result<Link> {
        Ok(match config.transport {
            SyslogTransport::Udp => {
                let bind: SocketAddr = if config.addr.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let s = tokio::net::UdpSocket::bind(bind).await?;
                s.connect(config.addr).await?;
                Link::Udp(s)
            }
            SyslogTransport::Tcp => Link::Tcp(tokio::net::TcpStream::connect(config.addr).await?),
            SyslogTransport::Tls => {
                let tcp = tokio::net::TcpStream::connect(config.addr).await?;
                let tls = tls.ok_or_else(|| std::io::Error::other("no TLS settings"))?;
                Link::Tls(Box::new(tls.connect(tcp, Duration::from_secs(10)).await?))
            }
        })
    }

    async fn send(&mut self, line: &str) -> std::io::Result<()> {
        match self {
            Link::Udp(s) => s.send(line.as_bytes()).await.map(|_| ()),
            Link::Tcp(s) => {
                s.write_all(format!("{} {line}", line.len()).as_bytes())
                    .await
            }
            Link::Tls(s) => {
                s.write_all(format!("{} {line}", line.len()).as_bytes())
                    .await
            }
        }
    }
}
