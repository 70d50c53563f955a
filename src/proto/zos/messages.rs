//! z/OS HyperSwap protocol messages (spec: protocol-specs/zos-hyperswap.md §3).
//!
//! One [`ZosMessage`] per frame. The message type and flags in the frame header
//! follow from the body variant; [`ZosMessage::decode`] checks them and parses the
//! body with named fields, and [`ZosMessage::encode`] is infallible.

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::fields::{DecodeError, Ebcdic, FieldReader};
use crate::proto::HostFlashOptions;
pub use crate::proto::logon::{
    Credential, CredentialKind, LogonReply, LogonRequest, MAX_CREDENTIAL,
};
use crate::proto::{
    FrameKind, Message, Protocol, ReplyStatus, VolumePair, VolumeRef, put_pairs, put_volume_refs,
    read_pairs, read_volume_refs,
};
use crate::wire_enum;

/// Most volume pairs in one HyperSwap configuration or flash request (§3.5).
pub const MAX_PAIRS: usize = 2048;
/// Most volumes in one Safeguarded Copy backup request (§3.9).
pub const MAX_VOLUMES: usize = 4096;

wire_enum! {
    /// z/OS message types (§3, table 1).
    pub struct ZosMessageType(u16) {
        /// Log on with user ID, application and credential.
        LOGON = 0x0001,
        /// Liveness check, either direction.
        HEARTBEAT = 0x0002,
        /// Sysplex, system, level and HyperSwap status.
        QUERY_SYSTEM = 0x0003,
        /// Load (replace) the HyperSwap configuration.
        HS_LOAD_CONFIG = 0x0010,
        /// Enable HyperSwap.
        HS_ENABLE = 0x0011,
        /// Disable HyperSwap.
        HS_DISABLE = 0x0012,
        /// Planned HyperSwap: swap to the secondaries.
        HS_PLANNED_SWAP = 0x0013,
        /// Purge the HyperSwap configuration.
        HS_PURGE_CONFIG = 0x0014,
        /// Arm Hardened Freeze (no swap).
        HS_ENABLE_FREEZE = 0x0015,
        /// FlashCopy through z/OS IOS.
        FLASH = 0x0020,
        /// Safeguarded Copy backup through z/OS IOS.
        SGC_BACKUP = 0x0021,
        /// End the session.
        LOGOFF = 0x00FF,
        /// Event: z/OS performed an unplanned HyperSwap.
        EVT_UNPLANNED_SWAP = 0x0101,
        /// Event: HyperSwap was disabled by z/OS.
        EVT_HS_DISABLED = 0x0102,
        /// Event: a freeze or hardened freeze was triggered.
        EVT_FREEZE = 0x0103,
        /// The peer broke the protocol.
        PROTOCOL_ERROR = 0x7FFF,
    }
}

wire_enum! {
    /// HyperSwap state of the system (§3.4).
    pub struct HyperSwapState(u8) {
        /// No configuration loaded.
        NO_CONFIG = 0,
        /// Configuration loaded, HyperSwap disabled.
        DISABLED = 1,
        /// HyperSwap enabled: a failure of a primary triggers an unplanned swap.
        ENABLED = 2,
        /// A swap is running.
        SWAPPING = 3,
        /// Hardened Freeze armed: no swap, but a pair that stops mirroring freezes
        /// the whole configuration (§3.14).
        FREEZE_ENABLED = 4,
    }
}

wire_enum! {
    /// Kind of freeze reported by `EVT_FREEZE` (§3.12).
    pub struct FreezeKind(u8) {
        /// Freeze: PPRC pairs suspended to keep the secondaries consistent.
        FREEZE = 1,
        /// Hardened freeze: freeze, and the secondaries are protected from writes.
        HARDENED_FREEZE = 2,
    }
}

wire_enum! {
    /// z/OS reason codes (§5). PassTicket refusals use the codes of
    /// protocol-specs/passticket.md §4.5 (0x0101–0x0109) unchanged.
    pub struct ZosReason(u16) {
        /// Wrong password or passphrase.
        PASSWORD_INVALID = 0x0110,
        /// Unknown credential kind, or a length the kind cannot have.
        CREDENTIAL_KIND_UNSUPPORTED = 0x0111,
        /// LOGON on a logged-on connection.
        ALREADY_LOGGED_ON = 0x0113,
        /// Enable or swap without a configuration.
        NO_CONFIG = 0x0201,
        /// Session name is not the loaded configuration.
        SESSION_MISMATCH = 0x0202,
        /// Enable when enabled, disable when disabled (RC 4).
        ALREADY_IN_STATE = 0x0203,
        /// Planned swap while not enabled.
        NOT_ENABLED = 0x0204,
        /// Load while enabled.
        CONFIG_ACTIVE = 0x0205,
        /// A volume twice in one request.
        DUPLICATE_VOLUME = 0x0206,
        /// Request during a swap.
        SWAP_IN_PROGRESS = 0x0207,
        /// The storage system does not know the volume.
        UNKNOWN_VOLUME = 0x0301,
        /// The storage system refused the FlashCopy or backup.
        STORAGE_REFUSED = 0x0302,
        /// The host could not reach the storage system.
        STORAGE_UNAVAILABLE = 0x0303,
        /// The logged-on user lacks the permit the request needs (FLASH, SGC_BACKUP,
        /// HYPERSWAP).
        NOT_PERMITTED = 0x0120,
        /// Event reason: I/O error on a primary.
        PRIMARY_IO_ERROR = 0x0501,
        /// Event reason: replication suspended.
        PPRC_SUSPENDED = 0x0502,
        /// Event reason: freeze policy triggered.
        FREEZE_TRIGGER = 0x0503,
        /// Event reason: operator command.
        OPERATOR_COMMAND = 0x0504,
    }
}

/// `QUERY_SYSTEM` reply (§3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemInfo {
    /// Outcome.
    pub status: ReplyStatus,
    /// Sysplex name.
    pub sysplex: Ebcdic<8>,
    /// System name.
    pub system: Ebcdic<8>,
    /// z/OS level, e.g. `V2R5`.
    pub level: Ebcdic<8>,
    /// HyperSwap status.
    pub hyperswap: HyperSwapStatus,
}

/// HyperSwap status, in `QUERY_SYSTEM` and every HyperSwap reply (§3.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HyperSwapStatus {
    /// State.
    pub state: HyperSwapState,
    /// Site whose volumes are primary: 1 (H1) or 2 (H2); 0 without configuration.
    pub active_site: u8,
    /// Name of the loaded configuration (CSM session), blank without one.
    pub session: Ebcdic<16>,
    /// Pairs in the configuration.
    pub pair_count: u16,
}

impl Default for HyperSwapState {
    fn default() -> Self {
        HyperSwapState::NO_CONFIG
    }
}

impl HyperSwapStatus {
    fn read(r: &mut FieldReader<'_>) -> Result<Self, DecodeError> {
        Ok(HyperSwapStatus {
            state: HyperSwapState(r.u8("hs_state")?),
            active_site: r.u8("active_site")?,
            session: r.ebcdic::<16>("hs_session")?,
            pair_count: r.u16("pair_count")?,
        })
    }

    fn put(&self, dst: &mut BytesMut) {
        dst.put_u8(self.state.0);
        dst.put_u8(self.active_site);
        self.session.put(dst);
        dst.put_u16(self.pair_count);
    }
}

/// Every message of the z/OS protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ZosBody {
    /// §3.3.
    QuerySystemRequest,
    /// §3.3.
    QuerySystemReply(SystemInfo),
    /// §3.5.
    LoadConfigRequest {
        /// Configuration (CSM session) name.
        session: Ebcdic<16>,
        /// (primary, secondary) pairs, 1 to [`MAX_PAIRS`].
        pairs: Vec<VolumePair>,
    },
    /// §3.6.
    EnableRequest {
        /// Configuration name.
        session: Ebcdic<16>,
    },
    /// §3.6.
    DisableRequest {
        /// Configuration name.
        session: Ebcdic<16>,
    },
    /// §3.7.
    PlannedSwapRequest {
        /// Configuration name.
        session: Ebcdic<16>,
    },
    /// §3.13.
    PurgeConfigRequest {
        /// Configuration name.
        session: Ebcdic<16>,
    },
    /// §3.14.
    EnableFreezeRequest {
        /// Configuration name.
        session: Ebcdic<16>,
    },
    /// Reply to §3.5–3.7 (the frame's message type says which request).
    HyperSwapReply {
        /// Which request this answers.
        request: ZosMessageType,
        /// Outcome.
        status: ReplyStatus,
        /// HyperSwap status after the request.
        hyperswap: HyperSwapStatus,
    },
    /// §3.8.
    FlashRequest {
        /// Options.
        options: HostFlashOptions,
        /// (source, target) pairs, 1 to [`MAX_PAIRS`].
        pairs: Vec<VolumePair>,
    },
    /// §3.8.
    FlashReply {
        /// Outcome.
        status: ReplyStatus,
        /// Point-in-time of the flash, seconds since the epoch.
        flash_time: u64,
        /// Pairs established.
        pair_count: u16,
    },
    /// §3.9.
    BackupRequest {
        /// Source volumes, 1 to [`MAX_VOLUMES`].
        volumes: Vec<VolumeRef>,
    },
    /// §3.9.
    BackupReply {
        /// Outcome.
        status: ReplyStatus,
        /// Backup id (0 when refused).
        backup_id: u64,
        /// Point-in-time of the backup, seconds since the epoch.
        backup_time: u64,
    },
    /// §3.11, z/OS → gateway.
    UnplannedSwapEvent {
        /// Configuration name.
        session: Ebcdic<16>,
        /// When, seconds since the epoch.
        time: u64,
        /// Why z/OS swapped (§5).
        reason: u16,
        /// Pairs swapped.
        swapped_pairs: u16,
    },
    /// §3.11, z/OS → gateway.
    HyperSwapDisabledEvent {
        /// Configuration name.
        session: Ebcdic<16>,
        /// When.
        time: u64,
        /// Why (§5).
        reason: u16,
    },
    /// §3.12, z/OS → gateway.
    FreezeEvent {
        /// Configuration name.
        session: Ebcdic<16>,
        /// When.
        time: u64,
        /// Freeze or hardened freeze.
        kind: FreezeKind,
        /// Trigger (§5).
        reason: u16,
    },
}

/// One z/OS message: correlation id and body.
pub type ZosMessage = Message<ZosBody>;

impl ZosBody {
    /// Message type and kind of frame this body travels in.
    fn type_and_kind(&self) -> (ZosMessageType, FrameKind) {
        use ZosBody::*;
        match self {
            QuerySystemRequest => (ZosMessageType::QUERY_SYSTEM, FrameKind::Request),
            QuerySystemReply(_) => (ZosMessageType::QUERY_SYSTEM, FrameKind::Reply),
            LoadConfigRequest { .. } => (ZosMessageType::HS_LOAD_CONFIG, FrameKind::Request),
            EnableRequest { .. } => (ZosMessageType::HS_ENABLE, FrameKind::Request),
            DisableRequest { .. } => (ZosMessageType::HS_DISABLE, FrameKind::Request),
            PlannedSwapRequest { .. } => (ZosMessageType::HS_PLANNED_SWAP, FrameKind::Request),
            PurgeConfigRequest { .. } => (ZosMessageType::HS_PURGE_CONFIG, FrameKind::Request),
            EnableFreezeRequest { .. } => (ZosMessageType::HS_ENABLE_FREEZE, FrameKind::Request),
            HyperSwapReply { request, .. } => (*request, FrameKind::Reply),
            FlashRequest { .. } => (ZosMessageType::FLASH, FrameKind::Request),
            FlashReply { .. } => (ZosMessageType::FLASH, FrameKind::Reply),
            BackupRequest { .. } => (ZosMessageType::SGC_BACKUP, FrameKind::Request),
            BackupReply { .. } => (ZosMessageType::SGC_BACKUP, FrameKind::Reply),
            UnplannedSwapEvent { .. } => (ZosMessageType::EVT_UNPLANNED_SWAP, FrameKind::Event),
            HyperSwapDisabledEvent { .. } => (ZosMessageType::EVT_HS_DISABLED, FrameKind::Event),
            FreezeEvent { .. } => (ZosMessageType::EVT_FREEZE, FrameKind::Event),
        }
    }

    /// The message type this body travels under.
    pub fn message_type(&self) -> ZosMessageType {
        self.type_and_kind().0
    }

    /// True for replies.
    pub fn is_reply(&self) -> bool {
        self.type_and_kind().1 == FrameKind::Reply
    }

    /// True for unsolicited events.
    pub fn is_event(&self) -> bool {
        self.type_and_kind().1 == FrameKind::Event
    }

    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        self.message_type().name().unwrap_or("UNKNOWN")
    }
}

crate::proto::wire_body!(ZosBody, ZosMessageType, ZOS, LOGON, HEARTBEAT, LOGOFF);

impl ZosBody {
    /// Parses a body of the given type and kind; `None` if the pair is unknown.
    fn read(
        t: ZosMessageType,
        kind: FrameKind,
        body: &Bytes,
    ) -> Option<Result<ZosBody, DecodeError>> {
        let name = t.name().unwrap_or("UNKNOWN");
        let mut r = FieldReader::new(name, body);
        let parsed = match (t, kind) {
            (ZosMessageType::QUERY_SYSTEM, FrameKind::Request) => Ok(ZosBody::QuerySystemRequest),
            (ZosMessageType::QUERY_SYSTEM, FrameKind::Reply) => (|| {
                Ok(ZosBody::QuerySystemReply(SystemInfo {
                    status: ReplyStatus::read(&mut r)?,
                    sysplex: r.ebcdic("sysplex")?,
                    system: r.ebcdic("system")?,
                    level: r.ebcdic("level")?,
                    hyperswap: HyperSwapStatus::read(&mut r)?,
                }))
            })(),
            (ZosMessageType::HS_LOAD_CONFIG, FrameKind::Request) => (|| {
                Ok(ZosBody::LoadConfigRequest {
                    session: r.ebcdic("session")?,
                    pairs: read_pairs(&mut r, MAX_PAIRS)?,
                })
            })(),
            (ZosMessageType::HS_ENABLE, FrameKind::Request) => r
                .ebcdic("session")
                .map(|session| ZosBody::EnableRequest { session }),
            (ZosMessageType::HS_DISABLE, FrameKind::Request) => r
                .ebcdic("session")
                .map(|session| ZosBody::DisableRequest { session }),
            (ZosMessageType::HS_PLANNED_SWAP, FrameKind::Request) => r
                .ebcdic("session")
                .map(|session| ZosBody::PlannedSwapRequest { session }),
            (ZosMessageType::HS_PURGE_CONFIG, FrameKind::Request) => r
                .ebcdic("session")
                .map(|session| ZosBody::PurgeConfigRequest { session }),
            (ZosMessageType::HS_ENABLE_FREEZE, FrameKind::Request) => r
                .ebcdic("session")
                .map(|session| ZosBody::EnableFreezeRequest { session }),
            (
                ZosMessageType::HS_LOAD_CONFIG
                | ZosMessageType::HS_ENABLE
                | ZosMessageType::HS_DISABLE
                | ZosMessageType::HS_PLANNED_SWAP
                | ZosMessageType::HS_PURGE_CONFIG
                | ZosMessageType::HS_ENABLE_FREEZE,
                FrameKind::Reply,
            ) => (|| {
                Ok(ZosBody::HyperSwapReply {
                    request: t,
                    status: ReplyStatus::read(&mut r)?,
                    hyperswap: HyperSwapStatus::read(&mut r)?,
                })
            })(),
            (ZosMessageType::FLASH, FrameKind::Request) => (|| {
                Ok(ZosBody::FlashRequest {
                    options: HostFlashOptions::read(&mut r)?,
                    pairs: read_pairs(&mut r, MAX_PAIRS)?,
                })
            })(),
            (ZosMessageType::FLASH, FrameKind::Reply) => (|| {
                Ok(ZosBody::FlashReply {
                    status: ReplyStatus::read(&mut r)?,
                    flash_time: r.u64("flash_time")?,
                    pair_count: r.u16("pair_count")?,
                })
            })(),
            (ZosMessageType::SGC_BACKUP, FrameKind::Request) => {
                read_volume_refs(&mut r, MAX_VOLUMES)
                    .map(|volumes| ZosBody::BackupRequest { volumes })
            }
            (ZosMessageType::SGC_BACKUP, FrameKind::Reply) => (|| {
                Ok(ZosBody::BackupReply {
                    status: ReplyStatus::read(&mut r)?,
                    backup_id: r.u64("backup_id")?,
                    backup_time: r.u64("backup_time")?,
                })
            })(),
            (ZosMessageType::EVT_UNPLANNED_SWAP, FrameKind::Event) => (|| {
                Ok(ZosBody::UnplannedSwapEvent {
                    session: r.ebcdic("session")?,
                    time: r.u64("time")?,
                    reason: r.u16("reason")?,
                    swapped_pairs: r.u16("swapped_pairs")?,
                })
            })(),
            (ZosMessageType::EVT_HS_DISABLED, FrameKind::Event) => (|| {
                Ok(ZosBody::HyperSwapDisabledEvent {
                    session: r.ebcdic("session")?,
                    time: r.u64("time")?,
                    reason: r.u16("reason")?,
                })
            })(),
            (ZosMessageType::EVT_FREEZE, FrameKind::Event) => (|| {
                let session = r.ebcdic("session")?;
                let time = r.u64("time")?;
                let kind = FreezeKind(r.u8("kind")?);
                r.reserved_u8("reserved")?;
                Ok(ZosBody::FreezeEvent {
                    session,
                    time,
                    kind,
                    reason: r.u16("reason")?,
                })
            })(),
            _ => return None,
        };
        Some(parsed.and_then(|b| r.finish().map(|()| b)))
    }

    /// Appends the body (everything after the frame header).
    fn put(&self, dst: &mut BytesMut) {
        use ZosBody::*;
        match self {
            QuerySystemRequest => {}
            QuerySystemReply(s) => {
                s.status.put(dst);
                s.sysplex.put(dst);
                s.system.put(dst);
                s.level.put(dst);
                s.hyperswap.put(dst);
            }
            LoadConfigRequest { session, pairs } => {
                session.put(dst);
                put_pairs(dst, pairs);
            }
            EnableRequest { session }
            | DisableRequest { session }
            | PlannedSwapRequest { session }
            | PurgeConfigRequest { session }
            | EnableFreezeRequest { session } => session.put(dst),
            HyperSwapReply {
                status, hyperswap, ..
            } => {
                status.put(dst);
                hyperswap.put(dst);
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
            UnplannedSwapEvent {
                session,
                time,
                reason,
                swapped_pairs,
            } => {
                session.put(dst);
                dst.put_u64(*time);
                dst.put_u16(*reason);
                dst.put_u16(*swapped_pairs);
            }
            HyperSwapDisabledEvent {
                session,
                time,
                reason,
            } => {
                session.put(dst);
                dst.put_u64(*time);
                dst.put_u16(*reason);
            }
            FreezeEvent {
                session,
                time,
                kind,
                reason,
            } => {
                session.put(dst);
                dst.put_u64(*time);
                dst.put_u8(kind.0);
                dst.put_u8(0);
                dst.put_u16(*reason);
            }
        }
    }
}

/// The z/OS HyperSwap protocol, for the shared session state machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zos;

impl Protocol for Zos {
    type Body = ZosBody;
    const ALREADY_LOGGED_ON: u16 = ZosReason::ALREADY_LOGGED_ON.0;
    const CREDENTIAL_KIND_UNSUPPORTED: u16 = ZosReason::CREDENTIAL_KIND_UNSUPPORTED.0;

    fn refusal_reply(request: &ZosBody, status: ReplyStatus) -> Option<ZosBody> {
        Some(match request {
            ZosBody::QuerySystemRequest => ZosBody::QuerySystemReply(SystemInfo {
                status,
                sysplex: Ebcdic::default(),
                system: Ebcdic::default(),
                level: Ebcdic::default(),
                hyperswap: HyperSwapStatus::default(),
            }),
            ZosBody::LoadConfigRequest { .. }
            | ZosBody::EnableRequest { .. }
            | ZosBody::DisableRequest { .. }
            | ZosBody::PlannedSwapRequest { .. }
            | ZosBody::PurgeConfigRequest { .. }
            | ZosBody::EnableFreezeRequest { .. } => ZosBody::HyperSwapReply {
                request: request.message_type(),
                status,
                hyperswap: HyperSwapStatus::default(),
            },
            ZosBody::FlashRequest { .. } => ZosBody::FlashReply {
                status,
                flash_time: 0,
                pair_count: 0,
            },
            ZosBody::BackupRequest { .. } => ZosBody::BackupReply {
                status,
                backup_id: 0,
                backup_time: 0,
            },
            // Replies and events are never answered.
            _ => return None,
        })
    }
}
