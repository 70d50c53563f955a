//! The gateway's connector to a z/TPF system: the generic host connector
//! ([`super::host`]) for the z/TPF protocol.

use super::host::{self, ConnectorConfigError, HostHandle};
use crate::proto::ztpf::{Ztpf, ZtpfBody};

pub use super::host::{Authentication, HostConnectorConfig as ZtpfConnectorConfig, RequestError};

/// Handle to a running z/TPF connector.
pub type ZtpfHandle = HostHandle<Ztpf>;
/// What a z/TPF connector reports.
pub type ConnectorEvent = host::ConnectorEvent<ZtpfBody>;

/// Starts a z/TPF connector in the background.
pub fn spawn(
    config: ZtpfConnectorConfig,
    auth: Authentication,
) -> Result<ZtpfHandle, ConnectorConfigError> {
    host::spawn::<Ztpf>(config, auth)
}
