//! The emulated z/OS system behind the z/OS peer: RACF, HyperSwap and the IOS
//! FlashCopy / Safeguarded Copy path. Pure: the peer's I/O shell passes the time.
//!
//! Rules enforced here are those of protocol-specs/zos-hyperswap.md §3.4–3.12 and §5.

use serde::Deserialize;

use super::host_book::HostBook;
use super::security::{
    Permit, ProfileConfig, Security, SystemConfigError, UserConfig, default_revoke, has_duplicates,
};
use crate::codec::fields::Ebcdic;
use crate::proto::session::Disposition;
use crate::proto::zos::session::{LogonDecision, ServerBackend};
use crate::proto::zos::{
    HyperSwapState, HyperSwapStatus, LogonRequest, SystemInfo, Zos, ZosBody, ZosMessageType,
    ZosReason,
};
use crate::proto::{CommonReason, ReplyStatus, ReturnCode, VolumePair};

/// The emulated system's identity and security set-up.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZosSystemConfig {
    /// Sysplex name.
    #[serde(default = "default_sysplex")]
    pub sysplex: String,
    /// System name.
    #[serde(default = "default_system")]
    pub system: String,
    /// z/OS level.
    #[serde(default = "default_level")]
    pub level: String,
    /// Failed logons that revoke a user.
    #[serde(default = "default_revoke")]
    pub revoke_after: u32,
    /// Seconds after which a revoked user is resumed by itself (0 = only by an
    /// operator's RESUME).
    #[serde(default)]
    pub resume_after_secs: u64,
    /// RACF users.
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// PTKTDATA profiles.
    #[serde(default)]
    pub ptktdata: Vec<ProfileConfig>,
}

fn default_sysplex() -> String {
    "PLEX1".into()
}
fn default_system() -> String {
    "SYSA".into()
}
fn default_level() -> String {
    "V2R5".into()
}

pub use super::host_book::{RECORDED_KEPT, Recorded};

struct HyperSwapConfig {
    session: Ebcdic<16>,
    /// Shared: the storage shell reads them for every application write.
    pairs: std::sync::Arc<Vec<VolumePair>>,
}

/// RACF + HyperSwap + IOS of one emulated z/OS system.
pub struct ZosSystem {
    sysplex: Ebcdic<8>,
    system: Ebcdic<8>,
    level: Ebcdic<8>,
    book: HostBook,
    config: Option<HyperSwapConfig>,
    state: HyperSwapState,
    active_site: u8,
    last_backup_id: u64,
    forward_to_storage: bool,
    swaps_on_storage: bool,
}

impl ZosSystem {
    /// Builds the system, looking key variables up with `env` (tests pass their own).
    pub fn with_keys(
        cfg: &ZosSystemConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SystemConfigError> {
        let security = {
            let mut security = Security::new(cfg.revoke_after, &cfg.users, &cfg.ptktdata, env)?;
            security.set_resume_after(cfg.resume_after_secs);
            security
        };
        Ok(ZosSystem {
            sysplex: Ebcdic::new(&cfg.sysplex)?,
            system: Ebcdic::new(&cfg.system)?,
            level: Ebcdic::new(&cfg.level)?,
            book: HostBook::new(security),
            config: None,
            state: HyperSwapState::NO_CONFIG,
            active_site: 0,
            last_backup_id: 0,
            forward_to_storage: false,
            swaps_on_storage: false,
        })
    }

    /// From now on FLASH and SGC_BACKUP that pass the system's own checks go to the
    /// storage system (the peer's forwarder) instead of being recorded.
    pub fn forward_to_storage(&mut self, on: bool) {
        self.forward_to_storage = on;
    }

    /// From now on a planned HyperSwap that passes the system's own checks is
    /// carried out on the storage systems (the peer's HyperSwap I/O: freeze, failover,
    /// I/O redirected; zos-hyperswap.md §3.7) instead of only in this state.
    pub fn swap_on_storage(&mut self, on: bool) {
        self.swaps_on_storage = on;
    }

    /// The loaded configuration's pairs, the active site (1: primaries are the
    /// pairs' first volumes) and the state; `None` without a configuration.
    pub fn hyperswap_config(
        &self,
    ) -> Option<(std::sync::Arc<Vec<VolumePair>>, u8, HyperSwapState)> {
        self.config
            .as_ref()
            .map(|c| (c.pairs.clone(), self.active_site, self.state))
    }

    /// The swap was carried out on the storage systems: the other site is active
    /// and HyperSwap is left disabled until the manager resynchronises
    /// (zos-hyperswap.md §3.7, §3.11).
    pub fn swapped(&mut self) -> HyperSwapStatus {
        if self.config.is_some() {
            self.active_site = 3 - self.active_site;
            self.state = HyperSwapState::DISABLED;
        }
        self.hyperswap_status()
    }

    /// HyperSwap can no longer swap (a pair stopped mirroring): disabled.
    pub fn hyperswap_lost(&mut self) -> HyperSwapStatus {
        if self.config.is_some() {
            self.state = HyperSwapState::DISABLED;
        }
        self.hyperswap_status()
    }

    /// Current HyperSwap status.
    pub fn hyperswap_status(&self) -> HyperSwapStatus {
        HyperSwapStatus {
            state: self.state,
            active_site: self.active_site,
            session: self
                .config
                .as_ref()
                .map(|c| c.session.clone())
                .unwrap_or_default(),
            pair_count: self
                .config
                .as_ref()
                .map_or(0, |c| u16::try_from(c.pairs.len()).unwrap_or(u16::MAX)),
        }
    }

    /// A primary failed: if HyperSwap is enabled, swap to the secondaries and return the
    /// `EVT_UNPLANNED_SWAP` event; if it is not, return `EVT_HS_DISABLED` (none without
    /// a configuration).
    pub fn primary_failure(&mut self, now_unix: u64) -> Option<ZosBody> {
        let cfg = self.config.as_ref()?;
        let session = cfg.session.clone();
        if self.state == HyperSwapState::ENABLED {
            let swapped = u16::try_from(cfg.pairs.len()).unwrap_or(u16::MAX);
            self.active_site = 3 - self.active_site;
            self.state = HyperSwapState::DISABLED;
            Some(ZosBody::UnplannedSwapEvent {
                session,
                time: now_unix,
                reason: ZosReason::PRIMARY_IO_ERROR.0,
                swapped_pairs: swapped,
            })
        } else {
            Some(ZosBody::HyperSwapDisabledEvent {
                session,
                time: now_unix,
                reason: ZosReason::PPRC_SUSPENDED.0,
            })
        }
    }

    fn hs_reply(&self, request: ZosMessageType, rc: ReturnCode, reason: u16) -> ZosBody {
        ZosBody::HyperSwapReply {
            request,
            status: ReplyStatus::new(rc, reason),
            hyperswap: self.hyperswap_status(),
        }
    }

    /// HyperSwap or Hardened Freeze is enabled: the configuration is in use and
    /// cannot be replaced or purged (zos-hyperswap.md §3.5, §3.13).
    pub fn armed(&self) -> bool {
        matches!(
            self.state,
            HyperSwapState::ENABLED | HyperSwapState::FREEZE_ENABLED
        )
    }

    /// Checks the session name against the loaded configuration.
    fn session_check(&self, request: ZosMessageType, session: &Ebcdic<16>) -> Result<(), ZosBody> {
        match &self.config {
            None => Err(self.hs_reply(request, ReturnCode::REFUSED, ZosReason::NO_CONFIG.0)),
            Some(c) if &c.session != session => {
                Err(self.hs_reply(request, ReturnCode::REFUSED, ZosReason::SESSION_MISMATCH.0))
            }
            Some(_) => Ok(()),
        }
    }
}

impl std::ops::Deref for ZosSystem {
    type Target = HostBook;
    fn deref(&self) -> &HostBook {
        &self.book
    }
}

impl std::ops::DerefMut for ZosSystem {
    fn deref_mut(&mut self) -> &mut HostBook {
        &mut self.book
    }
}

impl ServerBackend<Zos> for ZosSystem {
    /// spec: zos-hyperswap.md §3: FLASH needs the FLASH permit, SGC_BACKUP the
    /// SGC_BACKUP permit, the HyperSwap commands the HYPERSWAP permit.
    fn authorize(&self, user: &Ebcdic<8>, body: &ZosBody) -> Result<(), ReplyStatus> {
        let needed = match body {
            ZosBody::FlashRequest { .. } => Permit::Flash,
            ZosBody::BackupRequest { .. } => Permit::SgcBackup,
            ZosBody::LoadConfigRequest { .. }
            | ZosBody::EnableRequest { .. }
            | ZosBody::DisableRequest { .. }
            | ZosBody::PlannedSwapRequest { .. }
            | ZosBody::PurgeConfigRequest { .. }
            | ZosBody::EnableFreezeRequest { .. } => Permit::Hyperswap,
            _ => return Ok(()),
        };
        if self.book.security.permitted(user, needed) {
            Ok(())
        } else {
            Err(ReplyStatus::new(
                ReturnCode::REFUSED,
                ZosReason::NOT_PERMITTED.0,
            ))
        }
    }

    fn dispose(&mut self, body: &ZosBody, now_unix: u64) -> Disposition<ZosBody> {
        if self.swaps_on_storage
            && let ZosBody::PlannedSwapRequest { session } = body
        {
            let t = ZosMessageType::HS_PLANNED_SWAP;
            if let Err(reply) = self.session_check(t, session) {
                return Disposition::Reply(Ok(reply));
            }
            if self.state != HyperSwapState::ENABLED {
                return Disposition::Reply(Ok(self.hs_reply(
                    t,
                    ReturnCode::REFUSED,
                    ZosReason::NOT_ENABLED.0,
                )));
            }
            return Disposition::Forward;
        }
        let to_storage = self.forward_to_storage
            && match body {
                ZosBody::FlashRequest { pairs, .. } => {
                    !has_duplicates(pairs.iter().flat_map(|p| [&p.first, &p.second]))
                }
                ZosBody::BackupRequest { volumes } => !has_duplicates(volumes),
                _ => false,
            };
        if to_storage {
            Disposition::Forward
        } else {
            Disposition::Reply(self.request(body, now_unix))
        }
    }

    fn logon(
        &mut self,
        req: &LogonRequest,
        now_unix: u64,
        now: std::time::Instant,
    ) -> LogonDecision {
        self.book
            .security
            .logon(req, now_unix, Some(now), &self.sysplex, &self.system)
    }

    fn request(&mut self, body: &ZosBody, now_unix: u64) -> Result<ZosBody, ReplyStatus> {
        Ok(match body {
            ZosBody::QuerySystemRequest => ZosBody::QuerySystemReply(SystemInfo {
                status: ReplyStatus::OK,
                sysplex: self.sysplex.clone(),
                system: self.system.clone(),
                level: self.level.clone(),
                hyperswap: self.hyperswap_status(),
            }),
            ZosBody::LoadConfigRequest { session, pairs } => {
                let t = ZosMessageType::HS_LOAD_CONFIG;
                if self.armed() {
                    return Ok(self.hs_reply(t, ReturnCode::REFUSED, ZosReason::CONFIG_ACTIVE.0));
                }
                if has_duplicates(pairs.iter().flat_map(|p| [&p.first, &p.second])) {
                    return Ok(self.hs_reply(
                        t,
                        ReturnCode::REFUSED,
                        ZosReason::DUPLICATE_VOLUME.0,
                    ));
                }
                self.config = Some(HyperSwapConfig {
                    session: session.clone(),
                    pairs: std::sync::Arc::new(pairs.clone()),
                });
                self.state = HyperSwapState::DISABLED;
                self.active_site = 1;
                self.hs_reply(t, ReturnCode::OK, 0)
            }
            ZosBody::EnableRequest { session }
            | ZosBody::DisableRequest { session }
            | ZosBody::EnableFreezeRequest { session } => {
                let t = body.message_type();
                if let Err(reply) = self.session_check(t, session) {
                    return Ok(reply);
                }
                let target = match t {
                    ZosMessageType::HS_ENABLE => HyperSwapState::ENABLED,
                    ZosMessageType::HS_ENABLE_FREEZE => HyperSwapState::FREEZE_ENABLED,
                    _ => HyperSwapState::DISABLED,
                };
                if self.state == target {
                    return Ok(self.hs_reply(
                        t,
                        ReturnCode::WARNING,
                        ZosReason::ALREADY_IN_STATE.0,
                    ));
                }
                self.state = target;
                self.hs_reply(t, ReturnCode::OK, 0)
            }
            ZosBody::PurgeConfigRequest { session } => {
                // zos-hyperswap.md §3.13: refused while enabled; afterwards none.
                let t = ZosMessageType::HS_PURGE_CONFIG;
                if let Err(reply) = self.session_check(t, session) {
                    return Ok(reply);
                }
                if self.armed() {
                    return Ok(self.hs_reply(t, ReturnCode::REFUSED, ZosReason::CONFIG_ACTIVE.0));
                }
                self.config = None;
                self.state = HyperSwapState::NO_CONFIG;
                self.active_site = 0;
                self.hs_reply(t, ReturnCode::OK, 0)
            }
            ZosBody::PlannedSwapRequest { session } => {
                let t = ZosMessageType::HS_PLANNED_SWAP;
                if let Err(reply) = self.session_check(t, session) {
                    return Ok(reply);
                }
                if self.state != HyperSwapState::ENABLED {
                    return Ok(self.hs_reply(t, ReturnCode::REFUSED, ZosReason::NOT_ENABLED.0));
                }
                self.active_site = 3 - self.active_site;
                self.state = HyperSwapState::DISABLED;
                self.hs_reply(t, ReturnCode::OK, 0)
            }
            ZosBody::FlashRequest { options, pairs } => {
                if has_duplicates(pairs.iter().flat_map(|p| [&p.first, &p.second])) {
                    return Ok(ZosBody::FlashReply {
                        status: ReplyStatus::new(
                            ReturnCode::REFUSED,
                            ZosReason::DUPLICATE_VOLUME.0,
                        ),
                        flash_time: 0,
                        pair_count: 0,
                    });
                }
                self.book.record(Recorded::Flash {
                    options: *options,
                    pairs: pairs.clone(),
                    time: now_unix,
                });
                ZosBody::FlashReply {
                    status: ReplyStatus::OK,
                    flash_time: now_unix,
                    pair_count: u16::try_from(pairs.len()).unwrap_or(u16::MAX),
                }
            }
            ZosBody::BackupRequest { volumes } => {
                if has_duplicates(volumes) {
                    return Ok(ZosBody::BackupReply {
                        status: ReplyStatus::new(
                            ReturnCode::REFUSED,
                            ZosReason::DUPLICATE_VOLUME.0,
                        ),
                        backup_id: 0,
                        backup_time: 0,
                    });
                }
                // Backup ids are epoch seconds, as CSM shows them, made unique.
                let backup_id = now_unix.max(self.last_backup_id + 1);
                self.last_backup_id = backup_id;
                self.book.record(Recorded::Backup {
                    volumes: volumes.clone(),
                    backup_id,
                });
                ZosBody::BackupReply {
                    status: ReplyStatus::OK,
                    backup_id,
                    backup_time: now_unix,
                }
            }
            _ => {
                return Err(ReplyStatus::new(
                    ReturnCode::REFUSED,
                    CommonReason::UNKNOWN_MESSAGE.0,
                ));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passticket::RacfName;
    use crate::proto::VolumeRef;
    use crate::proto::zos::CredentialKind;
    use crate::proto::zos::messages::Credential;

    fn sample() -> ZosSystem {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/peers/zos.toml"
        ))
        .unwrap();
        let cfg: crate::peer::zos::ZosPeerConfig = toml::from_str(&text).unwrap();
        ZosSystem::with_keys(&cfg.system, |v| match v {
            "ZGATE_ZOS_LEGACY_KEY" => Some("0123456789ABCDEF".into()),
            "ZGATE_ZOS_ENHANCED_KEY" => Some("ab".repeat(32)),
            _ => None,
        })
        .unwrap()
    }

    fn logon(kind: CredentialKind, user: &str, secret: &str) -> LogonRequest {
        LogonRequest {
            user: Ebcdic::new(user).unwrap(),
            appl: Ebcdic::new("IOSHMCSM").unwrap(),
            kind,
            heartbeat_secs: 0,
            credential: Credential::new(secret).unwrap(),
        }
    }

    #[test]
    fn sample_config_password_logon() {
        let mut sys = sample();
        let ok = sys.logon(
            &logon(CredentialKind::PASSWORD, "OPER1", "SECRET1"),
            0,
            std::time::Instant::now(),
        );
        assert!(matches!(ok, LogonDecision::Accept { .. }));
        let bad = sys.logon(
            &logon(CredentialKind::PASSWORD, "OPER1", "SECRET2"),
            0,
            std::time::Instant::now(),
        );
        assert_eq!(
            bad,
            LogonDecision::Refuse {
                reason: crate::proto::logon::NOT_AUTHORIZED,
                racf_rc: 8,
                precise: 0x0110,
                revoked_now: false,
            }
        );
        assert_eq!(
            sys.racf().failures(&RacfName::parse("u", "OPER1").unwrap()),
            Some(1)
        );
        // HOSTUSR has no password: refused the same way.
        let none = sys.logon(
            &logon(CredentialKind::PASSWORD, "HOSTUSR", "X"),
            0,
            std::time::Instant::now(),
        );
        assert_eq!(
            none,
            LogonDecision::Refuse {
                reason: crate::proto::logon::NOT_AUTHORIZED,
                racf_rc: 8,
                precise: 0x0110,
                revoked_now: false,
            }
        );
    }

    #[test]
    fn hyperswap_rules() {
        let mut sys = sample();
        let s = Ebcdic::new("HSPROD").unwrap();
        let enable = ZosBody::EnableRequest { session: s.clone() };
        let status = |b: Result<ZosBody, ReplyStatus>| match b {
            Ok(ZosBody::HyperSwapReply { status, .. }) => (status.rc, status.reason),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            status(sys.request(&enable, 0)),
            (ReturnCode::REFUSED, 0x0201)
        );
        let v = |n| VolumeRef {
            storage: Ebcdic::new("75FA120").unwrap(),
            volume: n,
            device: 0,
        };
        let dup = ZosBody::LoadConfigRequest {
            session: s.clone(),
            pairs: vec![VolumePair {
                first: v(1),
                second: v(1),
            }],
        };
        assert_eq!(status(sys.request(&dup, 0)), (ReturnCode::REFUSED, 0x0206));
        let load = ZosBody::LoadConfigRequest {
            session: s.clone(),
            pairs: vec![VolumePair {
                first: v(1),
                second: v(2),
            }],
        };
        assert_eq!(status(sys.request(&load, 0)), (ReturnCode::OK, 0));
        let other = ZosBody::EnableRequest {
            session: Ebcdic::new("OTHER").unwrap(),
        };
        assert_eq!(
            status(sys.request(&other, 0)),
            (ReturnCode::REFUSED, 0x0202)
        );
        assert_eq!(status(sys.request(&enable, 0)), (ReturnCode::OK, 0));
        assert_eq!(
            status(sys.request(&enable, 0)),
            (ReturnCode::WARNING, 0x0203)
        );
        let swap = ZosBody::PlannedSwapRequest { session: s };
        assert_eq!(status(sys.request(&swap, 0)), (ReturnCode::OK, 0));
        assert_eq!(sys.hyperswap_status().active_site, 2);
        assert_eq!(sys.hyperswap_status().state, HyperSwapState::DISABLED);
        // Not enabled any more: a primary failure only disables (reported as an event).
        assert!(matches!(
            sys.primary_failure(5),
            Some(ZosBody::HyperSwapDisabledEvent { .. })
        ));
    }
}
