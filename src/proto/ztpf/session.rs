//! The z/TPF instances of the shared host-session state machines (spec:
//! protocol-specs/ztpf.md §4; the machines are `crate::proto::session`).

use crate::proto::session;

use super::messages::{Ztpf, ZtpfBody};

/// The gateway side of one z/TPF connection.
pub type ClientSession = session::ClientSession<Ztpf>;
/// The z/TPF side of one connection.
pub type ServerSession = session::ServerSession<Ztpf>;
/// What the z/TPF client reports.
pub type ClientEvent = session::ClientEvent<ZtpfBody>;
