//! FlashCopy in the DS8000 protocol: MKFLASH, RESYNCFLASH, RMFLASH, LSFLASH,
//! UNFREEZEFLASH, LSFROZEN (spec: protocol-specs/ds8k.md §4.5, semantics §3.1).

use bytes::{BufMut, BytesMut};

use crate::codec::fields::{DecodeError, FieldReader, put_count};
use crate::ds8k::{FlashOptions, Lss, PairKey};
use crate::proto::{FrameKind, ReplyStatus};

use super::fields::*;
use super::messages::{Ds8kBody, Ds8kMessageType, FlashEntry, MAX_FLASH_ENTRIES, MAX_LSSS};

impl FlashEntry {
    pub(super) fn read(r: &mut FieldReader<'_>) -> Result<FlashEntry, DecodeError> {
        let key = PairKey {
            source: read_volume(r, "source")?,
            target: read_volume(r, "target")?,
        };
        let options = FlashOptions(r.u16("options")?);
        let copying = r.boolean("copying", false)?;
        r.reserved_u8("reserved")?;
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

    pub(super) fn put(&self, dst: &mut BytesMut) {
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
        (T::MKFLASH | T::RESYNCFLASH, Request) => (|| {
            // spec: ds8k.md §3.1: only the DS CLI flags defined there.
            let fence = read_fence(r)?;
            let options = FlashOptions(r.flags_u16("options", FlashOptions::KNOWN)?);
            Ok(B::FlashRequest {
                fence,
                resync: t == T::RESYNCFLASH,
                options,
                sequence: r.u32("sequence")?,
                not_after_ms: r.u64("not_after_ms")?,
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
            let fence = read_fence(r)?;
            let copy_first = r.boolean("copy_first", true)?;
            Ok(B::WithdrawRequest {
                fence,
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
            let fence = read_fence(r)?;
            let n = r.nonempty_count("lss_count", MAX_LSSS)?;
            let lsss = (0..n)
                .map(|_| r.u8("lss").map(Lss))
                .collect::<Result<_, _>>()?;
            Ok(B::UnfreezeRequest { fence, lsss })
        })(),
        (T::LSFROZEN, Request) => Ok(B::FrozenRequest),
        (T::LSFROZEN, Reply) => (|| {
            let status = ReplyStatus::read(r)?;
            let clock_ms = r.u64("clock_ms")?;
            let n = r.count("lss_count", MAX_LSSS)?;
            let lsss = (0..n)
                .map(|_| r.u8("lss").map(Lss))
                .collect::<Result<_, _>>()?;
            Ok(B::FrozenReply {
                status,
                clock_ms,
                lsss,
            })
        })(),
        _ => return None,
    })
}

/// Appends the body of this area's messages; false for any other message.
pub(super) fn put(body: &Ds8kBody, dst: &mut BytesMut) -> bool {
    use Ds8kBody::*;
    match body {
        FlashRequest {
            fence,
            options,
            sequence,
            not_after_ms,
            pairs,
            ..
        } => {
            put_fence(*fence, dst);
            dst.put_u16(options.0);
            dst.put_u32(*sequence);
            dst.put_u64(*not_after_ms);
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
        WithdrawRequest {
            fence,
            copy_first,
            pairs,
        } => {
            put_fence(*fence, dst);
            dst.put_u16(u16::from(*copy_first));
            put_pairs(pairs, dst);
        }
        ListFlashRequest { volume } => dst.put_u16(volume.0),
        ListFlashReply { status, entries } => {
            status.put(dst);
            put_count(dst, entries.len());
            for e in entries {
                e.put(dst);
            }
        }
        UnfreezeRequest { fence, lsss } => {
            put_fence(*fence, dst);
            put_count(dst, lsss.len());
            for l in lsss {
                dst.put_u8(l.0);
            }
        }
        FrozenRequest => {}
        FrozenReply {
            status,
            clock_ms,
            lsss,
        } => {
            status.put(dst);
            dst.put_u64(*clock_ms);
            put_count(dst, lsss.len());
            for l in lsss {
                dst.put_u8(l.0);
            }
        }
        _ => return false,
    }
    true
}
