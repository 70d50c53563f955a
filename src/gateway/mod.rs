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

mod core;
pub mod csm;
mod discovery;
pub mod executor;
pub mod ha;
pub mod host;
pub mod imports;
pub(crate) mod ops;
pub mod passwords;
pub mod rest;
pub mod service;
pub mod syslog;
pub mod views;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::clock::Clock;
use crate::policy::console::ConsoleMessage;
use crate::policy::engine::{Command, Engine, EngineConfig, Finished, Reply, State};
use crate::store::sealing::SealingKey;
use crate::store::{Committer, Store, StoreError, StoreReader};

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
    /// Start as the standby of this active (ha.md §1): refuse changes, follow the
    /// active's records, run no timers and no storage action.
    pub standby_of: Option<String>,
    /// The fence domain of this server's pair (ds8k.md §3.4; 0: none), carried
    /// with the epoch by every changing storage request from the start.
    pub fence_domain: u64,
}

/// What this server is in its pair (ha.md §1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerRole {
    /// It acts (alone, or with a standby following it).
    Active,
    /// It follows `active` (empty when it does not know which server is active).
    Standby {
        /// The active's HA address.
        active: String,
    },
}

/// Where the engine's task and the HA link meet (ha.md §5.3): the last durable
/// record, the standby's acknowledgement, and whether answers wait for it.
#[derive(Debug)]
pub struct HaGate {
    /// The last record stored on this server.
    pub durable: tokio::sync::watch::Sender<u64>,
    /// The last record the standby has stored (its ACK).
    pub acked: tokio::sync::watch::Sender<u64>,
    /// True while answers wait for the standby: synchronous mode with a standby
    /// that is connected and caught up.
    pub sync: tokio::sync::watch::Sender<bool>,
    /// What this server's changing storage requests carry (ds8k.md §3.4): the
    /// pair's fence domain and this server's epoch.
    pub fence: tokio::sync::watch::Sender<crate::ds8k::Fence>,
    /// The highest epoch a storage system has seen from this server's fence domain
    /// when it refused a request as `FENCED`: a newer active exists (ha.md §7).
    pub overtaken: tokio::sync::watch::Sender<u64>,
}

impl Default for HaGate {
    fn default() -> Self {
        HaGate {
            durable: tokio::sync::watch::Sender::new(0),
            acked: tokio::sync::watch::Sender::new(0),
            sync: tokio::sync::watch::Sender::new(false),
            fence: tokio::sync::watch::Sender::new(crate::ds8k::Fence::NONE),
            overtaken: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl HaGate {
    /// Waits until the standby has stored record `last`, or until answers no longer
    /// wait for it (it was declared disconnected, or the mode is asynchronous).
    pub async fn wait_for_standby(&self, last: u64) {
        let mut sync = self.sync.subscribe();
        let mut acked = self.acked.subscribe();
        loop {
            if !*sync.borrow_and_update() || *acked.borrow_and_update() >= last {
                return;
            }
            tokio::select! {
                r = sync.changed() => if r.is_err() { return },
                r = acked.changed() => if r.is_err() { return },
            }
        }
    }
}

/// A full copy of the active's store (ha.md §5.2), as the standby installs it.
#[derive(Debug, Clone)]
pub struct FullCopy {
    /// The state is the state after this record.
    pub seq: u64,
    /// The active's epochs table.
    pub epochs: Vec<(u64, u64)>,
    /// The audit trail up to `seq`, sealed, by sequence number.
    pub audit: Vec<(u64, Vec<u8>)>,
    /// The sealed state.
    pub state: Vec<u8>,
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
    /// This server is the standby: changes go to the active (ha.md §1).
    #[error("this server is the standby server; run the command on the active server {active}")]
    Standby {
        /// The active's HA address, if known.
        active: String,
    },
    /// An HA step that cannot be done (ha.md §8): the text says why.
    #[error("{0}")]
    Ha(String),
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
    /// A standby stores and applies records the active stored (ha.md §5).
    Replicated {
        records: Vec<(u64, u64, Vec<u8>)>,
        reply: oneshot::Sender<Result<u64, GatewayError>>,
    },
    /// A standby replaces its state with a full copy (ha.md §5.2).
    Install {
        copy: Box<FullCopy>,
        reply: oneshot::Sender<Result<u64, GatewayError>>,
    },
    /// The standby becomes the active in a new epoch (ha.md §6).
    Takeover(oneshot::Sender<Result<u64, GatewayError>>),
    /// The store notes a higher epoch seen (ha.md §7).
    NoteEpoch {
        epoch: u64,
        reply: oneshot::Sender<Result<(), GatewayError>>,
    },
    /// The server becomes (or stays) a standby of `active` (ha.md §4, §7).
    Follow {
        active: String,
        reply: oneshot::Sender<Result<(), GatewayError>>,
    },
}

/// A caller's end of the gateway.
#[derive(Clone)]
pub struct GatewayHandle {
    calls: mpsc::Sender<Call>,
    console: broadcast::Sender<ConsoleMessage>,
    finished: broadcast::Sender<Finished>,
    history: History,
    users: csm::UserHashes,
    links: Links,
    store: PathBuf,
    started: tokio::time::Instant,
    clock: Clock,
    version: Arc<std::sync::atomic::AtomicU64>,
    reads: ReadCache,
    rendered: RenderedCache,
    /// `session.list`'s rows as last rendered (csm.md §3.5).
    session_rows: Arc<std::sync::Mutex<views::RenderedRows>>,
    /// The store's reader while the gateway runs (a handle that outlives the
    /// gateway must not hold the file open).
    stream: Arc<std::sync::Mutex<Option<StoreReader>>>,
    /// Copy sets sent in parts, waiting for their last part (csm.md §3.6).
    imports: Arc<imports::Imports>,
    /// This server's role, as the engine's task last set it.
    role: tokio::sync::watch::Receiver<ServerRole>,
    /// Where the HA link meets the engine's task.
    ha: Arc<HaGate>,
    /// The HA part, once the service has started it (weak: it holds a handle).
    ha_part: Arc<std::sync::OnceLock<std::sync::Weak<ha::Ha>>>,
}

/// Reads of the stored state by name, with the state version they were made at.
/// Values are shared: a read served from the cache copies nothing (a list of 20,000
/// sessions is 3.8 MB of JSON).
type ReadCache =
    Arc<std::sync::Mutex<std::collections::HashMap<&'static str, (u64, Arc<serde_json::Value>)>>>;

/// Reads kept as the JSON text they are sent as, by key and state version.
type RenderedCache =
    Arc<std::sync::Mutex<std::collections::HashMap<&'static str, (u64, Arc<str>)>>>;

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

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, GatewayError>>) -> Call,
    ) -> Result<T, GatewayError> {
        let (reply, answer) = oneshot::channel();
        self.calls
            .send(make(reply))
            .await
            .map_err(|_| GatewayError::Stopped)?;
        answer.await.map_err(|_| GatewayError::Stopped)?
    }

    /// On a standby: stores `records` (sequence number, epoch, sealed bytes, as the
    /// active stored them) and applies them; answers the last one's number once
    /// they are durable (ha.md §5).
    pub async fn replicate(&self, records: Vec<(u64, u64, Vec<u8>)>) -> Result<u64, GatewayError> {
        self.call(|reply| Call::Replicated { records, reply }).await
    }

    /// On a standby: replaces everything with a full copy of the active's store.
    pub async fn install(&self, copy: FullCopy) -> Result<u64, GatewayError> {
        self.call(|reply| Call::Install {
            copy: Box::new(copy),
            reply,
        })
        .await
    }

    /// On a standby: becomes the active in a new epoch, returned (ha.md §6).
    pub async fn take_over(&self) -> Result<u64, GatewayError> {
        self.call(Call::Takeover).await
    }

    /// Becomes (or stays) the standby of `active`: changes are refused from now on
    /// and nothing more is decided here (ha.md §4, §7).
    pub async fn follow(&self, active: &str) -> Result<(), GatewayError> {
        let active = active.to_owned();
        self.call(|reply| Call::Follow { active, reply }).await
    }

    /// Records durably that a partner is active in `epoch` (ha.md §7): a later
    /// takeover here begins a higher epoch.
    pub async fn note_epoch(&self, epoch: u64) -> Result<(), GatewayError> {
        self.call(|reply| Call::NoteEpoch { epoch, reply }).await
    }

    /// This server's role now.
    pub fn role(&self) -> ServerRole {
        self.role.borrow().clone()
    }

    /// A receiver of role changes.
    pub fn role_changes(&self) -> tokio::sync::watch::Receiver<ServerRole> {
        self.role.clone()
    }

    /// Where the HA link meets the engine's task.
    pub fn ha_gate(&self) -> Arc<HaGate> {
        self.ha.clone()
    }

    /// The HA part, when the service runs one.
    pub fn ha(&self) -> Option<Arc<ha::Ha>> {
        self.ha_part.get().and_then(std::sync::Weak::upgrade)
    }

    /// Registers the HA part for the doors.
    pub fn set_ha(&self, part: &Arc<ha::Ha>) {
        let _ = self.ha_part.set(Arc::downgrade(part));
    }

    /// Tells a console message the shell itself makes (HA events, ha.md §9): the
    /// log, the history, the subscribers and so remote syslog.
    pub fn announce(&self, message: ConsoleMessage) {
        core::tell_parts(&self.history, &self.console, message);
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

    /// The imports of copy sets sent in parts.
    pub fn imports(&self) -> &imports::Imports {
        &self.imports
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
    ) -> Result<Arc<serde_json::Value>, GatewayError> {
        let version = self.state_version();
        if let Ok(cache) = self.reads.lock()
            && let Some((v, value)) = cache.get(key)
            && *v == version
        {
            return Ok(value.clone());
        }
        let value = Arc::new(self.read(f).await?);
        if let Ok(mut cache) = self.reads.lock() {
            cache.insert(key, (version, value.clone()));
        }
        Ok(value)
    }

    /// A read of the stored state alone, as JSON text: `f` takes what is needed on
    /// the engine's task (cheap, typed), `render` writes the text on the caller's,
    /// and the text is kept until the state changes. A large list (20,000 sessions)
    /// then holds the engine for the copy alone, and a repeated read costs no
    /// serialising at all.
    pub async fn read_rendered<T: Send + 'static, Text: Into<Arc<str>>>(
        &self,
        key: &'static str,
        f: impl FnOnce(&Engine) -> T + Send + 'static,
        render: impl FnOnce(T) -> Text,
    ) -> Result<Arc<str>, GatewayError> {
        let version = self.state_version();
        if let Ok(cache) = self.rendered.lock()
            && let Some((v, text)) = cache.get(key)
            && *v == version
        {
            return Ok(text.clone());
        }
        let text: Arc<str> = render(self.read(f).await?).into();
        if let Ok(mut cache) = self.rendered.lock() {
            cache.insert(key, (version, text.clone()));
        }
        Ok(text)
    }

    /// Every session's row as JSON text, in name order, as one JSON array: kept
    /// until the state changes ([`GatewayHandle::read_rendered`]), and after a
    /// change only the rows whose summary changed are rendered again by `row`
    /// ([`views::RenderedRows`]). The engine's task copies the summaries alone.
    pub async fn read_session_rows(
        &self,
        key: &'static str,
        row: impl Fn(&views::SessionSummary) -> String,
    ) -> Result<Arc<str>, GatewayError> {
        let rows = self.session_rows.clone();
        self.read_rendered(
            key,
            |e| {
                e.state()
                    .sessions
                    .values()
                    .map(views::SessionSummary::of)
                    .collect::<Vec<_>>()
            },
            |summaries| match rows.lock() {
                Ok(mut rows) => rows.render(summaries, row),
                // A reader panicked holding the rows: render them all afresh.
                Err(_) => views::RenderedRows::default().render(summaries, row),
            },
        )
        .await
    }

    /// Every console message from now on.
    pub fn console(&self) -> broadcast::Receiver<ConsoleMessage> {
        self.console.subscribe()
    }

    /// Every command whose storage work ends from now on, with the message that
    /// says how (published once the records of its end are stored). Subscribe
    /// before the command goes in to be sure to see its end.
    pub fn finished(&self) -> broadcast::Receiver<Finished> {
        self.finished.subscribe()
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
        // The next snapshot writes what the records after this one touched.
        let mut dirty = std::collections::BTreeSet::new();
        crate::store::parts::note_touched(&recovered.tail, &mut dirty);
        // A store migrated from a version whose journal wrote sessions whole is
        // snapshotted at once, so the next restart does not read those records
        // (store.md §1.2).
        let snapshot_seq = match store.migrated_from() {
            Some(from) if store.last_seq() > snapshot_seq => {
                let seq = store.last_seq();
                store.snapshot(seq, &state, config.snapshot_every)?;
                dirty.clear();
                info!(from, seq, "gateway: migrated store snapshotted");
                seq
            }
            _ => snapshot_seq,
        };
        let mut engine = Engine::from_state(state, config.engine);
        // An epoch is a writer's term: it begins with a new store and with each
        // takeover, and a restart continues it (ha.md §7), so that a server that was
        // the active and restarts never takes an epoch a takeover may have taken.
        let epoch = if store.epoch() == 0 && config.standby_of.is_none() {
            store.begin_epoch()?
        } else {
            store.epoch()
        };
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
        let ha = Arc::new(HaGate::default());
        ha.durable.send_replace(last_seq);
        ha.fence.send_replace(crate::ds8k::Fence {
            domain: config.fence_domain,
            epoch,
        });
        let (committer, commits) = Committer::spawn_watched(store, Some(ha.durable.clone()))?;
        if config.standby_of.is_none() {
            if let Some((name, hash)) = &config.bootstrap_admin
                && engine.bootstrap_admin(name, hash.clone(), config.clock.unix_millis())
            {
                info!(user = %name, "gateway: first Administrator created");
            }
            engine.resume_in_flight(config.clock.unix_millis());
        }
        let role = match &config.standby_of {
            Some(active) => ServerRole::Standby {
                active: active.clone(),
            },
            None => ServerRole::Active,
        };
        let (role_tx, role_rx) = tokio::sync::watch::channel(role);
        let (calls, calls_rx) = mpsc::channel(CALL_BACKLOG);
        let (console, _) = broadcast::channel(CONSOLE_BACKLOG);
        let (finished, _) = broadcast::channel(CONSOLE_BACKLOG);
        let users = csm::UserHashes::default();
        let links = Links::default();
        let history = History::default();
        let version = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let handle = GatewayHandle {
            version: version.clone(),
            reads: ReadCache::default(),
            rendered: RenderedCache::default(),
            session_rows: Arc::default(),
            calls,
            console: console.clone(),
            finished: finished.clone(),
            history: history.clone(),
            clock: config.clock,
            users: users.clone(),
            links: links.clone(),
            store: config.store.clone(),
            started: config.clock.tokio_now(),
            stream,
            imports: Arc::default(),
            role: role_rx,
            ha: ha.clone(),
            ha_part: Arc::default(),
        };
        let shutdown = CancellationToken::new();
        let (notices_tx, notices) = mpsc::unbounded_channel();
        let hosts = Arc::new(host::HostExecutor::new(
            config.sealing_key.clone(),
            config.clock,
            config.storage_timeout,
            links.clone(),
            notices_tx.clone(),
        ));
        let executor = Arc::new(HmcExecutor::new(
            config.sealing_key.clone(),
            config.clock,
            config.storage_timeout,
            notices_tx,
            links.clone(),
            ha.clone(),
        ));
        let (results_tx, results) = mpsc::unbounded_channel();
        let (discovered_tx, discovered) = mpsc::unbounded_channel();
        let core = core::Core {
            engine,
            commits,
            snapshots: core::Snapshots {
                every: config.snapshot_every,
                last: snapshot_seq,
                handed: last_seq,
                dirty,
            },
            outlets: core::Outlets {
                executor,
                hosts,
                clock: config.clock,
                console,
                finished,
                history,
                version,
                results: results_tx,
                discovered: discovered_tx,
                users,
                links,
                ha,
            },
            results,
            discovered,
            notices,
            standby: config.standby_of.clone(),
            role: role_tx,
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
