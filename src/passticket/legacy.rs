//! The legacy (DES) PassTicket generator, and its inverse.
//!
//! Spec: protocol-specs/passticket.md §2, from IBM's "z/OS Security Server RACF
//! Macros and Interfaces", *The PassTicket generator algorithm*, and z/VM RACF's
//! *How the Time-Coder Algorithm Works* / *The Permutation Tables*.
//!
//! A ticket costs exactly 8 DES block encryptions: two for the user/application
//! digest (steps 1–2) and one per time-coder round (step 5). The key schedule is
//! built once per [`LegacyGenerator`].

use des::Des;
use des::cipher::{Array, BlockCipherEncrypt, KeyInit};

use super::{LegacyKey, PassTicket, RacfName};

/// Step 6 alphabet: index 0 is `A`, 25 is `Z`, 26 is `0`, 35 is `9`.
pub const ALPHABET: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// Time-coder permutation tables T1..T6 (z/VM RACF, *The Permutation Tables*):
/// bit `j` (1 = most significant) of the output is bit `T[j-1]` of the input.
const PERMUTATIONS: [[u8; 16]; 6] = [
    [10, 2, 12, 4, 14, 6, 16, 8, 9, 1, 11, 3, 13, 5, 15, 7],
    [1, 10, 3, 12, 13, 16, 7, 15, 9, 2, 11, 4, 5, 14, 8, 6],
    [3, 10, 1, 12, 13, 16, 9, 15, 7, 2, 14, 4, 5, 11, 8, 6],
    [10, 4, 12, 2, 14, 8, 16, 6, 9, 1, 13, 3, 11, 5, 15, 7],
    [4, 10, 12, 1, 8, 16, 14, 5, 9, 2, 13, 3, 11, 7, 15, 6],
    [1, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2],
];

/// A 16-bit permutation as two byte-indexed lookup tables: `hi[x >> 8] | lo[x & 0xFF]`.
struct BitPermutation {
    hi: [u16; 256],
    lo: [u16; 256],
}

impl BitPermutation {
    /// `inverse = false`: output bit j takes input bit t[j]. `inverse = true`: the reverse map.
    const fn new(t: &[u8; 16], inverse: bool) -> Self {
        let mut hi = [0u16; 256];
        let mut lo = [0u16; 256];
        let mut byte = 0;
        while byte < 256 {
            let mut j = 0;
            while j < 16 {
                // Bits numbered 1..16 from the MSB; `from`/`to` are 0-based from the MSB.
                let (from, to) = if inverse {
                    (j, t[j] as usize - 1)
                } else {
                    (t[j] as usize - 1, j)
                };
                let out_bit = 1u16 << (15 - to);
                if from < 8 {
                    if byte & (0x80 >> from) != 0 {
                        hi[byte] |= out_bit;
                    }
                } else if byte & (0x80 >> (from - 8)) != 0 {
                    lo[byte] |= out_bit;
                }
                j += 1;
            }
            byte += 1;
        }
        BitPermutation { hi, lo }
    }

    #[inline]
    fn apply(&self, x: u16) -> u16 {
        self.hi[usize::from(x >> 8)] | self.lo[usize::from(x & 0xFF)]
    }
}

const fn permutation_set(inverse: bool) -> [BitPermutation; 6] {
    [
        BitPermutation::new(&PERMUTATIONS[0], inverse),
        BitPermutation::new(&PERMUTATIONS[1], inverse),
        BitPermutation::new(&PERMUTATIONS[2], inverse),
        BitPermutation::new(&PERMUTATIONS[3], inverse),
        BitPermutation::new(&PERMUTATIONS[4], inverse),
        BitPermutation::new(&PERMUTATIONS[5], inverse),
    ]
}

static FORWARD: [BitPermutation; 6] = permutation_set(false);
static BACKWARD: [BitPermutation; 6] = permutation_set(true);

/// Reverse map of [`ALPHABET`]: ASCII byte → index, or 0xFF.
static ALPHABET_INDEX: [u8; 256] = {
    let mut t = [0xFFu8; 256];
    let mut i = 0;
    while i < 36 {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// A legacy PassTicket generator holding one key's DES key schedule.
pub struct LegacyGenerator {
    cipher: Des,
}

/// The per-(user, application) part of the algorithm: steps 1–3 and the time-coder pads.
struct UserApplDigest {
    /// Result-3: leftmost 4 bytes of Result-2.
    r3: u32,
    /// PAD1 (rounds 1, 3, 5) and PAD2 (rounds 2, 4, 6).
    pads: [[u8; 6]; 2],
}

impl LegacyGenerator {
    /// Builds the DES key schedule for `key`.
    pub fn new(key: &LegacyKey) -> Self {
        LegacyGenerator {
            cipher: Des::new(&Array::from(*key.bytes())),
        }
    }

    #[inline]
    fn encrypt(&self, block: [u8; 8]) -> [u8; 8] {
        let mut b = Array::from(block);
        self.cipher.encrypt_block(&mut b);
        b.into()
    }

    /// Steps 1–3 (2 DES blocks) and the PAD of step 5A.
    fn digest(&self, user: &RacfName, appl: &RacfName) -> UserApplDigest {
        let user8 = user.ebcdic8();
        // Step 1: Result-1 = E_K(user ID).
        let r1 = self.encrypt(user8);
        // Step 2: Result-2 = E_K(Result-1 XOR application name).
        let mut x = appl.ebcdic8();
        for (a, b) in x.iter_mut().zip(r1) {
            *a ^= b;
        }
        let r2 = self.encrypt(x);
        // Step 3: Result-3 = leftmost 4 bytes.
        let r3 = u32::from_be_bytes([r2[0], r2[1], r2[2], r2[3]]);
        // Step 5A: PAD = user ID at its real length, then X'55' to 12 bytes.
        let mut pad = [0x55u8; 12];
        pad[..user.len()].copy_from_slice(&user8[..user.len()]);
        let mut pads = [[0u8; 6]; 2];
        pads[0].copy_from_slice(&pad[..6]);
        pads[1].copy_from_slice(&pad[6..]);
        UserApplDigest { r3, pads }
    }

    /// First two bytes of E_K(half ‖ PAD(round)): the round function of step 5.
    #[inline]
    fn round_function(&self, half: u16, pad: &[u8; 6]) -> u16 {
        let [h0, h1] = half.to_be_bytes();
        let c = self.encrypt([h0, h1, pad[0], pad[1], pad[2], pad[3], pad[4], pad[5]]);
        u16::from_be_bytes([c[0], c[1]])
    }

    /// Generates the ticket for `time` (seconds since the epoch; taken mod 2^32, the
    /// algorithm's 4-byte time field).
    pub fn generate(&self, user: &RacfName, appl: &RacfName, time: u64) -> PassTicket {
        let d = self.digest(user, appl);
        // Step 4: Result-4 = Result-3 XOR time (4 bytes, big-endian, right-aligned).
        let r4 = d.r3 ^ (time as u32);
        // Step 5: the time-coder, six Feistel rounds on 2 + 2 bytes.
        let (mut left, mut right) = ((r4 >> 16) as u16, r4 as u16);
        for (round, permutation) in FORWARD.iter().enumerate() {
            let e = self.round_function(right, &d.pads[round % 2]) ^ left;
            left = right;
            right = permutation.apply(e);
        }
        let r5 = (u32::from(left) << 16) | u32::from(right);
        PassTicket::from_chars(translate(r5))
    }

    /// Recovers the time (mod 2^32) a ticket was generated for, or `None` if the ticket
    /// is not an output of step 6 at all. Costs 8 DES blocks.
    ///
    /// Every 32-bit time gives exactly one Result-5 and one ticket, so
    /// `generate(u, a, t) == ticket` exactly when `decode_time(u, a, ticket) == Some(t mod 2^32)`.
    pub fn decode_time(
        &self,
        user: &RacfName,
        appl: &RacfName,
        ticket: &PassTicket,
    ) -> Option<u32> {
        let r5 = untranslate(ticket.as_bytes())?;
        let d = self.digest(user, appl);
        let (mut left, mut right) = ((r5 >> 16) as u16, r5 as u16);
        for round in (0..6).rev() {
            // Forward: left' = right, right' = P(F(right) ^ left).
            let e = BACKWARD[round].apply(right);
            let prev_right = left;
            let prev_left = e ^ self.round_function(prev_right, &d.pads[round % 2]);
            left = prev_left;
            right = prev_right;
        }
        let r4 = (u32::from(left) << 16) | u32::from(right);
        Some(r4 ^ d.r3)
    }
}

/// Step 6: Result-5 (bits 1..32 from the MSB, wrapping) → 8 characters.
///
/// Character k takes the six bits starting at bit 4k−5, which is the last two bits
/// of nibble k−1 (nibble 0 being nibble 8) followed by nibble k; the value mod 36
/// indexes [`ALPHABET`].
fn translate(r5: u32) -> [u8; 8] {
    // Nibble i (0-based) holds bits 4i+1..4i+4.
    let nibble = |i: usize| ((r5 >> (28 - 4 * i)) & 0xF) as u8;
    let mut out = [0u8; 8];
    for (k, o) in out.iter_mut().enumerate() {
        let v = ((nibble((k + 7) % 8) & 0x3) << 4) | nibble(k);
        *o = ALPHABET[usize::from(v % 36)];
    }
    out
}

/// Inverse of [`translate`]. Each character c stands for the 6-bit value c or c + 36;
/// the top two bits must repeat the low two bits of the previous nibble (and c + 36
/// always differs from c there), so at most one Result-5 fits.
fn untranslate(chars: &[u8; 8]) -> Option<u32> {
    let mut idx = [0u8; 8];
    for (i, &c) in idx.iter_mut().zip(chars) {
        *i = ALPHABET_INDEX[usize::from(c)];
        if *i == 0xFF {
            return None;
        }
    }
    let mut r5 = 0u32;
    for k in 0..8 {
        // The low two bits of a value do not change by adding 36.
        let want_top = idx[(k + 7) % 8] & 0x3;
        let c = idx[k];
        let v = if c >> 4 == want_top {
            c
        } else if c + 36 < 64 && (c + 36) >> 4 == want_top {
            c + 36
        } else {
            return None;
        };
        r5 = (r5 << 4) | u32::from(v & 0xF);
    }
    Some(r5)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> RacfName {
        RacfName::parse("test", s).unwrap()
    }

    /// Worked example L01 (SystemWerx PassGen unit test), with the intermediate values
    /// listed in protocol-specs/passticket.md §2.
    #[test]
    fn published_vector_and_intermediates() {
        let key = LegacyKey::from_hex("E001193519561977").unwrap();
        let g = LegacyGenerator::new(&key);
        let d = g.digest(&name("MIKEM"), &name("TSOSYS1"));
        assert_eq!(d.r3, 0x6950_FDAA);
        assert_eq!(d.pads, [[0xD4, 0xC9, 0xD2, 0xC5, 0xD4, 0x55], [0x55; 6]]);
        assert_eq!(g.round_function(0x09ED, &d.pads[0]), 0xF354);
        assert_eq!(translate(0x44F5_19D2), *b"AEPRRZ3S");
        assert_eq!(
            g.generate(&name("MIKEM"), &name("TSOSYS1"), 1_111_111)
                .as_str(),
            "AEPRRZ3S"
        );
    }

    #[test]
    fn permutation_tables_invert() {
        for round in 0..6 {
            for x in [0u16, 1, 0x8000, 0x1234, 0xFFFF, 0xA5C3] {
                assert_eq!(BACKWARD[round].apply(FORWARD[round].apply(x)), x);
            }
        }
        // T6 keeps bit 1 and reverses bits 2..16.
        assert_eq!(FORWARD[5].apply(0x8001), 0xC000);
    }

    #[test]
    fn translate_round_trips_every_nibble_pattern() {
        for r5 in [0u32, 1, 0xFFFF_FFFF, 0x44F5_19D2, 0x8000_0000, 0x1234_5678] {
            assert_eq!(untranslate(&translate(r5)), Some(r5));
        }
        assert_eq!(untranslate(b"AAAAAAA!"), None);
    }

    #[test]
    fn decode_recovers_time() {
        let g = LegacyGenerator::new(&LegacyKey::from_hex("0123456789ABCDEF").unwrap());
        let (u, a) = (name("HOSTUSR"), name("IOSHMCSM"));
        for t in [0u64, 1, 1_700_000_000, u64::from(u32::MAX), (1 << 32) + 5] {
            let ticket = g.generate(&u, &a, t);
            assert_eq!(g.decode_time(&u, &a, &ticket), Some(t as u32));
        }
    }
}
