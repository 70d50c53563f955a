//! EBCDIC code page 1047 (Latin-1/Open Systems) conversion.
//!
//! Host protocols carry character fields in EBCDIC, blank-padded to fixed widths
//! (spec: protocol-specs/framing.md §EBCDIC). CP1047 is a permutation of the 256
//! ISO-8859-1 code points, so conversion is a pair of 256-byte tables and never fails
//! for Latin-1 text.
//!
//! Control characters follow IBM's CDRA mapping (the one ICU ships as
//! `ibm-1047_P100-1995`): X'15' is NEL (U+0085) and X'25' is LF (U+000A). Some
//! runtimes (the JDK's `IBM1047`, z/OS UNIX) swap those two; no zgate field carries
//! control characters, so the choice only matters for tests against other tables.

/// The EBCDIC blank, X'40', used to pad fixed-width fields.
pub const EBCDIC_BLANK: u8 = 0x40;

/// EBCDIC CP1047 byte → ISO-8859-1 code point (which equals the Unicode scalar value).
const TO_LATIN1: [u8; 256] = [
    0x00, 0x01, 0x02, 0x03, 0x9C, 0x09, 0x86, 0x7F, 0x97, 0x8D, 0x8E, 0x0B, 0x0C, 0x0D, 0x0E,
    0x0F, // 00
    0x10, 0x11, 0x12, 0x13, 0x9D, 0x85, 0x08, 0x87, 0x18, 0x19, 0x92, 0x8F, 0x1C, 0x1D, 0x1E,
    0x1F, // 10
    0x80, 0x81, 0x82, 0x83, 0x84, 0x0A, 0x17, 0x1B, 0x88, 0x89, 0x8A, 0x8B, 0x8C, 0x05, 0x06,
    0x07, // 20
    0x90, 0x91, 0x16, 0x93, 0x94, 0x95, 0x96, 0x04, 0x98, 0x99, 0x9A, 0x9B, 0x14, 0x15, 0x9E,
    0x1A, // 30
    0x20, 0xA0, 0xE2, 0xE4, 0xE0, 0xE1, 0xE3, 0xE5, 0xE7, 0xF1, 0xA2, 0x2E, 0x3C, 0x28, 0x2B,
    0x7C, // 40
    0x26, 0xE9, 0xEA, 0xEB, 0xE8, 0xED, 0xEE, 0xEF, 0xEC, 0xDF, 0x21, 0x24, 0x2A, 0x29, 0x3B,
    0x5E, // 50
    0x2D, 0x2F, 0xC2, 0xC4, 0xC0, 0xC1, 0xC3, 0xC5, 0xC7, 0xD1, 0xA6, 0x2C, 0x25, 0x5F, 0x3E,
    0x3F, // 60
    0xF8, 0xC9, 0xCA, 0xCB, 0xC8, 0xCD, 0xCE, 0xCF, 0xCC, 0x60, 0x3A, 0x23, 0x40, 0x27, 0x3D,
    0x22, // 70
    0xD8, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0xAB, 0xBB, 0xF0, 0xFD, 0xFE,
    0xB1, // 80
    0xB0, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F, 0x70, 0x71, 0x72, 0xAA, 0xBA, 0xE6, 0xB8, 0xC6,
    0xA4, // 90
    0xB5, 0x7E, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0xA1, 0xBF, 0xD0, 0x5B, 0xDE,
    0xAE, // A0
    0xAC, 0xA3, 0xA5, 0xB7, 0xA9, 0xA7, 0xB6, 0xBC, 0xBD, 0xBE, 0xDD, 0xA8, 0xAF, 0x5D, 0xB4,
    0xD7, // B0
    0x7B, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0xAD, 0xF4, 0xF6, 0xF2, 0xF3,
    0xF5, // C0
    0x7D, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F, 0x50, 0x51, 0x52, 0xB9, 0xFB, 0xFC, 0xF9, 0xFA,
    0xFF, // D0
    0x5C, 0xF7, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0xB2, 0xD4, 0xD6, 0xD2, 0xD3,
    0xD5, // E0
    0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0xB3, 0xDB, 0xDC, 0xD9, 0xDA,
    0x9F, // F0
];

/// ISO-8859-1 code point → EBCDIC CP1047 byte: the inverse of [`TO_LATIN1`], built at compile time.
const FROM_LATIN1: [u8; 256] = invert(&TO_LATIN1);

const fn invert(table: &[u8; 256]) -> [u8; 256] {
    let mut out = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        out[table[i] as usize] = i as u8;
        i += 1;
    }
    out
}

/// Converts one EBCDIC byte to its character.
#[inline]
pub fn to_char(byte: u8) -> char {
    char::from(TO_LATIN1[byte as usize])
}

/// Converts one character to EBCDIC, or `None` if it is outside ISO-8859-1.
#[inline]
pub fn from_char(c: char) -> Option<u8> {
    u8::try_from(u32::from(c))
        .ok()
        .map(|latin1| FROM_LATIN1[latin1 as usize])
}

/// Decodes EBCDIC bytes to a `String` (every byte has a character).
pub fn decode(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| to_char(b)).collect()
}

/// Decodes a blank-padded fixed-width EBCDIC field, dropping trailing blanks.
pub fn decode_padded(bytes: &[u8]) -> String {
    let end = bytes
        .iter()
        .rposition(|&b| b != EBCDIC_BLANK)
        .map_or(0, |last| last + 1);
    decode(&bytes[..end])
}

/// Encodes `text` into `out`, left-justified and blank-padded to `out.len()`.
///
/// Returns `None` (and leaves `out` unspecified) if `text` is longer than the field
/// or holds a character outside ISO-8859-1.
pub fn encode_padded(text: &str, out: &mut [u8]) -> Option<()> {
    out.fill(EBCDIC_BLANK);
    for (i, c) in text.chars().enumerate() {
        *out.get_mut(i)? = from_char(c)?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_inverse_permutations() {
        for b in 0..=255u8 {
            assert_eq!(from_char(to_char(b)), Some(b));
        }
    }

    #[test]
    fn racf_name_characters() {
        // IBM: A-I C1-C9, J-R D1-D9, S-Z E2-E9, 0-9 F0-F9, blank 40, @ 7C, # 7B, $ 5B.
        let expect = [
            ('A', 0xC1),
            ('I', 0xC9),
            ('J', 0xD1),
            ('R', 0xD9),
            ('S', 0xE2),
            ('Z', 0xE9),
            ('0', 0xF0),
            ('9', 0xF9),
            (' ', 0x40),
            ('@', 0x7C),
            ('#', 0x7B),
            ('$', 0x5B),
        ];
        for (c, b) in expect {
            assert_eq!(from_char(c), Some(b), "{c}");
        }
    }

    #[test]
    fn padded_round_trip() {
        let mut field = [0u8; 8];
        encode_padded("HOSTUSR", &mut field).unwrap();
        assert_eq!(field, [0xC8, 0xD6, 0xE2, 0xE3, 0xE4, 0xE2, 0xD9, 0x40]);
        assert_eq!(decode_padded(&field), "HOSTUSR");
        assert!(encode_padded("TOOLONGNAME", &mut field).is_none());
        assert!(encode_padded("€", &mut field).is_none());
    }
}

#[cfg(test)]
mod published_tables {
    use super::to_char;

    fn table(name: &str) -> Vec<(u8, u32)> {
        let path = format!("{}/testdata/ebcdic/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (e, u) = l.split_once(' ').unwrap();
                (
                    u8::from_str_radix(e, 16).unwrap(),
                    u32::from_str_radix(u, 16).unwrap(),
                )
            })
            .collect()
    }

    /// OpenJDK's IBM1047 agrees everywhere but the NL/LF pair it swaps.
    #[test]
    fn agrees_with_openjdk_ibm1047() {
        let t = table("ibm1047-openjdk17.txt");
        assert_eq!(t.len(), 256);
        for (e, u) in t {
            let ours = u32::from(to_char(e));
            match e {
                0x15 => assert_eq!((ours, u), (0x85, 0x0A)),
                0x25 => assert_eq!((ours, u), (0x0A, 0x85)),
                _ => assert_eq!(ours, u, "byte {e:02X}"),
            }
        }
    }

    /// Python's cp037 differs from 1047 in exactly IBM's six positions.
    #[test]
    fn differs_from_python_cp037_only_where_1047_does() {
        let t = table("cp037-python311.txt");
        assert_eq!(t.len(), 256);
        let differing: Vec<u8> = t
            .iter()
            .filter(|(e, u)| u32::from(to_char(*e)) != *u)
            .map(|(e, _)| *e)
            .collect();
        assert_eq!(differing, [0x5F, 0xAD, 0xB0, 0xBA, 0xBB, 0xBD]);
        // And in those, 1047 has ^ [ ¬ Ý ¨ ].
        let chars: String = differing.iter().map(|&e| to_char(e)).collect();
        assert_eq!(chars, "^[¬Ý¨]");
    }
}
