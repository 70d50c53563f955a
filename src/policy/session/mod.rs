//! CSM's sessions as values (`protocol-specs/policy.md` §5): what every type has
//! (copy sets, properties, state, status, and which commands each state allows)
//! here; each type's options and what it remembers between commands in its own
//! module (`fc`, `sgc`, `mirror`), held by [`Session::runtime`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::SessionType;
use super::access::SessionAction;
use super::inventory::VolumeRef;
use super::retention::Backup;
use super::storage::ActionId;

mod fc;
mod mirror;
mod sgc;

pub use fc::{FcProperties, FcRuntime};
pub use mirror::{HyperSwapStatus, MirrorState, MmProperties, Site};
pub use sgc::{SgcProperties, SgcRuntime};

/// A session's state (CSM's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionState {
    /// `Defined`: exists, nothing on the hardware.
    Defined,
    /// `Preparing`: a command is being carried out on the hardware.
    Preparing,
    /// `Target Available` (FC): the targets hold the flash's point in time.
    TargetAvailable,
    /// `Protected` (SGC): backups exist.
    Protected,
    /// `Prepared` (MM, HS): every pair is full duplex.
    Prepared,
    /// `Suspended` (MM, HS): the pairs stopped mirroring (Suspend, Stop, a freeze).
    Suspended,
}

impl SessionState {
    /// CSM's name.
    pub fn name(self) -> &'static str {
        match self {
            SessionState::Defined => "Defined",
            SessionState::Preparing => "Preparing",
            SessionState::TargetAvailable => "Target Available",
            SessionState::Protected => "Protected",
            SessionState::Prepared => "Prepared",
            SessionState::Suspended => "Suspended",
        }
    }
}

/// A session's health (CSM's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionStatus {
    /// `Inactive`: nothing on the hardware.
    Inactive,
    /// `Normal`: a consistent copy exists.
    Normal,
    /// `Warning`: work in progress, or no recoverable copy yet.
    Warning,
    /// `Severe`: the last command failed on the hardware.
    Severe,
}

impl SessionStatus {
    /// CSM's name.
    pub fn name(self) -> &'static str {
        match self {
            SessionStatus::Inactive => "Inactive",
            SessionStatus::Normal => "Normal",
            SessionStatus::Warning => "Warning",
            SessionStatus::Severe => "Severe",
        }
    }
}

/// Why an SGC backup cannot be recovered or restored (policy.md §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unrecoverable {
    /// The session has no such backup.
    Unknown,
    /// It is the newest: the DS8000 cannot recover from the last backup taken.
    Newest,
    /// It was taken before copy sets were added, so it does not hold their volumes.
    MissingCopySets,
}

/// One copy set: the H1 volume and its partner (policy.md §5.1): T1 for FC and H2
/// for MM and HS, always; R1 for SGC, when the copy set has a recovery volume (a
/// whole-box SGC session protects every volume of the box, with none to spare).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopySet {
    /// `H1`: the source.
    pub h1: VolumeRef,
    /// `T1` (FC), `H2` (MM, HS) or `R1` (SGC, optional). Stored as before when
    /// present, left out when not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner: Option<VolumeRef>,
}

impl CopySet {
    /// MM, HS: its volume at `site` (H2 is the partner).
    pub fn at(&self, site: Site) -> Option<&VolumeRef> {
        match site {
            Site::H1 => Some(&self.h1),
            Site::H2 => self.partner.as_ref(),
        }
    }
}

/// A session's copy sets, in the order added. Shared, so that the engine's copy of a
/// session to change costs nothing for its copy sets (a whole-box session has
/// 32,640); a change makes its own copy ([`CopySets::make_mut`]). Serialised as the
/// plain list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopySets(Arc<Vec<CopySet>>);

impl CopySets {
    /// The list to change (copied first if another session value shares it).
    pub fn make_mut(&mut self) -> &mut Vec<CopySet> {
        Arc::make_mut(&mut self.0)
    }

    /// Whether `other` is this very list (not merely an equal one): then nothing
    /// changed, and no comparison is needed.
    pub fn shares(&self, other: &CopySets) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::ops::Deref for CopySets {
    type Target = [CopySet];
    fn deref(&self) -> &[CopySet] {
        &self.0
    }
}

impl From<Vec<CopySet>> for CopySets {
    fn from(list: Vec<CopySet>) -> CopySets {
        CopySets(Arc::new(list))
    }
}

impl<'a> IntoIterator for &'a CopySets {
    type Item = &'a CopySet;
    type IntoIter = std::slice::Iter<'a, CopySet>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl Serialize for CopySets {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.as_slice().serialize(s)
    }
}

impl<'de> Deserialize<'de> for CopySets {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<CopySets, D::Error> {
        Vec::<CopySet>::deserialize(d).map(CopySets::from)
    }
}

/// Type-specific properties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Properties {
    /// FC.
    Fc(FcProperties),
    /// SGC.
    Sgc(SgcProperties),
    /// MM.
    Mm(MmProperties),
    /// HS (`hyperswap` always on).
    Hs(MmProperties),
}

impl Properties {
    /// The defaults of a new session of `kind`.
    pub fn default_for(kind: SessionType) -> Properties {
        match kind {
            SessionType::Fc => Properties::Fc(FcProperties::default()),
            SessionType::Sgc => Properties::Sgc(SgcProperties::default()),
            SessionType::Mm => Properties::Mm(MmProperties::default()),
            SessionType::Hs => Properties::Hs(MmProperties {
                hyperswap: true,
                ..MmProperties::default()
            }),
        }
    }

    /// The session type these belong to.
    pub fn kind(&self) -> SessionType {
        match self {
            Properties::Fc(_) => SessionType::Fc,
            Properties::Sgc(_) => SessionType::Sgc,
            Properties::Mm(_) => SessionType::Mm,
            Properties::Hs(_) => SessionType::Hs,
        }
    }

    /// The Metro Mirror options, for MM and HS sessions.
    pub fn mirror(&self) -> Option<&MmProperties> {
        match self {
            Properties::Mm(p) | Properties::Hs(p) => Some(p),
            _ => None,
        }
    }

    /// The host system commands go through, if any.
    pub fn host_system(&self) -> Option<&str> {
        match self {
            Properties::Fc(p) => p.host_system.as_deref(),
            Properties::Sgc(p) => p.host_system.as_deref(),
            Properties::Mm(p) | Properties::Hs(p) => p.host_system.as_deref(),
        }
    }
}

/// A change to some of a session's properties: the ones named change, the others
/// keep their values (policy.md §5.6). Naming a property of the other session type
/// is refused, so that a misdirected change never passes for done.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertiesPatch {
    /// FC: Incremental.
    pub incremental: Option<bool>,
    /// FC: No Copy.
    pub no_copy: Option<bool>,
    /// FC: Persistent.
    pub persistent: Option<bool>,
    /// FC: Inhibit Target Writes.
    pub inhibit_target_writes: Option<bool>,
    /// FC: Minimum Time Frame per Flash, minutes.
    pub min_flash_interval_mins: Option<u32>,
    /// SGC: retention, ms.
    pub retention_ms: Option<u64>,
    /// SGC: minimum time between backups, ms.
    pub min_interval_ms: Option<u64>,
    /// SGC: Allow Backups to be Manually Expired.
    pub allow_manual_expiry: Option<bool>,
    /// SGC: Minimum Number of Backups.
    pub min_kept: Option<usize>,
    /// MM: Manage H1-H2 with HyperSwap.
    #[serde(default)]
    pub hyperswap: Option<bool>,
    /// MM: Manage H1-H2 with Hardened Freeze.
    #[serde(default)]
    pub hardened_freeze: Option<bool>,
    /// MM, HS: Hold I/O after Suspend.
    #[serde(default)]
    pub hold_io_after_suspend: Option<bool>,
    /// MM, HS: the other sysplex members.
    #[serde(default)]
    pub members: Option<Vec<String>>,
    /// Every type: the host system (`Some(None)`: back to the HMC; for MM and HS, no
    /// z/OS system).
    pub host_system: Option<Option<String>>,
}

impl PropertiesPatch {
    /// The names and new values it sets, in CSM's words (for messages, the audit
    /// trail and the dual-control request an approver reads).
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut flag = |name: &str, v: Option<bool>| {
            if let Some(v) = v {
                out.push(format!("{name} = {}", if v { "on" } else { "off" }));
            }
        };
        flag("Incremental", self.incremental);
        flag("No Copy", self.no_copy);
        flag("Persistent", self.persistent);
        flag("Inhibit Target Writes", self.inhibit_target_writes);
        flag(
            "Allow Backups to be Manually Expired",
            self.allow_manual_expiry,
        );
        flag("Manage H1-H2 with HyperSwap", self.hyperswap);
        flag("Manage H1-H2 with Hardened Freeze", self.hardened_freeze);
        flag("Hold I/O after Suspend", self.hold_io_after_suspend);
        if let Some(m) = &self.members {
            out.push(format!("Sysplex members = {}", m.join(", ")));
        }
        if let Some(m) = self.min_flash_interval_mins {
            out.push(format!("Minimum Time Frame per Flash = {m} minutes"));
        }
        if let Some(ms) = self.retention_ms {
            out.push(format!("Retention = {} minutes", ms / 60_000));
        }
        if let Some(ms) = self.min_interval_ms {
            out.push(format!(
                "Minimum Time Between Backups = {} minutes",
                ms / 60_000
            ));
        }
        if let Some(n) = self.min_kept {
            out.push(format!("Minimum Number of Backups = {n}"));
        }
        if let Some(h) = &self.host_system {
            out.push(format!(
                "Host System = {}",
                h.as_deref().unwrap_or("(none: the HMC)")
            ));
        }
        out
    }

    /// Whether it names nothing.
    pub fn is_empty(&self) -> bool {
        self.describe().is_empty()
    }

    /// `current` with the named properties changed; the name of a property of
    /// another session type is the error.
    pub fn apply(&self, current: &Properties) -> Result<Properties, &'static str> {
        use SessionType as K;
        let kind = current.kind();
        // Each property and the types it belongs to.
        let named: [(bool, &'static str, &[K]); 13] = [
            (self.incremental.is_some(), "incremental", &[K::Fc]),
            (self.no_copy.is_some(), "no copy", &[K::Fc]),
            (self.persistent.is_some(), "persistent", &[K::Fc]),
            (
                self.inhibit_target_writes.is_some(),
                "inhibit target writes",
                &[K::Fc],
            ),
            (
                self.min_flash_interval_mins.is_some(),
                "minimum time frame per flash",
                &[K::Fc],
            ),
            (self.retention_ms.is_some(), "retention", &[K::Sgc]),
            (
                self.min_interval_ms.is_some(),
                "minimum time between backups",
                &[K::Sgc],
            ),
            (
                self.allow_manual_expiry.is_some(),
                "allow manual expiry",
                &[K::Sgc],
            ),
            (
                self.min_kept.is_some(),
                "minimum number of backups",
                &[K::Sgc],
            ),
            // Basic HyperSwap is HyperSwap: the option is not one of its own.
            (
                self.hyperswap.is_some(),
                "manage H1-H2 with HyperSwap",
                &[K::Mm],
            ),
            (
                self.hardened_freeze.is_some(),
                "manage H1-H2 with Hardened Freeze",
                &[K::Mm],
            ),
            (
                self.hold_io_after_suspend.is_some(),
                "hold I/O after suspend",
                &[K::Mm, K::Hs],
            ),
            (self.members.is_some(), "sysplex members", &[K::Mm, K::Hs]),
        ];
        if let Some((_, name, _)) = named
            .iter()
            .find(|(set, _, kinds)| *set && !kinds.contains(&kind))
        {
            return Err(name);
        }
        let host = |h: &mut Option<String>| {
            if let Some(new) = &self.host_system {
                *h = new.clone();
            }
        };
        Ok(match current {
            Properties::Fc(p) => {
                let mut p = p.clone();
                p.incremental = self.incremental.unwrap_or(p.incremental);
                p.no_copy = self.no_copy.unwrap_or(p.no_copy);
                p.persistent = self.persistent.unwrap_or(p.persistent);
                p.inhibit_target_writes = self
                    .inhibit_target_writes
                    .unwrap_or(p.inhibit_target_writes);
                p.min_flash_interval_mins = self
                    .min_flash_interval_mins
                    .unwrap_or(p.min_flash_interval_mins);
                host(&mut p.host_system);
                Properties::Fc(p)
            }
            Properties::Sgc(p) => {
                let mut p = p.clone();
                p.policy.retention_ms = self.retention_ms.unwrap_or(p.policy.retention_ms);
                p.policy.min_interval_ms = self.min_interval_ms.unwrap_or(p.policy.min_interval_ms);
                p.policy.allow_manual_expiry = self
                    .allow_manual_expiry
                    .unwrap_or(p.policy.allow_manual_expiry);
                p.policy.min_kept = self.min_kept.unwrap_or(p.policy.min_kept);
                host(&mut p.host_system);
                Properties::Sgc(p)
            }
            Properties::Mm(p) | Properties::Hs(p) => {
                let mut p = p.clone();
                p.hyperswap = self.hyperswap.unwrap_or(p.hyperswap);
                p.hardened_freeze = self.hardened_freeze.unwrap_or(p.hardened_freeze);
                p.hold_io_after_suspend = self
                    .hold_io_after_suspend
                    .unwrap_or(p.hold_io_after_suspend);
                if let Some(m) = &self.members {
                    p.members = m.clone();
                }
                host(&mut p.host_system);
                if kind == K::Hs {
                    Properties::Hs(p)
                } else {
                    Properties::Mm(p)
                }
            }
        })
    }
}

/// A command run on a session (CSM's names, policy.md §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionCommand {
    /// `Flash` (FC).
    Flash,
    /// `Initiate Background Copy` (FC; SGC after a recover).
    InitiateBackgroundCopy,
    /// `Terminate`.
    Terminate,
    /// `Refresh States`.
    RefreshStates,
    /// `Backup` (SGC).
    Backup,
    /// `Recover Backup` of a backup (SGC).
    RecoverBackup(u64),
    /// `Expire Backup` of a backup and every older one (SGC).
    ExpireBackup(u64),
    /// `Restore Backup to Production` (SGC).
    RestoreBackupToProduction(u64),
    /// `TerminateH1R1` (SGC): ends the recovery relationship.
    TerminateH1R1,
    /// `Start H1->H2` (MM, HS).
    StartH1H2,
    /// `Start H2->H1` (MM, HS).
    StartH2H1,
    /// `Suspend` (MM, HS): a freeze of the consistency group.
    Suspend,
    /// `Stop` (MM, HS): the pairs suspended without a freeze.
    Stop,
    /// `Recover` (MM, HS): failover to the secondaries.
    Recover,
    /// `HyperSwap` (MM, HS): a planned swap through z/OS.
    HyperSwap,
}

impl SessionCommand {
    /// The action this command is, for grants and dual control.
    pub fn action(self) -> SessionAction {
        match self {
            SessionCommand::Flash => SessionAction::Flash,
            SessionCommand::InitiateBackgroundCopy => SessionAction::InitiateBackgroundCopy,
            SessionCommand::Terminate => SessionAction::Terminate,
            SessionCommand::RefreshStates => SessionAction::RefreshStates,
            SessionCommand::Backup => SessionAction::Backup,
            SessionCommand::RecoverBackup(_) => SessionAction::RecoverBackup,
            SessionCommand::ExpireBackup(_) => SessionAction::ExpireBackup,
            SessionCommand::RestoreBackupToProduction(_) => {
                SessionAction::RestoreBackupToProduction
            }
            SessionCommand::TerminateH1R1 => SessionAction::TerminateH1R1,
            SessionCommand::StartH1H2 => SessionAction::StartH1H2,
            SessionCommand::StartH2H1 => SessionAction::StartH2H1,
            SessionCommand::Suspend => SessionAction::Suspend,
            SessionCommand::Stop => SessionAction::Stop,
            SessionCommand::Recover => SessionAction::Recover,
            SessionCommand::HyperSwap => SessionAction::HyperSwap,
        }
    }

    /// CSM's name (`Expire Backup`).
    pub fn name(self) -> &'static str {
        self.action().name()
    }

    /// The backup it names, if any.
    pub fn backup(self) -> Option<u64> {
        match self {
            SessionCommand::RecoverBackup(id)
            | SessionCommand::ExpireBackup(id)
            | SessionCommand::RestoreBackupToProduction(id) => Some(id),
            _ => None,
        }
    }

    /// Parses CSM's name; backup commands take `backup`.
    pub fn parse(name: &str, backup: Option<u64>) -> Option<SessionCommand> {
        let action = SessionAction::parse(name)?;
        Some(match (action, backup) {
            (SessionAction::Flash, None) => SessionCommand::Flash,
            (SessionAction::InitiateBackgroundCopy, None) => SessionCommand::InitiateBackgroundCopy,
            (SessionAction::Terminate, None) => SessionCommand::Terminate,
            (SessionAction::RefreshStates, None) => SessionCommand::RefreshStates,
            (SessionAction::Backup, None) => SessionCommand::Backup,
            (SessionAction::TerminateH1R1, None) => SessionCommand::TerminateH1R1,
            (SessionAction::StartH1H2, None) => SessionCommand::StartH1H2,
            (SessionAction::StartH2H1, None) => SessionCommand::StartH2H1,
            (SessionAction::Suspend, None) => SessionCommand::Suspend,
            (SessionAction::Stop, None) => SessionCommand::Stop,
            (SessionAction::Recover, None) => SessionCommand::Recover,
            (SessionAction::HyperSwap, None) => SessionCommand::HyperSwap,
            (SessionAction::RecoverBackup, Some(id)) => SessionCommand::RecoverBackup(id),
            (SessionAction::ExpireBackup, Some(id)) => SessionCommand::ExpireBackup(id),
            (SessionAction::RestoreBackupToProduction, Some(id)) => {
                SessionCommand::RestoreBackupToProduction(id)
            }
            _ => return None,
        })
    }
}

/// A session. What its type alone remembers is in [`Runtime`]; stored, it is one
/// flat object whatever the type (policy.md §8.1, [`SessionRecord`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Its copy sets, in the order added.
    pub copy_sets: CopySets,
    /// Its properties (and so its type).
    pub properties: Properties,
    /// Its state.
    pub state: SessionState,
    /// Its status.
    pub status: SessionStatus,
    /// The action being carried out for it, if any: a session runs one command at a time.
    pub busy: Option<ActionId>,
    /// Whether background copy runs on its pairs (FC after a Flash, SGC after a
    /// Recover, MM and HS during the first pass): IWNR2772I is due when it ends.
    pub copying: bool,
    /// Whether its relationships exist on the box (a non-persistent FlashCopy ends
    /// when its copy completes; `Initiate Background Copy` ends them too).
    pub relationships: bool,
    /// The last error the hardware reported, if the last command failed.
    pub last_error: Option<String>,
    /// When it was created.
    pub created_ms: u64,
    /// What its type remembers between commands.
    pub runtime: Runtime,
}

/// What a session of one type remembers between commands (policy.md §5.2, §5.3,
/// §5.8): each type's own fields, in its own module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runtime {
    /// FC.
    Fc(FcRuntime),
    /// SGC.
    Sgc(SgcRuntime),
    /// MM and HS.
    Mirror(MirrorState),
}

impl Runtime {
    /// A new session's, for `kind`.
    pub fn new(kind: SessionType) -> Runtime {
        match kind {
            SessionType::Fc => Runtime::Fc(FcRuntime::default()),
            SessionType::Sgc => Runtime::Sgc(SgcRuntime::default()),
            SessionType::Mm | SessionType::Hs => Runtime::Mirror(MirrorState::default()),
        }
    }
}

/// A session as it is stored (policy.md §8.1): one flat object whatever its type,
/// the fields of the other types at their defaults, as stores written before the
/// split into [`Runtime`] hold them.
#[derive(Serialize, Deserialize)]
struct SessionRecord<N, D, C, P, B, E, M> {
    name: N,
    description: D,
    copy_sets: C,
    properties: P,
    state: SessionState,
    status: SessionStatus,
    busy: Option<ActionId>,
    last_flash_ms: Option<u64>,
    copying: bool,
    relationships: bool,
    backups: B,
    recovered: Option<u64>,
    #[serde(default)]
    backups_before_copy_sets: u64,
    last_error: E,
    created_ms: u64,
    #[serde(default)]
    mirror: M,
}

impl Serialize for Session {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let no_backups: &[Backup] = &[];
        let (last_flash_ms, sgc, mirror) = match &self.runtime {
            Runtime::Fc(fc) => (fc.last_flash_ms, None, MirrorState::default()),
            Runtime::Sgc(sgc) => (None, Some(sgc), MirrorState::default()),
            Runtime::Mirror(m) => (None, None, *m),
        };
        SessionRecord {
            name: &self.name,
            description: &self.description,
            copy_sets: &self.copy_sets,
            properties: &self.properties,
            state: self.state,
            status: self.status,
            busy: self.busy,
            last_flash_ms,
            copying: self.copying,
            relationships: self.relationships,
            backups: sgc.map_or(no_backups, |s| s.backups.as_slice()),
            recovered: sgc.and_then(|s| s.recovered),
            backups_before_copy_sets: sgc.map_or(0, |s| s.backups_before_copy_sets),
            last_error: &self.last_error,
            created_ms: self.created_ms,
            mirror,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Session {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Session, D::Error> {
        let r = SessionRecord::<
            String,
            String,
            CopySets,
            Properties,
            Vec<Backup>,
            Option<String>,
            MirrorState,
        >::deserialize(d)?;
        let runtime = match r.properties.kind() {
            SessionType::Fc => Runtime::Fc(FcRuntime {
                last_flash_ms: r.last_flash_ms,
            }),
            SessionType::Sgc => Runtime::Sgc(SgcRuntime {
                backups: r.backups,
                recovered: r.recovered,
                backups_before_copy_sets: r.backups_before_copy_sets,
            }),
            SessionType::Mm | SessionType::Hs => Runtime::Mirror(r.mirror),
        };
        Ok(Session {
            name: r.name,
            description: r.description,
            copy_sets: r.copy_sets,
            properties: r.properties,
            state: r.state,
            status: r.status,
            busy: r.busy,
            copying: r.copying,
            relationships: r.relationships,
            last_error: r.last_error,
            created_ms: r.created_ms,
            runtime,
        })
    }
}

impl Session {
    /// A new, empty session.
    pub fn new(name: String, kind: SessionType, description: String, now_ms: u64) -> Session {
        Session {
            name,
            description,
            copy_sets: CopySets::default(),
            properties: Properties::default_for(kind),
            state: SessionState::Defined,
            status: SessionStatus::Inactive,
            busy: None,
            copying: false,
            relationships: false,
            last_error: None,
            created_ms: now_ms,
            runtime: Runtime::new(kind),
        }
    }

    /// SGC: what it remembers (none for another type).
    pub fn sgc(&self) -> Option<&SgcRuntime> {
        match &self.runtime {
            Runtime::Sgc(sgc) => Some(sgc),
            _ => None,
        }
    }

    /// SGC: what it remembers, to change (none for another type).
    pub fn sgc_mut(&mut self) -> Option<&mut SgcRuntime> {
        match &mut self.runtime {
            Runtime::Sgc(sgc) => Some(sgc),
            _ => None,
        }
    }

    /// SGC: its backups, oldest first (none for another type).
    pub fn backups(&self) -> &[Backup] {
        self.sgc().map_or(&[], |s| s.backups.as_slice())
    }

    /// SGC: the backup recovered to R1, while the H1-R1 relationship stands.
    pub fn recovered(&self) -> Option<u64> {
        self.sgc().and_then(|s| s.recovered)
    }

    /// FC: when the last `Flash` through zgate was taken (none for another type).
    pub fn last_flash_ms(&self) -> Option<u64> {
        match &self.runtime {
            Runtime::Fc(fc) => fc.last_flash_ms,
            _ => None,
        }
    }

    /// FC: what it remembers, to change (none for another type).
    pub fn fc_mut(&mut self) -> Option<&mut FcRuntime> {
        match &mut self.runtime {
            Runtime::Fc(fc) => Some(fc),
            _ => None,
        }
    }

    /// MM, HS: where its pairs and production are (the defaults for another type).
    pub fn mirror(&self) -> MirrorState {
        match &self.runtime {
            Runtime::Mirror(m) => *m,
            _ => MirrorState::default(),
        }
    }

    /// MM, HS: where its pairs and production are, to change (none for another type).
    pub fn mirror_mut(&mut self) -> Option<&mut MirrorState> {
        match &mut self.runtime {
            Runtime::Mirror(m) => Some(m),
            _ => None,
        }
    }

    /// FC or SGC.
    pub fn kind(&self) -> SessionType {
        self.properties.kind()
    }

    /// FC: whether the relationships end when their background copy completes.
    pub fn ends_when_copied(&self) -> bool {
        match &self.properties {
            Properties::Fc(p) => !(p.persistent || p.incremental),
            _ => false,
        }
    }

    /// The storage image its volumes are on (all copy sets are on one image; for
    /// MM and HS, the H1 volumes' image).
    pub fn serial(&self) -> Option<&str> {
        self.copy_sets.first().map(|c| c.h1.serial.as_str())
    }

    /// CSM's `hyperswapstatus` (rest.md §2.1): `off` when HyperSwap does not manage
    /// the session; `hs degraded` while it is enabled on some sysplex members and
    /// not others; else the configuration's state on z/OS.
    pub fn hyperswap_status(&self) -> &'static str {
        let Some(p) = self.properties.mirror() else {
            return "off";
        };
        if !p.hyperswap {
            return "off";
        }
        if self.mirror().degraded(p.other_members().len()) {
            return "hs degraded";
        }
        match self.mirror().hyperswap {
            HyperSwapStatus::NotLoaded => "hs not loaded",
            HyperSwapStatus::Disabled => "hs disabled",
            HyperSwapStatus::Enabled => "hs enabled",
        }
    }

    /// MM, HS: the image of `site`'s volumes.
    pub fn serial_of(&self, site: Site) -> Option<&str> {
        self.copy_sets
            .first()
            .and_then(|c| c.at(site))
            .map(|v| v.serial.as_str())
    }

    /// (H1, partner) volume pairs of the copy sets that have a partner (all but
    /// an SGC session's copy sets with no R1).
    pub fn pairs(&self) -> Vec<(crate::ds8k::ids::VolumeId, crate::ds8k::ids::VolumeId)> {
        self.copy_sets
            .iter()
            .filter_map(|c| c.partner.as_ref().map(|p| (c.h1.volume, p.volume)))
            .collect()
    }

    /// Every H1 volume, in copy-set order.
    pub fn h1_volumes(&self) -> Vec<crate::ds8k::ids::VolumeId> {
        self.copy_sets.iter().map(|c| c.h1.volume).collect()
    }

    /// Whether backup `id` can be recovered: it exists, is not the newest, and
    /// holds every copy set (it was taken after the last copy sets were added).
    pub fn recoverable(&self, id: u64) -> bool {
        self.unrecoverable_because(id).is_none()
    }

    /// Why backup `id` cannot be recovered or restored, if it cannot.
    pub fn unrecoverable_because(&self, id: u64) -> Option<Unrecoverable> {
        let newest = self.backups().iter().map(|b| b.id).max();
        if !self.backups().iter().any(|b| b.id == id) {
            Some(Unrecoverable::Unknown)
        } else if newest == Some(id) {
            Some(Unrecoverable::Newest)
        } else if id <= self.sgc().map_or(0, |s| s.backups_before_copy_sets) {
            Some(Unrecoverable::MissingCopySets)
        } else {
            None
        }
    }

    /// Whether the session has something to recover: FC, the targets are usable;
    /// SGC, at least one backup is recoverable.
    pub fn has_recoverable(&self) -> bool {
        match self.kind() {
            SessionType::Fc => self.state == SessionState::TargetAvailable,
            SessionType::Sgc => self.backups().iter().any(|b| self.recoverable(b.id)),
            // Metro Mirror: the secondaries hold a consistent copy (full duplex, or
            // frozen at one instant), or production runs on them.
            SessionType::Mm | SessionType::Hs => matches!(
                self.state,
                SessionState::Prepared | SessionState::Suspended | SessionState::TargetAvailable
            ),
        }
    }

    /// The commands valid now (policy.md §5.1), CSM's order; backup commands are
    /// listed once, valid for the backups that allow them.
    pub fn available_commands(&self) -> Vec<SessionAction> {
        use SessionAction as A;
        if self.busy.is_some() || self.copy_sets.is_empty() {
            return Vec::new();
        }
        if self.kind().mirrored() {
            return self.mirror_commands();
        }
        match (self.kind(), self.state) {
            (_, SessionState::Preparing) => Vec::new(),
            (SessionType::Fc, SessionState::Defined) => vec![A::Flash],
            (SessionType::Fc, _) => {
                let mut list = vec![A::Flash];
                if self.copying || matches!(&self.properties, Properties::Fc(p) if p.no_copy) {
                    list.push(A::InitiateBackgroundCopy);
                }
                list.extend([A::Terminate, A::RefreshStates]);
                list
            }
            (SessionType::Sgc, SessionState::Defined) => vec![A::Backup, A::RefreshStates],
            (SessionType::Sgc, _) => {
                let mut list = vec![A::Backup];
                // Listed with two backups, as CSM does; a backup that cannot be
                // used is refused with its reason (policy.md §5.3).
                // Recover needs a recovery volume (R1) somewhere to recover to.
                if self.backups().len() >= 2 {
                    if self.copy_sets.iter().any(|c| c.partner.is_some()) {
                        list.push(A::RecoverBackup);
                    }
                    list.push(A::RestoreBackupToProduction);
                }
                list.push(A::ExpireBackup);
                if self.recovered().is_some() {
                    list.extend([A::InitiateBackgroundCopy, A::TerminateH1R1]);
                }
                list.extend([A::Terminate, A::RefreshStates]);
                list
            }
            _ => Vec::new(),
        }
    }

    /// MM and HS (policy.md §5.8): the Start of the pairs' direction resumes or
    /// fails back; the other Start is offered once production runs on a failed-over
    /// side; HyperSwap needs full duplex and HyperSwap enabled.
    fn mirror_commands(&self) -> Vec<SessionAction> {
        use SessionAction as A;
        let start = |site: Site| match site {
            Site::H1 => A::StartH1H2,
            Site::H2 => A::StartH2H1,
        };
        match self.state {
            SessionState::Defined => vec![A::StartH1H2],
            SessionState::Preparing => {
                vec![A::Suspend, A::Stop, A::Terminate, A::RefreshStates]
            }
            SessionState::Prepared => {
                let mut list = Vec::new();
                let swaps = self.properties.mirror().is_some_and(|p| p.hyperswap);
                // Every member must be able to swap.
                if swaps
                    && self.mirror().hyperswap == HyperSwapStatus::Enabled
                    && self.mirror().members_disabled == 0
                {
                    list.push(A::HyperSwap);
                }
                list.extend([A::Suspend, A::Stop, A::Terminate, A::RefreshStates]);
                list
            }
            SessionState::Suspended => vec![
                start(self.mirror().source),
                A::Recover,
                A::Terminate,
                A::RefreshStates,
            ],
            SessionState::TargetAvailable => {
                vec![A::StartH1H2, A::StartH2H1, A::Terminate, A::RefreshStates]
            }
            SessionState::Protected => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// policy.md §8.1: a session is stored as one flat object whatever its type, in
    /// the field order stores written before the split into [`Runtime`] hold; the
    /// fields of other types are at their defaults, and it reads back as it was.
    #[test]
    fn a_session_is_stored_flat_whatever_its_type() {
        const KEYS: [&str; 16] = [
            "name",
            "description",
            "copy_sets",
            "properties",
            "state",
            "status",
            "busy",
            "last_flash_ms",
            "copying",
            "relationships",
            "backups",
            "recovered",
            "backups_before_copy_sets",
            "last_error",
            "created_ms",
            "mirror",
        ];
        let mut fc = Session::new("FC1".into(), SessionType::Fc, "d".into(), 5);
        fc.fc_mut().unwrap().last_flash_ms = Some(9);
        let mut sgc = Session::new("SGC1".into(), SessionType::Sgc, String::new(), 6);
        *sgc.sgc_mut().unwrap() = SgcRuntime {
            backups: vec![Backup { id: 1, time_ms: 2 }],
            recovered: Some(1),
            backups_before_copy_sets: 1,
        };
        let mut mm = Session::new("MM1".into(), SessionType::Mm, String::new(), 7);
        mm.mirror_mut().unwrap().production = Site::H2;
        for s in [&fc, &sgc, &mm] {
            let text = serde_json::to_string(s).unwrap();
            let mut at = 0;
            for key in KEYS {
                let found = text[at..].find(&format!("\"{key}\":")).unwrap();
                at += found;
            }
            let back: Session = serde_json::from_str(&text).unwrap();
            assert_eq!(&back, s, "{text}");
        }
        let v = serde_json::to_value(&fc).unwrap();
        assert_eq!(
            (
                v["last_flash_ms"].as_u64(),
                v["backups"].as_array().map(Vec::len)
            ),
            (Some(9), Some(0))
        );
        let v = serde_json::to_value(&sgc).unwrap();
        assert_eq!(v["backups"][0]["id"], 1);
        assert_eq!(
            (
                v["recovered"].as_u64(),
                v["backups_before_copy_sets"].as_u64()
            ),
            (Some(1), Some(1))
        );
        assert_eq!(v["last_flash_ms"], serde_json::Value::Null);
        let v = serde_json::to_value(&mm).unwrap();
        assert_eq!(v["mirror"]["production"], "H2");
        // Another type's fields in a stored object are not taken.
        let mut stored = serde_json::to_value(&fc).unwrap();
        stored["backups"] = serde_json::json!([{"id": 3, "time_ms": 4}]);
        let read: Session = serde_json::from_value(stored).unwrap();
        assert!(read.backups().is_empty());
    }
}
