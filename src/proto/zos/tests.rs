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

mod sessions {
    use std::time::{Duration, Instant};

    use bytes::BytesMut;
    use tokio_util::codec::Decoder;

    use crate::codec::fields::Ebcdic;
    use crate::codec::frame::{Frame, FrameCodec};
    use crate::passticket::evaluator::{Evaluator, EvaluatorConfig, PtktProfile, UserProfile};
    use crate::passticket::{LegacyGenerator, LegacyKey, PassTicket, RacfName};
    use crate::proto::zos::messages::Credential;
    use crate::proto::zos::session::*;
    use crate::proto::zos::*;
    use crate::proto::{CommonReason, Control, HostFlashOptions, Payload, ReplyStatus, ReturnCode};

    const T0: u64 = 1_764_028_800;
    const KEY: &str = "0123456789ABCDEF";

    struct Backend {
        racf: Evaluator,
    }

    impl ServerBackend<Zos> for Backend {
        fn logon(&mut self, req: &LogonRequest, now_unix: u64, _now: Instant) -> LogonDecision {
            let user = RacfName::parse("user", req.user.as_str()).unwrap();
            let appl = RacfName::parse("appl", req.appl.as_str()).unwrap();
            let ticket = PassTicket::parse(req.credential.expose()).unwrap();
            match self.racf.evaluate(&user, None, &appl, &ticket, now_unix) {
                Ok(_) => LogonDecision::Accept {
                    domain: Ebcdic::new("PLEX1").unwrap(),
                    system: Ebcdic::new("SYSA").unwrap(),
                },
                Err(r) => LogonDecision::Refuse {
                    reason: r.reason.code(),
                    racf_rc: u16::from(r.reason.racf_return_code()),
                    precise: r.reason.code(),
                    revoked_now: r.revoked_now,
                },
            }
        }
        fn request(&mut self, body: &ZosBody, _now: u64) -> Result<ZosBody, ReplyStatus> {
            Ok(match body {
                ZosBody::QuerySystemRequest => ZosBody::QuerySystemReply(SystemInfo {
                    status: ReplyStatus::OK,
                    sysplex: Ebcdic::new("PLEX1").unwrap(),
                    system: Ebcdic::new("SYSA").unwrap(),
                    level: Ebcdic::new("V2R5").unwrap(),
                    hyperswap: HyperSwapStatus::default(),
                }),
                _ => return Err(ReplyStatus::new(ReturnCode::REFUSED, 0x0201)),
            })
        }
    }

    fn backend() -> Backend {
        let mut racf = Evaluator::new(EvaluatorConfig::default());
        let mut p = PtktProfile::new("IOSHMCSM");
        p.legacy_key = Some(LegacyKey::from_hex(KEY).unwrap());
        racf.define_profile(p).unwrap();
        racf.define_user(UserProfile {
            user: RacfName::parse("u", "HOSTUSR").unwrap(),
            default_group: None,
            protected: false,
        });
        Backend { racf }
    }

    fn ticket(t: u64) -> Credential {
        let g = LegacyGenerator::new(&LegacyKey::from_hex(KEY).unwrap());
        let tk = g.generate(
            &RacfName::parse("u", "HOSTUSR").unwrap(),
            &RacfName::parse("a", "IOSHMCSM").unwrap(),
            t,
        );
        Credential::new(tk.as_str()).unwrap()
    }

    fn client(now: Instant, credential: Credential) -> ClientSession {
        let cfg = ClientConfig::new(
            Ebcdic::new("HOSTUSR").unwrap(),
            Ebcdic::new("IOSHMCSM").unwrap(),
        );
        ClientSession::new(cfg, CredentialKind::PASSTICKET, credential, now)
    }

    fn wire(msg: &ZosMessage) -> Frame {
        let mut b = BytesMut::new();
        msg.encode(&mut b);
        FrameCodec::default().decode(&mut b).unwrap().unwrap()
    }

    /// Delivers a frame to the server session and has `b` do its work at once;
    /// returns what `b` forwards.
    fn serve<B: ServerBackend<Zos>>(
        h: &mut ServerSession,
        now: Instant,
        frame: &Frame,
        b: &mut B,
    ) -> Vec<(u32, ZosBody)> {
        h.handle_frame(now, frame);
        serve_work(h, now, T0, b)
    }

    /// Moves frames both ways until both sides are quiet.
    fn pump(now: Instant, c: &mut ClientSession, h: &mut ServerSession, b: &mut Backend) {
        loop {
            let mut moved = false;
            while let Some(m) = c.poll_transmit(now) {
                serve(h, now, &wire(&m), b);
                moved = true;
            }
            while let Some(m) = h.poll_transmit() {
                c.handle_frame(now, &wire(&m));
                moved = true;
            }
            if !moved {
                return;
            }
        }
    }

    fn events(c: &mut ClientSession) -> Vec<ClientEvent> {
        std::iter::from_fn(|| c.poll_event()).collect()
    }

    #[test]
    fn logon_request_event_logoff() {
        let now = Instant::now();
        let (mut c, mut h, mut b) = (
            client(now, ticket(T0)),
            ServerSession::new(ServerConfig::default(), now, 1),
            backend(),
        );
        pump(now, &mut c, &mut h, &mut b);
        assert!(c.is_ready() && h.is_ready());
        assert!(
            matches!(&events(&mut c)[..], [ClientEvent::LoggedOn { heartbeat_secs: 30, system, .. }] if system == "SYSA")
        );

        let id = c.send_request(now, ZosBody::QuerySystemRequest).unwrap();
        pump(now, &mut c, &mut h, &mut b);
        match &events(&mut c)[..] {
            [
                ClientEvent::Reply {
                    request,
                    body: ZosBody::QuerySystemReply(info),
                },
            ] => {
                assert_eq!(*request, id);
                assert_eq!(info.level.as_str(), "V2R5");
            }
            other => panic!("{other:?}"),
        }

        let evt = ZosBody::UnplannedSwapEvent {
            session: Ebcdic::new("HSPROD").unwrap(),
            time: T0,
            reason: ZosReason::PRIMARY_IO_ERROR.0,
            swapped_pairs: 2,
        };
        assert!(h.send_event(now, evt.clone()));
        pump(now, &mut c, &mut h, &mut b);
        assert_eq!(events(&mut c), vec![ClientEvent::Event(evt)]);

        c.logoff(now);
        pump(now, &mut c, &mut h, &mut b);
        assert!(c.is_closed() && h.is_closed());
        assert_eq!(
            events(&mut c),
            vec![ClientEvent::Closed(CloseReason::LoggedOff)]
        );
    }

    #[test]
    fn replayed_ticket_is_refused_with_racf_codes() {
        let now = Instant::now();
        let mut b = backend();
        let (mut c1, mut h1) = (
            client(now, ticket(T0)),
            ServerSession::new(ServerConfig::default(), now, 1),
        );
        pump(now, &mut c1, &mut h1, &mut b);
        assert!(c1.is_ready());
        let (mut c2, mut h2) = (
            client(now, ticket(T0)),
            ServerSession::new(ServerConfig::default(), now, 1),
        );
        pump(now, &mut c2, &mut h2, &mut b);
        let status = ReplyStatus::new(ReturnCode::REFUSED, 0x0104);
        assert_eq!(
            events(&mut c2),
            vec![ClientEvent::Closed(CloseReason::LogonRefused {
                status,
                racf_rc: 8
            })]
        );
    }

    #[test]
    fn host_closes_after_three_refused_logons_and_refuses_requests_before_logon() {
        let now = Instant::now();
        let mut b = backend();
        let mut h = ServerSession::new(ServerConfig::default(), now, 1);
        let query = ZosMessage::own(9, ZosBody::QuerySystemRequest);
        serve(&mut h, now, &wire(&query), &mut b);
        match h.poll_transmit().unwrap().body {
            Payload::Own(ZosBody::QuerySystemReply(info)) => {
                assert_eq!(info.status.reason, CommonReason::NOT_LOGGED_ON.0)
            }
            other => panic!("{other:?}"),
        }
        let (_, logon) = examples::examples().into_iter().next().unwrap();
        for attempt in 1..=3 {
            serve(&mut h, now, &wire(&logon), &mut b);
            assert!(
                matches!(h.poll_transmit().unwrap().body, Payload::Control(Control::LogonReply(r)) if r.status.rc == ReturnCode::REFUSED)
            );
            assert_eq!(h.is_closed(), attempt == 3);
        }
        assert_eq!(h.close_reason(), Some(&CloseReason::TooManyLogonAttempts));
    }

    #[test]
    fn heartbeats_flow_and_a_silent_host_is_dead() {
        let t = Instant::now();
        let (mut c, mut h, mut b) = (
            client(t, ticket(T0)),
            ServerSession::new(ServerConfig::default(), t, 1),
            backend(),
        );
        pump(t, &mut c, &mut h, &mut b);
        events(&mut c);
        // After one interval both sides send a heartbeat; each answers the other.
        let t1 = t + Duration::from_secs(30);
        assert_eq!(c.poll_timeout(), Some(t1));
        c.handle_timeout(t1);
        h.handle_timeout(t1);
        assert_eq!(c.outstanding(), 1);
        pump(t1, &mut c, &mut h, &mut b);
        assert_eq!(c.outstanding(), 0);
        assert!(events(&mut c).is_empty(), "heartbeats are not events");
        // Then the host goes silent: dead after three intervals without a frame.
        let mut now = t1;
        for _ in 0..3 {
            now += Duration::from_secs(30);
            c.handle_timeout(now);
            while c.poll_transmit(now).is_some() {}
        }
        assert!(c.is_closed());
        assert_eq!(
            events(&mut c),
            vec![ClientEvent::Closed(CloseReason::PeerDead)]
        );
    }

    #[test]
    fn request_timeout_and_outstanding_bound() {
        let t = Instant::now();
        let (mut c, mut h, mut b) = (
            client(t, ticket(T0)),
            ServerSession::new(ServerConfig::default(), t, 1),
            backend(),
        );
        pump(t, &mut c, &mut h, &mut b);
        events(&mut c);
        let id = c.send_request(t, ZosBody::QuerySystemRequest).unwrap();
        while c.poll_transmit(t).is_some() {} // lost in transit
        for _ in 1..64 {
            c.send_request(t, ZosBody::QuerySystemRequest).unwrap();
        }
        assert_eq!(
            c.send_request(t, ZosBody::QuerySystemRequest),
            Err(SendError::TooManyOutstanding(64))
        );
        while c.poll_transmit(t).is_some() {}
        c.handle_timeout(t + Duration::from_secs(30));
        let evs = events(&mut c);
        assert_eq!(evs.len(), 64);
        assert!(evs.contains(&ClientEvent::RequestTimedOut { request: id }));
        let reply = ZosBody::FlashReply {
            status: ReplyStatus::OK,
            flash_time: 0,
            pair_count: 0,
        };
        assert_eq!(
            c.send_request(t, reply),
            Err(SendError::NotARequest("FLASH"))
        );
    }

    #[test]
    fn malformed_request_keeps_the_connection_bad_version_closes_it() {
        let t = Instant::now();
        let mut b = backend();
        let mut h = ServerSession::new(ServerConfig::default(), t, 1);
        let hb = ZosMessage::control(5, Control::HeartbeatRequest { seq: 1 });
        let mut frame = wire(&hb);
        frame.body = frame.body.slice(..2);
        serve(&mut h, t, &frame, &mut b);
        let reply = h.poll_transmit().unwrap();
        assert_eq!(reply.correlation, 5);
        assert!(
            matches!(reply.body, Payload::Control(Control::ProtocolError { status, offending_type: 2 }) if status.reason == CommonReason::MALFORMED_BODY.0)
        );
        assert!(!h.is_closed());
        let mut frame = wire(&hb);
        frame.header.version = 9;
        serve(&mut h, t, &frame, &mut b);
        assert!(
            matches!(h.poll_transmit().unwrap().body, Payload::Control(Control::ProtocolError { status, .. }) if status.reason == CommonReason::UNSUPPORTED_VERSION.0)
        );
        assert!(h.is_closed());
    }

    #[test]
    fn logon_timeout() {
        let t = Instant::now();
        let mut c = client(t, ticket(T0));
        assert!(c.poll_transmit(t).is_some());
        assert_eq!(c.poll_timeout(), Some(t + Duration::from_secs(10)));
        c.handle_timeout(t + Duration::from_secs(10));
        assert_eq!(
            events(&mut c),
            vec![ClientEvent::Closed(CloseReason::LogonTimeout)]
        );
    }

    #[test]
    fn a_reply_in_the_wrong_state_closes_naming_message_and_state() {
        let t = Instant::now();
        let mut c = client(t, ticket(T0));
        let logon = c.poll_transmit(t).unwrap();
        // A FLASH reply where only the logon reply may come.
        let stray = ZosMessage::own(
            logon.correlation,
            ZosBody::FlashReply {
                status: ReplyStatus::OK,
                flash_time: 1,
                pair_count: 1,
            },
        );
        c.handle_frame(t, &wire(&stray));
        assert_eq!(
            events(&mut c),
            vec![ClientEvent::Closed(CloseReason::UnexpectedMessage {
                message: "FLASH",
                state: "ExpectLogonReply",
            })]
        );
        assert!(c.is_closed());
    }

    #[test]
    fn an_event_from_the_client_closes_naming_message_and_state() {
        let t = Instant::now();
        let mut h = ServerSession::new(ServerConfig::default(), t, 1);
        let mut b = backend();
        let event = ZosMessage::own(
            9,
            ZosBody::HyperSwapDisabledEvent {
                session: Ebcdic::new("HSS1").unwrap(),
                time: 1,
                reason: 0x0502,
            },
        );
        serve(&mut h, t, &wire(&event), &mut b);
        assert_eq!(
            h.close_reason(),
            Some(&CloseReason::UnexpectedMessage {
                message: "EVT_HS_DISABLED",
                state: "ExpectLogon",
            })
        );
    }

    /// spec: framing.md §1/§6: a frame with both REPLY and UNSOLICITED, and an event
    /// of an unknown type from the client, are not answered; the connection closes.
    #[test]
    fn reply_and_event_flags_together_or_unknown_client_events_close_without_reply() {
        let t = Instant::now();
        let hb = ZosMessage::control(5, Control::HeartbeatRequest { seq: 1 });
        for flags in [0xC000u16, 0x4000] {
            let mut b = backend();
            let mut h = ServerSession::new(ServerConfig::default(), t, 1);
            let mut frame = wire(&hb);
            frame.header.flags = crate::codec::frame::Flags(flags);
            frame.header.message_type = 0x0999;
            serve(&mut h, t, &frame, &mut b);
            assert!(h.poll_transmit().is_none(), "flags {flags:#06x}: no reply");
            assert!(h.is_closed(), "flags {flags:#06x}: closed");
        }
    }

    /// spec: zos-hyperswap.md §3.10: with nothing outstanding, LOGOFF is answered and
    /// the connection closes; a request after it gets no reply.
    #[test]
    fn nothing_is_answered_after_logoff() {
        let t = Instant::now();
        let mut b = backend();
        let mut h = ServerSession::new(ServerConfig::default(), t, 1);
        let logon = wire(&ZosMessage::control(
            1,
            Control::LogonRequest(LogonRequest {
                user: Ebcdic::new("HOSTUSR").unwrap(),
                appl: Ebcdic::new("IOSHMCSM").unwrap(),
                kind: CredentialKind::PASSTICKET,
                heartbeat_secs: 30,
                credential: ticket(T0),
            }),
        ));
        serve(&mut h, t, &logon, &mut b);
        assert!(h.is_ready());
        serve(
            &mut h,
            t,
            &wire(&ZosMessage::control(2, Control::LogoffRequest)),
            &mut b,
        );
        serve(
            &mut h,
            t,
            &wire(&ZosMessage::own(3, ZosBody::QuerySystemRequest)),
            &mut b,
        );
        let sent: Vec<u32> = std::iter::from_fn(|| h.poll_transmit())
            .map(|m| m.correlation)
            .collect();
        assert_eq!(sent, vec![1, 2]);
        assert!(h.is_closed());
    }

    /// The `Backend` above, forwarding FLASH (as a system linked to storage does).
    struct Forwarding(Backend);

    impl ServerBackend<Zos> for Forwarding {
        fn logon(&mut self, req: &LogonRequest, now_unix: u64, now: Instant) -> LogonDecision {
            self.0.logon(req, now_unix, now)
        }
        fn request(&mut self, body: &ZosBody, now: u64) -> Result<ZosBody, ReplyStatus> {
            self.0.request(body, now)
        }
        fn dispose(
            &mut self,
            body: &ZosBody,
            now: u64,
        ) -> crate::proto::session::Disposition<ZosBody> {
            use crate::proto::session::Disposition;
            match body {
                ZosBody::FlashRequest { .. } => Disposition::Forward,
                other => Disposition::Reply(self.request(other, now)),
            }
        }
    }

    #[test]
    fn forwarded_requests_are_answered_before_the_logoff_reply() {
        let t = Instant::now();
        let mut c = client(t, ticket(T0));
        let mut h = ServerSession::new(ServerConfig::default(), t, 1);
        let mut b = Forwarding(backend());
        // Log on.
        let logon = c.poll_transmit(t).unwrap();
        serve(&mut h, t, &wire(&logon), &mut b);
        c.handle_frame(t, &wire(&h.poll_transmit().unwrap()));
        assert!(c.is_ready());
        let v = |volume| crate::proto::VolumeRef {
            storage: Ebcdic::new("75FA120").unwrap(),
            volume,
            device: 0,
        };
        let flash = ZosBody::FlashRequest {
            options: HostFlashOptions(0),
            pairs: vec![crate::proto::VolumePair {
                first: v(0x3000),
                second: v(0x3100),
            }],
        };
        let id = c.send_request(t, flash.clone()).unwrap();
        let req = c.poll_transmit(t).unwrap();
        let forwarded = serve(&mut h, t, &wire(&req), &mut b);
        assert!(h.poll_transmit().is_none(), "forwarded: no reply yet");
        assert_eq!(forwarded, vec![(req.correlation, flash.clone())]);
        assert_eq!(h.outstanding(), 1);
        // The same correlation again while in flight: refused, not forwarded twice.
        serve(&mut h, t, &wire(&req), &mut b);
        assert!(
            matches!(h.poll_transmit().unwrap().body, Payload::Own(ZosBody::FlashReply { status, .. })
            if status.reason == CommonReason::DUPLICATE_CORRELATION.0)
        );
        // LOGOFF waits for the forwarded request.
        c.logoff(t);
        let logoff = c.poll_transmit(t).unwrap();
        serve(&mut h, t, &wire(&logoff), &mut b);
        assert!(h.poll_transmit().is_none() && !h.is_closed());
        let reply = ZosBody::FlashReply {
            status: ReplyStatus::OK,
            flash_time: T0,
            pair_count: 0,
        };
        h.complete(t, 0xDEAD, Payload::Own(reply.clone())); // unknown: ignored
        assert!(h.poll_transmit().is_none());
        h.complete(t, req.correlation, Payload::Own(reply.clone()));
        let first = h.poll_transmit().unwrap();
        assert_eq!(
            (first.correlation, &first.body),
            (req.correlation, &Payload::Own(reply.clone()))
        );
        let second = h.poll_transmit().unwrap();
        assert_eq!(second.correlation, logoff.correlation);
        assert!(h.is_closed());
        c.handle_frame(t, &wire(&first));
        c.handle_frame(t, &wire(&second));
        let ev = events(&mut c);
        assert!(ev.contains(&ClientEvent::Reply {
            request: id,
            body: reply
        }));
        assert!(ev.contains(&ClientEvent::Closed(CloseReason::LoggedOff)));
    }
}
