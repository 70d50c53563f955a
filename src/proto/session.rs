//! Sans-IO connection state machines shared by the host protocols (spec:
//! protocol-specs/zos-hyperswap.md §4, protocol-specs/ztpf.md §4). Each protocol
//! plugs in through [`Protocol`]; `crate::proto::zos::session` and
//! `crate::proto::ztpf::session` name the concrete types.
//!
//! Neither machine touches a socket or a clock. The driver (`crate::client`,
//! `crate::peer`) calls, in a loop:
//!
//! 1. `handle_frame(now, frame)` for every frame read, `handle_stream_error` when the
//!    codec fails, `handle_closed` at EOF, `handle_timeout(now)` when the deadline
//!    from `poll_timeout` passes;
//! 2. `poll_transmit()` until `None`, writing each message;
//! 3. `poll_event()` until `None` (client only);
//! 4. stops when `is_closed()` and the transmit queue is empty.
//!
//! ```text
//! client:  SendLogon ─► ExpectLogonReply ─RC 0─► Ready ─logoff─► ExpectLogoffReply ─► Closed
//!                              └─ RC≠0 / timeout ─────────────────────────────────────► Closed
//! host:    ExpectLogon ─valid logon─► Ready ─logoff─► Closed
//!              └─ refused (at most 3) ─► ExpectLogon
//! ```

use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use crate::codec::fields::Ebcdic;
use crate::codec::frame::{Flags, Frame, FrameError};
use crate::proto::logon::{Credential, CredentialKind, LogonReply, LogonRequest};
use crate::proto::{
    CommonReason, Control, Message, MessageError, Payload, Protocol, ReplyStatus, ReturnCode, View,
    WireBody, answer, refusal,
};

/// First correlation id of unsolicited events (protocol-specs/framing.md §1).
const FIRST_EVENT_ID: u32 = 0x8000_0001;

/// Next request correlation id: 1, 2, … skipping 0 and the event range.
fn next_id(id: u32) -> u32 {
    if id >= FIRST_EVENT_ID - 1 { 1 } else { id + 1 }
}

/// A request the client sent, as the caller knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(pub u32);

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The host refused the logon.
    LogonRefused {
        /// Return and reason code.
        status: ReplyStatus,
        /// RACF-style return code.
        racf_rc: u16,
    },
    /// Logoff completed.
    LoggedOff,
    /// The peer answered PROTOCOL_ERROR to something that cannot go on.
    PeerProtocolError {
        /// The peer's reason.
        reason: CommonReason,
    },
    /// The peer sent a well-formed message that the connection's state does not allow
    /// (zos-hyperswap.md §4); the connection closes.
    UnexpectedMessage {
        /// The message's name.
        message: &'static str,
        /// The state the connection was in.
        state: &'static str,
    },
    /// The peer broke the protocol; we told it so.
    ProtocolViolation {
        /// What happened.
        detail: String,
    },
    /// Nothing received for three heartbeat intervals.
    PeerDead,
    /// No logon reply before the deadline.
    LogonTimeout,
    /// No logoff reply before the deadline.
    LogoffTimeout,
    /// The peer closed the connection.
    PeerClosed,
    /// Too many refused logons on one connection (host side).
    TooManyLogonAttempts,
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// User ID.
    pub user: Ebcdic<8>,
    /// Application name.
    pub appl: Ebcdic<8>,
    /// Heartbeat interval to propose, seconds (0 = host's choice).
    pub heartbeat_secs: u16,
    /// Deadline for the logon reply.
    pub logon_timeout: Duration,
    /// Deadline for each request's reply.
    pub request_timeout: Duration,
    /// Most requests outstanding at once.
    pub max_outstanding: usize,
}

impl ClientConfig {
    /// Defaults (zos-hyperswap.md §4) for `user` on `appl`.
    pub fn new(user: Ebcdic<8>, appl: Ebcdic<8>) -> Self {
        ClientConfig {
            user,
            appl,
            heartbeat_secs: 30,
            logon_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_outstanding: 64,
        }
    }
}

/// What the client tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent<B> {
    /// Logon accepted.
    LoggedOn {
        /// Host's session id.
        session_id: u32,
        /// Agreed heartbeat interval.
        heartbeat_secs: u16,
        /// Sysplex (z/OS), complex (z/TPF) or storage image serial (DS8000).
        domain: String,
        /// System name.
        system: String,
    },
    /// The reply to a request.
    Reply {
        /// Which request.
        request: RequestId,
        /// The reply.
        body: B,
    },
    /// The server answered a request with PROTOCOL_ERROR (framing.md §6).
    Rejected {
        /// Which request.
        request: RequestId,
        /// RC 16 and the common reason.
        status: ReplyStatus,
    },
    /// A request got no reply in time; a late reply is dropped.
    RequestTimedOut {
        /// Which request.
        request: RequestId,
    },
    /// An unsolicited event from the host.
    Event(B),
    /// The connection is over; the driver closes the socket.
    Closed(CloseReason),
}

/// Errors of a request the session cannot send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// Not logged on (or already logging off / closed).
    #[error("cannot send {message}: connection is {state}")]
    NotReady {
        /// Message name.
        message: &'static str,
        /// State name.
        state: &'static str,
    },
    /// `max_outstanding` requests are waiting already.
    #[error("{0} requests outstanding")]
    TooManyOutstanding(usize),
    /// Only requests can be sent.
    #[error("{0} is not a request")]
    NotARequest(&'static str),
}

#[derive(Debug)]
enum ClientState {
    SendLogon {
        request: LogonRequest,
    },
    ExpectLogonReply {
        correlation: u32,
        deadline: Instant,
    },
    Ready {
        heartbeat: Duration,
    },
    ExpectLogoffReply {
        correlation: u32,
        deadline: Instant,
        heartbeat: Duration,
    },
    Closed,
}

impl ClientState {
    fn name(&self) -> &'static str {
        match self {
            ClientState::SendLogon { .. } => "SendLogon",
            ClientState::ExpectLogonReply { .. } => "ExpectLogonReply",
            ClientState::Ready { .. } => "Ready",
            ClientState::ExpectLogoffReply { .. } => "ExpectLogoffReply",
            ClientState::Closed => "Closed",
        }
    }

    fn heartbeat(&self) -> Option<Duration> {
        match self {
            ClientState::Ready { heartbeat } | ClientState::ExpectLogoffReply { heartbeat, .. } => {
                Some(*heartbeat)
            }
            _ => None,
        }
    }
}

struct Outstanding {
    deadline: Instant,
    /// Heartbeats are the session's own; their replies are not events.
    internal: bool,
}

/// The gateway side of one host connection.
pub struct ClientSession<P: Protocol> {
    config: ClientConfig,
    state: ClientState,
    next_correlation: u32,
    outstanding: HashMap<u32, Outstanding>,
    transmit: VecDeque<Message<P::Body>>,
    events: VecDeque<ClientEvent<P::Body>>,
    last_received: Instant,
    last_sent: Instant,
    heartbeat_seq: u32,
    _protocol: PhantomData<fn() -> P>,
}

impl<P: Protocol> ClientSession<P> {
    /// A session that will log on with `credential` (a fresh PassTicket, or a password).
    pub fn new(
        config: ClientConfig,
        kind: CredentialKind,
        credential: Credential,
        now: Instant,
    ) -> Self {
        let request = LogonRequest {
            user: config.user.clone(),
            appl: config.appl.clone(),
            kind,
            heartbeat_secs: config.heartbeat_secs,
            credential,
        };
        ClientSession {
            config,
            state: ClientState::SendLogon { request },
            next_correlation: 1,
            outstanding: HashMap::new(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            last_received: now,
            last_sent: now,
            heartbeat_seq: 0,
            _protocol: PhantomData,
        }
    }

    /// The state's name (for logs and tests).
    pub fn state_name(&self) -> &'static str {
        self.state.name()
    }

    /// True once logged on and not logging off.
    pub fn is_ready(&self) -> bool {
        matches!(self.state, ClientState::Ready { .. })
    }

    /// True when the connection is over.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, ClientState::Closed)
    }

    /// Requests waiting for replies (heartbeats included).
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    fn correlation(&mut self) -> u32 {
        let id = self.next_correlation;
        self.next_correlation = next_id(id);
        id
    }

    fn queue(&mut self, now: Instant, correlation: u32, body: Payload<P::Body>) {
        self.last_sent = now;
        self.transmit.push_back(Message { correlation, body });
    }

    fn close(&mut self, reason: CloseReason) {
        if !self.is_closed() {
            self.state = ClientState::Closed;
            self.outstanding.clear();
            self.events.push_back(ClientEvent::Closed(reason));
        }
    }

    /// The next message to write.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Message<P::Body>> {
        if let ClientState::SendLogon { .. } = self.state {
            let correlation = self.correlation();
            let deadline = now + self.config.logon_timeout;
            let previous = std::mem::replace(
                &mut self.state,
                ClientState::ExpectLogonReply {
                    correlation,
                    deadline,
                },
            );
            if let ClientState::SendLogon { request } = previous {
                self.last_sent = now;
                return Some(Message::control(
                    correlation,
                    Control::LogonRequest(request),
                ));
            }
        }
        self.transmit.pop_front()
    }

    /// The next event for the owner.
    pub fn poll_event(&mut self) -> Option<ClientEvent<P::Body>> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let request = self.outstanding.values().map(|o| o.deadline).min();
        let state = match &self.state {
            ClientState::SendLogon { .. } | ClientState::Closed => None,
            ClientState::ExpectLogonReply { deadline, .. } => Some(*deadline),
            ClientState::Ready { heartbeat } => {
                Some((self.last_sent + *heartbeat).min(self.last_received + *heartbeat * 3))
            }
            ClientState::ExpectLogoffReply {
                deadline,
                heartbeat,
                ..
            } => Some(
                (self.last_sent + *heartbeat)
                    .min(self.last_received + *heartbeat * 3)
                    .min(*deadline),
            ),
        };
        [request, state].into_iter().flatten().min()
    }

    /// Sends a request; its reply arrives as [`ClientEvent::Reply`].
    pub fn send_request(&mut self, now: Instant, body: P::Body) -> Result<RequestId, SendError> {
        let name = P::Body::type_name(body.wire_type().0).unwrap_or("UNKNOWN");
        if !self.is_ready() {
            return Err(SendError::NotReady {
                message: name,
                state: self.state.name(),
            });
        }
        if body.wire_type().1 != crate::proto::FrameKind::Request {
            return Err(SendError::NotARequest(name));
        }
        // spec: zos-hyperswap.md §4: at most 64 outstanding per connection.
        if self.outstanding.len() >= self.config.max_outstanding {
            return Err(SendError::TooManyOutstanding(self.outstanding.len()));
        }
        let correlation = self.correlation();
        self.outstanding.insert(
            correlation,
            Outstanding {
                deadline: now + self.config.request_timeout,
                internal: false,
            },
        );
        self.queue(now, correlation, Payload::Own(body));
        Ok(RequestId(correlation))
    }

    /// Starts an orderly logoff (replies to outstanding requests still arrive).
    pub fn logoff(&mut self, now: Instant) {
        match self.state {
            ClientState::Ready { heartbeat } => {
                let correlation = self.correlation();
                self.state = ClientState::ExpectLogoffReply {
                    correlation,
                    deadline: now + self.config.request_timeout,
                    heartbeat,
                };
                self.queue(now, correlation, Payload::Control(Control::LogoffRequest));
            }
            ClientState::ExpectLogoffReply { .. } | ClientState::Closed => {}
            ClientState::SendLogon { .. } | ClientState::ExpectLogonReply { .. } => {
                self.close(CloseReason::LoggedOff)
            }
        }
    }

    /// The transport ended (EOF or error).
    pub fn handle_closed(&mut self) {
        let reason = if matches!(self.state, ClientState::ExpectLogoffReply { .. }) {
            CloseReason::LoggedOff
        } else {
            CloseReason::PeerClosed
        };
        self.close(reason);
    }

    /// The codec could not cut a frame (protocol-specs/framing.md §2).
    pub fn handle_stream_error(&mut self, now: Instant, error: &FrameError) {
        if self.is_closed() {
            return;
        }
        if let Some(reply) = protocol_error_for_stream::<P>(error) {
            self.queue(now, reply.correlation, reply.body);
        }
        self.close(CloseReason::ProtocolViolation {
            detail: error.to_string(),
        });
    }

    /// Deadlines: logon, requests, heartbeat, dead peer.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &self.state {
            // spec: zos-hyperswap.md §4: deadlines (logon reply 10 s by default).
            ClientState::ExpectLogonReply { deadline, .. } if now >= *deadline => {
                return self.close(CloseReason::LogonTimeout);
            }
            ClientState::ExpectLogoffReply { deadline, .. } if now >= *deadline => {
                return self.close(CloseReason::LogoffTimeout);
            }
            _ => {}
        }
        let expired: Vec<u32> = self
            .outstanding
            .iter()
            .filter(|(_, o)| now >= o.deadline)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(o) = self.outstanding.remove(&id)
                && !o.internal
            {
                self.events.push_back(ClientEvent::RequestTimedOut {
                    request: RequestId(id),
                });
            }
        }
        if let Some(heartbeat) = self.state.heartbeat() {
            // spec: zos-hyperswap.md §3.2: three silent intervals mean a dead peer.
            if now >= self.last_received + heartbeat * 3 {
                return self.close(CloseReason::PeerDead);
            }
            // spec: zos-hyperswap.md §3.2: a heartbeat after one interval without sending.
            if now >= self.last_sent + heartbeat {
                self.heartbeat_seq = self.heartbeat_seq.wrapping_add(1);
                let correlation = self.correlation();
                self.outstanding.insert(
                    correlation,
                    Outstanding {
                        deadline: now + heartbeat * 3,
                        internal: true,
                    },
                );
                let seq = self.heartbeat_seq;
                self.queue(
                    now,
                    correlation,
                    Payload::Control(Control::HeartbeatRequest { seq }),
                );
            }
        }
    }

    /// A frame arrived.
    pub fn handle_frame(&mut self, now: Instant, frame: &Frame) {
        if self.is_closed() {
            return;
        }
        self.last_received = now;
        let msg = match decode_or_refuse::<P>(frame, |c, b| self.queue(now, c, b)) {
            Ok(m) => m,
            Err(Some(reason)) => return self.close(reason),
            Err(None) => return,
        };
        // Heartbeat requests are answered in every state.
        if let View::HeartbeatRequest(seq) = msg.body.view() {
            let status = ReplyStatus::OK;
            return self.queue(
                now,
                msg.correlation,
                Payload::Control(Control::HeartbeatReply { status, seq }),
            );
        }
        match &self.state {
            ClientState::ExpectLogonReply { correlation, .. } => {
                let expected = *correlation;
                match msg.body.view() {
                    View::LogonReply(reply) if msg.correlation == expected => {
                        let reply = reply.clone();
                        self.logon_reply(now, reply)
                    }
                    View::ProtocolError(status) => self.close(CloseReason::PeerProtocolError {
                        reason: CommonReason(status.reason),
                    }),
                    // spec: zos-hyperswap.md §4: only the logon reply may come now.
                    _ => self.unexpected(&msg.body),
                }
            }
            ClientState::Ready { .. } | ClientState::ExpectLogoffReply { .. } => {
                self.ready_frame(msg)
            }
            ClientState::SendLogon { .. } => self.unexpected(&msg.body),
            ClientState::Closed => {}
        }
    }

    fn logon_reply(&mut self, now: Instant, reply: LogonReply) {
        if reply.status.is_success() {
            // A host that offers no interval gets our proposal, or 30 s.
            let secs = match (reply.heartbeat_secs, self.config.heartbeat_secs) {
                (0, 0) => 30,
                (0, ours) => ours,
                (theirs, _) => theirs,
            };
            self.state = ClientState::Ready {
                heartbeat: Duration::from_secs(u64::from(secs)),
            };
            self.last_received = now;
            self.events.push_back(ClientEvent::LoggedOn {
                session_id: reply.session_id,
                heartbeat_secs: secs,
                domain: reply.domain.to_string(),
                system: reply.system.to_string(),
            });
        } else {
            self.close(CloseReason::LogonRefused {
                status: reply.status,
                racf_rc: reply.racf_rc,
            });
        }
    }

    fn ready_frame(&mut self, msg: Message<P::Body>) {
        let Message { correlation, body } = msg;
        let view = body.view();
        let is_request = matches!(
            view,
            View::Request | View::LogonRequest(_) | View::LogoffRequest | View::HeartbeatRequest(_)
        );
        let is_event = view == View::Event;
        let protocol_error = match view {
            View::ProtocolError(status) => Some(status),
            _ => None,
        };
        if is_request {
            // The server sends no requests but heartbeats (handled before).
            return self.unexpected(&body);
        }
        if is_event {
            if let Payload::Own(event) = body {
                self.events.push_back(ClientEvent::Event(event));
            }
            return;
        }
        if let ClientState::ExpectLogoffReply {
            correlation: logoff,
            ..
        } = self.state
            && correlation == logoff
        {
            return self.close(CloseReason::LoggedOff);
        }
        match self.outstanding.remove(&correlation) {
            Some(o) if o.internal => {}
            Some(_) => {
                let request = RequestId(correlation);
                self.events.push_back(match body {
                    Payload::Own(body) => ClientEvent::Reply { request, body },
                    Payload::Control(Control::ProtocolError { status, .. }) => {
                        ClientEvent::Rejected { request, status }
                    }
                    // A control reply to one of our requests: the server is confused.
                    Payload::Control(_) => ClientEvent::Rejected {
                        request,
                        status: ReplyStatus::new(
                            ReturnCode::PROTOCOL_ERROR,
                            CommonReason::UNKNOWN_MESSAGE.0,
                        ),
                    },
                });
            }
            // A PROTOCOL_ERROR without a request of ours: the server is closing.
            // Any other reply without a request is late (its request timed out): drop it.
            None => {
                if let Some(status) = protocol_error {
                    self.close(CloseReason::PeerProtocolError {
                        reason: CommonReason(status.reason),
                    })
                }
            }
        }
    }

    fn unexpected(&mut self, body: &Payload<P::Body>) {
        let state = self.state.name();
        tracing::debug!(
            message = body.name(),
            state,
            "unexpected message from the server"
        );
        self.close(CloseReason::UnexpectedMessage {
            message: body.name(),
            state,
        });
    }
}

/// Decodes a frame; one that does not decode is answered through `send` when it may
/// be (framing.md §6) and the error says whether the connection must close.
fn decode_or_refuse<P: Protocol>(
    frame: &Frame,
    send: impl FnMut(u32, Payload<P::Body>),
) -> Result<Message<P::Body>, Option<CloseReason>> {
    Message::<P::Body>::decode(frame).map_err(|e| refuse_frame::<P>(frame, &e, send))
}

/// Answers a frame that does not decode, through `send`, when it may be answered
/// (requests only; replies and events are never answered), and says whether the
/// connection must close (framing.md §6).
fn refuse_frame<P: Protocol>(
    frame: &Frame,
    error: &MessageError,
    mut send: impl FnMut(u32, Payload<P::Body>),
) -> Option<CloseReason> {
    let answerable = !frame.header.flags.contains(Flags::REPLY)
        && !frame.header.flags.contains(Flags::UNSOLICITED);
    if answerable {
        let status = ReplyStatus::new(ReturnCode::PROTOCOL_ERROR, error.reason().0);
        send(
            frame.header.correlation,
            Payload::Control(Control::ProtocolError {
                status,
                offending_type: frame.header.message_type,
            }),
        );
    }
    (!answerable || error.is_fatal()).then(|| CloseReason::ProtocolViolation {
        detail: error.to_string(),
    })
}

/// The PROTOCOL_ERROR a codec failure gets (framing.md §2), if it gets one.
pub fn protocol_error_for_stream<P: Protocol>(error: &FrameError) -> Option<Message<P::Body>> {
    let (correlation, reason, offending) = match error {
        FrameError::BadMagic { .. } => (0, CommonReason::BAD_MAGIC, 0),
        FrameError::TooLarge { header, .. } => (
            header.correlation,
            CommonReason::FRAME_TOO_LARGE,
            header.message_type,
        ),
        FrameError::Truncated { .. } | FrameError::Io(_) => return None,
    };
    Some(Message {
        correlation,
        body: Payload::Control(Control::ProtocolError {
            status: ReplyStatus::new(ReturnCode::PROTOCOL_ERROR, reason.0),
            offending_type: offending,
        }),
    })
}

// ---------------------------------------------------------------------------------
// Server side

/// The server's decision on a logon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogonDecision {
    /// Accepted.
    Accept {
        /// Sysplex (z/OS), complex (z/TPF) or storage image serial (DS8000).
        domain: Ebcdic<8>,
        /// System name.
        system: Ebcdic<8>,
    },
    /// Refused with this reason and RACF-style return code.
    Refuse {
        /// The reason code the client gets ([`crate::proto::logon::NOT_AUTHORIZED`]
        /// for every credential refusal, passticket.md §4.7).
        reason: u16,
        /// RACF VERIFY-style return code sent with it.
        racf_rc: u16,
        /// The precise reason (passticket.md §4.5), for the server's log and records
        /// only: never sent.
        precise: u16,
        /// This refusal revoked the user (logged at WARN by the server).
        revoked_now: bool,
    },
}

/// Work the server session hands to its driver: every logon and every request of a
/// logged-on client goes this one way, whether the answer comes at once or later
/// (storage I/O, a second user's approval). The driver answers a logon with
/// [`ServerSession::complete_logon`] and a request with [`ServerSession::complete`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work<B> {
    /// Authenticate this logon.
    Logon {
        /// The LOGON's correlation id.
        correlation: u32,
        /// The request.
        request: LogonRequest,
    },
    /// Carry out this request.
    Request {
        /// The request's correlation id.
        correlation: u32,
        /// The request.
        body: B,
    },
}

/// What a synchronous backend does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition<B> {
    /// The reply (or the status refusing the request), now.
    Reply(Result<B, ReplyStatus>),
    /// The request needs work outside the backend (storage I/O): the driver carries
    /// it out and answers with [`ServerSession::complete`].
    Forward,
}

/// A server's system, as most drivers use it: logons and requests decided at once,
/// or forwarded. [`serve_work`] connects it to a session.
pub trait ServerBackend<P: Protocol> {
    /// Authenticates a logon at `now_unix` (seconds since the epoch) and `now`
    /// (monotonic, for the replay cache: passticket.md §4.4).
    fn logon(&mut self, request: &LogonRequest, now_unix: u64, now: Instant) -> LogonDecision;
    /// Carries out a request of a logged-on client: the reply, or `Err(status)` to
    /// refuse it with the request's own reply type carrying `status`.
    fn request(&mut self, body: &P::Body, now_unix: u64) -> Result<P::Body, ReplyStatus>;
    /// Whether `user` may make this request (RACF FACILITY-style permits): `Err` with
    /// the refusal's status if not. By default every logged-on user may.
    fn authorize(&self, _user: &Ebcdic<8>, _body: &P::Body) -> Result<(), ReplyStatus> {
        Ok(())
    }
    /// Answers a request now, or forwards it. By default every request is answered
    /// now by [`ServerBackend::request`].
    fn dispose(&mut self, body: &P::Body, now_unix: u64) -> Disposition<P::Body> {
        Disposition::Reply(self.request(body, now_unix))
    }
}

/// Hands the session's work to `backend`, completing what it decides at once;
/// returns the requests it forwards (correlation id, body) for the driver.
pub fn serve_work<P: Protocol>(
    session: &mut ServerSession<P>,
    now: Instant,
    now_unix: u64,
    backend: &mut dyn ServerBackend<P>,
) -> Vec<(u32, P::Body)> {
    let mut forwarded = Vec::new();
    while let Some(work) = session.poll_work() {
        match work {
            Work::Logon {
                correlation,
                request,
            } => {
                let decision = backend.logon(&request, now_unix, now);
                session.complete_logon(now, correlation, decision);
            }
            Work::Request { correlation, body } => forwarded.extend(run_request(
                session,
                backend,
                now,
                now_unix,
                correlation,
                body,
            )),
        }
    }
    forwarded
}

/// Carries out one request with `backend` for the logged-on user: refused if the
/// user lacks its permit, answered now, or returned (correlation id, body) when the
/// backend forwards it.
pub fn run_request<P: Protocol>(
    session: &mut ServerSession<P>,
    backend: &mut dyn ServerBackend<P>,
    now: Instant,
    now_unix: u64,
    correlation: u32,
    body: P::Body,
) -> Option<(u32, P::Body)> {
    let allowed = session
        .user()
        .map_or(Ok(()), |user| backend.authorize(user, &body));
    let disposition = match allowed {
        Ok(()) => backend.dispose(&body, now_unix),
        Err(status) => Disposition::Reply(Err(status)),
    };
    match disposition {
        Disposition::Reply(result) => {
            session.complete(now, correlation, answer::<P>(&body, result));
            None
        }
        Disposition::Forward => Some((correlation, body)),
    }
}

/// Requests one connection may have outstanding at the server (zos-hyperswap.md §4).
pub const MAX_OUTSTANDING_AT_SERVER: usize = 64;

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Heartbeat interval when the client proposes none, seconds.
    pub heartbeat_default: u16,
    /// Shortest interval granted.
    pub heartbeat_min: u16,
    /// Longest interval granted.
    pub heartbeat_max: u16,
    /// Refused logons allowed on one connection before it is closed.
    pub max_logon_attempts: u32,
    /// How long a connection may stay without a successful logon.
    pub logon_deadline: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            heartbeat_default: 30,
            heartbeat_min: 5,
            heartbeat_max: 300,
            max_logon_attempts: 3,
            logon_deadline: Duration::from_secs(10),
        }
    }
}

#[derive(Debug)]
enum ServerState {
    ExpectLogon {
        attempts: u32,
        /// The LOGON being authenticated (its correlation id).
        pending: Option<u32>,
    },
    Ready {
        heartbeat: Duration,
    },
    Closed {
        reason: CloseReason,
    },
}

/// The server side of one connection (the emulated hosts and DS8000; the gateway's
/// own doors later).
///
/// Call order: `handle_frame` / `handle_timeout` / `handle_closed` /
/// `handle_stream_error` in; then `poll_work` until `None`, answering each item now or
/// later with `complete_logon` / `complete`; then `poll_transmit` until `None`.
pub struct ServerSession<P: Protocol> {
    config: ServerConfig,
    state: ServerState,
    session_id: u32,
    /// The user of the LOGON being decided, then of the logged-on client.
    user: Option<Ebcdic<8>>,
    transmit: VecDeque<Message<P::Body>>,
    work: VecDeque<Work<P::Body>>,
    next_event_id: u32,
    next_heartbeat_id: u32,
    heartbeat_seq: u32,
    last_received: Instant,
    last_sent: Instant,
    /// Correlation ids of requests handed out as work and not yet answered.
    outstanding: std::collections::HashSet<u32>,
    /// The heartbeat interval the pending LOGON proposed.
    proposed_heartbeat: u16,
    /// When the connection must have logged on (framing.md §9).
    logon_by: Instant,
    /// A LOGOFF that waits for the outstanding requests to be answered.
    logoff_pending: Option<u32>,
    /// Logons this machine refused by itself (never handed out as work), for the
    /// shell to log: framing.md §9 logs every refused logon.
    refused: VecDeque<RefusedLogon>,
}

/// A logon the session refused without asking the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedLogon {
    /// The LOGON's user field.
    pub user: String,
    /// The reason code sent.
    pub reason: u16,
    /// Why, in words.
    pub why: &'static str,
}

impl<P: Protocol> ServerSession<P> {
    /// A freshly accepted connection; `session_id` is what a successful logon reports
    /// (the driver numbers its connections).
    pub fn new(config: ServerConfig, now: Instant, session_id: u32) -> Self {
        let logon_by = now + config.logon_deadline;
        ServerSession {
            config,
            state: ServerState::ExpectLogon {
                attempts: 0,
                pending: None,
            },
            session_id,
            user: None,
            transmit: VecDeque::new(),
            work: VecDeque::new(),
            next_event_id: FIRST_EVENT_ID,
            next_heartbeat_id: 1,
            heartbeat_seq: 0,
            last_received: now,
            last_sent: now,
            outstanding: std::collections::HashSet::new(),
            proposed_heartbeat: 0,
            logon_by,
            logoff_pending: None,
            refused: VecDeque::new(),
        }
    }

    /// The next logon refused by the session itself (a malformed credential, a
    /// second LOGON), for the shell's log.
    pub fn poll_refused_logon(&mut self) -> Option<RefusedLogon> {
        self.refused.pop_front()
    }

    /// True once a client is logged on.
    pub fn is_ready(&self) -> bool {
        matches!(self.state, ServerState::Ready { .. })
    }

    /// The next logon or request for the driver.
    pub fn poll_work(&mut self) -> Option<Work<P::Body>> {
        self.work.pop_front()
    }

    /// Requests handed out and not yet answered.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// The decision on the logon handed out as `correlation`. Anything else (the
    /// connection closed meanwhile) is ignored.
    pub fn complete_logon(&mut self, now: Instant, correlation: u32, decision: LogonDecision) {
        let ServerState::ExpectLogon { attempts, pending } = &mut self.state else {
            return;
        };
        if *pending != Some(correlation) {
            return;
        }
        *pending = None;
        match decision {
            LogonDecision::Accept { domain, system } => {
                self.accept(now, correlation, domain, system)
            }
            LogonDecision::Refuse {
                reason, racf_rc, ..
            } => {
                *attempts += 1;
                let last = *attempts >= self.config.max_logon_attempts;
                let reply = Control::LogonReply(LogonReply::refused(reason, racf_rc));
                self.queue(now, correlation, Payload::Control(reply));
                if last {
                    // spec: zos-hyperswap.md §4: the third refusal closes.
                    self.close(CloseReason::TooManyLogonAttempts);
                }
            }
        }
    }

    fn accept(&mut self, now: Instant, correlation: u32, domain: Ebcdic<8>, system: Ebcdic<8>) {
        let secs = self.granted_heartbeat();
        self.state = ServerState::Ready {
            heartbeat: Duration::from_secs(u64::from(secs)),
        };
        let reply = LogonReply {
            status: ReplyStatus::OK,
            racf_rc: 0,
            session_id: self.session_id,
            heartbeat_secs: secs,
            domain,
            system,
        };
        self.queue(
            now,
            correlation,
            Payload::Control(Control::LogonReply(reply)),
        );
    }

    fn granted_heartbeat(&self) -> u16 {
        let proposed = match self.proposed_heartbeat {
            0 => self.config.heartbeat_default,
            p => p,
        };
        proposed.clamp(self.config.heartbeat_min, self.config.heartbeat_max)
    }

    /// The answer to the request handed out as `correlation` (see
    /// [`crate::proto::answer`]). Unknown correlation ids (already answered, or the
    /// connection restarted) are ignored.
    pub fn complete(&mut self, now: Instant, correlation: u32, reply: Payload<P::Body>) {
        if self.is_closed() || !self.outstanding.remove(&correlation) {
            return;
        }
        self.queue(now, correlation, reply);
        if self.outstanding.is_empty()
            && let Some(logoff) = self.logoff_pending.take()
        {
            self.logoff(now, logoff);
        }
    }

    /// The reason the connection ended, if it has.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        match &self.state {
            ServerState::Closed { reason } => Some(reason),
            _ => None,
        }
    }

    /// True when the connection is over (after the transmit queue drains).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, ServerState::Closed { .. })
    }

    /// The user ID of the logged-on client (every request of the connection is
    /// that user's).
    pub fn user(&self) -> Option<&Ebcdic<8>> {
        self.user.as_ref().filter(|_| self.is_ready())
    }

    /// The session id of a logged-on client.
    pub fn session_id(&self) -> Option<u32> {
        self.is_ready().then_some(self.session_id)
    }

    fn queue(&mut self, now: Instant, correlation: u32, body: Payload<P::Body>) {
        self.last_sent = now;
        self.transmit.push_back(Message { correlation, body });
    }

    fn close(&mut self, reason: CloseReason) {
        if !self.is_closed() {
            self.state = ServerState::Closed { reason };
            self.work.clear();
        }
    }

    fn logoff(&mut self, now: Instant, correlation: u32) {
        let status = ReplyStatus::OK;
        self.queue(
            now,
            correlation,
            Payload::Control(Control::LogoffReply { status }),
        );
        self.close(CloseReason::LoggedOff);
    }

    /// The next message to write.
    pub fn poll_transmit(&mut self) -> Option<Message<P::Body>> {
        self.transmit.pop_front()
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            ServerState::Ready { heartbeat, .. } => {
                Some((self.last_sent + heartbeat).min(self.last_received + heartbeat * 3))
            }
            ServerState::ExpectLogon { .. } => Some(self.logon_by),
            ServerState::Closed { .. } => None,
        }
    }

    /// Heartbeats, dead-client detection and the logon deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        // spec: framing.md §9: a connection that has not logged on in time closes
        // (a logon the server is still deciding gets its answer first).
        if let ServerState::ExpectLogon { pending: None, .. } = self.state
            && now >= self.logon_by
        {
            return self.close(CloseReason::LogonTimeout);
        }
        if let ServerState::Ready { heartbeat, .. } = self.state {
            if now >= self.last_received + heartbeat * 3 {
                return self.close(CloseReason::PeerDead);
            }
            if now >= self.last_sent + heartbeat {
                self.heartbeat_seq = self.heartbeat_seq.wrapping_add(1);
                let correlation = self.next_heartbeat_id;
                self.next_heartbeat_id = next_id(correlation);
                let seq = self.heartbeat_seq;
                self.queue(
                    now,
                    correlation,
                    Payload::Control(Control::HeartbeatRequest { seq }),
                );
            }
        }
    }

    /// Sends an unsolicited event (only to a logged-on client, and only an event;
    /// returns false otherwise).
    pub fn send_event(&mut self, now: Instant, body: P::Body) -> bool {
        if !self.is_ready() || body.wire_type().1 != crate::proto::FrameKind::Event {
            return false;
        }
        let correlation = self.next_event_id;
        self.next_event_id = self.next_event_id.checked_add(1).unwrap_or(FIRST_EVENT_ID);
        self.queue(now, correlation, Payload::Own(body));
        true
    }

    /// The transport ended.
    pub fn handle_closed(&mut self) {
        self.close(CloseReason::PeerClosed);
    }

    /// The codec could not cut a frame (protocol-specs/framing.md §2).
    pub fn handle_stream_error(&mut self, now: Instant, error: &FrameError) {
        if self.is_closed() {
            return;
        }
        if let Some(reply) = protocol_error_for_stream::<P>(error) {
            self.queue(now, reply.correlation, reply.body);
        }
        self.close(CloseReason::ProtocolViolation {
            detail: error.to_string(),
        });
    }

    fn refuse(&mut self, now: Instant, correlation: u32, request: &P::Body, reason: CommonReason) {
        let reply = refusal::<P>(request, ReplyStatus::new(ReturnCode::REFUSED, reason.0));
        self.queue(now, correlation, reply);
    }

    /// A frame arrived.
    pub fn handle_frame(&mut self, now: Instant, frame: &Frame) {
        if self.is_closed() {
            return;
        }
        self.last_received = now;
        let msg = match decode_or_refuse::<P>(frame, |c, b| self.queue(now, c, b)) {
            Ok(m) => m,
            Err(Some(reason)) => return self.close(reason),
            Err(None) => return,
        };
        let Message { correlation, body } = msg;
        let ready = self.is_ready();
        match body {
            Payload::Control(control) => self.control(now, correlation, control),
            Payload::Own(body) => match body.wire_type().1 {
                // Replies only keep the connection alive (the server sends no requests
                // but heartbeats).
                crate::proto::FrameKind::Reply => {}
                // spec: framing.md §6: an event from a client closes, unanswered.
                crate::proto::FrameKind::Event => self.close(CloseReason::UnexpectedMessage {
                    message: P::Body::type_name(body.wire_type().0).unwrap_or("UNKNOWN"),
                    state: if ready { "Ready" } else { "ExpectLogon" },
                }),
                // spec: zos-hyperswap.md §4: requests before logon are refused.
                crate::proto::FrameKind::Request if !ready => {
                    self.refuse(now, correlation, &body, CommonReason::NOT_LOGGED_ON)
                }
                // spec: zos-hyperswap.md §3.10: nothing new after LOGOFF.
                crate::proto::FrameKind::Request if self.logoff_pending.is_some() => {
                    self.refuse(now, correlation, &body, CommonReason::SHUTTING_DOWN)
                }
                // spec: framing.md §5: outstanding correlation ids are distinct.
                crate::proto::FrameKind::Request if self.outstanding.contains(&correlation) => {
                    self.refuse(now, correlation, &body, CommonReason::DUPLICATE_CORRELATION)
                }
                // spec: zos-hyperswap.md §4: at most 64 outstanding per connection.
                crate::proto::FrameKind::Request
                    if self.outstanding.len() >= MAX_OUTSTANDING_AT_SERVER =>
                {
                    self.refuse(now, correlation, &body, CommonReason::TOO_MANY_OUTSTANDING)
                }
                crate::proto::FrameKind::Request => {
                    self.outstanding.insert(correlation);
                    self.work.push_back(Work::Request { correlation, body });
                }
            },
        }
    }

    fn control(&mut self, now: Instant, correlation: u32, control: Control) {
        let ready = self.is_ready();
        match control {
            // Replies to our heartbeats only keep the connection alive.
            Control::HeartbeatReply { .. }
            | Control::LogonReply(_)
            | Control::LogoffReply { .. } => {}
            Control::ProtocolError { status, .. } => self.close(CloseReason::PeerProtocolError {
                reason: CommonReason(status.reason),
            }),
            // spec: zos-hyperswap.md §3.2: answered in every state.
            Control::HeartbeatRequest { seq } => {
                let status = ReplyStatus::OK;
                self.queue(
                    now,
                    correlation,
                    Payload::Control(Control::HeartbeatReply { status, seq }),
                );
            }
            Control::LogonRequest(request) => self.logon(now, correlation, request),
            Control::LogoffRequest if !ready => {
                let status = ReplyStatus::new(ReturnCode::REFUSED, CommonReason::NOT_LOGGED_ON.0);
                self.queue(
                    now,
                    correlation,
                    Payload::Control(Control::LogoffReply { status }),
                );
            }
            // spec: zos-hyperswap.md §3.10: outstanding requests are answered first.
            Control::LogoffRequest if !self.outstanding.is_empty() => {
                self.logoff_pending = Some(correlation)
            }
            Control::LogoffRequest => self.logoff(now, correlation),
        }
    }

    fn logon(&mut self, now: Instant, correlation: u32, request: LogonRequest) {
        // spec: zos-hyperswap.md §3.1: racf_rc is 8 on any refusal.
        let refuse =
            |reason: u16| Payload::Control(Control::LogonReply(LogonReply::refused(reason, 8)));
        let user = request.user.to_string().trim_end().to_owned();
        let ServerState::ExpectLogon { pending, .. } = &mut self.state else {
            // spec: zos-hyperswap.md §4: a second LOGON gets ALREADY_LOGGED_ON.
            self.refused.push_back(RefusedLogon {
                user,
                reason: P::ALREADY_LOGGED_ON,
                why: "a second LOGON on a logged-on connection",
            });
            return self.queue(now, correlation, refuse(P::ALREADY_LOGGED_ON));
        };
        if pending.is_some() {
            // A LOGON before the previous one's reply: refused, not counted.
            self.refused.push_back(RefusedLogon {
                user,
                reason: P::ALREADY_LOGGED_ON,
                why: "a LOGON before the previous one was answered",
            });
            return self.queue(now, correlation, refuse(P::ALREADY_LOGGED_ON));
        }
        *pending = Some(correlation);
        self.user = Some(request.user.clone());
        if !valid_credential_shape(&request) {
            // spec: zos-hyperswap.md §3.1: the kind's lengths; counts as a refusal.
            self.refused.push_back(RefusedLogon {
                user,
                reason: P::CREDENTIAL_KIND_UNSUPPORTED,
                why: "a credential kind this server does not take, or of the wrong length",
            });
            let decision = LogonDecision::Refuse {
                reason: P::CREDENTIAL_KIND_UNSUPPORTED,
                racf_rc: 8,
                precise: P::CREDENTIAL_KIND_UNSUPPORTED,
                revoked_now: false,
            };
            return self.complete_logon(now, correlation, decision);
        }
        self.proposed_heartbeat = request.heartbeat_secs;
        self.work.push_back(Work::Logon {
            correlation,
            request,
        });
    }
}

/// Lengths each credential kind can have (zos-hyperswap.md §3.1).
fn valid_credential_shape(req: &LogonRequest) -> bool {
    let n = req.credential.expose().chars().count();
    match req.kind {
        CredentialKind::PASSWORD => (1..=8).contains(&n),
        CredentialKind::PASSPHRASE => (9..=100).contains(&n),
        CredentialKind::PASSTICKET => n == 8,
        _ => false,
    }
}
