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
use crate::sim::ds8k::MirrorConfig;
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
    /// Metro Mirror settings of the complex (`[mirror]`).
    #[serde(default)]
    pub mirror: MirrorConfig,
    /// More storage images in the same complex, each behind its own HMC listener:
    /// the other ends of Metro Mirror pairs (`[[remote]]`, ds8k.md §3.5).
    #[serde(default)]
    pub remote: Vec<RemoteImageConfig>,
    /// The box.
    #[serde(flatten)]
    pub system: Ds8kSystemConfig,
}

/// Another storage image of the complex (`[[remote]]`).
#[derive(Debug, Clone, Deserialize)]
pub struct RemoteImageConfig {
    /// Its HMC's listen address.
    pub listen: SocketAddr,
    /// The image, its volumes and its HMC's users, as the first image's.
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

/// A running simulated DS8000: its first image's HMC, and those of the other
/// images of its complex.
pub struct Ds8kService {
    peer: PeerServer<Ds8k, Ds8kSystem>,
    remotes: Vec<PeerServer<Ds8k, Ds8kSystem>>,
    stop_ticker: CancellationToken,
    ticker: tokio::task::JoinHandle<()>,
}

impl Ds8kService {
    /// Builds the box from `config` and starts listening and ticking.
    pub async fn from_config(config: Ds8kServiceConfig) -> Result<Ds8kService, crate::Error> {
        let mut config = config;
        let mut secrets =
            crate::peer::secrets::Secrets::read_key_files(&mut config.system.ptktdata)?;
        for remote in &mut config.remote {
            secrets.extend(crate::peer::secrets::Secrets::read_key_files(
                &mut remote.system.ptktdata,
            )?);
        }
        let mut cfgs = vec![&config.system];
        cfgs.extend(config.remote.iter().map(|r| &r.system));
        let mut systems = Ds8kSystem::complex_with_keys(
            &cfgs,
            config.mirror.clone(),
            secrets.lookup(|v| std::env::var(v).ok()),
        )
        .map_err(|e: Ds8kConfigError| crate::Error::Config(e.to_string()))?;
        let rest = systems.split_off(1.min(systems.len()));
        let Some(first) = systems.pop() else {
            return Err(crate::Error::Config("no storage image".into()));
        };
        let mut remotes = Vec::with_capacity(rest.len());
        for (remote, system) in config.remote.iter().zip(rest) {
            let mut listen = config.listen_config()?;
            listen.listen = remote.listen;
            remotes.push((listen, system));
        }
        Self::start_complex(config.listen_config()?, remotes, &config, first).await
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
        system: Ds8kSystem,
    ) -> Result<Ds8kService, crate::Error> {
        Self::start_complex(listen, Vec::new(), config, system).await
    }

    /// Starts serving `system` on `listen` and the other images of its complex each
    /// on its own listener; one ticker runs the complex's clock for all of them.
    pub async fn start_complex(
        listen: ListenConfig,
        remotes: Vec<(ListenConfig, Ds8kSystem)>,
        config: &Ds8kServiceConfig,
        mut system: Ds8kSystem,
    ) -> Result<Ds8kService, crate::Error> {
        let clock = listen.clock;
        let start_ms = clock.unix_millis();
        system.tick(start_ms);
        let peer = PeerServer::start(&listen, system).await?;
        let mut remote_peers = Vec::with_capacity(remotes.len());
        for (mut remote_listen, remote) in remotes {
            remote_listen.clock = clock;
            match PeerServer::start(&remote_listen, remote).await {
                Ok(p) => remote_peers.push(p),
                Err(e) => {
                    for p in remote_peers {
                        p.shutdown().await;
                    }
                    peer.shutdown().await;
                    return Err(e.into());
                }
            }
        }
        let control = peer.control().clone();
        let remote_controls: Vec<Ds8kControl> =
            remote_peers.iter().map(|p| p.control().clone()).collect();
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
                for remote in &remote_controls {
                    let events = remote.system().drain_events(now);
                    for e in events {
                        remote.inject_event(e);
                    }
                }
            }
        });
        Ok(Ds8kService {
            peer,
            remotes: remote_peers,
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

    /// The other images' HMC addresses, in configuration order.
    pub fn remote_addrs(&self) -> Vec<SocketAddr> {
        self.remotes.iter().map(|p| p.addr()).collect()
    }

    /// The scripting handle of the other image `i` (its HMC, its events).
    pub fn remote_control(&self, i: usize) -> Option<&Ds8kControl> {
        self.remotes.get(i).map(|p| p.control())
    }

    /// Stops ticking and serving.
    pub async fn shutdown(self) {
        self.stop_ticker.cancel();
        let _ = self.ticker.await;
        for p in self.remotes {
            p.shutdown().await;
        }
        self.peer.shutdown().await;
    }
}
