//! Dual control: actions that need a second user (`protocol-specs/policy.md` §2).
//! A gated action becomes a request; another user with authority for that very
//! action approves it (it then runs once, exactly as requested) or rejects it; the
//! requester may cancel it; unanswered requests expire.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::SessionType;
use super::access::{AccessRefusal, Principal, ServerAction, SessionAction};

/// The server's dual-control mode, part of its status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DualControlMode {
    /// No action needs a second user (changing the mode still does).
    #[default]
    Off,
    /// "Full Dual Control Mode": every action that changes the server.
    FullProtection,
    /// "Safeguarded Copy Dual Control Mode": the destructive actions on Safeguarded
    /// Copy sessions only.
    SafeguardedCopy,
}

impl DualControlMode {
    /// The name CSM shows.
    pub fn name(self) -> &'static str {
        match self {
            DualControlMode::Off => "Disable Dual Control",
            DualControlMode::FullProtection => "Full Dual Control Mode",
            DualControlMode::SafeguardedCopy => "Safeguarded Copy Dual Control Mode",
        }
    }
}

/// A change to a session's scheduled tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskChange {
    /// A new task.
    Create,
    /// Its schedule or actions changed.
    Modify,
    /// Enabled.
    Enable,
    /// Disabled.
    Disable,
    /// Run now.
    RunNow,
    /// Deleted.
    Delete,
}

/// What a user asks for, as the gate sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// A session action other than a scheduled-task change.
    Session {
        /// The session.
        session: String,
        /// Its type.
        kind: SessionType,
        /// The action.
        action: SessionAction,
    },
    /// A change to one of the session's scheduled tasks.
    Task {
        /// The session the task is tied to.
        session: String,
        /// Its type.
        kind: SessionType,
        /// The change.
        change: TaskChange,
    },
    /// A server action.
    Server(ServerAction),
    /// A new dual-control mode.
    Mode(DualControlMode),
}

impl Change {
    /// Whether `mode` makes this change wait for a second user (policy.md §2.1).
    pub fn is_gated(&self, mode: DualControlMode) -> bool {
        use SessionAction as A;
        match (self, mode) {
            (Change::Mode(_), _) => true,
            (_, DualControlMode::Off) => false,
            (Change::Session { action, .. }, DualControlMode::FullProtection) => {
                *action != A::RefreshStates
            }
            (Change::Task { .. } | Change::Server(_), DualControlMode::FullProtection) => true,
            (Change::Server(_), DualControlMode::SafeguardedCopy) => false,
            (Change::Session { kind, action, .. }, DualControlMode::SafeguardedCopy) => {
                *kind == SessionType::Sgc
                    && matches!(
                        action,
                        A::ExpireBackup
                            | A::RecoverBackup
                            | A::RestoreBackupToProduction
                            | A::Terminate
                            | A::TerminateH1R1
                            | A::ModifyProperties
                            | A::RemoveCopySets
                            | A::RemoveSession
                    )
            }
            (Change::Task { kind, change, .. }, DualControlMode::SafeguardedCopy) => {
                *kind == SessionType::Sgc
                    && matches!(
                        change,
                        TaskChange::Modify | TaskChange::Disable | TaskChange::Delete
                    )
            }
        }
    }

    /// The change in words, for a request whose command is not at hand.
    pub fn describe(&self) -> String {
        match self {
            Change::Session {
                session, action, ..
            } => format!("{} on session {session}", action.name()),
            Change::Task { session, .. } => format!("a scheduled task of session {session}"),
            Change::Server(action) => action.name().to_owned(),
            Change::Mode(mode) => format!("Set Dual Control Mode to {}", mode.name()),
        }
    }

    /// Whether `who` has authority for this change itself (to request or approve it).
    pub fn authorized(&self, who: &Principal) -> Result<(), AccessRefusal> {
        match self {
            Change::Session {
                session, action, ..
            } => who.may_run(session, *action),
            Change::Task { session, .. } => {
                who.may_run(session, SessionAction::ManageScheduledTasks)
            }
            Change::Server(action) => who.may_perform(*action),
            Change::Mode(_) => who.may_perform(ServerAction::ChangeDualControl),
        }
    }
}

/// A request's number, unique for the life of the server.
pub type RequestId = u64;

/// A pending request: who asked for what, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Its number.
    pub id: RequestId,
    /// Who asked.
    pub requester: String,
    /// What for.
    pub change: Change,
    /// When, ms since the epoch.
    pub created_ms: u64,
    /// When it expires unanswered.
    pub expires_ms: u64,
}

/// Why a dual-control step is refused (policy.md §2.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DualControlError {
    /// No pending request has this id (answered, cancelled, expired, or never made).
    #[error("no pending dual control request {0}")]
    UnknownRequest(RequestId),
    /// The requester tried to approve or reject its own request.
    #[error("{user} made request {id} and cannot approve or reject it; another user must")]
    OwnRequest {
        /// The user.
        user: String,
        /// The request.
        id: RequestId,
    },
    /// Only the requester may cancel.
    #[error("request {id} was made by {requester}; only they may cancel it")]
    NotRequester {
        /// The request.
        id: RequestId,
        /// Who made it.
        requester: String,
    },
    /// The approver lacks authority for the requested action.
    #[error("cannot approve request {id}: {refusal}")]
    NoAuthority {
        /// The request.
        id: RequestId,
        /// What is missing.
        refusal: AccessRefusal,
    },
}

impl DualControlError {
    /// The reason code (policy.md §2.3).
    pub fn code(&self) -> u16 {
        match self {
            DualControlError::UnknownRequest(_) => 0x1201,
            DualControlError::OwnRequest { .. } => 0x1202,
            DualControlError::NotRequester { .. } => 0x1203,
            DualControlError::NoAuthority { refusal, .. } => refusal.code(),
        }
    }
}

/// The default life of an unanswered request: 24 hours (IBM does not document one).
pub const DEFAULT_REQUEST_LIFETIME_MS: u64 = 24 * 60 * 60 * 1000;

/// The mode and the pending requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DualControl {
    mode: DualControlMode,
    pending: BTreeMap<RequestId, Request>,
    next_id: RequestId,
    lifetime_ms: u64,
}

impl Default for DualControl {
    fn default() -> Self {
        DualControl::new(DualControlMode::Off, DEFAULT_REQUEST_LIFETIME_MS)
    }
}

impl DualControl {
    /// A server in `mode` whose requests live `lifetime_ms`.
    pub fn new(mode: DualControlMode, lifetime_ms: u64) -> DualControl {
        DualControl {
            mode,
            pending: BTreeMap::new(),
            next_id: 1,
            lifetime_ms,
        }
    }

    /// The current mode.
    pub fn mode(&self) -> DualControlMode {
        self.mode
    }

    /// Requests filed from now on live `lifetime_ms` (a server property, policy.md §10).
    pub fn set_lifetime_ms(&mut self, lifetime_ms: u64) {
        self.lifetime_ms = lifetime_ms;
    }

    /// The pending requests, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &Request> {
        self.pending.values()
    }

    /// Files `change` for a second user if the mode gates it (`Ok(Some(id))`); `Ok(None)`
    /// means it may run now. The requester needs authority for the change itself.
    pub fn submit(
        &mut self,
        requester: &Principal,
        change: Change,
        now_ms: u64,
    ) -> Result<Option<RequestId>, AccessRefusal> {
        change.authorized(requester)?;
        if !change.is_gated(self.mode) {
            return Ok(None);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(
            id,
            Request {
                id,
                requester: requester.user.clone(),
                change,
                created_ms: now_ms,
                expires_ms: now_ms.saturating_add(self.lifetime_ms),
            },
        );
        Ok(Some(id))
    }

    /// Approves request `id`: it leaves the table and is returned to be run, once.
    /// An approved mode change takes effect here.
    pub fn approve(
        &mut self,
        id: RequestId,
        approver: &Principal,
        now_ms: u64,
    ) -> Result<Request, DualControlError> {
        self.answerable(id, approver, now_ms)?;
        let request = self.take(id)?;
        if let Change::Mode(mode) = request.change {
            self.mode = mode;
        }
        Ok(request)
    }

    /// Rejects request `id` (the caller records the comment).
    pub fn reject(
        &mut self,
        id: RequestId,
        approver: &Principal,
        now_ms: u64,
    ) -> Result<Request, DualControlError> {
        self.answerable(id, approver, now_ms)?;
        self.take(id)
    }

    /// Cancels request `id`; only its requester may.
    pub fn cancel(
        &mut self,
        id: RequestId,
        requester: &Principal,
        now_ms: u64,
    ) -> Result<Request, DualControlError> {
        self.expire(now_ms);
        let request = self
            .pending
            .get(&id)
            .ok_or(DualControlError::UnknownRequest(id))?;
        if request.requester != requester.user {
            return Err(DualControlError::NotRequester {
                id,
                requester: request.requester.clone(),
            });
        }
        self.take(id)
    }

    /// Removes and returns the requests whose time has passed.
    pub fn expire(&mut self, now_ms: u64) -> Vec<Request> {
        let expired: Vec<RequestId> = self
            .pending
            .values()
            .filter(|r| r.expires_ms <= now_ms)
            .map(|r| r.id)
            .collect();
        expired
            .into_iter()
            .filter_map(|id| self.pending.remove(&id))
            .collect()
    }

    fn answerable(
        &mut self,
        id: RequestId,
        approver: &Principal,
        now_ms: u64,
    ) -> Result<(), DualControlError> {
        self.expire(now_ms);
        let request = self
            .pending
            .get(&id)
            .ok_or(DualControlError::UnknownRequest(id))?;
        if request.requester == approver.user {
            return Err(DualControlError::OwnRequest {
                user: approver.user.clone(),
                id,
            });
        }
        request
            .change
            .authorized(approver)
            .map_err(|refusal| DualControlError::NoAuthority { id, refusal })
    }

    fn take(&mut self, id: RequestId) -> Result<Request, DualControlError> {
        self.pending
            .remove(&id)
            .ok_or(DualControlError::UnknownRequest(id))
    }
}

#[cfg(test)]
mod tests {
    use super::super::access::{ActionScope, OperatorGrant, Role, SessionScope};
    use super::*;

    fn user(name: &str, role: Role) -> Principal {
        Principal {
            user: name.into(),
            role,
            grant: (role == Role::Operator).then_some(OperatorGrant {
                sessions: SessionScope::All,
                actions: ActionScope::Default,
            }),
        }
    }

    fn on(session: &str, kind: SessionType, action: SessionAction) -> Change {
        Change::Session {
            session: session.into(),
            kind,
            action,
        }
    }

    fn task(change: TaskChange) -> Change {
        Change::Task {
            session: "SGC1".into(),
            kind: SessionType::Sgc,
            change,
        }
    }

    fn expire_sgc() -> Change {
        on("SGC1", SessionType::Sgc, SessionAction::ExpireBackup)
    }

    #[test]
    fn safeguarded_copy_mode_gates_expire_but_not_backup_nor_fc_sessions() {
        let mut dc = DualControl::new(DualControlMode::SafeguardedCopy, 1000);
        let op = user("OPER1", Role::Operator);
        let backup = on("SGC1", SessionType::Sgc, SessionAction::Backup);
        assert_eq!(dc.submit(&op, backup, 0), Ok(None));
        let fc_terminate = on("FC1", SessionType::Fc, SessionAction::Terminate);
        assert_eq!(dc.submit(&op, fc_terminate, 0), Ok(None));
        assert_eq!(dc.submit(&op, task(TaskChange::Create), 0), Ok(None));
        assert_eq!(dc.submit(&op, task(TaskChange::Disable), 0), Ok(Some(1)));
        assert_eq!(dc.submit(&op, expire_sgc(), 0), Ok(Some(2)));
    }

    #[test]
    fn full_protection_gates_every_change_but_refresh() {
        let mut dc = DualControl::new(DualControlMode::FullProtection, 1000);
        let admin = user("ADMIN1", Role::Administrator);
        for action in SessionAction::ALL {
            let gated = dc
                .submit(&admin, on("FC1", SessionType::Fc, action), 0)
                .unwrap()
                .is_some();
            assert_eq!(gated, action != SessionAction::RefreshStates, "{action:?}");
        }
        assert!(
            dc.submit(&admin, Change::Server(ServerAction::ManageUsers), 0)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn the_requester_cannot_approve_another_authorised_user_approves_once() {
        let mut dc = DualControl::new(DualControlMode::SafeguardedCopy, 1000);
        let op1 = user("OPER1", Role::Operator);
        let op2 = user("OPER2", Role::Operator);
        let id = dc.submit(&op1, expire_sgc(), 0).unwrap().unwrap();
        assert_eq!(dc.approve(id, &op1, 1).unwrap_err().code(), 0x1202);
        let approved = dc.approve(id, &op2, 2).unwrap();
        assert_eq!(approved.change, expire_sgc());
        assert_eq!(approved.requester, "OPER1");
        assert_eq!(
            dc.approve(id, &op2, 3),
            Err(DualControlError::UnknownRequest(id))
        );
    }

    #[test]
    fn an_approver_needs_authority_for_that_very_action() {
        let mut dc = DualControl::new(DualControlMode::SafeguardedCopy, 1000);
        let op1 = user("OPER1", Role::Operator);
        let mut backup_only = user("OPER2", Role::Operator);
        backup_only.grant = Some(OperatorGrant {
            sessions: SessionScope::All,
            actions: ActionScope::Selected([SessionAction::Backup].into()),
        });
        let monitor = user("MON1", Role::Monitor);
        let id = dc.submit(&op1, expire_sgc(), 0).unwrap().unwrap();
        assert_eq!(dc.approve(id, &backup_only, 1).unwrap_err().code(), 0x1104);
        assert_eq!(dc.approve(id, &monitor, 1).unwrap_err().code(), 0x1101);
        assert_eq!(dc.reject(id, &monitor, 1).unwrap_err().code(), 0x1101);
        assert_eq!(dc.pending().count(), 1);
    }

    #[test]
    fn changing_the_mode_needs_two_administrators_even_when_off() {
        let mut dc = DualControl::default();
        let admin1 = user("ADMIN1", Role::Administrator);
        let useradmin = user("UADMIN", Role::UserAdministrator);
        let op = user("OPER1", Role::Operator);
        let to_sgc = Change::Mode(DualControlMode::SafeguardedCopy);
        assert_eq!(
            dc.submit(&op, to_sgc.clone(), 0).unwrap_err().code(),
            0x1102
        );
        let id = dc.submit(&admin1, to_sgc, 0).unwrap().unwrap();
        assert_eq!(dc.mode(), DualControlMode::Off);
        assert_eq!(dc.approve(id, &op, 1).unwrap_err().code(), 0x1102);
        dc.approve(id, &useradmin, 1).unwrap();
        assert_eq!(dc.mode(), DualControlMode::SafeguardedCopy);
    }

    #[test]
    fn only_the_requester_cancels_and_stale_requests_expire() {
        let mut dc = DualControl::new(DualControlMode::FullProtection, 1000);
        let a = user("ADMIN1", Role::Administrator);
        let b = user("ADMIN2", Role::Administrator);
        let change = Change::Server(ServerAction::ManageStorageSystems);
        let first = dc.submit(&a, change.clone(), 0).unwrap().unwrap();
        assert_eq!(dc.cancel(first, &b, 1).unwrap_err().code(), 0x1203);
        dc.cancel(first, &a, 1).unwrap();
        let second = dc.submit(&a, change, 10).unwrap().unwrap();
        assert_eq!(
            dc.approve(second, &b, 1010),
            Err(DualControlError::UnknownRequest(second))
        );
        assert_eq!(dc.pending().count(), 0);
        let third = dc
            .submit(&a, Change::Mode(DualControlMode::Off), 2000)
            .unwrap();
        let expired = dc.expire(2000 + DEFAULT_REQUEST_LIFETIME_MS);
        assert_eq!(expired.len(), 1);
        assert_eq!(Some(expired[0].id), third);
    }
}
