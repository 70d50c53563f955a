use bytes::BytesMut;
use tokio_util::codec::Decoder;

use super::examples::examples;
use super::*;
use crate::codec::frame::FrameCodec;

fn round_trip(msg: &ZosMessage) -> (ZosMessage, BytesMut) {
    let mut wire = BytesMut::new();
    msg.encode(&mut wire);
    let bytes = wire.clone();
    let frame = FrameCodec::default().decode(&mut wire).unwrap().unwrap();
    assert!(wire.is_empty());
    (ZosMessage::decode(&frame).unwrap(), bytes)
}

#[test]
fn every_example_round_trips_byte_for_byte() {
    let all = examples();
    assert!(all.len() >= 20);
    for (name, msg) in &all {
        let (decoded, bytes) = round_trip(msg);
        assert_eq!(&decoded, msg, "{name}");
        let mut again = BytesMut::new();
        decoded.encode(&mut again);
        assert_eq!(again, bytes, "{name}");
        assert_eq!(msg.to_frame().encoded_len(), bytes.len(), "{name}");
    }
}

#[test]
fn logon_layout_matches_spec() {
    let (_, msg) = examples()
        .into_iter()
        .find(|(n, _)| *n == "logon_request_passticket")
        .unwrap();
    let mut wire = BytesMut::new();
    msg.encode(&mut wire);
    let body = &wire[16..];
    // user HOSTUSR, appl IOSHMCSM, kind 3, reserved 0, heartbeat 30, length 8, ticket.
    assert_eq!(
        &body[..8],
        &[0xC8, 0xD6, 0xE2, 0xE3, 0xE4, 0xE2, 0xD9, 0x40]
    );
    assert_eq!(
        &body[8..16],
        &[0xC9, 0xD6, 0xE2, 0xC8, 0xD4, 0xC3, 0xE2, 0xD4]
    );
    assert_eq!(&body[16..22], &[0x03, 0x00, 0x00, 0x1E, 0x00, 0x08]);
    assert_eq!(body.len(), 30);
    // The credential never shows in Debug output.
    assert!(!format!("{msg:?}").contains("E9QEUZOI"));
}

#[test]
fn header_checks_name_the_reason() {
    let (_, msg) = examples().into_iter().next().unwrap();
    let mut frame = msg.to_frame();
    frame.header.version = 2;
    assert_eq!(
        ZosMessage::decode(&frame).unwrap_err().reason(),
        crate::proto::CommonReason::UNSUPPORTED_VERSION
    );
    let mut frame = msg.to_frame();
    frame.header.flags = crate::codec::frame::Flags(0x0001);
    assert_eq!(
        ZosMessage::decode(&frame).unwrap_err().reason(),
        crate::proto::CommonReason::RESERVED_FLAGS
    );
    let mut frame = msg.to_frame();
    frame.header.message_type = 0x0999;
    assert_eq!(
        ZosMessage::decode(&frame).unwrap_err().reason(),
        crate::proto::CommonReason::UNKNOWN_MESSAGE
    );
    let mut frame = msg.to_frame();
    frame.body = frame.body.slice(..frame.body.len() - 1);
    let err = ZosMessage::decode(&frame).unwrap_err();
    assert_eq!(err.reason(), crate::proto::CommonReason::MALFORMED_BODY);
    assert_eq!(
        err.to_string(),
        "LOGON: field credential at body offset 22: body ends inside the field"
    );
}
