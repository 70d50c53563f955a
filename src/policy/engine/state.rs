//! The engine's durable state and the one record type that changes it
//! (`protocol-specs/policy.md` §8). Every change is a [`Record`]; [`State::apply`]
//! is the only code that mutates state, so the store's journal, the standby's
//! replication stream and a replay after restart all rebuild the same engine.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ds8k::ids::VolumeId;
use crate::policy::access::{OperatorGrant, Principal, Role};
use crate::policy::audit::{AuditEntry, Head};
use crate::policy::dual_control::{DualControl, RequestId};
use crate::policy::inventory::{HostConnection, StorageSystem, VolumeFacts};
use crate::policy::schedule::{Task, TaskId};
use crate::policy::session::{Session, SessionCommand, SessionState};
use crate::policy::storage::{ActionId, StorageAction, StorageOp};

/// A user of the server.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The name.
    pub name: String,
    /// The role.
    pub role: Role,
    /// An Operator's grant.
    pub grant: Option<OperatorGrant>,
    /// The argon2id PHC string (salted hash); never the password.
    pub password_hash: String,
    /// Its number, never reused: credentials (tokens, open connections) are bound
    /// to it, so a new user of the same name inherits nothing (policy.md §1.4).
    /// 0 for users stored before numbers were given.
    #[serde(default)]
    pub id: u64,
    /// Counts password and role changes: credentials issued before a change end.
    #[serde(default)]
    pub generation: u64,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("grant", &self.grant)
            .field("password_hash", &"<redacted>")
            .field("id", &self.id)
            .field("generation", &self.generation)
            .finish()
    }
}

impl User {
    /// Whether `password` is this user's (argon2id; slow by design: call it off the
    /// engine's thread).
    pub fn verify_password(&self, password: &str) -> bool {
        crate::password::verify(&self.password_hash, password)
    }

    /// Who this user is, as the access rules see it.
    pub fn principal(&self) -> Principal {
        Principal {
            user: self.name.clone(),
            role: self.role,
            grant: self.grant.clone(),
        }
    }
}

/// A command held for a second user, exactly as it was asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// The command.
    pub command: super::Command,
}

/// Why a storage action was started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Purpose {
    /// A session command.
    Command(SessionCommand),
    /// Retention expiring backups.
    Retention,
    /// Reading the volumes of copy sets before adding them (policy.md §5.1).
    AddCopySets(Vec<crate::policy::session::CopySet>),
}

/// A storage action that was started and has not finished: kept durable so that a
/// restart knows what was under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlight {
    /// The step being carried out.
    pub action: StorageAction,
    /// The steps after it.
    pub rest: Vec<StorageOp>,
    /// The session it is for.
    pub session: String,
    /// Why.
    pub purpose: Purpose,
    /// Who asked (a user, or `scheduler`/`retention`).
    pub by: String,
    /// When it was started (a flash's point in time).
    pub started_ms: u64,
    /// The session's state before, restored if the action fails.
    pub prior_state: SessionState,
    /// Why its outcome is unknown (the answer was lost): the box is asked what it
    /// did before anything else runs on the session (policy.md §8.4).
    #[serde(default)]
    pub unknown: Option<String>,
    /// The first step's id: the action the command's reply named, which a door
    /// waits on (0 in records written before it was kept: the step's own id).
    #[serde(default)]
    pub origin: ActionId,
}

impl InFlight {
    /// The action the command's reply named (its first step).
    pub fn origin(&self) -> ActionId {
        if self.origin == 0 {
            self.action.id
        } else {
            self.origin
        }
    }
}

/// One change to the engine's state (policy.md §8.1). Entities are written whole
/// when they are created; a session's later changes are written as changes, so a
/// record's size does not grow with the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// A user, new or changed.
    User(User),
    /// A user removed.
    UserRemoved(String),
    /// A storage system, new or changed.
    StorageSystem(StorageSystem),
    /// A storage system removed (by serial).
    StorageSystemRemoved(String),
    /// Volumes of a storage image as read: those found, and those asked for that
    /// the box does not have.
    Inventory {
        /// The image.
        serial: String,
        /// Found.
        volumes: Vec<VolumeFacts>,
        /// Asked for, not found.
        absent: Vec<VolumeId>,
    },
    /// A host connection, new or changed.
    HostConnection(HostConnection),
    /// A host connection removed (by system name).
    HostConnectionRemoved(String),
    /// A session, whole: when it is created (and in records written before
    /// [`Record::SessionChanged`] existed).
    Session(Session),
    /// A change to a session: only what changed (policy.md §8.1).
    SessionChanged {
        /// The session.
        name: String,
        /// What changed, in order.
        changes: Vec<super::delta::SessionChange>,
    },
    /// A session removed.
    SessionRemoved(String),
    /// A scheduled task, new or changed.
    Task(Task),
    /// A scheduled task removed.
    TaskRemoved(TaskId),
    /// The dual-control table and the commands it holds.
    DualControl {
        /// Mode and pending requests.
        table: DualControl,
        /// The held commands, by request.
        held: BTreeMap<RequestId, Held>,
    },
    /// A storage action started (or its next step).
    ActionStarted(InFlight),
    /// A storage action finished.
    ActionFinished(ActionId),
    /// One audit-trail entry.
    Audit(AuditEntry),
    /// A server property set (policy.md §10).
    ServerProperty {
        /// Its name (`server_properties::PROPERTIES`).
        name: String,
        /// Its value.
        value: u64,
    },
}

/// Everything the engine must not lose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Users by name.
    pub users: BTreeMap<String, User>,
    /// Storage systems by serial.
    pub systems: BTreeMap<String, StorageSystem>,
    /// Each image's volumes, as last read.
    pub inventory: BTreeMap<String, BTreeMap<VolumeId, VolumeFacts>>,
    /// Host connections by system name.
    pub hosts: BTreeMap<String, HostConnection>,
    /// Sessions by name.
    pub sessions: BTreeMap<String, Session>,
    /// Scheduled tasks by id.
    pub tasks: BTreeMap<TaskId, Task>,
    /// Dual-control mode and pending requests.
    pub dual: DualControl,
    /// The commands the pending requests hold.
    pub held: BTreeMap<RequestId, Held>,
    /// Storage actions under way.
    pub in_flight: BTreeMap<ActionId, InFlight>,
    /// The next storage action's id.
    pub next_action: ActionId,
    /// The next user's number.
    pub next_user: u64,
    /// The next task's id.
    pub next_task: TaskId,
    /// The audit trail's head.
    pub audit_head: Head,
    /// Server properties set at run time, by name (policy.md §10); absent: the
    /// configuration's value.
    #[serde(default)]
    pub properties: BTreeMap<String, u64>,
}

impl State {
    /// An empty server whose dual-control requests live `request_lifetime_ms`.
    pub fn new(request_lifetime_ms: u64) -> State {
        State {
            users: BTreeMap::new(),
            systems: BTreeMap::new(),
            inventory: BTreeMap::new(),
            hosts: BTreeMap::new(),
            sessions: BTreeMap::new(),
            tasks: BTreeMap::new(),
            dual: DualControl::new(Default::default(), request_lifetime_ms),
            held: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            next_action: 1,
            next_user: 1,
            next_task: 1,
            audit_head: Head::GENESIS,
            properties: BTreeMap::new(),
        }
    }

    /// Applies one record. Infallible: records are whole values, so applying one
    /// twice or replaying a journal can only reach a state the engine reached.
    pub fn apply(&mut self, record: &Record) {
        match record {
            Record::User(u) => {
                self.next_user = self.next_user.max(u.id + 1);
                self.users.insert(u.name.clone(), u.clone());
            }
            Record::UserRemoved(name) => {
                self.users.remove(name);
            }
            Record::StorageSystem(s) => {
                self.systems.insert(s.serial.clone(), s.clone());
            }
            Record::StorageSystemRemoved(serial) => {
                self.systems.remove(serial);
                self.inventory.remove(serial);
            }
            Record::Inventory {
                serial,
                volumes,
                absent,
            } => {
                let known = self.inventory.entry(serial.clone()).or_default();
                for v in volumes {
                    known.insert(v.volume, *v);
                }
                for v in absent {
                    known.remove(v);
                }
            }
            Record::HostConnection(h) => {
                self.hosts.insert(h.system.clone(), h.clone());
            }
            Record::HostConnectionRemoved(system) => {
                self.hosts.remove(system);
            }
            Record::Session(s) => {
                self.sessions.insert(s.name.clone(), s.clone());
            }
            Record::SessionChanged { name, changes } => {
                if let Some(s) = self.sessions.get_mut(name) {
                    super::delta::apply_changes(s, changes);
                }
            }
            Record::SessionRemoved(name) => {
                self.sessions.remove(name);
            }
            Record::Task(t) => {
                self.next_task = self.next_task.max(t.id + 1);
                self.tasks.insert(t.id, t.clone());
            }
            Record::TaskRemoved(id) => {
                self.tasks.remove(id);
            }
            Record::DualControl { table, held } => {
                self.dual = table.clone();
                self.held = held.clone();
            }
            Record::ActionStarted(f) => {
                self.next_action = self.next_action.max(f.action.id + 1);
                self.in_flight.insert(f.action.id, f.clone());
            }
            Record::ActionFinished(id) => {
                self.in_flight.remove(id);
            }
            Record::ServerProperty { name, value } => {
                if name == crate::policy::server_properties::REQUEST_LIFETIME {
                    self.dual.set_lifetime_ms(value.saturating_mul(1000));
                }
                self.properties.insert(name.clone(), *value);
            }
            Record::Audit(entry) => {
                self.audit_head = Head {
                    next_seq: entry.seq + 1,
                    hash: entry.hash,
                };
            }
        }
    }
}
