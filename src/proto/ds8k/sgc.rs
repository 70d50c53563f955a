//! Safeguarded Copy in the DS8000 protocol: MKSGCAP, SGC_BACKUP, LSBACKUP,
//! RECOVER_BACKUP, EXPIRE_BACKUP, RESTORE_BACKUP (spec: protocol-specs/ds8k.md §4.6,
//! semantics §3.2).

use bytes::{BufMut, BytesMut};

use crate::codec::fields::{DecodeError, FieldReader, put_count};
use crate::proto::{FrameKind, ReplyStatus};

use super::fields::*;
use super::messages::{BackupEntry, Ds8kBody, Ds8kMessageType, MAX_BACKUP_ENTRIES};

/// Parses a body of this area's messages; `None` for any other message.
pub(super) fn read(
    t: Ds8kMessageType,
    kind: FrameKind,
    r: &mut FieldReader<'_>,
) -> Option<Result<Ds8kBody, DecodeError>> {
    use Ds8kBody as B;
    use Ds8kMessageType as T;
    use FrameKind::{Reply, Request};
    Some(match (t, kind) {
        (T::MKSGCAP, Request) => (|| {
            Ok(B::SetCapacityRequest {
                volume: read_volume(r, "volume")?,
                tracks: r.u64("tracks")?,
            })
        })(),
        (T::SGC_BACKUP, Request) => (|| {
            Ok(B::BackupRequest {
                fence: read_fence(r)?,
                tag: r.u32("tag")?,
                not_after_ms: r.u64("not_after_ms")?,
                volumes: read_volumes(r)?,
            })
        })(),
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
                        tag: r.u32("tag")?,
                    })
                })
                .collect::<Result<_, _>>()?;
            Ok(B::ListBackupsReply { status, entries })
        })(),
        (T::RECOVER_BACKUP, Request) => (|| {
            Ok(B::RecoverRequest {
                fence: read_fence(r)?,
                backup_id: r.u64("backup_id")?,
                pairs: read_pairs(r)?,
            })
        })(),
        (T::EXPIRE_BACKUP, Request) => (|| {
            Ok(B::ExpireRequest {
                fence: read_fence(r)?,
                backup_id: r.u64("backup_id")?,
            })
        })(),
        (T::RESTORE_BACKUP, Request) => (|| {
            Ok(B::RestoreRequest {
                fence: read_fence(r)?,
                backup_id: r.u64("backup_id")?,
                volumes: read_volumes(r)?,
            })
        })(),
        _ => return None,
    })
}

/// Appends the body of this area's messages; false for any other message.
pub(super) fn put(body: &Ds8kBody, dst: &mut BytesMut) -> bool {
    use Ds8kBody::*;
    match body {
        SetCapacityRequest { volume, tracks } => {
            dst.put_u16(volume.0);
            dst.put_u64(*tracks);
        }
        BackupRequest {
            fence,
            tag,
            not_after_ms,
            volumes,
        } => {
            put_fence(*fence, dst);
            dst.put_u32(*tag);
            dst.put_u64(*not_after_ms);
            put_volumes(volumes, dst);
        }
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
        ListBackupsRequest { volume } => dst.put_u16(volume.0),
        ListBackupsReply { status, entries } => {
            status.put(dst);
            put_count(dst, entries.len());
            for e in entries {
                dst.put_u64(e.backup_id);
                dst.put_u64(e.time_ms);
                dst.put_u64(e.saved_tracks);
                dst.put_u32(e.tag);
            }
        }
        RecoverRequest {
            fence,
            backup_id,
            pairs,
        } => {
            put_fence(*fence, dst);
            dst.put_u64(*backup_id);
            put_pairs(pairs, dst);
        }
        ExpireRequest { fence, backup_id } => {
            put_fence(*fence, dst);
            dst.put_u64(*backup_id);
        }
        RestoreRequest {
            fence,
            backup_id,
            volumes,
        } => {
            put_fence(*fence, dst);
            dst.put_u64(*backup_id);
            put_volumes(volumes, dst);
        }
        _ => return false,
    }
    true
}
