//! The active/standby pair as two `zgate serve` processes (protocol-specs/ha.md) in
//! synchronous mode: the active is SIGKILLed during a stream of acknowledged
//! changes, with a Flash that the box carried out but whose answer never arrived;
//! the standby takes over. Every acknowledged change is there, the Flash is
//! neither lost nor sent again (the box is asked, the LSS it froze is thawed), and
//! the old active, started again, is fenced and follows the new one. Real time:
//! the children are real processes on the system clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use zgate::client::csm::{self, ConnectorEvent, CsmHandle};
use zgate::proto::ReturnCode;
use zgate::proto::csm::CsmBody;

const PASSWORD: &str = "failover-test-pass";
const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

struct Server {
    child: Child,
    csm: SocketAddr,
    ha: SocketAddr,
}

/// Starts `zgate serve` on `dir` with its HA listener on `ha` (port 0: any).
fn serve(dir: &std::path::Path, ha: SocketAddr) -> Server {
    let config = dir.join("zgate.toml");
    std::fs::write(
        &config,
        format!(
            "[csm]\nlisten = \"127.0.0.1:0\"\n[rest]\nenabled = false\n[ha]\nlisten = \"{ha}\"\nheartbeat_ms = 200\ndead_after_ms = 3000\n[store]\ndir = \"{}\"\nkey_env = \"ZGATE_TEST_KEY\"\n[policy]\ncopy_poll_secs = 1\nstorage_timeout_secs = 3\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    // Every log line at debug level, kept to check that no password is ever in one.
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("serve.log"))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_zgate"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("ZGATE_ADMIN_PASSWORD", PASSWORD)
        .env("ZGATE_TEST_KEY", KEY)
        .env("RUST_LOG", "zgate=debug")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut csm, mut ha) = (None, None);
    while csm.is_none() || ha.is_none() {
        let line = lines.next().expect("serve printed its addresses").unwrap();
        if let Some(rest) = line.strip_prefix("zgate gateway: CSM protocol on ") {
            csm = rest.split_whitespace().next().unwrap().parse().ok();
        }
        if let Some(rest) = line.strip_prefix("zgate gateway: HA (active/standby) on ") {
            ha = rest.trim().parse().ok();
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        csm: csm.unwrap(),
        ha: ha.unwrap(),
    }
}

/// Runs `zgate csm ARGS` as admin against `addr`, trusting `dir`'s CA; its stdout.
fn zgate_csm(dir: &std::path::Path, addr: SocketAddr, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_zgate"))
        .args(["csm", "--addr", &addr.to_string(), "--ca"])
        .arg(dir.join("data/csm-ca.pem"))
        .args(args)
        .env("ZGATE_CSM_PASSWORD", PASSWORD)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "zgate csm {args:?}: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

async fn connect(dir: &std::path::Path, addr: SocketAddr) -> CsmHandle {
    let ca = std::fs::read(dir.join("data/csm-ca.pem")).unwrap();
    let h = common::csm_logged_on(
        addr,
        &ca,
        "localhost",
        "admin",
        PASSWORD,
        zgate::clock::Clock::system(),
    )
    .await;
    csm::subscribe(&h, true).await.unwrap();
    h
}

async fn call(h: &CsmHandle, request: Value) -> (ReturnCode, Value) {
    let (status, v) = csm::call(h, &request).await.unwrap();
    (status.rc, v)
}

async fn ok(h: &CsmHandle, request: Value) -> Value {
    let (rc, v) = call(h, request.clone()).await;
    assert_eq!(rc, ReturnCode::OK, "{request}: {v}");
    v
}

async fn wait_console(h: &mut CsmHandle, id: &str) -> Value {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Some(ConnectorEvent::Event(CsmBody::Console { json })) = h.next_event().await {
                let v: Value = serde_json::from_str(&json).unwrap();
                if v["msg"] == id {
                    return v;
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {id} within 60 s"))
}

/// Reads `what` until `done` holds (or panics after 60 s).
async fn wait_for(h: &CsmHandle, what: Value, done: impl Fn(&Value) -> bool) -> Value {
    let give_up = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, v) = call(h, what.clone()).await;
        if done(&v["result"]) {
            return v["result"].clone();
        }
        assert!(std::time::Instant::now() < give_up, "never got there: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_active_loses_no_acknowledged_change_and_runs_the_flash_once() {
    let box_ = common::ds8k_service(zgate::clock::Clock::system(), |_| {}).await;
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut a = serve(a_dir.path(), any);
    let b = serve(b_dir.path(), any);
    let mut on_a = connect(a_dir.path(), a.csm).await;

    // Pairing: B's Administrator's password, B's data replaced by A's.
    let paired = ok(
        &on_a,
        json!({"op": "ha.set_standby", "server": b.ha.to_string(), "user": "admin", "password": PASSWORD}),
    )
    .await;
    assert!(
        !paired.to_string().contains(PASSWORD),
        "the password is echoed: {paired}"
    );
    wait_console(&mut on_a, "IWNR8103I").await;
    // The operator's view: `zgate csm ha status` and `zgate csm property`.
    let shown = zgate_csm(a_dir.path(), a.csm, &["ha", "status"]);
    assert!(
        shown.contains("ACTIVE") && shown.contains("Synchronized"),
        "{shown}"
    );
    assert!(shown.contains(&b.ha.to_string()), "{shown}");
    let set = zgate_csm(
        a_dir.path(),
        a.csm,
        &["property", "zgate.copy.poll.secs", "2"],
    );
    assert!(set.contains("was set to 2"), "{set}");
    // Authority first (ha.md §4): a Monitor may read the status, not end the pair.
    ok(
        &on_a,
        json!({"op": "user.create", "name": "mon", "role": "Monitor", "password": "mon-pass1"}),
    )
    .await;
    let ca = std::fs::read(a_dir.path().join("data/csm-ca.pem")).unwrap();
    let mon = common::csm_logged_on(
        a.csm,
        &ca,
        "localhost",
        "mon",
        "mon-pass1",
        zgate::clock::Clock::system(),
    )
    .await;
    ok(&mon, json!({"op": "ha.status"})).await;
    let (rc, refused) = call(&mon, json!({"op": "ha.remove", "server": b.ha.to_string()})).await;
    assert_eq!(rc, ReturnCode::REFUSED, "{refused}");
    assert_eq!(refused["msg"], "IWNR8010E", "{refused}");
    mon.shutdown().await;
    let still = ok(&on_a, json!({"op": "ha.status"})).await;
    assert_eq!(
        still["result"]["ha"]["partner"],
        b.ha.to_string(),
        "{still}"
    );

    ok(
        &on_a,
        json!({"op": "storage.add", "serial": "75FA120", "address": box_.addr().to_string(),
                     "user": "CSMADMIN", "password": "HMCPASS1"}),
    )
    .await;
    ok(
        &on_a,
        json!({"op": "session.create", "name": "FC1", "type": "FC"}),
    )
    .await;
    ok(
        &on_a,
        json!({"op": "session.copysets.add", "name": "FC1",
        "copysets": [["DS8000:2107.75FA120:VOL:3000", "DS8000:2107.75FA120:VOL:3100"]]}),
    )
    .await;
    wait_console(&mut on_a, "IWNR8001I").await;
    ok(
        &on_a,
        json!({"op": "session.options", "name": "FC1", "options": {"persistent": true}}),
    )
    .await;

    wait_for(&on_a, json!({"op": "session.get", "name": "FC1"}), |s| {
        s["busy"] == false && s["numcopysets"] == 1
    })
    .await;
    // The box carries out what it is asked from now on, but answers nothing.
    box_.control().misbehave(|m| m.silent = true);
    let flash = ok(
        &on_a,
        json!({"op": "session.run", "name": "FC1", "cmd": "Flash"}),
    )
    .await;
    assert_eq!(flash["outcome"], "started", "{flash}");
    // A stream of changes, each acknowledged in synchronous mode.
    let mut acknowledged = Vec::new();
    for i in 0..40 {
        let name = format!("S{i}");
        let (rc, _) = call(
            &on_a,
            json!({"op": "session.create", "name": name, "type": "SGC"}),
        )
        .await;
        if rc == ReturnCode::OK {
            acknowledged.push(name);
        }
    }
    let give_up = std::time::Instant::now() + Duration::from_secs(30);
    while box_.control().system().image().relationship_count() == 0 {
        assert!(
            std::time::Instant::now() < give_up,
            "the box never got the Flash"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!box_.control().system().image().frozen_lsss().is_empty());
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    on_a.shutdown().await;
    box_.control().misbehave(|m| m.silent = false);

    // Takeover on B. A client that trusts A's CA trusts B (ha.md §2.5).
    let mut on_b = connect(a_dir.path(), b.csm).await;
    let (rc, refused) = call(
        &on_b,
        json!({"op": "session.create", "name": "X", "type": "FC"}),
    )
    .await;
    assert_eq!(rc, ReturnCode::REFUSED, "{refused}");
    assert_eq!(refused["msg"], "IWNR8108E", "{refused}");
    let took = ok(&on_b, json!({"op": "ha.takeover"})).await;
    assert!(took.to_string().contains("epoch 2"), "{took}");
    let sessions = ok(&on_b, json!({"op": "session.list"})).await;
    let names: Vec<&str> = sessions["result"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    for name in &acknowledged {
        assert!(
            names.contains(&name.as_str()),
            "acknowledged {name} lost: {names:?}"
        );
    }
    // The Flash is asked about, adopted, its LSS thawed; never sent again.
    let fc1 = wait_for(&on_b, json!({"op": "session.get", "name": "FC1"}), |s| {
        s["busy"] == false && s["state"] == "Target Available"
    })
    .await;
    assert_eq!(fc1["status"], "Normal", "{fc1}");
    // The sweep that thaws the LSS runs beside the inspection that adopts the Flash
    // (policy.md §8.4): it is thawed within the new active's first rounds.
    let give_up = std::time::Instant::now() + Duration::from_secs(60);
    while !box_.control().system().image().frozen_lsss().is_empty() {
        assert!(std::time::Instant::now() < give_up, "LSS left frozen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        box_.control().system().image().relationship_count(),
        1,
        "the Flash ran twice"
    );
    let status = ok(&on_b, json!({"op": "ha.status"})).await;
    assert_eq!(status["result"]["islocalactive"], true, "{status}");

    // The old active comes back on its address: it is fenced, then follows B.
    let a = serve(a_dir.path(), a.ha);
    let on_a = connect(a_dir.path(), a.csm).await;
    let status = wait_for(&on_a, json!({"op": "ha.status"}), |s| {
        s["ha"]["role"] == "STANDBY" && s["ha"]["link"] == "Synchronized"
    })
    .await;
    assert_eq!(status["islocalactive"], false, "{status}");
    let (rc, refused) = call(
        &on_a,
        json!({"op": "session.create", "name": "Y", "type": "FC"}),
    )
    .await;
    assert_eq!(rc, ReturnCode::REFUSED, "{refused}");
    assert!(
        refused["msgTranslated"]
            .as_str()
            .unwrap()
            .contains(&b.ha.to_string()),
        "{refused}"
    );
    ok(
        &on_b,
        json!({"op": "session.create", "name": "AFTER", "type": "FC"}),
    )
    .await;
    wait_for(&on_a, json!({"op": "session.get", "name": "AFTER"}), |s| {
        s["name"] == "AFTER"
    })
    .await;
    wait_console(&mut on_b, "IWNR8103I").await;

    on_a.shutdown().await;
    on_b.shutdown().await;
    for mut s in [a, b] {
        s.child.kill().unwrap();
        s.child.wait().unwrap();
    }
    // ha.md §2.2: the password sent in PAIR is in no log of either server.
    for dir in [a_dir.path(), b_dir.path()] {
        let log = std::fs::read_to_string(dir.join("serve.log")).unwrap();
        assert!(log.contains("ha:"), "no HA log lines at all");
        assert!(
            !log.contains(PASSWORD),
            "a password is in {}",
            dir.display()
        );
    }
    box_.shutdown().await;
}
