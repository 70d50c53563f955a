//! The frame layer shared by every zgate protocol (spec: protocol-specs/framing.md).
//!
//! ```text
//!  0      2   3   4        6        8               12              16
//! +-------+---+---+--------+--------+---------------+---------------+---------
//! | magic |ver|pid| type   | flags  | correlation id| body length   | body ...
//! | E9 C7 |   |   |        |        |               |               |
//! +-------+---+---+--------+--------+---------------+---------------+---------
//! ```
//!
//! [`FrameCodec`] only finds frame boundaries and enforces the body-length limit; it
//! hands each body on as a `Bytes` slice of the read buffer (no copy). What a body
//! means is the protocol's business (`crate::proto`).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::wire_enum;

/// Frame magic: "ZG" in EBCDIC (§1).
pub const MAGIC: [u8; 2] = [0xE9, 0xC7];
/// The only frame version this implementation speaks (§1).
pub const VERSION: u8 = 1;
/// Header length in bytes (§1).
pub const HEADER_LEN: usize = 16;
/// Default largest body accepted, in bytes (§2).
pub const DEFAULT_MAX_BODY: u32 = 64 * 1024;
/// Largest body any configuration may allow (§2).
pub const MAX_MAX_BODY: u32 = 16 * 1024 * 1024;

wire_enum! {
    /// Which protocol a frame belongs to (§1, byte 3).
    pub struct ProtocolId(u8) {
        /// Gateway ↔ z/OS HyperSwap address space (protocol-specs/zos-hyperswap.md).
        ZOS = 0x01,
        /// Gateway ↔ z/TPF (protocol-specs/ztpf.md).
        ZTPF = 0x02,
        /// CSM-side client ↔ gateway.
        CSM = 0x03,
        /// Gateway or host ↔ DS8000 (HMC).
        DS8K = 0x04,
        /// Active ↔ standby server of a pair (protocol-specs/ha.md).
        HA = 0x05,
    }
}

/// Frame flags (§1, bytes 6–7).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u16);

impl Flags {
    /// The frame answers the request with the same correlation id.
    pub const REPLY: Flags = Flags(0x8000);
    /// The frame is an unsolicited event, not a request and not a reply.
    pub const UNSOLICITED: Flags = Flags(0x4000);
    /// Bits with no meaning in version 1; a sender sets them to zero.
    pub const RESERVED_MASK: u16 = 0x3FFF;

    /// No flag: a request.
    pub const fn request() -> Self {
        Flags(0)
    }

    /// True if every bit of `other` is set.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Bits set that version 1 does not define.
    pub fn reserved_bits(self) -> u16 {
        self.0 & Self::RESERVED_MASK
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl std::fmt::Debug for Flags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if self.contains(Flags::REPLY) {
            parts.push("REPLY".to_string());
        }
        if self.contains(Flags::UNSOLICITED) {
            parts.push("UNSOLICITED".to_string());
        }
        if self.reserved_bits() != 0 {
            parts.push(format!("{:#06x}", self.reserved_bits()));
        }
        if parts.is_empty() {
            f.write_str("REQUEST")
        } else {
            f.write_str(&parts.join("|"))
        }
    }
}

/// The fixed 16-byte header, minus magic and length (which the codec owns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Frame version (byte 2). The codec passes any value on; sessions refuse others.
    pub version: u8,
    /// Protocol (byte 3).
    pub protocol: ProtocolId,
    /// Message type, defined per protocol (bytes 4–5).
    pub message_type: u16,
    /// Flags (bytes 6–7).
    pub flags: Flags,
    /// Correlation id (bytes 8–11): a reply carries its request's id.
    pub correlation: u32,
}

/// One frame: header and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The header.
    pub header: FrameHeader,
    /// The body, a slice of the read buffer.
    pub body: Bytes,
}

impl Frame {
    /// Total encoded length.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.body.len()
    }

    /// Appends the frame's bytes to `dst`. Infallible: callers build bodies within the
    /// limit, and the length field is filled in from the body actually written.
    pub fn encode(&self, dst: &mut BytesMut) {
        encode_frame(&self.header, |b| b.extend_from_slice(&self.body), dst);
    }
}

/// Writes a header with a placeholder length, lets `body` write the body, then fills
/// the length in. The one place a frame's length field is computed.
pub fn encode_frame(header: &FrameHeader, body: impl FnOnce(&mut BytesMut), dst: &mut BytesMut) {
    let start = dst.len();
    dst.reserve(HEADER_LEN);
    dst.put_slice(&MAGIC);
    dst.put_u8(header.version);
    dst.put_u8(header.protocol.0);
    dst.put_u16(header.message_type);
    dst.put_u16(header.flags.0);
    dst.put_u32(header.correlation);
    dst.put_u32(0);
    body(dst);
    let body_len = dst.len() - start - HEADER_LEN;
    // Bodies are bounded by MAX_MAX_BODY (16 MiB) by construction in every protocol;
    // saturate rather than wrap if a caller ever breaks that, so the peer rejects it.
    let len = u32::try_from(body_len).unwrap_or(u32::MAX);
    dst[start + 12..start + 16].copy_from_slice(&len.to_be_bytes());
}

/// Why a byte stream cannot be cut into frames. Each closes the connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The first two bytes of a header are not the magic (§2).
    #[error("bad frame magic {found:02X?}, expected E9 C7")]
    BadMagic {
        /// What was there.
        found: [u8; 2],
    },
    /// The body length exceeds the configured limit; nothing of the body was read (§2).
    #[error("frame body of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The header, so that a protocol-error reply can carry its correlation id.
        header: FrameHeader,
        /// Declared body length.
        len: u32,
        /// Configured limit.
        max: u32,
    },
    /// The stream ended inside a frame.
    #[error("connection closed inside a frame ({buffered} bytes buffered)")]
    Truncated {
        /// Bytes of the unfinished frame.
        buffered: usize,
    },
    /// The transport failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// tokio-util codec for zgate frames: boundaries and limits only.
#[derive(Debug, Clone, Copy)]
pub struct FrameCodec {
    max_body: u32,
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new(DEFAULT_MAX_BODY)
    }
}

impl FrameCodec {
    /// A codec accepting bodies up to `max_body` bytes (capped at [`MAX_MAX_BODY`]).
    pub fn new(max_body: u32) -> Self {
        FrameCodec {
            max_body: max_body.min(MAX_MAX_BODY),
        }
    }

    /// The body-length limit.
    pub fn max_body(&self) -> u32 {
        self.max_body
    }

    /// Changes the body-length limit (capped at [`MAX_MAX_BODY`]): a listener allows
    /// only logon-sized bodies until a client has logged on (framing.md §2).
    pub fn set_max_body(&mut self, max_body: u32) {
        self.max_body = max_body.min(MAX_MAX_BODY);
    }
}

/// Most bytes reserved ahead of what has arrived: a peer that announces a large body
/// and sends it slowly gets buffer as its bytes come, not all at once (framing.md §2).
pub const RESERVE_STEP: usize = 8 * 1024;

/// Parses the 16 header bytes. `bytes` must hold at least [`HEADER_LEN`] bytes.
fn read_header(bytes: &[u8]) -> Result<(FrameHeader, u32), FrameError> {
    let mut b = &bytes[..HEADER_LEN];
    let magic = [b.get_u8(), b.get_u8()];
    if magic != MAGIC {
        return Err(FrameError::BadMagic { found: magic });
    }
    let header = FrameHeader {
        version: b.get_u8(),
        protocol: ProtocolId(b.get_u8()),
        message_type: b.get_u16(),
        flags: Flags(b.get_u16()),
        correlation: b.get_u32(),
    };
    Ok((header, b.get_u32()))
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if src.len() < HEADER_LEN {
            // Check the magic as soon as it is there, so garbage is refused early.
            if src.len() >= 2 && src[..2] != MAGIC {
                return Err(FrameError::BadMagic {
                    found: [src[0], src[1]],
                });
            }
            src.reserve(HEADER_LEN - src.len());
            return Ok(None);
        }
        let (header, body_len) = read_header(src)?;
        // spec: protocol-specs/framing.md §2: refuse an oversized frame before reading its body.
        if body_len > self.max_body {
            return Err(FrameError::TooLarge {
                header,
                len: body_len,
                max: self.max_body,
            });
        }
        // Cannot overflow: body_len <= 16 MiB.
        let total = HEADER_LEN + body_len as usize;
        if src.len() < total {
            // spec: protocol-specs/framing.md §2: buffer grows with the bytes that
            // arrive, a step at a time, never to the announced size up front.
            src.reserve((total - src.len()).min(RESERVE_STEP));
            return Ok(None);
        }
        let mut frame = src.split_to(total).freeze();
        let body = frame.split_off(HEADER_LEN);
        Ok(Some(Frame { header, body }))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None if buf.is_empty() => Ok(None),
            None => Err(FrameError::Truncated {
                buffered: buf.len(),
            }),
        }
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        frame.encode(dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> FrameHeader {
        FrameHeader {
            version: VERSION,
            protocol: ProtocolId::ZOS,
            message_type: 0x0002,
            flags: Flags::REPLY,
            correlation: 0x0102_0304,
        }
    }

    #[test]
    fn encodes_the_documented_bytes() {
        let f = Frame {
            header: header(),
            body: Bytes::from_static(&[0xAA, 0xBB]),
        };
        let mut out = BytesMut::new();
        f.encode(&mut out);
        assert_eq!(
            out[..],
            [
                0xE9, 0xC7, 0x01, 0x01, 0x00, 0x02, 0x80, 0x00, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00,
                0x00, 0x02, 0xAA, 0xBB
            ]
        );
        let mut codec = FrameCodec::default();
        assert_eq!(codec.decode(&mut out).unwrap(), Some(f));
        assert!(out.is_empty());
    }

    #[test]
    fn waits_for_bytes_one_at_a_time() {
        let f = Frame {
            header: header(),
            body: Bytes::from_static(b"0123456789"),
        };
        let mut wire = BytesMut::new();
        f.encode(&mut wire);
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::new();
        for (i, b) in wire.iter().enumerate() {
            buf.put_u8(*b);
            let got = codec.decode(&mut buf).unwrap();
            assert_eq!(got.is_some(), i == wire.len() - 1);
        }
    }

    #[test]
    fn refuses_oversize_before_the_body_arrives() {
        let mut codec = FrameCodec::new(8);
        let mut buf = BytesMut::from(&[0xE9, 0xC7, 1, 1, 0, 2, 0, 0, 0, 0, 0, 9, 0, 0, 0, 9][..]);
        match codec.decode(&mut buf) {
            Err(FrameError::TooLarge {
                len: 9,
                max: 8,
                header,
            }) => assert_eq!(header.correlation, 9),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refuses_bad_magic_early_and_truncation_at_eof() {
        let mut codec = FrameCodec::default();
        assert!(matches!(
            codec.decode(&mut BytesMut::from(&b"GE"[..])),
            Err(FrameError::BadMagic {
                found: [b'G', b'E']
            })
        ));
        let mut buf = BytesMut::from(&[0xE9, 0xC7, 1][..]);
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Err(FrameError::Truncated { buffered: 3 })
        ));
    }
}
