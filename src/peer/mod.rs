//! Emulated peers: the mainframe systems and the DS8000 zgate talks to, so that everything runs and
//! is tested on one machine. Each has a pure model (`*_system.rs`) and a tokio shell
//! that can be scripted to misbehave.

pub mod ds8k;
pub mod ds8k_system;
pub mod host;
pub mod security;
pub mod storage_link;
pub mod zos;
pub mod zos_system;
pub mod ztpf;
pub mod ztpf_system;
