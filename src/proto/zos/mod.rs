//! The z/OS HyperSwap host protocol (spec: protocol-specs/zos-hyperswap.md).
//!
//! The gateway is the client: it logs on to the z/OS HyperSwap address space, keeps
//! the connection alive with heartbeats, loads and drives the HyperSwap
//! configuration, and submits FlashCopy and Safeguarded Copy requests for z/OS IOS to
//! carry out. z/OS reports unplanned swaps and freezes as unsolicited events.

#[cfg(any(test, feature = "testkit"))]
pub mod examples;
pub mod messages;
pub mod session;

pub use crate::proto::MessageError;
pub use messages::{
    CredentialKind, FreezeKind, HyperSwapState, HyperSwapStatus, LogonReply, LogonRequest,
    SystemInfo, Zos, ZosBody, ZosMessage, ZosMessageType, ZosReason,
};

#[cfg(test)]
mod tests;
