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
//! | [`client`] | I/O shell: the gateway's connectors (z/OS, z/TPF, DS8000) |
//! | [`clock`] | I/O shell: the one clock the shell reads (follows tokio's, so paused tests drive it) |
//! | [`peer`] | I/O shell and pure models: the emulated z/OS and z/TPF systems, the DS8000 service |
//! | [`tls`] | rustls set-up for listeners and connectors |
//! | [`ds8k`] | the simulated DS8000: volumes, host I/O, FlashCopy, Safeguarded Copy (pure) |
//! | [`proto`] | protocol messages and sans-IO state machines: z/OS HyperSwap, z/TPF, DS8000 |
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
pub mod clock;
pub mod codec;
pub mod ds8k;
pub mod error;
pub mod fuzzing;
pub mod passticket;
pub mod peer;
pub mod proto;
pub mod tls;

pub use error::Error;
