//! z/TPF protocol messages (spec: protocol-specs/ztpf.md §3).
//!
//! Same frame layer and the same logon fields as z/OS, under z/TPF's own message
//! numbers (0x01xx) and reason codes (0x0Axx). z/TPF has no HyperSwap: after SIGNON
//! the client queries the system, flashes and takes Safeguarded Copy backups.

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::fields::{DecodeError, Ebcdic, FieldReader};
use crate::proto::HostFlashOptions;
use crate::proto::{
    FrameKind, Message, Protocol, ReplyStatus, VolumePair, VolumeRef, put_pairs, put_volume_refs,
    read_pairs, read_volume_refs,
};
use crate::wire_enum;

pub use crate::proto::logon::{Credential, CredentialKind, LogonReply, LogonRequest};

/// Most pairs in one FLASH (§3.4).
pub const MAX_PAIRS: usize = 2048;
/// Most volumes in one SGC_BACKUP (§3.5).
pub const MAX_VOLUMES: usize = 4096;

wire_enum! {
    /// z/TPF message types (§3, table 1).
    pub struct ZtpfMessageType(u16) {
        /// Sign on with user ID, application and credential.
        SIGNON = 0x0100,
        /// Liveness check, either direction.
        KEEPALIVE = 0x0101,
        /// Complex, system, level, subsystem, attached DASD.
        QUERY = 0x0102,
        /// FlashCopy through z/TPF.
        FLASH = 0x0110,
        /// Safeguarded Copy backup through z/TPF.
        SGC_BACKUP = 0x0111,
        /// End the session.
        SIGNOFF = 0x01FF,
        /// The peer broke the protocol.
        PROTOCOL_ERROR = 0x7FFF,
    }
}

wire_enum! {
    /// z/TPF reason codes (§5). Sign-on refusals use protocol-specs/passticket.md §4.5.
    pub struct ZtpfReason(u16) {
        /// SIGNON on a signed-on connection.
        ALREADY_SIGNED_ON = 0x0A01,
        /// Unknown credential kind, or a length the kind cannot have.
        CREDENTIAL_KIND_UNSUPPORTED = 0x0A02,
        /// A volume is not attached to this z/TPF complex.
        VOLUME_NOT_ATTACHED = 0x0A10,
        /// A volume twice in one request.
        DUPLICATE_VOLUME = 0x0A11,
        /// The storage system refused the FlashCopy or backup.
        STORAGE_REFUSED = 0x0A12,
        /// z/TPF could not reach the storage system.
        STORAGE_UNAVAILABLE = 0x0A13,
        /// The signed-on user lacks the permit the request needs (FLASH, SGC_BACKUP).
        NOT_PERMITTED = 0x0A20,
    }
}

/// `QUERY` reply (§3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZtpfInfo {
    /// Outcome.
    pub status: ReplyStatus,
    /// z/TPF complex name.
    pub complex: Ebcdic<8>,
    /// System (processor) name.
    pub system: Ebcdic<8>,
    /// z/TPF level, e.g. `PUT23`.
    pub level: Ebcdic<8>,
    /// Subsystem name, e.g. `BSS`.
    pub subsystem: Ebcdic<4>,
    /// DASD volumes attached to the complex.
    pub attached_volumes: u16,
}

/// Every message of the z/TPF protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ZtpfBody {
    /// §3.3.
    QueryRequest,
    /// §3.3.
    QueryReply(ZtpfInfo),
    /// §3.4.
    FlashRequest {
        /// Options (the z/OS FLASH bits).
        options: HostFlashOptions,
        /// (source, target) pairs, 1 to [`MAX_PAIRS`].
        pairs: Vec<VolumePair>,
    },
    /// §3.4.
    FlashReply {
        /// Outcome.
        status: ReplyStatus,
        /// Point-in-time, seconds since the epoch.
        flash_time: u64,
        /// Pairs established.
        pair_count: u16,
    },
    /// §3.5.
    BackupRequest {
        /// Source volumes, 1 to [`MAX_VOLUMES`].
        volumes: Vec<VolumeRef>,
    },
    /// §3.5.
    BackupReply {
        /// Outcome.
        status: ReplyStatus,
        /// Backup id.
        backup_id: u64,
        /// Point-in-time.
        backup_time: u64,
    },
}

/// One z/TPF message.
pub type ZtpfMessage = Message<ZtpfBody>;

impl ZtpfBody {
    fn type_and_kind(&self) -> (ZtpfMessageType, FrameKind) {
        use ZtpfBody::*;
        match self {
            QueryRequest => (ZtpfMessageType::QUERY, FrameKind::Request),
            QueryReply(_) => (ZtpfMessageType::QUERY, FrameKind::Reply),
            FlashRequest { .. } => (ZtpfMessageType::FLASH, FrameKind::Request),
            FlashReply { .. } => (ZtpfMessageType::FLASH, FrameKind::Reply),
            BackupRequest { .. } => (ZtpfMessageType::SGC_BACKUP, FrameKind::Request),
            BackupReply { .. } => (ZtpfMessageType::SGC_BACKUP, FrameKind::Reply),
        }
    }

    /// The message type this body travels under.
    pub fn message_type(&self) -> ZtpfMessageType {
        self.type_and_kind().0
    }

    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        self.message_type().name().unwrap_or("UNKNOWN")
    }

    fn read(
        t: ZtpfMessageType,
        kind: FrameKind,
        body: &Bytes,
    ) -> Option<Result<ZtpfBody, DecodeError>> {
        let name = t.name().unwrap_or("UNKNOWN");
        let mut r = FieldReader::new(name, body);
        let parsed = match (t, kind) {
            (ZtpfMessageType::QUERY, FrameKind::Request) => Ok(ZtpfBody::QueryRequest),
            (ZtpfMessageType::QUERY, FrameKind::Reply) => (|| {
                Ok(ZtpfBody::QueryReply(ZtpfInfo {
                    status: ReplyStatus::read(&mut r)?,
                    complex: r.ebcdic("complex")?,
                    system: r.ebcdic("system")?,
                    level: r.ebcdic("level")?,
                    subsystem: r.ebcdic("subsystem")?,
                    attached_volumes: r.u16("attached_volumes")?,
                }))
            })(),
            (ZtpfMessageType::FLASH, FrameKind::Request) => (|| {
                Ok(ZtpfBody::FlashRequest {
                    options: HostFlashOptions::read(&mut r)?,
                    pairs: read_pairs(&mut r, MAX_PAIRS)?,
                })
            })(),
            (ZtpfMessageType::FLASH, FrameKind::Reply) => (|| {
                Ok(ZtpfBody::FlashReply {
                    status: ReplyStatus::read(&mut r)?,
                    flash_time: r.u64("flash_time")?,
                    pair_count: r.u16("pair_count")?,
                })
            })(),
            (ZtpfMessageType::SGC_BACKUP, FrameKind::Request) => {
                read_volume_refs(&mut r, MAX_VOLUMES)
                    .map(|volumes| ZtpfBody::BackupRequest { volumes })
            }
            (ZtpfMessageType::SGC_BACKUP, FrameKind::Reply) => (|| {
                Ok(ZtpfBody::BackupReply {
                    status: ReplyStatus::read(&mut r)?,
                    backup_id: r.u64("backup_id")?,
                    backup_time: r.u64("backup_time")?,
                })
            })(),
            _ => return None,
        };
        Some(parsed.and_then(|b| r.finish().map(|()| b)))
    }

    fn put(&self, dst: &mut BytesMut) {
        use ZtpfBody::*;
        match self {
            QueryRequest => {}
            QueryReply(i) => {
                i.status.put(dst);
                i.complex.put(dst);
                i.system.put(dst);
                i.level.put(dst);
                i.subsystem.put(dst);
                dst.put_u16(i.attached_volumes);
            }
            FlashRequest { options, pairs } => {
                dst.put_u16(options.0);
                put_pairs(dst, pairs);
            }
            FlashReply {
                status,
                flash_time,
                pair_count,
            } => {
                status.put(dst);
                dst.put_u64(*flash_time);
                dst.put_u16(*pair_count);
            }
            BackupRequest { volumes } => {
                put_volume_refs(dst, volumes);
            }
            BackupReply {
                status,
                backup_id,
                backup_time,
            } => {
                status.put(dst);
                dst.put_u64(*backup_id);
                dst.put_u64(*backup_time);
            }
        }
    }
}

crate::proto::wire_body!(ZtpfBody, ZtpfMessageType, ZTPF, SIGNON, KEEPALIVE, SIGNOFF);

/// The z/TPF protocol, for the shared session state machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ztpf;

impl Protocol for Ztpf {
    type Body = ZtpfBody;
    const ALREADY_LOGGED_ON: u16 = ZtpfReason::ALREADY_SIGNED_ON.0;
    const CREDENTIAL_KIND_UNSUPPORTED: u16 = ZtpfReason::CREDENTIAL_KIND_UNSUPPORTED.0;

    fn refusal_reply(request: &ZtpfBody, status: ReplyStatus) -> Option<ZtpfBody> {
        Some(match request {
            ZtpfBody::QueryRequest => ZtpfBody::QueryReply(ZtpfInfo {
                status,
                complex: Ebcdic::default(),
                system: Ebcdic::default(),
                level: Ebcdic::default(),
                subsystem: Ebcdic::default(),
                attached_volumes: 0,
            }),
            ZtpfBody::FlashRequest { .. } => ZtpfBody::FlashReply {
                status,
                flash_time: 0,
                pair_count: 0,
            },
            ZtpfBody::BackupRequest { .. } => ZtpfBody::BackupReply {
                status,
                backup_id: 0,
                backup_time: 0,
            },
            // Replies are never answered.
            _ => return None,
        })
    }
}
