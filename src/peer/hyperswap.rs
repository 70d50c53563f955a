//! The emulated z/OS's HyperSwap on real storage (zos-hyperswap.md §3.7, §3.11,
//! ds8k.md §3.5): its applications write to the production volumes of the loaded
//! configuration on the active site's DS8000; a planned swap holds their I/O, freezes
//! the pairs on the primaries' box (one consistency group), fails the secondaries
//! over on theirs, redirects I/O there and lets it go; a primary box that stops
//! answering while HyperSwap is enabled is swapped away from unplanned
//! (EVT_UNPLANNED_SWAP), the write that failed retried on the new primary.
//!
//! Every write the applications were told is done is kept (the last tag of each
//! track), so a test can read the new primaries and find each one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::Deserialize;

use super::server::Forwarder;
use super::storage_link::{IoHolds, LinkError, StorageLink, ZosStorage};
use super::zos::ZosPeerControl;
use crate::codec::fields::Ebcdic;
use crate::ds8k::{Ds8kReason, Fence, Lss, VolumeId};
use crate::proto::ds8k::{Ds8kBody, Ds8kMessageType};
use crate::proto::zos::{HyperSwapState, Zos, ZosBody, ZosMessageType, ZosReason};
use crate::proto::{ReplyStatus, ReturnCode, VolumePair, VolumeRef};

/// The emulated applications (`[workload]`): writes to the production volumes of
/// the loaded HyperSwap configuration, round robin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadConfig {
    /// Host writes a second (0: no applications).
    #[serde(default = "default_rate")]
    pub writes_per_sec: u32,
    /// Tracks written on each volume, from track 0.
    #[serde(default = "default_tracks")]
    pub tracks: u32,
}

fn default_rate() -> u32 {
    200
}

fn default_tracks() -> u32 {
    15
}

/// Where the applications' I/O is and what it has been told.
pub struct HyperSwapIo {
    links: BTreeMap<String, StorageLink>,
    control: OnceLock<ZosPeerControl>,
    /// Application writes hold it shared; a swap holds it alone (I/O quiesced).
    io: tokio::sync::RwLock<()>,
    /// One swap at a time.
    swapping: tokio::sync::Mutex<()>,
    holds: IoHolds,
    acknowledged: Mutex<BTreeMap<(usize, u32), u64>>,
}

/// One image's part of a swap: its serial and volumes.
fn by_serial<'a>(volumes: impl Iterator<Item = &'a VolumeRef>) -> BTreeMap<String, Vec<VolumeId>> {
    let mut m: BTreeMap<String, Vec<VolumeId>> = BTreeMap::new();
    for v in volumes {
        m.entry(v.storage.as_str().to_owned())
            .or_default()
            .push(VolumeId(v.volume));
    }
    m
}

/// EVT_PPRC_SUSPENDED's reason when the path failed (ds8k.md §3.5).
const SUSPENDED_PATH_FAILED: u8 = 3;
/// EVT_PPRC_SUSPENDED's reason for a failover (a swap's own).
const SUSPENDED_FAILOVER: u8 = 4;

/// LSS pairs by (primaries' image, secondaries' image).
type FreezeGroups = BTreeMap<(String, String), Vec<(Lss, Lss)>>;

/// The configuration's LSS pairs, per (primaries' image, secondaries' image), with
/// `site` active: what one FREEZEPPRC per image names.
fn freeze_groups(pairs: &[VolumePair], site: u8) -> FreezeGroups {
    let mut groups = FreezeGroups::new();
    for pair in pairs {
        let (p, s) = if site == 1 {
            (&pair.first, &pair.second)
        } else {
            (&pair.second, &pair.first)
        };
        let lsss = (VolumeId(p.volume).lss(), VolumeId(s.volume).lss());
        let g = groups
            .entry((p.storage.as_str().to_owned(), s.storage.as_str().to_owned()))
            .or_default();
        if !g.contains(&lsss) {
            g.push(lsss);
        }
    }
    groups
}

fn unavailable() -> ReplyStatus {
    ReplyStatus::new(ReturnCode::FAILED, ZosReason::STORAGE_UNAVAILABLE.0)
}

fn link_status(e: LinkError) -> ReplyStatus {
    match e {
        LinkError::Refused(_) => {
            ReplyStatus::new(ReturnCode::REFUSED, ZosReason::STORAGE_REFUSED.0)
        }
        LinkError::Unavailable => unavailable(),
    }
}

impl HyperSwapIo {
    /// HyperSwap over `links` (one per storage image the configuration names).
    pub fn new(links: Vec<StorageLink>) -> Arc<HyperSwapIo> {
        Arc::new(HyperSwapIo {
            links: links
                .into_iter()
                .map(|l| (l.serial().to_owned(), l))
                .collect(),
            control: OnceLock::new(),
            io: tokio::sync::RwLock::new(()),
            swapping: tokio::sync::Mutex::new(()),
            holds: IoHolds::default(),
            acknowledged: Mutex::new(BTreeMap::new()),
        })
    }

    /// The system it swaps (set once the peer listens); from then on a pair of the
    /// configuration that stops mirroring on its own fires the freeze trigger.
    pub fn attach(self: &Arc<Self>, control: ZosPeerControl) {
        let _ = self.control.set(control);
        for (serial, link) in &self.links {
            let mut events = link.subscribe();
            let weak = Arc::downgrade(self);
            let serial = serial.clone();
            tokio::spawn(async move {
                loop {
                    let event = match events.recv().await {
                        Ok(e) => e,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => return,
                    };
                    let Some(io) = weak.upgrade() else {
                        return;
                    };
                    match event {
                        Ds8kBody::PprcSuspendedEvent {
                            primary, reason, ..
                        } if reason == SUSPENDED_PATH_FAILED => {
                            io.freeze_trigger(&serial, primary).await;
                        }
                        // Suspended otherwise (pausepprc, a freeze by someone else):
                        // no freeze to make, but no swap is possible any more.
                        Ds8kBody::PprcSuspendedEvent {
                            primary, reason, ..
                        } if reason != SUSPENDED_FAILOVER => io.cannot_swap(&serial, primary).await,
                        _ => {}
                    }
                }
            });
        }
    }

    /// Whether volume `primary` of image `serial` is a primary of configuration
    /// `pairs` with `site` active.
    fn is_primary(pairs: &[VolumePair], site: u8, serial: &str, primary: VolumeId) -> bool {
        pairs.iter().any(|p| {
            let v = if site == 1 { &p.first } else { &p.second };
            v.volume == primary.0 && v.storage.as_str() == serial
        })
    }

    /// Whether the pair of `primary` on image `serial` is suspended now (LSPPRC):
    /// an event can arrive after the pair mirrors again (a swap's own freeze, told
    /// late, after the manager has started the other way); as z/OS acts on a
    /// device's state, not on a stale message, such an event changes nothing.
    async fn still_suspended(&self, serial: &str, primary: VolumeId) -> bool {
        match self
            .ask(serial, Ds8kBody::ListPprcRequest { volume: primary })
            .await
        {
            Ok(Ds8kBody::ListPprcReply { entries, .. }) => entries
                .first()
                .is_some_and(|e| e.state == 3 && !e.failed_over),
            // The image does not answer: the suspension stands as told.
            _ => true,
        }
    }

    /// A pair of the configuration stopped mirroring for another reason than a
    /// path failure while HyperSwap is enabled (zos-hyperswap.md §3.11): it can no
    /// longer swap every pair, so HyperSwap is disabled (EVT_HS_DISABLED,
    /// `PPRC_SUSPENDED`); nothing is frozen.
    async fn cannot_swap(&self, serial: &str, primary: VolumeId) {
        let _one = self.swapping.lock().await;
        let Some(control) = self.control.get() else {
            return;
        };
        let Some((pairs, site, state, session)) = self.config() else {
            return;
        };
        if state != HyperSwapState::ENABLED
            || !Self::is_primary(&pairs, site, serial, primary)
            || !self.still_suspended(serial, primary).await
        {
            return;
        }
        control.system().hyperswap_lost();
        tracing::warn!(
            session = %session.as_str(),
            "IOSHM0303E HyperSwap: a pair of the configuration is suspended; HyperSwap disabled"
        );
        control.inject_event(ZosBody::HyperSwapDisabledEvent {
            session,
            time: control.unix_now(),
            reason: ZosReason::PPRC_SUSPENDED.0,
        });
    }

    /// A pair of the configuration stopped mirroring because its path failed
    /// (zos-hyperswap.md §3.12) while HyperSwap or Hardened Freeze is enabled: z/OS
    /// freezes every pair of the configuration at once, so that the secondaries
    /// hold one instant, lets the applications go on at the primaries ("FreezeAll
    /// and Run"), and is disabled. Under HyperSwap it tells a freeze (kind 1) and
    /// that HyperSwap is disabled; under Hardened Freeze a hardened freeze (kind 2).
    async fn freeze_trigger(&self, serial: &str, primary: VolumeId) {
        let _one = self.swapping.lock().await;
        let Some(control) = self.control.get() else {
            return;
        };
        let Some((pairs, site, state, session)) = self.config() else {
            return;
        };
        let hardened = state == HyperSwapState::FREEZE_ENABLED;
        if !(state == HyperSwapState::ENABLED || hardened)
            || !Self::is_primary(&pairs, site, serial, primary)
            || !self.still_suspended(serial, primary).await
        {
            return;
        }
        let held_from = control.clock().tokio_now();
        let quiet = self.io.write().await;
        let groups = freeze_groups(&pairs, site);
        // The pairs already suspended on the failed path are frozen anyway; what
        // matters is the rest of the group, then the run.
        let _ = self.freeze(&groups).await;
        self.run(&groups).await;
        control.system().hyperswap_lost();
        drop(quiet);
        self.note_hold(control.clock().tokio_now() - held_from);
        let now = control.unix_now();
        tracing::warn!(
            session = %session.as_str(),
            hardened,
            "IOSHM0308I PPRC suspension detected: FreezeAll and Run completed; every pair of the configuration frozen, I/O resumed"
        );
        control.inject_event(ZosBody::FreezeEvent {
            session: session.clone(),
            time: now,
            kind: if hardened {
                crate::proto::zos::FreezeKind::HARDENED_FREEZE
            } else {
                crate::proto::zos::FreezeKind::FREEZE
            },
            reason: ZosReason::PPRC_SUSPENDED.0,
        });
        if !hardened {
            control.inject_event(ZosBody::HyperSwapDisabledEvent {
                session,
                time: now,
                reason: ZosReason::PPRC_SUSPENDED.0,
            });
        }
    }

    /// How long each swap held the applications' I/O, newest last.
    pub fn io_holds(&self) -> IoHolds {
        self.holds.clone()
    }

    /// The last tag written to each (pair, track) that the applications were told
    /// is done.
    pub fn acknowledged(&self) -> BTreeMap<(usize, u32), u64> {
        self.acknowledged
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    fn config(&self) -> Option<(Arc<Vec<VolumePair>>, u8, HyperSwapState, Ebcdic<16>)> {
        let control = self.control.get()?;
        let system = control.system();
        let session = system.hyperswap_status().session;
        system
            .hyperswap_config()
            .map(|(pairs, site, state)| (pairs, site, state, session))
    }

    fn link(&self, serial: &str) -> Result<&StorageLink, LinkError> {
        self.links
            .get(serial)
            .ok_or(LinkError::Refused(Ds8kReason::UNKNOWN_IMAGE))
    }

    async fn ask(&self, serial: &str, body: Ds8kBody) -> Result<Ds8kBody, LinkError> {
        self.link(serial)?.call(body).await
    }

    /// FREEZEPPRC of every LSS pair of `groups`, one request per primaries' image,
    /// each tried even when another failed (the first failure is returned): after
    /// it the secondaries hold one instant (ds8k.md §3.5).
    async fn freeze(&self, groups: &FreezeGroups) -> Result<(), LinkError> {
        let mut first_failure = Ok(());
        for ((primary, secondary), lss_pairs) in groups {
            let frozen = self
                .ask(
                    primary,
                    Ds8kBody::FreezePprcRequest {
                        fence: Fence::NONE,
                        remote: Ebcdic::new(secondary).unwrap_or_default(),
                        lss_pairs: lss_pairs.clone(),
                    },
                )
                .await;
            if let (Ok(()), Err(e)) = (&first_failure, frozen) {
                first_failure = Err(e);
            }
        }
        first_failure
    }

    /// UNFREEZEPPRC of the primary LSSs of `groups` (the "run" after a freeze); an
    /// image that does not answer keeps its hold until the box's timeout.
    async fn run(&self, groups: &FreezeGroups) {
        for ((primary, _), lss_pairs) in groups {
            let lsss: Vec<Lss> = lss_pairs.iter().map(|(l, _)| *l).collect();
            let _ = self
                .ask(
                    primary,
                    Ds8kBody::UnfreezePprcRequest {
                        fence: Fence::NONE,
                        lsss,
                    },
                )
                .await;
        }
    }

    /// HS_PLANNED_SWAP on the storage: the reply to send.
    pub async fn planned_swap(&self) -> Result<ZosBody, ReplyStatus> {
        let _one = self.swapping.lock().await;
        let t = ZosMessageType::HS_PLANNED_SWAP;
        let reply = |control: &ZosPeerControl, status: ReplyStatus| ZosBody::HyperSwapReply {
            request: t,
            status,
            hyperswap: control.system().hyperswap_status(),
        };
        let Some(control) = self.control.get() else {
            return Err(unavailable());
        };
        let Some((pairs, site, state, _)) = self.config() else {
            return Ok(reply(
                control,
                ReplyStatus::new(ReturnCode::REFUSED, ZosReason::NO_CONFIG.0),
            ));
        };
        if state != HyperSwapState::ENABLED {
            return Ok(reply(
                control,
                ReplyStatus::new(ReturnCode::REFUSED, ZosReason::NOT_ENABLED.0),
            ));
        }
        // Quiesce: wait for the writes under way, hold new ones.
        let held_from = control.clock().tokio_now();
        let quiet = self.io.write().await;
        let outcome = self.swap(&pairs, site, true).await;
        match outcome {
            Ok(()) => {
                control.system().swapped();
            }
            Err(_) => {
                control.system().hyperswap_lost();
            }
        }
        drop(quiet);
        self.note_hold(control.clock().tokio_now() - held_from);
        match outcome {
            Ok(()) => Ok(reply(control, ReplyStatus::OK)),
            Err(e) => Ok(reply(control, link_status(e))),
        }
    }

    fn note_hold(&self, held: Duration) {
        if let Ok(mut holds) = self.holds.lock() {
            if holds.len() == super::storage_link::IO_HOLDS_KEPT {
                holds.pop_front();
            }
            holds.push_back(held);
        }
    }

    /// The storage part of a swap away from `site`: freeze the pairs on the
    /// primaries' box (planned only: an unplanned swap cannot reach it), fail the
    /// secondaries over, then let the old primaries' LSSs go.
    async fn swap(&self, pairs: &[VolumePair], site: u8, planned: bool) -> Result<(), LinkError> {
        let secondary: Vec<&VolumeRef> = pairs
            .iter()
            .map(|p| if site == 1 { &p.second } else { &p.first })
            .collect();
        let groups = freeze_groups(pairs, site);
        if planned {
            self.freeze(&groups).await?;
        }
        let failover = async {
            for (serial, volumes) in by_serial(secondary.iter().copied()) {
                self.ask(
                    &serial,
                    Ds8kBody::PprcVolumesRequest {
                        fence: Fence::NONE,
                        message_type: Ds8kMessageType::FAILOVERPPRC,
                        volumes,
                    },
                )
                .await?;
            }
            Ok::<(), LinkError>(())
        }
        .await;
        if planned {
            // The old primaries hold writes after the freeze; nobody writes there
            // now (or, if the failover failed, I/O goes on there): let them go.
            self.run(&groups).await;
        }
        failover
    }

    /// The primary box stopped answering: swap unplanned if HyperSwap is enabled
    /// (EVT_UNPLANNED_SWAP), else tell the manager it is disabled.
    async fn primary_lost(&self) {
        let _one = self.swapping.lock().await;
        let Some(control) = self.control.get() else {
            return;
        };
        let Some((pairs, site, state, session)) = self.config() else {
            return;
        };
        let now = control.unix_now();
        if state != HyperSwapState::ENABLED {
            return;
        }
        let held_from = control.clock().tokio_now();
        let quiet = self.io.write().await;
        // Another writer may have swapped already.
        if self.config().is_some_and(|(_, s, _, _)| s != site) {
            return;
        }
        let event = match self.swap(&pairs, site, false).await {
            Ok(()) => {
                control.system().swapped();
                tracing::warn!(session = %session.as_str(), "IOSHM0400I HyperSwap: unplanned swap to the secondaries complete");
                ZosBody::UnplannedSwapEvent {
                    session,
                    time: now,
                    reason: ZosReason::PRIMARY_IO_ERROR.0,
                    swapped_pairs: u16::try_from(pairs.len()).unwrap_or(u16::MAX),
                }
            }
            Err(_) => {
                control.system().hyperswap_lost();
                ZosBody::HyperSwapDisabledEvent {
                    session,
                    time: now,
                    reason: ZosReason::PRIMARY_IO_ERROR.0,
                }
            }
        };
        drop(quiet);
        self.note_hold(control.clock().tokio_now() - held_from);
        control.inject_event(event);
    }

    /// One application write of `tag` to track `track` of pair `index`'s production
    /// volume; true once it is done (held through a swap, retried after one).
    async fn write(&self, index: usize, track: u32, tag: u64) -> bool {
        for _ in 0..8 {
            let Some((pairs, site, _, _)) = self.config() else {
                return false;
            };
            let Some(pair) = pairs.get(index % pairs.len().max(1)) else {
                return false;
            };
            let volume = if site == 1 { &pair.first } else { &pair.second };
            let shared = self.io.read().await;
            if self.config().is_some_and(|(_, s, _, _)| s != site) {
                continue;
            }
            let result = self
                .ask(
                    volume.storage.as_str(),
                    Ds8kBody::WriteTrackRequest {
                        volume: VolumeId(volume.volume),
                        track,
                        tag,
                    },
                )
                .await;
            drop(shared);
            match result {
                Ok(_) => {
                    if let Ok(mut acked) = self.acknowledged.lock() {
                        acked.insert((index, track), tag);
                    }
                    return true;
                }
                Err(LinkError::Unavailable) => self.primary_lost().await,
                Err(LinkError::Refused(Ds8kReason::LONG_BUSY)) => {
                    // A freeze holds the LSS: the host queues the write.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(LinkError::Refused(_)) => return false,
            }
        }
        false
    }

    /// Runs the applications until the peer stops (its forwarder, the last holder of
    /// this, is dropped).
    pub fn spawn_workload(self: &Arc<Self>, workload: WorkloadConfig) {
        if workload.writes_per_sec == 0 {
            return;
        }
        let weak = Arc::downgrade(self);
        let period = Duration::from_secs(1) / workload.writes_per_sec;
        let tracks = workload.tracks.max(1);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n: u64 = 0;
            loop {
                tick.tick().await;
                let Some(io) = weak.upgrade() else {
                    return;
                };
                let Some((pairs, _, _, _)) = io.config() else {
                    continue;
                };
                let count = pairs.len().max(1) as u64;
                let index = (n % count) as usize;
                let track = ((n / count) % u64::from(tracks)) as u32;
                n += 1;
                io.write(index, track, n).await;
            }
        });
    }
}

/// The emulated z/OS's forwarder when it runs HyperSwap on real storage: planned
/// swaps through [`HyperSwapIo`], FLASH and SGC_BACKUP as [`ZosStorage`] does.
pub struct ZosHost {
    /// FLASH and SGC_BACKUP.
    pub storage: ZosStorage,
    /// HyperSwap.
    pub hyperswap: Arc<HyperSwapIo>,
}

impl Forwarder<Zos> for ZosHost {
    fn forward(
        &self,
        user: &str,
        request: ZosBody,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<ZosBody, ReplyStatus>> + Send>>
    {
        match request {
            ZosBody::PlannedSwapRequest { .. } => {
                let io = Arc::clone(&self.hyperswap);
                Box::pin(async move { io.planned_swap().await })
            }
            other => self.storage.forward(user, other),
        }
    }
}
