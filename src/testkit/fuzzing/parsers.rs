//! Text an operator or a peer controls: id and name parsers, hex keys, and the TOML
//! configurations of the emulated systems (parsed, then built with test keys).
//!
//! The first byte picks the parser, the rest is the text (lossy UTF-8). Invariants:
//! nothing panics; what parses prints back to text that parses to the same value; a
//! bad key's error never contains the key's text.

use super::Reached;

/// Runs one parser on the input.
pub fn run(data: &[u8]) -> Reached {
    let mut reached = Reached::new();
    let Some((&which, rest)) = data.split_first() else {
        return reached;
    };
    let text = String::from_utf8_lossy(rest);
    let text = text.as_ref();
    let env = |var: &str| match var {
        "ZGATE_ZOS_LEGACY_KEY" => Some("0123456789ABCDEF".to_string()),
        "ZGATE_ZOS_ENHANCED_KEY" | "ZGATE_ZTPF_ENHANCED_KEY" => {
            Some("00112233445566778899AABBCCDDEEFF".repeat(2))
        }
        _ => None,
    };
    match which % 9 {
        0 => {
            if let Ok(id) = crate::ds8k::StorageImageId::parse(text) {
                let again = crate::ds8k::StorageImageId::parse(&id.to_string());
                assert_eq!(again.as_ref().ok(), Some(&id), "{id} does not parse back");
                reached.insert("storage_image_id");
            }
        }
        1 => {
            if let Ok(v) = crate::ds8k::VolumeId::parse(text) {
                assert_eq!(crate::ds8k::VolumeId::parse(&v.to_string()).ok(), Some(v));
                reached.insert("volume_id");
            }
        }
        2 => {
            if let Ok(name) = crate::passticket::RacfName::parse("fuzz", text) {
                let again = crate::passticket::RacfName::parse("fuzz", name.as_str());
                assert_eq!(again.ok(), Some(name), "RACF name does not parse back");
                reached.insert("racf_name");
            }
        }
        3 => {
            if let Ok(ticket) = crate::passticket::PassTicket::parse(text) {
                assert_eq!(
                    crate::passticket::PassTicket::parse(ticket.as_str()).ok(),
                    Some(ticket)
                );
                reached.insert("passticket");
            }
        }
        4 => {
            // spec: passticket.md §1: keys are never echoed, not even in part. The
            // error may depend on the key's length and on which characters are hex
            // digits or blanks, nothing else: a key masked that way must give the same error.
            // (Comparing with the masked key, not searching for the text, so that a
            // key that happens to spell part of the message is not a false alarm.)
            // Masked byte for byte: hex digits stay hex, blanks stay blanks, anything
            // else becomes as many non-hex bytes as it takes.
            let masked: String = text
                .chars()
                .map(|c| match c {
                    c if c.is_ascii_hexdigit() => "A".to_owned(),
                    c if c.is_whitespace() => c.to_string(),
                    c => "Z".repeat(c.len_utf8()),
                })
                .collect();
            let errors = |t: &str| {
                (
                    crate::passticket::LegacyKey::from_hex(t)
                        .err()
                        .map(|e| e.to_string()),
                    crate::passticket::EnhancedKey::from_hex(t)
                        .err()
                        .map(|e| e.to_string()),
                )
            };
            let (real, probe) = (errors(text), errors(&masked));
            assert_eq!(real, probe, "a key error depends on the key's text");
            reached.insert("key");
        }
        5 => {
            if let Ok(cfg) = toml::from_str::<crate::peer::zos::ZosPeerConfig>(text) {
                reached.insert("zos_config");
                if crate::sim::zos::ZosSystem::with_keys(&cfg.system, env).is_ok() {
                    reached.insert("zos_system");
                }
            }
        }
        6 => {
            if let Ok(cfg) = toml::from_str::<crate::peer::ztpf::ZtpfPeerConfig>(text) {
                reached.insert("ztpf_config");
                if crate::sim::ztpf::ZtpfSystem::with_keys(&cfg.system, env).is_ok() {
                    reached.insert("ztpf_system");
                }
            }
        }
        7 => {
            if let Ok(cfg) = toml::from_str::<crate::peer::ds8k::Ds8kServiceConfig>(text) {
                reached.insert("ds8k_config");
                if crate::sim::hmc::Ds8kSystem::with_keys(&cfg.system, env).is_ok() {
                    reached.insert("ds8k_system");
                }
            }
        }
        _ => {
            if let Ok(e) = crate::codec::fields::Ebcdic::<16>::new(text) {
                let mut out = bytes::BytesMut::new();
                e.put(&mut out);
                assert_eq!(out.len(), 16);
                let mut r = crate::codec::fields::FieldReader::new("fuzz", &out);
                assert_eq!(
                    r.ebcdic::<16>("text").ok(),
                    Some(e),
                    "EBCDIC text does not round-trip"
                );
                reached.insert("ebcdic");
            }
        }
    }
    reached
}
