//! The image, volumes and host I/O in the DS8000 protocol: QUERY_IMAGE, FENCE, MKVOL,
//! RMVOL, SHOWVOL, LSVOL, WRITE_TRACK, READ_TRACK (spec: protocol-specs/ds8k.md §4.2–§4.4).

use bytes::{BufMut, BytesMut};

use crate::codec::fields::{DecodeError, FieldReader};
use crate::ds8k::VolumeId;
use crate::proto::{FrameKind, ReplyStatus};

use super::fields::*;
use super::messages::{Ds8kBody, Ds8kMessageType, MAX_LSVOL_ENTRIES, VolumeWire};

/// `flash_source` value for "not a FlashCopy target" (LSS FF holds no volumes).
pub const NO_VOLUME: u16 = 0xFFFF;

impl VolumeWire {
    pub(super) fn read(r: &mut FieldReader<'_>) -> Result<VolumeWire, DecodeError> {
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

    pub(super) fn put(&self, dst: &mut BytesMut) {
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
        (T::FENCE, Request) => (|| {
            let at = r.offset();
            let fence = read_fence(r)?;
            if fence.is_none() {
                // spec: ds8k.md §4.2: FENCE names a domain.
                return Err(r.bad_value_at(at, "fence.domain", "not 0"));
            }
            Ok(B::FenceRequest { fence })
        })(),
        (T::FENCE, Reply) => (|| {
            Ok(B::FenceReply {
                status: ReplyStatus::read(r)?,
                epoch: r.u64("epoch")?,
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
        (T::LSVOL, Request) => (|| {
            let first = read_volume(r, "first")?;
            let at = r.offset();
            let max = r.u16("max")?;
            if max == 0 || usize::from(max) > MAX_LSVOL_ENTRIES {
                // spec: ds8k.md §4.3: LSVOL lists 1 to 1,000.
                return Err(r.bad_value_at(at, "max", "1 to 1000"));
            }
            Ok(B::ListVolumesRequest { first, max })
        })(),
        (T::LSVOL, Reply) => (|| {
            let status = ReplyStatus::read(r)?;
            let n = r.count("entry_count", MAX_LSVOL_ENTRIES)?;
            let entries = (0..n)
                .map(|_| VolumeWire::read(r))
                .collect::<Result<_, _>>()?;
            Ok(B::ListVolumesReply { status, entries })
        })(),
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
        _ => return None,
    })
}

/// Appends the body of this area's messages; false for any other message.
pub(super) fn put(body: &Ds8kBody, dst: &mut BytesMut) -> bool {
    use Ds8kBody::*;
    match body {
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
        FenceRequest { fence } => put_fence(*fence, dst),
        FenceReply { status, epoch } => {
            status.put(dst);
            dst.put_u64(*epoch);
        }
        CreateVolumeRequest { volume, kind, name } => {
            dst.put_u16(volume.0);
            put_kind(*kind, dst);
            name.put(dst);
        }
        DeleteVolumeRequest { volume } => dst.put_u16(volume.0),
        ShowVolumeRequest { volume } => dst.put_u16(volume.0),
        ListVolumesRequest { first, max } => {
            dst.put_u16(first.0);
            dst.put_u16(*max);
        }
        ListVolumesReply { status, entries } => {
            status.put(dst);
            crate::codec::fields::put_count(dst, entries.len());
            for e in entries {
                e.put(dst);
            }
        }
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
        _ => return false,
    }
    true
}
