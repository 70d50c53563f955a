//! The gateway's connector to a z/TPF system: the generic host connector
//! ([`super::connector`]) for the z/TPF protocol.

use super::connector::{self, ConnectorConfigError, ConnectorHandle};
use crate::proto::ztpf::{Ztpf, ZtpfBody};

pub use super::connector::{Authentication, ConnectorConfig as ZtpfConnectorConfig, RequestError};

/// Handle to a running z/TPF connector.
pub type ZtpfHandle = ConnectorHandle<Ztpf>;
/// What a z/TPF connector reports.
pub type ConnectorEvent = connector::ConnectorEvent<ZtpfBody>;

/// Starts a z/TPF connector in the background.
pub fn spawn(
    config: ZtpfConnectorConfig,
    auth: Authentication,
) -> Result<ZtpfHandle, ConnectorConfigError> {
    connector::spawn::<Ztpf>(config, auth)
}
