//! Sessions, copy sets, options, pairs and backups (rest.md §2).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::forms::{self, Form};
use super::{Answer, App, User};
use crate::gateway::ops::{Operation, OptionsChange};
use crate::gateway::views::{BackupView, SessionDetail, SessionSummary};
use crate::policy::SessionType;
use crate::policy::copy_set_file;
use crate::policy::session::{Properties, Session, SessionCommand};

pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/sessions", get(list))
        .route("/sessions/short", get(short))
        .route(
            "/sessions/{name}",
            get(info).put(create).delete(delete).post(run),
        )
        .route(
            "/sessions/{name}/description",
            axum::routing::post(description),
        )
        .route("/sessions/{name}/availablecommands", get(available))
        .route("/sessions/{name}/options", get(options).put(set_options))
        .route(
            "/sessions/{name}/copysets",
            get(copysets).post(add_copysets),
        )
        .route("/sessions/{name}/copysets/download", get(export_copysets))
        .route(
            "/sessions/{name}/copysets/file",
            axum::routing::post(import_copysets).layer(DefaultBodyLimit::max(MAX_COPY_SET_FILE)),
        )
        .route(
            "/sessions/{name}/{force}/{soft}/copysets",
            axum::routing::delete(remove_copysets),
        )
        .route("/sessions/{name}/pairs/{rolepair}", get(pairs))
        .route("/sessions/{name}/sequences/{rolepair}", get(sequence))
        .route(
            "/sessions/{name}/backups/{role}/{id}",
            get(backup).post(backup_command),
        )
        .route("/sessions/{name}/recoveredbackups", get(recovered))
        .route("/sessions/{name}/recoveredbackups/{id}", get(recovered_one))
}

/// CSM's display name of a session type (`rulesname`).
fn rules_name(kind: SessionType) -> &'static str {
    kind.display_name()
}

/// The role of a copy set's second volume.
fn partner_role(kind: SessionType) -> &'static str {
    copy_set_file::partner_role(kind)
}

/// The largest copy-set file taken: a whole-box session's 32,640 lines of two
/// element ids are about 2 MB.
const MAX_COPY_SET_FILE: usize = 4 * 1024 * 1024;

/// A row of `GET /sessions/short` (rest.md §2.1).
fn short_row(s: &Session) -> Value {
    summary_row(&SessionSummary::of(s))
}

fn summary_row(v: &SessionSummary) -> Value {
    json!({
        "name": v.name,
        "type": v.kind.code(),
        "rulesname": rules_name(v.kind),
        "numcopysets": v.copy_sets,
        "productionhost": v.production,
        "status": v.status,
        "state": v.state,
        "haserror": v.has_error,
        "recoverable": v.recoverable,
        "hyperswapstatus": v.hyperswap,
        "copying": v.copying,
    })
}

/// A row of `GET /sessions`: the short row and the description and progress.
fn overview(v: &SessionSummary, out_of_sync: Option<u64>) -> Value {
    let mut row = summary_row(v);
    row["description"] = json!(v.description);
    let rolepair = format!("H1-{}", partner_role(v.kind));
    row["sessionprogress"] = json!([{
        "rolepair": rolepair,
        "copying": v.copying,
        "outofsynctracks": out_of_sync.unwrap_or(0),
        "percentComplete": if v.copying { Value::Null } else { json!(100) },
    }]);
    row
}

/// `yyyy-MM-dd HH:mm:ss UTC` for ms since the epoch.
fn utc(ms: u64) -> String {
    crate::policy::console::utc_date(ms)
}

fn backup_json(d: &SessionDetail, b: &BackupView) -> Value {
    json!({
        "backupID": b.id,
        "numCopySets": d.summary.copy_sets,
        "valid": true,
        "blockingExpansion": false,
        "timestamp": b.time_ms,
        "backupTime": utc(b.time_ms),
        "retention": b.expires_ms.map_or_else(|| json!("unknown"), |at| json!(utc(at))),
        "recoverable": b.recoverable,
        "recovered": b.recovered,
        "role": "H1",
    })
}

/// `GET /sessions/{name}` (rest.md §2.1).
fn info_json(d: &SessionDetail) -> Value {
    let mut v = overview(&d.summary, d.out_of_sync);
    v["availablecmds"] = json!(d.available);
    v["lasterror"] = json!(d.summary.error);
    v["created"] = json!(d.created_ms);
    v["options"] = options_list(&d.properties);
    if d.kind() == SessionType::Fc {
        v["lastflash"] = json!(d.last_flash_ms);
    } else {
        v["backupInfo"] = json!([{
            "backupSequence": "H1-B1",
            "BackupResults": d.backups.iter().map(|b| backup_json(d, b)).collect::<Vec<_>>(),
        }]);
        v["recoveredbackup"] = json!(d.recovered);
    }
    v
}

async fn list(State(app): State<App>) -> Answer {
    app.read(|e| {
        e.state()
            .sessions
            .values()
            .map(|s| overview(&SessionSummary::of(s), e.copy_progress(&s.name)))
            .collect::<Vec<_>>()
    })
    .await
    .map_or_else(|a| a, |v| Answer::ok(json!(v)))
}

/// `GET /sessions/short`, the call automation polls: its body is kept until the
/// engine's state changes (`GatewayHandle::state_version`), so a poll costs no trip
/// to the engine.
async fn short(State(app): State<App>) -> Response {
    let version = app.gateway.state_version();
    if let Ok(cache) = app.short_cache.lock()
        && let Some((v, body)) = cache.as_ref()
        && *v == version
    {
        return json_bytes(body.clone());
    }
    match app
        .read(|e| {
            e.state()
                .sessions
                .values()
                .map(short_row)
                .collect::<Vec<_>>()
        })
        .await
    {
        Ok(rows) => {
            let body = Bytes::from(serde_json::to_vec(&rows).unwrap_or_default());
            if let Ok(mut cache) = app.short_cache.lock() {
                *cache = Some((version, body.clone()));
            }
            json_bytes(body)
        }
        Err(a) => a.into_response(),
    }
}

fn json_bytes(body: Bytes) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// Reads one session; an unknown name is IWNR1502E (HTTP 404).
async fn with_session<T: Send + 'static>(
    app: &App,
    name: &str,
    f: impl FnOnce(&crate::policy::engine::Engine, &Session) -> T + Send + 'static,
) -> Result<T, Answer> {
    let owned = name.to_owned();
    match app
        .read(move |e| e.state().sessions.get(&owned).map(|s| f(e, s)))
        .await?
    {
        Some(t) => Ok(t),
        None => Err(Answer::unknown_session(app, name)),
    }
}

/// Reads one session's details (no copy sets: REST pages them on their own path).
async fn with_detail<T: Send + 'static>(
    app: &App,
    name: &str,
    f: impl FnOnce(&SessionDetail) -> T + Send + 'static,
) -> Result<T, Answer> {
    with_session(app, name, |e, s| {
        SessionDetail::of(e, &s.name, 0, 0).map(|d| f(&d))
    })
    .await?
    .ok_or_else(|| Answer::unknown_session(app, name))
}

async fn info(State(app): State<App>, Path(name): Path<String>) -> Answer {
    match with_detail(&app, &name, info_json).await {
        Ok(v) => Answer::ok(v),
        Err(a) => a,
    }
}

/// `PUT /sessions/{name}`, form `type` (`FC`, `SGC`, or their display names) and
/// `description`.
async fn create(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    Path(name): Path<String>,
    body: Bytes,
) -> Answer {
    let form = Form::parse(&body);
    // The type's code (`MM`) or CSM's display name (`Metro Mirror Failover/Failback`).
    let kind = match form.get("type") {
        Some(t) => match SessionType::ALL
            .into_iter()
            .find(|k| k.code().eq_ignore_ascii_case(t) || k.display_name().eq_ignore_ascii_case(t))
        {
            Some(k) => k.code(),
            None => {
                return Answer::bad(
                    &app,
                    format!(
                        "session type {t}: zgate runs FC (FlashCopy), SGC (Safeguarded Copy), MM (Metro Mirror Failover/Failback) and HS (Basic HyperSwap)"
                    ),
                );
            }
        },
        None => return Answer::bad(&app, "creating a session needs the form field type"),
    };
    let description = form.get("description").unwrap_or_default();
    let op = Operation::SessionCreate {
        name,
        kind: kind.to_owned(),
        description: description.to_owned(),
    };
    app.op(&user, op).await
}

async fn delete(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    Path(name): Path<String>,
) -> Answer {
    app.op(&user, Operation::SessionDelete { name }).await
}

async fn description(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    Path(name): Path<String>,
    body: Bytes,
) -> Answer {
    let form = Form::parse(&body);
    let Some(text) = form.get("description") else {
        return Answer::bad(&app, "the form field description is missing");
    };
    let op = Operation::SessionDescription {
        name,
        description: text.to_owned(),
    };
    app.op(&user, op).await
}

async fn available(State(app): State<App>, Path(name): Path<String>) -> Answer {
    with_session(&app, &name, |e, s| {
        e.available_commands(&s.name).unwrap_or_default()
    })
    .await
    .map_or_else(|a| a, |v| Answer::ok(json!(v)))
}

/// `POST /sessions/{name}`, form `cmd` (and pyCSM's optional `options`, which zgate's
/// commands do not take).
async fn run(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    Path(name): Path<String>,
    body: Bytes,
) -> Answer {
    let form = Form::parse(&body);
    let Some(cmd) = form.get("cmd") else {
        return Answer::bad(&app, "running a command needs the form field cmd");
    };
    if SessionCommand::parse(cmd, Some(0)).is_some() && SessionCommand::parse(cmd, None).is_none() {
        return Answer::bad(
            &app,
            format!("{cmd} names a backup: POST it to /sessions/{name}/backups/H1/<backup id>"),
        );
    }
    let op = Operation::SessionRun {
        name,
        cmd: cmd.to_owned(),
        backup: None,
    };
    app.op(&user, op).await
}

/// One option of `GET /sessions/{name}/options` (rest.md §2.2).
fn option(kind: &str, description: &str, value: Value, valuetype: &str) -> Value {
    json!({
        "type": kind,
        "description": description,
        "valuetype": valuetype,
        "properties": [{ "name": "value", "value": value }],
    })
}

fn options_list(properties: &Properties) -> Value {
    match properties {
        Properties::Fc(p) => json!([
            option(
                "incremental",
                "Incremental",
                json!(p.incremental),
                "boolean"
            ),
            option("nocopy", "No Copy", json!(p.no_copy), "boolean"),
            option("persistent", "Persistent", json!(p.persistent), "boolean"),
            option(
                "inhibittargetwrites",
                "Inhibit Target Writes",
                json!(p.inhibit_target_writes),
                "boolean"
            ),
            option(
                "minflashinterval",
                "Minimum Time Frame per Flash (minutes)",
                json!(p.min_flash_interval_mins),
                "integer"
            ),
            option(
                "hostsystem",
                "Host system to flash through (empty: the HMC)",
                json!(p.host_system.clone().unwrap_or_default()),
                "string"
            ),
        ]),
        Properties::Sgc(p) => json!([
            option(
                "retention",
                "Recovery backup retention period (minutes; 0: keep)",
                json!(p.policy.retention_ms / 60_000),
                "integer"
            ),
            option(
                "minbackupinterval",
                "Minimum time between backups (minutes)",
                json!(p.policy.min_interval_ms / 60_000),
                "integer"
            ),
            option(
                "allowmanualexpire",
                "Allow backups to be manually expired",
                json!(p.policy.allow_manual_expiry),
                "boolean"
            ),
            option(
                "minbackups",
                "Minimum number of backups retention should always maintain",
                json!(p.policy.min_kept),
                "integer"
            ),
            option(
                "hostsystem",
                "Host system to back up through (empty: the HMC)",
                json!(p.host_system.clone().unwrap_or_default()),
                "string"
            ),
        ]),
        Properties::Mm(p) | Properties::Hs(p) => json!([
            option(
                "hyperswap",
                "Manage H1-H2 with HyperSwap",
                json!(p.hyperswap),
                "boolean"
            ),
            option(
                "hardenedfreeze",
                "Manage H1-H2 with Hardened Freeze",
                json!(p.hardened_freeze),
                "boolean"
            ),
            option(
                "holdioaftersuspend",
                "Hold I/O after Suspend (off: Release I/O after Suspend)",
                json!(p.hold_io_after_suspend),
                "boolean"
            ),
            option(
                "hostsystem",
                "z/OS system whose HyperSwap manages the pairs",
                json!(p.host_system.clone().unwrap_or_default()),
                "string"
            ),
            option(
                "members",
                "Other members of its sysplex (z/OS systems, comma-separated)",
                json!(p.members.join(",")),
                "string"
            ),
        ]),
    }
}

async fn options(State(app): State<App>, Path(name): Path<String>) -> Answer {
    match with_session(&app, &name, |_, s| options_list(&s.properties)).await {
        Ok(v) => Answer::ok(v),
        Err(a) => a,
    }
}

/// An option's value from pyCSM's `{"type", "properties": [{"value": …}]}` (or a
/// bare `"value"`).
fn option_value(o: &Value) -> Option<Value> {
    if let Some(v) = o.get("value") {
        return Some(v.clone());
    }
    match o.get("properties")? {
        Value::Array(props) => props.iter().find_map(|p| p.get("value").cloned()),
        Value::Object(p) => p.get("value").cloned(),
        _ => None,
    }
}

/// Coerces `"true"`, `"30"` and the like (forms carry text) to the type wanted.
fn coerce(v: Value, valuetype: &str) -> Option<Value> {
    match (valuetype, v) {
        ("boolean", Value::Bool(b)) => Some(json!(b)),
        ("boolean", Value::String(s)) => forms::boolean(&s).map(Value::Bool),
        ("integer", Value::Number(n)) => n.as_u64().map(|n| json!(n)),
        ("integer", Value::String(s)) => s.trim().parse::<u64>().ok().map(|n| json!(n)),
        ("string", Value::String(s)) => Some(json!(s)),
        ("string", Value::Null) => Some(json!("")),
        _ => None,
    }
}

/// `PUT /sessions/{name}/options`, form `options`: a JSON list of options by `type`;
/// the ones not named keep their values (rest.md §2.2).
async fn set_options(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    Path(name): Path<String>,
    body: Bytes,
) -> Answer {
    let form = Form::parse(&body);
    let Some(text) = form.get("options") else {
        return Answer::bad(&app, "the form field options is missing");
    };
    let asked: Value = match serde_json::from_str(text).or_else(|_| forms::python_literal(text)) {
        Ok(Value::Array(list)) => Value::Array(list),
        Ok(one @ Value::Object(_)) => json!([one]),
        _ => return Answer::bad(&app, "options is a JSON list of {\"type\", \"properties\"}"),
    };
    // Only the named options travel: the engine applies them to the properties as
    // they stand when it takes the change, and refuses one of the other session
    // type (rest.md §2.2, policy.md §5.6).
    let mut named = OptionsChange::default();
    for o in asked.as_array().into_iter().flatten() {
        let Some(kind_name) = o.get("type").and_then(Value::as_str) else {
            return Answer::bad(&app, "an option without a type");
        };
        let (field, valuetype) = match kind_name.to_ascii_lowercase().as_str() {
            "incremental" => ("incremental", "boolean"),
            "nocopy" => ("nocopy", "boolean"),
            "persistent" => ("persistent", "boolean"),
            "inhibittargetwrites" => ("inhibit_target_writes", "boolean"),
            "minflashinterval" => ("min_flash_interval_mins", "integer"),
            "retention" => ("retention_mins", "integer"),
            "minbackupinterval" => ("min_backup_interval_mins", "integer"),
            "allowmanualexpire" => ("allow_manual_expire", "boolean"),
            "minbackups" => ("min_backups", "integer"),
            "hyperswap" => ("hyperswap", "boolean"),
            "hardenedfreeze" => ("hardened_freeze", "boolean"),
            "holdioaftersuspend" => ("hold_io_after_suspend", "boolean"),
            "members" => ("members", "string"),
            "hostsystem" => ("system", "string"),
            other => {
                return Answer::bad(
                    &app,
                    format!(
                        "{other} is not a session option; GET /sessions/{name}/options lists them"
                    ),
                );
            }
        };
        let Some(value) = option_value(o).and_then(|v| coerce(v, valuetype)) else {
            return Answer::bad(
                &app,
                format!("option {kind_name} needs a {valuetype} value"),
            );
        };
        if let Err(why) = named.set(field, value) {
            return Answer::bad(&app, format!("option {kind_name}: {why}"));
        }
    }
    let op = Operation::SessionOptions {
        name,
        options: named,
    };
    app.op(&user, op).await
}

fn volume_json(id: &crate::policy::inventory::VolumeRef, role: &str) -> Value {
    json!({
        "elementid": id.to_string(),
        "role": role,
        "nickname": "",
        "devNum": format!("{:04X}", id.volume.0),
        "spaceefficenttype": "NO",
        "iszattached": false,
        "isprotected": false,
        "volume_wwn": "",
    })
}

/// `GET /sessions/{name}/copysets[?offset=N&limit=M]`: every copy set, as CSM answers;
/// with `offset`/`limit`, that page (a whole-box session has 32,640).
async fn copysets(
    State(app): State<App>,
    Path(name): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Answer {
    let number = |key: &str| query.get(key).map(|v| v.parse::<usize>());
    let (offset, limit) = match (number("offset"), number("limit")) {
        (Some(Err(_)), _) | (_, Some(Err(_))) => {
            return Answer::bad(&app, "offset and limit are whole numbers");
        }
        (o, l) => (
            o.and_then(Result::ok).unwrap_or(0),
            l.and_then(Result::ok).unwrap_or(usize::MAX),
        ),
    };
    with_session(&app, &name, move |_, s| {
        let role = partner_role(s.kind());
        s.copy_sets
            .iter()
            .skip(offset)
            .take(limit)
            .map(|c| {
                let partner = c.partner.as_ref().map(|p| volume_json(p, role));
                json!({ "volumelist": std::iter::once(volume_json(&c.h1, "H1")).chain(partner).collect::<Vec<_>>() })
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_or_else(|a| a, |v| Answer::ok(json!(v)))
}

/// `GET /sessions/{name}/copysets/download`: the copy sets as a CSV file in CSM's
/// export shape (policy.md §5.7), as pyCSM's `export_copysets` saves it.
async fn export_copysets(State(app): State<App>, Path(name): Path<String>) -> Response {
    let now = app.gateway.clock().unix_millis();
    let file = with_session(&app, &name, move |_, s| {
        let exported = crate::policy::console::utc_text(now);
        copy_set_file::write(&s.name, s.kind(), &exported, &s.copy_sets)
    })
    .await;
    match file {
        Ok(text) => (
            [
                (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    axum::http::header::CONTENT_DISPOSITION,
                    "attachment; filename=\"copysets.csv\"",
                ),
            ],
            text,
        )
            .into_response(),
        Err(answer) => answer.into_response(),
    }
}

/// `POST /sessions/{name}/copysets/file`, body a CSV file (policy.md §5.7): every copy
/// set in it is added by one `Add Copy Sets`, checked in one pass, all or none.
async fn import_copysets(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    Path(name): Path<String>,
    body: Bytes,
) -> Answer {
    let Ok(text) = std::str::from_utf8(&body) else {
        return Answer::bad(&app, "the copy-set file is not UTF-8 text");
    };
    let sets = match copy_set_file::read(text, crate::policy::engine::MAX_COPY_SETS) {
        Ok(sets) => sets,
        Err(e) => return Answer::bad(&app, format!("the copy-set file, {e}")),
    };
    let op = Operation::CopySetsAddRead {
        name,
        copy_sets: sets,
    };
    app.op(&user, op).await
}

/// `POST /sessions/{name}/copysets`, form `copysets` (a list of `[H1, T1|R1|H2]`
/// volume lists, or `[H1]`: an SGC copy set with no recovery volume) and `roleOrder`
/// (the roles of each list's volumes; default H1 first).
async fn add_copysets(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    Path(name): Path<String>,
    body: Bytes,
) -> Answer {
    let form = Form::parse(&body);
    let Some(text) = form.get("copysets") else {
        return Answer::bad(&app, "the form field copysets is missing");
    };
    let sets = match forms::string_lists(text) {
        Ok(s) => s,
        Err(e) => return Answer::bad(&app, format!("copysets: {e}")),
    };
    let order: Vec<String> = match form.get("roleOrder") {
        Some(t) => match forms::string_lists(t) {
            Ok(lists) => lists.into_iter().flatten().collect(),
            Err(e) => return Answer::bad(&app, format!("roleOrder: {e}")),
        },
        None => Vec::new(),
    };
    let h1_at = order
        .iter()
        .position(|r| r.eq_ignore_ascii_case("H1"))
        .unwrap_or(0);
    let mut pairs = Vec::new();
    for set in sets {
        match set.as_slice() {
            [h1] => pairs.push(vec![h1.clone()]),
            [_, _] if h1_at <= 1 => {
                pairs.push(vec![set[h1_at].clone(), set[1 - h1_at].clone()]);
            }
            _ => {
                return Answer::bad(
                    &app,
                    format!(
                        "a copy set here is H1 and its T1, R1 or H2 (or an SGC H1 alone); got {}",
                        set.join(", ")
                    ),
                );
            }
        }
    }
    let op = Operation::CopySetsAdd {
        name,
        copysets: pairs,
    };
    app.op(&user, op).await
}

/// `DELETE /sessions/{name}/{force}/{soft}/copysets`, form `copysets`: copy sets by
/// their volumes (the H1 of each names it).
async fn remove_copysets(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    Path((name, force, soft)): Path<(String, String, String)>,
    body: Bytes,
) -> Answer {
    if forms::boolean(&force).is_none() || forms::boolean(&soft).is_none() {
        return Answer::bad(&app, "force and soft are True or False");
    }
    let form = Form::parse(&body);
    let Some(text) = form.get("copysets") else {
        return Answer::bad(&app, "the form field copysets is missing");
    };
    let h1: Vec<String> = match forms::string_lists(text) {
        Ok(sets) => sets
            .into_iter()
            .filter_map(|s| s.into_iter().next())
            .collect(),
        Err(e) => return Answer::bad(&app, format!("copysets: {e}")),
    };
    app.op(&user, Operation::CopySetsRemove { name, h1 }).await
}

/// The role pairs a session has.
fn role_pairs(kind: SessionType) -> &'static [&'static str] {
    match kind {
        SessionType::Fc => &["H1-T1"],
        SessionType::Sgc => &["H1-B1", "H1-R1"],
        SessionType::Mm | SessionType::Hs => &["H1-H2"],
    }
}

async fn pairs(State(app): State<App>, Path((name, rolepair)): Path<(String, String)>) -> Answer {
    let rp = rolepair.to_ascii_uppercase();
    match with_session(&app, &name, move |_, s| {
        if !role_pairs(s.kind()).contains(&rp.as_str()) {
            return Err(rp);
        }
        let rows: Vec<Value> = s
            .copy_sets
            .iter()
            .map(|c| {
                let target = if rp == "H1-B1" {
                    json!(null)
                } else {
                    json!(c.partner.as_ref().map(ToString::to_string))
                };
                json!({
                    "rolepair": rp,
                    "sourcevolume": c.h1.to_string(),
                    "targetvolume": target,
                    "copying": s.copying,
                    "recoverable": s.has_recoverable(),
                    "state": s.state.name(),
                    "backups": if rp == "H1-B1" { json!(s.backups().len()) } else { Value::Null },
                })
            })
            .collect();
        Ok(rows)
    })
    .await
    {
        Ok(Ok(rows)) => Answer::ok(json!(rows)),
        Ok(Err(rp)) => Answer::bad(&app, format!("session {name} has no role pair {rp}")),
        Err(a) => a,
    }
}

async fn sequence(
    State(app): State<App>,
    Path((name, rolepair)): Path<(String, String)>,
) -> Answer {
    let rp = rolepair.to_ascii_uppercase();
    match with_session(&app, &name, move |_, s| {
        role_pairs(s.kind()).contains(&rp.as_str()).then(|| {
            json!({
                "seqname": rp,
                "numpairs": s.copy_sets.len(),
                "copying": s.copying,
                "recoverable": s.has_recoverable(),
                "state": s.state.name(),
                "status": s.status.name(),
            })
        })
    })
    .await
    {
        Ok(Some(v)) => Answer::ok(v),
        Ok(None) => Answer::bad(&app, format!("session {name} has no role pair {rolepair}")),
        Err(a) => a,
    }
}

/// Backups live on H1 (research §10.4); the id is the box's.
fn backup_path(app: &App, role: &str, id: &str) -> Result<u64, Answer> {
    if !role.eq_ignore_ascii_case("H1") {
        return Err(Answer::bad(
            app,
            format!("backups are on role H1, not {role}"),
        ));
    }
    id.parse()
        .map_err(|_| Answer::bad(app, format!("{id} is not a backup id")))
}

async fn backup(
    State(app): State<App>,
    Path((name, role, id)): Path<(String, String, String)>,
) -> Answer {
    let id = match backup_path(&app, &role, &id) {
        Ok(id) => id,
        Err(a) => return a,
    };
    match with_detail(&app, &name, move |d| {
        d.backups
            .iter()
            .find(|b| b.id == id)
            .map(|b| backup_json(d, b))
    })
    .await
    {
        Ok(Some(v)) => Answer::ok(v),
        Ok(None) => Answer::bad(&app, format!("session {name} has no backup {id}")),
        Err(a) => a,
    }
}

/// `POST /sessions/{name}/backups/H1/{id}`, form `cmd` (`Recover Backup`,
/// `Expire Backup`, `Restore Backup to Production`).
async fn backup_command(
    State(app): State<App>,
    Extension(User(user)): Extension<User>,
    Path((name, role, id)): Path<(String, String, String)>,
    body: Bytes,
) -> Answer {
    let id = match backup_path(&app, &role, &id) {
        Ok(id) => id,
        Err(a) => return a,
    };
    let form = Form::parse(&body);
    let Some(cmd) = form.get("cmd") else {
        return Answer::bad(&app, "a backup command needs the form field cmd");
    };
    let op = Operation::SessionRun {
        name,
        cmd: cmd.to_owned(),
        backup: Some(id),
    };
    app.op(&user, op).await
}

async fn recovered(State(app): State<App>, Path(name): Path<String>) -> Answer {
    with_detail(&app, &name, |d| {
        d.backups
            .iter()
            .filter(|b| b.recovered)
            .map(|b| backup_json(d, b))
            .collect::<Vec<_>>()
    })
    .await
    .map_or_else(|a| a, |v| Answer::ok(json!(v)))
}

async fn recovered_one(State(app): State<App>, Path((name, id)): Path<(String, String)>) -> Answer {
    let Ok(id) = id.parse::<u64>() else {
        return Answer::bad(&app, format!("{id} is not a backup id"));
    };
    match with_detail(&app, &name, move |d| {
        d.backups
            .iter()
            .find(|b| b.id == id && b.recovered)
            .map(|b| backup_json(d, b))
    })
    .await
    {
        Ok(Some(v)) => Answer::ok(v),
        Ok(None) => Answer::bad(&app, format!("backup {id} of {name} is not recovered")),
        Err(a) => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::session::SessionStatus;

    /// The two doors list a session from one summary: the fields both show agree,
    /// whatever the session's state (the CSM protocol's `session.list` row and
    /// REST's `/sessions/short` row).
    #[test]
    fn both_doors_list_a_session_alike() {
        let mut s = Session::new("S1".into(), SessionType::Sgc, "d".into(), 0);
        for (status, error) in [
            (SessionStatus::Inactive, None),
            (SessionStatus::Severe, None),
            (SessionStatus::Normal, Some("the box refused".to_owned())),
        ] {
            s.status = status;
            s.last_error = error;
            let csm = crate::gateway::ops::session_json(&s);
            let rest = short_row(&s);
            for field in [
                "name",
                "type",
                "state",
                "status",
                "numcopysets",
                "copying",
                "recoverable",
                "haserror",
            ] {
                assert_eq!(csm[field], rest[field], "{field} for {}", status.name());
            }
            assert_eq!(
                rest["haserror"],
                json!(status == SessionStatus::Severe || s.last_error.is_some())
            );
        }
    }

    /// A session's page and the task list are each one computation for both doors:
    /// on an SGC session with backups (one recoverable, one recovered) and a task
    /// whose run is held for approval, what the CSM protocol's `session.get` and
    /// `task.list` say agrees with REST's `/sessions/{name}` and scheduled tasks.
    #[test]
    fn both_doors_show_a_sessions_page_and_its_tasks_alike() {
        use crate::gateway::views::TaskView;
        use crate::policy::engine::{Command, Engine, EngineConfig, Held, State};
        use crate::policy::retention::Backup;
        use crate::policy::schedule::{Schedule, Task};
        use crate::policy::session::SessionCommand;

        let mut state = State::new(60_000);
        let mut s = Session::new("SGC1".into(), SessionType::Sgc, "d".into(), 5);
        s.runtime = crate::policy::session::Runtime::Sgc(crate::policy::session::SgcRuntime {
            backups: [100, 200, 300]
                .map(|id| Backup {
                    id,
                    time_ms: id * 1_000,
                })
                .to_vec(),
            backups_before_copy_sets: 100,
            recovered: Some(200),
        });
        s.state = crate::policy::session::SessionState::Protected;
        state.sessions.insert(s.name.clone(), s);
        for id in [1, 2] {
            state.tasks.insert(
                id,
                Task {
                    id,
                    name: format!("T{id}"),
                    session: "SGC1".into(),
                    command: SessionCommand::Backup,
                    schedule: Schedule::Once { at_ms: None },
                    enabled: true,
                    next_run_ms: Some(9),
                    last_run_ms: None,
                    last_result: None,
                    owner: "admin".into(),
                    description: String::new(),
                },
            );
        }
        state.held.insert(
            7,
            Held {
                command: Command::RunTask { id: 2 },
            },
        );
        let engine = Engine::from_state(state, EngineConfig::default());

        let detail = SessionDetail::of(&engine, "SGC1", 0, 10).expect("the session");
        let csm = crate::gateway::ops::session_detail_json(&detail);
        let rest = info_json(&detail);
        for field in [
            "name",
            "state",
            "status",
            "recoverable",
            "haserror",
            "copying",
        ] {
            assert_eq!(csm[field], rest[field], "{field}");
        }
        assert_eq!(csm["availablecommands"], rest["availablecmds"]);
        assert_eq!(csm["recovered"], rest["recoveredbackup"]);
        let rest_backups = &rest["backupInfo"][0]["BackupResults"];
        for (i, id) in [100, 200, 300].into_iter().enumerate() {
            assert_eq!(csm["backups"][i]["backupID"], json!(id));
            assert_eq!(rest_backups[i]["backupID"], json!(id));
            assert_eq!(
                csm["backups"][i]["recoverable"], rest_backups[i]["recoverable"],
                "backup {id}"
            );
        }
        // 100 predates the copy sets' last change and 300 is the newest: only 200
        // can be recovered.
        let recoverable: Vec<_> = (0..3)
            .map(|i| csm["backups"][i]["recoverable"].clone())
            .collect();
        assert_eq!(recoverable, [json!(false), json!(true), json!(false)]);
        assert_eq!(rest_backups[1]["recovered"], json!(true));

        let tasks = TaskView::all(&engine);
        assert_eq!(
            tasks.iter().map(|t| t.pending_approval).collect::<Vec<_>>(),
            [false, true]
        );
        for t in &tasks {
            let csm = crate::gateway::ops::task_json(t);
            let rest = super::super::tasks::task_json(t);
            for field in [
                "id",
                "name",
                "enabled",
                "nextRun",
                "lastRan",
                "owner",
                "pendingApproval",
            ] {
                assert_eq!(csm[field], rest[field], "task {} {field}", t.task.id);
            }
            assert_eq!(csm["command"], rest["actions"][0]["command"]);
        }
    }
}
