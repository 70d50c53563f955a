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
//! `.ci/check-layers` (run by `cargo test`) enforces it for `codec`, `ds8k`,
//! `passticket`, `policy`, `proto` and `sim`, and checks that in the shell nothing
//! below the gateway imports it and that `store`, `server` and `gateway` never import
//! the emulators (`peer`, `sim`):
//!
//! ```text
//! gateway/ (engine task, doors: CSM on server/, REST)
//!    │  store/ (journal, snapshots)
//!    ▼
//! client/ server/ peer/ (emulators on server/) clock  (tokio shell)
//!        │
//!        ▼
//! sim/ ──► proto/ ──► ds8k/ (vocabulary)    passticket/
//!             │
//!             ▼
//!          codec/
//! ```
//!
//! | module | what it holds |
//! |---|---|
//! | [`passticket`] | legacy (DES) and enhanced (HMAC-SHA-512) PassTicket generation; RACF-style evaluation |
//! | [`client`] | I/O shell: the gateway's connectors (z/OS, z/TPF, DS8000) |
//! | [`gateway`] | I/O shell: the engine's task and its publisher (nothing leaves before it is durable), the typed operations both doors decode into (`ops`) and the views both show (`views`), the CSM door, REST, storage actions over the HMC or a host, the engine's timers |
//! | [`server`] | I/O shell: the product's listener for the framed protocols (TLS, caps, deadlines, throttling, graceful stop) |
//! | [`store`] | I/O shell: the engine's journal in redb with group commit, epochs, snapshots and compaction, and a reader that resumes (`since`); secrets sealed at rest |
//! | [`keyfile`] | secret files, owner-only, for the product and the emulators |
//! | [`clock`] | I/O shell: the one clock the shell reads (follows tokio's, so paused tests drive it) |
//! | [`peer`] | I/O shell: the emulated z/OS, z/TPF and DS8000 listeners |
//! | [`tls`] | rustls set-up for listeners and connectors |
//! | [`policy`] | CSM's session and policy engine (pure); so far its hash-chained audit trail |
//! | [`sim`] | the simulated world (pure): the DS8000 model, the emulated z/OS and z/TPF systems, the HMC, their RACF |
//! | [`ds8k`] | the DS8000's vocabulary (pure leaf): ids, geometry, FlashCopy option bits, reason codes |
//! | [`proto`] | protocol messages and sans-IO state machines: z/OS HyperSwap, z/TPF, DS8000 |
//! | [`codec`] | bytes ↔ frames and fields: frame codec, named field readers, EBCDIC CP1047, `wire_enum!` |
//! | [`password`] | argon2id PHC strings: checked and verified (pure) |
//! | [`error`] | the top-level error type |
//! | `testkit` | test-only (feature `testkit`): `harness` (the policy engine against the simulated DS8000 in one process, time advanced by hand) and `fuzzing` (the cargo-fuzz targets' entry points), re-exported at the root |
//!
//! # Specifications
//!
//! `protocol-specs/` holds the byte-level specification of every algorithm and
//! protocol. Code that enforces a rule cites it as `protocol-specs/<file>.md §N`.

#![forbid(unsafe_code)]

pub mod admission;
pub mod client;
pub mod clock;
pub mod codec;
pub mod demo;
pub mod ds8k;
pub mod error;
pub mod gateway;
pub mod keyfile;
pub mod passticket;
pub mod password;
pub mod peer;
pub mod policy;
pub mod proto;
pub mod server;
pub mod sim;
pub mod store;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod tls;

pub use error::Error;
#[cfg(any(test, feature = "testkit"))]
pub use testkit::{fuzzing, harness};
