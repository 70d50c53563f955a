//! Outbound host connections of the gateway: connect, log on with a fresh
//! PassTicket, heartbeat, reconnect with backoff, pipelined requests, event streams.

pub mod connector;
pub mod csm;
pub mod ds8k;
pub mod zos;
pub mod ztpf;
