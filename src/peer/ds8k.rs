//! The simulated DS8000 service (`zgate ds8k --config F`): the shared listener shell
//! ([`super::server`]) speaking the HMC protocol in front of a [`Ds8kSystem`], and a
//! ticker that runs the box's clock (optionally accelerated for demos), background
//! copy and freeze timeouts, and sends the resulting events to every client.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::server::{LimitsConfig, ListenConfig, PeerControl, PeerServer};
use super::zos::default_max_connections;
use crate::proto::ds8k::Ds8k;
use crate::sim::hmc::{Ds8kConfigError, Ds8kSystem, Ds8kSystemConfig};
use crate::tls::{ServerTlsFiles, TlsError};

/// Service settings (TOML).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ds8kServiceConfig {
    /// Listen address (default `127.0.0.1:1750`, after the HMC's ESSNI port).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Largest frame body accepted (a 10,000-pair flash is 40 KB).
    #[serde(default = "default_max_body")]
    pub max_body: u32,
    /// Most connections served at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// TLS; plain TCP without it.
    #[serde(default)]
    pub tls: Option<ServerTlsFiles>,
    /// Deadlines, caps and throttling (`[limits]`).
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Simulated seconds per real second (demos run copies faster).
    #[serde(default = "default_acceleration")]
    pub time_acceleration: f64,
    /// Real milliseconds between ticks of the box's clock.
    #[serde(default = "default_tick_ms")]
    pub tick_ms: u64,
    /// The box.
    #[serde(flatten)]
    pub system: Ds8kSystemConfig,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 1750))
}
fn default_max_body() -> u32 {
    256 * 1024
}
fn default_acceleration() -> f64 {
    1.0
}
fn default_tick_ms() -> u64 {
    1000
}

impl Ds8kServiceConfig {
    /// The listener part (reads the TLS files, if any).
    pub fn listen_config(&self) -> Result<ListenConfig, TlsError> {
        ListenConfig::from_parts(
            self.listen,
            self.max_body,
            self.max_connections,
            self.tls.as_ref(),
            &self.limits,
        )
    }
}

/// Scripting handle of the simulated DS8000.
pub type Ds8kControl = PeerControl<Ds8k, Ds8kSystem>;

/// A running simulated DS8000.
pub struct Ds8kService {
    peer: PeerServer<Ds8k, Ds8kSystem>,
    stop_ticker: CancellationToken,
    ticker: tokio::task::JoinHandle<()>,
}

impl Ds8kService {
    /// Builds the box from `config` and starts listening and ticking.
    pub async fn from_config(config: Ds8kServiceConfig) -> Result<Ds8kService, crate::Error> {
        let mut config = config;
        let secrets = crate::peer::secrets::Secrets::read_key_files(&mut config.system.ptktdata)?;
        let system =
            Ds8kSystem::with_keys(&config.system, secrets.lookup(|v| std::env::var(v).ok()))
                .map_err(|e: Ds8kConfigError| crate::Error::Config(e.to_string()))?;
        Self::start(&config, system).await
    }

    /// Starts serving `system`.
    pub async fn start(
        config: &Ds8kServiceConfig,
        system: Ds8kSystem,
    ) -> Result<Ds8kService, crate::Error> {
        Self::start_on(config.listen_config()?, config, system).await
    }

    /// Starts serving `system` on `listen` (whose clock the box's clock follows).
    pub async fn start_on(
        listen: ListenConfig,
        config: &Ds8kServiceConfig,
        mut system: Ds8kSystem,
    ) -> Result<Ds8kService, crate::Error> {
        let clock = listen.clock;
        let start_ms = clock.unix_millis();
        system.tick(start_ms);
        let peer = PeerServer::start(&listen, system).await?;
        let control = peer.control().clone();
        let stop_ticker = CancellationToken::new();
        let stop = stop_ticker.clone();
        let accel = if config.time_acceleration.is_finite() && config.time_acceleration > 0.0 {
            config.time_acceleration
        } else {
            1.0
        };
        let period = Duration::from_millis(config.tick_ms.max(1));
        let ticker = tokio::spawn(async move {
            let real_start = clock.tokio_now();
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = interval.tick() => {}
                }
                let elapsed = real_start.elapsed().as_secs_f64() * 1000.0 * accel;
                let now = start_ms.saturating_add(elapsed as u64);
                let events = control.system().tick(now);
                for e in events {
                    control.inject_event(e);
                }
            }
        });
        Ok(Ds8kService {
            peer,
            stop_ticker,
            ticker,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.peer.addr()
    }

    /// The scripting handle (the box, events, misbehaviour).
    pub fn control(&self) -> &Ds8kControl {
        self.peer.control()
    }

    /// Stops ticking and serving.
    pub async fn shutdown(self) {
        self.stop_ticker.cancel();
        let _ = self.ticker.await;
        self.peer.shutdown().await;
    }
}
