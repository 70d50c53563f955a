//! One example of every z/TPF message, named (tests, golden files, fuzz seeds, spec).

use crate::codec::fields::Ebcdic;
use crate::proto::HostFlashOptions;
use crate::proto::{Control, ReplyStatus, ReturnCode, VolumePair, VolumeRef};

use super::messages::*;

fn text<const N: usize>(s: &str) -> Ebcdic<N> {
    Ebcdic::new(s).unwrap_or_default()
}

fn vol(volume: u16) -> VolumeRef {
    VolumeRef {
        storage: text("75FA120"),
        volume,
        device: 0,
    }
}

/// `(name, message)` for every message variant.
pub fn examples() -> Vec<(&'static str, ZtpfMessage)> {
    let m = |correlation, body| ZtpfMessage::own(correlation, body);
    let c = |correlation, control| ZtpfMessage::control(correlation, control);
    let credential = Credential::new("E9QEUZOI").unwrap_or_else(|| unreachable!());
    vec![
        (
            "signon_request_passticket",
            c(
                1,
                Control::LogonRequest(LogonRequest {
                    user: text("CSMTPF"),
                    appl: text("ZTPFCSM"),
                    kind: CredentialKind::PASSTICKET,
                    heartbeat_secs: 30,
                    credential,
                }),
            ),
        ),
        (
            "signon_reply_ok",
            c(
                1,
                Control::LogonReply(LogonReply {
                    status: ReplyStatus::OK,
                    racf_rc: 0,
                    session_id: 0x0000_0202,
                    heartbeat_secs: 30,
                    domain: text("TPFPROD"),
                    system: text("CPUA"),
                }),
            ),
        ),
        (
            "signon_reply_refused",
            c(2, Control::LogonReply(LogonReply::refused(0x0100, 8))),
        ),
        (
            "keepalive_request",
            c(3, Control::HeartbeatRequest { seq: 9 }),
        ),
        (
            "keepalive_reply",
            c(
                3,
                Control::HeartbeatReply {
                    status: ReplyStatus::OK,
                    seq: 9,
                },
            ),
        ),
        ("query_request", m(4, ZtpfBody::QueryRequest)),
        (
            "query_reply",
            m(
                4,
                ZtpfBody::QueryReply(ZtpfInfo {
                    status: ReplyStatus::OK,
                    complex: text("TPFPROD"),
                    system: text("CPUA"),
                    level: text("PUT23"),
                    subsystem: text("BSS"),
                    attached_volumes: 64,
                }),
            ),
        ),
        (
            "flash_request",
            m(
                5,
                ZtpfBody::FlashRequest {
                    options: HostFlashOptions(HostFlashOptions::INHIBIT_TARGET_WRITES),
                    pairs: vec![VolumePair {
                        first: vol(0x3000),
                        second: vol(0x3100),
                    }],
                },
            ),
        ),
        (
            "flash_reply",
            m(
                5,
                ZtpfBody::FlashReply {
                    status: ReplyStatus::OK,
                    flash_time: 1_764_028_800,
                    pair_count: 1,
                },
            ),
        ),
        (
            "backup_request",
            m(
                6,
                ZtpfBody::BackupRequest {
                    volumes: vec![vol(0x3000), vol(0x3001)],
                },
            ),
        ),
        (
            "backup_reply_refused",
            m(
                6,
                ZtpfBody::BackupReply {
                    status: ReplyStatus::new(
                        ReturnCode::REFUSED,
                        ZtpfReason::VOLUME_NOT_ATTACHED.0,
                    ),
                    backup_id: 0,
                    backup_time: 0,
                },
            ),
        ),
        ("signoff_request", c(7, Control::LogoffRequest)),
        (
            "signoff_reply",
            c(
                7,
                Control::LogoffReply {
                    status: ReplyStatus::OK,
                },
            ),
        ),
        (
            "protocol_error",
            c(
                8,
                Control::ProtocolError {
                    status: ReplyStatus::new(ReturnCode::PROTOCOL_ERROR, 0x0002),
                    offending_type: 0x0999,
                },
            ),
        ),
    ]
}
