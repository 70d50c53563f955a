//! The gateway's connector to a z/OS HyperSwap address space: the generic host
//! connector ([`super::host`]) for the z/OS protocol.

use super::host::{self, ConnectorConfigError, HostHandle};
use crate::proto::zos::{Zos, ZosBody};

pub use super::host::{Authentication, HostConnectorConfig as ZosConnectorConfig, RequestError};

/// Handle to a running z/OS connector.
pub type ZosHandle = HostHandle<Zos>;
/// What a z/OS connector reports.
pub type ConnectorEvent = host::ConnectorEvent<ZosBody>;

/// Starts a z/OS connector in the background.
pub fn spawn(
    config: ZosConnectorConfig,
    auth: Authentication,
) -> Result<ZosHandle, ConnectorConfigError> {
    host::spawn::<Zos>(config, auth)
}
