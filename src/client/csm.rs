//! The connector to the gateway's CSM protocol (`protocol-specs/csm.md`), for
//! `zgate csm` and tests: the generic connector, a password or passphrase logon, and
//! JSON in and out.

use serde_json::Value;

use super::connector::{self, ConnectorConfigError, ConnectorHandle};
use crate::proto::ReplyStatus;
use crate::proto::csm::{Csm, CsmBody};

pub use super::connector::{Authentication, ConnectorConfig as CsmConnectorConfig, RequestError};

/// Handle to a running CSM connector.
pub type CsmHandle = ConnectorHandle<Csm>;
/// What a CSM connector reports (console messages arrive as `Event(Console)`).
pub type ConnectorEvent = connector::ConnectorEvent<CsmBody>;

/// Starts a CSM connector in the background.
pub fn spawn(
    config: CsmConnectorConfig,
    auth: Authentication,
) -> Result<CsmHandle, ConnectorConfigError> {
    connector::spawn::<Csm>(config, auth)
}

/// Why a call got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No reply.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The reply is not a REQUEST reply with a JSON object.
    #[error("the gateway's answer is not a JSON result: {0}")]
    Answer(String),
}

/// Sends one operation (a JSON object with `op`) and returns the reply's status and
/// JSON result.
pub async fn call(handle: &CsmHandle, request: &Value) -> Result<(ReplyStatus, Value), CallError> {
    match handle
        .request(CsmBody::Request {
            json: request.to_string(),
        })
        .await?
    {
        CsmBody::Reply { status, json } => {
            let value =
                serde_json::from_str(&json).map_err(|e| CallError::Answer(e.to_string()))?;
            Ok((status, value))
        }
        other => Err(CallError::Answer(format!("{other:?}"))),
    }
}

/// Turns this connection's console events on or off (csm.md §4: `console.subscribe`).
/// The subscription belongs to the connection: after a reconnect, ask again.
pub async fn subscribe(handle: &CsmHandle, follow: bool) -> Result<(), CallError> {
    let (status, reply) = call(
        handle,
        &serde_json::json!({"op": "console.subscribe", "follow": follow}),
    )
    .await?;
    if status.rc == crate::proto::ReturnCode::OK {
        Ok(())
    } else {
        Err(CallError::Answer(reply.to_string()))
    }
}
