//! The emulated host peers' listener: the product's listener (`crate::server`) with
//! the switches tests use to make an emulated system misbehave: slow replies,
//! truncated, oversized or garbage frames, out-of-order replies, silence, dropped
//! connections, clock skew and injected events.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::BytesMut;

use crate::clock::Clock;
use crate::codec::frame::HEADER_LEN;
use crate::proto::session::ServerBackend;
use crate::proto::{Message, Protocol};
use crate::server::{Listener, ListenerControl, Outgoing, Shape};

pub use crate::server::{Forwarder, LimitsConfig, ListenConfig};

/// Ways the peer can be told to misbehave (for tests of the gateway's connectors).
#[derive(Debug, Clone, Default)]
pub struct Misbehaviour {
    /// Wait this long before every write.
    pub delay: Option<Duration>,
    /// Send only the first half of the next frame, then close.
    pub truncate_next: bool,
    /// Send a header announcing a body over the limit.
    pub oversize_next: bool,
    /// Send bytes that are not a frame.
    pub garbage_next: bool,
    /// Send the next two replies in the opposite order.
    pub swap_next_two: bool,
    /// Send nothing at all.
    pub silent: bool,
    /// Skew the peer's clock by this many seconds.
    pub clock_offset_secs: i64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means a panic elsewhere; the data is still the best we have.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The switches, as the listener's hook.
#[derive(Default)]
struct Switches(Mutex<Misbehaviour>);

impl<P: Protocol> Outgoing<P> for Switches {
    fn shape(&self, msg: &Message<P::Body>, is_reply: bool, holding: bool) -> Shape {
        let mut m = lock(&self.0);
        if m.silent {
            return Shape::Drop;
        }
        let delay = m.delay;
        if m.truncate_next || m.oversize_next || m.garbage_next {
            let mut bytes = BytesMut::new();
            msg.to_frame().encode(&mut bytes);
            let (raw, close) = if m.truncate_next {
                (bytes[..bytes.len() / 2].to_vec(), true)
            } else if m.oversize_next {
                let mut h = bytes[..HEADER_LEN].to_vec();
                h[12..16].copy_from_slice(&(16 * 1024 * 1024 + 1u32).to_be_bytes());
                (h, false)
            } else {
                (b"GARBAGE!".to_vec(), false)
            };
            m.truncate_next = false;
            m.oversize_next = false;
            m.garbage_next = false;
            return Shape::Raw {
                delay,
                bytes: raw,
                close,
            };
        }
        if m.swap_next_two && is_reply && !holding {
            m.swap_next_two = false;
            return Shape::Hold;
        }
        Shape::Send { delay }
    }

    fn clock_offset_secs(&self) -> i64 {
        lock(&self.0).clock_offset_secs
    }
}

/// Handle to script and inspect a running peer.
pub struct PeerControl<P: Protocol, S> {
    inner: ListenerControl<P, S>,
    switches: Arc<Switches>,
}

impl<P: Protocol, S> Clone for PeerControl<P, S> {
    fn clone(&self) -> Self {
        PeerControl {
            inner: self.inner.clone(),
            switches: self.switches.clone(),
        }
    }
}

impl<P: Protocol, S> PeerControl<P, S> {
    /// The emulated system.
    pub fn system(&self) -> MutexGuard<'_, S> {
        self.inner.system()
    }

    /// Changes the misbehaviour settings.
    pub fn misbehave(&self, f: impl FnOnce(&mut Misbehaviour)) {
        f(&mut lock(&self.switches.0));
    }

    /// The peer's clock: seconds since the epoch, plus the configured skew.
    pub fn unix_now(&self) -> u64 {
        self.inner.unix_now()
    }

    /// The peer's clock.
    pub fn clock(&self) -> Clock {
        self.inner.clock()
    }

    /// Sends an event to every logged-on client.
    pub fn inject_event(&self, event: P::Body) {
        self.inner.inject_event(event);
    }

    /// Drops every open connection (the listener stays).
    pub fn drop_connections(&self) {
        self.inner.drop_connections();
    }
}

/// A running emulated peer.
pub struct PeerServer<P: Protocol, S> {
    listener: Listener<P, S>,
    control: PeerControl<P, S>,
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
        let switches = Arc::new(Switches::default());
        let hook: Arc<dyn Outgoing<P>> = switches.clone();
        let listener = Listener::start(config, system, forwarder, Some(hook)).await?;
        let control = PeerControl {
            inner: listener.control().clone(),
            switches,
        };
        Ok(PeerServer { listener, control })
    }

    /// The bound address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.listener.addr()
    }

    /// The scripting handle.
    pub fn control(&self) -> &PeerControl<P, S> {
        &self.control
    }

    /// Stops accepting, closes every connection and waits for the tasks.
    pub async fn shutdown(self) {
        self.listener.shutdown().await;
    }
}
