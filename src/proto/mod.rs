//! Protocol messages, pure: bodies ↔ typed messages (and, per protocol, sans-IO
//! session state machines).
//!
//! Every protocol rides the frame layer of [`crate::codec::frame`]. What they share is
//! here: the reply prefix (return code + reason code, protocol-specs/framing.md §4),
//! the common reason codes, volume references, and the decode error type.

pub mod control;
pub mod csm;
pub mod ds8k;
pub mod ha;
pub mod host_flash;
pub mod logon;
pub mod session;
pub mod zos;
pub mod ztpf;

use bytes::{BufMut, Bytes, BytesMut};

pub use control::{Control, ControlTypes, Payload};
pub use host_flash::HostFlashOptions;

use crate::codec::fields::{DecodeError, Ebcdic, FieldReader};
use crate::codec::frame::{Flags, Frame, FrameHeader, ProtocolId, VERSION, encode_frame};
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

/// A `COUNT` of 1 to `max` volume pairs, then the pairs (framing.md §3.3–3.4; z/OS
/// and z/TPF FLASH and HS_LOAD_CONFIG).
pub(crate) fn read_pairs(
    r: &mut FieldReader<'_>,
    max: usize,
) -> Result<Vec<VolumePair>, DecodeError> {
    let n = r.nonempty_count("pair_count", max)?;
    (0..n).map(|_| VolumePair::read(r)).collect()
}

/// Appends a `COUNT` and the pairs.
pub(crate) fn put_pairs(dst: &mut BytesMut, pairs: &[VolumePair]) {
    crate::codec::fields::put_count(dst, pairs.len());
    for p in pairs {
        p.put(dst);
    }
}

/// A `COUNT` of 1 to `max` VOLREFs, then the VOLREFs (z/OS and z/TPF SGC_BACKUP).
pub(crate) fn read_volume_refs(
    r: &mut FieldReader<'_>,
    max: usize,
) -> Result<Vec<VolumeRef>, DecodeError> {
    let n = r.nonempty_count("volume_count", max)?;
    (0..n).map(|_| VolumeRef::read(r, "volume")).collect()
}

/// Appends a `COUNT` and the VOLREFs.
pub(crate) fn put_volume_refs(dst: &mut BytesMut, volumes: &[VolumeRef]) {
    crate::codec::fields::put_count(dst, volumes.len());
    for v in volumes {
        v.put(dst);
    }
}

/// Which way a frame travels, from its flags (protocol-specs/framing.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Flags `0000`.
    Request,
    /// Flags `8000`.
    Reply,
    /// Flags `4000`.
    Event,
}

/// Why an inbound frame is not a message of the connection's protocol.
/// [`MessageError::reason`] is the one mapping to what the peer is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// Not version 1.
    #[error("unsupported frame version {0}")]
    UnsupportedVersion(u8),
    /// Another protocol's frame.
    #[error("frame for protocol {got:?}, expected {expected:?}")]
    WrongProtocol {
        /// Protocol byte received.
        got: ProtocolId,
        /// The connection's protocol.
        expected: ProtocolId,
    },
    /// Reserved flag bits set.
    #[error("reserved flag bits {0:#06x} set")]
    ReservedFlags(u16),
    /// Unknown message type, or a known type with flags it cannot have.
    #[error("unknown message type {} with flags {flags:?}", name.map_or_else(|| format!("{message_type:#06x}"), str::to_string))]
    UnknownMessage {
        /// The type.
        message_type: u16,
        /// Its name, if the type is known (with the wrong flags).
        name: Option<&'static str>,
        /// The flags.
        flags: Flags,
    },
    /// The body does not parse.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

impl MessageError {
    /// The reason code for the `PROTOCOL_ERROR` reply.
    pub fn reason(&self) -> CommonReason {
        match self {
            MessageError::UnsupportedVersion(_) => CommonReason::UNSUPPORTED_VERSION,
            MessageError::WrongProtocol { .. } => CommonReason::WRONG_PROTOCOL,
            MessageError::ReservedFlags(_) => CommonReason::RESERVED_FLAGS,
            MessageError::UnknownMessage { .. } => CommonReason::UNKNOWN_MESSAGE,
            MessageError::Decode(_) => CommonReason::MALFORMED_BODY,
        }
    }

    /// Whether the connection must close after the PROTOCOL_ERROR reply
    /// (protocol-specs/framing.md §6): a peer that gets the frame layer wrong cannot
    /// be trusted with the next frame either.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            MessageError::UnsupportedVersion(_)
                | MessageError::WrongProtocol { .. }
                | MessageError::ReservedFlags(_)
        )
    }
}

/// Header checks every protocol makes before its body (framing.md §6): version,
/// protocol, reserved flags, direction. `name_of` names a message type if known.
pub fn check_header(
    header: &FrameHeader,
    expected: ProtocolId,
    name_of: fn(u16) -> Option<&'static str>,
) -> Result<FrameKind, MessageError> {
    // spec: framing.md §1: version 01, else UNSUPPORTED_VERSION (fatal, §6).
    if header.version != VERSION {
        return Err(MessageError::UnsupportedVersion(header.version));
    }
    // spec: framing.md §6: another protocol's frame is WRONG_PROTOCOL (fatal).
    if header.protocol != expected {
        return Err(MessageError::WrongProtocol {
            got: header.protocol,
            expected,
        });
    }
    // spec: framing.md §1: flag bits other than REPLY and UNSOLICITED are reserved.
    if header.flags.reserved_bits() != 0 {
        return Err(MessageError::ReservedFlags(header.flags.reserved_bits()));
    }
    match (
        header.flags.contains(Flags::REPLY),
        header.flags.contains(Flags::UNSOLICITED),
    ) {
        (false, false) => Ok(FrameKind::Request),
        (true, false) => Ok(FrameKind::Reply),
        (false, true) => Ok(FrameKind::Event),
        // spec: framing.md §1: both flags is neither request, reply nor event.
        (true, true) => Err(MessageError::UnknownMessage {
            message_type: header.message_type,
            name: name_of(header.message_type),
            flags: header.flags,
        }),
    }
}

/// The frame header a message of `kind` travels under.
pub fn header_for(
    protocol: ProtocolId,
    message_type: u16,
    kind: FrameKind,
    correlation: u32,
) -> FrameHeader {
    let flags = match kind {
        FrameKind::Request => Flags::request(),
        FrameKind::Reply => Flags::REPLY,
        FrameKind::Event => Flags::UNSOLICITED,
    };
    FrameHeader {
        version: VERSION,
        protocol,
        message_type,
        flags,
        correlation,
    }
}

/// How one protocol's message bodies travel in frames. Every protocol implements it
/// once; `Message<B>` then has the same `header`, `encode`, `to_frame` and
/// `decode` for all (framing.md §6 gives the order of the checks).
pub trait WireBody: Sized {
    /// The protocol byte (framing.md §1).
    const PROTOCOL: ProtocolId;
    /// The protocol's numbers for the shared control messages (framing.md §8).
    const CONTROL: ControlTypes;
    /// The name of a message type, if the protocol knows it.
    fn type_name(message_type: u16) -> Option<&'static str>;
    /// This body's message type and direction.
    fn wire_type(&self) -> (u16, FrameKind);
    /// Appends the body's bytes (infallible).
    fn put_body(&self, dst: &mut BytesMut);
    /// Parses a body of one of the protocol's own messages; `None` when the protocol
    /// has no own message of this type and kind.
    fn read_body(
        message_type: u16,
        kind: FrameKind,
        body: &Bytes,
    ) -> Option<Result<Self, DecodeError>>;
}

/// Implements [`WireBody`] for a protocol's body type from the inherent
/// `type_and_kind`, `put` and `read` every protocol's body has, its message-type
/// newtype and the numbers of its control messages:
/// `wire_body!(ZosBody, ZosMessageType, ZOS, LOGON, HEARTBEAT, LOGOFF)`.
macro_rules! wire_body {
    ($body:ty, $types:ident, $protocol:ident, $logon:ident, $heartbeat:ident, $logoff:ident) => {
        impl $crate::proto::WireBody for $body {
            const PROTOCOL: $crate::codec::frame::ProtocolId =
                $crate::codec::frame::ProtocolId::$protocol;
            const CONTROL: $crate::proto::ControlTypes = $crate::proto::ControlTypes {
                logon: $types::$logon.0,
                heartbeat: $types::$heartbeat.0,
                logoff: $types::$logoff.0,
            };

            fn type_name(message_type: u16) -> Option<&'static str> {
                $types(message_type).name()
            }

            fn wire_type(&self) -> (u16, $crate::proto::FrameKind) {
                let (t, kind) = self.type_and_kind();
                (t.0, kind)
            }

            fn put_body(&self, dst: &mut ::bytes::BytesMut) {
                self.put(dst);
            }

            fn read_body(
                message_type: u16,
                kind: $crate::proto::FrameKind,
                body: &::bytes::Bytes,
            ) -> Option<Result<Self, $crate::codec::fields::DecodeError>> {
                Self::read($types(message_type), kind, body)
            }
        }
    };
}
pub(crate) use wire_body;

impl<B: WireBody> Payload<B> {
    /// Message type and direction.
    pub fn wire_type(&self) -> (u16, FrameKind) {
        match self {
            Payload::Control(c) => c.wire_type(&B::CONTROL),
            Payload::Own(b) => b.wire_type(),
        }
    }

    /// The message's name in its protocol, for logs and errors.
    pub fn name(&self) -> &'static str {
        B::type_name(self.wire_type().0).unwrap_or("UNKNOWN")
    }

    fn put(&self, dst: &mut BytesMut) {
        match self {
            Payload::Control(c) => c.put(dst),
            Payload::Own(b) => b.put_body(dst),
        }
    }

    /// How the shared session state machines see the message.
    pub fn view(&self) -> View<'_> {
        match self {
            Payload::Control(Control::LogonRequest(r)) => View::LogonRequest(r),
            Payload::Control(Control::LogonReply(r)) => View::LogonReply(r),
            Payload::Control(Control::HeartbeatRequest { seq }) => View::HeartbeatRequest(*seq),
            Payload::Control(Control::HeartbeatReply { .. }) => View::HeartbeatReply,
            Payload::Control(Control::LogoffRequest) => View::LogoffRequest,
            Payload::Control(Control::LogoffReply { .. }) => View::LogoffReply,
            Payload::Control(Control::ProtocolError { status, .. }) => View::ProtocolError(*status),
            Payload::Own(b) => match b.wire_type().1 {
                FrameKind::Request => View::Request,
                FrameKind::Reply => View::Reply,
                FrameKind::Event => View::Event,
            },
        }
    }
}

impl<B: WireBody> Message<B> {
    /// One of the protocol's own messages.
    pub fn own(correlation: u32, body: B) -> Self {
        Message {
            correlation,
            body: Payload::Own(body),
        }
    }

    /// A control message.
    pub fn control(correlation: u32, control: Control) -> Self {
        Message {
            correlation,
            body: Payload::Control(control),
        }
    }

    /// The frame header this message travels under.
    pub fn header(&self) -> FrameHeader {
        let (message_type, kind) = self.body.wire_type();
        header_for(B::PROTOCOL, message_type, kind, self.correlation)
    }

    /// Appends the whole frame to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        encode_frame(&self.header(), |b| self.body.put(b), dst);
    }

    /// The message as a frame (for a `Framed` sink).
    pub fn to_frame(&self) -> Frame {
        let mut body = BytesMut::new();
        self.body.put(&mut body);
        Frame {
            header: self.header(),
            body: body.freeze(),
        }
    }

    /// Parses a frame: header checks, then the body (a control message under the
    /// protocol's control numbers, else one of its own), every byte of which must be
    /// used (framing.md §6 gives the order of the checks).
    pub fn decode(frame: &Frame) -> Result<Message<B>, MessageError> {
        let h = &frame.header;
        let kind = check_header(h, B::PROTOCOL, B::type_name)?;
        let unknown = || MessageError::UnknownMessage {
            message_type: h.message_type,
            name: B::type_name(h.message_type),
            flags: h.flags,
        };
        let body = if B::CONTROL.contains(h.message_type) {
            let name = B::type_name(h.message_type).unwrap_or("UNKNOWN");
            Payload::Control(
                Control::read(&B::CONTROL, h.message_type, kind, name, &frame.body)
                    .ok_or_else(unknown)??,
            )
        } else {
            Payload::Own(B::read_body(h.message_type, kind, &frame.body).ok_or_else(unknown)??)
        };
        Ok(Message {
            correlation: h.correlation,
            body,
        })
    }
}

/// One message of a protocol: correlation id and what the frame carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<B> {
    /// Correlation id (protocol-specs/framing.md §1).
    pub correlation: u32,
    /// A control message or one of the protocol's own.
    pub body: Payload<B>,
}

/// What the shared host-session state machines need to know about a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View<'a> {
    /// The logon request.
    LogonRequest(&'a logon::LogonRequest),
    /// The logon reply.
    LogonReply(&'a logon::LogonReply),
    /// A heartbeat request with its sequence number.
    HeartbeatRequest(u32),
    /// A heartbeat reply.
    HeartbeatReply,
    /// The logoff request.
    LogoffRequest,
    /// The logoff reply.
    LogoffReply,
    /// A PROTOCOL_ERROR.
    ProtocolError(ReplyStatus),
    /// Any other request.
    Request,
    /// Any other reply.
    Reply,
    /// An unsolicited event.
    Event,
}

/// A protocol as the shared session state machines see it
/// (`crate::proto::session`): its own messages, two reason codes of its own, and
/// how it refuses one of its requests. Logon, heartbeat, logoff and PROTOCOL_ERROR
/// are shared ([`Control`]).
pub trait Protocol: 'static {
    /// The protocol's own message bodies.
    type Body: WireBody + Clone + std::fmt::Debug + PartialEq + Send + 'static;
    /// Reason code for a logon on a logged-on connection.
    const ALREADY_LOGGED_ON: u16;
    /// Reason code for a credential kind (or length) the server does not take.
    const CREDENTIAL_KIND_UNSUPPORTED: u16;

    /// The reply of `request`'s type with `status` and every other field zero/blank
    /// (framing.md §4); `None` when `request` is not a request.
    fn refusal_reply(request: &Self::Body, status: ReplyStatus) -> Option<Self::Body>;
}

/// The answer to `request`: the reply, or for `Err(status)` the request's own reply
/// type carrying `status` with every other field zero (framing.md §4).
pub fn answer<P: Protocol>(
    request: &P::Body,
    result: Result<P::Body, ReplyStatus>,
) -> Payload<P::Body> {
    match result {
        Ok(reply) => Payload::Own(reply),
        Err(status) => refusal::<P>(request, status),
    }
}

/// The answer refusing `request` with `status`: its own reply type, or a
/// PROTOCOL_ERROR if it is not a request of the protocol.
pub fn refusal<P: Protocol>(request: &P::Body, status: ReplyStatus) -> Payload<P::Body> {
    match P::refusal_reply(request, status) {
        Some(reply) => Payload::Own(reply),
        None => Payload::Control(Control::ProtocolError {
            status,
            offending_type: request.wire_type().0,
        }),
    }
}
