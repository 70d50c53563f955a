//! Golden frames: every `testdata/<protocol>/<case>.bin` with its `<case>.json` sidecar.
//!
//! The sidecar holds the same bytes as spaced hex and either `decoded` (the message's
//! `Debug` form; the bytes must re-encode identically) or `expect_err` (the error the
//! decoder must give). `ZGATE_BLESS=1 cargo test --test golden` rewrites the files
//! from `zgate::proto::zos::examples` and the bad cases below; review the diff.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use bytes::BytesMut;
use serde::{Deserialize, Serialize};
use tokio_util::codec::Decoder;
use zgate::codec::frame::Frame;
use zgate::codec::frame::FrameCodec;
use zgate::proto::ds8k::Ds8kBody;
use zgate::proto::zos::ZosBody;
use zgate::proto::zos::examples::examples;
use zgate::proto::ztpf::ZtpfBody;
use zgate::proto::{Message, WireBody};

#[derive(Serialize, Deserialize)]
struct Sidecar {
    hex: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    decoded: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expect_err: Option<String>,
}

fn dir(protocol: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(protocol)
}

fn spaced_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn parse_hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect()
}

/// Cuts one frame from `bytes` exactly as a connection would (EOF after the bytes).
fn cut(bytes: &[u8]) -> Result<Frame, String> {
    let mut buf = BytesMut::from(bytes);
    let mut codec = FrameCodec::default();
    let frame = match codec.decode_eof(&mut buf) {
        Ok(Some(f)) => f,
        Ok(None) => return Err("frame: no frame".into()),
        Err(e) => return Err(format!("frame: {e}")),
    };
    if !buf.is_empty() {
        return Err(format!("frame: {} bytes after the frame", buf.len()));
    }
    Ok(frame)
}

/// A protocol's decoder for the golden walk: the message's `Debug` and its re-encoding.
type Decode = fn(&[u8]) -> Result<(String, Vec<u8>), String>;

/// Decodes `bytes` as one message of the protocol whose bodies are `B`.
fn decode_as<B: WireBody + std::fmt::Debug>(bytes: &[u8]) -> Result<(String, Vec<u8>), String> {
    let m = Message::<B>::decode(&cut(bytes)?)
        .map_err(|e| format!("message: {:?}: {e}", e.reason()))?;
    Ok((format!("{m:?}"), encoded(&m)))
}

/// A message's whole frame.
fn encoded<B: WireBody>(msg: &Message<B>) -> Vec<u8> {
    let mut b = BytesMut::new();
    msg.encode(&mut b);
    b.to_vec()
}

/// `bytes` with `patch` written at `at`.
fn with(mut bytes: Vec<u8>, at: usize, patch: &[u8]) -> Vec<u8> {
    bytes[at..at + patch.len()].copy_from_slice(patch);
    bytes
}

/// The `ok_` cases: every example, encoded.
fn ok_cases<B: WireBody>(examples: &[(&'static str, Message<B>)]) -> Vec<(String, Vec<u8>)> {
    examples
        .iter()
        .map(|(n, m)| (format!("ok_{n}"), encoded(m)))
        .collect()
}

/// The named example of a protocol, encoded.
fn named<B: WireBody>(examples: &[(&'static str, Message<B>)], name: &str) -> Vec<u8> {
    encoded(&examples.iter().find(|(n, _)| *n == name).unwrap().1)
}

fn example(name: &str) -> Vec<u8> {
    named(&examples(), name)
}

/// Sets the body-length field to the actual body length.
fn fix_len(mut b: Vec<u8>) -> Vec<u8> {
    let len = (b.len() - 16) as u32;
    b[12..16].copy_from_slice(&len.to_be_bytes());
    b
}

fn bad_cases() -> Vec<(&'static str, Vec<u8>)> {
    let hb = example("heartbeat_request");
    let flash = example("flash_request");
    let logon = example("logon_request_passticket");
    let backup = example("backup_request");
    vec![
        ("bad_magic", b"GET / HTTP/1.1\r\n".to_vec()),
        (
            "frame_too_large",
            with(hb.clone(), 12, &[0x00, 0x01, 0x00, 0x01]),
        ),
        ("truncated_frame", hb[..hb.len() - 1].to_vec()),
        ("unsupported_version", with(hb.clone(), 2, &[0x02])),
        ("wrong_protocol", with(hb.clone(), 3, &[0x02])),
        ("reserved_flags", with(hb.clone(), 6, &[0x00, 0x01])),
        ("unknown_message_type", with(hb.clone(), 4, &[0x09, 0x99])),
        ("reply_and_unsolicited", with(hb.clone(), 6, &[0xC0, 0x00])),
        (
            "event_sent_as_request",
            with(example("event_freeze"), 6, &[0x00, 0x00]),
        ),
        (
            "heartbeat_trailing_bytes",
            fix_len([hb.clone(), vec![0x00]].concat()),
        ),
        ("heartbeat_short", fix_len(hb[..hb.len() - 2].to_vec())),
        (
            "logon_truncated_credential",
            fix_len(logon[..logon.len() - 3].to_vec()),
        ),
        (
            "logon_reserved_nonzero",
            with(logon.clone(), 16 + 17, &[0x01]),
        ),
        (
            "logon_credential_over_100",
            with(logon, 16 + 20, &[0x00, 0x65]),
        ),
        (
            "flash_zero_pairs",
            fix_len(with(flash[..16 + 4].to_vec(), 16 + 2, &[0x00, 0x00])),
        ),
        (
            "flash_too_many_pairs",
            with(flash.clone(), 16 + 2, &[0x08, 0x01]),
        ),
        (
            "flash_undefined_option",
            with(flash.clone(), 16, &[0x00, 0x10]),
        ),
        (
            "flash_pair_count_exceeds_body",
            with(flash, 16 + 2, &[0x00, 0x03]),
        ),
        (
            "backup_truncated_volume",
            fix_len(backup[..backup.len() - 5].to_vec()),
        ),
    ]
}

fn bless(protocol: &str, decode: Decode, cases: Vec<(String, Vec<u8>)>) {
    let d = dir(protocol);
    std::fs::create_dir_all(&d).unwrap();
    for entry in std::fs::read_dir(&d).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    for (name, bytes) in cases {
        let sidecar = match decode(&bytes) {
            Ok((m, _)) => Sidecar {
                hex: spaced_hex(&bytes),
                decoded: Some(m),
                expect_err: None,
            },
            Err(e) => Sidecar {
                hex: spaced_hex(&bytes),
                decoded: None,
                expect_err: Some(e),
            },
        };
        std::fs::write(d.join(format!("{name}.bin")), &bytes).unwrap();
        std::fs::write(
            d.join(format!("{name}.json")),
            serde_json::to_string_pretty(&sidecar).unwrap() + "\n",
        )
        .unwrap();
    }
}

fn zos_cases() -> Vec<(String, Vec<u8>)> {
    let mut cases = ok_cases(&examples());
    cases.extend(
        bad_cases()
            .into_iter()
            .map(|(n, b)| (format!("bad_{n}"), b)),
    );
    cases
}

fn ztpf_cases() -> Vec<(String, Vec<u8>)> {
    let ex = zgate::proto::ztpf::examples::examples();
    let mut cases = ok_cases(&ex);
    let get = |name: &str| named(&ex, name);
    let signon = get("signon_request_passticket");
    let keepalive = get("keepalive_request");
    let flash = get("flash_request");
    let bad = vec![
        ("zos_logon_number", with(signon.clone(), 4, &[0x00, 0x01])),
        ("zos_protocol_id", with(keepalive.clone(), 3, &[0x01])),
        (
            "signon_truncated_credential",
            fix_len(signon[..signon.len() - 1].to_vec()),
        ),
        (
            "keepalive_trailing_bytes",
            fix_len([keepalive.clone(), vec![0]].concat()),
        ),
        (
            "flash_too_many_pairs",
            with(flash.clone(), 16 + 2, &[0x08, 0x01]),
        ),
        ("flash_undefined_option", with(flash, 16, &[0x80, 0x00])),
        (
            "query_sent_as_event",
            with(get("query_request"), 6, &[0x40, 0x00]),
        ),
    ];
    cases.extend(bad.into_iter().map(|(n, b)| (format!("bad_{n}"), b)));
    cases
}

fn walk(protocol: &str, decode: Decode, min_good: usize, min_bad: usize) {
    let d = dir(protocol);
    let mut good = 0;
    let mut bad = 0;
    let mut names: Vec<PathBuf> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    for json in names {
        let case = json.file_stem().unwrap().to_string_lossy().to_string();
        let sidecar: Sidecar =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let bytes = std::fs::read(json.with_extension("bin")).unwrap();
        assert_eq!(
            parse_hex(&sidecar.hex),
            bytes,
            "{case}: .bin and hex differ"
        );
        match (decode(&bytes), &sidecar.decoded, &sidecar.expect_err) {
            (Ok((m, again)), Some(expected), None) => {
                assert_eq!(&m, expected, "{case}");
                assert_eq!(again, bytes, "{case}: re-encode differs");
                good += 1;
            }
            (Err(e), None, Some(expected)) => {
                assert_eq!(&e, expected, "{case}");
                bad += 1;
            }
            (got, _, _) => panic!(
                "{case}: got {got:?}, sidecar says decoded={:?} err={:?}",
                sidecar.decoded, sidecar.expect_err
            ),
        }
    }
    assert!(
        good >= min_good && bad >= min_bad,
        "{protocol}: good {good}, bad {bad}"
    );
}

#[test]
fn zos_golden_frames() {
    if std::env::var_os("ZGATE_BLESS").is_some() {
        bless("zos", decode_as::<ZosBody>, zos_cases());
    }
    walk("zos", decode_as::<ZosBody>, 20, 15);
}

#[test]
fn ztpf_golden_frames() {
    if std::env::var_os("ZGATE_BLESS").is_some() {
        bless("ztpf", decode_as::<ZtpfBody>, ztpf_cases());
    }
    walk("ztpf", decode_as::<ZtpfBody>, 13, 7);
}

fn ds8k_cases() -> Vec<(String, Vec<u8>)> {
    let ex = zgate::proto::ds8k::examples::examples();
    let mut cases = ok_cases(&ex);
    let get = |name: &str| named(&ex, name);
    let mkflash = get("mkflash_request");
    let mkvol = get("mkvol_ckd_request");
    let lsflash = get("lsflash_reply");
    let bad = vec![
        (
            "mkflash_undefined_option",
            // After the 16-byte FENCE.
            with(mkflash.clone(), 16 + 16, &[0x00, 0x20]),
        ),
        (
            "mkflash_zero_pairs",
            // fence, options, sequence and not_after, then a pair count of 0.
            fix_len(with(mkflash[..16 + 32].to_vec(), 16 + 30, &[0, 0])),
        ),
        (
            "mkflash_too_many_pairs",
            with(mkflash.clone(), 16 + 30, &[0x7F, 0x81]),
        ),
        (
            "mkflash_trailing_bytes",
            fix_len([mkflash, vec![0]].concat()),
        ),
        ("mkvol_unknown_type", with(mkvol.clone(), 16 + 2, &[0x03])),
        (
            "mkvol_reserved_nonzero",
            with(mkvol.clone(), 16 + 3, &[0x01]),
        ),
        (
            "mkvol_ckd_size_over_32_bits",
            with(mkvol, 16 + 4, &[0x00, 0x00, 0x00, 0x01]),
        ),
        (
            "lsflash_copying_not_boolean",
            with(lsflash, 16 + 4 + 2 + 6, &[0x02]),
        ),
        (
            "ztpf_signon_number",
            with(get("logon_request_password"), 4, &[0x01, 0x00]),
        ),
        (
            "event_sent_as_request",
            with(get("evt_copy_complete"), 6, &[0x00, 0x00]),
        ),
    ];
    cases.extend(bad.into_iter().map(|(n, b)| (format!("bad_{n}"), b)));
    cases
}

#[test]
fn ds8k_golden_frames() {
    if std::env::var_os("ZGATE_BLESS").is_some() {
        bless("ds8k", decode_as::<Ds8kBody>, ds8k_cases());
    }
    walk("ds8k", decode_as::<Ds8kBody>, 40, 10);
}
