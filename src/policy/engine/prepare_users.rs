//! Preparing user commands: create, role and grant, password, remove (`protocol-specs/policy.md` §1).

use super::commands::*;
use super::{Command, Effect, Engine, Refusal, codes};
use crate::policy::access::{Principal, Role};
use crate::policy::console::ids;
use crate::policy::engine::state::{Record, User};

impl Engine {
    /// A user command, checked; nothing changes yet.
    pub(super) fn prepare_user(
        &self,
        principal: &Principal,
        command: &Command,
    ) -> Result<Effect, Refusal> {
        match command {
            Command::CreateUser {
                name,
                role,
                grant,
                password_hash,
            } => {
                check_name("a user name", name, MAX_USER_NAME)?;
                check_hash(password_hash)?;
                // User names are unique without regard to case: the CSM protocol's
                // client upper-cases them (policy.md §1.1).
                if let Some(taken) = self
                    .state
                    .users
                    .keys()
                    .find(|k| k.eq_ignore_ascii_case(name))
                {
                    return Err(Refusal::bad(
                        codes::BAD_USER,
                        format!(
                            "user {taken} exists already (user names are compared without regard to case)"
                        ),
                    ));
                }
                let user = User {
                    name: name.clone(),
                    role: *role,
                    grant: grant_for(*role, grant.clone()),
                    password_hash: password_hash.clone(),
                    id: self.state.next_user,
                    generation: 0,
                };
                Ok(Effect::done(
                    ids::CHANGED,
                    None,
                    format!("User {name} was created with the {} role.", role.name()),
                )
                .with(Record::User(user)))
            }
            Command::SetUserRole { name, role, grant } => {
                let mut user = self.user(name)?.clone();
                if user.role == Role::Administrator && *role != Role::Administrator {
                    self.keep_an_administrator(name)?;
                }
                user.role = *role;
                user.grant = grant_for(*role, grant.clone());
                // Credentials issued under the old role end (policy.md §1.4).
                user.generation += 1;
                Ok(Effect::done(
                    ids::CHANGED,
                    None,
                    format!("User {name} now has the {} role.", role.name()),
                )
                .with(Record::User(user)))
            }
            Command::SetPassword {
                name,
                password_hash,
            } => {
                check_hash(password_hash)?;
                let mut user = self.user(name)?.clone();
                user.password_hash = password_hash.clone();
                user.generation += 1;
                Ok(Effect::done(
                    ids::CHANGED,
                    None,
                    format!("The password of user {name} was changed."),
                )
                .with(Record::User(user)))
            }
            Command::RemoveUser { name } => {
                let user = self.user(name)?;
                if *name == principal.user {
                    return Err(Refusal::bad(codes::BAD_USER, "a user cannot remove itself"));
                }
                if user.role == Role::Administrator {
                    self.keep_an_administrator(name)?;
                }
                Ok(
                    Effect::done(ids::CHANGED, None, format!("User {name} was removed."))
                        .with(Record::UserRemoved(name.clone())),
                )
            }
            _ => Err(Refusal::bad(codes::BAD_PROPERTY, "not a user command")),
        }
    }
}
