//! Storage systems and z/OS host connections (rest.md §6). Adding either logs on to
//! it first, as CSM does, to learn what it is: a DS8000's serial (QUERY_IMAGE), a
//! host's system name (its LOGON reply). That is the operation `storage.add` or
//! `host.add` with no name: the engine decides who may ask and how often, and the
//! executor makes the logon (policy.md §4.2); this door only reads the form.

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::routing::get;
use serde_json::json;

use super::forms::Form;
use super::{Answer, App, User};
use crate::gateway::ops::Operation;
use crate::policy::inventory::{HostCredential, HostKind};

pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/storagedevices", get(devices).put(add_device))
        .route("/storagedevices/connectioninfo", get(devices))
        .route("/storagedevices/{id}", axum::routing::delete(remove_device))
        .route("/storagedevices/volumes/{system}", get(volumes))
        .route(
            "/storagedevices/zoshost",
            get(hosts).put(add_host).delete(remove_host),
        )
}

async fn devices(
    State(app): State<App>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Answer {
    if let Some(t) = query.get("type")
        && !t.eq_ignore_ascii_case("ds8000")
    {
        return Answer::ok(json!([]));
    }
    let links = app.gateway.links();
    match app
        .read(|e| e.state().systems.values().cloned().collect::<Vec<_>>())
        .await
    {
        Ok(systems) => Answer::ok(json!(
            systems
                .iter()
                .map(|s| {
                    let (ip, port) = s
                        .address
                        .rsplit_once(':')
                        .unwrap_or((s.address.as_str(), ""));
                    let link = links.get(&s.name()).cloned().unwrap_or_default();
                    json!({
                        "id": s.name(),
                        "type": "DS8000",
                        "serial": s.serial,
                        "deviceip": ip,
                        "deviceport": port,
                        "deviceusername": s.user,
                        "connected": link.connected,
                        "logons": link.logons,
                        "lasterror": link.last_error,
                    })
                })
                .collect::<Vec<_>>()
        )),
        Err(a) => a,
    }
}

fn address(ip: &str, port: &str) -> Result<SocketAddr, String> {
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("{ip} is not an IP address"))?;
    let port: u16 = port.parse().map_err(|_| format!("{port} is not a port"))?;
    Ok(SocketAddr::new(ip, port))
}

/// `PUT /storagedevices`, form `type` (ds8000), `deviceip`, `deviceport` (default
/// 1750), `deviceusername`, `devicepassword`.
async fn add_device(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    body: Bytes,
) -> Answer {
    let form = Form::parse(&body);
    if !form
        .get("type")
        .is_some_and(|t| t.eq_ignore_ascii_case("ds8000"))
    {
        return Answer::bad(
            &app,
            "zgate connects to DS8000 storage systems: type=ds8000",
        );
    }
    let (Some(ip), Some(hmc_user), Some(password)) = (
        form.get("deviceip"),
        form.get("deviceusername"),
        form.get("devicepassword"),
    ) else {
        return Answer::bad(
            &app,
            "adding a DS8000 needs deviceip, deviceusername and devicepassword",
        );
    };
    let addr = match address(ip, form.get("deviceport").unwrap_or("1750")) {
        Ok(a) => a,
        Err(e) => return Answer::bad(&app, e),
    };
    let op = Operation::StorageAdd {
        serial: None,
        address: addr.to_string(),
        user: hmc_user.to_owned(),
        password: password.to_owned(),
    };
    app.op(&user, op).await
}

/// `DELETE /storagedevices/{id}`: `DS8000:BOX:2107.<serial>` (or the serial).
async fn remove_device(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    Path(id): Path<String>,
) -> Answer {
    let serial = id
        .strip_prefix("DS8000:BOX:2107.")
        .unwrap_or(&id)
        .to_owned();
    app.op(&user, Operation::StorageRemove { serial }).await
}

/// `GET /storagedevices/volumes/{system}`: the volumes zgate has read from the box
/// (those of copy sets, and every volume once its list is read with LSVOL; rest.md §6).
async fn volumes(State(app): State<App>, Path(system): Path<String>) -> Answer {
    let serial = system
        .strip_prefix("DS8000:BOX:2107.")
        .or_else(|| system.strip_prefix("IBM.2107-"))
        .unwrap_or(&system)
        .to_owned();
    let found = app
        .read(move |e| {
            let st = e.state();
            st.systems.contains_key(&serial).then(|| {
                st.inventory
                    .get(&serial)
                    .into_iter()
                    .flat_map(|vols| vols.values())
                    .map(|facts| {
                        let v = crate::policy::inventory::VolumeRef {
                            serial: serial.clone(),
                            volume: facts.volume,
                        };
                        let sessions: Vec<&str> = st
                            .sessions
                            .values()
                            .filter(|s| {
                                s.copy_sets
                                    .iter()
                                    .any(|c| c.h1 == v || c.partner.as_ref() == Some(&v))
                            })
                            .map(|s| s.name.as_str())
                            .collect();
                        let (kind, size) = match facts.kind {
                            crate::ds8k::VolumeKind::Ckd { cylinders } => {
                                ("CKD", u64::from(cylinders))
                            }
                            crate::ds8k::VolumeKind::Fb { blocks } => ("FB", blocks),
                        };
                        json!({
                            "elementid": v.to_string(),
                            "devNum": format!("{:04X}", v.volume.0),
                            "type": kind,
                            "size": size,
                            "safeguardedtracks": facts.sgc_capacity,
                            "sessions": sessions,
                        })
                    })
                    .collect::<Vec<_>>()
            })
        })
        .await;
    match found {
        Ok(Some(rows)) => Answer::ok(json!(rows)),
        Ok(None) => Answer::bad(&app, format!("there is no storage system {system}")),
        Err(a) => a,
    }
}

async fn hosts(State(app): State<App>) -> Answer {
    let links = app.gateway.links();
    match app
        .read(|e| e.state().hosts.values().cloned().collect::<Vec<_>>())
        .await
    {
        Ok(list) => Answer::ok(json!(
            list.iter()
                .map(|h| {
                    let link = links.get(&h.system).cloned().unwrap_or_default();
                    json!({
                        "hostip": h.address,
                        "hostport": h.port,
                        "system": h.system,
                        "type": match h.kind { HostKind::Zos => "z/OS", HostKind::Ztpf => "z/TPF" },
                        "username": h.user,
                        "credential": match &h.credential {
                            HostCredential::Password(_) => "password",
                            HostCredential::Passphrase(_) => "passphrase",
                            HostCredential::PassTicket { .. } => "passticket",
                        },
                        "connected": link.connected,
                        "logons": link.logons,
                        "lasterror": link.last_error,
                    })
                })
                .collect::<Vec<_>>()
        )),
        Err(a) => a,
    }
}

/// A host connection as the form gives it, becoming `host.add`.
struct HostForm {
    system: Option<String>,
    kind: String,
    address: String,
    port: Option<u16>,
    user: Option<String>,
    password: Option<String>,
    passphrase: Option<String>,
    passticket_key: Option<String>,
    application: Option<String>,
}

impl From<HostForm> for Operation {
    fn from(f: HostForm) -> Operation {
        Operation::HostAdd {
            system: f.system,
            kind: f.kind,
            address: f.address,
            port: f.port,
            user: f.user,
            password: f.password,
            passphrase: f.passphrase,
            passticket_key: f.passticket_key,
            application: f.application,
        }
    }
}

/// `PUT /storagedevices/zoshost`, form `hostip`, `hostport` (default 5858),
/// `username`, `password`; zgate's own optional fields: `hosttype` (`zos`, `ztpf`),
/// `system` (skips the discovery logon), `passticketkey` and `application` (a
/// PassTicket key instead of a password).
async fn add_host(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    body: Bytes,
) -> Answer {
    let form = Form::parse(&body);
    let Some(ip) = form.get("hostip") else {
        return Answer::bad(&app, "adding a host needs hostip");
    };
    let port = form.get("hostport").unwrap_or("5858");
    let addr = match address(ip, port) {
        Ok(a) => a,
        Err(e) => return Answer::bad(&app, e),
    };
    let kind = form.get("hosttype").unwrap_or("zos").to_ascii_lowercase();
    if kind != "zos" && kind != "ztpf" {
        return Answer::bad(&app, format!("hosttype {kind}: zos or ztpf"));
    }
    let host_user = form.get("username").unwrap_or("HOSTUSR");
    let application = form.get("application");
    let mut op = HostForm {
        system: form.get("system").map(str::to_owned),
        kind: kind.clone(),
        address: ip.to_owned(),
        port: Some(addr.port()),
        user: Some(host_user.to_owned()),
        password: None,
        passphrase: None,
        passticket_key: None,
        application: None,
    };
    if let Some(key) = form.get("passticketkey") {
        op.passticket_key = Some(key.to_owned());
        if op.system.is_none() {
            return Answer::bad(&app, "a PassTicket host needs its system name (system)");
        }
    } else {
        let Some(password) = form.get("password") else {
            return Answer::bad(&app, "adding a host needs password (or passticketkey)");
        };
        if password.chars().count() > 8 {
            op.passphrase = Some(password.to_owned());
        } else {
            op.password = Some(password.to_owned());
        }
    }
    op.application = application.map(str::to_owned);
    app.op(&user, op.into()).await
}

/// `DELETE /storagedevices/zoshost`, form `hostip`, `hostport`.
async fn remove_host(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    body: Bytes,
) -> Answer {
    let form = Form::parse(&body);
    let (Some(ip), port) = (form.get("hostip"), form.get("hostport").unwrap_or("5858")) else {
        return Answer::bad(&app, "removing a host needs hostip (and hostport)");
    };
    let Ok(port) = port.parse::<u16>() else {
        return Answer::bad(&app, format!("{port} is not a port"));
    };
    let ip = ip.to_owned();
    let system = app
        .read(move |e| {
            e.state()
                .hosts
                .values()
                .find(|h| h.address == ip && h.port == port)
                .map(|h| h.system.clone())
        })
        .await;
    match system {
        Ok(Some(system)) => app.op(&user, Operation::HostRemove { system }).await,
        Ok(None) => Answer::bad(
            &app,
            format!(
                "there is no host connection at {}:{port}",
                form.get("hostip").unwrap_or_default()
            ),
        ),
        Err(a) => a,
    }
}
