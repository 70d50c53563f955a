//! The connector to the simulated DS8000's HMC: the generic host connector
//! ([`super::host`]) for the DS8000 protocol, usually with a password logon.

use super::host::{self, ConnectorConfigError, HostHandle};
use crate::proto::ds8k::{Ds8k, Ds8kBody};

pub use super::host::{Authentication, HostConnectorConfig as Ds8kConnectorConfig, RequestError};

/// Handle to a running DS8000 connector.
pub type Ds8kHandle = HostHandle<Ds8k>;
/// What a DS8000 connector reports.
pub type ConnectorEvent = host::ConnectorEvent<Ds8kBody>;

/// Starts a DS8000 connector in the background.
pub fn spawn(
    config: Ds8kConnectorConfig,
    auth: Authentication,
) -> Result<Ds8kHandle, ConnectorConfigError> {
    host::spawn::<Ds8k>(config, auth)
}
