//! What the engine asks of the storage world, and what comes back
//! (`protocol-specs/policy.md` §5.4). The engine decides what and by which path;
//! the I/O shell (or the test harness) carries it out and reports the outcome.

use serde::{Deserialize, Serialize};

use super::inventory::VolumeFacts;
use crate::ds8k::ids::{Lss, VolumeId};

/// An action's number, unique for the life of the server.
pub type ActionId = u64;

/// Which way an action travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Route {
    /// Straight to the DS8000's HMC.
    Hmc,
    /// Through the named z/OS or z/TPF system (a host connection).
    Host(String),
}

/// FlashCopy option bits as the DS8000 defines them (`crate::ds8k::copy::FlashOptions`).
pub type FlashBits = u16;

/// One operation on one storage image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StorageOp {
    /// `mkflash` of every pair as one consistency group.
    Establish {
        /// (source, target) pairs.
        #[serde(with = "super::volume_runs::pairs")]
        pairs: Vec<(VolumeId, VolumeId)>,
        /// Option bits.
        options: FlashBits,
    },
    /// `resyncflash`: an incremental refresh of every pair at one instant.
    Resync {
        /// (source, target) pairs.
        #[serde(with = "super::volume_runs::pairs")]
        pairs: Vec<(VolumeId, VolumeId)>,
        /// Option bits.
        options: FlashBits,
    },
    /// `rmflash`; with `copy_first`, the remaining tracks are copied first.
    Withdraw {
        /// (source, target) pairs.
        #[serde(with = "super::volume_runs::pairs")]
        pairs: Vec<(VolumeId, VolumeId)>,
        /// `-cp`.
        copy_first: bool,
    },
    /// Reads the pairs' relationships (out-of-sync tracks).
    QueryFlash {
        /// (source, target) pairs.
        #[serde(with = "super::volume_runs::pairs")]
        pairs: Vec<(VolumeId, VolumeId)>,
    },
    /// One Safeguarded Copy backup consistent across the volumes.
    Backup {
        /// The sources.
        #[serde(with = "super::volume_runs::volumes")]
        volumes: Vec<VolumeId>,
    },
    /// Expires a backup and every older one.
    Expire {
        /// The backup.
        backup: u64,
    },
    /// Recovers a backup of each source to its recovery volume.
    Recover {
        /// The backup.
        backup: u64,
        /// (source, recovery) pairs.
        #[serde(with = "super::volume_runs::pairs")]
        pairs: Vec<(VolumeId, VolumeId)>,
    },
    /// Restores a backup onto the production volumes.
    Restore {
        /// The backup.
        backup: u64,
        /// The sources.
        #[serde(with = "super::volume_runs::volumes")]
        volumes: Vec<VolumeId>,
    },
    /// Reads the backups the sources hold.
    ListBackups {
        /// The sources.
        #[serde(with = "super::volume_runs::volumes")]
        volumes: Vec<VolumeId>,
    },
    /// Reads these volumes (type, size, safeguarded capacity); the outcome lists the
    /// ones that exist.
    ShowVolumes {
        /// The volumes.
        #[serde(with = "super::volume_runs::volumes")]
        volumes: Vec<VolumeId>,
        /// The image to read, when not the session's (the H2 volumes of a Metro
        /// Mirror session).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<String>,
    },
    /// Lists every volume of the image (LSVOL, page by page); the outcome is
    /// `Volumes`.
    ListVolumes,
    /// Asks the box what it holds, to find out what became of an action whose
    /// answer was lost (policy.md §8.4): its clock and frozen LSSs first, then the
    /// relationships of `pairs` and the backups of `volumes`.
    Inspect {
        /// (source, target) pairs whose relationships to read.
        #[serde(with = "super::volume_runs::pairs")]
        pairs: Vec<(VolumeId, VolumeId)>,
        /// Volumes whose backups to read.
        #[serde(with = "super::volume_runs::volumes")]
        volumes: Vec<VolumeId>,
        /// Volumes whose Metro Mirror pairs to read (LSPPRC).
        #[serde(default, with = "super::volume_runs::volumes")]
        mirror: Vec<VolumeId>,
    },
    /// `unfreezeflash`: thaws LSSs that an unfinished Flash left frozen.
    Thaw {
        /// The LSSs.
        lsss: Vec<Lss>,
    },
    /// A Metro Mirror request to the HMC of image `at` (ds8k.md §4.8).
    Mirror {
        /// The image whose HMC carries it out.
        at: String,
        /// What.
        request: MirrorRequest,
    },
    /// A HyperSwap request to a z/OS system (zos-hyperswap.md §3.5–§3.7).
    HyperSwap {
        /// The z/OS system (a host connection).
        system: String,
        /// The configuration's name (the session's).
        session: String,
        /// What.
        request: HyperSwapRequest,
    },
}

/// A Metro Mirror request (DS CLI's names; ds8k.md §3.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MirrorRequest {
    /// `mkpprcpath` from LSSs here to LSSs of `remote`, consistency group.
    Paths {
        /// The other image.
        remote: String,
        /// (LSS here, LSS there).
        lss_pairs: Vec<(Lss, Lss)>,
    },
    /// `mkpprc`: (primary here, secondary on `remote`).
    Pairs {
        /// The secondaries' image.
        remote: String,
        /// (primary, secondary).
        #[serde(with = "super::volume_runs::pairs")]
        pairs: Vec<(VolumeId, VolumeId)>,
    },
    /// `resumepprc` of primaries here.
    Resume {
        /// The primaries.
        #[serde(with = "super::volume_runs::volumes")]
        volumes: Vec<VolumeId>,
    },
    /// `pausepprc` of primaries here.
    Pause {
        /// The primaries.
        #[serde(with = "super::volume_runs::volumes")]
        volumes: Vec<VolumeId>,
    },
    /// `freezepprc` of the paths from LSSs here to `remote`.
    Freeze {
        /// The secondaries' image.
        remote: String,
        /// (primary LSS, secondary LSS).
        lss_pairs: Vec<(Lss, Lss)>,
    },
    /// `unfreezepprc` of primary LSSs here (the "run" after a freeze).
    Run {
        /// The LSSs.
        lsss: Vec<Lss>,
    },
    /// `failoverpprc` of secondaries here.
    Failover {
        /// The secondaries.
        #[serde(with = "super::volume_runs::volumes")]
        volumes: Vec<VolumeId>,
    },
    /// `failbackpprc`: (new primary here, new secondary on `remote`).
    Failback {
        /// The other image.
        remote: String,
        /// (new primary, new secondary).
        #[serde(with = "super::volume_runs::pairs")]
        pairs: Vec<(VolumeId, VolumeId)>,
    },
    /// `rmpprc` of the pairs of these primaries here that exist.
    Remove {
        /// The primaries.
        #[serde(with = "super::volume_runs::volumes")]
        volumes: Vec<VolumeId>,
    },
    /// `lspprc` of these volumes here.
    Query {
        /// The volumes.
        #[serde(with = "super::volume_runs::volumes")]
        volumes: Vec<VolumeId>,
    },
}

impl MirrorRequest {
    /// DS CLI's name.
    pub fn name(&self) -> &'static str {
        match self {
            MirrorRequest::Paths { .. } => "mkpprcpath",
            MirrorRequest::Pairs { .. } => "mkpprc",
            MirrorRequest::Resume { .. } => "resumepprc",
            MirrorRequest::Pause { .. } => "pausepprc",
            MirrorRequest::Freeze { .. } => "freezepprc",
            MirrorRequest::Run { .. } => "unfreezepprc",
            MirrorRequest::Failover { .. } => "failoverpprc",
            MirrorRequest::Failback { .. } => "failbackpprc",
            MirrorRequest::Remove { .. } => "rmpprc",
            MirrorRequest::Query { .. } => "lspprc",
        }
    }
}

/// A z/OS HyperSwap request (zos-hyperswap.md §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HyperSwapRequest {
    /// HS_LOAD_CONFIG of (primary, secondary) volumes.
    Load {
        /// The pairs, primaries first.
        pairs: Vec<(super::inventory::VolumeRef, super::inventory::VolumeRef)>,
    },
    /// HS_ENABLE.
    Enable,
    /// HS_ENABLE_FREEZE: Hardened Freeze armed, no swap.
    EnableFreeze,
    /// HS_DISABLE.
    Disable,
    /// HS_PLANNED_SWAP.
    PlannedSwap,
    /// HS_PURGE_CONFIG.
    Purge,
    /// QUERY_SYSTEM: the system's HyperSwap status.
    Query,
}

impl HyperSwapRequest {
    /// A short name.
    pub fn name(&self) -> &'static str {
        match self {
            HyperSwapRequest::Load { .. } => "load the HyperSwap configuration",
            HyperSwapRequest::Enable => "enable HyperSwap",
            HyperSwapRequest::EnableFreeze => "arm Hardened Freeze",
            HyperSwapRequest::Disable => "disable HyperSwap",
            HyperSwapRequest::PlannedSwap => "planned HyperSwap",
            HyperSwapRequest::Purge => "purge the HyperSwap configuration",
            HyperSwapRequest::Query => "query HyperSwap",
        }
    }
}

impl StorageOp {
    /// A short name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            StorageOp::Establish { .. } => "establish FlashCopy",
            StorageOp::Resync { .. } => "resync FlashCopy",
            StorageOp::Withdraw { .. } => "withdraw FlashCopy",
            StorageOp::QueryFlash { .. } => "query FlashCopy",
            StorageOp::Backup { .. } => "take backup",
            StorageOp::Expire { .. } => "expire backup",
            StorageOp::Recover { .. } => "recover backup",
            StorageOp::Restore { .. } => "restore backup",
            StorageOp::ListBackups { .. } => "list backups",
            StorageOp::ShowVolumes { .. } => "read volumes",
            StorageOp::ListVolumes => "list volumes",
            StorageOp::Inspect { .. } => "inspect the storage system",
            StorageOp::Thaw { .. } => "thaw LSSs",
            StorageOp::Mirror { request, .. } => request.name(),
            StorageOp::HyperSwap { request, .. } => request.name(),
        }
    }

    /// Where this op must go when it names its own place (Metro Mirror requests
    /// go to one image's HMC, HyperSwap requests to a z/OS system): the serial and
    /// route, given the session's H1 serial.
    pub fn directed(&self, h1_serial: &str) -> Option<(String, Route)> {
        match self {
            StorageOp::Mirror { at, .. } | StorageOp::ShowVolumes { at: Some(at), .. } => {
                Some((at.clone(), Route::Hmc))
            }
            StorageOp::HyperSwap { system, .. } => {
                Some((h1_serial.to_owned(), Route::Host(system.clone())))
            }
            _ => None,
        }
    }

    /// Whether the op only reads: sending it again cannot change the box.
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            StorageOp::QueryFlash { .. }
                | StorageOp::ListBackups { .. }
                | StorageOp::ShowVolumes { .. }
                | StorageOp::ListVolumes
                | StorageOp::Inspect { .. }
                | StorageOp::Mirror {
                    request: MirrorRequest::Query { .. },
                    ..
                }
                | StorageOp::HyperSwap {
                    request: HyperSwapRequest::Query,
                    ..
                }
        )
    }
}

/// An operation to carry out: which box, which way, what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageAction {
    /// Its number; the outcome is reported under it.
    pub id: ActionId,
    /// The storage image's serial.
    pub serial: String,
    /// HMC or a host.
    pub route: Route,
    /// The operation.
    pub op: StorageOp,
    /// The box refuses the request once its clock is past this, ms since the epoch
    /// (0: never); the shell stops waiting then (policy.md §8.4).
    #[serde(default)]
    pub not_after_ms: u64,
}

impl StorageAction {
    /// The tag the box keeps with what this action makes: the FlashCopy sequence
    /// number of an establish or resync, the tag of a backup (ds8k.md §3.1.5,
    /// §3.2). Never 0, which means "no tag" on the wire.
    pub fn token(&self) -> u32 {
        (self.id as u32).max(1)
    }
}

/// One relationship's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairProgress {
    /// Source.
    pub source: VolumeId,
    /// Target.
    pub target: VolumeId,
    /// Tracks still to copy.
    pub out_of_sync_tracks: u64,
    /// The relationship's FlashCopy sequence number (0 when not read).
    #[serde(default)]
    pub sequence: u32,
    /// Its last establish or resync, ms since the epoch (0 when not read).
    #[serde(default)]
    pub synced_ms: u64,
}

/// A backup as the box lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupFacts {
    /// Its id.
    pub id: u64,
    /// Its point in time, ms since the epoch.
    pub time_ms: u64,
    /// The volume holding it.
    pub volume: VolumeId,
    /// The tag of the request that took it (0: none, or not read).
    #[serde(default)]
    pub tag: u32,
}

/// What the box holds, as an [`StorageOp::Inspect`] read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoxView {
    /// The box's clock when it began answering, ms since the epoch.
    pub clock_ms: u64,
    /// The LSSs frozen then.
    pub frozen: Vec<Lss>,
    /// The relationships of the pairs asked about that exist.
    pub flash: Vec<PairProgress>,
    /// The backups of the volumes asked about.
    pub backups: Vec<BackupFacts>,
    /// The Metro Mirror pairs of the volumes asked about.
    #[serde(default)]
    pub mirror: Vec<MirrorPairFacts>,
}

/// A Metro Mirror pair's state (ds8k.md §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MirrorPairState {
    /// Copy pending: the first pass (or a resync) is copying.
    CopyPending,
    /// Full duplex: every write reaches both volumes.
    FullDuplex,
    /// Suspended, with the box's reason (1 pausepprc, 2 freeze, 3 path failed,
    /// 4 failover).
    Suspended(u8),
}

/// A Metro Mirror pair as LSPPRC shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorPairFacts {
    /// The primary's image.
    pub primary_serial: String,
    /// The primary.
    pub primary: VolumeId,
    /// The secondary's image.
    pub secondary_serial: String,
    /// The secondary.
    pub secondary: VolumeId,
    /// Its state.
    pub state: MirrorPairState,
    /// The secondary was failed over.
    pub failed_over: bool,
    /// Tracks to copy, or recorded while suspended.
    pub out_of_sync_tracks: u64,
}

/// A z/OS system's HyperSwap status (zos-hyperswap.md §3.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HyperSwapFacts {
    /// 0 no configuration, 1 disabled, 2 enabled, 3 swapping.
    pub state: u8,
    /// 1: the configuration's primaries are in use; 2: its secondaries (swapped).
    pub active_site: u8,
    /// The loaded configuration's name.
    pub session: String,
    /// Its pairs.
    pub pairs: u16,
}

/// What came of an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StorageOutcome {
    /// Establish or resync done.
    Flashed {
        /// Tracks to copy in the background.
        out_of_sync_tracks: u64,
    },
    /// Withdraw done.
    Withdrawn,
    /// The relationships as they stand (pairs that no longer exist are absent).
    FlashStates(Vec<PairProgress>),
    /// Backup taken.
    BackedUp {
        /// Its id.
        id: u64,
        /// Its point in time.
        time_ms: u64,
    },
    /// Expire done.
    Expired,
    /// Recover done.
    Recovered,
    /// Restore done.
    Restored {
        /// Tracks written back.
        tracks: u64,
    },
    /// The backups held.
    Backups(Vec<BackupFacts>),
    /// The volumes asked for that exist.
    Volumes(Vec<VolumeFacts>),
    /// What the box holds (an [`StorageOp::Inspect`]).
    Inspected(BoxView),
    /// LSSs thawed.
    Thawed,
    /// A Metro Mirror request done, with the count the box answered (pairs, paths,
    /// LSSs).
    Mirrored {
        /// The count.
        count: u64,
    },
    /// The Metro Mirror pairs of the volumes asked about.
    MirrorPairs(Vec<MirrorPairFacts>),
    /// A HyperSwap request done: the system's status after it.
    HyperSwapped(HyperSwapFacts),
    /// The request may have reached the box but no answer came (a deadline, a lost
    /// connection, a restart): whether the box carried it out is not known until
    /// it is asked (policy.md §8.4).
    Unknown {
        /// What happened.
        text: String,
    },
    /// The box, or the host path to it, refused or could not be reached.
    Failed {
        /// The box's reason code, or 0 when the path failed.
        reason: u16,
        /// Its text.
        text: String,
    },
}

/// What a z/OS system reports unasked about a HyperSwap configuration
/// (zos-hyperswap.md §3.11–§3.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostEvent {
    /// z/OS swapped to the secondaries on its own (EVT_UNPLANNED_SWAP).
    UnplannedSwap {
        /// The pairs swapped.
        pairs: u16,
        /// z/OS's reason.
        reason: u16,
    },
    /// HyperSwap was disabled (EVT_HS_DISABLED).
    HyperSwapDisabled {
        /// z/OS's reason.
        reason: u16,
    },
    /// A freeze trigger fired (EVT_FREEZE).
    Freeze {
        /// A hardened freeze (kind 2).
        hardened: bool,
        /// z/OS's reason.
        reason: u16,
    },
}

/// Something the box reports unasked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StorageNotice {
    /// A Metro Mirror pair whose primary is on this image was suspended
    /// (EVT_PPRC_SUSPENDED).
    PairSuspended {
        /// The primary.
        primary: VolumeId,
        /// The box's reason (ds8k.md §3.5).
        reason: u8,
    },
    /// A z/OS system's HyperSwap event about configuration `session`.
    Host {
        /// The system.
        system: String,
        /// The configuration (the session's name).
        session: String,
        /// What happened.
        event: HostEvent,
    },
    /// Safeguarded capacity was full: the box removed its oldest backup of a volume.
    BackupRolledOff {
        /// The volume.
        volume: VolumeId,
        /// The backup.
        backup: u64,
    },
}
