//! Sans-IO connection state machines of the z/OS protocol (spec:
//! protocol-specs/zos-hyperswap.md §4).
//!
//! Neither type touches a socket or a clock. The driver (`crate::client`,
//! `crate::peer`) calls, in a loop:
//!
//! 1. `handle_frame(now, frame)` for every frame read, `handle_stream_error` when the
//!    codec fails, `handle_timeout(now)` when the deadline from `poll_timeout` passes;
//! 2. `poll_transmit()` until `None`, writing each message;
//! 3. `poll_event()` until `None` (client only);
//! 4. stops when `is_closed()` and the transmit queue is empty.
//!
//! ```text
//! client:  SendLogon ─► ExpectLogonReply ─RC 0─► Ready ─logoff─► ExpectLogoffReply ─► Closed
//!                              └─ RC≠0 / timeout ─────────────────────────────────────► Closed
//! host:    ExpectLogon ─valid LOGON─► Ready ─LOGOFF─► Closed
//!              └─ refused (at most 3) ─► ExpectLogon
//! ```

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::codec::fields::Ebcdic;
use crate::codec::frame::{Flags, Frame, FrameError};
use crate::proto::{CommonReason, ReplyStatus, ReturnCode};

use super::messages::{
    Credential, CredentialKind, LogonReply, LogonRequest, MessageError, ZosBody, ZosMessage,
    ZosReason,
};

/// First correlation id of unsolicited events (protocol-specs/framing.md §1).
const FIRST_EVENT_ID: u32 = 0x8000_0001;

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
        /// RACF VERIFY return code.
        racf_rc: u16,
    },
    /// LOGOFF completed.
    LoggedOff,
    /// The peer answered PROTOCOL_ERROR to something that cannot go on.
    PeerProtocolError {
        /// The peer's reason.
        reason: CommonReason,
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
    /// RACF user ID.
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
    /// Defaults of protocol-specs/zos-hyperswap.md §4 for `user` on `appl`.
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
pub enum ClientEvent {
    /// Logon accepted.
    LoggedOn {
        /// Host's session id.
        session_id: u32,
        /// Agreed heartbeat interval.
        heartbeat_secs: u16,
        /// Sysplex name.
        sysplex: String,
        /// System name.
        system: String,
    },
    /// The reply to a request (possibly a PROTOCOL_ERROR reply).
    Reply {
        /// Which request.
        request: RequestId,
        /// The reply.
        body: ZosBody,
    },
    /// A request got no reply in time; a late reply is dropped.
    RequestTimedOut {
        /// Which request.
        request: RequestId,
    },
    /// An unsolicited event from z/OS.
    Event(ZosBody),
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
}

struct Outstanding {
    deadline: Instant,
    /// Heartbeats are the session's own; their replies are not events.
    internal: bool,
}

/// The gateway side of one z/OS connection.
pub struct ClientSession {
    config: ClientConfig,
    state: ClientState,
    next_correlation: u32,
    outstanding: HashMap<u32, Outstanding>,
    transmit: VecDeque<ZosMessage>,
    events: VecDeque<ClientEvent>,
    last_received: Instant,
    last_sent: Instant,
    heartbeat_seq: u32,
}

impl ClientSession {
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
        // 1, 2, ... skipping 0 and the event range.
        self.next_correlation = if id >= FIRST_EVENT_ID - 1 { 1 } else { id + 1 };
        id
    }

    fn queue(&mut self, now: Instant, msg: ZosMessage) {
        self.last_sent = now;
        self.transmit.push_back(msg);
    }

    fn close(&mut self, reason: CloseReason) {
        if !self.is_closed() {
            self.state = ClientState::Closed;
            self.outstanding.clear();
            self.events.push_back(ClientEvent::Closed(reason));
        }
    }

    /// The next message to write.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<ZosMessage> {
        if let ClientState::SendLogon { .. } = self.state {
            let correlation = self.correlation();
            let deadline = now + self.config.logon_timeout;
            let ClientState::SendLogon { request } = std::mem::replace(
                &mut self.state,
                ClientState::ExpectLogonReply {
                    correlation,
                    deadline,
                },
            ) else {
                unreachable!("checked above")
            };
            self.last_sent = now;
            return Some(ZosMessage {
                correlation,
                body: ZosBody::LogonRequest(request),
            });
        }
        self.transmit.pop_front()
    }

    /// The next event for the owner.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let request = self.outstanding.values().map(|o| o.deadline).min();
        let state = match &self.state {
            ClientState::SendLogon { .. } | ClientState::Closed => None,
            ClientState::ExpectLogonReply { deadline, .. } => Some(*deadline),
            ClientState::Ready { heartbeat } | ClientState::ExpectLogoffReply { heartbeat, .. } => {
                let send = self.last_sent + *heartbeat;
                let dead = self.last_received + *heartbeat * 3;
                let mut t = send.min(dead);
                if let ClientState::ExpectLogoffReply { deadline, .. } = &self.state {
                    t = t.min(*deadline);
                }
                Some(t)
            }
        };
        [request, state].into_iter().flatten().min()
    }

    /// Sends a request; its reply arrives as [`ClientEvent::Reply`].
    pub fn send_request(&mut self, now: Instant, body: ZosBody) -> Result<RequestId, SendError> {
        if !matches!(self.state, ClientState::Ready { .. }) {
            return Err(SendError::NotReady {
                message: body.name(),
                state: self.state.name(),
            });
        }
        if body.is_reply()
            || body.is_event()
            || matches!(body, ZosBody::LogonRequest(_) | ZosBody::LogoffRequest)
        {
            return Err(SendError::NotARequest(body.name()));
        }
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
        self.queue(now, ZosMessage { correlation, body });
        Ok(RequestId(correlation))
    }

    /// Starts an orderly LOGOFF (replies to outstanding requests still arrive).
    pub fn logoff(&mut self, now: Instant) {
        match self.state {
            ClientState::Ready { heartbeat } => {
                let correlation = self.correlation();
                self.state = ClientState::ExpectLogoffReply {
                    correlation,
                    deadline: now + self.config.request_timeout,
                    heartbeat,
                };
                self.queue(
                    now,
                    ZosMessage {
                        correlation,
                        body: ZosBody::LogoffRequest,
                    },
                );
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
        if let Some(reply) = protocol_error_for_stream(error) {
            self.queue(now, reply);
        }
        self.close(CloseReason::ProtocolViolation {
            detail: error.to_string(),
        });
    }

    /// Deadlines: logon, requests, heartbeat, dead peer.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &self.state {
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
        if let ClientState::Ready { heartbeat } | ClientState::ExpectLogoffReply { heartbeat, .. } =
            self.state
        {
            if now >= self.last_received + heartbeat * 3 {
                return self.close(CloseReason::PeerDead);
            }
            if now >= self.last_sent + heartbeat {
                self.send_heartbeat(now);
            }
        }
    }

    fn send_heartbeat(&mut self, now: Instant) {
        self.heartbeat_seq = self.heartbeat_seq.wrapping_add(1);
        let correlation = self.correlation();
        let heartbeat = match self.state {
            ClientState::Ready { heartbeat } | ClientState::ExpectLogoffReply { heartbeat, .. } => {
                heartbeat
            }
            _ => return,
        };
        self.outstanding.insert(
            correlation,
            Outstanding {
                deadline: now + heartbeat * 3,
                internal: true,
            },
        );
        self.queue(
            now,
            ZosMessage {
                correlation,
                body: ZosBody::HeartbeatRequest {
                    seq: self.heartbeat_seq,
                },
            },
        );
    }

    /// A frame arrived.
    pub fn handle_frame(&mut self, now: Instant, frame: &Frame) {
        if self.is_closed() {
            return;
        }
        self.last_received = now;
        let msg = match ZosMessage::decode(frame) {
            Ok(m) => m,
            Err(e) => return self.refuse_frame(now, frame, &e),
        };
        // Heartbeat requests are answered in every state.
        if let ZosBody::HeartbeatRequest { seq } = msg.body {
            return self.queue(
                now,
                ZosMessage {
                    correlation: msg.correlation,
                    body: ZosBody::HeartbeatReply {
                        status: ReplyStatus::OK,
                        seq,
                    },
                },
            );
        }
        match &self.state {
            ClientState::ExpectLogonReply { correlation, .. } => {
                let expected = *correlation;
                match msg.body {
                    ZosBody::LogonReply(reply) if msg.correlation == expected => {
                        self.logon_reply(now, reply)
                    }
                    ZosBody::ProtocolError { status, .. } => {
                        self.close(CloseReason::PeerProtocolError {
                            reason: CommonReason(status.reason),
                        })
                    }
                    other => self.violation(format!("expected LOGON reply, got {}", other.name())),
                }
            }
            ClientState::Ready { .. } | ClientState::ExpectLogoffReply { .. } => {
                self.ready_frame(msg)
            }
            ClientState::SendLogon { .. } => {
                self.violation(format!("{} before LOGON was sent", msg.body.name()))
            }
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
                sysplex: reply.sysplex.to_string(),
                system: reply.system.to_string(),
            });
        } else {
            self.close(CloseReason::LogonRefused {
                status: reply.status,
                racf_rc: reply.racf_rc,
            });
        }
    }

    fn ready_frame(&mut self, msg: ZosMessage) {
        if msg.body.is_event() {
            return self.events.push_back(ClientEvent::Event(msg.body));
        }
        if !msg.body.is_reply() {
            // The host sends no requests but HEARTBEAT (handled above).
            return self.violation(format!(
                "unexpected request {} from the host",
                msg.body.name()
            ));
        }
        if let ClientState::ExpectLogoffReply { correlation, .. } = self.state
            && msg.correlation == correlation
        {
            return self.close(CloseReason::LoggedOff);
        }
        match self.outstanding.remove(&msg.correlation) {
            Some(o) if o.internal => {}
            Some(_) => self.events.push_back(ClientEvent::Reply {
                request: RequestId(msg.correlation),
                body: msg.body,
            }),
            // A PROTOCOL_ERROR without a request of ours: the host is closing.
            // Any other reply without a request is late (its request timed out): drop it.
            None => {
                if let ZosBody::ProtocolError { status, .. } = msg.body {
                    self.close(CloseReason::PeerProtocolError {
                        reason: CommonReason(status.reason),
                    })
                }
            }
        }
    }

    fn refuse_frame(&mut self, now: Instant, frame: &Frame, error: &MessageError) {
        let answerable = !frame.header.flags.contains(Flags::REPLY)
            && !frame.header.flags.contains(Flags::UNSOLICITED);
        if answerable {
            self.queue(
                now,
                protocol_error(
                    frame.header.correlation,
                    error.reason(),
                    frame.header.message_type,
                ),
            );
        }
        let fatal = !answerable
            || matches!(
                error.reason(),
                CommonReason::UNSUPPORTED_VERSION
                    | CommonReason::WRONG_PROTOCOL
                    | CommonReason::RESERVED_FLAGS
            );
        if fatal {
            self.close(CloseReason::ProtocolViolation {
                detail: error.to_string(),
            });
        }
    }

    fn violation(&mut self, detail: String) {
        self.close(CloseReason::ProtocolViolation { detail });
    }
}

/// A PROTOCOL_ERROR reply.
pub fn protocol_error(correlation: u32, reason: CommonReason, offending_type: u16) -> ZosMessage {
    ZosMessage {
        correlation,
        body: ZosBody::ProtocolError {
            status: ReplyStatus::new(ReturnCode::PROTOCOL_ERROR, reason.0),
            offending_type,
        },
    }
}

/// The PROTOCOL_ERROR a codec failure gets (framing.md §2), if it gets one.
pub fn protocol_error_for_stream(error: &FrameError) -> Option<ZosMessage> {
    match error {
        FrameError::BadMagic { .. } => Some(protocol_error(0, CommonReason::BAD_MAGIC, 0)),
        FrameError::TooLarge { header, .. } => Some(protocol_error(
            header.correlation,
            CommonReason::FRAME_TOO_LARGE,
            header.message_type,
        )),
        FrameError::Truncated { .. } | FrameError::Io(_) => None,
    }
}

// ---------------------------------------------------------------------------------
// Host side

/// The host's decision on a logon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogonDecision {
    /// Accepted.
    Accept {
        /// Sysplex name.
        sysplex: Ebcdic<8>,
        /// System name.
        system: Ebcdic<8>,
    },
    /// Refused with this reason and RACF return code.
    Refuse {
        /// zgate reason code (passticket.md §4.5 or zos-hyperswap.md §5).
        reason: u16,
        /// RACF VERIFY return code.
        racf_rc: u16,
    },
}

/// What the host does with logons and requests: RACF, HyperSwap, IOS.
pub trait HostBackend {
    /// Authenticates a logon at `now_unix` (seconds since the epoch).
    fn logon(&mut self, request: &LogonRequest, now_unix: u64) -> LogonDecision;
    /// Carries out a request of a logged-on client and returns the reply body.
    fn request(&mut self, body: &ZosBody, now_unix: u64) -> ZosBody;
}

/// Host settings.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Heartbeat interval when the client proposes none, seconds.
    pub heartbeat_default: u16,
    /// Shortest interval granted.
    pub heartbeat_min: u16,
    /// Longest interval granted.
    pub heartbeat_max: u16,
    /// Refused logons allowed on one connection before it is closed.
    pub max_logon_attempts: u32,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            heartbeat_default: 30,
            heartbeat_min: 5,
            heartbeat_max: 300,
            max_logon_attempts: 3,
        }
    }
}

#[derive(Debug)]
enum HostState {
    ExpectLogon {
        attempts: u32,
    },
    Ready {
        session_id: u32,
        heartbeat: Duration,
    },
    Closed {
        reason: CloseReason,
    },
}

/// The z/OS side of one connection (used by the emulated peer).
pub struct HostSession {
    config: HostConfig,
    state: HostState,
    transmit: VecDeque<ZosMessage>,
    next_event_id: u32,
    next_heartbeat_id: u32,
    heartbeat_seq: u32,
    last_received: Instant,
    last_sent: Instant,
}

impl HostSession {
    /// A freshly accepted connection.
    pub fn new(config: HostConfig, now: Instant) -> Self {
        HostSession {
            config,
            state: HostState::ExpectLogon { attempts: 0 },
            transmit: VecDeque::new(),
            next_event_id: FIRST_EVENT_ID,
            next_heartbeat_id: 1,
            heartbeat_seq: 0,
            last_received: now,
            last_sent: now,
        }
    }

    /// True once a client is logged on.
    pub fn is_ready(&self) -> bool {
        matches!(self.state, HostState::Ready { .. })
    }

    /// The reason the connection ended, if it has.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        match &self.state {
            HostState::Closed { reason } => Some(reason),
            _ => None,
        }
    }

    /// True when the connection is over (after the transmit queue drains).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, HostState::Closed { .. })
    }

    fn queue(&mut self, now: Instant, msg: ZosMessage) {
        self.last_sent = now;
        self.transmit.push_back(msg);
    }

    fn close(&mut self, reason: CloseReason) {
        if !self.is_closed() {
            self.state = HostState::Closed { reason };
        }
    }

    /// The next message to write.
    pub fn poll_transmit(&mut self) -> Option<ZosMessage> {
        self.transmit.pop_front()
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            HostState::Ready { heartbeat, .. } => {
                Some((self.last_sent + heartbeat).min(self.last_received + heartbeat * 3))
            }
            _ => None,
        }
    }

    /// Heartbeats and dead-client detection.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let HostState::Ready { heartbeat, .. } = self.state {
            if now >= self.last_received + heartbeat * 3 {
                return self.close(CloseReason::PeerDead);
            }
            if now >= self.last_sent + heartbeat {
                self.heartbeat_seq = self.heartbeat_seq.wrapping_add(1);
                let correlation = self.next_heartbeat_id;
                self.next_heartbeat_id = if correlation >= FIRST_EVENT_ID - 1 {
                    1
                } else {
                    correlation + 1
                };
                self.queue(
                    now,
                    ZosMessage {
                        correlation,
                        body: ZosBody::HeartbeatRequest {
                            seq: self.heartbeat_seq,
                        },
                    },
                );
            }
        }
    }

    /// Sends an unsolicited event (only to a logged-on client; returns false otherwise).
    pub fn send_event(&mut self, now: Instant, body: ZosBody) -> bool {
        if !self.is_ready() || !body.is_event() {
            return false;
        }
        let correlation = self.next_event_id;
        self.next_event_id = self.next_event_id.checked_add(1).unwrap_or(FIRST_EVENT_ID);
        self.queue(now, ZosMessage { correlation, body });
        true
    }

    /// The transport ended.
    pub fn handle_closed(&mut self) {
        self.close(CloseReason::PeerClosed);
    }

    /// The codec could not cut a frame.
    pub fn handle_stream_error(&mut self, now: Instant, error: &FrameError) {
        if let Some(reply) = protocol_error_for_stream(error) {
            self.queue(now, reply);
        }
        self.close(CloseReason::ProtocolViolation {
            detail: error.to_string(),
        });
    }

    /// A frame arrived; `now_unix` is the host's clock for RACF and the backend.
    pub fn handle_frame(
        &mut self,
        now: Instant,
        now_unix: u64,
        frame: &Frame,
        backend: &mut dyn HostBackend,
    ) {
        if self.is_closed() {
            return;
        }
        self.last_received = now;
        let msg = match ZosMessage::decode(frame) {
            Ok(m) => m,
            Err(e) => {
                let answerable = !frame.header.flags.contains(Flags::REPLY)
                    && !frame.header.flags.contains(Flags::UNSOLICITED);
                if answerable {
                    self.queue(
                        now,
                        protocol_error(
                            frame.header.correlation,
                            e.reason(),
                            frame.header.message_type,
                        ),
                    );
                }
                if !answerable
                    || matches!(
                        e.reason(),
                        CommonReason::UNSUPPORTED_VERSION
                            | CommonReason::WRONG_PROTOCOL
                            | CommonReason::RESERVED_FLAGS
                    )
                {
                    self.close(CloseReason::ProtocolViolation {
                        detail: e.to_string(),
                    });
                }
                return;
            }
        };
        if msg.body.is_reply() {
            // Heartbeat replies only keep the connection alive; anything else is odd
            // but harmless for a host that sends no other requests.
            if let ZosBody::ProtocolError { status, .. } = msg.body {
                self.close(CloseReason::PeerProtocolError {
                    reason: CommonReason(status.reason),
                });
            }
            return;
        }
        if msg.body.is_event() {
            return self.close(CloseReason::ProtocolViolation {
                detail: format!("client sent event {}", msg.body.name()),
            });
        }
        let correlation = msg.correlation;
        let reply = match (&mut self.state, &msg.body) {
            (_, ZosBody::HeartbeatRequest { seq }) => ZosBody::HeartbeatReply {
                status: ReplyStatus::OK,
                seq: *seq,
            },
            (HostState::ExpectLogon { .. }, ZosBody::LogonRequest(req)) => {
                return self.logon(now, now_unix, correlation, req, backend);
            }
            (HostState::ExpectLogon { .. }, other) => {
                refusal_reply(other, CommonReason::NOT_LOGGED_ON.0)
            }
            (HostState::Ready { .. }, ZosBody::LogonRequest(_)) => {
                ZosBody::LogonReply(LogonReply {
                    status: ReplyStatus::new(ReturnCode::REFUSED, ZosReason::ALREADY_LOGGED_ON.0),
                    racf_rc: 0,
                    session_id: 0,
                    heartbeat_secs: 0,
                    sysplex: Ebcdic::default(),
                    system: Ebcdic::default(),
                })
            }
            (HostState::Ready { .. }, ZosBody::LogoffRequest) => {
                self.queue(
                    now,
                    ZosMessage {
                        correlation,
                        body: ZosBody::LogoffReply {
                            status: ReplyStatus::OK,
                        },
                    },
                );
                return self.close(CloseReason::LoggedOff);
            }
            (HostState::Ready { .. }, body) => backend.request(body, now_unix),
            (HostState::Closed { .. }, _) => return,
        };
        self.queue(
            now,
            ZosMessage {
                correlation,
                body: reply,
            },
        );
    }

    fn logon(
        &mut self,
        now: Instant,
        now_unix: u64,
        correlation: u32,
        req: &LogonRequest,
        backend: &mut dyn HostBackend,
    ) {
        let decision = match valid_credential_shape(req) {
            true => backend.logon(req, now_unix),
            false => LogonDecision::Refuse {
                reason: ZosReason::CREDENTIAL_KIND_UNSUPPORTED.0,
                racf_rc: 8,
            },
        };
        match decision {
            LogonDecision::Accept { sysplex, system } => {
                let proposed = if req.heartbeat_secs == 0 {
                    self.config.heartbeat_default
                } else {
                    req.heartbeat_secs
                };
                let secs = proposed.clamp(self.config.heartbeat_min, self.config.heartbeat_max);
                let session_id = (now_unix as u32) ^ correlation.rotate_left(16);
                self.state = HostState::Ready {
                    session_id,
                    heartbeat: Duration::from_secs(u64::from(secs)),
                };
                self.queue(
                    now,
                    ZosMessage {
                        correlation,
                        body: ZosBody::LogonReply(LogonReply {
                            status: ReplyStatus::OK,
                            racf_rc: 0,
                            session_id,
                            heartbeat_secs: secs,
                            sysplex,
                            system,
                        }),
                    },
                );
            }
            LogonDecision::Refuse { reason, racf_rc } => {
                let attempts = match &mut self.state {
                    HostState::ExpectLogon { attempts } => {
                        *attempts += 1;
                        *attempts
                    }
                    _ => return,
                };
                let last = attempts >= self.config.max_logon_attempts;
                self.queue(
                    now,
                    ZosMessage {
                        correlation,
                        body: ZosBody::LogonReply(LogonReply {
                            status: ReplyStatus::new(ReturnCode::REFUSED, reason),
                            racf_rc,
                            session_id: 0,
                            heartbeat_secs: 0,
                            sysplex: Ebcdic::default(),
                            system: Ebcdic::default(),
                        }),
                    },
                );
                if last {
                    self.close(CloseReason::TooManyLogonAttempts);
                }
            }
        }
    }

    /// The session id of a logged-on client.
    pub fn session_id(&self) -> Option<u32> {
        match self.state {
            HostState::Ready { session_id, .. } => Some(session_id),
            _ => None,
        }
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

/// The reply of `request`'s type carrying RC 8 and `reason`, for a request that is
/// not allowed in the connection's state.
pub fn refusal_reply(request: &ZosBody, reason: u16) -> ZosBody {
    let status = ReplyStatus::new(ReturnCode::REFUSED, reason);
    match request {
        ZosBody::QuerySystemRequest => ZosBody::QuerySystemReply(super::messages::SystemInfo {
            status,
            sysplex: Ebcdic::default(),
            system: Ebcdic::default(),
            level: Ebcdic::default(),
            hyperswap: Default::default(),
        }),
        ZosBody::LoadConfigRequest { .. }
        | ZosBody::EnableRequest { .. }
        | ZosBody::DisableRequest { .. }
        | ZosBody::PlannedSwapRequest { .. } => ZosBody::HyperSwapReply {
            request: request.message_type(),
            status,
            hyperswap: Default::default(),
        },
        ZosBody::FlashRequest { .. } => ZosBody::FlashReply {
            status,
            flash_time: 0,
            pair_count: 0,
        },
        ZosBody::BackupRequest { .. } => ZosBody::BackupReply {
            status,
            backup_id: 0,
            backup_time: 0,
        },
        ZosBody::LogoffRequest => ZosBody::LogoffReply { status },
        ZosBody::HeartbeatRequest { seq } => ZosBody::HeartbeatReply { status, seq: *seq },
        // Replies, events and LOGON never reach here; answer with a protocol error shape.
        other => ZosBody::ProtocolError {
            status,
            offending_type: other.message_type().0,
        },
    }
}
