//! One example of every DS8000 protocol message, named (tests, golden files, fuzz
//! seeds, spec).

use crate::codec::fields::Ebcdic;
use crate::ds8k::{Ds8kReason, Fence, FlashOptions, Lss, PairKey, VolumeId, VolumeKind};
use crate::proto::{Control, ReplyStatus, ReturnCode};

use super::messages::*;

fn text<const N: usize>(s: &str) -> Ebcdic<N> {
    Ebcdic::new(s).unwrap_or_default()
}

/// The fence of the spec's examples: a pair's domain, epoch 2 (ds8k.md §3.4).
const PAIR_FENCE: Fence = Fence {
    domain: 0x1F2E_3D4C_5B6A_7988,
    epoch: 2,
};

fn pair(source: u16, target: u16) -> PairKey {
    PairKey {
        source: VolumeId(source),
        target: VolumeId(target),
    }
}

/// `(name, message)` for every message variant.
pub fn examples() -> Vec<(&'static str, Ds8kMessage)> {
    let m = |correlation, body| Ds8kMessage::own(correlation, body);
    let c = |correlation, control| Ds8kMessage::control(correlation, control);
    let refused = |reason: Ds8kReason| ReplyStatus::new(ReturnCode::REFUSED, reason.0);
    let credential = Credential::new("HMCPASS1").unwrap_or_else(|| unreachable!());
    let count = |t, count| Ds8kBody::CountReply {
        message_type: t,
        status: ReplyStatus::OK,
        count,
    };
    vec![
        (
            "logon_request_password",
            c(
                1,
                Control::LogonRequest(LogonRequest {
                    user: text("CSMADMIN"),
                    appl: text("HMC"),
                    kind: CredentialKind::PASSWORD,
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
                    session_id: 0x0000_0401,
                    heartbeat_secs: 30,
                    domain: text("75FA120"),
                    system: text("HMC1"),
                }),
            ),
        ),
        (
            "heartbeat_request",
            c(2, Control::HeartbeatRequest { seq: 5 }),
        ),
        (
            "heartbeat_reply",
            c(
                2,
                Control::HeartbeatReply {
                    status: ReplyStatus::OK,
                    seq: 5,
                },
            ),
        ),
        ("query_image_request", m(3, Ds8kBody::QueryImageRequest)),
        (
            "image_reply",
            m(
                3,
                Ds8kBody::ImageReply {
                    status: ReplyStatus::OK,
                    serial: text("75FA120"),
                    volumes: 512,
                    relationships: 2,
                    backups: 1,
                    frozen_lsss: 0,
                    clock_ms: 1_700_000_000_000,
                },
            ),
        ),
        (
            "fence_request",
            m(
                0x1F,
                Ds8kBody::FenceRequest {
                    fence: Fence {
                        domain: PAIR_FENCE.domain,
                        epoch: 3,
                    },
                },
            ),
        ),
        (
            "fence_reply",
            m(
                0x1F,
                Ds8kBody::FenceReply {
                    status: ReplyStatus::OK,
                    epoch: 3,
                },
            ),
        ),
        (
            "mkvol_ckd_request",
            m(
                4,
                Ds8kBody::CreateVolumeRequest {
                    volume: VolumeId(0x3000),
                    kind: VolumeKind::ckd(65_520),
                    name: text("PROD3000"),
                },
            ),
        ),
        (
            "mkvol_fb_request",
            m(
                4,
                Ds8kBody::CreateVolumeRequest {
                    volume: VolumeId(0x1000),
                    kind: VolumeKind::fb_gib(100),
                    name: text("AIXDATA"),
                },
            ),
        ),
        ("mkvol_reply", m(4, count(Ds8kMessageType::MKVOL, 0))),
        (
            "mkvol_reply_exists",
            m(
                4,
                Ds8kBody::CountReply {
                    message_type: Ds8kMessageType::MKVOL,
                    status: refused(Ds8kReason::VOLUME_EXISTS),
                    count: 0,
                },
            ),
        ),
        (
            "rmvol_request",
            m(
                5,
                Ds8kBody::DeleteVolumeRequest {
                    volume: VolumeId(0x3000),
                },
            ),
        ),
        ("rmvol_reply", m(5, count(Ds8kMessageType::RMVOL, 0))),
        (
            "lsvol_request",
            m(
                40,
                Ds8kBody::ListVolumesRequest {
                    first: VolumeId(0x3000),
                    max: 2,
                },
            ),
        ),
        (
            "showvol_request",
            m(
                6,
                Ds8kBody::ShowVolumeRequest {
                    volume: VolumeId(0x3000),
                },
            ),
        ),
        (
            "showvol_reply",
            m(
                6,
                Ds8kBody::VolumeReply {
                    status: ReplyStatus::OK,
                    volume: VolumeWire {
                        volume: VolumeId(0x3100),
                        kind: VolumeKind::ckd(3_339),
                        tracks: 50_085,
                        name: text("FC3100"),
                        flash_targets: 0,
                        flash_source: Some(VolumeId(0x3000)),
                        sgc_capacity: 0,
                        sgc_used: 0,
                        backups: 0,
                    },
                },
            ),
        ),
        (
            "write_track_request",
            m(
                7,
                Ds8kBody::WriteTrackRequest {
                    volume: VolumeId(0x3000),
                    track: 15,
                    tag: 42,
                },
            ),
        ),
        (
            "write_track_reply",
            m(7, count(Ds8kMessageType::WRITE_TRACK, 0)),
        ),
        (
            "write_track_reply_inhibited",
            m(
                7,
                Ds8kBody::CountReply {
                    message_type: Ds8kMessageType::WRITE_TRACK,
                    status: refused(Ds8kReason::TARGET_WRITE_INHIBITED),
                    count: 0,
                },
            ),
        ),
        (
            "read_track_request",
            m(
                8,
                Ds8kBody::ReadTrackRequest {
                    volume: VolumeId(0x3100),
                    track: 15,
                },
            ),
        ),
        (
            "track_reply",
            m(
                8,
                Ds8kBody::TrackReply {
                    status: ReplyStatus::OK,
                    tag: 42,
                },
            ),
        ),
        (
            "mkflash_request",
            m(
                9,
                Ds8kBody::FlashRequest {
                    fence: PAIR_FENCE,
                    resync: false,
                    options: FlashOptions(
                        FlashOptions::INHIBIT_TARGET_WRITES | FlashOptions::FREEZE,
                    ),
                    sequence: 7,
                    not_after_ms: 1_700_000_030_000,
                    pairs: vec![pair(0x3000, 0x3100), pair(0x3001, 0x3101)],
                },
            ),
        ),
        (
            "mkflash_reply",
            m(
                9,
                Ds8kBody::FlashReply {
                    resync: false,
                    status: ReplyStatus::OK,
                    sequence: 7,
                    pair_count: 2,
                    out_of_sync_tracks: 100_170,
                },
            ),
        ),
        (
            "mkflash_reply_fenced",
            m(
                9,
                Ds8kBody::FlashReply {
                    resync: false,
                    status: refused(Ds8kReason::FENCED),
                    sequence: 0,
                    pair_count: 0,
                    out_of_sync_tracks: 0,
                },
            ),
        ),
        (
            "resyncflash_request",
            m(
                10,
                Ds8kBody::FlashRequest {
                    resync: true,
                    fence: Fence::NONE,
                    options: FlashOptions(FlashOptions::RECORD | FlashOptions::PERSIST),
                    sequence: 0,
                    not_after_ms: 0,
                    pairs: vec![pair(0x3000, 0x3100)],
                },
            ),
        ),
        (
            "resyncflash_reply_not_incremental",
            m(
                10,
                Ds8kBody::FlashReply {
                    resync: true,
                    status: refused(Ds8kReason::NOT_INCREMENTAL),
                    sequence: 0,
                    pair_count: 0,
                    out_of_sync_tracks: 0,
                },
            ),
        ),
        (
            "rmflash_request",
            m(
                11,
                Ds8kBody::WithdrawRequest {
                    fence: Fence::NONE,
                    copy_first: true,
                    pairs: vec![pair(0x3000, 0x3100)],
                },
            ),
        ),
        ("rmflash_reply", m(11, count(Ds8kMessageType::RMFLASH, 1))),
        (
            "lsflash_request",
            m(
                12,
                Ds8kBody::ListFlashRequest {
                    volume: VolumeId(0x3000),
                },
            ),
        ),
        (
            "lsflash_reply",
            m(
                12,
                Ds8kBody::ListFlashReply {
                    status: ReplyStatus::OK,
                    entries: vec![FlashEntry {
                        key: pair(0x3000, 0x3100),
                        options: FlashOptions(FlashOptions::INHIBIT_TARGET_WRITES),
                        copying: true,
                        sequence: 7,
                        out_of_sync_tracks: 48_085,
                        changed_tracks: 0,
                        created_ms: 1_700_000_000_000,
                        synced_ms: 1_700_000_000_000,
                    }],
                },
            ),
        ),
        (
            "unfreezeflash_request",
            m(
                13,
                Ds8kBody::UnfreezeRequest {
                    fence: Fence::NONE,
                    lsss: vec![Lss(0x30)],
                },
            ),
        ),
        (
            "unfreezeflash_reply",
            m(13, count(Ds8kMessageType::UNFREEZEFLASH, 1)),
        ),
        ("lsfrozen_request", m(30, Ds8kBody::FrozenRequest)),
        (
            "lsfrozen_reply",
            m(
                30,
                Ds8kBody::FrozenReply {
                    status: ReplyStatus::OK,
                    clock_ms: 1_700_000_000_500,
                    lsss: vec![Lss(0x30)],
                },
            ),
        ),
        (
            "mksgcap_request",
            m(
                14,
                Ds8kBody::SetCapacityRequest {
                    volume: VolumeId(0x3000),
                    tracks: 100_000,
                },
            ),
        ),
        ("mksgcap_reply", m(14, count(Ds8kMessageType::MKSGCAP, 0))),
        (
            "sgc_backup_request",
            m(
                15,
                Ds8kBody::BackupRequest {
                    fence: PAIR_FENCE,
                    tag: 41,
                    not_after_ms: 1_700_000_130_000,
                    volumes: vec![VolumeId(0x3000), VolumeId(0x3001)],
                },
            ),
        ),
        (
            "sgc_backup_reply",
            m(
                15,
                Ds8kBody::BackupReply {
                    status: ReplyStatus::OK,
                    backup_id: 1_700_000_100,
                    time_ms: 1_700_000_100_250,
                    volume_count: 2,
                },
            ),
        ),
        (
            "lsbackup_request",
            m(
                16,
                Ds8kBody::ListBackupsRequest {
                    volume: VolumeId(0x3000),
                },
            ),
        ),
        (
            "lsbackup_reply",
            m(
                16,
                Ds8kBody::ListBackupsReply {
                    status: ReplyStatus::OK,
                    entries: vec![BackupEntry {
                        backup_id: 1_700_000_100,
                        time_ms: 1_700_000_100_250,
                        saved_tracks: 12,
                        tag: 41,
                    }],
                },
            ),
        ),
        (
            "recover_backup_request",
            m(
                17,
                Ds8kBody::RecoverRequest {
                    fence: Fence::NONE,
                    backup_id: 1_700_000_100,
                    pairs: vec![pair(0x3000, 0x3200)],
                },
            ),
        ),
        (
            "recover_backup_reply",
            m(17, count(Ds8kMessageType::RECOVER_BACKUP, 1)),
        ),
        (
            "expire_backup_request",
            m(
                18,
                Ds8kBody::ExpireRequest {
                    fence: Fence::NONE,
                    backup_id: 1_700_000_100,
                },
            ),
        ),
        (
            "expire_backup_reply",
            m(18, count(Ds8kMessageType::EXPIRE_BACKUP, 2)),
        ),
        (
            "restore_backup_request",
            m(
                19,
                Ds8kBody::RestoreRequest {
                    fence: Fence::NONE,
                    backup_id: 1_700_000_100,
                    volumes: vec![VolumeId(0x3000)],
                },
            ),
        ),
        (
            "restore_backup_reply",
            m(19, count(Ds8kMessageType::RESTORE_BACKUP, 12)),
        ),
        ("logoff_request", c(20, Control::LogoffRequest)),
        (
            "logoff_reply",
            c(
                20,
                Control::LogoffReply {
                    status: ReplyStatus::OK,
                },
            ),
        ),
        (
            "mkpprcpath_request",
            m(
                0x30,
                Ds8kBody::PathRequest {
                    fence: PAIR_FENCE,
                    remove: false,
                    remote: text("75FA121"),
                    options: PATH_CONSISTENCY_GROUP,
                    lss_pairs: vec![(Lss(0x30), Lss(0x30))],
                },
            ),
        ),
        (
            "mkpprcpath_reply",
            m(0x30, count(Ds8kMessageType::MKPPRCPATH, 1)),
        ),
        (
            "rmpprcpath_request",
            m(
                0x31,
                Ds8kBody::PathRequest {
                    fence: Fence::NONE,
                    remove: true,
                    remote: text("75FA121"),
                    options: 0,
                    lss_pairs: vec![(Lss(0x30), Lss(0x30)), (Lss(0x31), Lss(0x31))],
                },
            ),
        ),
        ("lspprcpath_request", m(0x32, Ds8kBody::ListPathsRequest)),
        (
            "lspprcpath_reply",
            m(
                0x32,
                Ds8kBody::ListPathsReply {
                    status: ReplyStatus::OK,
                    entries: vec![PathEntry {
                        lss: Lss(0x30),
                        remote: text("75FA121"),
                        remote_lss: Lss(0x30),
                        options: PATH_CONSISTENCY_GROUP,
                        up: true,
                    }],
                },
            ),
        ),
        (
            "mkpprc_request",
            m(
                0x33,
                Ds8kBody::PprcPairsRequest {
                    fence: PAIR_FENCE,
                    failback: false,
                    options: 0,
                    remote: text("75FA121"),
                    pairs: vec![pair(0x3000, 0x3000), pair(0x3001, 0x3001)],
                },
            ),
        ),
        ("mkpprc_reply", m(0x33, count(Ds8kMessageType::MKPPRC, 2))),
        (
            "mkpprc_reply_no_path",
            m(
                0x33,
                Ds8kBody::CountReply {
                    message_type: Ds8kMessageType::MKPPRC,
                    status: refused(Ds8kReason::NO_PATH),
                    count: 0,
                },
            ),
        ),
        (
            "failbackpprc_request",
            m(
                0x34,
                Ds8kBody::PprcPairsRequest {
                    fence: Fence::NONE,
                    failback: true,
                    options: 0,
                    remote: text("75FA120"),
                    pairs: vec![pair(0x3000, 0x3000)],
                },
            ),
        ),
        (
            "pausepprc_request",
            m(
                0x35,
                Ds8kBody::PprcVolumesRequest {
                    fence: Fence::NONE,
                    message_type: Ds8kMessageType::PAUSEPPRC,
                    volumes: vec![VolumeId(0x3000)],
                },
            ),
        ),
        (
            "resumepprc_request",
            m(
                0x36,
                Ds8kBody::PprcVolumesRequest {
                    fence: Fence::NONE,
                    message_type: Ds8kMessageType::RESUMEPPRC,
                    volumes: vec![VolumeId(0x3000)],
                },
            ),
        ),
        (
            "failoverpprc_request",
            m(
                0x37,
                Ds8kBody::PprcVolumesRequest {
                    fence: PAIR_FENCE,
                    message_type: Ds8kMessageType::FAILOVERPPRC,
                    volumes: vec![VolumeId(0x3000), VolumeId(0x3001)],
                },
            ),
        ),
        (
            "failoverpprc_reply",
            m(0x37, count(Ds8kMessageType::FAILOVERPPRC, 2)),
        ),
        (
            "rmpprc_request",
            m(
                0x38,
                Ds8kBody::PprcVolumesRequest {
                    fence: Fence::NONE,
                    message_type: Ds8kMessageType::RMPPRC,
                    volumes: vec![VolumeId(0x3000)],
                },
            ),
        ),
        (
            "freezepprc_request",
            m(
                0x39,
                Ds8kBody::FreezePprcRequest {
                    fence: PAIR_FENCE,
                    remote: text("75FA121"),
                    lss_pairs: vec![(Lss(0x30), Lss(0x30))],
                },
            ),
        ),
        (
            "freezepprc_reply",
            m(0x39, count(Ds8kMessageType::FREEZEPPRC, 256)),
        ),
        (
            "unfreezepprc_request",
            m(
                0x3A,
                Ds8kBody::UnfreezePprcRequest {
                    fence: PAIR_FENCE,
                    lsss: vec![Lss(0x30)],
                },
            ),
        ),
        (
            "unfreezepprc_reply",
            m(0x3A, count(Ds8kMessageType::UNFREEZEPPRC, 1)),
        ),
        (
            "lspprc_request",
            m(
                0x3B,
                Ds8kBody::ListPprcRequest {
                    volume: VolumeId(0x3000),
                },
            ),
        ),
        (
            "lspprc_reply",
            m(
                0x3B,
                Ds8kBody::ListPprcReply {
                    status: ReplyStatus::OK,
                    entries: vec![PprcEntry {
                        primary_serial: text("75FA120"),
                        primary: VolumeId(0x3000),
                        secondary_serial: text("75FA121"),
                        secondary: VolumeId(0x3000),
                        state: 3,
                        reason: 2,
                        failed_over: false,
                        out_of_sync_tracks: 12,
                    }],
                },
            ),
        ),
        (
            "evt_pprc_suspended",
            m(
                0,
                Ds8kBody::PprcSuspendedEvent {
                    primary: VolumeId(0x3000),
                    remote: text("75FA121"),
                    secondary: VolumeId(0x3000),
                    reason: 3,
                    time_ms: 1_700_000_000_000,
                },
            ),
        ),
        (
            "evt_pprc_duplex",
            m(
                0,
                Ds8kBody::PprcDuplexEvent {
                    primary: VolumeId(0x3000),
                    remote: text("75FA121"),
                    secondary: VolumeId(0x3000),
                    time_ms: 1_700_000_000_000,
                },
            ),
        ),
        (
            "evt_pprc_long_busy_ended",
            m(
                0,
                Ds8kBody::PprcLongBusyEndedEvent {
                    lss: Lss(0x30),
                    time_ms: 1_700_000_120_000,
                },
            ),
        ),
        (
            "evt_copy_complete",
            m(
                0,
                Ds8kBody::CopyCompleteEvent {
                    key: pair(0x3000, 0x3100),
                    ended: false,
                    time_ms: 1_700_000_030_000,
                },
            ),
        ),
        (
            "evt_backup_rolled_off",
            m(
                0,
                Ds8kBody::BackupRolledOffEvent {
                    volume: VolumeId(0x3000),
                    backup_id: 1_700_000_100,
                    time_ms: 1_700_000_200_000,
                },
            ),
        ),
        (
            "evt_freeze_timed_out",
            m(
                0,
                Ds8kBody::FreezeTimedOutEvent {
                    lss: Lss(0x30),
                    time_ms: 1_700_000_120_000,
                },
            ),
        ),
        (
            "protocol_error",
            c(
                21,
                Control::ProtocolError {
                    status: ReplyStatus::new(
                        ReturnCode::PROTOCOL_ERROR,
                        crate::proto::CommonReason::MALFORMED_BODY.0,
                    ),
                    offending_type: 0x0430,
                },
            ),
        ),
    ]
}
