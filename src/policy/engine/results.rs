//! What the storage world answered (`protocol-specs/policy.md` §5.4): a step's
//! outcome moves its session on, starts the next step, or fails the command.

use super::commands::describe_run;
use super::kinds::{After, Completed};
use super::{Engine, Volatile};
use crate::ds8k::ids::VolumeId;
use crate::policy::audit::AuditKind;
use crate::policy::console::ids;
use crate::policy::engine::state::{InFlight, Purpose, Record};
use crate::policy::session::{
    CopySet, HyperSwapStatus, Session, SessionCommand, SessionState, SessionStatus,
};
use crate::policy::storage::{
    ActionId, HostEvent, StorageAction, StorageNotice, StorageOp, StorageOutcome,
};

impl Engine {
    /// The outcome of storage action `id`. An unknown id (answered twice, or from
    /// before a restart that already closed it) is ignored: nothing runs twice.
    ///
    /// An [`StorageOutcome::Unknown`] of an action that changes the box does not
    /// end it: the box is asked what it did (policy.md §8.4); of a read, it is a
    /// failure like any other.
    pub fn handle_storage_result(&mut self, id: ActionId, outcome: StorageOutcome, now_ms: u64) {
        let chain = self
            .state
            .in_flight
            .get(&id)
            .map(|f| (f.origin(), f.session.clone()));
        let mark = self.console_out.len();
        self.take_storage_result(id, outcome, now_ms);
        // The command's work ended when no step of it is under way any more: its
        // last message about the session since this outcome says how.
        if let Some((origin, session)) = chain
            && !self.state.in_flight.values().any(|f| f.origin() == origin)
        {
            let message = self
                .console_out
                .iter()
                .skip(mark)
                .rev()
                .find(|m| m.session.as_deref() == Some(&session) && m.id != ids::COMMAND_STARTED)
                .cloned();
            self.finished_out.push_back(super::Finished {
                action: origin,
                message,
            });
        }
    }

    fn take_storage_result(&mut self, id: ActionId, mut outcome: StorageOutcome, now_ms: u64) {
        if let Some(read) = self.volatile.remove(&id) {
            self.finish_volatile(read, outcome, now_ms);
            return;
        }
        let Some(flight) = self.state.in_flight.get(&id).cloned() else {
            return;
        };
        if let StorageOutcome::Unknown { text } = outcome {
            if !flight.action.op.is_read() {
                if flight.unknown.is_none() {
                    self.outcome_unknown(flight, text, now_ms);
                }
                return;
            }
            outcome = StorageOutcome::Failed { reason: 0, text };
        }
        self.commit(Record::ActionFinished(id));
        let Some(mut session) = self.state.sessions.get(&flight.session).cloned() else {
            return;
        };
        if let StorageOutcome::Failed { reason, text } = &outcome {
            self.fail(session, &flight, *reason, text, now_ms);
            return;
        }
        if !flight.rest.is_empty() {
            // A step's read of volumes is kept before the next step runs (Add Copy
            // Sets of a Metro Mirror session reads both images).
            if let StorageOutcome::Volumes(found) = &outcome
                && let StorageOp::ShowVolumes { volumes, .. } = &flight.action.op
            {
                self.record_volumes(&flight.action.serial, volumes, found);
            }
            let mut rest = flight.rest.clone().into_iter();
            if let Some(op) = rest.next() {
                let next_id = self.state.next_action;
                let (serial, route) = op
                    .directed(session.serial().unwrap_or(&flight.action.serial))
                    .unwrap_or_else(|| (flight.action.serial.clone(), flight.action.route.clone()));
                let action = StorageAction {
                    id: next_id,
                    serial,
                    route,
                    op,
                    not_after_ms: now_ms.saturating_add(self.config.storage_deadline_ms),
                };
                self.commit(Record::ActionStarted(InFlight {
                    action: action.clone(),
                    rest: rest.collect(),
                    unknown: None,
                    origin: flight.origin(),
                    ..flight
                }));
                session.busy = Some(next_id);
                self.commit(Record::Session(session));
                self.storage_out.push_back(action);
                return;
            }
        }
        session.busy = None;
        session.last_error = None;
        match flight.purpose.clone() {
            Purpose::Command(command) => self.complete(session, &flight, command, outcome, now_ms),
            Purpose::AddCopySets(sets) => {
                self.finish_add_copy_sets(session, &flight, sets, outcome, now_ms)
            }
            Purpose::Retention => {
                let StorageOutcome::Expired = outcome else {
                    return self.unexpected(session, &flight, &outcome, now_ms);
                };
                let up_to = expired_id(&flight);
                let before = session.backups().len();
                if let Some(sgc) = session.sgc_mut() {
                    sgc.backups.retain(|b| b.id > up_to);
                }
                session.state = flight.prior_state;
                let count = before - session.backups().len();
                let name = session.name.clone();
                self.commit(Record::Session(session));
                let text = format!(
                    "Retention expired {count} backups of session {name}, up to backup {up_to}."
                );
                self.announce(
                    "retention",
                    "Expire Backup",
                    &name,
                    ids::RETENTION_EXPIRED,
                    text,
                    now_ms,
                );
            }
        }
    }

    fn complete(
        &mut self,
        mut s: Session,
        flight: &InFlight,
        command: SessionCommand,
        outcome: StorageOutcome,
        now_ms: u64,
    ) {
        let name = s.name.clone();
        let done = match s.kind() {
            crate::policy::SessionType::Fc => {
                super::kinds::fc::complete(&mut s, flight, command, outcome)
            }
            crate::policy::SessionType::Sgc => {
                super::kinds::sgc::complete(&mut s, flight, command, outcome)
            }
            crate::policy::SessionType::Mm | crate::policy::SessionType::Hs => {
                super::kinds::mm::complete(&mut s, flight, command, outcome)
            }
        };
        let Completed { extra, after } = match done {
            Ok(done) => done,
            Err(outcome) => return self.unexpected(s, flight, &outcome, now_ms),
        };
        for step in after {
            match step {
                After::PollCopy => self.arm_copy_poll(now_ms),
                After::Progress(tracks) => {
                    self.copy_progress.insert(name.clone(), tracks);
                }
                After::ForgetProgress => {
                    self.copy_progress.remove(&name);
                }
                After::CopyComplete => self.copy_complete(&name, now_ms),
            }
        }
        self.commit(Record::Session(s));
        let text = format!(
            "The {} command in the {name} session completed.{extra}",
            describe_run(command)
        );
        self.announce(
            &flight.by,
            &describe_run(command),
            &name,
            ids::COMMAND_COMPLETED,
            text,
            now_ms,
        );
    }

    /// The volumes of `Add Copy Sets` were read: record them, then decide with them.
    fn finish_add_copy_sets(
        &mut self,
        mut s: Session,
        flight: &InFlight,
        sets: Vec<CopySet>,
        outcome: StorageOutcome,
        now_ms: u64,
    ) {
        let StorageOutcome::Volumes(found) = outcome else {
            return self.unexpected(s, flight, &outcome, now_ms);
        };
        let asked = match &flight.action.op {
            StorageOp::ShowVolumes { volumes, .. } => volumes.clone(),
            _ => Vec::new(),
        };
        self.record_volumes(&flight.action.serial, &asked, &found);
        s.state = flight.prior_state;
        let name = s.name.clone();
        self.commit(Record::Session(s.clone()));
        let what = format!("Add Copy Sets ({})", sets.len());
        match self.check_copy_sets(&s, &sets, true) {
            Ok(_) => {
                s.copy_sets.make_mut().extend(sets.iter().cloned());
                if let Some(newest) = s.backups().iter().map(|b| b.id).max()
                    && let Some(sgc) = s.sgc_mut()
                {
                    sgc.backups_before_copy_sets = newest;
                }
                self.commit(Record::Session(s));
                let text = format!("{} copy sets were added to session {name}.", sets.len());
                self.announce(&flight.by, &what, &name, ids::CHANGED, text, now_ms);
            }
            Err(refusal) => {
                self.audit(
                    now_ms,
                    &flight.by,
                    &what,
                    &name,
                    AuditKind::Refusal,
                    &format!("{:#06x} {} {}", refusal.code, refusal.id, refusal.text),
                );
                self.console_out
                    .push_back(crate::policy::console::ConsoleMessage::new(
                        refusal.id,
                        now_ms,
                        Some(&name),
                        refusal.text,
                        vec![format!("{:#06x}", refusal.code)],
                    ));
            }
        }
    }

    /// What a read of `asked` on `serial` found, into the inventory.
    fn record_volumes(
        &mut self,
        serial: &str,
        asked: &[crate::ds8k::ids::VolumeId],
        found: &[crate::policy::inventory::VolumeFacts],
    ) {
        let present: std::collections::HashSet<_> = found.iter().map(|f| f.volume).collect();
        let absent = asked
            .iter()
            .copied()
            .filter(|v| !present.contains(v))
            .collect();
        self.commit(Record::Inventory {
            serial: serial.to_owned(),
            volumes: found.to_vec(),
            absent,
        });
    }

    fn unexpected(&mut self, s: Session, flight: &InFlight, outcome: &StorageOutcome, now_ms: u64) {
        let text = format!(
            "the storage system answered {} with {outcome:?}",
            flight.action.op.name()
        );
        self.fail(s, flight, 0, &text, now_ms);
    }

    fn fail(&mut self, mut s: Session, flight: &InFlight, reason: u16, text: &str, now_ms: u64) {
        let name = s.name.clone();
        s.busy = None;
        s.state = flight.prior_state;
        s.status = SessionStatus::Severe;
        // A re-flash withdraws, then establishes: if the establish fails the old
        // relationships are gone and the targets hold no consistent copy (§5.2).
        if matches!(flight.purpose, Purpose::Command(SessionCommand::Flash))
            && matches!(flight.action.op, StorageOp::Establish { .. })
            && flight.prior_state == SessionState::TargetAvailable
        {
            s.state = SessionState::Defined;
            s.relationships = false;
            s.copying = false;
        }
        s.last_error = Some(format!("{:#06x} {text}", reason));
        self.commit(Record::Session(s));
        let what = match &flight.purpose {
            Purpose::Command(c) => describe_run(*c),
            Purpose::Retention => "retention Expire Backup".to_owned(),
            Purpose::AddCopySets(sets) => format!("Add Copy Sets ({})", sets.len()),
        };
        let message = format!(
            "The {what} command in the {name} session failed on the storage system ({}): reason {reason:#06x}, {text}.",
            flight.action.op.name()
        );
        self.announce(
            &flight.by,
            &what,
            &name,
            ids::STORAGE_FAILED,
            message,
            now_ms,
        );
    }

    /// A storage step's end, told twice the same way: an audit entry (`ID text` as its
    /// result) and the console message.
    pub(super) fn announce(
        &mut self,
        who: &str,
        what: &str,
        session: &str,
        id: crate::policy::console::MessageId,
        text: String,
        now_ms: u64,
    ) {
        self.audit(
            now_ms,
            who,
            what,
            session,
            AuditKind::Action,
            &format!("{id} {text}"),
        );
        self.tell(id, Some(session), text, now_ms);
    }

    /// IWNR2772I, once per completion.
    fn copy_complete(&mut self, session: &str, now_ms: u64) {
        self.tell(
            ids::BACKGROUND_COPY_COMPLETE,
            Some(session),
            format!("The background copy for session {session} role pair H1-T1 is complete."),
            now_ms,
        );
    }

    /// A background-copy poll came back; a failed one is tried again at the next
    /// interval.
    fn finish_volatile(&mut self, read: Volatile, outcome: StorageOutcome, now_ms: u64) {
        let name = match read {
            Volatile::CopyPoll(name) => name,
            Volatile::Inspect(id) => return self.finish_inspection(id, outcome, now_ms),
            Volatile::Sweep(serial) => return self.finish_sweep(serial, outcome, now_ms),
            Volatile::Thaw(serial) => return self.finish_thaw(serial, outcome, now_ms),
            Volatile::Adopt { session, every } => {
                return self.finish_adopt(session, every, outcome, now_ms);
            }
            Volatile::Volumes(serial) => {
                if let StorageOutcome::Volumes(found) = outcome {
                    let text = format!(
                        "{} volumes of storage system DS8000:BOX:2107.{serial} were read.",
                        found.len()
                    );
                    self.commit(Record::Inventory {
                        serial,
                        volumes: found,
                        absent: Vec::new(),
                    });
                    self.tell(ids::CHANGED, None, text, now_ms);
                }
                return;
            }
            Volatile::MirrorCheck { session, reason } => {
                return self.finish_mirror_check(&session, reason, outcome, now_ms);
            }
        };
        if let StorageOutcome::MirrorPairs(pairs) = outcome {
            return self.mirror_polled(&name, &pairs, now_ms);
        }
        let StorageOutcome::FlashStates(pairs) = outcome else {
            return;
        };
        let oos: u64 = pairs.iter().map(|p| p.out_of_sync_tracks).sum();
        self.copy_progress.insert(name.clone(), oos);
        let Some(s) = self.state.sessions.get(&name) else {
            return;
        };
        if s.copying && s.busy.is_none() && oos == 0 {
            let mut s = s.clone();
            s.copying = false;
            // Relationships that end when copied are absent from the answer.
            s.relationships = !pairs.is_empty();
            self.commit(Record::Session(s));
            self.copy_complete(&name, now_ms);
        }
    }

    /// A Metro Mirror session's first pass was polled: once every pair is full
    /// duplex the session is Prepared (Normal; Warning when HyperSwap is meant to
    /// be enabled and is not).
    fn mirror_polled(
        &mut self,
        name: &str,
        pairs: &[crate::policy::storage::MirrorPairFacts],
        now_ms: u64,
    ) {
        let oos: u64 = pairs.iter().map(|p| p.out_of_sync_tracks).sum();
        self.copy_progress.insert(name.to_owned(), oos);
        let Some(s) = self.state.sessions.get(name) else {
            return;
        };
        if !s.copying || s.busy.is_some() || s.state != SessionState::Preparing {
            return;
        }
        let (state, status, copying) = super::kinds::mm::judge_pairs(pairs);
        if copying {
            return;
        }
        let mut s = s.clone();
        s.copying = false;
        s.state = state;
        s.status = status;
        let degraded = state == SessionState::Prepared
            && s.properties.mirror().is_some_and(|p| p.hyperswap)
            && s.mirror().hyperswap != HyperSwapStatus::Enabled;
        if degraded {
            s.status = SessionStatus::Warning;
        }
        self.commit(Record::Session(s));
        let text = if state == SessionState::Prepared {
            format!(
                "Every pair of session {name} is full duplex: the session is Prepared{}.",
                if degraded {
                    ", but HyperSwap is not enabled"
                } else {
                    ""
                }
            )
        } else {
            format!(
                "The pairs of session {name} stopped copying: the session is {}.",
                state.name()
            )
        };
        self.tell(ids::STATE_CHANGED, Some(name), text, now_ms);
    }

    /// Something the box reported unasked.
    pub fn handle_storage_notice(&mut self, serial: &str, notice: StorageNotice, now_ms: u64) {
        match notice {
            StorageNotice::BackupRolledOff { volume, backup } => {
                let hit: Vec<Session> = self
                    .state
                    .sessions
                    .values()
                    .filter(|s| {
                        s.kind() == crate::policy::SessionType::Sgc
                            && s.serial() == Some(serial)
                            && s.copy_sets.iter().any(|c| c.h1.volume == volume)
                            && s.backups().iter().any(|b| b.id == backup)
                    })
                    .cloned()
                    .collect();
                for mut s in hit {
                    // The box keeps a backup per volume; with one volume's copy gone the
                    // backup is no longer consistent across the session.
                    if let Some(sgc) = s.sgc_mut() {
                        sgc.backups.retain(|b| b.id != backup);
                    }
                    super::kinds::sgc::state_from_backups(&mut s);
                    let name = s.name.clone();
                    self.commit(Record::Session(s));
                    self.tell(
                        ids::BACKUP_ROLLED_OFF,
                        Some(&name),
                        format!(
                            "Safeguarded capacity of volume {volume} on DS8000:BOX:2107.{serial} was full: the storage system rolled off backup {backup} of session {name}."
                        ),
                        now_ms,
                    );
                }
            }
            StorageNotice::PairSuspended { primary, reason } => {
                self.pairs_suspended(serial, primary, reason, now_ms)
            }
            StorageNotice::Host {
                system,
                session,
                event,
            } => self.host_event(&system, &session, event, now_ms),
        }
    }

    /// A pair of a mirroring session suspended without the session asking (a path
    /// failure, a freeze by z/OS; policy.md §5.8): the session's pairs are read
    /// (an event may arrive after the pairs mirror again), and if they are
    /// suspended the session is Suspended, Severe. A session carrying out a
    /// command hears it from its own command.
    fn pairs_suspended(&mut self, serial: &str, primary: VolumeId, reason: u8, now_ms: u64) {
        // Failover (4) is always asked for: by a Recover or a swap.
        if reason == 4 {
            return;
        }
        let hit = self.state.sessions.values().find(|s| {
            s.kind().mirrored()
                && s.busy.is_none()
                && matches!(s.state, SessionState::Preparing | SessionState::Prepared)
                && s.serial_of(s.mirror().source) == Some(serial)
                && s.copy_sets
                    .iter()
                    .any(|c| c.at(s.mirror().source).is_some_and(|v| v.volume == primary))
        });
        let Some(s) = hit else {
            return;
        };
        let name = s.name.clone();
        let checking = self
            .volatile
            .values()
            .any(|v| matches!(v, Volatile::MirrorCheck { session, .. } if *session == name));
        if checking {
            return;
        }
        let Some(op) = super::timers::copy_query(s) else {
            return;
        };
        let (at, route) = op
            .directed(serial)
            .unwrap_or((serial.to_owned(), crate::policy::storage::Route::Hmc));
        self.start_volatile(
            now_ms,
            Volatile::MirrorCheck {
                session: name,
                reason,
            },
            &at,
            route,
            op,
        );
    }

    /// The pairs read after a suspension was told: suspended, the session is
    /// Suspended, Severe (`IWNR8030E`); mirroring again, the event was stale.
    fn finish_mirror_check(
        &mut self,
        name: &str,
        reason: u8,
        outcome: StorageOutcome,
        now_ms: u64,
    ) {
        let StorageOutcome::MirrorPairs(pairs) = outcome else {
            return;
        };
        let Some(s) = self.state.sessions.get(name) else {
            return;
        };
        if s.busy.is_some() || !matches!(s.state, SessionState::Preparing | SessionState::Prepared)
        {
            return;
        }
        let (state, _, _) = super::kinds::mm::judge_pairs(&pairs);
        if state != SessionState::Suspended {
            return;
        }
        let mut s = s.clone();
        s.state = SessionState::Suspended;
        s.status = SessionStatus::Severe;
        s.copying = false;
        self.commit(Record::Session(s));
        let why = match reason {
            1 => "pausepprc",
            2 => "a freeze",
            3 => "a PPRC path failure",
            _ => "the storage system",
        };
        let suspended = pairs
            .iter()
            .filter(|p| {
                matches!(
                    p.state,
                    crate::policy::storage::MirrorPairState::Suspended(_)
                )
            })
            .count();
        self.tell(
            ids::PAIRS_SUSPENDED,
            Some(name),
            format!(
                "{suspended} Metro Mirror pairs of session {name} were suspended by {why}; the session is Suspended."
            ),
            now_ms,
        );
    }

    /// z/OS reported a HyperSwap event for configuration `config` (zos-hyperswap.md
    /// §3.11–§3.12): the session it belongs to moves (policy.md §5.8).
    fn host_event(&mut self, system: &str, config: &str, event: HostEvent, now_ms: u64) {
        let hit = self.state.sessions.values().find(|s| {
            s.name.eq_ignore_ascii_case(config)
                && s.properties.mirror().is_some_and(|p| {
                    p.on_zos()
                        && (p.host_system.as_deref() == Some(system)
                            || p.members.iter().any(|m| m == system))
                })
        });
        let Some(mut s) = hit.cloned() else {
            let what = match event {
                HostEvent::UnplannedSwap { .. } => "unplanned swap",
                HostEvent::HyperSwapDisabled { .. } => "HyperSwap disabled",
                HostEvent::Freeze { .. } => "freeze",
            };
            tracing::warn!(
                system,
                config,
                event = what,
                "z/OS event for no session of zgate's"
            );
            return;
        };
        let name = s.name.clone();
        // Which other sysplex member told it, if not the host system.
        let member = s.properties.mirror().and_then(|p| {
            (p.host_system.as_deref() != Some(system))
                .then(|| p.other_members().iter().position(|m| m == system))
                .flatten()
        });
        let members = s.properties.mirror().map_or(0, |p| p.other_members().len());
        let (id, text) = match event {
            HostEvent::HyperSwapDisabled { reason } if member.is_some() => {
                if let Some(i) = member.filter(|i| *i < 32)
                    && let Some(m) = s.mirror_mut()
                {
                    m.members_disabled |= 1 << i;
                }
                if s.mirror().degraded(members) && s.status == SessionStatus::Normal {
                    s.status = SessionStatus::Warning;
                }
                (
                    ids::HYPERSWAP_DISABLED,
                    format!(
                        "z/OS system {system} disabled HyperSwap for session {name} (reason {reason:#06x}){}.",
                        if s.mirror().degraded(members) {
                            "; HyperSwap is degraded: enabled on some members of the sysplex only"
                        } else {
                            ""
                        }
                    ),
                )
            }
            HostEvent::UnplannedSwap { pairs, reason } => {
                // The swap happened whatever the session was doing: production is
                // on the other site now.
                if let Some(m) = s.mirror_mut() {
                    m.production = m.source.other();
                    m.hyperswap = HyperSwapStatus::Disabled;
                }
                s.state = SessionState::TargetAvailable;
                s.status = SessionStatus::Severe;
                s.copying = false;
                (
                    ids::UNPLANNED_SWAP,
                    format!(
                        "z/OS system {system} swapped {pairs} pairs of session {name} to {} on its own (unplanned HyperSwap, reason {reason:#06x}); production is {}.",
                        s.mirror().production.name(),
                        s.mirror().production.name()
                    ),
                )
            }
            HostEvent::HyperSwapDisabled { reason } => {
                if let Some(m) = s.mirror_mut()
                    && m.hyperswap == HyperSwapStatus::Enabled
                {
                    m.hyperswap = HyperSwapStatus::Disabled;
                }
                if s.status == SessionStatus::Normal {
                    s.status = SessionStatus::Warning;
                }
                (
                    ids::HYPERSWAP_DISABLED,
                    format!(
                        "z/OS system {system} disabled HyperSwap for session {name} (reason {reason:#06x})."
                    ),
                )
            }
            HostEvent::Freeze { hardened, reason } => {
                // z/OS is disabled after a freeze, HyperSwap or Hardened Freeze.
                if let Some(m) = s.mirror_mut()
                    && m.hyperswap == HyperSwapStatus::Enabled
                {
                    m.hyperswap = HyperSwapStatus::Disabled;
                }
                if s.busy.is_none()
                    && matches!(s.state, SessionState::Preparing | SessionState::Prepared)
                {
                    s.state = SessionState::Suspended;
                    s.status = SessionStatus::Severe;
                    s.copying = false;
                }
                (
                    ids::FREEZE_TRIGGERED,
                    format!(
                        "z/OS system {system} froze the pairs of session {name} ({}, reason {reason:#06x}); the H2 volumes hold one point in time.",
                        if hardened {
                            "hardened freeze"
                        } else {
                            "freeze"
                        }
                    ),
                )
            }
        };
        // A command under way keeps what z/OS did: should it fail, the session goes
        // back to this state, not to the one before the event.
        let after = match event {
            HostEvent::UnplannedSwap { .. } => Some(SessionState::TargetAvailable),
            HostEvent::Freeze { .. } => Some(SessionState::Suspended),
            HostEvent::HyperSwapDisabled { .. } => None,
        };
        if let Some(id) = s.busy
            && let Some(mut flight) = self.state.in_flight.get(&id).cloned()
            && let Some(after) = after
            && (after == SessionState::TargetAvailable
                || matches!(
                    flight.prior_state,
                    SessionState::Preparing | SessionState::Prepared
                ))
        {
            flight.prior_state = after;
            self.commit(Record::ActionStarted(flight));
        }
        self.commit(Record::Session(s));
        self.audit(
            now_ms,
            system,
            "HyperSwap event",
            &name,
            AuditKind::Action,
            &format!("{id} {text}"),
        );
        self.tell(id, Some(&name), text, now_ms);
    }
}

fn expired_id(flight: &InFlight) -> u64 {
    match flight.action.op {
        crate::policy::storage::StorageOp::Expire { backup } => backup,
        _ => 0,
    }
}
