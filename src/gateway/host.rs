//! The host path (`protocol-specs/policy.md` §5.4): a session whose properties name
//! a z/OS or z/TPF system sends its `Flash` and `Backup` through that system's
//! connection (the system issues them to its attached DS8000), as CSM 6.3.7 does;
//! every other operation (queries, withdraw, expire, recover, restore) goes to the
//! HMC. Connectors log on with the connection's credential: a fresh PassTicket at
//! every logon (legacy DES for a 16-hex-digit key, enhanced HMAC-SHA-512 for a
//! longer one), or a password or passphrase.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use crate::client::connector::{Authentication, ConnectorConfig, ConnectorHandle};
use crate::clock::Clock;
use crate::codec::fields::Ebcdic;
use crate::ds8k::{FlashOptions, VolumeId};
use crate::passticket::{EnhancedGenerator, EnhancedKey, LegacyGenerator, LegacyKey, TicketType};
use crate::policy::inventory::{HostConnection, HostCredential, HostKind};
use crate::policy::storage::{HyperSwapFacts, HyperSwapRequest, StorageOutcome};
use crate::proto::logon::Credential;
use crate::proto::zos::{Zos, ZosBody, ZosReason};
use crate::proto::ztpf::{Ztpf, ZtpfBody};
use crate::proto::{HostFlashOptions, ReturnCode, VolumePair, VolumeRef};
use crate::store::sealing::SealingKey;

use super::executor::patiently;

enum Link {
    Zos(ConnectorHandle<Zos>),
    Ztpf(ConnectorHandle<Ztpf>),
}

/// Connections to the hosts, made on first use from their definitions.
pub struct HostExecutor {
    key: Arc<SealingKey>,
    clock: Clock,
    request_timeout: Duration,
    links: Mutex<HashMap<String, (HostConnection, Arc<Link>)>>,
    status: super::Links,
    notices: tokio::sync::mpsc::UnboundedSender<super::executor::Notice>,
}

impl std::fmt::Debug for HostExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostExecutor").finish_non_exhaustive()
    }
}

fn failed(text: impl Into<String>) -> StorageOutcome {
    StorageOutcome::Failed {
        reason: 0,
        text: text.into(),
    }
}

/// The host FLASH bits for DS8000 option bits (the inverse of
/// `HostFlashOptions::to_storage`; `-freeze` has no host bit: the host forms the
/// consistency group itself).
pub fn host_options(bits: u16) -> HostFlashOptions {
    let o = FlashOptions(bits);
    let mut host = 0;
    for (on, bit) in [
        (
            o.inhibit_target_writes(),
            HostFlashOptions::INHIBIT_TARGET_WRITES,
        ),
        (o.no_copy(), HostFlashOptions::NO_COPY),
        (o.record(), HostFlashOptions::INCREMENTAL),
        (o.persist() && !o.record(), HostFlashOptions::PERSISTENT),
    ] {
        if on {
            host |= bit;
        }
    }
    HostFlashOptions(host)
}

fn volume(serial: &str, v: VolumeId) -> Result<VolumeRef, StorageOutcome> {
    Ok(VolumeRef {
        storage: Ebcdic::new(serial).map_err(|e| failed(e.to_string()))?,
        volume: v.0,
        device: 0,
    })
}

impl HostExecutor {
    /// An executor that opens credentials with `key`.
    pub fn new(
        key: Arc<SealingKey>,
        clock: Clock,
        request_timeout: Duration,
        status: super::Links,
        notices: tokio::sync::mpsc::UnboundedSender<super::executor::Notice>,
    ) -> HostExecutor {
        HostExecutor {
            key,
            clock,
            request_timeout,
            links: Mutex::new(HashMap::new()),
            status,
            notices,
        }
    }

    /// How long a request waits for a connection that is still logging on.
    fn patience(&self) -> Duration {
        self.request_timeout.min(Duration::from_secs(10))
    }

    fn authentication(&self, host: &HostConnection) -> Result<Authentication, StorageOutcome> {
        let object = host.credential.object(&host.system);
        let sealed = host.credential.sealed();
        let plain = self
            .key
            .open(&object, sealed)
            .map_err(|e| failed(e.to_string()))?;
        let text =
            std::str::from_utf8(&plain).map_err(|_| failed(format!("{object} is not text")))?;
        let bad = |e: &dyn std::fmt::Display| failed(format!("{object}: {e}"));
        Ok(match &host.credential {
            HostCredential::PassTicket { .. } if text.len() == 16 => {
                Authentication::LegacyPassTicket(LegacyGenerator::new(
                    &LegacyKey::from_hex(text).map_err(|e| bad(&e))?,
                ))
            }
            HostCredential::PassTicket { .. } => {
                Authentication::EnhancedPassTicket(EnhancedGenerator::new(
                    &EnhancedKey::from_hex(text).map_err(|e| bad(&e))?,
                    TicketType::Upper,
                ))
            }
            HostCredential::Password(_) => Authentication::Password(
                Credential::new(text).ok_or_else(|| bad(&"not a password"))?,
            ),
            HostCredential::Passphrase(_) => Authentication::Passphrase(
                Credential::new(text).ok_or_else(|| bad(&"not a passphrase"))?,
            ),
        })
    }

    async fn link(&self, host: &HostConnection) -> Result<Arc<Link>, StorageOutcome> {
        let mut links = self.links.lock().await;
        if let Some((known, link)) = links.get(&host.system)
            && known == host
        {
            return Ok(Arc::clone(link));
        }
        let ip = host.address.parse::<std::net::IpAddr>().map_err(|_| {
            failed(format!(
                "host address {} is not an IP address",
                host.address
            ))
        })?;
        let mut config = ConnectorConfig::new(SocketAddr::new(ip, host.port));
        config.user = host.user.clone();
        config.appl = match &host.credential {
            HostCredential::PassTicket { application, .. } => application.clone(),
            _ => crate::policy::inventory::DEFAULT_ZOS_APPLICATION.into(),
        };
        config.clock = self.clock;
        config.request_timeout = self.request_timeout;
        config.backoff_initial = Duration::from_millis(100);
        config.backoff_max = super::LINK_BACKOFF_MAX;
        // The gateway's link never gives up for good (policy.md §8.4).
        config.refusal_pause = Some(super::LINK_REFUSAL_PAUSE);
        let auth = self.authentication(host)?;
        // The connector's events are read (its owner must), into the link's status.
        let (status, name) = (self.status.clone(), host.system.clone());
        let link = match host.kind {
            HostKind::Zos => {
                let mut h =
                    crate::client::zos::spawn(config, auth).map_err(|e| failed(e.to_string()))?;
                let mut events = h.take_events();
                let notices = self.notices.clone();
                tokio::spawn(async move {
                    while let Some(e) = events.recv().await {
                        super::track_link(&status, &name, &e);
                        if let Some(notice) = hyperswap_notice(&name, &e)
                            && notices.send((name.clone(), notice)).is_err()
                        {
                            return;
                        }
                    }
                });
                Link::Zos(h)
            }
            HostKind::Ztpf => {
                let mut h =
                    crate::client::ztpf::spawn(config, auth).map_err(|e| failed(e.to_string()))?;
                let mut events = h.take_events();
                tokio::spawn(async move {
                    while let Some(e) = events.recv().await {
                        super::track_link(&status, &name, &e);
                    }
                });
                Link::Ztpf(h)
            }
        };
        let link = Arc::new(link);
        links.insert(host.system.clone(), (host.clone(), link.clone()));
        Ok(link)
    }

    /// A consistency-group FLASH of `pairs` on `serial` through `host`.
    pub async fn flash(
        &self,
        host: &HostConnection,
        serial: &str,
        pairs: &[(VolumeId, VolumeId)],
        bits: u16,
    ) -> Result<(), StorageOutcome> {
        let pairs = pairs
            .iter()
            .map(|&(s, t)| {
                Ok(VolumePair {
                    first: volume(serial, s)?,
                    second: volume(serial, t)?,
                })
            })
            .collect::<Result<Vec<_>, StorageOutcome>>()?;
        let options = host_options(bits);
        let status = match &*self.link(host).await? {
            Link::Zos(h) => patiently(h, ZosBody::FlashRequest { options, pairs }, self.patience())
                .await
                .map(|r| match r {
                    ZosBody::FlashReply { status, .. } => Some(status),
                    _ => None,
                }),
            Link::Ztpf(h) => patiently(
                h,
                ZtpfBody::FlashRequest { options, pairs },
                self.patience(),
            )
            .await
            .map(|r| match r {
                ZtpfBody::FlashReply { status, .. } => Some(status),
                _ => None,
            }),
        };
        self.settle(host, status)
    }

    /// One backup of `volumes` on `serial` through `host`: its id and time (ms).
    pub async fn backup(
        &self,
        host: &HostConnection,
        serial: &str,
        volumes: &[VolumeId],
    ) -> Result<StorageOutcome, StorageOutcome> {
        let volumes = volumes
            .iter()
            .map(|&v| volume(serial, v))
            .collect::<Result<Vec<_>, StorageOutcome>>()?;
        let link = self.link(host).await?;
        let answer = match &*link {
            Link::Zos(h) => patiently(h, ZosBody::BackupRequest { volumes }, self.patience())
                .await
                .map(|r| match r {
                    ZosBody::BackupReply {
                        status,
                        backup_id,
                        backup_time,
                    } => Some((status, backup_id, backup_time)),
                    _ => None,
                }),
            Link::Ztpf(h) => patiently(h, ZtpfBody::BackupRequest { volumes }, self.patience())
                .await
                .map(|r| match r {
                    ZtpfBody::BackupReply {
                        status,
                        backup_id,
                        backup_time,
                    } => Some((status, backup_id, backup_time)),
                    _ => None,
                }),
        };
        let reply = match answer {
            Ok(Some(reply)) => reply,
            Ok(None) => {
                return Err(failed(format!(
                    "{} answered a backup with something else",
                    host.system
                )));
            }
            Err(e) => {
                return Err(super::executor::path_failure(
                    &e,
                    &format!("host {}", host.system),
                ));
            }
        };
        let (status, id, time_secs) = reply;
        if let Some(unknown) = unavailable(host, status) {
            return Err(unknown);
        }
        if status.rc != ReturnCode::OK {
            return Err(StorageOutcome::Failed {
                reason: status.reason,
                text: format!(
                    "{} refused the backup (rc {}, reason {:#06x})",
                    host.system, status.rc.0, status.reason
                ),
            });
        }
        Ok(StorageOutcome::BackedUp {
            id,
            time_ms: time_secs.saturating_mul(1000),
        })
    }

    /// Connects to `host` now (its events reach the engine from then on); a
    /// failure is logged, and the next request tries again.
    pub fn watch(self: &Arc<Self>, host: HostConnection) {
        let hosts = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(StorageOutcome::Failed { text, .. } | StorageOutcome::Unknown { text }) =
                hosts.link(&host).await
            {
                tracing::warn!(system = %host.system, why = %text, "host: could not connect to watch it");
            }
        });
    }

    /// A HyperSwap request (zos-hyperswap.md §3.5–§3.7, §3.13) to `host` about
    /// configuration `session`: the system's HyperSwap status after it. Enabling
    /// what is enabled, disabling what is disabled and purging or disabling what
    /// is not loaded are done already (RC 4 `ALREADY_IN_STATE`, `NO_CONFIG`).
    pub async fn hyperswap(
        &self,
        host: &HostConnection,
        session: &str,
        request: &HyperSwapRequest,
    ) -> StorageOutcome {
        let name = match Ebcdic::<16>::new(&session.to_ascii_uppercase()) {
            Ok(n) => n,
            Err(e) => {
                return failed(format!(
                    "session name {session} cannot name a HyperSwap configuration: {e}"
                ));
            }
        };
        let body = match request {
            HyperSwapRequest::Load { pairs } => {
                let pairs = match pairs
                    .iter()
                    .map(|(p, q)| {
                        Ok(VolumePair {
                            first: volume(&p.serial, p.volume)?,
                            second: volume(&q.serial, q.volume)?,
                        })
                    })
                    .collect::<Result<Vec<_>, StorageOutcome>>()
                {
                    Ok(p) => p,
                    Err(outcome) => return outcome,
                };
                ZosBody::LoadConfigRequest {
                    session: name,
                    pairs,
                }
            }
            HyperSwapRequest::Enable => ZosBody::EnableRequest { session: name },
            HyperSwapRequest::EnableFreeze => ZosBody::EnableFreezeRequest { session: name },
            HyperSwapRequest::Disable => ZosBody::DisableRequest { session: name },
            HyperSwapRequest::PlannedSwap => ZosBody::PlannedSwapRequest { session: name },
            HyperSwapRequest::Purge => ZosBody::PurgeConfigRequest { session: name },
            HyperSwapRequest::Query => ZosBody::QuerySystemRequest,
        };
        let link = match self.link(host).await {
            Ok(link) => link,
            Err(outcome) => return outcome,
        };
        let Link::Zos(h) = &*link else {
            return failed(format!(
                "{} is a z/TPF system: HyperSwap is managed through z/OS",
                host.system
            ));
        };
        let reply = match patiently(h, body, self.patience()).await {
            Ok(reply) => reply,
            Err(e) => {
                return super::executor::path_failure(&e, &format!("host {}", host.system));
            }
        };
        let (status, hs) = match reply {
            ZosBody::HyperSwapReply {
                status, hyperswap, ..
            } => (status, hyperswap),
            ZosBody::QuerySystemReply(info) => (info.status, info.hyperswap),
            _ => return failed(format!("{} answered with something else", host.system)),
        };
        let facts = HyperSwapFacts {
            state: hs.state.0,
            active_site: hs.active_site,
            session: hs.session.as_str().trim_end().to_owned(),
            pairs: hs.pair_count,
        };
        let settled = status.rc == ReturnCode::OK
            || (status.rc.0 == 4 && status.reason == ZosReason::ALREADY_IN_STATE.0)
            || (matches!(request, HyperSwapRequest::Disable | HyperSwapRequest::Purge)
                && status.reason == ZosReason::NO_CONFIG.0);
        if settled {
            return StorageOutcome::HyperSwapped(facts);
        }
        if let Some(unknown) = unavailable(host, status) {
            return unknown;
        }
        StorageOutcome::Failed {
            reason: status.reason,
            text: format!(
                "{} refused to {} (rc {}, reason {:#06x})",
                host.system,
                request.name(),
                status.rc.0,
                status.reason
            ),
        }
    }

    fn settle(
        &self,
        host: &HostConnection,
        status: Result<Option<crate::proto::ReplyStatus>, crate::client::connector::RequestError>,
    ) -> Result<(), StorageOutcome> {
        match status {
            Ok(Some(s)) if s.rc == ReturnCode::OK => Ok(()),
            Ok(Some(s)) => Err(
                unavailable(host, s).unwrap_or_else(|| StorageOutcome::Failed {
                    reason: s.reason,
                    text: format!(
                        "{} refused it (rc {}, reason {:#06x})",
                        host.system, s.rc.0, s.reason
                    ),
                }),
            ),
            Ok(None) => Err(failed(format!(
                "{} answered with something else",
                host.system
            ))),
            Err(e) => Err(super::executor::path_failure(
                &e,
                &format!("host {}", host.system),
            )),
        }
    }
}

/// A z/OS HyperSwap event as a notice for the engine.
fn hyperswap_notice(
    system: &str,
    event: &crate::client::connector::ConnectorEvent<ZosBody>,
) -> Option<crate::policy::storage::StorageNotice> {
    use crate::client::connector::ConnectorEvent;
    use crate::policy::storage::{HostEvent, StorageNotice};
    let ConnectorEvent::Event(body) = event else {
        return None;
    };
    let (session, event) = match body {
        ZosBody::UnplannedSwapEvent {
            session,
            reason,
            swapped_pairs,
            ..
        } => (
            session,
            HostEvent::UnplannedSwap {
                pairs: *swapped_pairs,
                reason: *reason,
            },
        ),
        ZosBody::HyperSwapDisabledEvent {
            session, reason, ..
        } => (session, HostEvent::HyperSwapDisabled { reason: *reason }),
        ZosBody::FreezeEvent {
            session,
            kind,
            reason,
            ..
        } => (
            session,
            HostEvent::Freeze {
                hardened: *kind == crate::proto::zos::FreezeKind::HARDENED_FREEZE,
                reason: *reason,
            },
        ),
        _ => return None,
    };
    Some(StorageNotice::Host {
        system: system.to_owned(),
        session: session.as_str().trim_end().to_owned(),
        event,
    })
}

/// A host's RC 12 (its storage request got no answer within its storage
/// deadline; zos-hyperswap.md §3.8, ztpf.md §3.4) leaves the outcome unknown: the
/// host's request may still have reached the box (policy.md §8.4).
fn unavailable(host: &HostConnection, s: crate::proto::ReplyStatus) -> Option<StorageOutcome> {
    (s.rc.0 == 12).then(|| StorageOutcome::Unknown {
        text: format!(
            "{} got no answer from the storage system (rc 12, reason {:#06x})",
            host.system, s.reason
        ),
    })
}
