//! The host's connection machine (the product's listener and the emulated systems):
//! logons handed out as work and answered now or later, requests, heartbeats,
//! events (zos-hyperswap.md §4, ztpf.md §4).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{CloseReason, FIRST_EVENT_ID, decode_or_refuse, next_id, protocol_error_for_stream};
use crate::codec::fields::Ebcdic;
use crate::codec::frame::{Frame, FrameError};
use crate::proto::logon::{CredentialKind, LogonReply, LogonRequest};
use crate::proto::{
    CommonReason, Control, Message, Payload, Protocol, ReplyStatus, ReturnCode, WireBody, answer,
    refusal,
};

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
