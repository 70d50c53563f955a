//! A deterministic simulation of the active/standby pair (test-only, feature
//! `testkit`; protocol-specs/ha.md). Two servers, each an [`Engine`] with a journal
//! that models power loss (what the engine decided is lost at a crash until it is
//! synced; no destructor flushes), a link that delivers the record stream and the
//! acknowledgements in order, with delays, breaks and partitions, and one simulated
//! DS8000 that both reach. One seed picks every event: client commands, syncs,
//! publishing, deliveries, time, crashes, restarts, partitions, takeovers, probes.
//! The servers decide as the product does: the HELLO table, batch checks and
//! fencing of `proto::ha::rules`, the engine's takeover (`Engine::from_state`,
//! `resume_in_flight`), the publisher's gate (nothing of a batch leaves the active
//! before the standby acknowledged it, while it is synchronised, in `sync` mode).
//!
//! The box fences by epoch as the product's does (`ds8k::FenceTable`, ds8k.md §3.4):
//! every changing request carries its sender's epoch, a new active shows the box its
//! epoch as it takes over when it can reach it, and a server whose request is
//! refused as `FENCED` stops acting.
//!
//! Checked after every event: never two servers active in the same epoch; no
//! storage action carried out twice by the box; no changing action carried out by
//! the box from an epoch older than one the box had already been shown; the
//! standby's state equals the active's whenever it holds everything the active
//! stored. After every takeover and at the end: no change acknowledged with the
//! standby's acknowledgement is missing from the active's journal. At the end,
//! after the pair settles: no LSS is left frozen. The simulation's one assumption
//! is the operator's: a takeover is made when the standby has lost its active (the
//! active is down, or the link between them is); the old active may still reach the
//! box.

use std::collections::{BTreeMap, VecDeque};

use crate::ds8k::{Fence, FenceTable};
use crate::policy::console::ConsoleMessage;
use crate::policy::engine::{Command, Engine, Record, State};
use crate::policy::session::SessionCommand;
use crate::policy::storage::{ActionId, StorageAction, StorageOp, StorageOutcome};
use crate::proto::ha::HaPurpose;
use crate::proto::ha::rules::{
    FollowAnswer, Follower, Listener, Partnership, answer_follow, check_batch, fenced,
    synchronized, takeover_epoch,
};
use crate::testkit::harness::Harness;

const ADMIN: &str = "admin";
const MIN: u64 = 60_000;

/// The pair's fence domain on the boxes.
const PAIR_DOMAIN: u64 = 0x5A47;

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Events run.
    pub events: usize,
    /// Takeovers.
    pub takeovers: u32,
    /// Crashes.
    pub crashes: u32,
    /// Servers fenced by a higher epoch.
    pub fenced: u32,
    /// Full copies and resumed streams.
    pub full_copies: u32,
    /// Resumed streams.
    pub resumes: u32,
    /// Changes acknowledged with the standby's acknowledgement.
    pub acknowledged: usize,
    /// Storage actions that changed the box.
    pub carried_out: usize,
    /// Changing requests the box refused as `FENCED`.
    pub refused_by_fence: u32,
}

/// A batch the engine decided: its records, the storage actions it starts, and
/// whether a client waits for it.
#[derive(Debug, Clone, Default)]
struct Batch {
    records: Vec<Record>,
    actions: Vec<StorageAction>,
    reply: bool,
    last: u64,
}

#[derive(Debug, Clone)]
struct Server {
    up: bool,
    active: bool,
    engine: Engine,
    /// Durable: (sequence number, epoch, record).
    journal: Vec<(u64, u64, Record)>,
    /// The highest epoch this server's store has seen.
    epoch: u64,
    /// The epoch its records are written in: its store's last begun epoch (a
    /// takeover begins one; a fencing only raises `epoch`).
    term: u64,
    /// Decided, not yet synced: lost at a crash.
    pending: Vec<Batch>,
    /// Durable, not yet published (answers, actions).
    unpublished: VecDeque<Batch>,
    /// Answers of storage actions, not yet heard by the engine.
    inbox: VecDeque<(ActionId, StorageOutcome)>,
    /// Actions sent whose answer will never come: the shell's deadline.
    outstanding: Vec<(u64, ActionId)>,
    /// The epoch of each action's `ActionStarted` record in this journal.
    action_epoch: BTreeMap<ActionId, u64>,
    /// The next HELLO asks for a full copy.
    full_copy: bool,
    /// Cut off from its partner and the box.
    isolated: bool,
    /// The newest epoch a box told it of when it refused a request as `FENCED`.
    overtaken: u64,
}

impl Server {
    fn last(&self) -> u64 {
        self.journal.last().map_or(0, |r| r.0)
    }

    fn last_epoch(&self) -> u64 {
        self.journal.last().map_or(0, |r| r.1)
    }

    fn state(&self, lifetime: u64) -> State {
        let mut state = State::new(lifetime);
        for (_, _, r) in &self.journal {
            state.apply(r);
        }
        state
    }

    /// Takes what the engine decided as one batch.
    fn collect(&mut self, reply: bool) {
        let records: Vec<Record> = std::iter::from_fn(|| self.engine.poll_record()).collect();
        let actions: Vec<StorageAction> =
            std::iter::from_fn(|| self.engine.poll_storage_action()).collect();
        let _: Vec<ConsoleMessage> = std::iter::from_fn(|| self.engine.poll_console()).collect();
        while self.engine.poll_finished().is_some() {}
        if !records.is_empty() || !actions.is_empty() || reply {
            self.pending.push(Batch {
                records,
                actions,
                reply,
                last: 0,
            });
        }
    }

    /// The pending batches become durable (an fsync).
    fn sync(&mut self) {
        for mut batch in std::mem::take(&mut self.pending) {
            for record in &batch.records {
                let seq = self.last() + 1;
                if let Record::ActionStarted(f) = record {
                    self.action_epoch.insert(f.action.id, self.term);
                }
                self.journal.push((seq, self.term, record.clone()));
            }
            batch.last = self.last();
            self.unpublished.push_back(batch);
        }
    }
}

/// The link between the two servers.
#[derive(Debug, Clone, Default)]
struct Link {
    /// Not partitioned.
    up: bool,
    /// A standby follows the active: (active, standby).
    stream: Option<(usize, usize)>,
    sent: u64,
    acked: u64,
    backlog: u64,
    synced: bool,
    to_standby: VecDeque<Vec<(u64, u64, Record)>>,
    to_active: VecDeque<u64>,
}

impl Link {
    fn cut(&mut self) {
        self.stream = None;
        self.synced = false;
        self.to_standby.clear();
        self.to_active.clear();
    }
}

/// The simulation.
pub struct PairSim {
    rng: u64,
    sync_mode: bool,
    world: Harness,
    servers: [Server; 2],
    link: Link,
    /// (sequence number, epoch, record) of every change acknowledged with the
    /// standby's acknowledgement.
    acknowledged: Vec<(u64, u64, Record)>,
    /// How often the box carried out each action, by (epoch of its start, id).
    carried: BTreeMap<(u64, ActionId), u32>,
    /// Each box's fence table (the pair is one domain), as the product's box keeps it.
    fences: BTreeMap<String, FenceTable>,
    /// The newest epoch each box has been shown, kept apart from the table: the
    /// check that no older epoch's change is carried out after it.
    shown: BTreeMap<String, u64>,
    /// The first change the box carried out from an epoch older than one it had
    /// been shown: (action, its epoch, the newer epoch).
    late: Option<(ActionId, u64, u64)>,
    trace: VecDeque<String>,
    report: Report,
    sessions: u32,
}

impl PairSim {
    /// The pair at the start: the fuzzing world (a box, users, an FC and an SGC
    /// session) on both servers, server 0 active and the standby synchronised, in
    /// `sync` or asynchronous mode.
    pub fn new(seed: u64, sync_mode: bool) -> PairSim {
        let world = crate::testkit::fuzzing::engine::world();
        let journal: Vec<(u64, u64, Record)> = world
            .journal
            .iter()
            .enumerate()
            .map(|(i, r)| (i as u64 + 1, 1, r.clone()))
            .collect();
        let lifetime = world.engine.config().request_lifetime_ms;
        let server = |active: bool| {
            let mut s = Server {
                up: true,
                active,
                engine: world.engine.clone(),
                journal: journal.clone(),
                epoch: 1,
                term: 1,
                pending: Vec::new(),
                unpublished: VecDeque::new(),
                inbox: VecDeque::new(),
                outstanding: Vec::new(),
                action_epoch: BTreeMap::new(),
                full_copy: false,
                isolated: false,
                overtaken: 0,
            };
            if !active {
                s.engine = Engine::from_state(s.state(lifetime), world.engine.config());
            }
            s
        };
        let last = journal.len() as u64;
        PairSim {
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            sync_mode,
            servers: [server(true), server(false)],
            link: Link {
                up: true,
                stream: Some((0, 1)),
                sent: last,
                acked: last,
                backlog: last,
                synced: true,
                ..Link::default()
            },
            world,
            acknowledged: Vec::new(),
            carried: BTreeMap::new(),
            fences: BTreeMap::new(),
            shown: BTreeMap::new(),
            late: None,
            trace: VecDeque::new(),
            report: Report::default(),
            sessions: 0,
        }
    }

    fn next(&mut self, n: u64) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % n.max(1)
    }

    fn note(&mut self, what: String) {
        if self.trace.len() == 2000 {
            self.trace.pop_front();
        }
        self.trace.push_back(what);
    }

    fn fail(&self, why: String) -> String {
        let trace: Vec<&str> = self.trace.iter().map(String::as_str).collect();
        format!("{why}\nlast events:\n  {}", trace.join("\n  "))
    }

    fn lifetime(&self) -> u64 {
        self.world.engine.config().request_lifetime_ms
    }

    fn now(&self) -> u64 {
        self.world.now_ms
    }

    /// Runs `events` random events, then settles the pair; the report, or the
    /// violation with the events that led to it.
    pub fn run(mut self, events: usize) -> Result<Report, String> {
        for _ in 0..events {
            self.event()?;
            self.heed_the_boxes();
            self.report.events += 1;
            self.check()?;
        }
        self.settle()?;
        self.report.acknowledged = self.acknowledged.len();
        self.report.carried_out = self.carried.len();
        Ok(self.report)
    }

    /// An active that a box refused as `FENCED` stops acting (ha.md §7).
    fn heed_the_boxes(&mut self) {
        for i in 0..2 {
            let s = &self.servers[i];
            if s.up && s.active && s.overtaken > s.term {
                let newer = s.overtaken;
                self.note(format!("server {i} learns epoch {newer} from a box"));
                self.fence_at(i, newer);
            }
        }
    }

    fn event(&mut self) -> Result<(), String> {
        let which = self.next(100);
        let i = self.next(2) as usize;
        match which {
            0..=21 => self.client(),
            22..=31 => self.sync(i),
            32..=43 => self.publish(i),
            44..=51 => self.deliver_result(i),
            52..=56 => {
                let ms = 1_000 + self.next(40 * MIN);
                self.advance(ms);
            }
            57..=81 => self.network()?,
            82..=86 => self.connect()?,
            87 => self.crash(i),
            88..=89 => self.restart(i),
            90 => {
                self.link.up = false;
                self.link.cut();
                self.note("link down".into());
            }
            91 => {
                self.servers[i].isolated = true;
                self.link.cut();
                self.note(format!("server {i} isolated"));
            }
            92..=96 => {
                if !self.link.up || self.servers.iter().any(|s| s.isolated) {
                    self.link.up = true;
                    for s in &mut self.servers {
                        s.isolated = false;
                    }
                    self.note("healed".into());
                }
            }
            _ => self.takeover()?,
        }
        Ok(())
    }

    /// A client's command to the active (a standby refuses and nothing is decided).
    fn client(&mut self) {
        let Some(i) = (0..2).find(|&i| self.servers[i].up && self.servers[i].active) else {
            return;
        };
        let session = if self.next(2) == 0 { "FC1" } else { "SGC1" };
        let newest = self.servers[i]
            .engine
            .state()
            .sessions
            .get(session)
            .and_then(|s| s.backups().last().map(|b| b.id))
            .unwrap_or(1);
        let command = match self.next(9) {
            0 | 1 => {
                self.sessions += 1;
                Command::CreateSession {
                    name: format!("S{}", self.sessions),
                    kind: crate::policy::SessionType::Fc,
                    description: String::new(),
                }
            }
            2 => Command::SetDescription {
                session: session.into(),
                description: format!("d{}", self.next(1000)),
            },
            c => Command::Run {
                session: session.into(),
                command: match c {
                    3 => SessionCommand::Flash,
                    4 => SessionCommand::Backup,
                    5 => SessionCommand::Terminate,
                    6 => SessionCommand::RefreshStates,
                    7 => SessionCommand::ExpireBackup(newest),
                    _ => SessionCommand::RecoverBackup(newest),
                },
            },
        };
        let now = self.now();
        self.note(format!("client → {i}: {command:?}"));
        let s = &mut self.servers[i];
        s.engine.handle_command(ADMIN, command, now);
        s.collect(true);
    }

    fn sync(&mut self, i: usize) {
        if self.servers[i].up && !self.servers[i].pending.is_empty() {
            self.servers[i].sync();
            self.note(format!("sync {i} to {}", self.servers[i].last()));
        }
    }

    /// The active's publisher: batches in order, each held while the standby is
    /// synchronised and has not acknowledged it (sync mode).
    fn publish(&mut self, i: usize) {
        if !self.servers[i].up || !self.servers[i].active {
            return;
        }
        let streaming = self.link.stream.map(|(a, _)| a) == Some(i) && self.link.synced;
        while let Some(front) = self.servers[i].unpublished.front() {
            let waits = self.sync_mode && streaming;
            if waits && self.link.acked < front.last {
                break;
            }
            let Some(batch) = self.servers[i].unpublished.pop_front() else {
                break;
            };
            self.note(format!(
                "publish {i} up to {} (standby holds it: {waits})",
                batch.last
            ));
            if batch.reply && waits {
                let first = batch.last + 1 - batch.records.len() as u64;
                let epoch = self.servers[i].journal[(first.max(1) - 1) as usize..]
                    .first()
                    .map_or(0, |r| r.1);
                for (k, r) in batch.records.iter().enumerate() {
                    self.acknowledged.push((first + k as u64, epoch, r.clone()));
                }
            }
            for action in batch.actions {
                self.dispatch(i, action);
            }
        }
    }

    fn dispatch(&mut self, i: usize, action: StorageAction) {
        let now = self.now();
        let deadline = if action.not_after_ms == 0 {
            now + self.servers[i].engine.config().storage_deadline_ms
        } else {
            action.not_after_ms
        };
        if self.servers[i].isolated {
            self.servers[i].outstanding.push((deadline, action.id));
            return;
        }
        let changes = !action.op.is_read() && !matches!(action.op, StorageOp::Thaw { .. });
        // ds8k.md §3.4: every request that changes the box (a thaw too) carries the
        // epoch its server writes in; the box refuses an older one.
        let term = self.servers[i].term;
        let shown_before = self.shown.get(&action.serial).copied().unwrap_or(0);
        if !action.op.is_read() {
            let fence = Fence {
                domain: PAIR_DOMAIN,
                epoch: term,
            };
            let table = self.fences.entry(action.serial.clone()).or_default();
            if let Err(refused) = table.admit(fence) {
                let seen = table.epoch_of(PAIR_DOMAIN);
                self.report.refused_by_fence += 1;
                let s = &mut self.servers[i];
                s.overtaken = s.overtaken.max(seen);
                s.inbox.push_back((
                    action.id,
                    StorageOutcome::Failed {
                        reason: refused.reason.0,
                        text: refused.detail,
                    },
                ));
                self.note(format!("box refused action {} of epoch {term}", action.id));
                return;
            }
            self.shown
                .insert(action.serial.clone(), shown_before.max(term));
        }
        let outcome = self.world.execute(&action);
        let carried = !matches!(outcome, StorageOutcome::Failed { .. });
        if changes && carried && term < shown_before {
            self.late.get_or_insert((action.id, term, shown_before));
        }
        if changes && carried {
            let epoch = self.servers[i]
                .action_epoch
                .get(&action.id)
                .copied()
                .unwrap_or(self.servers[i].term);
            *self.carried.entry((epoch, action.id)).or_default() += 1;
        }
        if self.next(10) == 0 {
            // The answer is lost on the way back.
            self.servers[i].outstanding.push((deadline, action.id));
        } else {
            self.servers[i].inbox.push_back((action.id, outcome));
        }
    }

    fn deliver_result(&mut self, i: usize) {
        let now = self.now();
        let s = &mut self.servers[i];
        if !s.up || !s.active {
            return;
        }
        if let Some((id, outcome)) = s.inbox.pop_front() {
            s.engine.handle_storage_result(id, outcome, now);
            s.collect(false);
        }
    }

    fn advance(&mut self, ms: u64) {
        self.world.now_ms += ms;
        let now = self.now();
        for image in self.world.boxes.values_mut() {
            image.tick(now);
        }
        for s in &mut self.servers {
            if !s.up || !s.active {
                continue;
            }
            let (due, left): (Vec<_>, Vec<_>) = s.outstanding.iter().partition(|(d, _)| *d <= now);
            s.outstanding = left;
            for (_, id) in due {
                let unknown = StorageOutcome::Unknown {
                    text: "no answer before the storage deadline".into(),
                };
                s.engine.handle_storage_result(id, unknown, now);
            }
            s.engine.handle_timeout(now);
            s.collect(false);
        }
        self.note(format!("time +{} s", ms / 1000));
    }

    /// One step of the stream: the active sends, or the standby stores and
    /// acknowledges, or the active hears an acknowledgement.
    fn network(&mut self) -> Result<(), String> {
        let Some((a, s)) = self.link.stream else {
            return Ok(());
        };
        if !self.servers[a].up || !self.servers[s].up {
            self.link.cut();
            return Ok(());
        }
        match self.next(3) {
            0 => {
                let last = self.servers[a].last();
                if self.link.sent < last {
                    let upto = (self.link.sent + 1 + self.next(5)).min(last);
                    let batch: Vec<_> =
                        self.servers[a].journal[self.link.sent as usize..upto as usize].to_vec();
                    self.link.sent = upto;
                    self.link.to_standby.push_back(batch);
                }
            }
            1 => {
                if let Some(batch) = self.link.to_standby.pop_front() {
                    let st = &mut self.servers[s];
                    match check_batch(st.last(), st.last_epoch(), batch.iter().map(|r| (r.0, r.1)))
                    {
                        Ok(_) => {
                            for (seq, epoch, record) in batch {
                                st.engine.follow(&record);
                                st.epoch = st.epoch.max(epoch);
                                st.term = st.term.max(epoch);
                                st.journal.push((seq, epoch, record));
                            }
                            let last = st.last();
                            self.link.to_active.push_back(last);
                            self.note(format!("standby {s} stored up to {last}"));
                        }
                        Err(refusal) => {
                            st.full_copy = true;
                            self.link.cut();
                            self.note(format!("standby {s} refused a batch: {refusal:?}"));
                        }
                    }
                }
            }
            _ => {
                if let Some(seq) = self.link.to_active.pop_front() {
                    self.link.acked = self.link.acked.max(seq);
                    if synchronized(self.link.acked, self.link.backlog) {
                        self.link.synced = true;
                    }
                }
            }
        }
        Ok(())
    }

    /// A standby's HELLO, or a probe between two actives (ha.md §5.1, §7).
    fn connect(&mut self) -> Result<(), String> {
        if !self.link.up || self.link.stream.is_some() {
            return Ok(());
        }
        if !self.servers.iter().all(|s| s.up && !s.isolated) {
            return Ok(());
        }
        match (self.servers[0].active, self.servers[1].active) {
            (true, true) => {
                for i in 0..2 {
                    let (me, them) = (&self.servers[i], &self.servers[1 - i]);
                    if fenced(me.active, me.epoch, them.active, them.epoch) {
                        self.fence(i);
                        return Ok(());
                    }
                }
                Err(self.fail(format!(
                    "two actives in epoch {} and {}",
                    self.servers[0].epoch, self.servers[1].epoch
                )))
            }
            (false, false) => Err(self.fail("two standbys".into())),
            (a0, _) => {
                let (a, s) = if a0 { (0, 1) } else { (1, 0) };
                let (act, st) = (&self.servers[a], &self.servers[s]);
                let journal = &act.journal;
                let epoch_at = |seq: u64| {
                    (seq >= 1)
                        .then(|| journal.get(seq as usize - 1).map(|r| r.1))
                        .flatten()
                };
                let answer = answer_follow(
                    &Listener {
                        active: true,
                        epoch: act.epoch,
                        last_seq: act.last(),
                        first_held: 1,
                        partnership: Partnership::Partner,
                        epoch_at: &epoch_at,
                    },
                    &Follower {
                        purpose: if st.full_copy {
                            HaPurpose::RESYNC
                        } else {
                            HaPurpose::FOLLOW
                        },
                        epoch: st.epoch,
                        last_seq: st.last(),
                        last_epoch: st.last_epoch(),
                    },
                );
                let last = act.last();
                // The standby notes the active's epoch from its answer (ha.md §7).
                let seen = act.epoch;
                self.servers[s].epoch = self.servers[s].epoch.max(seen);
                match answer {
                    FollowAnswer::Resume { after } => {
                        self.report.resumes += 1;
                        self.start_stream(a, s, after, last);
                        self.note(format!("standby {s} resumes after {after}"));
                    }
                    FollowAnswer::FullCopy => {
                        self.report.full_copies += 1;
                        let lifetime = self.lifetime();
                        let config = self.servers[a].engine.config();
                        let copy = self.servers[a].journal.clone();
                        let (epoch, term) = (self.servers[a].epoch, self.servers[a].term);
                        let st = &mut self.servers[s];
                        st.journal = copy;
                        st.epoch = epoch;
                        st.term = term;
                        st.full_copy = false;
                        st.action_epoch.clear();
                        st.engine = Engine::from_state(st.state(lifetime), config);
                        self.start_stream(a, s, last, last);
                        self.note(format!("standby {s} gets a full copy at {last}"));
                    }
                    FollowAnswer::ListenerIsStale => self.fence(a),
                    FollowAnswer::Refuse(_) => {}
                }
                Ok(())
            }
        }
    }

    fn start_stream(&mut self, a: usize, s: usize, after: u64, backlog: u64) {
        self.link.stream = Some((a, s));
        self.link.sent = after;
        self.link.acked = after;
        self.link.backlog = backlog;
        self.link.synced = synchronized(after, backlog);
    }

    /// A server sees a higher epoch: what it decided is stored and published, then
    /// it stops acting; answers of its actions still under way reach nobody.
    fn fence(&mut self, i: usize) {
        let theirs = self.servers[1 - i].epoch;
        self.fence_at(i, theirs);
    }

    /// A server sees epoch `theirs` above its own (from its partner or a box).
    fn fence_at(&mut self, i: usize, theirs: u64) {
        self.report.fenced += 1;
        // The epoch that fenced it is noted first (ha.md §7).
        self.servers[i].epoch = self.servers[i].epoch.max(theirs);
        self.servers[i].sync();
        while let Some(batch) = self.servers[i].unpublished.pop_front() {
            for action in batch.actions {
                self.dispatch(i, action);
            }
        }
        let lifetime = self.lifetime();
        let s = &mut self.servers[i];
        s.active = false;
        s.inbox.clear();
        s.outstanding.clear();
        s.engine = Engine::from_state(s.state(lifetime), s.engine.config());
        self.note(format!("server {i} fenced"));
    }

    fn crash(&mut self, i: usize) {
        let s = &mut self.servers[i];
        if !s.up {
            return;
        }
        s.up = false;
        s.overtaken = 0;
        s.pending.clear();
        s.unpublished.clear();
        s.inbox.clear();
        s.outstanding.clear();
        self.report.crashes += 1;
        if self.link.stream.is_some_and(|(a, b)| a == i || b == i) {
            self.link.cut();
        }
        self.note(format!("server {i} crashed"));
    }

    fn restart(&mut self, i: usize) {
        if self.servers[i].up {
            return;
        }
        let lifetime = self.lifetime();
        let now = self.now();
        let s = &mut self.servers[i];
        s.up = true;
        s.engine = Engine::from_state(s.state(lifetime), s.engine.config());
        if s.active {
            s.engine.resume_in_flight(now);
            s.collect(false);
        }
        let role = if s.active { "active" } else { "standby" };
        self.note(format!("server {i} restarted ({role})"));
    }

    /// The operator's takeover on the standby, when the active is down or cut off.
    fn takeover(&mut self) -> Result<(), String> {
        let Some(s) = (0..2).find(|&i| self.servers[i].up && !self.servers[i].active) else {
            return Ok(());
        };
        let other = &self.servers[1 - s];
        if other.up && !other.isolated && self.link.up {
            return Ok(());
        }
        self.link.cut();
        let lifetime = self.lifetime();
        let now = self.now();
        let st = &mut self.servers[s];
        st.epoch = takeover_epoch(st.epoch);
        st.term = st.epoch;
        st.active = true;
        st.engine = Engine::from_state(st.state(lifetime), st.engine.config());
        st.engine.resume_in_flight(now);
        st.collect(false);
        let (epoch, reaches_box) = (st.epoch, !st.isolated);
        self.report.takeovers += 1;
        if reaches_box {
            // FENCE to every box (ds8k.md §3.4).
            for serial in self.world.boxes.keys() {
                let fence = Fence {
                    domain: PAIR_DOMAIN,
                    epoch,
                };
                let _ = self.fences.entry(serial.clone()).or_default().raise(fence);
                let shown = self.shown.entry(serial.clone()).or_default();
                *shown = (*shown).max(epoch);
            }
        }
        self.note(format!("server {s} took over in epoch {epoch}"));
        self.acknowledged_kept(s)
    }

    /// Every change acknowledged with the standby's acknowledgement is in `i`'s
    /// journal.
    fn acknowledged_kept(&self, i: usize) -> Result<(), String> {
        let journal = &self.servers[i].journal;
        for (seq, epoch, record) in &self.acknowledged {
            let held = journal.get(*seq as usize - 1);
            if held.map(|r| (r.0, r.1, &r.2)) != Some((*seq, *epoch, record)) {
                return Err(self.fail(format!(
                    "acknowledged record {seq} of epoch {epoch} is not on server {i}"
                )));
            }
        }
        Ok(())
    }

    fn check(&self) -> Result<(), String> {
        let [x, y] = &self.servers;
        if x.up && y.up && x.active && y.active && x.epoch == y.epoch {
            return Err(self.fail(format!("two servers active in epoch {}", x.epoch)));
        }
        if let Some((id, epoch, newer)) = self.late {
            return Err(self.fail(format!(
                "the box carried out action {id} of epoch {epoch} after it was shown epoch {newer}"
            )));
        }
        if let Some(((epoch, id), n)) = self.carried.iter().find(|(_, n)| **n > 1) {
            return Err(self.fail(format!(
                "action {id} of epoch {epoch} was carried out {n} times"
            )));
        }
        if let Some((a, s)) = self.link.stream {
            let (act, st) = (&self.servers[a], &self.servers[s]);
            if act.pending.is_empty()
                && st.last() == act.last()
                && act.engine.state() != st.engine.state()
            {
                let (x, y) = (
                    serde_json::to_value(act.engine.state()).unwrap_or_default(),
                    serde_json::to_value(st.engine.state()).unwrap_or_default(),
                );
                let differ: Vec<String> = x
                    .as_object()
                    .map(|o| {
                        o.iter()
                            .filter(|(k, v)| y.get(k.as_str()) != Some(*v))
                            .map(|(k, v)| {
                                let w = &y[k.as_str()];
                                match (v.as_object(), w.as_object()) {
                                    (Some(a), Some(b)) => {
                                        let keys: std::collections::BTreeSet<&String> =
                                            a.keys().chain(b.keys()).collect();
                                        let inner: Vec<String> = keys
                                            .into_iter()
                                            .filter(|q| a.get(*q) != b.get(*q))
                                            .map(|q| {
                                                format!(
                                                    "{q}: active {} standby {}",
                                                    a.get(q).cloned().unwrap_or_default(),
                                                    b.get(q).cloned().unwrap_or_default()
                                                )
                                            })
                                            .collect();
                                        format!("{k}: {}", inner.join(", "))
                                    }
                                    _ => format!("{k}: active {v} standby {w}"),
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                return Err(self.fail(format!(
                    "the standby holds everything ({}) but its state differs: {}",
                    st.last(),
                    differ.join("; ")
                )));
            }
        }
        Ok(())
    }

    /// Heals everything and lets the pair run until it is quiet: one active, the
    /// standby caught up, every answer in, the boxes swept.
    fn settle(&mut self) -> Result<(), String> {
        self.note("settle".into());
        self.link.up = true;
        for i in 0..2 {
            self.servers[i].isolated = false;
            self.restart(i);
        }
        for round in 0..40 {
            self.connect()?;
            for i in 0..2 {
                self.sync(i);
                self.publish(i);
                while !self.servers[i].inbox.is_empty() {
                    self.deliver_result(i);
                    self.sync(i);
                    self.publish(i);
                }
            }
            self.heed_the_boxes();
            for _ in 0..64 {
                self.network()?;
            }
            // Past every deadline, the copy poll and the periodic sweep.
            self.advance(if round % 4 == 3 {
                7 * 60 * MIN
            } else {
                2 * MIN
            });
            self.check()?;
        }
        let Some(a) = (0..2).find(|&i| self.servers[i].active) else {
            return Err(self.fail("no active after settling".into()));
        };
        self.acknowledged_kept(a)?;
        for (serial, image) in &self.world.boxes {
            let frozen = image.frozen_lsss();
            if !frozen.is_empty() {
                return Err(self.fail(format!("LSS {frozen:?} of {serial} left frozen")));
            }
        }
        Ok(())
    }
}

/// Runs seed `seed` for `events` events (even seeds in `sync` mode, odd in
/// asynchronous), returning what it did or the violation.
pub fn run(seed: u64, events: usize) -> Result<Report, String> {
    PairSim::new(seed, seed.is_multiple_of(2)).run(events)
}
