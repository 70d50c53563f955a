//! The emulated z/TPF system: the shared host-peer shell ([`super::server`]) in front
//! of a [`ZtpfSystem`].

use std::net::SocketAddr;
use std::sync::Arc;

use serde::Deserialize;

use crate::clock::Clock;
use crate::tls::{ServerTlsFiles, TlsError};

use super::server::{Forwarder, LimitsConfig, ListenConfig, PeerControl, PeerServer};
use super::storage_link::{StorageLink, StorageLinkConfig, ZtpfStorage};
use super::zos::{default_max_body, default_max_connections};
use crate::proto::ztpf::Ztpf;
use crate::sim::ztpf::{ZtpfSystem, ZtpfSystemConfig};

/// Peer settings (`zgate peer ztpf --config F`, TOML).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZtpfPeerConfig {
    /// Listen address (default `127.0.0.1:5860`; IBM documents no z/TPF port).
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
    /// The system behind the listener.
    #[serde(flatten)]
    pub system: ZtpfSystemConfig,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 5860))
}

impl ZtpfPeerConfig {
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

/// A running emulated z/TPF.
pub type ZtpfPeer = PeerServer<Ztpf, ZtpfSystem>;

/// Scripting handle of an emulated z/TPF.
pub type ZtpfPeerControl = PeerControl<Ztpf, ZtpfSystem>;

impl PeerServer<Ztpf, ZtpfSystem> {
    /// Builds the system from `config` (keys and the HMC password from the
    /// environment) and starts.
    pub async fn from_config(config: ZtpfPeerConfig) -> Result<ZtpfPeer, crate::Error> {
        Self::from_config_with(config, |v| std::env::var(v).ok(), Clock::system()).await
    }

    /// As [`Self::from_config`], looking environment variables up with `env`, on
    /// `clock`.
    pub async fn from_config_with(
        mut config: ZtpfPeerConfig,
        env: impl Fn(&str) -> Option<String>,
        clock: Clock,
    ) -> Result<ZtpfPeer, crate::Error> {
        let mut listen = config.listen_config()?;
        listen.clock = clock;
        let secrets = crate::peer::secrets::Secrets::read_key_files(&mut config.system.ptktdata)?;
        let env = secrets.lookup(env);
        let mut system = ZtpfSystem::with_keys(&config.system, &env)
            .map_err(|e| crate::Error::Config(e.to_string()))?;
        let forwarder: Option<Arc<dyn Forwarder<Ztpf>>> = match &config.storage {
            Some(link) => {
                system.forward_to_storage(true);
                Some(Arc::new(ZtpfStorage(StorageLink::start(
                    link,
                    &env,
                    listen.clock,
                )?)))
            }
            None => None,
        };
        Ok(ZtpfPeer::start_with(&listen, system, forwarder).await?)
    }
}
