//! The policy engine against the simulated DS8000, in one process (test-only,
//! feature `testkit`): storage actions run on [`crate::sim::ds8k`] directly and time
//! is advanced by hand, so hours of schedules, retention and background copy run in
//! milliseconds in tests, benchmarks and fuzzing. The journal it keeps is what the
//! store would hold, so any test can replay it.

use std::collections::{BTreeMap, BTreeSet};

use crate::ds8k::copy::{FlashOptions, PairKey};
use crate::ds8k::ids::{StorageImageId, VolumeId, VolumeKind};
use crate::ds8k::reason::{Ds8kError, Ds8kReason};
use crate::policy::console::ConsoleMessage;
use crate::policy::engine::{Command, Engine, EngineConfig, Record, Reply};
use crate::policy::inventory::{Sealed, StorageSystem, VolumeFacts};
use crate::policy::storage::{
    BackupFacts, BoxView, PairProgress, Route, StorageAction, StorageNotice, StorageOp,
    StorageOutcome,
};
use crate::sim::ds8k::{ImageConfig, StorageEvent, StorageImage};

/// The engine, its boxes, a clock and everything that came out.
#[derive(Debug, Clone)]
pub struct Harness {
    /// The engine.
    pub engine: Engine,
    /// The simulated storage images, by serial.
    pub boxes: BTreeMap<String, StorageImage>,
    /// Now, ms since the epoch.
    pub now_ms: u64,
    /// Every console message, in order.
    pub console: Vec<ConsoleMessage>,
    /// Every record, in order: the journal.
    pub journal: Vec<Record>,
    /// Every command whose storage work ended, in order.
    pub finished: Vec<crate::policy::engine::Finished>,
    /// Every storage action carried out, in order.
    pub executed: Vec<StorageAction>,
    /// Host connections (by system) and storage images (by serial) that are down:
    /// actions through them fail as a broken path would.
    pub down: BTreeSet<String>,
    /// Actions held back (not answered) until [`Harness::release`]: a stalled box.
    /// Past an action's deadline the engine hears that its outcome is unknown (as
    /// the shell's deadline tells it); the box still takes the request at release.
    pub hold: bool,
    held: Vec<StorageAction>,
    /// Held actions whose deadline passed: their answers, when the box gives them,
    /// reach nobody.
    timed_out: BTreeSet<u64>,
    /// Faults for the next actions that change a box, in order (see [`Fault`]).
    pub faults: std::collections::VecDeque<Fault>,
    /// Every action that changed a box, by id, with how often the box carried it out.
    pub carried_out: BTreeMap<u64, u32>,
    /// The first action the box carried out more than once, and how often (checked
    /// after every step, so kept as it happens rather than searched for).
    pub repeated: Option<(u64, u32)>,
    /// How many times [`Harness::advance`] stopped at a deadline (what a long
    /// advance costs: the fuzz targets' speed is bounded by it).
    pub stops: u64,
}

/// How the harness loses the answer of an action that changes a box: the engine
/// hears [`StorageOutcome::Unknown`] either way and must find out what the box did
/// (policy.md §8.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The box carries the action out, but its answer is lost (for a
    /// consistency-group flash, before the thaw that would have followed it).
    LoseAnswer,
    /// The request is lost on the way: the box never sees it.
    LoseRequest,
}

/// A well-formed argon2id hash for the harness's users (nobody logs on here).
pub const TEST_PASSWORD_HASH: &str = "$argon2id$v=19$m=256,t=1,p=1$dPSvPsnwvszeWFQcHoNUtQ$VkHyf3shwuBN9RYKSA5exsDDhoO9YAOy2Lqxr89Cn1o";

/// 2026-11-25 00:00:00 UTC: where harness time starts.
pub const START_MS: u64 = 1_795_564_800_000;

impl Harness {
    /// An engine with `config`, no boxes, time at [`START_MS`].
    pub fn new(config: EngineConfig) -> Harness {
        Harness {
            engine: Engine::new(config),
            boxes: BTreeMap::new(),
            now_ms: START_MS,
            console: Vec::new(),
            journal: Vec::new(),
            finished: Vec::new(),
            executed: Vec::new(),
            down: BTreeSet::new(),
            hold: false,
            held: Vec::new(),
            timed_out: BTreeSet::new(),
            faults: std::collections::VecDeque::new(),
            carried_out: BTreeMap::new(),
            repeated: None,
            stops: 0,
        }
    }

    /// A restart: a new engine from the journal alone, which resumes what was under
    /// way (policy.md §8.3). Answers still owed to the old engine reach nobody.
    pub fn restart(&mut self) {
        let mut engine = Engine::replay(self.engine.config(), &self.journal);
        engine.resume_in_flight(self.now_ms);
        self.engine = engine;
        self.timed_out.extend(self.held.iter().map(|a| a.id));
        self.pump();
    }

    /// An engine with administrator `admin` (hash [`TEST_PASSWORD_HASH`]).
    pub fn with_admin(config: EngineConfig, admin: &str) -> Harness {
        let mut h = Harness::new(config);
        h.engine
            .bootstrap_admin(admin, TEST_PASSWORD_HASH.into(), h.now_ms);
        h.drain();
        h
    }

    /// Adds a box with `volumes` (id, kind, safeguarded capacity in tracks) and
    /// defines it in the engine as `admin`.
    pub fn add_box(
        &mut self,
        admin: &str,
        serial: &str,
        config: ImageConfig,
        volumes: &[(VolumeId, VolumeKind, u64)],
    ) -> Result<Reply, Ds8kError> {
        let id = StorageImageId::parse(&format!("IBM.2107-{serial}")).map_err(|e| Ds8kError {
            reason: Ds8kReason::NOTHING_TO_DO,
            detail: e.to_string(),
        })?;
        let mut image = StorageImage::new(id, config);
        for &(v, kind, sgc) in volumes {
            image.create_volume(v, kind, "")?;
            if sgc > 0 {
                image.set_safeguarded_capacity(v, sgc)?;
            }
        }
        self.boxes.insert(serial.to_owned(), image);
        let reply = self.command(
            admin,
            Command::DefineStorageSystem(StorageSystem {
                serial: serial.to_owned(),
                address: "127.0.0.1:1750".into(),
                user: "admin".into(),
                password: Sealed(vec![0; 28]),
            }),
        );
        Ok(reply)
    }

    /// Creates user `name` as `admin` (password hash [`TEST_PASSWORD_HASH`]).
    pub fn add_user(
        &mut self,
        admin: &str,
        name: &str,
        role: crate::policy::access::Role,
        grant: Option<crate::policy::access::OperatorGrant>,
    ) -> Reply {
        self.command(
            admin,
            Command::CreateUser {
                name: name.into(),
                role,
                grant,
                password_hash: TEST_PASSWORD_HASH.into(),
            },
        )
    }

    /// Runs a command now and carries out whatever storage work follows.
    pub fn command(&mut self, user: &str, command: Command) -> Reply {
        let reply = self.engine.handle_command(user, command, self.now_ms);
        self.pump();
        reply
    }

    /// Advances time by `ms`, stopping at every deadline of the engine on the way,
    /// with the boxes copying in between.
    pub fn advance(&mut self, ms: u64) {
        let until = self.now_ms.saturating_add(ms);
        loop {
            // Whatever is due already (a restarted engine's first deadline, retention
            // that a backup made due) runs now; the engine must make progress, so a
            // deadline still due after that many rounds is a bug it reports by panic
            // here (test-only code).
            let mut rounds = 0;
            // One look at the deadline per stop: computing it is most of a stop's cost.
            let mut deadline = self.engine.next_deadline();
            while deadline.is_some_and(|d| d <= self.now_ms) {
                rounds += 1;
                assert!(
                    rounds < 100,
                    "the engine's deadline stays due without progress"
                );
                self.engine.handle_timeout(self.now_ms);
                self.pump();
                deadline = self.engine.next_deadline();
            }
            if self.now_ms >= until {
                break;
            }
            let next = deadline.map_or(until, |d| d.min(until));
            // A held action's deadline is the shell's: the engine hears "unknown" then.
            let next = self
                .held
                .iter()
                .filter(|a| !self.timed_out.contains(&a.id) && a.not_after_ms > self.now_ms)
                .map(|a| a.not_after_ms)
                .min()
                .map_or(next, |d| d.min(next));
            self.now_ms = next;
            self.stops += 1;
            self.time_out_held();
            for image in self.boxes.values_mut() {
                image.tick(self.now_ms);
            }
            self.engine.handle_timeout(self.now_ms);
            self.pump();
        }
    }

    /// Tells the engine "unknown" for every held action whose deadline has passed.
    fn time_out_held(&mut self) {
        let due: Vec<u64> = self
            .held
            .iter()
            .filter(|a| a.not_after_ms != 0 && a.not_after_ms <= self.now_ms)
            .map(|a| a.id)
            .filter(|id| !self.timed_out.contains(id))
            .collect();
        // A read that timed out changes nothing on the box: it is forgotten.
        self.held
            .retain(|a| !(a.op.is_read() && due.contains(&a.id)));
        for id in due {
            if self.held.iter().any(|a| a.id == id) {
                self.timed_out.insert(id);
            }
            let outcome = StorageOutcome::Unknown {
                text: "no answer before the storage deadline".into(),
            };
            self.engine.handle_storage_result(id, outcome, self.now_ms);
        }
        self.pump();
    }

    /// The box takes the actions held while [`Harness::hold`] was set, in order;
    /// answers owed to nobody (past their deadline, or to an engine that restarted)
    /// are dropped.
    pub fn release(&mut self) {
        self.hold = false;
        let held = std::mem::take(&mut self.held);
        for action in held {
            // A shell that stopped waiting never saw the flash's answer, so it
            // never thawed what the flash froze.
            let waited = !self.timed_out.contains(&action.id);
            let outcome = self.execute_as(&action, waited);
            if !self.timed_out.remove(&action.id) {
                self.engine
                    .handle_storage_result(action.id, outcome, self.now_ms);
            }
        }
        self.pump();
    }

    /// Carries out queued storage actions and box events until none is left.
    pub fn pump(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(action) = self.engine.poll_storage_action() {
                progressed = true;
                if self.hold {
                    self.held.push(action);
                    continue;
                }
                let outcome = if action.op.is_read() || matches!(action.op, StorageOp::Thaw { .. })
                {
                    self.execute(&action)
                } else {
                    match self.faults.pop_front() {
                        None => self.execute(&action),
                        Some(Fault::LoseRequest) => StorageOutcome::Unknown {
                            text: "the request was lost".into(),
                        },
                        Some(Fault::LoseAnswer) => {
                            self.execute_as(&action, false);
                            StorageOutcome::Unknown {
                                text: "the answer was lost".into(),
                            }
                        }
                    }
                };
                self.engine
                    .handle_storage_result(action.id, outcome, self.now_ms);
            }
            for (serial, image) in &mut self.boxes {
                while let Some(event) = image.poll_event() {
                    if let StorageEvent::BackupRolledOff { volume, backup_id } = event {
                        progressed = true;
                        self.engine.handle_storage_notice(
                            serial,
                            StorageNotice::BackupRolledOff {
                                volume,
                                backup: backup_id,
                            },
                            self.now_ms,
                        );
                    }
                }
            }
            self.drain();
            if !progressed {
                break;
            }
        }
    }

    fn drain(&mut self) {
        while let Some(m) = self.engine.poll_console() {
            self.console.push(m);
        }
        while let Some(r) = self.engine.poll_record() {
            self.journal.push(r);
        }
        while let Some(f) = self.engine.poll_finished() {
            self.finished.push(f);
        }
    }

    /// Carries out one action on its box, as the HMC or a host would.
    pub fn execute(&mut self, action: &StorageAction) -> StorageOutcome {
        self.execute_as(action, true)
    }

    /// As [`Harness::execute`]; without `thaw`, a consistency-group flash leaves its
    /// LSSs frozen (the shell that would have thawed them lost the answer).
    fn execute_as(&mut self, action: &StorageAction, thaw: bool) -> StorageOutcome {
        self.executed.push(action.clone());
        if let Route::Host(system) = &action.route
            && self.down.contains(system)
        {
            return failed_path(&format!("host connection {system} is down"));
        }
        if self.down.contains(&action.serial) {
            return failed_path(&format!("DS8000 2107.{} does not answer", action.serial));
        }
        let now = self.now_ms;
        let Some(image) = self.boxes.get_mut(&action.serial) else {
            return failed_path(&format!("no storage image 2107.{}", action.serial));
        };
        if action.not_after_ms != 0 && now > action.not_after_ms && !action.op.is_read() {
            // spec: ds8k.md §3.3: the box does not carry out an expired request.
            return StorageOutcome::Failed {
                reason: Ds8kReason::REQUEST_EXPIRED.0,
                text: "the request expired".into(),
            };
        }
        // A host path carries no token (policy.md §8.4).
        let token = match action.route {
            Route::Hmc => action.token(),
            Route::Host(_) => 0,
        };
        match run(image, now, &action.op, token, thaw) {
            Ok(outcome) => {
                if !action.op.is_read() && !matches!(action.op, StorageOp::Thaw { .. }) {
                    let times = self.carried_out.entry(action.id).or_default();
                    *times += 1;
                    if *times > 1 && self.repeated.is_none() {
                        self.repeated = Some((action.id, *times));
                    }
                }
                outcome
            }
            Err(e) => StorageOutcome::Failed {
                reason: e.reason.0,
                text: e.detail,
            },
        }
    }

    /// The messages with `id` (`"IWNR2772I"`).
    pub fn messages(&self, id: &str) -> Vec<&ConsoleMessage> {
        self.console
            .iter()
            .filter(|m| m.id.to_string() == id)
            .collect()
    }
}

fn failed_path(text: &str) -> StorageOutcome {
    StorageOutcome::Failed {
        reason: 0,
        text: text.to_owned(),
    }
}

fn keys(pairs: &[(VolumeId, VolumeId)]) -> Vec<PairKey> {
    pairs
        .iter()
        .map(|&(source, target)| PairKey { source, target })
        .collect()
}

/// One operation on the model, with the action's `token`; a consistency-group
/// flash thaws its sources at once when `thaw`.
fn run(
    image: &mut StorageImage,
    now: u64,
    op: &StorageOp,
    token: u32,
    thaw: bool,
) -> Result<StorageOutcome, Ds8kError> {
    Ok(match op {
        StorageOp::Establish { pairs, options } | StorageOp::Resync { pairs, options } => {
            let opts = FlashOptions(*options);
            let result = if matches!(op, StorageOp::Establish { .. }) {
                image.establish_flash_numbered(now, &keys(pairs), opts, token)?
            } else {
                image.resync_flash_numbered(now, &keys(pairs), opts, token)?
            };
            if opts.freeze() && thaw {
                let lsss: BTreeSet<_> = pairs.iter().map(|p| p.0.lss()).collect();
                image.unfreeze(&lsss.into_iter().collect::<Vec<_>>());
            }
            StorageOutcome::Flashed {
                out_of_sync_tracks: result.out_of_sync_tracks,
            }
        }
        StorageOp::Withdraw { pairs, copy_first } => {
            image.withdraw_flash(&keys(pairs), *copy_first)?;
            StorageOutcome::Withdrawn
        }
        StorageOp::QueryFlash { pairs } => StorageOutcome::FlashStates(
            keys(pairs)
                .into_iter()
                .filter_map(|k| image.flash_info(k))
                .map(|f| progress(&f))
                .collect(),
        ),
        StorageOp::Backup { volumes } => {
            let b = image.take_backup_tagged(now, volumes, token)?;
            StorageOutcome::BackedUp {
                id: b.id,
                time_ms: b.time_ms,
            }
        }
        StorageOp::Expire { backup } => {
            image.expire_backup(*backup)?;
            StorageOutcome::Expired
        }
        StorageOp::Recover { backup, pairs } => {
            image.recover_backup(*backup, pairs)?;
            StorageOutcome::Recovered
        }
        StorageOp::Restore { backup, volumes } => StorageOutcome::Restored {
            tracks: image.restore_backup(now, *backup, volumes)?,
        },
        StorageOp::ListBackups { volumes } => StorageOutcome::Backups(backups_of(image, volumes)?),
        StorageOp::ShowVolumes { volumes, .. } => StorageOutcome::Volumes(
            volumes
                .iter()
                .filter_map(|&v| image.query_volume(v).ok())
                .map(|info| VolumeFacts {
                    volume: info.id,
                    kind: info.kind,
                    sgc_capacity: info.sgc_capacity,
                })
                .collect(),
        ),
        StorageOp::ListVolumes => StorageOutcome::Volumes(
            image
                .volume_ids()
                .filter_map(|v| image.query_volume(v).ok())
                .map(|info| VolumeFacts {
                    volume: info.id,
                    kind: info.kind,
                    sgc_capacity: info.sgc_capacity,
                })
                .collect(),
        ),
        StorageOp::Inspect { pairs, volumes, .. } => {
            image.tick(now);
            let backups = backups_of(image, volumes)?;
            StorageOutcome::Inspected(BoxView {
                clock_ms: now,
                frozen: image.frozen_lsss(),
                flash: keys(pairs)
                    .into_iter()
                    .filter_map(|k| image.flash_info(k))
                    .map(|f| progress(&f))
                    .collect(),
                backups,
                mirror: Vec::new(),
            })
        }
        StorageOp::Thaw { lsss } => {
            image.unfreeze(lsss);
            StorageOutcome::Thawed
        }
        // One image, no z/OS: Metro Mirror sessions are tested with the real
        // processes (tests/mirror_session_e2e.rs).
        StorageOp::Mirror { .. } | StorageOp::HyperSwap { .. } => {
            failed_path("the harness models one storage image and no z/OS")
        }
    })
}

/// The backups each of `volumes` holds, as LSBACKUP lists them.
fn backups_of(image: &StorageImage, volumes: &[VolumeId]) -> Result<Vec<BackupFacts>, Ds8kError> {
    let mut found = Vec::new();
    for &v in volumes {
        for b in image.list_backups(v)? {
            found.push(BackupFacts {
                id: b.id,
                time_ms: b.time_ms,
                volume: v,
                tag: b.tag,
            });
        }
    }
    Ok(found)
}

fn progress(f: &crate::sim::ds8k::FlashInfo) -> PairProgress {
    PairProgress {
        source: f.key.source,
        target: f.key.target,
        out_of_sync_tracks: f.out_of_sync_tracks,
        sequence: f.sequence,
        synced_ms: f.synced_ms,
    }
}
