//! Arbitrary operation sequences against the policy engine and the simulated
//! DS8000 (the harness), with the engine's invariants checked after every step
//! (`protocol-specs/policy.md` §10). Shared by the cargo-fuzz target `engine`, the
//! property tests and the store's crash test.

use std::collections::BTreeSet;

use crate::ds8k::ids::{VolumeId, VolumeKind};
use crate::harness::Harness;
use crate::policy::SessionType;
use crate::policy::access::{ActionScope, OperatorGrant, Role, SessionAction, SessionScope};
use crate::policy::console::{MessageId, ids};
use crate::policy::dual_control::{Change, DualControlMode};
use crate::policy::engine::{Command, EngineConfig, Outcome, Reply, State};
use crate::policy::inventory::VolumeRef;
use crate::policy::retention::SgcPolicy;
use crate::policy::schedule::Schedule;
use crate::policy::session::{CopySet, FcProperties, Properties, SessionCommand, SgcProperties};
use crate::sim::ds8k::ImageConfig;

const SERIAL: &str = "75FUZZ1";
const USERS: [&str; 4] = ["admin", "admin2", "op", "mon"];
const SESSIONS: [&str; 2] = ["FC1", "SGC1"];
const MIN: u64 = 60_000;
/// The longest step of time, minutes (4 h 15 min). A step stops at every deadline
/// on the way, and with a backup schedule every 30 minutes each stop is a backup
/// with its retention: at 68 h a step (as first written) the target ran 25 inputs
/// a second, nearly all of it repeating the same scheduled work. Longer spans are
/// reached in several steps (a day's retention in six, the longest schedule
/// interval, 8.5 h, in two).
const MAX_ADVANCE_MINUTES: u16 = 0x00FF;

/// One step.
#[derive(Debug, Clone)]
pub enum Op {
    /// A session command by a user.
    Run {
        /// Index into the users.
        user: u8,
        /// Index into the sessions.
        session: u8,
        /// Which command.
        command: u8,
        /// Which backup (index from the newest).
        pick: u8,
    },
    /// Time passes.
    Advance {
        /// Minutes.
        minutes: u16,
    },
    /// FC properties.
    SetFc {
        /// Option bits: incremental, no copy, persistent, inhibit.
        bits: u8,
        /// Minimum Time Frame per Flash, minutes.
        min_mins: u8,
    },
    /// SGC properties.
    SetSgc {
        /// Minimum time between backups, minutes.
        min_mins: u8,
        /// Retention, hours (0 = none).
        retention_h: u8,
        /// Allow manual expiry.
        allow: bool,
        /// Minimum kept.
        min_kept: u8,
    },
    /// A dual-control mode request by a user.
    Mode {
        /// User.
        user: u8,
        /// Mode.
        mode: u8,
    },
    /// Approve, reject or cancel the oldest pending request.
    Answer {
        /// User.
        user: u8,
        /// 0 approve, 1 reject, 2 cancel.
        how: u8,
    },
    /// The Operator's grant: bit i allows `SessionAction::ALL[i]`.
    Grant {
        /// Allowed actions.
        actions: u16,
    },
    /// A host write.
    Write {
        /// Volume 0-7.
        volume: u8,
        /// Track.
        track: u16,
    },
    /// A backup schedule on SGC1.
    Schedule {
        /// Interval, minutes.
        minutes: u16,
    },
    /// The box stops or starts answering.
    ToggleDown,
    /// The engine restarts from its journal.
    Restart,
    /// The answer of the next action that changes the box is lost (the box did it).
    LoseAnswer,
    /// The request of the next action that changes the box is lost.
    LoseRequest,
    /// The box stalls for `minutes` (at least 1) of the world's time, as a stopped
    /// process does: requests queue, unanswered, past their deadlines; then it
    /// takes them in order, as [`Op::Resume`] makes it do at once.
    Stall {
        /// How long, minutes.
        minutes: u8,
    },
    /// A stalled box takes its queued requests, in order.
    Resume,
}

impl Op {
    /// The 4 bytes that decode to this operation (seeds are written with it).
    pub fn encode(&self) -> [u8; 4] {
        match *self {
            Op::Run {
                user,
                session,
                command,
                pick,
            } => [0, (session & 1) << 4 | (user & 3), command, pick],
            Op::Advance { minutes } => {
                let [hi, lo] = minutes.min(MAX_ADVANCE_MINUTES).to_be_bytes();
                [3, hi, lo, 0]
            }
            Op::SetFc { bits, min_mins } => [4, bits, min_mins, 0],
            Op::SetSgc {
                min_mins,
                retention_h,
                allow,
                min_kept,
            } => [5, min_mins, retention_h, u8::from(allow) | min_kept << 1],
            Op::Mode { user, mode } => [6, user, mode, 0],
            Op::Answer { user, how } => [7, user, how, 0],
            Op::Grant { actions } => {
                let [hi, lo] = actions.to_be_bytes();
                [8, hi, lo, 0]
            }
            Op::Write { volume, track } => {
                let [hi, lo] = track.to_be_bytes();
                [9, volume, hi, lo]
            }
            Op::Schedule { minutes } => [10, u8::try_from(minutes / 2).unwrap_or(u8::MAX), 0, 0],
            Op::ToggleDown => [11, 0, 0, 0],
            Op::Restart => [11, 1, 0, 0],
            Op::LoseAnswer => [11, 2, 0, 0],
            Op::LoseRequest => [11, 3, 0, 0],
            Op::Stall { minutes } => [11, 4, minutes, 0],
            Op::Resume => [11, 5, 0, 0],
        }
    }

    /// Decodes operations from raw bytes (4 bytes each; missing bytes read as 0).
    pub fn decode(data: &[u8]) -> Vec<Op> {
        data.chunks(4)
            .map(|c| {
                let b = |i: usize| c.get(i).copied().unwrap_or(0);
                match b(0) % 12 {
                    0..=2 => Op::Run {
                        user: b(1) % 4,
                        session: b(1) >> 4 & 1,
                        command: b(2),
                        pick: b(3),
                    },
                    3 => Op::Advance {
                        minutes: u16::from_be_bytes([b(1), b(2)]) & MAX_ADVANCE_MINUTES,
                    },
                    4 => Op::SetFc {
                        bits: b(1),
                        min_mins: b(2) % 61,
                    },
                    5 => Op::SetSgc {
                        min_mins: b(1) % 61,
                        retention_h: b(2) % 25,
                        allow: b(3) & 1 == 1,
                        min_kept: (b(3) >> 1) % 8,
                    },
                    6 => Op::Mode {
                        user: b(1) % 4,
                        mode: b(2) % 3,
                    },
                    7 => Op::Answer {
                        user: b(1) % 4,
                        how: b(2) % 3,
                    },
                    8 => Op::Grant {
                        actions: u16::from_be_bytes([b(1), b(2)]),
                    },
                    9 => Op::Write {
                        volume: b(1) % 8,
                        track: u16::from_be_bytes([b(2), b(3)]) % 1500,
                    },
                    10 => Op::Schedule {
                        minutes: u16::from(b(1)) * 2,
                    },
                    _ => match b(1) % 6 {
                        0 => Op::ToggleDown,
                        1 => Op::Restart,
                        2 => Op::LoseAnswer,
                        3 => Op::LoseRequest,
                        4 => Op::Stall { minutes: b(2) },
                        _ => Op::Resume,
                    },
                }
            })
            .collect()
    }
}

/// The world every sequence starts from: FC1 (0004→0005, 0006→0007) and SGC1
/// (0000→0002, 0001→0003), users admin, admin2, op (Operator, all sessions) and mon.
/// Built once per thread and cloned: building it is not what an input tests.
pub fn world() -> Harness {
    thread_local! {
        static WORLD: Harness = build_world();
    }
    WORLD.with(Harness::clone)
}

fn build_world() -> Harness {
    // The periodic reconciliation runs every 6 hours of the world's time, not 15
    // minutes: an input advances the clock by up to 68 hours a step, and at 15
    // minutes nine tenths of its time went to rounds that find nothing (an input
    // still reaches it; the invariants are stricter the rarer it repairs).
    let config = EngineConfig {
        reconcile_every_ms: 6 * 60 * MIN,
        copy_poll_interval_ms: 5 * MIN,
        ..EngineConfig::default()
    };
    let mut h = Harness::with_admin(config, "admin");
    let volumes: Vec<_> = (0..8u16)
        .map(|v| {
            (
                VolumeId(v),
                VolumeKind::ckd(100),
                if v < 2 { 100_000 } else { 0 },
            )
        })
        .collect();
    // The box keeps 32 backups a volume (not 500): an input of ordinary length
    // reaches the roll-off, and the periodic reconciliation reads short lists.
    let config = ImageConfig {
        copy_tracks_per_sec: 5,
        max_backups_per_volume: 32,
        ..ImageConfig::default()
    };
    let _ = h.add_box("admin", SERIAL, config, &volumes);
    for (name, role) in [
        ("admin2", Role::Administrator),
        ("op", Role::Operator),
        ("mon", Role::Monitor),
    ] {
        let all = OperatorGrant {
            sessions: SessionScope::All,
            actions: ActionScope::Default,
        };
        h.add_user("admin", name, role, Some(all));
    }
    let v = |n: u16| VolumeRef {
        serial: SERIAL.into(),
        volume: VolumeId(n),
    };
    // SGC1's second copy set has no recovery volume (policy.md §5.1): Recover
    // writes the first's R1 alone.
    for (name, kind, sets) in [
        ("FC1", SessionType::Fc, [(4, Some(5)), (6, Some(7))]),
        ("SGC1", SessionType::Sgc, [(0, Some(2)), (1, None)]),
    ] {
        h.command(
            "admin",
            Command::CreateSession {
                name: name.into(),
                kind,
                description: String::new(),
            },
        );
        h.command(
            "admin",
            Command::AddCopySets {
                session: name.into(),
                copy_sets: sets
                    .iter()
                    .map(|&(a, b)| CopySet {
                        h1: v(a),
                        partner: b.map(v),
                    })
                    .collect(),
            },
        );
    }
    h
}

/// What one sequence reached, by name.
pub type Reached = BTreeSet<&'static str>;

/// Runs `ops` from [`world`], checking the invariants after every step; panics on a
/// violation. With `replay_every_step`, the replayed journal is compared with the
/// engine after each step; otherwise at the end and after settling.
pub fn run(ops: &[Op], replay_every_step: bool) -> Reached {
    let mut runner = Runner::new();
    let mut replica = Replica::new(&runner.harness);
    for op in ops {
        runner.step(op);
        if replay_every_step {
            replica.check(&runner.harness);
        }
    }
    replica.check(&runner.harness);
    settle(&mut runner.harness);
    replica.check(&runner.harness);
    runner.reached
}

/// The box answers again and time passes: every action ends, nothing stays
/// frozen, no session stays busy, and the sessions' backups are the box's
/// (policy.md §10 invariant 8).
fn settle(h: &mut Harness) {
    h.faults.clear();
    h.down.clear();
    h.release();
    h.advance(5 * MIN);
    let state = h.engine.state();
    assert!(
        state.in_flight.is_empty(),
        "actions still under way after the box answered: {:?}",
        state.in_flight.keys().collect::<Vec<_>>()
    );
    for s in state.sessions.values() {
        assert!(s.busy.is_none(), "session {} stays busy", s.name);
    }
    check_box(h);
}

/// What holds after every step: no action carried out twice; nothing frozen and
/// the backups agree once nothing is under way; every action under way while the
/// box answers is one whose outcome is being found out.
fn check_box(h: &Harness) {
    if let Some((id, n)) = h.repeated {
        panic!("action {id} was carried out {n} times on the box");
    }
    let state = h.engine.state();
    for s in state.sessions.values() {
        if let Some(id) = s.busy {
            assert!(
                state.in_flight.contains_key(&id),
                "session {} busy with an action that is not under way",
                s.name
            );
        }
    }
    let Some(image) = h.boxes.get(SERIAL) else {
        return;
    };
    let answering = !h.hold && !h.down.contains(SERIAL);
    if answering {
        for f in state.in_flight.values() {
            assert!(
                f.unknown.is_some() && h.engine.next_deadline().is_some(),
                "action {} waits for an answer that cannot come",
                f.action.id
            );
        }
    }
    if !state.in_flight.is_empty() || !answering {
        return;
    }
    assert!(
        image.frozen_lsss().is_empty(),
        "LSS {:?} frozen with nothing under way",
        image.frozen_lsss()
    );
    if let Some(s) = state.sessions.get("SGC1") {
        let on = |v: u16| -> BTreeSet<u64> {
            image
                .list_backups(VolumeId(v))
                .map(|l| l.iter().map(|b| b.id).collect())
                .unwrap_or_default()
        };
        let (a, b) = (on(0), on(1));
        let session: BTreeSet<u64> = s.backups().iter().map(|b| b.id).collect();
        let union: BTreeSet<u64> = a.union(&b).copied().collect();
        assert!(
            session.is_subset(&union),
            "SGC1 lists backups the box does not hold: {session:?} vs {union:?}"
        );
        for id in a.intersection(&b) {
            assert!(
                session.contains(id),
                "backup {id} on the box is in no session (orphan)"
            );
        }
    }
}

/// Steps one at a time (the store's crash test journals after each).
#[derive(Debug)]
pub struct Runner {
    /// The harness.
    pub harness: Harness,
    /// What was reached so far.
    pub reached: Reached,
    approved: BTreeSet<u64>,
    /// When a stalled box takes its queued requests, if it is stalled.
    stall_ends: Option<u64>,
}

impl Default for Runner {
    fn default() -> Self {
        Runner::new()
    }
}

impl Runner {
    /// From [`world`].
    pub fn new() -> Runner {
        Runner {
            harness: world(),
            reached: Reached::new(),
            approved: BTreeSet::new(),
            stall_ends: None,
        }
    }

    /// One operation, its invariants checked.
    pub fn step(&mut self, op: &Op) {
        step(
            &mut self.harness,
            op,
            &mut self.reached,
            &mut self.approved,
            &mut self.stall_ends,
        );
    }
}

/// The journal replayed as it grows: [`State::apply`] of each record once, in
/// order, which is what [`Engine::replay`] does from the start (so a check costs
/// the records since the last one, not the whole journal).
struct Replica {
    state: State,
    applied: usize,
}

impl Replica {
    fn new(h: &Harness) -> Replica {
        Replica {
            state: State::new(h.engine.config().request_lifetime_ms),
            applied: 0,
        }
    }

    /// Replays the records journaled since the last check; the state must be the
    /// engine's.
    fn check(&mut self, h: &Harness) {
        for record in &h.journal[self.applied.min(h.journal.len())..] {
            self.state.apply(record);
        }
        self.applied = h.journal.len();
        assert_eq!(
            &self.state,
            h.engine.state(),
            "replaying the journal does not rebuild the engine"
        );
        assert!(
            h.engine.timers_agree(),
            "the engine's index of copying sessions and retention due is stale"
        );
    }
}

fn session_command(session: &str, code: u8, pick: u8, h: &Harness) -> SessionCommand {
    let backups = h
        .engine
        .state()
        .sessions
        .get(session)
        .map(|s| s.backups().to_vec())
        .unwrap_or_default();
    let backup = backups
        .iter()
        .rev()
        .nth(usize::from(pick) % backups.len().max(1))
        .map_or(1, |b| b.id);
    match code % 9 {
        0 => SessionCommand::Flash,
        1 => SessionCommand::InitiateBackgroundCopy,
        2 => SessionCommand::Terminate,
        3 => SessionCommand::RefreshStates,
        4 => SessionCommand::Backup,
        5 => SessionCommand::RecoverBackup(backup),
        6 => SessionCommand::ExpireBackup(backup),
        7 => SessionCommand::RestoreBackupToProduction(backup),
        _ => SessionCommand::TerminateH1R1,
    }
}

fn ran(reply: &Reply) -> bool {
    matches!(reply.outcome, Outcome::Done | Outcome::Started(_))
}

fn step(
    h: &mut Harness,
    op: &Op,
    reached: &mut Reached,
    approved: &mut BTreeSet<u64>,
    stall_ends: &mut Option<u64>,
) {
    let sgc_before = h
        .engine
        .state()
        .sessions
        .get("SGC1")
        .map(|s| s.backups().len())
        .unwrap_or(0);
    // Only this step's console messages are read: the console grows with the input.
    let console_before = h.console.len();
    match *op {
        Op::Run {
            user,
            session,
            command,
            pick,
        } => {
            let user = USERS[usize::from(user)];
            let session = SESSIONS[usize::from(session)];
            let command = session_command(session, command, pick, h);
            let principal = h.engine.principal(user);
            let s = h.engine.state().sessions.get(session).cloned();
            let mode = h.engine.state().dual.mode();
            let now = h.now_ms;
            let reply = h.command(
                user,
                Command::Run {
                    session: session.into(),
                    command,
                },
            );
            if ran(&reply) {
                reached.insert("command ran");
                let (Some(p), Some(s)) = (principal, s) else {
                    panic!("a command ran for an unknown user or session");
                };
                // An Operator never runs an ungranted action.
                assert!(
                    p.may_run(session, command.action()).is_ok(),
                    "{user} ran {command:?} without a grant"
                );
                // No gated action runs without approval.
                let change = Change::Session {
                    session: session.into(),
                    kind: s.kind(),
                    action: command.action(),
                };
                assert!(
                    !change.is_gated(mode),
                    "{command:?} ran in {mode:?} without approval"
                );
                // No Flash inside the minimum time frame.
                if let (SessionCommand::Flash, Properties::Fc(fc), Some(last)) =
                    (command, &s.properties, s.last_flash_ms())
                {
                    assert!(
                        fc.min_flash_interval_mins == 0
                            || now >= last + u64::from(fc.min_flash_interval_mins) * MIN,
                        "Flash inside the minimum time frame"
                    );
                    reached.insert("reflash");
                }
            }
            if matches!(reply.outcome, Outcome::Requested(_)) {
                reached.insert("request filed");
            }
        }
        Op::Advance { minutes } => {
            let until = h.now_ms + u64::from(minutes) * MIN;
            if let Some(end) = stall_ends.filter(|&end| end <= until) {
                h.advance(end.saturating_sub(h.now_ms));
                h.release();
                *stall_ends = None;
            }
            h.advance(until.saturating_sub(h.now_ms));
        }
        Op::SetFc { bits, min_mins } => {
            h.command(
                "admin",
                Command::SetProperties {
                    session: "FC1".into(),
                    properties: Properties::Fc(FcProperties {
                        incremental: bits & 1 != 0,
                        no_copy: bits & 2 != 0,
                        persistent: bits & 4 != 0,
                        inhibit_target_writes: bits & 8 != 0,
                        min_flash_interval_mins: u32::from(min_mins),
                        host_system: None,
                    }),
                },
            );
        }
        Op::SetSgc {
            min_mins,
            retention_h,
            allow,
            min_kept,
        } => {
            h.command(
                "admin",
                Command::SetProperties {
                    session: "SGC1".into(),
                    properties: Properties::Sgc(SgcProperties {
                        policy: SgcPolicy {
                            retention_ms: u64::from(retention_h) * 60 * MIN,
                            min_interval_ms: u64::from(min_mins) * MIN,
                            allow_manual_expiry: allow,
                            min_kept: usize::from(min_kept),
                        },
                        host_system: None,
                    }),
                },
            );
        }
        Op::Mode { user, mode } => {
            let mode = [
                DualControlMode::Off,
                DualControlMode::FullProtection,
                DualControlMode::SafeguardedCopy,
            ][usize::from(mode)];
            let before = h.engine.state().dual.mode();
            let reply = h.command(USERS[usize::from(user)], Command::SetDualControlMode(mode));
            assert!(
                !ran(&reply),
                "a mode change ran without a second user: {reply:?}"
            );
            assert_eq!(
                h.engine.state().dual.mode(),
                before,
                "the mode changed without approval"
            );
        }
        Op::Answer { user, how } => {
            let user = USERS[usize::from(user)];
            let Some(request) = h.engine.state().dual.pending().next().cloned() else {
                return;
            };
            let id = request.id;
            let command = match how {
                0 => Command::Approve { id },
                1 => Command::Reject {
                    id,
                    comment: "no".into(),
                },
                _ => Command::Cancel { id },
            };
            let reply = h.command(user, command);
            let accepted =
                !matches!(reply.outcome, Outcome::Refused(c) if (0x1101..=0x1203).contains(&c));
            if how == 0 && accepted {
                reached.insert("approved");
                assert_ne!(
                    request.requester, user,
                    "a requester approved its own request"
                );
                assert!(approved.insert(id), "request {id} approved twice");
                let approver = h.engine.principal(user);
                assert!(
                    approver.is_some_and(|p| request.change.authorized(&p).is_ok()),
                    "{user} approved without authority"
                );
            }
        }
        Op::Grant { actions } => {
            // Sixteen bits for the first sixteen actions: the harness's sessions are
            // FC and SGC (one image, no z/OS), so the Remote Copy actions after
            // them name nothing it can run.
            let selected = SessionAction::ALL
                .iter()
                .take(16)
                .enumerate()
                .filter(|(i, _)| actions & (1u16 << i) != 0)
                .map(|(_, a)| *a)
                .collect();
            h.command(
                "admin",
                Command::SetUserRole {
                    name: "op".into(),
                    role: Role::Operator,
                    grant: Some(OperatorGrant {
                        sessions: SessionScope::All,
                        actions: ActionScope::Selected(selected),
                    }),
                },
            );
        }
        Op::Write { volume, track } => {
            let now = h.now_ms;
            if let Some(image) = h.boxes.get_mut(SERIAL) {
                let _ = image.write_track(now, VolumeId(u16::from(volume)), u32::from(track), now);
            }
            h.pump();
        }
        Op::Schedule { minutes } => {
            let reply = h.command(
                "admin",
                Command::CreateTask {
                    description: String::new(),
                    name: "backups".into(),
                    session: "SGC1".into(),
                    command: SessionCommand::Backup,
                    schedule: Schedule::Interval {
                        start_ms: h.now_ms + MIN,
                        interval_ms: u64::from(minutes) * MIN,
                    },
                    enabled: true,
                },
            );
            if u64::from(minutes) < 30 {
                assert!(
                    !ran(&reply),
                    "a backup schedule under 30 minutes was accepted"
                );
            }
        }
        Op::ToggleDown => {
            if !h.down.remove(SERIAL) {
                h.down.insert(SERIAL.into());
            }
        }
        Op::Restart => {
            h.restart();
            reached.insert("restart");
        }
        Op::LoseAnswer => h.faults.push_back(crate::harness::Fault::LoseAnswer),
        Op::LoseRequest => h.faults.push_back(crate::harness::Fault::LoseRequest),
        Op::Stall { minutes } => {
            h.hold = true;
            *stall_ends = Some(h.now_ms + u64::from(minutes.max(1)) * MIN);
        }
        Op::Resume => {
            h.release();
            *stall_ends = None;
        }
    }
    let said = |id: MessageId| {
        h.console[console_before.min(h.console.len())..]
            .iter()
            .any(|m| m.id == id)
    };
    if said(ids::OUTCOME_FOUND) || said(ids::OUTCOME_UNKNOWN) {
        reached.insert("outcome found out");
    }
    check_box(h);
    // No sequence drops SGC1 below its minimum backups (but Terminate, which removes
    // them all, and the box's own roll-off).
    if let Some(s) = h.engine.state().sessions.get("SGC1") {
        let n = s.backups().len();
        if let Properties::Sgc(p) = &s.properties
            && n < sgc_before
            && n > 0
            && !said(ids::BACKUP_ROLLED_OFF)
        {
            assert!(
                n >= p.policy.min_kept,
                "SGC1 dropped to {n} backups; it keeps {}",
                p.policy.min_kept
            );
            reached.insert("backups expired");
        }
        if n >= 3 {
            reached.insert("three backups");
        }
    }
}

/// The fuzz target's entry point.
pub fn engine_ops(data: &[u8]) {
    engine_ops_reach(data);
}

/// [`engine_ops`], saying what the input reached.
pub fn engine_ops_reach(data: &[u8]) -> Reached {
    let ops = Op::decode(data);
    if ops.len() > 256 {
        return Reached::new();
    }
    run(&ops, false)
}

/// A sequence that reaches every named place (the committed seed, and the test
/// that the property tests are not vacuous).
pub fn tour() -> Vec<Op> {
    vec![
        // Faults first: a backup whose answer is lost, a flash on a stalled box.
        Op::LoseAnswer,
        Op::Run {
            user: 0,
            session: 1,
            command: 4,
            pick: 0,
        },
        Op::Stall { minutes: 60 },
        Op::Run {
            user: 0,
            session: 0,
            command: 0,
            pick: 0,
        },
        Op::Advance { minutes: 2 },
        Op::Resume,
        Op::Advance { minutes: 1 },
        Op::SetSgc {
            min_mins: 0,
            retention_h: 1,
            allow: true,
            min_kept: 2,
        },
        Op::Schedule { minutes: 30 },
        Op::Advance { minutes: 300 },
        Op::Run {
            user: 0,
            session: 1,
            command: 6,
            pick: 3,
        },
        Op::Run {
            user: 0,
            session: 0,
            command: 0,
            pick: 0,
        },
        Op::Restart,
        Op::Advance { minutes: 30 },
        Op::SetFc {
            bits: 0,
            min_mins: 10,
        },
        Op::Advance { minutes: 11 },
        Op::Run {
            user: 2,
            session: 0,
            command: 0,
            pick: 0,
        },
        Op::Mode { user: 0, mode: 2 },
        Op::Answer { user: 1, how: 0 },
        Op::Run {
            user: 2,
            session: 1,
            command: 5,
            pick: 1,
        },
        Op::Answer { user: 0, how: 0 },
        Op::Advance { minutes: 5 },
    ]
}

/// Every place [`tour`] reaches.
pub const TOUR_REACHES: [&str; 8] = [
    "outcome found out",
    "command ran",
    "reflash",
    "request filed",
    "approved",
    "backups expired",
    "three backups",
    "restart",
];
