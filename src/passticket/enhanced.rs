//! The enhanced (HMAC-SHA-512) PassTicket generator, and its inverse.
//!
//! Spec: protocol-specs/passticket.md §3, from IBM's *EnhancedPassTicketsGenerator*
//! sample (© IBM 2020, 2021), which implements the algorithm documented in "z/OS
//! Security Server RACF Macros and Interfaces" (z/OS 2.4 and later).
//!
//! A ticket costs exactly 7 HMAC-SHA-512 operations: one over the user ID and
//! application name, one per time-coder round. The HMAC key schedule (the inner and
//! outer padded-key states) is computed once per [`EnhancedGenerator`] and cloned
//! for each operation.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha512;

use super::{EnhancedKey, PassTicket, RacfName, TicketType};

/// Step 6 alphabet. `Upper` tickets use the first 36 characters, `Mixed` all 64.
pub const ALPHABET: &[u8; 64] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";

/// Reverse map of [`ALPHABET`]: ASCII byte → index, or 0xFF.
static ALPHABET_INDEX: [u8; 256] = {
    let mut t = [0xFFu8; 256];
    let mut i = 0;
    while i < 64 {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// Largest time an `Upper` ticket can carry is 2^41 − 1: rounds 1, 3 and 5 keep only
/// the low bit of their first byte, so the top 7 bits of the 48-bit time are lost.
pub const UPPER_TIME_BITS: u32 = 41;

/// Steps 1 and 2 for one user and application: `UA` and `H = HMAC(UA)`. Both depend
/// only on the key and the pair, so an evaluator that keeps them per pair spends six
/// HMAC operations per ticket instead of seven. Key-derived: zeroized on drop.
#[derive(Clone, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct PreparedPair {
    ua: [u8; 16],
    h: [u8; 64],
}

impl std::fmt::Debug for PreparedPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreparedPair(<redacted>)")
    }
}

/// An enhanced PassTicket generator for one key and ticket type.
pub struct EnhancedGenerator {
    keyed: Hmac<Sha512>,
    ticket_type: TicketType,
}

impl EnhancedGenerator {
    /// Computes the keyed HMAC state for `key`.
    pub fn new(key: &EnhancedKey, ticket_type: TicketType) -> Self {
        // Any key length is valid for HMAC; `EnhancedKey` already enforces 32..=256.
        let keyed = match <Hmac<Sha512> as KeyInit>::new_from_slice(key.bytes()) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of every length"),
        };
        EnhancedGenerator { keyed, ticket_type }
    }

    /// The ticket type this generator produces.
    pub fn ticket_type(&self) -> TicketType {
        self.ticket_type
    }

    /// HMAC-SHA-512 over the concatenation of `parts`, from the cached keyed state.
    #[inline]
    fn hmac(&self, parts: &[&[u8]]) -> [u8; 64] {
        let mut mac = self.keyed.clone();
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    /// Step 1: the 16 bytes user ID ‖ application name, EBCDIC, blank-padded.
    fn user_appl(user: &RacfName, appl: &RacfName) -> [u8; 16] {
        let mut ua = [0u8; 16];
        ua[..8].copy_from_slice(&user.ebcdic8());
        ua[8..].copy_from_slice(&appl.ebcdic8());
        ua
    }

    /// Round function of step 5: first 3 bytes of HMAC(R3B ‖ round ‖ UA).
    #[inline]
    fn round_function(&self, half: &[u8; 3], round: u8, ua: &[u8; 16]) -> [u8; 3] {
        let f = self.hmac(&[half, &[round], ua]);
        [f[0], f[1], f[2]]
    }

    /// Steps 1 and 2 for `user` on `appl` (one HMAC operation).
    pub fn prepare(&self, user: &RacfName, appl: &RacfName) -> PreparedPair {
        let ua = Self::user_appl(user, appl);
        // Step 2: H = HMAC(UA).
        let h = self.hmac(&[&ua]);
        PreparedPair { ua, h }
    }

    /// Generates the ticket for `time`, seconds since the epoch (taken mod 2^48, the
    /// algorithm's 6-byte time field).
    pub fn generate(&self, user: &RacfName, appl: &RacfName, time: u64) -> PassTicket {
        self.generate_prepared(&self.prepare(user, appl), time)
    }

    /// [`Self::generate`] for a pair already prepared (six HMAC operations).
    pub fn generate_prepared(&self, pair: &PreparedPair, time: u64) -> PassTicket {
        let (ua, h) = (&pair.ua, &pair.h);
        // Steps 3-4: X = time (6 bytes, big-endian) XOR H[0..6].
        let t = time.to_be_bytes();
        let mut x = [0u8; 6];
        for i in 0..6 {
            x[i] = t[i + 2] ^ h[i];
        }
        // Step 5: six Feistel rounds on 3 + 3 bytes.
        let mut left = [x[0], x[1], x[2]];
        let mut right = [x[3], x[4], x[5]];
        for round in 1..=6u8 {
            let f = self.round_function(&right, round, ua);
            let mut e = [left[0] ^ f[0], left[1] ^ f[1], left[2] ^ f[2]];
            if self.ticket_type == TicketType::Upper && round % 2 == 1 {
                e[0] &= 0x01;
            }
            left = right;
            right = e;
        }
        // Step 6: the 48-bit result in 8 base-36 or base-64 digits, most significant first.
        let mut v = u64::from_be_bytes([
            0, 0, left[0], left[1], left[2], right[0], right[1], right[2],
        ]);
        let base = self.base();
        let mut out = [0u8; 8];
        for o in out.iter_mut().rev() {
            *o = ALPHABET[(v % base) as usize];
            v /= base;
        }
        PassTicket::from_chars(out)
    }

    fn base(&self) -> u64 {
        match self.ticket_type {
            TicketType::Upper => 36,
            TicketType::Mixed => 64,
        }
    }

    /// Recovers the time a ticket was generated for, or `None` if the ticket is not an
    /// output of this ticket type. Costs 7 HMAC operations.
    ///
    /// `Mixed` recovers the 48-bit time; `Upper` recovers it mod 2^41 (see
    /// [`UPPER_TIME_BITS`]), which is the whole time until the year 71,700.
    pub fn decode_time(
        &self,
        user: &RacfName,
        appl: &RacfName,
        ticket: &PassTicket,
    ) -> Option<u64> {
        self.decode_time_prepared(&self.prepare(user, appl), ticket)
    }

    /// [`Self::decode_time`] for a pair already prepared (six HMAC operations).
    pub fn decode_time_prepared(&self, pair: &PreparedPair, ticket: &PassTicket) -> Option<u64> {
        let base = self.base();
        let mut v: u64 = 0;
        for &c in ticket.as_bytes() {
            let digit = u64::from(ALPHABET_INDEX[usize::from(c)]);
            if digit >= base {
                return None;
            }
            v = v * base + digit;
        }
        if v >> 48 != 0 || (self.ticket_type == TicketType::Upper && v >> UPPER_TIME_BITS != 0) {
            return None;
        }
        let b = v.to_be_bytes();
        let (ua, h) = (&pair.ua, &pair.h);
        let (mut left, mut right) = ([b[2], b[3], b[4]], [b[5], b[6], b[7]]);
        for round in (1..=6u8).rev() {
            // Forward: left' = right, right' = mask(left ^ F(right)).
            let prev_right = left;
            let f = self.round_function(&prev_right, round, ua);
            let mut prev_left = [right[0] ^ f[0], right[1] ^ f[1], right[2] ^ f[2]];
            if self.ticket_type == TicketType::Upper && round % 2 == 1 {
                // The mask dropped the top 7 bits of prev_left[0]. For rounds 3 and 5,
                // prev_left is the output of an earlier masked round, so they were zero;
                // for round 1 it is X[0] = T[0] ^ H[0] with T[0] < 2 (time < 2^41).
                let known_top = if round == 1 { h[0] & 0xFE } else { 0 };
                prev_left[0] = known_top | (prev_left[0] & 0x01);
            }
            left = prev_left;
            right = prev_right;
        }
        let x = [left[0], left[1], left[2], right[0], right[1], right[2]];
        let mut t = [0u8; 8];
        for i in 0..6 {
            t[i + 2] = x[i] ^ h[i];
        }
        Some(u64::from_be_bytes(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> RacfName {
        RacfName::parse("test", s).unwrap()
    }

    fn key64() -> EnhancedKey {
        EnhancedKey::from_hex(&"00112233445566778899AABBCCDDEEFF".repeat(4)).unwrap()
    }

    /// Vectors E01 and E02 (protocol-specs/passticket.md §3.4 worked example).
    #[test]
    fn worked_example_both_types() {
        let (u, a) = (name("IBMUSER"), name("IOSHMCSM"));
        let mixed = EnhancedGenerator::new(&key64(), TicketType::Mixed);
        assert_eq!(mixed.generate(&u, &a, 1_700_000_000).as_str(), "uRp3z1Dm");
        let h = mixed.hmac(&[&EnhancedGenerator::user_appl(&u, &a)]);
        assert_eq!(h[..6], [0x41, 0x9F, 0x4C, 0x42, 0x4D, 0xAF]);
        let upper = EnhancedGenerator::new(&key64(), TicketType::Upper);
        assert_eq!(upper.generate(&u, &a, 1_700_000_000).as_str(), "E9QEUZOI");
    }

    #[test]
    fn decode_recovers_time() {
        let (u, a) = (name("HOSTUSR"), name("IOSHMCSM"));
        for tt in [TicketType::Upper, TicketType::Mixed] {
            let g = EnhancedGenerator::new(&key64(), tt);
            for t in [0u64, 1, 1_700_000_000, u64::from(u32::MAX), (1 << 41) - 1] {
                let ticket = g.generate(&u, &a, t);
                assert_eq!(g.decode_time(&u, &a, &ticket), Some(t), "{tt} {t}");
            }
        }
    }

    #[test]
    fn upper_refuses_lower_case_and_large_values() {
        let g = EnhancedGenerator::new(&key64(), TicketType::Upper);
        let (u, a) = (name("HOSTUSR"), name("IOSHMCSM"));
        assert_eq!(
            g.decode_time(&u, &a, &PassTicket::parse("abcdefgh").unwrap()),
            None
        );
        // ZZZZZZZZ = 36^8 - 1 > 2^41.
        assert_eq!(
            g.decode_time(&u, &a, &PassTicket::parse("ZZZZZZZZ").unwrap()),
            None
        );
    }
}
