//! The server: version, session types, dual control, log events, HA status, volume
//! counts (rest.md §5).

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::routing::{get, post, put};
use serde_json::json;

use super::forms::{self, Form};
use super::{Answer, App, User};
use crate::gateway::ops::Operation;
use crate::policy::dual_control::DualControlMode;

/// The CSM release whose REST API zgate follows.
pub const CSM_RELEASE: &str = "6.3.7";

pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/system/version", get(version))
        .route("/system/sessiontypes", get(session_types))
        .route("/system/dualcontrol", get(dual_control))
        .route("/system/dualcontrol/requests", get(requests))
        .route("/system/dualcontrol/{enable}", post(set_dual_control))
        .route("/system/dualcontrol/approve/{id}", post(approve))
        .route("/system/dualcontrol/reject/{id}/{comment}", post(reject))
        .route("/system/dualcontrol/cancel/{id}", post(cancel))
        .route("/system/logevents", get(log_events))
        .route("/system/ha", get(ha))
        .route(
            "/system/ha/setStandbyServer/{server}/{user}/{password}",
            put(set_standby),
        )
        .route(
            "/system/ha/setStandbyServer/{server}/{user}/{password}/{port}",
            put(set_standby),
        )
        .route(
            "/system/ha/setServerAsStandby/{active}",
            put(set_as_standby),
        )
        .route(
            "/system/ha/setServerAsStandby/{active}/{port}",
            put(set_as_standby),
        )
        .route("/system/ha/takeover", put(takeover))
        .route("/system/ha/reconnect", put(reconnect))
        .route("/system/ha/removeHaServer/{server}", put(remove_ha_server))
        .route(
            "/system/properties/{file}/{name}/{value}",
            put(set_property),
        )
        .route("/system/volcounts", get(volume_counts))
}

async fn version() -> Answer {
    Answer::ok(json!({
        "version": CSM_RELEASE,
        "product": "zgate",
        "zgateversion": env!("CARGO_PKG_VERSION"),
    }))
}

async fn session_types() -> Answer {
    Answer::ok(json!([
        {
            "shortname": "FC",
            "name": "FlashCopy",
            "description": "DS8000 FlashCopy: H1 copied to T1 at a point in time",
            "roles": ["H1", "T1"],
            "rolepairs": ["H1-T1"],
        },
        {
            "shortname": "SGC",
            "name": "Safeguarded Copy",
            "description": "DS8000 Safeguarded Copy: backups of H1, recoverable to R1",
            "roles": ["H1", "B1", "R1"],
            "rolepairs": ["H1-B1", "H1-R1"],
        },
        {
            "shortname": "MM",
            "name": "Metro Mirror Failover/Failback",
            "description": "DS8000 Metro Mirror: H1 mirrored to H2 on another storage system, with HyperSwap through z/OS",
            "roles": ["H1", "H2"],
            "rolepairs": ["H1-H2"],
        },
        {
            "shortname": "HS",
            "name": "Basic HyperSwap",
            "description": "z/OS Basic HyperSwap of CKD volumes mirrored from H1 to H2",
            "roles": ["H1", "H2"],
            "rolepairs": ["H1-H2"],
        }
    ]))
}

fn mode_code(mode: DualControlMode) -> &'static str {
    match mode {
        DualControlMode::Off => "off",
        DualControlMode::FullProtection => "full",
        DualControlMode::SafeguardedCopy => "sgc",
    }
}

async fn dual_control(State(app): State<App>) -> Answer {
    match app
        .read(|e| (e.state().dual.mode(), e.state().dual.pending().count()))
        .await
    {
        Ok((mode, pending)) => Answer::ok(json!({
            "enabled": mode != DualControlMode::Off,
            "mode": mode_code(mode),
            "modename": mode.name(),
            "pendingrequests": pending,
        })),
        Err(a) => a,
    }
}

/// `POST /system/dualcontrol/{enable}`: `True` enables (Full Protection unless the
/// form's `mode` says `sgc`), `False` disables; `full`, `sgc` and `off` name the mode
/// in the path. The change always needs a second user's approval (policy.md §2.1).
async fn set_dual_control(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    Path(enable): Path<String>,
    body: Bytes,
) -> Answer {
    let form = Form::parse(&body);
    let mode = match (
        forms::boolean(&enable),
        enable.to_ascii_lowercase().as_str(),
    ) {
        (Some(false), _) | (None, "off") => "off",
        (Some(true), _) => match form.get("mode").map(str::to_ascii_lowercase).as_deref() {
            None | Some("full") => "full",
            Some("sgc") => "sgc",
            Some(other) => return Answer::bad(&app, format!("mode {other}: full or sgc")),
        },
        (None, "full") => "full",
        (None, "sgc") => "sgc",
        (None, other) => {
            return Answer::bad(&app, format!("{other}: True, False, full, sgc or off"));
        }
    };
    let op = Operation::SetMode {
        mode: mode.to_owned(),
    };
    app.op(&user, op).await
}

async fn requests(State(app): State<App>, Extension(User(user)): Extension<User>) -> Answer {
    match app
        .read(move |e| crate::gateway::ops::requests_for(e, &user))
        .await
    {
        Ok(rows) => Answer::ok(json!(rows)),
        Err(a) => a,
    }
}

/// A dual-control operation on request `id`.
async fn on_request(app: &App, user: &str, id: &str, op: impl FnOnce(u64) -> Operation) -> Answer {
    let Ok(id) = id.parse::<u64>() else {
        return Answer::bad(app, format!("{id} is not a request id"));
    };
    app.op(user, op(id)).await
}

/// Approving runs the held command as its requester and answers with its result.
async fn approve(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    Path(id): Path<String>,
) -> Answer {
    on_request(&app, &user, &id, |id| Operation::Approve { id }).await
}

async fn reject(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    Path((id, comment)): Path<(String, String)>,
) -> Answer {
    on_request(&app, &user, &id, |id| Operation::Reject { id, comment }).await
}

async fn cancel(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    Path(id): Path<String>,
) -> Answer {
    on_request(&app, &user, &id, |id| Operation::Cancel { id }).await
}

/// `GET /system/logevents?count=N[&session=S]`: the newest console messages (of the
/// last 1,000), newest first.
async fn log_events(
    State(app): State<App>,
    Query(query): Query<HashMap<String, String>>,
) -> Answer {
    let count = match query.get("count").map(|c| c.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) => n.min(1000),
        Some(Err(_)) => return Answer::bad(&app, "count is a number"),
    };
    let events: Vec<_> = app
        .gateway
        .recent_console(count, query.get("session").map(String::as_str))
        .iter()
        .map(crate::gateway::csm::console_json)
        .map(|mut v| {
            v["resultText"] = v["msgTranslated"].clone();
            v
        })
        .collect();
    Answer::ok(json!(events))
}

/// `GET /system/ha` (rest.md §5, ha.md §9): CSM's status object, with zgate's own
/// fields under `ha`.
async fn ha(State(app): State<App>, Extension(User(user)): Extension<User>) -> Answer {
    app.op(&user, Operation::HaStatus {}).await
}

fn port(text: Option<&String>) -> Result<Option<u16>, String> {
    text.map(|p| {
        p.parse::<u16>()
            .map_err(|_| format!("{p} is not a port number"))
    })
    .transpose()
}

/// `PUT /system/ha/setStandbyServer/{server}/{user}/{password}[/{port}]`, on the
/// active (ha.md §4.1). The password is in the path, as pyCSM sends it: it is
/// never logged or echoed.
async fn set_standby(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    Path(parts): Path<Vec<String>>,
) -> Answer {
    let [server, standby_user, password, rest @ ..] = parts.as_slice() else {
        return Answer::bad(
            &app,
            "setStandbyServer needs a server, a user and a password",
        );
    };
    let port = match port(rest.first()) {
        Ok(p) => p,
        Err(why) => return Answer::bad(&app, why),
    };
    let op = Operation::HaSetStandby {
        server: server.clone(),
        user: standby_user.clone(),
        password: crate::gateway::ops::Password::new(password),
        port,
    };
    app.op(&user, op).await
}

/// `PUT /system/ha/setServerAsStandby/{active}[/{port}]`, on the standby (ha.md §4.2).
async fn set_as_standby(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    Path(parts): Path<Vec<String>>,
) -> Answer {
    let [active, rest @ ..] = parts.as_slice() else {
        return Answer::bad(&app, "setServerAsStandby needs the active server");
    };
    let port = match port(rest.first()) {
        Ok(p) => p,
        Err(why) => return Answer::bad(&app, why),
    };
    let op = Operation::HaSetAsStandby {
        active: active.clone(),
        port,
    };
    app.op(&user, op).await
}

/// `PUT /system/properties/{file}/{name}/{value}` (pyCSM's `set_property`): a server
/// property (policy.md §10). CSM names a properties file; zgate's properties have one
/// namespace, so the file is not used.
async fn set_property(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    Path((_file, name, value)): Path<(String, String, String)>,
) -> Answer {
    app.op(&user, Operation::ServerProperty { name, value })
        .await
}

/// `PUT /system/ha/takeover`, on the standby (ha.md §6).
async fn takeover(State(app): State<App>, Extension(User(user)): Extension<User>) -> Answer {
    app.op(&user, Operation::HaTakeover {}).await
}

/// `PUT /system/ha/reconnect` (ha.md §4.4).
async fn reconnect(State(app): State<App>, Extension(User(user)): Extension<User>) -> Answer {
    app.op(&user, Operation::HaReconnect {}).await
}

/// `PUT /system/ha/removeHaServer/{server}` (ha.md §4.5).
async fn remove_ha_server(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    Path(server): Path<String>,
) -> Answer {
    app.op(&user, Operation::HaRemove { server }).await
}

/// `GET /system/volcounts`: volumes in copy sets, by storage type.
async fn volume_counts(State(app): State<App>) -> Answer {
    match app
        .read(|e| {
            let st = e.state();
            let in_sets: usize = st.sessions.values().map(|s| s.copy_sets.len() * 2).sum();
            (st.systems.len(), in_sets)
        })
        .await
    {
        Ok((systems, volumes)) => Answer::ok(json!({
            "DS8000": { "storagesystems": systems, "volumes": volumes },
            "total": volumes,
        })),
        Err(a) => a,
    }
}
