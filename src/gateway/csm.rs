//! The CSM protocol's server side (`protocol-specs/csm.md`): the gateway's door for a
//! CSM-side server or `zgate csm`. The shared listener (TLS, deadlines, caps,
//! throttling: framing.md §9) authenticates users against the engine's users
//! (argon2id); each REQUEST's JSON becomes an engine command or query, checked by
//! the engine against role, grants and dual control whatever the client claims; its
//! reply is CSM's result object. Console messages go as EVT_CONSOLE to every
//! logged-on client that asked for them (`console.subscribe`).

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tracing::warn;

use super::{GatewayError, GatewayHandle};
use crate::codec::fields::Ebcdic;
use crate::peer::server::{Forwarder, ListenConfig, PeerServer};
use crate::policy::SessionType;
use crate::policy::access::{ActionScope, OperatorGrant, Role, SessionAction, SessionScope};
use crate::policy::console::ConsoleMessage;
use crate::policy::dual_control::DualControlMode;
use crate::policy::engine::{Command, Engine, Outcome, Reply};
use crate::policy::inventory::{
    HostConnection, HostCredential, HostKind, StorageSystem, VolumeRef,
};
use crate::policy::schedule::{Schedule, WEEKDAYS};
use crate::policy::session::{CopySet, Properties, PropertiesPatch, Session, SessionCommand};
use crate::proto::csm::{Csm, CsmBody, CsmReason};
use crate::proto::logon::{CredentialKind, LogonRequest, NOT_AUTHORIZED};
use crate::proto::session::{Disposition, LogonDecision, ServerBackend};
use crate::proto::{ReplyStatus, ReturnCode};
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
    peer: PeerServer<Csm, CsmBackend>,
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
        let forwarder: Arc<dyn Forwarder<Csm>> = Arc::new(CsmForwarder { gateway, key });
        let peer = PeerServer::start_with(listen, backend, Some(forwarder)).await?;
        let control = peer.control().clone();
        let relay = tokio::spawn(async move {
            loop {
                match console.recv().await {
                    Ok(m) => control.inject_event(CsmBody::Console {
                        json: console_json(&m).to_string(),
                    }),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        warn!(skipped = n, "CSM console relay fell behind");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(CsmServer { peer, relay })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.peer.addr()
    }

    /// Stops accepting and closes every connection.
    pub async fn shutdown(self) {
        self.relay.abort();
        self.peer.shutdown().await;
    }
}

struct CsmBackend {
    users: UserHashes,
    domain: Ebcdic<8>,
    system: Ebcdic<8>,
}

impl ServerBackend<Csm> for CsmBackend {
    fn logon(&mut self, request: &LogonRequest, _now_unix: u64, _now: Instant) -> LogonDecision {
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
        if authenticate(&self.users, user.trim_end(), &request.credential.0).is_some() {
            LogonDecision::Accept {
                domain: self.domain.clone(),
                system: self.system.clone(),
            }
        } else {
            refuse(NOT_AUTHORIZED, 0x0001)
        }
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
    gateway: GatewayHandle,
    key: Arc<SealingKey>,
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

    fn in_order(&self) -> bool {
        true
    }

    /// csm.md §4: `console.subscribe` turns this connection's console events on or off.
    fn subscription(&self, request: &CsmBody) -> Option<bool> {
        let CsmBody::Request { json } = request else {
            return None;
        };
        match serde_json::from_str::<Request>(json) {
            Ok(Request::ConsoleSubscribe { follow }) => Some(follow),
            _ => None,
        }
    }
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

/// Serves one REQUEST for `user` (csm.md §3).
pub async fn serve(gateway: &GatewayHandle, key: &SealingKey, user: &str, json: &str) -> CsmBody {
    let request: Request = match serde_json::from_str(json) {
        Ok(r) => r,
        Err(e) => {
            let now = gateway.clock().unix_millis();
            return bad(
                format!("the request is not an operation zgate knows: {e}"),
                now,
            );
        }
    };
    let command = match request.into_call(key) {
        Ok(Call::Command(c)) => c,
        Ok(Call::Query(Query::Requests)) => {
            let user = user.to_owned();
            return match gateway.read(move |e| requests_for(e, &user)).await {
                Ok(rows) => reply(
                    ReturnCode::OK,
                    0,
                    json!({ "result": rows, "timestamp": gateway.clock().unix_millis() }),
                ),
                Err(e) => stopped(&e),
            };
        }
        Ok(Call::Query(q)) => {
            let links = matches!(q, Query::Storage | Query::Hosts);
            let status = matches!(q, Query::Status);
            let answer = match q.cache_key() {
                // Reads of the stored state alone are served from the gateway's cache.
                Some(key) => gateway
                    .read_cached(key, move |e| {
                        q.answer(e).unwrap_or_else(|why| json!({ "error": why }))
                    })
                    .await
                    .map(Ok),
                None => gateway.read(move |e| q.answer(e)).await,
            };
            return match answer {
                Ok(Ok(mut result)) => {
                    if links {
                        with_links(&mut result, &gateway.links());
                    }
                    if status {
                        result["uptime_secs"] = json!(gateway.uptime_secs());
                        result["store"] = json!(gateway.store_path().display().to_string());
                    }
                    reply(
                        ReturnCode::OK,
                        0,
                        json!({ "result": result, "timestamp": gateway.clock().unix_millis() }),
                    )
                }
                Ok(Err(why)) => reply(
                    ReturnCode::REFUSED,
                    crate::policy::engine::codes::UNKNOWN_SESSION,
                    message("IWNR1502E", why, gateway.clock().unix_millis()),
                ),
                Err(e) => stopped(&e),
            };
        }
        // One engine command: the change is applied to the properties as they stand
        // when the engine takes it (two changes never overwrite each other).
        Ok(Call::Options(name, options)) => Command::PatchProperties {
            session: name,
            patch: options.patch(),
        },
        Ok(Call::Subscribe(follow)) => {
            return reply(
                ReturnCode::OK,
                0,
                json!({ "result": { "console": follow } }),
            );
        }
        Err(why) => return bad(why, gateway.clock().unix_millis()),
    };
    match gateway.command(user, command).await {
        Ok(r) => command_reply(&r),
        Err(e) => stopped(&e),
    }
}

/// Adds each link's status (connected, logons, last error) to a storage or host list.
fn with_links(result: &mut Value, links: &std::collections::BTreeMap<String, super::LinkStatus>) {
    if let Value::Array(rows) = result {
        for row in rows {
            let name = row["name"]
                .as_str()
                .or(row["system"].as_str())
                .unwrap_or_default()
                .to_owned();
            let status = links.get(&name).cloned().unwrap_or_default();
            row["connected"] = json!(status.connected);
            row["logons"] = json!(status.logons);
            row["last_error"] = json!(status.last_error);
        }
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
    let mut body = console_json(&r.message);
    let (rc, reason) = match r.outcome {
        Outcome::Done => (ReturnCode::OK, 0),
        Outcome::Started(id) => {
            body["action"] = json!(id);
            (ReturnCode::OK, 0)
        }
        Outcome::Requested(id) => {
            body["request"] = json!(id);
            (ReturnCode::WARNING, CsmReason::HELD_FOR_APPROVAL.0)
        }
        Outcome::Refused(code) => (ReturnCode::REFUSED, code),
    };
    body["outcome"] = json!(match r.outcome {
        Outcome::Done => "done",
        Outcome::Started(_) => "started",
        Outcome::Requested(_) => "requested",
        Outcome::Refused(_) => "refused",
    });
    reply(rc, reason, body)
}

/// A console message as CSM's result object (csm.md §4).
pub fn console_json(m: &ConsoleMessage) -> Value {
    json!({
        "msg": m.id.to_string(),
        "msgTranslated": format!("{} [{}] {}", m.id, java_medium(m.at_ms), m.text),
        "inserts": m.inserts,
        "timestamp": m.at_ms,
        "session": m.session,
    })
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

enum Call {
    Command(Command),
    Query(Query),
    /// Options are a command whose shape depends on the session's type.
    Options(String, OptionsJson),
    /// Console events on or off for this connection (the listener acts on it).
    Subscribe(bool),
}

/// One operation (csm.md §3.1): `{"op": "<name>", <fields>}`.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", deny_unknown_fields)]
enum Request {
    #[serde(rename = "server.status")]
    ServerStatus {},
    #[serde(rename = "session.list")]
    SessionList {},
    #[serde(rename = "session.get")]
    SessionGet { name: String },
    #[serde(rename = "session.create")]
    SessionCreate {
        name: String,
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        description: String,
    },
    #[serde(rename = "session.delete")]
    SessionDelete { name: String },
    #[serde(rename = "session.description")]
    SessionDescription { name: String, description: String },
    #[serde(rename = "session.options")]
    SessionOptions { name: String, options: OptionsJson },
    #[serde(rename = "session.copysets.add")]
    CopySetsAdd {
        name: String,
        copysets: Vec<Vec<String>>,
    },
    #[serde(rename = "session.copysets.remove")]
    CopySetsRemove { name: String, h1: Vec<String> },
    #[serde(rename = "session.run")]
    SessionRun {
        name: String,
        cmd: String,
        #[serde(default)]
        backup: Option<u64>,
    },
    #[serde(rename = "dualcontrol.requests")]
    Requests {},
    #[serde(rename = "dualcontrol.approve")]
    Approve { id: u64 },
    #[serde(rename = "dualcontrol.reject")]
    Reject { id: u64, comment: String },
    #[serde(rename = "dualcontrol.cancel")]
    Cancel { id: u64 },
    #[serde(rename = "dualcontrol.set")]
    SetMode { mode: String },
    #[serde(rename = "user.list")]
    UserList {},
    #[serde(rename = "user.create")]
    UserCreate {
        name: String,
        role: String,
        password: String,
        #[serde(default)]
        sessions: Option<Vec<String>>,
        #[serde(default)]
        actions: Option<Vec<String>>,
    },
    #[serde(rename = "user.role")]
    UserRole {
        name: String,
        role: String,
        #[serde(default)]
        sessions: Option<Vec<String>>,
        #[serde(default)]
        actions: Option<Vec<String>>,
    },
    #[serde(rename = "user.password")]
    UserPassword { name: String, password: String },
    #[serde(rename = "user.remove")]
    UserRemove { name: String },
    #[serde(rename = "storage.list")]
    StorageList {},
    #[serde(rename = "storage.add")]
    StorageAdd {
        serial: String,
        address: String,
        user: String,
        password: String,
    },
    #[serde(rename = "storage.remove")]
    StorageRemove { serial: String },
    #[serde(rename = "host.list")]
    HostList {},
    #[serde(rename = "host.add")]
    HostAdd {
        system: String,
        kind: String,
        address: String,
        #[serde(default)]
        port: Option<u16>,
        #[serde(default)]
        user: Option<String>,
        #[serde(default)]
        password: Option<String>,
        #[serde(default)]
        passphrase: Option<String>,
        #[serde(default)]
        passticket_key: Option<String>,
        #[serde(default)]
        application: Option<String>,
    },
    #[serde(rename = "host.remove")]
    HostRemove { system: String },
    #[serde(rename = "task.list")]
    TaskList {},
    #[serde(rename = "task.create")]
    TaskCreate {
        name: String,
        session: String,
        cmd: String,
        schedule: ScheduleJson,
        #[serde(default = "yes")]
        enabled: bool,
        #[serde(default)]
        description: String,
    },
    #[serde(rename = "task.modify")]
    TaskModify { id: u64, schedule: ScheduleJson },
    #[serde(rename = "task.enable")]
    TaskEnable { id: u64 },
    #[serde(rename = "task.disable")]
    TaskDisable { id: u64 },
    #[serde(rename = "task.run")]
    TaskRun { id: u64 },
    #[serde(rename = "task.delete")]
    TaskDelete { id: u64 },
    #[serde(rename = "console.subscribe")]
    ConsoleSubscribe {
        #[serde(default = "yes")]
        follow: bool,
    },
}

fn yes() -> bool {
    true
}

/// Session options (csm.md §3.3): the fields named change, the others keep their
/// values; a field of the other session type is refused (BAD_PROPERTY).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OptionsJson {
    incremental: Option<bool>,
    nocopy: Option<bool>,
    persistent: Option<bool>,
    inhibit_target_writes: Option<bool>,
    min_flash_interval_mins: Option<u32>,
    retention_mins: Option<u64>,
    min_backup_interval_mins: Option<u64>,
    allow_manual_expire: Option<bool>,
    min_backups: Option<usize>,
    /// `null` or `""`: back to the HMC.
    #[serde(default, deserialize_with = "present")]
    system: Option<Option<String>>,
}

/// A field that may be `null`: absent is `None`, `null` (or `""`) is `Some(None)`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    let v: Option<String> = Option::deserialize(d)?;
    Ok(Some(v.filter(|s| !s.is_empty())))
}

impl OptionsJson {
    fn patch(self) -> PropertiesPatch {
        PropertiesPatch {
            incremental: self.incremental,
            no_copy: self.nocopy,
            persistent: self.persistent,
            inhibit_target_writes: self.inhibit_target_writes,
            min_flash_interval_mins: self.min_flash_interval_mins,
            retention_ms: self.retention_mins.map(|m| m.saturating_mul(60_000)),
            min_interval_ms: self
                .min_backup_interval_mins
                .map(|m| m.saturating_mul(60_000)),
            allow_manual_expiry: self.allow_manual_expire,
            min_kept: self.min_backups,
            host_system: self.system,
        }
    }
}

/// A schedule (csm.md §3.4).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
enum ScheduleJson {
    #[serde(rename = "once")]
    Once {
        #[serde(default)]
        at: Option<u64>,
    },
    #[serde(rename = "weekly")]
    Weekly { days: Vec<String>, time: String },
    #[serde(rename = "interval")]
    Interval { start: u64, interval_mins: u64 },
}

fn role(name: &str) -> Result<Role, String> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "administrator" | "admin" => Role::Administrator,
        "user administrator" | "useradmin" => Role::UserAdministrator,
        "operator" => Role::Operator,
        "monitor" => Role::Monitor,
        _ => {
            return Err(format!(
                "no role {name}: Administrator, User Administrator, Operator or Monitor"
            ));
        }
    })
}

fn grant(
    sessions: Option<Vec<String>>,
    actions: Option<Vec<String>>,
) -> Result<OperatorGrant, String> {
    let actions = match actions {
        None => ActionScope::Default,
        Some(list) => ActionScope::Selected(
            list.iter()
                .map(|a| SessionAction::parse(a).ok_or_else(|| format!("no action {a}")))
                .collect::<Result<BTreeSet<_>, _>>()?,
        ),
    };
    Ok(OperatorGrant {
        sessions: sessions.map_or(SessionScope::All, |s| {
            SessionScope::Named(s.into_iter().collect())
        }),
        actions,
    })
}

/// A new argon2id hash, made on the shared pool (gateway/passwords.rs).
fn hash(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|_| "no randomness for a salt".to_owned())?;
    let password = zeroize::Zeroizing::new(password.to_owned());
    super::passwords::on_pool(move || {
        crate::password::hash_password(&password, &salt, argon2::Params::default())
            .map_err(|e| e.to_string())
    })
    .map_err(|e| e.to_string())?
}

fn volume(text: &str) -> Result<VolumeRef, String> {
    VolumeRef::parse(text).ok_or_else(|| format!("{text} is not DS8000:2107.<serial>:VOL:<XXYY>"))
}

impl Request {
    fn into_call(self, key: &SealingKey) -> Result<Call, String> {
        use Request as R;
        let c = |command| Ok(Call::Command(command));
        let q = |query| Ok(Call::Query(query));
        match self {
            R::ServerStatus {} => q(Query::Status),
            R::SessionList {} => q(Query::Sessions),
            R::SessionGet { name } => q(Query::Session(name)),
            R::Requests {} => q(Query::Requests),
            R::UserList {} => q(Query::Users),
            R::StorageList {} => q(Query::Storage),
            R::HostList {} => q(Query::Hosts),
            R::TaskList {} => q(Query::Tasks),
            R::SessionCreate {
                name,
                kind,
                description,
            } => {
                let kind = match kind.as_str() {
                    "FC" => SessionType::Fc,
                    "SGC" => SessionType::Sgc,
                    other => return Err(format!("session type {other}: zgate runs FC and SGC")),
                };
                c(Command::CreateSession {
                    name,
                    kind,
                    description,
                })
            }
            R::SessionDelete { name } => c(Command::RemoveSession { name }),
            R::SessionDescription { name, description } => c(Command::SetDescription {
                session: name,
                description,
            }),
            R::SessionOptions { name, options } => Ok(Call::Options(name, options)),
            R::CopySetsAdd { name, copysets } => {
                let copy_sets = copysets
                    .iter()
                    .map(|set| match set.as_slice() {
                        [h1, partner] => Ok(CopySet {
                            h1: volume(h1)?,
                            partner: volume(partner)?,
                        }),
                        _ => Err("a copy set is [H1, T1] or [H1, R1]".to_owned()),
                    })
                    .collect::<Result<_, _>>()?;
                c(Command::AddCopySets {
                    session: name,
                    copy_sets,
                })
            }
            R::CopySetsRemove { name, h1 } => c(Command::RemoveCopySets {
                session: name,
                h1: h1.iter().map(|v| volume(v)).collect::<Result<_, _>>()?,
            }),
            R::SessionRun { name, cmd, backup } => {
                let command = SessionCommand::parse(&cmd, backup).ok_or_else(|| {
                    format!("{cmd} is not a session command (a backup command needs \"backup\")")
                })?;
                c(Command::Run {
                    session: name,
                    command,
                })
            }
            R::Approve { id } => c(Command::Approve { id }),
            R::Reject { id, comment } => c(Command::Reject { id, comment }),
            R::Cancel { id } => c(Command::Cancel { id }),
            R::SetMode { mode } => c(Command::SetDualControlMode(
                match mode.to_ascii_lowercase().as_str() {
                    "off" | "disable" => DualControlMode::Off,
                    "full" | "full protection" => DualControlMode::FullProtection,
                    "sgc" | "safeguarded copy" => DualControlMode::SafeguardedCopy,
                    _ => return Err(format!("dual control mode {mode}: off, full or sgc")),
                },
            )),
            R::UserCreate {
                name,
                role: r,
                password,
                sessions,
                actions,
            } => {
                let role = role(&r)?;
                c(Command::CreateUser {
                    name,
                    role,
                    grant: (role == Role::Operator)
                        .then(|| grant(sessions, actions))
                        .transpose()?,
                    password_hash: hash(&password)?,
                })
            }
            R::UserRole {
                name,
                role: r,
                sessions,
                actions,
            } => {
                let role = role(&r)?;
                c(Command::SetUserRole {
                    name,
                    role,
                    grant: (role == Role::Operator)
                        .then(|| grant(sessions, actions))
                        .transpose()?,
                })
            }
            R::UserPassword { name, password } => c(Command::SetPassword {
                name,
                password_hash: hash(&password)?,
            }),
            R::UserRemove { name } => c(Command::RemoveUser { name }),
            R::StorageAdd {
                serial,
                address,
                user,
                password,
            } => {
                let object = format!("DS8000:BOX:2107.{serial} password");
                let password = key
                    .seal(&object, password.as_bytes())
                    .map_err(|e| e.to_string())?;
                c(Command::DefineStorageSystem(StorageSystem {
                    serial,
                    address,
                    user,
                    password,
                }))
            }
            R::StorageRemove { serial } => c(Command::RemoveStorageSystem { serial }),
            R::HostAdd {
                system,
                kind,
                address,
                port,
                user,
                password,
                passphrase,
                passticket_key,
                application,
            } => {
                let kind = match kind.to_ascii_lowercase().as_str() {
                    "zos" | "z/os" => HostKind::Zos,
                    "ztpf" | "z/tpf" => HostKind::Ztpf,
                    other => return Err(format!("host kind {other}: zos or ztpf")),
                };
                let seal = |what: &str, secret: &str| {
                    key.seal(&format!("{system} {what}"), secret.as_bytes())
                        .map_err(|e| e.to_string())
                };
                let credential = match (password, passphrase, passticket_key) {
                    (Some(p), None, None) => HostCredential::Password(seal("password", &p)?),
                    (None, Some(p), None) => HostCredential::Passphrase(seal("passphrase", &p)?),
                    (None, None, Some(k)) => HostCredential::PassTicket {
                        // csm.md §3.1: 16 hex digits (legacy DES) or 64 (enhanced).
                        key: {
                            let legacy = crate::passticket::LegacyKey::from_hex(k.trim()).is_ok();
                            let enhanced =
                                crate::passticket::EnhancedKey::from_hex(k.trim()).is_ok();
                            if !legacy && !enhanced {
                                return Err("passticket_key is 16 hex digits (a legacy DES key) or 64 (an enhanced HMAC-SHA-512 key)".into());
                            }
                            seal("PassTicket key", k.trim())?
                        },
                        application: application.unwrap_or_else(|| {
                            crate::policy::inventory::DEFAULT_ZOS_APPLICATION.into()
                        }),
                    },
                    _ => {
                        return Err(
                            "give exactly one of password, passphrase, passticket_key".into()
                        );
                    }
                };
                c(Command::DefineHostConnection(HostConnection {
                    system,
                    kind,
                    address,
                    port: port.unwrap_or(crate::policy::inventory::DEFAULT_ZOS_PORT),
                    user: user
                        .unwrap_or_else(|| crate::policy::inventory::DEFAULT_HOST_USER.into()),
                    credential,
                }))
            }
            R::HostRemove { system } => c(Command::RemoveHostConnection { system }),
            R::TaskCreate {
                name,
                session,
                cmd,
                schedule,
                enabled,
                description,
            } => {
                let command = SessionCommand::parse(&cmd, None)
                    .ok_or_else(|| format!("{cmd} is not a schedulable command"))?;
                let schedule = schedule.into_schedule()?;
                c(Command::CreateTask {
                    name,
                    session,
                    command,
                    schedule,
                    enabled,
                    description,
                })
            }
            R::TaskModify { id, schedule } => c(Command::ModifyTask {
                id,
                schedule: schedule.into_schedule()?,
            }),
            R::TaskEnable { id } => c(Command::EnableTask { id }),
            R::TaskDisable { id } => c(Command::DisableTask { id }),
            R::TaskRun { id } => c(Command::RunTask { id }),
            R::TaskDelete { id } => c(Command::DeleteTask { id }),
            R::ConsoleSubscribe { follow } => Ok(Call::Subscribe(follow)),
        }
    }
}

impl ScheduleJson {
    /// The engine's schedule (policy.md §7.1 checks the rest).
    fn into_schedule(self) -> Result<Schedule, String> {
        Ok(match self {
            Self::Once { at } => Schedule::Once { at_ms: at },
            Self::Interval {
                start,
                interval_mins,
            } => Schedule::Interval {
                start_ms: start,
                interval_ms: interval_mins.saturating_mul(60_000),
            },
            Self::Weekly { days, time } => {
                let mut mask = 0u8;
                for d in &days {
                    let i = WEEKDAYS
                        .iter()
                        .position(|w| w.eq_ignore_ascii_case(d))
                        .ok_or_else(|| format!("{d} is not MON..SUN"))?;
                    mask |= 1 << i;
                }
                let (h, m) = time.split_once(':').ok_or("time is HH:MM")?;
                let (h, m): (u16, u16) = (
                    h.parse().map_err(|_| "time is HH:MM")?,
                    m.parse().map_err(|_| "time is HH:MM")?,
                );
                if h > 23 || m > 59 {
                    return Err("time is HH:MM, 00:00 to 23:59".into());
                }
                Schedule::Weekly {
                    days: mask,
                    minute_of_day: h * 60 + m,
                }
            }
        })
    }
}

/// Reads of the engine (csm.md §3.5).
enum Query {
    Status,
    Sessions,
    Session(String),
    Requests,
    Users,
    Storage,
    Hosts,
    Tasks,
}

impl Query {
    /// The cache key of a read that depends on the stored state alone; `None` for
    /// one session's details (they include copy progress, kept in memory).
    fn cache_key(&self) -> Option<&'static str> {
        Some(match self {
            Query::Status => "csm.status",
            Query::Sessions => "csm.sessions",
            Query::Requests => "csm.requests",
            Query::Users => "csm.users",
            Query::Storage => "csm.storage",
            Query::Hosts => "csm.hosts",
            Query::Tasks => "csm.tasks",
            Query::Session(_) => return None,
        })
    }
}

/// The pending dual-control requests `user` can act on: its own (to cancel) and
/// those it has the authority to approve or reject (policy.md §2.2; CSM: "You can
/// only see pending requests that you can approve, reject, or cancel"). Each with
/// the change in CSM's words (what an approver reads). Shared by both doors.
pub fn requests_for(e: &Engine, user: &str) -> Vec<Value> {
    let st = e.state();
    let Some(who) = e.principal(user) else {
        return Vec::new();
    };
    st.dual
        .pending()
        .filter(|r| r.requester == user || r.change.authorized(&who).is_ok())
        .map(|r| {
            let what = st
                .held
                .get(&r.id)
                .map(|h| crate::policy::engine::describe(&h.command))
                .unwrap_or_else(|| r.change.describe());
            json!({
                "requestid": r.id,
                "requester": r.requester,
                "change": what,
                "description": what,
                "status": "Pending",
                "created": r.created_ms,
                "expires": r.expires_ms,
                "yours": r.requester == user,
            })
        })
        .collect()
}

/// An Operator's grant as `user.create` takes it (csm.md §3.1): `sessions` ("all" or
/// names) and `actions` ("default" or CSM's action names).
fn grant_json(g: &crate::policy::access::OperatorGrant) -> Value {
    use crate::policy::access::{ActionScope, SessionScope};
    json!({
        "sessions": match &g.sessions {
            SessionScope::All => json!("all"),
            SessionScope::Named(names) => json!(names),
        },
        "actions": match &g.actions {
            ActionScope::Default => json!("default"),
            ActionScope::Selected(actions) => {
                json!(actions.iter().map(|a| a.name()).collect::<Vec<_>>())
            }
        },
    })
}

/// A schedule in the form `task.create` takes (csm.md §3.4).
fn schedule_json(s: &Schedule) -> Value {
    match *s {
        Schedule::Once { at_ms } => match at_ms {
            Some(at) => json!({ "type": "once", "at": at }),
            None => json!({ "type": "once" }),
        },
        Schedule::Weekly {
            days,
            minute_of_day,
        } => json!({
            "type": "weekly",
            "days": crate::policy::schedule::weekday_names(days),
            "time": format!("{:02}:{:02}", minute_of_day / 60, minute_of_day % 60),
        }),
        Schedule::Interval {
            start_ms,
            interval_ms,
        } => {
            json!({ "type": "interval", "start": start_ms, "interval_mins": interval_ms / 60_000 })
        }
    }
}

fn session_json(s: &Session) -> Value {
    json!({
        "name": s.name,
        "type": s.kind().code(),
        "description": s.description,
        "state": s.state.name(),
        "status": s.status.name(),
        "numcopysets": s.copy_sets.len(),
        "copying": s.copying,
        "recoverable": s.has_recoverable(),
        "haserror": s.last_error.is_some(),
        "error": s.last_error,
        "busy": s.busy.is_some(),
    })
}

impl Query {
    fn answer(self, e: &Engine) -> Result<Value, String> {
        let st = e.state();
        Ok(match self {
            Query::Status => json!({
                "version": env!("CARGO_PKG_VERSION"),
                "dualcontrol": st.dual.mode().name(),
                "sessions": st.sessions.len(),
                "users": st.users.len(),
                "storage_systems": st.systems.len(),
                "host_connections": st.hosts.len(),
                "pending_requests": st.dual.pending().count(),
                "audit_entries": st.audit_head.next_seq,
            }),
            Query::Sessions => Value::Array(st.sessions.values().map(session_json).collect()),
            Query::Session(name) => {
                let s = st.sessions.get(&name).ok_or_else(|| format!("There is no session named {name}."))?;
                let mut v = session_json(s);
                v["copysets"] = s
                    .copy_sets
                    .iter()
                    .map(|c| json!([c.h1.to_string(), c.partner.to_string()]))
                    .collect();
                v["availablecommands"] = json!(e.available_commands(&name).unwrap_or_default());
                v["backups"] = s
                    .backups
                    .iter()
                    .map(|b| json!({ "backupID": b.id, "backupTime": b.time_ms, "recoverable": s.recoverable(b.id) }))
                    .collect();
                v["recovered"] = json!(s.recovered);
                v["last_flash"] = json!(s.last_flash_ms);
                v["progress_out_of_sync_tracks"] = json!(e.copy_progress(&name));
                v["options"] = options_json(&s.properties);
                v
            }
            Query::Requests => Value::Array(Vec::new()),
            Query::Users => st
                .users
                .values()
                .map(|u| json!({ "name": u.name, "role": u.role.name(), "grant": u.grant.as_ref().map(grant_json) }))
                .collect(),
            Query::Storage => st
                .systems
                .values()
                .map(|s| json!({ "name": s.name(), "serial": s.serial, "address": s.address, "user": s.user }))
                .collect(),
            Query::Hosts => st
                .hosts
                .values()
                .map(|h| json!({
                    "system": h.system, "kind": match h.kind { HostKind::Zos => "zos", HostKind::Ztpf => "ztpf" }, "address": h.address, "port": h.port, "user": h.user,
                    "credential": match &h.credential {
                        HostCredential::Password(_) => "password".to_owned(),
                        HostCredential::Passphrase(_) => "passphrase".to_owned(),
                        // The sealed length tells the key's length (store.md §4), not the key.
                        HostCredential::PassTicket { application, key } => {
                            let kind = if key.0.len().saturating_sub(29) == 16 { "legacy DES" } else { "enhanced HMAC-SHA-512" };
                            format!("{kind} PassTicket ({application})")
                        }
                    },
                }))
                .collect(),
            Query::Tasks => st
                .tasks
                .values()
                .map(|t| json!({
                    "id": t.id, "name": t.name, "session": t.session, "command": t.command.name(),
                    "schedule": schedule_json(&t.schedule), "enabled": t.enabled,
                    "nextRun": t.next_run_ms, "lastRan": t.last_run_ms, "lastmessage": t.last_result,
                    "description": t.description,
                }))
                .collect(),
        })
    }
}

/// A session's options as the CSM protocol writes them (csm.md §3.3).
pub fn options_json(properties: &Properties) -> Value {
    match properties {
        Properties::Fc(p) => json!({
            "incremental": p.incremental, "nocopy": p.no_copy, "persistent": p.persistent,
            "inhibit_target_writes": p.inhibit_target_writes,
            "min_flash_interval_mins": p.min_flash_interval_mins, "system": p.host_system,
        }),
        Properties::Sgc(p) => json!({
            "retention_mins": p.policy.retention_ms / 60_000,
            "min_backup_interval_mins": p.policy.min_interval_ms / 60_000,
            "allow_manual_expire": p.policy.allow_manual_expiry,
            "min_backups": p.policy.min_kept, "system": p.host_system,
        }),
    }
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
}
