//! Preparing storage-system and host-connection commands (`protocol-specs/policy.md` §4).

use super::commands::*;
use super::{Command, Effect, Engine, Refusal, codes};
use crate::policy::console::ids;
use crate::policy::engine::state::Record;

impl Engine {
    /// A storage-system or host-connection command, checked; nothing changes yet.
    pub(super) fn prepare_inventory(&self, command: &Command) -> Result<Effect, Refusal> {
        match command {
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
