//! The emulated z/TPF system behind the z/TPF peer: sign-on security, the DASD
//! attached to the complex, and the FlashCopy / Safeguarded Copy path. Pure: the
//! peer's I/O shell passes the time.
//!
//! Rules enforced here are those of protocol-specs/ztpf.md §3 and §5.

use std::collections::HashSet;

use serde::Deserialize;

use super::host_book::HostBook;
use super::host_book::Recorded;
use super::security::{
    Permit, ProfileConfig, Security, SystemConfigError, UserConfig, default_revoke, has_duplicates,
};
use crate::codec::fields::Ebcdic;
use crate::proto::logon::LogonRequest;
use crate::proto::session::{Disposition, LogonDecision, ServerBackend};
use crate::proto::ztpf::{Ztpf, ZtpfBody, ZtpfInfo, ZtpfReason};
use crate::proto::{CommonReason, ReplyStatus, ReturnCode, VolumeRef};

/// The emulated z/TPF system's identity, DASD and security set-up.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZtpfSystemConfig {
    /// Complex name.
    #[serde(default = "default_complex")]
    pub complex: String,
    /// System (processor) name.
    #[serde(default = "default_system")]
    pub system: String,
    /// z/TPF level.
    #[serde(default = "default_level")]
    pub level: String,
    /// Subsystem name.
    #[serde(default = "default_subsystem")]
    pub subsystem: String,
    /// Attached DASD as `SERIAL:FIRST-LAST` volume-id ranges in hex, e.g. `75FA120:3000-30FF`.
    #[serde(default)]
    pub attached: Vec<String>,
    /// Failed sign-ons that revoke a user.
    #[serde(default = "default_revoke")]
    pub revoke_after: u32,
    /// Seconds after which a revoked user is resumed by itself (0 = only by an
    /// operator's RESUME).
    #[serde(default)]
    pub resume_after_secs: u64,
    /// Users.
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// PassTicket profiles.
    #[serde(default)]
    pub ptktdata: Vec<ProfileConfig>,
}

fn default_complex() -> String {
    "TPFPROD".into()
}
fn default_system() -> String {
    "CPUA".into()
}
fn default_level() -> String {
    "PUT23".into()
}
fn default_subsystem() -> String {
    "BSS".into()
}

/// RACF-like security + attached DASD of one emulated z/TPF complex.
pub struct ZtpfSystem {
    complex: Ebcdic<8>,
    system: Ebcdic<8>,
    level: Ebcdic<8>,
    subsystem: Ebcdic<4>,
    attached: HashSet<(String, u16)>,
    book: HostBook,
    last_backup_id: u64,
    forward_to_storage: bool,
}

/// Parses `SERIAL:FIRST-LAST` (or `SERIAL:VOL`), volume ids in hex.
fn parse_range(text: &str) -> Option<(String, u16, u16)> {
    let (serial, range) = text.split_once(':')?;
    let (first, last) = range.split_once('-').unwrap_or((range, range));
    let first = u16::from_str_radix(first, 16).ok()?;
    let last = u16::from_str_radix(last, 16).ok()?;
    (first <= last && !serial.is_empty()).then(|| (serial.to_string(), first, last))
}

impl ZtpfSystem {
    /// Builds the system, looking key variables up with `env`.
    pub fn with_keys(
        cfg: &ZtpfSystemConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SystemConfigError> {
        let mut attached = HashSet::new();
        for a in &cfg.attached {
            let (serial, first, last) =
                parse_range(a).ok_or_else(|| SystemConfigError::BadVolumeRange(a.clone()))?;
            for v in first..=last {
                attached.insert((serial.clone(), v));
            }
        }
        Ok(ZtpfSystem {
            complex: Ebcdic::new(&cfg.complex)?,
            system: Ebcdic::new(&cfg.system)?,
            level: Ebcdic::new(&cfg.level)?,
            subsystem: Ebcdic::new(&cfg.subsystem)?,
            attached,
            book: HostBook::new({
                let mut security = Security::new(cfg.revoke_after, &cfg.users, &cfg.ptktdata, env)?;
                security.set_resume_after(cfg.resume_after_secs);
                security
            }),
            last_backup_id: 0,
            forward_to_storage: false,
        })
    }

    /// From now on FLASH and SGC_BACKUP that pass the complex's own checks (attached,
    /// no duplicates) go to the storage system instead of being recorded.
    pub fn forward_to_storage(&mut self, on: bool) {
        self.forward_to_storage = on;
    }

    fn all_attached<'a>(&self, volumes: impl IntoIterator<Item = &'a VolumeRef>) -> bool {
        volumes.into_iter().all(|v| {
            self.attached
                .contains(&(v.storage.as_str().to_string(), v.volume))
        })
    }

    fn refuse(reason: ZtpfReason) -> Result<ZtpfBody, ReplyStatus> {
        Err(ReplyStatus::new(ReturnCode::REFUSED, reason.0))
    }
}

impl std::ops::Deref for ZtpfSystem {
    type Target = HostBook;
    fn deref(&self) -> &HostBook {
        &self.book
    }
}

impl std::ops::DerefMut for ZtpfSystem {
    fn deref_mut(&mut self) -> &mut HostBook {
        &mut self.book
    }
}

impl ServerBackend<Ztpf> for ZtpfSystem {
    /// spec: ztpf.md §3: FLASH needs the FLASH permit, SGC_BACKUP the SGC_BACKUP one.
    fn authorize(&self, user: &Ebcdic<8>, body: &ZtpfBody) -> Result<(), ReplyStatus> {
        let needed = match body {
            ZtpfBody::FlashRequest { .. } => Permit::Flash,
            ZtpfBody::BackupRequest { .. } => Permit::SgcBackup,
            _ => return Ok(()),
        };
        if self.book.security.permitted(user, needed) {
            Ok(())
        } else {
            Err(ReplyStatus::new(
                ReturnCode::REFUSED,
                ZtpfReason::NOT_PERMITTED.0,
            ))
        }
    }

    fn dispose(&mut self, body: &ZtpfBody, now_unix: u64) -> Disposition<ZtpfBody> {
        let to_storage = self.forward_to_storage
            && match body {
                ZtpfBody::FlashRequest { pairs, .. } => {
                    let volumes = || pairs.iter().flat_map(|p| [&p.first, &p.second]);
                    !has_duplicates(volumes()) && self.all_attached(volumes())
                }
                ZtpfBody::BackupRequest { volumes } => {
                    !has_duplicates(volumes) && self.all_attached(volumes)
                }
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
            .logon(req, now_unix, Some(now), &self.complex, &self.system)
    }

    fn request(&mut self, body: &ZtpfBody, now_unix: u64) -> Result<ZtpfBody, ReplyStatus> {
        Ok(match body {
            ZtpfBody::QueryRequest => ZtpfBody::QueryReply(ZtpfInfo {
                status: ReplyStatus::OK,
                complex: self.complex.clone(),
                system: self.system.clone(),
                level: self.level.clone(),
                subsystem: self.subsystem.clone(),
                attached_volumes: u16::try_from(self.attached.len()).unwrap_or(u16::MAX),
            }),
            ZtpfBody::FlashRequest { options, pairs } => {
                let volumes = || pairs.iter().flat_map(|p| [&p.first, &p.second]);
                if has_duplicates(volumes()) {
                    return Self::refuse(ZtpfReason::DUPLICATE_VOLUME);
                }
                if !self.all_attached(volumes()) {
                    return Self::refuse(ZtpfReason::VOLUME_NOT_ATTACHED);
                }
                self.book.record(Recorded::Flash {
                    options: *options,
                    pairs: pairs.clone(),
                    time: now_unix,
                });
                ZtpfBody::FlashReply {
                    status: ReplyStatus::OK,
                    flash_time: now_unix,
                    pair_count: u16::try_from(pairs.len()).unwrap_or(u16::MAX),
                }
            }
            ZtpfBody::BackupRequest { volumes } => {
                if has_duplicates(volumes) {
                    return Self::refuse(ZtpfReason::DUPLICATE_VOLUME);
                }
                if !self.all_attached(volumes) {
                    return Self::refuse(ZtpfReason::VOLUME_NOT_ATTACHED);
                }
                let backup_id = now_unix.max(self.last_backup_id + 1);
                self.last_backup_id = backup_id;
                self.book.record(Recorded::Backup {
                    volumes: volumes.clone(),
                    backup_id,
                });
                ZtpfBody::BackupReply {
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

    #[test]
    fn volume_ranges() {
        assert_eq!(
            parse_range("75FA120:3000-30FF"),
            Some(("75FA120".into(), 0x3000, 0x30FF))
        );
        assert_eq!(
            parse_range("75FA120:3000"),
            Some(("75FA120".into(), 0x3000, 0x3000))
        );
        assert_eq!(parse_range("75FA120:30FF-3000"), None);
        assert_eq!(parse_range("3000-30FF"), None);
        assert_eq!(parse_range("75FA120:XYZ"), None);
    }
}
