//! Carrying out the engine's storage actions over the DS8000's HMC protocol
//! (`protocol-specs/policy.md` §5.4 → `protocol-specs/ds8k.md`): one connector per
//! storage image, made when first needed from the storage system's definition, its
//! password opened with the operator's sealing key.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc};

use crate::client::ds8k::{self, Authentication, ConnectorEvent, Ds8kConnectorConfig, Ds8kHandle};
use crate::clock::Clock;
use crate::ds8k::{Ds8kReason, Fence, FlashOptions, Lss, PairKey, VolumeId};
use crate::policy::inventory::{StorageSystem, VolumeFacts};
use crate::policy::storage::{
    BackupFacts, BoxView, MirrorPairFacts, MirrorPairState, MirrorRequest, PairProgress, Route,
    StorageAction, StorageNotice, StorageOp, StorageOutcome,
};
use crate::proto::ds8k::Ds8kBody;
use crate::proto::logon::Credential;
use crate::proto::{ReplyStatus, ReturnCode};
use crate::store::sealing::SealingKey;

/// What a storage image reported unasked, with its serial.
pub type Notice = (String, StorageNotice);

/// How the gateway reaches the storage images.
pub struct HmcExecutor {
    key: Arc<SealingKey>,
    clock: Clock,
    request_timeout: Duration,
    connectors: Mutex<HashMap<String, (StorageSystem, Arc<Ds8kHandle>)>>,
    notices: mpsc::UnboundedSender<Notice>,
    links: super::Links,
    gate: Arc<super::HaGate>,
}

impl std::fmt::Debug for HmcExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HmcExecutor").finish_non_exhaustive()
    }
}

fn failed(reason: u16, text: impl Into<String>) -> StorageOutcome {
    StorageOutcome::Failed {
        reason,
        text: text.into(),
    }
}

/// What went wrong, in words, for a log line.
fn why(outcome: &StorageOutcome) -> &str {
    match outcome {
        StorageOutcome::Failed { text, .. } | StorageOutcome::Unknown { text } => text,
        _ => "an unexpected answer",
    }
}

fn keys(pairs: &[(VolumeId, VolumeId)]) -> Vec<PairKey> {
    pairs
        .iter()
        .map(|&(source, target)| PairKey { source, target })
        .collect()
}

/// A reply's status as an outcome: `Ok` when the box did it.
fn check(reply: &Ds8kBody) -> Result<(), StorageOutcome> {
    match reply.status() {
        Some(ReplyStatus {
            rc: ReturnCode::OK, ..
        }) => Ok(()),
        Some(status) => Err(failed(
            status.reason,
            format!(
                "the DS8000 refused it (rc {}, reason {:#06x})",
                status.rc.0, status.reason
            ),
        )),
        None => Err(failed(0, format!("unexpected answer {reply:?}"))),
    }
}

impl HmcExecutor {
    /// An executor that opens passwords with `key` and reports the boxes' notices
    /// (backups rolled off) to `notices`.
    pub fn new(
        key: Arc<SealingKey>,
        clock: Clock,
        request_timeout: Duration,
        notices: mpsc::UnboundedSender<Notice>,
        links: super::Links,
        gate: Arc<super::HaGate>,
    ) -> HmcExecutor {
        HmcExecutor {
            key,
            clock,
            request_timeout,
            connectors: Mutex::new(HashMap::new()),
            notices,
            links,
            gate,
        }
    }

    /// Carries out a discovery logon (policy.md §4.2): the definition it found, its
    /// secret sealed again under the definition's name.
    pub async fn discover(
        &self,
        target: &crate::policy::inventory::Discover,
    ) -> Result<crate::policy::inventory::Discovered, String> {
        super::discovery::identify(&self.key, self.clock, target).await
    }

    /// The connector to `system`'s HMC, made (or remade, when the definition
    /// changed) on first use.
    async fn connector(&self, system: &StorageSystem) -> Result<Arc<Ds8kHandle>, StorageOutcome> {
        let mut connectors = self.connectors.lock().await;
        if let Some((known, handle)) = connectors.get(&system.serial)
            && known == system
        {
            return Ok(Arc::clone(handle));
        }
        let addr: SocketAddr = system.address.parse().map_err(|_| {
            failed(
                0,
                format!("HMC address {} is not host:port", system.address),
            )
        })?;
        let object = crate::policy::inventory::storage_password_object(&system.serial);
        let password = self
            .key
            .open(&object, &system.password)
            .map_err(|e| failed(0, e.to_string()))?;
        let text = String::from_utf8(password.to_vec())
            .map_err(|_| failed(0, format!("{object} is not text")))?;
        let auth = match (Credential::new(&text), text.chars().count()) {
            (Some(c), 1..=8) => Authentication::Password(c),
            (Some(c), _) => Authentication::Passphrase(c),
            (None, _) => return Err(failed(0, format!("{object} is not a usable credential"))),
        };
        let mut config = Ds8kConnectorConfig::new(addr);
        config.user = system.user.clone();
        config.appl = "HMC".into();
        config.clock = self.clock;
        config.request_timeout = self.request_timeout;
        config.backoff_initial = Duration::from_millis(100);
        config.backoff_max = super::LINK_BACKOFF_MAX;
        // The gateway's link never gives up for good (policy.md §8.4).
        config.refusal_pause = Some(super::LINK_REFUSAL_PAUSE);
        let mut handle = ds8k::spawn(config, auth).map_err(|e| failed(0, e.to_string()))?;
        let mut events = handle.take_events();
        let notices = self.notices.clone();
        let serial = system.serial.clone();
        let links = self.links.clone();
        let name = system.name();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                // The connector logs its refusals once; the link status shows them.
                super::track_link(&links, &name, &event);
                let notice = match event {
                    ConnectorEvent::Event(Ds8kBody::BackupRolledOffEvent {
                        volume,
                        backup_id,
                        ..
                    }) => StorageNotice::BackupRolledOff {
                        volume,
                        backup: backup_id,
                    },
                    ConnectorEvent::Event(Ds8kBody::PprcSuspendedEvent {
                        primary, reason, ..
                    }) => StorageNotice::PairSuspended { primary, reason },
                    _ => continue,
                };
                if notices.send((serial.clone(), notice)).is_err() {
                    return;
                }
            }
        });
        let handle = Arc::new(handle);
        connectors.insert(system.serial.clone(), (system.clone(), handle.clone()));
        Ok(handle)
    }

    /// Carries out `action` on `system` and says what came of it: `Unknown` when
    /// the request may have reached the box but no answer came (policy.md §8.4).
    pub async fn execute(&self, system: &StorageSystem, action: &StorageAction) -> StorageOutcome {
        let handle = match self.connector(system).await {
            Ok(h) => h,
            Err(outcome) => return outcome,
        };
        // Through a host, the box's request carries no token (policy.md §8.4).
        let token = match action.route {
            Route::Hmc => action.token(),
            Route::Host(_) => 0,
        };
        // Read as the request leaves: a takeover here since the action was decided
        // only makes its epoch newer (ds8k.md §3.4).
        let fence = *self.gate.fence.borrow();
        let outcome = match run(&handle, &action.op, token, action.not_after_ms, fence).await {
            Ok(outcome) | Err(outcome) => outcome,
        };
        if let StorageOutcome::Failed { reason, .. } = &outcome
            && *reason == Ds8kReason::FENCED.0
        {
            self.learn_epoch(&handle, fence).await;
        }
        outcome
    }

    /// Shows each of `systems` this server's fence (a takeover, ha.md §6): from the
    /// box's answer on, the old active's changing requests are refused there even if
    /// it never hears of the takeover (ds8k.md §3.4).
    pub fn announce(self: &Arc<Self>, systems: Vec<StorageSystem>) {
        let fence = *self.gate.fence.borrow();
        if fence.is_none() {
            return;
        }
        for system in systems {
            let executor = Arc::clone(self);
            tokio::spawn(async move {
                match executor.connector(&system).await {
                    Ok(handle) => executor.learn_epoch(&handle, fence).await,
                    Err(outcome) => tracing::warn!(
                        system = %system.name(),
                        why = %why(&outcome),
                        "storage: could not show the box this server's epoch"
                    ),
                }
            });
        }
    }

    /// Connects to `system`'s HMC now (its events reach the engine from then on);
    /// a failure is logged, and the next request tries again.
    pub fn watch(self: &Arc<Self>, system: StorageSystem) {
        let executor = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(outcome) = executor.connector(&system).await {
                tracing::warn!(
                    system = %system.name(),
                    why = %why(&outcome),
                    "storage: could not connect to watch it"
                );
            }
        });
    }

    /// FENCE: shows the box `fence` and takes note when the box has seen a newer
    /// epoch of this server's domain (the HA part then stops acting, ha.md §7).
    async fn learn_epoch(&self, handle: &Ds8kHandle, fence: Fence) {
        match ask(handle, Ds8kBody::FenceRequest { fence }).await {
            Ok(Ds8kBody::FenceReply { epoch, .. }) if epoch > fence.epoch => {
                tracing::warn!(
                    epoch = fence.epoch,
                    newer = epoch,
                    "storage: the box has seen a newer epoch of this server's pair"
                );
                self.gate.overtaken.send_if_modified(|seen| {
                    let newer = epoch > *seen;
                    *seen = (*seen).max(epoch);
                    newer
                });
            }
            Ok(_) => {}
            Err(outcome) => tracing::warn!(
                why = %why(&outcome),
                "storage: FENCE was not answered"
            ),
        }
    }
}

/// How long a request waits for its connector to (re)connect before it fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// Sends `body`, waiting up to `patience` for a connector that is still logging on
/// (a new connector, or one reconnecting after its host went away).
pub(super) async fn patiently<P: crate::proto::Protocol>(
    h: &crate::client::connector::ConnectorHandle<P>,
    body: P::Body,
    patience: Duration,
) -> Result<P::Body, crate::client::connector::RequestError> {
    let give_up = tokio::time::Instant::now() + patience;
    loop {
        match h.request(body.clone()).await {
            Err(crate::client::connector::RequestError::NotConnected)
                if tokio::time::Instant::now() < give_up =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

/// A request's failure as an outcome: one that never left zgate failed; one that
/// may have reached the box (no answer in time, the connection lost with it
/// outstanding) has an unknown outcome (policy.md §8.4).
pub(super) fn path_failure(
    e: &crate::client::connector::RequestError,
    path: &str,
) -> StorageOutcome {
    use crate::client::connector::RequestError as E;
    let text = format!("the {path} path failed: {e}");
    match e {
        E::Timeout | E::ConnectionLost | E::Stopped => StorageOutcome::Unknown { text },
        _ => failed(0, text),
    }
}

async fn ask(h: &Ds8kHandle, body: Ds8kBody) -> Result<Ds8kBody, StorageOutcome> {
    let reply = patiently(h, body, PATIENCE)
        .await
        .map_err(|e| path_failure(&e, "HMC"))?;
    check(&reply)?;
    Ok(reply)
}

async fn run(
    h: &Ds8kHandle,
    op: &StorageOp,
    token: u32,
    not_after_ms: u64,
    fence: Fence,
) -> Result<StorageOutcome, StorageOutcome> {
    Ok(match op {
        StorageOp::Establish { pairs, options } | StorageOp::Resync { pairs, options } => {
            let resync = matches!(op, StorageOp::Resync { .. });
            let options = FlashOptions(*options);
            let reply = ask(
                h,
                Ds8kBody::FlashRequest {
                    fence,
                    resync,
                    options,
                    sequence: token,
                    not_after_ms,
                    pairs: keys(pairs),
                },
            )
            .await?;
            if options.freeze() {
                // The consistency group is formed: thaw the sources at once. If the
                // thaw gets no answer the flash is done but the LSSs may still be
                // frozen: the outcome is unknown, and the inspection that follows
                // finds the relationships and thaws what is frozen (policy.md §8.4).
                let lsss: BTreeSet<Lss> = pairs.iter().map(|p| p.0.lss()).collect();
                ask(
                    h,
                    Ds8kBody::UnfreezeRequest {
                        fence,
                        lsss: lsss.into_iter().collect(),
                    },
                )
                .await
                .map_err(|e| match e {
                    StorageOutcome::Unknown { text } | StorageOutcome::Failed { text, .. } => {
                        StorageOutcome::Unknown {
                            text: format!("the flash was made but the thaw failed: {text}"),
                        }
                    }
                    other => other,
                })?;
            }
            let Ds8kBody::FlashReply {
                out_of_sync_tracks, ..
            } = reply
            else {
                return Err(failed(0, "the HMC answered a flash with something else"));
            };
            StorageOutcome::Flashed { out_of_sync_tracks }
        }
        StorageOp::Withdraw { pairs, copy_first } => {
            ask(
                h,
                Ds8kBody::WithdrawRequest {
                    fence,
                    copy_first: *copy_first,
                    pairs: keys(pairs),
                },
            )
            .await?;
            StorageOutcome::Withdrawn
        }
        StorageOp::QueryFlash { pairs } => {
            StorageOutcome::FlashStates(relationships_of(h, pairs).await?)
        }
        StorageOp::Backup { volumes } => {
            match ask(
                h,
                Ds8kBody::BackupRequest {
                    fence,
                    tag: token,
                    not_after_ms,
                    volumes: volumes.clone(),
                },
            )
            .await?
            {
                Ds8kBody::BackupReply {
                    backup_id, time_ms, ..
                } => StorageOutcome::BackedUp {
                    id: backup_id,
                    time_ms,
                },
                _ => return Err(failed(0, "the HMC answered a backup with something else")),
            }
        }
        StorageOp::Expire { backup } => {
            ask(
                h,
                Ds8kBody::ExpireRequest {
                    fence,
                    backup_id: *backup,
                },
            )
            .await?;
            StorageOutcome::Expired
        }
        StorageOp::Recover { backup, pairs } => {
            ask(
                h,
                Ds8kBody::RecoverRequest {
                    fence,
                    backup_id: *backup,
                    pairs: keys(pairs),
                },
            )
            .await?;
            StorageOutcome::Recovered
        }
        StorageOp::Restore { backup, volumes } => {
            let reply = ask(
                h,
                Ds8kBody::RestoreRequest {
                    fence,
                    backup_id: *backup,
                    volumes: volumes.clone(),
                },
            )
            .await?;
            let tracks = match reply {
                Ds8kBody::CountReply { count, .. } => count,
                _ => 0,
            };
            StorageOutcome::Restored { tracks }
        }
        StorageOp::ListBackups { volumes } => {
            StorageOutcome::Backups(backups_of(h, volumes).await?)
        }
        StorageOp::ShowVolumes { volumes, .. } => {
            let mut found = Vec::new();
            for &volume in volumes {
                match ask(h, Ds8kBody::ShowVolumeRequest { volume }).await {
                    Ok(Ds8kBody::VolumeReply { volume: v, .. }) => found.push(VolumeFacts {
                        volume: v.volume,
                        kind: v.kind,
                        sgc_capacity: v.sgc_capacity,
                    }),
                    Ok(_) => {}
                    // A volume the box does not have is left out; the engine decides.
                    Err(StorageOutcome::Failed { reason, .. })
                        if reason == crate::ds8k::Ds8kReason::UNKNOWN_VOLUME.0 => {}
                    Err(other) => return Err(other),
                }
            }
            StorageOutcome::Volumes(found)
        }
        StorageOp::Inspect {
            pairs,
            volumes,
            mirror,
        } => StorageOutcome::Inspected(inspect(h, pairs, volumes, mirror).await?),
        StorageOp::ListVolumes => StorageOutcome::Volumes(every_volume(h).await?),
        StorageOp::Mirror { request, .. } => return mirror(h, request, fence).await,
        StorageOp::HyperSwap { system, .. } => {
            return Err(failed(
                0,
                format!("a HyperSwap request goes to z/OS system {system}, not to an HMC"),
            ));
        }
        StorageOp::Thaw { lsss } => {
            ask(
                h,
                Ds8kBody::UnfreezeRequest {
                    fence,
                    lsss: lsss.clone(),
                },
            )
            .await?;
            StorageOutcome::Thawed
        }
    })
}

/// One relationship as LSFLASH lists it.
fn progress(e: &crate::proto::ds8k::FlashEntry) -> PairProgress {
    PairProgress {
        source: e.key.source,
        target: e.key.target,
        out_of_sync_tracks: e.out_of_sync_tracks,
        sequence: e.sequence,
        synced_ms: e.synced_ms,
    }
}

/// What the box holds (policy.md §8.4): its clock and frozen LSSs first (LSFROZEN),
/// so that whatever a request that expired before that clock could do is already in
/// the lists read after it; then the pairs' relationships and the volumes' backups.
async fn inspect(
    h: &Ds8kHandle,
    pairs: &[(VolumeId, VolumeId)],
    volumes: &[VolumeId],
    mirrored: &[VolumeId],
) -> Result<BoxView, StorageOutcome> {
    let Ds8kBody::FrozenReply { clock_ms, lsss, .. } = ask(h, Ds8kBody::FrozenRequest).await?
    else {
        return Err(failed(0, "the HMC answered LSFROZEN with something else"));
    };
    let flash = relationships_of(h, pairs).await?;
    let backups = backups_of(h, volumes).await?;
    let mirror = mirror_pairs_of(h, mirrored).await?;
    Ok(BoxView {
        clock_ms,
        frozen: lsss,
        flash,
        backups,
        mirror,
    })
}

/// Every volume of the image, LSVOL page by page (ds8k.md §4.3).
async fn every_volume(h: &Ds8kHandle) -> Result<Vec<VolumeFacts>, StorageOutcome> {
    use crate::proto::ds8k::messages::MAX_LSVOL_ENTRIES;
    let mut found = Vec::new();
    let mut first = 0u32;
    while first <= u32::from(u16::MAX) {
        let Ds8kBody::ListVolumesReply { entries, .. } = ask(
            h,
            Ds8kBody::ListVolumesRequest {
                first: VolumeId(first as u16),
                max: MAX_LSVOL_ENTRIES as u16,
            },
        )
        .await?
        else {
            return Err(failed(0, "the HMC answered LSVOL with something else"));
        };
        let full = entries.len() == MAX_LSVOL_ENTRIES;
        let Some(last) = entries.last().map(|e| e.volume.0) else {
            break;
        };
        found.extend(entries.into_iter().map(|v| VolumeFacts {
            volume: v.volume,
            kind: v.kind,
            sgc_capacity: v.sgc_capacity,
        }));
        if !full {
            break;
        }
        first = u32::from(last) + 1;
    }
    Ok(found)
}

/// A serial as the HMC protocol carries it.
fn char8(serial: &str) -> Result<crate::codec::fields::Ebcdic<8>, StorageOutcome> {
    crate::codec::fields::Ebcdic::new(serial)
        .map_err(|e| failed(0, format!("storage image serial {serial}: {e}")))
}

/// A Metro Mirror request (ds8k.md §4.8): the box's count on success.
async fn mirror(
    h: &Ds8kHandle,
    request: &MirrorRequest,
    fence: Fence,
) -> Result<StorageOutcome, StorageOutcome> {
    use crate::proto::ds8k::Ds8kMessageType as T;
    use crate::proto::ds8k::messages::PATH_CONSISTENCY_GROUP;
    let volumes_request = |message_type, volumes: &[VolumeId]| Ds8kBody::PprcVolumesRequest {
        fence,
        message_type,
        volumes: volumes.to_vec(),
    };
    let body = match request {
        MirrorRequest::Paths { remote, lss_pairs } => Ds8kBody::PathRequest {
            fence,
            remove: false,
            remote: char8(remote)?,
            options: PATH_CONSISTENCY_GROUP,
            lss_pairs: lss_pairs.clone(),
        },
        MirrorRequest::Pairs { remote, pairs } | MirrorRequest::Failback { remote, pairs } => {
            Ds8kBody::PprcPairsRequest {
                fence,
                failback: matches!(request, MirrorRequest::Failback { .. }),
                options: 0,
                remote: char8(remote)?,
                pairs: keys(pairs),
            }
        }
        MirrorRequest::Resume { volumes } => volumes_request(T::RESUMEPPRC, volumes),
        MirrorRequest::Pause { volumes } => volumes_request(T::PAUSEPPRC, volumes),
        MirrorRequest::Failover { volumes } => volumes_request(T::FAILOVERPPRC, volumes),
        MirrorRequest::Remove { volumes } => {
            // Only the pairs that exist: a Terminate after a partial Start, or sent
            // again after its answer was judged lost, ends what is there.
            let there: Vec<VolumeId> = mirror_pairs_of(h, volumes)
                .await?
                .iter()
                .map(|f| f.primary)
                .filter(|v| volumes.contains(v))
                .collect();
            if there.is_empty() {
                return Ok(StorageOutcome::Mirrored { count: 0 });
            }
            volumes_request(T::RMPPRC, &there)
        }
        MirrorRequest::Freeze { remote, lss_pairs } => Ds8kBody::FreezePprcRequest {
            fence,
            remote: char8(remote)?,
            lss_pairs: lss_pairs.clone(),
        },
        MirrorRequest::Run { lsss } => Ds8kBody::UnfreezePprcRequest {
            fence,
            lsss: lsss.clone(),
        },
        MirrorRequest::Query { volumes } => {
            return Ok(StorageOutcome::MirrorPairs(
                mirror_pairs_of(h, volumes).await?,
            ));
        }
    };
    let count = match ask(h, body).await? {
        Ds8kBody::CountReply { count, .. } => count,
        _ => 0,
    };
    Ok(StorageOutcome::Mirrored { count })
}

/// The Metro Mirror pairs of `volumes` (LSPPRC of each), each pair once.
async fn mirror_pairs_of(
    h: &Ds8kHandle,
    volumes: &[VolumeId],
) -> Result<Vec<MirrorPairFacts>, StorageOutcome> {
    let mut found: Vec<MirrorPairFacts> = Vec::new();
    for &volume in volumes {
        if let Ds8kBody::ListPprcReply { entries, .. } =
            ask(h, Ds8kBody::ListPprcRequest { volume }).await?
        {
            for e in entries {
                let facts = MirrorPairFacts {
                    primary_serial: e.primary_serial.as_str().to_owned(),
                    primary: e.primary,
                    secondary_serial: e.secondary_serial.as_str().to_owned(),
                    secondary: e.secondary,
                    state: match e.state {
                        1 => MirrorPairState::CopyPending,
                        2 => MirrorPairState::FullDuplex,
                        _ => MirrorPairState::Suspended(e.reason),
                    },
                    failed_over: e.failed_over,
                    out_of_sync_tracks: e.out_of_sync_tracks,
                };
                if !found.contains(&facts) {
                    found.push(facts);
                }
            }
        }
    }
    Ok(found)
}

/// The relationships of `pairs` that exist (LSFLASH of each source).
async fn relationships_of(
    h: &Ds8kHandle,
    pairs: &[(VolumeId, VolumeId)],
) -> Result<Vec<PairProgress>, StorageOutcome> {
    let wanted: BTreeSet<PairKey> = keys(pairs).into_iter().collect();
    let sources: BTreeSet<VolumeId> = pairs.iter().map(|p| p.0).collect();
    let mut found = Vec::new();
    for volume in sources {
        if let Ds8kBody::ListFlashReply { entries, .. } =
            ask(h, Ds8kBody::ListFlashRequest { volume }).await?
        {
            found.extend(
                entries
                    .iter()
                    .filter(|e| wanted.contains(&e.key))
                    .map(progress),
            );
        }
    }
    Ok(found)
}

/// The backups each of `volumes` holds (LSBACKUP).
async fn backups_of(
    h: &Ds8kHandle,
    volumes: &[VolumeId],
) -> Result<Vec<BackupFacts>, StorageOutcome> {
    let mut found = Vec::new();
    for &volume in volumes {
        if let Ds8kBody::ListBackupsReply { entries, .. } =
            ask(h, Ds8kBody::ListBackupsRequest { volume }).await?
        {
            found.extend(entries.into_iter().map(|e| BackupFacts {
                id: e.backup_id,
                time_ms: e.time_ms,
                volume,
                tag: e.tag,
            }));
        }
    }
    Ok(found)
}
