//! The REST listener end to end over loopback with real TLS, on tokio's paused clock
//! (protocol-specs/rest.md §1, §3, §5): token life, failed-token throttling per
//! address, limits, and clear errors for what zgate does not serve. pyCSM itself
//! drives the rest in `tests/python`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use zgate::gateway::Gateway;
use zgate::gateway::rest::{RestServer, RestSettings};
use zgate::store::sealing::SealingKey;
use zgate::tls::{ClientTls, ServerTls};

const PASSWORD: &str = "Adm1nPass-long";

struct Setup {
    _dir: tempfile::TempDir,
    gateway: Gateway,
    rest: RestServer,
    tls: ClientTls,
    key: Arc<SealingKey>,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SealingKey::generate().unwrap());
    let params = argon2::Params::new(256, 1, 1, None).unwrap();
    let hash = zgate::password::hash_password(PASSWORD, b"test-salt-16byte", params).unwrap();
    let gateway = common::start_gateway(
        &dir.path().join("zgate.redb"),
        &key,
        &hash,
        Duration::from_secs(10),
    );
    let pki = common::TestPki::new("zgate test CA");
    let id = pki.issue(&["zgate.test"]);
    let server = ServerTls::from_pem(id.cert_pem.as_bytes(), id.key_pem.as_bytes(), None).unwrap();
    let settings = RestSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        max_connections: 8,
        max_connections_per_address: 4,
        token_lifetime: Duration::from_secs(7200),
    };
    let rest = RestServer::start(&settings, server, gateway.handle(), key.clone())
        .await
        .unwrap();
    let tls = ClientTls::from_pem(pki.ca_pem().as_bytes(), "zgate.test", None).unwrap();
    Setup {
        _dir: dir,
        gateway,
        rest,
        tls,
        key,
    }
}

type Sender = hyper::client::conn::http1::SendRequest<String>;

async fn connect(s: &Setup) -> Sender {
    let tcp = tokio::net::TcpStream::connect(s.rest.addr()).await.unwrap();
    let stream = s.tls.connect(tcp, Duration::from_secs(10)).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// One request: the status and the body as JSON (`Null` if it is not JSON).
async fn call(
    h: &mut Sender,
    method: &str,
    path: &str,
    token: Option<&str>,
    form: &str,
) -> (u16, Value) {
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(format!("/CSM/web{path}"))
        .header("host", "zgate.test")
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(t) = token {
        request = request.header("x-auth-token", t);
    }
    h.ready().await.unwrap();
    let response = h
        .send_request(request.body(form.to_owned()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// One request with a raw body: the status and the body as text.
async fn call_text(
    h: &mut Sender,
    method: &str,
    path: &str,
    token: &str,
    content_type: &str,
    body: &str,
) -> (u16, String) {
    let request = hyper::Request::builder()
        .method(method)
        .uri(format!("/CSM/web{path}"))
        .header("host", "zgate.test")
        .header("content-type", content_type)
        .header("x-auth-token", token);
    h.ready().await.unwrap();
    let response = h
        .send_request(request.body(body.to_owned()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

async fn token(h: &mut Sender, password: &str) -> (u16, Value) {
    call(
        h,
        "POST",
        "/system/v1/tokens",
        None,
        &format!("username=admin&password={password}"),
    )
    .await
}

#[tokio::test(start_paused = true)]
async fn tokens_expire_and_failed_requests_are_throttled_per_address() {
    let s = setup().await;
    let mut h = connect(&s).await;
    let (status, v) = token(&mut h, PASSWORD).await;
    assert_eq!(status, 200, "{v}");
    let t = v["token"].as_str().unwrap().to_owned();
    assert_eq!(t.len(), 48);
    let (status, v) = call(&mut h, "GET", "/sessions/short", Some(&t), "").await;
    assert_eq!((status, v), (200, serde_json::json!([])));

    // Two hours later the token is gone: 401 with a result object.
    tokio::time::sleep(Duration::from_secs(7201)).await;
    let mut h = connect(&s).await;
    let (status, v) = call(&mut h, "GET", "/sessions/short", Some(&t), "").await;
    assert_eq!(status, 401, "{v}");
    assert_eq!(v["msg"], "IWNR8010E");
    assert!(
        v["msgTranslated"].as_str().unwrap().contains("expired"),
        "{v}"
    );

    // Two wrong passwords from this address, then even the right one is refused
    // unchecked, until a minute has passed.
    for _ in 0..2 {
        assert_eq!(token(&mut h, "wrong-password").await.0, 401);
    }
    let (status, v) = token(&mut h, PASSWORD).await;
    assert_eq!(status, 401, "throttled: {v}");
    tokio::time::sleep(Duration::from_secs(61)).await;
    // (An idle keep-alive connection is closed after 30 s: a new one.)
    let mut h = connect(&s).await;
    assert_eq!(token(&mut h, PASSWORD).await.0, 200);
    s.rest.shutdown().await;
    s.gateway.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn bad_requests_get_clear_errors_and_the_listener_stays_up() {
    let s = setup().await;
    let mut h = connect(&s).await;
    let t = token(&mut h, PASSWORD).await.1["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = Some(t.as_str());
    for (method, path, form, status, msg) in [
        ("GET", "/sessions/NOSUCH", "", 404, "IWNR1502E"),
        (
            "PUT",
            "/sessions/X",
            "description=no+type",
            400,
            "IWNR8012E",
        ),
        ("PUT", "/sessions/X", "type=GM", 400, "IWNR8012E"),
        (
            "POST",
            "/sessions/X/copysets",
            "copysets=%5B%5B",
            400,
            "IWNR8012E",
        ),
        ("GET", "/system/logpackages", "", 404, "IWNR8012E"),
        ("PATCH", "/sessions/short", "", 405, "IWNR8012E"),
        (
            "POST",
            "/sessions/scheduledtasks/abc/True",
            "",
            400,
            "IWNR8012E",
        ),
        ("POST", "/system/dualcontrol/maybe", "", 400, "IWNR8012E"),
    ] {
        let (got, v) = call(&mut h, method, path, t, form).await;
        assert_eq!(
            (got, v["msg"].as_str()),
            (status, Some(msg)),
            "{method} {path}: {v}"
        );
        assert!(v["timestamp"].as_u64().unwrap() > 0, "{v}");
    }
    // A body over 64 KiB: 413, and the connection's next request still works.
    let big = format!("description={}", "x".repeat(70_000));
    let (status, _) = call(&mut h, "POST", "/sessions/X/description", t, &big).await;
    assert_eq!(status, 413);
    let mut h = connect(&s).await;
    // A session made here is in the cached short list at once.
    let (status, v) = call(&mut h, "PUT", "/sessions/FC1", t, "type=FC").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["msg"], "IWNR8001I");
    let (_, v) = call(&mut h, "GET", "/sessions/short", t, "").await;
    assert_eq!(v[0]["name"], "FC1", "{v}");
    let (_, v) = call(&mut h, "PUT", "/sessions/FC2", t, "type=FlashCopy").await;
    assert_eq!(v["msg"], "IWNR8001I", "{v}");
    let (_, v) = call(&mut h, "GET", "/sessions/short", t, "").await;
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
    s.rest.shutdown().await;
    s.gateway.shutdown().await;
}

/// rest.md §5: a path zgate does not serve is named by its shape only; a secret in
/// any path parameter pyCSM puts one in never comes back.
#[tokio::test(start_paused = true)]
async fn replies_never_repeat_a_path_parameter() {
    let s = setup().await;
    let mut h = connect(&s).await;
    let t = token(&mut h, PASSWORD).await.1["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // policy.md §5.5: one name rule on every door: letters of any script.
    let (status, v) = call(&mut h, "PUT", "/sessions/Z%C3%BCrich", Some(&t), "type=FC").await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = call(&mut h, "GET", "/sessions/Z%C3%BCrich", Some(&t), "").await;
    assert_eq!((status, v["name"].as_str()), (200, Some("Zürich")), "{v}");
    let secret = "Zz9SecretPw";
    // Served paths that carry a password (ha.md §4): refused here (no HA listener in
    // this test, an unknown property), never echoing it.
    for path in [
        format!("/system/ha/setStandbyServer/10.0.0.2/admin/{secret}"),
        format!("/system/ha/setStandbyServer/10.0.0.2/admin/{secret}/9561"),
        format!("/system/properties/server/password/{secret}"),
    ] {
        let (status, v) = call(&mut h, "PUT", &path, Some(&t), "").await;
        assert!(status == 400 || status == 409, "PUT {path}: {status} {v}");
        assert!(!v.to_string().contains(secret), "PUT {path} echoed: {v}");
    }
    for (method, path) in [
        ("PUT", format!("/system/backups/10.0.0.2/admin/{secret}")),
        (
            "PUT",
            format!("/system/ha/setServerAsStandby/h/{secret}/9561"),
        ),
        ("GET", format!("/{secret}")),
        ("DELETE", format!("/sessions/short/{secret}")),
        ("PATCH", format!("/sessions/{secret}")),
    ] {
        let (status, v) = call(&mut h, method, &path, Some(&t), "").await;
        assert!(
            status == 404 || status == 405,
            "{method} {path}: {status} {v}"
        );
        assert!(
            !v.to_string().contains(secret),
            "{method} {path} echoed: {v}"
        );
    }
    let (_, v) = call(
        &mut h,
        "PUT",
        &format!("/system/backups/10.0.0.2/admin/{secret}"),
        Some(&t),
        "",
    )
    .await;
    assert!(
        v["msgTranslated"]
            .as_str()
            .unwrap()
            .contains("/system/backups/{…}/{…}/{…}"),
        "{v}"
    );
    s.rest.shutdown().await;
    s.gateway.shutdown().await;
}

/// policy.md §1.4: a token is bound to its user's number and credential
/// generation: a password change, a role change or the user's removal ends it, and a
/// new user of the same name does not revive it.
#[tokio::test(start_paused = true)]
async fn tokens_die_with_their_users_credentials() {
    use zgate::policy::access::Role;
    use zgate::policy::engine::Command;
    let s = setup().await;
    let gateway = s.gateway.handle();
    let params = argon2::Params::new(256, 1, 1, None).unwrap();
    let hash =
        |pw: &str| zgate::password::hash_password(pw, b"test-salt-16byte", params.clone()).unwrap();
    let create = Command::CreateUser {
        name: "bob".into(),
        role: Role::Administrator,
        grant: None,
        password_hash: hash("bob-password-1"),
    };
    gateway.command("admin", create.clone()).await.unwrap();
    let mut h = connect(&s).await;
    // A password change.
    let t = bob_token(&mut h, "bob-password-1").await;
    assert_eq!(works(&mut h, t.clone()).await, 200);
    gateway
        .command(
            "admin",
            Command::SetPassword {
                name: "bob".into(),
                password_hash: hash("bob-password-1"),
            },
        )
        .await
        .unwrap();
    assert_eq!(works(&mut h, t).await, 401);
    // A role change.
    let t = bob_token(&mut h, "bob-password-1").await;
    gateway
        .command(
            "admin",
            Command::SetUserRole {
                name: "bob".into(),
                role: Role::Monitor,
                grant: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(works(&mut h, t).await, 401);
    // Removal, and a new bob with the same password.
    let t = bob_token(&mut h, "bob-password-1").await;
    assert_eq!(works(&mut h, t.clone()).await, 200);
    gateway
        .command("admin", Command::RemoveUser { name: "bob".into() })
        .await
        .unwrap();
    gateway.command("admin", create).await.unwrap();
    assert_eq!(works(&mut h, t).await, 401);
    let t = bob_token(&mut h, "bob-password-1").await;
    assert_eq!(works(&mut h, t).await, 200);
    s.rest.shutdown().await;
    s.gateway.shutdown().await;
}

async fn bob_token(h: &mut Sender, pw: &str) -> String {
    let form = format!("username=bob&password={pw}");
    let (status, v) = call(h, "POST", "/system/v1/tokens", None, &form).await;
    assert_eq!(status, 200, "{v}");
    v["token"].as_str().unwrap().to_owned()
}

async fn works(h: &mut Sender, t: String) -> u16 {
    call(h, "GET", "/sessions/short", Some(&t), "").await.0
}

/// rest.md §1.3: one address holds at most its share of the listener: its idle
/// connections do not shut out a client at another address.
#[tokio::test(start_paused = true)]
async fn one_address_cannot_hold_every_connection() {
    use tokio::io::AsyncReadExt;
    let s = setup().await;
    let from = |last: u8| {
        let addr = s.rest.addr();
        async move {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket
                .bind(std::net::SocketAddr::from(([127, 0, 0, last], 0)))
                .unwrap();
            socket.connect(addr).await.unwrap()
        }
    };
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(from(3).await);
    }
    tokio::task::yield_now().await;
    // The fifth from that address is closed at once.
    let mut fifth = from(3).await;
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(1), fifth.read(&mut buf))
        .await
        .expect("closed, not left waiting")
        .unwrap_or(0);
    assert_eq!(n, 0);
    // Another address is served.
    let tcp = from(4).await;
    let stream = s.tls.connect(tcp, Duration::from_secs(10)).await.unwrap();
    let (mut h, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    assert_eq!(token(&mut h, PASSWORD).await.0, 200);
    drop(idle);
    s.rest.shutdown().await;
    s.gateway.shutdown().await;
}

/// rest.md §6: authority first (a Monitor gets 403 whatever the form holds, and
/// nothing is connected to), then at most 6 discovery logons a minute.
#[tokio::test(start_paused = true)]
async fn discovery_checks_authority_first_and_is_rate_limited() {
    use zgate::policy::access::Role;
    use zgate::policy::engine::Command;
    let s = setup().await;
    let params = argon2::Params::new(256, 1, 1, None).unwrap();
    let hash =
        zgate::password::hash_password("monitor-pass-1", b"test-salt-16byte", params).unwrap();
    s.gateway
        .handle()
        .command(
            "admin",
            Command::CreateUser {
                name: "mon".into(),
                role: Role::Monitor,
                grant: None,
                password_hash: hash,
            },
        )
        .await
        .unwrap();
    // A listener that counts the connections it gets.
    let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = probe.local_addr().unwrap().port();
    let mut h = connect(&s).await;
    let (_, v) = call(
        &mut h,
        "POST",
        "/system/v1/tokens",
        None,
        "username=mon&password=monitor-pass-1",
    )
    .await;
    let mon = v["token"].as_str().unwrap().to_owned();
    for password in ["right-or-wrong", "another"] {
        let form = format!(
            "type=ds8000&deviceip=127.0.0.1&deviceport={port}&deviceusername=CSMADMIN&devicepassword={password}"
        );
        let (status, v) = call(&mut h, "PUT", "/storagedevices", Some(&mon), &form).await;
        assert_eq!((status, v["msg"].as_str()), (403, Some("IWNR8010E")), "{v}");
    }
    let accepted = tokio::time::timeout(Duration::from_millis(100), probe.accept()).await;
    assert!(accepted.is_err(), "a Monitor's request opened a connection");
    // An Administrator's discoveries: six a minute (the probe never answers a logon).
    drop(probe);
    let admin = token(&mut h, PASSWORD).await.1["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let form = format!(
        "type=ds8000&deviceip=127.0.0.1&deviceport={port}&deviceusername=CSMADMIN&devicepassword=x"
    );
    // Each discovery waits up to 10 s for a logon that never comes: seven at once,
    // from seven addresses (the per-address cap is 4).
    let mut senders = Vec::new();
    for last in 20..27u8 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(std::net::SocketAddr::from(([127, 0, 0, last], 0)))
            .unwrap();
        let tcp = socket.connect(s.rest.addr()).await.unwrap();
        let stream = s.tls.connect(tcp, Duration::from_secs(10)).await.unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        senders.push(sender);
    }
    let calls = senders.iter_mut().map(|sender| {
        let (admin, form) = (admin.clone(), form.clone());
        async move {
            call(sender, "PUT", "/storagedevices", Some(&admin), &form)
                .await
                .0
        }
    });
    let statuses = futures_util::future::join_all(calls).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        1,
        "{statuses:?}"
    );
    s.rest.shutdown().await;
    s.gateway.shutdown().await;
}

/// policy.md §5.7, rest.md §2: a CSV file of copy sets is added by one command (all
/// or none, errors by line), exported in the same shape, and read back in pages.
#[tokio::test(start_paused = true)]
async fn copy_sets_come_in_and_go_out_as_a_csv_file() {
    use zgate::policy::engine::Command;
    let s = setup().await;
    let ds8k = common::ds8k_service(common::test_clock(), |_| {}).await;
    let password = s
        .key
        .seal("DS8000:BOX:2107.75FA120 password", b"HMCPASS1")
        .unwrap();
    s.gateway
        .handle()
        .command(
            "admin",
            Command::DefineStorageSystem(zgate::policy::inventory::StorageSystem {
                serial: "75FA120".into(),
                address: ds8k.addr().to_string(),
                user: "CSMADMIN".into(),
                password,
            }),
        )
        .await
        .unwrap();
    let mut h = connect(&s).await;
    let t = token(&mut h, PASSWORD).await.1["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, v) = call(&mut h, "PUT", "/sessions/WHOLE", Some(&t), "type=FC").await;
    assert_eq!(status, 200, "{v}");
    let mut file = String::from("#Session,WHOLE\n#Type,FC\nH1,T1\n");
    for i in 0..200u16 {
        file.push_str(&format!(
            "DS8000:2107.75FA120:VOL:{:04X},DS8000:2107.75FA120:VOL:{:04X}\n",
            0x3000 + i,
            0x3100 + i
        ));
    }
    let bad = file.replace("VOL:3005,", "VOL:30G5,");
    let (status, text) = call_text(
        &mut h,
        "POST",
        "/sessions/WHOLE/copysets/file",
        &t,
        "text/csv",
        &bad,
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("line 9"), "{text}");
    // A file is taken up to 4 MiB (the other routes stop at 64 KiB): over, 413.
    let (status, _) = call_text(
        &mut h,
        "POST",
        "/sessions/WHOLE/copysets/file",
        &t,
        "text/csv",
        &"#".repeat(4 * 1024 * 1024 + 1),
    )
    .await;
    assert_eq!(status, 413);
    let mut h = connect(&s).await;
    let padded = format!("{}{file}", format!("#{}\n", "-".repeat(60)).repeat(1200));
    assert!(padded.len() > 64 * 1024);
    let (status, text) = call_text(
        &mut h,
        "POST",
        "/sessions/WHOLE/copysets/file",
        &t,
        "text/csv",
        &padded,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("200 copy sets were added"), "{text}");
    let (status, exported) = call_text(
        &mut h,
        "GET",
        "/sessions/WHOLE/copysets/download",
        &t,
        "text/plain",
        "",
    )
    .await;
    assert_eq!(status, 200, "{exported}");
    assert!(
        exported.starts_with("#Session,WHOLE\n#Type,FC\n"),
        "{exported}"
    );
    let read = |text: &str| zgate::policy::copy_set_file::read(text, 1000).unwrap();
    assert_eq!(read(&exported), read(&file));
    let (status, page) = call(
        &mut h,
        "GET",
        "/sessions/WHOLE/copysets?offset=150&limit=100",
        Some(&t),
        "",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let page = page.as_array().unwrap();
    assert_eq!(page.len(), 50);
    assert_eq!(
        page[0]["volumelist"][0]["elementid"],
        "DS8000:2107.75FA120:VOL:3096"
    );
    s.rest.shutdown().await;
    s.gateway.shutdown().await;
}
