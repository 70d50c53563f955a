//! The emulated z/OS HyperSwap address space: a TCP listener speaking the z/OS
//! protocol as the host, in front of a [`ZosSystem`].
//!
//! Each accepted connection runs a [`HostSession`]; the system (RACF with its replay
//! cache and failure counters, HyperSwap state) is shared by all connections, as on a
//! real system. Tests script it through [`PeerControl`] to misbehave: slow replies,
//! truncated, oversized or garbage frames, out-of-order replies, silence, dropped
//! connections and injected HyperSwap events.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::zos_system::{ZosSystem, ZosSystemConfig};
use crate::codec::frame::{FrameCodec, HEADER_LEN};
use crate::proto::zos::ZosMessage;
use crate::proto::zos::session::{HostConfig, HostSession};

/// Peer settings (`zgate peer zos --config F`, TOML).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZosPeerConfig {
    /// Listen address (default `127.0.0.1:5858`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Largest frame body accepted.
    #[serde(default = "default_max_body")]
    pub max_body: u32,
    /// Most connections served at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// The system behind the listener.
    #[serde(flatten)]
    pub system: ZosSystemConfig,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 5858))
}
fn default_max_body() -> u32 {
    crate::codec::frame::DEFAULT_MAX_BODY
}
fn default_max_connections() -> usize {
    1024
}

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

/// Handle to script and inspect a running peer.
#[derive(Clone)]
pub struct PeerControl {
    system: Arc<Mutex<ZosSystem>>,
    misbehaviour: Arc<Mutex<Misbehaviour>>,
    events: broadcast::Sender<crate::proto::zos::ZosBody>,
    drop_connections: Arc<Mutex<CancellationToken>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means a panic elsewhere; the data is still the best we have.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PeerControl {
    /// The emulated system (RACF, HyperSwap state, recorded requests).
    pub fn system(&self) -> MutexGuard<'_, ZosSystem> {
        lock(&self.system)
    }

    /// Changes the misbehaviour settings.
    pub fn misbehave(&self, f: impl FnOnce(&mut Misbehaviour)) {
        f(&mut lock(&self.misbehaviour));
    }

    /// Simulates a failed primary: HyperSwap swaps (if enabled) and every logged-on
    /// client gets the event. Returns the event sent.
    pub fn primary_failure(&self) -> Option<crate::proto::zos::ZosBody> {
        let event = self.system().primary_failure(unix_now(&self.misbehaviour));
        if let Some(e) = &event {
            let _ = self.events.send(e.clone());
        }
        event
    }

    /// Sends an arbitrary event to every logged-on client.
    pub fn inject_event(&self, event: crate::proto::zos::ZosBody) {
        let _ = self.events.send(event);
    }

    /// Drops every open connection (the listener stays).
    pub fn drop_connections(&self) {
        let mut token = lock(&self.drop_connections);
        token.cancel();
        *token = CancellationToken::new();
    }
}

fn unix_now(m: &Mutex<Misbehaviour>) -> u64 {
    let offset = lock(m).clock_offset_secs;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    now.saturating_add_signed(offset)
}

/// A running peer.
pub struct ZosPeer {
    addr: SocketAddr,
    control: PeerControl,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl ZosPeer {
    /// Binds and starts serving.
    pub async fn start(config: ZosPeerConfig, system: ZosSystem) -> std::io::Result<ZosPeer> {
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let (events, _) = broadcast::channel(64);
        let control = PeerControl {
            system: Arc::new(Mutex::new(system)),
            misbehaviour: Arc::new(Mutex::new(Misbehaviour::default())),
            events,
            drop_connections: Arc::new(Mutex::new(CancellationToken::new())),
        };
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let limit = Arc::new(tokio::sync::Semaphore::new(config.max_connections));
        info!(%addr, "z/OS peer listening");
        tracker.spawn(accept_loop(
            listener,
            control.clone(),
            config.max_body,
            limit,
            shutdown.clone(),
            tracker.clone(),
        ));
        Ok(ZosPeer {
            addr,
            control,
            shutdown,
            tracker,
        })
    }

    /// Builds the system from `config` (keys from the environment) and starts.
    pub async fn from_config(config: ZosPeerConfig) -> Result<ZosPeer, crate::Error> {
        let system =
            ZosSystem::new(&config.system).map_err(|e| crate::Error::Config(e.to_string()))?;
        Ok(ZosPeer::start(config, system).await?)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The scripting handle.
    pub fn control(&self) -> &PeerControl {
        &self.control
    }

    /// Stops accepting, closes every connection and waits for the tasks.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    control: PeerControl,
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
        tracker.spawn(async move {
            let _permit = permit;
            debug!(%peer, "z/OS peer: connection accepted");
            serve(stream, control, max_body, shutdown, dropper).await;
            debug!(%peer, "z/OS peer: connection closed");
        });
    }
}

/// Serves one connection until the session closes, the client goes away or shutdown.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    control: PeerControl,
    max_body: u32,
    shutdown: CancellationToken,
    dropper: CancellationToken,
) {
    let mut framed = Framed::new(stream, FrameCodec::new(max_body));
    let mut session = HostSession::new(HostConfig::default(), std::time::Instant::now());
    let mut events = control.events.subscribe();
    let mut held: Option<ZosMessage> = None;
    loop {
        let deadline = session
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = dropper.cancelled() => return,
            item = framed.next() => {
                let now = std::time::Instant::now();
                match item {
                    Some(Ok(frame)) => {
                        let unix = unix_now(&control.misbehaviour);
                        let mut system = lock(&control.system);
                        session.handle_frame(now, unix, &frame, &mut *system);
                    }
                    Some(Err(e)) => {
                        debug!(error = %e, "z/OS peer: bad stream");
                        session.handle_stream_error(now, &e);
                    }
                    None => session.handle_closed(),
                }
            }
            _ = tokio::time::sleep_until(deadline) => session.handle_timeout(std::time::Instant::now()),
            event = events.recv() => {
                if let Ok(body) = event {
                    session.send_event(std::time::Instant::now(), body);
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
                msg.encode(&mut bytes);
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
            if m.swap_next_two && msg.body.is_reply() && held.is_none() {
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
