//! Bytes ↔ frames and fields, with no protocol semantics.
//!
//! * [`frame`]: the tokio-util codec that cuts a byte stream into frames and enforces
//!   the size limit (protocol-specs/framing.md §1–2);
//! * [`fields`]: named, bounded field readers (nom, complete mode) and writers for
//!   frame bodies (§3);
//! * [`ebcdic`]: code page 1047, used by the host protocols and PassTickets;
//! * [`wire_enum!`](crate::wire_enum): open newtypes for wire codes.

pub mod ebcdic;
pub mod fields;
pub mod frame;
pub mod wire_enum;
