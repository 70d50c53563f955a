//! `zgate serve` as a process: configured from a file, killed with SIGKILL in the
//! middle of work, started again on the same store. Every acknowledged change is
//! there, and the background copy that was running when it died is followed to its
//! IWNR2772I by the new process. Real time (a few seconds): the child is a real
//! process on the system clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use zgate::client::csm::{self, ConnectorEvent, CsmHandle};
use zgate::peer::ds8k::Ds8kService;
use zgate::proto::ReturnCode;
use zgate::proto::csm::CsmBody;

const PASSWORD: &str = "restart-test-pass";

async fn ds8k() -> Ds8kService {
    // 50,085 tracks at 10,000 tracks/s: five seconds of background copy.
    common::ds8k_service(zgate::clock::Clock::system(), |c| {
        c.system.storage.copy_tracks_per_sec = 10_000;
    })
    .await
}

/// Starts `zgate serve` on `dir`; returns the child and the CSM address it printed.
fn serve(dir: &std::path::Path) -> (Child, std::net::SocketAddr) {
    let config = dir.join("zgate.toml");
    std::fs::write(
        &config,
        format!(
            "[csm]\nlisten = \"127.0.0.1:0\"\n[rest]\nlisten = \"127.0.0.1:0\"\n[ha]\nlisten = \"127.0.0.1:0\"\n[store]\ndir = \"{}\"\n[policy]\ncopy_poll_secs = 1\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_zgate"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("ZGATE_ADMIN_PASSWORD", PASSWORD)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("serve printed its address").unwrap();
        if let Some(rest) = line.strip_prefix("zgate gateway: CSM protocol on ") {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

async fn connect(addr: std::net::SocketAddr, ca: &[u8]) -> CsmHandle {
    let h = common::csm_logged_on(
        addr,
        ca,
        "localhost",
        "admin",
        PASSWORD,
        zgate::clock::Clock::system(),
    )
    .await;
    csm::subscribe(&h, true).await.unwrap();
    h
}

async fn ok(h: &CsmHandle, request: Value) -> Value {
    let (status, v) = csm::call(h, &request).await.unwrap();
    assert_eq!(status.rc, ReturnCode::OK, "{request}: {v}");
    v
}

/// Defines the sample DS8000 in the gateway.
async fn add_box(admin: &CsmHandle, box_: &Ds8kService) {
    ok(
        admin,
        json!({"op": "storage.add", "serial": "75FA120", "address": box_.addr().to_string(),
                      "user": "CSMADMIN", "password": "HMCPASS1"}),
    )
    .await;
}

async fn wait_console(h: &mut CsmHandle, id: &str, text: &str) {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Some(ConnectorEvent::Event(CsmBody::Console { json })) = h.next_event().await {
                let v: Value = serde_json::from_str(&json).unwrap();
                if v["msg"] == id && v["msgTranslated"].as_str().unwrap().contains(text) {
                    return;
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {id} {text}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_nothing_acknowledged_and_the_copy_poll_resumes() {
    let box_ = ds8k().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = serve(dir.path());
    let ca = std::fs::read(dir.path().join("data/csm-ca.pem")).unwrap();
    let mut admin = connect(addr, &ca).await;
    add_box(&admin, &box_).await;
    ok(
        &admin,
        json!({"op": "session.create", "name": "FC1", "type": "FC"}),
    )
    .await;
    ok(&admin, json!({"op": "session.copysets.add", "name": "FC1",
                      "copysets": [["DS8000:2107.75FA120:VOL:3000", "DS8000:2107.75FA120:VOL:3100"]]})).await;
    wait_console(&mut admin, "IWNR8001I", "copy sets were added").await;
    ok(&admin, json!({"op": "task.create", "name": "refresh", "session": "FC1", "cmd": "Refresh States",
                      "schedule": {"type": "interval", "start": 4_000_000_000_000u64, "interval_mins": 60}})).await;
    ok(
        &admin,
        json!({"op": "session.run", "name": "FC1", "cmd": "Flash"}),
    )
    .await;
    wait_console(&mut admin, "IWNR1026I", "Flash command in the FC1").await;
    // Acknowledged: the flash, its copy running. Now the process dies.
    child.kill().unwrap();
    child.wait().unwrap();
    admin.shutdown().await;

    let (mut child, addr) = serve(dir.path());
    let mut admin = connect(addr, &ca).await;
    let fc1 = ok(&admin, json!({"op": "session.get", "name": "FC1"})).await;
    assert_eq!(fc1["result"]["state"], "Target Available", "{fc1}");
    assert_eq!(fc1["result"]["numcopysets"], 1);
    let tasks = ok(&admin, json!({"op": "task.list"})).await;
    assert_eq!(
        tasks["result"][0]["nextRun"], 4_000_000_000_000u64,
        "{tasks}"
    );
    // The new process polls the copy the old one started, to its end.
    let copying = fc1["result"]["copying"].as_bool().unwrap();
    if copying {
        wait_console(&mut admin, "IWNR2772I", "FC1").await;
    }
    let fc1 = ok(&admin, json!({"op": "session.get", "name": "FC1"})).await;
    assert_eq!(fc1["result"]["copying"], false, "{fc1}");
    admin.shutdown().await;
    child.kill().unwrap();
    child.wait().unwrap();
    box_.shutdown().await;
}

/// Reads `session.get` until `done` holds (or panics after 60 s of real time).
async fn wait_session(h: &CsmHandle, name: &str, done: impl Fn(&Value) -> bool) -> Value {
    let give_up = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let s = ok(h, json!({"op": "session.get", "name": name})).await;
        if done(&s["result"]) {
            return s["result"].clone();
        }
        assert!(
            std::time::Instant::now() < give_up,
            "{name} never got there: {s}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The reproduction (policy.md §8.4): the box carries out a Flash of a
/// persistent session (freezing its LSS) and a Backup, their answers never arrive,
/// and `zgate serve` is SIGKILLed. The new process does not send either again: it
/// asks the box, adopts what it finds, thaws the LSS, and the sessions go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_between_hand_off_and_answer_runs_each_action_once_and_thaws() {
    let box_ = ds8k().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = serve(dir.path());
    let ca = std::fs::read(dir.path().join("data/csm-ca.pem")).unwrap();
    let mut admin = connect(addr, &ca).await;
    add_box(&admin, &box_).await;
    for (name, kind, h1, partner) in [
        ("FC1", "FC", "3000", "3100"),
        ("SGC1", "SGC", "3001", "3201"),
    ] {
        ok(
            &admin,
            json!({"op": "session.create", "name": name, "type": kind}),
        )
        .await;
        ok(&admin, json!({"op": "session.copysets.add", "name": name,
            "copysets": [[format!("DS8000:2107.75FA120:VOL:{h1}"), format!("DS8000:2107.75FA120:VOL:{partner}")]]}))
        .await;
        wait_console(&mut admin, "IWNR8001I", "copy sets were added").await;
    }
    ok(
        &admin,
        json!({"op": "session.options", "name": "FC1", "options": {"persistent": true}}),
    )
    .await;

    // The box answers nothing from now on, but carries out what it is asked.
    box_.control().misbehave(|m| m.silent = true);
    ok(
        &admin,
        json!({"op": "session.run", "name": "FC1", "cmd": "Flash"}),
    )
    .await;
    ok(
        &admin,
        json!({"op": "session.run", "name": "SGC1", "cmd": "Backup"}),
    )
    .await;
    let give_up = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (made, backups) = {
            let system = box_.control().system();
            let image = system.image();
            (
                image.relationship_count(),
                image
                    .list_backups(zgate::ds8k::VolumeId(0x3001))
                    .unwrap()
                    .len(),
            )
        };
        if made == 1 && backups == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < give_up,
            "the box never got the requests"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !box_.control().system().image().frozen_lsss().is_empty(),
        "the flash froze its LSS"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    admin.shutdown().await;
    box_.control().misbehave(|m| m.silent = false);

    let (mut child, addr) = serve(dir.path());
    let admin = connect(addr, &ca).await;
    let fc1 = wait_session(&admin, "FC1", |s| {
        s["busy"] == false && s["state"] == "Target Available"
    })
    .await;
    assert_eq!(fc1["status"], "Normal", "{fc1}");
    let sgc1 = wait_session(&admin, "SGC1", |s| {
        s["busy"] == false && s["state"] == "Protected"
    })
    .await;
    {
        let system = box_.control().system();
        let image = system.image();
        assert!(image.frozen_lsss().is_empty(), "LSS left frozen");
        assert_eq!(image.relationship_count(), 1);
        let on_box = image.list_backups(zgate::ds8k::VolumeId(0x3001)).unwrap();
        assert_eq!(on_box.len(), 1, "a second backup was taken");
        assert_eq!(sgc1["backups"][0]["backupID"], on_box[0].id, "{sgc1}");
    }
    // Not wedged: the next commands run.
    ok(
        &admin,
        json!({"op": "session.run", "name": "FC1", "cmd": "Flash"}),
    )
    .await;
    ok(
        &admin,
        json!({"op": "session.run", "name": "SGC1", "cmd": "Backup"}),
    )
    .await;
    let fc1 = wait_session(&admin, "FC1", |s| s["busy"] == false).await;
    assert_eq!(fc1["status"], "Normal", "{fc1}");
    wait_session(&admin, "SGC1", |s| {
        s["busy"] == false && s["backups"].as_array().is_some_and(|b| b.len() == 2)
    })
    .await;
    assert!(box_.control().system().image().frozen_lsss().is_empty());
    admin.shutdown().await;
    child.kill().unwrap();
    child.wait().unwrap();
    box_.shutdown().await;
}

/// csm.md §3.6: `zgate csm copysets NAME --file F` sends a copy-set CSV file in parts
/// to a running `zgate serve`; the copy sets are added by one command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zgate_csm_sends_a_copy_set_file_in_parts() {
    let box_ = ds8k().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = serve(dir.path());
    let ca_path = dir.path().join("data/csm-ca.pem");
    let ca = std::fs::read(&ca_path).unwrap();
    let mut admin = connect(addr, &ca).await;
    add_box(&admin, &box_).await;
    ok(
        &admin,
        json!({"op": "session.create", "name": "CLI", "type": "FC"}),
    )
    .await;
    let mut file = String::from("#Session,CLI\nH1,T1\n");
    for i in 0..256u16 {
        file.push_str(&format!(
            "DS8000:2107.75FA120:VOL:{:04X},DS8000:2107.75FA120:VOL:{:04X}\n",
            0x3000 + i,
            0x3100 + i
        ));
    }
    let csv = dir.path().join("copysets.csv");
    std::fs::write(&csv, file).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zgate"))
        .args(["csm", "--addr", &addr.to_string(), "--ca"])
        .arg(&ca_path)
        .args(["copysets", "CLI", "--part-size", "100", "--file"])
        .arg(&csv)
        .env("ZGATE_CSM_PASSWORD", PASSWORD)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    wait_console(
        &mut admin,
        "IWNR8001I",
        "256 copy sets were added to session CLI",
    )
    .await;
    let got = ok(
        &admin,
        json!({"op": "session.get", "name": "CLI", "limit": 1}),
    )
    .await;
    assert_eq!(got["result"]["numcopysets"], 256);
    child.kill().unwrap();
    let _ = child.wait();
}
