//! Emulated peers: the mainframe systems zgate talks to, so that everything runs and
//! is tested on one machine. Each has a pure model (`*_system.rs`) and a tokio shell
//! that can be scripted to misbehave.

pub mod host;
pub mod security;
pub mod zos;
pub mod zos_system;
pub mod ztpf;
pub mod ztpf_system;
