//! One example of every z/OS message, named. Used by the round-trip tests, the golden
//! files in `testdata/zos/`, the fuzz seeds and the hex examples of the spec.

use crate::codec::fields::Ebcdic;
use crate::proto::{Control, HostFlashOptions, ReplyStatus, ReturnCode, VolumePair, VolumeRef};

use super::messages::*;

fn text<const N: usize>(s: &str) -> Ebcdic<N> {
    // The examples are constants that fit their fields.
    Ebcdic::new(s).unwrap_or_default()
}

fn vol(volume: u16, device: u16) -> VolumeRef {
    VolumeRef {
        storage: text("75FA120"),
        volume,
        device,
    }
}

fn pairs() -> Vec<VolumePair> {
    vec![
        VolumePair {
            first: vol(0x1000, 0x9000),
            second: vol(0x2000, 0xA000),
        },
        VolumePair {
            first: vol(0x1001, 0x9001),
            second: vol(0x2001, 0xA001),
        },
    ]
}

fn hs_status(state: HyperSwapState, site: u8) -> HyperSwapStatus {
    HyperSwapStatus {
        state,
        active_site: site,
        session: text("HSPROD"),
        pair_count: 2,
    }
}

/// `(name, message)` for every message variant.
pub fn examples() -> Vec<(&'static str, ZosMessage)> {
    let m = |correlation, body| ZosMessage::own(correlation, body);
    let c = |correlation, control| ZosMessage::control(correlation, control);
    let credential = Credential::new("E9QEUZOI").unwrap_or_else(|| unreachable!());
    vec![
        (
            "logon_request_passticket",
            c(
                1,
                Control::LogonRequest(LogonRequest {
                    user: text("HOSTUSR"),
                    appl: text("IOSHMCSM"),
                    kind: CredentialKind::PASSTICKET,
                    heartbeat_secs: 30,
                    credential,
                }),
            ),
        ),
        (
            "logon_reply_ok",
            c(
                1,
                Control::LogonReply(LogonReply {
                    status: ReplyStatus::OK,
                    racf_rc: 0,
                    session_id: 0x0000_0101,
                    heartbeat_secs: 30,
                    domain: text("PLEX1"),
                    system: text("SYSA"),
                }),
            ),
        ),
        (
            // What every refused credential gets on the wire (a replayed ticket
            // included): NOT_AUTHORIZED, racf_rc 8 (passticket.md §4.7).
            "logon_reply_refused",
            c(2, Control::LogonReply(LogonReply::refused(0x0100, 8))),
        ),
        (
            "heartbeat_request",
            c(7, Control::HeartbeatRequest { seq: 42 }),
        ),
        (
            "heartbeat_reply",
            c(
                7,
                Control::HeartbeatReply {
                    status: ReplyStatus::OK,
                    seq: 42,
                },
            ),
        ),
        ("query_system_request", m(3, ZosBody::QuerySystemRequest)),
        (
            "query_system_reply",
            m(
                3,
                ZosBody::QuerySystemReply(SystemInfo {
                    status: ReplyStatus::OK,
                    sysplex: text("PLEX1"),
                    system: text("SYSA"),
                    level: text("V2R5"),
                    hyperswap: hs_status(HyperSwapState::ENABLED, 1),
                }),
            ),
        ),
        (
            "load_config_request",
            m(
                4,
                ZosBody::LoadConfigRequest {
                    session: text("HSPROD"),
                    pairs: pairs(),
                },
            ),
        ),
        (
            "load_config_reply",
            m(
                4,
                ZosBody::HyperSwapReply {
                    request: ZosMessageType::HS_LOAD_CONFIG,
                    status: ReplyStatus::OK,
                    hyperswap: hs_status(HyperSwapState::DISABLED, 1),
                },
            ),
        ),
        (
            "enable_request",
            m(
                5,
                ZosBody::EnableRequest {
                    session: text("HSPROD"),
                },
            ),
        ),
        (
            "enable_reply",
            m(
                5,
                ZosBody::HyperSwapReply {
                    request: ZosMessageType::HS_ENABLE,
                    status: ReplyStatus::OK,
                    hyperswap: hs_status(HyperSwapState::ENABLED, 1),
                },
            ),
        ),
        (
            "disable_request",
            m(
                6,
                ZosBody::DisableRequest {
                    session: text("HSPROD"),
                },
            ),
        ),
        (
            "planned_swap_request",
            m(
                8,
                ZosBody::PlannedSwapRequest {
                    session: text("HSPROD"),
                },
            ),
        ),
        (
            "planned_swap_reply",
            m(
                8,
                ZosBody::HyperSwapReply {
                    request: ZosMessageType::HS_PLANNED_SWAP,
                    status: ReplyStatus::OK,
                    hyperswap: hs_status(HyperSwapState::DISABLED, 2),
                },
            ),
        ),
        (
            "purge_config_request",
            m(
                12,
                ZosBody::PurgeConfigRequest {
                    session: text("HSPROD"),
                },
            ),
        ),
        (
            "purge_config_reply",
            m(
                12,
                ZosBody::HyperSwapReply {
                    request: ZosMessageType::HS_PURGE_CONFIG,
                    status: ReplyStatus::OK,
                    hyperswap: HyperSwapStatus::default(),
                },
            ),
        ),
        (
            "enable_freeze_request",
            m(
                13,
                ZosBody::EnableFreezeRequest {
                    session: text("HSPROD"),
                },
            ),
        ),
        (
            "enable_freeze_reply",
            m(
                13,
                ZosBody::HyperSwapReply {
                    request: ZosMessageType::HS_ENABLE_FREEZE,
                    status: ReplyStatus::OK,
                    hyperswap: hs_status(HyperSwapState::FREEZE_ENABLED, 1),
                },
            ),
        ),
        (
            "flash_request",
            m(
                9,
                ZosBody::FlashRequest {
                    options: HostFlashOptions(
                        HostFlashOptions::INHIBIT_TARGET_WRITES | HostFlashOptions::INCREMENTAL,
                    ),
                    pairs: pairs(),
                },
            ),
        ),
        (
            "flash_reply",
            m(
                9,
                ZosBody::FlashReply {
                    status: ReplyStatus::OK,
                    flash_time: 1_764_028_800,
                    pair_count: 2,
                },
            ),
        ),
        (
            "backup_request",
            m(
                10,
                ZosBody::BackupRequest {
                    volumes: vec![vol(0x1000, 0x9000), vol(0x1001, 0x9001)],
                },
            ),
        ),
        (
            "backup_reply",
            m(
                10,
                ZosBody::BackupReply {
                    status: ReplyStatus::OK,
                    backup_id: 1_764_028_800,
                    backup_time: 1_764_028_800,
                },
            ),
        ),
        ("logoff_request", c(11, Control::LogoffRequest)),
        (
            "logoff_reply",
            c(
                11,
                Control::LogoffReply {
                    status: ReplyStatus::OK,
                },
            ),
        ),
        (
            "event_unplanned_swap",
            m(
                0x8000_0001,
                ZosBody::UnplannedSwapEvent {
                    session: text("HSPROD"),
                    time: 1_764_028_860,
                    reason: 0x0501,
                    swapped_pairs: 2,
                },
            ),
        ),
        (
            "event_hyperswap_disabled",
            m(
                0x8000_0002,
                ZosBody::HyperSwapDisabledEvent {
                    session: text("HSPROD"),
                    time: 1_764_028_861,
                    reason: 0x0502,
                },
            ),
        ),
        (
            "event_freeze",
            m(
                0x8000_0003,
                ZosBody::FreezeEvent {
                    session: text("HSPROD"),
                    time: 1_764_028_862,
                    kind: FreezeKind::HARDENED_FREEZE,
                    reason: 0x0503,
                },
            ),
        ),
        (
            "protocol_error",
            c(
                12,
                Control::ProtocolError {
                    status: ReplyStatus::new(ReturnCode::PROTOCOL_ERROR, 0x0003),
                    offending_type: 0x0020,
                },
            ),
        ),
    ]
}
