//! The emulated z/TPF system: the shared host-peer shell ([`super::host`]) in front
//! of a [`ZtpfSystem`].

use std::net::SocketAddr;

use serde::Deserialize;

use crate::tls::{ServerTls, ServerTlsFiles, TlsError};

use super::host::{HostPeer, ListenConfig, PeerControl};
use super::zos::{default_max_body, default_max_connections};
use super::ztpf_system::{ZtpfSystem, ZtpfSystemConfig};
use crate::proto::ztpf::Ztpf;

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
        Ok(ListenConfig {
            listen: self.listen,
            max_body: self.max_body,
            max_connections: self.max_connections,
            tls: self.tls.as_ref().map(ServerTls::from_files).transpose()?,
        })
    }
}

/// A running emulated z/TPF.
pub type ZtpfPeer = HostPeer<Ztpf, ZtpfSystem>;

/// Scripting handle of an emulated z/TPF.
pub type ZtpfPeerControl = PeerControl<Ztpf, ZtpfSystem>;

impl HostPeer<Ztpf, ZtpfSystem> {
    /// Builds the system from `config` (keys from the environment) and starts.
    pub async fn from_config(config: ZtpfPeerConfig) -> Result<ZtpfPeer, crate::Error> {
        let system =
            ZtpfSystem::new(&config.system).map_err(|e| crate::Error::Config(e.to_string()))?;
        Ok(ZtpfPeer::start(&config.listen_config()?, system).await?)
    }
}
