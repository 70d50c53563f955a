//! RACF PassTickets: generation and RACF-style evaluation, as pure functions.
//!
//! A PassTicket is an 8-character one-time password computed from a secret key, a
//! user ID, an application name and the time (seconds since 1970-01-01 UTC). Two
//! algorithms exist (spec: protocol-specs/passticket.md):
//!
//! * [`legacy`]: DES with a 64-bit "secured signon" key (§2);
//! * [`enhanced`]: HMAC-SHA-512 with a 32–256-byte key, in two ticket types,
//!   [`TicketType::Upper`] and [`TicketType::Mixed`] (§3).
//!
//! Both time-coders are Feistel networks, so a ticket can be *decoded* back to the
//! time it was generated for; [`evaluator`] uses that to check a ticket in one pass
//! instead of re-generating one ticket per second of the validity window (§4).
//!
//! Nothing here reads a clock: callers pass the time. Keys are held in types that
//! redact `Debug` and zeroize on drop; no function logs them.

pub mod enhanced;
pub mod evaluator;
pub mod legacy;

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::codec::ebcdic;

pub use enhanced::EnhancedGenerator;
pub use evaluator::{Accepted, Evaluator, EvaluatorConfig, PtktProfile, Refusal, RefusalReason};
pub use legacy::LegacyGenerator;

/// Errors in the inputs of PassTicket generation or evaluation. Each names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// A user ID, application name or group name is empty, too long or has a bad character.
    #[error("{field}: {problem}")]
    BadName {
        /// Which input (`user`, `appl`, `group`).
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// A key is not valid hexadecimal.
    #[error("{field}: not hexadecimal ({problem})")]
    KeyNotHex {
        /// Which input.
        field: &'static str,
        /// What the hex decoder found.
        problem: String,
    },
    /// A key has the wrong number of bytes.
    #[error("{field}: {actual} bytes, expected {expected}")]
    KeyLength {
        /// Which input.
        field: &'static str,
        /// The accepted length or range, as text.
        expected: &'static str,
        /// The length that was given.
        actual: usize,
    },
    /// A time before 1970-01-01 UTC.
    #[error("time: before 1970-01-01T00:00:00Z")]
    TimeBeforeEpoch,
    /// A ticket that is not 8 characters of a PassTicket alphabet.
    #[error("ticket: {0}")]
    BadTicket(String),
    /// A ticket type other than `upper` or `mixed`.
    #[error("type: expected upper or mixed, got {0:?}")]
    BadTicketType(String),
}

/// Seconds since 1970-01-01 00:00:00 UTC, the time base of both algorithms.
pub fn unix_seconds(at: SystemTime) -> Result<u64, InputError> {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| InputError::TimeBeforeEpoch)
}

/// A RACF name (user ID, application name, group): 1–8 characters from `A-Z 0-9 @ # $`.
///
/// Lower-case letters are folded to upper case on input, as IBM's samples do before
/// converting to EBCDIC (spec: protocol-specs/passticket.md §1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RacfName {
    /// ASCII, upper case, blank-padded.
    text: [u8; 8],
    len: u8,
}

impl RacfName {
    /// Parses and upper-cases `s`; `field` names the input in the error.
    pub fn parse(field: &'static str, s: &str) -> Result<Self, InputError> {
        let bad = |problem: String| InputError::BadName { field, problem };
        if s.is_empty() {
            return Err(bad("empty".into()));
        }
        if s.len() > 8 {
            return Err(bad(format!("{} characters, at most 8", s.chars().count())));
        }
        let mut text = [b' '; 8];
        for (slot, c) in text.iter_mut().zip(s.bytes()) {
            let up = c.to_ascii_uppercase();
            if !(up.is_ascii_uppercase() || up.is_ascii_digit() || matches!(up, b'@' | b'#' | b'$'))
            {
                return Err(bad(format!(
                    "character {:?} not in A-Z 0-9 @ # $",
                    char::from(c)
                )));
            }
            *slot = up;
        }
        Ok(RacfName {
            text,
            len: s.len() as u8,
        })
    }

    /// The name, upper case, without padding.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored.
        std::str::from_utf8(&self.text[..usize::from(self.len)]).unwrap_or("")
    }

    /// Number of characters (1–8).
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Always false: a `RacfName` has at least one character.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The name in EBCDIC, left-justified and blank-padded (X'40') to 8 bytes.
    pub fn ebcdic8(&self) -> [u8; 8] {
        let mut out = [ebcdic::EBCDIC_BLANK; 8];
        for (o, &c) in out.iter_mut().zip(&self.text[..self.len()]) {
            // Every stored byte is in the RACF character set, which CP1047 covers.
            *o = ebcdic::from_char(char::from(c)).unwrap_or(ebcdic::EBCDIC_BLANK);
        }
        out
    }
}

impl fmt::Display for RacfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RacfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// Which generator a key or ticket belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// DES-based (protocol-specs/passticket.md §2).
    Legacy,
    /// HMAC-SHA-512-based (protocol-specs/passticket.md §3), with its ticket type.
    Enhanced(TicketType),
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Algorithm::Legacy => f.write_str("legacy"),
            Algorithm::Enhanced(t) => write!(f, "enhanced/{t}"),
        }
    }
}

/// Enhanced PassTicket type: the alphabet of the 8 characters.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum TicketType {
    /// Digits and upper-case letters (base 36); survives upper-casing by the application.
    #[default]
    Upper,
    /// Digits, both cases, `-` and `_` (base 64); case-sensitive.
    Mixed,
}

impl fmt::Display for TicketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TicketType::Upper => "upper",
            TicketType::Mixed => "mixed",
        })
    }
}

impl FromStr for TicketType {
    type Err = InputError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "upper" => Ok(TicketType::Upper),
            "mixed" => Ok(TicketType::Mixed),
            _ => Err(InputError::BadTicketType(s.into())),
        }
    }
}

/// An 8-character PassTicket (ASCII). Not a secret once used, but still never logged.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PassTicket([u8; 8]);

impl PassTicket {
    /// Wraps 8 characters that a generator produced.
    pub(crate) fn from_chars(chars: [u8; 8]) -> Self {
        PassTicket(chars)
    }

    /// Parses a ticket: exactly 8 characters from `0-9 A-Z a-z - _`.
    ///
    /// Whether the characters fit a given algorithm is the evaluator's question.
    pub fn parse(s: &str) -> Result<Self, InputError> {
        let bytes: [u8; 8] = s.as_bytes().try_into().map_err(|_| {
            InputError::BadTicket(format!("{} characters, expected 8", s.chars().count()))
        })?;
        if let Some(bad) = bytes
            .iter()
            .find(|&&b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        {
            return Err(InputError::BadTicket(format!(
                "character {:?} not in 0-9 A-Z a-z - _",
                char::from(*bad)
            )));
        }
        Ok(PassTicket(bytes))
    }

    /// The ticket's characters.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The ticket's bytes.
    pub fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }
}

impl fmt::Display for PassTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for PassTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A ticket is a credential while it is inside its window: keep it out of logs.
        f.write_str("PassTicket(<redacted>)")
    }
}

/// A legacy (DES) secured signon application key: 8 bytes, 16 hex digits.
///
/// The low bit of each byte is DES parity and is ignored (IBM: keys differing only
/// in parity bits are equivalent).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct LegacyKey([u8; 8]);

impl LegacyKey {
    /// Parses 16 hex digits.
    pub fn from_hex(hex_digits: &str) -> Result<Self, InputError> {
        let mut key = [0u8; 8];
        decode_hex_into("key", hex_digits, &mut key, "8 (16 hex digits)")?;
        Ok(LegacyKey(key))
    }

    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 8]) -> Self {
        LegacyKey(bytes)
    }

    pub(crate) fn bytes(&self) -> &[u8; 8] {
        &self.0
    }
}

impl fmt::Debug for LegacyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LegacyKey(<redacted>)")
    }
}

/// An enhanced PassTicket key: the raw HMAC-SHA-512 key, 32 to 256 bytes.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct EnhancedKey(Vec<u8>);

impl EnhancedKey {
    /// Shortest key RACF accepts (ICSF HMAC key for PassTickets), in bytes.
    pub const MIN_LEN: usize = 32;
    /// Longest key RACF accepts, in bytes.
    pub const MAX_LEN: usize = 256;

    /// Parses 64 to 512 hex digits.
    pub fn from_hex(hex_digits: &str) -> Result<Self, InputError> {
        let len = hex_digits.len() / 2;
        if !hex_digits.len().is_multiple_of(2) {
            return Err(InputError::KeyNotHex {
                field: "key",
                problem: "odd number of digits".into(),
            });
        }
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err(InputError::KeyLength {
                field: "key",
                expected: "32..=256 (64 to 512 hex digits)",
                actual: len,
            });
        }
        let mut bytes = Zeroizing::new(vec![0u8; len]);
        decode_hex_into("key", hex_digits, &mut bytes, "32..=256")?;
        Ok(EnhancedKey(std::mem::take(&mut *bytes)))
    }

    /// Wraps raw key bytes (32 to 256 of them).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InputError> {
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&bytes.len()) {
            return Err(InputError::KeyLength {
                field: "key",
                expected: "32..=256",
                actual: bytes.len(),
            });
        }
        Ok(EnhancedKey(bytes.to_vec()))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for EnhancedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EnhancedKey(<redacted {} bytes>)", self.0.len())
    }
}

fn decode_hex_into(
    field: &'static str,
    digits: &str,
    out: &mut [u8],
    expected: &'static str,
) -> Result<(), InputError> {
    if !digits.len().is_multiple_of(2) {
        return Err(InputError::KeyNotHex {
            field,
            problem: "odd number of digits".into(),
        });
    }
    if digits.len() / 2 != out.len() {
        return Err(InputError::KeyLength {
            field,
            expected,
            actual: digits.len() / 2,
        });
    }
    hex::decode_to_slice(digits, out).map_err(|_| InputError::KeyNotHex {
        field,
        // Never the offending character or its place: that is part of the key.
        problem: "a character that is not a hex digit".into(),
    })
}

/// Generates a legacy PassTicket (one-shot; build a [`LegacyGenerator`] to reuse the key schedule).
pub fn generate_legacy(
    key: &LegacyKey,
    user: &RacfName,
    appl: &RacfName,
    at: SystemTime,
) -> Result<PassTicket, InputError> {
    Ok(LegacyGenerator::new(key).generate(user, appl, unix_seconds(at)?))
}

/// Generates an enhanced PassTicket (one-shot; build an [`EnhancedGenerator`] to reuse the keyed state).
pub fn generate_enhanced(
    key: &EnhancedKey,
    ticket_type: TicketType,
    user: &RacfName,
    appl: &RacfName,
    at: SystemTime,
) -> Result<PassTicket, InputError> {
    Ok(EnhancedGenerator::new(key, ticket_type).generate(user, appl, unix_seconds(at)?))
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_bad_key_is_never_echoed_not_even_one_character_or_its_place() {
        for key in [
            "0123456789ABCDEQ",
            &format!("{}Q{}", "0".repeat(40), "1".repeat(23)),
        ] {
            let legacy = LegacyKey::from_hex(key).err().map(|e| e.to_string());
            let enhanced = EnhancedKey::from_hex(key).err().map(|e| e.to_string());
            for e in [legacy, enhanced].into_iter().flatten() {
                assert!(!e.contains('Q') && !e.contains("position"), "{e}");
            }
        }
    }

    use super::*;

    #[test]
    fn names_fold_case_and_refuse_bad_input() {
        let n = RacfName::parse("user", "hostusr").unwrap();
        assert_eq!(n.as_str(), "HOSTUSR");
        assert_eq!(
            n.ebcdic8(),
            [0xC8, 0xD6, 0xE2, 0xE3, 0xE4, 0xE2, 0xD9, 0x40]
        );
        assert!(RacfName::parse("user", "").is_err());
        assert!(RacfName::parse("user", "NINECHARS").is_err());
        let e = RacfName::parse("appl", "BAD-NAME").unwrap_err();
        assert_eq!(e.to_string(), "appl: character '-' not in A-Z 0-9 @ # $");
    }

    #[test]
    fn keys_redact_debug_and_check_length() {
        let k = LegacyKey::from_hex("E001193519561977").unwrap();
        assert_eq!(format!("{k:?}"), "LegacyKey(<redacted>)");
        assert!(matches!(
            LegacyKey::from_hex("E00119351956197"),
            Err(InputError::KeyNotHex { .. })
        ));
        assert!(matches!(
            LegacyKey::from_hex("E0011935195619"),
            Err(InputError::KeyLength { actual: 7, .. })
        ));
        assert!(matches!(
            LegacyKey::from_hex("G001193519561977"),
            Err(InputError::KeyNotHex { .. })
        ));
        let e = EnhancedKey::from_hex(&"ab".repeat(32)).unwrap();
        assert_eq!(format!("{e:?}"), "EnhancedKey(<redacted 32 bytes>)");
        assert!(matches!(
            EnhancedKey::from_hex(&"ab".repeat(31)),
            Err(InputError::KeyLength { actual: 31, .. })
        ));
        assert!(matches!(
            EnhancedKey::from_hex(&"ab".repeat(257)),
            Err(InputError::KeyLength { actual: 257, .. })
        ));
    }

    #[test]
    fn tickets_parse_strictly() {
        assert!(PassTicket::parse("AEPRRZ3S").is_ok());
        assert!(PassTicket::parse("uRp3z1D-").is_ok());
        assert!(PassTicket::parse("AEPRRZ3").is_err());
        assert!(PassTicket::parse("AEPRRZ3S9").is_err());
        assert!(PassTicket::parse("AEPR RZ3").is_err());
        assert_eq!(
            format!("{:?}", PassTicket::parse("AEPRRZ3S").unwrap()),
            "PassTicket(<redacted>)"
        );
    }
}
