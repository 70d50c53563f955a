//! The connector to the simulated DS8000's HMC: the generic host connector
//! ([`super::connector`]) for the DS8000 protocol, usually with a password logon.

use super::connector::{self, ConnectorConfigError, ConnectorHandle};
use crate::proto::ds8k::{Ds8k, Ds8kBody};

pub use super::connector::{Authentication, ConnectorConfig as Ds8kConnectorConfig, RequestError};

/// Handle to a running DS8000 connector.
pub type Ds8kHandle = ConnectorHandle<Ds8k>;
/// What a DS8000 connector reports.
pub type ConnectorEvent = connector::ConnectorEvent<Ds8kBody>;

/// Starts a DS8000 connector in the background.
pub fn spawn(
    config: Ds8kConnectorConfig,
    auth: Authentication,
) -> Result<Ds8kHandle, ConnectorConfigError> {
    connector::spawn::<Ds8k>(config, auth)
}
