//! The simulated world, pure: the DS8000 storage model, the emulated z/OS and z/TPF
//! systems, the HMC in front of the DS8000, and their RACF-style security. Nothing
//! here touches sockets, clocks, tasks or randomness; `crate::peer` puts each behind
//! a tokio listener.

pub mod ds8k;
pub mod hmc;
pub mod host_book;
pub mod security;
pub mod zos;
pub mod ztpf;
