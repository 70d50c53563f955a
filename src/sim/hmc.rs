//! The simulated DS8000 behind the HMC protocol: a [`StorageImage`], the HMC's
//! users, and the mapping of each request to a storage operation (spec:
//! protocol-specs/ds8k.md §4). Pure: the service's ticker sets the clock.

use serde::Deserialize;

use super::security::{ProfileConfig, Security, SystemConfigError, UserConfig, default_revoke};
use crate::codec::fields::Ebcdic;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::ds8k::{Ds8kError, FenceTable, StorageImageId, VolumeId, VolumeKind};
use crate::proto::ds8k::{
    BackupEntry, Ds8k, Ds8kBody, Ds8kMessageType, FlashEntry, PathEntry, PprcEntry, VolumeWire,
};
use crate::proto::logon::LogonRequest;
use crate::proto::session::{LogonDecision, ServerBackend};
use crate::proto::{CommonReason, ReplyStatus, ReturnCode};
use crate::sim::ds8k::{
    BackupInfo, Complex, FlashInfo, ImageConfig, LssRef, MirrorConfig, MirrorEvent, MirrorVolume,
    PairState, PathKey, StorageEvent, StorageImage, VolumeInfo,
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

/// The images of one simulated complex, shared by their HMCs.
pub type SharedComplex = Arc<Mutex<Complex>>;

/// One simulated DS8000 storage image and its HMC; the image lives in a
/// [`Complex`] it may share with others (Metro Mirror, ds8k.md §3.5).
pub struct Ds8kSystem {
    complex: SharedComplex,
    site: u8,
    security: Security,
    serial: Ebcdic<8>,
    hmc: Ebcdic<8>,
    clock_ms: u64,
    fences: FenceTable,
}

/// The complex, locked; a poisoned lock is taken as it is (the model's
/// operations leave it consistent at every return).
fn lock(complex: &SharedComplex) -> MutexGuard<'_, Complex> {
    complex.lock().unwrap_or_else(|p| p.into_inner())
}

/// A storage image of a complex, read through the complex's lock.
pub struct ImageRef<'a> {
    guard: MutexGuard<'a, Complex>,
    site: u8,
}

impl std::ops::Deref for ImageRef<'_> {
    type Target = StorageImage;
    fn deref(&self) -> &StorageImage {
        // The site was given by the complex that holds it.
        &self.guard.images()[usize::from(self.site)]
    }
}

/// A storage image of a complex, changed through the complex's lock.
pub struct ImageMut<'a> {
    guard: MutexGuard<'a, Complex>,
    site: u8,
}

impl std::ops::Deref for ImageMut<'_> {
    type Target = StorageImage;
    fn deref(&self) -> &StorageImage {
        &self.guard.images()[usize::from(self.site)]
    }
}

impl std::ops::DerefMut for ImageMut<'_> {
    fn deref_mut(&mut self) -> &mut StorageImage {
        &mut self.guard.images_mut()[usize::from(self.site)]
    }
}

/// The storage image `cfg` describes, its volumes made.
fn build_image(cfg: &Ds8kSystemConfig) -> Result<StorageImage, Ds8kConfigError> {
    let id =
        StorageImageId::parse(&cfg.image).map_err(|e| Ds8kConfigError::Storage(e.to_string()))?;
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
                let tracks = u64::from(kind.tracks()) * u64::from(range.safeguarded_percent) / 100;
                image
                    .set_safeguarded_capacity(vid, tracks.max(1))
                    .map_err(storage)?;
            }
        }
    }
    Ok(image)
}

impl Ds8kSystem {
    /// Builds one image alone, looking key variables up with `env`.
    pub fn with_keys(
        cfg: &Ds8kSystemConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Ds8kSystem, Ds8kConfigError> {
        let mut all = Self::complex_with_keys(&[cfg], MirrorConfig::default(), env)?;
        all.pop()
            .ok_or_else(|| Ds8kConfigError::Storage("no storage image".into()))
    }

    /// Builds images that share one complex (Metro Mirror between them), one HMC
    /// each, in the order given (site 0, 1, …).
    pub fn complex_with_keys(
        cfgs: &[&Ds8kSystemConfig],
        mirror: MirrorConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<Ds8kSystem>, Ds8kConfigError> {
        if cfgs.len() > usize::from(u8::MAX) {
            return Err(Ds8kConfigError::Storage(
                "a complex holds at most 255 storage images".into(),
            ));
        }
        let images = cfgs
            .iter()
            .map(|c| build_image(c))
            .collect::<Result<Vec<_>, _>>()?;
        let mut serials = std::collections::BTreeSet::new();
        for image in &images {
            if !serials.insert(image.id().serial().to_string()) {
                return Err(Ds8kConfigError::Storage(format!(
                    "storage image {} is configured twice",
                    image.id()
                )));
            }
        }
        let complex: SharedComplex = Arc::new(Mutex::new(Complex::new(images, mirror)));
        let text = |s: &str| Ebcdic::new(s).map_err(SystemConfigError::from);
        cfgs.iter()
            .enumerate()
            .map(|(site, cfg)| {
                let id = StorageImageId::parse(&cfg.image)
                    .map_err(|e| Ds8kConfigError::Storage(e.to_string()))?;
                Ok(Ds8kSystem {
                    complex: complex.clone(),
                    site: site as u8,
                    serial: text(id.serial())?,
                    hmc: text(&cfg.hmc)?,
                    security: {
                        let mut security =
                            Security::new(cfg.revoke_after, &cfg.users, &cfg.ptktdata, &env)?;
                        security.set_resume_after(cfg.resume_after_secs);
                        security
                    },
                    clock_ms: 0,
                    fences: FenceTable::default(),
                })
            })
            .collect()
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
    pub fn image(&self) -> ImageRef<'_> {
        ImageRef {
            guard: lock(&self.complex),
            site: self.site,
        }
    }

    /// The storage image, to script tests.
    pub fn image_mut(&mut self) -> ImageMut<'_> {
        ImageMut {
            guard: lock(&self.complex),
            site: self.site,
        }
    }

    /// The complex this image is in (Metro Mirror, links), to script tests and demos.
    pub fn complex(&self) -> MutexGuard<'_, Complex> {
        lock(&self.complex)
    }

    /// This image's index in its complex.
    pub fn site(&self) -> u8 {
        self.site
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
        lock(&self.complex).tick(self.clock_ms);
        self.drain_events(now_ms)
    }

    /// What this image's HMC reports since the last call (the complex ticked by
    /// another image's HMC): its image's events and its pairs' (ds8k.md §4.7, §4.9).
    pub fn drain_events(&mut self, now_ms: u64) -> Vec<Ds8kBody> {
        self.clock_ms = self.clock_ms.max(now_ms);
        let time_ms = self.clock_ms;
        let site = self.site;
        let mut complex = lock(&self.complex);
        let serial = |c: &Complex, site: u8| {
            c.image(site)
                .ok()
                .and_then(|i| Ebcdic::new(i.id().serial()).ok())
                .unwrap_or_default()
        };
        let mut mirror = Vec::new();
        while let Some(e) = complex.poll_event_for(site) {
            mirror.push(match e {
                MirrorEvent::Suspended {
                    primary,
                    secondary,
                    reason,
                } => Ds8kBody::PprcSuspendedEvent {
                    primary: primary.volume,
                    remote: serial(&complex, secondary.site),
                    secondary: secondary.volume,
                    reason: reason as u8,
                    time_ms,
                },
                MirrorEvent::Duplex { primary, secondary } => Ds8kBody::PprcDuplexEvent {
                    primary: primary.volume,
                    remote: serial(&complex, secondary.site),
                    secondary: secondary.volume,
                    time_ms,
                },
                MirrorEvent::LongBusyTimedOut { lss } => Ds8kBody::PprcLongBusyEndedEvent {
                    lss: lss.lss,
                    time_ms,
                },
            });
        }
        let Some(image) = complex.images_mut().get_mut(usize::from(site)) else {
            return mirror;
        };
        std::iter::from_fn(|| image.poll_event())
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
            .chain(mirror)
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
        let site = self.site;
        let mut complex = lock(&self.complex);
        if on_the_complex(body) {
            return pprc(&mut complex, site, body, now);
        }
        keep_pairs_whole(&complex, site, body)?;
        let img = &mut complex.images_mut()[usize::from(site)];
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
            B::ListVolumesRequest { first, max } => {
                let ids: Vec<_> = img
                    .volume_ids_from(*first)
                    .take(usize::from(*max))
                    .collect();
                let entries = ids
                    .into_iter()
                    .filter_map(|v| img.query_volume(v).ok())
                    .map(|info| volume_wire(&info))
                    .collect();
                B::ListVolumesReply {
                    status: ReplyStatus::OK,
                    entries,
                }
            }

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

/// `volume` on image `site`.
fn at(site: u8, volume: VolumeId) -> MirrorVolume {
    MirrorVolume { site, volume }
}

/// A volume in a Metro Mirror pair keeps its data only through the mirror
/// (ds8k.md §3.5): deleting it, or a FlashCopy, recover or restore writing onto
/// it, is refused.
fn keep_pairs_whole(complex: &Complex, site: u8, body: &Ds8kBody) -> Result<(), Ds8kError> {
    use Ds8kBody as B;
    let written: Vec<VolumeId> = match body {
        B::DeleteVolumeRequest { volume } => vec![*volume],
        B::FlashRequest { pairs, .. } | B::RecoverRequest { pairs, .. } => {
            pairs.iter().map(|p| p.target).collect()
        }
        B::RestoreRequest { volumes, .. } => volumes.clone(),
        _ => return Ok(()),
    };
    match written.into_iter().find(|v| complex.in_pair(at(site, *v))) {
        Some(v) => Err(Ds8kError {
            reason: crate::ds8k::Ds8kReason::VOLUME_IN_USE,
            detail: format!("{v} is in a Metro Mirror pair"),
        }),
        None => Ok(()),
    }
}

/// The other image a request names, by serial.
fn remote_site(complex: &Complex, remote: &Ebcdic<8>) -> Result<u8, Ds8kError> {
    complex.site_of(remote.as_str()).ok_or_else(|| Ds8kError {
        reason: crate::ds8k::Ds8kReason::UNKNOWN_IMAGE,
        detail: format!("no storage image {} in this complex", remote.as_str()),
    })
}

fn counted(t: Ds8kMessageType, n: usize) -> Ds8kBody {
    Ds8kBody::CountReply {
        message_type: t,
        status: ReplyStatus::OK,
        count: n as u64,
    }
}

/// Host I/O and the Metro Mirror requests need the complex rather than one image.
fn on_the_complex(body: &Ds8kBody) -> bool {
    use Ds8kBody as B;
    matches!(
        body,
        B::WriteTrackRequest { .. }
            | B::ReadTrackRequest { .. }
            | B::PathRequest { .. }
            | B::ListPathsRequest
            | B::PprcPairsRequest { .. }
            | B::PprcVolumesRequest { .. }
            | B::FreezePprcRequest { .. }
            | B::UnfreezePprcRequest { .. }
            | B::ListPprcRequest { .. }
    )
}

/// Host I/O and the Metro Mirror requests (ds8k.md §3.5, §4.4, §4.8).
fn pprc(complex: &mut Complex, site: u8, body: &Ds8kBody, now: u64) -> Result<Ds8kBody, Ds8kError> {
    use Ds8kBody as B;
    use Ds8kMessageType as T;
    let lss = |site: u8, lss: crate::ds8k::Lss| LssRef { site, lss };
    match body {
        B::WriteTrackRequest { volume, track, tag } => {
            complex.write_track(now, at(site, *volume), *track, *tag)?;
            Ok(counted(T::WRITE_TRACK, 0))
        }
        B::ReadTrackRequest { volume, track } => Ok(B::TrackReply {
            status: ReplyStatus::OK,
            tag: complex.read_track(at(site, *volume), *track)?,
        }),
        B::PathRequest {
            remove,
            remote,
            options,
            lss_pairs,
            ..
        } => {
            let r = remote_site(complex, remote)?;
            for &(from, to) in lss_pairs {
                let key = PathKey {
                    from: lss(site, from),
                    to: lss(r, to),
                };
                if *remove {
                    complex.remove_path(key)?;
                } else {
                    let cg = options & crate::proto::ds8k::messages::PATH_CONSISTENCY_GROUP != 0;
                    complex.make_path(key.from, key.to, cg)?;
                }
            }
            let t = if *remove {
                T::RMPPRCPATH
            } else {
                T::MKPPRCPATH
            };
            Ok(counted(t, lss_pairs.len()))
        }
        B::ListPathsRequest => {
            let entries = complex
                .paths()
                .filter(|p| p.key.from.site == site)
                .take(crate::proto::ds8k::messages::MAX_PATH_ENTRIES)
                .map(|p| PathEntry {
                    lss: p.key.from.lss,
                    remote: serial_of(complex, p.key.to.site),
                    remote_lss: p.key.to.lss,
                    options: if p.consistency_group {
                        crate::proto::ds8k::messages::PATH_CONSISTENCY_GROUP
                    } else {
                        0
                    },
                    up: p.up,
                })
                .collect();
            Ok(B::ListPathsReply {
                status: ReplyStatus::OK,
                entries,
            })
        }
        B::PprcPairsRequest {
            failback,
            options,
            remote,
            pairs,
            ..
        } => {
            let r = remote_site(complex, remote)?;
            let pairs: Vec<(MirrorVolume, MirrorVolume)> = pairs
                .iter()
                .map(|p| (at(site, p.source), at(r, p.target)))
                .collect();
            if *failback {
                complex.failback(&pairs)?;
                Ok(counted(T::FAILBACKPPRC, pairs.len()))
            } else {
                let no_copy = options & crate::proto::ds8k::messages::PPRC_NO_COPY != 0;
                complex.establish(&pairs, no_copy)?;
                Ok(counted(T::MKPPRC, pairs.len()))
            }
        }
        B::PprcVolumesRequest {
            message_type,
            volumes,
            ..
        } => {
            let vols: Vec<MirrorVolume> = volumes.iter().map(|v| at(site, *v)).collect();
            let n = match *message_type {
                T::PAUSEPPRC => complex.suspend(&vols)?,
                T::RESUMEPPRC => complex.resume(&vols)?,
                T::FAILOVERPPRC => complex.failover(&vols)?,
                _ => complex.remove(&vols)?,
            };
            Ok(counted(*message_type, n))
        }
        B::FreezePprcRequest {
            remote, lss_pairs, ..
        } => {
            let r = remote_site(complex, remote)?;
            let keys: Vec<PathKey> = lss_pairs
                .iter()
                .map(|&(from, to)| PathKey {
                    from: lss(site, from),
                    to: lss(r, to),
                })
                .collect();
            let n = complex.freeze(now, &keys)?;
            Ok(counted(T::FREEZEPPRC, n))
        }
        B::UnfreezePprcRequest { lsss, .. } => {
            let lsss: Vec<LssRef> = lsss.iter().map(|l| lss(site, *l)).collect();
            let n = complex.unfreeze(&lsss)?;
            Ok(counted(T::UNFREEZEPPRC, n))
        }
        B::ListPprcRequest { volume } => {
            complex.image(site)?.query_volume(*volume)?;
            let entries = complex
                .pair_of(at(site, *volume))
                .map(|p| PprcEntry {
                    primary_serial: serial_of(complex, p.primary.site),
                    primary: p.primary.volume,
                    secondary_serial: serial_of(complex, p.secondary.site),
                    secondary: p.secondary.volume,
                    state: match p.state {
                        PairState::CopyPending => 1,
                        PairState::FullDuplex => 2,
                        PairState::Suspended(_) => 3,
                    },
                    reason: match p.state {
                        PairState::Suspended(r) => r as u8,
                        _ => 0,
                    },
                    failed_over: p.failed_over,
                    out_of_sync_tracks: p.out_of_sync_tracks,
                })
                .into_iter()
                .collect();
            Ok(B::ListPprcReply {
                status: ReplyStatus::OK,
                entries,
            })
        }
        _ => Err(Ds8kError {
            reason: crate::ds8k::Ds8kReason(CommonReason::UNKNOWN_MESSAGE.0),
            detail: format!("{} is not a Metro Mirror request", body.name()),
        }),
    }
}

/// An image's serial as a CHAR8.
fn serial_of(complex: &Complex, site: u8) -> Ebcdic<8> {
    complex
        .image(site)
        .ok()
        .and_then(|i| Ebcdic::new(i.id().serial()).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ds8k::{Ds8kReason, Fence, Lss, PairKey};

    fn complex() -> Vec<Ds8kSystem> {
        let cfg = |serial: &str| -> Ds8kSystemConfig {
            toml::from_str(&format!(
                "image = \"IBM.2107-{serial}\"\n[[volumes]]\nids = \"3000-3003\"\nckd_cylinders = 1\n"
            ))
            .expect("config")
        };
        let (h1, h2) = (cfg("75FA120"), cfg("75FA121"));
        Ds8kSystem::complex_with_keys(&[&h1, &h2], MirrorConfig::default(), |_| None)
            .expect("complex")
    }

    fn refused(system: &mut Ds8kSystem, body: Ds8kBody) -> Ds8kReason {
        match system.run(&body, 1_700_000_000_000) {
            Err(e) => e.reason,
            Ok(reply) => panic!("carried out: {reply:?}"),
        }
    }

    /// ds8k.md §3.4: the fence is checked first, before the deadline; §3.5: a volume
    /// in a Metro Mirror pair is kept out of what would change it behind the mirror.
    #[test]
    fn the_fence_comes_before_the_deadline_and_pairs_stay_whole() {
        let mut systems = complex();
        let h1 = &mut systems[0];
        let domain = 7;
        h1.run(
            &Ds8kBody::FenceRequest {
                fence: Fence { domain, epoch: 2 },
            },
            0,
        )
        .expect("fence");
        let expired_and_old = Ds8kBody::FlashRequest {
            fence: Fence { domain, epoch: 1 },
            resync: false,
            options: crate::ds8k::FlashOptions(0),
            sequence: 0,
            not_after_ms: 1,
            pairs: vec![PairKey {
                source: VolumeId(0x3000),
                target: VolumeId(0x3001),
            }],
        };
        assert_eq!(refused(h1, expired_and_old), Ds8kReason::FENCED);

        let remote = Ebcdic::new("75FA121").expect("serial");
        h1.run(
            &Ds8kBody::PathRequest {
                fence: Fence::NONE,
                remove: false,
                remote: remote.clone(),
                options: 0,
                lss_pairs: vec![(Lss(0x30), Lss(0x30))],
            },
            0,
        )
        .expect("path");
        h1.run(
            &Ds8kBody::PprcPairsRequest {
                fence: Fence::NONE,
                failback: false,
                options: crate::proto::ds8k::messages::PPRC_NO_COPY,
                remote,
                pairs: vec![PairKey {
                    source: VolumeId(0x3000),
                    target: VolumeId(0x3000),
                }],
            },
            0,
        )
        .expect("pair");
        assert_eq!(
            refused(
                h1,
                Ds8kBody::DeleteVolumeRequest {
                    volume: VolumeId(0x3000)
                }
            ),
            Ds8kReason::VOLUME_IN_USE
        );
        let onto_primary = Ds8kBody::FlashRequest {
            fence: Fence::NONE,
            resync: false,
            options: crate::ds8k::FlashOptions(0),
            sequence: 0,
            not_after_ms: 0,
            pairs: vec![PairKey {
                source: VolumeId(0x3001),
                target: VolumeId(0x3000),
            }],
        };
        assert_eq!(refused(h1, onto_primary), Ds8kReason::VOLUME_IN_USE);
        // The secondary's image refuses a host write to it.
        let h2 = &mut systems[1];
        assert_eq!(
            refused(
                h2,
                Ds8kBody::WriteTrackRequest {
                    volume: VolumeId(0x3000),
                    track: 0,
                    tag: 1
                }
            ),
            Ds8kReason::SECONDARY_READ_ONLY
        );
    }
}
