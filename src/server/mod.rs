//! The listener of the framed protocols (`protocol-specs/framing.md` §9): a TCP
//! (normally TLS) accept loop with global and per-address connection caps, handshake,
//! logon, frame and idle deadlines, logon throttling, and a graceful stop, in front
//! of a pure backend `S` that decides logons and requests ([`ServerBackend`]).
//!
//! It is the product's listener: the gateway's CSM door runs on it (its requests go
//! to a [`Forwarder`]), and the emulated z/OS, z/TPF and DS8000 in `crate::peer`
//! run on it too, adding their test-only misbehaviour through the [`Outgoing`] hook
//! (the product installs none). Each accepted connection runs a [`ServerSession`];
//! the backend is shared by all connections.

pub mod accept;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::admission::{ConnectionCounts, LogonThrottle, ThrottleConfig};
use crate::clock::Clock;
use crate::codec::frame::FrameCodec;
use crate::proto::logon::{CredentialKind, LogonRequest, NOT_AUTHORIZED};
use crate::proto::session::{
    LogonDecision, ServerBackend, ServerConfig, ServerSession, Work, run_request,
};
use crate::proto::{Message, Payload, Protocol, ReplyStatus, ReturnCode, View, WireBody, answer};
use crate::tls::ServerTls;

/// `[limits]` of a listener's configuration (protocol-specs/configuration.md §1,
/// framing.md §9): what an unauthenticated or hostile client may hold.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Seconds a connection may stay without a successful logon.
    pub logon_timeout_secs: u64,
    /// Seconds a frame may take to arrive once its first byte has.
    pub frame_timeout_secs: u64,
    /// Connections one source address may hold at once (0 = no cap).
    pub max_connections_per_address: usize,
    /// Refused logons from one address before its logons are throttled (0 = never).
    pub failed_logons_before_throttle: u32,
    /// How long failures are remembered and a throttled address waits, seconds.
    pub throttle_secs: u64,
    /// TCP keepalive idle time on accepted connections, seconds.
    pub keepalive_secs: u64,
    /// Take password and passphrase logons on a listener without TLS.
    pub allow_plaintext_passwords: bool,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            logon_timeout_secs: 10,
            frame_timeout_secs: 30,
            max_connections_per_address: 64,
            failed_logons_before_throttle: 2,
            throttle_secs: 60,
            keepalive_secs: 60,
            allow_plaintext_passwords: false,
        }
    }
}

/// Largest body accepted before a client has logged on: a LOGON is at most 122
/// bytes (framing.md §8.1), so a little more than that (framing.md §9).
pub const PRE_LOGON_MAX_BODY: u32 = 256;

/// Listener settings common to the host peers.
#[derive(Debug, Clone)]
pub struct ListenConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Largest frame body accepted.
    pub max_body: u32,
    /// Most connections served at once.
    pub max_connections: usize,
    /// TLS, when the listener speaks it (the frames inside are unchanged).
    pub tls: Option<ServerTls>,
    /// Time for sessions, ticket checks and the system's clock.
    pub clock: Clock,
    /// Deadlines, caps and throttling.
    pub limits: LimitsConfig,
}

impl ListenConfig {
    /// From a configuration's listener fields, reading the TLS files if any.
    pub fn from_parts(
        listen: SocketAddr,
        max_body: u32,
        max_connections: usize,
        tls: Option<&crate::tls::ServerTlsFiles>,
        limits: &LimitsConfig,
    ) -> Result<ListenConfig, crate::tls::TlsError> {
        Ok(ListenConfig {
            listen,
            max_body,
            max_connections,
            tls: tls.map(ServerTls::from_files).transpose()?,
            clock: Clock::system(),
            limits: limits.clone(),
        })
    }
}

/// Who may try, shared by a listener's connections.
struct Admission {
    throttle: LogonThrottle,
}

/// What a listener does with a message it is about to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// Write it (after waiting `delay`).
    Send {
        /// A wait before the write.
        delay: Option<Duration>,
    },
    /// Do not write it.
    Drop,
    /// Write these bytes instead (after `delay`), then close the connection if
    /// `close`.
    Raw {
        /// A wait before the write.
        delay: Option<Duration>,
        /// What to write.
        bytes: Vec<u8>,
        /// Close the connection afterwards.
        close: bool,
    },
    /// Keep it and write it after the next message (two replies out of order).
    Hold,
}

/// A hook on every message a listener writes, and on the clock its backend sees.
/// The product's listeners have none; the emulators (`crate::peer`) install one that
/// misbehaves on command, for tests of the gateway's connectors.
pub trait Outgoing<P: Protocol>: Send + Sync + 'static {
    /// The fate of `msg`; `is_reply` when it answers a request, logon or
    /// heartbeat; `holding` when a held message waits to follow the next one.
    fn shape(&self, msg: &Message<P::Body>, is_reply: bool, holding: bool) -> Shape;

    /// Seconds added to the clock the backend sees (a skewed system clock).
    fn clock_offset_secs(&self) -> i64 {
        0
    }
}

/// Carries out the requests a system forwards (storage I/O): the emulated hosts'
/// FLASH and SGC_BACKUP go to the simulated DS8000 this way.
pub trait Forwarder<P: Protocol>: Send + Sync + 'static {
    /// The reply to `request`, or the status refusing it (an unreachable storage
    /// system is a refusal with the protocol's own reason code).
    /// `user` is the logged-on user the request came from (trailing blanks removed).
    fn forward(
        &self,
        user: &str,
        request: P::Body,
    ) -> Pin<Box<dyn Future<Output = Result<P::Body, ReplyStatus>> + Send>>;

    /// What a connection of `user`, just logged on, is bound to: the text passed to
    /// [`Forwarder::forward`] as its user from then on (the gateway binds a
    /// connection to the user's number and credential generation, policy.md
    /// §1.4). `None`: the logon's user.
    fn bind(&self, _user: &str) -> Option<String> {
        None
    }

    /// Whether one connection's requests are carried out one at a time, in the order
    /// sent (the gateway's: a client's pipelined changes must not overtake each
    /// other, csm.md §3.2). The emulated systems answer them concurrently.
    fn in_order(&self) -> bool {
        false
    }

    /// Whether a connection gets events only after it asked for them (the gateway's
    /// console, csm.md §4); the emulated systems send theirs to every client.
    fn events_by_subscription(&self) -> bool {
        false
    }

    /// `Some(on)` when `request` turns this connection's events on or off.
    fn subscription(&self, _request: &P::Body) -> Option<bool> {
        None
    }

    /// Decides a logon instead of the backend, off the listener's locks and async
    /// threads (the gateway's password checks, on the shared pool: gateway/
    /// passwords.rs). `None`: the backend decides. The listener's own checks (a
    /// throttled address, a password without TLS) come first either way.
    fn logon(&self, _request: &LogonRequest) -> Option<PendingLogon> {
        None
    }
}

/// A logon decision under way.
pub type PendingLogon = Pin<Box<dyn Future<Output = LogonDecision> + Send>>;

/// Handle to inspect a running listener and its backend.
pub struct ListenerControl<P: Protocol, S> {
    system: Arc<Mutex<S>>,
    outgoing: Option<Arc<dyn Outgoing<P>>>,
    events: broadcast::Sender<P::Body>,
    drop_connections: Arc<Mutex<CancellationToken>>,
    forwarder: Option<Arc<dyn Forwarder<P>>>,
    clock: Clock,
    /// Session ids handed to logged-on connections, one per connection.
    sessions: Arc<std::sync::atomic::AtomicU32>,
    admission: Arc<Mutex<Admission>>,
    connections: Arc<Mutex<ConnectionCounts>>,
}

impl<P: Protocol, S> Clone for ListenerControl<P, S> {
    fn clone(&self) -> Self {
        ListenerControl {
            system: self.system.clone(),
            outgoing: self.outgoing.clone(),
            events: self.events.clone(),
            drop_connections: self.drop_connections.clone(),
            forwarder: self.forwarder.clone(),
            clock: self.clock,
            sessions: self.sessions.clone(),
            admission: self.admission.clone(),
            connections: self.connections.clone(),
        }
    }
}

/// The next event of a connection that takes them (never ready for one that does not).
async fn next_event<T: Clone>(
    events: &mut Option<broadcast::Receiver<T>>,
) -> Result<T, broadcast::error::RecvError> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means a panic elsewhere; the data is still the best we have.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<P: Protocol, S> ListenerControl<P, S> {
    /// The backend.
    pub fn system(&self) -> MutexGuard<'_, S> {
        lock(&self.system)
    }

    /// The backend's clock: seconds since the epoch (plus the hook's skew).
    pub fn unix_now(&self) -> u64 {
        let skew = self.outgoing.as_ref().map_or(0, |o| o.clock_offset_secs());
        self.clock.unix_secs().saturating_add_signed(skew)
    }

    /// The listener's clock.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Sends an event to every logged-on client.
    pub fn inject_event(&self, event: P::Body) {
        let _ = self.events.send(event);
    }

    /// Whether any connection takes events now. A connection whose events are by
    /// subscription holds no receiver until it subscribes, so a relay can skip
    /// making an event nobody would read.
    pub fn has_event_receivers(&self) -> bool {
        self.events.receiver_count() > 0
    }

    /// Drops every open connection (the listener stays).
    pub fn drop_connections(&self) {
        let mut token = lock(&self.drop_connections);
        token.cancel();
        *token = CancellationToken::new();
    }
}

/// A running listener.
pub struct Listener<P: Protocol, S> {
    addr: SocketAddr,
    control: ListenerControl<P, S>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl<P: Protocol, S: ServerBackend<P> + Send + 'static> Listener<P, S> {
    /// Binds and starts serving `system`; forwarded requests go to `forwarder`, and
    /// every message written passes `outgoing` (the emulators' hook; `None` for the
    /// product).
    pub async fn start(
        config: &ListenConfig,
        system: S,
        forwarder: Option<Arc<dyn Forwarder<P>>>,
        outgoing: Option<Arc<dyn Outgoing<P>>>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let (events, _) = broadcast::channel(64);
        let control = ListenerControl {
            system: Arc::new(Mutex::new(system)),
            outgoing,
            events,
            drop_connections: Arc::new(Mutex::new(CancellationToken::new())),
            forwarder,
            clock: config.clock,
            sessions: Arc::new(std::sync::atomic::AtomicU32::new(1)),
            admission: Arc::new(Mutex::new(Admission {
                throttle: LogonThrottle::new(ThrottleConfig {
                    max_failures: config.limits.failed_logons_before_throttle,
                    window: Duration::from_secs(config.limits.throttle_secs),
                    ..ThrottleConfig::default()
                }),
            })),
            connections: Arc::new(Mutex::new(ConnectionCounts::new(
                config.limits.max_connections_per_address,
            ))),
        };
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let limit = Arc::new(tokio::sync::Semaphore::new(config.max_connections));
        info!(
            %addr,
            protocol = ?<P::Body as crate::proto::WireBody>::PROTOCOL,
            tls = config.tls.is_some(),
            "listening"
        );
        if config.tls.is_none() {
            // spec: framing.md §9: say it once, loudly.
            warn!(
                %addr,
                plaintext_passwords = config.limits.allow_plaintext_passwords,
                "listening without TLS: logons cross the network unencrypted"
            );
        }
        let accepting = accept::Accepting {
            tls: config.tls.clone(),
            limit,
            counts: control.connections.clone(),
            keepalive: Some(Duration::from_secs(config.limits.keepalive_secs.max(1))),
            clock: config.clock,
            name: "framed",
        };
        let handler = Connections {
            control: control.clone(),
            config: config.clone(),
        };
        tracker.spawn(accept::run(
            listener,
            accepting,
            handler,
            shutdown.clone(),
            tracker.clone(),
        ));
        Ok(Listener {
            addr,
            control,
            shutdown,
            tracker,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The control handle.
    pub fn control(&self) -> &ListenerControl<P, S> {
        &self.control
    }

    /// Stops accepting, closes every connection and waits for the tasks.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// What the accept loop hands each connection to: the session loop below.
struct Connections<P: Protocol, S> {
    control: ListenerControl<P, S>,
    config: ListenConfig,
}

impl<P: Protocol, S> Clone for Connections<P, S> {
    fn clone(&self) -> Self {
        Connections {
            control: self.control.clone(),
            config: self.config.clone(),
        }
    }
}

impl<P: Protocol, S: ServerBackend<P> + Send + 'static> accept::Handler for Connections<P, S> {
    fn serve<T>(
        &self,
        stream: T,
        peer: SocketAddr,
        shutdown: CancellationToken,
    ) -> impl Future<Output = ()> + Send
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let control = self.control.clone();
        let dropper = lock(&control.drop_connections).clone();
        let link = Link {
            peer,
            tls: self.config.tls.is_some(),
            max_body: self.config.max_body,
            limits: self.config.limits.clone(),
        };
        serve(stream, control, link, shutdown, dropper)
    }
}

/// A stream that says when bytes arrive. The codec wakes the connection's loop only
/// for whole frames; without this, a logged-on client that sends part of a frame and
/// then trickles or stops would never meet the frame deadline (framing.md §9).
struct Arrivals<T> {
    inner: T,
    arrived: Arc<tokio::sync::Notify>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Arrivals<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, std::task::Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.arrived.notify_one();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Arrivals<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What one connection's loop needs to know about its link.
pub struct Link {
    /// The client's address.
    pub peer: SocketAddr,
    /// The connection runs inside TLS.
    pub tls: bool,
    /// Largest body once logged on.
    pub max_body: u32,
    /// Deadlines and throttling.
    pub limits: LimitsConfig,
}

/// Serves one connection until the session closes, the client goes away or shutdown.
pub async fn serve<P: Protocol, S: ServerBackend<P>, T: AsyncRead + AsyncWrite + Unpin>(
    stream: T,
    control: ListenerControl<P, S>,
    link: Link,
    shutdown: CancellationToken,
    dropper: CancellationToken,
) {
    // spec: framing.md §9: logon-sized bodies only until a client has logged on.
    let arrived = Arc::new(tokio::sync::Notify::new());
    let stream = Arrivals {
        inner: stream,
        arrived: arrived.clone(),
    };
    let mut framed = Framed::new(
        stream,
        FrameCodec::new(PRE_LOGON_MAX_BODY.min(link.max_body)),
    );
    let clock = control.clock;
    let session_id = control
        .sessions
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let server_config = ServerConfig {
        logon_deadline: Duration::from_secs(link.limits.logon_timeout_secs.max(1)),
        ..ServerConfig::default()
    };
    let mut session = ServerSession::<P>::new(server_config, clock.now(), session_id);
    let frame_timeout = Duration::from_secs(link.limits.frame_timeout_secs.max(1));
    // When the first byte of a frame not yet complete arrived.
    let mut partial_since: Option<tokio::time::Instant> = None;
    let mut held: Option<Message<P::Body>> = None;
    // Forwarded requests under way, polled by this connection's own task: no task is
    // spawned per request, and an answer wakes only this task.
    let mut in_flight: InFlight<P> = FuturesUnordered::new();
    // What the forwarder bound this connection to at its logon.
    let mut bound: Option<String> = None;
    // Requests waiting for their turn at an in-order forwarder.
    let mut queued: std::collections::VecDeque<(u32, P::Body)> = std::collections::VecDeque::new();
    // The connection's events: a receiver only while it takes them, so that an
    // unsubscribed connection costs the sender nothing and is never woken.
    let mut events = control
        .forwarder
        .as_ref()
        .is_none_or(|f| !f.events_by_subscription())
        .then(|| control.events.subscribe());
    // The timers and cancellation waits live across iterations and are reset only when
    // their deadline moves: making them anew for every frame costs a timer-wheel
    // insertion and removal each time.
    let far = || clock.tokio_now() + Duration::from_secs(3600);
    let idle = tokio::time::sleep_until(far());
    let frame_sleep = tokio::time::sleep_until(far());
    let stopping = shutdown.cancelled();
    let dropped = dropper.cancelled();
    tokio::pin!(idle, frame_sleep, stopping, dropped);
    loop {
        match session.poll_timeout().map(tokio::time::Instant::from_std) {
            Some(deadline) if idle.deadline() != deadline => idle.as_mut().reset(deadline),
            None if idle.deadline() < clock.tokio_now() + Duration::from_secs(1800) => {
                idle.as_mut().reset(far());
            }
            _ => {}
        }
        if let Some(since) = partial_since
            && frame_sleep.deadline() != since + frame_timeout
        {
            frame_sleep.as_mut().reset(since + frame_timeout);
        }
        tokio::select! {
            _ = &mut stopping => break,
            _ = &mut dropped => return,
            item = framed.next() => {
                let now = clock.now();
                match item {
                    Some(Ok(frame)) => {
                        session.handle_frame(now, &frame);
                        forget_credential::<P>(frame);
                    }
                    Some(Err(e)) => {
                        debug!(error = %e, "host peer: bad stream");
                        session.handle_stream_error(now, &e);
                    }
                    None => session.handle_closed(),
                }
            }
            _ = &mut idle => session.handle_timeout(clock.now()),
            // Bytes that are not yet a frame start the frame deadline below.
            _ = arrived.notified(), if partial_since.is_none() => {}
            _ = &mut frame_sleep, if partial_since.is_some() => {
                // spec: framing.md §9: a frame that does not finish in time ends the
                // connection (its bytes pin memory).
                debug!(peer = %link.peer, "frame not completed in time; closing");
                return;
            }
            // An unsubscribed connection does not wait on the event channel at all.
            event = next_event(&mut events), if events.is_some() => {
                if let Ok(body) = event {
                    session.send_event(clock.now(), body);
                }
            }
            Some((correlation, reply)) = in_flight.next(), if !in_flight.is_empty() => {
                session.complete(clock.now(), correlation, reply);
            }
        }
        // Every logon and request goes through the system; what it forwards (storage
        // I/O) is answered when the forwarder is done.
        partial_since = match (framed.read_buffer().is_empty(), partial_since) {
            (true, _) => None,
            (false, None) => Some(clock.tokio_now()),
            (false, since) => since,
        };
        // spec: framing.md §9: every refused logon is logged, those the session
        // refused by itself included.
        while let Some(r) = session.poll_refused_logon() {
            warn!(peer = %link.peer, user = %r.user, reason = %format_args!("{:#06x}", r.reason), why = r.why, "logon refused");
        }
        let was_ready = session.is_ready();
        let (forwarded, logons) = decide_work(&mut session, &control, &link);
        for (correlation, request, pending) in logons {
            // This connection waits for its own logon; the others go on.
            let decision = pending.await;
            after_logon(&control, &link, &request, clock.now(), &decision);
            session.complete_logon(clock.now(), correlation, decision);
        }
        if session.is_ready() && !was_ready {
            framed.codec_mut().set_max_body(link.max_body);
            let user = session.user().map(|u| u.to_string()).unwrap_or_default();
            bound = control
                .forwarder
                .as_ref()
                .and_then(|f| f.bind(user.trim_end()));
        }
        for (correlation, body) in forwarded {
            match &control.forwarder {
                Some(f) => {
                    match f.subscription(&body) {
                        // Events from now on, not any sent before.
                        Some(true) if events.is_none() => events = Some(control.events.subscribe()),
                        Some(false) => events = None,
                        _ => {}
                    }
                    if f.in_order() {
                        // Carried out one at a time, in the order sent (csm.md §3.2).
                        queued.push_back((correlation, body));
                        continue;
                    }
                    let user = forwarding_user(&bound, &session);
                    start_forward(&mut in_flight, f.as_ref(), &user, correlation, body);
                }
                None => {
                    // A system that forwards without a forwarder: answer, never hang.
                    warn!(
                        request = P::Body::type_name(body.wire_type().0).unwrap_or("UNKNOWN"),
                        "host peer: nothing to forward to"
                    );
                    let failed = Err(ReplyStatus::new(ReturnCode::FAILED, 0));
                    session.complete(clock.now(), correlation, answer::<P>(&body, failed));
                }
            }
        }
        // An in-order forwarder gets the next request once the previous is answered.
        if in_flight.is_empty()
            && let (Some(f), Some((correlation, body))) =
                (control.forwarder.as_ref(), queued.pop_front())
        {
            let user = forwarding_user(&bound, &session);
            start_forward(&mut in_flight, f.as_ref(), &user, correlation, body);
        }
        while let Some(msg) = session.poll_transmit() {
            let is_reply = matches!(
                msg.body.view(),
                View::Reply | View::HeartbeatReply | View::LogonReply(_)
            );
            let shape = match &control.outgoing {
                Some(o) => o.shape(&msg, is_reply, held.is_some()),
                None => Shape::Send { delay: None },
            };
            match shape {
                Shape::Drop => continue,
                Shape::Hold => {
                    held = Some(msg);
                    continue;
                }
                Shape::Raw {
                    delay,
                    bytes,
                    close,
                } => {
                    if let Some(d) = delay {
                        tokio::time::sleep(d).await;
                    }
                    let io = framed.get_mut();
                    let _ = io.write_all(&bytes).await;
                    let _ = io.flush().await;
                    if close {
                        return;
                    }
                    continue;
                }
                Shape::Send { delay } => {
                    if let Some(d) = delay {
                        tokio::time::sleep(d).await;
                    }
                }
            }
            if framed.feed(msg.to_frame()).await.is_err() {
                return;
            }
            if let Some(h) = held.take()
                && framed.feed(h.to_frame()).await.is_err()
            {
                return;
            }
        }
        if framed.flush().await.is_err() {
            return;
        }
        if session.is_closed() {
            break;
        }
    }
    // Requests still waiting for their turn at an in-order forwarder are refused as
    // not carried out: the server is stopping.
    for (correlation, body) in queued.drain(..) {
        let failed = Err(ReplyStatus::new(ReturnCode::FAILED, 0));
        session.complete(clock.now(), correlation, answer::<P>(&body, failed));
    }
    // Graceful stop: requests already taken are answered (for a bounded time) before
    // the connection closes; nothing new is read.
    let answered_by = clock.tokio_now() + SHUTDOWN_ANSWER_GRACE;
    while let Ok(Some((correlation, reply))) =
        tokio::time::timeout_at(answered_by, in_flight.next()).await
    {
        session.complete(clock.now(), correlation, reply);
        while let Some(msg) = session.poll_transmit() {
            if framed.feed(msg.to_frame()).await.is_err() {
                return;
            }
        }
    }
    let _ = framed.flush().await;
    let _ = framed.get_mut().shutdown().await;
}

/// The user a forwarded request goes as: what the forwarder bound the connection to
/// at its logon, else the logon's user.
fn forwarding_user<P: Protocol>(bound: &Option<String>, session: &ServerSession<P>) -> String {
    match bound {
        Some(bound) => bound.clone(),
        None => session.user().map(|u| u.to_string()).unwrap_or_default(),
    }
}

/// A connection's forwarded requests under way, each answering its correlation.
type InFlight<P> =
    FuturesUnordered<Pin<Box<dyn Future<Output = (u32, Payload<<P as Protocol>::Body>)> + Send>>>;

/// Hands `body` to the forwarder; its answer joins `in_flight` under `correlation`.
fn start_forward<P: Protocol>(
    in_flight: &mut InFlight<P>,
    forwarder: &dyn Forwarder<P>,
    user: &str,
    correlation: u32,
    body: P::Body,
) {
    let work = forwarder.forward(user.trim_end(), body.clone());
    in_flight.push(Box::pin(async move {
        let result = work.await;
        (correlation, answer::<P>(&body, result))
    }));
}

/// At shutdown, how long a connection waits for the requests it already took.
const SHUTDOWN_ANSWER_GRACE: Duration = Duration::from_secs(5);

/// Carries out the session's work: logons through the throttle and the system (every
/// refusal logged once at WARN with the client's address, never the credential),
/// requests through the system; returns what the system forwards.
/// A logon the forwarder decides: its correlation, the request, the decision.
type LogonUnderWay = (u32, LogonRequest, PendingLogon);

fn decide_work<P: Protocol, S: ServerBackend<P>>(
    session: &mut ServerSession<P>,
    control: &ListenerControl<P, S>,
    link: &Link,
) -> (Vec<(u32, P::Body)>, Vec<LogonUnderWay>) {
    let now = control.clock.now();
    let unix = control.unix_now();
    let mut forwarded = Vec::new();
    let mut logons = Vec::new();
    while let Some(work) = session.poll_work() {
        match work {
            Work::Logon {
                correlation,
                request,
            } => {
                if let Some(refused) = refuse_logon::<P, S>(control, link, &request, now) {
                    session.complete_logon(now, correlation, refused);
                    continue;
                }
                let pending = control.forwarder.as_ref().and_then(|f| f.logon(&request));
                match pending {
                    Some(pending) => logons.push((correlation, request, pending)),
                    None => {
                        let decision = lock(&control.system).logon(&request, unix, now);
                        after_logon(control, link, &request, now, &decision);
                        session.complete_logon(now, correlation, decision);
                    }
                }
            }
            Work::Request { correlation, body } => {
                let mut system = lock(&control.system);
                forwarded.extend(run_request(
                    session,
                    &mut *system,
                    now,
                    unix,
                    correlation,
                    body,
                ));
            }
        }
    }
    (forwarded, logons)
}

/// Refusal reasons of the listener itself (never sent: the client gets
/// NOT_AUTHORIZED or CREDENTIAL_KIND_UNSUPPORTED; passticket.md §4.7).
const THROTTLED: u16 = 0x01F0;
const PLAINTEXT_PASSWORD: u16 = 0x01F1;

/// The listener's own refusals, before any password is checked.
fn refuse_logon<P: Protocol, S>(
    control: &ListenerControl<P, S>,
    link: &Link,
    request: &LogonRequest,
    now: std::time::Instant,
) -> Option<LogonDecision> {
    let ip = link.peer.ip();
    // spec: framing.md §9: a throttled address is refused unevaluated, so that its
    // attempts do not count toward the user's revocation.
    if lock(&control.admission).throttle.is_throttled(ip, now) {
        warn!(peer = %link.peer, user = %request.user, "logon refused: address throttled after failed logons");
        return Some(LogonDecision::Refuse {
            reason: NOT_AUTHORIZED,
            racf_rc: 8,
            precise: THROTTLED,
            revoked_now: false,
        });
    }
    // spec: framing.md §9: no password in clear text unless the configuration says so.
    if !link.tls
        && request.kind != CredentialKind::PASSTICKET
        && !link.limits.allow_plaintext_passwords
    {
        warn!(peer = %link.peer, user = %request.user, "logon refused: password on a listener without TLS");
        return Some(LogonDecision::Refuse {
            reason: P::CREDENTIAL_KIND_UNSUPPORTED,
            racf_rc: 8,
            precise: PLAINTEXT_PASSWORD,
            revoked_now: false,
        });
    }
    None
}

/// Counts a logon's decision for the address's throttle and logs a refusal.
fn after_logon<P: Protocol, S>(
    control: &ListenerControl<P, S>,
    link: &Link,
    request: &LogonRequest,
    now: std::time::Instant,
    decision: &LogonDecision,
) {
    let accepted = matches!(decision, LogonDecision::Accept { .. });
    lock(&control.admission)
        .throttle
        .record(link.peer.ip(), now, accepted);
    if let LogonDecision::Refuse {
        precise,
        racf_rc,
        revoked_now,
        ..
    } = decision
    {
        // spec: passticket.md §4.5: the precise reason and RACF's return code are
        // logged (the client sees NOT_AUTHORIZED only).
        warn!(peer = %link.peer, user = %request.user, reason = %format_args!("{precise:#06x}"), racf_rc, "logon refused");
        if *revoked_now {
            warn!(peer = %link.peer, user = %request.user, "user revoked after repeated failed logons");
        }
    }
}

/// Zeroes a LOGON frame's bytes once the session has read them: the credential then
/// lives only in its zeroizing `Credential` (passticket.md §4.7).
fn forget_credential<P: Protocol>(frame: crate::codec::frame::Frame) {
    if frame.header.message_type == P::Body::CONTROL.logon
        && let Ok(mut body) = frame.body.try_into_mut()
    {
        zeroize::Zeroize::zeroize(&mut body[..]);
    }
}
