//! The DS8000 ("HMC") protocol (spec: protocol-specs/ds8k.md): how the gateway and
//! the emulated z/OS and z/TPF systems drive the simulated DS8000 over the shared
//! frame layer, with the host-session state machines of the host protocols.

mod codec;
mod events;
#[cfg(any(test, feature = "testkit"))]
pub mod examples;
mod fields;
mod flash;
pub mod messages;
mod pprc;
mod sgc;
mod volumes;

pub use crate::proto::MessageError;
pub use messages::{
    BackupEntry, Ds8k, Ds8kBody, Ds8kMessage, Ds8kMessageType, Ds8kProtocolReason, FlashEntry,
    PathEntry, PprcEntry, VolumeWire,
};

#[cfg(test)]
mod tests;
