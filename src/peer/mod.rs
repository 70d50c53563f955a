//! Emulated peers, the tokio shell: the listeners of the mainframe systems and the
//! DS8000 zgate talks to, so that everything runs and is tested on one machine. Each
//! serves a pure model from `crate::sim` and can be scripted to misbehave.

pub mod ds8k;
pub mod hyperswap;
pub mod secrets;
pub mod server;
pub mod storage_link;
pub mod zos;
pub mod ztpf;
