//! The session and policy engine (pure): CSM's sessions, roles, grants, dual control,
//! schedules and retention behind every flash and backup zgate forwards. It takes
//! time as an input and touches no socket, clock or store.
//!
//! Built so far: the hash-chained audit trail.

pub mod audit;
