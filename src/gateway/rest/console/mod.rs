//! The web console (`protocol-specs/console.md`): CSM's panels in a browser, served
//! on the REST listener under `/console` (`/` sends a browser there), on the same
//! engine and through the same typed operations as the other doors, so roles,
//! grants and dual control hold whatever is clicked.
//!
//! Security as a browser needs it (console.md §2): a session cookie `Secure;
//! HttpOnly; SameSite=Strict`, a CSRF token in every form that changes anything
//! (checked before the engine sees the change), a Content-Security-Policy with no
//! inline script, `X-Frame-Options: DENY`, `no-store`; every value from the engine
//! is escaped by the template (maud), never rendered raw. The password check is
//! the REST token's (`super::sign_in`): the same argon2id pool and the same
//! throttling per address.

mod pages;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::forms::Form;
use super::{App, Peer, SignInRefused};
use crate::gateway::csm::Stamp;
use crate::gateway::ops::Operation;

/// The console's path.
pub const ROOT: &str = "/console";
/// The signed-in session's cookie.
const COOKIE: &str = "zgate_console";
/// The sign-in form's cookie (double submit: a forged sign-in cannot carry it).
const LOGIN_COOKIE: &str = "zgate_login";
/// Console sessions alive at once; the one nearest its end goes first.
const MAX_SESSIONS: usize = 1_000;
/// Console messages a page shows.
const MESSAGES_SHOWN: usize = 200;

/// Signed-in browsers: cookie → the user as signed in, the end, the CSRF token.
pub(crate) struct Sessions {
    lifetime: Duration,
    map: Mutex<HashMap<String, Signed>>,
}

/// One signed-in browser.
#[derive(Clone)]
struct Signed {
    user: Stamp,
    expires: tokio::time::Instant,
    csrf: String,
}

/// 24 random bytes as hex: cookies and CSRF tokens. `None` without randomness.
fn random_token() -> Option<String> {
    let mut raw = [0u8; 24];
    getrandom::getrandom(&mut raw).ok()?;
    Some(hex::encode(raw))
}

/// Equal in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Sessions {
    /// Sessions that last `lifetime` (a REST token's).
    pub(crate) fn new(lifetime: Duration) -> Sessions {
        Sessions {
            lifetime,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn open(&self, user: Stamp, now: tokio::time::Instant) -> Option<(String, Signed)> {
        let cookie = random_token()?;
        let signed = Signed {
            user,
            expires: now + self.lifetime,
            csrf: random_token()?,
        };
        let mut map = self.map.lock().ok()?;
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.expires > now);
        }
        if map.len() >= MAX_SESSIONS
            && let Some(first) = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(c, _)| c.clone())
        {
            map.remove(&first);
        }
        map.insert(cookie.clone(), signed.clone());
        Some((cookie, signed))
    }

    fn get(&self, cookie: &str, now: tokio::time::Instant) -> Option<Signed> {
        let mut map = self.map.lock().ok()?;
        match map.get(cookie) {
            Some(s) if s.expires > now => Some(s.clone()),
            Some(_) => {
                map.remove(cookie);
                None
            }
            None => None,
        }
    }

    fn close(&self, cookie: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(cookie);
        }
    }
}

/// The console's routes, full paths (on the REST listener, beside `/CSM/web`).
pub(super) fn routes(app: &App) -> Router<App> {
    let r = |path: &str| format!("{ROOT}{path}");
    Router::new()
        .route(ROOT, get(sessions_page))
        .route(&r("/"), get(sessions_page))
        .route(&r("/login"), get(login_page).post(login))
        .route(&r("/logout"), post(logout))
        .route(&r("/new"), get(new_page).post(create))
        .route(&r("/sessions/{name}"), get(session_page))
        .route(&r("/sessions/{name}/run"), post(run_command))
        .route(&r("/sessions/{name}/copysets"), post(add_copy_sets))
        .route(&r("/sessions/{name}/options"), post(set_options))
        .route(&r("/requests"), get(requests_page))
        .route(&r("/requests/{id}/{answer}"), post(answer_request))
        .route(&r("/mode"), post(request_mode))
        .route(&r("/messages"), get(messages_page))
        .route(&r("/events"), get(events))
        .route(&r("/hardware"), get(hardware_page))
        .route(&r("/hardware/storage"), post(add_storage))
        .route(&r("/hardware/host"), post(add_host))
        .route(&r("/hardware/volumes"), post(read_volumes))
        .route(&r("/tasks"), get(tasks_page).post(create_task))
        .route(&r("/tasks/{id}/{action}"), post(task_action))
        .route(&r("/admin"), get(admin_page))
        .route(&r("/admin/users"), post(create_user))
        .route(&r("/admin/access"), get(access_page).post(set_access))
        .route(&r("/static/console.css"), get(css))
        .route(&r("/static/console.js"), get(js))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            security_headers,
        ))
}

/// `GET /`: a browser goes to the console.
pub(super) async fn to_console() -> Redirect {
    Redirect::to(&format!("{ROOT}/"))
}

/// console.md §2: the headers of every console response.
async fn security_headers(State(_app): State<App>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    let set = |h: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    response
}

/// The cookie `name` of a request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let age = max_age
        .map(|s| format!("; Max-Age={s}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={ROOT}; Secure; HttpOnly; SameSite=Strict{age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Who is signed in, from the session cookie; the user must still stand as at
/// sign-in (policy.md §1.4), or the session is over.
fn signed_in(app: &App, headers: &HeaderMap) -> Option<(String, Signed)> {
    let cookie = cookie(headers, COOKIE)?;
    let signed = app.console.get(cookie, app.clock.tokio_now())?;
    if !signed.user.is_current(&app.gateway.users()) {
        app.console.close(cookie);
        return None;
    }
    Some((cookie.to_owned(), signed))
}

fn to_login() -> Response {
    Redirect::to(&format!("{ROOT}/login")).into_response()
}

/// Why a form that changes something is refused before the engine.
#[derive(Debug, Clone, Copy)]
enum FormRefused {
    /// No live console session: sign in.
    NotSignedIn,
    /// The CSRF token is missing or another session's.
    Forged,
}

impl IntoResponse for FormRefused {
    fn into_response(self) -> Response {
        match self {
            FormRefused::NotSignedIn => to_login(),
            FormRefused::Forged => (
                StatusCode::FORBIDDEN,
                "the form's CSRF token is missing or not this session's: reload the page",
            )
                .into_response(),
        }
    }
}

/// A form that changes something: from a signed-in browser, with its CSRF token.
fn checked_form(
    app: &App,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Signed, Form), FormRefused> {
    let Some((_, signed)) = signed_in(app, headers) else {
        return Err(FormRefused::NotSignedIn);
    };
    let form = Form::parse(body);
    match form.get("csrf") {
        Some(token) if same(token, &signed.csrf) => Ok((signed, form)),
        _ => {
            tracing::warn!(user = %signed.user.name, "console: a form without this session's CSRF token refused");
            Err(FormRefused::Forged)
        }
    }
}

/// The result of an operation as the console shows it: the CSM message.
#[derive(Debug, Clone)]
pub(super) struct Outcome {
    /// The message id (`IWNR1026I`).
    pub(super) id: String,
    /// Its translated text.
    pub(super) text: String,
}

impl Outcome {
    fn of(v: &Value) -> Outcome {
        Outcome {
            id: v["msg"].as_str().unwrap_or_default().to_owned(),
            text: v["msgTranslated"].as_str().unwrap_or_default().to_owned(),
        }
    }
}

/// Runs `op` (a JSON operation, csm.md §3.1) as `user`: the REST door's path, so the
/// engine checks role, grant and dual control and a command's end is waited for.
async fn run_op(app: &App, user: &str, op: Value) -> Result<Value, Outcome> {
    let op: Operation = serde_json::from_value(op).map_err(|e| Outcome {
        id: "IWNR8012E".into(),
        text: format!("IWNR8012E {e}"),
    })?;
    let answer = app.op(user, op).await;
    let v = answer.value().clone();
    if v["msg"].as_str().is_some_and(|m| m.ends_with('E')) {
        Err(Outcome::of(&v))
    } else {
        Ok(v)
    }
}

/// A read (`session.list`, …): its result, or the refusal's message.
async fn read(app: &App, user: &str, op: Value) -> Result<Value, Outcome> {
    let v = run_op(app, user, op).await?;
    Ok(v.get("result").cloned().unwrap_or(v))
}

/// What every page's frame shows: the user, their role, the dual-control mode.
async fn frame(app: &App, signed: &Signed) -> pages::Frame {
    let name = signed.user.name.clone();
    let (role, mode) = app
        .gateway
        .read(move |e| {
            (
                e.state()
                    .users
                    .get(&name)
                    .map(|u| u.role.name().to_owned())
                    .unwrap_or_default(),
                e.state().dual.mode(),
            )
        })
        .await
        .unwrap_or_default();
    pages::Frame {
        user: signed.user.name.clone(),
        role,
        mode,
        csrf: signed.csrf.clone(),
    }
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("console.css"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("console.js"),
    )
        .into_response()
}

/// `GET /console/login`: the form, with a fresh double-submit token.
async fn login_page(State(app): State<App>, headers: HeaderMap) -> Response {
    if signed_in(&app, &headers).is_some() {
        return Redirect::to(&format!("{ROOT}/")).into_response();
    }
    login_form(None)
}

fn login_form(error: Option<&str>) -> Response {
    let Some(token) = random_token() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "no randomness").into_response();
    };
    let mut response = pages::login(&token, error).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, &token, Some(600)),
    );
    response
}

/// `POST /console/login`: the same argon2id check and throttling as a REST token.
async fn login(
    State(app): State<App>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let double = cookie(&headers, LOGIN_COOKIE);
    match (double, form.get("login")) {
        (Some(a), Some(b)) if same(a, b) => {}
        _ => return login_form(Some("The sign-in form expired; sign in again.")),
    }
    let (Some(user), Some(password)) = (form.get("user"), form.get("password")) else {
        return login_form(Some("Enter a user name and a password."));
    };
    let ip = peer.map(|p| p.0.0);
    match super::sign_in(&app, ip, user, password).await {
        Ok(stamp) => {
            let name = stamp.name.clone();
            let Some((cookie, _)) = app.console.open(stamp, app.clock.tokio_now()) else {
                return (StatusCode::INTERNAL_SERVER_ERROR, "no randomness").into_response();
            };
            tracing::info!(user = %name, "console: signed in");
            let mut response = Redirect::to(&format!("{ROOT}/")).into_response();
            let h = response.headers_mut();
            h.append(header::SET_COOKIE, set_cookie(COOKIE, &cookie, None));
            h.append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, "", Some(0)));
            response
        }
        Err(SignInRefused::Credentials) => {
            login_form(Some("The user name or password is not valid."))
        }
        Err(_) => login_form(Some("The server cannot check passwords now.")),
    }
}

/// `POST /console/logout`.
async fn logout(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = checked_form(&app, &headers, &body) {
        return r.into_response();
    }
    if let Some(c) = cookie(&headers, COOKIE) {
        app.console.close(c);
    }
    let mut response = to_login();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie(COOKIE, "", Some(0)));
    response
}

/// `GET /console/`: the sessions.
async fn sessions_page(State(app): State<App>, headers: HeaderMap) -> Response {
    let Some((_, signed)) = signed_in(&app, &headers) else {
        return to_login();
    };
    let frame = frame(&app, &signed).await;
    let rows = read(&app, &signed.user.name, json!({"op": "session.list"})).await;
    pages::sessions(&frame, rows).into_response()
}

/// `GET /console/new`: create a session.
async fn new_page(State(app): State<App>, headers: HeaderMap) -> Response {
    let Some((_, signed)) = signed_in(&app, &headers) else {
        return to_login();
    };
    let volumes = known_volumes(&app).await;
    pages::new_session(&frame(&app, &signed).await, None, &volumes).into_response()
}

/// `POST /console/new`.
async fn create(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let (signed, form) = match checked_form(&app, &headers, &body) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let name = form.get("name").unwrap_or_default().to_owned();
    let op = json!({
        "op": "session.create",
        "name": name,
        "type": form.get("type").unwrap_or_default(),
        "description": form.get("description").unwrap_or_default(),
    });
    match run_op(&app, &signed.user.name, op).await {
        Ok(_) => {
            Redirect::to(&format!("{ROOT}/sessions/{}", pages::path_segment(&name))).into_response()
        }
        Err(refused) => {
            let volumes = known_volumes(&app).await;
            pages::new_session(&frame(&app, &signed).await, Some(&refused), &volumes)
                .into_response()
        }
    }
}

/// The session page, with `result` (the last action's message) on top.
async fn show_session(app: &App, signed: &Signed, name: &str, result: Option<Outcome>) -> Response {
    let frame = frame(app, signed).await;
    let user = signed.user.name.clone();
    let view = read(app, &user, json!({"op": "session.get", "name": name})).await;
    let session = name.to_owned();
    // What this user may run there: nothing else is offered (the engine refuses it
    // anyway).
    let facts = app
        .gateway
        .read(move |e| {
            let allowed: Vec<String> = e
                .available_commands(&session)
                .unwrap_or_default()
                .into_iter()
                .filter(|c| {
                    let principal = e.principal(&user);
                    crate::policy::access::SessionAction::parse(c)
                        .is_some_and(|a| principal.is_some_and(|p| p.may_run(&session, a).is_ok()))
                })
                .map(str::to_owned)
                .collect();
            let may_change = e.principal(&user).is_some_and(|p| {
                p.may_run(
                    &session,
                    crate::policy::access::SessionAction::ModifyProperties,
                )
                .is_ok()
            });
            let may_add = e.principal(&user).is_some_and(|p| {
                p.may_run(&session, crate::policy::access::SessionAction::AddCopySets)
                    .is_ok()
            });
            let total: u64 = e
                .state()
                .sessions
                .get(&session)
                .map(|s| {
                    s.copy_sets
                        .iter()
                        .filter_map(|c| {
                            e.state()
                                .inventory
                                .get(&c.h1.serial)
                                .and_then(|i| i.get(&c.h1.volume))
                                .map(|f| u64::from(f.kind.tracks()))
                        })
                        .sum()
                })
                .unwrap_or(0);
            pages::Allowed {
                commands: allowed,
                modify: may_change,
                add_copy_sets: may_add,
                total_tracks: total,
            }
        })
        .await
        .unwrap_or_default();
    let volumes = known_volumes(app).await;
    pages::session(&frame, name, view, &facts, result.as_ref(), &volumes).into_response()
}

/// `GET /console/sessions/{name}`.
async fn session_page(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some((_, signed)) = signed_in(&app, &headers) else {
        return to_login();
    };
    show_session(&app, &signed, &name, None).await
}

/// `POST /console/sessions/{name}/run`: a command; the page shows its message.
async fn run_command(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (signed, form) = match checked_form(&app, &headers, &body) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let mut op =
        json!({"op": "session.run", "name": name, "cmd": form.get("cmd").unwrap_or_default()});
    if let Some(backup) = form.get("backup").and_then(|b| b.parse::<u64>().ok()) {
        op["backup"] = json!(backup);
    }
    let result = match run_op(&app, &signed.user.name, op).await {
        Ok(v) => Outcome::of(&v),
        Err(refused) => refused,
    };
    show_session(&app, &signed, &name, Some(result)).await
}

/// `POST /console/sessions/{name}/copysets`: lines of `H1,PARTNER` volume ids.
async fn add_copy_sets(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (signed, form) = match checked_form(&app, &headers, &body) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let sets: Vec<Vec<String>> = form
        .get("copysets")
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(|v| v.trim().to_owned()).collect())
        .collect();
    let op = json!({"op": "session.copysets.add", "name": name, "copysets": sets});
    let result = match run_op(&app, &signed.user.name, op).await {
        Ok(v) => Outcome::of(&v),
        Err(refused) => refused,
    };
    show_session(&app, &signed, &name, Some(result)).await
}

/// `POST /console/sessions/{name}/options`: the properties the form names.
async fn set_options(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (signed, form) = match checked_form(&app, &headers, &body) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let mut options = serde_json::Map::new();
    for (field, kind) in pages::OPTION_FIELDS {
        let Some(raw) = form.get(field) else {
            continue;
        };
        let value = match *kind {
            "boolean" => json!(raw == "on" || raw == "true"),
            "integer" => match raw.trim().parse::<u64>() {
                Ok(n) => json!(n),
                Err(_) => {
                    let refused = Outcome {
                        id: "IWNR8012E".into(),
                        text: format!("IWNR8012E {field} needs a whole number, not \"{raw}\""),
                    };
                    return show_session(&app, &signed, &name, Some(refused)).await;
                }
            },
            _ => json!(raw),
        };
        options.insert((*field).to_owned(), value);
    }
    // Unticked boxes are absent from a form: each boolean the form showed is set.
    for field in form.get("booleans").unwrap_or_default().split(',') {
        if !field.is_empty()
            && pages::OPTION_FIELDS
                .iter()
                .any(|(f, k)| *f == field && *k == "boolean")
        {
            options.entry(field.to_owned()).or_insert(json!(false));
        }
    }
    let op = json!({"op": "session.options", "name": name, "options": options});
    let result = match run_op(&app, &signed.user.name, op).await {
        Ok(v) => Outcome::of(&v),
        Err(refused) => refused,
    };
    show_session(&app, &signed, &name, Some(result)).await
}

/// `GET /console/requests`: the mode on top, the requests this user can act on.
async fn requests_page(State(app): State<App>, headers: HeaderMap) -> Response {
    let Some((_, signed)) = signed_in(&app, &headers) else {
        return to_login();
    };
    let frame = frame(&app, &signed).await;
    let rows = read(
        &app,
        &signed.user.name,
        json!({"op": "dualcontrol.requests"}),
    )
    .await;
    pages::requests(&frame, rows, None).into_response()
}

/// `POST /console/requests/{id}/{approve|reject|cancel}`.
async fn answer_request(
    State(app): State<App>,
    Path((id, answer)): Path<(u64, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (signed, form) = match checked_form(&app, &headers, &body) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let op = match answer.as_str() {
        "approve" => json!({"op": "dualcontrol.approve", "id": id}),
        "reject" => {
            json!({"op": "dualcontrol.reject", "id": id, "comment": form.get("comment").unwrap_or_default()})
        }
        "cancel" => json!({"op": "dualcontrol.cancel", "id": id}),
        _ => return (StatusCode::NOT_FOUND, "approve, reject or cancel").into_response(),
    };
    let result = match run_op(&app, &signed.user.name, op).await {
        Ok(v) => Outcome::of(&v),
        Err(refused) => refused,
    };
    let frame = frame(&app, &signed).await;
    let rows = read(
        &app,
        &signed.user.name,
        json!({"op": "dualcontrol.requests"}),
    )
    .await;
    pages::requests(&frame, rows, Some(&result)).into_response()
}

/// `POST /console/mode`: the request to change the dual-control mode.
async fn request_mode(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let (signed, form) = match checked_form(&app, &headers, &body) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let op = json!({"op": "dualcontrol.set", "mode": form.get("mode").unwrap_or_default()});
    let result = match run_op(&app, &signed.user.name, op).await {
        Ok(v) => Outcome::of(&v),
        Err(refused) => refused,
    };
    let frame = frame(&app, &signed).await;
    let rows = read(
        &app,
        &signed.user.name,
        json!({"op": "dualcontrol.requests"}),
    )
    .await;
    pages::requests(&frame, rows, Some(&result)).into_response()
}

/// Filters of the console page.
#[derive(Debug, Default, serde::Deserialize)]
struct MessageFilter {
    #[serde(default)]
    session: Option<String>,
    /// `I`, `W` or `E`: that severity and worse.
    #[serde(default)]
    severity: Option<String>,
}

impl MessageFilter {
    fn keeps(&self, m: &crate::policy::console::ConsoleMessage) -> bool {
        use crate::policy::console::Severity;
        let rank = |s: Severity| match s {
            Severity::Info => 0,
            Severity::Warning => 1,
            Severity::Error => 2,
        };
        let floor = match self.severity.as_deref() {
            Some("E") => 2,
            Some("W") => 1,
            _ => 0,
        };
        rank(m.id.severity) >= floor
            && self
                .session
                .as_deref()
                .filter(|s| !s.is_empty())
                .is_none_or(|s| m.session.as_deref() == Some(s))
    }
}

/// `GET /console/messages`: newest first, then live.
async fn messages_page(
    State(app): State<App>,
    Query(filter): Query<MessageFilter>,
    headers: HeaderMap,
) -> Response {
    let Some((_, signed)) = signed_in(&app, &headers) else {
        return to_login();
    };
    let frame = frame(&app, &signed).await;
    // Newest first.
    let recent: Vec<_> = app
        .gateway
        .recent_console(usize::MAX, None)
        .into_iter()
        .filter(|m| filter.keeps(m))
        .take(MESSAGES_SHOWN)
        .collect();
    let lines: Vec<String> = recent
        .iter()
        .map(|m| {
            crate::gateway::csm::console_json(m)["msgTranslated"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let severities: Vec<char> = recent
        .iter()
        .map(|m| m.id.to_string().chars().last().unwrap_or('I'))
        .collect();
    pages::messages(
        &frame,
        filter.session.as_deref().unwrap_or_default(),
        filter.severity.as_deref().unwrap_or_default(),
        &lines,
        &severities,
    )
    .into_response()
}

/// `GET /console/events`: the console as server-sent events, filtered as the page.
async fn events(
    State(app): State<App>,
    Query(filter): Query<MessageFilter>,
    headers: HeaderMap,
) -> Response {
    if signed_in(&app, &headers).is_none() {
        return (StatusCode::UNAUTHORIZED, "sign in first").into_response();
    }
    let rx = app.gateway.console();
    let stream = futures_util::stream::unfold((rx, filter), |(mut rx, filter)| async move {
        loop {
            match rx.recv().await {
                Ok(m) if filter.keeps(&m) => {
                    let data = crate::gateway::csm::console_text(&m);
                    let event = axum::response::sse::Event::default().data(data);
                    return Some((Ok::<_, std::convert::Infallible>(event), (rx, filter)));
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return None,
            }
        }
    });
    axum::response::sse::Sse::new(stream)
        .keep_alive(axum::response::sse::KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// `GET /console/hardware`: storage systems and host connections with their links.
async fn hardware_page(State(app): State<App>, headers: HeaderMap) -> Response {
    let Some((_, signed)) = signed_in(&app, &headers) else {
        return to_login();
    };
    let frame = frame(&app, &signed).await;
    drop(frame);
    show_hardware(&app, &signed, None).await
}

/// Runs `op` and shows `page` with its outcome: the forms of the panels below.
async fn act(app: &App, signed: &Signed, op: Value) -> Outcome {
    match run_op(app, &signed.user.name, op).await {
        Ok(v) => Outcome::of(&v),
        Err(refused) => refused,
    }
}

async fn show_hardware(app: &App, signed: &Signed, outcome: Option<Outcome>) -> Response {
    let frame = frame(app, signed).await;
    let storage = read(app, &signed.user.name, json!({"op": "storage.list"})).await;
    let hosts = read(app, &signed.user.name, json!({"op": "host.list"})).await;
    pages::hardware(&frame, storage, hosts, outcome.as_ref()).into_response()
}

/// `POST /console/hardware/storage`: add a DS8000 (serial, HMC address, user,
/// password; the password is sealed before the engine sees it).
async fn add_storage(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let (signed, form) = match checked_form(&app, &headers, &body) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let op = json!({
        "op": "storage.add",
        "serial": form.get("serial").unwrap_or_default(),
        "address": form.get("address").unwrap_or_default(),
        "user": form.get("user").unwrap_or_default(),
        "password": form.get("password").unwrap_or_default(),
    });
    let outcome = act(&app, &signed, op).await;
    show_hardware(&app, &signed, Some(outcome)).await
}

/// `POST /console/hardware/volumes`: read a storage system's volume list.
async fn read_volumes(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let (signed, form) = match checked_form(&app, &headers, &body) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let op = json!({"op": "storage.volumes", "serial": form.get("serial").unwrap_or_default()});
    let outcome = act(&app, &signed, op).await;
    show_hardware(&app, &signed, Some(outcome)).await
}

/// The volumes zgate knows on each storage system (read by LSVOL or for copy
/// sets), each with the session whose copy set holds it: what the create and
/// copy-set forms list (console.md §3.2). At most [`pages::VOLUMES_LISTED`] a box.
async fn known_volumes(app: &App) -> Vec<pages::BoxVolumes> {
    app.gateway
        .read(|e| {
            let st = e.state();
            let mut used: HashMap<(String, crate::ds8k::VolumeId), String> = HashMap::new();
            for s in st.sessions.values() {
                for c in &s.copy_sets {
                    for v in std::iter::once(&c.h1).chain(&c.partner) {
                        used.insert((v.serial.clone(), v.volume), s.name.clone());
                    }
                }
            }
            st.systems
                .keys()
                .map(|serial| pages::BoxVolumes {
                    serial: serial.clone(),
                    total: st.inventory.get(serial).map_or(0, |i| i.len()),
                    volumes: st
                        .inventory
                        .get(serial)
                        .into_iter()
                        .flat_map(|i| i.values())
                        .take(pages::VOLUMES_LISTED)
                        .map(|f| pages::KnownVolume {
                            id: crate::policy::inventory::VolumeRef {
                                serial: serial.clone(),
                                volume: f.volume,
                            }
                            .to_string(),
                            kind: crate::policy::engine::volume_kind_text(f.kind),
                            safeguarded: f.sgc_capacity > 0,
                            used_by: used.get(&(serial.clone(), f.volume)).cloned(),
                        })
                        .collect(),
                })
                .collect()
        })
        .await
        .unwrap_or_default()
}

/// `POST /console/hardware/host`: add a z/OS or z/TPF connection with a
/// PassTicket key (or a password).
async fn add_host(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let (signed, form) = match checked_form(&app, &headers, &body) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let mut op = json!({
        "op": "host.add",
        "system": form.get("system").unwrap_or_default(),
        "kind": form.get("kind").unwrap_or_default(),
        "address": form.get("address").unwrap_or_default(),
    });
    if let Some(port) = form.get("port").and_then(|p| p.parse::<u16>().ok()) {
        op["port"] = json!(port);
    }
    for field in ["user", "application"] {
        if let Some(v) = form.get(field).filter(|v| !v.is_empty()) {
            op[field] = json!(v);
        }
    }
    match (form.get("credential"), form.get("secret")) {
        (Some("passticket"), Some(secret)) => op["passticket_key"] = json!(secret),
        (Some("password"), Some(secret)) => op["password"] = json!(secret),
        (Some("passphrase"), Some(secret)) => op["passphrase"] = json!(secret),
        _ => {}
    }
    let outcome = act(&app, &signed, op).await;
    show_hardware(&app, &signed, Some(outcome)).await
}

async fn show_tasks(app: &App, signed: &Signed, outcome: Option<Outcome>) -> Response {
    let frame = frame(app, signed).await;
    let tasks = read(app, &signed.user.name, json!({"op": "task.list"})).await;
    let sessions = read(app, &signed.user.name, json!({"op": "session.list"})).await;
    pages::tasks(&frame, tasks, sessions, outcome.as_ref()).into_response()
}

/// `GET /console/tasks`.
async fn tasks_page(State(app): State<App>, headers: HeaderMap) -> Response {
    let Some((_, signed)) = signed_in(&app, &headers) else {
        return to_login();
    };
    show_tasks(&app, &signed, None).await
}

/// `POST /console/tasks`: a task with an interval schedule from now, weekly, or
/// once by hand (csm.md §3.4).
async fn create_task(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let (signed, form) = match checked_form(&app, &headers, &body) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let schedule = match form.get("schedule") {
        Some("interval") => json!({
            "type": "interval",
            "start": app.clock.unix_millis(),
            "interval_mins": form.get("interval_mins").and_then(|m| m.parse::<u64>().ok()).unwrap_or(0),
        }),
        Some("weekly") => json!({
            "type": "weekly",
            "days": form.get("days").unwrap_or_default().split(',').map(str::trim).filter(|d| !d.is_empty()).collect::<Vec<_>>(),
            "time": form.get("time").unwrap_or_default(),
        }),
        _ => json!({"type": "once"}),
    };
    let op = json!({
        "op": "task.create",
        "name": form.get("name").unwrap_or_default(),
        "session": form.get("session").unwrap_or_default(),
        "cmd": form.get("cmd").unwrap_or_default(),
        "schedule": schedule,
        "enabled": form.get("enabled").is_some(),
        "description": form.get("description").unwrap_or_default(),
    });
    let outcome = act(&app, &signed, op).await;
    show_tasks(&app, &signed, Some(outcome)).await
}

/// `POST /console/tasks/{id}/{enable|disable|run|delete}`.
async fn task_action(
    State(app): State<App>,
    Path((id, action)): Path<(u64, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (signed, _) = match checked_form(&app, &headers, &body) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let op = match action.as_str() {
        "enable" | "disable" | "run" | "delete" => {
            json!({"op": format!("task.{action}"), "id": id})
        }
        _ => return (StatusCode::NOT_FOUND, "enable, disable, run or delete").into_response(),
    };
    let outcome = act(&app, &signed, op).await;
    show_tasks(&app, &signed, Some(outcome)).await
}

async fn show_admin(app: &App, signed: &Signed, outcome: Option<Outcome>) -> Response {
    let frame = frame(app, signed).await;
    let users = read(app, &signed.user.name, json!({"op": "user.list"})).await;
    pages::admin(&frame, users, outcome.as_ref()).into_response()
}

/// `GET /console/admin`: the mode on top, the users and their roles and grants.
async fn admin_page(State(app): State<App>, headers: HeaderMap) -> Response {
    let Some((_, signed)) = signed_in(&app, &headers) else {
        return to_login();
    };
    show_admin(&app, &signed, None).await
}

/// `POST /console/admin/users`: create a user (the gateway hashes the password).
async fn create_user(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let (signed, form) = match checked_form(&app, &headers, &body) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let op = json!({
        "op": "user.create",
        "name": form.get("name").unwrap_or_default(),
        "role": form.get("role").unwrap_or_default(),
        "password": form.get("password").unwrap_or_default(),
        "sessions": [],
        "actions": [],
    });
    // An Operator starts with nothing granted: the access wizard grants it.
    let op = if form.get("role") == Some("Operator") {
        op
    } else {
        let mut op = op;
        if let Some(o) = op.as_object_mut() {
            o.remove("sessions");
            o.remove("actions");
        }
        op
    };
    let outcome = act(&app, &signed, op).await;
    show_admin(&app, &signed, Some(outcome)).await
}

/// Which user the access wizard is for.
#[derive(Debug, Default, serde::Deserialize)]
struct AccessFor {
    #[serde(default)]
    user: String,
}

/// `GET /console/admin/access?user=U`: the View/Modify Access wizard for an
/// Operator: sessions, then actions by category.
async fn access_page(
    State(app): State<App>,
    Query(who): Query<AccessFor>,
    headers: HeaderMap,
) -> Response {
    let Some((_, signed)) = signed_in(&app, &headers) else {
        return to_login();
    };
    let frame = frame(&app, &signed).await;
    let users = read(&app, &signed.user.name, json!({"op": "user.list"})).await;
    let sessions = read(&app, &signed.user.name, json!({"op": "session.list"})).await;
    pages::access(&frame, &who.user, users, sessions, None).into_response()
}

/// `POST /console/admin/access`: the grant the wizard's boxes say.
async fn set_access(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let (signed, form) = match checked_form(&app, &headers, &body) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let user = form.get("user").unwrap_or_default().to_owned();
    let mut op = json!({"op": "user.role", "name": user, "role": "Operator"});
    if form.get("all_sessions").is_none() {
        op["sessions"] = json!(form.all("session"));
    }
    if form.get("all_actions").is_none() {
        op["actions"] = json!(form.all("action"));
    }
    let outcome = act(&app, &signed, op).await;
    let frame = frame(&app, &signed).await;
    let users = read(&app, &signed.user.name, json!({"op": "user.list"})).await;
    let sessions = read(&app, &signed.user.name, json!({"op": "session.list"})).await;
    pages::access(&frame, &user, users, sessions, Some(&outcome)).into_response()
}
