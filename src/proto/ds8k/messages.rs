//! DS8000 ("HMC") protocol messages (spec: protocol-specs/ds8k.md §4).
//!
//! The connection is to one storage image, so volumes travel as bare `u16` ids
//! (`XYZZ`) and the image's serial comes in the logon reply. Requests name the
//! DS CLI command they stand for. Times are milliseconds since the epoch.

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::fields::{DecodeError, DecodeErrorKind, Ebcdic, FieldReader, put_count};
use crate::ds8k::{FlashOptions, Lss, PairKey, VolumeId, VolumeKind};
use crate::proto::{FrameKind, Message, Protocol, ReplyStatus};
use crate::wire_enum;

pub use crate::proto::logon::{Credential, CredentialKind, LogonReply, LogonRequest};

/// Most pairs in one MKFLASH / RESYNCFLASH / RMFLASH / RECOVER_BACKUP (§4.5).
pub const MAX_PAIRS: usize = 12_000;
/// Most volumes in one SGC_BACKUP / RESTORE_BACKUP (§4.6).
pub const MAX_VOLUMES: usize = 16_000;
/// Most LSSs in one UNFREEZEFLASH.
pub const MAX_LSSS: usize = 255;
/// Most entries in an LSFLASH reply (12 targets and one source).
pub const MAX_FLASH_ENTRIES: usize = 13;
/// Most entries in an LSBACKUP reply.
pub const MAX_BACKUP_ENTRIES: usize = 2_000;

wire_enum! {
    /// DS8000 protocol message types (§4, table 1).
    pub struct Ds8kMessageType(u16) {
        /// Log on to the HMC (user and password).
        LOGON = 0x0400,
        /// Liveness, either direction.
        HEARTBEAT = 0x0401,
        /// The storage image: serial, counts, clock.
        QUERY_IMAGE = 0x0402,
        /// `mkckdvol` / `mkfbvol`.
        MKVOL = 0x0410,
        /// `rmckdvol` / `rmfbvol`.
        RMVOL = 0x0411,
        /// `showckdvol` / `showfbvol`.
        SHOWVOL = 0x0412,
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
        /// Log off.
        LOGOFF = 0x04FF,
        /// Background copy of a relationship completed.
        EVT_COPY_COMPLETE = 0x0481,
        /// Safeguarded capacity filled; the oldest backup rolled off.
        EVT_BACKUP_ROLLED_OFF = 0x0482,
        /// A freeze timed out (extended long busy ended).
        EVT_FREEZE_TIMED_OUT = 0x0483,
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

/// FB or CKD on the wire (§4.3): `type u8` (1 CKD, 2 FB), `reserved u8`, `size u64`
/// (cylinders or 512-byte blocks).
fn read_kind(r: &mut FieldReader<'_>) -> Result<VolumeKind, DecodeError> {
    let at = r.offset();
    let t = r.u8("volume_type")?;
    if t != 1 && t != 2 {
        return Err(bad_at(r, at, "volume_type", "1 (CKD) or 2 (FB)"));
    }
    reserved_u8(r)?;
    let at = r.offset();
    let size = r.u64("size")?;
    if t == 2 {
        return Ok(VolumeKind::Fb { blocks: size });
    }
    u32::try_from(size)
        .map(|cylinders| VolumeKind::Ckd { cylinders })
        .map_err(|_| bad_at(r, at, "size", "CKD cylinders over 32 bits"))
}

/// A `BadValue` error located at the start of the field (`at`), not after it.
fn bad_at(r: &FieldReader<'_>, at: usize, field: &'static str, why: &'static str) -> DecodeError {
    DecodeError {
        offset: at,
        ..r.error(field, DecodeErrorKind::BadValue { why })
    }
}

fn reserved_u8(r: &mut FieldReader<'_>) -> Result<(), DecodeError> {
    let at = r.offset();
    match r.u8("reserved")? {
        0 => Ok(()),
        _ => Err(bad_at(r, at, "reserved", "must be 0")),
    }
}

fn boolean(r: &mut FieldReader<'_>, field: &'static str, wide: bool) -> Result<bool, DecodeError> {
    let at = r.offset();
    let v = if wide {
        r.u16(field)?
    } else {
        u16::from(r.u8(field)?)
    };
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(bad_at(r, at, field, "0 or 1")),
    }
}

fn put_kind(kind: VolumeKind, dst: &mut BytesMut) {
    let (t, size) = match kind {
        VolumeKind::Ckd { cylinders } => (1u8, u64::from(cylinders)),
        VolumeKind::Fb { blocks } => (2u8, blocks),
    };
    dst.put_u8(t);
    dst.put_u8(0);
    dst.put_u64(size);
}

fn read_volume(r: &mut FieldReader<'_>, field: &'static str) -> Result<VolumeId, DecodeError> {
    r.u16(field).map(VolumeId)
}

fn read_nonempty_count(
    r: &mut FieldReader<'_>,
    field: &'static str,
    max: usize,
) -> Result<usize, DecodeError> {
    let at = r.offset();
    let n = r.count(field, max)?;
    if n == 0 {
        return Err(bad_at(r, at, field, "empty list"));
    }
    Ok(n)
}

fn read_pairs(r: &mut FieldReader<'_>) -> Result<Vec<PairKey>, DecodeError> {
    let n = read_nonempty_count(r, "pair_count", MAX_PAIRS)?;
    (0..n)
        .map(|_| {
            Ok(PairKey {
                source: read_volume(r, "pair.source")?,
                target: read_volume(r, "pair.target")?,
            })
        })
        .collect()
}

fn put_pairs(pairs: &[PairKey], dst: &mut BytesMut) {
    put_count(dst, pairs.len());
    for p in pairs {
        dst.put_u16(p.source.0);
        dst.put_u16(p.target.0);
    }
}

fn read_volumes(r: &mut FieldReader<'_>) -> Result<Vec<VolumeId>, DecodeError> {
    let n = read_nonempty_count(r, "volume_count", MAX_VOLUMES)?;
    (0..n).map(|_| read_volume(r, "volume")).collect()
}

fn put_volumes(volumes: &[VolumeId], dst: &mut BytesMut) {
    put_count(dst, volumes.len());
    for v in volumes {
        dst.put_u16(v.0);
    }
}

/// `flash_source` value for "not a FlashCopy target" (LSS FF holds no volumes).
pub const NO_VOLUME: u16 = 0xFFFF;

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
    fn blank() -> VolumeWire {
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

    fn read(r: &mut FieldReader<'_>) -> Result<VolumeWire, DecodeError> {
        Ok(VolumeWire {
            volume: read_volume(r, "volume")?,
            kind: read_kind(r)?,
            tracks: r.u32("tracks")?,
            name: r.ebcdic("name")?,
            flash_targets: r.u16("flash_targets")?,
            flash_source: match r.u16("flash_source")? {
                NO_VOLUME => None,
                v => Some(VolumeId(v)),
            },
            sgc_capacity: r.u64("sgc_capacity")?,
            sgc_used: r.u64("sgc_used")?,
            backups: r.u32("backups")?,
        })
    }

    fn put(&self, dst: &mut BytesMut) {
        dst.put_u16(self.volume.0);
        put_kind(self.kind, dst);
        dst.put_u32(self.tracks);
        self.name.put(dst);
        dst.put_u16(self.flash_targets);
        dst.put_u16(self.flash_source.map_or(NO_VOLUME, |v| v.0));
        dst.put_u64(self.sgc_capacity);
        dst.put_u64(self.sgc_used);
        dst.put_u32(self.backups);
    }
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

impl FlashEntry {
    fn read(r: &mut FieldReader<'_>) -> Result<FlashEntry, DecodeError> {
        let key = PairKey {
            source: read_volume(r, "source")?,
            target: read_volume(r, "target")?,
        };
        let options = FlashOptions(r.u16("options")?);
        let copying = boolean(r, "copying", false)?;
        reserved_u8(r)?;
        Ok(FlashEntry {
            key,
            options,
            copying,
            sequence: r.u32("sequence")?,
            out_of_sync_tracks: r.u64("out_of_sync_tracks")?,
            changed_tracks: r.u64("changed_tracks")?,
            created_ms: r.u64("created_ms")?,
            synced_ms: r.u64("synced_ms")?,
        })
    }

    fn put(&self, dst: &mut BytesMut) {
        dst.put_u16(self.key.source.0);
        dst.put_u16(self.key.target.0);
        dst.put_u16(self.options.0);
        dst.put_u8(u8::from(self.copying));
        dst.put_u8(0);
        dst.put_u32(self.sequence);
        dst.put_u64(self.out_of_sync_tracks);
        dst.put_u64(self.changed_tracks);
        dst.put_u64(self.created_ms);
        dst.put_u64(self.synced_ms);
    }
}

/// One LSBACKUP entry (§4.6, 24 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupEntry {
    /// Backup id.
    pub backup_id: u64,
    /// Point in time, ms.
    pub time_ms: u64,
    /// Safeguarded capacity it holds, tracks.
    pub saved_tracks: u64,
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
        /// MKFLASH or RESYNCFLASH.
        resync: bool,
        /// Options.
        options: FlashOptions,
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
        /// LSSs to thaw.
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
        /// Backup id.
        backup_id: u64,
        /// (production, recovery) pairs.
        pairs: Vec<PairKey>,
    },
    /// §4.6.
    ExpireRequest {
        /// Backup id (it and every older one expire).
        backup_id: u64,
    },
    /// §4.6.
    RestoreRequest {
        /// Backup id.
        backup_id: u64,
        /// Production volumes.
        volumes: Vec<VolumeId>,
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

/// One DS8000 protocol message.
pub type Ds8kMessage = Message<Ds8kBody>;

/// How many bytes a CountReply's count has on the wire for `t` (0, 2, 4 or 8).
fn count_width(t: Ds8kMessageType) -> Option<usize> {
    Some(match t {
        Ds8kMessageType::MKVOL
        | Ds8kMessageType::RMVOL
        | Ds8kMessageType::WRITE_TRACK
        | Ds8kMessageType::MKSGCAP => 0,
        Ds8kMessageType::RMFLASH
        | Ds8kMessageType::UNFREEZEFLASH
        | Ds8kMessageType::RECOVER_BACKUP => 2,
        Ds8kMessageType::EXPIRE_BACKUP => 4,
        Ds8kMessageType::RESTORE_BACKUP => 8,
        _ => return None,
    })
}

impl Ds8kBody {
    fn type_and_kind(&self) -> (Ds8kMessageType, FrameKind) {
        use Ds8kBody::*;
        use Ds8kMessageType as T;
        use FrameKind::{Event, Reply, Request};
        match self {
            QueryImageRequest => (T::QUERY_IMAGE, Request),
            ImageReply { .. } => (T::QUERY_IMAGE, Reply),
            CreateVolumeRequest { .. } => (T::MKVOL, Request),
            DeleteVolumeRequest { .. } => (T::RMVOL, Request),
            ShowVolumeRequest { .. } => (T::SHOWVOL, Request),
            VolumeReply { .. } => (T::SHOWVOL, Reply),
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
            SetCapacityRequest { .. } => (T::MKSGCAP, Request),
            BackupRequest { .. } => (T::SGC_BACKUP, Request),
            BackupReply { .. } => (T::SGC_BACKUP, Reply),
            ListBackupsRequest { .. } => (T::LSBACKUP, Request),
            ListBackupsReply { .. } => (T::LSBACKUP, Reply),
            RecoverRequest { .. } => (T::RECOVER_BACKUP, Request),
            ExpireRequest { .. } => (T::EXPIRE_BACKUP, Request),
            RestoreRequest { .. } => (T::RESTORE_BACKUP, Request),
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

    /// The reply status, for replies.
    pub fn status(&self) -> Option<ReplyStatus> {
        use Ds8kBody::*;
        match self {
            ImageReply { status, .. }
            | VolumeReply { status, .. }
            | TrackReply { status, .. }
            | FlashReply { status, .. }
            | ListFlashReply { status, .. }
            | BackupReply { status, .. }
            | ListBackupsReply { status, .. }
            | CountReply { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn read(
        t: Ds8kMessageType,
        kind: FrameKind,
        body: &Bytes,
    ) -> Option<Result<Ds8kBody, DecodeError>> {
        use Ds8kBody as B;
        use Ds8kMessageType as T;
        use FrameKind::{Event, Reply, Request};
        let name = t.name().unwrap_or("UNKNOWN");
        let mut reader = FieldReader::new(name, body);
        let r = &mut reader;
        let parsed: Result<Ds8kBody, DecodeError> = match (t, kind) {
            (T::QUERY_IMAGE, Request) => Ok(B::QueryImageRequest),
            (T::QUERY_IMAGE, Reply) => (|| {
                Ok(B::ImageReply {
                    status: ReplyStatus::read(r)?,
                    serial: r.ebcdic("serial")?,
                    volumes: r.u32("volumes")?,
                    relationships: r.u32("relationships")?,
                    backups: r.u32("backups")?,
                    frozen_lsss: r.u16("frozen_lsss")?,
                    clock_ms: r.u64("clock_ms")?,
                })
            })(),
            (T::MKVOL, Request) => (|| {
                Ok(B::CreateVolumeRequest {
                    volume: read_volume(r, "volume")?,
                    kind: read_kind(r)?,
                    name: r.ebcdic("name")?,
                })
            })(),
            (T::RMVOL, Request) => {
                read_volume(r, "volume").map(|volume| B::DeleteVolumeRequest { volume })
            }
            (T::SHOWVOL, Request) => {
                read_volume(r, "volume").map(|volume| B::ShowVolumeRequest { volume })
            }
            (T::SHOWVOL, Reply) => (|| {
                Ok(B::VolumeReply {
                    status: ReplyStatus::read(r)?,
                    volume: VolumeWire::read(r)?,
                })
            })(),
            (T::WRITE_TRACK, Request) => (|| {
                Ok(B::WriteTrackRequest {
                    volume: read_volume(r, "volume")?,
                    track: r.u32("track")?,
                    tag: r.u64("tag")?,
                })
            })(),
            (T::READ_TRACK, Request) => (|| {
                Ok(B::ReadTrackRequest {
                    volume: read_volume(r, "volume")?,
                    track: r.u32("track")?,
                })
            })(),
            (T::READ_TRACK, Reply) => (|| {
                Ok(B::TrackReply {
                    status: ReplyStatus::read(r)?,
                    tag: r.u64("tag")?,
                })
            })(),
            (T::MKFLASH | T::RESYNCFLASH, Request) => (|| {
                let at = r.offset();
                let options = FlashOptions(r.u16("options")?);
                if options.0 & !FlashOptions::KNOWN != 0 {
                    return Err(bad_at(r, at, "options", "undefined option bits set"));
                }
                Ok(B::FlashRequest {
                    resync: t == T::RESYNCFLASH,
                    options,
                    pairs: read_pairs(r)?,
                })
            })(),
            (T::MKFLASH | T::RESYNCFLASH, Reply) => (|| {
                Ok(B::FlashReply {
                    resync: t == T::RESYNCFLASH,
                    status: ReplyStatus::read(r)?,
                    sequence: r.u32("sequence")?,
                    pair_count: r.u16("pair_count")?,
                    out_of_sync_tracks: r.u64("out_of_sync_tracks")?,
                })
            })(),
            (T::RMFLASH, Request) => (|| {
                let copy_first = boolean(r, "copy_first", true)?;
                Ok(B::WithdrawRequest {
                    copy_first,
                    pairs: read_pairs(r)?,
                })
            })(),
            (T::LSFLASH, Request) => {
                read_volume(r, "volume").map(|volume| B::ListFlashRequest { volume })
            }
            (T::LSFLASH, Reply) => (|| {
                let status = ReplyStatus::read(r)?;
                let n = r.count("entry_count", MAX_FLASH_ENTRIES)?;
                let entries = (0..n)
                    .map(|_| FlashEntry::read(r))
                    .collect::<Result<_, _>>()?;
                Ok(B::ListFlashReply { status, entries })
            })(),
            (T::UNFREEZEFLASH, Request) => (|| {
                let n = read_nonempty_count(r, "lss_count", MAX_LSSS)?;
                let lsss = (0..n)
                    .map(|_| r.u8("lss").map(Lss))
                    .collect::<Result<_, _>>()?;
                Ok(B::UnfreezeRequest { lsss })
            })(),
            (T::MKSGCAP, Request) => (|| {
                Ok(B::SetCapacityRequest {
                    volume: read_volume(r, "volume")?,
                    tracks: r.u64("tracks")?,
                })
            })(),
            (T::SGC_BACKUP, Request) => read_volumes(r).map(|volumes| B::BackupRequest { volumes }),
            (T::SGC_BACKUP, Reply) => (|| {
                Ok(B::BackupReply {
                    status: ReplyStatus::read(r)?,
                    backup_id: r.u64("backup_id")?,
                    time_ms: r.u64("time_ms")?,
                    volume_count: r.u16("volume_count")?,
                })
            })(),
            (T::LSBACKUP, Request) => {
                read_volume(r, "volume").map(|volume| B::ListBackupsRequest { volume })
            }
            (T::LSBACKUP, Reply) => (|| {
                let status = ReplyStatus::read(r)?;
                let n = r.count("entry_count", MAX_BACKUP_ENTRIES)?;
                let entries = (0..n)
                    .map(|_| {
                        Ok(BackupEntry {
                            backup_id: r.u64("backup_id")?,
                            time_ms: r.u64("time_ms")?,
                            saved_tracks: r.u64("saved_tracks")?,
                        })
                    })
                    .collect::<Result<_, _>>()?;
                Ok(B::ListBackupsReply { status, entries })
            })(),
            (T::RECOVER_BACKUP, Request) => (|| {
                Ok(B::RecoverRequest {
                    backup_id: r.u64("backup_id")?,
                    pairs: read_pairs(r)?,
                })
            })(),
            (T::EXPIRE_BACKUP, Request) => r
                .u64("backup_id")
                .map(|backup_id| B::ExpireRequest { backup_id }),
            (T::RESTORE_BACKUP, Request) => (|| {
                Ok(B::RestoreRequest {
                    backup_id: r.u64("backup_id")?,
                    volumes: read_volumes(r)?,
                })
            })(),
            (t, Reply) if count_width(t).is_some() => (|| {
                let status = ReplyStatus::read(r)?;
                let count = match count_width(t) {
                    Some(2) => u64::from(r.u16("count")?),
                    Some(4) => u64::from(r.u32("count")?),
                    Some(8) => r.u64("count")?,
                    _ => 0,
                };
                Ok(B::CountReply {
                    message_type: t,
                    status,
                    count,
                })
            })(),
            (T::EVT_COPY_COMPLETE, Event) => (|| {
                let key = PairKey {
                    source: read_volume(r, "source")?,
                    target: read_volume(r, "target")?,
                };
                let ended = boolean(r, "ended", true)?;
                Ok(B::CopyCompleteEvent {
                    key,
                    ended,
                    time_ms: r.u64("time_ms")?,
                })
            })(),
            (T::EVT_BACKUP_ROLLED_OFF, Event) => (|| {
                Ok(B::BackupRolledOffEvent {
                    volume: read_volume(r, "volume")?,
                    backup_id: r.u64("backup_id")?,
                    time_ms: r.u64("time_ms")?,
                })
            })(),
            (T::EVT_FREEZE_TIMED_OUT, Event) => (|| {
                let lss = Lss(r.u8("lss")?);
                reserved_u8(r)?;
                Ok(B::FreezeTimedOutEvent {
                    lss,
                    time_ms: r.u64("time_ms")?,
                })
            })(),
            _ => return None,
        };
        Some(parsed.and_then(|b| reader.finish().map(|()| b)))
    }

    fn put(&self, dst: &mut BytesMut) {
        use Ds8kBody::*;
        match self {
            QueryImageRequest => {}
            ImageReply {
                status,
                serial,
                volumes,
                relationships,
                backups,
                frozen_lsss,
                clock_ms,
            } => {
                status.put(dst);
                serial.put(dst);
                dst.put_u32(*volumes);
                dst.put_u32(*relationships);
                dst.put_u32(*backups);
                dst.put_u16(*frozen_lsss);
                dst.put_u64(*clock_ms);
            }
            CreateVolumeRequest { volume, kind, name } => {
                dst.put_u16(volume.0);
                put_kind(*kind, dst);
                name.put(dst);
            }
            DeleteVolumeRequest { volume }
            | ShowVolumeRequest { volume }
            | ListFlashRequest { volume }
            | ListBackupsRequest { volume } => dst.put_u16(volume.0),
            VolumeReply { status, volume } => {
                status.put(dst);
                volume.put(dst);
            }
            WriteTrackRequest { volume, track, tag } => {
                dst.put_u16(volume.0);
                dst.put_u32(*track);
                dst.put_u64(*tag);
            }
            ReadTrackRequest { volume, track } => {
                dst.put_u16(volume.0);
                dst.put_u32(*track);
            }
            TrackReply { status, tag } => {
                status.put(dst);
                dst.put_u64(*tag);
            }
            FlashRequest { options, pairs, .. } => {
                dst.put_u16(options.0);
                put_pairs(pairs, dst);
            }
            FlashReply {
                status,
                sequence,
                pair_count,
                out_of_sync_tracks,
                ..
            } => {
                status.put(dst);
                dst.put_u32(*sequence);
                dst.put_u16(*pair_count);
                dst.put_u64(*out_of_sync_tracks);
            }
            WithdrawRequest { copy_first, pairs } => {
                dst.put_u16(u16::from(*copy_first));
                put_pairs(pairs, dst);
            }
            ListFlashReply { status, entries } => {
                status.put(dst);
                put_count(dst, entries.len());
                for e in entries {
                    e.put(dst);
                }
            }
            UnfreezeRequest { lsss } => {
                put_count(dst, lsss.len());
                for l in lsss {
                    dst.put_u8(l.0);
                }
            }
            SetCapacityRequest { volume, tracks } => {
                dst.put_u16(volume.0);
                dst.put_u64(*tracks);
            }
            BackupRequest { volumes } => put_volumes(volumes, dst),
            BackupReply {
                status,
                backup_id,
                time_ms,
                volume_count,
            } => {
                status.put(dst);
                dst.put_u64(*backup_id);
                dst.put_u64(*time_ms);
                dst.put_u16(*volume_count);
            }
            ListBackupsReply { status, entries } => {
                status.put(dst);
                put_count(dst, entries.len());
                for e in entries {
                    dst.put_u64(e.backup_id);
                    dst.put_u64(e.time_ms);
                    dst.put_u64(e.saved_tracks);
                }
            }
            RecoverRequest { backup_id, pairs } => {
                dst.put_u64(*backup_id);
                put_pairs(pairs, dst);
            }
            ExpireRequest { backup_id } => dst.put_u64(*backup_id),
            RestoreRequest { backup_id, volumes } => {
                dst.put_u64(*backup_id);
                put_volumes(volumes, dst);
            }
            CountReply {
                message_type,
                status,
                count,
            } => {
                status.put(dst);
                // Counts are clamped to their width: encode stays infallible.
                match count_width(*message_type) {
                    Some(2) => dst.put_u16(u16::try_from(*count).unwrap_or(u16::MAX)),
                    Some(4) => dst.put_u32(u32::try_from(*count).unwrap_or(u32::MAX)),
                    Some(8) => dst.put_u64(*count),
                    _ => {}
                }
            }
            CopyCompleteEvent {
                key,
                ended,
                time_ms,
            } => {
                dst.put_u16(key.source.0);
                dst.put_u16(key.target.0);
                dst.put_u16(u16::from(*ended));
                dst.put_u64(*time_ms);
            }
            BackupRolledOffEvent {
                volume,
                backup_id,
                time_ms,
            } => {
                dst.put_u16(volume.0);
                dst.put_u64(*backup_id);
                dst.put_u64(*time_ms);
            }
            FreezeTimedOutEvent { lss, time_ms } => {
                dst.put_u8(lss.0);
                dst.put_u8(0);
                dst.put_u64(*time_ms);
            }
        }
    }
}

crate::proto::wire_body!(Ds8kBody, Ds8kMessageType, DS8K, LOGON, HEARTBEAT, LOGOFF);

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
            B::ReadTrackRequest { .. } => B::TrackReply { status, tag: 0 },
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
