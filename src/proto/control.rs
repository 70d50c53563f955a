//! The control messages every protocol shares: logon, heartbeat, logoff and
//! PROTOCOL_ERROR (spec: protocol-specs/framing.md §8). One encoding for all; each
//! protocol gives them its own message numbers ([`ControlTypes`]) and adds only its
//! own messages. The shared session state machines (`crate::proto::session`)
//! make and read these; a protocol never builds them itself.

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::fields::{DecodeError, FieldReader};
use crate::proto::logon::{LogonReply, LogonRequest};
use crate::proto::{FrameKind, ReplyStatus};

/// PROTOCOL_ERROR's message type, the same in every protocol (framing.md §4).
pub const PROTOCOL_ERROR_TYPE: u16 = 0x7FFF;

/// The message numbers one protocol gives the control messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlTypes {
    /// LOGON (z/TPF: SIGNON).
    pub logon: u16,
    /// HEARTBEAT (z/TPF: KEEPALIVE).
    pub heartbeat: u16,
    /// LOGOFF (z/TPF: SIGNOFF).
    pub logoff: u16,
}

impl ControlTypes {
    /// True if `message_type` is a control message of this protocol.
    pub fn contains(&self, message_type: u16) -> bool {
        [self.logon, self.heartbeat, self.logoff, PROTOCOL_ERROR_TYPE].contains(&message_type)
    }
}

/// A control message (framing.md §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Logon request (zos-hyperswap.md §3.1 layout).
    LogonRequest(LogonRequest),
    /// Logon reply.
    LogonReply(LogonReply),
    /// Heartbeat request, either direction.
    HeartbeatRequest {
        /// The sender's own counter.
        seq: u32,
    },
    /// Heartbeat reply.
    HeartbeatReply {
        /// Outcome.
        status: ReplyStatus,
        /// The request's `seq`.
        seq: u32,
    },
    /// Logoff request.
    LogoffRequest,
    /// Logoff reply.
    LogoffReply {
        /// Outcome.
        status: ReplyStatus,
    },
    /// The peer broke the protocol (framing.md §4, §6).
    ProtocolError {
        /// Return code 16 and a common reason code.
        status: ReplyStatus,
        /// Message type of the offending frame (0 if its header could not be read).
        offending_type: u16,
    },
}

impl Control {
    /// Message type (under `types`) and direction.
    pub fn wire_type(&self, types: &ControlTypes) -> (u16, FrameKind) {
        match self {
            Control::LogonRequest(_) => (types.logon, FrameKind::Request),
            Control::LogonReply(_) => (types.logon, FrameKind::Reply),
            Control::HeartbeatRequest { .. } => (types.heartbeat, FrameKind::Request),
            Control::HeartbeatReply { .. } => (types.heartbeat, FrameKind::Reply),
            Control::LogoffRequest => (types.logoff, FrameKind::Request),
            Control::LogoffReply { .. } => (types.logoff, FrameKind::Reply),
            Control::ProtocolError { .. } => (PROTOCOL_ERROR_TYPE, FrameKind::Reply),
        }
    }

    /// Parses a control body; `None` when `(message_type, kind)` is not a control
    /// message of `types`. `name` is the protocol's name for the type (for errors).
    pub(crate) fn read(
        types: &ControlTypes,
        message_type: u16,
        kind: FrameKind,
        name: &'static str,
        body: &Bytes,
    ) -> Option<Result<Control, DecodeError>> {
        let mut r = FieldReader::new(name, body);
        let t = message_type;
        let parsed = match kind {
            FrameKind::Request if t == types.logon => {
                LogonRequest::read(&mut r).map(Control::LogonRequest)
            }
            FrameKind::Reply if t == types.logon => {
                LogonReply::read(&mut r).map(Control::LogonReply)
            }
            FrameKind::Request if t == types.heartbeat => {
                r.u32("seq").map(|seq| Control::HeartbeatRequest { seq })
            }
            FrameKind::Reply if t == types.heartbeat => {
                ReplyStatus::read(&mut r).and_then(|status| {
                    Ok(Control::HeartbeatReply {
                        status,
                        seq: r.u32("seq")?,
                    })
                })
            }
            FrameKind::Request if t == types.logoff => Ok(Control::LogoffRequest),
            FrameKind::Reply if t == types.logoff => {
                ReplyStatus::read(&mut r).map(|status| Control::LogoffReply { status })
            }
            FrameKind::Reply if t == PROTOCOL_ERROR_TYPE => {
                ReplyStatus::read(&mut r).and_then(|status| {
                    Ok(Control::ProtocolError {
                        status,
                        offending_type: r.u16("offending_type")?,
                    })
                })
            }
            _ => return None,
        };
        Some(parsed.and_then(|c| r.finish().map(|()| c)))
    }

    /// Appends the body (infallible).
    pub(crate) fn put(&self, dst: &mut BytesMut) {
        match self {
            Control::LogonRequest(l) => l.put(dst),
            Control::LogonReply(l) => l.put(dst),
            Control::HeartbeatRequest { seq } => dst.put_u32(*seq),
            Control::HeartbeatReply { status, seq } => {
                status.put(dst);
                dst.put_u32(*seq);
            }
            Control::LogoffRequest => {}
            Control::LogoffReply { status } => status.put(dst),
            Control::ProtocolError {
                status,
                offending_type,
            } => {
                status.put(dst);
                dst.put_u16(*offending_type);
            }
        }
    }
}

/// What a frame of a protocol carries: a shared control message, or one of the
/// protocol's own messages `B`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload<B> {
    /// Logon, heartbeat, logoff, PROTOCOL_ERROR.
    Control(Control),
    /// The protocol's own message.
    Own(B),
}

impl<B> Payload<B> {
    /// The protocol's own message, if it is one.
    pub fn own(&self) -> Option<&B> {
        match self {
            Payload::Own(b) => Some(b),
            Payload::Control(_) => None,
        }
    }

    /// The protocol's own message, if it is one.
    pub fn into_own(self) -> Option<B> {
        match self {
            Payload::Own(b) => Some(b),
            Payload::Control(_) => None,
        }
    }

    /// The control message, if it is one.
    pub fn control(&self) -> Option<&Control> {
        match self {
            Payload::Control(c) => Some(c),
            Payload::Own(_) => None,
        }
    }
}
