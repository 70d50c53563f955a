use bytes::BytesMut;
use tokio_util::codec::Decoder;

use super::examples::examples;
use super::*;
use crate::codec::frame::FrameCodec;
use crate::proto::CommonReason;

#[test]
fn every_example_round_trips_byte_for_byte() {
    let all = examples();
    assert!(all.len() >= 13);
    for (name, msg) in &all {
        let mut wire = BytesMut::new();
        msg.encode(&mut wire);
        let bytes = wire.clone();
        let frame = FrameCodec::default().decode(&mut wire).unwrap().unwrap();
        let decoded = ZtpfMessage::decode(&frame).unwrap();
        assert_eq!(&decoded, msg, "{name}");
        let mut again = BytesMut::new();
        decoded.encode(&mut again);
        assert_eq!(again, bytes, "{name}");
    }
}

#[test]
fn signon_uses_ztpf_numbers_and_refuses_zos_frames() {
    let (_, signon) = examples().into_iter().next().unwrap();
    let frame = signon.to_frame();
    assert_eq!(
        (frame.header.protocol.0, frame.header.message_type),
        (0x02, 0x0100)
    );
    let (_, zos_logon) = crate::proto::zos::examples::examples()
        .into_iter()
        .next()
        .unwrap();
    let err = ZtpfMessage::decode(&zos_logon.to_frame()).unwrap_err();
    assert_eq!(err.reason(), CommonReason::WRONG_PROTOCOL);
    let mut f = zos_logon.to_frame();
    f.header.protocol = crate::codec::frame::ProtocolId::ZTPF;
    // z/OS LOGON's number (0x0001) means nothing in z/TPF.
    assert_eq!(
        ZtpfMessage::decode(&f).unwrap_err().reason(),
        CommonReason::UNKNOWN_MESSAGE
    );
}
