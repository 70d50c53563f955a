//! The gateway's connector to one host system, for any host protocol (z/OS,
//! z/TPF; spec: protocol-specs/zos-hyperswap.md, protocol-specs/ztpf.md).
//!
//! A background task keeps one connection up: it connects (with a deadline and TCP
//! keepalive), logs on with a **fresh credential at every connect** (a new PassTicket,
//! never the same one twice: within the same second it waits for the next one, since
//! RACF's replay protection would refuse a repeat), runs the sans-IO
//! `ClientSession` (heartbeats, dead-peer detection, request deadlines), and after a
//! failure reconnects with capped exponential backoff and jitter.
//!
//! Callers talk to it through a [`ConnectorHandle`]: pipelined requests, each answered by
//! its own reply or a typed error, and a bounded stream of [`ConnectorEvent`]s
//! (connected, disconnected, unsolicited host events). The connector stops reading
//! the socket while the event channel is full, so the owner must drain it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::clock::Clock;
use crate::codec::fields::Ebcdic;
use crate::codec::frame::FrameCodec;
use crate::passticket::{EnhancedGenerator, LegacyGenerator, PassTicket, RacfName};
use crate::proto::logon::{Credential, CredentialKind};
use crate::proto::session::{
    ClientConfig, ClientEvent, ClientSession, CloseReason, RequestId, SendError,
};
use crate::proto::{Control, Payload, Protocol, ReplyStatus};
use crate::tls::ClientTls;

/// How the connector authenticates.
pub enum Authentication {
    /// A fresh legacy PassTicket at every logon.
    LegacyPassTicket(LegacyGenerator),
    /// A fresh enhanced PassTicket at every logon.
    EnhancedPassTicket(EnhancedGenerator),
    /// A password (1–8 characters).
    Password(Credential),
    /// A passphrase (9–100 characters).
    Passphrase(Credential),
}

impl std::fmt::Debug for Authentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Authentication::LegacyPassTicket(_) => "LegacyPassTicket(<key redacted>)",
            Authentication::EnhancedPassTicket(_) => "EnhancedPassTicket(<key redacted>)",
            Authentication::Password(_) => "Password(<redacted>)",
            Authentication::Passphrase(_) => "Passphrase(<redacted>)",
        })
    }
}

/// Connector settings.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    /// Host address (CSM's default z/OS port is 5858).
    pub addr: SocketAddr,
    /// RACF user ID (CSM's default: HOSTUSR).
    pub user: String,
    /// Application name (CSM: IOSHMCSM).
    pub appl: String,
    /// Heartbeat interval to propose, seconds.
    pub heartbeat_secs: u16,
    /// Deadline for the TCP connect.
    pub connect_timeout: Duration,
    /// Deadline for the logon reply.
    pub logon_timeout: Duration,
    /// Deadline for each request.
    pub request_timeout: Duration,
    /// Requests outstanding at once.
    pub max_outstanding: usize,
    /// First reconnect delay.
    pub backoff_initial: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// Consecutive refused logons after which the connector stops (so that it does not
    /// revoke the user ID by retrying).
    pub max_logon_refusals: u32,
    /// Instead of stopping after `max_logon_refusals`, pause this long (with jitter)
    /// and try again: a long-lived link (the gateway's to its boxes and hosts) must
    /// come back by itself once the cause is fixed (a throttled address, a password
    /// corrected at the host). `None`: stop for good (discovery, clients).
    pub refusal_pause: Option<Duration>,
    /// Largest frame body accepted.
    pub max_body: u32,
    /// TCP keepalive idle time.
    pub keepalive: Duration,
    /// TLS to the host; plain TCP without it. The handshake shares `connect_timeout`.
    pub tls: Option<ClientTls>,
    /// Time for tickets and deadlines, and the jitter seed.
    pub clock: Clock,
}

impl ConnectorConfig {
    /// CSM's defaults for `addr`: HOSTUSR on IOSHMCSM.
    pub fn new(addr: SocketAddr) -> Self {
        ConnectorConfig {
            addr,
            user: "HOSTUSR".into(),
            appl: "IOSHMCSM".into(),
            heartbeat_secs: 30,
            connect_timeout: Duration::from_secs(5),
            logon_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_outstanding: 64,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            max_logon_refusals: 2,
            refusal_pause: None,
            max_body: crate::codec::frame::DEFAULT_MAX_BODY,
            keepalive: Duration::from_secs(60),
            tls: None,
            clock: Clock::system(),
        }
    }
}

/// What the connector reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectorEvent<B> {
    /// Logged on (after the `attempt`-th connect, counting from 1).
    Connected {
        /// System name.
        system: String,
        /// Sysplex (z/OS), complex (z/TPF) or storage image serial (DS8000).
        domain: String,
        /// Connect number.
        attempt: u64,
        /// The PassTicket used, if any (already spent; for replay tests). Its `Debug`
        /// is redacted, so logging the event never shows it.
        ticket: Option<PassTicket>,
    },
    /// The connection ended; the connector will reconnect unless it gave up.
    Disconnected {
        /// Why.
        reason: CloseReason,
    },
    /// Too many refused logons: the connector stopped reconnecting, or (with a
    /// `refusal_pause`) pauses before it tries again.
    GaveUp {
        /// The last refusal.
        status: ReplyStatus,
        /// RACF return code.
        racf_rc: u16,
    },
    /// An unsolicited event from the host.
    Event(B),
}

/// Why a request got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No logged-on connection right now.
    #[error("not connected to the host")]
    NotConnected,
    /// No reply before the request deadline.
    #[error("no reply before the deadline")]
    Timeout,
    /// The connection dropped while the request was outstanding.
    #[error("connection lost before the reply")]
    ConnectionLost,
    /// Too many requests outstanding.
    #[error("too many requests outstanding")]
    Busy,
    /// The body is not a request this API sends.
    #[error("{0} is not a request")]
    NotARequest(&'static str),
    /// The connector has stopped.
    #[error("connector stopped")]
    Stopped,
    /// The server answered PROTOCOL_ERROR: it did not take the request
    /// (framing.md §6).
    #[error("the server rejected the request (PROTOCOL_ERROR reason {reason:#06x})")]
    Rejected {
        /// The common reason code (framing.md §5).
        reason: u16,
    },
}

impl RequestError {
    /// True for [`RequestError::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, RequestError::Timeout)
    }
}

type ReplySender<B> = oneshot::Sender<Result<B, RequestError>>;

struct Command<B> {
    body: B,
    reply: ReplySender<B>,
}

/// Handle to a running connector.
pub struct ConnectorHandle<P: Protocol> {
    commands: mpsc::Sender<Command<P::Body>>,
    events: mpsc::Receiver<ConnectorEvent<P::Body>>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl<P: Protocol> ConnectorHandle<P> {
    /// Sends a request and waits for its reply.
    pub async fn request(&self, body: P::Body) -> Result<P::Body, RequestError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command { body, reply: tx })
            .await
            .map_err(|_| RequestError::Stopped)?;
        rx.await.unwrap_or(Err(RequestError::Stopped))
    }

    /// The next event (`None` once the connector has stopped). Events queue up to
    /// 256; the connector waits for room, so its owner must read them (or hand them
    /// to a task with [`ConnectorHandle::take_events`]).
    pub async fn next_event(&mut self) -> Option<ConnectorEvent<P::Body>> {
        self.events.recv().await
    }

    /// Hands the event stream over (to a task that reads it while this handle is
    /// shared for requests); `next_event` returns `None` afterwards.
    pub fn take_events(&mut self) -> mpsc::Receiver<ConnectorEvent<P::Body>> {
        std::mem::replace(&mut self.events, mpsc::channel(1).1)
    }

    /// Logs off and stops.
    pub async fn shutdown(self) {
        let ConnectorHandle {
            commands,
            events,
            cancel,
            task,
        } = self;
        cancel.cancel();
        drop(commands);
        drop(events);
        let _ = task.await;
    }
}

/// Hands out PassTickets, never the same one twice.
struct TicketSource {
    user: RacfName,
    appl: RacfName,
    last_second: Option<u64>,
}

impl TicketSource {
    /// Waits until a second not used before, then generates for it.
    async fn fresh(
        &mut self,
        auth: &Authentication,
        clock: &Clock,
    ) -> (CredentialKind, Credential, Option<PassTicket>) {
        let generate = |t: u64| -> Option<PassTicket> {
            match auth {
                Authentication::LegacyPassTicket(g) => Some(g.generate(&self.user, &self.appl, t)),
                Authentication::EnhancedPassTicket(g) => {
                    Some(g.generate(&self.user, &self.appl, t))
                }
                _ => None,
            }
        };
        match auth {
            Authentication::Password(c) => return (CredentialKind::PASSWORD, c.clone(), None),
            Authentication::Passphrase(c) => return (CredentialKind::PASSPHRASE, c.clone(), None),
            _ => {}
        }
        loop {
            let now = clock.since_epoch();
            let second = now.as_secs();
            if self.last_second.is_some_and(|last| second <= last) {
                // spec: protocol-specs/passticket.md §5: wait for the next second.
                let to_next = Duration::from_secs(1)
                    .saturating_sub(Duration::from_nanos(u64::from(now.subsec_nanos())));
                tokio::time::sleep(to_next + Duration::from_millis(1)).await;
                continue;
            }
            self.last_second = Some(second);
            let Some(ticket) = generate(second) else {
                unreachable!("only PassTicket authentication gets here")
            };
            let credential = Credential::new(ticket.as_str())
                .unwrap_or_else(|| unreachable!("tickets are 8 ASCII characters"));
            return (CredentialKind::PASSTICKET, credential, Some(ticket));
        }
    }
}

/// Bad connector settings.
#[derive(Debug, thiserror::Error)]
#[error("host connector: {0}")]
pub struct ConnectorConfigError(String);

/// Starts a connector in the background.
pub fn spawn<P: Protocol>(
    config: ConnectorConfig,
    auth: Authentication,
) -> Result<ConnectorHandle<P>, ConnectorConfigError> {
    let user =
        RacfName::parse("user", &config.user).map_err(|e| ConnectorConfigError(e.to_string()))?;
    let appl =
        RacfName::parse("appl", &config.appl).map_err(|e| ConnectorConfigError(e.to_string()))?;
    let session_config = ClientConfig {
        user: Ebcdic::new(user.as_str()).map_err(|e| ConnectorConfigError(e.to_string()))?,
        appl: Ebcdic::new(appl.as_str()).map_err(|e| ConnectorConfigError(e.to_string()))?,
        heartbeat_secs: config.heartbeat_secs,
        logon_timeout: config.logon_timeout,
        request_timeout: config.request_timeout,
        max_outstanding: config.max_outstanding,
    };
    let (cmd_tx, cmd_rx) = mpsc::channel(config.max_outstanding.max(1));
    let (evt_tx, evt_rx) = mpsc::channel(256);
    let cancel = CancellationToken::new();
    let tickets = TicketSource {
        user,
        appl,
        last_second: None,
    };
    let task = tokio::spawn(run::<P>(
        config,
        session_config,
        auth,
        tickets,
        cmd_rx,
        evt_tx,
        cancel.clone(),
    ));
    Ok(ConnectorHandle {
        commands: cmd_tx,
        events: evt_rx,
        cancel,
        task,
    })
}

/// A small xorshift generator for backoff jitter, seeded by the clock.
struct Jitter(u64);

impl Jitter {
    fn new(seed: u64) -> Self {
        Jitter(seed | 1)
    }

    /// A factor in [0.5, 1.0).
    fn factor(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        0.5 + (self.0 >> 11) as f64 / (1u64 << 53) as f64 / 2.0
    }
}

async fn run<P: Protocol>(
    config: ConnectorConfig,
    session_config: ClientConfig,
    auth: Authentication,
    mut tickets: TicketSource,
    mut commands: mpsc::Receiver<Command<P::Body>>,
    events: mpsc::Sender<ConnectorEvent<P::Body>>,
    cancel: CancellationToken,
) {
    let clock = config.clock;
    let mut jitter = Jitter::new(clock.seed());
    let mut failures: u32 = 0;
    let mut refusals: u32 = 0;
    let mut attempt: u64 = 0;
    while !cancel.is_cancelled() {
        attempt += 1;
        let (kind, credential, ticket) = tickets.fresh(&auth, &clock).await;
        let session = SessionContext {
            config: &session_config,
            max_body: config.max_body,
            kind,
            credential,
            ticket,
            attempt,
            commands: &mut commands,
            events: &events,
            cancel: &cancel,
            clock,
        };
        let outcome = match connect(&config).await {
            Ok(stream) => match &config.tls {
                None => run_session::<P, _>(stream, session).await,
                Some(tls) => match tls.connect(stream, config.connect_timeout).await {
                    Ok(stream) => run_session::<P, _>(stream, session).await,
                    Err(e) => {
                        warn!(addr = %config.addr, error = %e, "TLS handshake with host failed");
                        Outcome::NeverConnected
                    }
                },
            },
            Err(e) => {
                debug!(addr = %config.addr, error = %e, "host connect failed");
                Outcome::NeverConnected
            }
        };
        match outcome {
            Outcome::Stopped => return,
            Outcome::NeverConnected => failures += 1,
            Outcome::Closed { reason, was_ready } => {
                if let CloseReason::LogonRefused { status, racf_rc } = &reason {
                    refusals += 1;
                    if refusals >= config.max_logon_refusals {
                        let _ = events
                            .send(ConnectorEvent::GaveUp {
                                status: *status,
                                racf_rc: *racf_rc,
                            })
                            .await;
                        let Some(pause) = config.refusal_pause else {
                            warn!(
                                reason = status.reason,
                                racf_rc, "host logon refused; connector gives up"
                            );
                            return reject_all(commands, &cancel).await;
                        };
                        warn!(
                            addr = %config.addr,
                            reason = status.reason,
                            racf_rc,
                            pause_secs = pause.as_secs(),
                            "host logon refused; connector pauses, then tries again"
                        );
                        refusals = 0;
                        let wake = clock.tokio_now() + pause.mul_f64(jitter.factor());
                        if !wait_refusing(wake, &cancel, &mut commands).await {
                            return;
                        }
                        continue;
                    }
                } else if was_ready {
                    refusals = 0;
                }
                failures = if was_ready { 0 } else { failures + 1 };
                // One connection's end is the owner's to report (it gets the event);
                // thousands of connectors must not flood the log at shutdown.
                debug!(addr = %config.addr, ?reason, "host connection ended");
                if events
                    .send(ConnectorEvent::Disconnected { reason })
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        // Capped exponential backoff with jitter; the first retry after a good session is quick.
        let exp = config.backoff_initial.saturating_mul(1 << failures.min(16));
        let delay = exp.min(config.backoff_max).mul_f64(jitter.factor());
        let wake = clock.tokio_now() + delay;
        if !wait_refusing(wake, &cancel, &mut commands).await {
            return;
        }
    }
}

/// Waits until `wake`, answering every request meanwhile with `NotConnected`; false
/// when the connector is to stop (cancelled, or its handle dropped).
async fn wait_refusing<B>(
    wake: tokio::time::Instant,
    cancel: &CancellationToken,
    commands: &mut mpsc::Receiver<Command<B>>,
) -> bool {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return false,
            _ = tokio::time::sleep_until(wake) => return true,
            cmd = commands.recv() => match cmd {
                Some(c) => { let _ = c.reply.send(Err(RequestError::NotConnected)); }
                None => return false,
            },
        }
    }
}

/// After giving up: every request is answered `NotConnected` until shutdown.
async fn reject_all<B>(mut commands: mpsc::Receiver<Command<B>>, cancel: &CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            cmd = commands.recv() => match cmd {
                Some(c) => { let _ = c.reply.send(Err(RequestError::NotConnected)); }
                None => return,
            },
        }
    }
}

async fn connect(config: &ConnectorConfig) -> std::io::Result<TcpStream> {
    let stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(config.addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    let keepalive = socket2::TcpKeepalive::new().with_time(config.keepalive);
    socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive)?;
    Ok(stream)
}

enum Outcome {
    NeverConnected,
    Closed {
        reason: CloseReason,
        was_ready: bool,
    },
    Stopped,
}

/// What one connection's session needs from the connector.
struct SessionContext<'a, B> {
    config: &'a ClientConfig,
    max_body: u32,
    kind: CredentialKind,
    credential: Credential,
    ticket: Option<PassTicket>,
    attempt: u64,
    commands: &'a mut mpsc::Receiver<Command<B>>,
    events: &'a mpsc::Sender<ConnectorEvent<B>>,
    cancel: &'a CancellationToken,
    clock: Clock,
}

async fn run_session<P: Protocol, T: AsyncRead + AsyncWrite + Unpin>(
    stream: T,
    context: SessionContext<'_, P::Body>,
) -> Outcome {
    let SessionContext {
        config,
        max_body,
        kind,
        credential,
        ticket,
        attempt,
        commands,
        events,
        cancel,
        clock,
    } = context;
    let mut framed = Framed::new(stream, FrameCodec::new(max_body));
    let mut session = ClientSession::<P>::new(config.clone(), kind, credential, clock.now());
    let mut pending: HashMap<RequestId, ReplySender<P::Body>> = HashMap::new();
    let mut was_ready = false;
    let mut logging_off = false;
    let mut commands_open = true;
    let outcome = loop {
        let now = clock.now();
        while let Some(msg) = session.poll_transmit(now) {
            let sent = if matches!(msg.body, Payload::Control(Control::LogonRequest(_))) {
                let mut bytes = bytes::BytesMut::new();
                msg.encode(&mut bytes);
                send_logon(&mut framed, bytes).await
            } else {
                framed.feed(msg.to_frame()).await.is_ok()
            };
            if !sent {
                session.handle_closed();
                break;
            }
        }
        if framed.flush().await.is_err() {
            session.handle_closed();
        }
        let mut closed = None;
        while let Some(ev) = session.poll_event() {
            match ev {
                ClientEvent::LoggedOn { system, domain, .. } => {
                    was_ready = true;
                    debug!(%system, %domain, attempt, "logged on");
                    let _ = events
                        .send(ConnectorEvent::Connected {
                            system,
                            domain,
                            attempt,
                            ticket,
                        })
                        .await;
                }
                ClientEvent::Reply { request, body } => {
                    if let Some(tx) = pending.remove(&request) {
                        let _ = tx.send(Ok(body));
                    }
                }
                ClientEvent::Rejected { request, status } => {
                    if let Some(tx) = pending.remove(&request) {
                        let _ = tx.send(Err(RequestError::Rejected {
                            reason: status.reason,
                        }));
                    }
                }
                ClientEvent::RequestTimedOut { request } => {
                    if let Some(tx) = pending.remove(&request) {
                        let _ = tx.send(Err(RequestError::Timeout));
                    }
                }
                ClientEvent::Event(body) => {
                    let _ = events.send(ConnectorEvent::Event(body)).await;
                }
                ClientEvent::Closed(reason) => closed = Some(reason),
            }
        }
        if let Some(reason) = closed {
            break if logging_off && cancel.is_cancelled() {
                Outcome::Stopped
            } else {
                Outcome::Closed { reason, was_ready }
            };
        }
        let deadline = session
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| clock.tokio_now() + Duration::from_secs(3600));
        let accepting = session.is_ready() && commands_open;
        tokio::select! {
            _ = cancel.cancelled(), if !logging_off => {
                logging_off = true;
                session.logoff(clock.now());
            }
            item = framed.next() => {
                let now = clock.now();
                match item {
                    Some(Ok(frame)) => session.handle_frame(now, &frame),
                    Some(Err(e)) => {
                        debug!(error = %e, "host stream error");
                        session.handle_stream_error(now, &e);
                    }
                    None => session.handle_closed(),
                }
            }
            _ = tokio::time::sleep_until(deadline) => session.handle_timeout(clock.now()),
            cmd = commands.recv(), if accepting => match cmd {
                Some(Command { body, reply }) => match session.send_request(clock.now(), body) {
                    Ok(id) => { pending.insert(id, reply); }
                    Err(SendError::TooManyOutstanding(_)) => { let _ = reply.send(Err(RequestError::Busy)); }
                    Err(SendError::NotARequest(name)) => { let _ = reply.send(Err(RequestError::NotARequest(name))); }
                    Err(_) => { let _ = reply.send(Err(RequestError::NotConnected)); }
                },
                None => commands_open = false,
            },
        }
    };
    for (_, tx) in pending.drain() {
        let _ = tx.send(Err(RequestError::ConnectionLost));
    }
    outcome
}

/// Writes a LOGON past the codec's write buffer, from a buffer zeroed right after,
/// so that the credential's bytes do not linger in reused memory (passticket.md §4.7).
async fn send_logon<T: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<T, FrameCodec>,
    mut bytes: bytes::BytesMut,
) -> bool {
    use tokio::io::AsyncWriteExt;
    if framed.flush().await.is_err() {
        zeroize::Zeroize::zeroize(&mut bytes[..]);
        return false;
    }
    let io = framed.get_mut();
    let ok = io.write_all(&bytes).await.is_ok() && io.flush().await.is_ok();
    zeroize::Zeroize::zeroize(&mut bytes[..]);
    ok
}
