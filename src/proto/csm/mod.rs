//! The CSM protocol (spec: protocol-specs/csm.md): how a CSM-side server, or an
//! operator's `zgate csm`, drives the gateway over the shared frame layer. The
//! control messages are the shared ones (framing.md §8) under CSM's numbers; the
//! protocol's own messages carry UTF-8 JSON: one REQUEST type whose reply carries the
//! result, and the CONSOLE event. This layer checks framing and UTF-8 only; the JSON
//! is read by the gateway (`crate::gateway::csm`), which answers a request it cannot
//! read with a refusal, never by closing the connection.

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::fields::{DecodeError, DecodeErrorKind, FieldReader};
use crate::proto::{FrameKind, Message, Protocol, ReplyStatus};
use crate::wire_enum;

wire_enum! {
    /// CSM protocol message types (csm.md §2).
    pub struct CsmMessageType(u16) {
        /// Log on (user and password or passphrase).
        LOGON = 0x0300,
        /// Liveness, either direction.
        HEARTBEAT = 0x0301,
        /// One operation, JSON (csm.md §3).
        REQUEST = 0x0310,
        /// A console message, JSON (csm.md §4).
        EVT_CONSOLE = 0x0381,
        /// Log off.
        LOGOFF = 0x03FF,
        /// The peer broke the protocol.
        PROTOCOL_ERROR = 0x7FFF,
    }
}

wire_enum! {
    /// CSM protocol reason codes of its own (csm.md §5); refusals of the policy
    /// engine carry the engine's codes (policy.md §1.3, §2.3, §3.4, §5.5).
    pub struct CsmReason(u16) {
        /// LOGON on a logged-on connection.
        ALREADY_LOGGED_ON = 0x0B01,
        /// The gateway takes passwords and passphrases only.
        CREDENTIAL_KIND_UNSUPPORTED = 0x0B02,
        /// The request is not JSON, or not an operation the gateway knows.
        BAD_REQUEST = 0x0B03,
        /// The command was held for a second user (dual control); RC 4.
        HELD_FOR_APPROVAL = 0x0B04,
        /// The gateway could not store the change (RC 12); nothing was acknowledged.
        STORE_FAILED = 0x0B05,
        /// The gateway did not answer within its request deadline (RC 12).
        TIMED_OUT = 0x0B06,
        /// This server is the standby: changes go to the active (ha.md §1).
        SERVER_IS_STANDBY = 0x0B07,
        /// An HA operation that cannot be done now (ha.md §8).
        HA_REFUSED = 0x0B08,
    }
}

/// The protocol's own messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsmBody {
    /// REQUEST: one operation as a JSON object (csm.md §3).
    Request {
        /// The JSON text.
        json: String,
    },
    /// REQUEST reply: the status, then the result as a JSON object.
    Reply {
        /// Outcome: RC and reason.
        status: ReplyStatus,
        /// The JSON text (an object; `{}` when there is nothing to say).
        json: String,
    },
    /// EVT_CONSOLE: one console message as a JSON object (csm.md §4).
    Console {
        /// The JSON text.
        json: String,
    },
}

/// One CSM protocol message.
pub type CsmMessage = Message<CsmBody>;

fn utf8(r: &mut FieldReader<'_>, field: &'static str) -> Result<String, DecodeError> {
    let n = r.remaining();
    let bytes = r.bytes(field, n)?;
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| r.error(field, DecodeErrorKind::BadValue { why: "not UTF-8" }))
}

impl CsmBody {
    fn type_and_kind(&self) -> (CsmMessageType, FrameKind) {
        match self {
            CsmBody::Request { .. } => (CsmMessageType::REQUEST, FrameKind::Request),
            CsmBody::Reply { .. } => (CsmMessageType::REQUEST, FrameKind::Reply),
            CsmBody::Console { .. } => (CsmMessageType::EVT_CONSOLE, FrameKind::Event),
        }
    }

    fn put(&self, dst: &mut BytesMut) {
        match self {
            CsmBody::Request { json } | CsmBody::Console { json } => dst.put_slice(json.as_bytes()),
            CsmBody::Reply { status, json } => {
                status.put(dst);
                dst.put_slice(json.as_bytes());
            }
        }
    }

    fn read(
        t: CsmMessageType,
        kind: FrameKind,
        body: &Bytes,
    ) -> Option<Result<CsmBody, DecodeError>> {
        let name = t.name().unwrap_or("UNKNOWN");
        let mut reader = FieldReader::new(name, body);
        let r = &mut reader;
        let parsed = match (t, kind) {
            (CsmMessageType::REQUEST, FrameKind::Request) => {
                utf8(r, "json").map(|json| CsmBody::Request { json })
            }
            (CsmMessageType::REQUEST, FrameKind::Reply) => {
                ReplyStatus::read(r).and_then(|status| {
                    Ok(CsmBody::Reply {
                        status,
                        json: utf8(r, "json")?,
                    })
                })
            }
            (CsmMessageType::EVT_CONSOLE, FrameKind::Event) => {
                utf8(r, "json").map(|json| CsmBody::Console { json })
            }
            _ => return None,
        };
        Some(parsed.and_then(|b| reader.finish().map(|()| b)))
    }
}

crate::proto::wire_body!(CsmBody, CsmMessageType, CSM, LOGON, HEARTBEAT, LOGOFF);

/// The CSM protocol, for the shared session state machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Csm;

impl Protocol for Csm {
    type Body = CsmBody;
    const ALREADY_LOGGED_ON: u16 = CsmReason::ALREADY_LOGGED_ON.0;
    const CREDENTIAL_KIND_UNSUPPORTED: u16 = CsmReason::CREDENTIAL_KIND_UNSUPPORTED.0;

    fn refusal_reply(request: &CsmBody, status: ReplyStatus) -> Option<CsmBody> {
        match request {
            CsmBody::Request { .. } => Some(CsmBody::Reply {
                status,
                json: "{}".into(),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::proto::WireBody;

    #[test]
    fn bodies_round_trip_and_bad_utf8_is_named() {
        for body in [
            CsmBody::Request {
                json: r#"{"op":"server.status"}"#.into(),
            },
            CsmBody::Reply {
                status: ReplyStatus::OK,
                json: "{}".into(),
            },
            CsmBody::Console {
                json: r#"{"msg":"IWNR2772I"}"#.into(),
            },
        ] {
            let mut b = BytesMut::new();
            body.put_body(&mut b);
            let (t, kind) = body.wire_type();
            let back = CsmBody::read_body(t, kind, &b.freeze()).unwrap().unwrap();
            assert_eq!(back, body);
        }
        let bad = Bytes::from_static(&[0xFF, 0xFE]);
        let err = CsmBody::read_body(0x0310, FrameKind::Request, &bad)
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
        // A reply shorter than its status.
        let short = Bytes::from_static(&[0x00]);
        assert!(
            CsmBody::read_body(0x0310, FrameKind::Reply, &short)
                .unwrap()
                .is_err()
        );
    }
}
