//! What the server knows about the storage world (`protocol-specs/policy.md` §4):
//! storage systems, host connections, and each box's volumes as last read. Secrets
//! arrive sealed (encrypted by the I/O shell with the operator's key) and stay so:
//! the engine stores and replicates ciphertext only.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ds8k::ids::{VolumeId, VolumeKind};

/// A volume in CSM's form: `DS8000:2107.<serial>:VOL:<XXYY>` (policy.md §4.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VolumeRef {
    /// The storage image's serial (`75ABCD1`, the part after `2107.`).
    pub serial: String,
    /// The volume.
    pub volume: VolumeId,
}

impl VolumeRef {
    /// Parses `DS8000:2107.<serial>:VOL:<XXYY>`.
    pub fn parse(text: &str) -> Option<VolumeRef> {
        let rest = text.strip_prefix("DS8000:2107.")?;
        let (serial, volume) = rest.split_once(":VOL:")?;
        let serial_ok = !serial.is_empty()
            && serial.len() <= 16
            && serial.bytes().all(|b| b.is_ascii_alphanumeric());
        if !serial_ok || volume.len() != 4 {
            return None;
        }
        let volume = VolumeId::parse(volume).ok()?;
        Some(VolumeRef {
            serial: serial.to_ascii_uppercase(),
            volume,
        })
    }
}

impl fmt::Display for VolumeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DS8000:2107.{}:VOL:{}", self.serial, self.volume)
    }
}

/// A secret sealed by the I/O shell (AEAD, operator's key): opaque to the engine.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed(pub Vec<u8>);

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed({} bytes)", self.0.len())
    }
}

/// A DS8000 reached through its HMC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageSystem {
    /// The storage image serial; the system's name is `DS8000:BOX:2107.<serial>`.
    pub serial: String,
    /// HMC address (`host:port`).
    pub address: String,
    /// HMC user.
    pub user: String,
    /// HMC password, sealed.
    pub password: Sealed,
}

impl StorageSystem {
    /// CSM's name for it.
    pub fn name(&self) -> String {
        format!("DS8000:BOX:2107.{}", self.serial)
    }
}

/// The kind of host behind a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostKind {
    /// A z/OS HyperSwap address space (IOSHMCTL).
    Zos,
    /// A z/TPF system.
    Ztpf,
}

/// How zgate proves who it is to a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostCredential {
    /// A password, sealed.
    Password(Sealed),
    /// A password phrase, sealed.
    Passphrase(Sealed),
    /// A PassTicket key (sealed) and the application name it is defined for.
    PassTicket {
        /// The key, sealed.
        key: Sealed,
        /// The RACF application name (`IOSHMCSM` by default for z/OS).
        application: String,
    },
}

/// A z/OS or z/TPF system that flash and backup commands may go through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostConnection {
    /// The system (or sysplex) name; a session's host path names it.
    pub system: String,
    /// z/OS or z/TPF.
    pub kind: HostKind,
    /// Address.
    pub address: String,
    /// Port (CSM's default for z/OS: 5858).
    pub port: u16,
    /// The user zgate logs on as (CSM's default: `HOSTUSR`).
    pub user: String,
    /// Its credential.
    pub credential: HostCredential,
}

/// A definition waiting for what a discovery logon learns (policy.md §4.2): a
/// storage system's serial from its HMC (QUERY_IMAGE), or a host's system name
/// from its LOGON reply. Its secret is sealed as [`discovery_object`] until then;
/// the shell seals it again under the definition's own name once it is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Discover {
    /// A DS8000 at `address`.
    StorageSystem {
        /// HMC address (`host:port`).
        address: String,
        /// HMC user.
        user: String,
        /// HMC password, sealed as [`discovery_object`].
        password: Sealed,
    },
    /// A z/OS or z/TPF host (a password or a passphrase: a PassTicket needs the
    /// system name before any logon).
    HostConnection {
        /// z/OS or z/TPF.
        kind: HostKind,
        /// Address.
        address: String,
        /// Port.
        port: u16,
        /// The user zgate logs on as.
        user: String,
        /// Its credential, sealed as [`discovery_object`].
        credential: HostCredential,
        /// The application to log on to (the kind's own when none).
        application: Option<String>,
    },
}

impl Discover {
    /// Where the logon goes, as `host:port` text.
    pub fn address(&self) -> String {
        match self {
            Discover::StorageSystem { address, .. } => address.clone(),
            Discover::HostConnection { address, port, .. } => format!("{address}:{port}"),
        }
    }
}

/// What a discovery logon learned: the definition, named and with its secret sealed
/// under that name (policy.md §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovered {
    /// The storage system, its serial as its HMC said it.
    StorageSystem(StorageSystem),
    /// The host connection, its system name as its LOGON reply said it.
    HostConnection(HostConnection),
}

/// The sealing name of a secret waiting for a discovery to `address` (store.md §4).
pub fn discovery_object(address: &str) -> String {
    format!("discovery of {address}")
}

/// The sealing name of the HMC password of storage image `serial` (store.md §4).
pub fn storage_password_object(serial: &str) -> String {
    format!("DS8000:BOX:2107.{serial} password")
}

impl HostCredential {
    /// The sealing name of this credential's secret on host `system` (store.md §4).
    pub fn object(&self, system: &str) -> String {
        let what = match self {
            HostCredential::PassTicket { .. } => "PassTicket key",
            HostCredential::Password(_) => "password",
            HostCredential::Passphrase(_) => "passphrase",
        };
        format!("{system} {what}")
    }

    /// The sealed secret.
    pub fn sealed(&self) -> &Sealed {
        match self {
            HostCredential::PassTicket { key, .. }
            | HostCredential::Password(key)
            | HostCredential::Passphrase(key) => key,
        }
    }
}

/// CSM's default z/OS connection port.
pub const DEFAULT_ZOS_PORT: u16 = 5858;
/// CSM's default PassTicket application name for z/OS.
pub const DEFAULT_ZOS_APPLICATION: &str = "IOSHMCSM";
/// CSM's default host user.
pub const DEFAULT_HOST_USER: &str = "HOSTUSR";

/// A volume as the box last reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeFacts {
    /// The volume.
    pub volume: VolumeId,
    /// Type and size.
    pub kind: VolumeKind,
    /// Safeguarded (backup) capacity, tracks; 0 = none.
    pub sgc_capacity: u64,
}
