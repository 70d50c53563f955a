//! Entry points for the cargo-fuzz targets in `fuzz/`.
//!
//! Each function takes the fuzzer's raw bytes, drives a pure part of the crate and
//! asserts its invariants (panicking on a violation, which the fuzzer reports). The
//! same functions replay the committed seeds and past crashes in `tests/fuzz_seeds.rs`,
//! so a plain `cargo test` covers them on the stable toolchain.

pub mod engine;
mod parsers;
mod sessions;
mod systems;

use std::collections::BTreeSet;
use std::sync::OnceLock;

use crate::proto::Message;

/// What one run reached (named outcomes); the seed tests check that each committed
/// seed still reaches what its name promises.
pub type Reached = BTreeSet<&'static str>;

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
    profile.enhanced_window_secs = window;
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
    host_frames::<crate::proto::zos::Zos>(data);
}

/// [`zos_frames`], returning what the run reached.
pub fn zos_frames_reach(data: &[u8]) -> Reached {
    host_frames::<crate::proto::zos::Zos>(data)
}

/// The frame codec and the z/TPF message decoder on an arbitrary byte stream.
pub fn ztpf_frames(data: &[u8]) {
    host_frames::<crate::proto::ztpf::Ztpf>(data);
}

/// [`ztpf_frames`], returning what the run reached.
pub fn ztpf_frames_reach(data: &[u8]) -> Reached {
    host_frames::<crate::proto::ztpf::Ztpf>(data)
}

/// A z/OS client and server connected by a fuzzed wire ([`sessions::run`]).
pub fn zos_sessions(data: &[u8]) {
    zos_sessions_reach(data);
}

/// [`zos_sessions`], returning what the run reached.
pub fn zos_sessions_reach(data: &[u8]) -> Reached {
    static EXAMPLES: OnceLock<Vec<Message<crate::proto::zos::ZosBody>>> = OnceLock::new();
    let examples = EXAMPLES.get_or_init(|| {
        crate::proto::zos::examples::examples()
            .into_iter()
            .map(|(_, m)| m)
            .collect()
    });
    sessions::run::<crate::proto::zos::Zos>(data, examples)
}

/// A z/TPF client and server connected by a fuzzed wire.
pub fn ztpf_sessions(data: &[u8]) {
    ztpf_sessions_reach(data);
}

/// [`ztpf_sessions`], returning what the run reached.
pub fn ztpf_sessions_reach(data: &[u8]) -> Reached {
    static EXAMPLES: OnceLock<Vec<Message<crate::proto::ztpf::ZtpfBody>>> = OnceLock::new();
    let examples = EXAMPLES.get_or_init(|| {
        crate::proto::ztpf::examples::examples()
            .into_iter()
            .map(|(_, m)| m)
            .collect()
    });
    sessions::run::<crate::proto::ztpf::Ztpf>(data, examples)
}

/// The frame codec and a protocol's decoder on an arbitrary byte stream.
///
/// The first input byte sets the read size (1 to 256 bytes per read), as a socket
/// would fragment the stream. Invariants: cutting the stream into reads does not change
/// which frames come out or which error ends the stream; every frame that decodes to
/// a message re-encodes to exactly its bytes; nothing panics.
///
/// Reaches `message` when a frame decodes, `decode_error` when one does not, and
/// `stream_error` when the stream itself breaks.
pub fn host_frames<P: crate::proto::Protocol>(data: &[u8]) -> Reached {
    let mut reached = Reached::new();
    use bytes::BytesMut;
    use tokio_util::codec::Decoder;

    use crate::codec::frame::FrameCodec;

    let Some((&chunk, stream)) = data.split_first() else {
        return reached;
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

    if whole.1.is_some() {
        reached.insert("stream_error");
    }
    for frame in &whole.0 {
        match crate::proto::Message::<P::Body>::decode(frame) {
            Ok(msg) => {
                reached.insert("message");
                assert_eq!(
                    &msg.to_frame(),
                    frame,
                    "re-encoding {msg:?} changed the frame"
                );
            }
            Err(_) => {
                reached.insert("decode_error");
            }
        }
    }
    reached
}

/// The frame codec and the DS8000 message decoder on an arbitrary byte stream.
pub fn ds8k_frames(data: &[u8]) {
    host_frames::<crate::proto::ds8k::Ds8k>(data);
}

/// [`ds8k_frames`], returning what the run reached.
pub fn ds8k_frames_reach(data: &[u8]) -> Reached {
    host_frames::<crate::proto::ds8k::Ds8k>(data)
}

/// A DS8000 client and server connected by a fuzzed wire.
pub fn ds8k_sessions(data: &[u8]) {
    ds8k_sessions_reach(data);
}

/// [`ds8k_sessions`], returning what the run reached.
pub fn ds8k_sessions_reach(data: &[u8]) -> Reached {
    static EXAMPLES: OnceLock<Vec<Message<crate::proto::ds8k::Ds8kBody>>> = OnceLock::new();
    let examples = EXAMPLES.get_or_init(|| {
        crate::proto::ds8k::examples::examples()
            .into_iter()
            .map(|(_, m)| m)
            .collect()
    });
    sessions::run::<crate::proto::ds8k::Ds8k>(data, examples)
}

/// The storage model under arbitrary operation sequences, checked after every
/// step against the full-copy oracle (`crate::sim::ds8k::oracle`).
pub fn ds8k_model(data: &[u8]) {
    ds8k_model_reach(data);
}

/// [`ds8k_model`], returning which operations succeeded.
pub fn ds8k_model_reach(data: &[u8]) -> Reached {
    let ops = crate::sim::ds8k::oracle::ModelOp::decode_all(data);
    match crate::sim::ds8k::oracle::check_sequence_reach(&ops) {
        Ok(reached) => reached,
        Err(e) => panic!("storage model invariant broken: {e}"),
    }
}

/// Metro Mirror in the simulated DS8000 against its oracle
/// (`sim::ds8k::mirror_oracle`): writes, path and link failures, freezes, resumes,
/// failovers and failbacks in any order.
pub fn ds8k_mirror(data: &[u8]) {
    ds8k_mirror_reach(data);
}

/// [`ds8k_mirror`], returning which situations the run reached.
pub fn ds8k_mirror_reach(data: &[u8]) -> Reached {
    let ops = crate::sim::ds8k::mirror_oracle::MirrorOp::decode_all(data);
    match crate::sim::ds8k::mirror_oracle::run_reach(&ops) {
        Ok(reached) => reached,
        Err(e) => panic!("Metro Mirror invariant broken: {e}"),
    }
}

/// The emulated z/OS system's HyperSwap state machine, IOS path and logons under
/// arbitrary requests (see `systems::zos_system`).
pub fn zos_system(data: &[u8]) {
    zos_system_reach(data);
}

/// [`zos_system`], returning what the run reached.
pub fn zos_system_reach(data: &[u8]) -> Reached {
    systems::zos_system(data)
}

/// The emulated z/TPF complex under arbitrary requests.
pub fn ztpf_system(data: &[u8]) {
    ztpf_system_reach(data);
}

/// [`ztpf_system`], returning what the run reached.
pub fn ztpf_system_reach(data: &[u8]) -> Reached {
    systems::ztpf_system(data)
}

/// The DS8000 service's path from wire requests into the storage model.
pub fn hmc(data: &[u8]) {
    hmc_reach(data);
}

/// [`hmc`], returning what the run reached.
pub fn hmc_reach(data: &[u8]) -> Reached {
    systems::hmc(data)
}

/// Id and name parsers, hex keys and the TOML configurations.
pub fn parsers(data: &[u8]) {
    parsers_reach(data);
}

/// [`parsers`], returning what the run reached.
pub fn parsers_reach(data: &[u8]) -> Reached {
    parsers::run(data)
}

/// The emulated hosts' storage link: a host FLASH or SGC_BACKUP becomes one DS8000
/// request. Invariants: it is built exactly when every VOLREF names the linked box;
/// its option bits are DS CLI options; it round-trips on the wire.
pub fn storage_link(data: &[u8]) {
    storage_link_reach(data);
}

/// [`storage_link`], returning what the run reached.
pub fn storage_link_reach(data: &[u8]) -> Reached {
    use crate::codec::fields::Ebcdic;
    use crate::peer::storage_link::{backup_request, flash_request};
    use crate::proto::{HostFlashOptions, VolumePair, VolumeRef};

    let mut reached = Reached::new();
    let mut input = Input(data);
    let serial = "75FA120";
    let volume = |input: &mut Input<'_>| {
        let b = input.byte();
        VolumeRef {
            storage: Ebcdic::new(if b & 0x80 == 0 { serial } else { "OTHER" }).unwrap_or_default(),
            volume: u16::from_be_bytes([input.byte(), b]),
            device: 0,
        }
    };
    let options = HostFlashOptions(u16::from(input.byte() & 0x0F));
    let n = usize::from(input.byte() % 8) + 1;
    let pairs: Vec<VolumePair> = (0..n)
        .map(|_| VolumePair {
            first: volume(&mut input),
            second: volume(&mut input),
        })
        .collect();
    let ours = |v: &VolumeRef| v.storage.as_str() == serial;
    let all_ours = pairs.iter().all(|p| ours(&p.first) && ours(&p.second));
    let built = flash_request(serial, options, &pairs, input.byte() & 1 == 1);
    assert_eq!(
        built.is_ok(),
        all_ours,
        "flash built for another box's volumes"
    );
    let volumes: Vec<VolumeRef> = pairs.iter().map(|p| p.first.clone()).collect();
    let backup = backup_request(serial, &volumes);
    assert_eq!(backup.is_ok(), volumes.iter().all(ours));
    for body in [built, backup].into_iter().flatten() {
        if let crate::proto::ds8k::Ds8kBody::FlashRequest { options: o, .. } = &body {
            assert_eq!(
                o.0 & !crate::ds8k::FlashOptions::KNOWN,
                0,
                "undefined DS CLI bits"
            );
            assert_eq!(
                o.0 & crate::ds8k::FlashOptions::FREEZE,
                0,
                "a host flash never freezes"
            );
        }
        let msg = Message::own(9, body);
        assert_eq!(Message::decode(&msg.to_frame()).ok().as_ref(), Some(&msg));
        reached.insert("built");
    }
    if !all_ours {
        reached.insert("foreign_volume_refused");
    }
    reached
}

/// The HA protocol (protocol-specs/ha.md): the first byte picks what the rest is.
/// 0: a byte stream of frames, each HA message decoded must re-encode to its frame
/// byte for byte, and a PAIR's `Debug` never shows its password or keys. 1: a full
/// copy's encoding (ha.md §5.2): decoded or refused, never a panic; decoded, it
/// re-encodes to the same bytes. 2: the pair's rules: a batch of (sequence number,
/// epoch) is taken exactly when it follows without a gap and its epochs never go
/// down, and the HELLO table resumes only where the journals agree.
pub fn ha(data: &[u8]) {
    ha_reach(data);
}

/// [`ha`], returning what the run reached.
pub fn ha_reach(data: &[u8]) -> Reached {
    use crate::proto::ha::rules;
    let mut reached = Reached::new();
    let Some((&which, rest)) = data.split_first() else {
        return reached;
    };
    match which % 3 {
        0 => {
            use bytes::BytesMut;
            use tokio_util::codec::Decoder;
            let mut codec = crate::codec::frame::FrameCodec::new(crate::proto::ha::HA_MAX_BODY);
            let mut buf = BytesMut::from(rest);
            loop {
                match codec.decode_eof(&mut buf) {
                    Ok(Some(frame)) => match crate::proto::ha::HaMessage::decode(&frame) {
                        Ok(m) => {
                            reached.insert("message");
                            let mut again = BytesMut::new();
                            m.encode(&mut again);
                            let mut whole = BytesMut::new();
                            frame.encode(&mut whole);
                            assert_eq!(again, whole, "{} does not round-trip", m.body.name());
                            if let crate::proto::ha::HaBody::Pair { .. } = &m.body {
                                // `Debug` must not depend on the secrets: the same
                                // message with other secrets shows the same text
                                // (compared, not searched, so a secret that spells a
                                // field name is not a false alarm).
                                let mut other = m.clone();
                                if let crate::proto::ha::HaBody::Pair {
                                    password,
                                    key_pem,
                                    csm_key_pem,
                                    ..
                                } = &mut other.body
                                {
                                    for secret in [password, key_pem, csm_key_pem] {
                                        let n = secret.expose().chars().count();
                                        *secret =
                                            crate::proto::ha::Secret::new(&"\u{1}".repeat(n + 1));
                                    }
                                }
                                assert_eq!(
                                    format!("{m:?}"),
                                    format!("{other:?}"),
                                    "a secret is shown"
                                );
                                reached.insert("pair");
                            }
                        }
                        Err(_) => {
                            reached.insert("decode_error");
                        }
                    },
                    Ok(None) => break,
                    Err(_) => {
                        reached.insert("stream_error");
                        break;
                    }
                }
            }
        }
        1 => match crate::gateway::ha::link::decode_copy(rest) {
            Ok(copy) => {
                reached.insert("copy");
                assert_eq!(
                    crate::gateway::ha::link::encode_copy(&copy),
                    rest,
                    "a full copy does not re-encode"
                );
            }
            Err(_) => {
                reached.insert("copy_refused");
            }
        },
        _ => {
            let mut input = Input(rest);
            let last = u64::from(input.byte());
            let epoch = u64::from(input.byte() % 4);
            let n = usize::from(input.byte() % 8);
            let batch: Vec<(u64, u64)> = (0..n)
                .map(|_| (u64::from(input.byte()), u64::from(input.byte() % 6)))
                .collect();
            let follows = batch
                .iter()
                .enumerate()
                .all(|(i, (s, _))| *s == last + 1 + i as u64);
            let rising = batch
                .iter()
                .try_fold(epoch, |e, (_, x)| (*x >= e).then_some(*x))
                .is_some();
            let taken = rules::check_batch(last, epoch, batch.iter().copied());
            assert_eq!(
                taken.is_ok(),
                follows && rising,
                "{batch:?} after {last}/{epoch}"
            );
            reached.insert(if taken.is_ok() {
                "batch_taken"
            } else {
                "batch_refused"
            });
            // A journal of `len` records whose epochs change at given points.
            let len = u64::from(input.byte());
            let e1 = u64::from(input.byte()).min(len + 1);
            let epoch_at =
                move |seq: u64| (seq >= 1 && seq <= len).then_some(if seq >= e1 { 2 } else { 1 });
            let them = rules::Follower {
                purpose: if input.byte() % 4 == 0 {
                    crate::proto::ha::HaPurpose::RESYNC
                } else {
                    crate::proto::ha::HaPurpose::FOLLOW
                },
                epoch: u64::from(input.byte() % 4),
                last_seq: u64::from(input.byte()),
                last_epoch: u64::from(input.byte() % 3),
            };
            let me = rules::Listener {
                active: true,
                epoch: 2,
                last_seq: len,
                first_held: u64::from(input.byte() % 8) + 1,
                partnership: rules::Partnership::Partner,
                epoch_at: &epoch_at,
            };
            match rules::answer_follow(&me, &them) {
                rules::FollowAnswer::Resume { after } => {
                    assert_eq!(after, them.last_seq);
                    assert_eq!(epoch_at(after), Some(them.last_epoch));
                    assert!(after + 1 >= me.first_held && them.epoch <= me.epoch);
                    reached.insert("resume");
                }
                rules::FollowAnswer::FullCopy => {
                    reached.insert("full_copy");
                }
                _ => {
                    reached.insert("refused");
                }
            }
        }
    }
    reached
}
