//! `zgate serve` as a library: the configuration (`protocol-specs/configuration.md`
//! §5) and the running service (gateway core + CSM listener), shared by the
//! command line, `zgate demo` and the tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::csm::CsmServer;
use super::{Gateway, GatewayConfig, GatewayError, GatewayHandle};
use crate::clock::Clock;
use crate::policy::engine::EngineConfig;
use crate::server::{LimitsConfig, ListenConfig};
use crate::store::sealing::SealingKey;
use crate::tls::{ServerTls, ServerTlsFiles, ThrowawayPki};

/// `zgate serve`'s configuration. Unknown keys are errors that name the key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// The CSM protocol listener.
    #[serde(default)]
    pub csm: CsmListenerConfig,
    /// Where state lives.
    #[serde(default)]
    pub store: StoreConfig,
    /// The engine's settings.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// The first Administrator.
    #[serde(default)]
    pub admin: AdminConfig,
    /// Remote syslog of the console (syslog.md); none by default.
    #[serde(default)]
    pub syslog: Option<super::syslog::SyslogConfig>,
    /// CSM's REST API (rest.md).
    #[serde(default)]
    pub rest: RestListenerConfig,
    /// Active/standby (ha.md).
    #[serde(default)]
    pub ha: super::ha::HaConfig,
}

/// `[rest]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RestListenerConfig {
    /// Serve it at all.
    pub enabled: bool,
    /// Listen address (CSM's REST port 9559 by default, on loopback).
    pub listen: SocketAddr,
    /// Most connections at once.
    pub max_connections: usize,
    /// Most connections from one address at once (0 = no cap), so that one client
    /// cannot hold every slot (rest.md §1.3).
    pub max_connections_per_address: usize,
    /// How long a token lasts, seconds (CSM: 2 hours).
    pub token_lifetime_secs: u64,
    /// TLS material; absent: the CSM listener's (the throwaway one by default).
    pub tls: Option<ServerTlsFiles>,
}

impl Default for RestListenerConfig {
    fn default() -> Self {
        RestListenerConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9559)),
            max_connections: 256,
            max_connections_per_address: 16,
            token_lifetime_secs: 7200,
            tls: None,
        }
    }
}

/// `[csm]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CsmListenerConfig {
    /// Listen address (CSM's CLI port 9560 by default, on loopback).
    pub listen: SocketAddr,
    /// Largest request body, bytes.
    pub max_body: u32,
    /// Most clients at once.
    pub max_connections: usize,
    /// TLS material; absent: a throwaway CA and certificate made at the first start
    /// and kept in the store directory (`csm-ca.pem` for clients to trust,
    /// `csm-cert.pem`, `csm-key.pem` mode 0600).
    pub tls: Option<ServerTlsFiles>,
    /// Deadlines, caps, throttling (configuration.md §1).
    pub limits: LimitsConfig,
}

impl Default for CsmListenerConfig {
    fn default() -> Self {
        CsmListenerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9560)),
            max_body: 65_536,
            max_connections: 256,
            tls: None,
            limits: LimitsConfig::default(),
        }
    }
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Directory of the store file (`zgate.redb`) and, by default, the sealing key.
    pub dir: PathBuf,
    /// The sealing key's file (64 hex digits, mode 0600); default
    /// `<dir>/sealing.key`, made at first start when neither it nor `key_env` is set.
    pub key_file: Option<PathBuf>,
    /// An environment variable holding the sealing key instead of a file.
    pub key_env: Option<String>,
    /// A snapshot of the state every this many records (0: only on demand).
    pub snapshot_every: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            dir: PathBuf::from("zgate-data"),
            key_file: None,
            key_env: None,
            snapshot_every: super::DEFAULT_SNAPSHOT_EVERY,
        }
    }
}

/// `[policy]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Life of an unanswered dual-control request, seconds.
    pub request_lifetime_secs: u64,
    /// Background-copy poll interval, seconds.
    pub copy_poll_secs: u64,
    /// Deadline of one storage request, seconds.
    pub storage_timeout_secs: u64,
    /// At shutdown, how long storage actions under way may take to finish, seconds.
    pub shutdown_grace_secs: u64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            request_lifetime_secs: 24 * 3600,
            copy_poll_secs: 30,
            storage_timeout_secs: 30,
            shutdown_grace_secs: 10,
        }
    }
}

/// `[admin]`: the first Administrator, made when the store has no user.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Its name (at most 8 characters to log on over the CSM protocol).
    pub user: String,
    /// The environment variable holding its password.
    pub password_env: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            user: "admin".into(),
            password_env: "ZGATE_ADMIN_PASSWORD".into(),
        }
    }
}

/// Why the service did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A setting or a file it names is wrong.
    #[error("{0}")]
    Config(String),
    /// The gateway's core.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// The listener.
    #[error("CSM listener on {addr}: {source}")]
    Listen {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// The running service.
pub struct Service {
    gateway: Gateway,
    csm: CsmServer,
    rest: Option<super::rest::RestServer>,
    ha: Option<Arc<super::ha::Ha>>,
    syslog: Option<tokio::task::JoinHandle<()>>,
    /// Where a throwaway CA was written, if one was made.
    pub ca_file: Option<PathBuf>,
}

fn sealing_key(
    store: &StoreConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<SealingKey, ServeError> {
    let config = |e: crate::store::sealing::SealingError| ServeError::Config(e.to_string());
    if let Some(var) = &store.key_env {
        let text = env(var).ok_or_else(|| ServeError::Config(format!("{var} is not set")))?;
        return SealingKey::from_hex(&text).map_err(config);
    }
    let path = store
        .key_file
        .clone()
        .unwrap_or_else(|| store.dir.join("sealing.key"));
    if store.key_file.is_none() && !path.exists() {
        let key = SealingKey::generate().map_err(config)?;
        write_private(&path, key.to_hex().as_bytes())?;
        tracing::warn!(file = %path.display(), "made a new sealing key: back it up; without it the stored secrets cannot be opened");
        return Ok(key);
    }
    SealingKey::from_file(&path).map_err(config)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ServeError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |e: std::io::Error| ServeError::Config(format!("{}: {e}", path.display()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    f.write_all(bytes).map_err(fail)
}

impl Service {
    /// Starts the service: store, engine, CSM listener. `env` reads environment
    /// variables (the admin password, a sealing key); `clock` is the one clock.
    pub async fn start(
        config: &ServeConfig,
        env: &dyn Fn(&str) -> Option<String>,
        clock: Clock,
    ) -> Result<Service, ServeError> {
        std::fs::create_dir_all(&config.store.dir)
            .map_err(|e| ServeError::Config(format!("{}: {e}", config.store.dir.display())))?;
        let key = Arc::new(sealing_key(&config.store, env)?);
        let bootstrap = match env(&config.admin.password_env) {
            Some(password) => {
                let mut salt = [0u8; 16];
                getrandom::getrandom(&mut salt)
                    .map_err(|_| ServeError::Config("no randomness".into()))?;
                let hash =
                    crate::password::hash_password(&password, &salt, argon2::Params::default())
                        .map_err(|e| ServeError::Config(e.to_string()))?;
                Some((config.admin.user.clone(), hash))
            }
            None => None,
        };
        // A server that was a standby when it stopped starts as one (ha.md §1).
        let relationship = super::ha::load_relationship(&super::ha::ha_dir(&config.store.dir))
            .map_err(|e| ServeError::Config(e.to_string()))?;
        let standby_of = match (&relationship.partner, relationship.standby) {
            (Some(active), true) if config.ha.enabled => Some(active.clone()),
            _ => None,
        };
        let fence_domain = if config.ha.enabled {
            super::ha::fence_domain(&config.ha, &config.store.dir)
                .map_err(|e| ServeError::Config(format!("[ha]: {e}")))?
        } else {
            0
        };
        let gateway = Gateway::start(GatewayConfig {
            store: config.store.dir.join("zgate.redb"),
            engine: EngineConfig {
                request_lifetime_ms: config.policy.request_lifetime_secs.saturating_mul(1000),
                copy_poll_interval_ms: config.policy.copy_poll_secs.max(1).saturating_mul(1000),
                // One action may take several requests, each with its own timeout
                // and the connector's patience for a reconnect.
                storage_deadline_ms: config
                    .policy
                    .storage_timeout_secs
                    .max(1)
                    .saturating_mul(2000),
                ..EngineConfig::default()
            },
            clock,
            sealing_key: key.clone(),
            storage_timeout: Duration::from_secs(config.policy.storage_timeout_secs.max(1)),
            bootstrap_admin: bootstrap,
            shutdown_grace: Duration::from_secs(config.policy.shutdown_grace_secs),
            snapshot_every: config.store.snapshot_every,
            standby_of,
            fence_domain,
        })?;
        let handle = gateway.handle();
        let syslog = match &config.syslog {
            Some(s) => Some(
                super::syslog::spawn(s.clone(), handle.console(), clock)
                    .map_err(|e| ServeError::Config(format!("[syslog]: {e}")))?,
            ),
            None => None,
        };
        if handle.read(|e| e.state().users.is_empty()).await? {
            gateway.shutdown().await;
            return Err(ServeError::Config(format!(
                "the store has no user: set {} to the first Administrator's password",
                config.admin.password_env
            )));
        }
        let mut csm_identity = None;
        let (tls, ca_file) = match &config.csm.tls {
            Some(files) => (
                ServerTls::from_files(files).map_err(|e| ServeError::Config(e.to_string()))?,
                None,
            ),
            None => {
                // A throwaway CA made once and kept with the store, so that clients
                // trust the same CA across restarts (the key file is 0600).
                let err = |e: crate::tls::TlsError| ServeError::Config(e.to_string());
                let dir = &config.store.dir;
                let (ca, cert, key_file) = (
                    dir.join("csm-ca.pem"),
                    dir.join("csm-cert.pem"),
                    dir.join("csm-key.pem"),
                );
                if !(ca.exists() && cert.exists() && key_file.exists()) {
                    let pki = ThrowawayPki::new("zgate throwaway CA").map_err(err)?;
                    let id = pki.issue(&["localhost", "127.0.0.1"]).map_err(err)?;
                    for path in [&ca, &cert, &key_file] {
                        let _ = std::fs::remove_file(path);
                    }
                    write_private(&key_file, id.key_pem.as_bytes())?;
                    std::fs::write(&cert, &id.cert_pem)
                        .map_err(|e| ServeError::Config(format!("{}: {e}", cert.display())))?;
                    std::fs::write(&ca, &pki.ca_pem)
                        .map_err(|e| ServeError::Config(format!("{}: {e}", ca.display())))?;
                }
                // Replaceable: a standby takes its active's at pairing (ha.md §2.5).
                let read = |p: &Path| {
                    std::fs::read(p)
                        .map_err(|e| ServeError::Config(format!("{}: {e}", p.display())))
                };
                let key_pem = zeroize::Zeroizing::new(read(&key_file)?);
                let (tls, slot) = ServerTls::replaceable(&read(&cert)?, &key_pem).map_err(err)?;
                csm_identity = Some(super::ha::CsmIdentity {
                    ca: ca.clone(),
                    cert,
                    key: key_file,
                    slot,
                });
                (tls, Some(ca))
            }
        };
        let key_for_ha = key.clone();
        let listen = ListenConfig {
            listen: config.csm.listen,
            max_body: config.csm.max_body,
            max_connections: config.csm.max_connections,
            tls: Some(tls),
            clock,
            limits: config.csm.limits.clone(),
        };
        let csm_tls = listen.tls.clone();
        let csm = match CsmServer::start(&listen, handle.clone(), key.clone()).await {
            Ok(s) => s,
            Err(source) => {
                gateway.shutdown().await;
                return Err(ServeError::Listen {
                    addr: config.csm.listen,
                    source,
                });
            }
        };
        let rest = if config.rest.enabled {
            let tls = match (&config.rest.tls, csm_tls) {
                (Some(files), _) => {
                    ServerTls::from_files(files).map_err(|e| ServeError::Config(e.to_string()))?
                }
                (None, Some(tls)) => tls,
                (None, None) => return Err(ServeError::Config("[rest] needs TLS".into())),
            };
            let settings = super::rest::RestSettings {
                listen: config.rest.listen,
                max_connections: config.rest.max_connections,
                max_connections_per_address: config.rest.max_connections_per_address,
                token_lifetime: Duration::from_secs(config.rest.token_lifetime_secs.max(1)),
            };
            match super::rest::RestServer::start(&settings, tls, handle, key.clone()).await {
                Ok(r) => Some(r),
                Err(source) => {
                    csm.shutdown().await;
                    gateway.shutdown().await;
                    return Err(ServeError::Listen {
                        addr: config.rest.listen,
                        source,
                    });
                }
            }
        } else {
            None
        };
        let ha = if config.ha.enabled {
            let handle = gateway.handle();
            match super::ha::Ha::start(
                config.ha.clone(),
                &config.store.dir,
                handle.clone(),
                key_for_ha,
                clock,
                csm_identity,
            )
            .await
            {
                Ok(part) => {
                    let part = Arc::new(part);
                    handle.set_ha(&part);
                    Some(part)
                }
                Err(e) => {
                    if let Some(rest) = rest {
                        rest.shutdown().await;
                    }
                    csm.shutdown().await;
                    gateway.shutdown().await;
                    return Err(ServeError::Config(format!("[ha]: {e}")));
                }
            }
        } else {
            None
        };
        Ok(Service {
            gateway,
            csm,
            rest,
            ha,
            syslog,
            ca_file,
        })
    }

    /// The CSM listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.csm.addr()
    }

    /// The REST listener's address, when it runs.
    pub fn rest_addr(&self) -> Option<SocketAddr> {
        self.rest.as_ref().map(super::rest::RestServer::addr)
    }

    /// The HA listener's address, when it runs.
    pub fn ha_addr(&self) -> Option<SocketAddr> {
        self.ha.as_ref().map(|h| h.addr())
    }

    /// The HA part, when it runs.
    pub fn ha(&self) -> Option<Arc<super::ha::Ha>> {
        self.ha.clone()
    }

    /// The gateway's handle.
    pub fn gateway(&self) -> GatewayHandle {
        self.gateway.handle()
    }

    /// Stops gracefully (configuration.md §7): the listener answers what it took and
    /// closes, the engine finishes the storage work under way within its grace (what
    /// is left resumes at the next start), the syslog sender writes what it holds.
    pub async fn shutdown(self) {
        if let Some(ha) = &self.ha {
            ha.shutdown().await;
        }
        if let Some(rest) = self.rest {
            rest.shutdown().await;
        }
        self.csm.shutdown().await;
        self.gateway.shutdown().await;
        if let Some(s) = self.syslog {
            // The engine's task is gone, so the console closes and the sender ends
            // once its queue is written (or at once if the server is unreachable).
            let _ = tokio::time::timeout(Duration::from_secs(5), s).await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_default_is_loopback_9560_and_unknown_keys_are_named() {
        let c: ServeConfig = toml::from_str("").unwrap();
        assert_eq!(c.csm.listen, SocketAddr::from(([127, 0, 0, 1], 9560)));
        assert_eq!(c.store.dir, PathBuf::from("zgate-data"));
        let err = toml::from_str::<ServeConfig>("[csm]\nlisten = \"127.0.0.1:1\"\nlisen = 2\n")
            .unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
        let err = toml::from_str::<ServeConfig>("[polcy]\n").unwrap_err();
        assert!(err.to_string().contains("polcy"), "{err}");
        let c: ServeConfig = toml::from_str(
            "[policy]\ncopy_poll_secs = 5\n[store]\ndir = \"/tmp/x\"\nkey_env = \"K\"\n[admin]\nuser = \"root\"\n",
        )
        .unwrap();
        assert_eq!(c.policy.copy_poll_secs, 5);
        assert_eq!(c.store.key_env.as_deref(), Some("K"));
        assert_eq!(c.admin.user, "root");
    }
}
