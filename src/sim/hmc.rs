//! The simulated DS8000 behind the HMC protocol: a [`StorageImage`], the HMC's
//! users, and the mapping of each request to a storage operation (spec:
//! protocol-specs/ds8k.md §4). Pure: the service's ticker sets the clock.

use serde::Deserialize;

use super::security::{ProfileConfig, Security, SystemConfigError, UserConfig, default_revoke};
use crate::codec::fields::Ebcdic;
use crate::ds8k::{Ds8kError, FenceTable, StorageImageId, VolumeId, VolumeKind};
use crate::proto::ds8k::{BackupEntry, Ds8k, Ds8kBody, Ds8kMessageType, FlashEntry, VolumeWire};
use crate::proto::logon::LogonRequest;
use crate::proto::session::{LogonDecision, ServerBackend};
use crate::proto::{CommonReason, ReplyStatus, ReturnCode};
use crate::sim::ds8k::{
    BackupInfo, FlashInfo, ImageConfig, StorageEvent, StorageImage, VolumeInfo,
};

/// A range of volumes created at start-up.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeRangeConfig {
    /// `FIRST-LAST` or a single id, hex (`3000-30FF`).
    pub ids: String,
    /// 3390 cylinders (CKD).
    #[serde(default)]
    pub ckd_cylinders: Option<u32>,
    /// GiB (FB).
    #[serde(default)]
    pub fb_gib: Option<u64>,
    /// Nickname prefix; the volume id is appended.
    #[serde(default)]
    pub name: String,
    /// Safeguarded capacity as a percentage of the volume's tracks (0 = none).
    #[serde(default)]
    pub safeguarded_percent: u32,
}

/// The simulated DS8000's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ds8kSystemConfig {
    /// Storage image id, `IBM.2107-75FA120`.
    pub image: String,
    /// HMC name, shown at logon.
    #[serde(default = "default_hmc")]
    pub hmc: String,
    /// Copy services settings.
    #[serde(default)]
    pub storage: ImageConfig,
    /// Volumes to create.
    #[serde(default)]
    pub volumes: Vec<VolumeRangeConfig>,
    /// Failed logons that revoke a user.
    #[serde(default = "default_revoke")]
    pub revoke_after: u32,
    /// Seconds after which a revoked user is resumed by itself (0 = only by an
    /// operator's RESUME).
    #[serde(default)]
    pub resume_after_secs: u64,
    /// HMC users (password logons).
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// PassTicket profiles, if the HMC also takes PassTickets.
    #[serde(default)]
    pub ptktdata: Vec<ProfileConfig>,
}

fn default_hmc() -> String {
    "HMC1".into()
}

/// Why a DS8000 configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Ds8kConfigError {
    /// Users or profiles.
    #[error(transparent)]
    Security(#[from] SystemConfigError),
    /// The image id, a volume range, or a volume the model refused.
    #[error("{0}")]
    Storage(String),
}

fn parse_ids(text: &str) -> Option<(u16, u16)> {
    let (first, last) = text.split_once('-').unwrap_or((text, text));
    let first = u16::from_str_radix(first.trim(), 16).ok()?;
    let last = u16::from_str_radix(last.trim(), 16).ok()?;
    (first <= last).then_some((first, last))
}

/// The simulated DS8000 and its HMC.
pub struct Ds8kSystem {
    image: StorageImage,
    security: Security,
    serial: Ebcdic<8>,
    hmc: Ebcdic<8>,
    clock_ms: u64,
    fences: FenceTable,
}

impl Ds8kSystem {
    /// Builds the image, looking key variables up with `env`.
    pub fn with_keys(
        cfg: &Ds8kSystemConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Ds8kSystem, Ds8kConfigError> {
        let id = StorageImageId::parse(&cfg.image)
            .map_err(|e| Ds8kConfigError::Storage(e.to_string()))?;
        let mut image = StorageImage::new(id.clone(), cfg.storage.clone());
        for range in &cfg.volumes {
            let (first, last) = parse_ids(&range.ids).ok_or_else(|| {
                Ds8kConfigError::Storage(format!(
                    "volume range {:?}: expected FIRST-LAST in hex",
                    range.ids
                ))
            })?;
            let kind = match (range.ckd_cylinders, range.fb_gib) {
                (Some(c), None) => VolumeKind::ckd(c),
                (None, Some(g)) => VolumeKind::fb_gib(g),
                _ => {
                    return Err(Ds8kConfigError::Storage(format!(
                        "volume range {}: give one of ckd_cylinders or fb_gib",
                        range.ids
                    )));
                }
            };
            for v in first..=last {
                let vid = VolumeId(v);
                let storage = |e: Ds8kError| Ds8kConfigError::Storage(e.to_string());
                image
                    .create_volume(vid, kind, &format!("{}{vid}", range.name))
                    .map_err(storage)?;
                if range.safeguarded_percent > 0 {
                    let tracks =
                        u64::from(kind.tracks()) * u64::from(range.safeguarded_percent) / 100;
                    image
                        .set_safeguarded_capacity(vid, tracks.max(1))
                        .map_err(storage)?;
                }
            }
        }
        let text = |s: &str| Ebcdic::new(s).map_err(SystemConfigError::from);
        Ok(Ds8kSystem {
            serial: text(id.serial())?,
            hmc: text(&cfg.hmc)?,
            security: {
                let mut security = Security::new(cfg.revoke_after, &cfg.users, &cfg.ptktdata, env)?;
                security.set_resume_after(cfg.resume_after_secs);
                security
            },
            image,
            clock_ms: 0,
            fences: FenceTable::default(),
        })
    }

    /// An operator's RESUME of a revoked user (RACF `ALTUSER userid RESUME`); true if
    /// the user was revoked.
    pub fn resume(&mut self, user: &crate::passticket::RacfName) -> bool {
        self.security.resume(user)
    }

    /// The last refused logons with their precise reasons (the client got
    /// NOT_AUTHORIZED; passticket.md §4.7).
    pub fn refusals(&self) -> &std::collections::VecDeque<super::security::RefusedLogon> {
        self.security.refusals()
    }

    /// The storage image.
    pub fn image(&self) -> &StorageImage {
        &self.image
    }

    /// The storage image, to script tests.
    pub fn image_mut(&mut self) -> &mut StorageImage {
        &mut self.image
    }

    /// The highest epoch seen from each fence domain (ds8k.md §3.4).
    pub fn fences(&self) -> &FenceTable {
        &self.fences
    }

    /// The simulated clock, ms.
    pub fn clock_ms(&self) -> u64 {
        self.clock_ms
    }

    /// Advances the clock and background copy; returns the events to send.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Ds8kBody> {
        self.clock_ms = self.clock_ms.max(now_ms);
        self.image.tick(self.clock_ms);
        let time_ms = self.clock_ms;
        std::iter::from_fn(|| self.image.poll_event())
            .map(|e| match e {
                StorageEvent::CopyComplete {
                    source,
                    target,
                    ended,
                } => Ds8kBody::CopyCompleteEvent {
                    key: crate::ds8k::PairKey { source, target },
                    ended,
                    time_ms,
                },
                StorageEvent::BackupRolledOff { volume, backup_id } => {
                    Ds8kBody::BackupRolledOffEvent {
                        volume,
                        backup_id,
                        time_ms,
                    }
                }
                StorageEvent::FreezeTimedOut { lss } => {
                    Ds8kBody::FreezeTimedOutEvent { lss, time_ms }
                }
            })
            .collect()
    }

    fn count(t: Ds8kMessageType, count: u64) -> Ds8kBody {
        Ds8kBody::CountReply {
            message_type: t,
            status: ReplyStatus::OK,
            count,
        }
    }

    fn run(&mut self, body: &Ds8kBody, now: u64) -> Result<Ds8kBody, Ds8kError> {
        use Ds8kBody as B;
        use Ds8kMessageType as T;
        // spec: ds8k.md §3.4: a changing request from an epoch that is over changes
        // nothing; the fence is checked before anything else, the deadline included.
        if let Some(fence) = body.fence() {
            if let B::FenceRequest { .. } = body {
                return Ok(B::FenceReply {
                    status: ReplyStatus::OK,
                    epoch: self.fences.raise(fence)?,
                });
            }
            self.fences.admit(fence)?;
        }
        let img = &mut self.image;
        Ok(match body {
            B::QueryImageRequest => B::ImageReply {
                status: ReplyStatus::OK,
                serial: self.serial.clone(),
                volumes: img.volume_count() as u32,
                relationships: img.relationship_count() as u32,
                backups: img.image_backups().count() as u32,
                frozen_lsss: img.frozen_lsss().len() as u16,
                clock_ms: now,
            },
            B::CreateVolumeRequest { volume, kind, name } => {
                img.create_volume(*volume, *kind, name.as_str())?;
                Self::count(T::MKVOL, 0)
            }
            B::DeleteVolumeRequest { volume } => {
                img.delete_volume(*volume)?;
                Self::count(T::RMVOL, 0)
            }
            B::ShowVolumeRequest { volume } => B::VolumeReply {
                status: ReplyStatus::OK,
                volume: volume_wire(&img.query_volume(*volume)?),
            },
            B::WriteTrackRequest { volume, track, tag } => {
                img.write_track(now, *volume, *track, *tag)?;
                Self::count(T::WRITE_TRACK, 0)
            }
            B::ReadTrackRequest { volume, track } => B::TrackReply {
                status: ReplyStatus::OK,
                tag: img.read_track(*volume, *track)?,
            },
            B::FlashRequest {
                resync,
                options,
                sequence,
                not_after_ms,
                pairs,
                ..
            } => {
                still_wanted(*not_after_ms, now)?;
                let r = if *resync {
                    img.resync_flash_numbered(now, pairs, *options, *sequence)?
                } else {
                    img.establish_flash_numbered(now, pairs, *options, *sequence)?
                };
                B::FlashReply {
                    resync: *resync,
                    status: ReplyStatus::OK,
                    sequence: r.sequence,
                    pair_count: r.pairs as u16,
                    out_of_sync_tracks: r.out_of_sync_tracks,
                }
            }
            B::WithdrawRequest {
                copy_first, pairs, ..
            } => {
                let n = img.withdraw_flash(pairs, *copy_first)?;
                Self::count(T::RMFLASH, n as u64)
            }
            B::ListFlashRequest { volume } => B::ListFlashReply {
                status: ReplyStatus::OK,
                entries: img.list_flash(*volume)?.iter().map(flash_entry).collect(),
            },
            B::UnfreezeRequest { lsss, .. } => {
                Self::count(T::UNFREEZEFLASH, img.unfreeze(lsss) as u64)
            }
            B::FrozenRequest => B::FrozenReply {
                status: ReplyStatus::OK,
                clock_ms: now,
                lsss: img.frozen_lsss(),
            },
            B::SetCapacityRequest { volume, tracks } => {
                img.set_safeguarded_capacity(*volume, *tracks)?;
                Self::count(T::MKSGCAP, 0)
            }
            B::BackupRequest {
                tag,
                not_after_ms,
                volumes,
                ..
            } => {
                still_wanted(*not_after_ms, now)?;
                let b = img.take_backup_tagged(now, volumes, *tag)?;
                B::BackupReply {
                    status: ReplyStatus::OK,
                    backup_id: b.id,
                    time_ms: b.time_ms,
                    volume_count: b.volumes as u16,
                }
            }
            B::ListBackupsRequest { volume } => {
                let mut entries: Vec<BackupEntry> = img
                    .list_backups(*volume)?
                    .iter()
                    .map(backup_entry)
                    .collect();
                // The reply holds the newest MAX_BACKUP_ENTRIES (ds8k.md §4.6).
                let excess = entries
                    .len()
                    .saturating_sub(crate::proto::ds8k::messages::MAX_BACKUP_ENTRIES);
                entries.drain(..excess);
                B::ListBackupsReply {
                    status: ReplyStatus::OK,
                    entries,
                }
            }
            B::RecoverRequest {
                backup_id, pairs, ..
            } => {
                let pairs: Vec<(VolumeId, VolumeId)> =
                    pairs.iter().map(|p| (p.source, p.target)).collect();
                Self::count(
                    T::RECOVER_BACKUP,
                    img.recover_backup(*backup_id, &pairs)? as u64,
                )
            }
            B::ExpireRequest { backup_id, .. } => {
                Self::count(T::EXPIRE_BACKUP, img.expire_backup(*backup_id)? as u64)
            }
            B::RestoreRequest {
                backup_id, volumes, ..
            } => Self::count(
                T::RESTORE_BACKUP,
                img.restore_backup(now, *backup_id, volumes)?,
            ),
            _ => {
                return Err(Ds8kError {
                    reason: crate::ds8k::Ds8kReason(CommonReason::UNKNOWN_MESSAGE.0),
                    detail: format!("{} is not a request the HMC carries out", body.name()),
                });
            }
        })
    }
}

impl ServerBackend<Ds8k> for Ds8kSystem {
    fn logon(
        &mut self,
        req: &LogonRequest,
        now_unix: u64,
        now: std::time::Instant,
    ) -> LogonDecision {
        self.security
            .logon(req, now_unix, Some(now), &self.serial, &self.hmc)
    }

    fn request(&mut self, body: &Ds8kBody, now_unix: u64) -> Result<Ds8kBody, ReplyStatus> {
        // The simulated clock once the ticker runs; wall-clock time before.
        let now = if self.clock_ms == 0 {
            now_unix.saturating_mul(1000)
        } else {
            self.clock_ms
        };
        self.run(body, now).map_err(|e| {
            tracing::info!(request = body.name(), reason = %e.reason, detail = %e.detail, "DS8000 refused");
            ReplyStatus::new(ReturnCode::REFUSED, e.reason.0)
        })
    }
}

/// SHOWVOL's fields from the model's query (ds8k.md §4.3).
fn volume_wire(info: &VolumeInfo) -> VolumeWire {
    VolumeWire {
        volume: info.id,
        kind: info.kind,
        tracks: info.kind.tracks(),
        name: Ebcdic::new(&info.name).unwrap_or_default(),
        flash_targets: info.flash_targets,
        flash_source: info.flash_source,
        sgc_capacity: info.sgc_capacity,
        sgc_used: info.sgc_used,
        backups: info.backups,
    }
}

/// An LSFLASH entry from the model's query (ds8k.md §4.5).
fn flash_entry(i: &FlashInfo) -> FlashEntry {
    FlashEntry {
        key: i.key,
        options: i.options,
        copying: i.copying,
        sequence: i.sequence,
        out_of_sync_tracks: i.out_of_sync_tracks,
        changed_tracks: i.changed_tracks,
        created_ms: i.created_ms,
        synced_ms: i.synced_ms,
    }
}

/// An LSBACKUP entry from the model's query (ds8k.md §4.6).
fn backup_entry(b: &BackupInfo) -> BackupEntry {
    BackupEntry {
        backup_id: b.id,
        time_ms: b.time_ms,
        saved_tracks: b.saved_tracks,
        tag: b.tag,
    }
}

/// A request whose client has stopped waiting is not carried out (ds8k.md §3.3):
/// once the clock is past `not_after_ms`, a client that asks LSFROZEN, LSFLASH or
/// LSBACKUP sees everything such a request will ever do.
fn still_wanted(not_after_ms: u64, now: u64) -> Result<(), Ds8kError> {
    if not_after_ms != 0 && now > not_after_ms {
        return Err(Ds8kError {
            reason: crate::ds8k::Ds8kReason::REQUEST_EXPIRED,
            detail: format!("the request expired at {not_after_ms} ms; the clock is at {now} ms"),
        });
    }
    Ok(())
}
