//! The CSM protocol end to end over loopback with real TLS (certificates made in the
//! test): `zgate csm`'s connector → the gateway's CSM listener → the policy engine
//! with its store → the simulated DS8000 over the HMC protocol, on tokio's paused
//! clock. Every request is checked at the server against role, grants and dual
//! control.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use zgate::client::csm::{self, Authentication, ConnectorEvent, CsmConnectorConfig, CsmHandle};
use zgate::gateway::Gateway;
use zgate::gateway::csm::CsmServer;
use zgate::peer::ds8k::Ds8kService;
use zgate::proto::csm::{CsmBody, CsmReason};
use zgate::proto::logon::Credential;
use zgate::proto::{ReplyStatus, ReturnCode};
use zgate::server::{LimitsConfig, ListenConfig};
use zgate::store::sealing::SealingKey;
use zgate::tls::{ClientTls, ServerTls};

const ADMIN_PW: &str = "Adm1nPass-long";

fn cheap_hash(password: &str) -> String {
    let params = argon2::Params::new(256, 1, 1, None).unwrap();
    zgate::password::hash_password(password, b"test-salt-16byte", params).unwrap()
}

async fn ds8k() -> Ds8kService {
    common::ds8k_service(common::test_clock(), |_| {}).await
}

struct Setup {
    _dir: tempfile::TempDir,
    gateway: Gateway,
    server: CsmServer,
    ds8k: Ds8kService,
    pki: common::TestPki,
}

async fn setup() -> Setup {
    let ds8k = ds8k().await;
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SealingKey::generate().unwrap());
    let gateway = common::start_gateway(
        &dir.path().join("zgate.redb"),
        &key,
        &cheap_hash(ADMIN_PW),
        Duration::from_secs(10),
    );
    let pki = common::TestPki::new("zgate test CA");
    let id = pki.issue(&["zgate.test"]);
    let listen = ListenConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        max_body: 65_536,
        max_connections: 64,
        tls: Some(
            ServerTls::from_pem(id.cert_pem.as_bytes(), id.key_pem.as_bytes(), None).unwrap(),
        ),
        clock: common::test_clock(),
        limits: LimitsConfig::default(),
    };
    let server = CsmServer::start(&listen, gateway.handle(), key)
        .await
        .unwrap();
    Setup {
        _dir: dir,
        gateway,
        server,
        ds8k,
        pki,
    }
}

async fn connect(s: &Setup, user: &str, password: &str) -> CsmHandle {
    let ca = s.pki.ca_pem().as_bytes();
    common::csm_logged_on(
        s.server.addr(),
        ca,
        "zgate.test",
        user,
        password,
        common::test_clock(),
    )
    .await
}

async fn call(h: &CsmHandle, request: Value) -> (ReplyStatus, Value) {
    csm::call(h, &request).await.unwrap()
}

async fn ok(h: &CsmHandle, request: Value) -> Value {
    let (status, v) = call(h, request.clone()).await;
    assert_eq!(status.rc, ReturnCode::OK, "{request}: {v}");
    v
}

/// Waits for a console event whose message id is `id` and whose text holds `text`.
async fn console(h: &mut CsmHandle, id: &str, text: &str) -> Value {
    tokio::time::timeout(Duration::from_secs(3600), async {
        loop {
            if let Some(ConnectorEvent::Event(CsmBody::Console { json })) = h.next_event().await {
                let v: Value = serde_json::from_str(&json).unwrap();
                if v["msg"] == id && v["msgTranslated"].as_str().unwrap().contains(text) {
                    return v;
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {id} with {text:?}"))
}

#[tokio::test(start_paused = true)]
async fn a_flash_session_over_the_csm_protocol_with_tls() {
    let s = setup().await;
    let mut admin = connect(&s, "admin", ADMIN_PW).await;
    csm::subscribe(&admin, true).await.unwrap();
    let status = ok(&admin, json!({"op": "server.status"})).await;
    assert_eq!(status["result"]["dualcontrol"], "Disable Dual Control");

    ok(
        &admin,
        json!({"op": "storage.add", "serial": "75FA120", "address": s.ds8k.addr().to_string(),
               "user": "CSMADMIN", "password": "HMCPASS1"}),
    )
    .await;
    // The password never comes back.
    let systems = ok(&admin, json!({"op": "storage.list"})).await;
    assert!(!systems.to_string().contains("HMCPASS1"), "{systems}");

    let created = ok(
        &admin,
        json!({"op": "session.create", "name": "FC1", "type": "FC"}),
    )
    .await;
    assert_eq!(created["msg"], "IWNR8001I");
    assert!(
        created["msgTranslated"]
            .as_str()
            .unwrap()
            .starts_with("IWNR8001I ["),
        "{created}"
    );
    let started = ok(
        &admin,
        json!({"op": "session.copysets.add", "name": "FC1",
               "copysets": [["DS8000:2107.75FA120:VOL:3000", "DS8000:2107.75FA120:VOL:3100"]]}),
    )
    .await;
    assert_eq!(started["outcome"], "started");
    console(
        &mut admin,
        "IWNR8001I",
        "1 copy sets were added to session FC1",
    )
    .await;
    ok(
        &admin,
        json!({"op": "session.options", "name": "FC1",
               "options": {"inhibit_target_writes": true, "min_flash_interval_mins": 30}}),
    )
    .await;
    ok(
        &admin,
        json!({"op": "session.run", "name": "FC1", "cmd": "Flash"}),
    )
    .await;
    console(&mut admin, "IWNR1026I", "Flash command in the FC1").await;
    // A second flash inside the window: refused with the next allowed time.
    let (st, refused) = call(
        &admin,
        json!({"op": "session.run", "name": "FC1", "cmd": "Flash"}),
    )
    .await;
    assert_eq!(
        (st.rc, st.reason),
        (ReturnCode::REFUSED, 0x1405),
        "{refused}"
    );
    assert!(
        refused["msgTranslated"]
            .as_str()
            .unwrap()
            .contains("next is allowed at")
    );
    console(&mut admin, "IWNR2772I", "FC1").await;
    let fc1 = ok(&admin, json!({"op": "session.get", "name": "FC1"})).await;
    assert_eq!(fc1["result"]["state"], "Target Available", "{fc1}");
    // The HMC link is up, and the status says so.
    let systems = ok(&admin, json!({"op": "storage.list"})).await;
    assert_eq!(systems["result"][0]["connected"], true, "{systems}");
    assert!(
        systems["result"][0]["logons"].as_u64().unwrap() >= 1,
        "{systems}"
    );
    let status = ok(&admin, json!({"op": "server.status"})).await;
    assert!(
        status["result"]["uptime_secs"].as_u64().is_some(),
        "{status}"
    );
    assert!(
        status["result"]["store"]
            .as_str()
            .unwrap()
            .ends_with("zgate.redb"),
        "{status}"
    );

    // An operator granted Backup only is refused a Flash, naming the grant.
    ok(
        &admin,
        json!({"op": "user.create", "name": "oper", "role": "Operator", "password": "OperPass-long",
               "sessions": ["FC1"], "actions": ["Refresh States"]}),
    )
    .await;
    let oper = connect(&s, "oper", "OperPass-long").await;
    let (st, v) = call(
        &oper,
        json!({"op": "session.run", "name": "FC1", "cmd": "Terminate"}),
    )
    .await;
    assert_eq!((st.rc, st.reason), (ReturnCode::REFUSED, 0x1104), "{v}");
    assert_eq!(v["msg"], "IWNR8010E");

    // Bad requests are refused with a reason, the connection stays.
    for bad in [
        json!({"op": "no.such"}),
        json!({"op": "session.run", "name": "FC1"}),
        json!([1, 2]),
    ] {
        let (st, v) = call(&admin, bad).await;
        assert_eq!(
            (st.rc, st.reason),
            (ReturnCode::REFUSED, CsmReason::BAD_REQUEST.0),
            "{v}"
        );
    }
    let (st, v) = call(&admin, json!({"op": "session.get", "name": "NOPE"})).await;
    assert_eq!(st.rc, ReturnCode::REFUSED, "{v}");
    ok(&admin, json!({"op": "server.status"})).await;

    admin.shutdown().await;
    oper.shutdown().await;
    s.server.shutdown().await;
    s.gateway.shutdown().await;
    s.ds8k.shutdown().await;
}

/// Console events come only to a connection that asked for them (csm.md §4), and
/// stop when it asks to stop.
#[tokio::test(start_paused = true)]
async fn console_events_follow_the_subscription() {
    let s = setup().await;
    let mut quiet = connect(&s, "admin", ADMIN_PW).await;
    let mut follower = connect(&s, "admin", ADMIN_PW).await;
    csm::subscribe(&follower, true).await.unwrap();
    ok(
        &quiet,
        json!({"op": "session.create", "name": "S1", "type": "FC"}),
    )
    .await;
    console(&mut follower, "IWNR8001I", "S1").await;
    // The quiet connection got nothing: the next thing it sees is its own logoff.
    let next = tokio::time::timeout(Duration::from_secs(5), quiet.next_event()).await;
    assert!(next.is_err(), "an unsubscribed client got {next:?}");
    // Subscribing later starts the stream for it; unsubscribing ends it.
    csm::subscribe(&quiet, true).await.unwrap();
    csm::subscribe(&follower, false).await.unwrap();
    ok(
        &follower,
        json!({"op": "session.create", "name": "S2", "type": "FC"}),
    )
    .await;
    console(&mut quiet, "IWNR8001I", "S2").await;
    let next = tokio::time::timeout(Duration::from_secs(5), follower.next_event()).await;
    assert!(next.is_err(), "an unsubscribed client got {next:?}");
    // A malformed subscription is a bad request like any other.
    let (st, _) = call(&quiet, json!({"op": "console.subscribe", "follow": "yes"})).await;
    assert_eq!(
        (st.rc, st.reason),
        (ReturnCode::REFUSED, CsmReason::BAD_REQUEST.0)
    );
    quiet.shutdown().await;
    follower.shutdown().await;
    s.server.shutdown().await;
    s.gateway.shutdown().await;
    s.ds8k.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_wrong_password_is_refused() {
    let s = setup().await;
    let mut c = CsmConnectorConfig::new(s.server.addr());
    c.user = "admin".into();
    c.appl = "CSM".into();
    c.clock = common::test_clock();
    c.max_logon_refusals = 1;
    c.tls = Some(ClientTls::from_pem(s.pki.ca_pem().as_bytes(), "zgate.test", None).unwrap());
    let mut h = csm::spawn(
        c,
        Authentication::Passphrase(Credential::new("wrong-password").unwrap()),
    )
    .unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(30), h.next_event())
            .await
            .unwrap()
            .unwrap()
        {
            ConnectorEvent::Connected { .. } => panic!("logged on with a wrong password"),
            ConnectorEvent::GaveUp { status, .. } => {
                assert_eq!(status.reason, zgate::proto::logon::NOT_AUTHORIZED);
                break;
            }
            _ => {}
        }
    }
    s.server.shutdown().await;
    s.gateway.shutdown().await;
}

/// Hostile clients do not hurt a logged-on one: bytes that are not TLS, garbage
/// inside TLS, a client that never logs on, a flood of bad passwords, and a client
/// that never reads while the console floods it.
#[tokio::test(start_paused = true)]
async fn hostile_clients_do_not_hurt_others() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = setup().await;
    let mut admin = connect(&s, "admin", ADMIN_PW).await;
    // This client reads its console events (a connector waits for its owner to).
    let mut events = admin.take_events();
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    let tls = || ClientTls::from_pem(s.pki.ca_pem().as_bytes(), "zgate.test", None).unwrap();

    // Not TLS at all: the handshake fails and the connection closes.
    let mut raw = tokio::net::TcpStream::connect(s.server.addr())
        .await
        .unwrap();
    raw.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(30), raw.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert!(n < 64, "the listener answered a non-TLS client at length");

    // Garbage inside TLS: PROTOCOL_ERROR (BAD_MAGIC), then the connection closes.
    let tcp = tokio::net::TcpStream::connect(s.server.addr())
        .await
        .unwrap();
    let mut garbage = tls().connect(tcp, Duration::from_secs(10)).await.unwrap();
    garbage.write_all(&[0x55; 32]).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), garbage.read_to_end(&mut answer)).await;
    assert_eq!(&answer[..2], &[0xE9, 0xC7], "{answer:02X?}");
    assert_eq!(
        &answer[4..6],
        &[0x7F, 0xFF],
        "PROTOCOL_ERROR expected: {answer:02X?}"
    );

    // Never logs on: closed after the logon deadline (10 s of paused time).
    let tcp = tokio::net::TcpStream::connect(s.server.addr())
        .await
        .unwrap();
    let mut idle = tls().connect(tcp, Duration::from_secs(10)).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(60), idle.read(&mut buf))
        .await
        .unwrap();
    assert!(
        matches!(closed, Ok(0) | Err(_)),
        "an idle client was kept: {closed:?}"
    );

    // A flood of bad passwords.
    for _ in 0..5 {
        let mut c = CsmConnectorConfig::new(s.server.addr());
        c.user = "admin".into();
        c.appl = "CSM".into();
        c.clock = common::test_clock();
        c.max_logon_refusals = 1;
        c.tls = Some(tls());
        let mut h = csm::spawn(
            c,
            Authentication::Passphrase(Credential::new("not-the-password").unwrap()),
        )
        .unwrap();
        while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(30), h.next_event()).await
        {
            assert!(
                !matches!(e, ConnectorEvent::Connected { .. }),
                "logged on with a bad password"
            );
            if matches!(e, ConnectorEvent::GaveUp { .. }) {
                break;
            }
        }
        h.shutdown().await;
    }

    // The flood throttled its address (framing.md §9), not the logged-on client.
    ok(&admin, json!({"op": "server.status"})).await;
    tokio::time::sleep(Duration::from_secs(61)).await;

    // A logged-on client that never reads, while 300 console messages are made.
    let mut sleeper = connect(&s, "admin", ADMIN_PW).await;
    csm::subscribe(&sleeper, true).await.unwrap();
    let _events = sleeper.take_events();
    for i in 0..300 {
        ok(
            &admin,
            json!({"op": "session.create", "name": format!("S{i}"), "type": "FC"}),
        )
        .await;
    }
    // The first client was never disturbed.
    let status = ok(&admin, json!({"op": "server.status"})).await;
    assert_eq!(status["result"]["sessions"], 300);
    s.server.shutdown().await;
    s.gateway.shutdown().await;
}

/// policy.md §1.4: a connection is bound to its user's number and credential
/// generation. A password change or the user's removal ends it at its next
/// request, and a new user of the same name does not revive it.
#[tokio::test(start_paused = true)]
async fn a_connection_dies_with_its_users_credentials() {
    let s = setup().await;
    let admin = connect(&s, "admin", ADMIN_PW).await;
    let create = json!({"op": "user.create", "name": "bob", "role": "Administrator", "password": "bobpass1"});
    ok(&admin, create.clone()).await;
    let bob = connect(&s, "bob", "bobpass1").await;
    ok(&bob, json!({"op": "session.list"})).await;
    // Removed, then made again with the same name and password: the old
    // connection is refused, reads included.
    ok(&admin, json!({"op": "user.remove", "name": "bob"})).await;
    ok(&admin, create).await;
    for request in [
        json!({"op": "session.list"}),
        json!({"op": "session.create", "name": "X", "type": "FC"}),
    ] {
        let (status, v) = call(&bob, request).await;
        assert_eq!(status.rc, ReturnCode::REFUSED, "{v}");
        assert_eq!(v["msg"], "IWNR8010E", "{v}");
    }
    // A new logon works, until its password changes.
    let bob = connect(&s, "bob", "bobpass1").await;
    ok(&bob, json!({"op": "session.list"})).await;
    ok(
        &admin,
        json!({"op": "user.password", "name": "bob", "password": "bobpass2"}),
    )
    .await;
    let (status, _) = call(&bob, json!({"op": "session.list"})).await;
    assert_eq!(status.rc, ReturnCode::REFUSED);
    // A case variant of an existing name is refused.
    let (status, v) = call(
        &admin,
        json!({"op": "user.create", "name": "ADMIN", "role": "Monitor", "password": "x1234567"}),
    )
    .await;
    assert_eq!(status.rc, ReturnCode::REFUSED, "{v}");
    ok(
        &connect(&s, "admin", ADMIN_PW).await,
        json!({"op": "session.list"}),
    )
    .await;
    s.server.shutdown().await;
    s.gateway.shutdown().await;
}

/// csm.md §3.1: a PassTicket key is 16 or 64 hex digits; anything else is refused
/// before it is sealed, and the reply does not repeat it.
#[tokio::test(start_paused = true)]
async fn a_host_key_that_is_not_hex_is_refused() {
    let s = setup().await;
    let admin = connect(&s, "admin", ADMIN_PW).await;
    for key in ["not-a-key-at-all", "0123456789ABCDEF0", "G123456789ABCDEF"] {
        let (status, v) = call(
            &admin,
            json!({"op": "host.add", "system": "SYSA", "kind": "zos", "address": "127.0.0.1",
                   "passticket_key": key}),
        )
        .await;
        assert_eq!(status.rc, ReturnCode::REFUSED, "{v}");
        assert!(v.to_string().contains("hex digits"), "{v}");
        assert!(!v.to_string().contains(key), "{v}");
    }
    ok(
        &admin,
        json!({"op": "host.add", "system": "SYSA", "kind": "zos", "address": "127.0.0.1",
               "passticket_key": "0123456789ABCDEF"}),
    )
    .await;
    // Lists carry plain values, never Rust debug text.
    let hosts = ok(&admin, json!({"op": "host.list"})).await;
    assert_eq!(hosts["result"][0]["kind"], "zos", "{hosts}");
    ok(
        &admin,
        json!({"op": "user.create", "name": "op1", "role": "Operator", "password": "op1pass1",
                      "sessions": ["FC1"]}),
    )
    .await;
    let users = ok(&admin, json!({"op": "user.list"})).await;
    let op1 = users["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "op1")
        .unwrap()
        .clone();
    assert_eq!(
        op1["grant"],
        json!({"sessions": ["FC1"], "actions": "default"}),
        "{users}"
    );
    s.server.shutdown().await;
    s.gateway.shutdown().await;
}

/// csm.md §3.3, policy.md §5.6: an options object changes only what it names; an
/// option of the other session type is refused and changes nothing.
#[tokio::test(start_paused = true)]
async fn options_change_only_what_they_name() {
    let s = setup().await;
    let admin = connect(&s, "admin", ADMIN_PW).await;
    ok(
        &admin,
        json!({"op": "session.create", "name": "FC1", "type": "FC"}),
    )
    .await;
    ok(
        &admin,
        json!({"op": "session.options", "name": "FC1",
                      "options": {"persistent": true, "min_flash_interval_mins": 10}}),
    )
    .await;
    // A misdirected SGC option: refused, nothing changed.
    let (status, v) = call(
        &admin,
        json!({"op": "session.options", "name": "FC1",
                                         "options": {"min_backups": 3}}),
    )
    .await;
    assert_eq!(status.rc, ReturnCode::REFUSED, "{v}");
    assert!(
        v["msgTranslated"]
            .as_str()
            .unwrap()
            .contains("not a property"),
        "{v}"
    );
    // A partial change keeps the rest.
    ok(
        &admin,
        json!({"op": "session.options", "name": "FC1",
                      "options": {"inhibit_target_writes": true}}),
    )
    .await;
    let fc1 = ok(&admin, json!({"op": "session.get", "name": "FC1"})).await;
    let o = &fc1["result"]["options"];
    assert_eq!(o["persistent"], true, "{fc1}");
    assert_eq!(o["min_flash_interval_mins"], 10, "{fc1}");
    assert_eq!(o["inhibit_target_writes"], true, "{fc1}");
    // An empty change names nothing.
    let (status, _) = call(
        &admin,
        json!({"op": "session.options", "name": "FC1", "options": {}}),
    )
    .await;
    assert_eq!(status.rc, ReturnCode::REFUSED);
    s.server.shutdown().await;
    s.gateway.shutdown().await;
}

/// policy.md §2.2: a user sees the pending requests it can act on (its own, and
/// those it may approve or reject), each with the change in words.
#[tokio::test(start_paused = true)]
async fn users_see_only_the_requests_they_can_act_on() {
    let s = setup().await;
    let admin = connect(&s, "admin", ADMIN_PW).await;
    ok(&admin, json!({"op": "user.create", "name": "bob", "role": "Administrator", "password": "bobpass1"})).await;
    ok(
        &admin,
        json!({"op": "user.create", "name": "mon", "role": "Monitor", "password": "monpass1"}),
    )
    .await;
    let (status, v) = call(&admin, json!({"op": "dualcontrol.set", "mode": "full"})).await;
    assert_eq!(v["msg"], "IWNR8003W", "{status:?} {v}");
    let mine = ok(&admin, json!({"op": "dualcontrol.requests"})).await;
    assert_eq!(mine["result"].as_array().unwrap().len(), 1, "{mine}");
    let change = mine["result"][0]["change"].as_str().unwrap();
    assert!(change.starts_with("Set Dual Control Mode to"), "{mine}");
    let bob = connect(&s, "bob", "bobpass1").await;
    let theirs = ok(&bob, json!({"op": "dualcontrol.requests"})).await;
    assert_eq!(theirs["result"].as_array().unwrap().len(), 1, "{theirs}");
    let mon = connect(&s, "mon", "monpass1").await;
    let none = ok(&mon, json!({"op": "dualcontrol.requests"})).await;
    assert_eq!(none["result"], json!([]), "{none}");
    s.server.shutdown().await;
    s.gateway.shutdown().await;
}

/// csm.md §3.2: one connection's pipelined requests are carried out in the order
/// sent: forty description changes sent at once end with the fortieth. (On two
/// worker threads, as a real server runs, where concurrent handling reorders them.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_changes_are_carried_out_in_order() {
    let s = setup().await;
    let admin = connect(&s, "admin", ADMIN_PW).await;
    ok(
        &admin,
        json!({"op": "session.create", "name": "FC1", "type": "FC"}),
    )
    .await;
    let sends = (1..=40).map(|i| {
        let request = json!({"op": "session.description", "name": "FC1", "description": format!("change {i}")});
        let admin = &admin;
        async move { call(admin, request).await }
    });
    for (status, v) in futures_util::future::join_all(sends).await {
        assert_eq!(status.rc, ReturnCode::OK, "{v}");
    }
    let fc1 = ok(&admin, json!({"op": "session.get", "name": "FC1"})).await;
    assert_eq!(fc1["result"]["description"], "change 40", "{fc1}");
    s.server.shutdown().await;
    s.gateway.shutdown().await;
}

/// csm.md §3.5–§3.6: copy sets sent as parts of one import (any order, a part sent
/// twice replaces itself) are added by one command when the last part is in, read
/// from the box once; `session.get` lists them a page at a time.
#[tokio::test(start_paused = true)]
async fn copy_sets_in_parts_are_added_as_one_and_listed_a_page_at_a_time() {
    let s = setup().await;
    let mut admin = connect(&s, "admin", ADMIN_PW).await;
    csm::subscribe(&admin, true).await.unwrap();
    ok(
        &admin,
        json!({"op": "storage.add", "serial": "75FA120", "address": s.ds8k.addr().to_string(),
               "user": "CSMADMIN", "password": "HMCPASS1"}),
    )
    .await;
    ok(
        &admin,
        json!({"op": "session.create", "name": "ALL", "type": "FC"}),
    )
    .await;
    let sets: Vec<[String; 2]> = (0..256u16)
        .map(|i| {
            [
                format!("DS8000:2107.75FA120:VOL:{:04X}", 0x3000 + i),
                format!("DS8000:2107.75FA120:VOL:{:04X}", 0x3100 + i),
            ]
        })
        .collect();
    let part = |n: usize| {
        json!({"op": "session.copysets.import", "name": "ALL", "import": "nightly",
               "part": n, "parts": 3, "copysets": sets[(n - 1) * 100..(n * 100).min(256)]})
    };
    let staged = ok(&admin, part(3)).await;
    assert_eq!(staged["result"]["received"], 1, "{staged}");
    assert_eq!(staged["result"]["copysets"], 56, "{staged}");
    ok(&admin, part(1)).await;
    let staged = ok(&admin, part(1)).await;
    assert_eq!(staged["result"]["received"], 2, "{staged}");
    assert_eq!(staged["result"]["copysets"], 156, "{staged}");
    let started = ok(&admin, part(2)).await;
    assert_eq!(started["outcome"], "started", "{started}");
    console(
        &mut admin,
        "IWNR8001I",
        "256 copy sets were added to session ALL",
    )
    .await;
    let first = ok(&admin, json!({"op": "session.get", "name": "ALL"})).await;
    assert_eq!(first["result"]["numcopysets"], 256);
    let mut listed = Vec::new();
    for offset in [0, 100, 200, 300] {
        let page = ok(
            &admin,
            json!({"op": "session.get", "name": "ALL", "offset": offset, "limit": 100}),
        )
        .await;
        assert_eq!(page["result"]["copysets_offset"], offset);
        listed.extend(page["result"]["copysets"].as_array().unwrap().clone());
    }
    assert_eq!(json!(listed), json!(sets), "pages in order, none twice");
    // A part with a bad count is refused by name; nothing is staged.
    let (status, v) = call(
        &admin,
        json!({"op": "session.copysets.import", "name": "ALL", "import": "x",
               "part": 2, "parts": 1, "copysets": []}),
    )
    .await;
    assert_eq!(status.rc, ReturnCode::REFUSED, "{v}");
    assert!(
        v["msgTranslated"].as_str().unwrap().contains("part 2 of 1"),
        "{v}"
    );
    // Authority first: a Monitor's part is refused, and nothing is held for it.
    ok(
        &admin,
        json!({"op": "user.create", "name": "mon", "role": "monitor", "password": "monitor-pass-1"}),
    )
    .await;
    let mon = connect(&s, "mon", "monitor-pass-1").await;
    let (status, v) = call(&mon, part(1)).await;
    assert_eq!(status.rc, ReturnCode::REFUSED, "{v}");
    assert_eq!(v["msg"], "IWNR8010E", "{v}");
    s.server.shutdown().await;
    s.gateway.shutdown().await;
}

/// policy.md §4.2, csm.md §3.1: `storage.add` with no serial logs on to the HMC to
/// learn it; the definition (its password sealed again under its own name, so the
/// box can be used) is the action's end, told on the console. A logon that fails
/// defines nothing.
#[tokio::test(start_paused = true)]
async fn a_storage_system_added_without_its_serial_is_discovered() {
    let s = setup().await;
    let mut admin = connect(&s, "admin", ADMIN_PW).await;
    csm::subscribe(&admin, true).await.unwrap();
    let started = ok(
        &admin,
        json!({"op": "storage.add", "address": s.ds8k.addr().to_string(),
               "user": "CSMADMIN", "password": "HMCPASS1"}),
    )
    .await;
    assert_eq!(started["msg"], "IWNR8002I", "{started}");
    console(&mut admin, "IWNR8001I", "DS8000:BOX:2107.75FA120").await;
    let systems = ok(&admin, json!({"op": "storage.list"})).await;
    assert!(systems.to_string().contains("75FA120"), "{systems}");
    // The password opens under the definition's name: the box's volumes are read.
    ok(
        &admin,
        json!({"op": "storage.volumes", "serial": "75FA120"}),
    )
    .await;
    console(&mut admin, "IWNR8001I", "volumes of storage system").await;

    ok(
        &admin,
        json!({"op": "storage.add", "address": s.ds8k.addr().to_string(),
               "user": "CSMADMIN", "password": "WRONGPW1"}),
    )
    .await;
    let failed = console(&mut admin, "IWNR8013E", "The logon to").await;
    assert!(!failed.to_string().contains("WRONGPW1"), "{failed}");
    let systems = ok(&admin, json!({"op": "storage.list"})).await;
    assert_eq!(
        systems["result"].as_array().map(Vec::len),
        Some(1),
        "{systems}"
    );
    s.server.shutdown().await;
    s.gateway.shutdown().await;
}
