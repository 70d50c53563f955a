//! zgate: a mainframe host-connection protocol gateway.
//!
//! zgate stands where the host-connection layer of IBM Copy Services Manager stands:
//! between a replication manager and the mainframe world. It authenticates to z/OS
//! HyperSwap address spaces and z/TPF systems with RACF PassTickets that it generates
//! itself, and drives FlashCopy and Safeguarded Copy work on a (simulated) DS8000.
//!
//! # Layout
//!
//! Dependencies point down only. The layers below the I/O shell are pure: they take
//! time and keys as inputs, and never touch sockets, clocks or randomness.
//!
//! | module | what it holds |
//! |---|---|
//! | [`passticket`] | legacy (DES) and enhanced (HMAC-SHA-512) PassTicket generation; RACF-style evaluation |
//! | [`proto`] | protocol messages: reply status, volume references, the z/OS HyperSwap protocol |
//! | [`codec`] | bytes ↔ frames and fields: frame codec, named field readers, EBCDIC CP1047, `wire_enum!` |
//! | [`error`] | the top-level error type |
//! | [`fuzzing`] | entry points for the cargo-fuzz targets and their seed-replay test |
//!
//! # Specifications
//!
//! `protocol-specs/` holds the byte-level specification of every algorithm and
//! protocol. Code that enforces a rule cites it as `protocol-specs/<file>.md §N`.

#![forbid(unsafe_code)]

pub mod client;
pub mod codec;
pub mod error;
pub mod fuzzing;
pub mod passticket;
pub mod peer;
pub mod proto;

pub use error::Error;
