//! Time passing (`protocol-specs/policy.md` §7): request expiry, scheduled tasks,
//! retention, background-copy polls and inventory reads.

use std::collections::{BTreeMap, BTreeSet};

use super::{Engine, Outcome, State, Volatile};
use crate::policy::SessionType;
use crate::policy::audit::AuditKind;
use crate::policy::console::ids;
use crate::policy::engine::Start;
use crate::policy::engine::state::{Purpose, Record};
use crate::policy::session::{Properties, Session};
use crate::policy::storage::{ActionId, Route, StorageAction, StorageOp};

/// The read that follows a session's copy: its FlashCopy relationships, or its
/// Metro Mirror pairs on the primaries' image (the first pass, policy.md §5.8).
pub(super) fn copy_query(s: &crate::policy::session::Session) -> Option<StorageOp> {
    use crate::policy::storage::MirrorRequest;
    if !s.kind().mirrored() {
        return Some(StorageOp::QueryFlash { pairs: s.pairs() });
    }
    let source = s.mirror().source;
    Some(StorageOp::Mirror {
        at: s.serial_of(source)?.to_owned(),
        request: MirrorRequest::Query {
            volumes: s
                .copy_sets
                .iter()
                .filter_map(|c| c.at(source).map(|v| v.volume))
                .collect(),
        },
    })
}

/// What [`Engine::next_deadline`] would otherwise find by walking every session at
/// each wake-up of the gateway: the sessions whose background copy runs, and each
/// idle SGC session whose retention has backups due, with the newest of them. Kept
/// as the state changes (one session per record; all of them when a storage system
/// comes or goes), so a change costs the same with 100 sessions as with 20,000.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct SessionTimers {
    copying: BTreeSet<String>,
    retention: BTreeMap<String, u64>,
}

impl SessionTimers {
    /// Built from every session of `state`.
    pub(super) fn of(state: &State) -> SessionTimers {
        let mut timers = SessionTimers::default();
        for name in state.sessions.keys() {
            timers.refresh(state, name);
        }
        timers
    }

    /// Brought up to date after `record` was applied to `state`.
    pub(super) fn after(&mut self, state: &State, record: &Record) {
        match record {
            Record::Session(s) => self.refresh(state, &s.name),
            Record::SessionChanged { name, .. } | Record::SessionRemoved(name) => {
                self.refresh(state, name);
            }
            Record::StorageSystem(_) | Record::StorageSystemRemoved(_) => {
                *self = SessionTimers::of(state);
            }
            _ => {}
        }
    }

    fn refresh(&mut self, state: &State, name: &str) {
        let session = state.sessions.get(name);
        if session.is_some_and(|s| s.copying) {
            self.copying.insert(name.to_owned());
        } else {
            self.copying.remove(name);
        }
        match session.and_then(|s| retention_due(state, s)) {
            Some(newest) => {
                self.retention.insert(name.to_owned(), newest);
            }
            None => {
                self.retention.remove(name);
            }
        }
    }
}

/// The newest backup of `s` that retention expires now, if `s` is an idle SGC
/// session on a known storage system (§3.2: this depends on the backups alone).
fn retention_due(state: &State, s: &Session) -> Option<u64> {
    if s.busy.is_some() || s.kind() != SessionType::Sgc {
        return None;
    }
    if !s
        .serial()
        .is_some_and(|serial| state.systems.contains_key(serial))
    {
        return None;
    }
    let Properties::Sgc(p) = &s.properties else {
        return None;
    };
    if p.policy.retention_ms == 0 || s.backups().len() <= p.policy.min_kept {
        return None;
    }
    p.policy.due_for_expiry(s.backups()).last().map(|b| b.id)
}

impl Engine {
    /// Everything due at `now_ms`: expired requests, scheduled tasks, retention,
    /// background-copy polls.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.reconcile_if_due(now_ms);
        self.start_inspections(now_ms);
        self.expire_requests(now_ms);
        self.run_due_tasks(now_ms);
        self.apply_retention(now_ms);
        self.poll_copies(now_ms);
    }

    /// When [`Engine::handle_timeout`] next has work, if ever.
    pub fn next_deadline(&self) -> Option<u64> {
        let tasks = self
            .state
            .tasks
            .values()
            .filter(|t| t.enabled)
            .filter_map(|t| t.next_run_ms);
        let requests = self.state.dual.pending().map(|r| r.expires_ms);
        // After a restart nothing has armed the poll yet: a copying session makes the
        // next timeout due at once, which arms it.
        let unarmed = (self.next_poll_ms.is_none() && !self.timers.copying.is_empty()).then_some(0);
        // Which backups retention expires depends on the backups alone (§3.2), so it
        // is due as soon as a backup or a property change makes one expirable; a
        // session whose last command failed waits for the next timer instead of
        // retrying at once.
        let retention = self
            .retention_due()
            .iter()
            .any(|(name, _)| {
                self.state
                    .sessions
                    .get(name)
                    .is_some_and(|s| s.last_error.is_none())
            })
            .then_some(0);
        tasks
            .chain(requests)
            .chain(self.inspections.values().copied())
            .chain(self.reconcile_due())
            .chain(self.sweeps.values().copied())
            .chain(self.next_poll_ms)
            .chain(unarmed)
            .chain(retention)
            .min()
    }

    pub(super) fn start_volatile(
        &mut self,
        now_ms: u64,
        read: Volatile,
        serial: &str,
        route: Route,
        op: StorageOp,
    ) -> ActionId {
        let id = self.next_volatile;
        self.next_volatile += 1;
        self.volatile.insert(id, read);
        let not_after_ms = now_ms.saturating_add(self.config.storage_deadline_ms);
        self.storage_out.push_back(StorageAction {
            id,
            serial: serial.to_owned(),
            route,
            op,
            not_after_ms,
        });
        id
    }

    pub(super) fn expire_requests(&mut self, now_ms: u64) {
        if !self.state.dual.pending().any(|r| r.expires_ms <= now_ms) {
            return;
        }
        let mut table = self.state.dual.clone();
        let expired = table.expire(now_ms);
        let mut held = self.state.held.clone();
        for r in &expired {
            held.remove(&r.id);
        }
        self.commit(Record::DualControl { table, held });
        for r in expired {
            let text = format!(
                "Dual control request {} by {} expired unanswered; it will not run.",
                r.id, r.requester
            );
            self.audit(
                now_ms,
                "zgate",
                "Expire Request",
                &format!("request {}", r.id),
                AuditKind::Expiry,
                &text,
            );
            self.tell(ids::REQUEST_EXPIRED, None, text, now_ms);
        }
    }

    /// Runs each enabled task whose time has come, once, however many runs were
    /// missed (policy.md §7.2), as its owner.
    fn run_due_tasks(&mut self, now_ms: u64) {
        let due: Vec<u64> = self
            .state
            .tasks
            .values()
            .filter(|t| t.enabled && t.next_run_ms.is_some_and(|n| n <= now_ms))
            .map(|t| t.id)
            .collect();
        for id in due {
            let Some(mut task) = self.state.tasks.get(&id).cloned() else {
                continue;
            };
            let scheduled = task.next_run_ms.unwrap_or(now_ms);
            let missed = task.schedule.runs_between(scheduled, now_ms);
            if missed > 0 {
                self.tell(
                    ids::TASK_MISSED,
                    Some(&task.session),
                    format!(
                        "Scheduled task {} ({id}) missed {missed} runs while the server was down or busy; it runs once now.",
                        task.name
                    ),
                    now_ms,
                );
            }
            let reply = match self.principal(&task.owner) {
                Some(owner) => {
                    let prepared = owner
                        .may_run(&task.session, task.command.action())
                        .map_err(super::Refusal::from)
                        .and_then(|()| self.prepare_run(&task.session, task.command, now_ms));
                    match prepared {
                        Ok(effect) => {
                            self.carry_out(effect, &format!("scheduler ({})", task.owner), now_ms)
                        }
                        Err(refusal) => self.reply(
                            Outcome::Refused(refusal.code),
                            refusal.id,
                            Some(&task.session),
                            refusal.text,
                            now_ms,
                        ),
                    }
                }
                None => self.reply(
                    Outcome::Refused(super::codes::UNKNOWN_CALLER),
                    ids::NOT_AUTHORIZED,
                    Some(&task.session),
                    format!(
                        "the owner {} of scheduled task {id} no longer exists",
                        task.owner
                    ),
                    now_ms,
                ),
            };
            task.last_run_ms = Some(now_ms);
            task.last_result = Some(reply.message.line());
            task.next_run_ms = task.schedule.next_after(now_ms);
            task.enabled = task.next_run_ms.is_some();
            let (id_msg, text) = if matches!(reply.outcome, Outcome::Refused(_)) {
                (
                    ids::TASK_FAILED,
                    format!(
                        "The scheduled task {} failed: {}",
                        task.name,
                        reply.message.line()
                    ),
                )
            } else {
                (
                    ids::TASK_FINISHED,
                    format!("The scheduled task {} has finished running.", task.name),
                )
            };
            let session = task.session.clone();
            let who = format!("scheduler ({})", task.owner);
            self.commit(Record::Task(task));
            let kind = if matches!(reply.outcome, Outcome::Refused(_)) {
                AuditKind::Refusal
            } else {
                AuditKind::Action
            };
            self.audit(
                now_ms,
                &who,
                &format!("Run Scheduled Task {id}"),
                &session,
                kind,
                &reply.message.line(),
            );
            self.tell(id_msg, Some(&session), text, now_ms);
        }
    }

    /// The SGC sessions whose retention expires a backup now, with the newest backup
    /// due (§3.2): idle ones on a known storage system.
    fn retention_due(&self) -> Vec<(String, u64)> {
        self.timers
            .retention
            .iter()
            .map(|(name, newest)| (name.clone(), *newest))
            .collect()
    }

    /// Starts an expiry for each SGC session that retention says is due (§3.2).
    fn apply_retention(&mut self, now_ms: u64) {
        let due = self.retention_due();
        for (name, backup) in due {
            let Some(s) = self.state.sessions.get(&name) else {
                continue;
            };
            let Some(serial) = s.serial().map(str::to_owned) else {
                continue;
            };
            if !self.state.systems.contains_key(&serial) {
                continue;
            }
            let route = match s.properties.host_system() {
                Some(h) => Route::Host(h.to_owned()),
                None => Route::Hmc,
            };
            self.start_action(
                Start {
                    session: name,
                    serial,
                    route,
                    steps: vec![StorageOp::Expire { backup }],
                    purpose: Purpose::Retention,
                },
                "retention",
                now_ms,
            );
        }
    }

    pub(super) fn arm_copy_poll(&mut self, now_ms: u64) {
        let next = now_ms.saturating_add(self.copy_poll_interval_ms());
        self.next_poll_ms = Some(self.next_poll_ms.map_or(next, |t| t.min(next)));
    }

    /// Reads out-of-sync tracks of every copying FC session, once per interval.
    fn poll_copies(&mut self, now_ms: u64) {
        if self.next_poll_ms.is_none() {
            // After a restart: arm the poll if anything is copying.
            if !self.timers.copying.is_empty() {
                self.arm_copy_poll(now_ms);
            }
            return;
        }
        if self.next_poll_ms.is_some_and(|t| t > now_ms) {
            return;
        }
        self.next_poll_ms = None;
        let copying: Vec<(String, String, StorageOp)> = self
            .state
            .sessions
            .values()
            .filter(|s| s.copying && s.busy.is_none())
            .filter_map(|s| Some((s.name.clone(), s.serial()?.to_owned(), copy_query(s)?)))
            .collect();
        for (name, serial, op) in copying {
            let polling = self
                .volatile
                .values()
                .any(|v| *v == Volatile::CopyPoll(name.clone()));
            if !polling {
                let (serial, route) = op.directed(&serial).unwrap_or((serial, Route::Hmc));
                self.start_volatile(now_ms, Volatile::CopyPoll(name), &serial, route, op);
            }
        }
        if self.state.sessions.values().any(|s| s.copying) {
            self.arm_copy_poll(now_ms);
        }
    }
}
