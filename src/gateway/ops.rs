//! The gateway's operations (`protocol-specs/csm.md` §3, `protocol-specs/rest.md`):
//! one typed [`Operation`] per thing a client can ask, whichever door it came
//! through. The CSM protocol's JSON is its serde encoding (`{"op": "<name>", …}`);
//! REST builds the same values from its paths and forms, with no JSON text in
//! between. [`execute`] carries one out (a command for the engine, or a read of
//! it) and answers with an [`Answer`]; each door encodes that its own way, and
//! [`Answer::csm_status`] and [`Answer::http_status`] are the one place a refusal
//! becomes the CSM reason and the HTTP status.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::{Value, json};

use super::imports::Staged;
pub use super::views::SessionSummary;
use super::views::{SessionDetail, TaskView};
use super::{GatewayError, GatewayHandle};
use crate::policy::SessionType;
use crate::policy::access::{ActionScope, OperatorGrant, Role, SessionAction, SessionScope};
use crate::policy::console::{MessageId, ids};
use crate::policy::dual_control::DualControlMode;
use crate::policy::engine::{Command, Engine, Outcome, Reply, codes};
use crate::policy::inventory::{
    Discover, HostConnection, HostCredential, HostKind, Sealed, StorageSystem, VolumeRef,
    discovery_object, storage_password_object,
};
use crate::policy::schedule::{Schedule, WEEKDAYS};
use crate::policy::session::{CopySet, Properties, PropertiesPatch, SessionCommand};
use crate::proto::ReturnCode;
use crate::proto::csm::CsmReason;
use crate::proto::logon::Credential;
use crate::store::sealing::SealingKey;

/// What an operation came to, before a door encodes it.
#[derive(Debug)]
pub enum Answer {
    /// A command's reply from the engine: done, started, held, or refused.
    Reply(Reply),
    /// A read's result (shared with the gateway's read cache).
    View(std::sync::Arc<Value>),
    /// A read's result as the JSON text it is sent as (shared with the gateway's
    /// cache of such texts).
    Rendered(std::sync::Arc<str>),
    /// Console events on or off for the asking connection.
    Subscribed(bool),
    /// Refused before the engine: malformed, or naming nothing that exists.
    Refused(Refused),
    /// The gateway has stopped (or its store failed).
    Stopped(GatewayError),
}

/// A refusal made before the engine.
#[derive(Debug, Clone)]
pub struct Refused {
    /// The reason code (policy.md §5.6, csm.md §3.2).
    pub code: u16,
    /// The message id.
    pub id: MessageId,
    /// What is wrong, in words.
    pub text: String,
}

impl Refused {
    fn bad(text: impl Into<String>) -> Refused {
        Refused {
            code: CsmReason::BAD_REQUEST.0,
            id: ids::BAD_REQUEST,
            text: text.into(),
        }
    }
}

impl Answer {
    /// A command the gateway did not take: refused on a standby (naming the active),
    /// or the gateway stopped.
    pub fn from_error(e: GatewayError) -> Answer {
        match e {
            GatewayError::Standby { .. } => Answer::Refused(Refused {
                code: CsmReason::SERVER_IS_STANDBY.0,
                id: ids::SERVER_IS_STANDBY,
                text: e.to_string(),
            }),
            GatewayError::Ha(_) => Answer::Refused(Refused {
                code: CsmReason::HA_REFUSED.0,
                id: ids::HA_REFUSED,
                text: e.to_string(),
            }),
            other => Answer::Stopped(other),
        }
    }

    /// The message id the answer carries, if any.
    pub fn message_id(&self) -> Option<MessageId> {
        match self {
            Answer::Reply(r) => Some(r.message.id),
            Answer::Refused(r) => Some(r.id),
            Answer::Stopped(_) => Some(ids::STORAGE_FAILED),
            Answer::View(_) | Answer::Rendered(_) | Answer::Subscribed(_) => None,
        }
    }

    /// The CSM protocol's return code and reason (csm.md §3.2).
    pub fn csm_status(&self) -> (ReturnCode, u16) {
        match self {
            Answer::Reply(r) => match r.outcome {
                Outcome::Done | Outcome::Started(_) => (ReturnCode::OK, 0),
                Outcome::Requested(_) => (ReturnCode::WARNING, CsmReason::HELD_FOR_APPROVAL.0),
                Outcome::Refused(code) => (ReturnCode::REFUSED, code),
            },
            Answer::View(_) | Answer::Rendered(_) | Answer::Subscribed(_) => (ReturnCode::OK, 0),
            Answer::Refused(r) => (ReturnCode::REFUSED, r.code),
            Answer::Stopped(_) => (ReturnCode::FAILED, CsmReason::STORE_FAILED.0),
        }
    }

    /// REST's HTTP status (rest.md §3): informational and warning messages are 200;
    /// an error is 403, 404, 409, 502 or 400 by what refused it.
    pub fn http_status(&self) -> u16 {
        match self {
            // rest.md §3: a gateway that is stopping answers 503.
            Answer::Stopped(_) => 503,
            // rest.md §6: more discovery logons than allowed in a minute.
            Answer::Reply(r) if r.outcome == Outcome::Refused(codes::TOO_MANY_DISCOVERIES) => 429,
            _ => self.message_id().map_or(200, http_status_of),
        }
    }
}

/// The HTTP status of a result object with message `id` (rest.md §3).
pub fn http_status_of(id: MessageId) -> u16 {
    use crate::policy::console::Severity;
    if id.severity != Severity::Error {
        return 200;
    }
    if id == ids::NOT_AUTHORIZED {
        403
    } else if id == ids::SESSION_NOT_FOUND {
        404
    } else if id == ids::SESSION_EXISTS
        || id == ids::COMMAND_NOT_VALID
        || id == ids::POLICY_REFUSED
        || id == ids::SERVER_IS_STANDBY
        || id == ids::HA_REFUSED
    {
        409
    } else if id == ids::STORAGE_FAILED {
        502
    } else {
        400
    }
}

/// Carries out `op` for `user`: a command goes to the engine (which checks role,
/// grants and dual control), a read reads it.
pub async fn execute(
    gateway: &GatewayHandle,
    key: &SealingKey,
    user: &str,
    op: Operation,
) -> Answer {
    let command = match op.into_call(key) {
        Ok(Call::Command(c)) => c,
        Ok(Call::Query(Query::Requests)) => {
            let user = user.to_owned();
            return match gateway.read(move |e| requests_for(e, &user)).await {
                Ok(rows) => Answer::View(std::sync::Arc::new(Value::Array(rows))),
                Err(e) => Answer::Stopped(e),
            };
        }
        Ok(Call::Query(Query::Sessions)) => {
            // csm.md §3.5: the summaries are copied on the engine's task, the text
            // written here.
            let read = gateway.read_session_rows("csm.sessions", |summary| {
                serde_json::to_string(&CsmSessionRow::of(summary)).unwrap_or_else(|_| "{}".into())
            });
            return match read.await {
                Ok(text) => Answer::Rendered(text),
                Err(e) => Answer::Stopped(e),
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
                None => {
                    gateway
                        .read(move |e| q.answer(e).map(std::sync::Arc::new))
                        .await
                }
            };
            return match answer {
                Ok(Ok(result)) if !links && !status => Answer::View(result),
                Ok(Ok(shared)) => {
                    let mut result = std::sync::Arc::unwrap_or_clone(shared);
                    if links {
                        with_links(&mut result, &gateway.links());
                    }
                    if status {
                        result["uptime_secs"] = json!(gateway.uptime_secs());
                        result["store"] = json!(gateway.store_path().display().to_string());
                        result["ha"] = match gateway.ha() {
                            Some(ha) => serde_json::to_value(ha.status()).unwrap_or_default(),
                            None => json!({ "role": "ACTIVE", "link": "No standby" }),
                        };
                    }
                    Answer::View(std::sync::Arc::new(result))
                }
                Ok(Err(why)) => Answer::Refused(Refused {
                    code: codes::UNKNOWN_SESSION,
                    id: ids::SESSION_NOT_FOUND,
                    text: why,
                }),
                Err(e) => Answer::Stopped(e),
            };
        }
        // One engine command: the change is applied to the properties as they stand
        // when the engine takes it (two changes never overwrite each other).
        Ok(Call::Options(name, options)) => Command::PatchProperties {
            session: name,
            patch: options.patch(),
        },
        Ok(Call::Subscribe(follow)) => return Answer::Subscribed(follow),
        Ok(Call::Ha(op)) => return ha_operation(gateway, user, op).await,
        Ok(Call::Stage(part)) => {
            let session = part.session.clone();
            // Authority first: nothing is held for a user who may not add copy sets.
            let probe = Command::AddCopySets {
                session: session.clone(),
                copy_sets: Vec::new(),
            };
            let asker = user.to_owned();
            match gateway.read(move |e| e.authority_for(&asker, &probe)).await {
                Ok(Ok(())) => {}
                Ok(Err((code, id, text))) => return Answer::Refused(Refused { code, id, text }),
                Err(e) => return Answer::Stopped(e),
            }
            let now = gateway.clock().unix_millis();
            match gateway.imports().stage(user, part, now) {
                Ok(Staged::Complete(copy_sets)) => Command::AddCopySets { session, copy_sets },
                Ok(Staged::Waiting {
                    received,
                    parts,
                    copy_sets,
                }) => {
                    return Answer::View(std::sync::Arc::new(json!({
                        "session": session,
                        "received": received,
                        "parts": parts,
                        "copysets": copy_sets,
                    })));
                }
                Err(why) => return Answer::Refused(Refused::bad(why)),
            }
        }
        Err(why) => return Answer::Refused(Refused::bad(why)),
    };
    match gateway.command(user, command).await {
        Ok(r) => Answer::Reply(r),
        Err(e) => Answer::from_error(e),
    }
}

/// CSM's result object for a message made here (ha.md §9, rest.md §3).
fn result_object(id: MessageId, text: &str, inserts: Vec<String>, now: u64) -> Value {
    let translated = format!("{id} [{}] {text}", super::csm::java_medium(now));
    json!({
        "msg": id.to_string(),
        "msgTranslated": translated,
        "resultText": translated,
        "inserts": inserts,
        "timestamp": now,
    })
}

/// The HA status as CSM's `GET /system/ha` shows it, with zgate's own fields under
/// `ha` (ha.md §9).
pub fn ha_view(gateway: &GatewayHandle) -> Value {
    let now = gateway.clock().unix_millis();
    let Some(ha) = gateway.ha() else {
        let mut v = result_object(
            ids::HA_STATUS,
            "The high availability status from server zgate was successfully queried.",
            vec!["zgate".into()],
            now,
        );
        v["islocalactive"] = json!(true);
        v["maxsupportedconnections"] = json!(1);
        v["localhaport"] = json!(super::ha::HA_PORT);
        v["serverinfo"] =
            json!([{ "serverRole": "ACTIVE", "serverHostName": "zgate", "status": "No standby" }]);
        return v;
    };
    let status = ha.status();
    let mut v = result_object(
        ids::HA_STATUS,
        &format!(
            "The high availability status from server {} was successfully queried.",
            status.local
        ),
        vec![status.local.clone()],
        now,
    );
    let link = serde_json::to_value(status.link).unwrap_or_default();
    let mut servers = vec![json!({
        "serverRole": status.role,
        "serverHostName": status.local,
        "status": if status.partner.is_some() { link.clone() } else { json!("No standby") },
    })];
    if let Some(partner) = &status.partner {
        let role = if status.role == "ACTIVE" {
            "STANDBY"
        } else {
            "ACTIVE"
        };
        servers.push(json!({ "serverRole": role, "serverHostName": partner, "status": link }));
    }
    v["islocalactive"] = json!(status.role == "ACTIVE");
    v["maxsupportedconnections"] = json!(1);
    v["localhaport"] = json!(status.port);
    v["serverinfo"] = json!(servers);
    v["ha"] = serde_json::to_value(&status).unwrap_or_default();
    v
}

/// Carries out an HA operation: any user reads the status; the rest is an
/// Administrator's, decided before anything is done (ha.md §4).
async fn ha_operation(gateway: &GatewayHandle, user: &str, op: HaOp) -> Answer {
    if let HaOp::Status = op {
        return Answer::View(std::sync::Arc::new(ha_view(gateway)));
    }
    let asker = user.to_owned();
    let role = gateway
        .read(move |e| {
            e.state()
                .users
                .values()
                .find(|u| u.name == asker)
                .map(|u| u.role)
        })
        .await;
    match role {
        Ok(Some(Role::Administrator)) => {}
        Ok(_) => {
            return Answer::Refused(Refused {
                // policy.md §1.3: ROLE_TOO_LOW.
                code: 0x1102,
                id: ids::NOT_AUTHORIZED,
                text: format!(
                    "{user} does not have the Administrator role: managing the active/standby servers needs the Administrator role"
                ),
            });
        }
        Err(e) => return Answer::from_error(e),
    }
    let Some(ha) = gateway.ha() else {
        return Answer::Refused(Refused {
            code: CsmReason::HA_REFUSED.0,
            id: ids::HA_REFUSED,
            text: "this server runs no HA listener ([ha] enabled = false)".into(),
        });
    };
    let done = match op {
        HaOp::Status => return Answer::View(std::sync::Arc::new(ha_view(gateway))),
        HaOp::SetStandby {
            server,
            user,
            password,
        } => ha.set_standby(&server, &user, &password.0).await,
        HaOp::SetAsStandby(active) => ha.set_as_standby(&active).await,
        HaOp::Takeover => ha.takeover().await,
        HaOp::Reconnect => ha.reconnect().await,
        HaOp::Remove(server) => ha.remove(&server).await,
    };
    match done {
        Ok(text) => {
            let now = gateway.clock().unix_millis();
            Answer::View(std::sync::Arc::new(result_object(
                ids::HA_STATUS_CHANGED,
                &text,
                Vec::new(),
                now,
            )))
        }
        Err(super::ha::HaError::Gateway(e)) => Answer::from_error(e),
        Err(e) => Answer::Refused(Refused {
            code: CsmReason::HA_REFUSED.0,
            id: ids::HA_REFUSED,
            text: e.to_string(),
        }),
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

enum Call {
    Command(Command),
    Query(Query),
    /// Options are a command whose shape depends on the session's type.
    Options(String, OptionsChange),
    /// Console events on or off for this connection (the listener acts on it).
    Subscribe(bool),
    /// One part of copy sets sent in parts (csm.md §3.6).
    Stage(super::imports::Part),
    /// Active/standby (ha.md §4).
    Ha(HaOp),
}

/// The most copy sets one `session.get` lists: a page stays well inside a 64 KiB
/// frame with the session's backups beside it (csm.md §3.5).
pub const COPY_SET_PAGE: usize = 500;

/// One operation (csm.md §3.1): `{"op": "<name>", <fields>}`.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", deny_unknown_fields)]
pub enum Operation {
    #[serde(rename = "server.status")]
    ServerStatus {},
    #[serde(rename = "session.list")]
    SessionList {},
    /// A session's details; its copy sets a page at a time (csm.md §3.5).
    #[serde(rename = "session.get")]
    SessionGet {
        name: String,
        #[serde(default)]
        offset: usize,
        #[serde(default)]
        limit: Option<usize>,
    },
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
    SessionOptions {
        name: String,
        options: OptionsChange,
    },
    #[serde(rename = "session.copysets.add")]
    CopySetsAdd {
        name: String,
        copysets: Vec<Vec<String>>,
    },
    /// Copy sets a door has read already (REST's copy-set file): not a CSM
    /// operation, so the list is not written out as text and parsed again.
    #[serde(skip)]
    CopySetsAddRead {
        name: String,
        copy_sets: Vec<CopySet>,
    },
    /// Copy sets in parts: all are added by one command when the last is in.
    #[serde(rename = "session.copysets.import")]
    CopySetsImport {
        name: String,
        import: String,
        part: u32,
        parts: u32,
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
    /// Add Storage System; with no serial, the gateway logs on to the HMC to learn it
    /// (policy.md §4.2).
    #[serde(rename = "storage.add")]
    StorageAdd {
        #[serde(default)]
        serial: Option<String>,
        address: String,
        user: String,
        password: String,
    },
    #[serde(rename = "storage.remove")]
    StorageRemove { serial: String },
    /// Read a storage system's volume list into the inventory (LSVOL).
    #[serde(rename = "storage.volumes")]
    StorageVolumes { serial: String },
    #[serde(rename = "host.list")]
    HostList {},
    /// Add Host Connection; with no system name, the gateway logs on with the
    /// password to learn it from the LOGON reply (policy.md §4.2).
    #[serde(rename = "host.add")]
    HostAdd {
        #[serde(default)]
        system: Option<String>,
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
        schedule: ScheduleSpec,
        #[serde(default = "yes")]
        enabled: bool,
        #[serde(default)]
        description: String,
    },
    #[serde(rename = "task.modify")]
    TaskModify { id: u64, schedule: ScheduleSpec },
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
    /// A server property (policy.md §10).
    #[serde(rename = "server.property")]
    ServerProperty { name: String, value: String },
    /// The active/standby status (ha.md §9; CSM's `GET /system/ha`).
    #[serde(rename = "ha.status")]
    HaStatus {},
    /// On the active: make `server` its standby (ha.md §4.1).
    #[serde(rename = "ha.set_standby")]
    HaSetStandby {
        server: String,
        user: String,
        password: Password,
        #[serde(default)]
        port: Option<u16>,
    },
    /// On the standby-to-be: follow `active` (ha.md §4.2).
    #[serde(rename = "ha.set_as_standby")]
    HaSetAsStandby {
        active: String,
        #[serde(default)]
        port: Option<u16>,
    },
    /// On the standby: become the active (ha.md §6).
    #[serde(rename = "ha.takeover")]
    HaTakeover {},
    /// Restore the link now (ha.md §4.4).
    #[serde(rename = "ha.reconnect")]
    HaReconnect {},
    /// Leave the relationship with `server` (ha.md §4.5).
    #[serde(rename = "ha.remove")]
    HaRemove { server: String },
}

/// A password in an operation: zeroed when dropped, never shown by `Debug`.
pub struct Password(zeroize::Zeroizing<String>);

impl Password {
    /// Wraps `text`.
    pub fn new(text: &str) -> Password {
        Password(zeroize::Zeroizing::new(text.to_owned()))
    }
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Password, D::Error> {
        String::deserialize(d).map(|s| Password(zeroize::Zeroizing::new(s)))
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// An HA operation, carried out by the HA part (ha.md §4).
#[derive(Debug)]
enum HaOp {
    Status,
    SetStandby {
        server: String,
        user: String,
        password: Password,
    },
    SetAsStandby(String),
    Takeover,
    Reconnect,
    Remove(String),
}

fn yes() -> bool {
    true
}

/// Session options (csm.md §3.3): the fields named change, the others keep their
/// values; a field of the other session type is refused (BAD_PROPERTY).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionsChange {
    incremental: Option<bool>,
    nocopy: Option<bool>,
    persistent: Option<bool>,
    inhibit_target_writes: Option<bool>,
    min_flash_interval_mins: Option<u32>,
    retention_mins: Option<u64>,
    min_backup_interval_mins: Option<u64>,
    allow_manual_expire: Option<bool>,
    min_backups: Option<usize>,
    hyperswap: Option<bool>,
    hardened_freeze: Option<bool>,
    hold_io_after_suspend: Option<bool>,
    members: Option<Vec<String>>,
    /// `null` or `""`: back to the HMC.
    #[serde(default, deserialize_with = "present")]
    system: Option<Option<String>>,
}

/// A field that may be `null`: absent is `None`, `null` (or `""`) is `Some(None)`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    let v: Option<String> = Option::deserialize(d)?;
    Ok(Some(v.filter(|s| !s.is_empty())))
}

impl OptionsChange {
    /// Sets the option named `field` (csm.md §3.3's names) to `value`, as a client
    /// gave it (REST's options form).
    pub fn set(&mut self, field: &str, value: Value) -> Result<(), String> {
        let flag = || value.as_bool().ok_or("needs true or false");
        let number = || value.as_u64().ok_or("needs a whole number");
        match field {
            "incremental" => self.incremental = Some(flag()?),
            "nocopy" => self.nocopy = Some(flag()?),
            "persistent" => self.persistent = Some(flag()?),
            "inhibit_target_writes" => self.inhibit_target_writes = Some(flag()?),
            "min_flash_interval_mins" => {
                self.min_flash_interval_mins =
                    Some(u32::try_from(number()?).map_err(|_| "is too large")?);
            }
            "retention_mins" => self.retention_mins = Some(number()?),
            "min_backup_interval_mins" => self.min_backup_interval_mins = Some(number()?),
            "allow_manual_expire" => self.allow_manual_expire = Some(flag()?),
            "min_backups" => {
                self.min_backups = Some(usize::try_from(number()?).map_err(|_| "is too large")?);
            }
            "hyperswap" => self.hyperswap = Some(flag()?),
            "hardened_freeze" => self.hardened_freeze = Some(flag()?),
            "hold_io_after_suspend" => self.hold_io_after_suspend = Some(flag()?),
            "members" => {
                // A JSON list, or names separated by commas (REST's text value).
                let list: Vec<String> = match &value {
                    Value::Array(a) => a
                        .iter()
                        .map(|v| v.as_str().map(str::to_owned).ok_or("needs names"))
                        .collect::<Result<_, _>>()?,
                    Value::String(text) => text
                        .split(',')
                        .map(str::trim)
                        .filter(|m| !m.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    _ => return Err("needs a list of z/OS system names".into()),
                };
                self.members = Some(list);
            }
            "system" => {
                let text = value.as_str().unwrap_or_default();
                self.system = Some((!text.is_empty()).then(|| text.to_owned()));
            }
            other => return Err(format!("{other} is not a session option")),
        }
        Ok(())
    }

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
            hyperswap: self.hyperswap,
            hardened_freeze: self.hardened_freeze,
            hold_io_after_suspend: self.hold_io_after_suspend,
            members: self.members,
            host_system: self.system,
        }
    }
}

/// A schedule (csm.md §3.4).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum ScheduleSpec {
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

/// `[H1, T1|R1|H2]` lists (or `[H1]`, an SGC copy set with no recovery volume) as
/// copy sets.
fn copy_sets(lists: &[Vec<String>]) -> Result<Vec<CopySet>, String> {
    lists
        .iter()
        .map(|set| match set.as_slice() {
            [h1, partner] => Ok(CopySet {
                h1: volume(h1)?,
                partner: Some(volume(partner)?),
            }),
            [h1] => Ok(CopySet {
                h1: volume(h1)?,
                partner: None,
            }),
            _ => Err("a copy set is [H1, T1], [H1, R1], [H1] or [H1, H2]".to_owned()),
        })
        .collect()
}

fn volume(text: &str) -> Result<VolumeRef, String> {
    VolumeRef::parse(text).ok_or_else(|| format!("{text} is not DS8000:2107.<serial>:VOL:<XXYY>"))
}

impl Operation {
    fn into_call(self, key: &SealingKey) -> Result<Call, String> {
        use Operation as R;
        let c = |command| Ok(Call::Command(command));
        let q = |query| Ok(Call::Query(query));
        match self {
            R::ServerStatus {} => q(Query::Status),
            R::ServerProperty { name, value } => c(Command::SetServerProperty { name, value }),
            R::HaStatus {} => Ok(Call::Ha(HaOp::Status)),
            R::HaSetStandby {
                server,
                user,
                password,
                port,
            } => Ok(Call::Ha(HaOp::SetStandby {
                server: super::ha::link::with_port(&server, port),
                user,
                password,
            })),
            R::HaSetAsStandby { active, port } => Ok(Call::Ha(HaOp::SetAsStandby(
                super::ha::link::with_port(&active, port),
            ))),
            R::HaTakeover {} => Ok(Call::Ha(HaOp::Takeover)),
            R::HaReconnect {} => Ok(Call::Ha(HaOp::Reconnect)),
            R::HaRemove { server } => Ok(Call::Ha(HaOp::Remove(server))),
            R::SessionList {} => q(Query::Sessions),
            R::SessionGet {
                name,
                offset,
                limit,
            } => q(Query::Session {
                name,
                offset,
                limit: limit.unwrap_or(COPY_SET_PAGE).min(COPY_SET_PAGE),
            }),
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
                let Some(kind) = SessionType::parse(&kind) else {
                    return Err(format!(
                        "session type {kind}: zgate runs FC, SGC, MM and HS"
                    ));
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
            R::CopySetsAdd { name, copysets } => c(Command::AddCopySets {
                session: name,
                copy_sets: copy_sets(&copysets)?,
            }),
            R::CopySetsAddRead { name, copy_sets } => c(Command::AddCopySets {
                session: name,
                copy_sets,
            }),
            R::CopySetsImport {
                name,
                import,
                part,
                parts,
                copysets,
            } => Ok(Call::Stage(super::imports::Part {
                session: name,
                import,
                part,
                parts,
                copy_sets: copy_sets(&copysets)?,
            })),
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
                if Credential::new(&password).is_none() {
                    return Err("the password is 1 to 100 characters".into());
                }
                let object = match &serial {
                    Some(serial) => storage_password_object(serial),
                    None => discovery_object(&address),
                };
                let password = key
                    .seal(&object, password.as_bytes())
                    .map_err(|e| e.to_string())?;
                c(match serial {
                    Some(serial) => Command::DefineStorageSystem(StorageSystem {
                        serial,
                        address,
                        user,
                        password,
                    }),
                    None => Command::Discover(Discover::StorageSystem {
                        address,
                        user,
                        password,
                    }),
                })
            }
            R::StorageRemove { serial } => c(Command::RemoveStorageSystem { serial }),
            R::StorageVolumes { serial } => c(Command::ReadVolumes { serial }),
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
                let port = port.unwrap_or(crate::policy::inventory::DEFAULT_ZOS_PORT);
                // Sealed under the definition's name, or until a discovery learns it.
                let object = |what: &HostCredential| match &system {
                    Some(system) => what.object(system),
                    None => discovery_object(&format!("{address}:{port}")),
                };
                let seal = |what: HostCredential, secret: &str| {
                    key.seal(&object(&what), secret.as_bytes())
                        .map_err(|e| e.to_string())
                };
                let usable = |secret: &str| match Credential::new(secret) {
                    Some(_) => Ok(()),
                    None => Err("a host password is 1 to 100 characters".to_owned()),
                };
                let unsealed = || Sealed(Vec::new());
                let logon_application = application.clone();
                let credential = match (password, passphrase, passticket_key) {
                    (Some(p), None, None) => {
                        usable(&p)?;
                        HostCredential::Password(seal(HostCredential::Password(unsealed()), &p)?)
                    }
                    (None, Some(p), None) => {
                        usable(&p)?;
                        HostCredential::Passphrase(seal(
                            HostCredential::Passphrase(unsealed()),
                            &p,
                        )?)
                    }
                    (None, None, Some(k)) => HostCredential::PassTicket {
                        // csm.md §3.1: 16 hex digits (legacy DES) or 64 (enhanced).
                        key: {
                            let legacy = crate::passticket::LegacyKey::from_hex(k.trim()).is_ok();
                            let enhanced =
                                crate::passticket::EnhancedKey::from_hex(k.trim()).is_ok();
                            if !legacy && !enhanced {
                                return Err("passticket_key is 16 hex digits (a legacy DES key) or 64 (an enhanced HMAC-SHA-512 key)".into());
                            }
                            let Some(system) = &system else {
                                return Err(
                                    "a PassTicket host needs its system name (system)".into()
                                );
                            };
                            let named = HostCredential::PassTicket {
                                key: unsealed(),
                                application: String::new(),
                            };
                            key.seal(&named.object(system), k.trim().as_bytes())
                                .map_err(|e| e.to_string())?
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
                let user =
                    user.unwrap_or_else(|| crate::policy::inventory::DEFAULT_HOST_USER.into());
                c(match system {
                    Some(system) => Command::DefineHostConnection(HostConnection {
                        system,
                        kind,
                        address,
                        port,
                        user,
                        credential,
                    }),
                    None => Command::Discover(Discover::HostConnection {
                        kind,
                        address,
                        port,
                        user,
                        credential,
                        application: logon_application,
                    }),
                })
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

impl ScheduleSpec {
    /// The spec that gives `schedule` back (a copy of a task, a moved start).
    pub fn of(schedule: &Schedule) -> ScheduleSpec {
        match *schedule {
            Schedule::Once { at_ms } => ScheduleSpec::Once { at: at_ms },
            Schedule::Interval {
                start_ms,
                interval_ms,
            } => ScheduleSpec::Interval {
                start: start_ms,
                interval_mins: interval_ms / 60_000,
            },
            Schedule::Weekly {
                days,
                minute_of_day,
            } => ScheduleSpec::Weekly {
                days: crate::policy::schedule::weekday_names(days)
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
                time: format!("{:02}:{:02}", minute_of_day / 60, minute_of_day % 60),
            },
        }
    }

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
    Session {
        name: String,
        offset: usize,
        limit: usize,
    },
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
            Query::Session { .. } => return None,
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

/// A session as the CSM protocol lists it (csm.md §3.5); `session.list` writes the
/// same rows straight to text, in `execute`.
#[cfg(test)]
pub(crate) fn session_json(s: &crate::policy::session::Session) -> Value {
    summary_json(&SessionSummary::of(s))
}

fn summary_json(v: &SessionSummary) -> Value {
    serde_json::to_value(CsmSessionRow::of(v)).unwrap_or_default()
}

/// A `session.list` row (csm.md §3.5), written straight from the summary.
#[derive(serde::Serialize)]
struct CsmSessionRow<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    description: &'a str,
    state: &'static str,
    status: &'static str,
    numcopysets: usize,
    copying: bool,
    recoverable: bool,
    haserror: bool,
    error: Option<&'a str>,
    busy: bool,
    productionhost: &'static str,
    hyperswapstatus: &'static str,
}

impl<'a> CsmSessionRow<'a> {
    fn of(v: &'a SessionSummary) -> CsmSessionRow<'a> {
        CsmSessionRow {
            name: &v.name,
            kind: v.kind.code(),
            description: &v.description,
            state: v.state,
            status: v.status,
            numcopysets: v.copy_sets,
            copying: v.copying,
            recoverable: v.recoverable,
            haserror: v.has_error,
            error: v.error.as_deref(),
            busy: v.busy,
            productionhost: v.production,
            hyperswapstatus: v.hyperswap,
        }
    }
}

/// `session.get` (csm.md §3.5): the list's fields and the session's page.
pub(crate) fn session_detail_json(d: &SessionDetail) -> Value {
    let mut v = summary_json(&d.summary);
    v["copysets"] = d
        .copy_sets
        .1
        .iter()
        .map(|(h1, partner)| match partner {
            Some(partner) => json!([h1, partner]),
            None => json!([h1]),
        })
        .collect();
    v["copysets_offset"] = json!(d.copy_sets.0);
    v["availablecommands"] = json!(d.available);
    v["backups"] = d
        .backups
        .iter()
        .map(|b| json!({ "backupID": b.id, "backupTime": b.time_ms, "recoverable": b.recoverable }))
        .collect();
    v["recovered"] = json!(d.recovered);
    v["last_flash"] = json!(d.last_flash_ms);
    v["progress_out_of_sync_tracks"] = json!(d.out_of_sync);
    v["options"] = options_json(&d.properties);
    v
}

/// A task as `task.list` shows it (csm.md §3.4).
pub(crate) fn task_json(view: &TaskView) -> Value {
    let t = &view.task;
    json!({
        "id": t.id, "name": t.name, "session": t.session, "command": t.command.name(),
        "schedule": schedule_json(&t.schedule), "enabled": t.enabled,
        "nextRun": t.next_run_ms, "lastRan": t.last_run_ms, "lastmessage": t.last_result,
        "description": t.description, "owner": t.owner, "pendingApproval": view.pending_approval,
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
                "properties": st.properties,
            }),
            // Answered in `execute`: the summaries are rendered off the engine's task,
            // and the requests depend on who asks.
            Query::Sessions | Query::Requests => {
                return Err("this list is not read through the shared cache".into());
            }
            Query::Session { name, offset, limit } => {
                let d = SessionDetail::of(e, &name, offset, limit)
                    .ok_or_else(|| format!("There is no session named {name}."))?;
                session_detail_json(&d)
            }
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
            Query::Tasks => TaskView::all(e).iter().map(task_json).collect(),
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
        Properties::Mm(p) | Properties::Hs(p) => json!({
            "hyperswap": p.hyperswap, "hardened_freeze": p.hardened_freeze,
            "hold_io_after_suspend": p.hold_io_after_suspend, "members": p.members,
            "system": p.host_system,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::session::Session;

    /// Every JSON example of an operation in csm.md decodes into an [`Operation`]
    /// (the page is the contract: a client written from it must be understood).
    #[test]
    fn every_operation_example_in_csm_md_decodes() {
        let page = include_str!("../../protocol-specs/csm.md");
        let mut found = 0;
        for block in page.split("```json").skip(1) {
            let Some((json, _)) = block.split_once("```") else {
                continue;
            };
            let Ok(value) = serde_json::from_str::<Value>(json) else {
                panic!("not JSON in csm.md: {json}");
            };
            if value.get("op").is_none() {
                continue;
            }
            if let Err(e) = serde_json::from_value::<Operation>(value) {
                panic!("csm.md example does not decode: {e}: {json}");
            }
            found += 1;
        }
        assert!(found > 0, "csm.md has no operation example");
    }

    /// csm.md §3.5: `session.get` lists at most COPY_SET_PAGE copy sets, from `offset`,
    /// whatever `limit` asks; `numcopysets` is the total.
    #[test]
    fn session_get_pages_copy_sets() {
        use crate::policy::engine::{EngineConfig, State};
        let mut session = Session::new("BIG".into(), SessionType::Fc, String::new(), 0);
        let v = |n: u16| VolumeRef::parse(&format!("DS8000:2107.75FA120:VOL:{n:04X}")).unwrap();
        session.copy_sets = (0..1200u16)
            .map(|i| CopySet {
                h1: v(i),
                partner: Some(v(0x4000 + i)),
            })
            .collect::<Vec<_>>()
            .into();
        let mut state = State::new(0);
        state.sessions.insert("BIG".into(), session);
        let engine = Engine::from_state(state, EngineConfig::default());
        let key = SealingKey::generate().unwrap();
        let page = |json: Value| {
            let op: Operation = serde_json::from_value(json).unwrap();
            let Ok(Call::Query(q)) = op.into_call(&key) else {
                panic!("not a query")
            };
            q.answer(&engine).unwrap()
        };
        let all = page(json!({"op": "session.get", "name": "BIG", "limit": 100_000}));
        assert_eq!(all["numcopysets"], 1200);
        assert_eq!(all["copysets"].as_array().unwrap().len(), COPY_SET_PAGE);
        let last = page(json!({"op": "session.get", "name": "BIG", "offset": 1000}));
        assert_eq!(last["copysets"].as_array().unwrap().len(), 200);
        assert_eq!(last["copysets"][0][0], "DS8000:2107.75FA120:VOL:03E8");
        assert_eq!(last["copysets_offset"], 1000);
    }
}
