//! The z/OS instances of the shared host-session state machines (spec:
//! protocol-specs/zos-hyperswap.md §4; the machines are `crate::proto::host_session`).

use crate::proto::host_session;

use super::messages::{Zos, ZosBody};

pub use crate::proto::host_session::{
    ClientConfig, CloseReason, Disposition, HostBackend, HostConfig, LogonDecision, RequestId,
    SendError, Work, serve_work,
};

/// The gateway side of one z/OS connection.
pub type ClientSession = host_session::ClientSession<Zos>;
/// The z/OS side of one connection.
pub type HostSession = host_session::HostSession<Zos>;
/// What the z/OS client reports.
pub type ClientEvent = host_session::ClientEvent<ZosBody>;
