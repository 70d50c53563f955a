//! Entry points for the cargo-fuzz targets in `fuzz/`.
//!
//! Each function takes the fuzzer's raw bytes, drives a pure part of the crate and
//! asserts its invariants (panicking on a violation, which the fuzzer reports). The
//! same functions replay the committed seeds and past crashes in `tests/fuzz_seeds.rs`,
//! so a plain `cargo test` covers them on the stable toolchain.

use crate::passticket::evaluator::{
    Evaluator, EvaluatorConfig, PtktProfile, RefusalReason, UserProfile,
};
use crate::passticket::{
    EnhancedGenerator, EnhancedKey, LegacyGenerator, LegacyKey, PassTicket, RacfName, TicketType,
};

/// Reads fields off the front of the fuzz input; missing bytes read as zero.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
        self.0 = rest;
        first
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for b in &mut out {
            *b = self.byte();
        }
        out
    }

    /// A valid RACF name built from the input (1 to 8 characters).
    fn racf_name(&mut self) -> RacfName {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@#$";
        let len = usize::from(self.byte() % 8) + 1;
        let s: String = (0..len)
            .map(|_| char::from(CHARS[usize::from(self.byte()) % CHARS.len()]))
            .collect();
        match RacfName::parse("fuzz", &s) {
            Ok(n) => n,
            Err(e) => panic!("built an invalid RACF name {s:?}: {e}"),
        }
    }
}

/// PassTicket generation, decoding and RACF-style evaluation.
///
/// Invariants: a generated ticket decodes to its time; it is accepted exactly when
/// the evaluator's clock is inside the window; a second use is refused when replay
/// protection is on; an arbitrary 8-character ticket never panics the evaluator, and
/// if it is accepted it is the ticket of the time it decodes to.
pub fn passticket_evaluate(data: &[u8]) {
    let mut input = Input(data);
    let flags = input.byte();
    let enhanced = flags & 1 != 0;
    let ticket_type = if flags & 2 != 0 {
        TicketType::Mixed
    } else {
        TicketType::Upper
    };
    let replay_protection = flags & 4 != 0;
    let key_bytes: [u8; 32] = input.array();
    let user = input.racf_name();
    let appl = input.racf_name();
    let gen_time = u64::from_be_bytes(input.array()) & ((1 << 40) - 1);
    let window = u32::from(u16::from_be_bytes(input.array())) % 600 + 1;
    let offset = i64::from(i16::from_be_bytes(input.array()));
    let raw_ticket: [u8; 8] = input.array();

    let mut profile = PtktProfile::new(appl.as_str());
    profile.replay_protection = replay_protection;
    profile.window_secs = window;
    let (ticket, decoded_ok) = if enhanced {
        let key = match EnhancedKey::from_bytes(&key_bytes) {
            Ok(k) => k,
            Err(e) => panic!("32-byte key refused: {e}"),
        };
        let g = EnhancedGenerator::new(&key, ticket_type);
        let t = g.generate(&user, &appl, gen_time);
        let ok = g.decode_time(&user, &appl, &t) == Some(gen_time);
        profile.enhanced_key = Some((key, ticket_type));
        (t, ok)
    } else {
        let key = LegacyKey::from_bytes([
            key_bytes[0],
            key_bytes[1],
            key_bytes[2],
            key_bytes[3],
            key_bytes[4],
            key_bytes[5],
            key_bytes[6],
            key_bytes[7],
        ]);
        let g = LegacyGenerator::new(&key);
        let t = g.generate(&user, &appl, gen_time);
        let ok = g.decode_time(&user, &appl, &t) == Some(gen_time as u32);
        profile.legacy_key = Some(key);
        (t, ok)
    };
    assert!(decoded_ok, "generated ticket does not decode to its time");

    let config = EvaluatorConfig {
        revoke_after: 0,
        ..EvaluatorConfig::default()
    };
    let mut evaluator = Evaluator::new(config);
    if let Err(e) = evaluator.define_profile(profile.clone()) {
        panic!("valid profile refused: {e}");
    }
    evaluator.define_user(UserProfile {
        user,
        default_group: None,
        protected: false,
    });

    // The evaluator's clock is `offset` seconds after generation.
    let now = gen_time.saturating_add_signed(offset);
    let skew = gen_time as i64 - now as i64;
    let inside = skew.unsigned_abs() <= u64::from(window);
    let first = evaluator.evaluate(&user, None, &appl, &ticket, now);
    assert_eq!(
        first.is_ok(),
        inside,
        "window {window}, skew {skew}: {first:?}"
    );
    if inside {
        let second = evaluator.evaluate(&user, None, &appl, &ticket, now);
        if replay_protection {
            assert_eq!(second.map_err(|r| r.reason), Err(RefusalReason::Replayed));
        } else {
            assert!(second.is_ok());
        }
    }

    // Arbitrary ticket text: never panics; if accepted, it is a real ticket.
    let Ok(text) = std::str::from_utf8(&raw_ticket) else {
        return;
    };
    let Ok(arbitrary) = PassTicket::parse(text) else {
        return;
    };
    let mut fresh = Evaluator::new(EvaluatorConfig::default());
    if fresh.define_profile(profile.clone()).is_err() {
        return;
    }
    fresh.define_user(UserProfile {
        user,
        default_group: None,
        protected: false,
    });
    if fresh.evaluate(&user, None, &appl, &arbitrary, now).is_ok() {
        let regenerated = if let Some((key, tt)) = &profile.enhanced_key {
            let g = EnhancedGenerator::new(key, *tt);
            g.decode_time(&user, &appl, &arbitrary)
                .map(|t| g.generate(&user, &appl, t))
        } else if let Some(key) = &profile.legacy_key {
            let g = LegacyGenerator::new(key);
            g.decode_time(&user, &appl, &arbitrary)
                .map(|t| g.generate(&user, &appl, u64::from(t)))
        } else {
            None
        };
        assert_eq!(
            regenerated,
            Some(arbitrary),
            "accepted a ticket that no time generates"
        );
    }
}

/// The frame codec and the z/OS message decoder on an arbitrary byte stream
/// (see [`host_frames`]).
pub fn zos_frames(data: &[u8]) {
    host_frames::<crate::proto::zos::Zos>(data)
}

/// The frame codec and the z/TPF message decoder on an arbitrary byte stream.
pub fn ztpf_frames(data: &[u8]) {
    host_frames::<crate::proto::ztpf::Ztpf>(data)
}

/// The z/OS state machines under arbitrary operations (see [`host_sessions`]).
pub fn zos_sessions(data: &[u8]) {
    let examples = crate::proto::zos::examples::examples()
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    host_sessions::<crate::proto::zos::Zos>(data, examples)
}

/// The z/TPF state machines under arbitrary operations.
pub fn ztpf_sessions(data: &[u8]) {
    let examples = crate::proto::ztpf::examples::examples()
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    host_sessions::<crate::proto::ztpf::Ztpf>(data, examples)
}

/// The frame codec and a protocol's decoder on an arbitrary byte stream.
///
/// The first input byte sets the read size (1 to 256 bytes per read), as a socket
/// would fragment the stream. Invariants: cutting the stream into reads does not change
/// which frames come out or which error ends the stream; every frame that decodes to
/// a message re-encodes to exactly its bytes; nothing panics.
pub fn host_frames<P: crate::proto::Protocol>(data: &[u8]) {
    use bytes::BytesMut;
    use tokio_util::codec::Decoder;

    use crate::codec::frame::FrameCodec;

    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk) + 1;

    /// Frames and the final error, from feeding `stream` `step` bytes at a time.
    fn run(stream: &[u8], step: usize) -> (Vec<crate::codec::frame::Frame>, Option<String>) {
        let mut codec = FrameCodec::new(4096);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for piece in stream.chunks(step) {
            buf.extend_from_slice(piece);
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(f)) => frames.push(f),
                    Ok(None) => break,
                    Err(e) => return (frames, Some(e.to_string())),
                }
            }
        }
        match codec.decode_eof(&mut buf) {
            Ok(Some(f)) => {
                frames.push(f);
                (frames, None)
            }
            Ok(None) => (frames, None),
            Err(e) => (frames, Some(e.to_string())),
        }
    }

    let whole = run(stream, stream.len().max(1));
    let pieces = run(stream, chunk);
    assert_eq!(whole, pieces, "fragmentation changed the result");

    for frame in &whole.0 {
        if let Ok(msg) = crate::proto::Message::<P::Body>::decode(frame) {
            assert_eq!(
                &msg.to_frame(),
                frame,
                "re-encoding {msg:?} changed the frame"
            );
        }
    }
}

/// A protocol's client and host state machines driven by arbitrary operations.
///
/// The first byte picks the side. Then each operation is one byte of kind and one of
/// argument: deliver an example message (with a fuzzer-chosen correlation id), deliver
/// raw bytes as a frame body under an example header, advance the clock, inject an
/// event or send a request, log off. Invariants: nothing panics; every message a
/// session transmits re-decodes to itself; a closed session transmits nothing new and
/// reports `Closed` exactly once (client).
pub fn host_sessions<P: crate::proto::Protocol>(
    data: &[u8],
    all: Vec<crate::proto::Message<P::Body>>,
) {
    use std::time::{Duration, Instant};

    use crate::codec::fields::Ebcdic;
    use crate::proto::logon::{Credential, CredentialKind, LogonRequest};
    use crate::proto::session::*;
    use crate::proto::{Message, ReplyStatus, ReturnCode};

    struct Yes;
    impl<P: crate::proto::Protocol> ServerBackend<P> for Yes {
        fn logon(&mut self, req: &LogonRequest, _: u64) -> LogonDecision {
            if req.credential.expose().starts_with('E') {
                LogonDecision::Accept {
                    domain: Ebcdic::default(),
                    system: Ebcdic::default(),
                }
            } else {
                LogonDecision::Refuse {
                    reason: 0x0101,
                    racf_rc: 8,
                }
            }
        }
        fn request(&mut self, _: &P::Body, _: u64) -> Result<P::Body, ReplyStatus> {
            Err(ReplyStatus::new(ReturnCode::REFUSED, 0x0201))
        }
    }

    fn check_round_trip<P: crate::proto::Protocol>(msg: &Message<P::Body>) {
        match Message::<P::Body>::decode(&msg.to_frame()) {
            Ok(back) => assert_eq!(&back, msg, "transmitted message does not round-trip"),
            Err(e) => panic!("transmitted message does not decode: {e}: {msg:?}"),
        }
    }

    let Some((&side, ops)) = data.split_first() else {
        return;
    };
    if all.is_empty() {
        return;
    }
    let mut now = Instant::now();
    let client_side = side & 1 == 0;
    let cfg = ClientConfig::new(
        Ebcdic::new("HOSTUSR").unwrap_or_default(),
        Ebcdic::new("IOSHMCSM").unwrap_or_default(),
    );
    let Some(credential) = Credential::new("E9QEUZOI") else {
        return;
    };
    let mut client = ClientSession::<P>::new(cfg, CredentialKind::PASSTICKET, credential, now);
    let mut host = ServerSession::<P>::new(ServerConfig::default(), now, 1);
    let mut backend = Yes;
    let mut closed_events = 0;

    for op in ops.chunks(2) {
        let (kind, arg) = (op[0], op.get(1).copied().unwrap_or(0));
        let example = &all[usize::from(arg) % all.len()];
        match kind % 6 {
            0..=2 => {
                let mut frame = example.to_frame();
                if kind % 6 == 1 {
                    frame.header.correlation = u32::from(arg);
                }
                if kind % 6 == 2 {
                    // Raw bytes as a body under an example's header.
                    frame.body =
                        bytes::Bytes::copy_from_slice(&ops[..ops.len().min(usize::from(arg))]);
                }
                if client_side {
                    client.handle_frame(now, &frame);
                } else {
                    host.handle_frame(now, &frame);
                    let _forwarded = serve_work(&mut host, now, 0, &mut backend);
                }
            }
            3 => {
                now += Duration::from_secs(u64::from(arg));
                client.handle_timeout(now);
                host.handle_timeout(now);
            }
            4 => {
                if let Some(body) = example.body.own() {
                    if client_side {
                        let _ = client.send_request(now, body.clone());
                    } else {
                        host.send_event(now, body.clone());
                    }
                }
            }
            _ => {
                if client_side {
                    client.logoff(now);
                } else {
                    host.handle_closed();
                }
            }
        }
        while let Some(m) = client.poll_transmit(now) {
            check_round_trip::<P>(&m);
        }
        while let Some(m) = host.poll_transmit() {
            check_round_trip::<P>(&m);
        }
        while let Some(ev) = client.poll_event() {
            if matches!(ev, ClientEvent::Closed(_)) {
                closed_events += 1;
            }
        }
        assert!(closed_events <= 1, "Closed reported twice");
        assert_eq!(closed_events == 1, client.is_closed());
        if client.is_closed() {
            assert!(client.poll_transmit(now).is_none());
        }
    }
}

/// The frame codec and the DS8000 message decoder on an arbitrary byte stream.
pub fn ds8k_frames(data: &[u8]) {
    host_frames::<crate::proto::ds8k::Ds8k>(data)
}

/// The DS8000 protocol's session state machines under arbitrary operations.
pub fn ds8k_sessions(data: &[u8]) {
    let examples = crate::proto::ds8k::examples::examples()
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    host_sessions::<crate::proto::ds8k::Ds8k>(data, examples)
}

/// The storage model under arbitrary operation sequences, checked after every
/// step against the full-copy oracle (`crate::sim::ds8k::oracle`).
pub fn ds8k_model(data: &[u8]) {
    let ops = crate::sim::ds8k::oracle::ModelOp::decode_all(data);
    if let Err(e) = crate::sim::ds8k::oracle::check_sequence(&ops) {
        panic!("storage model invariant broken: {e}");
    }
}
