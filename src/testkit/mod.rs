//! The test kit (feature `testkit`; compiled for tests, golden generation and the
//! fuzz crate, never into the release binary): what the tests, property tests and
//! fuzz targets drive the product with.
//!
//! | part | where |
//! |---|---|
//! | `harness` | the policy engine against the simulated DS8000 in one process, time advanced by hand; faults: a lost answer, a lost request, a stalled box, a restart at any step |
//! | `ha_sim` | the active/standby pair simulated deterministically: two engines with journals that lose unsynced records at a crash, a link with delays and partitions, one box; swept over 1,000 seeds by `tests/ha_sim.rs` |
//! | `fuzzing` | entry points of the cargo-fuzz targets (PassTickets, frames, sessions over a fuzzed wire, the emulated systems, the storage model and link, the engine's operation sequences), replayed by `tests/fuzz_seeds.rs` |
//! | the storage model's full-copy oracle | `crate::sim::ds8k::oracle` (it reads the image's insides, so it lives beside them) |
//! | each protocol's examples | `crate::proto::{zos,ztpf,ds8k}::examples` (beside the messages they build) |
//!
//! The crate root re-exports `harness` and `fuzzing` under their old names.

pub mod fuzzing;
pub mod ha_sim;
pub mod harness;
