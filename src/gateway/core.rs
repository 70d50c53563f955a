//! The engine's task and its publisher (`protocol-specs/store.md` §3, §6;
//! `protocol-specs/policy.md` §8). The engine task decides commands, storage results,
//! notices and timeouts, and hands each batch of records to the store's committer
//! without waiting for it; the publisher takes the batches in the same order, waits
//! until each is durable, and only then answers its commands, tells its console
//! messages and starts its storage actions. Deciding the next batch thus overlaps
//! writing the last, and nothing leaves the gateway before it is stored. A read
//! waits until every batch decided before it is durable: it never sees what a crash
//! could take back.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::csm::{UserCredentials, UserHashes};
use super::executor::{self, HmcExecutor};
use super::{Call, GatewayError, History, Links, MAX_BURST, host, note_link};
use crate::clock::Clock;
use crate::policy::console::{ConsoleMessage, Severity};
use crate::policy::engine::{Discovery, Engine, Finished, Record, Reply};
use crate::policy::inventory::Discovered;
use crate::policy::inventory::{HostConnection, StorageSystem};
use crate::policy::storage::{ActionId, Route, StorageAction, StorageOutcome};
use crate::store::{CommitHandle, Part, PendingCommit, PendingSnapshot, SnapshotDelta};

/// How many console messages the gateway keeps for readers that come later.
const CONSOLE_HISTORY: usize = 1000;

/// A storage action's outcome, for the engine.
pub(super) type ActionResult = (ActionId, StorageOutcome);

/// What a discovery logon learned, for the engine.
pub(super) type DiscoveryResult = (ActionId, Result<Discovered, String>);

/// A storage action with what the engine's state said about its path when it was
/// decided.
struct Dispatch {
    action: StorageAction,
    system: Option<StorageSystem>,
    host: Option<(String, Option<HostConnection>)>,
}

/// Where an asked-for snapshot's sequence number goes.
type SnapshotReply = oneshot::Sender<Result<u64, GatewayError>>;

/// What a batch leaves to do once its records are durable.
#[derive(Default)]
struct Staged {
    commit: Option<PendingCommit>,
    /// Batches handed in so far, this one included.
    number: u64,
    replies: Vec<(oneshot::Sender<Result<Reply, GatewayError>>, Reply)>,
    console: Vec<ConsoleMessage>,
    finished: Vec<Finished>,
    actions: Vec<Dispatch>,
    discoveries: Vec<Discovery>,
    users: Option<std::collections::HashMap<String, UserCredentials>>,
    snapshot: Option<(u64, PendingSnapshot, Option<SnapshotReply>)>,
}

/// Bytes of the last snapshot per record that must follow it before the next
/// (records are 150-300 bytes, so snapshots add at most about a third to what the
/// journal writes).
const SNAPSHOT_BYTES_PER_RECORD: u64 = 64;

/// Whether a snapshot is due (store.md §6.2): every `every` records, and for a large
/// state no sooner than one record per [`SNAPSHOT_BYTES_PER_RECORD`] bytes of the
/// last snapshot, so a snapshot costs each change about the same however large the
/// state is.
fn snapshot_due(s: &Snapshots, last_snapshot_bytes: u64) -> bool {
    let interval = s.every.max(last_snapshot_bytes / SNAPSHOT_BYTES_PER_RECORD);
    s.every > 0 && s.handed.saturating_sub(s.last) >= interval
}

/// When the next snapshot is due.
pub(super) struct Snapshots {
    /// Every this many records (0: on demand only).
    pub(super) every: u64,
    /// The newest snapshot's sequence number.
    pub(super) last: u64,
    /// The sequence number the last record handed to the committer will have.
    pub(super) handed: u64,
    /// The parts of the state the records since the newest snapshot touched: the
    /// next snapshot writes these (store.md §6.2).
    pub(super) dirty: BTreeSet<Part>,
}

impl Snapshots {
    /// Notes the parts `records` touch.
    pub(super) fn touched<'a>(&mut self, records: impl IntoIterator<Item = &'a Record>) {
        crate::store::parts::note_touched(records, &mut self.dirty);
    }
}

/// What the publisher needs to tell and to start.
#[derive(Clone)]
pub(super) struct Outlets {
    pub(super) executor: Arc<HmcExecutor>,
    pub(super) hosts: Arc<host::HostExecutor>,
    pub(super) clock: Clock,
    pub(super) console: broadcast::Sender<ConsoleMessage>,
    pub(super) finished: broadcast::Sender<Finished>,
    pub(super) history: History,
    pub(super) version: Arc<std::sync::atomic::AtomicU64>,
    pub(super) results: mpsc::UnboundedSender<ActionResult>,
    pub(super) discovered: mpsc::UnboundedSender<DiscoveryResult>,
    pub(super) users: UserHashes,
    pub(super) links: Links,
    pub(super) ha: Arc<super::HaGate>,
}

pub(super) struct Core {
    pub(super) engine: Engine,
    pub(super) commits: CommitHandle,
    pub(super) snapshots: Snapshots,
    pub(super) outlets: Outlets,
    pub(super) results: mpsc::UnboundedReceiver<ActionResult>,
    pub(super) discovered: mpsc::UnboundedReceiver<DiscoveryResult>,
    pub(super) notices: mpsc::UnboundedReceiver<executor::Notice>,
    /// `Some(active)` while this server is a standby (ha.md §1): commands are
    /// refused, no timer runs, and storage results of a demoted active are dropped
    /// (the new active asks the box what they did).
    pub(super) standby: Option<String>,
    pub(super) role: watch::Sender<super::ServerRole>,
}

/// The engine task's end of the publisher.
struct Publishing {
    staged: mpsc::UnboundedSender<Staged>,
    /// Batches the publisher has finished (their records durable, told, started).
    done: watch::Receiver<u64>,
    /// Batches handed in.
    handed: u64,
    /// Set by the publisher when the store failed.
    failed: CancellationToken,
}

impl Publishing {
    /// Waits until every batch handed in is durable and published.
    async fn settled(&mut self) -> Result<(), GatewayError> {
        let handed = self.handed;
        let failed = self.failed.clone();
        tokio::select! {
            r = self.done.wait_for(|d| *d >= handed) => r.map(|_| ()).map_err(|_| GatewayError::Stopped),
            () = failed.cancelled() => Err(GatewayError::Stopped),
        }
    }
}

impl Core {
    /// Connects to what a Metro Mirror session hears from (policy.md §5.8): the
    /// z/OS system holding its configuration and the image of its primaries, so
    /// that an unplanned swap, a freeze or a suspension after a restart or a
    /// takeover reaches the session before any command is sent.
    fn watch_mirrors(&self) {
        use crate::policy::session::HyperSwapStatus;
        let state = self.engine.state();
        for s in state.sessions.values().filter(|s| s.kind().mirrored()) {
            if let Some(p) = s.properties.mirror()
                && p.on_zos()
                && s.mirror().hyperswap != HyperSwapStatus::NotLoaded
            {
                for host in p
                    .host_system
                    .iter()
                    .chain(p.members.iter())
                    .filter_map(|h| state.hosts.get(h))
                {
                    self.outlets.hosts.watch(host.clone());
                }
            }
            if s.relationships
                && let Some(system) = s
                    .serial_of(s.mirror().source)
                    .and_then(|serial| state.systems.get(serial))
            {
                self.outlets.executor.watch(system.clone());
            }
        }
    }

    pub(super) async fn run(
        mut self,
        mut calls: mpsc::Receiver<Call>,
        shutdown: CancellationToken,
        grace: Duration,
    ) {
        let (staged, to_publish) = mpsc::unbounded_channel();
        let (done_tx, done) = watch::channel(0);
        let failed = CancellationToken::new();
        let publisher = tokio::spawn(publish(
            to_publish,
            self.outlets.clone(),
            done_tx,
            failed.clone(),
        ));
        let mut out = Publishing {
            staged,
            done,
            handed: 0,
            failed: failed.clone(),
        };
        self.publish_users_now();
        self.stage(&mut out, Vec::new(), None);
        if self.standby.is_none() {
            self.watch_mirrors();
        }
        loop {
            let now_ms = self.outlets.clock.unix_millis();
            let deadline = match self.standby {
                Some(_) => None,
                None => self.engine.next_deadline(),
            };
            let wake = deadline.map(|at| {
                self.outlets.clock.tokio_now() + Duration::from_millis(at.saturating_sub(now_ms))
            });
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = failed.cancelled() => break,
                _ = shutdown.cancelled() => {
                    self.drain(calls, grace, &mut out).await;
                    break;
                }
                call = calls.recv() => match call {
                    Some(call) => self.burst(call, &mut calls, &mut out).await,
                    None => break,
                },
                Some((id, outcome)) = self.results.recv() => {
                    if self.standby.is_none() {
                        self.engine.handle_storage_result(id, outcome, self.outlets.clock.unix_millis());
                        self.stage(&mut out, Vec::new(), None);
                    }
                }
                Some((id, found)) = self.discovered.recv() => {
                    if self.standby.is_none() {
                        self.engine.handle_discovery(id, found, self.outlets.clock.unix_millis());
                        self.stage(&mut out, Vec::new(), None);
                    }
                }
                Some((serial, notice)) = self.notices.recv() => {
                    if self.standby.is_none() {
                        self.engine.handle_storage_notice(&serial, notice, self.outlets.clock.unix_millis());
                        self.stage(&mut out, Vec::new(), None);
                    }
                }
                () = sleep => {
                    self.engine.handle_timeout(self.outlets.clock.unix_millis());
                    self.stage(&mut out, Vec::new(), None);
                }
            }
        }
        drop(out);
        let _ = publisher.await;
        if failed.is_cancelled() {
            error!("gateway: the store failed; nothing more is acknowledged, stopping");
        }
    }

    /// Decides `first` and every command waiting behind it (up to [`MAX_BURST`]) and
    /// hands their records in as one batch. A read or a snapshot waits for every
    /// batch before it to be published.
    async fn burst(&mut self, first: Call, calls: &mut mpsc::Receiver<Call>, out: &mut Publishing) {
        let mut replies = Vec::new();
        let mut after = None;
        let mut next = Some(first);
        while let Some(call) = next.take() {
            match call {
                Call::Command { reply, .. } if self.standby.is_some() => {
                    let active = self.standby.clone().unwrap_or_default();
                    let _ = reply.send(Err(GatewayError::Standby { active }));
                }
                Call::Command {
                    user,
                    command,
                    reply,
                } => {
                    let now = self.outlets.clock.unix_millis();
                    let answer = self.engine.handle_command(&user, command, now);
                    replies.push((reply, answer));
                }
                other => {
                    after = Some(other);
                    break;
                }
            }
            if replies.len() < MAX_BURST {
                next = calls.try_recv().ok();
            }
        }
        if !replies.is_empty() {
            self.stage(out, replies, None);
        }
        match after {
            Some(Call::Read(f)) => {
                if out.settled().await.is_ok() {
                    f(&self.engine);
                }
            }
            Some(Call::Snapshot(reply)) => self.stage(out, Vec::new(), Some(reply)),
            Some(Call::Replicated { records, reply }) => {
                let _ = reply.send(self.replicate(records, out).await);
            }
            Some(Call::Install { copy, reply }) => {
                let _ = reply.send(self.install(*copy, out).await);
            }
            Some(Call::Takeover(reply)) => {
                let _ = reply.send(self.take_over(out).await);
            }
            Some(Call::NoteEpoch { epoch, reply }) => {
                let noted = async {
                    out.settled().await?;
                    let pending = self.commits.run(move |store| store.note_epoch(epoch))?;
                    pending
                        .wait()
                        .await
                        .map_err(|e| GatewayError::Ha(e.to_string()))
                };
                let _ = reply.send(noted.await);
            }
            Some(Call::Follow { active, reply }) => {
                let _ = reply.send(self.follow(active, out).await);
            }
            Some(Call::Command { .. }) | None => {}
        }
    }

    /// The engine rebuilt from its own state, with nothing under way in memory (no
    /// timers, inspections or queued output).
    fn rebuilt_engine(&mut self) {
        let config = self.engine.config();
        let engine =
            std::mem::replace(&mut self.engine, crate::policy::engine::Engine::new(config));
        self.engine = crate::policy::engine::Engine::from_state(engine.into_state(), config);
    }

    fn standby_only(&self) -> Result<(), GatewayError> {
        match self.standby {
            Some(_) => Ok(()),
            None => Err(GatewayError::Ha(
                "this server is the active server; only a standby takes the active's records"
                    .into(),
            )),
        }
    }

    /// After the store changed under the engine (replicated records, a copy): the
    /// users, the state version and the stream's head follow.
    fn replicated_to(&mut self, last: u64, users_changed: bool) {
        self.snapshots.handed = last;
        if users_changed {
            self.publish_users_now();
        }
        self.outlets
            .version
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.outlets.ha.durable.send_replace(last);
    }

    /// A standby stores records the active stored, then applies them (ha.md §5).
    /// Records that do not follow, come from an older epoch or are damaged are
    /// refused whole: nothing is stored or applied.
    async fn replicate(
        &mut self,
        records: Vec<(u64, u64, Vec<u8>)>,
        out: &mut Publishing,
    ) -> Result<u64, GatewayError> {
        self.standby_only()?;
        out.settled().await?;
        let Some(last) = records.last().map(|r| r.0) else {
            return Ok(self.snapshots.handed);
        };
        let mut decoded = Vec::with_capacity(records.len());
        for (seq, _, sealed) in &records {
            let record = crate::store::unseal(sealed)
                .map_err(|why| GatewayError::Ha(format!("replicated record {seq}: {why}")))?;
            decoded.push(record);
        }
        let stored = self.commits.run(move |store| {
            let refs: Vec<(u64, u64, &[u8])> = records
                .iter()
                .map(|(s, e, b)| (*s, *e, b.as_slice()))
                .collect();
            store.append_replicated(&refs).map(|_| ())
        })?;
        stored
            .wait()
            .await
            .map_err(|e| GatewayError::Ha(e.to_string()))?;
        let users_changed = decoded
            .iter()
            .any(|r| matches!(r, Record::User(_) | Record::UserRemoved(_)));
        for record in &decoded {
            self.engine.follow(record);
        }
        self.snapshots.touched(&decoded);
        self.replicated_to(last, users_changed);
        // A snapshot when one is due, as on the active.
        self.stage(out, Vec::new(), None);
        Ok(last)
    }

    /// A standby replaces its store and state with a full copy (ha.md §5.2).
    async fn install(
        &mut self,
        copy: super::FullCopy,
        out: &mut Publishing,
    ) -> Result<u64, GatewayError> {
        self.standby_only()?;
        out.settled().await?;
        let state = crate::store::unseal_state(&copy.state)
            .map_err(|why| GatewayError::Ha(format!("full copy at {}: {why}", copy.seq)))?;
        let seq = copy.seq;
        let stored = self
            .commits
            .run(move |store| store.install(copy.seq, &copy.epochs, &copy.audit, &copy.state))?;
        stored
            .wait()
            .await
            .map_err(|e| GatewayError::Ha(e.to_string()))?;
        self.engine = crate::policy::engine::Engine::from_state(state, self.engine.config());
        self.snapshots.last = seq;
        // The copy is the store's snapshot, whole.
        self.snapshots.dirty.clear();
        self.replicated_to(seq, true);
        Ok(seq)
    }

    /// The standby becomes the active in a new epoch (ha.md §6): the engine is
    /// rebuilt from the state it followed and resumes as after a restart (actions
    /// that were under way on the old active are asked about, never sent again;
    /// every box is swept for frozen LSSs), then timers and schedules run here.
    async fn take_over(&mut self, out: &mut Publishing) -> Result<u64, GatewayError> {
        self.standby_only()?;
        out.settled().await?;
        let epoch = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let took = epoch.clone();
        let begun = self.commits.run(move |store| {
            took.store(
                store.begin_takeover_epoch()?,
                std::sync::atomic::Ordering::Release,
            );
            Ok(())
        })?;
        begun
            .wait()
            .await
            .map_err(|e| GatewayError::Ha(e.to_string()))?;
        let epoch = epoch.load(std::sync::atomic::Ordering::Acquire);
        self.standby = None;
        self.role.send_replace(super::ServerRole::Active);
        self.rebuilt_engine();
        // From here on every changing storage request carries the new epoch, and
        // each box this state uses is shown it at once (ds8k.md §3.4).
        self.outlets.ha.fence.send_modify(|f| f.epoch = epoch);
        self.outlets
            .executor
            .announce(self.engine.state().systems.values().cloned().collect());
        self.watch_mirrors();
        self.engine
            .resume_in_flight(self.outlets.clock.unix_millis());
        self.stage(out, Vec::new(), None);
        info!(epoch, "gateway: took over as the active");
        Ok(epoch)
    }

    /// The server becomes a standby of `active` (pairing, or fenced by a higher
    /// epoch): nothing more is decided here; storage actions it had started are
    /// left to the active, which asks the box what they did.
    async fn follow(&mut self, active: String, out: &mut Publishing) -> Result<(), GatewayError> {
        out.settled().await?;
        if self.standby.is_none() {
            self.rebuilt_engine();
            info!(active = %active, "gateway: now a standby");
        }
        self.standby = Some(active.clone());
        self.role
            .send_replace(super::ServerRole::Standby { active });
        self.outlets.ha.sync.send_replace(false);
        Ok(())
    }

    /// Hands the engine's new records to the committer (without waiting) and what
    /// they lead to to the publisher; a snapshot too when one is due or asked for.
    fn stage(
        &mut self,
        out: &mut Publishing,
        replies: Vec<(oneshot::Sender<Result<Reply, GatewayError>>, Reply)>,
        snapshot_asked: Option<oneshot::Sender<Result<u64, GatewayError>>>,
    ) {
        let records: Vec<_> = std::iter::from_fn(|| self.engine.poll_record()).collect();
        let mut staged = Staged {
            replies,
            console: std::iter::from_fn(|| self.engine.poll_console()).collect(),
            finished: std::iter::from_fn(|| self.engine.poll_finished()).collect(),
            ..Staged::default()
        };
        if records
            .iter()
            .any(|r| matches!(r, Record::User(_) | Record::UserRemoved(_)))
        {
            staged.users = Some(self.user_hashes());
        }
        if !records.is_empty() {
            let count = records.len() as u64;
            self.snapshots.touched(&records);
            match self.commits.submit(records) {
                Ok(pending) => {
                    staged.commit = Some(pending);
                    self.snapshots.handed += count;
                }
                Err(_) => out.failed.cancel(),
            }
        }
        staged.discoveries = std::iter::from_fn(|| self.engine.poll_discovery()).collect();
        while let Some(action) = self.engine.poll_storage_action() {
            let state = self.engine.state();
            let system = state.systems.get(&action.serial).cloned();
            let host = match &action.route {
                Route::Host(name) => Some((name.clone(), state.hosts.get(name).cloned())),
                Route::Hmc => None,
            };
            staged.actions.push(Dispatch {
                action,
                system,
                host,
            });
        }
        let due = snapshot_due(&self.snapshots, self.commits.last_snapshot_bytes());
        if due || snapshot_asked.is_some() {
            let seq = self.snapshots.handed;
            let keep = self.snapshots.every;
            // Only the parts that changed are taken (cloned) here, on the engine's
            // thread; the sealer serialises them.
            let dirty = std::mem::take(&mut self.snapshots.dirty);
            let delta = SnapshotDelta::of(self.engine.state(), &dirty);
            match self.commits.submit_snapshot(seq, delta, keep) {
                Ok(pending) => {
                    self.snapshots.last = seq;
                    staged.snapshot = Some((seq, pending, snapshot_asked));
                }
                Err(_) => out.failed.cancel(),
            }
        }
        out.handed += 1;
        staged.number = out.handed;
        let _ = out.staged.send(staged);
    }

    /// Graceful stop: no more commands or timers (no schedule starts, no poll), but
    /// the storage actions under way are awaited, up to `grace`, and their results
    /// stored; a multi-step command goes on to its next step meanwhile.
    async fn drain(
        &mut self,
        mut calls: mpsc::Receiver<Call>,
        grace: Duration,
        out: &mut Publishing,
    ) {
        calls.close();
        while let Some(call) = calls.recv().await {
            match call {
                Call::Command { reply, .. } => {
                    let _ = reply.send(Err(GatewayError::Stopped));
                }
                Call::Snapshot(reply) | Call::Replicated { reply, .. } => {
                    let _ = reply.send(Err(GatewayError::Stopped));
                }
                Call::Install { reply, .. } | Call::Takeover(reply) => {
                    let _ = reply.send(Err(GatewayError::Stopped));
                }
                Call::Follow { reply, .. } | Call::NoteEpoch { reply, .. } => {
                    let _ = reply.send(Err(GatewayError::Stopped));
                }
                Call::Read(_) => {}
            }
        }
        let deadline = self.outlets.clock.tokio_now() + grace;
        while !self.engine.state().in_flight.is_empty() {
            tokio::select! {
                Some((id, outcome)) = self.results.recv() => {
                    self.engine.handle_storage_result(id, outcome, self.outlets.clock.unix_millis());
                }
                Some((serial, notice)) = self.notices.recv() => {
                    self.engine.handle_storage_notice(&serial, notice, self.outlets.clock.unix_millis());
                }
                () = tokio::time::sleep_until(deadline) => break,
                () = out.failed.cancelled() => break,
            }
            self.stage(out, Vec::new(), None);
        }
        if out.settled().await.is_err() {
            error!("gateway: the store failed while stopping");
            return;
        }
        let left = self.engine.state().in_flight.len();
        if left == 0 {
            info!("gateway: stopped with no storage action under way");
        } else {
            warn!(
                actions = left,
                "gateway: stopped with storage actions under way; they resume at the next start"
            );
        }
    }

    fn user_hashes(&self) -> std::collections::HashMap<String, UserCredentials> {
        self.engine
            .state()
            .users
            .values()
            .map(|u| {
                let credentials = UserCredentials {
                    hash: u.password_hash.clone(),
                    id: u.id,
                    generation: u.generation,
                };
                (u.name.clone(), credentials)
            })
            .collect()
    }

    /// The users as rebuilt from the store, before anything is decided.
    fn publish_users_now(&self) {
        if let Ok(mut users) = self.outlets.users.write() {
            *users = self.user_hashes();
        }
    }
}

/// The publisher: takes the batches in order, waits until each is durable, then
/// tells, starts and answers what it holds. Every batch staged by the time it looks
/// is waited for at once: the first, and each after it already durable (one wake per
/// transaction, not per batch). After a failed commit it answers every later command
/// with an error and stops the engine's task.
async fn publish(
    mut staged: mpsc::UnboundedReceiver<Staged>,
    outlets: Outlets,
    done: watch::Sender<u64>,
    failed: CancellationToken,
) {
    let mut waiting: VecDeque<Staged> = VecDeque::new();
    loop {
        if waiting.is_empty() {
            match staged.recv().await {
                Some(batch) => waiting.push_back(batch),
                None => return,
            }
        }
        while let Ok(batch) = staged.try_recv() {
            waiting.push_back(batch);
        }
        // Which waiting batches have records, and their commits, in order.
        let holders: Vec<usize> = (0..waiting.len())
            .filter(|&i| waiting[i].commit.is_some())
            .collect();
        let pending: VecDeque<PendingCommit> =
            waiting.iter_mut().filter_map(|b| b.commit.take()).collect();
        let (outcomes, rest) = PendingCommit::durable_prefix(pending).await;
        for (&i, commit) in holders[outcomes.len()..].iter().zip(rest) {
            waiting[i].commit = Some(commit);
        }
        // Publishable: every batch before the first whose commit is still out.
        let ready = holders
            .get(outcomes.len())
            .copied()
            .unwrap_or(waiting.len());
        let mut outcomes = outcomes.into_iter();
        let publishable: Vec<Staged> = waiting.drain(..ready).collect();
        for (i, batch) in publishable.into_iter().enumerate() {
            let stored = if holders.contains(&i) {
                match outcomes.next() {
                    Some(outcome) => outcome.map(|c| Some(c.last)),
                    None => Err(crate::store::StoreError::Stopped),
                }
            } else {
                Ok(None)
            };
            if let Err(e) = publish_one(batch, stored, &outlets, &done, &failed).await {
                error!(error = %e, "gateway: the store failed");
                failed.cancel();
                staged.close();
                let later = waiting
                    .drain(..)
                    .chain(std::iter::from_fn(|| staged.try_recv().ok()));
                for batch in later {
                    for (reply, _) in batch.replies {
                        let _ = reply.send(Err(GatewayError::Stopped));
                    }
                }
                while let Some(later) = staged.recv().await {
                    for (reply, _) in later.replies {
                        let _ = reply.send(Err(GatewayError::Stopped));
                    }
                }
                return;
            }
        }
    }
}

/// Publishes one batch whose commit ended with `stored` (the last record's number,
/// `None` for a batch without records). A failed commit answers the batch's
/// commands with an error and is handed back.
async fn publish_one(
    batch: Staged,
    stored: Result<Option<u64>, crate::store::StoreError>,
    outlets: &Outlets,
    done: &watch::Sender<u64>,
    failed: &CancellationToken,
) -> Result<(), crate::store::StoreError> {
    let had_records = matches!(stored, Ok(Some(_)));
    // ha.md §5.3: in synchronous mode nothing of the batch leaves the gateway
    // (answers, messages, storage actions) before the standby has stored it.
    if let Ok(Some(last)) = stored {
        outlets.ha.wait_for_standby(last).await;
    }
    // A snapshot is written beside the batches that follow (the sealer and the
    // committer order it): nothing waits for it but whoever asked for it. A failed
    // one stops the engine.
    match batch.snapshot {
        Some((seq, pending, asked)) if stored.is_ok() => {
            let failed = failed.clone();
            tokio::spawn(async move {
                let written = pending.wait().await;
                match &written {
                    Ok(()) => info!(seq, "gateway: snapshot stored"),
                    Err(e) => {
                        error!(error = %e, "gateway: the snapshot failed");
                        failed.cancel();
                    }
                }
                if let Some(asked) = asked {
                    let _ = asked.send(written.map(|()| seq).map_err(GatewayError::from));
                }
            });
        }
        Some((_, _, Some(asked))) => {
            let _ = asked.send(Err(GatewayError::Stopped));
        }
        _ => {}
    }
    if let Err(e) = stored {
        for (reply, _) in batch.replies {
            let _ = reply.send(Err(GatewayError::Stopped));
        }
        return Err(e);
    }
    if had_records {
        outlets
            .version
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
    if let Some(users) = batch.users
        && let Ok(mut published) = outlets.users.write()
    {
        *published = users;
    }
    for m in batch.console {
        tell(outlets, m);
    }
    for f in batch.finished {
        let _ = outlets.finished.send(f);
    }
    for d in batch.actions {
        dispatch(outlets, d);
    }
    for d in batch.discoveries {
        discover(outlets, d);
    }
    for (reply, answer) in batch.replies {
        let _ = reply.send(Ok(answer));
    }
    let _ = done.send(batch.number);
    Ok(())
}

/// One console message: the log, the history, the subscribers.
fn tell(outlets: &Outlets, m: ConsoleMessage) {
    tell_parts(&outlets.history, &outlets.console, m);
}

/// [`tell`], for the shell's own messages too.
pub(super) fn tell_parts(
    history: &History,
    console: &broadcast::Sender<ConsoleMessage>,
    m: ConsoleMessage,
) {
    // Log fields are text a person reads: no Rust debug forms.
    let session = m.session.as_deref().unwrap_or("-");
    match m.id.severity {
        Severity::Error => warn!(id = %m.id, session, "{}", m.text),
        _ => info!(id = %m.id, session, "{}", m.text),
    }
    if let Ok(mut history) = history.lock() {
        if history.len() == CONSOLE_HISTORY {
            history.pop_front();
        }
        history.push_back(m.clone());
    }
    let _ = console.send(m);
}

/// Starts one storage action on its path; its outcome goes back to the engine.
fn dispatch(outlets: &Outlets, d: Dispatch) {
    let Dispatch {
        action,
        system,
        host,
    } = d;
    let executor = outlets.executor.clone();
    let hosts = outlets.hosts.clone();
    let results = outlets.results.clone();
    let links = outlets.links.clone();
    let link = match &action.route {
        Route::Host(name) => name.clone(),
        Route::Hmc => format!("DS8000:BOX:2107.{}", action.serial),
    };
    // The shell stops waiting when the box would refuse the request anyway: the
    // outcome of an action that changes the box is then unknown (policy.md §8.4).
    let now_ms = outlets.clock.unix_millis();
    let deadline = outlets.clock.tokio_now()
        + Duration::from_millis(action.not_after_ms.saturating_sub(now_ms));
    let has_deadline = action.not_after_ms != 0;
    tokio::spawn(async move {
        let work = async {
            match (system, host) {
                (None, _) => StorageOutcome::Failed {
                    reason: 0,
                    text: format!("no storage system 2107.{}", action.serial),
                },
                (Some(_), Some((name, None))) => StorageOutcome::Failed {
                    reason: 0,
                    text: format!("no host connection {name}"),
                },
                (Some(system), Some((_, Some(host)))) => {
                    through_host(&executor, &hosts, &system, &host, &action).await
                }
                (Some(system), None) => executor.execute(&system, &action).await,
            }
        };
        let outcome = if has_deadline {
            match tokio::time::timeout_at(deadline, work).await {
                Ok(outcome) => outcome,
                Err(_) => StorageOutcome::Unknown {
                    text: "no answer before the storage deadline".into(),
                },
            }
        } else {
            work.await
        };
        note_link(&links, &link, |s| {
            s.last_error = match &outcome {
                StorageOutcome::Failed { reason, text } => Some(format!("{reason:#06x} {text}")),
                _ => None,
            };
        });
        let _ = results.send((action.id, outcome));
    });
}

/// Makes one discovery logon (policy.md §4.2); what it learned goes back to the
/// engine.
fn discover(outlets: &Outlets, d: Discovery) {
    let executor = outlets.executor.clone();
    let discovered = outlets.discovered.clone();
    tokio::spawn(async move {
        let found = executor.discover(&d.target).await;
        let _ = discovered.send((d.id, found));
    });
}

/// Flash and Backup through the host; the rest (and the out-of-sync count after a
/// host flash) through the HMC (policy.md §5.4).
async fn through_host(
    hmc: &HmcExecutor,
    hosts: &host::HostExecutor,
    system: &crate::policy::inventory::StorageSystem,
    host: &crate::policy::inventory::HostConnection,
    action: &StorageAction,
) -> StorageOutcome {
    use crate::policy::storage::StorageOp;
    match &action.op {
        StorageOp::Establish { pairs, options } | StorageOp::Resync { pairs, options } => {
            if let Err(failed) = hosts.flash(host, &system.serial, pairs, *options).await {
                return failed;
            }
            let query = StorageAction {
                op: StorageOp::QueryFlash {
                    pairs: pairs.clone(),
                },
                ..action.clone()
            };
            match hmc.execute(system, &query).await {
                StorageOutcome::FlashStates(states) => StorageOutcome::Flashed {
                    out_of_sync_tracks: states.iter().map(|p| p.out_of_sync_tracks).sum(),
                },
                other => other,
            }
        }
        StorageOp::Backup { volumes } => match hosts.backup(host, &system.serial, volumes).await {
            Ok(outcome) | Err(outcome) => outcome,
        },
        StorageOp::HyperSwap {
            session, request, ..
        } => hosts.hyperswap(host, session, request).await,
        _ => hmc.execute(system, action).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_state_is_snapshotted_less_often() {
        let at = |handed| Snapshots {
            every: 50_000,
            last: 0,
            handed,
            dirty: BTreeSet::new(),
        };
        // Small state: every 50,000 records.
        assert!(!snapshot_due(&at(49_999), 10_000));
        assert!(snapshot_due(&at(50_000), 10_000));
        // A 5 MB state: one record per 64 bytes, 78,125 records.
        assert!(!snapshot_due(&at(78_124), 5_000_000));
        assert!(snapshot_due(&at(78_125), 5_000_000));
        // Off.
        let off = Snapshots {
            every: 0,
            last: 0,
            handed: 1 << 40,
            dirty: BTreeSet::new(),
        };
        assert!(!snapshot_due(&off, 5_000_000));
    }
}
