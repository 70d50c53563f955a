//! A client session and a server session of one protocol, connected by a wire the
//! fuzzer controls, checked against the protocol's rules (framing.md §8.2,
//! zos-hyperswap.md §4).
//!
//! Input: the first byte chooses the client's credential (bit 0: a password the
//! server refuses) and its request deadline; then each operation is two bytes, kind
//! and argument (see [`Op`]). The server's work (logons and requests) waits on a desk
//! until an operation decides it, so deferred answers, pending logoffs, duplicate
//! correlation ids and the outstanding bound are all reachable.
//!
//! Rules checked after every operation:
//! - every message either side transmits decodes back to itself;
//! - the client reports `Closed` once, and answers (reply, rejection, timeout) only
//!   for requests it sent, each at most once;
//! - the server hands out request work only on a logged-on connection, never more
//!   than 64 outstanding, answers only correlation ids it received, and closes after
//!   the third refused logon;
//! - a closed session transmits nothing new.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::codec::fields::Ebcdic;
use crate::codec::frame::{Frame, FrameError};
use crate::proto::logon::{Credential, CredentialKind};
use crate::proto::session::{
    ClientConfig, ClientEvent, LogonDecision, MAX_OUTSTANDING_AT_SERVER, RequestId, ServerConfig,
    ServerSession, Work,
};
use crate::proto::{
    CommonReason, Control, FrameKind, Message, Payload, Protocol, ReplyStatus, ReturnCode,
    WireBody, answer,
};

use super::Reached;

/// Operation kinds (first byte of each pair, modulo the count).
#[derive(Debug, Clone, Copy)]
enum Op {
    /// Deliver the next frame client → server.
    ToServer,
    /// Deliver the next frame server → client.
    ToClient,
    /// Deliver everything both ways until quiet.
    Pump,
    /// Lose the next frame client → server.
    DropToServer,
    /// Deliver the next frame client → server with one byte of it changed.
    CorruptToServer,
    /// An example message, under the argument as correlation id, to one side.
    Inject,
    /// Advance the clock by the argument in seconds; both sides' timers run.
    Advance,
    /// The client sends one of the examples' requests.
    Request,
    /// The server sends one of the examples' events.
    Event,
    /// Decide the oldest work on the server's desk (the argument says how).
    Decide,
    /// The client logs off.
    Logoff,
    /// The codec fails on one side (the argument says which and how).
    StreamError,
    /// One side's transport ends.
    Closed,
}

const OPS: [Op; 13] = [
    Op::ToServer,
    Op::ToClient,
    Op::Pump,
    Op::DropToServer,
    Op::CorruptToServer,
    Op::Inject,
    Op::Advance,
    Op::Request,
    Op::Event,
    Op::Decide,
    Op::Logoff,
    Op::StreamError,
    Op::Closed,
];

/// The password the fuzz server accepts.
const GOOD: &str = "SECRET1";

fn round_trip<B: WireBody + PartialEq + std::fmt::Debug>(msg: &Message<B>) {
    match Message::<B>::decode(&msg.to_frame()) {
        Ok(back) => assert_eq!(&back, msg, "transmitted message does not round-trip"),
        Err(e) => panic!("transmitted message does not decode: {e}: {msg:?}"),
    }
}

/// Runs the pair; returns what the run reached (for the seed tests).
pub fn run<P: Protocol>(data: &[u8], examples: &[Message<P::Body>]) -> Reached {
    let mut reached = Reached::default();
    let Some((&setup, ops)) = data.split_first() else {
        return reached;
    };
    let own = |kind: FrameKind| -> Vec<P::Body> {
        examples
            .iter()
            .filter_map(|m| m.body.own())
            .filter(|b| b.wire_type().1 == kind)
            .cloned()
            .collect()
    };
    let (requests, events) = (own(FrameKind::Request), own(FrameKind::Event));
    let start = Instant::now();
    let mut now = start;
    let password = if setup & 1 == 0 { GOOD } else { "WRONG1" };
    let Some(credential) = Credential::new(password) else {
        return reached;
    };
    let mut config = ClientConfig::new(
        Ebcdic::new("HOSTUSR").unwrap_or_default(),
        Ebcdic::new("IOSHMCSM").unwrap_or_default(),
    );
    config.request_timeout = Duration::from_secs(u64::from(setup >> 1) + 1);
    let mut client = crate::proto::session::ClientSession::<P>::new(
        config,
        CredentialKind::PASSWORD,
        credential,
        now,
    );
    let mut server = ServerSession::<P>::new(ServerConfig::default(), now, 7);

    let mut to_server: VecDeque<Frame> = VecDeque::new();
    let mut to_client: VecDeque<Frame> = VecDeque::new();
    let mut desk: VecDeque<Work<P::Body>> = VecDeque::new();
    // Client bookkeeping: requests sent and not yet answered.
    let mut open_requests: HashSet<RequestId> = HashSet::new();
    let mut closed_events = 0;
    // Server bookkeeping.
    let mut received: BTreeMap<u32, usize> = BTreeMap::new();
    let mut answered: BTreeMap<u32, usize> = BTreeMap::new();
    let mut refused_logons = 0u32;
    let mut logged_on = false;
    let mut server_closed_at: Option<usize> = None;
    let mut server_sent = 0usize;

    // The client's LOGON is on the wire before the first operation.
    transmit(
        &mut client,
        &mut server,
        now,
        &mut to_server,
        &mut to_client,
        &mut answered,
        &mut server_sent,
    );
    for (step, op) in ops.chunks(2).enumerate() {
        let (kind, arg) = (
            OPS[usize::from(op[0]) % OPS.len()],
            op.get(1).copied().unwrap_or(0),
        );
        match kind {
            Op::ToServer | Op::CorruptToServer | Op::DropToServer => {
                let Some(mut frame) = to_server.pop_front() else {
                    continue;
                };
                match kind {
                    Op::DropToServer => continue,
                    Op::CorruptToServer => {
                        let mut body = frame.body.to_vec();
                        if body.is_empty() {
                            frame.header.message_type ^= u16::from(arg);
                        } else {
                            let i = usize::from(arg) % body.len();
                            body[i] ^= arg | 1;
                            frame.body = body.into();
                        }
                    }
                    _ => {}
                }
                deliver(&mut server, &frame, now, &mut received, &desk, &mut reached);
            }
            Op::ToClient => {
                if let Some(frame) = to_client.pop_front() {
                    client.handle_frame(now, &frame);
                }
            }
            Op::Pump => {
                for _ in 0..64 {
                    if to_server.is_empty() && to_client.is_empty() {
                        break;
                    }
                    while let Some(frame) = to_server.pop_front() {
                        deliver(&mut server, &frame, now, &mut received, &desk, &mut reached);
                    }
                    while let Some(frame) = to_client.pop_front() {
                        client.handle_frame(now, &frame);
                    }
                    transmit(
                        &mut client,
                        &mut server,
                        now,
                        &mut to_server,
                        &mut to_client,
                        &mut answered,
                        &mut server_sent,
                    );
                }
            }
            Op::Inject => {
                if examples.is_empty() {
                    continue;
                }
                let mut frame = examples[usize::from(arg) % examples.len()].to_frame();
                frame.header.correlation = u32::from(arg);
                if arg & 0x80 == 0 {
                    deliver(&mut server, &frame, now, &mut received, &desk, &mut reached);
                } else {
                    client.handle_frame(now, &frame);
                }
            }
            Op::Advance => {
                now += Duration::from_secs(u64::from(arg));
                client.handle_timeout(now);
                server.handle_timeout(now);
            }
            Op::Request => {
                if let Some(body) = requests.get(usize::from(arg) % requests.len().max(1))
                    && let Ok(id) = client.send_request(now, body.clone())
                {
                    assert!(
                        open_requests.insert(id),
                        "request id {id:?} reused while open"
                    );
                }
            }
            Op::Event => {
                if let Some(body) = events.get(usize::from(arg) % events.len().max(1)) {
                    server.send_event(now, body.clone());
                }
            }
            Op::Decide => decide::<P>(
                &mut server,
                &mut desk,
                now,
                arg,
                &mut refused_logons,
                &mut logged_on,
                &mut reached,
            ),
            Op::Logoff => client.logoff(now),
            Op::StreamError => {
                let error = if arg & 2 == 0 {
                    FrameError::BadMagic { found: [arg, arg] }
                } else {
                    FrameError::Truncated { buffered: 3 }
                };
                if arg & 1 == 0 {
                    client.handle_stream_error(now, &error);
                } else {
                    server.handle_stream_error(now, &error);
                }
                reached.insert("stream_error");
            }
            Op::Closed => {
                if arg & 1 == 0 {
                    client.handle_closed();
                } else {
                    server.handle_closed();
                }
            }
        }

        // The server's new work goes to the desk; request work needs a logon.
        while let Some(work) = server.poll_work() {
            if let Work::Request { .. } = &work {
                assert!(logged_on && server.is_ready(), "request work before logon");
            }
            desk.push_back(work);
        }
        assert!(
            server.outstanding() <= MAX_OUTSTANDING_AT_SERVER,
            "over 64 outstanding"
        );
        if refused_logons >= 3 {
            assert!(server.is_closed(), "server open after three refused logons");
            reached.insert("closed_after_refusals");
        }
        let closed_before = server.is_closed() && server_closed_at.is_some();
        if server.is_closed() && server_closed_at.is_none() {
            server_closed_at = Some(step);
        }
        let sent_before = server_sent;
        transmit(
            &mut client,
            &mut server,
            now,
            &mut to_server,
            &mut to_client,
            &mut answered,
            &mut server_sent,
        );
        if closed_before {
            assert_eq!(server_sent, sent_before, "a closed server transmitted");
        }
        for (correlation, n) in &answered {
            let got = received.get(correlation).copied().unwrap_or(0);
            assert!(
                *n <= got,
                "server answered {correlation} {n} times, received {got}"
            );
        }
        while let Some(event) = client.poll_event() {
            match event {
                ClientEvent::LoggedOn { .. } => {
                    reached.insert("logged_on");
                }
                ClientEvent::Reply { request, .. } => {
                    assert!(
                        open_requests.remove(&request),
                        "reply for {request:?}, not open"
                    );
                    reached.insert("reply");
                }
                ClientEvent::Rejected { request, status } => {
                    assert!(
                        open_requests.remove(&request),
                        "rejection for {request:?}, not open"
                    );
                    assert_eq!(status.rc, ReturnCode::PROTOCOL_ERROR);
                    reached.insert("rejected");
                }
                ClientEvent::RequestTimedOut { request } => {
                    assert!(
                        open_requests.remove(&request),
                        "timeout for {request:?}, not open"
                    );
                    reached.insert("request_timed_out");
                }
                ClientEvent::Event(_) => {
                    reached.insert("event");
                }
                ClientEvent::Closed(reason) => {
                    closed_events += 1;
                    open_requests.clear();
                    reached.insert(match reason {
                        crate::proto::session::CloseReason::LogonRefused { .. } => "logon_refused",
                        crate::proto::session::CloseReason::LoggedOff => "logged_off",
                        crate::proto::session::CloseReason::PeerDead => "peer_dead",
                        crate::proto::session::CloseReason::LogonTimeout => "logon_timeout",
                        _ => "client_closed",
                    });
                }
            }
        }
        assert!(closed_events <= 1, "Closed reported twice");
        assert_eq!(closed_events == 1, client.is_closed());
    }
    reached
}

/// Hands a frame to the server, first recording a request it may answer and the
/// conditions the frame meets (a duplicate correlation id, a full connection).
fn deliver<P: Protocol>(
    server: &mut ServerSession<P>,
    frame: &Frame,
    now: Instant,
    received: &mut BTreeMap<u32, usize>,
    desk: &VecDeque<Work<P::Body>>,
    reached: &mut Reached,
) {
    if frame.header.flags.0 == 0 {
        let correlation = frame.header.correlation;
        *received.entry(correlation).or_default() += 1;
        let own_request = !P::Body::CONTROL.contains(frame.header.message_type);
        if server.is_ready() && own_request {
            let outstanding = desk
                .iter()
                .any(|w| matches!(w, Work::Request { correlation: c, .. } if *c == correlation));
            if outstanding {
                reached.insert("duplicate_correlation");
            }
            if server.outstanding() >= MAX_OUTSTANDING_AT_SERVER {
                reached.insert("outstanding_full");
            }
        }
    }
    server.handle_frame(now, frame);
}

/// Moves both sides' transmit queues onto the wire, checking every message.
fn transmit<P: Protocol>(
    client: &mut crate::proto::session::ClientSession<P>,
    server: &mut ServerSession<P>,
    now: Instant,
    to_server: &mut VecDeque<Frame>,
    to_client: &mut VecDeque<Frame>,
    answered: &mut BTreeMap<u32, usize>,
    server_sent: &mut usize,
) {
    while let Some(m) = client.poll_transmit(now) {
        round_trip(&m);
        to_server.push_back(m.to_frame());
    }
    while let Some(m) = server.poll_transmit() {
        round_trip(&m);
        *server_sent += 1;
        let (_, kind) = m.body.wire_type();
        let heartbeat = matches!(m.body, Payload::Control(Control::HeartbeatRequest { .. }));
        if kind == FrameKind::Reply && !heartbeat && m.correlation != 0 {
            *answered.entry(m.correlation).or_default() += 1;
        }
        to_client.push_back(m.to_frame());
    }
}

/// Decides the oldest work on the desk: bits 0–1 of `arg` choose accept (or a reply
/// with RC 0), refuse, refuse with a connection reason, or leave it for later (it
/// then goes to the back of the desk).
fn decide<P: Protocol>(
    server: &mut ServerSession<P>,
    desk: &mut VecDeque<Work<P::Body>>,
    now: Instant,
    arg: u8,
    refused_logons: &mut u32,
    logged_on: &mut bool,
    reached: &mut Reached,
) {
    let Some(work) = desk.pop_front() else {
        return;
    };
    match (work, arg % 4) {
        (work, 3) => {
            reached.insert("deferred");
            desk.push_back(work);
        }
        (
            Work::Logon {
                correlation,
                request,
            },
            choice,
        ) => {
            let good = request.credential.expose() == GOOD;
            let decision = if good && choice != 1 {
                LogonDecision::Accept {
                    domain: Ebcdic::new("PLEX1").unwrap_or_default(),
                    system: Ebcdic::new("SYSA").unwrap_or_default(),
                }
            } else {
                LogonDecision::Refuse {
                    reason: crate::proto::logon::NOT_AUTHORIZED,
                    racf_rc: 8,
                    precise: 0x0110,
                    revoked_now: false,
                }
            };
            let accept = matches!(decision, LogonDecision::Accept { .. });
            let (was_ready, was_closed) = (server.is_ready(), server.is_closed());
            server.complete_logon(now, correlation, decision);
            if accept && server.is_ready() && !was_ready {
                *logged_on = true;
            }
            if !accept && !was_ready && !was_closed {
                *refused_logons += 1;
            }
        }
        (Work::Request { correlation, body }, choice) => {
            let status = match choice {
                0 => ReplyStatus::OK,
                1 => ReplyStatus::new(ReturnCode::REFUSED, 0x0201),
                _ => ReplyStatus::new(ReturnCode::FAILED, CommonReason::SHUTTING_DOWN.0),
            };
            let result = if choice == 0 {
                P::refusal_reply(&body, status).ok_or(status)
            } else {
                Err(status)
            };
            let was_closed = server.is_closed();
            server.complete(now, correlation, answer::<P>(&body, result));
            if server.is_closed() && !was_closed {
                reached.insert("logoff_waited_for_outstanding");
            }
            reached.insert("request_decided");
        }
    }
}
