//! The client's connection machine (the gateway's connectors, `zgate csm`): logon,
//! pipelined requests, heartbeats, logoff (zos-hyperswap.md §4, ztpf.md §4).

use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use super::{CloseReason, RequestId, decode_or_refuse, next_id, protocol_error_for_stream};
use crate::codec::fields::Ebcdic;
use crate::codec::frame::{Frame, FrameError};
use crate::proto::logon::{Credential, CredentialKind, LogonReply, LogonRequest};
use crate::proto::{
    CommonReason, Control, Message, Payload, Protocol, ReplyStatus, ReturnCode, View, WireBody,
};

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
