//! The HA protocol (spec: protocol-specs/ha.md): how the two servers of an
//! active/standby pair talk, on the shared frame layer under protocol `05`. There is
//! no logon: the pair authenticates with mutual TLS (ha.md §2), except for PAIR,
//! which carries an Administrator's password of the server being made the standby.
//! Unlike the other protocols both sides send events (RECORDS and COPY from the
//! active, ACK from the standby, HEARTBEAT from both).

pub mod rules;

use bytes::{BufMut, Bytes, BytesMut};
use zeroize::Zeroizing;

use crate::codec::fields::{DecodeError, DecodeErrorKind, FieldReader};
use crate::codec::frame::{Frame, ProtocolId, encode_frame};
use crate::proto::{FrameKind, MessageError, ReplyStatus, check_header, header_for};
use crate::wire_enum;

wire_enum! {
    /// HA message types (ha.md §3).
    pub struct HaMessageType(u16) {
        /// Who I am, what I hold, what I want (request; the dialer sends it first).
        HELLO = 0x0501,
        /// Make the listener the dialer's standby (request, password-authenticated).
        PAIR = 0x0502,
        /// A part of a full copy (event, active → standby).
        COPY = 0x0511,
        /// Journal records in order (event, active → standby).
        RECORDS = 0x0512,
        /// Everything up to a sequence number is durable on the standby (event).
        ACK = 0x0513,
        /// Liveness, role and epoch (event, both ways).
        HEARTBEAT = 0x0514,
    }
}

wire_enum! {
    /// A server's role (ha.md §1).
    pub struct HaRole(u8) {
        /// It acts: runs commands, schedules, storage actions.
        ACTIVE = 1,
        /// It follows an active and refuses changes.
        STANDBY = 2,
    }
}

wire_enum! {
    /// What a HELLO asks for (ha.md §4).
    pub struct HaPurpose(u8) {
        /// Send me your record stream: I am your standby.
        FOLLOW = 1,
        /// Tell me your role and epoch only (fencing, ha.md §7).
        PROBE = 2,
        /// Send me a full copy, then your record stream (after pairing, or after a
        /// record the standby refused).
        RESYNC = 3,
    }
}

wire_enum! {
    /// How the stream starts, in the HELLO reply (ha.md §5).
    pub struct HaStart(u8) {
        /// No stream (a PROBE, or a refusal).
        NONE = 0,
        /// RECORDS follow from `after + 1`: the standby's journal is a prefix of ours.
        RESUME = 1,
        /// A full copy (COPY parts) at `after`, then RECORDS from `after + 1`.
        FULL_COPY = 2,
    }
}

wire_enum! {
    /// HA reason codes (ha.md §8).
    pub struct HaReason(u16) {
        /// The listener is not the active (it names the active, if it knows it).
        NOT_ACTIVE = 0x0C01,
        /// The dialer's epoch is higher than the listener's: the listener stops acting.
        HIGHER_EPOCH = 0x0C02,
        /// The listener is in a relationship with another server.
        OTHER_PARTNER = 0x0C03,
        /// The two servers' sealing keys differ (ha.md §2.3).
        KEY_MISMATCH = 0x0C04,
        /// FOLLOW without a client certificate of the pair.
        NOT_PAIRED = 0x0C05,
        /// PAIR's user is unknown, its password wrong, or not an Administrator.
        NOT_AUTHORIZED = 0x0C06,
        /// The dialer's epoch is lower than the listener's: it is fenced.
        LOWER_EPOCH = 0x0C07,
    }
}

/// The largest HA frame body (ha.md §3): a whole-box session's creation record is
/// about 11 MB.
pub const HA_MAX_BODY: u32 = 16 * 1024 * 1024;
/// The most records in one RECORDS message.
pub const MAX_RECORDS: usize = 4096;
/// The longest server name (`host:port`), bytes.
pub const MAX_NAME: usize = 255;
/// The longest user name or password in PAIR, bytes.
pub const MAX_CREDENTIAL: usize = 256;
/// The longest PEM text in PAIR, bytes.
pub const MAX_PEM: usize = 16 * 1024;

/// A secret on the wire (a password, a private key): zeroed when dropped, never shown
/// by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Zeroizing<String>);

impl Secret {
    /// Wraps `text`.
    pub fn new(text: &str) -> Secret {
        Secret(Zeroizing::new(text.to_owned()))
    }

    /// The secret text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// One journal record as it travels: its place and its sealed bytes (store.md §1:
/// checksum, then JSON), so the standby stores exactly what the active stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireRecord {
    /// Sequence number.
    pub seq: u64,
    /// The epoch it was written in.
    pub epoch: u64,
    /// The sealed record.
    pub sealed: Bytes,
}

/// The protocol's messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HaBody {
    /// HELLO request.
    Hello {
        /// The dialer's role.
        role: HaRole,
        /// FOLLOW or PROBE.
        purpose: HaPurpose,
        /// The highest epoch the dialer knows.
        epoch: u64,
        /// Its last record's sequence number (0: none).
        last_seq: u64,
        /// That record's epoch.
        last_epoch: u64,
        /// The dialer's HA address as its partner should dial it (`host:port`).
        name: String,
    },
    /// HELLO reply.
    HelloReply {
        /// OK, or why not.
        status: ReplyStatus,
        /// The listener's role.
        role: HaRole,
        /// The listener's epoch.
        epoch: u64,
        /// How the stream starts.
        start: HaStart,
        /// The sequence number the stream (or the copy) starts after.
        after: u64,
        /// The listener's name; on NOT_ACTIVE, the active it follows, if any.
        name: String,
    },
    /// PAIR request: become my standby.
    Pair {
        /// An Administrator of the listener.
        user: String,
        /// Its password.
        password: Secret,
        /// The dialer's HA address (`host:port`).
        active: String,
        /// HMAC-SHA-256 of the dialer's sealing key over a fixed label (ha.md §2.3).
        key_check: [u8; 32],
        /// The pair's CA certificate, PEM.
        ca_pem: String,
        /// The listener's certificate under that CA, PEM.
        cert_pem: String,
        /// Its private key, PEM.
        key_pem: Secret,
        /// The active's CSM listener CA, PEM (empty: the operator's own certificates).
        csm_ca_pem: String,
        /// The active's CSM listener certificate, PEM (empty likewise).
        csm_cert_pem: String,
        /// Its key, PEM (empty likewise).
        csm_key_pem: Secret,
    },
    /// PAIR reply.
    PairReply {
        /// OK, or why not.
        status: ReplyStatus,
    },
    /// COPY event: one part of a full copy.
    Copy {
        /// The sequence number the copy is the state after.
        seq: u64,
        /// This part, from 0.
        part: u32,
        /// How many parts.
        parts: u32,
        /// The part's bytes.
        data: Bytes,
    },
    /// RECORDS event.
    Records {
        /// In order, without gaps.
        records: Vec<WireRecord>,
    },
    /// ACK event: durable up to `seq`.
    Ack {
        /// The last record stored.
        seq: u64,
    },
    /// HEARTBEAT event.
    Heartbeat {
        /// The sender's role.
        role: HaRole,
        /// Its epoch.
        epoch: u64,
        /// Its last record.
        last_seq: u64,
    },
}

/// One HA message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaMessage {
    /// Correlation id (framing.md §1).
    pub correlation: u32,
    /// The body.
    pub body: HaBody,
}

fn put_text(dst: &mut BytesMut, text: &str) {
    // Bounded by the senders (names, credentials, PEM are all far below 64 KiB).
    let bytes = text.as_bytes();
    let n = bytes.len().min(u16::MAX as usize);
    dst.put_u16(n as u16);
    dst.put_slice(&bytes[..n]);
}

fn text(r: &mut FieldReader<'_>, field: &'static str, max: usize) -> Result<String, DecodeError> {
    let at = r.offset();
    let n = r.u16(field)? as usize;
    if n > max {
        return Err(r.bad_value_at(at, field, "longer than its bound"));
    }
    let bytes = r.bytes(field, n)?;
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| r.error(field, DecodeErrorKind::BadValue { why: "not UTF-8" }))
}

impl HaBody {
    fn type_and_kind(&self) -> (HaMessageType, FrameKind) {
        match self {
            HaBody::Hello { .. } => (HaMessageType::HELLO, FrameKind::Request),
            HaBody::HelloReply { .. } => (HaMessageType::HELLO, FrameKind::Reply),
            HaBody::Pair { .. } => (HaMessageType::PAIR, FrameKind::Request),
            HaBody::PairReply { .. } => (HaMessageType::PAIR, FrameKind::Reply),
            HaBody::Copy { .. } => (HaMessageType::COPY, FrameKind::Event),
            HaBody::Records { .. } => (HaMessageType::RECORDS, FrameKind::Event),
            HaBody::Ack { .. } => (HaMessageType::ACK, FrameKind::Event),
            HaBody::Heartbeat { .. } => (HaMessageType::HEARTBEAT, FrameKind::Event),
        }
    }

    /// The message's name, for logs.
    pub fn name(&self) -> &'static str {
        self.type_and_kind().0.name().unwrap_or("UNKNOWN")
    }

    fn put(&self, dst: &mut BytesMut) {
        match self {
            HaBody::Hello {
                role,
                purpose,
                epoch,
                last_seq,
                last_epoch,
                name,
            } => {
                dst.put_u8(role.0);
                dst.put_u8(purpose.0);
                dst.put_u64(*epoch);
                dst.put_u64(*last_seq);
                dst.put_u64(*last_epoch);
                put_text(dst, name);
            }
            HaBody::HelloReply {
                status,
                role,
                epoch,
                start,
                after,
                name,
            } => {
                status.put(dst);
                dst.put_u8(role.0);
                dst.put_u64(*epoch);
                dst.put_u8(start.0);
                dst.put_u64(*after);
                put_text(dst, name);
            }
            HaBody::Pair {
                user,
                password,
                active,
                key_check,
                ca_pem,
                cert_pem,
                key_pem,
                csm_ca_pem,
                csm_cert_pem,
                csm_key_pem,
            } => {
                put_text(dst, user);
                put_text(dst, password.expose());
                put_text(dst, active);
                dst.put_slice(key_check);
                put_text(dst, ca_pem);
                put_text(dst, cert_pem);
                put_text(dst, key_pem.expose());
                put_text(dst, csm_ca_pem);
                put_text(dst, csm_cert_pem);
                put_text(dst, csm_key_pem.expose());
            }
            HaBody::PairReply { status } => status.put(dst),
            HaBody::Copy {
                seq,
                part,
                parts,
                data,
            } => {
                dst.put_u64(*seq);
                dst.put_u32(*part);
                dst.put_u32(*parts);
                dst.put_u32(data.len() as u32);
                dst.put_slice(data);
            }
            HaBody::Records { records } => {
                dst.put_u16(records.len().min(MAX_RECORDS) as u16);
                for r in records.iter().take(MAX_RECORDS) {
                    dst.put_u64(r.seq);
                    dst.put_u64(r.epoch);
                    dst.put_u32(r.sealed.len() as u32);
                    dst.put_slice(&r.sealed);
                }
            }
            HaBody::Ack { seq } => dst.put_u64(*seq),
            HaBody::Heartbeat {
                role,
                epoch,
                last_seq,
            } => {
                dst.put_u8(role.0);
                dst.put_u64(*epoch);
                dst.put_u64(*last_seq);
            }
        }
    }

    fn read(
        t: HaMessageType,
        kind: FrameKind,
        body: &Bytes,
    ) -> Option<Result<HaBody, DecodeError>> {
        let name = t.name().unwrap_or("UNKNOWN");
        let mut reader = FieldReader::new(name, body);
        let r = &mut reader;
        let role = |r: &mut FieldReader<'_>| -> Result<HaRole, DecodeError> {
            let at = r.offset();
            let role = HaRole(r.u8("role")?);
            if role.name().is_none() {
                return Err(r.bad_value_at(at, "role", "not 1 (active) or 2 (standby)"));
            }
            Ok(role)
        };
        let parsed = (|| -> Option<Result<HaBody, DecodeError>> {
            Some(match (t, kind) {
                (HaMessageType::HELLO, FrameKind::Request) => (|| {
                    let role = role(r)?;
                    let at = r.offset();
                    let purpose = HaPurpose(r.u8("purpose")?);
                    if purpose.name().is_none() {
                        return Err(r.bad_value_at(at, "purpose", "not 1, 2 or 3"));
                    }
                    Ok(HaBody::Hello {
                        role,
                        purpose,
                        epoch: r.u64("epoch")?,
                        last_seq: r.u64("last_seq")?,
                        last_epoch: r.u64("last_epoch")?,
                        name: text(r, "name", MAX_NAME)?,
                    })
                })(),
                (HaMessageType::HELLO, FrameKind::Reply) => (|| {
                    let status = ReplyStatus::read(r)?;
                    let role = role(r)?;
                    let epoch = r.u64("epoch")?;
                    let at = r.offset();
                    let start = HaStart(r.u8("start")?);
                    if start.name().is_none() {
                        return Err(r.bad_value_at(at, "start", "not 0, 1 or 2"));
                    }
                    Ok(HaBody::HelloReply {
                        status,
                        role,
                        epoch,
                        start,
                        after: r.u64("after")?,
                        name: text(r, "name", MAX_NAME)?,
                    })
                })(),
                (HaMessageType::PAIR, FrameKind::Request) => (|| {
                    let user = text(r, "user", MAX_CREDENTIAL)?;
                    let password = Secret(Zeroizing::new(text(r, "password", MAX_CREDENTIAL)?));
                    let active = text(r, "active", MAX_NAME)?;
                    let mut key_check = [0u8; 32];
                    key_check.copy_from_slice(r.bytes("key_check", 32)?);
                    Ok(HaBody::Pair {
                        user,
                        password,
                        active,
                        key_check,
                        ca_pem: text(r, "ca_pem", MAX_PEM)?,
                        cert_pem: text(r, "cert_pem", MAX_PEM)?,
                        key_pem: Secret(Zeroizing::new(text(r, "key_pem", MAX_PEM)?)),
                        csm_ca_pem: text(r, "csm_ca_pem", MAX_PEM)?,
                        csm_cert_pem: text(r, "csm_cert_pem", MAX_PEM)?,
                        csm_key_pem: Secret(Zeroizing::new(text(r, "csm_key_pem", MAX_PEM)?)),
                    })
                })(),
                (HaMessageType::PAIR, FrameKind::Reply) => {
                    ReplyStatus::read(r).map(|status| HaBody::PairReply { status })
                }
                (HaMessageType::COPY, FrameKind::Event) => (|| {
                    let seq = r.u64("seq")?;
                    let at = r.offset();
                    let part = r.u32("part")?;
                    let parts = r.u32("parts")?;
                    if part >= parts {
                        return Err(r.bad_value_at(at, "part", "not below parts"));
                    }
                    let n = r.u32("length")? as usize;
                    let start = r.offset();
                    r.bytes("data", n)?;
                    Ok(HaBody::Copy {
                        seq,
                        part,
                        parts,
                        data: body.slice(start..start + n),
                    })
                })(),
                (HaMessageType::RECORDS, FrameKind::Event) => (|| {
                    let n = r.count("records", MAX_RECORDS)?;
                    let mut records = Vec::with_capacity(n);
                    for _ in 0..n {
                        let seq = r.u64("seq")?;
                        let epoch = r.u64("epoch")?;
                        let len = r.u32("length")? as usize;
                        let start = r.offset();
                        r.bytes("sealed", len)?;
                        records.push(WireRecord {
                            seq,
                            epoch,
                            sealed: body.slice(start..start + len),
                        });
                    }
                    Ok(HaBody::Records { records })
                })(),
                (HaMessageType::ACK, FrameKind::Event) => {
                    r.u64("seq").map(|seq| HaBody::Ack { seq })
                }
                (HaMessageType::HEARTBEAT, FrameKind::Event) => (|| {
                    Ok(HaBody::Heartbeat {
                        role: role(r)?,
                        epoch: r.u64("epoch")?,
                        last_seq: r.u64("last_seq")?,
                    })
                })(),
                _ => return None,
            })
        })()?;
        Some(parsed.and_then(|b| reader.finish().map(|()| b)))
    }
}

impl HaMessage {
    /// Reads a frame of the HA protocol.
    pub fn decode(frame: &Frame) -> Result<HaMessage, MessageError> {
        let h = &frame.header;
        let kind = check_header(h, ProtocolId::HA, |t| HaMessageType(t).name())?;
        let unknown = || MessageError::UnknownMessage {
            message_type: h.message_type,
            name: HaMessageType(h.message_type).name(),
            flags: h.flags,
        };
        let body = HaBody::read(HaMessageType(h.message_type), kind, &frame.body)
            .ok_or_else(unknown)??;
        Ok(HaMessage {
            correlation: h.correlation,
            body,
        })
    }

    /// Appends the message's frame to `dst` (infallible).
    pub fn encode(&self, dst: &mut BytesMut) {
        let (t, kind) = self.body.type_and_kind();
        let header = header_for(ProtocolId::HA, t.0, kind, self.correlation);
        encode_frame(&header, |b| self.body.put(b), dst);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::codec::frame::FrameCodec;
    use tokio_util::codec::Decoder;

    fn round_trip(m: &HaMessage) -> HaMessage {
        let mut b = BytesMut::new();
        m.encode(&mut b);
        let frame = FrameCodec::new(HA_MAX_BODY)
            .decode(&mut b)
            .unwrap()
            .unwrap();
        HaMessage::decode(&frame).unwrap()
    }

    #[test]
    fn every_message_round_trips_and_secrets_are_not_shown() {
        let bodies = vec![
            HaBody::Hello {
                role: HaRole::STANDBY,
                purpose: HaPurpose::FOLLOW,
                epoch: 3,
                last_seq: 1200,
                last_epoch: 3,
                name: "127.0.0.1:9561".into(),
            },
            HaBody::HelloReply {
                status: ReplyStatus::OK,
                role: HaRole::ACTIVE,
                epoch: 3,
                start: HaStart::RESUME,
                after: 1200,
                name: "csm-a:9561".into(),
            },
            HaBody::Pair {
                user: "admin".into(),
                password: Secret::new("a-long-passphrase"),
                active: "csm-a:9561".into(),
                key_check: [7; 32],
                ca_pem: "-----BEGIN CERTIFICATE-----".into(),
                cert_pem: "c".into(),
                key_pem: Secret::new("k"),
                csm_ca_pem: String::new(),
                csm_cert_pem: "cc".into(),
                csm_key_pem: Secret::new("ck"),
            },
            HaBody::PairReply {
                status: ReplyStatus::new(crate::proto::ReturnCode::REFUSED, 0x0C06),
            },
            HaBody::Copy {
                seq: 9,
                part: 0,
                parts: 2,
                data: Bytes::from_static(b"abc"),
            },
            HaBody::Records {
                records: vec![WireRecord {
                    seq: 1,
                    epoch: 1,
                    sealed: Bytes::from_static(b"12345678{}"),
                }],
            },
            HaBody::Ack { seq: 77 },
            HaBody::Heartbeat {
                role: HaRole::ACTIVE,
                epoch: 2,
                last_seq: 5,
            },
        ];
        for (i, body) in bodies.into_iter().enumerate() {
            let m = HaMessage {
                correlation: i as u32,
                body,
            };
            assert_eq!(round_trip(&m), m);
            let shown = format!("{m:?}");
            assert!(!shown.contains("a-long-passphrase"), "{shown}");
        }
    }

    #[test]
    fn bad_bodies_are_named_errors() {
        // A COPY whose part is not below its count.
        let m = HaMessage {
            correlation: 0,
            body: HaBody::Copy {
                seq: 1,
                part: 2,
                parts: 2,
                data: Bytes::new(),
            },
        };
        let mut b = BytesMut::new();
        m.encode(&mut b);
        let frame = FrameCodec::new(HA_MAX_BODY)
            .decode(&mut b)
            .unwrap()
            .unwrap();
        let err = HaMessage::decode(&frame).unwrap_err();
        assert!(err.to_string().contains("part"), "{err}");
        // A HELLO with an unknown role.
        let mut b = BytesMut::new();
        HaMessage {
            correlation: 1,
            body: HaBody::Heartbeat {
                role: HaRole(9),
                epoch: 1,
                last_seq: 1,
            },
        }
        .encode(&mut b);
        let frame = FrameCodec::new(HA_MAX_BODY)
            .decode(&mut b)
            .unwrap()
            .unwrap();
        assert!(HaMessage::decode(&frame).is_err());
    }
}
