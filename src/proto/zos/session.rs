//! The z/OS instances of the shared host-session state machines (spec:
//! protocol-specs/zos-hyperswap.md §4; the machines are `crate::proto::session`).

use crate::proto::session;

use super::messages::{Zos, ZosBody};

pub use crate::proto::session::{
    ClientConfig, CloseReason, Disposition, LogonDecision, RequestId, SendError, ServerBackend,
    ServerConfig, Work, serve_work,
};

/// The gateway side of one z/OS connection.
pub type ClientSession = session::ClientSession<Zos>;
/// The z/OS side of one connection.
pub type ServerSession = session::ServerSession<Zos>;
/// What the z/OS client reports.
pub type ClientEvent = session::ClientEvent<ZosBody>;
