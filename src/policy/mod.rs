//! The session and policy engine (pure): CSM's sessions, roles, grants, dual control,
//! schedules and retention behind every flash and backup zgate forwards. It takes
//! time as an input and touches no socket, clock or store.
//!
//! Built so far: roles and operator grants, and the hash-chained audit trail.

pub mod access;
pub mod audit;
