//! The gateway's connector to a z/OS HyperSwap address space: the generic
//! connector ([`super::connector`]) for the z/OS protocol.

use super::connector::{self, ConnectorConfigError, ConnectorHandle};
use crate::proto::zos::{Zos, ZosBody};

pub use super::connector::{Authentication, ConnectorConfig as ZosConnectorConfig, RequestError};

/// Handle to a running z/OS connector.
pub type ZosHandle = ConnectorHandle<Zos>;
/// What a z/OS connector reports.
pub type ConnectorEvent = connector::ConnectorEvent<ZosBody>;

/// Starts a z/OS connector in the background.
pub fn spawn(
    config: ZosConnectorConfig,
    auth: Authentication,
) -> Result<ZosHandle, ConnectorConfigError> {
    connector::spawn::<Zos>(config, auth)
}
