//! Discovery logons (policy.md §4.2, rest.md §6): before a storage system or host
//! connection is defined, the gateway logs on to it once, as CSM does, to learn what
//! it is: a DS8000's serial (QUERY_IMAGE) or a host's system name (its LOGON reply).
//! The engine decides who may ask and how often, and hands out a
//! [`crate::policy::engine::Discovery`]; the executor carries it out here and the
//! answer, its secret sealed again under the definition's name, goes back to the
//! engine, which defines what was found.

use std::net::SocketAddr;
use std::time::Duration;

use crate::client::connector::{self, Authentication, ConnectorConfig, ConnectorEvent};
use crate::clock::Clock;
use crate::policy::inventory::{
    Discover, Discovered, HostConnection, HostCredential, HostKind, StorageSystem,
    discovery_object, storage_password_object,
};
use crate::proto::Protocol;
use crate::proto::ds8k::{Ds8k, Ds8kBody};
use crate::proto::logon::Credential;
use crate::store::sealing::SealingKey;

/// How long a discovery logon may take.
const DISCOVERY: Duration = Duration::from_secs(10);

/// Carries out a discovery: opens its secret, logs on, and returns the definition
/// with the name learned and the secret sealed again under that name.
pub async fn identify(
    key: &SealingKey,
    clock: Clock,
    target: &Discover,
) -> Result<Discovered, String> {
    let address = target.address();
    let addr: SocketAddr = address
        .parse()
        .map_err(|_| format!("{address} is not an IP address and port"))?;
    let sealed = match target {
        Discover::StorageSystem { password, .. } => password,
        Discover::HostConnection { credential, .. } => credential.sealed(),
    };
    let object = discovery_object(&target.address());
    let secret = key.open(&object, sealed).map_err(|e| e.to_string())?;
    let secret = std::str::from_utf8(&secret).map_err(|_| "the secret is not text".to_owned())?;
    match target {
        Discover::StorageSystem { address, user, .. } => {
            let serial = storage_serial(clock, addr, user, secret).await?;
            let password = key
                .seal(&storage_password_object(&serial), secret.as_bytes())
                .map_err(|e| e.to_string())?;
            Ok(Discovered::StorageSystem(StorageSystem {
                serial,
                address: address.clone(),
                user: user.clone(),
                password,
            }))
        }
        Discover::HostConnection {
            kind,
            address,
            port,
            user,
            credential,
            application,
        } => {
            let system =
                host_system(clock, *kind, addr, user, application.as_deref(), secret).await?;
            let resealed = key
                .seal(&credential.object(&system), secret.as_bytes())
                .map_err(|e| e.to_string())?;
            let credential = match credential {
                HostCredential::Password(_) => HostCredential::Password(resealed),
                HostCredential::Passphrase(_) => HostCredential::Passphrase(resealed),
                HostCredential::PassTicket { .. } => {
                    return Err("a PassTicket host needs its system name".into());
                }
            };
            Ok(Discovered::HostConnection(HostConnection {
                system,
                kind: *kind,
                address: address.clone(),
                port: *port,
                user: user.clone(),
                credential,
            }))
        }
    }
}

/// The serial of the DS8000 whose HMC is at `addr`.
async fn storage_serial(
    clock: Clock,
    addr: SocketAddr,
    user: &str,
    password: &str,
) -> Result<String, String> {
    let auth =
        credential(password).ok_or_else(|| "the password is 1 to 100 characters".to_owned())?;
    let (h, _) = log_on::<Ds8k>(clock, addr, user, "HMC", auth).await?;
    let reply = h.request(Ds8kBody::QueryImageRequest).await;
    h.shutdown().await;
    match reply {
        Ok(Ds8kBody::ImageReply { serial, .. }) => Ok(serial.to_string().trim_end().to_owned()),
        Ok(other) => Err(format!(
            "the HMC at {addr} did not say its serial: it answered {}",
            other.name()
        )),
        Err(e) => Err(format!("the HMC at {addr} did not say its serial: {e}")),
    }
}

/// The system name of the z/OS or z/TPF host at `addr` (its LOGON reply), logged
/// on to application `application` (by default the kind's own).
async fn host_system(
    clock: Clock,
    kind: HostKind,
    addr: SocketAddr,
    user: &str,
    application: Option<&str>,
    password: &str,
) -> Result<String, String> {
    let auth =
        credential(password).ok_or_else(|| "the password is 1 to 100 characters".to_owned())?;
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
    found.map(|system| system.trim_end().to_owned())
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
