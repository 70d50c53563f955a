//! Metro Mirror (PPRC) in the DS8000 protocol: MKPPRCPATH, RMPPRCPATH, LSPPRCPATH,
//! MKPPRC, PAUSEPPRC, RESUMEPPRC, FAILOVERPPRC, FAILBACKPPRC, FREEZEPPRC,
//! UNFREEZEPPRC, RMPPRC, LSPPRC and their events (spec: protocol-specs/ds8k.md
//! §4.8–§4.9, semantics §3.5).

use bytes::{BufMut, BytesMut};

use crate::codec::fields::{DecodeError, FieldReader, put_count};
use crate::ds8k::Lss;
use crate::proto::{FrameKind, ReplyStatus};

use super::fields::*;
use super::messages::{
    Ds8kBody, Ds8kMessageType, MAX_LSS_PAIRS, MAX_LSSS, MAX_PATH_ENTRIES, PATH_CONSISTENCY_GROUP,
    PPRC_NO_COPY, PathEntry, PprcEntry,
};

fn read_lss_pairs(r: &mut FieldReader<'_>) -> Result<Vec<(Lss, Lss)>, DecodeError> {
    let n = r.nonempty_count("lss_pair_count", MAX_LSS_PAIRS)?;
    (0..n)
        .map(|_| Ok((Lss(r.u8("lss")?), Lss(r.u8("remote_lss")?))))
        .collect()
}

fn put_lss_pairs(pairs: &[(Lss, Lss)], dst: &mut BytesMut) {
    put_count(dst, pairs.len());
    for (a, b) in pairs {
        dst.put_u8(a.0);
        dst.put_u8(b.0);
    }
}

impl PathEntry {
    fn read(r: &mut FieldReader<'_>) -> Result<PathEntry, DecodeError> {
        let lss = Lss(r.u8("lss")?);
        let remote_lss = Lss(r.u8("remote_lss")?);
        let remote = r.ebcdic("remote")?;
        let options = r.flags_u16("options", PATH_CONSISTENCY_GROUP)?;
        let up = r.boolean("up", false)?;
        r.reserved_u8("reserved")?;
        Ok(PathEntry {
            lss,
            remote,
            remote_lss,
            options,
            up,
        })
    }

    fn put(&self, dst: &mut BytesMut) {
        dst.put_u8(self.lss.0);
        dst.put_u8(self.remote_lss.0);
        self.remote.put(dst);
        dst.put_u16(self.options);
        dst.put_u8(u8::from(self.up));
        dst.put_u8(0);
    }
}

impl PprcEntry {
    fn read(r: &mut FieldReader<'_>) -> Result<PprcEntry, DecodeError> {
        let primary_serial = r.ebcdic("primary_serial")?;
        let primary = read_volume(r, "primary")?;
        let secondary_serial = r.ebcdic("secondary_serial")?;
        let secondary = read_volume(r, "secondary")?;
        let at = r.offset();
        let state = r.u8("state")?;
        if !(1..=3).contains(&state) {
            // spec: ds8k.md §4.8: 1 copy pending, 2 full duplex, 3 suspended.
            return Err(r.bad_value_at(at, "state", "1, 2 or 3"));
        }
        let at = r.offset();
        let reason = r.u8("reason")?;
        if reason > 4 {
            // spec: ds8k.md §4.8: suspend reasons 0 to 4.
            return Err(r.bad_value_at(at, "reason", "0 to 4"));
        }
        let failed_over = r.boolean("failed_over", false)?;
        r.reserved_u8("reserved")?;
        Ok(PprcEntry {
            primary_serial,
            primary,
            secondary_serial,
            secondary,
            state,
            reason,
            failed_over,
            out_of_sync_tracks: r.u64("out_of_sync_tracks")?,
        })
    }

    fn put(&self, dst: &mut BytesMut) {
        self.primary_serial.put(dst);
        dst.put_u16(self.primary.0);
        self.secondary_serial.put(dst);
        dst.put_u16(self.secondary.0);
        dst.put_u8(self.state);
        dst.put_u8(self.reason);
        dst.put_u8(u8::from(self.failed_over));
        dst.put_u8(0);
        dst.put_u64(self.out_of_sync_tracks);
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
    use FrameKind::{Event, Reply, Request};
    Some(match (t, kind) {
        (T::MKPPRCPATH | T::RMPPRCPATH, Request) => (|| {
            let fence = read_fence(r)?;
            let remote = r.ebcdic("remote")?;
            // spec: ds8k.md §4.8: RMPPRCPATH takes no option.
            let known = if t == T::MKPPRCPATH {
                PATH_CONSISTENCY_GROUP
            } else {
                0
            };
            let options = r.flags_u16("options", known)?;
            Ok(B::PathRequest {
                fence,
                remove: t == T::RMPPRCPATH,
                remote,
                options,
                lss_pairs: read_lss_pairs(r)?,
            })
        })(),
        (T::LSPPRCPATH, Request) => Ok(B::ListPathsRequest),
        (T::LSPPRCPATH, Reply) => (|| {
            let status = ReplyStatus::read(r)?;
            let n = r.count("entry_count", MAX_PATH_ENTRIES)?;
            let entries = (0..n)
                .map(|_| PathEntry::read(r))
                .collect::<Result<_, _>>()?;
            Ok(B::ListPathsReply { status, entries })
        })(),
        (T::MKPPRC | T::FAILBACKPPRC, Request) => (|| {
            let fence = read_fence(r)?;
            let known = if t == T::MKPPRC { PPRC_NO_COPY } else { 0 };
            let options = r.flags_u16("options", known)?;
            Ok(B::PprcPairsRequest {
                fence,
                failback: t == T::FAILBACKPPRC,
                options,
                remote: r.ebcdic("remote")?,
                pairs: read_pairs(r)?,
            })
        })(),
        (T::PAUSEPPRC | T::RESUMEPPRC | T::FAILOVERPPRC | T::RMPPRC, Request) => (|| {
            Ok(B::PprcVolumesRequest {
                fence: read_fence(r)?,
                message_type: t,
                volumes: read_volumes(r)?,
            })
        })(),
        (T::FREEZEPPRC, Request) => (|| {
            Ok(B::FreezePprcRequest {
                fence: read_fence(r)?,
                remote: r.ebcdic("remote")?,
                lss_pairs: read_lss_pairs(r)?,
            })
        })(),
        (T::UNFREEZEPPRC, Request) => (|| {
            let fence = read_fence(r)?;
            let n = r.nonempty_count("lss_count", MAX_LSSS)?;
            let lsss = (0..n)
                .map(|_| r.u8("lss").map(Lss))
                .collect::<Result<_, _>>()?;
            Ok(B::UnfreezePprcRequest { fence, lsss })
        })(),
        (T::LSPPRC, Request) => {
            read_volume(r, "volume").map(|volume| B::ListPprcRequest { volume })
        }
        (T::LSPPRC, Reply) => (|| {
            let status = ReplyStatus::read(r)?;
            let n = r.count("entry_count", 1)?;
            let entries = (0..n)
                .map(|_| PprcEntry::read(r))
                .collect::<Result<_, _>>()?;
            Ok(B::ListPprcReply { status, entries })
        })(),
        (T::EVT_PPRC_SUSPENDED, Event) => (|| {
            let primary = read_volume(r, "primary")?;
            let remote = r.ebcdic("remote")?;
            let secondary = read_volume(r, "secondary")?;
            let at = r.offset();
            let reason = r.u8("reason")?;
            if !(1..=4).contains(&reason) {
                // spec: ds8k.md §4.9: suspend reasons 1 to 4.
                return Err(r.bad_value_at(at, "reason", "1 to 4"));
            }
            r.reserved_u8("reserved")?;
            Ok(B::PprcSuspendedEvent {
                primary,
                remote,
                secondary,
                reason,
                time_ms: r.u64("time_ms")?,
            })
        })(),
        (T::EVT_PPRC_DUPLEX, Event) => (|| {
            Ok(B::PprcDuplexEvent {
                primary: read_volume(r, "primary")?,
                remote: r.ebcdic("remote")?,
                secondary: read_volume(r, "secondary")?,
                time_ms: r.u64("time_ms")?,
            })
        })(),
        (T::EVT_PPRC_LONG_BUSY_ENDED, Event) => (|| {
            let lss = Lss(r.u8("lss")?);
            r.reserved_u8("reserved")?;
            Ok(B::PprcLongBusyEndedEvent {
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
        PathRequest {
            fence,
            remote,
            options,
            lss_pairs,
            ..
        } => {
            put_fence(*fence, dst);
            remote.put(dst);
            dst.put_u16(*options);
            put_lss_pairs(lss_pairs, dst);
        }
        ListPathsRequest => {}
        ListPathsReply { status, entries } => {
            status.put(dst);
            put_count(dst, entries.len());
            for e in entries {
                e.put(dst);
            }
        }
        PprcPairsRequest {
            fence,
            options,
            remote,
            pairs,
            ..
        } => {
            put_fence(*fence, dst);
            dst.put_u16(*options);
            remote.put(dst);
            put_pairs(pairs, dst);
        }
        PprcVolumesRequest { fence, volumes, .. } => {
            put_fence(*fence, dst);
            put_volumes(volumes, dst);
        }
        FreezePprcRequest {
            fence,
            remote,
            lss_pairs,
        } => {
            put_fence(*fence, dst);
            remote.put(dst);
            put_lss_pairs(lss_pairs, dst);
        }
        UnfreezePprcRequest { fence, lsss } => {
            put_fence(*fence, dst);
            put_count(dst, lsss.len());
            for l in lsss {
                dst.put_u8(l.0);
            }
        }
        ListPprcRequest { volume } => dst.put_u16(volume.0),
        ListPprcReply { status, entries } => {
            status.put(dst);
            put_count(dst, entries.len());
            for e in entries {
                e.put(dst);
            }
        }
        PprcSuspendedEvent {
            primary,
            remote,
            secondary,
            reason,
            time_ms,
        } => {
            dst.put_u16(primary.0);
            remote.put(dst);
            dst.put_u16(secondary.0);
            dst.put_u8(*reason);
            dst.put_u8(0);
            dst.put_u64(*time_ms);
        }
        PprcDuplexEvent {
            primary,
            remote,
            secondary,
            time_ms,
        } => {
            dst.put_u16(primary.0);
            remote.put(dst);
            dst.put_u16(secondary.0);
            dst.put_u64(*time_ms);
        }
        PprcLongBusyEndedEvent { lss, time_ms } => {
            dst.put_u8(lss.0);
            dst.put_u8(0);
            dst.put_u64(*time_ms);
        }
        _ => return false,
    }
    true
}
