//! Accepting connections, for every listener of the product (framing.md §9,
//! rest.md §1.3): a TCP accept loop that keeps accepting when full and refuses
//! cleanly (a global cap and a per-address cap), TCP keepalive if asked, a TLS
//! handshake with a deadline (failures logged at most once a minute, with a count),
//! and a graceful stop; each connection is then handed to a [`Handler`] on a
//! tracked task. The framed-protocol listener (the CSM door, the emulators) and
//! REST's HTTPS listener both run on it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::admission::ConnectionCounts;
use crate::clock::Clock;
use crate::tls::ServerTls;

/// Deadline for a client's TLS handshake.
pub const TLS_HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);

/// What serves one accepted connection, plain or TLS.
pub trait Handler: Clone + Send + Sync + 'static {
    /// Serves `stream` from `peer` until it ends or `shutdown` (then gracefully).
    fn serve<T>(
        &self,
        stream: T,
        peer: SocketAddr,
        shutdown: CancellationToken,
    ) -> impl Future<Output = ()> + Send
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static;
}

/// How a listener accepts.
#[derive(Clone)]
pub struct Accepting {
    /// TLS, or plain TCP (the emulators' test listeners only).
    pub tls: Option<ServerTls>,
    /// Connections at once; more are closed at once.
    pub limit: Arc<Semaphore>,
    /// Connections per source address.
    pub counts: Arc<Mutex<ConnectionCounts>>,
    /// TCP keepalive time, if any.
    pub keepalive: Option<Duration>,
    /// The clock that paces the warnings.
    pub clock: Clock,
    /// The listener's name in logs.
    pub name: &'static str,
}

/// A connection's slot in the per-address counts, given back when it ends (however
/// it ends).
struct AddressSlot {
    counts: Arc<Mutex<ConnectionCounts>>,
    ip: std::net::IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.counts.lock() {
            counts.close(self.ip);
        }
    }
}

/// A WARN line at most once per period; the rest are counted and reported with it.
struct RateLimitedWarning {
    period: Duration,
    last: Option<std::time::Instant>,
    suppressed: u64,
}

impl RateLimitedWarning {
    fn new(period: Duration) -> Self {
        RateLimitedWarning {
            period,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(suppressed since the last one)` when a line may be logged now.
    fn should_log(&mut self, now: std::time::Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.period => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// Accepts on `listener` until `shutdown`, each connection on a task of `tracker`.
pub async fn run<H: Handler>(
    listener: TcpListener,
    accepting: Accepting,
    handler: H,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let name = accepting.name;
    let mut tls_failures = RateLimitedWarning::new(Duration::from_secs(60));
    let (tls_tx, mut tls_rx) = tokio::sync::mpsc::unbounded_channel::<(SocketAddr, String)>();
    loop {
        // spec: framing.md §9: keep accepting when full, and refuse cleanly, so the
        // listener never stalls behind a full house.
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            Some((peer, error)) = tls_rx.recv() => {
                if let Some(suppressed) = tls_failures.should_log(accepting.clock.now()) {
                    warn!(listener = name, %peer, error, suppressed, "TLS handshake failed");
                } else {
                    debug!(listener = name, %peer, error, "TLS handshake failed");
                }
                continue;
            }
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    warn!(listener = name, error = %e, "accept failed");
                    // Out of file descriptors and the like: back off instead of
                    // spinning on an accept that fails at once (tokio time, so a
                    // paused test clock drives it).
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = accepting.limit.clone().try_acquire_owned() else {
            debug!(listener = name, %peer, "connection refused: listener full");
            continue;
        };
        // rest.md §1.3, framing.md §9: one address holds at most its share.
        let opened = accepting
            .counts
            .lock()
            .is_ok_and(|mut counts| counts.try_open(peer.ip()));
        if !opened {
            debug!(listener = name, %peer, "connection refused: too many from this address");
            continue;
        }
        let slot = AddressSlot {
            counts: accepting.counts.clone(),
            ip: peer.ip(),
        };
        let _ = stream.set_nodelay(true);
        if let Some(time) = accepting.keepalive {
            let keepalive = socket2::TcpKeepalive::new().with_time(time);
            let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
        }
        let (handler, shutdown, tls, tls_tx) = (
            handler.clone(),
            shutdown.clone(),
            accepting.tls.clone(),
            tls_tx.clone(),
        );
        tracker.spawn(async move {
            let _permit = permit;
            let _slot = slot;
            debug!(listener = name, %peer, "connection accepted");
            match tls {
                None => handler.serve(stream, peer, shutdown).await,
                Some(tls) => match tls.accept(stream, TLS_HANDSHAKE_DEADLINE).await {
                    Ok(stream) => handler.serve(stream, peer, shutdown).await,
                    Err(e) => {
                        let _ = tls_tx.send((peer, e.to_string()));
                    }
                },
            }
            debug!(listener = name, %peer, "connection closed");
        });
    }
}
