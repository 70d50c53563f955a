//! Who may do what: CSM's user roles, and the sessions and actions an Operator is
//! granted (`protocol-specs/policy.md` §1). Every refusal names what is missing.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// CSM's roles, from least to most access; a user holding several gets the greatest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Views everything, changes nothing.
    Monitor,
    /// Runs the actions granted on the sessions granted.
    Operator,
    /// Manages users and their grants only.
    UserAdministrator,
    /// Everything.
    Administrator,
}

impl Role {
    /// The name CSM shows.
    pub fn name(self) -> &'static str {
        match self {
            Role::Monitor => "Monitor",
            Role::Operator => "Operator",
            Role::UserAdministrator => "User Administrator",
            Role::Administrator => "Administrator",
        }
    }
}

/// The categories of CSM's operator wizard ("What actions should the operator be
/// allowed to perform?").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ActionCategory {
    /// Metro Mirror and HyperSwap commands (Start H1->H2, Suspend, Recover, ...).
    RemoteCopy,
    /// FlashCopy and Safeguarded Copy commands.
    PointInTimeCopy,
    /// Everything else done to a session.
    Misc,
}

impl ActionCategory {
    /// The name CSM shows.
    pub fn name(self) -> &'static str {
        match self {
            ActionCategory::RemoteCopy => "Remote Copy",
            ActionCategory::PointInTimeCopy => "Point in Time Copy",
            ActionCategory::Misc => "Misc",
        }
    }
}

/// An action on one session, grantable to an Operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SessionAction {
    /// `Flash` (FC).
    Flash,
    /// `Initiate Background Copy` (FC; SGC after a recover).
    InitiateBackgroundCopy,
    /// `Terminate`.
    Terminate,
    /// `Backup` (SGC).
    Backup,
    /// `Recover Backup` (SGC).
    RecoverBackup,
    /// `Expire Backup` (SGC).
    ExpireBackup,
    /// `Restore Backup to Production` (SGC).
    RestoreBackupToProduction,
    /// `TerminateH1R1` (SGC).
    TerminateH1R1,
    /// `Refresh States`.
    RefreshStates,
    /// Changing the session's properties.
    ModifyProperties,
    /// Adding copy sets.
    AddCopySets,
    /// Removing copy sets.
    RemoveCopySets,
    /// Creating, changing, enabling, disabling, running or deleting the session's
    /// scheduled tasks.
    ManageScheduledTasks,
    /// Removing the session.
    RemoveSession,
    /// `Start H1->H2` (MM, HS): paths, pairs, HyperSwap loaded and enabled.
    StartH1H2,
    /// `Start H2->H1` (MM, HS): the pairs mirror from H2.
    StartH2H1,
    /// `Suspend` (MM, HS): freeze the consistency group, with the session's policy.
    Suspend,
    /// `Stop` (MM, HS): suspend the pairs without a freeze.
    Stop,
    /// `Recover` (MM, HS): the secondaries become usable (failover).
    Recover,
    /// `HyperSwap` (MM, HS): a planned swap through z/OS.
    HyperSwap,
}

impl SessionAction {
    /// Every action, in the order lists show them.
    pub const ALL: [SessionAction; 20] = [
        SessionAction::Flash,
        SessionAction::InitiateBackgroundCopy,
        SessionAction::Terminate,
        SessionAction::Backup,
        SessionAction::RecoverBackup,
        SessionAction::ExpireBackup,
        SessionAction::RestoreBackupToProduction,
        SessionAction::TerminateH1R1,
        SessionAction::RefreshStates,
        SessionAction::ModifyProperties,
        SessionAction::AddCopySets,
        SessionAction::RemoveCopySets,
        SessionAction::ManageScheduledTasks,
        SessionAction::RemoveSession,
        SessionAction::StartH1H2,
        SessionAction::StartH2H1,
        SessionAction::Suspend,
        SessionAction::Stop,
        SessionAction::Recover,
        SessionAction::HyperSwap,
    ];

    /// The name CSM uses (the command name for commands).
    pub fn name(self) -> &'static str {
        match self {
            SessionAction::Flash => "Flash",
            SessionAction::InitiateBackgroundCopy => "Initiate Background Copy",
            SessionAction::Terminate => "Terminate",
            SessionAction::Backup => "Backup",
            SessionAction::RecoverBackup => "Recover Backup",
            SessionAction::ExpireBackup => "Expire Backup",
            SessionAction::RestoreBackupToProduction => "Restore Backup to Production",
            SessionAction::TerminateH1R1 => "TerminateH1R1",
            SessionAction::RefreshStates => "Refresh States",
            SessionAction::ModifyProperties => "Modify Session Properties",
            SessionAction::AddCopySets => "Add Copy Sets",
            SessionAction::RemoveCopySets => "Remove Copy Sets",
            SessionAction::ManageScheduledTasks => "Manage Scheduled Tasks",
            SessionAction::RemoveSession => "Remove Session",
            SessionAction::StartH1H2 => "Start H1->H2",
            SessionAction::StartH2H1 => "Start H2->H1",
            SessionAction::Suspend => "Suspend",
            SessionAction::Stop => "Stop",
            SessionAction::Recover => "Recover",
            SessionAction::HyperSwap => "HyperSwap",
        }
    }

    /// The action named `name` (CSM's spelling, case-insensitive).
    pub fn parse(name: &str) -> Option<SessionAction> {
        SessionAction::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// Its category in the operator wizard (policy.md §1.2).
    pub fn category(self) -> ActionCategory {
        match self {
            SessionAction::Flash
            | SessionAction::InitiateBackgroundCopy
            | SessionAction::Terminate
            | SessionAction::Backup
            | SessionAction::RecoverBackup
            | SessionAction::ExpireBackup
            | SessionAction::RestoreBackupToProduction
            | SessionAction::TerminateH1R1 => ActionCategory::PointInTimeCopy,
            SessionAction::RefreshStates
            | SessionAction::ModifyProperties
            | SessionAction::AddCopySets
            | SessionAction::RemoveCopySets
            | SessionAction::ManageScheduledTasks
            | SessionAction::RemoveSession => ActionCategory::Misc,
            SessionAction::StartH1H2
            | SessionAction::StartH2H1
            | SessionAction::Suspend
            | SessionAction::Stop
            | SessionAction::Recover
            | SessionAction::HyperSwap => ActionCategory::RemoteCopy,
        }
    }
}

/// An action on the server rather than on one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ServerAction {
    /// Adding, changing and removing users, their roles and grants.
    ManageUsers,
    /// Adding, changing and removing storage systems.
    ManageStorageSystems,
    /// Adding, changing and removing z/OS and z/TPF host connections.
    ManageHostConnections,
    /// Creating a session (its creator, if an Operator, is granted it).
    CreateSession,
    /// Requesting or approving a change of the dual-control mode.
    ChangeDualControl,
    /// Changing a server property (policy.md §10).
    ChangeServerProperties,
}

impl ServerAction {
    /// The name lists and messages use.
    pub fn name(self) -> &'static str {
        match self {
            ServerAction::ManageUsers => "Manage Users",
            ServerAction::ManageStorageSystems => "Manage Storage Systems",
            ServerAction::ManageHostConnections => "Manage Host Connections",
            ServerAction::CreateSession => "Create Session",
            ServerAction::ChangeDualControl => "Change Dual Control",
            ServerAction::ChangeServerProperties => "Change Server Properties",
        }
    }
}

/// Which sessions an Operator manages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionScope {
    /// "Manage all sessions", including ones created later.
    All,
    /// "Select sessions to manage".
    Named(BTreeSet<String>),
}

/// Which actions an Operator may run on the sessions it manages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionScope {
    /// "Default operator actions against managed sessions": every session action.
    Default,
    /// "Select which actions to allow against managed sessions".
    Selected(BTreeSet<SessionAction>),
}

/// An Operator's grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorGrant {
    /// The sessions.
    pub sessions: SessionScope,
    /// The actions on them.
    pub actions: ActionScope,
}

impl OperatorGrant {
    /// Whether `session` is managed.
    pub fn manages(&self, session: &str) -> bool {
        match &self.sessions {
            SessionScope::All => true,
            SessionScope::Named(names) => names.contains(session),
        }
    }

    /// Whether `action` is allowed on managed sessions.
    pub fn allows(&self, action: SessionAction) -> bool {
        match &self.actions {
            ActionScope::Default => true,
            ActionScope::Selected(actions) => actions.contains(&action),
        }
    }
}

/// Who is asking: a user, the role it holds and, for an Operator, its grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The user name.
    pub user: String,
    /// The role.
    pub role: Role,
    /// The grant (Operators; ignored for other roles).
    pub grant: Option<OperatorGrant>,
}

/// Why an action is refused, naming what is missing (policy.md §1.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessRefusal {
    /// A Monitor changes nothing.
    #[error("{user} is a Monitor: {action} changes the server and Monitors may only view")]
    ReadOnly {
        /// The user.
        user: String,
        /// The action refused.
        action: &'static str,
    },
    /// The role never allows this action, whatever the grant.
    #[error("{user} has the {role} role: {action} needs the {needs} role")]
    RoleTooLow {
        /// The user.
        user: String,
        /// Its role's name.
        role: &'static str,
        /// The action refused.
        action: &'static str,
        /// The least role that allows it.
        needs: &'static str,
    },
    /// The Operator does not manage this session.
    #[error("{user} is not granted session {session}: {action} needs a grant of that session")]
    SessionNotGranted {
        /// The user.
        user: String,
        /// The session.
        session: String,
        /// The action refused.
        action: &'static str,
    },
    /// The Operator manages the session but is not granted the action.
    #[error("{user} is not granted the {category} action {action} on session {session}")]
    ActionNotGranted {
        /// The user.
        user: String,
        /// The session.
        session: String,
        /// The action refused.
        action: &'static str,
        /// Its category.
        category: &'static str,
    },
}

impl AccessRefusal {
    /// The reason code (policy.md §1.3).
    pub fn code(&self) -> u16 {
        match self {
            AccessRefusal::ReadOnly { .. } => 0x1101,
            AccessRefusal::RoleTooLow { .. } => 0x1102,
            AccessRefusal::SessionNotGranted { .. } => 0x1103,
            AccessRefusal::ActionNotGranted { .. } => 0x1104,
        }
    }
}

impl Principal {
    /// May this principal run `action` on `session`? (policy.md §1.1)
    pub fn may_run(&self, session: &str, action: SessionAction) -> Result<(), AccessRefusal> {
        let user = || self.user.clone();
        match self.role {
            Role::Administrator => Ok(()),
            Role::Monitor => Err(AccessRefusal::ReadOnly {
                user: user(),
                action: action.name(),
            }),
            Role::UserAdministrator => Err(AccessRefusal::RoleTooLow {
                user: user(),
                role: self.role.name(),
                action: action.name(),
                needs: Role::Operator.name(),
            }),
            Role::Operator => {
                let grant = self.grant.as_ref().filter(|g| g.manages(session));
                let Some(grant) = grant else {
                    return Err(AccessRefusal::SessionNotGranted {
                        user: user(),
                        session: session.to_string(),
                        action: action.name(),
                    });
                };
                if grant.allows(action) {
                    Ok(())
                } else {
                    Err(AccessRefusal::ActionNotGranted {
                        user: user(),
                        session: session.to_string(),
                        action: action.name(),
                        category: action.category().name(),
                    })
                }
            }
        }
    }

    /// May this principal perform `action` on the server? (policy.md §1.1)
    pub fn may_perform(&self, action: ServerAction) -> Result<(), AccessRefusal> {
        let needs = match action {
            ServerAction::CreateSession => Role::Operator,
            ServerAction::ManageUsers | ServerAction::ChangeDualControl => Role::UserAdministrator,
            ServerAction::ManageStorageSystems
            | ServerAction::ManageHostConnections
            | ServerAction::ChangeServerProperties => Role::Administrator,
        };
        let allowed = match self.role {
            Role::Administrator => true,
            Role::UserAdministrator => needs == Role::UserAdministrator,
            Role::Operator => needs == Role::Operator,
            Role::Monitor => false,
        };
        match (allowed, self.role) {
            (true, _) => Ok(()),
            (false, Role::Monitor) => Err(AccessRefusal::ReadOnly {
                user: self.user.clone(),
                action: action.name(),
            }),
            (false, role) => Err(AccessRefusal::RoleTooLow {
                user: self.user.clone(),
                role: role.name(),
                action: action.name(),
                needs: needs.name(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, grant: Option<OperatorGrant>) -> Principal {
        Principal {
            user: "OPER1".into(),
            role,
            grant,
        }
    }

    fn named(sessions: &[&str], actions: Option<&[SessionAction]>) -> OperatorGrant {
        OperatorGrant {
            sessions: SessionScope::Named(sessions.iter().map(|s| s.to_string()).collect()),
            actions: match actions {
                None => ActionScope::Default,
                Some(a) => ActionScope::Selected(a.iter().copied().collect()),
            },
        }
    }

    #[test]
    fn an_operator_may_backup_but_not_expire_and_the_refusal_names_the_grant() {
        let op = principal(
            Role::Operator,
            Some(named(&["SGC1"], Some(&[SessionAction::Backup]))),
        );
        assert_eq!(op.may_run("SGC1", SessionAction::Backup), Ok(()));
        let refusal = op.may_run("SGC1", SessionAction::ExpireBackup).unwrap_err();
        assert_eq!(refusal.code(), 0x1104);
        assert_eq!(
            refusal.to_string(),
            "OPER1 is not granted the Point in Time Copy action Expire Backup on session SGC1"
        );
        let other = op.may_run("FC1", SessionAction::Backup).unwrap_err();
        assert_eq!(other.code(), 0x1103);
        assert!(other.to_string().contains("session FC1"), "{other}");
    }

    #[test]
    fn default_actions_and_all_sessions_cover_everything_including_later_sessions() {
        let op = principal(
            Role::Operator,
            Some(OperatorGrant {
                sessions: SessionScope::All,
                actions: ActionScope::Default,
            }),
        );
        for action in SessionAction::ALL {
            assert_eq!(op.may_run("CREATED_LATER", action), Ok(()));
        }
        // An Operator without a grant manages nothing.
        let bare = principal(Role::Operator, None);
        assert_eq!(
            bare.may_run("SGC1", SessionAction::RefreshStates)
                .unwrap_err()
                .code(),
            0x1103
        );
    }

    #[test]
    fn roles_other_than_operator_ignore_grants() {
        let grant = Some(named(&["SGC1"], None));
        let monitor = principal(Role::Monitor, grant.clone());
        let useradmin = principal(Role::UserAdministrator, grant.clone());
        let admin = principal(Role::Administrator, None);
        for action in SessionAction::ALL {
            assert_eq!(monitor.may_run("SGC1", action).unwrap_err().code(), 0x1101);
            assert_eq!(
                useradmin.may_run("SGC1", action).unwrap_err().code(),
                0x1102
            );
            assert_eq!(admin.may_run("SGC1", action), Ok(()));
        }
    }

    #[test]
    fn server_actions_follow_the_role_table() {
        use ServerAction::*;
        let table = [
            // action, Monitor, Operator, User Administrator, Administrator
            (ManageUsers, [false, false, true, true]),
            (ManageStorageSystems, [false, false, false, true]),
            (ManageHostConnections, [false, false, false, true]),
            (CreateSession, [false, true, false, true]),
            (ChangeDualControl, [false, false, true, true]),
            (ChangeServerProperties, [false, false, false, true]),
        ];
        let roles = [
            Role::Monitor,
            Role::Operator,
            Role::UserAdministrator,
            Role::Administrator,
        ];
        for (action, allowed) in table {
            for (role, allowed) in roles.into_iter().zip(allowed) {
                let result = principal(role, None).may_perform(action);
                assert_eq!(result.is_ok(), allowed, "{role:?} {action:?}: {result:?}");
            }
        }
        let refusal = principal(Role::Operator, None)
            .may_perform(ManageUsers)
            .unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "OPER1 has the Operator role: Manage Users needs the User Administrator role"
        );
    }

    #[test]
    fn action_names_parse_back_case_insensitively() {
        for action in SessionAction::ALL {
            assert_eq!(SessionAction::parse(action.name()), Some(action));
            assert_eq!(
                SessionAction::parse(&action.name().to_uppercase()),
                Some(action)
            );
        }
        assert_eq!(SessionAction::parse("Flash "), None);
    }
}
