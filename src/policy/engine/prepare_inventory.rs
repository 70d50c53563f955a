//! Preparing storage-system and host-connection commands (`protocol-specs/policy.md` §4).

use super::commands::*;
use super::{Command, DISCOVERIES_PER_MINUTE, Effect, Engine, Finished, Refusal, codes};
use crate::policy::audit::AuditKind;
use crate::policy::console::ids;
use crate::policy::engine::state::Record;
use crate::policy::inventory::{Discover, Discovered, HostCredential};
use crate::policy::storage::ActionId;

/// A minute, in ms: the window of [`DISCOVERIES_PER_MINUTE`].
const MINUTE_MS: u64 = 60_000;

impl Engine {
    /// A storage-system or host-connection command, checked; nothing changes yet.
    pub(super) fn prepare_inventory(
        &self,
        command: &Command,
        now_ms: u64,
    ) -> Result<Effect, Refusal> {
        match command {
            Command::Discover(target) => {
                match target {
                    Discover::StorageSystem { address, user, .. } => {
                        check_name("an address", address, MAX_NAME)?;
                        check_name("a user", user, MAX_USER_NAME)?;
                    }
                    Discover::HostConnection {
                        address,
                        port,
                        user,
                        credential,
                        application,
                        ..
                    } => {
                        check_name("an address", address, MAX_NAME)?;
                        check_name("a user", user, MAX_USER_NAME)?;
                        if let Some(a) = application {
                            check_name("an application", a, MAX_NAME)?;
                        }
                        if *port == 0 {
                            return Err(Refusal::bad(
                                codes::BAD_PROPERTY,
                                "port 0 cannot be connected to",
                            ));
                        }
                        if matches!(credential, HostCredential::PassTicket { .. }) {
                            return Err(Refusal::bad(
                                codes::BAD_PROPERTY,
                                "a PassTicket host needs its system name: a PassTicket is made for one",
                            ));
                        }
                    }
                }
                let recent = self
                    .discovered_at
                    .iter()
                    .filter(|&&at| now_ms.saturating_sub(at) < MINUTE_MS)
                    .count();
                if recent >= DISCOVERIES_PER_MINUTE {
                    return Err(Refusal::bad(
                        codes::TOO_MANY_DISCOVERIES,
                        format!(
                            "at most {DISCOVERIES_PER_MINUTE} discovery logons a minute; try again shortly"
                        ),
                    ));
                }
                let mut effect = Effect::done(
                    ids::COMMAND_STARTED,
                    None,
                    format!("Logging on to {} to learn what it is.", target.address()),
                );
                effect.discover = Some(target.clone());
                Ok(effect)
            }
            Command::DefineStorageSystem(system) => {
                let ok = !system.serial.is_empty()
                    && system.serial.len() <= 16
                    && system.serial.bytes().all(|b| b.is_ascii_alphanumeric())
                    && system.serial == system.serial.to_ascii_uppercase();
                if !ok {
                    return Err(Refusal::bad(
                        codes::BAD_PROPERTY,
                        "a storage image serial is 1 to 16 upper-case letters and digits",
                    ));
                }
                check_name("an address", &system.address, MAX_NAME)?;
                check_name("a user", &system.user, MAX_USER_NAME)?;
                Ok(Effect::done(
                    ids::CHANGED,
                    None,
                    format!(
                        "Storage system {} at {} was defined.",
                        system.name(),
                        system.address
                    ),
                )
                .with(Record::StorageSystem(system.clone())))
            }
            Command::ReadVolumes { serial } => {
                if !self.state.systems.contains_key(serial) {
                    return Err(unknown_system(&format!("DS8000:BOX:2107.{serial}")));
                }
                let mut effect = Effect::done(
                    ids::COMMAND_STARTED,
                    None,
                    format!("Reading the volumes of storage system DS8000:BOX:2107.{serial}."),
                );
                effect.read_volumes = Some(serial.clone());
                Ok(effect)
            }
            Command::RemoveStorageSystem { serial } => {
                if !self.state.systems.contains_key(serial) {
                    return Err(unknown_system(&format!("DS8000:BOX:2107.{serial}")));
                }
                if let Some(s) = self
                    .state
                    .sessions
                    .values()
                    .find(|s| s.serial() == Some(serial))
                {
                    return Err(Refusal::bad(
                        codes::IN_USE,
                        format!(
                            "storage system DS8000:BOX:2107.{serial} holds copy sets of session {}",
                            s.name
                        ),
                    ));
                }
                Ok(Effect::done(
                    ids::CHANGED,
                    None,
                    format!("Storage system DS8000:BOX:2107.{serial} was removed."),
                )
                .with(Record::StorageSystemRemoved(serial.clone())))
            }
            Command::DefineHostConnection(host) => {
                check_name("a system name", &host.system, MAX_NAME)?;
                check_name("an address", &host.address, MAX_NAME)?;
                check_name("a user", &host.user, MAX_USER_NAME)?;
                if host.port == 0 {
                    return Err(Refusal::bad(
                        codes::BAD_PROPERTY,
                        "port 0 cannot be connected to",
                    ));
                }
                Ok(Effect::done(
                    ids::CHANGED,
                    None,
                    format!(
                        "Host connection {} at {}:{} was defined.",
                        host.system, host.address, host.port
                    ),
                )
                .with(Record::HostConnection(host.clone())))
            }
            Command::RemoveHostConnection { system } => {
                if !self.state.hosts.contains_key(system) {
                    return Err(unknown_system(system));
                }
                if let Some(s) = self
                    .state
                    .sessions
                    .values()
                    .find(|s| s.properties.host_system() == Some(system))
                {
                    return Err(Refusal::bad(
                        codes::IN_USE,
                        format!("session {} sends its commands through {system}", s.name),
                    ));
                }
                Ok(Effect::done(
                    ids::CHANGED,
                    None,
                    format!("Host connection {system} was removed."),
                )
                .with(Record::HostConnectionRemoved(system.clone())))
            }
            _ => Err(Refusal::bad(
                codes::BAD_PROPERTY,
                "not a storage-system or host command",
            )),
        }
    }
}

impl Engine {
    /// What discovery `id` learned (policy.md §4.2): the definition, its secret
    /// sealed under its own name, or why the logon failed. The definition is
    /// checked again (the caller may have lost its role meanwhile) and carried out
    /// as the caller; the door that started it is told how it ended.
    pub fn handle_discovery(
        &mut self,
        id: ActionId,
        found: Result<Discovered, String>,
        now_ms: u64,
    ) {
        self.expire_discoveries(now_ms);
        let Some((by, target)) = self.discovering.remove(&id) else {
            return;
        };
        // The definition found, if it is the one asked for; else why not.
        let definition = match found {
            Err(why) => Err(format!("The logon to {} failed: {why}", target.address())),
            Ok(Discovered::StorageSystem(s)) => match &target {
                Discover::StorageSystem { address, user, .. }
                    if s.address == *address && s.user == *user =>
                {
                    Ok(Command::DefineStorageSystem(s))
                }
                _ => Err(format!(
                    "The logon to {} answered for another definition.",
                    target.address()
                )),
            },
            Ok(Discovered::HostConnection(h)) => match &target {
                Discover::HostConnection {
                    address,
                    port,
                    user,
                    kind,
                    ..
                } if h.address == *address
                    && h.port == *port
                    && h.user == *user
                    && h.kind == *kind =>
                {
                    Ok(Command::DefineHostConnection(h))
                }
                _ => Err(format!(
                    "The logon to {} answered for another definition.",
                    target.address()
                )),
            },
        };
        let reply = match definition {
            Ok(command) => self.define_discovered(&by, command, now_ms),
            Err(text) => {
                let reply = self.reply(
                    super::Outcome::Refused(0),
                    ids::STORAGE_FAILED,
                    None,
                    text,
                    now_ms,
                );
                let what = super::describe(&Command::Discover(target));
                self.audit(
                    now_ms,
                    &by,
                    &what,
                    "-",
                    AuditKind::Action,
                    &reply.message.line(),
                );
                reply
            }
        };
        self.finished_out.push_back(Finished {
            action: id,
            message: Some(reply.message),
        });
    }

    /// The definition a discovery learned, carried out as `by` once its authority
    /// is checked again (the discovery itself passed the dual-control gate).
    fn define_discovered(&mut self, by: &str, command: Command, now_ms: u64) -> super::Reply {
        let Some(principal) = self.principal(by) else {
            let refusal = Refusal::new(
                codes::UNKNOWN_CALLER,
                ids::NOT_AUTHORIZED,
                format!("no user {by}"),
            );
            return self.refuse(by, &command, refusal, now_ms);
        };
        let checked = self
            .change_of(&command)
            .and_then(|change| self.authorize(&principal, &command, &change))
            .and_then(|()| self.prepare_inventory(&command, now_ms));
        match checked {
            Ok(effect) => {
                let reply = self.carry_out(effect, by, now_ms);
                self.audit_reply(by, &command, &reply, AuditKind::Action, now_ms);
                reply
            }
            Err(refusal) => self.refuse(by, &command, refusal, now_ms),
        }
    }

    /// Forgets discovery starts older than a minute.
    pub(super) fn expire_discoveries(&mut self, now_ms: u64) {
        while self
            .discovered_at
            .front()
            .is_some_and(|&at| now_ms.saturating_sub(at) >= MINUTE_MS)
        {
            self.discovered_at.pop_front();
        }
    }
}
