//! Field types the DS8000 protocol's messages share: volume ids, KIND, pair and
//! volume lists (spec: protocol-specs/ds8k.md §4, §4.3).

use bytes::{BufMut, BytesMut};

use crate::codec::fields::{DecodeError, FieldReader, put_count};
use crate::ds8k::{Fence, PairKey, VolumeId, VolumeKind};

use super::messages::{MAX_PAIRS, MAX_VOLUMES};

/// FB or CKD on the wire (§4.3): `type u8` (1 CKD, 2 FB), `reserved u8`, `size u64`
/// (cylinders or 512-byte blocks).
pub(super) fn read_kind(r: &mut FieldReader<'_>) -> Result<VolumeKind, DecodeError> {
    let at = r.offset();
    let t = r.u8("volume_type")?;
    if t != 1 && t != 2 {
        // spec: ds8k.md §4.3: type 1 CKD or 2 FB.
        return Err(r.bad_value_at(at, "volume_type", "1 (CKD) or 2 (FB)"));
    }
    r.reserved_u8("reserved")?;
    let at = r.offset();
    let size = r.u64("size")?;
    if t == 2 {
        return Ok(VolumeKind::Fb { blocks: size });
    }
    u32::try_from(size)
        .map(|cylinders| VolumeKind::Ckd { cylinders })
        // spec: ds8k.md §4.3: CKD sizes are at most 2^32 - 1 cylinders.
        .map_err(|_| r.bad_value_at(at, "size", "CKD cylinders over 32 bits"))
}

pub(super) fn put_kind(kind: VolumeKind, dst: &mut BytesMut) {
    let (t, size) = match kind {
        VolumeKind::Ckd { cylinders } => (1u8, u64::from(cylinders)),
        VolumeKind::Fb { blocks } => (2u8, blocks),
    };
    dst.put_u8(t);
    dst.put_u8(0);
    dst.put_u64(size);
}

pub(super) fn read_volume(
    r: &mut FieldReader<'_>,
    field: &'static str,
) -> Result<VolumeId, DecodeError> {
    r.u16(field).map(VolumeId)
}

pub(super) fn read_pairs(r: &mut FieldReader<'_>) -> Result<Vec<PairKey>, DecodeError> {
    let n = r.nonempty_count("pair_count", MAX_PAIRS)?;
    (0..n)
        .map(|_| {
            Ok(PairKey {
                source: read_volume(r, "pair.source")?,
                target: read_volume(r, "pair.target")?,
            })
        })
        .collect()
}

pub(super) fn put_pairs(pairs: &[PairKey], dst: &mut BytesMut) {
    put_count(dst, pairs.len());
    for p in pairs {
        dst.put_u16(p.source.0);
        dst.put_u16(p.target.0);
    }
}

pub(super) fn read_volumes(r: &mut FieldReader<'_>) -> Result<Vec<VolumeId>, DecodeError> {
    let n = r.nonempty_count("volume_count", MAX_VOLUMES)?;
    (0..n).map(|_| read_volume(r, "volume")).collect()
}

pub(super) fn put_volumes(volumes: &[VolumeId], dst: &mut BytesMut) {
    put_count(dst, volumes.len());
    for v in volumes {
        dst.put_u16(v.0);
    }
}

/// FENCE (§3.4, 16 bytes): `domain u64, epoch u64`.
pub(super) fn read_fence(r: &mut FieldReader<'_>) -> Result<Fence, DecodeError> {
    Ok(Fence {
        domain: r.u64("fence.domain")?,
        epoch: r.u64("fence.epoch")?,
    })
}

pub(super) fn put_fence(fence: Fence, dst: &mut BytesMut) {
    dst.put_u64(fence.domain);
    dst.put_u64(fence.epoch);
}
