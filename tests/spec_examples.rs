//! Every hex example in `protocol-specs/*.md` is decoded by the code, and re-encoded
//! byte for byte, so that a page and the code cannot drift apart. The examples are
//! written by hand from the pages: they are the independent check that the golden
//! `ok_*` frames (generated from the code's own examples) cannot be.
//!
//! An example is a fenced block whose hex lines (every token two hex digits; `|`
//! separates columns) start with the frame magic `E9 C7`. Lines of other words
//! (column labels) are skipped. A block may hold several frames.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::BytesMut;
use tokio_util::codec::Decoder;
use zgate::codec::frame::{Frame, FrameCodec, ProtocolId};
use zgate::passticket::{EnhancedGenerator, EnhancedKey, RacfName, TicketType};
use zgate::proto::csm::CsmMessage;
use zgate::proto::ds8k::Ds8kMessage;
use zgate::proto::logon::{CredentialKind, LogonRequest};
use zgate::proto::zos::ZosMessage;
use zgate::proto::ztpf::ZtpfMessage;
use zgate::proto::{Control, Payload};

/// One example: where it is and its bytes.
struct Example {
    place: String,
    bytes: Vec<u8>,
}

fn hex_line(line: &str) -> Option<Vec<u8>> {
    let tokens: Vec<&str> = line.split_whitespace().filter(|t| *t != "|").collect();
    if tokens.is_empty() {
        return None;
    }
    tokens
        .iter()
        .map(|t| {
            (t.len() == 2)
                .then(|| u8::from_str_radix(t, 16).ok())
                .flatten()
        })
        .collect()
}

/// The page whose hex example is not a frame: audit.md's canonical bytes are checked
/// by `src/policy/audit.rs` (`the_pages_example_is_the_codes_hash`).
const NOT_FRAMES: &str = "audit.md";

fn examples() -> Vec<Example> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/protocol-specs");
    let mut out = Vec::new();
    let mut pages: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .filter(|p| !p.ends_with(NOT_FRAMES))
        .collect();
    pages.sort();
    for page in pages {
        let text = std::fs::read_to_string(&page).unwrap();
        let name = page.file_name().unwrap().to_string_lossy().to_string();
        let mut block: Option<(usize, Vec<u8>)> = None;
        for (i, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                match block.take() {
                    None => block = Some((i + 1, Vec::new())),
                    Some((start, bytes)) => {
                        if bytes.len() >= 2 {
                            out.push(Example {
                                place: format!("{name}:{start}"),
                                bytes,
                            });
                        }
                    }
                }
                continue;
            }
            if let Some((_, bytes)) = block.as_mut()
                && let Some(b) = hex_line(line)
            {
                bytes.extend(b);
            }
        }
    }
    out
}

/// Decodes one frame's message for its protocol and re-encodes it; returns the bytes
/// and the logon request, if the frame is one.
fn round_trip(frame: &Frame) -> Result<(Vec<u8>, Option<LogonRequest>), String> {
    let mut out = BytesMut::new();
    let logon = match frame.header.protocol {
        ProtocolId::ZOS => {
            let m = ZosMessage::decode(frame).map_err(|e| e.to_string())?;
            m.encode(&mut out);
            match m.body {
                Payload::Control(Control::LogonRequest(l)) => Some(l),
                _ => None,
            }
        }
        ProtocolId::ZTPF => {
            let m = ZtpfMessage::decode(frame).map_err(|e| e.to_string())?;
            m.encode(&mut out);
            match m.body {
                Payload::Control(Control::LogonRequest(l)) => Some(l),
                _ => None,
            }
        }
        ProtocolId::DS8K => {
            let m = Ds8kMessage::decode(frame).map_err(|e| e.to_string())?;
            m.encode(&mut out);
            match m.body {
                Payload::Control(Control::LogonRequest(l)) => Some(l),
                _ => None,
            }
        }
        ProtocolId::CSM => {
            let m = CsmMessage::decode(frame).map_err(|e| e.to_string())?;
            m.encode(&mut out);
            match m.body {
                Payload::Control(Control::LogonRequest(l)) => Some(l),
                _ => None,
            }
        }
        ProtocolId::HA => {
            let m = zgate::proto::ha::HaMessage::decode(frame).map_err(|e| e.to_string())?;
            // ha.md §3: a record on the stream is a sealed record the store reads.
            if let zgate::proto::ha::HaBody::Records { records } = &m.body {
                for r in records {
                    zgate::store::unseal(&r.sealed)
                        .map_err(|e| format!("record {}: {e}", r.seq))?;
                }
            }
            m.encode(&mut out);
            None
        }
        other => return Err(format!("no decoder for protocol {other:?}")),
    };
    Ok((out.to_vec(), logon))
}

/// A PassTicket in a logon example must be the ticket of that very user and
/// application: enhanced UPPER, the key of passticket.md §3.4, time 1,700,000,000.
fn check_ticket(logon: &LogonRequest) -> Result<(), String> {
    if logon.kind != CredentialKind::PASSTICKET {
        return Ok(());
    }
    let key = EnhancedKey::from_hex(&"00112233445566778899AABBCCDDEEFF".repeat(4)).unwrap();
    let user = RacfName::parse("user", logon.user.as_str()).map_err(|e| e.to_string())?;
    let appl = RacfName::parse("appl", logon.appl.as_str()).map_err(|e| e.to_string())?;
    let expected =
        EnhancedGenerator::new(&key, TicketType::Upper).generate(&user, &appl, 1_700_000_000);
    if expected.as_str() == logon.credential.expose() {
        Ok(())
    } else {
        Err(format!(
            "ticket {} is not {user}/{appl}'s ({expected})",
            logon.credential.expose()
        ))
    }
}

#[test]
fn every_hex_example_in_the_specs_decodes_and_re_encodes() {
    let examples = examples();
    let mut frames = 0;
    let mut failures = Vec::new();
    for ex in &examples {
        if ex.bytes[..2] != [0xE9, 0xC7] {
            failures.push(format!(
                "{}: hex block does not start with the frame magic",
                ex.place
            ));
            continue;
        }
        let mut codec = FrameCodec::new(16 * 1024 * 1024);
        let mut buf = BytesMut::from(&ex.bytes[..]);
        loop {
            let before = buf.clone();
            match codec.decode_eof(&mut buf) {
                Ok(Some(frame)) => {
                    frames += 1;
                    let used = before.len() - buf.len();
                    match round_trip(&frame) {
                        Ok((bytes, logon)) if bytes[..] == before[..used] => {
                            if let Some(Err(e)) = logon.as_ref().map(check_ticket) {
                                failures.push(format!("{}: {e}", ex.place));
                            }
                        }
                        Ok((bytes, _)) => failures.push(format!(
                            "{}: re-encodes differently:\n  page {:02X?}\n  code {:02X?}",
                            ex.place,
                            &before[..used],
                            bytes
                        )),
                        Err(e) => failures.push(format!("{}: {e}", ex.place)),
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    failures.push(format!("{}: not a frame: {e}", ex.place));
                    break;
                }
            }
        }
        if !buf.is_empty() {
            failures.push(format!("{}: {} bytes left over", ex.place, buf.len()));
        }
    }
    println!("{} spec examples, {frames} frames checked", examples.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Guard against a parser that silently finds nothing.
    assert!(
        frames >= 15,
        "only {frames} frames found in protocol-specs/"
    );
}
