//! CSM's REST API, the subset IBM's pyCSM 1.0.12 calls for what zgate runs
//! (`protocol-specs/rest.md`): HTTPS at `/CSM/web` (CSM's REST port 9559 by default),
//! next to the CSM protocol and on the same engine. A token from
//! `POST /system/v1/tokens` names the user; every write becomes the same CSM
//! operation the binary protocol carries (`super::csm::serve`), so roles, operator
//! grants and dual control are checked once, in the engine, whichever door a request
//! came through, and land in the same store and audit trail. Replies are CSM's result
//! objects (`msg`, `msgTranslated`, `resultText`, `inserts`, `timestamp`).
//!
//! The HTTP is hyper's (HTTP/1.1, keep-alive) behind axum's router; TLS is rustls.

pub mod console;
mod forms;
mod hardware;
mod sessions;
mod system;
mod tasks;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::GatewayHandle;
use super::csm::Stamp;
use super::ops::{self, Operation};
use crate::clock::Clock;
use crate::policy::console::ids;
use crate::policy::engine::Outcome;
use crate::store::sealing::SealingKey;
use crate::tls::ServerTls;

/// The path every resource is under.
pub const BASE: &str = "/CSM/web";

/// Largest request body (form fields are short; a task's JSON is the largest).
const MAX_BODY: usize = 64 * 1024;
/// Tokens alive at once; the oldest goes first when a new one would pass this.
const MAX_TOKENS: usize = 10_000;
/// How long a client may take to send a request's headers.
const HEADER_DEADLINE: Duration = Duration::from_secs(30);
/// How long a command that the storage system carries out is waited for before the
/// reply says it was started and goes on (rest.md §2).
const COMMAND_WAIT: Duration = Duration::from_secs(60);
/// Token checks (argon2id) at once: a flood of token requests queues here instead of
/// taking every core.
const CONCURRENT_LOGONS: usize = 4;

/// The REST listener's settings (`[rest]`, configuration.md §7).
#[derive(Debug, Clone)]
pub struct RestSettings {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Most connections at once (more are closed at once).
    pub max_connections: usize,
    /// Most connections from one address at once (0 = no cap).
    pub max_connections_per_address: usize,
    /// How long a token lasts (CSM: 2 hours).
    pub token_lifetime: Duration,
}

/// A running REST listener.
pub struct RestServer {
    addr: SocketAddr,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl RestServer {
    /// Listens on `settings.listen` in front of `gateway`; secrets in requests are
    /// sealed with `key` before the engine sees them.
    pub async fn start(
        settings: &RestSettings,
        tls: ServerTls,
        gateway: GatewayHandle,
        key: Arc<SealingKey>,
    ) -> std::io::Result<RestServer> {
        let listener = TcpListener::bind(settings.listen).await?;
        let clock = gateway.clock();
        let app = App {
            gateway,
            key,
            clock,
            tokens: Arc::new(Tokens::new(settings.token_lifetime)),
            logons: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_LOGONS)),
            short_cache: Arc::default(),
            throttle: Arc::new(Mutex::new(crate::admission::LogonThrottle::new(
                crate::admission::ThrottleConfig::default(),
            ))),
            console: Arc::new(console::Sessions::new(settings.token_lifetime)),
        };
        let caps = Caps {
            total: settings.max_connections,
            per_address: settings.max_connections_per_address,
        };
        Self::serve(listener, router(app), tls, caps, clock)
    }

    /// Serves `router` over HTTPS on `listen` with this listener's machinery (TLS,
    /// HTTP/1.1, caps, deadlines, graceful stop): the REST benchmark's baseline.
    pub async fn start_router(
        listen: SocketAddr,
        router: Router,
        tls: ServerTls,
        max_connections: usize,
    ) -> std::io::Result<RestServer> {
        let listener = TcpListener::bind(listen).await?;
        let caps = Caps {
            total: max_connections,
            per_address: 0,
        };
        Self::serve(listener, router, tls, caps, Clock::system())
    }

    fn serve(
        listener: TcpListener,
        router: Router,
        tls: ServerTls,
        caps: Caps,
        clock: Clock,
    ) -> std::io::Result<RestServer> {
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let accepting = crate::server::accept::Accepting {
            tls: Some(tls),
            limit: Arc::new(tokio::sync::Semaphore::new(caps.total.max(1))),
            counts: Arc::new(Mutex::new(crate::admission::ConnectionCounts::new(
                caps.per_address,
            ))),
            keepalive: None,
            clock,
            name: "rest",
        };
        tracker.spawn(crate::server::accept::run(
            listener,
            accepting,
            HttpConnections { router },
            shutdown.clone(),
            tracker.clone(),
        ));
        info!(%addr, "REST listener (CSM /CSM/web) on HTTPS");
        Ok(RestServer {
            addr,
            shutdown,
            tracker,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting; each connection finishes the request it is serving (for at
    /// most 5 s) and closes.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// The listener's connection caps.
#[derive(Debug, Clone, Copy)]
struct Caps {
    total: usize,
    per_address: usize,
}

/// What the shared accept loop (`crate::server::accept`) hands each TLS connection
/// to: HTTP/1.1 with a header deadline, keep-alive, and a graceful stop.
#[derive(Clone)]
struct HttpConnections {
    router: Router,
}

impl crate::server::accept::Handler for HttpConnections {
    fn serve<T>(
        &self,
        stream: T,
        peer: SocketAddr,
        shutdown: CancellationToken,
    ) -> impl std::future::Future<Output = ()> + Send
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let router = self.router.clone();
        async move {
            // The client's address travels with each request (token throttling).
            let ip = peer.ip();
            let service = hyper::service::service_fn(
                move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(Peer(ip));
                    tower::ServiceExt::oneshot(router.clone(), request)
                },
            );
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_DEADLINE)
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
            }
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct App {
    gateway: GatewayHandle,
    key: Arc<SealingKey>,
    clock: Clock,
    tokens: Arc<Tokens>,
    logons: Arc<tokio::sync::Semaphore>,
    /// `GET /sessions/short`'s body and the state version it was made from.
    short_cache: Arc<Mutex<Option<(u64, Bytes)>>>,
    /// Failed token requests per client address (framing.md §9's rule, rest.md §1.3).
    throttle: Arc<Mutex<crate::admission::LogonThrottle>>,
    /// Browsers signed in to the web console.
    console: Arc<console::Sessions>,
}

/// The client's address, put in every request by the listener.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub std::net::IpAddr);

/// The user a valid token names (put in the request by [`require_token`]).
#[derive(Debug, Clone)]
pub(crate) struct User(pub String);

fn router(app: App) -> Router {
    let protected = Router::new()
        .merge(sessions::routes())
        .merge(tasks::routes())
        .merge(system::routes())
        .merge(hardware::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            require_token,
        ));
    let api = Router::new()
        .route("/system/v1/tokens", axum::routing::post(token))
        .merge(protected)
        .fallback(not_implemented)
        .method_not_allowed_fallback(wrong_method);
    Router::new()
        .nest(BASE, api)
        .merge(console::routes(&app))
        .route("/", axum::routing::get(console::to_console))
        .fallback(not_implemented)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app)
}

/// rest.md §1.3: `POST /system/v1/tokens` (form `username`, `password`).
async fn token(
    State(app): State<App>,
    peer: Option<axum::extract::Extension<Peer>>,
    body: Bytes,
) -> Answer {
    let form = forms::Form::parse(&body);
    let (Some(name), Some(password)) = (form.get("username"), form.get("password")) else {
        return Answer::error(
            &app,
            StatusCode::BAD_REQUEST,
            ids::BAD_REQUEST,
            "a token request needs the form fields username and password",
        );
    };
    let refused = |app: &App| {
        Answer::error(
            app,
            StatusCode::UNAUTHORIZED,
            ids::NOT_AUTHORIZED,
            "the user name or password is not valid",
        )
    };
    let ip = peer.map(|p| p.0.0);
    match sign_in(&app, ip, name, password).await {
        Ok(user) => match app.tokens.issue(&user, app.clock.tokio_now()) {
            Some(token) => {
                info!(user = %user.name, "REST: token issued");
                Answer(StatusCode::OK, json!({ "token": token }))
            }
            None => Answer::error(
                &app,
                StatusCode::INTERNAL_SERVER_ERROR,
                ids::STORAGE_FAILED,
                "no randomness for a token",
            ),
        },
        Err(SignInRefused::Credentials) => refused(&app),
        Err(SignInRefused::Stopping) => Answer::error(
            &app,
            StatusCode::SERVICE_UNAVAILABLE,
            ids::STORAGE_FAILED,
            "the gateway is stopping",
        ),
        Err(SignInRefused::CheckFailed) => Answer::error(
            &app,
            StatusCode::INTERNAL_SERVER_ERROR,
            ids::STORAGE_FAILED,
            "the password check failed",
        ),
    }
}

/// Why a sign-in was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignInRefused {
    /// Unknown user, wrong password, or a throttled address (told alike).
    Credentials,
    /// The gateway is stopping.
    Stopping,
    /// The password check itself failed.
    CheckFailed,
}

/// The one password check of the HTTPS listener (a token, a console sign-in):
/// refused unchecked from a throttled address, argon2id on the shared pool at
/// most [`CONCURRENT_LOGONS`] at a time, each outcome counted against the
/// address (rest.md §1.3, framing.md §9).
pub(crate) async fn sign_in(
    app: &App,
    ip: Option<std::net::IpAddr>,
    name: &str,
    password: &str,
) -> Result<Stamp, SignInRefused> {
    // Throttled: refused without a check, so a flood costs no hashing.
    if let Some(ip) = ip
        && app
            .throttle
            .lock()
            .is_ok_and(|mut t| t.is_throttled(ip, app.clock.now()))
    {
        warn!(%ip, user = %name, "REST: sign-in from a throttled address refused unchecked");
        return Err(SignInRefused::Credentials);
    }
    let (name, password) = (
        name.to_owned(),
        zeroize::Zeroizing::new(password.to_owned()),
    );
    let Ok(_turn) = app.logons.clone().acquire_owned().await else {
        return Err(SignInRefused::Stopping);
    };
    let users = app.gateway.users();
    let checked = tokio::task::spawn_blocking(move || {
        super::csm::authenticate(&users, &name, &password).ok_or(name)
    })
    .await;
    let accepted = matches!(checked, Ok(Ok(_)));
    if let (Some(ip), Ok(mut throttle)) = (ip, app.throttle.lock()) {
        throttle.record(ip, app.clock.now(), accepted);
    }
    match checked {
        Ok(Ok(user)) => Ok(user),
        Ok(Err(name)) => {
            warn!(user = %name, ip = ?ip, "REST: sign-in refused (unknown user or wrong password)");
            Err(SignInRefused::Credentials)
        }
        Err(_) => Err(SignInRefused::CheckFailed),
    }
}

/// Every resource but the token needs `X-Auth-Token` with a live token of a user
/// that still exists; otherwise HTTP 401, on which pyCSM renews its token.
async fn require_token(State(app): State<App>, mut request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get("X-Auth-Token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let now = app.clock.tokio_now();
    // policy.md §1.4: a token is good while its user stands as it did at issue.
    let user = token
        .as_deref()
        .and_then(|t| app.tokens.user(t, now))
        .filter(|u| u.is_current(&app.gateway.users()));
    match user {
        Some(user) => {
            request.extensions_mut().insert(User(user.name));
            next.run(request).await
        }
        None => {
            let why = if token.is_some() {
                "the token is not valid or has expired (or its user was removed, or its password or role changed); request a new one at /system/v1/tokens"
            } else {
                "no X-Auth-Token; request one at /system/v1/tokens"
            };
            Answer::error(&app, StatusCode::UNAUTHORIZED, ids::NOT_AUTHORIZED, why).into_response()
        }
    }
}

/// Anything zgate does not serve: a clear error, never a crash (rest.md §5).
async fn not_implemented(State(app): State<App>, method: Method, uri: Uri) -> Answer {
    Answer::error(
        &app,
        StatusCode::NOT_FOUND,
        ids::BAD_REQUEST,
        format!(
            "zgate does not implement {method} {}; protocol-specs/rest.md lists what it serves",
            path_shape(&uri)
        ),
    )
}

/// A path zgate serves, with a method it does not serve there.
async fn wrong_method(State(app): State<App>, method: Method, uri: Uri) -> Answer {
    Answer::error(
        &app,
        StatusCode::METHOD_NOT_ALLOWED,
        ids::BAD_REQUEST,
        format!(
            "zgate does not implement {method} {}; protocol-specs/rest.md lists the methods it serves",
            path_shape(&uri)
        ),
    )
}

/// How many leading path segments an error may name.
const NAMED_SEGMENTS: usize = 3;

/// A path as an error may show it (rest.md §5): the first few segments when they
/// are plain words (the API's own vocabulary), every other segment as `{…}`. CSM's
/// paths carry user data, passwords among them (`/system/ha/setStandbyServer/
/// {server}/{user}/{password}`), and a reply or a log must never repeat them.
pub(crate) fn path_shape(uri: &Uri) -> String {
    let mut named = true;
    let segments: Vec<&str> = uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(i, segment)| {
            named = named && i < NAMED_SEGMENTS && segment.bytes().all(|b| b.is_ascii_alphabetic());
            if named { segment } else { "{…}" }
        })
        .collect();
    format!("/{}", segments.join("/"))
}

/// Live tokens: token → (the user as it stood at issue, expiry).
struct Tokens {
    lifetime: Duration,
    map: Mutex<HashMap<String, (Stamp, tokio::time::Instant)>>,
}

impl Tokens {
    fn new(lifetime: Duration) -> Tokens {
        Tokens {
            lifetime,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// A new token for `user`; `None` without randomness (no token can be safe).
    fn issue(&self, user: &Stamp, now: tokio::time::Instant) -> Option<String> {
        let mut raw = [0u8; 24];
        getrandom::getrandom(&mut raw).ok()?;
        let token = hex::encode(raw);
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= MAX_TOKENS {
                map.retain(|_, (_, expires)| *expires > now);
            }
            if map.len() >= MAX_TOKENS
                && let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, (_, expires))| *expires)
                    .map(|(t, _)| t.clone())
            {
                map.remove(&oldest);
            }
            map.insert(token.clone(), (user.clone(), now + self.lifetime));
        }
        Some(token)
    }

    fn user(&self, token: &str, now: tokio::time::Instant) -> Option<Stamp> {
        let mut map = self.map.lock().ok()?;
        match map.get(token) {
            Some((user, expires)) if *expires > now => Some(user.clone()),
            Some(_) => {
                map.remove(token);
                None
            }
            None => None,
        }
    }
}

/// An HTTP status and a JSON body.
pub(crate) struct Answer(StatusCode, Value);

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        (self.0, axum::Json(self.1)).into_response()
    }
}

impl Answer {
    /// The reply's JSON.
    fn value(&self) -> &Value {
        &self.1
    }

    /// A plain JSON answer (a read).
    fn ok(value: Value) -> Answer {
        Answer(StatusCode::OK, value)
    }

    /// CSM's result object for a refusal made here, before the engine (rest.md §3).
    fn error(
        app: &App,
        status: StatusCode,
        id: crate::policy::console::MessageId,
        text: impl std::fmt::Display,
    ) -> Answer {
        let now = app.clock.unix_millis();
        let translated = format!("{id} [{}] {text}", super::csm::java_medium(now));
        Answer(
            status,
            json!({
                "msg": id.to_string(),
                "msgTranslated": translated,
                "resultText": translated,
                "inserts": [],
                "timestamp": now,
            }),
        )
    }

    fn bad(app: &App, text: impl std::fmt::Display) -> Answer {
        Answer::error(app, StatusCode::BAD_REQUEST, ids::BAD_REQUEST, text)
    }

    fn unknown_session(app: &App, name: &str) -> Answer {
        Answer::error(
            app,
            StatusCode::NOT_FOUND,
            ids::SESSION_NOT_FOUND,
            format!("There is no session named {name}."),
        )
    }
}

impl App {
    /// Carries out one operation as `user` and answers with CSM's result object
    /// (rest.md §3), its HTTP status from [`ops::Answer::http_status`]. A command the
    /// storage system carries out is waited for (up to [`COMMAND_WAIT`]) so that the
    /// answer is its outcome, as CSM's is.
    async fn op(&self, user: &str, op: Operation) -> Answer {
        // Subscribed before the command goes in, so that no outcome is missed.
        let mut finished = self.gateway.finished();
        let answer = ops::execute(&self.gateway, &self.key, user, op).await;
        let status = StatusCode::from_u16(answer.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        let reply = match answer {
            ops::Answer::View(v) => return Answer::ok(std::sync::Arc::unwrap_or_clone(v)),
            ops::Answer::Rendered(text) => {
                return Answer::ok(serde_json::from_str(&text).unwrap_or_default());
            }
            ops::Answer::Subscribed(follow) => return Answer::ok(json!({ "console": follow })),
            ops::Answer::Refused(r) => return Answer::error(self, status, r.id, r.text),
            ops::Answer::Stopped(e) => return Answer::error(self, status, ids::STORAGE_FAILED, e),
            ops::Answer::Reply(r) => r,
        };
        let mut v = super::csm::console_json(&reply.message);
        v["outcome"] = json!(match reply.outcome {
            Outcome::Done => "done",
            Outcome::Started(_) => "started",
            Outcome::Requested(_) => "requested",
            Outcome::Refused(_) => "refused",
        });
        let mut status = status;
        match reply.outcome {
            Outcome::Started(action) => {
                v["action"] = json!(action);
                if let Some(end) = self.outcome(action, &mut finished).await {
                    // rest.md §2: the command's end, with its outcome like every reply.
                    let failed = end.id.severity == crate::policy::console::Severity::Error;
                    status = StatusCode::from_u16(ops::http_status_of(end.id))
                        .unwrap_or(StatusCode::BAD_REQUEST);
                    v = super::csm::console_json(&end);
                    v["outcome"] = json!(if failed { "failed" } else { "done" });
                }
            }
            Outcome::Requested(id) => {
                v["request"] = json!(id);
                v["requestid"] = json!(id);
            }
            Outcome::Done | Outcome::Refused(_) => {}
        }
        if v["timestamp"] == 0 {
            let now = self.clock.unix_millis();
            v["timestamp"] = json!(now);
            if let (Some(msg), Some(text)) = (v["msg"].as_str(), v["msgTranslated"].as_str()) {
                let rest = text.strip_prefix(msg).unwrap_or(text).trim_start();
                v["msgTranslated"] =
                    json!(format!("{msg} [{}] {rest}", super::csm::java_medium(now)));
            }
        }
        v["resultText"] = v["msgTranslated"].clone();
        Answer(status, v)
    }

    /// Waits (up to [`COMMAND_WAIT`]) for the engine to say that the command whose
    /// reply named `action` has ended, and returns the message that says how.
    async fn outcome(
        &self,
        action: u64,
        finished: &mut tokio::sync::broadcast::Receiver<crate::policy::engine::Finished>,
    ) -> Option<crate::policy::console::ConsoleMessage> {
        use tokio::sync::broadcast::error::RecvError;
        let deadline = self.clock.tokio_now() + COMMAND_WAIT;
        loop {
            let next = tokio::time::timeout_at(deadline, finished.recv())
                .await
                .ok()?;
            match next {
                Ok(f) if f.action == action => return f.message,
                Ok(_) => {}
                // Fell behind: ours may be among those missed; the reply says
                // "started", as it would after the wait.
                Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return None,
            }
        }
    }

    /// Reads the engine; a stopped gateway is an error answer.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&crate::policy::engine::Engine) -> T + Send + 'static,
    ) -> Result<T, Answer> {
        self.gateway.read(f).await.map_err(|e| {
            Answer::error(
                self,
                StatusCode::SERVICE_UNAVAILABLE,
                ids::STORAGE_FAILED,
                e,
            )
        })
    }
}
