//! The z/TPF host protocol (spec: protocol-specs/ztpf.md).
//!
//! CSM 6.3.7 connects to z/TPF "similar to how CSM allows z/OS connections" to have
//! z/TPF issue FlashCopy and Safeguarded Copy backups. IBM documents no wire format
//! and no authentication for it; zgate's protocol is its own design, and checking
//! PassTickets on z/TPF is zgate's choice.

#[cfg(any(test, feature = "testkit"))]
pub mod examples;
pub mod messages;
pub mod session;

pub use crate::proto::MessageError;
pub use messages::{Ztpf, ZtpfBody, ZtpfInfo, ZtpfMessage, ZtpfMessageType, ZtpfReason};

#[cfg(test)]
mod tests;
