//! Protocol messages, pure: bodies ↔ typed messages (and, per protocol, sans-IO
//! session state machines).
//!
//! Every protocol rides the frame layer of [`crate::codec::frame`]. What they share is
//! here: the reply prefix (return code + reason code, protocol-specs/framing.md §4),
//! the common reason codes, volume references, and the decode error type.

pub mod logon;
pub mod zos;

use bytes::{BufMut, BytesMut};

use crate::codec::fields::{DecodeError, Ebcdic, FieldReader};
use crate::wire_enum;

pub use crate::codec::fields::DecodeErrorKind;

wire_enum! {
    /// Return code of every reply (protocol-specs/framing.md §4).
    pub struct ReturnCode(u16) {
        /// Done.
        OK = 0,
        /// Done, with something to note (the reason code says what).
        WARNING = 4,
        /// Refused: the request was well-formed but not allowed now (credential, state, policy).
        REFUSED = 8,
        /// Failed: the request was allowed but could not be carried out.
        FAILED = 12,
        /// The frame or body broke the protocol; the connection may be closed.
        PROTOCOL_ERROR = 16,
    }
}

wire_enum! {
    /// Reason codes common to every protocol (protocol-specs/framing.md §5). Each
    /// protocol adds its own in its range.
    pub struct CommonReason(u16) {
        /// No reason: the request succeeded.
        NONE = 0x0000,
        /// Frame version not supported.
        UNSUPPORTED_VERSION = 0x0001,
        /// Message type unknown to the receiver.
        UNKNOWN_MESSAGE = 0x0002,
        /// Body does not parse (short, trailing bytes, bad value, count over the bound).
        MALFORMED_BODY = 0x0003,
        /// Message not allowed in the connection's state.
        WRONG_STATE = 0x0004,
        /// Reserved flag bits set.
        RESERVED_FLAGS = 0x0005,
        /// Frame for another protocol.
        WRONG_PROTOCOL = 0x0006,
        /// Frame body over the receiver's limit.
        FRAME_TOO_LARGE = 0x0007,
        /// Bytes that are not a frame (bad magic).
        BAD_MAGIC = 0x0008,
        /// Request needs a logged-on connection.
        NOT_LOGGED_ON = 0x0009,
        /// A request with the same correlation id is still outstanding.
        DUPLICATE_CORRELATION = 0x000A,
        /// Too many requests outstanding on the connection.
        TOO_MANY_OUTSTANDING = 0x000B,
        /// The receiver is shutting down.
        SHUTTING_DOWN = 0x000C,
    }
}

/// The first four bytes of every reply body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyStatus {
    /// Return code.
    pub rc: ReturnCode,
    /// Reason code: [`CommonReason`] or the protocol's own.
    pub reason: u16,
}

impl ReplyStatus {
    /// Success.
    pub const OK: ReplyStatus = ReplyStatus {
        rc: ReturnCode::OK,
        reason: 0,
    };

    /// A status with the given return and reason code.
    pub fn new(rc: ReturnCode, reason: u16) -> Self {
        ReplyStatus { rc, reason }
    }

    /// True for `OK` and `WARNING`.
    pub fn is_success(&self) -> bool {
        matches!(self.rc, ReturnCode::OK | ReturnCode::WARNING)
    }

    pub(crate) fn read(r: &mut FieldReader<'_>) -> Result<Self, DecodeError> {
        Ok(ReplyStatus {
            rc: ReturnCode(r.u16("return_code")?),
            reason: r.u16("reason_code")?,
        })
    }

    pub(crate) fn put(&self, dst: &mut BytesMut) {
        dst.put_u16(self.rc.0);
        dst.put_u16(self.reason);
    }
}

/// A DS8000 volume as the host protocols name it (protocol-specs/framing.md §3.4):
/// storage image serial, volume id `XYZZ`, and the host's device number.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct VolumeRef {
    /// Storage image serial, e.g. `75FA120` (of `IBM.2107-75FA120`).
    pub storage: Ebcdic<8>,
    /// Volume id: LSS in the high byte, volume number in the low byte.
    pub volume: u16,
    /// z/OS or z/TPF device number (0 when the host has no device for it).
    pub device: u16,
}

impl VolumeRef {
    /// Encoded length.
    pub const LEN: usize = 12;

    pub(crate) fn read(r: &mut FieldReader<'_>, field: &'static str) -> Result<Self, DecodeError> {
        Ok(VolumeRef {
            storage: r.ebcdic::<8>(field)?,
            volume: r.u16(field)?,
            device: r.u16(field)?,
        })
    }

    pub(crate) fn put(&self, dst: &mut BytesMut) {
        self.storage.put(dst);
        dst.put_u16(self.volume);
        dst.put_u16(self.device);
    }
}

/// A pair of volumes: (primary, secondary) for HyperSwap, (source, target) for FlashCopy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct VolumePair {
    /// Primary / source.
    pub first: VolumeRef,
    /// Secondary / target.
    pub second: VolumeRef,
}

impl VolumePair {
    pub(crate) fn read(r: &mut FieldReader<'_>) -> Result<Self, DecodeError> {
        Ok(VolumePair {
            first: VolumeRef::read(r, "pair.first")?,
            second: VolumeRef::read(r, "pair.second")?,
        })
    }

    pub(crate) fn put(&self, dst: &mut BytesMut) {
        self.first.put(dst);
        self.second.put(dst);
    }
}
