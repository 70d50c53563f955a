//! Preparing commands: every check, no change (`protocol-specs/policy.md` §5).

use std::collections::BTreeSet;

use super::kinds::Plan;
use super::{Command, Effect, Engine, Refusal, Start, codes};
use crate::ds8k::ids::{VolumeId, VolumeKind};
use crate::policy::SessionType;
use crate::policy::access::{
    AccessRefusal, ActionScope, OperatorGrant, Principal, Role, ServerAction, SessionAction,
    SessionScope,
};
use crate::policy::console::ids;
use crate::policy::copy_set_file;
use crate::policy::dual_control::{Change, TaskChange};
use crate::policy::engine::state::{Purpose, Record, User};
use crate::policy::inventory::{Discover, VolumeRef};
use crate::policy::retention::RetentionRefusal;
use crate::policy::schedule::Task;
use crate::policy::session::{CopySet, Properties, Session, SessionCommand, SessionState};
use crate::policy::storage::{Route, StorageOp};

/// The longest user name CSM accepts.
pub(super) const MAX_USER_NAME: usize = 104;
/// The longest session, task or system name zgate accepts.
pub(super) const MAX_NAME: usize = 250;
/// The longest description or comment.
pub(super) const MAX_TEXT: usize = 1024;
/// The most copy sets one session holds: every volume of a full storage image
/// (65,280) as the H1 of one copy set, a whole-box SGC session with no recovery
/// volumes (policy.md §5.1).
pub const MAX_COPY_SETS: usize = 65_280;
/// The most copy sets of an FC, MM or HS session: their pairs go to the box in one
/// request, which carries at most 32,640 (ds8k.md §4), every volume of a full image
/// in one pair.
pub const MAX_PAIRED_COPY_SETS: usize = 32_640;

/// The most copy sets a session of `kind` holds.
pub fn max_copy_sets(kind: SessionType) -> usize {
    match kind {
        SessionType::Sgc => MAX_COPY_SETS,
        SessionType::Fc | SessionType::Mm | SessionType::Hs => MAX_PAIRED_COPY_SETS,
    }
}
/// The most copy sets a command through a host system carries: the z/OS and z/TPF
/// protocols' pair lists (zos-hyperswap.md §3.8, ztpf.md §3.4) hold 2,048.
pub const MAX_HOST_ROUTE_COPY_SETS: usize = 2048;
/// Minimum Time Frame per Flash, at most a week of minutes.
pub(super) const MAX_FLASH_INTERVAL_MINS: u32 = 7 * 24 * 60;

/// Characters that change how text around them is shown (bidirectional overrides
/// and isolates, zero-width marks): in a name or a description they can make a
/// console line or a syslog record read as something else, so they are refused
/// (policy.md §5.5, the same rule on every door).
pub(super) fn is_display_control(c: char) -> bool {
    matches!(c,
        '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

pub(super) fn check_name(what: &str, name: &str, max: usize) -> Result<(), Refusal> {
    let ok = !name.is_empty()
        && name.chars().count() <= max
        && !name
            .chars()
            .any(|c| c.is_control() || is_display_control(c))
        && name.trim() == name;
    if ok {
        Ok(())
    } else {
        Err(Refusal::bad(
            codes::BAD_PROPERTY,
            format!(
                "{what} must be 1 to {max} printable characters without leading or trailing blanks"
            ),
        ))
    }
}

pub(super) fn check_text(what: &str, text: &str) -> Result<(), Refusal> {
    if text.chars().count() > MAX_TEXT
        || text
            .chars()
            .any(|c| (c.is_control() && c != '\n') || is_display_control(c))
    {
        return Err(Refusal::bad(
            codes::BAD_PROPERTY,
            format!("{what} must be at most {MAX_TEXT} printable characters"),
        ));
    }
    Ok(())
}

pub(super) fn check_hash(phc: &str) -> Result<(), Refusal> {
    crate::password::check_phc(phc).map_err(|why| {
        Refusal::bad(
            codes::BAD_PROPERTY,
            format!(
                "the password hash {why}: give an argon2id PHC string (zgate passwd makes one)"
            ),
        )
    })
}

pub(super) fn ms_text(ms: u64) -> String {
    crate::policy::console::utc_text(ms)
}

impl Engine {
    pub(super) fn session(&self, name: &str) -> Result<&Session, Refusal> {
        self.state.sessions.get(name).ok_or_else(|| {
            Refusal::new(
                codes::UNKNOWN_SESSION,
                ids::SESSION_NOT_FOUND,
                format!("There is no session named {name}."),
            )
        })
    }

    pub(super) fn task(&self, id: u64) -> Result<&Task, Refusal> {
        self.state.tasks.get(&id).ok_or_else(|| {
            Refusal::bad(
                codes::UNKNOWN_TASK,
                format!("there is no scheduled task {id}"),
            )
        })
    }

    /// What the gate sees of a command (policy.md §2.1).
    pub(super) fn change_of(&self, command: &Command) -> Result<Change, Refusal> {
        let on = |session: &str, action: SessionAction| -> Result<Change, Refusal> {
            let kind = self.session(session)?.kind();
            Ok(Change::Session {
                session: session.to_owned(),
                kind,
                action,
            })
        };
        let task = |session: &str, change: TaskChange| -> Result<Change, Refusal> {
            let kind = self.session(session)?.kind();
            Ok(Change::Task {
                session: session.to_owned(),
                kind,
                change,
            })
        };
        let of_task = |id: u64, change: TaskChange| -> Result<Change, Refusal> {
            let session = self.task(id)?.session.clone();
            task(&session, change)
        };
        match command {
            Command::CreateUser { .. }
            | Command::SetUserRole { .. }
            | Command::SetPassword { .. }
            | Command::RemoveUser { .. } => Ok(Change::Server(ServerAction::ManageUsers)),
            Command::DefineStorageSystem(_)
            | Command::Discover(Discover::StorageSystem { .. })
            | Command::RemoveStorageSystem { .. }
            | Command::ReadVolumes { .. } => Ok(Change::Server(ServerAction::ManageStorageSystems)),
            Command::Discover(Discover::HostConnection { .. }) => {
                Ok(Change::Server(ServerAction::ManageHostConnections))
            }
            Command::DefineHostConnection(_) | Command::RemoveHostConnection { .. } => {
                Ok(Change::Server(ServerAction::ManageHostConnections))
            }
            Command::CreateSession { .. } => Ok(Change::Server(ServerAction::CreateSession)),
            Command::RemoveSession { name } => on(name, SessionAction::RemoveSession),
            Command::SetDescription { session, .. }
            | Command::SetProperties { session, .. }
            | Command::PatchProperties { session, .. } => {
                on(session, SessionAction::ModifyProperties)
            }
            Command::AddCopySets { session, .. } => on(session, SessionAction::AddCopySets),
            Command::RemoveCopySets { session, .. } => on(session, SessionAction::RemoveCopySets),
            Command::Run { session, command } => on(session, command.action()),
            Command::CreateTask { session, .. } => task(session, TaskChange::Create),
            Command::ModifyTask { id, .. } => of_task(*id, TaskChange::Modify),
            Command::EnableTask { id } => of_task(*id, TaskChange::Enable),
            Command::DisableTask { id } => of_task(*id, TaskChange::Disable),
            Command::RunTask { id } => of_task(*id, TaskChange::RunNow),
            Command::DeleteTask { id } => of_task(*id, TaskChange::Delete),
            Command::SetDualControlMode(mode) => Ok(Change::Mode(*mode)),
            Command::SetServerProperty { .. } => {
                Ok(Change::Server(ServerAction::ChangeServerProperties))
            }
            Command::Approve { .. } | Command::Reject { .. } | Command::Cancel { .. } => Err(
                Refusal::bad(codes::BAD_PROPERTY, "requests are answered, not filed"),
            ),
        }
    }

    /// Role and grant (policy.md §1): the change's own rule; a user may change its
    /// own password whatever its role.
    pub(super) fn authorize(
        &self,
        principal: &Principal,
        command: &Command,
        change: &Change,
    ) -> Result<(), Refusal> {
        if let Command::SetPassword { name, .. } = command
            && *name == principal.user
        {
            return Ok(());
        }
        change.authorized(principal).map_err(Refusal::from)?;
        self.within_user_administration(principal, command)
    }

    /// A User Administrator manages Monitors and Operators only: it may not give
    /// the Administrator or User Administrator role, nor change or remove a user
    /// that holds one (policy.md §1.1, stricter than CSM's text: otherwise a User
    /// Administrator could make itself an Administrator).
    pub(super) fn within_user_administration(
        &self,
        principal: &Principal,
        command: &Command,
    ) -> Result<(), Refusal> {
        if principal.role != Role::UserAdministrator {
            return Ok(());
        }
        let high = |role: Role| matches!(role, Role::Administrator | Role::UserAdministrator);
        let (action, target_role, given) = match command {
            Command::CreateUser { role, .. } => ("Create User", None, Some(*role)),
            Command::SetUserRole { name, role, .. } => (
                "Set Role",
                self.state.users.get(name).map(|u| u.role),
                Some(*role),
            ),
            Command::SetPassword { name, .. } => (
                "Change Password",
                self.state.users.get(name).map(|u| u.role),
                None,
            ),
            Command::RemoveUser { name } => (
                "Remove User",
                self.state.users.get(name).map(|u| u.role),
                None,
            ),
            _ => return Ok(()),
        };
        let needed = target_role
            .filter(|r| high(*r))
            .or(given.filter(|r| high(*r)));
        match needed {
            None => Ok(()),
            Some(role) => Err(Refusal::from(AccessRefusal::RoleTooLow {
                user: principal.user.clone(),
                role: Role::UserAdministrator.name(),
                action: if target_role.is_some_and(high) {
                    match role {
                        Role::Administrator => "changing an Administrator",
                        _ => "changing a User Administrator",
                    }
                } else {
                    match (action, role) {
                        (_, Role::Administrator) => "giving the Administrator role",
                        _ => "giving the User Administrator role",
                    }
                },
                needs: Role::Administrator.name(),
            })),
        }
    }

    /// Checks a command against the state and returns what it will do.
    pub(super) fn prepare(
        &self,
        principal: &Principal,
        command: &Command,
        now_ms: u64,
    ) -> Result<Effect, Refusal> {
        match command {
            Command::CreateUser { .. }
            | Command::SetUserRole { .. }
            | Command::SetPassword { .. }
            | Command::RemoveUser { .. } => self.prepare_user(principal, command),
            Command::DefineStorageSystem(_)
            | Command::RemoveStorageSystem { .. }
            | Command::ReadVolumes { .. }
            | Command::Discover(_)
            | Command::DefineHostConnection(_)
            | Command::RemoveHostConnection { .. } => self.prepare_inventory(command, now_ms),
            Command::CreateSession {
                name,
                kind,
                description,
            } => self.prepare_create_session(principal, name, *kind, description, now_ms),
            Command::RemoveSession { name } => {
                let s = self.session(name)?;
                if s.busy.is_some() || s.state != SessionState::Defined {
                    return Err(self.not_valid(s, "Remove Session"));
                }
                let mut effect = Effect::done(
                    ids::CHANGED,
                    Some(name),
                    format!("Session {name} was removed."),
                );
                for t in self.state.tasks.values().filter(|t| t.session == *name) {
                    effect = effect.with(Record::TaskRemoved(t.id));
                }
                Ok(effect.with(Record::SessionRemoved(name.clone())))
            }
            Command::SetDescription {
                session,
                description,
            } => {
                check_text("a description", description)?;
                let mut s = self.session(session)?.clone();
                s.description = description.clone();
                Ok(Effect::done(
                    ids::CHANGED,
                    Some(session),
                    format!("The description of session {session} was changed."),
                )
                .with(Record::Session(s)))
            }
            Command::SetProperties {
                session,
                properties,
            } => self.prepare_properties(session, properties),
            Command::PatchProperties { session, patch } => {
                if patch.is_empty() {
                    return Err(Refusal::bad(
                        codes::BAD_PROPERTY,
                        "the change names no property",
                    ));
                }
                let s = self.session(session)?;
                let properties = patch.apply(&s.properties).map_err(|name| {
                    Refusal::bad(
                        codes::BAD_PROPERTY,
                        format!(
                            "{name} is not a property of {} session {session}; nothing was changed",
                            s.kind().code()
                        ),
                    )
                })?;
                self.prepare_properties(session, &properties)
            }
            Command::AddCopySets { session, copy_sets } => {
                self.prepare_add_copy_sets(session, copy_sets)
            }
            Command::RemoveCopySets { session, h1 } => {
                let s = self.session(session)?;
                if s.busy.is_some() || s.state != SessionState::Defined {
                    return Err(self.not_valid(s, "Remove Copy Sets"));
                }
                let held: std::collections::HashSet<&VolumeRef> =
                    s.copy_sets.iter().map(|c| &c.h1).collect();
                let mut leaving = std::collections::HashSet::new();
                for v in h1 {
                    if !held.contains(v) {
                        return Err(Refusal::bad(
                            codes::BAD_COPY_SET,
                            format!("session {session} has no copy set with H1 {v}"),
                        ));
                    }
                    leaving.insert(v);
                }
                let mut s = s.clone();
                s.copy_sets.make_mut().retain(|c| !leaving.contains(&c.h1));
                Ok(Effect::done(
                    ids::CHANGED,
                    Some(session),
                    format!(
                        "{} copy sets were removed from session {session}.",
                        h1.len()
                    ),
                )
                .with(Record::Session(s)))
            }
            Command::Run { session, command } => self.prepare_run(session, *command, now_ms),
            Command::CreateTask { .. }
            | Command::ModifyTask { .. }
            | Command::EnableTask { .. }
            | Command::DisableTask { .. }
            | Command::RunTask { .. }
            | Command::DeleteTask { .. } => self.prepare_task(principal, command, now_ms),
            Command::SetDualControlMode(mode) => {
                if *mode == self.state.dual.mode() {
                    return Err(Refusal::bad(
                        codes::BAD_PROPERTY,
                        format!("dual control is already in {}", mode.name()),
                    ));
                }
                // Always gated: reached only when approved (policy.md §2.1).
                Ok(Effect::done(
                    ids::MODE_CHANGED,
                    None,
                    format!("Dual control mode is now {}.", mode.name()),
                ))
            }
            Command::SetServerProperty { name, value } => {
                let value = crate::policy::server_properties::parse(name, value)
                    .map_err(|why| Refusal::bad(codes::BAD_PROPERTY, why))?;
                Ok(Effect::done(
                    ids::CHANGED,
                    None,
                    format!("Server property {name} was set to {value}."),
                )
                .with(Record::ServerProperty {
                    name: name.clone(),
                    value,
                }))
            }
            Command::Approve { .. } | Command::Reject { .. } | Command::Cancel { .. } => Err(
                Refusal::bad(codes::BAD_PROPERTY, "requests are answered, not filed"),
            ),
        }
    }

    pub(super) fn user(&self, name: &str) -> Result<&User, Refusal> {
        self.state
            .users
            .get(name)
            .ok_or_else(|| Refusal::bad(codes::BAD_USER, format!("there is no user {name}")))
    }

    pub(super) fn keep_an_administrator(&self, leaving: &str) -> Result<(), Refusal> {
        let others = self
            .state
            .users
            .values()
            .filter(|u| u.role == Role::Administrator && u.name != leaving)
            .count();
        if others == 0 {
            return Err(Refusal::bad(
                codes::LAST_ADMINISTRATOR,
                format!("{leaving} is the last Administrator"),
            ));
        }
        Ok(())
    }

    fn prepare_create_session(
        &self,
        principal: &Principal,
        name: &str,
        kind: SessionType,
        description: &str,
        now_ms: u64,
    ) -> Result<Effect, Refusal> {
        check_name("a session name", name, MAX_NAME)?;
        check_text("a description", description)?;
        if self.state.sessions.contains_key(name) {
            return Err(Refusal::new(
                codes::SESSION_EXISTS,
                ids::SESSION_EXISTS,
                format!("A session named {name} already exists."),
            ));
        }
        let session = Session::new(name.to_owned(), kind, description.to_owned(), now_ms);
        let mut effect = Effect::done(
            ids::CHANGED,
            Some(name),
            format!("Session {name} of type {} was created.", kind.code()),
        )
        .with(Record::Session(session));
        // An Operator who creates a session is granted it (policy.md §1.2).
        if principal.role == Role::Operator
            && let Some(mut user) = self.state.users.get(&principal.user).cloned()
        {
            let mut grant = user.grant.clone().unwrap_or(OperatorGrant {
                sessions: SessionScope::Named(Default::default()),
                actions: ActionScope::Default,
            });
            if let SessionScope::Named(names) = &mut grant.sessions {
                names.insert(name.to_owned());
                user.grant = Some(grant);
                effect = effect.with(Record::User(user));
            }
        }
        Ok(effect)
    }

    fn prepare_properties(
        &self,
        session: &str,
        properties: &Properties,
    ) -> Result<Effect, Refusal> {
        let s = self.session(session)?;
        if properties.kind() != s.kind() {
            return Err(Refusal::bad(
                codes::BAD_PROPERTY,
                format!(
                    "session {session} is a {} session; these are {} properties",
                    s.kind().code(),
                    properties.kind().code()
                ),
            ));
        }
        if let Some(host) = properties.host_system()
            && !self.state.hosts.contains_key(host)
        {
            return Err(unknown_system(host));
        }
        if let Some(member) = properties
            .mirror()
            .into_iter()
            .flat_map(|p| p.members.iter())
            .find(|m| !self.state.hosts.contains_key(*m))
        {
            return Err(unknown_system(member));
        }
        match properties {
            Properties::Fc(p) if p.min_flash_interval_mins > MAX_FLASH_INTERVAL_MINS => {
                return Err(Refusal::bad(
                    codes::BAD_PROPERTY,
                    format!(
                        "Minimum Time Frame per Flash is at most {MAX_FLASH_INTERVAL_MINS} minutes"
                    ),
                ));
            }
            Properties::Fc(p) if p.no_copy && p.incremental => {
                // -nocp with -record is allowed by the box; CSM offers both. Nothing to refuse.
            }
            Properties::Sgc(p) if p.policy.min_kept > 500 => {
                return Err(Refusal::bad(
                    codes::BAD_PROPERTY,
                    "Minimum Number of Backups Retention Should Always Maintain is at most 500",
                ));
            }
            _ => {}
        }
        let mut s = s.clone();
        s.properties = properties.clone();
        Ok(Effect::done(
            ids::CHANGED,
            Some(session),
            format!("The properties of session {session} were changed."),
        )
        .with(Record::Session(s)))
    }

    /// `Add Copy Sets` (policy.md §5.1): the checks that need no volume facts now,
    /// then a read of the volumes; [`Engine::check_copy_sets`] with the facts decides
    /// when the read comes back.
    fn prepare_add_copy_sets(
        &self,
        session: &str,
        copy_sets: &[CopySet],
    ) -> Result<Effect, Refusal> {
        let s = self.session(session)?;
        let serial = self.check_copy_sets(s, copy_sets, false)?;
        let mut images = vec![serial.clone()];
        if s.kind().mirrored()
            && let Some(c) = copy_sets.first()
            && let Some(h2) = &c.partner
        {
            images.push(h2.serial.clone());
        }
        for image in &images {
            if !self.state.systems.contains_key(image) {
                return Err(unknown_system(&format!("DS8000:BOX:2107.{image}")));
            }
        }
        // One read per image: the H1 (and, in one image, T1 or R1) volumes on the
        // session's image, a Metro Mirror session's H2 volumes on theirs.
        let steps = if s.kind().mirrored() {
            vec![
                StorageOp::ShowVolumes {
                    volumes: copy_sets.iter().map(|c| c.h1.volume).collect(),
                    at: None,
                },
                StorageOp::ShowVolumes {
                    volumes: copy_sets
                        .iter()
                        .filter_map(|c| c.partner.as_ref().map(|v| v.volume))
                        .collect(),
                    at: images.get(1).cloned(),
                },
            ]
        } else {
            vec![StorageOp::ShowVolumes {
                volumes: copy_sets
                    .iter()
                    .flat_map(|c| {
                        std::iter::once(c.h1.volume).chain(c.partner.as_ref().map(|v| v.volume))
                    })
                    .collect(),
                at: None,
            }]
        };
        let mut effect = Effect::done(
            ids::COMMAND_STARTED,
            Some(session),
            format!(
                "Reading the {} volumes of {} copy sets for session {session} from {}.",
                copy_sets.len() + copy_sets.iter().filter(|c| c.partner.is_some()).count(),
                copy_sets.len(),
                images
                    .iter()
                    .map(|i| format!("DS8000:BOX:2107.{i}"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        );
        effect.start = Some(Start {
            session: session.to_owned(),
            serial,
            route: Route::Hmc,
            steps,
            purpose: Purpose::AddCopySets(copy_sets.to_vec()),
        });
        Ok(effect)
    }

    /// The rules of §5.1 for adding `copy_sets` to `s`; with `with_facts`, also those
    /// that need the volumes as read (existence, type, size, capacity). Returns the
    /// storage image's serial.
    pub(super) fn check_copy_sets(
        &self,
        s: &Session,
        copy_sets: &[CopySet],
        with_facts: bool,
    ) -> Result<String, Refusal> {
        // FC and Metro Mirror copy sets join a session with nothing on the box.
        if s.busy.is_some()
            || (matches!(
                s.kind(),
                SessionType::Fc | SessionType::Mm | SessionType::Hs
            ) && s.state != SessionState::Defined)
        {
            return Err(self.not_valid(s, "Add Copy Sets"));
        }
        let most = max_copy_sets(s.kind());
        if copy_sets.is_empty() || s.copy_sets.len() + copy_sets.len() > most {
            return Err(Refusal::bad(
                codes::BAD_COPY_SET,
                format!("a {} session holds 1 to {most} copy sets", s.kind().code()),
            ));
        }
        let serial = s
            .serial()
            .unwrap_or(copy_sets[0].h1.serial.as_str())
            .to_owned();
        let mirrored = s.kind().mirrored();
        // A Metro Mirror session's H2 volumes are all on one other image.
        let h2_serial = s
            .serial_of(crate::policy::session::Site::H2)
            .or(copy_sets[0].partner.as_ref().map(|v| v.serial.as_str()))
            .unwrap_or_default()
            .to_owned();
        if mirrored && h2_serial == serial {
            return Err(Refusal::bad(
                codes::BAD_COPY_SET,
                format!(
                    "H1 and H2 are both on storage image 2107.{serial}: Metro Mirror copies to another storage image"
                ),
            ));
        }
        let role_of = |kind: SessionType| copy_set_file::partner_role(kind);
        let partner_role = role_of(s.kind());
        // Volumes already in a role somewhere: (image, volume) -> (session, role).
        let mut used: std::collections::BTreeMap<(String, VolumeId), (String, &str)> =
            Default::default();
        for other in self.state.sessions.values() {
            for c in &other.copy_sets {
                if let Some(p) = &c.partner {
                    used.insert(
                        (p.serial.clone(), p.volume),
                        (other.name.clone(), role_of(other.kind())),
                    );
                }
                if other.name == s.name {
                    used.entry((c.h1.serial.clone(), c.h1.volume))
                        .or_insert((other.name.clone(), "H1"));
                }
            }
        }
        let mut seen = BTreeSet::new();
        let bad = |text: String| Err(Refusal::bad(codes::BAD_COPY_SET, text));
        for c in copy_sets {
            // Only SGC's R1 is optional (§5.1).
            if c.partner.is_none() && s.kind() != SessionType::Sgc {
                return bad(format!(
                    "copy set of H1 {} has no {partner_role} volume: {} copy sets are H1 and {partner_role}",
                    c.h1,
                    s.kind().code()
                ));
            }
            let partner = c
                .partner
                .as_ref()
                .map(|p| (p, if mirrored { &h2_serial } else { &serial }));
            for (v, image) in std::iter::once((&c.h1, &serial)).chain(partner) {
                if v.serial != *image {
                    return bad(if mirrored {
                        format!(
                            "{v} is not on storage image 2107.{image}: a Metro Mirror session's H1 volumes are on one storage image and its H2 volumes on one other"
                        )
                    } else {
                        format!(
                            "{v} is not on storage image 2107.{serial}: a session's copy sets are on one storage image"
                        )
                    });
                }
                if !seen.insert((v.serial.clone(), v.volume)) {
                    return bad(format!("{v} appears twice"));
                }
                if let Some((other, role)) = used.get(&(v.serial.clone(), v.volume)) {
                    return bad(format!(
                        "{v} is already the {role} volume of a copy set in session {other}"
                    ));
                }
            }
            if !with_facts {
                continue;
            }
            let facts = |v: &VolumeRef| {
                self.state
                    .inventory
                    .get(&v.serial)
                    .and_then(|i| i.get(&v.volume))
                    .copied()
                    .ok_or_else(|| {
                        Refusal::bad(
                            codes::UNKNOWN_VOLUME,
                            format!(
                                "storage system DS8000:BOX:2107.{} has no volume {v}",
                                v.serial
                            ),
                        )
                    })
            };
            let h1 = facts(&c.h1)?;
            if let Some(p) = &c.partner {
                let partner = facts(p)?;
                if h1.kind != partner.kind {
                    return bad(format!(
                        "H1 {} ({}) and {partner_role} {p} ({}) are not the same size and type",
                        c.h1,
                        kind_text(h1.kind),
                        kind_text(partner.kind)
                    ));
                }
            }
            if s.kind() == SessionType::Hs && !matches!(h1.kind, VolumeKind::Ckd { .. }) {
                return bad(format!(
                    "H1 {} is a fixed-block volume: Basic HyperSwap manages CKD volumes only",
                    c.h1
                ));
            }
            if s.kind() == SessionType::Sgc && h1.sgc_capacity == 0 {
                return bad(format!(
                    "H1 {} has no Safeguarded Copy backup capacity; define it on the storage system first",
                    c.h1
                ));
            }
        }
        Ok(serial)
    }

    /// The refusal that lists the commands valid now (IWNC1302E's shape).
    pub(super) fn not_valid(&self, s: &Session, what: &str) -> Refusal {
        if s.busy.is_some() {
            return Refusal::new(
                codes::SESSION_BUSY,
                ids::COMMAND_NOT_VALID,
                format!(
                    "The action {what} is not currently valid for session {}: it is carrying out a command; try again when it completes.",
                    s.name
                ),
            );
        }
        let valid: Vec<&str> = s.available_commands().iter().map(|a| a.name()).collect();
        let valid = if valid.is_empty() {
            "none (add copy sets first)".to_owned()
        } else {
            valid.join(", ")
        };
        Refusal::new(
            codes::COMMAND_NOT_VALID,
            ids::COMMAND_NOT_VALID,
            format!(
                "The action {what} is not currently valid for session {} in state {}; valid actions are: {valid}.",
                s.name,
                s.state.name()
            ),
        )
    }

    fn route(&self, s: &Session) -> Result<(String, Route), Refusal> {
        let Some(serial) = s.serial() else {
            return Err(self.not_valid(s, "this command"));
        };
        if !self.state.systems.contains_key(serial) {
            return Err(unknown_system(&format!("DS8000:BOX:2107.{serial}")));
        }
        let route = match s.properties.host_system() {
            Some(host) if self.state.hosts.contains_key(host) => {
                if s.copy_sets.len() > MAX_HOST_ROUTE_COPY_SETS {
                    return Err(Refusal::bad(
                        codes::BAD_COPY_SET,
                        format!(
                            "session {} has {} copy sets; a command through host system {host} carries at most {MAX_HOST_ROUTE_COPY_SETS}: clear its host system property to use the HMC",
                            s.name,
                            s.copy_sets.len()
                        ),
                    ));
                }
                Route::Host(host.to_owned())
            }
            Some(host) => return Err(unknown_system(host)),
            None => Route::Hmc,
        };
        Ok((serial.to_owned(), route))
    }

    /// A session command: valid in this state, allowed by the properties (§5.1–§5.3).
    pub(super) fn prepare_run(
        &self,
        session: &str,
        command: SessionCommand,
        now_ms: u64,
    ) -> Result<Effect, Refusal> {
        let s = self.session(session)?;
        if !s.available_commands().contains(&command.action()) {
            return Err(self.not_valid(s, command.name()));
        }
        let (serial, route) = self.route(s)?;
        let start = |steps: Vec<StorageOp>| Start {
            session: session.to_owned(),
            serial: serial.clone(),
            route: route.clone(),
            steps,
            purpose: Purpose::Command(command),
        };
        let started = |steps| {
            let mut e = Effect::done(
                ids::COMMAND_STARTED,
                Some(session),
                format!(
                    "The {} command in the {session} session was started.",
                    describe_run(command)
                ),
            );
            e.start = Some(start(steps));
            e
        };
        let plan = match &s.properties {
            Properties::Fc(p) => super::kinds::fc::plan(s, p, command, now_ms)?,
            Properties::Sgc(p) => super::kinds::sgc::plan(s, p, command, now_ms)?,
            Properties::Mm(p) | Properties::Hs(p) => super::kinds::mm::plan(s, p, command)?,
        };
        match plan {
            Plan::Steps(steps) => Ok(started(steps)),
            Plan::Done { next, text } => {
                let effect = Effect::done(ids::COMMAND_COMPLETED, Some(session), text);
                Ok(match next {
                    Some(next) => effect.with(Record::Session(*next)),
                    None => effect,
                })
            }
            Plan::NotValid => Err(self.not_valid(s, command.name())),
        }
    }
}

/// `Recover Backup 1700000000` in messages.
pub(super) fn describe_run(command: SessionCommand) -> String {
    match command.backup() {
        Some(id) => format!("{} {id}", command.name()),
        None => command.name().to_owned(),
    }
}

pub(super) fn task_effect(task: Task, text: String) -> Effect {
    Effect::done(ids::CHANGED, Some(&task.session.clone()), text).with(Record::Task(task))
}

pub(super) fn grant_for(role: Role, grant: Option<OperatorGrant>) -> Option<OperatorGrant> {
    (role == Role::Operator).then(|| {
        grant.unwrap_or(OperatorGrant {
            sessions: SessionScope::Named(Default::default()),
            actions: ActionScope::Default,
        })
    })
}

pub(super) fn unknown_system(name: &str) -> Refusal {
    Refusal::bad(
        codes::UNKNOWN_SYSTEM,
        format!("there is no storage system or host connection {name}"),
    )
}

pub(super) fn retention_refusal(r: RetentionRefusal) -> Refusal {
    Refusal::policy(r.code(), r.to_string())
}

pub(super) fn kind_text(kind: crate::ds8k::ids::VolumeKind) -> String {
    match kind {
        crate::ds8k::ids::VolumeKind::Ckd { cylinders } => format!("CKD, {cylinders} cylinders"),
        crate::ds8k::ids::VolumeKind::Fb { blocks } => format!("FB, {blocks} blocks"),
    }
}
