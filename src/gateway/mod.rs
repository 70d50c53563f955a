//! The gateway's core, an I/O shell around the policy engine
//! (`protocol-specs/policy.md` §8, `protocol-specs/store.md` §2–§3, §6): one task
//! owns the engine; every interface (the CSM protocol, REST, the scheduler) hands it
//! commands through a [`GatewayHandle`]. The task takes every command waiting, hands
//! their records to the store's committer as one batch (group commit: the fsync runs
//! on the committer's thread while the task awaits it), and answers them once the
//! batch is durable; it carries out storage actions only once the record that starts
//! them is stored, writes a snapshot of the state every so many records, reads time
//! from the injected clock and sleeps until the engine's next deadline (so tests run
//! on tokio's paused clock).

pub mod csm;
pub mod executor;
pub mod host;
pub mod passwords;
pub mod rest;
pub mod service;
pub mod syslog;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::clock::Clock;
use crate::policy::console::{ConsoleMessage, Severity};
use crate::policy::engine::{Command, Engine, EngineConfig, Record, Reply, State};
use crate::policy::storage::{ActionId, Route, StorageAction, StorageOutcome};
use crate::store::sealing::SealingKey;
use crate::store::{CommitHandle, Committer, Store, StoreError, StoreReader};

use executor::HmcExecutor;

/// What the gateway knows of one link (a storage system's HMC, or a host).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LinkStatus {
    /// Logged on now.
    pub connected: bool,
    /// Successful logons so far (each with a fresh PassTicket on a host).
    pub logons: u64,
    /// The last failure (a refused logon, a lost connection, a failed action), until
    /// an action succeeds.
    pub last_error: Option<String>,
}

/// Link status by link name (`DS8000:BOX:2107.<serial>` or a host's system name).
pub type Links = Arc<std::sync::RwLock<std::collections::BTreeMap<String, LinkStatus>>>;

/// Updates one link's status.
pub(crate) fn note_link(links: &Links, name: &str, f: impl FnOnce(&mut LinkStatus)) {
    if let Ok(mut map) = links.write() {
        f(map.entry(name.to_owned()).or_default());
    }
}

/// Follows a connector's events into its link's status.
pub(crate) fn track_link<B>(
    links: &Links,
    name: &str,
    event: &crate::client::connector::ConnectorEvent<B>,
) {
    use crate::client::connector::ConnectorEvent as E;
    match event {
        E::Connected { .. } => note_link(links, name, |s| {
            s.connected = true;
            s.logons += 1;
        }),
        E::Disconnected { reason } => note_link(links, name, |s| {
            s.connected = false;
            s.last_error = Some(format!("connection lost: {reason:?}"));
        }),
        E::GaveUp { status, .. } => note_link(links, name, |s| {
            s.connected = false;
            s.last_error = Some(format!(
                "logon refused (reason {:#06x}); trying again shortly",
                status.reason
            ));
        }),
        _ => {}
    }
}

/// How long the gateway's connectors to boxes and hosts pause after refused
/// logons before they try again (with jitter): a box that throttled the gateway's
/// address lets it in again within a minute, so the link is back within about
/// 30 s of its cause going away.
pub(crate) const LINK_REFUSAL_PAUSE: Duration = Duration::from_secs(20);

/// The longest the gateway's links wait between connection attempts to a box or host
/// that does not answer (with jitter, half to all of it): a link is back within
/// about 10 s of its peer returning (policy.md §8.4).
pub(crate) const LINK_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// How many console messages a slow subscriber may fall behind before it loses some.
const CONSOLE_BACKLOG: usize = 1024;
/// Console messages kept for readers that come later (REST `logevents`).
const CONSOLE_HISTORY: usize = 1000;

/// The newest console messages, oldest first.
type History = Arc<std::sync::Mutex<std::collections::VecDeque<ConsoleMessage>>>;

/// Commands waiting for the engine before callers wait to hand theirs in.
const CALL_BACKLOG: usize = 256;

/// The most commands decided before their records are committed together.
const MAX_BURST: usize = 512;

/// By default, a snapshot every this many records (configuration.md `[store]`).
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 50_000;

/// The gateway's settings.
pub struct GatewayConfig {
    /// The store file.
    pub store: PathBuf,
    /// The engine's settings.
    pub engine: EngineConfig,
    /// The one clock.
    pub clock: Clock,
    /// The operator's key that opens sealed secrets.
    pub sealing_key: Arc<SealingKey>,
    /// How long one storage request may take.
    pub storage_timeout: Duration,
    /// The first Administrator (name, argon2id hash), created when the store is new.
    pub bootstrap_admin: Option<(String, String)>,
    /// At shutdown, how long storage actions under way may take to finish (what is
    /// still under way then resumes at the next start: it is in the store).
    pub shutdown_grace: Duration,
    /// A snapshot of the state every this many records (0: only on demand); the
    /// journal keeps as many records before the newest snapshot, for readers that
    /// resume (store.md §6).
    pub snapshot_every: u64,
}

/// Why the gateway could not do something.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The store failed; the gateway stopped acknowledging.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The gateway is not running.
    #[error("the gateway has stopped")]
    Stopped,
}

type ReadFn = Box<dyn FnOnce(&Engine) + Send>;

enum Call {
    Command {
        user: String,
        command: Command,
        reply: oneshot::Sender<Result<Reply, GatewayError>>,
    },
    Read(ReadFn),
    /// A snapshot now; answered with its sequence number once it is stored.
    Snapshot(oneshot::Sender<Result<u64, GatewayError>>),
}

/// A caller's end of the gateway.
#[derive(Clone)]
pub struct GatewayHandle {
    calls: mpsc::Sender<Call>,
    console: broadcast::Sender<ConsoleMessage>,
    history: History,
    users: csm::UserHashes,
    links: Links,
    store: PathBuf,
    started: tokio::time::Instant,
    clock: Clock,
    version: Arc<std::sync::atomic::AtomicU64>,
    reads: ReadCache,
    /// The store's reader while the gateway runs (a handle that outlives the
    /// gateway must not hold the file open).
    stream: Arc<std::sync::Mutex<Option<StoreReader>>>,
}

/// Reads of the stored state by name, with the state version they were made at.
type ReadCache =
    Arc<std::sync::Mutex<std::collections::HashMap<&'static str, (u64, serde_json::Value)>>>;

impl std::fmt::Debug for GatewayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayHandle").finish_non_exhaustive()
    }
}

impl GatewayHandle {
    /// Runs `command` as `user`; the reply comes once its records are stored.
    pub async fn command(&self, user: &str, command: Command) -> Result<Reply, GatewayError> {
        let (reply, answer) = oneshot::channel();
        self.calls
            .send(Call::Command {
                user: user.to_owned(),
                command,
                reply,
            })
            .await
            .map_err(|_| GatewayError::Stopped)?;
        answer.await.map_err(|_| GatewayError::Stopped)?
    }

    /// Writes a snapshot of the state now and compacts the journal before it
    /// (store.md §6); returns the sequence number it was taken at.
    pub async fn snapshot(&self) -> Result<u64, GatewayError> {
        let (reply, answer) = oneshot::channel();
        self.calls
            .send(Call::Snapshot(reply))
            .await
            .map_err(|_| GatewayError::Stopped)?;
        answer.await.map_err(|_| GatewayError::Stopped)?
    }

    /// A reader of the record stream (store.md §6): what a standby is missing.
    /// `None` once the gateway has stopped.
    pub fn stream(&self) -> Option<StoreReader> {
        self.stream.lock().ok().and_then(|s| s.clone())
    }

    /// Reads the engine (a query): `f` runs on the engine's task, between commands,
    /// and sees only what is stored.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> T + Send + 'static,
    ) -> Result<T, GatewayError> {
        let (tx, rx) = oneshot::channel();
        let call = Call::Read(Box::new(move |engine: &Engine| {
            let _ = tx.send(f(engine));
        }));
        self.calls
            .send(call)
            .await
            .map_err(|_| GatewayError::Stopped)?;
        rx.await.map_err(|_| GatewayError::Stopped)
    }

    /// A read of the stored state alone (not of what the engine keeps in memory, such
    /// as copy progress), named `key`: answered from the last such read while the
    /// state has not changed since ([`GatewayHandle::state_version`]), so frequent
    /// polls cost no trip to the engine's task.
    pub async fn read_cached(
        &self,
        key: &'static str,
        f: impl FnOnce(&Engine) -> serde_json::Value + Send + 'static,
    ) -> Result<serde_json::Value, GatewayError> {
        let version = self.state_version();
        if let Ok(cache) = self.reads.lock()
            && let Some((v, value)) = cache.get(key)
            && *v == version
        {
            return Ok(value.clone());
        }
        let value = self.read(f).await?;
        if let Ok(mut cache) = self.reads.lock() {
            cache.insert(key, (version, value.clone()));
        }
        Ok(value)
    }

    /// Every console message from now on.
    pub fn console(&self) -> broadcast::Receiver<ConsoleMessage> {
        self.console.subscribe()
    }

    /// The newest `count` console messages (of the last 1,000), about `session` if
    /// given, newest first.
    pub fn recent_console(&self, count: usize, session: Option<&str>) -> Vec<ConsoleMessage> {
        let Ok(history) = self.history.lock() else {
            return Vec::new();
        };
        history
            .iter()
            .rev()
            .filter(|m| session.is_none_or(|s| m.session.as_deref() == Some(s)))
            .take(count)
            .cloned()
            .collect()
    }

    /// The gateway's clock.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// A number that changes whenever the engine's state does (it counts stored
    /// batches of records; a command's batch is counted before its reply): readers
    /// may cache what they derived from the state while it stays the same.
    pub fn state_version(&self) -> u64 {
        self.version.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The status of the links to storage systems and hosts.
    pub fn links(&self) -> std::collections::BTreeMap<String, LinkStatus> {
        self.links.read().map(|l| l.clone()).unwrap_or_default()
    }

    /// The store file.
    pub fn store_path(&self) -> &std::path::Path {
        &self.store
    }

    /// Seconds since the gateway started.
    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// The users' argon2id hashes as last stored (for logons, which must not wait
    /// for the engine's task).
    pub fn users(&self) -> csm::UserHashes {
        self.users.clone()
    }
}

/// A running gateway.
pub struct Gateway {
    handle: GatewayHandle,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
    committer: Committer,
}

impl Gateway {
    /// Opens the store, rebuilds the engine from it, and starts.
    pub fn start(config: GatewayConfig) -> Result<Gateway, GatewayError> {
        let mut store = Store::open(&config.store)?;
        let recovered = store.recover()?;
        let (snapshot_seq, mut state) = match recovered.snapshot {
            Some((seq, state)) => (seq, state),
            None => (0, State::new(config.engine.request_lifetime_ms)),
        };
        for record in &recovered.tail {
            state.apply(record);
        }
        let mut engine = Engine::from_state(state, config.engine);
        let epoch = store.begin_epoch()?;
        info!(
            store = %config.store.display(),
            snapshot = snapshot_seq,
            records = recovered.tail.len(),
            epoch,
            sessions = engine.state().sessions.len(),
            "gateway: state rebuilt from the store"
        );
        let stream = Arc::new(std::sync::Mutex::new(Some(store.reader())));
        let last_seq = store.last_seq();
        let (committer, commits) = Committer::spawn(store)?;
        if let Some((name, hash)) = &config.bootstrap_admin
            && engine.bootstrap_admin(name, hash.clone(), config.clock.unix_millis())
        {
            info!(user = %name, "gateway: first Administrator created");
        }
        engine.resume_in_flight(config.clock.unix_millis());
        let (calls, calls_rx) = mpsc::channel(CALL_BACKLOG);
        let (console, _) = broadcast::channel(CONSOLE_BACKLOG);
        let users = csm::UserHashes::default();
        let links = Links::default();
        let history = History::default();
        let version = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let handle = GatewayHandle {
            version: version.clone(),
            reads: ReadCache::default(),
            calls,
            console: console.clone(),
            history: history.clone(),
            clock: config.clock,
            users: users.clone(),
            links: links.clone(),
            store: config.store.clone(),
            started: config.clock.tokio_now(),
            stream,
        };
        let shutdown = CancellationToken::new();
        let (notices_tx, notices) = mpsc::unbounded_channel();
        let hosts = Arc::new(host::HostExecutor::new(
            config.sealing_key.clone(),
            config.clock,
            config.storage_timeout,
            links.clone(),
        ));
        let executor = Arc::new(HmcExecutor::new(
            config.sealing_key.clone(),
            config.clock,
            config.storage_timeout,
            notices_tx,
            links.clone(),
        ));
        let core = Core {
            engine,
            commits,
            snapshots: Snapshots {
                every: config.snapshot_every,
                last: snapshot_seq,
                stored: last_seq,
            },
            executor,
            hosts,
            clock: config.clock,
            console,
            history,
            version,
            results: mpsc::unbounded_channel(),
            notices,
            users,
            links,
        };
        let task = tokio::spawn(core.run(calls_rx, shutdown.clone(), config.shutdown_grace));
        Ok(Gateway {
            handle,
            shutdown,
            task,
            committer,
        })
    }

    /// A handle for callers.
    pub fn handle(&self) -> GatewayHandle {
        self.handle.clone()
    }

    /// Stops taking commands, lets the storage actions under way finish (up to the
    /// configured grace; what is left is in the store and resumes at the next
    /// start), stores their results, then stops the engine's task.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
        if let Ok(mut stream) = self.handle.stream.lock() {
            *stream = None;
        }
        // The task's end dropped the last commit handle: the committer finishes
        // what it holds and closes the store.
        let committer = self.committer;
        let _ = tokio::task::spawn_blocking(move || committer.finish()).await;
    }
}

/// A storage action's outcome, for the engine.
type ActionResult = (ActionId, StorageOutcome);

/// When the next snapshot is due.
struct Snapshots {
    /// Every this many records (0: on demand only).
    every: u64,
    /// The newest snapshot's sequence number.
    last: u64,
    /// The last record stored.
    stored: u64,
}

struct Core {
    engine: Engine,
    commits: CommitHandle,
    snapshots: Snapshots,
    executor: Arc<HmcExecutor>,
    hosts: Arc<host::HostExecutor>,
    clock: Clock,
    console: broadcast::Sender<ConsoleMessage>,
    history: History,
    version: Arc<std::sync::atomic::AtomicU64>,
    results: (
        mpsc::UnboundedSender<ActionResult>,
        mpsc::UnboundedReceiver<ActionResult>,
    ),
    notices: mpsc::UnboundedReceiver<executor::Notice>,
    users: csm::UserHashes,
    links: Links,
}

impl Core {
    async fn run(
        mut self,
        mut calls: mpsc::Receiver<Call>,
        shutdown: CancellationToken,
        grace: Duration,
    ) {
        self.publish_users();
        if let Err(e) = self.flush().await {
            error!(error = %e, "gateway: the store failed; stopping");
            return;
        }
        loop {
            let now_ms = self.clock.unix_millis();
            let wake = self.engine.next_deadline().map(|at| {
                self.clock.tokio_now() + Duration::from_millis(at.saturating_sub(now_ms))
            });
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let step = tokio::select! {
                _ = shutdown.cancelled() => {
                    self.drain(calls, grace).await;
                    return;
                }
                call = calls.recv() => match call {
                    Some(call) => self.burst(call, &mut calls).await,
                    None => return,
                },
                Some((id, outcome)) = self.results.1.recv() => {
                    self.engine.handle_storage_result(id, outcome, self.clock.unix_millis());
                    self.flush().await.map_err(|_| ())
                }
                Some((serial, notice)) = self.notices.recv() => {
                    self.engine.handle_storage_notice(&serial, notice, self.clock.unix_millis());
                    self.flush().await.map_err(|_| ())
                }
                () = sleep => {
                    self.engine.handle_timeout(self.clock.unix_millis());
                    self.flush().await.map_err(|_| ())
                }
            };
            if step.is_err() {
                error!("gateway: the store failed; nothing more is acknowledged, stopping");
                return;
            }
        }
    }

    /// Decides `first` and every command waiting behind it (up to [`MAX_BURST`]),
    /// commits their records as one batch, then answers them. A read or a snapshot
    /// behind a command waits for that command's records to be stored: a read never
    /// sees what is not durable.
    async fn burst(&mut self, first: Call, calls: &mut mpsc::Receiver<Call>) -> Result<(), ()> {
        let mut replies = Vec::new();
        let mut after = None;
        let mut next = Some(first);
        while let Some(call) = next.take() {
            match call {
                Call::Command {
                    user,
                    command,
                    reply,
                } => {
                    let answer =
                        self.engine
                            .handle_command(&user, command, self.clock.unix_millis());
                    replies.push((reply, answer));
                }
                Call::Read(f) if replies.is_empty() => f(&self.engine),
                other => {
                    after = Some(other);
                    break;
                }
            }
            if replies.len() < MAX_BURST {
                next = calls.try_recv().ok();
            }
        }
        let stored = self.flush().await;
        let failed = stored.is_err();
        for (reply, answer) in replies {
            let answer = if failed {
                Err(GatewayError::Stopped)
            } else {
                Ok(answer)
            };
            let _ = reply.send(answer);
        }
        if failed {
            return Err(());
        }
        match after {
            Some(Call::Read(f)) => f(&self.engine),
            Some(Call::Snapshot(reply)) => {
                let taken = self.snapshot().await;
                let failed = taken.is_err();
                let _ = reply.send(taken);
                if failed {
                    return Err(());
                }
            }
            Some(Call::Command { .. }) | None => {}
        }
        Ok(())
    }

    /// A snapshot of the state as stored now (every record is stored when this
    /// runs), and the journal compacted before it.
    async fn snapshot(&mut self) -> Result<u64, GatewayError> {
        let seq = self.snapshots.stored;
        let keep = self.snapshots.every;
        self.commits
            .snapshot(seq, self.engine.state().clone(), keep)
            .await?;
        self.snapshots.last = seq;
        info!(seq, "gateway: snapshot stored");
        Ok(seq)
    }

    /// Graceful stop: no more commands or timers (no schedule starts, no poll), but
    /// the storage actions under way are awaited, up to `grace`, and their results
    /// stored; a multi-step command goes on to its next step meanwhile.
    async fn drain(&mut self, mut calls: mpsc::Receiver<Call>, grace: Duration) {
        calls.close();
        while let Some(call) = calls.recv().await {
            match call {
                Call::Command { reply, .. } => {
                    let _ = reply.send(Err(GatewayError::Stopped));
                }
                Call::Snapshot(reply) => {
                    let _ = reply.send(Err(GatewayError::Stopped));
                }
                Call::Read(_) => {}
            }
        }
        let deadline = self.clock.tokio_now() + grace;
        while !self.engine.state().in_flight.is_empty() {
            let step = tokio::select! {
                Some((id, outcome)) = self.results.1.recv() => {
                    self.engine.handle_storage_result(id, outcome, self.clock.unix_millis());
                    self.flush().await
                }
                Some((serial, notice)) = self.notices.recv() => {
                    self.engine.handle_storage_notice(&serial, notice, self.clock.unix_millis());
                    self.flush().await
                }
                () = tokio::time::sleep_until(deadline) => break,
            };
            if let Err(e) = step {
                error!(error = %e, "gateway: the store failed while stopping");
                return;
            }
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

    /// Stores the records (one batch, awaited on the committer's thread), then
    /// tells the console and starts the storage actions; writes a snapshot when one
    /// is due.
    async fn flush(&mut self) -> Result<(), GatewayError> {
        let records: Vec<_> = std::iter::from_fn(|| self.engine.poll_record()).collect();
        let users_changed = records
            .iter()
            .any(|r| matches!(r, Record::User(_) | Record::UserRemoved(_)));
        if !records.is_empty() {
            let committed = self.commits.commit_async(records).await?;
            self.snapshots.stored = committed.last;
            self.version
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
        if users_changed {
            self.publish_users();
        }
        while let Some(m) = self.engine.poll_console() {
            // Log fields are text a person reads: no Rust debug forms.
            let session = m.session.as_deref().unwrap_or("-");
            match m.id.severity {
                Severity::Error => warn!(id = %m.id, session, "{}", m.text),
                _ => info!(id = %m.id, session, "{}", m.text),
            }
            if let Ok(mut history) = self.history.lock() {
                if history.len() == CONSOLE_HISTORY {
                    history.pop_front();
                }
                history.push_back(m.clone());
            }
            let _ = self.console.send(m);
        }
        while let Some(action) = self.engine.poll_storage_action() {
            self.dispatch(action);
        }
        let due = self.snapshots.every > 0
            && self.snapshots.stored - self.snapshots.last >= self.snapshots.every;
        if due {
            self.snapshot().await?;
        }
        Ok(())
    }

    fn publish_users(&self) {
        let hashes = self
            .engine
            .state()
            .users
            .values()
            .map(|u| {
                let credentials = csm::UserCredentials {
                    hash: u.password_hash.clone(),
                    id: u.id,
                    generation: u.generation,
                };
                (u.name.clone(), credentials)
            })
            .collect();
        if let Ok(mut users) = self.users.write() {
            *users = hashes;
        }
    }

    fn dispatch(&self, action: StorageAction) {
        let system = self.engine.state().systems.get(&action.serial).cloned();
        let host = match &action.route {
            Route::Host(name) => Some((name.clone(), self.engine.state().hosts.get(name).cloned())),
            Route::Hmc => None,
        };
        let executor = self.executor.clone();
        let hosts = self.hosts.clone();
        let results = self.results.0.clone();
        let links = self.links.clone();
        let link = match &action.route {
            Route::Host(name) => name.clone(),
            Route::Hmc => format!("DS8000:BOX:2107.{}", action.serial),
        };
        // The shell stops waiting when the box would refuse the request anyway: the
        // outcome of an action that changes the box is then unknown (policy.md §8.4).
        let now_ms = self.clock.unix_millis();
        let deadline = self.clock.tokio_now()
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
                    StorageOutcome::Failed { reason, text } => {
                        Some(format!("{reason:#06x} {text}"))
                    }
                    _ => None,
                };
            });
            let _ = results.send((action.id, outcome));
        });
    }
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
        _ => hmc.execute(system, action).await,
    }
}
