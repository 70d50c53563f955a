//! The emulated z/OS HyperSwap address space: the shared host-peer shell
//! ([`super::server`]) in front of a [`ZosSystem`], with HyperSwap scripting.

use std::net::SocketAddr;
use std::sync::Arc;

use serde::Deserialize;

use crate::clock::Clock;
use crate::tls::{ServerTlsFiles, TlsError};

use super::hyperswap::{HyperSwapIo, WorkloadConfig, ZosHost};
use super::server::{Forwarder, LimitsConfig, ListenConfig, PeerControl, PeerServer};
use super::storage_link::{StorageLink, StorageLinkConfig, ZosStorage};
use crate::proto::zos::{Zos, ZosBody};
use crate::sim::zos::{ZosSystem, ZosSystemConfig};

pub use super::server::Misbehaviour;

/// Peer settings (`zgate peer zos --config F`, TOML).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZosPeerConfig {
    /// Listen address (default `127.0.0.1:5858`, CSM's z/OS port).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Largest frame body accepted.
    #[serde(default = "default_max_body")]
    pub max_body: u32,
    /// Most connections served at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// TLS (`[tls]` with `cert`, `key`, optional `client_ca`); plain TCP without it.
    #[serde(default)]
    pub tls: Option<ServerTlsFiles>,
    /// Deadlines, caps and throttling (`[limits]`).
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The simulated DS8000 that FLASH and SGC_BACKUP go to; without it they are
    /// recorded and answered by the system itself.
    #[serde(default)]
    pub storage: Option<StorageLinkConfig>,
    /// The other storage images of the HyperSwap configurations (`[[hyperswap_storage]]`):
    /// with them, HS_PLANNED_SWAP and a lost primary swap on the storage itself
    /// (ds8k.md §3.5, zos-hyperswap.md §3.7).
    #[serde(default)]
    pub hyperswap_storage: Vec<StorageLinkConfig>,
    /// The emulated applications writing to the production volumes (`[workload]`).
    #[serde(default)]
    pub workload: Option<WorkloadConfig>,
    /// The system behind the listener.
    #[serde(flatten)]
    pub system: ZosSystemConfig,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 5858))
}
pub(crate) fn default_max_body() -> u32 {
    crate::codec::frame::DEFAULT_MAX_BODY
}
pub(crate) fn default_max_connections() -> usize {
    1024
}

impl ZosPeerConfig {
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

/// A running emulated z/OS.
pub type ZosPeer = PeerServer<Zos, ZosSystem>;

/// Scripting handle of an emulated z/OS.
pub type ZosPeerControl = PeerControl<Zos, ZosSystem>;

impl PeerServer<Zos, ZosSystem> {
    /// Builds the system from `config` (keys and the HMC password from the
    /// environment) and starts.
    pub async fn from_config(config: ZosPeerConfig) -> Result<ZosPeer, crate::Error> {
        Self::from_config_with(config, |v| std::env::var(v).ok(), Clock::system()).await
    }

    /// As [`Self::from_config`], looking environment variables up with `env`, on
    /// `clock`.
    pub async fn from_config_with(
        config: ZosPeerConfig,
        env: impl Fn(&str) -> Option<String>,
        clock: Clock,
    ) -> Result<ZosPeer, crate::Error> {
        Self::with_hyperswap_io(config, env, clock)
            .await
            .map(|(peer, _)| peer)
    }

    /// As [`Self::from_config_with`], also returning the HyperSwap I/O when the
    /// configuration has `[[hyperswap_storage]]` (its applications' acknowledged
    /// writes and I/O holds, for tests and benchmarks).
    pub async fn with_hyperswap_io(
        mut config: ZosPeerConfig,
        env: impl Fn(&str) -> Option<String>,
        clock: Clock,
    ) -> Result<(ZosPeer, Option<Arc<HyperSwapIo>>), crate::Error> {
        let mut listen = config.listen_config()?;
        listen.clock = clock;
        let secrets = crate::peer::secrets::Secrets::read_key_files(&mut config.system.ptktdata)?;
        let env = secrets.lookup(env);
        let mut system = ZosSystem::with_keys(&config.system, &env)
            .map_err(|e| crate::Error::Config(e.to_string()))?;
        let mut hyperswap = None;
        let forwarder: Option<Arc<dyn Forwarder<Zos>>> = match &config.storage {
            Some(link) => {
                system.forward_to_storage(true);
                let primary = StorageLink::start(link, &env, listen.clock)?;
                if config.hyperswap_storage.is_empty() {
                    Some(Arc::new(ZosStorage(primary)))
                } else {
                    let mut links = vec![primary.clone()];
                    for other in &config.hyperswap_storage {
                        links.push(StorageLink::start(other, &env, listen.clock)?);
                    }
                    system.swap_on_storage(true);
                    let io = HyperSwapIo::new(links);
                    hyperswap = Some(io.clone());
                    Some(Arc::new(ZosHost {
                        storage: ZosStorage(primary),
                        hyperswap: io,
                    }))
                }
            }
            None => None,
        };
        let peer = ZosPeer::start_with(&listen, system, forwarder).await?;
        if let Some(io) = &hyperswap {
            io.attach(peer.control().clone());
            if let Some(workload) = config.workload.clone() {
                io.spawn_workload(workload);
            }
        }
        Ok((peer, hyperswap))
    }
}

impl PeerControl<Zos, ZosSystem> {
    /// Simulates a failed primary: HyperSwap swaps (if enabled) and every logged-on
    /// client gets the event. Returns the event sent.
    pub fn primary_failure(&self) -> Option<ZosBody> {
        let now = self.unix_now();
        let event = self.system().primary_failure(now);
        if let Some(e) = &event {
            self.inject_event(e.clone());
        }
        event
    }
}
