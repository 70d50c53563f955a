//! The tokio shell shared by the emulated host peers (z/OS, z/TPF): a TCP listener
//! speaking a host protocol as the host, in front of a pure system model `S`.
//!
//! Each accepted connection runs a [`ServerSession`]; the system (RACF with its replay
//! cache and failure counters, HyperSwap or z/TPF state) is shared by all
//! connections, as on a real system. Tests script it through [`PeerControl`] to
//! misbehave: slow replies, truncated, oversized or garbage frames, out-of-order
//! replies, silence, dropped connections, clock skew and injected events.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::clock::Clock;
use crate::codec::frame::{FrameCodec, HEADER_LEN};
use crate::proto::session::{ServerBackend, ServerConfig, ServerSession, serve_work};
use crate::proto::{Message, Payload, Protocol, ReplyStatus, ReturnCode, View, WireBody, answer};
use crate::tls::ServerTls;

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
}

impl ListenConfig {
    /// From a configuration's listener fields, reading the TLS files if any.
    pub fn from_parts(
        listen: SocketAddr,
        max_body: u32,
        max_connections: usize,
        tls: Option<&crate::tls::ServerTlsFiles>,
    ) -> Result<ListenConfig, crate::tls::TlsError> {
        Ok(ListenConfig {
            listen,
            max_body,
            max_connections,
            tls: tls.map(ServerTls::from_files).transpose()?,
            clock: Clock::system(),
        })
    }
}

/// Deadline for a client's TLS handshake.
const TLS_HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);

/// Ways the peer can be told to misbehave (for tests of the gateway's connectors).
#[derive(Debug, Clone, Default)]
pub struct Misbehaviour {
    /// Wait this long before every write.
    pub delay: Option<Duration>,
    /// Write only the first half of the next frame, then drop the connection.
    pub truncate_next: bool,
    /// Instead of the next frame, send a header announcing a 16 MiB + 1 body.
    pub oversize_next: bool,
    /// Instead of the next frame, send bytes that are not a frame.
    pub garbage_next: bool,
    /// Hold the next reply back and send it after the one that follows.
    pub swap_next_two: bool,
    /// Send nothing at all (no replies, no heartbeats) while set.
    pub silent: bool,
    /// Seconds added to the peer's clock (negative: behind), to test PassTicket windows.
    pub clock_offset_secs: i64,
}

/// Carries out the requests a system forwards (storage I/O): the emulated hosts'
/// FLASH and SGC_BACKUP go to the simulated DS8000 this way.
pub trait Forwarder<P: Protocol>: Send + Sync + 'static {
    /// The reply to `request`, or the status refusing it (an unreachable storage
    /// system is a refusal with the protocol's own reason code).
    fn forward(
        &self,
        request: P::Body,
    ) -> Pin<Box<dyn Future<Output = Result<P::Body, ReplyStatus>> + Send>>;
}

/// Handle to script and inspect a running peer.
pub struct PeerControl<P: Protocol, S> {
    system: Arc<Mutex<S>>,
    misbehaviour: Arc<Mutex<Misbehaviour>>,
    events: broadcast::Sender<P::Body>,
    drop_connections: Arc<Mutex<CancellationToken>>,
    forwarder: Option<Arc<dyn Forwarder<P>>>,
    clock: Clock,
    /// Session ids handed to logged-on connections, one per connection.
    sessions: Arc<std::sync::atomic::AtomicU32>,
}

impl<P: Protocol, S> Clone for PeerControl<P, S> {
    fn clone(&self) -> Self {
        PeerControl {
            system: self.system.clone(),
            misbehaviour: self.misbehaviour.clone(),
            events: self.events.clone(),
            drop_connections: self.drop_connections.clone(),
            forwarder: self.forwarder.clone(),
            clock: self.clock,
            sessions: self.sessions.clone(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means a panic elsewhere; the data is still the best we have.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<P: Protocol, S> PeerControl<P, S> {
    /// The emulated system.
    pub fn system(&self) -> MutexGuard<'_, S> {
        lock(&self.system)
    }

    /// Changes the misbehaviour settings.
    pub fn misbehave(&self, f: impl FnOnce(&mut Misbehaviour)) {
        f(&mut lock(&self.misbehaviour));
    }

    /// The peer's clock: seconds since the epoch, plus the configured skew.
    pub fn unix_now(&self) -> u64 {
        self.clock
            .unix_secs()
            .saturating_add_signed(lock(&self.misbehaviour).clock_offset_secs)
    }

    /// The peer's clock.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Sends an event to every logged-on client.
    pub fn inject_event(&self, event: P::Body) {
        let _ = self.events.send(event);
    }

    /// Drops every open connection (the listener stays).
    pub fn drop_connections(&self) {
        let mut token = lock(&self.drop_connections);
        token.cancel();
        *token = CancellationToken::new();
    }
}

/// A running peer.
pub struct PeerServer<P: Protocol, S> {
    addr: SocketAddr,
    control: PeerControl<P, S>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl<P: Protocol, S: ServerBackend<P> + Send + 'static> PeerServer<P, S> {
    /// Binds and starts serving `system`.
    pub async fn start(config: &ListenConfig, system: S) -> std::io::Result<Self> {
        Self::start_with(config, system, None).await
    }

    /// Binds and starts serving `system`; forwarded requests go to `forwarder`.
    pub async fn start_with(
        config: &ListenConfig,
        system: S,
        forwarder: Option<Arc<dyn Forwarder<P>>>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let (events, _) = broadcast::channel(64);
        let control = PeerControl {
            system: Arc::new(Mutex::new(system)),
            misbehaviour: Arc::new(Mutex::new(Misbehaviour::default())),
            events,
            drop_connections: Arc::new(Mutex::new(CancellationToken::new())),
            forwarder,
            clock: config.clock,
            sessions: Arc::new(std::sync::atomic::AtomicU32::new(1)),
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
        tracker.spawn(accept_loop(
            listener,
            control.clone(),
            config.tls.clone(),
            config.max_body,
            limit,
            shutdown.clone(),
            tracker.clone(),
        ));
        Ok(PeerServer {
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

    /// The scripting handle.
    pub fn control(&self) -> &PeerControl<P, S> {
        &self.control
    }

    /// Stops accepting, closes every connection and waits for the tasks.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

async fn accept_loop<P: Protocol, S: ServerBackend<P> + Send + 'static>(
    listener: TcpListener,
    control: PeerControl<P, S>,
    tls: Option<ServerTls>,
    max_body: u32,
    limit: Arc<tokio::sync::Semaphore>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return,
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let control = control.clone();
        let shutdown = shutdown.clone();
        let dropper = lock(&control.drop_connections).clone();
        let tls = tls.clone();
        tracker.spawn(async move {
            let _permit = permit;
            debug!(%peer, "host peer: connection accepted");
            match tls {
                None => serve(stream, control, max_body, shutdown, dropper).await,
                Some(tls) => match tls.accept(stream, TLS_HANDSHAKE_DEADLINE).await {
                    Ok(stream) => serve(stream, control, max_body, shutdown, dropper).await,
                    Err(e) => {
                        warn!(%peer, error = %e, "host peer: TLS handshake failed");
                        return;
                    }
                },
            }
            debug!(%peer, "host peer: connection closed");
        });
    }
}

/// Serves one connection until the session closes, the client goes away or shutdown.
pub async fn serve<P: Protocol, S: ServerBackend<P>, T: AsyncRead + AsyncWrite + Unpin>(
    stream: T,
    control: PeerControl<P, S>,
    max_body: u32,
    shutdown: CancellationToken,
    dropper: CancellationToken,
) {
    let mut framed = Framed::new(stream, FrameCodec::new(max_body));
    let clock = control.clock;
    let session_id = control
        .sessions
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut session = ServerSession::<P>::new(ServerConfig::default(), clock.now(), session_id);
    let mut events = control.events.subscribe();
    let mut held: Option<Message<P::Body>> = None;
    let mut in_flight: tokio::task::JoinSet<(u32, Payload<P::Body>)> = tokio::task::JoinSet::new();
    loop {
        let deadline = session
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| clock.tokio_now() + Duration::from_secs(3600));
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = dropper.cancelled() => return,
            item = framed.next() => {
                let now = clock.now();
                match item {
                    Some(Ok(frame)) => session.handle_frame(now, &frame),
                    Some(Err(e)) => {
                        debug!(error = %e, "host peer: bad stream");
                        session.handle_stream_error(now, &e);
                    }
                    None => session.handle_closed(),
                }
            }
            _ = tokio::time::sleep_until(deadline) => session.handle_timeout(clock.now()),
            event = events.recv() => {
                if let Ok(body) = event {
                    session.send_event(clock.now(), body);
                }
            }
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                if let Ok((correlation, reply)) = done {
                    session.complete(clock.now(), correlation, reply);
                }
            }
        }
        // Every logon and request goes through the system; what it forwards (storage
        // I/O) is answered when the forwarder is done.
        let forwarded = {
            let unix = control.unix_now();
            let mut system = lock(&control.system);
            serve_work(&mut session, clock.now(), unix, &mut *system)
        };
        for (correlation, body) in forwarded {
            match &control.forwarder {
                Some(f) => {
                    let work = f.forward(body.clone());
                    in_flight.spawn(async move {
                        let result = work.await;
                        (correlation, answer::<P>(&body, result))
                    });
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
        while let Some(msg) = session.poll_transmit() {
            let m = lock(&control.misbehaviour).clone();
            if m.silent {
                continue;
            }
            if let Some(d) = m.delay {
                tokio::time::sleep(d).await;
            }
            if m.truncate_next || m.oversize_next || m.garbage_next {
                control.misbehave(|m| {
                    m.truncate_next = false;
                    m.oversize_next = false;
                    m.garbage_next = false;
                });
                let mut bytes = BytesMut::new();
                msg.to_frame().encode(&mut bytes);
                let raw: Vec<u8> = if m.truncate_next {
                    bytes[..bytes.len() / 2].to_vec()
                } else if m.oversize_next {
                    let mut h = bytes[..HEADER_LEN].to_vec();
                    h[12..16].copy_from_slice(&(16 * 1024 * 1024 + 1u32).to_be_bytes());
                    h
                } else {
                    b"GARBAGE!".to_vec()
                };
                let io = framed.get_mut();
                let _ = io.write_all(&raw).await;
                let _ = io.flush().await;
                if m.truncate_next {
                    return;
                }
                continue;
            }
            let is_reply = matches!(
                msg.body.view(),
                View::Reply | View::HeartbeatReply | View::LogonReply(_)
            );
            if m.swap_next_two && is_reply && held.is_none() {
                control.misbehave(|m| m.swap_next_two = false);
                held = Some(msg);
                continue;
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
    let _ = framed.flush().await;
    let _ = framed.get_mut().shutdown().await;
}
