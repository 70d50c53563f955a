//! The CSM protocol's server side (`protocol-specs/csm.md`): the gateway's door for a
//! CSM-side server or `zgate csm`. The shared listener (TLS, deadlines, caps,
//! throttling: framing.md §9) authenticates users against the engine's users
//! (argon2id); each REQUEST's JSON becomes an engine command or query, checked by
//! the engine against role, grants and dual control whatever the client claims; its
//! reply is CSM's result object. Console messages go as EVT_CONSOLE to every
//! logged-on client that asked for them (`console.subscribe`).

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tracing::warn;

use super::ops::{Answer, Operation};
use super::{GatewayError, GatewayHandle};
use crate::codec::fields::Ebcdic;
use crate::policy::console::ConsoleMessage;
use crate::policy::engine::{Outcome, Reply};
use crate::proto::csm::{Csm, CsmBody, CsmReason};
use crate::proto::logon::{CredentialKind, LogonRequest, NOT_AUTHORIZED};
use crate::proto::session::{Disposition, LogonDecision, ServerBackend};
use crate::proto::{ReplyStatus, ReturnCode};
use crate::server::{Forwarder, ListenConfig, Listener};
use crate::store::sealing::SealingKey;

/// How long one request may take at the gateway (the engine answers at once; storage
/// work goes on after the reply, so only a stuck gateway reaches this).
const REQUEST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// Users and their argon2id hashes, as the engine last stored them.
pub type UserHashes = Arc<RwLock<HashMap<String, UserCredentials>>>;

/// What a password is checked against, and what credentials are bound to.
#[derive(Clone)]
pub struct UserCredentials {
    /// The argon2id PHC string.
    pub hash: String,
    /// The user's number (never reused).
    pub id: u64,
    /// Its password and role changes so far.
    pub generation: u64,
}

/// Who a credential (a REST token, a logged-on connection) was issued to: a user as
/// it stood then. It is good only while that user still stands so: removing the
/// user, changing its password or its role ends it (policy.md §1.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// The engine's spelling of the name.
    pub name: String,
    /// The user's number.
    pub id: u64,
    /// The generation the password was checked against.
    pub generation: u64,
}

impl Stamp {
    /// Whether the user still stands as when the credential was issued.
    pub fn is_current(&self, users: &UserHashes) -> bool {
        users.read().is_ok_and(|u| {
            u.get(&self.name)
                .is_some_and(|c| c.id == self.id && c.generation == self.generation)
        })
    }

    /// A stamp as text, for the connection that carries it.
    fn encode(&self) -> String {
        format!("{}\u{1F}{}\u{1F}{}", self.name, self.id, self.generation)
    }

    fn decode(text: &str) -> Option<Stamp> {
        let mut parts = text.split('\u{1F}');
        let name = parts.next()?.to_owned();
        let id = parts.next()?.parse().ok()?;
        let generation = parts.next()?.parse().ok()?;
        Some(Stamp {
            name,
            id,
            generation,
        })
    }
}

/// The running CSM listener.
pub struct CsmServer {
    listener: Listener<Csm, CsmBackend>,
    relay: JoinHandle<()>,
}

impl CsmServer {
    /// Listens on `listen` in front of `gateway`; secrets in requests are sealed
    /// with `key` before the engine sees them.
    pub async fn start(
        listen: &ListenConfig,
        gateway: GatewayHandle,
        key: Arc<SealingKey>,
    ) -> std::io::Result<CsmServer> {
        let backend = CsmBackend {
            users: gateway.users(),
            domain: Ebcdic::new("ZGATE").unwrap_or_default(),
            system: Ebcdic::new("CSMGW").unwrap_or_default(),
        };
        let mut console = gateway.console();
        let forwarder: Arc<dyn Forwarder<Csm>> = Arc::new(CsmForwarder {
            gateway: Arc::new(gateway),
            key,
            identity: (backend.domain.clone(), backend.system.clone()),
        });
        let listener = Listener::start(listen, backend, Some(forwarder), None).await?;
        let control = listener.control().clone();
        let relay = tokio::spawn(async move {
            loop {
                match console.recv().await {
                    // Made only when a connection has subscribed (csm.md §4).
                    Ok(m) if control.has_event_receivers() => {
                        control.inject_event(CsmBody::Console {
                            json: console_text(&m),
                        })
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        warn!(skipped = n, "CSM console relay fell behind");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(CsmServer { listener, relay })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.listener.addr()
    }

    /// Stops accepting and closes every connection.
    pub async fn shutdown(self) {
        self.relay.abort();
        self.listener.shutdown().await;
    }
}

struct CsmBackend {
    users: UserHashes,
    domain: Ebcdic<8>,
    system: Ebcdic<8>,
}

/// A CSM LOGON's decision (csm.md §2.1): a password or passphrase of one of the
/// engine's users (argon2id, on the shared pool; blocking).
fn decide_logon(
    users: &UserHashes,
    (domain, system): &(Ebcdic<8>, Ebcdic<8>),
    request: &LogonRequest,
) -> LogonDecision {
    let refuse = |reason, precise| LogonDecision::Refuse {
        reason,
        racf_rc: 8,
        precise,
        revoked_now: false,
    };
    if request.kind != CredentialKind::PASSWORD && request.kind != CredentialKind::PASSPHRASE {
        return refuse(CsmReason::CREDENTIAL_KIND_UNSUPPORTED.0, 0x0B02);
    }
    let user = request.user.to_string();
    if authenticate(users, user.trim_end(), &request.credential.0).is_some() {
        LogonDecision::Accept {
            domain: domain.clone(),
            system: system.clone(),
        }
    } else {
        refuse(NOT_AUTHORIZED, 0x0001)
    }
}

impl ServerBackend<Csm> for CsmBackend {
    /// Only if the listener has no forwarder (the forwarder decides logons off the
    /// listener's task: [`CsmForwarder`]).
    fn logon(&mut self, request: &LogonRequest, _now_unix: u64, _now: Instant) -> LogonDecision {
        let identity = (self.domain.clone(), self.system.clone());
        decide_logon(&self.users, &identity, request)
    }

    fn request(&mut self, _body: &CsmBody, _now_unix: u64) -> Result<CsmBody, ReplyStatus> {
        // Every request is forwarded to the engine (dispose); nothing answers here.
        Err(ReplyStatus::new(ReturnCode::FAILED, 0))
    }

    fn dispose(&mut self, _body: &CsmBody, _now_unix: u64) -> Disposition<CsmBody> {
        Disposition::Forward
    }
}

/// The engine's name of the user `name` if `password` is theirs (argon2id). An
/// unknown user costs a hash check too, so timing does not tell users apart. Shared
/// by the CSM protocol's LOGON and REST's token request.
pub fn authenticate(users: &UserHashes, name: &str, password: &str) -> Option<Stamp> {
    let found = canonical(users, name)
        .and_then(|name| Some((users.read().ok()?.get(&name).cloned()?, name)));
    // Every check runs on the shared pool (gateway/passwords.rs): bounded memory.
    let check = |phc: &str| match super::passwords::verify_blocking(phc, password) {
        Ok(ok) => ok,
        Err(e) => {
            tracing::warn!(user = %name, error = %e, "password check not run");
            false
        }
    };
    match found {
        Some((c, name)) => check(&c.hash).then_some(Stamp {
            name,
            id: c.id,
            generation: c.generation,
        }),
        None => {
            let _ = check(dummy_hash());
            None
        }
    }
}

/// The engine's spelling of a logon's user: the exact name, else the one name that
/// matches ignoring case (a LOGON's user field travels upper-cased, as RACF names do).
fn canonical(users: &UserHashes, logon_user: &str) -> Option<String> {
    let users = users.read().ok()?;
    if users.contains_key(logon_user) {
        return Some(logon_user.to_owned());
    }
    let mut matches = users.keys().filter(|u| u.eq_ignore_ascii_case(logon_user));
    match (matches.next(), matches.next()) {
        (Some(one), None) => Some(one.clone()),
        _ => None,
    }
}

struct CsmForwarder {
    /// Shared, not cloned, by each request: a handle is a score of channels and
    /// `Arc`s (and a path), each counted up and down on a clone.
    gateway: Arc<GatewayHandle>,
    key: Arc<SealingKey>,
    /// The domain and system a logon reply names.
    identity: (Ebcdic<8>, Ebcdic<8>),
}

impl Forwarder<Csm> for CsmForwarder {
    fn forward(
        &self,
        user: &str,
        request: CsmBody,
    ) -> Pin<Box<dyn Future<Output = Result<CsmBody, ReplyStatus>> + Send>> {
        let gateway = self.gateway.clone();
        let key = self.key.clone();
        // The user this connection was bound to at its logon (policy.md §1.4): a
        // removed user, or one whose password or role changed since, is refused.
        let stamp = Stamp::decode(user).filter(|s| s.is_current(&gateway.users()));
        Box::pin(async move {
            let Some(Stamp { name: user, .. }) = stamp else {
                return Ok(reply(
                    ReturnCode::REFUSED,
                    NOT_AUTHORIZED,
                    message(
                        "IWNR8010E",
                        "this connection's logon is no longer valid: its user was removed, or its password or role changed; log on again",
                        gateway.clock().unix_millis(),
                    ),
                ));
            };
            let CsmBody::Request { json } = request else {
                return Err(ReplyStatus::new(
                    ReturnCode::REFUSED,
                    CsmReason::BAD_REQUEST.0,
                ));
            };
            // csm.md §3.2: a request the gateway cannot answer in time fails, the
            // connection stays.
            match tokio::time::timeout(REQUEST_DEADLINE, serve(&gateway, &key, &user, &json)).await
            {
                Ok(reply) => Ok(reply),
                Err(_) => Ok(reply(
                    ReturnCode::FAILED,
                    CsmReason::TIMED_OUT.0,
                    message(
                        "IWNR8013E",
                        "the gateway did not answer in time",
                        gateway.clock().unix_millis(),
                    ),
                )),
            }
        })
    }

    /// A connection is bound to its user's number and credential generation as
    /// they stand at its logon (the logon's CHAR8 user, as the engine spells it:
    /// csm.md §2.1).
    fn bind(&self, user: &str) -> Option<String> {
        let users = self.gateway.users();
        let name = canonical(&users, user)?;
        let map = users.read().ok()?;
        let c = map.get(&name)?;
        Some(
            Stamp {
                id: c.id,
                generation: c.generation,
                name,
            }
            .encode(),
        )
    }

    fn events_by_subscription(&self) -> bool {
        true
    }

    /// The password check waits on the shared pool from tokio's blocking threads:
    /// no async thread and no lock of the listener is held meanwhile.
    fn logon(&self, request: &LogonRequest) -> Option<crate::server::PendingLogon> {
        let users = self.gateway.users();
        let identity = self.identity.clone();
        let request = request.clone();
        Some(Box::pin(async move {
            let decided =
                tokio::task::spawn_blocking(move || decide_logon(&users, &identity, &request));
            decided.await.unwrap_or(LogonDecision::Refuse {
                reason: NOT_AUTHORIZED,
                racf_rc: 8,
                precise: 0x0001,
                revoked_now: false,
            })
        }))
    }

    fn in_order(&self) -> bool {
        true
    }

    /// csm.md §4: `console.subscribe` turns this connection's console events on or off.
    fn subscription(&self, request: &CsmBody) -> Option<bool> {
        subscription_of(request)
    }
}

/// What `request` asks of this connection's console events, if anything (csm.md §4).
/// Every request passes here before it is carried out: one that does not spell the
/// operation out, and has no escape that could spell it, is not parsed a second time.
fn subscription_of(request: &CsmBody) -> Option<bool> {
    let CsmBody::Request { json } = request else {
        return None;
    };
    if !json.contains("console.subscribe") && !json.contains('\\') {
        return None;
    }
    match serde_json::from_str::<Operation>(json) {
        Ok(Operation::ConsoleSubscribe { follow }) => Some(follow),
        _ => None,
    }
}

/// A read's reply (csm.md §3.2).
#[derive(serde::Serialize)]
struct ViewReply<'a> {
    result: &'a Value,
    timestamp: u64,
}

fn reply(rc: ReturnCode, reason: u16, json: Value) -> CsmBody {
    CsmBody::Reply {
        status: ReplyStatus::new(rc, reason),
        json: json.to_string(),
    }
}

/// CSM's result object for a message made here, not by the engine, with its time
/// as every result object has it (csm.md §3.2).
fn message(id: &str, text: impl std::fmt::Display, now: u64) -> Value {
    json!({
        "msg": id,
        "msgTranslated": format!("{id} [{}] {text}", java_medium(now)),
        "inserts": [],
        "timestamp": now,
    })
}

fn bad(why: impl std::fmt::Display, now: u64) -> CsmBody {
    reply(
        ReturnCode::REFUSED,
        CsmReason::BAD_REQUEST.0,
        message("IWNR8012E", why, now),
    )
}

/// Serves one REQUEST for `user` (csm.md §3): its JSON is decoded into an
/// [`Operation`], carried out, and the answer encoded as CSM's result object.
pub async fn serve(gateway: &GatewayHandle, key: &SealingKey, user: &str, json: &str) -> CsmBody {
    let now = gateway.clock().unix_millis();
    match serde_json::from_str::<Operation>(json) {
        Ok(op) => encode(super::ops::execute(gateway, key, user, op).await, now),
        Err(e) => bad(
            format!("the request is not an operation zgate knows: {e}"),
            now,
        ),
    }
}

/// An operation's answer as the CSM protocol writes it (csm.md §3.2).
fn encode(answer: Answer, now: u64) -> CsmBody {
    let (rc, reason) = answer.csm_status();
    match answer {
        Answer::Reply(r) => command_reply(&r),
        // Serialised from the shared value: a cached list is not copied.
        Answer::View(result) => CsmBody::Reply {
            status: ReplyStatus::new(rc, reason),
            json: serde_json::to_string(&ViewReply {
                result: &result,
                timestamp: now,
            })
            .unwrap_or_default(),
        },
        // The result's text is the gateway's own JSON: placed as it is.
        Answer::Rendered(result) => CsmBody::Reply {
            status: ReplyStatus::new(rc, reason),
            json: format!("{{\"result\":{result},\"timestamp\":{now}}}"),
        },
        Answer::Subscribed(follow) => reply(rc, reason, json!({ "result": { "console": follow } })),
        Answer::Refused(r) => reply(rc, reason, message(&r.id.to_string(), r.text, now)),
        Answer::Stopped(e) => stopped(&e),
    }
}

fn stopped(e: &GatewayError) -> CsmBody {
    reply(
        ReturnCode::FAILED,
        CsmReason::STORE_FAILED.0,
        message("IWNR8013E", e, 0),
    )
}

/// CSM's result object for a command's reply (csm.md §3.2).
pub fn command_reply(r: &Reply) -> CsmBody {
    let mut object = ResultObject::of(&r.message);
    let (rc, reason, outcome) = match r.outcome {
        Outcome::Done => (ReturnCode::OK, 0, "done"),
        Outcome::Started(id) => {
            object.action = Some(id);
            (ReturnCode::OK, 0, "started")
        }
        Outcome::Requested(id) => {
            object.request = Some(id);
            (
                ReturnCode::WARNING,
                CsmReason::HELD_FOR_APPROVAL.0,
                "requested",
            )
        }
        Outcome::Refused(code) => (ReturnCode::REFUSED, code, "refused"),
    };
    object.outcome = Some(outcome);
    CsmBody::Reply {
        status: ReplyStatus::new(rc, reason),
        json: object.text(),
    }
}

/// A console message as CSM's result object (csm.md §4), as JSON text: written
/// straight from the message, once for every reply and every console event.
#[derive(serde::Serialize)]
struct ResultObject<'a> {
    // serde_json writes a map's keys sorted; these are in that order, so the text
    // is the same as that of the object made as a map.
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<crate::policy::storage::ActionId>,
    inserts: &'a [String],
    msg: String,
    #[serde(rename = "msgTranslated")]
    msg_translated: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<crate::policy::dual_control::RequestId>,
    session: Option<&'a str>,
    timestamp: u64,
}

impl<'a> ResultObject<'a> {
    fn of(m: &'a ConsoleMessage) -> ResultObject<'a> {
        ResultObject {
            action: None,
            inserts: &m.inserts,
            msg: m.id.to_string(),
            msg_translated: format!("{} [{}] {}", m.id, java_medium(m.at_ms), m.text),
            outcome: None,
            request: None,
            session: m.session.as_deref(),
            timestamp: m.at_ms,
        }
    }

    fn text(&self) -> String {
        // Strings, numbers and a list of strings: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A console message as CSM's result object (csm.md §4).
pub fn console_json(m: &ConsoleMessage) -> Value {
    serde_json::to_value(ResultObject::of(m)).unwrap_or_default()
}

/// [`console_json`] as JSON text, made without the map in between.
pub fn console_text(m: &ConsoleMessage) -> String {
    ResultObject::of(m).text()
}

/// `Nov 25, 2026 2:09:12 PM` (Java's MEDIUM style, en-US, UTC) for ms since the epoch.
pub fn java_medium(ms: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (year, month, day, h, m, s) = crate::policy::console::civil(ms);
    let (h12, ampm) = match h {
        0 => (12, "AM"),
        1..=11 => (h, "AM"),
        12 => (12, "PM"),
        _ => (h - 12, "PM"),
    };
    let month_name = MONTHS
        .get(usize::try_from(month.saturating_sub(1)).unwrap_or(0))
        .copied()
        .unwrap_or("Jan");
    format!("{month_name} {day}, {year} {h12}:{m:02}:{s:02} {ampm}")
}

/// A hash to check against when the user does not exist, at the cost real hashes
/// have, so that a logon's time does not tell which users exist.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        crate::password::hash_password(
            "no such user",
            b"zgate-dummy-salt",
            argon2::Params::default(),
        )
        .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{ConsoleMessage, CsmBody, Outcome, Reply};
    use crate::policy::console::ids;

    #[test]
    fn java_medium_is_csms_time_format() {
        assert_eq!(
            super::java_medium(1_795_564_800_000),
            "Nov 25, 2026 12:00:00 AM"
        );
        assert_eq!(
            super::java_medium(1_795_564_800_000 + 13 * 3_600_000 + 9 * 60_000 + 12_000),
            "Nov 25, 2026 1:09:12 PM"
        );
        assert_eq!(
            super::java_medium(1_795_564_800_000 + 12 * 3_600_000),
            "Nov 25, 2026 12:00:00 PM"
        );
    }

    /// The result object as the map it was first made as (csm.md §3.2, §4).
    fn as_a_map(r: &Reply) -> serde_json::Value {
        let m = &r.message;
        let mut v = json!({
            "msg": m.id.to_string(),
            "msgTranslated": format!("{} [{}] {}", m.id, super::java_medium(m.at_ms), m.text),
            "inserts": m.inserts,
            "timestamp": m.at_ms,
            "session": m.session,
        });
        match r.outcome {
            Outcome::Started(id) => v["action"] = json!(id),
            Outcome::Requested(id) => v["request"] = json!(id),
            _ => {}
        }
        v["outcome"] = json!(match r.outcome {
            Outcome::Done => "done",
            Outcome::Started(_) => "started",
            Outcome::Requested(_) => "requested",
            Outcome::Refused(_) => "refused",
        });
        v
    }

    #[test]
    fn a_subscription_is_found_however_the_request_spells_it() {
        let of = |json: &str| {
            super::subscription_of(&CsmBody::Request {
                json: json.to_owned(),
            })
        };
        assert_eq!(
            of(r#"{"op":"console.subscribe","follow":true}"#),
            Some(true)
        );
        assert_eq!(
            of(r#"{"op":"console.subscribe","follow":false}"#),
            Some(false)
        );
        // An escape spells the same operation: it is parsed, not skipped.
        assert_eq!(
            of(r#"{"op":"console\u002esubscribe","follow":true}"#),
            Some(true)
        );
        assert_eq!(of(r#"{"op":"session.list"}"#), None);
        assert_eq!(
            of(r#"{"op":"session.description","name":"A","description":"console.subscribe"}"#),
            None
        );
        assert_eq!(of("not json console.subscribe"), None);
    }

    #[test]
    fn result_objects_are_written_as_the_map_would_be() {
        let messages = [
            ConsoleMessage::new(
                ids::COMMAND_COMPLETED,
                1_795_564_800_000,
                Some("SGC1 \"quoted\" \u{e9}"),
                "The Backup command in the SGC1 session completed.".into(),
                vec!["Backup".into(), "SGC1".into()],
            ),
            ConsoleMessage::new(
                ids::SESSION_NOT_FOUND,
                7,
                None,
                "no such session\nat all".into(),
                Vec::new(),
            ),
        ];
        for m in messages {
            assert_eq!(super::console_text(&m), super::console_json(&m).to_string());
            for outcome in [
                Outcome::Done,
                Outcome::Started(1 << 63 | 5),
                Outcome::Requested(42),
                Outcome::Refused(0x1411),
            ] {
                let r = Reply {
                    outcome,
                    message: m.clone(),
                };
                let CsmBody::Reply { json, .. } = super::command_reply(&r) else {
                    panic!("not a reply");
                };
                assert_eq!(json, as_a_map(&r).to_string());
            }
        }
    }
}
