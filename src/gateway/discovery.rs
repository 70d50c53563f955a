//! Discovery logons (rest.md §6): before a storage system or host connection is
//! defined, the gateway logs on to it once, as CSM does, to learn what it is: a
//! DS8000's serial (QUERY_IMAGE) or a host's system name (its LOGON reply). Like the
//! executors' connections, these are the gateway's; a door decides only who may ask
//! for one and how often, before any is made.

use std::net::SocketAddr;
use std::time::Duration;

use crate::client::connector::{self, Authentication, ConnectorConfig, ConnectorEvent};
use crate::clock::Clock;
use crate::policy::inventory::HostKind;
use crate::proto::Protocol;
use crate::proto::ds8k::{Ds8k, Ds8kBody};
use crate::proto::logon::Credential;

/// How long a discovery logon may take.
const DISCOVERY: Duration = Duration::from_secs(10);

/// Why a discovery did not tell what the system is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    /// The request cannot be tried (a credential of the wrong shape).
    Unusable(String),
    /// The system refused, did not answer, or answered something else.
    Failed(String),
}

/// The serial of the DS8000 whose HMC is at `addr`.
pub async fn storage_serial(
    clock: Clock,
    addr: SocketAddr,
    user: &str,
    password: &str,
) -> Result<String, Discovery> {
    let auth = credential(password)
        .ok_or_else(|| Discovery::Unusable("devicepassword is 1 to 100 characters".into()))?;
    let (h, _) = log_on::<Ds8k>(clock, addr, user, "HMC", auth)
        .await
        .map_err(Discovery::Failed)?;
    let reply = h.request(Ds8kBody::QueryImageRequest).await;
    h.shutdown().await;
    match reply {
        Ok(Ds8kBody::ImageReply { serial, .. }) => Ok(serial.to_string().trim_end().to_owned()),
        Ok(other) => Err(Discovery::Failed(format!(
            "the HMC at {addr} did not say its serial: it answered {}",
            other.name()
        ))),
        Err(e) => Err(Discovery::Failed(format!(
            "the HMC at {addr} did not say its serial: {e}"
        ))),
    }
}

/// The system name of the z/OS or z/TPF host at `addr` (its LOGON reply), logged
/// on to application `application` (by default the kind's own).
pub async fn host_system(
    clock: Clock,
    kind: HostKind,
    addr: SocketAddr,
    user: &str,
    application: Option<&str>,
    password: &str,
) -> Result<String, Discovery> {
    let auth = credential(password)
        .ok_or_else(|| Discovery::Unusable("password is 1 to 100 characters".into()))?;
    let found = match kind {
        HostKind::Zos => {
            let appl = application.unwrap_or("IOSHMCSM");
            log_on::<crate::proto::zos::Zos>(clock, addr, user, appl, auth)
                .await
                .map(|(h, system)| {
                    tokio::spawn(async move { h.shutdown().await });
                    system
                })
        }
        HostKind::Ztpf => {
            let appl = application.unwrap_or("ZTPFCSM");
            log_on::<crate::proto::ztpf::Ztpf>(clock, addr, user, appl, auth)
                .await
                .map(|(h, system)| {
                    tokio::spawn(async move { h.shutdown().await });
                    system
                })
        }
    };
    found
        .map(|system| system.trim_end().to_owned())
        .map_err(Discovery::Failed)
}

fn credential(text: &str) -> Option<Authentication> {
    let c = Credential::new(text)?;
    Some(if text.chars().count() > 8 {
        Authentication::Passphrase(c)
    } else {
        Authentication::Password(c)
    })
}

/// Logs on to `addr` and returns the connector once it is logged on, with the
/// logon's system and domain.
async fn log_on<P: Protocol>(
    clock: Clock,
    addr: SocketAddr,
    user: &str,
    appl: &str,
    auth: Authentication,
) -> Result<(connector::ConnectorHandle<P>, String), String> {
    let mut c = ConnectorConfig::new(addr);
    c.user = user.to_owned();
    c.appl = appl.to_owned();
    c.clock = clock;
    c.max_logon_refusals = 1;
    c.connect_timeout = DISCOVERY;
    c.request_timeout = DISCOVERY;
    let mut h = connector::spawn::<P>(c, auth).map_err(|e| e.to_string())?;
    let first = tokio::time::timeout(DISCOVERY, async {
        loop {
            match h.next_event().await {
                Some(ConnectorEvent::Connected { system, .. }) => return Ok(system),
                Some(ConnectorEvent::GaveUp { status, .. }) => {
                    return Err(format!(
                        "the logon was refused (reason {:#06x})",
                        status.reason
                    ));
                }
                Some(_) => {}
                None => return Err("the connection ended".to_owned()),
            }
        }
    })
    .await;
    match first {
        Ok(Ok(system)) => Ok((h, system)),
        Ok(Err(e)) => {
            h.shutdown().await;
            Err(e)
        }
        Err(_) => {
            h.shutdown().await;
            Err(format!(
                "no logon to {addr} within {} s",
                DISCOVERY.as_secs()
            ))
        }
    }
}
