//! DS8000 ("HMC") protocol messages (spec: protocol-specs/ds8k.md §4).
//!
//! The connection is to one storage image, so volumes travel as bare `u16` ids
//! (`XYZZ`) and the image's serial comes in the logon reply. Requests name the
//! DS CLI command they stand for. Times are milliseconds since the epoch.

use crate::codec::fields::Ebcdic;
use crate::ds8k::{Fence, FlashOptions, Lss, PairKey, VolumeId, VolumeKind};
use crate::proto::{FrameKind, Message, Protocol, ReplyStatus};

use crate::wire_enum;

pub use crate::proto::logon::{Credential, CredentialKind, LogonReply, LogonRequest};

/// Most pairs in one MKFLASH / RESYNCFLASH / RMFLASH / RECOVER_BACKUP (§4.5): every
/// volume of a full image (65,280) in a pair, so a whole-box session is one request
/// and one consistency group.
pub const MAX_PAIRS: usize = 32_640;
/// Most volumes in one SGC_BACKUP / RESTORE_BACKUP (§4.6): a full image.
pub const MAX_VOLUMES: usize = 65_280;
/// Most LSSs in one UNFREEZEFLASH.
pub const MAX_LSSS: usize = 255;
/// Most entries in an LSFLASH reply (12 targets and one source).
pub const MAX_FLASH_ENTRIES: usize = 13;
/// Most entries in an LSBACKUP reply.
pub const MAX_BACKUP_ENTRIES: usize = 2_000;
/// Most LSS pairs in one MKPPRCPATH, RMPPRCPATH or FREEZEPPRC (§4.8).
pub const MAX_LSS_PAIRS: usize = 255;
/// Most entries in an LSPPRCPATH reply.
pub const MAX_PATH_ENTRIES: usize = 1_024;
/// Most volumes one LSVOL reply lists (§4.3): 1,000 entries of 56 bytes stay inside
/// a 64 KiB frame.
pub const MAX_LSVOL_ENTRIES: usize = 1_000;
/// MKPPRCPATH option: a path failure or a freeze holds the primary LSS's writes.
pub const PATH_CONSISTENCY_GROUP: u16 = 0x0001;
/// MKPPRC option: `-mode nocp`, the volumes are already the same.
pub const PPRC_NO_COPY: u16 = 0x0001;

wire_enum! {
    /// DS8000 protocol message types (§4, table 1).
    pub struct Ds8kMessageType(u16) {
        /// Log on to the HMC (user and password).
        LOGON = 0x0400,
        /// Liveness, either direction.
        HEARTBEAT = 0x0401,
        /// The storage image: serial, counts, clock.
        QUERY_IMAGE = 0x0402,
        /// Show the box a fence domain's epoch; answers the highest it has seen.
        FENCE = 0x0403,
        /// `mkckdvol` / `mkfbvol`.
        MKVOL = 0x0410,
        /// `rmckdvol` / `rmfbvol`.
        RMVOL = 0x0411,
        /// `showckdvol` / `showfbvol`.
        SHOWVOL = 0x0412,
        /// List the volumes from an id on.
        LSVOL = 0x0413,
        /// Simulated host write of one track.
        WRITE_TRACK = 0x0420,
        /// Simulated host read of one track.
        READ_TRACK = 0x0421,
        /// `mkflash`.
        MKFLASH = 0x0430,
        /// `resyncflash`.
        RESYNCFLASH = 0x0431,
        /// `rmflash`.
        RMFLASH = 0x0432,
        /// `lsflash` for one volume.
        LSFLASH = 0x0433,
        /// `unfreezeflash`.
        UNFREEZEFLASH = 0x0434,
        /// The image's clock and its frozen LSSs.
        LSFROZEN = 0x0435,
        /// `manageckdvol -action mksafeguardedcap` (set capacity).
        MKSGCAP = 0x0440,
        /// Take a Safeguarded Copy backup.
        SGC_BACKUP = 0x0441,
        /// List a volume's backups.
        LSBACKUP = 0x0442,
        /// Recover a backup to recovery volumes.
        RECOVER_BACKUP = 0x0443,
        /// Expire a backup and every older one.
        EXPIRE_BACKUP = 0x0444,
        /// Restore a backup to production.
        RESTORE_BACKUP = 0x0445,
        /// `mkpprcpath`.
        MKPPRCPATH = 0x0450,
        /// `rmpprcpath`.
        RMPPRCPATH = 0x0451,
        /// `lspprcpath`: the paths from this image.
        LSPPRCPATH = 0x0452,
        /// `mkpprc -type mmir`.
        MKPPRC = 0x0453,
        /// `pausepprc`.
        PAUSEPPRC = 0x0454,
        /// `resumepprc`.
        RESUMEPPRC = 0x0455,
        /// `failoverpprc`, to the secondaries' image.
        FAILOVERPPRC = 0x0456,
        /// `failbackpprc`, to the new primaries' image.
        FAILBACKPPRC = 0x0457,
        /// `freezepprc`.
        FREEZEPPRC = 0x0458,
        /// `unfreezepprc`.
        UNFREEZEPPRC = 0x0459,
        /// `rmpprc`.
        RMPPRC = 0x045A,
        /// `lspprc` of one volume.
        LSPPRC = 0x045B,
        /// Log off.
        LOGOFF = 0x04FF,
        /// Background copy of a relationship completed.
        EVT_COPY_COMPLETE = 0x0481,
        /// Safeguarded capacity filled; the oldest backup rolled off.
        EVT_BACKUP_ROLLED_OFF = 0x0482,
        /// A freeze timed out (extended long busy ended).
        EVT_FREEZE_TIMED_OUT = 0x0483,
        /// A PPRC pair stopped mirroring.
        EVT_PPRC_SUSPENDED = 0x0484,
        /// A PPRC pair reached full duplex.
        EVT_PPRC_DUPLEX = 0x0485,
        /// A PPRC hold (extended long busy) of an LSS timed out.
        EVT_PPRC_LONG_BUSY_ENDED = 0x0486,
        /// The peer broke the protocol.
        PROTOCOL_ERROR = 0x7FFF,
    }
}

wire_enum! {
    /// Connection-level reason codes of the DS8000 protocol (§5). Storage refusals
    /// are `crate::ds8k::Ds8kReason` (0x0Dxx).
    pub struct Ds8kProtocolReason(u16) {
        /// LOGON on a logged-on connection.
        ALREADY_LOGGED_ON = 0x0C01,
        /// The HMC takes passwords and passphrases only.
        CREDENTIAL_KIND_UNSUPPORTED = 0x0C02,
    }
}

/// Every message of the DS8000 protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ds8kBody {
    /// §4.2.
    QueryImageRequest,
    /// §4.2.
    ImageReply {
        /// Outcome.
        status: ReplyStatus,
        /// Storage image serial.
        serial: Ebcdic<8>,
        /// Volumes.
        volumes: u32,
        /// FlashCopy relationships.
        relationships: u32,
        /// Backups (image-wide ids).
        backups: u32,
        /// Frozen LSSs.
        frozen_lsss: u16,
        /// The image's clock, ms.
        clock_ms: u64,
    },
    /// §4.2 FENCE.
    FenceRequest {
        /// The sender's domain (not 0) and epoch.
        fence: Fence,
    },
    /// §4.2.
    FenceReply {
        /// Outcome.
        status: ReplyStatus,
        /// The highest epoch the box has seen from the domain.
        epoch: u64,
    },
    /// §4.3 `mkckdvol` / `mkfbvol`.
    CreateVolumeRequest {
        /// Id.
        volume: VolumeId,
        /// Type and size.
        kind: VolumeKind,
        /// Nickname.
        name: Ebcdic<16>,
    },
    /// §4.3.
    DeleteVolumeRequest {
        /// Id.
        volume: VolumeId,
    },
    /// §4.3.
    ShowVolumeRequest {
        /// Id.
        volume: VolumeId,
    },
    /// §4.3.
    VolumeReply {
        /// Outcome.
        status: ReplyStatus,
        /// The volume.
        volume: VolumeWire,
    },
    /// §4.3 LSVOL: the volumes with an id from `first` on, ascending.
    ListVolumesRequest {
        /// The first id to list.
        first: VolumeId,
        /// At most this many, 1 to [`MAX_LSVOL_ENTRIES`].
        max: u16,
    },
    /// §4.3.
    ListVolumesReply {
        /// Outcome.
        status: ReplyStatus,
        /// The volumes, ascending (fewer than asked: none after the last).
        entries: Vec<VolumeWire>,
    },
    /// §4.4.
    WriteTrackRequest {
        /// Volume.
        volume: VolumeId,
        /// Track.
        track: u32,
        /// Version tag written (0 = zeroes).
        tag: u64,
    },
    /// §4.4.
    ReadTrackRequest {
        /// Volume.
        volume: VolumeId,
        /// Track.
        track: u32,
    },
    /// §4.4.
    TrackReply {
        /// Outcome.
        status: ReplyStatus,
        /// Version tag read.
        tag: u64,
    },
    /// §4.5 `mkflash` (type MKFLASH) or `resyncflash` (type RESYNCFLASH).
    FlashRequest {
        /// Its writer's fence domain and epoch (§3.4; none for hosts).
        fence: Fence,
        /// MKFLASH or RESYNCFLASH.
        resync: bool,
        /// Options.
        options: FlashOptions,
        /// The client's sequence number for the pairs (`-seqnum`; 0: the box picks).
        sequence: u32,
        /// The box refuses the request once its clock is past this (0: never).
        not_after_ms: u64,
        /// Pairs, 1 to [`MAX_PAIRS`].
        pairs: Vec<PairKey>,
    },
    /// §4.5.
    FlashReply {
        /// MKFLASH or RESYNCFLASH.
        resync: bool,
        /// Outcome.
        status: ReplyStatus,
        /// Consistency group sequence number.
        sequence: u32,
        /// Pairs done.
        pair_count: u16,
        /// Out-of-sync tracks after the operation.
        out_of_sync_tracks: u64,
    },
    /// §4.5 `rmflash`.
    WithdrawRequest {
        /// Its writer's fence domain and epoch (§3.4; none for hosts).
        fence: Fence,
        /// `-cp`: copy the rest first, end when done.
        copy_first: bool,
        /// Pairs.
        pairs: Vec<PairKey>,
    },
    /// §4.5 `lsflash`.
    ListFlashRequest {
        /// Volume.
        volume: VolumeId,
    },
    /// §4.5.
    ListFlashReply {
        /// Outcome.
        status: ReplyStatus,
        /// Relationships of the volume.
        entries: Vec<FlashEntry>,
    },
    /// §4.5 `unfreezeflash`.
    UnfreezeRequest {
        /// Its writer's fence domain and epoch (§3.4; none for hosts).
        fence: Fence,
        /// LSSs to thaw.
        lsss: Vec<Lss>,
    },
    /// §4.5 LSFROZEN.
    FrozenRequest,
    /// §4.5.
    FrozenReply {
        /// Outcome.
        status: ReplyStatus,
        /// The image's clock when it answered, ms.
        clock_ms: u64,
        /// The LSSs frozen now.
        lsss: Vec<Lss>,
    },
    /// §4.6 set safeguarded capacity.
    SetCapacityRequest {
        /// Volume.
        volume: VolumeId,
        /// Capacity, tracks.
        tracks: u64,
    },
    /// §4.6.
    BackupRequest {
        /// Its writer's fence domain and epoch (§3.4; none for hosts).
        fence: Fence,
        /// The client's tag, kept with the backup and listed by LSBACKUP (0: none).
        tag: u32,
        /// The box refuses the request once its clock is past this (0: never).
        not_after_ms: u64,
        /// Volumes of the consistency group.
        volumes: Vec<VolumeId>,
    },
    /// §4.6.
    BackupReply {
        /// Outcome.
        status: ReplyStatus,
        /// Backup id.
        backup_id: u64,
        /// Point in time, ms.
        time_ms: u64,
        /// Volumes in the backup.
        volume_count: u16,
    },
    /// §4.6.
    ListBackupsRequest {
        /// Volume.
        volume: VolumeId,
    },
    /// §4.6.
    ListBackupsReply {
        /// Outcome.
        status: ReplyStatus,
        /// Backups, oldest first.
        entries: Vec<BackupEntry>,
    },
    /// §4.6.
    RecoverRequest {
        /// Its writer's fence domain and epoch (§3.4; none for hosts).
        fence: Fence,
        /// Backup id.
        backup_id: u64,
        /// (production, recovery) pairs.
        pairs: Vec<PairKey>,
    },
    /// §4.6.
    ExpireRequest {
        /// Its writer's fence domain and epoch (§3.4; none for hosts).
        fence: Fence,
        /// Backup id (it and every older one expire).
        backup_id: u64,
    },
    /// §4.6.
    RestoreRequest {
        /// Its writer's fence domain and epoch (§3.4; none for hosts).
        fence: Fence,
        /// Backup id.
        backup_id: u64,
        /// Production volumes.
        volumes: Vec<VolumeId>,
    },
    /// §4.8 `mkpprcpath` (type MKPPRCPATH) or `rmpprcpath` (RMPPRCPATH).
    PathRequest {
        /// Its writer's fence domain and epoch (§3.4).
        fence: Fence,
        /// RMPPRCPATH.
        remove: bool,
        /// The other image's serial.
        remote: Ebcdic<8>,
        /// [`PATH_CONSISTENCY_GROUP`] (MKPPRCPATH only; 0 on RMPPRCPATH).
        options: u16,
        /// (this image's LSS, the other's), 1 to [`MAX_LSS_PAIRS`].
        lss_pairs: Vec<(Lss, Lss)>,
    },
    /// §4.8 LSPPRCPATH.
    ListPathsRequest,
    /// §4.8.
    ListPathsReply {
        /// Outcome.
        status: ReplyStatus,
        /// The paths from this image.
        entries: Vec<PathEntry>,
    },
    /// §4.8 `mkpprc` (primaries here, secondaries on `remote`) or `failbackpprc`
    /// (new primaries here).
    PprcPairsRequest {
        /// Its writer's fence domain and epoch (§3.4).
        fence: Fence,
        /// FAILBACKPPRC.
        failback: bool,
        /// [`PPRC_NO_COPY`] (MKPPRC only).
        options: u16,
        /// The other image's serial.
        remote: Ebcdic<8>,
        /// (volume here, volume there).
        pairs: Vec<PairKey>,
    },
    /// §4.8 PAUSEPPRC, RESUMEPPRC, RMPPRC (primaries here) or FAILOVERPPRC
    /// (secondaries here).
    PprcVolumesRequest {
        /// Its writer's fence domain and epoch (§3.4).
        fence: Fence,
        /// Which of the four.
        message_type: Ds8kMessageType,
        /// The volumes.
        volumes: Vec<VolumeId>,
    },
    /// §4.8 FREEZEPPRC.
    FreezePprcRequest {
        /// Its writer's fence domain and epoch (§3.4).
        fence: Fence,
        /// The secondaries' image.
        remote: Ebcdic<8>,
        /// (primary LSS here, secondary LSS there).
        lss_pairs: Vec<(Lss, Lss)>,
    },
    /// §4.8 UNFREEZEPPRC.
    UnfreezePprcRequest {
        /// Its writer's fence domain and epoch (§3.4).
        fence: Fence,
        /// Primary LSSs here.
        lsss: Vec<Lss>,
    },
    /// §4.8 LSPPRC.
    ListPprcRequest {
        /// The volume.
        volume: VolumeId,
    },
    /// §4.8.
    ListPprcReply {
        /// Outcome.
        status: ReplyStatus,
        /// The volume's pair, if it is in one (0 or 1 entry).
        entries: Vec<PprcEntry>,
    },
    /// §4.9.
    PprcSuspendedEvent {
        /// Primary (this image).
        primary: VolumeId,
        /// The secondary's image.
        remote: Ebcdic<8>,
        /// Secondary.
        secondary: VolumeId,
        /// 1 pausepprc, 2 freeze, 3 path failed, 4 failover.
        reason: u8,
        /// When, ms.
        time_ms: u64,
    },
    /// §4.9.
    PprcDuplexEvent {
        /// Primary (this image).
        primary: VolumeId,
        /// The secondary's image.
        remote: Ebcdic<8>,
        /// Secondary.
        secondary: VolumeId,
        /// When, ms.
        time_ms: u64,
    },
    /// §4.9.
    PprcLongBusyEndedEvent {
        /// The LSS.
        lss: Lss,
        /// When, ms.
        time_ms: u64,
    },
    /// A reply whose body after RC is one count (§4, table 1): RMFLASH pairs,
    /// UNFREEZEFLASH LSSs, RECOVER_BACKUP pairs, EXPIRE_BACKUP backups, RESTORE_BACKUP
    /// tracks; and a reply with nothing after RC (count absent): MKVOL, RMVOL,
    /// WRITE_TRACK, MKSGCAP, LOGOFF.
    CountReply {
        /// The request's type.
        message_type: Ds8kMessageType,
        /// Outcome.
        status: ReplyStatus,
        /// The count (0 for the types without one).
        count: u64,
    },
    /// §4.7.
    CopyCompleteEvent {
        /// Source and target.
        key: PairKey,
        /// The relationship ended with it.
        ended: bool,
        /// When, ms.
        time_ms: u64,
    },
    /// §4.7.
    BackupRolledOffEvent {
        /// Volume.
        volume: VolumeId,
        /// Backup removed.
        backup_id: u64,
        /// When, ms.
        time_ms: u64,
    },
    /// §4.7.
    FreezeTimedOutEvent {
        /// LSS.
        lss: Lss,
        /// When, ms.
        time_ms: u64,
    },
}

/// One LSFLASH entry (§4.5, 44 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashEntry {
    /// Source and target.
    pub key: PairKey,
    /// Options in force.
    pub options: FlashOptions,
    /// Background copy running.
    pub copying: bool,
    /// Consistency group sequence number.
    pub sequence: u32,
    /// Out-of-sync tracks.
    pub out_of_sync_tracks: u64,
    /// Tracks changed since the last flash (recording).
    pub changed_tracks: u64,
    /// Established, ms.
    pub created_ms: u64,
    /// Last flash or resync, ms.
    pub synced_ms: u64,
}

/// One LSBACKUP entry (§4.6, 28 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupEntry {
    /// Backup id.
    pub backup_id: u64,
    /// Point in time, ms.
    pub time_ms: u64,
    /// Safeguarded capacity it holds, tracks.
    pub saved_tracks: u64,
    /// The tag of the SGC_BACKUP request that took it (0: none).
    pub tag: u32,
}

/// One LSPPRCPATH entry (§4.8, 14 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathEntry {
    /// LSS here.
    pub lss: Lss,
    /// The other image's serial.
    pub remote: Ebcdic<8>,
    /// LSS there.
    pub remote_lss: Lss,
    /// [`PATH_CONSISTENCY_GROUP`].
    pub options: u16,
    /// The path works (its link is up and it has not failed).
    pub up: bool,
}

/// One LSPPRC entry (§4.8, 32 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PprcEntry {
    /// The primary's image.
    pub primary_serial: Ebcdic<8>,
    /// Primary.
    pub primary: VolumeId,
    /// The secondary's image.
    pub secondary_serial: Ebcdic<8>,
    /// Secondary.
    pub secondary: VolumeId,
    /// 1 copy pending, 2 full duplex, 3 suspended.
    pub state: u8,
    /// Why suspended (0 when not).
    pub reason: u8,
    /// The secondary was failed over.
    pub failed_over: bool,
    /// Tracks to copy or recorded.
    pub out_of_sync_tracks: u64,
}

/// SHOWVOL reply fields (§4.3, 56 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeWire {
    /// Volume id.
    pub volume: VolumeId,
    /// Type and size.
    pub kind: VolumeKind,
    /// Tracks (the copy-services unit).
    pub tracks: u32,
    /// Nickname.
    pub name: Ebcdic<16>,
    /// Relationships the volume is the source of.
    pub flash_targets: u16,
    /// The source when the volume is a FlashCopy target.
    pub flash_source: Option<VolumeId>,
    /// Safeguarded capacity, tracks.
    pub sgc_capacity: u64,
    /// Safeguarded capacity used, tracks.
    pub sgc_used: u64,
    /// Backups held.
    pub backups: u32,
}

impl VolumeWire {
    /// A reply's volume when there is none (a refusal).
    pub(super) fn blank() -> VolumeWire {
        VolumeWire {
            volume: VolumeId(0),
            kind: VolumeKind::Ckd { cylinders: 0 },
            tracks: 0,
            name: Ebcdic::default(),
            flash_targets: 0,
            flash_source: None,
            sgc_capacity: 0,
            sgc_used: 0,
            backups: 0,
        }
    }
}

/// One DS8000 protocol message.
pub type Ds8kMessage = Message<Ds8kBody>;

/// How many bytes a CountReply's count has on the wire for `t` (0, 2, 4 or 8).
pub(super) fn count_width(t: Ds8kMessageType) -> Option<usize> {
    Some(match t {
        Ds8kMessageType::MKVOL
        | Ds8kMessageType::RMVOL
        | Ds8kMessageType::WRITE_TRACK
        | Ds8kMessageType::MKSGCAP => 0,
        Ds8kMessageType::RMFLASH
        | Ds8kMessageType::UNFREEZEFLASH
        | Ds8kMessageType::RECOVER_BACKUP => 2,
        Ds8kMessageType::EXPIRE_BACKUP | Ds8kMessageType::FREEZEPPRC => 4,
        Ds8kMessageType::MKPPRCPATH
        | Ds8kMessageType::RMPPRCPATH
        | Ds8kMessageType::MKPPRC
        | Ds8kMessageType::PAUSEPPRC
        | Ds8kMessageType::RESUMEPPRC
        | Ds8kMessageType::FAILOVERPPRC
        | Ds8kMessageType::FAILBACKPPRC
        | Ds8kMessageType::UNFREEZEPPRC
        | Ds8kMessageType::RMPPRC => 2,
        Ds8kMessageType::RESTORE_BACKUP => 8,
        _ => return None,
    })
}

impl Ds8kBody {
    pub(super) fn type_and_kind(&self) -> (Ds8kMessageType, FrameKind) {
        use Ds8kBody::*;
        use Ds8kMessageType as T;
        use FrameKind::{Event, Reply, Request};
        match self {
            QueryImageRequest => (T::QUERY_IMAGE, Request),
            ImageReply { .. } => (T::QUERY_IMAGE, Reply),
            FenceRequest { .. } => (T::FENCE, Request),
            FenceReply { .. } => (T::FENCE, Reply),
            CreateVolumeRequest { .. } => (T::MKVOL, Request),
            DeleteVolumeRequest { .. } => (T::RMVOL, Request),
            ShowVolumeRequest { .. } => (T::SHOWVOL, Request),
            VolumeReply { .. } => (T::SHOWVOL, Reply),
            ListVolumesRequest { .. } => (T::LSVOL, Request),
            ListVolumesReply { .. } => (T::LSVOL, Reply),
            WriteTrackRequest { .. } => (T::WRITE_TRACK, Request),
            ReadTrackRequest { .. } => (T::READ_TRACK, Request),
            TrackReply { .. } => (T::READ_TRACK, Reply),
            FlashRequest { resync: false, .. } => (T::MKFLASH, Request),
            FlashRequest { resync: true, .. } => (T::RESYNCFLASH, Request),
            FlashReply { resync: false, .. } => (T::MKFLASH, Reply),
            FlashReply { resync: true, .. } => (T::RESYNCFLASH, Reply),
            WithdrawRequest { .. } => (T::RMFLASH, Request),
            ListFlashRequest { .. } => (T::LSFLASH, Request),
            ListFlashReply { .. } => (T::LSFLASH, Reply),
            UnfreezeRequest { .. } => (T::UNFREEZEFLASH, Request),
            FrozenRequest => (T::LSFROZEN, Request),
            FrozenReply { .. } => (T::LSFROZEN, Reply),
            SetCapacityRequest { .. } => (T::MKSGCAP, Request),
            BackupRequest { .. } => (T::SGC_BACKUP, Request),
            BackupReply { .. } => (T::SGC_BACKUP, Reply),
            ListBackupsRequest { .. } => (T::LSBACKUP, Request),
            ListBackupsReply { .. } => (T::LSBACKUP, Reply),
            RecoverRequest { .. } => (T::RECOVER_BACKUP, Request),
            ExpireRequest { .. } => (T::EXPIRE_BACKUP, Request),
            RestoreRequest { .. } => (T::RESTORE_BACKUP, Request),
            PathRequest { remove: false, .. } => (T::MKPPRCPATH, Request),
            PathRequest { remove: true, .. } => (T::RMPPRCPATH, Request),
            ListPathsRequest => (T::LSPPRCPATH, Request),
            ListPathsReply { .. } => (T::LSPPRCPATH, Reply),
            PprcPairsRequest {
                failback: false, ..
            } => (T::MKPPRC, Request),
            PprcPairsRequest { failback: true, .. } => (T::FAILBACKPPRC, Request),
            PprcVolumesRequest { message_type, .. } => (*message_type, Request),
            FreezePprcRequest { .. } => (T::FREEZEPPRC, Request),
            UnfreezePprcRequest { .. } => (T::UNFREEZEPPRC, Request),
            ListPprcRequest { .. } => (T::LSPPRC, Request),
            ListPprcReply { .. } => (T::LSPPRC, Reply),
            PprcSuspendedEvent { .. } => (T::EVT_PPRC_SUSPENDED, Event),
            PprcDuplexEvent { .. } => (T::EVT_PPRC_DUPLEX, Event),
            PprcLongBusyEndedEvent { .. } => (T::EVT_PPRC_LONG_BUSY_ENDED, Event),
            CountReply { message_type, .. } => (*message_type, Reply),
            CopyCompleteEvent { .. } => (T::EVT_COPY_COMPLETE, Event),
            BackupRolledOffEvent { .. } => (T::EVT_BACKUP_ROLLED_OFF, Event),
            FreezeTimedOutEvent { .. } => (T::EVT_FREEZE_TIMED_OUT, Event),
        }
    }

    /// The message type this body travels under.
    pub fn message_type(&self) -> Ds8kMessageType {
        self.type_and_kind().0
    }

    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        self.message_type().name().unwrap_or("UNKNOWN")
    }

    /// The fence a changing request carries (§3.4); `None` for the other messages.
    pub fn fence(&self) -> Option<Fence> {
        use Ds8kBody::*;
        match self {
            FenceRequest { fence }
            | FlashRequest { fence, .. }
            | WithdrawRequest { fence, .. }
            | UnfreezeRequest { fence, .. }
            | BackupRequest { fence, .. }
            | RecoverRequest { fence, .. }
            | ExpireRequest { fence, .. }
            | RestoreRequest { fence, .. }
            | PathRequest { fence, .. }
            | PprcPairsRequest { fence, .. }
            | PprcVolumesRequest { fence, .. }
            | FreezePprcRequest { fence, .. }
            | UnfreezePprcRequest { fence, .. } => Some(*fence),
            _ => None,
        }
    }

    /// The reply status, for replies.
    pub fn status(&self) -> Option<ReplyStatus> {
        use Ds8kBody::*;
        match self {
            ImageReply { status, .. }
            | VolumeReply { status, .. }
            | ListVolumesReply { status, .. }
            | TrackReply { status, .. }
            | FenceReply { status, .. }
            | FlashReply { status, .. }
            | ListFlashReply { status, .. }
            | FrozenReply { status, .. }
            | ListPathsReply { status, .. }
            | ListPprcReply { status, .. }
            | BackupReply { status, .. }
            | ListBackupsReply { status, .. }
            | CountReply { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The DS8000 protocol, for the shared session state machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ds8k;

impl Protocol for Ds8k {
    type Body = Ds8kBody;
    const ALREADY_LOGGED_ON: u16 = Ds8kProtocolReason::ALREADY_LOGGED_ON.0;
    const CREDENTIAL_KIND_UNSUPPORTED: u16 = Ds8kProtocolReason::CREDENTIAL_KIND_UNSUPPORTED.0;

    fn refusal_reply(request: &Ds8kBody, status: ReplyStatus) -> Option<Ds8kBody> {
        use Ds8kBody as B;
        Some(match request {
            B::QueryImageRequest => B::ImageReply {
                status,
                serial: Ebcdic::default(),
                volumes: 0,
                relationships: 0,
                backups: 0,
                frozen_lsss: 0,
                clock_ms: 0,
            },
            B::ShowVolumeRequest { .. } => B::VolumeReply {
                status,
                volume: VolumeWire::blank(),
            },
            B::ListVolumesRequest { .. } => B::ListVolumesReply {
                status,
                entries: Vec::new(),
            },
            B::ReadTrackRequest { .. } => B::TrackReply { status, tag: 0 },
            B::FenceRequest { .. } => B::FenceReply { status, epoch: 0 },
            B::FlashRequest { resync, .. } => B::FlashReply {
                resync: *resync,
                status,
                sequence: 0,
                pair_count: 0,
                out_of_sync_tracks: 0,
            },
            B::ListFlashRequest { .. } => B::ListFlashReply {
                status,
                entries: Vec::new(),
            },
            B::FrozenRequest => B::FrozenReply {
                status,
                clock_ms: 0,
                lsss: Vec::new(),
            },
            B::BackupRequest { .. } => B::BackupReply {
                status,
                backup_id: 0,
                time_ms: 0,
                volume_count: 0,
            },
            B::ListBackupsRequest { .. } => B::ListBackupsReply {
                status,
                entries: Vec::new(),
            },
            B::ListPathsRequest => B::ListPathsReply {
                status,
                entries: Vec::new(),
            },
            B::ListPprcRequest { .. } => B::ListPprcReply {
                status,
                entries: Vec::new(),
            },
            other => match (other.type_and_kind(), count_width(other.message_type())) {
                ((t, FrameKind::Request), Some(_)) => B::CountReply {
                    message_type: t,
                    status,
                    count: 0,
                },
                // Replies and events are never answered.
                _ => return None,
            },
        })
    }
}
