//! Sans-IO connection state machines shared by the host protocols (spec:
//! protocol-specs/zos-hyperswap.md §4, protocol-specs/ztpf.md §4). Each protocol
//! plugs in through [`Protocol`]; `crate::proto::zos::session` and
//! `crate::proto::ztpf::session` name the concrete types.
//!
//! Neither machine touches a socket or a clock. The driver (`crate::client`,
//! `crate::peer`) calls, in a loop:
//!
//! 1. `handle_frame(now, frame)` for every frame read, `handle_stream_error` when the
//!    codec fails, `handle_closed` at EOF, `handle_timeout(now)` when the deadline
//!    from `poll_timeout` passes;
//! 2. `poll_transmit()` until `None`, writing each message;
//! 3. `poll_event()` until `None` (client only);
//! 4. stops when `is_closed()` and the transmit queue is empty.
//!
//! ```text
//! client:  SendLogon ─► ExpectLogonReply ─RC 0─► Ready ─logoff─► ExpectLogoffReply ─► Closed
//!                              └─ RC≠0 / timeout ─────────────────────────────────────► Closed
//! host:    ExpectLogon ─valid logon─► Ready ─logoff─► Closed
//!              └─ refused (at most 3) ─► ExpectLogon
//! ```
//!
//! `client.rs` holds the client's machine, `server.rs` the host's; what both use
//! (close reasons, correlation ids, the answer to a frame that does not decode) is
//! here.

mod client;
mod server;

pub use client::*;
pub use server::*;

use crate::codec::frame::{Flags, Frame, FrameError};
use crate::proto::{
    CommonReason, Control, Message, MessageError, Payload, Protocol, ReplyStatus, ReturnCode,
};

/// First correlation id of unsolicited events (protocol-specs/framing.md §1).
pub(crate) const FIRST_EVENT_ID: u32 = 0x8000_0001;

/// Next request correlation id: 1, 2, … skipping 0 and the event range.
pub(crate) fn next_id(id: u32) -> u32 {
    if id >= FIRST_EVENT_ID - 1 { 1 } else { id + 1 }
}

/// A request the client sent, as the caller knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(pub u32);

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The host refused the logon.
    LogonRefused {
        /// Return and reason code.
        status: ReplyStatus,
        /// RACF-style return code.
        racf_rc: u16,
    },
    /// Logoff completed.
    LoggedOff,
    /// The peer answered PROTOCOL_ERROR to something that cannot go on.
    PeerProtocolError {
        /// The peer's reason.
        reason: CommonReason,
    },
    /// The peer sent a well-formed message that the connection's state does not allow
    /// (zos-hyperswap.md §4); the connection closes.
    UnexpectedMessage {
        /// The message's name.
        message: &'static str,
        /// The state the connection was in.
        state: &'static str,
    },
    /// The peer broke the protocol; we told it so.
    ProtocolViolation {
        /// What happened.
        detail: String,
    },
    /// Nothing received for three heartbeat intervals.
    PeerDead,
    /// No logon reply before the deadline.
    LogonTimeout,
    /// No logoff reply before the deadline.
    LogoffTimeout,
    /// The peer closed the connection.
    PeerClosed,
    /// Too many refused logons on one connection (host side).
    TooManyLogonAttempts,
}

/// be (framing.md §6) and the error says whether the connection must close.
pub(crate) fn decode_or_refuse<P: Protocol>(
    frame: &Frame,
    send: impl FnMut(u32, Payload<P::Body>),
) -> Result<Message<P::Body>, Option<CloseReason>> {
    Message::<P::Body>::decode(frame).map_err(|e| refuse_frame::<P>(frame, &e, send))
}

/// Answers a frame that does not decode, through `send`, when it may be answered
/// (requests only; replies and events are never answered), and says whether the
/// connection must close (framing.md §6).
pub(crate) fn refuse_frame<P: Protocol>(
    frame: &Frame,
    error: &MessageError,
    mut send: impl FnMut(u32, Payload<P::Body>),
) -> Option<CloseReason> {
    let answerable = !frame.header.flags.contains(Flags::REPLY)
        && !frame.header.flags.contains(Flags::UNSOLICITED);
    if answerable {
        let status = ReplyStatus::new(ReturnCode::PROTOCOL_ERROR, error.reason().0);
        send(
            frame.header.correlation,
            Payload::Control(Control::ProtocolError {
                status,
                offending_type: frame.header.message_type,
            }),
        );
    }
    (!answerable || error.is_fatal()).then(|| CloseReason::ProtocolViolation {
        detail: error.to_string(),
    })
}

/// The PROTOCOL_ERROR a codec failure gets (framing.md §2), if it gets one.
pub fn protocol_error_for_stream<P: Protocol>(error: &FrameError) -> Option<Message<P::Body>> {
    let (correlation, reason, offending) = match error {
        FrameError::BadMagic { .. } => (0, CommonReason::BAD_MAGIC, 0),
        FrameError::TooLarge { header, .. } => (
            header.correlation,
            CommonReason::FRAME_TOO_LARGE,
            header.message_type,
        ),
        FrameError::Truncated { .. } | FrameError::Io(_) => return None,
    };
    Some(Message {
        correlation,
        body: Payload::Control(Control::ProtocolError {
            status: ReplyStatus::new(ReturnCode::PROTOCOL_ERROR, reason.0),
            offending_type: offending,
        }),
    })
}
