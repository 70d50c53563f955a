//! The z/TPF instances of the shared host-session state machines (spec:
//! protocol-specs/ztpf.md §4; the machines are `crate::proto::host_session`).

use crate::proto::host_session;

use super::messages::{Ztpf, ZtpfBody};

/// The gateway side of one z/TPF connection.
pub type ClientSession = host_session::ClientSession<Ztpf>;
/// The z/TPF side of one connection.
pub type HostSession = host_session::HostSession<Ztpf>;
/// What the z/TPF client reports.
pub type ClientEvent = host_session::ClientEvent<ZtpfBody>;
