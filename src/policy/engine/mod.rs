//! The session and policy engine, sans-IO (`protocol-specs/policy.md` §5–§8).
//!
//! Inputs: [`Engine::handle_command`] (a user's command), [`Engine::handle_storage_result`]
//! and [`Engine::handle_storage_notice`] (what the storage world answered or
//! reported), [`Engine::handle_timeout`] (time passed). Outputs, drained by the I/O
//! shell: [`Engine::poll_storage_action`] (what to run, on which box, by which path),
//! [`Engine::poll_console`] (messages) and [`Engine::poll_record`] (durable changes:
//! the shell stores them before it acknowledges the reply). Time is always an input.
//!
//! Every command is decided in two steps: `prepare` reads state and returns an
//! effect or a refusal, changing nothing; `carry_out` commits the effect. A command
//! that dual control holds is prepared once when asked (so a request is never filed
//! for a command that would fail) and again when approved, against the state then.

mod commands;
pub mod delta;
mod kinds;
mod prepare_inventory;
mod prepare_tasks;
mod prepare_users;
mod reconcile;
mod results;
mod state;
mod timers;

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

pub use commands::{MAX_COPY_SETS, MAX_HOST_ROUTE_COPY_SETS, MAX_PAIRED_COPY_SETS, max_copy_sets};
pub use state::{Held, InFlight, Purpose, Record, State, User};

use super::SessionType;
use super::access::{AccessRefusal, OperatorGrant, Principal, Role};
use super::audit::{AuditKind, AuditRecord, AuditTrail};
use super::console::{ConsoleMessage, MessageId, ids};
use super::dual_control::{DEFAULT_REQUEST_LIFETIME_MS, DualControlMode, RequestId};
use super::inventory::{Discover, HostConnection, StorageSystem, VolumeRef};
use super::schedule::{Schedule, TaskId};
use super::session::{CopySet, Properties, PropertiesPatch, SessionCommand, SessionState};
use super::storage::{ActionId, Route, StorageAction, StorageOp};

/// Reason codes of the engine's own refusals (policy.md §5.6).
pub mod codes {
    /// No session by that name.
    pub const UNKNOWN_SESSION: u16 = 0x1401;
    /// A session by that name exists.
    pub const SESSION_EXISTS: u16 = 0x1402;
    /// The command is not valid in the session's state.
    pub const COMMAND_NOT_VALID: u16 = 0x1403;
    /// The session is carrying out another command.
    pub const SESSION_BUSY: u16 = 0x1404;
    /// Inside the session's Minimum Time Frame per Flash.
    pub const FLASH_TOO_SOON: u16 = 0x1405;
    /// A copy set breaks a rule (size, type, role, reuse).
    pub const BAD_COPY_SET: u16 = 0x1406;
    /// A volume the storage system does not have.
    pub const UNKNOWN_VOLUME: u16 = 0x1407;
    /// No such user, or the user exists already.
    pub const BAD_USER: u16 = 0x1408;
    /// No such storage system or host connection.
    pub const UNKNOWN_SYSTEM: u16 = 0x1409;
    /// Still used by a session.
    pub const IN_USE: u16 = 0x140A;
    /// No such scheduled task.
    pub const UNKNOWN_TASK: u16 = 0x140B;
    /// The schedule breaks a rule.
    pub const BAD_SCHEDULE: u16 = 0x140C;
    /// A property or field is out of range or of the wrong session type.
    pub const BAD_PROPERTY: u16 = 0x140D;
    /// The backup cannot be recovered or restored (it is the newest).
    pub const BACKUP_NOT_RECOVERABLE: u16 = 0x140E;
    /// The change would leave the server without an Administrator.
    pub const LAST_ADMINISTRATOR: u16 = 0x140F;
    /// No user by that name is logged on (the caller is unknown).
    pub const UNKNOWN_CALLER: u16 = 0x1410;
    /// More discovery logons than [`super::DISCOVERIES_PER_MINUTE`] in a minute.
    pub const TOO_MANY_DISCOVERIES: u16 = 0x1411;
}

/// The engine's settings (configuration.md `[policy]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineConfig {
    /// How long an unanswered dual-control request lives.
    pub request_lifetime_ms: u64,
    /// How often background copy is polled.
    pub copy_poll_interval_ms: u64,
    /// How long the box may take to carry out one storage action: each request
    /// carries "not after now + this", and the shell stops waiting then
    /// (policy.md §8.4).
    #[serde(default = "default_storage_deadline")]
    pub storage_deadline_ms: u64,
    /// How often the box is asked again about an action whose outcome is unknown
    /// while it does not answer (policy.md §8.4).
    #[serde(default = "default_reconcile_interval")]
    pub reconcile_interval_ms: u64,
    /// How often every box that sessions use is checked for LSSs left frozen, and
    /// SGC sessions' backups against the box's (0 = never; policy.md §8.4).
    #[serde(default = "default_reconcile_every")]
    pub reconcile_every_ms: u64,
}

fn default_reconcile_every() -> u64 {
    15 * 60_000
}

fn default_storage_deadline() -> u64 {
    60_000
}

fn default_reconcile_interval() -> u64 {
    5_000
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            request_lifetime_ms: DEFAULT_REQUEST_LIFETIME_MS,
            copy_poll_interval_ms: 30_000,
            storage_deadline_ms: default_storage_deadline(),
            reconcile_interval_ms: default_reconcile_interval(),
            reconcile_every_ms: default_reconcile_every(),
        }
    }
}

/// A command, as any interface (CSM protocol, REST, CLI, scheduler) hands it in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Creates a user.
    CreateUser {
        /// The name.
        name: String,
        /// The role.
        role: Role,
        /// An Operator's grant (none: no sessions yet).
        grant: Option<OperatorGrant>,
        /// The argon2id PHC string.
        password_hash: String,
    },
    /// Changes a user's role and grant.
    SetUserRole {
        /// The user.
        name: String,
        /// The role.
        role: Role,
        /// An Operator's grant.
        grant: Option<OperatorGrant>,
    },
    /// Changes a user's password hash (a user may change its own).
    SetPassword {
        /// The user.
        name: String,
        /// The argon2id PHC string.
        password_hash: String,
    },
    /// Removes a user.
    RemoveUser {
        /// The user.
        name: String,
    },
    /// Adds or changes a storage system.
    DefineStorageSystem(StorageSystem),
    /// Reads a storage system's volume list into the inventory (LSVOL), so that
    /// copy sets can be chosen from it (console.md §3.2).
    ReadVolumes {
        /// The serial.
        serial: String,
    },
    /// Logs on to a storage system or a host to learn its name, then defines it
    /// (policy.md §4.2): an action the shell carries out, its end told by
    /// [`Finished`].
    Discover(Discover),
    /// Removes a storage system.
    RemoveStorageSystem {
        /// Its serial.
        serial: String,
    },
    /// Adds or changes a host connection.
    DefineHostConnection(HostConnection),
    /// Removes a host connection.
    RemoveHostConnection {
        /// Its system name.
        system: String,
    },
    /// Creates a session.
    CreateSession {
        /// The name.
        name: String,
        /// FC or SGC.
        kind: SessionType,
        /// A description.
        description: String,
    },
    /// Removes a session (it must be `Defined`).
    RemoveSession {
        /// The session.
        name: String,
    },
    /// Changes a session's description.
    SetDescription {
        /// The session.
        session: String,
        /// The description.
        description: String,
    },
    /// Changes a session's properties.
    SetProperties {
        /// The session.
        session: String,
        /// The properties (of the session's type).
        properties: Properties,
    },
    /// Changes the named properties of a session; the others keep their values.
    PatchProperties {
        /// The session.
        session: String,
        /// What to change.
        patch: PropertiesPatch,
    },
    /// Adds copy sets.
    AddCopySets {
        /// The session.
        session: String,
        /// The copy sets.
        copy_sets: Vec<CopySet>,
    },
    /// Removes copy sets, named by their H1 volume.
    RemoveCopySets {
        /// The session.
        session: String,
        /// Their H1 volumes.
        h1: Vec<VolumeRef>,
    },
    /// Runs a command on a session.
    Run {
        /// The session.
        session: String,
        /// The command.
        command: SessionCommand,
    },
    /// Creates a scheduled task.
    CreateTask {
        /// Its name.
        name: String,
        /// The session.
        session: String,
        /// The command it runs.
        command: SessionCommand,
        /// When.
        schedule: Schedule,
        /// Whether it starts enabled.
        enabled: bool,
        /// What it is for, in the user's words.
        #[serde(default)]
        description: String,
    },
    /// Changes a task's schedule.
    ModifyTask {
        /// The task.
        id: TaskId,
        /// The new schedule.
        schedule: Schedule,
    },
    /// Enables a task.
    EnableTask {
        /// The task.
        id: TaskId,
    },
    /// Disables a task.
    DisableTask {
        /// The task.
        id: TaskId,
    },
    /// Runs a task now.
    RunTask {
        /// The task.
        id: TaskId,
    },
    /// Deletes a task.
    DeleteTask {
        /// The task.
        id: TaskId,
    },
    /// Asks for a new dual-control mode (always needs a second user).
    SetDualControlMode(DualControlMode),
    /// Sets a server property (policy.md §10): its name and value as text.
    SetServerProperty {
        /// The name.
        name: String,
        /// The value.
        value: String,
    },
    /// Approves a request: the held command runs, as its requester.
    Approve {
        /// The request.
        id: RequestId,
    },
    /// Rejects a request with a comment.
    Reject {
        /// The request.
        id: RequestId,
        /// Why.
        comment: String,
    },
    /// Cancels one's own request.
    Cancel {
        /// The request.
        id: RequestId,
    },
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Done.
    Done,
    /// Handed to the storage world; its completion is a console message.
    Started(ActionId),
    /// Held for a second user.
    Requested(RequestId),
    /// Refused with a reason code.
    Refused(u16),
}

/// A command's storage work has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The action the command's reply named ([`Outcome::Started`]).
    pub action: ActionId,
    /// How it ended, as the console said it (none when its session is gone).
    pub message: Option<ConsoleMessage>,
}

/// Discovery logons allowed in a minute, for the whole server (rest.md §6): so that
/// no caller can make the gateway look like a password-guesser to a box or a host.
pub const DISCOVERIES_PER_MINUTE: usize = 6;

/// A discovery logon for the shell to make (policy.md §4.2); what it learns comes
/// back through [`Engine::handle_discovery`] with the same id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// Its id (from the volatile range: nothing about it is stored).
    pub id: ActionId,
    /// Where to log on, and the definition waiting.
    pub target: Discover,
}

/// The answer to a command: what happened and the message that says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// What happened.
    pub outcome: Outcome,
    /// The message (also on the console).
    pub message: ConsoleMessage,
}

/// A refusal, before it becomes a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    code: u16,
    id: MessageId,
    text: String,
}

impl Refusal {
    fn new(code: u16, id: MessageId, text: impl Into<String>) -> Refusal {
        Refusal {
            code,
            id,
            text: text.into(),
        }
    }
    /// A refusal of the request's content: `IWNR8012E` when it is malformed or names
    /// nothing that exists, `IWNR8023E` when it breaks a rule of the configuration
    /// (policy.md §6.2).
    fn bad(code: u16, text: impl Into<String>) -> Refusal {
        let id = match code {
            codes::BAD_COPY_SET
            | codes::BAD_SCHEDULE
            | codes::BAD_USER
            | codes::IN_USE
            | codes::LAST_ADMINISTRATOR => ids::RULE_BROKEN,
            _ => ids::BAD_REQUEST,
        };
        Refusal::new(code, id, text)
    }
    fn policy(code: u16, text: impl Into<String>) -> Refusal {
        Refusal::new(code, ids::POLICY_REFUSED, text)
    }
}

impl From<AccessRefusal> for Refusal {
    fn from(r: AccessRefusal) -> Refusal {
        Refusal::new(r.code(), ids::NOT_AUTHORIZED, r.to_string())
    }
}

/// A storage action to start as part of an effect.
#[derive(Debug, Clone)]
struct Start {
    session: String,
    serial: String,
    route: Route,
    steps: Vec<StorageOp>,
    purpose: Purpose,
}

/// What a prepared command will do.
#[derive(Debug, Clone)]
struct Effect {
    records: Vec<Record>,
    start: Option<Start>,
    text: String,
    id: MessageId,
    session: Option<String>,
    /// A message told after the reply's (a task run by hand: its IWNR2212I).
    then_tell: Option<(MessageId, String)>,
    /// A storage system whose volume list to read (no record until it answers).
    read_volumes: Option<String>,
    /// A discovery logon to make, the definition waiting for its answer.
    discover: Option<Discover>,
}

impl Effect {
    fn done(id: MessageId, session: Option<&str>, text: impl Into<String>) -> Effect {
        Effect {
            records: Vec::new(),
            start: None,
            text: text.into(),
            id,
            session: session.map(str::to_owned),
            then_tell: None,
            read_volumes: None,
            discover: None,
        }
    }
    fn with(mut self, record: Record) -> Effect {
        self.records.push(record);
        self
    }
}

/// A storage action that no record needs: a background-copy poll, a look at the
/// box to find out what an action did, a sweep for LSSs left frozen, a thaw.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Volatile {
    CopyPoll(String),
    /// What became of the durable action with this id (policy.md §8.4).
    Inspect(ActionId),
    /// LSSs of this box's sessions left frozen with no action under way.
    Sweep(String),
    /// LSSs of this box being thawed.
    Thaw(String),
    /// An SGC session's backups as the box lists them, to adopt or drop: first on
    /// its first H1 alone, then (`every`) on every H1 when that list differs.
    Adopt {
        /// The session.
        session: String,
        /// Read from every H1 volume.
        every: bool,
    },
    /// A storage system's volume list (LSVOL), into the inventory.
    Volumes(String),
    /// A Metro Mirror session's pairs read after the box said one was suspended:
    /// the pairs as they stand decide, not an event that may be stale.
    MirrorCheck {
        /// The session.
        session: String,
        /// The suspension's reason as told.
        reason: u8,
    },
}

/// A volume's type and size as messages write it (`CKD 3339 cylinders`).
pub fn volume_kind_text(kind: crate::ds8k::ids::VolumeKind) -> String {
    commands::kind_text(kind)
}

/// Ids of volatile reads have the top bit set, so they never meet durable ones.
const VOLATILE_BIT: ActionId = 1 << 63;

/// The engine.
#[derive(Debug, Clone)]
pub struct Engine {
    state: State,
    config: EngineConfig,
    trail: AuditTrail,
    storage_out: VecDeque<StorageAction>,
    console_out: VecDeque<ConsoleMessage>,
    records_out: VecDeque<Record>,
    finished_out: VecDeque<Finished>,
    volatile: BTreeMap<ActionId, Volatile>,
    next_volatile: ActionId,
    next_poll_ms: Option<u64>,
    copy_progress: BTreeMap<String, u64>,
    /// Actions whose outcome is unknown, and when the box is next asked about them.
    inspections: BTreeMap<ActionId, u64>,
    /// Boxes to sweep for LSSs left frozen, and when.
    sweeps: BTreeMap<String, u64>,
    /// When the periodic reconciliation is next due (armed at the first timeout).
    next_reconcile_ms: Option<u64>,
    /// Unanswered inspections and sweeps so far, by action id or box: the next try
    /// waits longer each time (capped), so a box that stays silent is not flooded.
    unanswered: BTreeMap<String, u32>,
    /// Copying sessions and retention due, kept as the state changes.
    timers: timers::SessionTimers,
    /// Discovery logons to make.
    discoveries_out: VecDeque<Discovery>,
    /// Discoveries under way: who asked, and the definition waiting.
    discovering: BTreeMap<ActionId, (String, Discover)>,
    /// When the discovery logons of the last minute were started.
    discovered_at: VecDeque<u64>,
}

impl Engine {
    /// An empty server.
    pub fn new(config: EngineConfig) -> Engine {
        Engine::from_state(State::new(config.request_lifetime_ms), config)
    }

    /// The engine that `records` describe (a restart, or a standby taking over).
    /// Storage actions that were under way are offered again by
    /// [`Engine::resume_in_flight`].
    pub fn replay<'a>(
        config: EngineConfig,
        records: impl IntoIterator<Item = &'a Record>,
    ) -> Engine {
        let mut state = State::new(config.request_lifetime_ms);
        for r in records {
            state.apply(r);
        }
        Engine::from_state(state, config)
    }

    /// The engine whose durable state is `state` (a snapshot, with the records after
    /// it applied by [`State::apply`]): a restart from a snapshot, or a
    /// standby taking over. What is not state (queued outputs, copy progress, the
    /// next poll) starts empty, as after [`Engine::replay`].
    pub fn from_state(state: State, config: EngineConfig) -> Engine {
        Engine {
            timers: timers::SessionTimers::of(&state),
            trail: AuditTrail::resume(state.audit_head),
            state,
            config,
            storage_out: VecDeque::new(),
            console_out: VecDeque::new(),
            records_out: VecDeque::new(),
            finished_out: VecDeque::new(),
            volatile: BTreeMap::new(),
            next_volatile: VOLATILE_BIT,
            next_poll_ms: None,
            copy_progress: BTreeMap::new(),
            inspections: BTreeMap::new(),
            sweeps: BTreeMap::new(),
            next_reconcile_ms: None,
            unanswered: BTreeMap::new(),
            discoveries_out: VecDeque::new(),
            discovering: BTreeMap::new(),
            discovered_at: VecDeque::new(),
        }
    }

    /// The durable state, taken (a takeover or a demotion rebuilds the engine
    /// from it without a copy).
    pub fn into_state(self) -> State {
        self.state
    }

    /// The durable state (what a replay rebuilds).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Whether the kept index of copying sessions and retention due equals one
    /// built from the state now (the engine fuzz target checks it after every step).
    pub fn timers_agree(&self) -> bool {
        self.timers == timers::SessionTimers::of(&self.state)
    }

    /// A standby applies a record the active stored (ha.md §5): the state moves as
    /// the active's did, and nothing is decided or sent.
    pub fn follow(&mut self, record: &Record) {
        self.state.apply(record);
        self.timers.after(&self.state, record);
        if matches!(record, Record::Audit(_)) {
            self.trail = AuditTrail::resume(self.state.audit_head);
        }
    }

    /// The background-copy poll interval: the server property if set (policy.md
    /// §10), else the configuration's.
    pub fn copy_poll_interval_ms(&self) -> u64 {
        self.state
            .properties
            .get(crate::policy::server_properties::COPY_POLL)
            .map_or(self.config.copy_poll_interval_ms, |s| {
                s.saturating_mul(1000)
            })
    }

    /// The settings.
    pub fn config(&self) -> EngineConfig {
        self.config
    }

    /// After a restart (or a takeover): a read that was under way is sent again; an
    /// action that changes the box is never sent again: its outcome is unknown
    /// until the box is asked what it did (policy.md §8.3, §8.4). Every box that
    /// sessions use is swept for LSSs left frozen.
    pub fn resume_in_flight(&mut self, now_ms: u64) {
        let flights: Vec<InFlight> = self.state.in_flight.values().cloned().collect();
        for f in flights {
            if f.action.op.is_read() {
                self.storage_out.push_back(f.action.clone());
            } else if f.unknown.is_some() {
                self.inspections.insert(f.action.id, now_ms);
            } else {
                let text = "the server stopped before the storage system's answer was stored";
                self.outcome_unknown(f, text.to_owned(), now_ms);
            }
        }
        let serials: std::collections::BTreeSet<String> = self
            .state
            .sessions
            .values()
            .filter_map(|s| s.serial().map(str::to_owned))
            .collect();
        for serial in serials {
            self.sweeps.insert(serial, now_ms);
        }
        self.start_inspections(now_ms);
    }

    /// Creates the first Administrator; only while the server has no user, and only
    /// with an argon2id hash.
    pub fn bootstrap_admin(&mut self, name: &str, password_hash: String, now_ms: u64) -> bool {
        if !self.state.users.is_empty() || crate::password::check_phc(&password_hash).is_err() {
            return false;
        }
        self.commit(Record::User(User {
            name: name.to_owned(),
            role: Role::Administrator,
            grant: None,
            password_hash,
            id: self.state.next_user,
            generation: 0,
        }));
        self.audit(
            now_ms,
            "zgate",
            "Create User",
            name,
            AuditKind::Action,
            "first Administrator",
        );
        true
    }

    /// The next storage action to carry out.
    pub fn poll_storage_action(&mut self) -> Option<StorageAction> {
        self.storage_out.pop_front()
    }

    /// The next console message.
    pub fn poll_console(&mut self) -> Option<ConsoleMessage> {
        self.console_out.pop_front()
    }

    /// The next durable record.
    pub fn poll_record(&mut self) -> Option<Record> {
        self.records_out.pop_front()
    }

    /// The next discovery logon to make (policy.md §4.2).
    pub fn poll_discovery(&mut self) -> Option<Discovery> {
        self.discoveries_out.pop_front()
    }

    /// The next command whose storage work ended: the action its reply named, and
    /// the message that says how it ended (also on the console). A door that
    /// answers with a command's outcome waits for this (policy.md §8.1).
    pub fn poll_finished(&mut self) -> Option<Finished> {
        self.finished_out.pop_front()
    }

    /// The principal of a user, as its record now stands.
    pub fn principal(&self, user: &str) -> Option<Principal> {
        self.state.users.get(user).map(User::principal)
    }

    /// The background-copy progress last read (out-of-sync tracks), by session.
    pub fn copy_progress(&self, session: &str) -> Option<u64> {
        self.copy_progress.get(session).copied()
    }

    /// The commands valid now on `session`, CSM's names.
    pub fn available_commands(&self, session: &str) -> Option<Vec<&'static str>> {
        let s = self.state.sessions.get(session)?;
        Some(s.available_commands().iter().map(|a| a.name()).collect())
    }

    /// Runs `command` for `user` at `now_ms`.
    pub fn handle_command(&mut self, user: &str, command: Command, now_ms: u64) -> Reply {
        self.expire_requests(now_ms);
        let Some(principal) = self.principal(user) else {
            let refusal = Refusal::new(
                codes::UNKNOWN_CALLER,
                ids::NOT_AUTHORIZED,
                format!("no user {user}"),
            );
            return self.refuse(user, &command, refusal, now_ms);
        };
        match command {
            Command::Approve { id } => self.approve(&principal, id, now_ms),
            Command::Reject { id, comment } => self.reject(&principal, id, &comment, now_ms),
            Command::Cancel { id } => self.cancel(&principal, id, now_ms),
            command => self.submit(&principal, command, now_ms),
        }
    }

    /// Whether `user` has the authority for `command` (role and grant, policy.md §1),
    /// decided without running it: (reason code, message id, text) when not. A door
    /// asks this before it holds anything for a user (copy sets sent in parts).
    pub fn authority_for(
        &self,
        user: &str,
        command: &Command,
    ) -> Result<(), (u16, MessageId, String)> {
        let refused = |r: Refusal| (r.code, r.id, r.text);
        let principal = self.principal(user).ok_or_else(|| {
            refused(Refusal::new(
                codes::UNKNOWN_CALLER,
                ids::NOT_AUTHORIZED,
                format!("no user {user}"),
            ))
        })?;
        let change = self.change_of(command).map_err(refused)?;
        self.authorize(&principal, command, &change)
            .map_err(refused)
    }

    /// Authority, then validity, then the gate: run now or file a request.
    fn submit(&mut self, principal: &Principal, command: Command, now_ms: u64) -> Reply {
        let change = match self.change_of(&command) {
            Ok(change) => change,
            Err(refusal) => return self.refuse(&principal.user, &command, refusal, now_ms),
        };
        if let Err(refusal) = self.authorize(principal, &command, &change) {
            return self.refuse(&principal.user, &command, refusal, now_ms);
        }
        let effect = match self.prepare(principal, &command, now_ms) {
            Ok(effect) => effect,
            Err(refusal) => return self.refuse(&principal.user, &command, refusal, now_ms),
        };
        if !change.is_gated(self.state.dual.mode()) {
            let reply = self.carry_out(effect, &principal.user, now_ms);
            self.audit_reply(&principal.user, &command, &reply, AuditKind::Action, now_ms);
            return reply;
        }
        let mut table = self.state.dual.clone();
        let id = match table.submit(principal, change, now_ms) {
            Ok(Some(id)) => id,
            Ok(None) => {
                let reply = self.carry_out(effect, &principal.user, now_ms);
                self.audit_reply(&principal.user, &command, &reply, AuditKind::Action, now_ms);
                return reply;
            }
            Err(refusal) => return self.refuse(&principal.user, &command, refusal.into(), now_ms),
        };
        let mut held = self.state.held.clone();
        held.insert(
            id,
            Held {
                command: command.clone(),
            },
        );
        self.commit(Record::DualControl { table, held });
        let text = format!(
            "Dual control request {id} was created by {} for {}; it runs when a second user with authority for it approves.",
            principal.user,
            describe(&command)
        );
        let reply = self.reply(
            Outcome::Requested(id),
            ids::REQUEST_CREATED,
            session_of(&command),
            text,
            now_ms,
        );
        self.audit_reply(
            &principal.user,
            &command,
            &reply,
            AuditKind::Request,
            now_ms,
        );
        reply
    }

    fn approve(&mut self, approver: &Principal, id: RequestId, now_ms: u64) -> Reply {
        let what = format!("request {id}");
        let mut table = self.state.dual.clone();
        let request = match table.approve(id, approver, now_ms) {
            Ok(r) => r,
            Err(e) => {
                let refusal = dual_refusal(e);
                return self.refuse_named(
                    &approver.user,
                    "Approve Request",
                    &what,
                    refusal,
                    now_ms,
                );
            }
        };
        let mut held = self.state.held.clone();
        let command = held.remove(&id).map(|h| h.command);
        self.commit(Record::DualControl { table, held });
        self.audit(
            now_ms,
            &approver.user,
            "Approve Request",
            &what,
            AuditKind::Approval,
            &format!("requested by {}", request.requester),
        );
        self.tell(
            ids::REQUEST_APPROVED,
            None,
            format!(
                "Dual control request {id} by {} was approved by {}; it runs now.",
                request.requester, approver.user
            ),
            now_ms,
        );
        let command = match command {
            Some(Command::SetDualControlMode(_)) | None => {
                // DualControl::approve applied the mode: approving it is the change.
                let text = format!(
                    "Dual control mode is now {}, requested by {} and approved by {}.",
                    self.state.dual.mode().name(),
                    request.requester,
                    approver.user
                );
                return self.reply(Outcome::Done, ids::MODE_CHANGED, None, text, now_ms);
            }
            Some(command) => command,
        };
        // The held command runs once, exactly as asked, with the requester's authority
        // as it stands now; it is prepared again against the state now.
        let requester = match self.principal(&request.requester) {
            Some(p) => p,
            None => {
                let refusal = Refusal::new(
                    codes::UNKNOWN_CALLER,
                    ids::NOT_AUTHORIZED,
                    format!("the requester {} no longer exists", request.requester),
                );
                return self.refuse(&request.requester, &command, refusal, now_ms);
            }
        };
        let prepared = self
            .change_of(&command)
            .and_then(|change| self.authorize(&requester, &command, &change))
            .and_then(|()| self.prepare(&requester, &command, now_ms));
        match prepared {
            Ok(effect) => {
                let reply = self.carry_out(effect, &requester.user, now_ms);
                self.audit_reply(&requester.user, &command, &reply, AuditKind::Action, now_ms);
                reply
            }
            Err(refusal) => self.refuse(&requester.user, &command, refusal, now_ms),
        }
    }

    fn reject(&mut self, approver: &Principal, id: RequestId, comment: &str, now_ms: u64) -> Reply {
        let what = format!("request {id}");
        let mut table = self.state.dual.clone();
        if let Err(e) = table.reject(id, approver, now_ms) {
            let refusal = dual_refusal(e);
            return self.refuse_named(&approver.user, "Reject Request", &what, refusal, now_ms);
        }
        let mut held = self.state.held.clone();
        let command = held.remove(&id).map(|h| h.command);
        self.commit(Record::DualControl { table, held });
        let text = format!(
            "Dual Control notification request {id} was rejected by user {} with the following reason: {comment}.",
            approver.user
        );
        let session = command.as_ref().and_then(session_of);
        let reply = self.reply(Outcome::Done, ids::REQUEST_REJECTED, session, text, now_ms);
        self.audit(
            now_ms,
            &approver.user,
            "Reject Request",
            &what,
            AuditKind::Rejection,
            &reply.message.line(),
        );
        reply
    }

    fn cancel(&mut self, requester: &Principal, id: RequestId, now_ms: u64) -> Reply {
        let what = format!("request {id}");
        let mut table = self.state.dual.clone();
        if let Err(e) = table.cancel(id, requester, now_ms) {
            let refusal = dual_refusal(e);
            return self.refuse_named(&requester.user, "Cancel Request", &what, refusal, now_ms);
        }
        let mut held = self.state.held.clone();
        held.remove(&id);
        self.commit(Record::DualControl { table, held });
        let text = format!(
            "Dual control request {id} was cancelled by its requester {}.",
            requester.user
        );
        let reply = self.reply(Outcome::Done, ids::REQUEST_CANCELLED, None, text, now_ms);
        self.audit(
            now_ms,
            &requester.user,
            "Cancel Request",
            &what,
            AuditKind::Cancellation,
            &reply.message.line(),
        );
        reply
    }

    /// Commits an effect: its records, its storage action, its message.
    fn carry_out(&mut self, effect: Effect, by: &str, now_ms: u64) -> Reply {
        for r in effect.records {
            self.commit(r);
        }
        let mut outcome = Outcome::Done;
        if let Some(start) = effect.start {
            outcome = Outcome::Started(self.start_action(start, by, now_ms));
        }
        if let Some(target) = effect.discover {
            let id = self.next_volatile;
            self.next_volatile += 1;
            self.expire_discoveries(now_ms);
            self.discovered_at.push_back(now_ms);
            self.discovering.insert(id, (by.to_owned(), target.clone()));
            self.discoveries_out.push_back(Discovery { id, target });
            outcome = Outcome::Started(id);
        }
        if let Some(serial) = effect.read_volumes {
            self.start_volatile(
                now_ms,
                Volatile::Volumes(serial.clone()),
                &serial,
                Route::Hmc,
                StorageOp::ListVolumes,
            );
        }
        let reply = self.reply(
            outcome,
            effect.id,
            effect.session.as_deref(),
            effect.text,
            now_ms,
        );
        if let Some((id, text)) = effect.then_tell {
            self.tell(id, effect.session.as_deref(), text, now_ms);
        }
        reply
    }

    /// Starts the first step of a storage action and marks its session busy.
    fn start_action(&mut self, start: Start, by: &str, now_ms: u64) -> ActionId {
        let id = self.state.next_action;
        let mut steps = start.steps.into_iter();
        let Some(op) = steps.next() else {
            return id;
        };
        let prior_state = self
            .state
            .sessions
            .get(&start.session)
            .map_or(SessionState::Defined, |s| s.state);
        let (serial, route) = op
            .directed(&start.serial)
            .unwrap_or((start.serial, start.route));
        let action = StorageAction {
            id,
            serial,
            route,
            op,
            not_after_ms: now_ms.saturating_add(self.config.storage_deadline_ms),
        };
        self.commit(Record::ActionStarted(InFlight {
            action: action.clone(),
            rest: steps.collect(),
            session: start.session.clone(),
            purpose: start.purpose,
            by: by.to_owned(),
            started_ms: now_ms,
            prior_state,
            unknown: None,
            origin: id,
        }));
        if let Some(mut s) = self.state.sessions.get(&start.session).cloned() {
            s.busy = Some(id);
            s.state = SessionState::Preparing;
            self.commit(Record::Session(s));
        }
        self.storage_out.push_back(action);
        id
    }

    /// Applies a record and queues it for the store. A session that exists is
    /// written as what changed (nothing when nothing did; policy.md §8.1).
    fn commit(&mut self, record: Record) {
        let record = match record {
            Record::Session(new) => match self.state.sessions.get(&new.name) {
                Some(old) => {
                    let changes = delta::changes_between(old, &new);
                    if changes.is_empty() {
                        return;
                    }
                    Record::SessionChanged {
                        name: new.name,
                        changes,
                    }
                }
                None => Record::Session(new),
            },
            other => other,
        };
        self.state.apply(&record);
        self.timers.after(&self.state, &record);
        self.records_out.push_back(record);
    }

    fn reply(
        &mut self,
        outcome: Outcome,
        id: MessageId,
        session: Option<&str>,
        text: String,
        now_ms: u64,
    ) -> Reply {
        let message = ConsoleMessage::new(id, now_ms, session, text, Vec::new());
        self.console_out.push_back(message.clone());
        Reply { outcome, message }
    }

    /// Tells the console something that is no reply to anyone.
    fn tell(&mut self, id: MessageId, session: Option<&str>, text: String, now_ms: u64) {
        self.console_out
            .push_back(ConsoleMessage::new(id, now_ms, session, text, Vec::new()));
    }

    fn refuse(&mut self, user: &str, command: &Command, refusal: Refusal, now_ms: u64) -> Reply {
        let target = session_of(command).unwrap_or("server").to_owned();
        self.refuse_named(user, &describe(command), &target, refusal, now_ms)
    }

    fn refuse_named(
        &mut self,
        user: &str,
        what: &str,
        target: &str,
        refusal: Refusal,
        now_ms: u64,
    ) -> Reply {
        let session = (target != "server" && !target.starts_with("request ")).then_some(target);
        let reply = self.reply(
            Outcome::Refused(refusal.code),
            refusal.id,
            session,
            refusal.text,
            now_ms,
        );
        self.audit(
            now_ms,
            user,
            what,
            target,
            AuditKind::Refusal,
            &format!("{:#06x} {}", refusal.code, reply.message.line()),
        );
        reply
    }

    fn audit_reply(
        &mut self,
        user: &str,
        command: &Command,
        reply: &Reply,
        kind: AuditKind,
        now_ms: u64,
    ) {
        let target = session_of(command).unwrap_or("server").to_owned();
        self.audit(
            now_ms,
            user,
            &describe(command),
            &target,
            kind,
            &reply.message.line(),
        );
    }

    fn audit(
        &mut self,
        at_ms: u64,
        who: &str,
        what: &str,
        target: &str,
        kind: AuditKind,
        result: &str,
    ) {
        let entry = self.trail.append(AuditRecord {
            at_ms,
            who: who.to_owned(),
            what: what.to_owned(),
            target: target.to_owned(),
            kind,
            result: result.to_owned(),
        });
        self.commit(Record::Audit(entry));
    }
}

/// A dual-control refusal as the caller is told it: a request that is no longer
/// pending is a plain fact (IWNR8012E), not an authority refusal (IWNR8010E).
fn dual_refusal(e: crate::policy::dual_control::DualControlError) -> Refusal {
    use crate::policy::dual_control::DualControlError as E;
    match e {
        E::UnknownRequest(id) => Refusal::new(
            e.code(),
            ids::BAD_REQUEST,
            format!(
                "Dual control request {id} is not pending: it was already approved, rejected or cancelled, it expired, or it never existed."
            ),
        ),
        e => Refusal::new(e.code(), ids::NOT_AUTHORIZED, e.to_string()),
    }
}

/// The session a command concerns.
fn session_of(command: &Command) -> Option<&str> {
    match command {
        Command::CreateSession { name, .. } | Command::RemoveSession { name } => Some(name),
        Command::SetDescription { session, .. }
        | Command::SetProperties { session, .. }
        | Command::PatchProperties { session, .. }
        | Command::AddCopySets { session, .. }
        | Command::RemoveCopySets { session, .. }
        | Command::Run { session, .. }
        | Command::CreateTask { session, .. } => Some(session),
        _ => None,
    }
}

/// A command in CSM's words, for messages and the audit trail.
pub fn describe(command: &Command) -> String {
    match command {
        Command::CreateUser { name, .. } => format!("Create User {name}"),
        Command::SetUserRole { name, role, .. } => format!("Set Role of {name} to {}", role.name()),
        Command::SetPassword { name, .. } => format!("Change Password of {name}"),
        Command::RemoveUser { name } => format!("Remove User {name}"),
        Command::DefineStorageSystem(s) => format!("Add Storage System {}", s.name()),
        Command::ReadVolumes { serial } => format!("Read Volumes of DS8000:BOX:2107.{serial}"),
        Command::Discover(Discover::StorageSystem { address, .. }) => {
            format!("Add Storage System at {address}")
        }
        Command::Discover(target @ Discover::HostConnection { .. }) => {
            format!("Add Host Connection at {}", target.address())
        }
        Command::RemoveStorageSystem { serial } => {
            format!("Remove Storage System DS8000:BOX:2107.{serial}")
        }
        Command::DefineHostConnection(h) => format!("Add Host Connection {}", h.system),
        Command::RemoveHostConnection { system } => format!("Remove Host Connection {system}"),
        Command::CreateSession { name, kind, .. } => {
            format!("Create Session {name} ({})", kind.code())
        }
        Command::RemoveSession { .. } => "Remove Session".into(),
        Command::SetDescription { .. } => "Modify Session Description".into(),
        Command::SetProperties { .. } => "Modify Session Properties".into(),
        Command::PatchProperties { patch, .. } => {
            format!(
                "Modify Session Properties ({})",
                patch.describe().join(", ")
            )
        }
        Command::AddCopySets { copy_sets, .. } => format!("Add Copy Sets ({})", copy_sets.len()),
        Command::RemoveCopySets { h1, .. } => format!("Remove Copy Sets ({})", h1.len()),
        Command::Run { command, .. } => match command.backup() {
            Some(id) => format!("{} {id}", command.name()),
            None => command.name().to_owned(),
        },
        Command::CreateTask { name, .. } => format!("Create Scheduled Task {name}"),
        Command::ModifyTask { id, .. } => format!("Modify Scheduled Task {id}"),
        Command::EnableTask { id } => format!("Enable Scheduled Task {id}"),
        Command::DisableTask { id } => format!("Disable Scheduled Task {id}"),
        Command::RunTask { id } => format!("Run Scheduled Task {id}"),
        Command::DeleteTask { id } => format!("Delete Scheduled Task {id}"),
        Command::SetDualControlMode(mode) => format!("Set Dual Control Mode to {}", mode.name()),
        Command::SetServerProperty { name, value } => {
            format!("Set Server Property {name} to {value}")
        }
        Command::Approve { id } => format!("Approve Request {id}"),
        Command::Reject { id, .. } => format!("Reject Request {id}"),
        Command::Cancel { id } => format!("Cancel Request {id}"),
    }
}

#[cfg(test)]
mod tests;
