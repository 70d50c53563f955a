//! Field readers and writers for frame bodies (spec: protocol-specs/framing.md §3).
//!
//! Bodies are parsed with nom in *complete* mode: the codec has already cut out the
//! whole body, so running out of bytes means the body is short, never "wait for more".
//! [`FieldReader`] names every field it reads, so a failure says which message, which
//! field and at which body offset; [`FieldReader::finish`] refuses trailing bytes.

use std::fmt;

use bytes::{BufMut, BytesMut};
use nom::IResult;
use nom::error::{ErrorKind, ParseError};

use super::ebcdic;

/// What went wrong with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The body ended inside the field.
    Truncated,
    /// Bytes were left after the last field.
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// A count field exceeds the protocol's bound.
    TooMany {
        /// Count given.
        count: usize,
        /// Largest allowed.
        max: usize,
    },
    /// The value is outside what the field allows.
    BadValue {
        /// Why.
        why: &'static str,
    },
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeErrorKind::Truncated => f.write_str("body ends inside the field"),
            DecodeErrorKind::TrailingBytes { count } => {
                write!(f, "{count} bytes after the last field")
            }
            DecodeErrorKind::TooMany { count, max } => write!(f, "count {count} exceeds {max}"),
            DecodeErrorKind::BadValue { why } => f.write_str(why),
        }
    }
}

/// A body that does not parse: which message, which field, where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}: field {field} at body offset {offset}: {kind}")]
pub struct DecodeError {
    /// Message name.
    pub message: &'static str,
    /// Field name.
    pub field: &'static str,
    /// Offset of the field in the body.
    pub offset: usize,
    /// What is wrong.
    pub kind: DecodeErrorKind,
}

/// nom's error type for our parsers: only "ran out of bytes" can happen in them.
#[derive(Debug)]
pub struct ShortInput;

impl<I> ParseError<I> for ShortInput {
    fn from_error_kind(_: I, _: ErrorKind) -> Self {
        ShortInput
    }
    fn append(_: I, _: ErrorKind, other: Self) -> Self {
        other
    }
}

/// Reads named fields off a body, front to back.
pub struct FieldReader<'a> {
    message: &'static str,
    input: &'a [u8],
    total: usize,
}

impl<'a> FieldReader<'a> {
    /// A reader over `body` of message `message`.
    pub fn new(message: &'static str, body: &'a [u8]) -> Self {
        FieldReader {
            message,
            input: body,
            total: body.len(),
        }
    }

    /// Offset of the next field in the body.
    pub fn offset(&self) -> usize {
        self.total - self.input.len()
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.input.len()
    }

    /// An error about `field` at the current offset.
    pub fn error(&self, field: &'static str, kind: DecodeErrorKind) -> DecodeError {
        DecodeError {
            message: self.message,
            field,
            offset: self.offset(),
            kind,
        }
    }

    fn run<T>(
        &mut self,
        field: &'static str,
        mut parser: impl FnMut(&'a [u8]) -> IResult<&'a [u8], T, ShortInput>,
    ) -> Result<T, DecodeError> {
        match parser(self.input) {
            Ok((rest, value)) => {
                self.input = rest;
                Ok(value)
            }
            Err(_) => Err(self.error(field, DecodeErrorKind::Truncated)),
        }
    }

    /// One byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        self.run(field, nom::number::complete::u8)
    }

    /// Big-endian u16.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.run(field, nom::number::complete::be_u16)
    }

    /// Big-endian u32.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.run(field, nom::number::complete::be_u32)
    }

    /// Big-endian u64.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.run(field, nom::number::complete::be_u64)
    }

    /// `n` raw bytes.
    pub fn bytes(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], DecodeError> {
        self.run(field, nom::bytes::complete::take(n))
    }

    /// A fixed-width, blank-padded EBCDIC field of `N` bytes.
    pub fn ebcdic<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<Ebcdic<N>, DecodeError> {
        let raw = self.bytes(field, N)?;
        let text = ebcdic::decode_padded(raw);
        Ok(Ebcdic(text))
    }

    /// A u16 count that must not exceed `max` (spec: protocol-specs/framing.md §3.3).
    pub fn count(&mut self, field: &'static str, max: usize) -> Result<usize, DecodeError> {
        let offset = self.offset();
        let count = usize::from(self.u16(field)?);
        if count > max {
            return Err(DecodeError {
                message: self.message,
                field,
                offset,
                kind: DecodeErrorKind::TooMany { count, max },
            });
        }
        Ok(count)
    }

    /// A `BadValue` error about `field`, located at the field's start `at` (read
    /// `offset()` before reading the field).
    pub fn bad_value_at(&self, at: usize, field: &'static str, why: &'static str) -> DecodeError {
        DecodeError {
            message: self.message,
            field,
            offset: at,
            kind: DecodeErrorKind::BadValue { why },
        }
    }

    /// A reserved byte, which must be zero (spec: protocol-specs/framing.md §5,
    /// MALFORMED_BODY "reserved field not zero").
    pub fn reserved_u8(&mut self, field: &'static str) -> Result<(), DecodeError> {
        let at = self.offset();
        match self.u8(field)? {
            0 => Ok(()),
            _ => Err(self.bad_value_at(at, field, "must be zero")),
        }
    }

    /// A u16 bit set in which only the bits of `known` may be set (spec:
    /// protocol-specs/framing.md §5, MALFORMED_BODY "value out of range").
    pub fn flags_u16(&mut self, field: &'static str, known: u16) -> Result<u16, DecodeError> {
        let at = self.offset();
        let bits = self.u16(field)?;
        if bits & !known != 0 {
            return Err(self.bad_value_at(at, field, "undefined option bits set"));
        }
        Ok(bits)
    }

    /// A boolean carried as a u8 (`wide` false) or u16 (`wide` true): 0 or 1.
    pub fn boolean(&mut self, field: &'static str, wide: bool) -> Result<bool, DecodeError> {
        let at = self.offset();
        let v = if wide {
            self.u16(field)?
        } else {
            u16::from(self.u8(field)?)
        };
        match v {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.bad_value_at(at, field, "0 or 1")),
        }
    }

    /// A count as [`FieldReader::count`] that must also be at least 1 (spec:
    /// protocol-specs/framing.md §3.3; every list that names work is non-empty).
    pub fn nonempty_count(
        &mut self,
        field: &'static str,
        max: usize,
    ) -> Result<usize, DecodeError> {
        let at = self.offset();
        let n = self.count(field, max)?;
        if n == 0 {
            return Err(self.bad_value_at(at, field, "empty list"));
        }
        Ok(n)
    }

    /// Ends the body: every byte must have been read (spec: protocol-specs/framing.md §3.1).
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.input.is_empty() {
            Ok(())
        } else {
            Err(self.error(
                "(end)",
                DecodeErrorKind::TrailingBytes {
                    count: self.input.len(),
                },
            ))
        }
    }
}

/// Fixed-width EBCDIC text of `N` bytes, blank-padded on the wire.
///
/// Holds the text without trailing blanks. Construction checks that it fits, so
/// encoding never fails. Every byte string decodes (CP1047 maps all 256 bytes).
#[derive(Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Ebcdic<const N: usize>(String);

/// Text that cannot be an [`Ebcdic`] field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} does not fit a {width}-byte EBCDIC field: {why}")]
pub struct EbcdicFieldError {
    /// The text.
    pub text: String,
    /// Field width.
    pub width: usize,
    /// Why.
    pub why: &'static str,
}

impl<const N: usize> Ebcdic<N> {
    /// Checks that `text` has at most `N` ISO-8859-1 characters and no trailing blank
    /// (which the wire could not tell from padding).
    pub fn new(text: &str) -> Result<Self, EbcdicFieldError> {
        let err = |why| EbcdicFieldError {
            text: text.to_string(),
            width: N,
            why,
        };
        if text.chars().count() > N {
            return Err(err("too long"));
        }
        if text.chars().any(|c| ebcdic::from_char(c).is_none()) {
            return Err(err("character outside ISO-8859-1"));
        }
        if text.ends_with(' ') {
            return Err(err("trailing blank"));
        }
        Ok(Ebcdic(text.to_string()))
    }

    /// The text, without padding.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Appends the field: EBCDIC, blank-padded to `N` bytes.
    pub fn put(&self, dst: &mut BytesMut) {
        let mut field = [ebcdic::EBCDIC_BLANK; N];
        // Cannot fail: checked in `new`, and decoded text round-trips.
        let _ = ebcdic::encode_padded(&self.0, &mut field);
        dst.put_slice(&field);
    }
}

impl<const N: usize> fmt::Debug for Ebcdic<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<const N: usize> fmt::Display for Ebcdic<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const N: usize> serde::Serialize for Ebcdic<N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de, const N: usize> serde::Deserialize<'de> for Ebcdic<N> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ebcdic::new(&s).map_err(serde::de::Error::custom)
    }
}

/// Writes a u16 count. Callers bound their lists by the protocol's maximum, which
/// is below 65,536; a longer list is cut at the u16 limit rather than mis-framed.
pub fn put_count(dst: &mut BytesMut, len: usize) {
    dst.put_u16(u16::try_from(len).unwrap_or(u16::MAX));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_names_field_and_offset() {
        let body = [0x00, 0x01, 0xC1, 0x40];
        let mut r = FieldReader::new("TEST", &body);
        assert_eq!(r.u16("first").unwrap(), 1);
        let e = r.u32("second").unwrap_err();
        assert_eq!(
            e.to_string(),
            "TEST: field second at body offset 2: body ends inside the field"
        );
        let mut r = FieldReader::new("TEST", &body);
        r.u8("a").unwrap();
        assert_eq!(
            r.finish().unwrap_err().kind,
            DecodeErrorKind::TrailingBytes { count: 3 }
        );
    }

    #[test]
    fn counts_are_bounded() {
        let mut r = FieldReader::new("TEST", &[0x01, 0x00]);
        let e = r.count("pairs", 255).unwrap_err();
        assert_eq!(
            (e.offset, e.kind),
            (
                0,
                DecodeErrorKind::TooMany {
                    count: 256,
                    max: 255
                }
            )
        );
    }

    #[test]
    fn ebcdic_fields() {
        let f = Ebcdic::<8>::new("SYSA").unwrap();
        let mut out = BytesMut::new();
        f.put(&mut out);
        assert_eq!(out[..], [0xE2, 0xE8, 0xE2, 0xC1, 0x40, 0x40, 0x40, 0x40]);
        let mut r = FieldReader::new("T", &out);
        assert_eq!(r.ebcdic::<8>("name").unwrap(), f);
        assert!(Ebcdic::<4>::new("TOOLONG").is_err());
        assert!(Ebcdic::<8>::new("A ").is_err());
        assert!(Ebcdic::<8>::new("€").is_err());
    }
}
