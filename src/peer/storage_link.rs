//! The emulated hosts' path to the simulated DS8000: a DS8000 connector (password
//! logon to the HMC) and the [`Forwarder`]s that turn a z/OS or z/TPF FLASH or
//! SGC_BACKUP into DS8000 requests (spec: zos-hyperswap.md §3.8–3.9, ztpf.md §3.4–3.5,
//! ds8k.md §3).
//!
//! A host FLASH is one `mkflash` (one consistency group); if a pair is already an
//! incremental relationship and the host asks for incremental, it is refreshed with
//! `resyncflash`, as a re-flash of an incremental session is. A host SGC_BACKUP is one
//! Safeguarded Copy backup across its volumes.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::server::Forwarder;
use crate::client::ds8k::{self, Authentication, Ds8kConnectorConfig, Ds8kHandle, RequestError};
use crate::clock::Clock;
use crate::ds8k::{Ds8kReason, Fence, PairKey, StorageImageId, VolumeId};
use crate::proto::ds8k::Ds8kBody;
use crate::proto::logon::Credential;
use crate::proto::zos::{Zos, ZosBody, ZosReason};
use crate::proto::ztpf::{Ztpf, ZtpfBody, ZtpfReason};
use crate::proto::{HostFlashOptions, ReplyStatus, ReturnCode, VolumePair, VolumeRef};
use crate::tls::{ClientTls, ClientTlsFiles};

/// `[storage]` in a z/OS or z/TPF peer configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageLinkConfig {
    /// The DS8000 service's address.
    pub addr: SocketAddr,
    /// Its storage image id (VOLREFs with another serial are unknown volumes).
    pub image: String,
    /// HMC user.
    pub user: String,
    /// Environment variable holding the HMC password (never the file).
    pub password_env: String,
    /// TLS to the DS8000 service.
    #[serde(default)]
    pub tls: Option<ClientTlsFiles>,
    /// Deadline for each storage request, seconds.
    #[serde(default = "default_timeout")]
    pub request_timeout_secs: u64,
}

fn default_timeout() -> u64 {
    30
}

/// Why a storage operation did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// The DS8000 refused it, with its reason.
    Refused(Ds8kReason),
    /// The DS8000 could not be reached (or did not answer in time).
    Unavailable,
}

/// How long the host held its applications' I/O to the sources of each consistency
/// group it flashed, newest last (at most [`IO_HOLDS_KEPT`]). A host forms the group
/// by holding I/O to the sources itself (IOS, no box freeze) while its one `mkflash`
/// is at the box: from the request's start to the box's reply.
pub type IoHolds = Arc<std::sync::Mutex<std::collections::VecDeque<Duration>>>;

/// Events a slow watcher may fall behind by (a freeze of 4,096 pairs reports one
/// suspension each).
pub const EVENTS_KEPT: usize = 8192;

/// Holds kept in [`IoHolds`].
pub const IO_HOLDS_KEPT: usize = 1024;

/// A logged-on connection to the simulated DS8000, shared by a peer's connections.
#[derive(Clone)]
pub struct StorageLink {
    handle: Arc<Ds8kHandle>,
    /// The box's events, for whoever watches (HyperSwap's freeze trigger).
    events: tokio::sync::broadcast::Sender<Ds8kBody>,
    serial: String,
    timeout: Duration,
    clock: Clock,
    holds: IoHolds,
}

impl StorageLink {
    /// Starts the connector; the password is read from `password_env` in `env`.
    pub fn start(
        cfg: &StorageLinkConfig,
        env: impl Fn(&str) -> Option<String>,
        clock: Clock,
    ) -> Result<StorageLink, crate::Error> {
        let image = StorageImageId::parse(&cfg.image)
            .map_err(|e| crate::Error::Config(format!("storage.image: {e}")))?;
        let password = env(&cfg.password_env)
            .and_then(|p| Credential::new(&p))
            .ok_or_else(|| {
                crate::Error::Config(format!(
                    "storage: environment variable {} (the HMC password) is not set or not 1-100 characters",
                    cfg.password_env
                ))
            })?;
        let kind_auth = if password.expose().chars().count() > 8 {
            Authentication::Passphrase(password)
        } else {
            Authentication::Password(password)
        };
        let mut c = Ds8kConnectorConfig::new(cfg.addr);
        c.user = cfg.user.clone();
        c.appl = "HMC".into();
        c.request_timeout = Duration::from_secs(cfg.request_timeout_secs.max(1));
        c.tls = cfg.tls.as_ref().map(ClientTls::from_files).transpose()?;
        c.clock = clock;
        let mut handle =
            ds8k::spawn(c, kind_auth).map_err(|e| crate::Error::Config(e.to_string()))?;
        // The DS8000's events (copy complete, roll-off, ...) are for the manager; the
        // host only logs them, but must read them so that the connector never waits.
        let mut events = handle.take_events();
        let (watchers, _) = tokio::sync::broadcast::channel(EVENTS_KEPT);
        let to_watchers = watchers.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    ds8k::ConnectorEvent::Event(body) => {
                        tracing::debug!(event = body.name(), "storage event");
                        // Nobody watching, or a watcher behind: it is told it lagged.
                        let _ = to_watchers.send(body);
                    }
                    ds8k::ConnectorEvent::Connected {
                        system, attempt, ..
                    } => tracing::info!(%system, attempt, "storage link: logged on to the DS8000"),
                    ds8k::ConnectorEvent::Disconnected { reason } => {
                        tracing::warn!(?reason, "storage link: connection to the DS8000 lost")
                    }
                    ds8k::ConnectorEvent::GaveUp { status, .. } => tracing::error!(
                        reason = status.reason,
                        "storage link: the DS8000 refused the logon; giving up"
                    ),
                }
            }
        });
        Ok(StorageLink {
            handle: Arc::new(handle),
            serial: image.serial().to_string(),
            timeout: Duration::from_secs(cfg.request_timeout_secs.max(1)),
            clock,
            holds: IoHolds::default(),
            events: watchers,
        })
    }

    /// The box's events from now on (a receiver that falls behind by more than
    /// [`EVENTS_KEPT`] is told how many it missed).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Ds8kBody> {
        self.events.subscribe()
    }

    /// The host's I/O holds, one per consistency-group flash (for benchmarks).
    pub fn io_holds(&self) -> IoHolds {
        self.holds.clone()
    }

    /// The storage image's serial.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// One request; while the connector is (re)connecting the request waits, up to
    /// the request deadline, rather than failing at once.
    pub(crate) async fn call(&self, body: Ds8kBody) -> Result<Ds8kBody, LinkError> {
        let deadline = self.clock.tokio_now() + self.timeout;
        let reply = loop {
            let attempt = tokio::time::timeout_at(deadline, self.handle.request(body.clone()));
            match attempt.await {
                Ok(Ok(reply)) => break reply,
                Ok(Err(RequestError::NotConnected)) if self.clock.tokio_now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                // Refused by the connector, or no answer by the deadline.
                Ok(Err(_)) | Err(_) => return Err(LinkError::Unavailable),
            }
        };
        match reply.status() {
            Some(s) if s.rc == ReturnCode::OK => Ok(reply),
            Some(s) if s.rc == ReturnCode::REFUSED => Err(LinkError::Refused(Ds8kReason(s.reason))),
            _ => Err(LinkError::Unavailable),
        }
    }

    /// One consistency-group flash of host pairs with host (z/OS bit) options.
    /// Returns the pairs established.
    pub async fn flash(
        &self,
        options: HostFlashOptions,
        pairs: &[VolumePair],
    ) -> Result<u16, LinkError> {
        let held_from = self.clock.tokio_now();
        let reply = match self
            .call(flash_request(&self.serial, options, pairs, false)?)
            .await
        {
            Err(LinkError::Refused(Ds8kReason::RELATIONSHIP_EXISTS))
                if options.has(HostFlashOptions::INCREMENTAL) =>
            {
                self.call(flash_request(&self.serial, options, pairs, true)?)
                    .await
            }
            other => other,
        };
        let held = self.clock.tokio_now() - held_from;
        if let Ok(mut holds) = self.holds.lock() {
            if holds.len() == IO_HOLDS_KEPT {
                holds.pop_front();
            }
            holds.push_back(held);
        }
        match reply? {
            Ds8kBody::FlashReply { pair_count, .. } => Ok(pair_count),
            _ => Err(LinkError::Unavailable),
        }
    }

    /// One Safeguarded Copy backup of host volumes: `(backup id, time in seconds)`.
    pub async fn backup(&self, volumes: &[VolumeRef]) -> Result<(u64, u64), LinkError> {
        let body = backup_request(&self.serial, volumes)?;
        match self.call(body).await? {
            Ds8kBody::BackupReply {
                backup_id, time_ms, ..
            } => Ok((backup_id, time_ms / 1000)),
            _ => Err(LinkError::Unavailable),
        }
    }
}

/// The DS8000 volume a host VOLREF names on the box with `serial`; another serial is
/// an unknown volume, refused before anything is sent (zos-hyperswap.md §3.8).
fn volume_on(serial: &str, v: &VolumeRef) -> Result<VolumeId, LinkError> {
    if v.storage.as_str() == serial {
        Ok(VolumeId(v.volume))
    } else {
        Err(LinkError::Refused(Ds8kReason::UNKNOWN_VOLUME))
    }
}

/// The DS8000 request a host FLASH becomes: one MKFLASH (or RESYNCFLASH) of all the
/// pairs, the host option bits mapped by [`HostFlashOptions::to_storage`]
/// (zos-hyperswap.md §3.8, ds8k.md §4.5).
pub fn flash_request(
    serial: &str,
    options: HostFlashOptions,
    pairs: &[VolumePair],
    resync: bool,
) -> Result<Ds8kBody, LinkError> {
    let pairs = pairs
        .iter()
        .map(|p| {
            Ok(PairKey {
                source: volume_on(serial, &p.first)?,
                target: volume_on(serial, &p.second)?,
            })
        })
        .collect::<Result<Vec<_>, LinkError>>()?;
    Ok(Ds8kBody::FlashRequest {
        // A host is in no fence domain (ds8k.md §3.4).
        fence: Fence::NONE,
        resync,
        options: options.to_storage(),
        sequence: 0,
        not_after_ms: 0,
        pairs,
    })
}

/// The DS8000 request a host SGC_BACKUP becomes: one SGC_BACKUP of the volumes
/// (zos-hyperswap.md §3.9, ds8k.md §4.6).
pub fn backup_request(serial: &str, volumes: &[VolumeRef]) -> Result<Ds8kBody, LinkError> {
    let volumes = volumes
        .iter()
        .map(|v| volume_on(serial, v))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Ds8kBody::BackupRequest {
        fence: Fence::NONE,
        tag: 0,
        not_after_ms: 0,
        volumes,
    })
}

/// The z/OS reply status for a storage outcome (zos-hyperswap.md §5).
fn zos_status(e: LinkError) -> ReplyStatus {
    match e {
        LinkError::Refused(Ds8kReason::UNKNOWN_VOLUME) => {
            ReplyStatus::new(ReturnCode::REFUSED, ZosReason::UNKNOWN_VOLUME.0)
        }
        LinkError::Refused(_) => {
            ReplyStatus::new(ReturnCode::REFUSED, ZosReason::STORAGE_REFUSED.0)
        }
        LinkError::Unavailable => {
            ReplyStatus::new(ReturnCode::FAILED, ZosReason::STORAGE_UNAVAILABLE.0)
        }
    }
}

/// The z/TPF reply status for a storage outcome (ztpf.md §5).
fn ztpf_status(e: LinkError) -> ReplyStatus {
    match e {
        LinkError::Refused(_) => {
            ReplyStatus::new(ReturnCode::REFUSED, ZtpfReason::STORAGE_REFUSED.0)
        }
        LinkError::Unavailable => {
            ReplyStatus::new(ReturnCode::FAILED, ZtpfReason::STORAGE_UNAVAILABLE.0)
        }
    }
}

/// Forwards z/OS FLASH and SGC_BACKUP to the DS8000.
pub struct ZosStorage(pub StorageLink);

impl Forwarder<Zos> for ZosStorage {
    fn forward(
        &self,
        _user: &str,
        request: ZosBody,
    ) -> Pin<Box<dyn Future<Output = Result<ZosBody, ReplyStatus>> + Send>> {
        let link = self.0.clone();
        Box::pin(async move {
            match request {
                ZosBody::FlashRequest { options, pairs } => {
                    let pair_count = link.flash(options, &pairs).await.map_err(zos_status)?;
                    Ok(ZosBody::FlashReply {
                        status: ReplyStatus::OK,
                        flash_time: link.clock.unix_secs(),
                        pair_count,
                    })
                }
                ZosBody::BackupRequest { volumes } => {
                    let (backup_id, backup_time) =
                        link.backup(&volumes).await.map_err(zos_status)?;
                    Ok(ZosBody::BackupReply {
                        status: ReplyStatus::OK,
                        backup_id,
                        backup_time,
                    })
                }
                _ => Err(zos_status(LinkError::Unavailable)),
            }
        })
    }
}

/// Forwards z/TPF FLASH and SGC_BACKUP to the DS8000.
pub struct ZtpfStorage(pub StorageLink);

impl Forwarder<Ztpf> for ZtpfStorage {
    fn forward(
        &self,
        _user: &str,
        request: ZtpfBody,
    ) -> Pin<Box<dyn Future<Output = Result<ZtpfBody, ReplyStatus>> + Send>> {
        let link = self.0.clone();
        Box::pin(async move {
            match request {
                ZtpfBody::FlashRequest { options, pairs } => {
                    let pair_count = link.flash(options, &pairs).await.map_err(ztpf_status)?;
                    Ok(ZtpfBody::FlashReply {
                        status: ReplyStatus::OK,
                        flash_time: link.clock.unix_secs(),
                        pair_count,
                    })
                }
                ZtpfBody::BackupRequest { volumes } => {
                    let (backup_id, backup_time) =
                        link.backup(&volumes).await.map_err(ztpf_status)?;
                    Ok(ZtpfBody::BackupReply {
                        status: ReplyStatus::OK,
                        backup_id,
                        backup_time,
                    })
                }
                _ => Err(ztpf_status(LinkError::Unavailable)),
            }
        })
    }
}
