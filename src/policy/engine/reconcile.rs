//! Finding out what the box did (`protocol-specs/policy.md` §8.4). A storage action
//! whose answer was lost (a deadline, a lost connection, a restart) is never sent
//! again: its outcome is *unknown*, the session says so, and the box is asked what
//! it holds until the answer is certain. The action's identity on the box is its
//! token (the FlashCopy sequence number of an establish or resync, the tag of a
//! backup), and its request carried a "not after" time: once the box's clock is
//! past it, what the box holds is everything that request will ever do. LSSs that
//! an unfinished Flash left frozen are thawed on every path.

use std::collections::BTreeSet;

use super::{Engine, Volatile};
use crate::ds8k::copy::FlashOptions;
use crate::ds8k::ids::{Lss, VolumeId};
use crate::policy::console::ids;
use crate::policy::engine::state::{InFlight, Record};
use crate::policy::session::SessionStatus;
use crate::policy::storage::{
    ActionId, BoxView, HyperSwapFacts, HyperSwapRequest, MirrorPairFacts, MirrorPairState,
    MirrorRequest, Route, StorageOp, StorageOutcome,
};

/// The box's reason code for a request it never carried out because its client
/// had stopped waiting (ds8k.md §5 `REQUEST_EXPIRED`): the reason an action whose
/// outcome was unknown fails with once the box shows it did nothing.
pub const NOT_CARRIED_OUT: u16 = crate::ds8k::Ds8kReason::REQUEST_EXPIRED.0;

/// The longest wait between tries at a box that does not answer.
const MAX_RETRY_MS: u64 = 5 * 60_000;

/// How far a host's flash or backup time may be from zgate's clock when a host
/// path (which carries no token) is judged by time (policy.md §8.4).
const HOST_CLOCK_ALLOWANCE_MS: u64 = 5_000;

/// What an inspection says of one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Finding {
    /// The box carried it out: this is its outcome.
    Done(StorageOutcome),
    /// The box did not, and never will (its clock is past the request's
    /// "not after"); why, in words.
    NotDone(String),
    /// Not certain yet: ask again later.
    Pending,
}

/// What `view` says of `flight` (policy.md §8.4, table "judging"). `known_backups`
/// are the backups sessions already hold (a host path's backup is recognised as a
/// new one on the volumes, made since the action started).
pub(crate) fn judge(flight: &InFlight, view: &BoxView, known_backups: &BTreeSet<u64>) -> Finding {
    let action = &flight.action;
    let token = action.token();
    let by_hmc = action.route == Route::Hmc;
    // With no "not after", the first answer is final.
    let final_view = action.not_after_ms == 0 || view.clock_ms > action.not_after_ms;
    let not_done = |what: &str| {
        if final_view {
            Finding::NotDone(format!(
                "the storage system did not carry it out ({what}; its request expired unanswered)"
            ))
        } else {
            Finding::Pending
        }
    };
    match &action.op {
        StorageOp::Establish { pairs, .. } | StorageOp::Resync { pairs, .. } => {
            let found: Vec<_> = pairs
                .iter()
                .filter_map(|&(s, t)| view.flash.iter().find(|f| f.source == s && f.target == t))
                .collect();
            let resync = matches!(action.op, StorageOp::Resync { .. });
            let made = found.len() == pairs.len()
                && found.iter().all(|f| {
                    if by_hmc {
                        f.sequence == token
                    } else if resync {
                        f.synced_ms.saturating_add(HOST_CLOCK_ALLOWANCE_MS) >= flight.started_ms
                    } else {
                        true
                    }
                });
            if made {
                let out_of_sync_tracks = found.iter().map(|f| f.out_of_sync_tracks).sum();
                Finding::Done(StorageOutcome::Flashed { out_of_sync_tracks })
            } else {
                not_done("no relationship carries its sequence number")
            }
        }
        StorageOp::Backup { volumes } => {
            let taken = view.backups.iter().find(|b| {
                if by_hmc {
                    b.tag == token
                } else {
                    !known_backups.contains(&b.id)
                        && b.time_ms.saturating_add(HOST_CLOCK_ALLOWANCE_MS) >= flight.started_ms
                        && volumes
                            .iter()
                            .all(|v| view.backups.iter().any(|o| o.id == b.id && o.volume == *v))
                }
            });
            match taken {
                Some(b) => Finding::Done(StorageOutcome::BackedUp {
                    id: b.id,
                    time_ms: b.time_ms,
                }),
                None => not_done("no backup carries its tag"),
            }
        }
        StorageOp::Withdraw { pairs, .. } => {
            let left = pairs
                .iter()
                .any(|&(s, t)| view.flash.iter().any(|f| f.source == s && f.target == t));
            if left {
                not_done("the relationships are still there")
            } else {
                Finding::Done(StorageOutcome::Withdrawn)
            }
        }
        StorageOp::Expire { backup } => {
            if view.backups.iter().any(|b| b.id == *backup) {
                not_done("the backup is still there")
            } else {
                Finding::Done(StorageOutcome::Expired)
            }
        }
        // A recover or a restore leaves nothing that tells it from its absence: once
        // the request can no longer run, the command is reported not confirmed, and
        // nothing is sent again by itself.
        StorageOp::Recover { .. } | StorageOp::Restore { .. } => {
            if final_view {
                Finding::NotDone(
                    "zgate cannot tell whether the storage system carried it out; check the volumes before running it again".into(),
                )
            } else {
                Finding::Pending
            }
        }
        StorageOp::Mirror { at, request } => judge_mirror(at, request, &view.mirror, not_done),
        // Reads and thaws are never inspected (they are sent again or swept).
        _ => Finding::Pending,
    }
}

/// What the pairs as LSPPRC read them on image `at` say of Metro Mirror request
/// `request` (policy.md §8.4, §5.8).
fn judge_mirror(
    at: &str,
    request: &MirrorRequest,
    pairs: &[MirrorPairFacts],
    not_done: impl Fn(&str) -> Finding,
) -> Finding {
    let as_primary = |v: &VolumeId| {
        pairs
            .iter()
            .find(|f| f.primary_serial == at && f.primary == *v)
    };
    let as_secondary = |v: &VolumeId| {
        pairs
            .iter()
            .find(|f| f.secondary_serial == at && f.secondary == *v)
    };
    let done = |count: usize| {
        Finding::Done(StorageOutcome::Mirrored {
            count: count as u64,
        })
    };
    let all = |ok: bool, count: usize, what: &str| if ok { done(count) } else { not_done(what) };
    match request {
        // Making a path again, or thawing an LSS again, changes nothing: the step
        // after a path is MKPPRC, which the box refuses without one, and a hold
        // the run did not end ends at the box's long-busy timeout.
        MirrorRequest::Paths { lss_pairs, .. } => done(lss_pairs.len()),
        MirrorRequest::Run { lsss } => done(lsss.len()),
        MirrorRequest::Pairs { pairs: wanted, .. }
        | MirrorRequest::Failback { pairs: wanted, .. } => all(
            wanted
                .iter()
                .all(|(p, q)| as_primary(p).is_some_and(|f| f.secondary == *q && !f.failed_over)),
            wanted.len(),
            "the pairs are not there as asked",
        ),
        MirrorRequest::Resume { volumes } => all(
            volumes.iter().all(|v| {
                as_primary(v).is_some_and(|f| {
                    matches!(
                        f.state,
                        MirrorPairState::CopyPending | MirrorPairState::FullDuplex
                    )
                })
            }),
            volumes.len(),
            "the pairs are still suspended",
        ),
        MirrorRequest::Pause { volumes } => all(
            volumes.iter().all(|v| {
                as_primary(v).is_some_and(|f| matches!(f.state, MirrorPairState::Suspended(_)))
            }),
            volumes.len(),
            "the pairs still mirror",
        ),
        MirrorRequest::Freeze { .. } => all(
            !pairs.is_empty()
                && pairs
                    .iter()
                    .all(|f| matches!(f.state, MirrorPairState::Suspended(_))),
            pairs.len(),
            "the pairs still mirror",
        ),
        MirrorRequest::Failover { volumes } => all(
            volumes
                .iter()
                .all(|v| as_secondary(v).is_some_and(|f| f.failed_over)),
            volumes.len(),
            "the secondaries were not failed over",
        ),
        MirrorRequest::Remove { volumes } => all(
            volumes.iter().all(|v| as_primary(v).is_none()),
            volumes.len(),
            "the pairs are still there",
        ),
        MirrorRequest::Query { .. } => Finding::Pending,
    }
}

/// What a z/OS system's HyperSwap status says of HyperSwap request `request` of
/// configuration `config`; `final_view` once the request's deadline has passed
/// (z/OS finishes a request it received, or never started it).
pub(crate) fn judge_hyperswap(
    config: &str,
    request: &HyperSwapRequest,
    facts: &HyperSwapFacts,
    final_view: bool,
) -> Finding {
    let ours = facts.session.trim_end().eq_ignore_ascii_case(config);
    let done = Finding::Done(StorageOutcome::HyperSwapped(facts.clone()));
    let carried_out = match request {
        HyperSwapRequest::Load { .. } => ours && facts.state >= 1,
        HyperSwapRequest::Enable => ours && facts.state == 2,
        HyperSwapRequest::EnableFreeze => ours && facts.state == 4,
        HyperSwapRequest::Disable => !ours || facts.state <= 1,
        // A loaded configuration starts at site 1; only a swap moves it to 2.
        HyperSwapRequest::PlannedSwap => ours && facts.active_site == 2 && facts.state != 3,
        HyperSwapRequest::Purge => !ours || facts.state == 0,
        HyperSwapRequest::Query => return Finding::Pending,
    };
    if carried_out {
        done
    } else if final_view && facts.state != 3 {
        Finding::NotDone(format!(
            "z/OS did not carry it out (its HyperSwap status shows state {}, active site {})",
            facts.state, facts.active_site
        ))
    } else {
        Finding::Pending
    }
}

/// The LSSs that `flight` froze (a consistency-group establish or resync through
/// the HMC), which must not stay frozen.
fn froze(flight: &InFlight) -> Vec<Lss> {
    match &flight.action.op {
        StorageOp::Establish { pairs, options } | StorageOp::Resync { pairs, options }
            if FlashOptions(*options).freeze() =>
        {
            let lsss: BTreeSet<Lss> = pairs.iter().map(|p| p.0.lss()).collect();
            lsss.into_iter().collect()
        }
        _ => Vec::new(),
    }
}

impl Engine {
    /// The answer to durable action `flight` was lost: the session says so and the
    /// box is asked at once what it did.
    pub(super) fn outcome_unknown(&mut self, mut flight: InFlight, text: String, now_ms: u64) {
        let id = flight.action.id;
        flight.unknown = Some(text.clone());
        let name = flight.session.clone();
        let what = flight.action.op.name();
        self.commit(Record::ActionStarted(flight));
        if let Some(mut s) = self.state.sessions.get(&name).cloned() {
            s.status = SessionStatus::Severe;
            s.last_error = Some(format!("outcome unknown: {text}"));
            self.commit(Record::Session(s));
        }
        self.announce(
            "zgate",
            what,
            &name,
            ids::OUTCOME_UNKNOWN,
            format!(
                "The outcome of {what} for session {name} is unknown ({text}); zgate asks the storage system what it did before anything else runs on the session."
            ),
            now_ms,
        );
        self.inspections.insert(id, now_ms);
        self.start_inspections(now_ms);
    }

    /// Starts the inspections and sweeps that are due.
    pub(super) fn start_inspections(&mut self, now_ms: u64) {
        let due: Vec<ActionId> = self
            .inspections
            .iter()
            .filter(|(_, at)| **at <= now_ms)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.inspections.remove(&id);
            let Some(flight) = self.state.in_flight.get(&id).cloned() else {
                continue;
            };
            let op = self.inspection_of(&flight);
            // A HyperSwap request is judged by its system, the rest by the box.
            let (serial, route) = match &op {
                StorageOp::HyperSwap { .. } => {
                    (flight.action.serial.clone(), flight.action.route.clone())
                }
                _ => (flight.action.serial.clone(), Route::Hmc),
            };
            self.start_volatile(now_ms, Volatile::Inspect(id), &serial, route, op);
        }
        let due: Vec<String> = self
            .sweeps
            .iter()
            .filter(|(_, at)| **at <= now_ms)
            .map(|(serial, _)| serial.clone())
            .collect();
        for serial in due {
            self.sweeps.remove(&serial);
            let op = StorageOp::Inspect {
                pairs: Vec::new(),
                volumes: Vec::new(),
                mirror: Vec::new(),
            };
            self.start_volatile(
                now_ms,
                Volatile::Sweep(serial.clone()),
                &serial,
                Route::Hmc,
                op,
            );
        }
    }

    /// What to read to judge `flight`.
    fn inspection_of(&self, flight: &InFlight) -> StorageOp {
        let h1s = || {
            self.state
                .sessions
                .get(&flight.session)
                .map(|s| s.copy_sets.iter().map(|c| c.h1.volume).collect())
                .unwrap_or_default()
        };
        match &flight.action.op {
            StorageOp::Establish { pairs, .. }
            | StorageOp::Resync { pairs, .. }
            | StorageOp::Withdraw { pairs, .. } => StorageOp::Inspect {
                pairs: pairs.clone(),
                volumes: Vec::new(),
                mirror: Vec::new(),
            },
            StorageOp::Backup { volumes } => StorageOp::Inspect {
                pairs: Vec::new(),
                volumes: volumes.clone(),
                mirror: Vec::new(),
            },
            StorageOp::Expire { .. } => StorageOp::Inspect {
                pairs: Vec::new(),
                volumes: h1s(),
                mirror: Vec::new(),
            },
            // The session's volumes on the image the request went to.
            StorageOp::Mirror { at, .. } => StorageOp::Inspect {
                pairs: Vec::new(),
                volumes: Vec::new(),
                mirror: self
                    .state
                    .sessions
                    .get(&flight.session)
                    .map(|s| {
                        s.copy_sets
                            .iter()
                            .filter_map(|c| {
                                if c.h1.serial == *at {
                                    Some(c.h1.volume)
                                } else {
                                    c.partner.as_ref().map(|p| p.volume)
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            StorageOp::HyperSwap {
                system, session, ..
            } => StorageOp::HyperSwap {
                system: system.clone(),
                session: session.clone(),
                request: HyperSwapRequest::Query,
            },
            _ => StorageOp::Inspect {
                pairs: Vec::new(),
                volumes: Vec::new(),
                mirror: Vec::new(),
            },
        }
    }

    /// An inspection of action `id` came back.
    pub(super) fn finish_inspection(&mut self, id: ActionId, outcome: StorageOutcome, now_ms: u64) {
        let Some(flight) = self.state.in_flight.get(&id).cloned() else {
            return;
        };
        if flight.unknown.is_none() {
            return;
        }
        if let (
            StorageOp::HyperSwap {
                session, request, ..
            },
            StorageOutcome::HyperSwapped(facts),
        ) = (&flight.action.op, &outcome)
        {
            self.unanswered.remove(&format!("action {id}"));
            let final_view = now_ms > flight.action.not_after_ms;
            let finding = judge_hyperswap(session, request, facts, final_view);
            return self.take_finding(id, &flight, finding, flight.action.not_after_ms, now_ms);
        }
        let StorageOutcome::Inspected(view) = outcome else {
            // The box still does not answer: ask again, later each time.
            let wait = self.retry_after(format!("action {id}"));
            self.inspections.insert(id, now_ms.saturating_add(wait));
            return;
        };
        self.unanswered.remove(&format!("action {id}"));
        let frozen: Vec<Lss> = froze(&flight)
            .into_iter()
            .filter(|l| view.frozen.contains(l))
            .collect();
        if !frozen.is_empty() {
            self.thaw(&flight.action.serial, &flight.session, frozen, now_ms);
        }
        let known: BTreeSet<u64> = self
            .state
            .sessions
            .values()
            .flat_map(|s| s.backups().iter().map(|b| b.id))
            .collect();
        let finding = judge(&flight, &view, &known);
        // Certain once the box's clock is past the request's "not after".
        let until_final = flight.action.not_after_ms.saturating_sub(view.clock_ms);
        self.take_finding(
            id,
            &flight,
            finding,
            now_ms.saturating_add(until_final),
            now_ms,
        );
    }

    /// Acts on what an inspection found of action `id`: its outcome, its failure,
    /// or another look after `final_at` (when the answer will be certain).
    fn take_finding(
        &mut self,
        id: ActionId,
        flight: &InFlight,
        finding: Finding,
        final_at: u64,
        now_ms: u64,
    ) {
        let what = flight.action.op.name();
        match finding {
            Finding::Done(outcome) => {
                self.tell(
                    ids::OUTCOME_FOUND,
                    Some(&flight.session),
                    format!(
                        "The storage system did carry out {what} for session {}; zgate takes its result.",
                        flight.session
                    ),
                    now_ms,
                );
                self.handle_storage_result(id, outcome, now_ms);
            }
            Finding::NotDone(text) => {
                let outcome = StorageOutcome::Failed {
                    reason: NOT_CARRIED_OUT,
                    text,
                };
                self.handle_storage_result(id, outcome, now_ms);
            }
            Finding::Pending => {
                let wait = final_at
                    .saturating_sub(now_ms)
                    .saturating_add(1)
                    .max(self.config.reconcile_interval_ms);
                self.inspections.insert(id, now_ms.saturating_add(wait));
            }
        }
    }

    /// A sweep of box `serial` came back: LSSs of its sessions' production volumes
    /// that are frozen while no action of zgate's is under way on them are thawed.
    pub(super) fn finish_sweep(&mut self, serial: String, outcome: StorageOutcome, now_ms: u64) {
        let StorageOutcome::Inspected(view) = outcome else {
            let wait = self.retry_after(format!("box {serial}"));
            self.sweeps.insert(serial, now_ms.saturating_add(wait));
            return;
        };
        self.unanswered.remove(&format!("box {serial}"));
        let busy: BTreeSet<Lss> = self
            .state
            .in_flight
            .values()
            .filter(|f| f.action.serial == serial)
            .flat_map(froze)
            .collect();
        for s in self.state.sessions.clone().values() {
            if s.serial() != Some(serial.as_str()) {
                continue;
            }
            let lsss: BTreeSet<Lss> = s
                .copy_sets
                .iter()
                .map(|c| c.h1.volume.lss())
                .filter(|l| view.frozen.contains(l) && !busy.contains(l))
                .collect();
            if !lsss.is_empty() {
                self.thaw(&serial, &s.name, lsss.into_iter().collect(), now_ms);
            }
        }
    }

    /// How long to wait before asking `what` again after another unanswered try:
    /// the retry interval, doubled each time, at most five minutes.
    fn retry_after(&mut self, what: String) -> u64 {
        let tries = self.unanswered.entry(what).or_insert(0);
        let wait = self
            .config
            .reconcile_interval_ms
            .saturating_mul(1 << (*tries).min(16))
            .min(MAX_RETRY_MS);
        *tries = tries.saturating_add(1);
        wait
    }

    /// When the periodic reconciliation is due: unarmed with sessions to check, now.
    pub(super) fn reconcile_due(&self) -> Option<u64> {
        if self.config.reconcile_every_ms == 0 || self.state.sessions.is_empty() {
            return None;
        }
        Some(self.next_reconcile_ms.unwrap_or(0))
    }

    /// The periodic reconciliation (policy.md §8.4): every box that sessions use is
    /// swept for LSSs left frozen, and each idle SGC session's backups are read from
    /// the box, to adopt the ones it holds and drop the ones it no longer does.
    pub(super) fn reconcile_if_due(&mut self, now_ms: u64) {
        if self.reconcile_due().is_none_or(|at| at > now_ms) {
            return;
        }
        let first = self.next_reconcile_ms.is_none();
        self.next_reconcile_ms = Some(now_ms.saturating_add(self.config.reconcile_every_ms));
        if first {
            // Armed now; the first check is one period away (a restart sweeps anyway).
            return;
        }
        let mut serials = BTreeSet::new();
        let mut adopt = Vec::new();
        for s in self.state.sessions.values() {
            let Some(serial) = s.serial() else { continue };
            serials.insert(serial.to_owned());
            // The first H1 is in every backup the session took (copy sets are
            // only ever added after it): its list is read first, and every H1's only
            // when it differs from the session's (a whole box is 32,640 volumes).
            if s.kind() == crate::policy::SessionType::Sgc
                && s.busy.is_none()
                && let Some(first) = s.copy_sets.first()
            {
                adopt.push((s.name.clone(), serial.to_owned(), first.h1.volume));
            }
        }
        for serial in serials {
            self.sweeps.entry(serial).or_insert(now_ms);
        }
        for (session, serial, first) in adopt {
            let op = StorageOp::ListBackups {
                volumes: vec![first],
            };
            let read = Volatile::Adopt {
                session,
                every: false,
            };
            self.start_volatile(now_ms, read, &serial, Route::Hmc, op);
        }
        self.start_inspections(now_ms);
    }

    /// An SGC session's backups as the box lists them: backups on every one of its
    /// production volumes that it does not know are adopted (an orphan of a lost
    /// answer, say); backups it lists that no volume holds any more are dropped.
    pub(super) fn finish_adopt(
        &mut self,
        name: String,
        every: bool,
        outcome: StorageOutcome,
        now_ms: u64,
    ) {
        let StorageOutcome::Backups(found) = outcome else {
            return;
        };
        let Some(s) = self.state.sessions.get(&name) else {
            return;
        };
        if s.busy.is_some() || !self.state.in_flight.values().all(|f| f.session != name) {
            return;
        }
        if !every {
            // The first H1's backups are the session's: nothing to adopt or drop.
            let on_first: BTreeSet<u64> = found.iter().map(|b| b.id).collect();
            let known: BTreeSet<u64> = s.backups().iter().map(|b| b.id).collect();
            if on_first == known {
                return;
            }
            let Some(serial) = s.serial().map(str::to_owned) else {
                return;
            };
            let volumes = s.copy_sets.iter().map(|c| c.h1.volume).collect();
            let read = Volatile::Adopt {
                session: name,
                every: true,
            };
            self.start_volatile(
                now_ms,
                read,
                &serial,
                Route::Hmc,
                StorageOp::ListBackups { volumes },
            );
            return;
        }
        let volumes: BTreeSet<_> = s.copy_sets.iter().map(|c| c.h1.volume).collect();
        if volumes.is_empty() {
            return;
        }
        // Each backup's volumes, in one sort (a session may hold hundreds of backups
        // on thousands of volumes, read every 15 minutes): (id, volume) pairs, then a
        // backup is on every volume when its run is as long as the volume set.
        let mut entries: Vec<(u64, VolumeId, u64)> =
            found.iter().map(|b| (b.id, b.volume, b.time_ms)).collect();
        entries.sort_unstable();
        entries.dedup_by_key(|e| (e.0, e.1));
        let mut held: Vec<u64> = entries.iter().map(|e| e.0).collect();
        held.dedup();
        let on_every: Vec<(u64, u64)> = entries
            .chunk_by(|a, b| a.0 == b.0)
            .filter(|run| run.iter().filter(|e| volumes.contains(&e.1)).count() == volumes.len())
            .map(|run| (run[0].0, run[0].2))
            .collect();
        let mut backups: Vec<crate::policy::retention::Backup> = s
            .backups()
            .iter()
            .filter(|b| held.binary_search(&b.id).is_ok())
            .copied()
            .collect();
        let dropped = s.backups().len() - backups.len();
        let mut adopted = 0;
        let listed: BTreeSet<u64> = backups.iter().map(|b| b.id).collect();
        for (id, time_ms) in on_every {
            if !listed.contains(&id) {
                backups.push(crate::policy::retention::Backup { id, time_ms });
                adopted += 1;
            }
        }
        if adopted == 0 && dropped == 0 {
            return;
        }
        let mut s = s.clone();
        backups.sort_by_key(|b| (b.time_ms, b.id));
        if let Some(sgc) = s.sgc_mut() {
            sgc.backups = backups;
        }
        super::kinds::sgc::state_from_backups(&mut s);
        self.commit(Record::Session(s));
        self.announce(
            "zgate",
            "Reconcile Backups",
            &name,
            ids::RECONCILED,
            format!(
                "Session {name} now lists the backups the storage system holds: {adopted} adopted, {dropped} dropped."
            ),
            now_ms,
        );
    }

    /// A thaw came back; a failed one is followed by a sweep of the box.
    pub(super) fn finish_thaw(&mut self, serial: String, outcome: StorageOutcome, now_ms: u64) {
        if !matches!(outcome, StorageOutcome::Thawed) {
            self.sweeps.insert(
                serial,
                now_ms.saturating_add(self.config.reconcile_interval_ms),
            );
        }
    }

    fn thaw(&mut self, serial: &str, session: &str, lsss: Vec<Lss>, now_ms: u64) {
        let names: Vec<String> = lsss.iter().map(|l| format!("{:02X}", l.0)).collect();
        self.announce(
            "zgate",
            "Thaw",
            session,
            ids::LEFT_FROZEN,
            format!(
                "LSS {} of DS8000:BOX:2107.{serial} was left frozen with no Flash of session {session} under way; zgate thaws it.",
                names.join(", ")
            ),
            now_ms,
        );
        self.start_volatile(
            now_ms,
            Volatile::Thaw(serial.to_owned()),
            serial,
            Route::Hmc,
            StorageOp::Thaw { lsss },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(state: MirrorPairState, failed_over: bool) -> MirrorPairFacts {
        MirrorPairFacts {
            primary_serial: "75FA120".into(),
            primary: VolumeId(0x3000),
            secondary_serial: "75FA121".into(),
            secondary: VolumeId(0x3000),
            state,
            failed_over,
            out_of_sync_tracks: 0,
        }
    }

    fn not_done(final_view: bool) -> impl Fn(&str) -> Finding {
        move |what: &str| {
            if final_view {
                Finding::NotDone(what.to_owned())
            } else {
                Finding::Pending
            }
        }
    }

    #[test]
    fn a_lost_mkpprc_is_done_when_the_pairs_stand_as_asked() {
        let asked = MirrorRequest::Pairs {
            remote: "75FA121".into(),
            pairs: vec![(VolumeId(0x3000), VolumeId(0x3000))],
        };
        let there = [pair(MirrorPairState::CopyPending, false)];
        assert_eq!(
            judge_mirror("75FA120", &asked, &there, not_done(false)),
            Finding::Done(StorageOutcome::Mirrored { count: 1 })
        );
        // Not there: certain only once the request can no longer run.
        assert_eq!(
            judge_mirror("75FA120", &asked, &[], not_done(false)),
            Finding::Pending
        );
        assert!(matches!(
            judge_mirror("75FA120", &asked, &[], not_done(true)),
            Finding::NotDone(_)
        ));
    }

    #[test]
    fn a_lost_failover_is_judged_on_the_secondaries_image() {
        let asked = MirrorRequest::Failover {
            volumes: vec![VolumeId(0x3000)],
        };
        let over = [pair(MirrorPairState::Suspended(4), true)];
        assert!(matches!(
            judge_mirror("75FA121", &asked, &over, not_done(true)),
            Finding::Done(_)
        ));
        // Asked of H2's volume 3000, H1's 3000 does not count.
        assert!(matches!(
            judge_mirror("75FA120", &asked, &over, not_done(true)),
            Finding::NotDone(_)
        ));
        let suspended = [pair(MirrorPairState::Suspended(2), false)];
        assert!(matches!(
            judge_mirror("75FA121", &asked, &suspended, not_done(true)),
            Finding::NotDone(_)
        ));
    }

    #[test]
    fn lost_freezes_pauses_and_removals_are_judged_by_the_pairs_left() {
        let freeze = MirrorRequest::Freeze {
            remote: "75FA121".into(),
            lss_pairs: vec![(Lss(0x30), Lss(0x30))],
        };
        assert!(matches!(
            judge_mirror(
                "75FA120",
                &freeze,
                &[pair(MirrorPairState::Suspended(2), false)],
                not_done(true)
            ),
            Finding::Done(_)
        ));
        assert!(matches!(
            judge_mirror(
                "75FA120",
                &freeze,
                &[pair(MirrorPairState::FullDuplex, false)],
                not_done(true)
            ),
            Finding::NotDone(_)
        ));
        let remove = MirrorRequest::Remove {
            volumes: vec![VolumeId(0x3000)],
        };
        assert!(matches!(
            judge_mirror("75FA120", &remove, &[], not_done(true)),
            Finding::Done(_)
        ));
    }

    fn status(state: u8, site: u8, config: &str) -> HyperSwapFacts {
        HyperSwapFacts {
            state,
            active_site: site,
            session: config.into(),
            pairs: 4,
        }
    }

    #[test]
    fn a_lost_planned_swap_is_judged_by_zos_status() {
        let swap = HyperSwapRequest::PlannedSwap;
        assert!(matches!(
            judge_hyperswap("MM1", &swap, &status(1, 2, "MM1"), false),
            Finding::Done(StorageOutcome::HyperSwapped(_))
        ));
        // Still swapping: ask again, whatever the deadline.
        assert_eq!(
            judge_hyperswap("MM1", &swap, &status(3, 1, "MM1"), true),
            Finding::Pending
        );
        // Enabled on site 1 after the deadline: it never swapped.
        assert!(matches!(
            judge_hyperswap("MM1", &swap, &status(2, 1, "MM1"), true),
            Finding::NotDone(_)
        ));
        assert_eq!(
            judge_hyperswap("MM1", &swap, &status(2, 1, "MM1"), false),
            Finding::Pending
        );
        // Another configuration swapped is not this one.
        assert!(matches!(
            judge_hyperswap("MM1", &swap, &status(1, 2, "OTHER"), true),
            Finding::NotDone(_)
        ));
    }

    #[test]
    fn lost_loads_enables_and_purges_are_judged_by_the_state_they_leave() {
        let load = HyperSwapRequest::Load { pairs: Vec::new() };
        assert!(matches!(
            judge_hyperswap("MM1", &load, &status(1, 1, "MM1"), true),
            Finding::Done(_)
        ));
        assert!(matches!(
            judge_hyperswap(
                "MM1",
                &HyperSwapRequest::EnableFreeze,
                &status(4, 1, "MM1"),
                true
            ),
            Finding::Done(_)
        ));
        assert!(matches!(
            judge_hyperswap("MM1", &HyperSwapRequest::Enable, &status(4, 1, "MM1"), true),
            Finding::NotDone(_)
        ));
        assert!(matches!(
            judge_hyperswap("MM1", &HyperSwapRequest::Purge, &status(0, 0, ""), true),
            Finding::Done(_)
        ));
    }
}
