use bytes::BytesMut;
use tokio_util::codec::Decoder;

use super::examples::examples;
use super::*;
use crate::codec::frame::FrameCodec;
use crate::proto::{CommonReason, Protocol, ReplyStatus, ReturnCode};

#[test]
fn every_example_round_trips_byte_for_byte() {
    let all = examples();
    assert!(all.len() >= 40);
    for (name, msg) in &all {
        let mut wire = BytesMut::new();
        msg.encode(&mut wire);
        let bytes = wire.clone();
        let frame = FrameCodec::default().decode(&mut wire).unwrap().unwrap();
        let decoded = Ds8kMessage::decode(&frame).unwrap();
        assert_eq!(&decoded, msg, "{name}");
        let mut again = BytesMut::new();
        decoded.encode(&mut again);
        assert_eq!(again, bytes, "{name}");
    }
}

#[test]
fn layouts_match_the_spec() {
    let find = |n: &str| {
        examples()
            .into_iter()
            .find(|(name, _)| *name == n)
            .unwrap()
            .1
            .to_frame()
    };
    // ds8k.md §4.3: SHOWVOL reply is RC + 56 bytes; §4.5: an LSFLASH entry is 44.
    assert_eq!(find("showvol_reply").body.len(), 4 + 56);
    assert_eq!(find("lsflash_reply").body.len(), 4 + 2 + 44);
    // §4.5: MKFLASH with two pairs: fence (§3.4), options, sequence, not after,
    // count, 2 x (source, target).
    let f = find("mkflash_request");
    assert_eq!((f.header.protocol.0, f.header.message_type), (0x04, 0x0430));
    assert_eq!(
        &f.body[..],
        &[
            0x1F, 0x2E, 0x3D, 0x4C, 0x5B, 0x6A, 0x79, 0x88, 0, 0, 0, 0, 0, 0, 0, 2, //
            0x00, 0x11, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x01, 0x8B, 0xCF, 0xE5, 0xDD, 0x30,
            0x00, 0x02, 0x30, 0x00, 0x31, 0x00, 0x30, 0x01, 0x31, 0x01
        ]
    );
    // §4.6: an LSBACKUP entry is 28 bytes; §4.5: LSFROZEN is clock, count, LSSs.
    assert_eq!(find("lsbackup_reply").body.len(), 4 + 2 + 28);
    assert_eq!(find("lsfrozen_reply").body.len(), 4 + 8 + 2 + 1);
    // §4.3: MKVOL CKD 65,520 cylinders.
    let f = find("mkvol_ckd_request");
    assert_eq!(
        &f.body[..12],
        &[0x30, 0x00, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0xFF, 0xF0]
    );
}

#[test]
fn malformed_bodies_name_the_field() {
    let (_, mkflash) = examples()
        .into_iter()
        .find(|(n, _)| *n == "mkflash_request")
        .unwrap();
    let mut f = mkflash.to_frame();
    let mut body = f.body.to_vec();
    body[16 + 1] = 0x80; // undefined option bit, after the fence
    f.body = body.into();
    let e = Ds8kMessage::decode(&f).unwrap_err();
    assert_eq!(e.reason(), CommonReason::MALFORMED_BODY);
    assert!(e.to_string().contains("options"), "{e}");
    let mut f = mkflash.to_frame();
    let mut body = f.body.to_vec();
    body.push(0);
    f.body = body.into();
    assert_eq!(
        Ds8kMessage::decode(&f).unwrap_err().reason(),
        CommonReason::MALFORMED_BODY
    );
    // An empty pair list.
    let mut f = mkflash.to_frame();
    f.body = vec![0; 32].into();
    assert!(
        Ds8kMessage::decode(&f)
            .unwrap_err()
            .to_string()
            .contains("pair_count")
    );
}

#[test]
fn fence_names_a_domain() {
    let (_, fence) = examples()
        .into_iter()
        .find(|(n, _)| *n == "fence_request")
        .unwrap();
    let mut f = fence.to_frame();
    f.body = vec![0; 16].into();
    let e = Ds8kMessage::decode(&f).unwrap_err();
    assert_eq!(e.reason(), CommonReason::MALFORMED_BODY);
    assert!(e.to_string().contains("fence.domain"), "{e}");
}

#[test]
fn refusal_replies_have_the_request_type_and_fixed_shape() {
    let status = ReplyStatus::new(ReturnCode::REFUSED, 0x0D01);
    for (name, msg) in examples() {
        let frame = msg.to_frame();
        let Some(request) = msg.body.own().filter(|_| frame.header.flags.0 == 0) else {
            continue; // the protocol's own requests only
        };
        let reply = Ds8k::refusal_reply(request, status).unwrap();
        assert_eq!(reply.message_type(), request.message_type(), "{name}");
        assert_eq!(reply.status(), Some(status), "{name}");
    }
}
