//! Events of the DS8000 protocol: copy complete, backup rolled off, freeze timed
//! out (spec: protocol-specs/ds8k.md §4.7).

use bytes::{BufMut, BytesMut};

use crate::codec::fields::{DecodeError, FieldReader};
use crate::ds8k::{Lss, PairKey};
use crate::proto::FrameKind;

use super::fields::*;
use super::messages::{Ds8kBody, Ds8kMessageType};

/// Parses a body of this area's messages; `None` for any other message.
pub(super) fn read(
    t: Ds8kMessageType,
    kind: FrameKind,
    r: &mut FieldReader<'_>,
) -> Option<Result<Ds8kBody, DecodeError>> {
    use Ds8kBody as B;
    use Ds8kMessageType as T;
    use FrameKind::Event;
    Some(match (t, kind) {
        (T::EVT_COPY_COMPLETE, Event) => (|| {
            let key = PairKey {
                source: read_volume(r, "source")?,
                target: read_volume(r, "target")?,
            };
            let ended = r.boolean("ended", true)?;
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
            r.reserved_u8("reserved")?;
            Ok(B::FreezeTimedOutEvent {
                lss,
                time_ms: r.u64("time_ms")?,
            })
        })(),
        _ => return None,
    })
}

/// Appends the body of this area's messages; false for any other message.
pub(super) fn put(body: &Ds8kBody, dst: &mut BytesMut) -> bool {
    use Ds8kBody::*;
    match body {
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
        _ => return false,
    }
    true
}
