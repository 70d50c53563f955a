//! The DS8000 protocol's bodies on the wire (spec: protocol-specs/ds8k.md §4): one
//! module per area reads and writes its messages (`volumes`, `flash`, `sgc`,
//! `pprc`, `events`); this module dispatches to them. Dependencies point one way: the
//! messages (types) ← the areas ← this dispatch.

use bytes::{BufMut, Bytes, BytesMut};

use super::messages::{Ds8kBody, Ds8kMessageType, count_width};
use crate::codec::fields::{DecodeError, FieldReader};
use crate::proto::{FrameKind, ReplyStatus};

impl Ds8kBody {
    fn read(
        t: Ds8kMessageType,
        kind: FrameKind,
        body: &Bytes,
    ) -> Option<Result<Ds8kBody, DecodeError>> {
        let name = t.name().unwrap_or("UNKNOWN");
        let mut reader = FieldReader::new(name, body);
        let r = &mut reader;
        // One module per area (§4.2–§4.7); the replies that carry only a count here.
        let area = super::volumes::read(t, kind, r)
            .or_else(|| super::flash::read(t, kind, r))
            .or_else(|| super::sgc::read(t, kind, r))
            .or_else(|| super::pprc::read(t, kind, r))
            .or_else(|| super::events::read(t, kind, r));
        let parsed = match (area, kind) {
            (Some(parsed), _) => parsed,
            (None, FrameKind::Reply) if count_width(t).is_some() => (|| {
                let status = ReplyStatus::read(r)?;
                let count = match count_width(t) {
                    Some(2) => u64::from(r.u16("count")?),
                    Some(4) => u64::from(r.u32("count")?),
                    Some(8) => r.u64("count")?,
                    _ => 0,
                };
                Ok(Ds8kBody::CountReply {
                    message_type: t,
                    status,
                    count,
                })
            })(),
            (None, _) => return None,
        };
        Some(parsed.and_then(|b| reader.finish().map(|()| b)))
    }

    fn put(&self, dst: &mut BytesMut) {
        use Ds8kBody::*;
        if super::volumes::put(self, dst)
            || super::flash::put(self, dst)
            || super::sgc::put(self, dst)
            || super::pprc::put(self, dst)
            || super::events::put(self, dst)
        {
            return;
        }
        if let CountReply {
            message_type,
            status,
            count,
        } = self
        {
            status.put(dst);
            // Counts are clamped to their width: encode stays infallible.
            match count_width(*message_type) {
                Some(2) => dst.put_u16(u16::try_from(*count).unwrap_or(u16::MAX)),
                Some(4) => dst.put_u32(u32::try_from(*count).unwrap_or(u32::MAX)),
                Some(8) => dst.put_u64(*count),
                _ => {}
            }
        }
    }
}

crate::proto::wire_body!(Ds8kBody, Ds8kMessageType, DS8K, LOGON, HEARTBEAT, LOGOFF);
