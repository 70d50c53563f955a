//! Active/standby (`protocol-specs/ha.md`): the HA listener (CSM's port 9561), the
//! standby's follower, pairing, takeover, fencing by epochs, and the status every
//! door reports. The record stream is the store's (store.md §6): a standby stores
//! the active's records byte for byte, with their sequence numbers and epochs, and
//! acknowledges each batch once it is durable; in synchronous mode the active
//! answers nothing before that acknowledgement (`HaGate`).
//!
//! Roles live in the engine's task ([`super::ServerRole`]); this module owns the
//! link, the relationship file (`<store dir>/ha/relationship.json`) and the pair's
//! TLS identity (`<store dir>/ha/pair-*.pem`).

mod active;
pub mod link;
mod standby;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::{GatewayError, GatewayHandle, ServerRole};
use crate::clock::Clock;
use crate::policy::console::{ConsoleMessage, MessageId, ids};
use crate::store::sealing::SealingKey;
use link::PairIdentity;

/// CSM's HA port.
pub const HA_PORT: u16 = 9561;

/// `[ha]` (configuration.md §7).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HaConfig {
    /// Run the HA listener at all.
    pub enabled: bool,
    /// Listen address (CSM's 9561 on loopback by default).
    pub listen: SocketAddr,
    /// The name the partner dials to reach this server (`host:port`); default the
    /// listen address.
    pub advertise: Option<String>,
    /// When a change is answered: `sync` (once the standby has it durably) or
    /// `async` (once it is durable here).
    pub ack: AckMode,
    /// How often each side sends a HEARTBEAT, ms.
    pub heartbeat_ms: u64,
    /// Silence after which the link is declared down, ms (and, in synchronous mode,
    /// the active answers without the standby).
    pub dead_after_ms: u64,
    /// The pair's TLS identity from files instead of pairing's (ha.md §2.1).
    pub tls: Option<PairTlsFiles>,
}

impl Default for HaConfig {
    fn default() -> Self {
        HaConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], HA_PORT)),
            advertise: None,
            ack: AckMode::Sync,
            heartbeat_ms: 1000,
            dead_after_ms: 5000,
            tls: None,
        }
    }
}

/// `[ha.tls]`: the pair's certificates, made by the operator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairTlsFiles {
    /// This server's certificate, PEM.
    pub cert: PathBuf,
    /// Its key, PEM (owner-only).
    pub key: PathBuf,
    /// The CA both servers' certificates chain to.
    pub ca: PathBuf,
}

/// When the active answers a change (ha.md §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckMode {
    /// Once the standby has stored it (while the standby is synchronised).
    Sync,
    /// Once it is stored here.
    Async,
}

impl AckMode {
    /// Its name in the configuration and the status.
    pub fn name(self) -> &'static str {
        match self {
            AckMode::Sync => "sync",
            AckMode::Async => "async",
        }
    }
}

/// The link as the status shows it (ha.md §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LinkState {
    /// No relationship.
    #[serde(rename = "No standby")]
    Alone,
    /// Dialling or answering the partner.
    #[serde(rename = "Connecting")]
    Connecting,
    /// Connected; the standby does not hold everything yet.
    #[serde(rename = "Catching up")]
    CatchingUp,
    /// The standby holds everything the active has stored.
    #[serde(rename = "Synchronized")]
    Synchronized,
    /// Not connected.
    #[serde(rename = "Disconnected")]
    Disconnected,
}

/// Why an HA operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum HaError {
    /// Not possible now, or not allowed; the text says why.
    #[error("{0}")]
    Refused(String),
    /// The link failed.
    #[error("{0}")]
    Link(String),
    /// The gateway's core.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
}

/// The CSM listener's certificate when zgate made it (the throwaway CA kept with the
/// store): the files, and the slot the running listeners read it from. Pairing
/// gives the standby the active's, so that clients trust the new active after a
/// takeover (ha.md §2.5).
#[derive(Debug, Clone)]
pub struct CsmIdentity {
    /// The CA clients trust, PEM file.
    pub ca: PathBuf,
    /// The certificate, PEM file.
    pub cert: PathBuf,
    /// Its key, PEM file (owner-only).
    pub key: PathBuf,
    /// What the CSM and REST listeners present.
    pub slot: crate::tls::CertSlot,
}

/// The relationship, as kept across restarts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Relationship {
    /// The other server (`host:port`), if any.
    pub partner: Option<String>,
    /// This server is the standby.
    pub standby: bool,
    /// The standby's next FOLLOW asks for a full copy (after pairing, or after a
    /// record it refused).
    #[serde(default)]
    pub full_copy: bool,
    /// Servers removed from the relationship: their FOLLOW is refused until they
    /// are named again.
    #[serde(default)]
    pub removed: Vec<String>,
}

const RELATIONSHIP_FILE: &str = "relationship.json";

/// What the status reports (ha.md §9), for `server.status`, `/system/ha` and
/// `zgate csm ha status`.
#[derive(Debug, Clone, Serialize)]
pub struct HaStatus {
    /// `ACTIVE` or `STANDBY`.
    pub role: &'static str,
    /// This server's HA name.
    pub local: String,
    /// The listener's port.
    pub port: u16,
    /// The partner, if any.
    pub partner: Option<String>,
    /// The active this standby follows (when a standby).
    pub active: Option<String>,
    /// The link.
    pub link: LinkState,
    /// The last link failure, until it is up again.
    pub last_error: Option<String>,
    /// `sync` or `async`.
    pub ack: AckMode,
    /// The epoch this server is in (ha.md §7).
    pub epoch: u64,
    /// The last record stored here.
    pub last_seq: u64,
    /// On the active: the last record the standby acknowledged.
    pub acked_seq: u64,
    /// On the active: records stored here and not yet on the standby.
    pub lag_records: u64,
    /// On the active: how long the oldest of them has waited, ms.
    pub lag_ms: u64,
}

/// The link's state, as the two tasks update it.
#[derive(Debug)]
struct LinkInfo {
    state: LinkState,
    last_error: Option<String>,
    /// When the standby's acknowledgement first fell behind, if it is behind.
    behind_since: Option<tokio::time::Instant>,
}

struct Shared {
    gateway: GatewayHandle,
    key: Arc<SealingKey>,
    dir: PathBuf,
    config: HaConfig,
    local: String,
    port: u16,
    clock: Clock,
    relationship: Mutex<Relationship>,
    link: Mutex<LinkInfo>,
    /// The listener's TLS now (replaced at pairing).
    tls: Mutex<crate::tls::ServerTls>,
    /// The pair's identity, once there is one.
    identity: Mutex<Option<PairIdentity>>,
    /// Stops everything.
    cancel: CancellationToken,
    tracker: TaskTracker,
    /// The follower (on a standby), or the stream to the standby (on the active).
    follower: Mutex<Option<CancellationToken>>,
    stream: Mutex<Option<CancellationToken>>,
    /// Wakes the follower or the prober at once (`reconnect`).
    wake: Notify,
    /// The CSM listener's certificate, when zgate made it.
    csm: Option<CsmIdentity>,
}

/// The running HA part of a server.
pub struct Ha {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl std::fmt::Debug for Ha {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ha")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// The relationship file's directory under the store's.
pub fn ha_dir(store_dir: &std::path::Path) -> PathBuf {
    store_dir.join("ha")
}

/// The fence domain a server starting with this configuration and store carries
/// (ds8k.md §3.4): its pair's while it has a partner, else none (0).
pub fn fence_domain(config: &HaConfig, store_dir: &std::path::Path) -> Result<u64, HaError> {
    let dir = ha_dir(store_dir);
    if load_relationship(&dir)?.partner.is_none() {
        return Ok(0);
    }
    let identity = match &config.tls {
        Some(files) => Some(PairIdentity::from_files(files)?),
        None => PairIdentity::load(&dir)?,
    };
    identity.map_or(Ok(0), |i| i.fence_domain())
}

/// Reads the relationship kept in `dir` (none when there is no file).
pub fn load_relationship(dir: &std::path::Path) -> Result<Relationship, HaError> {
    let path = dir.join(RELATIONSHIP_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| HaError::Refused(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Relationship::default()),
        Err(e) => Err(HaError::Refused(format!("{}: {e}", path.display()))),
    }
}

impl Shared {
    fn set_relationship(&self, change: impl FnOnce(&mut Relationship)) -> Result<(), HaError> {
        let mut rel = self
            .relationship
            .lock()
            .map_err(|_| HaError::Refused("relationship lock poisoned".into()))?;
        let mut next = rel.clone();
        change(&mut next);
        let bytes = serde_json::to_vec_pretty(&next).unwrap_or_default();
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| HaError::Refused(format!("{}: {e}", self.dir.display())))?;
        link::write_atomic(&self.dir.join(RELATIONSHIP_FILE), &bytes, false)?;
        *rel = next;
        drop(rel);
        self.refresh_fence();
        Ok(())
    }

    /// Sets the fence domain this server's storage requests carry: the pair's
    /// while there is a partner, none when alone (ds8k.md §3.4).
    fn refresh_fence(&self) {
        let paired = self.relationship().partner.is_some();
        let domain = match self.identity() {
            Some(identity) if paired => identity.fence_domain().unwrap_or_else(|e| {
                warn!(error = %e, "ha: the pair's CA certificate gives no fence domain");
                0
            }),
            _ => 0,
        };
        self.gateway
            .ha_gate()
            .fence
            .send_if_modified(|f| std::mem::replace(&mut f.domain, domain) != domain);
    }

    fn relationship(&self) -> Relationship {
        self.relationship
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    fn set_link(&self, state: LinkState, error: Option<String>) {
        if let Ok(mut link) = self.link.lock() {
            link.state = state;
            if error.is_some() || matches!(state, LinkState::Synchronized | LinkState::Alone) {
                link.last_error = error;
            }
            if !matches!(state, LinkState::CatchingUp | LinkState::Synchronized) {
                link.behind_since = None;
            }
        }
    }

    fn link_state(&self) -> LinkState {
        self.link
            .lock()
            .map(|l| l.state)
            .unwrap_or(LinkState::Disconnected)
    }

    /// A console message of the HA part (ha.md §9): also to syslog.
    fn announce(&self, id: MessageId, text: String, inserts: Vec<String>) {
        let message = ConsoleMessage::new(id, self.clock.unix_millis(), None, text, inserts);
        self.gateway.announce(message);
    }

    /// This server's epoch, last record and that record's epoch.
    fn position(&self) -> Result<(u64, u64, u64), HaError> {
        let reader = self.gateway.stream().ok_or(GatewayError::Stopped)?;
        let store = |e: crate::store::StoreError| HaError::Link(e.to_string());
        let epochs = reader.epochs().map_err(store)?;
        let epoch = epochs.last().map_or(0, |(e, _)| *e);
        let last = reader.last_seq().map_err(store)?;
        let last_epoch = reader.epoch_at(last).map_err(store)?.unwrap_or(0);
        Ok((epoch, last, last_epoch))
    }

    fn identity(&self) -> Option<PairIdentity> {
        self.identity.lock().ok().and_then(|i| i.clone())
    }

    /// Takes `identity` as the pair's: kept on disk (unless the configuration gives
    /// one) and used by the listener from its next handshake on.
    fn adopt_identity(&self, identity: PairIdentity) -> Result<(), HaError> {
        if self.config.tls.is_some() {
            info!("ha: the configuration's pair certificates are kept; the pairing's are not used");
            return Ok(());
        }
        identity.save(&self.dir)?;
        let tls = identity.listener()?;
        if let Ok(mut current) = self.tls.lock() {
            *current = tls;
        }
        if let Ok(mut slot) = self.identity.lock() {
            *slot = Some(identity);
        }
        self.refresh_fence();
        Ok(())
    }

    fn status(&self) -> HaStatus {
        let role = self.gateway.role();
        let rel = self.relationship();
        let (epoch, last_seq, _) = self.position().unwrap_or_default();
        let gate = self.gateway.ha_gate();
        let acked = *gate.acked.borrow();
        let (state, last_error, behind) = self
            .link
            .lock()
            .map(|l| (l.state, l.last_error.clone(), l.behind_since))
            .unwrap_or((LinkState::Disconnected, None, None));
        let (role_name, active) = match role {
            ServerRole::Active => ("ACTIVE", None),
            ServerRole::Standby { active } => ("STANDBY", Some(active)),
        };
        let on_active = role_name == "ACTIVE" && rel.partner.is_some();
        HaStatus {
            role: role_name,
            local: self.local.clone(),
            port: self.port,
            partner: rel.partner,
            active,
            link: state,
            last_error,
            ack: self.config.ack,
            epoch,
            last_seq,
            acked_seq: if on_active { acked } else { 0 },
            lag_records: if on_active {
                last_seq.saturating_sub(acked)
            } else {
                0
            },
            lag_ms: match behind {
                Some(since) if on_active => self
                    .clock
                    .tokio_now()
                    .saturating_duration_since(since)
                    .as_millis() as u64,
                _ => 0,
            },
        }
    }
}

impl Ha {
    /// Starts the HA part: the listener, and the follower (on a standby) or the
    /// prober (on an active with a partner; ha.md §7).
    pub async fn start(
        config: HaConfig,
        store_dir: &std::path::Path,
        gateway: GatewayHandle,
        key: Arc<SealingKey>,
        clock: Clock,
        csm: Option<CsmIdentity>,
    ) -> Result<Ha, HaError> {
        let dir = ha_dir(store_dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| HaError::Refused(format!("{}: {e}", dir.display())))?;
        let relationship = load_relationship(&dir)?;
        let identity = match &config.tls {
            Some(files) => Some(PairIdentity::from_files(files)?),
            None => PairIdentity::load(&dir)?,
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| HaError::Refused(format!("HA listener on {}: {e}", config.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| HaError::Refused(format!("HA listener: {e}")))?;
        let local = config.advertise.clone().unwrap_or_else(|| addr.to_string());
        let tls = match &identity {
            Some(id) => id.listener()?,
            None => {
                // Before pairing the listener shows a certificate of its own, made
                // now and not kept: PAIR does not verify it (ha.md §2.2).
                let pki = crate::tls::ThrowawayPki::new("zgate HA listener")
                    .map_err(|e| HaError::Refused(e.to_string()))?;
                let host = link::host_of(&local);
                let id = pki
                    .issue(&[host.as_str(), "localhost", "127.0.0.1"])
                    .map_err(|e| HaError::Refused(e.to_string()))?;
                crate::tls::pair_listener(id.cert_pem.as_bytes(), id.key_pem.as_bytes(), None)
                    .map_err(|e| HaError::Refused(e.to_string()))?
            }
        };
        let link_state = if relationship.partner.is_some() {
            LinkState::Disconnected
        } else {
            LinkState::Alone
        };
        let shared = Arc::new(Shared {
            gateway,
            key,
            dir,
            port: addr.port(),
            local,
            clock,
            relationship: Mutex::new(relationship.clone()),
            link: Mutex::new(LinkInfo {
                state: link_state,
                last_error: None,
                behind_since: None,
            }),
            tls: Mutex::new(tls),
            identity: Mutex::new(identity),
            cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
            follower: Mutex::new(None),
            stream: Mutex::new(None),
            wake: Notify::new(),
            csm,
            config,
        });
        shared
            .tracker
            .spawn(active::listen(shared.clone(), listener));
        if relationship.standby && relationship.partner.is_some() {
            standby::start_follower(&shared);
        }
        shared.tracker.spawn(active::probe(shared.clone()));
        shared.tracker.spawn(active::heed_the_box(shared.clone()));
        shared.refresh_fence();
        info!(%addr, name = %shared.local, "ha: listening");
        Ok(Ha { shared, addr })
    }

    /// The listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The status (ha.md §9).
    pub fn status(&self) -> HaStatus {
        self.shared.status()
    }

    /// On the active: makes `server` (`host:port`) its standby, authenticated by an
    /// Administrator of that server (ha.md §4.1). The standby's data is replaced by
    /// a full copy of this server's.
    pub async fn set_standby(
        &self,
        server: &str,
        user: &str,
        password: &str,
    ) -> Result<String, HaError> {
        active::pair_with(&self.shared, server, user, password).await
    }

    /// On a server that is to be the standby of `active_server` (ha.md §4.2): needs
    /// the pair's certificates already (from `[ha.tls]` or an earlier pairing).
    pub async fn set_as_standby(&self, active_server: &str) -> Result<String, HaError> {
        standby::become_standby_of(&self.shared, active_server).await
    }

    /// On the standby: becomes the active in a new epoch (ha.md §6).
    pub async fn takeover(&self) -> Result<String, HaError> {
        standby::take_over(&self.shared).await
    }

    /// Restores the link now (ha.md §4.4): a standby dials its active, an active
    /// probes its partner.
    pub async fn reconnect(&self) -> Result<String, HaError> {
        let rel = self.shared.relationship();
        let Some(partner) = rel.partner else {
            return Err(HaError::Refused(
                "this server has no active/standby relationship".into(),
            ));
        };
        if matches!(self.shared.gateway.role(), ServerRole::Standby { .. }) {
            standby::start_follower(&self.shared);
        }
        self.shared.wake.notify_waiters();
        Ok(format!("Reconnecting to {partner}."))
    }

    /// Removes `server` from this server's relationship (ha.md §4.5). A standby
    /// that removes its active becomes an active of its own, in a new epoch.
    pub async fn remove(&self, server: &str) -> Result<String, HaError> {
        let shared = &self.shared;
        let rel = shared.relationship();
        let Some(partner) = rel.partner.clone() else {
            return Err(HaError::Refused(
                "this server has no active/standby relationship".into(),
            ));
        };
        if !same_server(&partner, server) {
            return Err(HaError::Refused(format!(
                "{server} is not in a relationship with this server (its partner is {partner})"
            )));
        }
        if let ServerRole::Standby { .. } = shared.gateway.role() {
            standby::stop_follower(shared);
            shared.gateway.take_over().await?;
        }
        if let Some(stream) = shared.stream.lock().ok().and_then(|mut s| s.take()) {
            stream.cancel();
        }
        shared.gateway.ha_gate().sync.send_replace(false);
        shared.set_relationship(|r| {
            r.partner = None;
            r.standby = false;
            r.full_copy = false;
            if !r.removed.iter().any(|n| same_server(n, &partner)) {
                r.removed.push(partner.clone());
            }
        })?;
        shared.set_link(LinkState::Alone, None);
        let text = format!("The active/standby relationship with {partner} was removed.");
        shared.announce(ids::HA_REMOVED, text.clone(), vec![partner]);
        Ok(text)
    }

    /// Stops the listener and the link.
    pub async fn shutdown(&self) {
        self.shared.cancel.cancel();
        self.shared.tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.shared.tracker.wait()).await;
    }
}

/// Whether two names are the same server (`host` means `host:9561`).
pub fn same_server(a: &str, b: &str) -> bool {
    link::with_port(a, None).eq_ignore_ascii_case(&link::with_port(b, None))
}

/// Logs and announces a lost link once per loss.
fn lost(shared: &Shared, partner: &str, why: &str) {
    let was = shared.link_state();
    shared.set_link(LinkState::Disconnected, Some(why.to_owned()));
    if matches!(was, LinkState::CatchingUp | LinkState::Synchronized) {
        warn!(partner, why, "ha: link lost");
        shared.announce(
            ids::HA_DISCONNECTED,
            format!("The active/standby connection with {partner} was lost: {why}."),
            vec![partner.to_owned(), why.to_owned()],
        );
    }
}
